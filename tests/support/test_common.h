/* test_common.h: helpers every kind of test repeats: cmocka group fixtures that hold a backend
 * in *state, a fresh temporary directory, the golden ref_tiny folder, running a command or the
 * CLI with its output captured, and reading a JSON file. Tests only (the cmocka helpers fail or
 * skip the running test). */
#ifndef DSV32_TESTS_TEST_COMMON_H
#define DSV32_TESTS_TEST_COMMON_H

#include <unistd.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "kernels/backend.h"

/* ---- backends in *state (cmocka group setup / teardown) ---- */

/* *state = a new CPU backend; -1 when it cannot be created. */
int tc_setup_cpu_backend(void **state);
/* *state = a new CUDA backend, or NULL when none can be created (the tests then skip through
 * tc_skip_without_backend); -1 (with the reason on stderr) when there is none and
 * $DSV32_REQUIRE_GPU is "1" (set by tests/gpu/run). */
int tc_setup_cuda_backend(void **state);
/* Destroys the backend in *state (NULL is fine). Always 0. */
int tc_teardown_backend(void **state);
/* skip() the running test when *state holds no backend. */
void tc_skip_without_backend(void **state);
/* A new CUDA backend, or NULL when no device is visible or none can be created (the caller then
 * skip()s); inside a test, fails it instead when $DSV32_REQUIRE_GPU is "1". */
dsv32_backend *tc_cuda_backend_or_null(void);

/* ---- temporary directories (cmocka setup / teardown) ---- */

/* *state = malloc'ed path of a fresh directory "/tmp/dsv32_test_XXXXXX"; -1 on failure. */
int tc_setup_tmpdir(void **state);
/* rm -rf *state and free it; -1 when the removal failed or the directory is still there. */
int tc_teardown_tmpdir(void **state);
/* The entries of dir other than "." and ".." (fails the test when dir cannot be opened). */
size_t tc_count_dir_entries(const char *dir);

/* ---- the golden ref_tiny folder ---- */

/* $DSV32_SOURCE_DIR (else the build's source dir)/fixtures/golden/ref_tiny when it holds
 * hf/config.json, else /work/shared/golden/ref_tiny when that does; NULL if neither. */
const char *tc_golden_dir(void);
/* tc_golden_dir() + "/" + rel into buf; false (skip) when there is no golden folder or the file
 * is not readable. */
bool tc_golden_path(char *buf, size_t len, const char *rel);

/* ---- running commands ---- */

/* Run cmd through the shell (popen); up to len - 1 bytes of its stdout into out (NUL-terminated;
 * redirect stderr in cmd to capture it too). Returns the exit code, or -1 when popen failed or
 * the command did not exit normally. */
int tc_run_capture(const char *cmd, char *out, size_t len);
/* Run "<cli> <args> 2>&1" (cli unquoted) with tc_run_capture. */
int tc_run_cli(const char *cli, const char *args, char *out, size_t len);
/* $DSV32_CLI when it names an executable; otherwise says so on stderr and exits 77 (the whole
 * test executable is skipped). */
const char *tc_cli_or_skip_all(void);
/* Inside a test: skip it when the CLI (env DSV32_CLI) is not built. */
#define TC_NEED_CLI(cli)                              \
	do {                                          \
		if (!(cli) || access((cli), X_OK) != 0) \
			skip();                       \
	} while (0)
/* Remove a test's temporary directory (dir[0] == 0: nothing was made); for group teardowns. */
int tc_remove_dir(const char *dir);
/* A preset fixture in a fresh temporary directory: dir (at least 32 bytes) receives
 * "/tmp/dsv32_<tag>_XXXXXX", ckpt "<dir>/<name>". dtype 0 = bf16, 1 = fp8. Returns 0, or -1
 * after naming the failure on stderr; for group setups. */
int tc_fixture_tmp(char *dir, size_t dir_len, char *ckpt, size_t ckpt_len, const char *tag,
		   const char *preset, int dtype, uint64_t seed, const char *name);
/* tc_fixture_tmp of the tiny preset in bf16 (seed 5) as <dir>/tiny, and in fp8 (seed 3) as
 * <dir>/tiny-fp8 (ckpt8); for tests that run both weight dtypes. */
int tc_fixture_tiny_pair(char *dir, size_t dir_len, char *ckpt, size_t ckpt_len, char *ckpt8,
			 size_t ckpt8_len, const char *tag);

/* ---- values ---- */

/* The index of the largest of v[0..n) (the first one on ties; NaN entries are never chosen
 * over an earlier entry). */
int64_t tc_argmax_f32(const float *v, int64_t n);

/* ---- files ---- */

/* Parse the JSON file at path (at most 64 MiB); NULL when it cannot be read or parsed. */
cJSON *tc_load_json(const char *path);

/* The GEMM engine the model tests open their models with (kernels/gemm.h "Engines"):
 * DSV32_TEST_GEMM=host selects the host engine (CI runs the golden suites so under emulated
 * CPUs), anything else the fixed engine, the default. */
int tc_gemm_engine(void);
/* The live numerics key (kernels/host_info.h) of tc_gemm_engine() into key; prints the
 * fingerprint line once per process ("# host: ..."). */
void tc_numerics_key(char *key, size_t len);

/* DSV32_GOLDEN_MEASURE=1: the golden suites print every figure and assert only structure,
 * not budgets (for re-measuring budgets: docs/budgets.md "Portable golden tiers"). */
bool tc_golden_measuring(void);

/* Group setup of the CLI tests: *cli = $DSV32_CLI (NULL when absent: the tests then skip and
 * dir stays ""), a fresh directory /tmp/dsv32_<tag>_XXXXXX in dir (len >= 64), and
 * `fixture --preset tiny --out <dir>/<sub> [extra]` run for each NULL-terminated pair of
 * subdirectory and extra arguments in fixtures. 0 on success, -1 on failure. */
int tc_cli_fixture_dir(const char **cli, const char *tag, char *dir, size_t len,
		       const char *const *fixtures);

#endif
