/* test_common.c: helpers shared by the tests (test_common.h). */
#include "tests/support/test_common.h"

#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/fsutil.h"
#include "kernels/host_info.h"
#include "fixtures/generator.h"

#ifndef DSV32_SOURCE_DIR
#define DSV32_SOURCE_DIR "."
#endif

int tc_setup_cpu_backend(void **state)
{
	dsv32_backend *be = NULL;
	if (dsv32_backend_create(&be, DSV32_DEV_CPU, NULL) != DSV32_OK)
		return -1;
	*state = be;
	return 0;
}

int tc_setup_cuda_backend(void **state)
{
	dsv32_backend *be = NULL;
	*state = NULL;
	dsv32_error err = {0};
	if (dsv32_cuda_available() && dsv32_backend_create(&be, DSV32_DEV_CUDA, &err) == DSV32_OK)
		*state = be;
	const char *req = getenv("DSV32_REQUIRE_GPU"); /* set by tests/gpu/run */
	if (!*state && req && req[0] == '1') {
		fprintf(stderr, "DSV32_REQUIRE_GPU=1 but no CUDA backend: %s\n",
			err.what[0] ? err.what : "no device visible or no CUDA in this build");
		return -1;
	}
	return 0;
}

int tc_teardown_backend(void **state)
{
	dsv32_backend_destroy(*state);
	return 0;
}

void tc_skip_without_backend(void **state)
{
	if (!*state)
		skip();
}

dsv32_backend *tc_cuda_backend_or_null(void)
{
	dsv32_backend *be = NULL;
	dsv32_error err = {0};
	if (dsv32_cuda_available() && dsv32_backend_create(&be, DSV32_DEV_CUDA, &err) == DSV32_OK)
		return be;
	const char *req = getenv("DSV32_REQUIRE_GPU"); /* set by tests/gpu/run */
	if (req && req[0] == '1')
		fail_msg("DSV32_REQUIRE_GPU=1 but no CUDA backend: %s",
			 err.what[0] ? err.what : "no device visible or no CUDA in this build");
	return NULL;
}

int tc_setup_tmpdir(void **state)
{
	char tmpl[] = "/tmp/dsv32_test_XXXXXX";
	char *d = mkdtemp(tmpl);
	if (!d)
		return -1;
	*state = strdup(d);
	return *state ? 0 : -1;
}

int tc_teardown_tmpdir(void **state)
{
	dsv32_status rc = dsv32_remove_tree(*state, NULL);
	int gone = !dsv32_path_exists(*state);
	free(*state);
	return rc == DSV32_OK && gone ? 0 : -1;
}

size_t tc_count_dir_entries(const char *dir)
{
	DIR *d = opendir(dir);
	assert_non_null(d);
	size_t n = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

const char *tc_golden_dir(void)
{
	static char dir[512];
	const char *src = getenv("DSV32_SOURCE_DIR");
	snprintf(dir, sizeof dir, "%s/fixtures/golden/ref_tiny/hf/config.json",
		 src ? src : DSV32_SOURCE_DIR);
	if (access(dir, R_OK) == 0) {
		snprintf(dir, sizeof dir, "%s/fixtures/golden/ref_tiny", src ? src : DSV32_SOURCE_DIR);
		return dir;
	}
	if (access("/work/shared/golden/ref_tiny/hf/config.json", R_OK) == 0)
		return "/work/shared/golden/ref_tiny";
	return NULL;
}

bool tc_golden_path(char *buf, size_t len, const char *rel)
{
	const char *g = tc_golden_dir();
	if (!g)
		return false;
	snprintf(buf, len, "%s/%s", g, rel);
	return access(buf, R_OK) == 0;
}

int tc_run_capture(const char *cmd, char *out, size_t len)
{
	out[0] = '\0';
	FILE *p = popen(cmd, "r");
	if (!p)
		return -1;
	size_t n = fread(out, 1, len - 1, p);
	out[n] = '\0';
	int st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int tc_run_cli(const char *cli, const char *args, char *out, size_t len)
{
	char cmd[8192];
	snprintf(cmd, sizeof cmd, "%s %s 2>&1", cli, args);
	return tc_run_capture(cmd, out, len);
}

const char *tc_cli_or_skip_all(void)
{
	const char *cli = getenv("DSV32_CLI");
	if (!cli || access(cli, X_OK) != 0) {
		fprintf(stderr, "DSV32_CLI not set or not executable: skipped\n");
		exit(77);
	}
	return cli;
}

int64_t tc_argmax_f32(const float *v, int64_t n)
{
	int64_t best = 0;
	for (int64_t i = 1; i < n; i++)
		if (v[i] > v[best])
			best = i;
	return best;
}

cJSON *tc_load_json(const char *path)
{
	char *text = NULL;
	size_t len;
	if (dsv32_read_file(path, 64u << 20, &text, &len, NULL) != DSV32_OK)
		return NULL;
	cJSON *j = cJSON_Parse(text);
	free(text);
	return j;
}

int tc_remove_dir(const char *dir)
{
	if (dir[0])
		dsv32_remove_tree(dir, NULL);
	return 0;
}

int tc_fixture_tmp(char *dir, size_t dir_len, char *ckpt, size_t ckpt_len, const char *tag,
		   const char *preset, int dtype, uint64_t seed, const char *name)
{
	snprintf(dir, dir_len, "/tmp/dsv32_%s_XXXXXX", tag);
	if (!mkdtemp(dir)) {
		dir[0] = '\0';
		fprintf(stderr, "fixture: cannot create a temporary directory\n");
		return -1;
	}
	snprintf(ckpt, ckpt_len, "%s/%s", dir, name);
	dsv32_error err = {0};
	if (dsv32_fixture_write(preset, dtype ? DSV32_WDTYPE_FP8 : DSV32_WDTYPE_BF16, seed, ckpt, 0,
				false, &err) != DSV32_OK) {
		fprintf(stderr, "fixture: %s\n", err.what);
		return -1;
	}
	return 0;
}

int tc_fixture_tiny_pair(char *dir, size_t dir_len, char *ckpt, size_t ckpt_len, char *ckpt8,
			 size_t ckpt8_len, const char *tag)
{
	if (tc_fixture_tmp(dir, dir_len, ckpt, ckpt_len, tag, "tiny", 0, 5, "tiny"))
		return -1;
	snprintf(ckpt8, ckpt8_len, "%s/tiny-fp8", dir);
	dsv32_error err = {0};
	if (dsv32_fixture_write("tiny", DSV32_WDTYPE_FP8, 3, ckpt8, 0, false, &err) != DSV32_OK) {
		fprintf(stderr, "fixture: %s\n", err.what);
		return -1;
	}
	return 0;
}

int tc_gemm_engine(void)
{
	const char *e = getenv("DSV32_TEST_GEMM");
	return e && !strcmp(e, "host") ? DSV32_GEMM_HOST : DSV32_GEMM_FIXED;
}

void tc_numerics_key(char *key, size_t len)
{
	static bool printed; /* test-only: one line per process */
	dsv32_host_fingerprint f;
	dsv32_host_fingerprint_get(&f, tc_gemm_engine());
	dsv32_host_numerics_key(&f, key, len);
	if (!printed) {
		char line[900];
		dsv32_host_fingerprint_line(&f, line, sizeof line);
		printf("# host: %s\n# numerics key: %s\n", line, key);
		printed = true;
	}
}

bool tc_golden_measuring(void)
{
	const char *e = getenv("DSV32_GOLDEN_MEASURE");
	return e && e[0] == '1';
}

int tc_cli_fixture_dir(const char **cli, const char *tag, char *dir, size_t len,
		       const char *const *fixtures)
{
	dir[0] = '\0';
	*cli = getenv("DSV32_CLI");
	if (!*cli || access(*cli, X_OK) != 0) {
		*cli = NULL;
		return 0;
	}
	snprintf(dir, len, "/tmp/dsv32_%s_XXXXXX", tag);
	if (!mkdtemp(dir)) {
		dir[0] = '\0';
		return -1;
	}
	for (int i = 0; fixtures[i]; i += 2) {
		char args[512], out[4096];
		snprintf(args, sizeof args, "fixture --preset tiny --out %s/%s %s", dir, fixtures[i],
			 fixtures[i + 1]);
		if (tc_run_cli(*cli, args, out, sizeof out) != 0)
			return -1;
	}
	return 0;
}
