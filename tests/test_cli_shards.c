/* test_cli_shards.c: the CLI on reference shards. `compare`: the hf layout reads them through
 * the converters' name map, so ref vs hf on shards reports exactly what it reports on the dense
 * HF checkpoint, and no temporary files are left. `inspect`: a shards directory is listed as the
 * dense HF checkpoint it makes; its content hash equals the hash of what `convert ref-to-hf`
 * writes from it (an independent path through the converter), its coverage is checked, and a
 * missing rank file is an error naming it. */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <math.h>
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

static int sh(const char *cmd)
{
	int st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

#define load_json tc_load_json

static int count_tmp_entries(const char *dir)
{
	DIR *d = opendir(dir);
	int n = 0;
	struct dirent *e;
	while (d && (e = readdir(d)))
		n += strncmp(e->d_name, "dsv32-hf-", 9) == 0;
	if (d)
		closedir(d);
	return n;
}

static void test_hf_on_shards_equals_hf_on_dense(void **state)
{
	(void)state;
	const char *cli = getenv("DSV32_CLI");
	if (!cli || access(cli, X_OK) != 0)
		skip();
	char dir[] = "/tmp/dsv32_shards_XXXXXX", cmd[2048], tmpdir[64];
	assert_non_null(mkdtemp(dir));
	snprintf(tmpdir, sizeof tmpdir, "%s/tmp", dir);
	assert_int_equal(dsv32_mkdirs(tmpdir, NULL), DSV32_OK);
	snprintf(cmd, sizeof cmd,
		 "%s fixture --preset tiny --out %s/tiny >/dev/null && "
		 "%s convert hf-to-ref --checkpoint %s/tiny --mp 2 --out %s/mp2 >/dev/null 2>&1",
		 cli, dir, cli, dir, dir);
	assert_int_equal(sh(cmd), 0);
	const char *ckpts[2] = {"tiny", "mp2"};
	for (int i = 0; i < 2; i++) {
		snprintf(cmd, sizeof cmd,
			 "TMPDIR=%s %s compare --checkpoint %s/%s --a ref:mp=2 --b hf --decode-steps 1 "
			 "--quiet --json %s/%s.json", tmpdir, cli, dir, ckpts[i], dir, ckpts[i]);
		int rc = sh(cmd);
		assert_true(rc == 0 || rc == 1);
	}
	assert_int_equal(count_tmp_entries(tmpdir), 0); /* the merged checkpoint is gone */
	char p[2][128];
	cJSON *r[2];
	for (int i = 0; i < 2; i++) {
		snprintf(p[i], sizeof p[i], "%s/%s.json", dir, ckpts[i]);
		r[i] = load_json(p[i]);
		assert_non_null(r[i]);
	}
	const cJSON *ta = cJSON_GetObjectItemCaseSensitive(r[0], "taps");
	const cJSON *tb = cJSON_GetObjectItemCaseSensitive(r[1], "taps");
	assert_int_equal(cJSON_GetArraySize(ta), cJSON_GetArraySize(tb));
	assert_true(cJSON_GetArraySize(ta) > 100);
	for (int i = 0; i < cJSON_GetArraySize(ta); i++) {
		const cJSON *x = cJSON_GetArrayItem(ta, i), *y = cJSON_GetArrayItem(tb, i);
		assert_string_equal(cJSON_GetObjectItemCaseSensitive(x, "name")->valuestring,
				    cJSON_GetObjectItemCaseSensitive(y, "name")->valuestring);
		const cJSON *mx = cJSON_GetObjectItemCaseSensitive(x, "metrics");
		const cJSON *my = cJSON_GetObjectItemCaseSensitive(y, "metrics");
		if (mx && my)
			assert_true(cJSON_GetObjectItemCaseSensitive(mx, "max_abs")->valuedouble ==
				    cJSON_GetObjectItemCaseSensitive(my, "max_abs")->valuedouble);
	}
	cJSON_Delete(r[0]);
	cJSON_Delete(r[1]);
	assert_int_equal(dsv32_remove_tree(dir, NULL), DSV32_OK);
}

/* The "content sha256: HEX" of an inspect run's text output, into hex. */
static bool inspect_hash(const char *cli, const char *path, char hex[65])
{
	char args[600], out[1 << 16];
	snprintf(args, sizeof args, "inspect %s --hash", path);
	if (tc_run_cli(cli, args, out, sizeof out) != 0)
		return false;
	const char *p = strstr(out, "content sha256: ");
	return p && sscanf(p, "content sha256: %64[0-9a-f]", hex) == 1 && strlen(hex) == 64;
}

static void test_inspect_shards_dir(void **state)
{
	(void)state;
	const char *cli = getenv("DSV32_CLI");
	TC_NEED_CLI(cli);
	char dir[] = "/tmp/dsv32_inspect_shards_XXXXXX", cmd[2048], out[1 << 16], path[256];
	assert_non_null(mkdtemp(dir));
	snprintf(cmd, sizeof cmd,
		 "%s fixture --preset tiny --out %s/tiny >/dev/null && "
		 "%s convert hf-to-ref --checkpoint %s/tiny --mp 2 --out %s/mp2 >/dev/null 2>&1 && "
		 "%s convert ref-to-hf --shards %s/mp2 --dtype keep --out %s/back >/dev/null 2>&1",
		 cli, dir, cli, dir, dir, cli, dir, dir);
	assert_int_equal(sh(cmd), 0);
	snprintf(cmd, sizeof cmd, "inspect %s/mp2", dir);
	int rc = tc_run_cli(cli, cmd, out, sizeof out);
	if (rc != 0)
		fprintf(stderr, "%s\n", out);
	assert_int_equal(rc, 0);
	assert_non_null(strstr(out, "(mp2)"));
	assert_non_null(strstr(out, "model.embed_tokens.weight")); /* HF names */
	assert_non_null(strstr(out, ": OK"));                        /* coverage checked */
	char h_shards[65], h_dense[65];
	snprintf(path, sizeof path, "%s/mp2", dir);
	assert_true(inspect_hash(cli, path, h_shards));
	snprintf(path, sizeof path, "%s/back", dir);
	assert_true(inspect_hash(cli, path, h_dense));
	assert_string_equal(h_shards, h_dense);
	snprintf(path, sizeof path, "%s/tiny", dir); /* and the round trip is the original */
	assert_true(inspect_hash(cli, path, h_dense));
	assert_string_equal(h_shards, h_dense);
	snprintf(cmd, sizeof cmd, "inspect %s/mp2 --json=%s/i.json", dir, dir);
	assert_int_equal(tc_run_cli(cli, cmd, out, sizeof out), 0);
	snprintf(path, sizeof path, "%s/i.json", dir);
	cJSON *j = load_json(path);
	assert_non_null(j);
	const cJSON *sh2 = cJSON_GetObjectItemCaseSensitive(j, "shards");
	assert_int_equal(cJSON_GetObjectItemCaseSensitive(sh2, "world_size")->valueint, 2);
	const cJSON *t0 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "tensors"), 0);
	assert_non_null(cJSON_GetObjectItemCaseSensitive(t0, "split"));
	cJSON_Delete(j);
	/* a rank file gone: an error naming it, exit 2 */
	snprintf(cmd, sizeof cmd, "rm %s/mp2/model1-mp2.safetensors", dir);
	assert_int_equal(sh(cmd), 0);
	snprintf(cmd, sizeof cmd, "inspect %s/mp2", dir);
	assert_int_equal(tc_run_cli(cli, cmd, out, sizeof out), 2);
	assert_non_null(strstr(out, "model1-mp2"));
	/* --config only means something for shards */
	snprintf(cmd, sizeof cmd, "inspect %s/tiny --config %s/tiny/config.json", dir, dir);
	assert_int_equal(tc_run_cli(cli, cmd, out, sizeof out), 2);
	assert_non_null(strstr(out, "--config"));
	assert_int_equal(tc_remove_dir(dir), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hf_on_shards_equals_hf_on_dense),
		cmocka_unit_test(test_inspect_shards_dir),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
