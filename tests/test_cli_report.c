/* test_cli_report.c: the noise floor, `report check` / `report render` and `dump` end to end
 * through the CLI. */
#include <cjson/cJSON.h>
#include <hdf5.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/fsutil.h"
#include "tests/support/test_common.h"

static char dir[64];
static const char *cli;

static int run(const char *args, char *out, size_t len)
{
	return tc_run_cli(cli, args, out, len);
}

#define load_json tc_load_json

static int setup(void **state)
{
	(void)state;
	cli = getenv("DSV32_CLI");
	if (!cli || access(cli, X_OK) != 0)
		return 0;
	snprintf(dir, sizeof dir, "/tmp/dsv32_rep_XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	char cmd[512], out[4096];
	snprintf(cmd, sizeof cmd, "fixture --preset tiny --out %s/tiny", dir);
	if (run(cmd, out, sizeof out) != 0)
		return -1;
	snprintf(cmd, sizeof cmd, "compare --checkpoint %s/tiny --decode-steps 1 --noise-floor "
		 "--quiet --json %s/base.json", dir, dir);
	int rc = run(cmd, out, sizeof out);
	return rc == 0 || rc == 1 ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	return tc_remove_dir(dir);
}

#define NEED_CLI() TC_NEED_CLI(cli)

static const char *str(const cJSON *o, const char *k)
{
	return cJSON_GetObjectItemCaseSensitive(o, k)->valuestring;
}

/* every dense tap of both modes carries both sides' noise ratios */
static void test_noise_floor_ratios_are_reported(void **state)
{
	(void)state;
	NEED_CLI();
	char path[128];
	snprintf(path, sizeof path, "%s/base.json", dir);
	cJSON *rep = load_json(path);
	assert_non_null(rep);
	int dense = 0, with_ratio = 0, local = 0;
	const cJSON *t;
	cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(rep, "taps")) {
		if (strcmp(str(t, "kind"), "dense") || !strcmp(str(t, "name"), "embed"))
			continue;
		dense++;
		const cJSON *a = cJSON_GetObjectItemCaseSensitive(t, "noise_ratio_a");
		const cJSON *b = cJSON_GetObjectItemCaseSensitive(t, "noise_ratio_b");
		if (cJSON_IsNumber(a) && cJSON_IsNumber(b) && a->valuedouble > 0 && b->valuedouble > 0) {
			with_ratio++;
			local += !strcmp(str(t, "mode"), "local");
		}
	}
	assert_true(dense > 50);
	/* taps both fp32 twins also emit (not the fp8-only k_fp8/k_scale): all of them */
	assert_true(with_ratio >= dense * 9 / 10);
	assert_true(local > 20);
	cJSON_Delete(rep);
}

static void test_report_check_passes_itself_and_catches_growth(void **state)
{
	(void)state;
	NEED_CLI();
	char args[1024], out[1 << 15], base[128], cur[128];
	snprintf(base, sizeof base, "%s/base.json", dir);
	snprintf(cur, sizeof cur, "%s/cur.json", dir);
	snprintf(args, sizeof args, "report check --baseline %s --current %s", base, base);
	assert_int_equal(run(args, out, sizeof out), 0);
	assert_non_null(strstr(out, "0 regression(s)"));
	/* grow one tap's drift by 50 % */
	cJSON *rep = load_json(base);
	cJSON *t = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(rep, "taps"), 3);
	cJSON *m = cJSON_GetObjectItemCaseSensitive(t, "metrics");
	double v = cJSON_GetObjectItemCaseSensitive(m, "rel_l2")->valuedouble;
	cJSON_ReplaceItemInObject(m, "rel_l2", cJSON_CreateNumber(v * 1.5 + 1e-3));
	char *text = cJSON_Print(rep);
	assert_int_equal(dsv32_write_file_atomic(cur, text, strlen(text), NULL), DSV32_OK);
	char name[96];
	snprintf(name, sizeof name, "%s", str(t, "name"));
	free(text);
	cJSON_Delete(rep);
	snprintf(args, sizeof args, "report check --baseline %s --current %s --max-regression 0.2",
		 base, cur);
	assert_int_equal(run(args, out, sizeof out), 1);
	assert_non_null(strstr(out, name));
	assert_non_null(strstr(out, "1 regression(s)"));
	snprintf(args, sizeof args, "report check --baseline %s/none.json --current %s", dir, cur);
	assert_int_equal(run(args, out, sizeof out), 2);
	assert_non_null(strstr(out, "none.json"));
}

static void test_report_render_writes_html_and_markdown(void **state)
{
	(void)state;
	NEED_CLI();
	char args[1024], out[1 << 16], html[128];
	snprintf(html, sizeof html, "%s/r.html", dir);
	snprintf(args, sizeof args, "report render %s/base.json --html %s --markdown -", dir, html);
	assert_int_equal(run(args, out, sizeof out), 0);
	assert_non_null(strstr(out, "## dsv32-parity: `ref:cpu:bf16:tp=1` vs `hf:cpu:bf16`"));
	char *page = NULL;
	size_t len;
	assert_int_equal(dsv32_read_file(html, 1u << 26, &page, &len, NULL), DSV32_OK);
	assert_non_null(strstr(page, "<svg"));
	free(page);
}

/* A layout compared with its own recording is exactly zero, teacher-forced or propagated. */
static void test_dump_then_compare_with_itself_is_exact(void **state)
{
	(void)state;
	NEED_CLI();
	char args[1024], out[1 << 16], taps[128], rep[128], h5[128];
	snprintf(taps, sizeof taps, "%s/ref.safetensors", dir);
	snprintf(h5, sizeof h5, "%s/ref.h5", dir);
	snprintf(rep, sizeof rep, "%s/self.json", dir);
	snprintf(args, sizeof args, "dump --layout ref --checkpoint %s/tiny --tokens "
		 "'5,17,42,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23;3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22' "
		 "--decode-steps 2 --out %s", dir, taps);
	assert_int_equal(run(args, out, sizeof out), 0);
	snprintf(args, sizeof args, "compare --checkpoint %s/tiny --a taps:%s --b ref --quiet --json %s",
		 dir, taps, rep);
	assert_int_equal(run(args, out, sizeof out), 0);
	cJSON *r = load_json(rep);
	assert_non_null(r);
	int n = 0;
	const cJSON *t;
	cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(r, "taps")) {
		const cJSON *m = cJSON_GetObjectItemCaseSensitive(t, "metrics");
		if (m)
			assert_true(cJSON_GetObjectItemCaseSensitive(m, "max_abs")->valuedouble == 0.0);
		const cJSON *s = cJSON_GetObjectItemCaseSensitive(t, "set");
		if (s)
			assert_true(cJSON_GetObjectItemCaseSensitive(s, "jaccard")->valuedouble == 1.0);
		n++;
	}
	assert_true(n > 150);
	/* only the non-layer taps, which teacher-forced mode does not run, are skipped */
	cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(r, "skipped"))
		assert_string_equal(str(t, "reason"), "teacher-forced mode runs decoder layers only");
	cJSON_Delete(r);
	/* the HDF5 form holds the same taps for h5py users */
	snprintf(args, sizeof args, "dump --layout ref --checkpoint %s/tiny --tokens 5,17,42 "
		 "--decode-steps 1 --out %s", dir, h5);
	assert_int_equal(run(args, out, sizeof out), 0);
	hid_t f = H5Fopen(h5, H5F_ACC_RDONLY, H5P_DEFAULT);
	assert_true(f >= 0);
	hid_t ds = H5Dopen2(f, "step1/layers.2.out", H5P_DEFAULT);
	assert_true(ds >= 0);
	hid_t sp = H5Dget_space(ds);
	hsize_t dims[4];
	assert_int_equal(H5Sget_simple_extent_ndims(sp), 3);
	H5Sget_simple_extent_dims(sp, dims, NULL);
	assert_true(dims[0] == 1 && dims[1] == 1 && dims[2] == 256);
	H5Sclose(sp);
	H5Dclose(ds);
	H5Fclose(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_noise_floor_ratios_are_reported),
		cmocka_unit_test(test_report_check_passes_itself_and_catches_growth),
		cmocka_unit_test(test_report_render_writes_html_and_markdown),
		cmocka_unit_test(test_dump_then_compare_with_itself_is_exact),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
