/* test_host_blas_note.c: the host engine's note when OpenBLAS runs kernels far below the CPU
 * (kernels/host_info.h dsv32_host_blas_slow_note_for): given on a pre-AVX2 family with an AVX2
 * CPU, naming the family the CPU can run; never otherwise. The live check runs OpenBLAS of
 * this machine forced to Prescott (OPENBLAS_CORETYPE, read when OpenBLAS loads) through the
 * CLI, where the CPU has AVX2. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kernels/host_info.h"
#include "tests/support/test_common.h"

static void expect_note(const char *core, bool avx2, bool avx512f, bool bf16, const char *fit)
{
	char out[512] = "";
	bool got = dsv32_host_blas_slow_note_for(core, avx2, avx512f, bf16, out, sizeof out);
	if (!fit) {
		if (got)
			fail_msg("core %s, avx2 %d avx512f %d bf16 %d: unexpected note '%s'", core,
				 avx2, avx512f, bf16, out);
		return;
	}
	if (!got)
		fail_msg("core %s, avx2 %d avx512f %d bf16 %d: no note", core, avx2, avx512f, bf16);
	char want[64];
	snprintf(want, sizeof want, "OPENBLAS_CORETYPE=%s ", fit);
	if (!strstr(out, want) || !strstr(out, core))
		fail_msg("note '%s' lacks '%s' or the core %s", out, want, core);
}

static void test_note_names_the_family_the_cpu_runs(void **state)
{
	(void)state;
	expect_note("Prescott", true, true, true, "Cooperlake");
	expect_note("prescott", true, true, false, "SkylakeX");
	expect_note("Sandybridge", true, false, false, "Haswell");
	expect_note("Nehalem", true, true, true, "Cooperlake");
}

static void test_no_note_where_openblas_fits(void **state)
{
	(void)state;
	expect_note("SkylakeX", true, true, true, NULL);
	expect_note("Cooperlake", true, true, true, NULL);
	expect_note("Haswell", true, false, false, NULL);
	expect_note("Zen", true, false, false, NULL);
	expect_note("Prescott", false, false, false, NULL); /* an SSE-only CPU: Prescott fits */
	expect_note(NULL, true, true, true, NULL);
}

/* Through the CLI: `run --gemm host` notes it under OPENBLAS_CORETYPE=Prescott on an AVX2 CPU,
 * and `run` under the fixed engine never does. */
static void test_cli_run_gives_the_note_for_the_host_engine_only(void **state)
{
	(void)state;
	const char *cli = getenv("DSV32_CLI");
	TC_NEED_CLI(cli);
	if (!__builtin_cpu_supports("avx2"))
		skip();
	const char *src = getenv("DSV32_SOURCE_DIR");
	char args[2048], out[1 << 14];
	snprintf(args, sizeof args,
		 "run --layout hf --checkpoint %s/fixtures/golden/ref_tiny/hf --tokens 5,17,42 "
		 "--max-new-tokens 1 --gemm host",
		 src ? src : DSV32_SOURCE_DIR);
	setenv("OPENBLAS_CORETYPE", "Prescott", 1);
	int rc = tc_run_cli(cli, args, out, sizeof out);
	assert_int_equal(rc, 0);
	if (!strstr(out, "OPENBLAS_CORETYPE="))
		fail_msg("run --gemm host under OpenBLAS Prescott: no note in '%s'", out);
	snprintf(args + strlen(args) - strlen("--gemm host"), 64, "--gemm fixed");
	rc = tc_run_cli(cli, args, out, sizeof out);
	unsetenv("OPENBLAS_CORETYPE");
	assert_int_equal(rc, 0);
	if (strstr(out, "OPENBLAS_CORETYPE="))
		fail_msg("run --gemm fixed gave the host engine's note: '%s'", out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_note_names_the_family_the_cpu_runs),
		cmocka_unit_test(test_no_note_where_openblas_fits),
		cmocka_unit_test(test_cli_run_gives_the_note_for_the_host_engine_only),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
