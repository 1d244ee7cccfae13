/* test_cli_shards.c: `compare` on reference shards: the hf layout reads them through the
 * converters' name map, so ref vs hf on shards reports exactly what it reports on the dense HF
 * checkpoint, and no temporary files are left. */
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
			 "TMPDIR=%s %s compare --checkpoint %s/%s --a ref:tp=2 --b hf --decode-steps 1 "
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hf_on_shards_equals_hf_on_dense),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
