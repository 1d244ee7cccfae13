/* test_cli_fixture.c: `dsv32-parity fixture` and `inspect` run as a user runs them (the binary
 * named by $DSV32_CLI; skipped without it): exit codes 0 / 1 / 2 and their messages. */
#include <cjson/cJSON.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/fsutil.h"
#include "tests/support/test_common.h"

typedef struct {
	const char *cli;
	char root[256];
	char out[1 << 16]; /* stdout + stderr of the last command */
} ctx;

static int setup(void **state)
{
	static ctx c;
	c.cli = tc_cli_or_skip_all();
	snprintf(c.root, sizeof c.root, "/tmp/dsv32_test_cli.XXXXXX");
	if (!mkdtemp(c.root))
		return -1;
	*state = &c;
	return 0;
}

static int teardown(void **state)
{
	ctx *c = *state;
	dsv32_remove_tree(c->root, NULL);
	return 0;
}

/* Run "<cli> <args>" through the shell; capture output into c->out; return the exit code. */
static int run(ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int run(ctx *c, const char *fmt, ...)
{
	char args[2048], cmd[4096], log[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(args, sizeof args, fmt, ap);
	va_end(ap);
	snprintf(log, sizeof log, "%s/log.txt", c->root);
	snprintf(cmd, sizeof cmd, "'%s' %s >'%s' 2>&1", c->cli, args, log);
	int st = system(cmd);
	FILE *f = fopen(log, "rb");
	size_t n = f ? fread(c->out, 1, sizeof c->out - 1, f) : 0;
	c->out[n] = '\0';
	if (f)
		fclose(f);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

#define EXPECT(c, code, ...)                                                          \
	do {                                                                          \
		int rc_ = run((c), __VA_ARGS__);                                      \
		if (rc_ != (code))                                                    \
			fail_msg("exit %d, expected %d; output:\n%s", rc_, (code), (c)->out); \
	} while (0)

static void test_fixture_then_inspect_succeeds(void **state)
{
	ctx *c = *state;
	EXPECT(c, 0, "fixture --preset tiny --out '%s/tiny'", c->root);
	EXPECT(c, 0, "inspect '%s/tiny'", c->root);
	assert_non_null(strstr(c->out, "model.layers.1.mlp.experts.15.down_proj.weight"));
	assert_non_null(strstr(c->out, "total: 154 tensors"));
	assert_non_null(strstr(c->out, "0 missing, 0 unexpected, 0 mismatched"));
	EXPECT(c, 0, "inspect --json '%s/tiny/model.safetensors'", c->root);
	cJSON *o = cJSON_Parse(c->out);
	assert_non_null(o);
	assert_int_equal((int)cJSON_GetObjectItem(o, "total_tensors")->valuedouble, 154);
	cJSON *cov = cJSON_GetObjectItem(o, "coverage");
	assert_true(cJSON_IsTrue(cJSON_GetObjectItem(cov, "ok")));
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(o, "tensors")), 154);
	cJSON_Delete(o);
}

static void test_fixture_fp8_sharded_inspects_clean(void **state)
{
	ctx *c = *state;
	EXPECT(c, 0, "fixture --preset tiny --dtype fp8 --seed 7 --max-shard-size 3MB --out '%s/fp8'",
	       c->root);
	EXPECT(c, 0, "inspect '%s/fp8'", c->root);
	assert_non_null(strstr(c->out, "F8_E4M3"));
	assert_non_null(strstr(c->out, "weight_scale_inv"));
	assert_non_null(strstr(c->out, "(fp8): 280 expected, 0 missing"));
	char idx[400];
	snprintf(idx, sizeof idx, "%s/fp8/model.safetensors.index.json", c->root);
	assert_true(dsv32_path_exists(idx));
}

static void test_usage_errors_exit_2(void **state)
{
	ctx *c = *state;
	EXPECT(c, 2, "fixture --preset huge --out '%s/huge'", c->root);
	assert_non_null(strstr(c->out, "preset 'huge': unknown"));
	EXPECT(c, 2, "fixture --preset tiny");
	assert_non_null(strstr(c->out, "--out is required"));
	EXPECT(c, 2, "fixture --preset tiny --dtype fp16 --out '%s/x'", c->root);
	assert_non_null(strstr(c->out, "bf16|fp8"));
	EXPECT(c, 2, "fixture --preset tiny --max-shard-size lots --out '%s/x'", c->root);
	EXPECT(c, 2, "fixture --preset tiny --bogus --out '%s/x'", c->root);
	assert_non_null(strstr(c->out, "unknown option '--bogus'"));
	EXPECT(c, 0, "fixture --help");
	assert_non_null(strstr(c->out, "--preset"));
	assert_non_null(strstr(c->out, "--max-shard-size"));
	EXPECT(c, 0, "inspect --help");
	EXPECT(c, 2, "inspect");
	EXPECT(c, 2, "inspect '%s/does-not-exist'", c->root);
	/* an existing output directory is refused, --force replaces it */
	EXPECT(c, 0, "fixture --preset tiny --out '%s/again'", c->root);
	EXPECT(c, 2, "fixture --preset tiny --out '%s/again'", c->root);
	assert_non_null(strstr(c->out, "already exists"));
	EXPECT(c, 0, "fixture --preset tiny --seed=3 --force --out '%s/again'", c->root);
}

/* --config FILE: a preset's own config.json gives the preset's bytes; a changed shape is
 * written as given; one of --preset / --config, never both; the config may lie in --out. */
static void test_fixture_from_a_config_file(void **state)
{
	ctx *c = *state;
	EXPECT(c, 0, "fixture --preset tiny --dtype fp8 --out '%s/p'", c->root);
	EXPECT(c, 0, "fixture --config '%s/p/config.json' --dtype fp8 --out '%s/q' --json -",
	       c->root, c->root);
	assert_non_null(strstr(c->out, "\"config\":"));
	char a[400], b[400];
	snprintf(a, sizeof a, "%s/p/model.safetensors", c->root);
	snprintf(b, sizeof b, "%s/q/model.safetensors", c->root);
	char *ta = NULL, *tb = NULL;
	size_t la, lb;
	assert_int_equal(dsv32_read_file(a, 1u << 26, &ta, &la, NULL), DSV32_OK);
	assert_int_equal(dsv32_read_file(b, 1u << 26, &tb, &lb, NULL), DSV32_OK);
	assert_true(la == lb && memcmp(ta, tb, la) == 0);
	free(ta);
	free(tb);
	/* --json states the bytes written (the files' sizes) and the seconds taken */
	const char *js = strstr(c->out, "{\"ok\"");
	assert_non_null(js); /* stdout and stderr are captured together */
	cJSON *j = cJSON_Parse(js);
	assert_non_null(j);
	struct stat cfg;
	snprintf(a, sizeof a, "%s/q/config.json", c->root);
	assert_int_equal(stat(a, &cfg), 0);
	assert_true(cJSON_GetNumberValue(cJSON_GetObjectItem(j, "bytes")) ==
		    (double)(lb + (size_t)cfg.st_size));
	assert_true(cJSON_GetNumberValue(cJSON_GetObjectItem(j, "seconds")) >= 0.0);
	cJSON_Delete(j);
	EXPECT(c, 0, "fixture --config '%s/q/config.json' --force --out '%s/q'", c->root, c->root);
	EXPECT(c, 2, "fixture --preset tiny --config '%s/p/config.json' --out '%s/r'", c->root,
	       c->root);
	assert_non_null(strstr(c->out, "one of --preset NAME or --config FILE"));
	EXPECT(c, 2, "fixture --out '%s/r'", c->root);
	EXPECT(c, 2, "fixture --config '%s/none.json' --out '%s/r'", c->root, c->root);
	assert_non_null(strstr(c->out, "none.json"));
	snprintf(a, sizeof a, "%s/r", c->root);
	assert_false(dsv32_path_exists(a));
}

static void test_inspect_truncated_file_exits_2(void **state)
{
	ctx *c = *state;
	char src[400], dst[400];
	EXPECT(c, 0, "fixture --preset tiny --out '%s/trunc_src'", c->root);
	snprintf(src, sizeof src, "%s/trunc_src/model.safetensors", c->root);
	snprintf(dst, sizeof dst, "%s/truncated.safetensors", c->root);
	char *buf = NULL;
	size_t len;
	assert_int_equal(dsv32_read_file(src, (size_t)1 << 30, &buf, &len, NULL), DSV32_OK);
	FILE *f = fopen(dst, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(buf, 1, len / 2, f), len / 2);
	fclose(f);
	free(buf);
	EXPECT(c, 2, "inspect '%s'", dst);
	assert_non_null(strstr(c->out, "error"));
}

static void test_inspect_reports_coverage_mismatch_exit_1(void **state)
{
	ctx *c = *state;
	char cfg[400];
	EXPECT(c, 0, "fixture --preset tiny --out '%s/mism'", c->root);
	/* claim layer 1 is dense: its MLP tensors are missing and its experts unexpected */
	snprintf(cfg, sizeof cfg, "%s/mism/config.json", c->root);
	char *text = NULL;
	size_t len;
	assert_int_equal(dsv32_read_file(cfg, 1 << 20, &text, &len, NULL), DSV32_OK);
	cJSON *o = cJSON_Parse(text);
	free(text);
	cJSON_ReplaceItemInObject(o, "first_k_dense_replace", cJSON_CreateNumber(2));
	text = cJSON_Print(o);
	cJSON_Delete(o);
	assert_int_equal(dsv32_write_file_atomic(cfg, text, strlen(text), NULL), DSV32_OK);
	free(text);
	EXPECT(c, 1, "inspect '%s/mism'", c->root);
	assert_non_null(strstr(c->out, "missing: model.layers.1.mlp.gate_proj.weight"));
	assert_non_null(strstr(c->out, "unexpected: model.layers.1.mlp.experts.0.down_proj.weight"));
	assert_non_null(strstr(c->out, "MISMATCH"));
	EXPECT(c, 1, "inspect --json '%s/mism'", c->root);
	EXPECT(c, 0, "inspect --no-coverage '%s/mism'", c->root);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fixture_then_inspect_succeeds),
		cmocka_unit_test(test_fixture_fp8_sharded_inspects_clean),
		cmocka_unit_test(test_usage_errors_exit_2),
		cmocka_unit_test(test_fixture_from_a_config_file),
		cmocka_unit_test(test_inspect_truncated_file_exits_2),
		cmocka_unit_test(test_inspect_reports_coverage_mismatch_exit_1),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
