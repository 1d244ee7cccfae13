/* fuzz_report.c: libFuzzer target for the JSON report reader (dsv32_report_parse_json,
 * reports/report.h). An accepted report is rendered again (JSON string, Markdown, HTML into a
 * scratch file on /dev/shm, the terminal table) and checked against itself with
 * dsv32_check_regressions, as `dsv32-parity report render|check` would do with a stored report. */
#include <stdint.h>
#include <unistd.h>

#include "compare/check.h"
#include "reports/report.h"
#include "tests/fuzz/fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static FILE *g_null;
static char g_html[256];

static void cleanup(void)
{
	unlink(g_html);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!g_null) {
		if (!(g_null = fopen("/dev/null", "w")))
			abort();
		const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
		snprintf(g_html, sizeof g_html, "%s/dsv32-fuzz-report-%d.html", base, (int)getpid());
		atexit(cleanup);
	}
	char *text = fuzz_cstr(data, size);
	dsv32_cmp_result r;
	dsv32_error err = {0};
	dsv32_status rc = dsv32_report_parse_json(&r, text, "fuzz/report.json", &err);
	fuzz_check_err(rc, &err, "dsv32_report_parse_json");
	free(text);
	if (rc != DSV32_OK)
		return 0;
	char *js = dsv32_report_json_string(&r);
	if (!js)
		abort();
	free(js);
	dsv32_report_markdown(&r, g_null);
	if (dsv32_report_write_html(&r, g_html, &err) != DSV32_OK)
		abort();
	dsv32_report_table(&r, g_null);
	(void)dsv32_check_regressions(&r, &r, 0.0, g_null);
	dsv32_cmp_result_free(&r);
	return 0;
}
