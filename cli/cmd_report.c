/* cmd_report.c: `dsv32-parity report check|render`: CI regression checks between two stored
 * runs, and re-rendering a stored run as Markdown or HTML. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "cli/cli_outputs.h"
#include "compare/check.h"
#include "reports/report.h"

static int report_check(int argc, char **argv)
{
	const char *baseline = NULL, *current = NULL, *max_reg = "0.1";
	bool exact = false;
	const dsv32_arg_opt opts[] = {
		{"baseline", DSV32_ARG_STRING, &baseline, "A.json", "the stored baseline report", true},
		{"current", DSV32_ARG_STRING, &current, "B.json", "the report of this run", true},
		{"max-regression", DSV32_ARG_STRING, &max_reg, "R",
		 "allowed relative growth of each tap's drift (default 0.1 = 10 %)", false},
		{"exact", DSV32_ARG_FLAG, &exact, NULL,
		 "require every figure of every tap to be identical (same taps, same bits; for\n"
		 "  reports of the fixed GEMM engine, whose numbers are the same on every machine)",
		 false},
	};
	dsv32_arg_spec spec = {"report check",
			       "--baseline A.json --current B.json [--max-regression R | --exact]",
			       "Fails (exit 1) when any tap's drift (relative L2, or 1 - Jaccard for index sets)\n"
			       "grew by more than R relative to the baseline, when a baseline tap is missing,\n"
			       "or when non-finite values appeared. With --exact: when any figure of any tap\n"
			       "differs at all, or the two runs compared different taps. Reports of different\n"
			       "runs (mode, sides, weights, config, tokens, steps) are refused (exit 2).",
			       opts, 4, 0, 0};
	const char *pos[2];
	int npos;
	int prc = dsv32_args_parse(&spec, argc, argv, pos, &npos);
	if (prc != DSV32_ARGS_OK)
		return prc == DSV32_ARGS_HELP ? DSV32_EXIT_OK : DSV32_EXIT_USAGE;
	char *end;
	double r = strtod(max_reg, &end);
	if (*end || !(r >= 0))
		return dsv32_cli_usage_error("report check", "--max-regression %s: expected a number >= 0",
					     max_reg);
	dsv32_cmp_result a, b;
	dsv32_error err = {0};
	if (dsv32_report_read_json(&a, baseline, &err) != DSV32_OK)
		return dsv32_cli_fail("report check", &err);
	if (dsv32_report_read_json(&b, current, &err) != DSV32_OK) {
		dsv32_cmp_result_free(&a);
		return dsv32_cli_fail("report check", &err);
	}
	char why[320];
	int code;
	if (!dsv32_check_comparable(&a, &b, why, sizeof why)) { /* regressions would be noise */
		DSV32_FAIL(&err, DSV32_E_USAGE, "the reports are not comparable: %s", why);
		code = dsv32_cli_fail("report check", &err);
	} else if (exact)
		code = dsv32_check_exact(&a, &b, stdout) ? DSV32_EXIT_CHECK_FAILED : DSV32_EXIT_OK;
	else
		code = dsv32_check_regressions(&a, &b, r, stdout) ? DSV32_EXIT_CHECK_FAILED : DSV32_EXIT_OK;
	dsv32_cmp_result_free(&a);
	dsv32_cmp_result_free(&b);
	return code;
}

static int render(const char *report, const char *html, const char *md);

static int report_render(int argc, char **argv)
{
	const char *html = NULL, *md = NULL;
	bool force = false;
	const dsv32_arg_opt opts[] = {
		{"html", DSV32_ARG_STRING, &html, "FILE", "write the HTML page", false},
		{"markdown", DSV32_ARG_STRING, &md, "FILE", "write the Markdown summary ('-' = stdout)", false},
		{"force", DSV32_ARG_FLAG, &force, NULL, "replace existing output files", false},
	};
	dsv32_arg_spec spec = {"report render", "REPORT.json [--html out.html] [--markdown out.md]",
			       "Re-renders a stored JSON report. Without an output option the drift table is\n"
			       "printed.",
			       opts, (int)(sizeof opts / sizeof opts[0]), 1, 1};
	const char *pos[2];
	int npos;
	int prc = dsv32_args_parse(&spec, argc, argv, pos, &npos);
	if (prc != DSV32_ARGS_OK)
		return prc == DSV32_ARGS_HELP ? DSV32_EXIT_OK : DSV32_EXIT_USAGE;
	/* the report read must never be the page written, nor two options one file */
	const char *names[] = {"--html", "--markdown"};
	const char *outs[] = {html, md && strcmp(md, "-") ? md : NULL};
	dsv32_cli_outputs claimed = {.force = force};
	int crc = dsv32_cli_outputs_claim(&claimed, "report render", names, outs, 2, pos, 1);
	if (crc)
		return crc;
	crc = render(pos[0], html, md);
	dsv32_cli_outputs_release(&claimed);
	return crc;
}

/* Read report and write the pages asked for (the table when none). Returns the exit code. */
static int render(const char *report, const char *html, const char *md)
{
	dsv32_cmp_result r;
	dsv32_error err = {0};
	if (dsv32_report_read_json(&r, report, &err) != DSV32_OK)
		return dsv32_cli_fail("report render", &err);
	dsv32_status rc = DSV32_OK;
	if (html)
		rc = dsv32_report_write_html(&r, html, &err);
	if (rc == DSV32_OK && md) {
		if (!strcmp(md, "-"))
			dsv32_report_markdown(&r, stdout);
		else
			rc = dsv32_report_write_markdown(&r, md, &err);
	}
	if (rc == DSV32_OK && !html && !md)
		dsv32_report_table(&r, stdout);
	dsv32_cmp_result_free(&r);
	return rc == DSV32_OK ? DSV32_EXIT_OK : dsv32_cli_fail("report render", &err);
}

int dsv32_cmd_report(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		FILE *out = argc < 2 ? stderr : stdout;
		fprintf(out, "usage: dsv32-parity report check --baseline A.json --current B.json [--max-regression R]\n"
			     "       dsv32-parity report render REPORT.json [--html out.html] [--markdown out.md]\n"
			     "  check   exit 1 when any tap's drift grew by more than R over the baseline\n"
			     "  render  re-render a stored run\n");
		return argc < 2 ? DSV32_EXIT_USAGE : DSV32_EXIT_OK;
	}
	if (!strcmp(argv[1], "check"))
		return report_check(argc - 1, argv + 1);
	if (!strcmp(argv[1], "render"))
		return report_render(argc - 1, argv + 1);
	return dsv32_cli_usage_error("report", "unknown subcommand '%s' (expected check or render)",
				     argv[1]);
}
