/* test_hadamard.c: the Walsh-Hadamard transform (kernels/hadamard.h) against a double oracle
 * (x · H_d · d^-0.5 with the Sylvester matrix built from its definition), the twice-applied
 * identity on small integers, and the GPU twin. */
#include "tests/support/test_util.h"

#include <math.h>
#include <stdlib.h>

#include "kernels/hadamard.h"

/* Sylvester H[i][j] = (-1)^popcount(i & j). */
static int h_entry(int64_t i, int64_t j)
{
	return __builtin_popcountll((unsigned long long)(i & j)) % 2 ? -1 : 1;
}

static void test_hadamard_matches_oracle(void **state)
{
	dsv32_backend *be = *state;
	tu_rng r;
	r = tu_rng_seed(21);
	int64_t dims[3] = {1, 16, 128};
	for (int k = 0; k < 3; k++) {
		int64_t d = dims[k], s[2] = {5, d};
		dsv32_tensor x = tu_host(DSV32_BF16, 2, s), y = tu_host(DSV32_BF16, 2, s);
		tu_fill_normal(&x, &r, 1.0);
		double *want = malloc(sizeof(double) * 5 * d);
		for (int64_t i = 0; i < 5; i++)
			for (int64_t j = 0; j < d; j++) {
				double acc = 0;
				for (int64_t t = 0; t < d; t++)
					acc += tu_get(&x, i * d + t) * h_entry(t, j);
				want[i * d + j] = tu_bf16_rne(acc * pow((double)d, -0.5));
			}
		assert_int_equal(dsv32_hadamard(be, &y, &x, NULL), DSV32_OK);
		/* fp32 butterflies (exact for d <= 16 on bf16 inputs with small spread, rounded for
		 * 128) and an fp32 scale: <= 1 bf16 ulp */
		tu_check_ulps_d("hadamard", &y, want, 1);
		free(want);
		dsv32_tensor_free(&x);
		dsv32_tensor_free(&y);
	}
}

static void test_hadamard_twice_is_identity_on_small_integers(void **state)
{
	dsv32_backend *be = *state;
	tu_rng r;
	r = tu_rng_seed(22);
	int64_t dims[4] = {16, 64, 256, 128};
	for (int k = 0; k < 4; k++) {
		int64_t d = dims[k], s[2] = {3, d};
		dsv32_tensor x = tu_host(DSV32_F32, 2, s), y = tu_host(DSV32_F32, 2, s);
		dsv32_tensor z = tu_host(DSV32_F32, 2, s);
		for (int64_t i = 0; i < 3 * d; i++)
			tu_set(&x, i, (double)((int)(tu_uniform(&r) * 17) - 8));
		assert_int_equal(dsv32_hadamard(be, &y, &x, NULL), DSV32_OK);
		assert_int_equal(dsv32_hadamard(be, &z, &y, NULL), DSV32_OK);
		double sc = (double)dsv32_hadamard_scale(d);
		/* H·H = d·I. For d = 4^k the scale is a power of two, every butterfly sum of small
		 * integers (and of their scaled images) is exact, so H(H(x)) == x bit for bit. */
		if (d != 128) {
			tu_check_ulps("hadamard twice (d = 4^k)", &z, &x, 0);
		} else {
			/* d = 128: s = fp32(2^-3.5) is inexact; y = round(int·s), so the second pass
			 * rounds: |z − x| <= 8 fp32 ulps of max|x| per row (7 stages + 2 scales) */
			for (int64_t i = 0; i < 3 * d; i++)
				assert_true(fabs(tu_get(&z, i) - tu_get(&x, i)) <= 8.0 * 8.0 * 0x1p-23);
		}
		/* the first pass alone: y / s is an integer vector (exact butterflies) */
		for (int64_t i = 0; i < 3 * d; i++) {
			double u = tu_get(&y, i) / sc;
			assert_true(fabs(u - nearbyint(u)) < 1e-4);
		}
		/* in place gives the same bits */
		assert_int_equal(dsv32_hadamard(be, &x, &x, NULL), DSV32_OK);
		tu_check_ulps("hadamard in place", &x, &y, 0);
		dsv32_tensor_free(&x);
		dsv32_tensor_free(&y);
		dsv32_tensor_free(&z);
	}
}

static void test_hadamard_rejects_non_power_of_two(void **state)
{
	int64_t s[2] = {2, 96};
	dsv32_tensor x = tu_host(DSV32_BF16, 2, s);
	dsv32_error err = {0};
	assert_int_equal(dsv32_hadamard(*state, &x, &x, &err), DSV32_E_SHAPE);
	dsv32_tensor_free(&x);
}

static void test_hadamard_gpu_is_bit_identical(void **state)
{
	dsv32_backend *gpu = tc_cuda_backend_or_null();
	if (!gpu)
		skip();
	int64_t s[2] = {33, 128};
	tu_rng r;
	r = tu_rng_seed(23);
	dsv32_tensor x = tu_host(DSV32_BF16, 2, s), y = tu_host(DSV32_BF16, 2, s);
	tu_fill_normal(&x, &r, 2.0);
	assert_int_equal(dsv32_hadamard(*state, &y, &x, NULL), DSV32_OK);
	dsv32_tensor dx = tu_to_dev(gpu, &x), dy = tu_to_dev(gpu, &x);
	assert_int_equal(dsv32_hadamard(gpu, &dy, &dx, NULL), DSV32_OK);
	dsv32_tensor g = tu_from_dev(gpu, &dy);
	tu_check_ulps("gpu hadamard", &g, &y, 0); /* same butterflies, same order */
	dsv32_backend_free(gpu, &dx);
	dsv32_backend_free(gpu, &dy);
	dsv32_backend_destroy(gpu);
	dsv32_tensor_free(&x);
	dsv32_tensor_free(&y);
	dsv32_tensor_free(&g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hadamard_matches_oracle),
		cmocka_unit_test(test_hadamard_twice_is_identity_on_small_integers),
		cmocka_unit_test(test_hadamard_rejects_non_power_of_two),
		cmocka_unit_test(test_hadamard_gpu_is_bit_identical),
	};
	return cmocka_run_group_tests(tests, tc_setup_cpu_backend, tc_teardown_backend);
}
