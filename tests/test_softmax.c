/* test_softmax.c: softmax (kernels/softmax.h) against a double oracle; -inf and finfo(bf16).min
 * masked rows; the GPU twin. */
#include "tests/support/test_util.h"

#include <math.h>
#include <stdlib.h>

#include "kernels/softmax.h"

#define ROWS 6
#define T 77
#define BF16_MIN (-3.3895313892515355e38) /* finfo(bf16).min */

static void test_softmax_matches_oracle_with_masks(void **state)
{
	dsv32_backend *be = *state;
	tu_rng r;
	r = tu_rng_seed(41);
	int64_t s[2] = {ROWS, T};
	for (int yf = 0; yf < 2; yf++) {
		dsv32_dtype t = yf ? DSV32_F32 : DSV32_BF16;
		dsv32_tensor x = tu_host(DSV32_BF16, 2, s), y = tu_host(t, 2, s);
		tu_fill_normal(&x, &r, 4.0);
		for (int j = 0; j < T; j++) {
			if (j > 10)
				tu_set(&x, 1 * T + j, -INFINITY);   /* reference index mask */
			if (j % 3)
				tu_set(&x, 2 * T + j, BF16_MIN);    /* HF float mask */
			tu_set(&x, 3 * T + j, -INFINITY);           /* all masked: NaN */
			tu_set(&x, 4 * T + j, BF16_MIN);            /* all HF-masked: uniform */
		}
		tu_set(&x, 5 * T + 3, 80.0); /* a spike */
		double want[ROWS * T];
		for (int i = 0; i < ROWS; i++) {
			double m = -INFINITY, sum = 0;
			for (int j = 0; j < T; j++)
				m = fmax(m, tu_get(&x, i * T + j));
			for (int j = 0; j < T; j++)
				sum += exp(tu_get(&x, i * T + j) - m);
			for (int j = 0; j < T; j++) {
				double v = exp(tu_get(&x, i * T + j) - m) / sum;
				if (isinf(m)) /* PyTorch: -inf - -inf = NaN for the whole row */
					v = NAN;
				want[i * T + j] = t == DSV32_BF16 ? tu_bf16_rne(v) : (double)(float)v;
			}
		}
		assert_int_equal(dsv32_softmax(be, &y, &x, NULL), DSV32_OK);
		/* bf16: fp32 exp (<= 1 ulp) and sum before one rounding: <= 1 bf16 ulp. fp32: exp,
		 * the fp32 sum over 77 terms and the reciprocal multiply: <= 8 fp32 ulps */
		tu_check_ulps_d(t == DSV32_BF16 ? "softmax bf16" : "softmax f32", &y, want,
				t == DSV32_BF16 ? 1 : 8);
		for (int j = 0; j < T; j++)
			assert_true(isnan(tu_get(&y, 3 * T + j)));
		dsv32_tensor_free(&x);
		dsv32_tensor_free(&y);
	}
}

static void test_softmax_in_place(void **state)
{
	dsv32_backend *be = *state;
	tu_rng r;
	r = tu_rng_seed(42);
	int64_t s[2] = {ROWS, T};
	dsv32_tensor x = tu_host(DSV32_BF16, 2, s), y = tu_host(DSV32_BF16, 2, s);
	tu_fill_normal(&x, &r, 3.0);
	assert_int_equal(dsv32_softmax(be, &y, &x, NULL), DSV32_OK);
	assert_int_equal(dsv32_softmax(be, &x, &x, NULL), DSV32_OK);
	tu_check_ulps("softmax in place", &x, &y, 0);
	dsv32_tensor_free(&x);
	dsv32_tensor_free(&y);
}

static void test_softmax_gpu_matches_cpu(void **state)
{
	dsv32_backend *gpu = tc_cuda_backend_or_null();
	if (!gpu)
		skip();
	tu_rng r;
	r = tu_rng_seed(43);
	int64_t s[2] = {ROWS, 1031};
	dsv32_tensor x = tu_host(DSV32_BF16, 2, s), y = tu_host(DSV32_BF16, 2, s);
	tu_fill_normal(&x, &r, 3.0);
	for (int j = 0; j < 1031; j++)
		tu_set(&x, j, -INFINITY);
	assert_int_equal(dsv32_softmax(*state, &y, &x, NULL), DSV32_OK);
	dsv32_tensor dx = tu_to_dev(gpu, &x), dy = tu_to_dev(gpu, &y);
	assert_int_equal(dsv32_softmax(gpu, &dy, &dx, NULL), DSV32_OK);
	dsv32_tensor g = tu_from_dev(gpu, &dy);
	/* device expf (<= 2 ulp) and the summation order: <= 1 bf16 ulp */
	tu_check_ulps("gpu softmax", &g, &y, 1);
	dsv32_backend_free(gpu, &dx);
	dsv32_backend_free(gpu, &dy);
	dsv32_backend_destroy(gpu);
	dsv32_tensor_free(&x); dsv32_tensor_free(&y); dsv32_tensor_free(&g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_softmax_matches_oracle_with_masks),
		cmocka_unit_test(test_softmax_in_place),
		cmocka_unit_test(test_softmax_gpu_matches_cpu),
	};
	return cmocka_run_group_tests(tests, tc_setup_cpu_backend, tc_teardown_backend);
}
