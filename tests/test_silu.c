/* test_silu.c: the SiLU-gated products (kernels/silu.h) against double oracles: one rounding
 * (reference) and two (HF); the GPU twin. */
#include "tests/support/k2_util.h"

#include <math.h>
#include <stdlib.h>

#include "kernels/silu.h"

#define N 1001

static void test_silu_mul_ref_and_hf_match_oracles(void **state)
{
	dsv32_backend *be = *state;
	k2_rng r;
	k2_rng_seed(&r, 51);
	int64_t s[1] = {N};
	dsv32_tensor a = k2_host(DSV32_BF16, 1, s), b = k2_host(DSV32_BF16, 1, s);
	dsv32_tensor hr = k2_host(DSV32_BF16, 1, s), hh = k2_host(DSV32_BF16, 1, s);
	k2_fill_normal(&a, &r, 4.0);
	k2_fill_normal(&b, &r, 2.0);
	k2_set(&a, 0, 0.0); k2_set(&a, 1, -0.0); k2_set(&a, 2, 100.0); k2_set(&a, 3, -100.0);
	k2_set(&a, 4, 1e-30);
	double wr[N], wh[N];
	for (int i = 0; i < N; i++) {
		double x = k2_get(&a, i), silu = x / (1.0 + exp(-x));
		wr[i] = k2_bf16_rne(silu * k2_get(&b, i));
		wh[i] = k2_bf16_rne(k2_bf16_rne(silu) * k2_get(&b, i));
	}
	assert_int_equal(dsv32_silu_mul_ref(be, &hr, &a, &b, NULL), DSV32_OK);
	assert_int_equal(dsv32_silu_mul_hf(be, &hh, &a, &b, NULL), DSV32_OK);
	/* fp32 exp/add/divide/multiply before one rounding: <= 1 bf16 ulp */
	k2_check_ulps_d("silu_mul_ref", &hr, wr, 1);
	/* the bf16(silu) point can sit on the other side of a tie: <= 1 ulp */
	k2_check_ulps_d("silu_mul_hf", &hh, wh, 1);
	int differ = 0;
	for (int i = 0; i < N; i++)
		differ += k2_get(&hr, i) != k2_get(&hh, i);
	assert_true(differ > 0); /* the second rounding is visible */
	dsv32_tensor_free(&a); dsv32_tensor_free(&b); dsv32_tensor_free(&hr); dsv32_tensor_free(&hh);
}

static void test_silu_mul_f32_output_is_unrounded(void **state)
{
	dsv32_backend *be = *state;
	k2_rng r;
	k2_rng_seed(&r, 52);
	int64_t s[1] = {N};
	dsv32_tensor a = k2_host(DSV32_F32, 1, s), b = k2_host(DSV32_F32, 1, s);
	dsv32_tensor h = k2_host(DSV32_F32, 1, s);
	k2_fill_normal(&a, &r, 4.0);
	k2_fill_normal(&b, &r, 2.0);
	double w[N];
	for (int i = 0; i < N; i++) {
		double x = k2_get(&a, i);
		w[i] = x / (1.0 + exp(-x)) * k2_get(&b, i);
	}
	assert_int_equal(dsv32_silu_mul_hf(be, &h, &a, &b, NULL), DSV32_OK);
	k2_check_ulps_d("silu_mul_hf f32", &h, w, 4); /* exp, add, divide, multiply in fp32 */
	dsv32_tensor_free(&a); dsv32_tensor_free(&b); dsv32_tensor_free(&h);
}

static void test_silu_gpu_matches_cpu(void **state)
{
	dsv32_backend *gpu = tc_cuda_backend_or_null();
	if (!gpu)
		skip();
	k2_rng r;
	k2_rng_seed(&r, 53);
	int64_t s[1] = {N};
	dsv32_tensor a = k2_host(DSV32_BF16, 1, s), b = k2_host(DSV32_BF16, 1, s);
	dsv32_tensor h = k2_host(DSV32_BF16, 1, s);
	k2_fill_normal(&a, &r, 4.0);
	k2_fill_normal(&b, &r, 2.0);
	assert_int_equal(dsv32_silu_mul_hf(*state, &h, &a, &b, NULL), DSV32_OK);
	dsv32_tensor da = k2_to_dev(gpu, &a), db = k2_to_dev(gpu, &b), dh = k2_to_dev(gpu, &h);
	assert_int_equal(dsv32_silu_mul_hf(gpu, &dh, &da, &db, NULL), DSV32_OK);
	dsv32_tensor g = k2_from_dev(gpu, &dh);
	k2_check_ulps("gpu silu_mul_hf", &g, &h, 1); /* device expf vs glibc expf */
	dsv32_backend_free(gpu, &da); dsv32_backend_free(gpu, &db); dsv32_backend_free(gpu, &dh);
	dsv32_backend_destroy(gpu);
	dsv32_tensor_free(&a); dsv32_tensor_free(&b); dsv32_tensor_free(&h); dsv32_tensor_free(&g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_silu_mul_ref_and_hf_match_oracles),
		cmocka_unit_test(test_silu_mul_f32_output_is_unrounded),
		cmocka_unit_test(test_silu_gpu_matches_cpu),
	};
	return cmocka_run_group_tests(tests, tc_setup_cpu_backend, tc_teardown_backend);
}
