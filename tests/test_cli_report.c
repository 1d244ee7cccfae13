/* test_cli_report.c: the noise floor, `report check` / `report render` and `dump` end to end
 * through the CLI, and the GEMM engine and host fingerprint that recordings and reports state
 * (`--gemm fixed|host`). */
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
#include "core/safetensors.h"
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
	assert_non_null(strstr(out, "## dsv32-parity: `ref:cpu:bf16:mp=1` vs `hf:cpu:bf16`"));
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

/* A root string attribute of an HDF5 file (fixed-length, as our writer stores it) into out. */
static bool h5_attr(const char *path, const char *key, char *out, size_t len)
{
	hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
	if (f < 0)
		return false;
	bool ok = false;
	if (H5Aexists(f, key) > 0) {
		hid_t a = H5Aopen(f, key, H5P_DEFAULT), ty = H5Aget_type(a);
		size_t n = H5Tget_size(ty);
		char *v = calloc(n + 1, 1);
		ok = v && H5Tget_class(ty) == H5T_STRING && H5Aread(a, ty, v) >= 0;
		if (ok)
			snprintf(out, len, "%s", v);
		free(v);
		H5Tclose(ty);
		H5Aclose(a);
	}
	H5Fclose(f);
	return ok;
}

/* The three fingerprint keys of a recording state its engine: key "fixed" for the fixed
 * engine, "host:<onednn>|<openblas>" for the host one, and a non-empty one-line fingerprint. */
static void assert_recorded_engine(const char *engine, const char *got_engine, const char *key,
				   const char *line)
{
	assert_string_equal(got_engine, engine);
	if (!strcmp(engine, "fixed"))
		assert_string_equal(key, "fixed");
	else
		assert_true(!strncmp(key, "host:", 5) && strchr(key, '|') && strlen(key) > 6);
	char want[32];
	snprintf(want, sizeof want, "engine %s (", engine);
	assert_true(!strncmp(line, want, strlen(want)));
}

/* `dump --gemm host|fixed` both run and record their engine (safetensors __metadata__ and HDF5
 * root attributes); a comparison against the recording shows the recorded fingerprint. */
static void test_dump_records_its_gemm_engine(void **state)
{
	(void)state;
	NEED_CLI();
	char args[1024], out[1 << 16], st[128], h5[128], rep[128];
	snprintf(st, sizeof st, "%s/host.safetensors", dir);
	snprintf(h5, sizeof h5, "%s/fixed.h5", dir);
	snprintf(rep, sizeof rep, "%s/host_vs_rec.json", dir);
	snprintf(args, sizeof args, "dump --layout hf --checkpoint %s/tiny --tokens 5,17,42 "
		 "--decode-steps 1 --gemm host --out %s", dir, st);
	assert_int_equal(run(args, out, sizeof out), 0);
	snprintf(args, sizeof args, "dump --layout ref --checkpoint %s/tiny --tokens 5,17,42 "
		 "--decode-steps 1 --gemm fixed --out %s", dir, h5);
	assert_int_equal(run(args, out, sizeof out), 0);
	dsv32_st_file *f = NULL;
	assert_int_equal(dsv32_st_open(&f, st, NULL), DSV32_OK);
	const char *e = dsv32_st_metadata(f, "gemm_engine"), *k = dsv32_st_metadata(f, "host_numerics_key"),
		   *l = dsv32_st_metadata(f, "host_fingerprint");
	assert_true(e && k && l);
	assert_recorded_engine("host", e, k, l);
	char host_key[256];
	snprintf(host_key, sizeof host_key, "%s", k);
	dsv32_st_close(f);
	char he[16] = "", hk[256] = "", hl[1024] = "";
	assert_true(h5_attr(h5, "gemm_engine", he, sizeof he));
	assert_true(h5_attr(h5, "host_numerics_key", hk, sizeof hk));
	assert_true(h5_attr(h5, "host_fingerprint", hl, sizeof hl));
	assert_recorded_engine("fixed", he, hk, hl);
	/* the report states the recording's fingerprint (side a) and the live one (side b) */
	snprintf(args, sizeof args, "compare --checkpoint %s/tiny --a taps:%s --b hf:gemm=host "
		 "--mode propagate --quiet --json %s", dir, st, rep);
	int rc = run(args, out, sizeof out);
	assert_true(rc == 0 || rc == 1);
	cJSON *r = load_json(rep);
	assert_non_null(r);
	const cJSON *sides = cJSON_GetObjectItemCaseSensitive(
		cJSON_GetObjectItemCaseSensitive(r, "provenance"), "sides");
	assert_int_equal(cJSON_GetArraySize(sides), 2);
	const cJSON *a = cJSON_GetArrayItem(sides, 0), *b = cJSON_GetArrayItem(sides, 1);
	assert_string_equal(str(a, "side"), "a");
	assert_string_equal(str(a, "source"), "recording");
	assert_string_equal(str(a, "engine"), "host");
	assert_string_equal(str(a, "numerics_key"), host_key);
	assert_string_equal(str(b, "source"), "live");
	assert_string_equal(str(b, "engine"), "host");
	assert_string_equal(str(b, "numerics_key"), host_key); /* same machine, same engine */
	cJSON_Delete(r);
}

static void test_gemm_option_is_documented_and_checked(void **state)
{
	(void)state;
	NEED_CLI();
	char args[1024], out[1 << 15];
	static const char *const cmds[] = {"run", "dump", "compare"};
	for (int i = 0; i < 3; i++) {
		snprintf(args, sizeof args, "%s --help", cmds[i]);
		assert_int_equal(run(args, out, sizeof out), 0);
		if (!strstr(out, "--gemm") || !strstr(out, "same bits on every CPU") ||
		    !strstr(out, "oneDNN/OpenBLAS"))
			fail_msg("%s --help does not explain --gemm:\n%s", cmds[i], out);
	}
	snprintf(args, sizeof args, "dump --layout ref --checkpoint %s/tiny --tokens 5,17,42 "
		 "--gemm bogus --out %s/bogus.safetensors", dir, dir);
	assert_int_equal(run(args, out, sizeof out), 2);
	assert_non_null(strstr(out, "bogus"));
	assert_non_null(strstr(out, "fixed|host"));
	snprintf(args, sizeof args, "%s/bogus.safetensors", dir);
	assert_int_not_equal(access(args, F_OK), 0);
	snprintf(args, sizeof args, "run --layout ref --checkpoint %s/tiny --tokens 5,17,42 "
		 "--gemm bogus", dir);
	assert_int_equal(run(args, out, sizeof out), 2);
	assert_non_null(strstr(out, "--gemm bogus"));
	snprintf(args, sizeof args, "compare --checkpoint %s/tiny --gemm bogus --quiet", dir);
	assert_int_equal(run(args, out, sizeof out), 2);
	assert_non_null(strstr(out, "bogus"));
}

/* run --json states the engine it ran with */
static void test_run_json_states_engine(void **state)
{
	(void)state;
	NEED_CLI();
	char args[1024], out[1 << 15];
	snprintf(args, sizeof args, "run --layout ref --checkpoint %s/tiny --tokens 5,17,42 "
		 "--max-new-tokens 2 --gemm host --json", dir);
	assert_int_equal(run(args, out, sizeof out), 0);
	/* the JSON object on stdout; stderr (merged here) has the timing line, before or after */
	char *start = strchr(out, '{'), *end = strrchr(out, '}');
	assert_non_null(start);
	assert_non_null(end);
	end[1] = '\0';
	cJSON *j = cJSON_Parse(start);
	assert_non_null(j);
	assert_string_equal(str(j, "gemm_engine"), "host");
	assert_true(!strncmp(str(j, "host_numerics_key"), "host:", 5));
	assert_true(strlen(str(j, "host_fingerprint")) > 0);
	cJSON_Delete(j);
}

/* report check: a changed numerics key is noted (both keys), the verdict is unchanged */
static void test_report_check_notes_numerics_key_change(void **state)
{
	(void)state;
	NEED_CLI();
	char args[1024], out[1 << 15], base[128], cur[128];
	snprintf(base, sizeof base, "%s/base.json", dir);
	snprintf(cur, sizeof cur, "%s/cur_key.json", dir);
	cJSON *rep = load_json(base);
	assert_non_null(rep);
	cJSON *sides = cJSON_GetObjectItemCaseSensitive(
		cJSON_GetObjectItemCaseSensitive(rep, "provenance"), "sides");
	assert_int_equal(cJSON_GetArraySize(sides), 2);
	cJSON *a = cJSON_GetArrayItem(sides, 0);
	char old_key[256];
	snprintf(old_key, sizeof old_key, "%s", str(a, "numerics_key"));
	cJSON_ReplaceItemInObject(a, "numerics_key", cJSON_CreateString("host:test-impl|TestCore"));
	char *text = cJSON_Print(rep);
	assert_int_equal(dsv32_write_file_atomic(cur, text, strlen(text), NULL), DSV32_OK);
	free(text);
	cJSON_Delete(rep);
	snprintf(args, sizeof args, "report check --baseline %s --current %s", base, cur);
	assert_int_equal(run(args, out, sizeof out), 0);
	assert_non_null(strstr(out, "note: numerics keys differ"));
	assert_non_null(strstr(out, "host:test-impl|TestCore"));
	char want[300];
	snprintf(want, sizeof want, "a=%s", old_key);
	assert_non_null(strstr(out, want));
	assert_non_null(strstr(out, "0 regression(s)"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_noise_floor_ratios_are_reported),
		cmocka_unit_test(test_report_check_passes_itself_and_catches_growth),
		cmocka_unit_test(test_report_render_writes_html_and_markdown),
		cmocka_unit_test(test_dump_then_compare_with_itself_is_exact),
		cmocka_unit_test(test_dump_records_its_gemm_engine),
		cmocka_unit_test(test_gemm_option_is_documented_and_checked),
		cmocka_unit_test(test_run_json_states_engine),
		cmocka_unit_test(test_report_check_notes_numerics_key_change),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
