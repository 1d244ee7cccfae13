/* test_cublas_api.c: cuBLAS is opened by a CUDA backend, never linked (kernels/cublas_api.h).
 *  - a process of this build starts without libcublas mapped (this executable links libdsv32
 *    as the CLI does), so CPU runs do not pay its ~216 MB and ~70 ms at start;
 *  - dsv32_cublas_open finds the library of the toolkit the build used and resolves every
 *    function a CUDA backend calls; the library is then mapped, and dsv32_cublas_close clears
 *    the table.
 * Skipped (77) in a build without CUDA. Runs on machines without a GPU: loading cuBLAS and
 * resolving its symbols needs no device. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "kernels/cublas_api.h"

#ifdef DSV32_HAVE_CUDA
/* Whether a mapping of this process names a file containing needle. */
static bool mapped(const char *needle)
{
	FILE *f = fopen("/proc/self/maps", "r");
	assert_non_null(f);
	char line[4096];
	bool hit = false;
	while (!hit && fgets(line, sizeof line, f))
		hit = strstr(line, needle) != NULL;
	fclose(f);
	return hit;
}

static void test_cublas_is_not_loaded_at_start(void **state)
{
	(void)state;
	if (mapped("libcublas"))
		fail_msg("libcublas is mapped before any CUDA backend was created: it is linked again");
}

static void test_open_resolves_every_function(void **state)
{
	(void)state;
	dsv32_cublas_api api;
	dsv32_error err = {0};
	if (dsv32_cublas_open(&api, &err) != DSV32_OK)
		fail_msg("dsv32_cublas_open: %s", err.what);
	assert_non_null(api.lib);
	assert_non_null(api.create);
	assert_non_null(api.destroy);
	assert_non_null(api.set_stream);
	assert_non_null(api.set_math_mode);
	assert_non_null(api.gemm_strided_batched_ex);
	assert_true(mapped("libcublas.so"));
	dsv32_cublas_close(&api);
	assert_null(api.lib);
	assert_null(api.gemm_strided_batched_ex);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cublas_is_not_loaded_at_start),
		cmocka_unit_test(test_open_resolves_every_function),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
#else
int main(void)
{
	printf("# built without CUDA: cuBLAS is not used\n");
	return 77;
}
#endif
