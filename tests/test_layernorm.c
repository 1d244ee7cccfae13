/* test_layernorm.c: LayerNorm with bias (kernels/layernorm.h) against a double oracle, with fp32
 * (reference) and bf16 (HF) weight/bias; the GPU twin. */
#include "tests/support/test_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "kernels/layernorm.h"

#define ROWS 5
#define DIM 128
#define EPS 1e-6

static void run_case(dsv32_backend *be, dsv32_dtype wt, dsv32_dtype yt, uint64_t seed)
{
	tu_rng r;
	r = tu_rng_seed(seed);
	int64_t s[2] = {ROWS, DIM}, sw[1] = {DIM};
	dsv32_tensor x = tu_host(DSV32_BF16, 2, s), y = tu_host(yt, 2, s);
	dsv32_tensor w = tu_host(wt, 1, sw), b = tu_host(wt, 1, sw);
	tu_fill_normal(&x, &r, 2.0);
	for (int j = 0; j < DIM; j++) {
		tu_set(&x, j, 0.0);                          /* zero row: var 0 -> y = b */
		tu_set(&x, DIM + j, 5.0 + 0.01 * tu_normal(&r)); /* offset row: cancellation */
		tu_set(&w, j, tu_bf16_rne(1.0 + 0.05 * tu_normal(&r)));
		tu_set(&b, j, tu_bf16_rne(0.1 * tu_normal(&r)));
	}
	double want[ROWS * DIM], tol[ROWS * DIM];
	for (int i = 0; i < ROWS; i++) {
		double m = 0, v = 0;
		for (int j = 0; j < DIM; j++)
			m += tu_get(&x, i * DIM + j);
		m /= DIM;
		for (int j = 0; j < DIM; j++)
			v += (tu_get(&x, i * DIM + j) - m) * (tu_get(&x, i * DIM + j) - m);
		v /= DIM; /* population variance */
		double xmax = 0, rs = 1.0 / sqrt(v + EPS);
		for (int j = 0; j < DIM; j++)
			xmax = fmax(xmax, fabs(tu_get(&x, i * DIM + j)));
		for (int j = 0; j < DIM; j++) {
			double o = (tu_get(&x, i * DIM + j) - m) / sqrt(v + EPS) * tu_get(&w, j) +
				   tu_get(&b, j);
			want[i * DIM + j] = yt == DSV32_BF16 ? tu_bf16_rne(o) : (double)(float)o;
			/* the contract's x·rstd − rstd·mean cancels in fp32: the fp32 statistics (order
			 * not in the contract) move x·rstd by a few fp32 ulps of max|x|·rstd */
			tol[i * DIM + j] = 8.0 * 0x1p-24 * xmax * rs * fabs(tu_get(&w, j));
		}
	}
	assert_int_equal(dsv32_layernorm(be, &y, &x, &w, &b, EPS, NULL), DSV32_OK);
	/* budget per element: <= 1 ulp of y's dtype (one final rounding), or, where the affine
	 * step cancels (offset row, outputs near 0), the absolute fp32 bound tol above */
	int bad = 0;
	for (int64_t i = 0; i < ROWS * DIM; i++) {
		double g = tu_get(&y, i);
		int64_t d = tu_ulps(yt, g, want[i]);
		if (d > 1 && fabs(g - want[i]) > tol[i] && bad++ < 8)
			print_error("layernorm element %lld: got %.9g want %.9g (%lld ulps, tol %.3g)\n",
				    (long long)i, g, want[i], (long long)d, tol[i]);
	}
	assert_int_equal(bad, 0);
	/* the zero row gives exactly the bias */
	for (int j = 0; j < DIM; j++)
		assert_true(tu_get(&y, j) == (yt == DSV32_BF16 ? tu_bf16_rne(tu_get(&b, j)) : tu_get(&b, j)));
	dsv32_tensor_free(&x); dsv32_tensor_free(&y); dsv32_tensor_free(&w); dsv32_tensor_free(&b);
}

static void test_layernorm_fp32_params_matches_oracle(void **state)
{
	run_case(*state, DSV32_F32, DSV32_BF16, 61);
	run_case(*state, DSV32_F32, DSV32_F32, 62);
}

static void test_layernorm_bf16_params_matches_oracle(void **state)
{
	run_case(*state, DSV32_BF16, DSV32_BF16, 63);
}

static void test_layernorm_rejects_mixed_param_dtypes(void **state)
{
	int64_t s[2] = {2, 8}, sw[1] = {8};
	dsv32_tensor x = tu_host(DSV32_BF16, 2, s), w = tu_host(DSV32_F32, 1, sw);
	dsv32_tensor b = tu_host(DSV32_BF16, 1, sw);
	dsv32_error err = {0};
	assert_int_equal(dsv32_layernorm(*state, &x, &x, &w, &b, EPS, &err), DSV32_E_DTYPE);
	dsv32_tensor_free(&x); dsv32_tensor_free(&w); dsv32_tensor_free(&b);
}

/* Both torch affine forms (torch_major 1 and 2: the 2.x form differs by x's dtype, so BF16 and
 * F32 inputs) on both bodies; the CUDA body must follow the backend's torch_major too. */
static void test_layernorm_gpu_matches_cpu(void **state)
{
	dsv32_backend *gpu = tc_cuda_backend_or_null(), *cpu = *state;
	if (!gpu)
		skip();
	int saved_major = cpu->torch_major;
	for (int major = 1; major <= 2; major++)
		for (int xf32 = 0; xf32 <= 1; xf32++) {
			cpu->torch_major = gpu->torch_major = major;
			tu_rng r;
			r = tu_rng_seed(64 + (uint64_t)(2 * major + xf32));
			int64_t s[2] = {ROWS, DIM}, sw[1] = {DIM};
			dsv32_tensor x = tu_host(xf32 ? DSV32_F32 : DSV32_BF16, 2, s);
			dsv32_tensor y = tu_host(DSV32_BF16, 2, s);
			dsv32_tensor w = tu_host(DSV32_F32, 1, sw), b = tu_host(DSV32_F32, 1, sw);
			tu_fill_normal(&x, &r, 2.0);
			tu_fill_normal(&w, &r, 1.0);
			tu_fill_normal(&b, &r, 0.1);
			assert_int_equal(dsv32_layernorm(cpu, &y, &x, &w, &b, EPS, NULL), DSV32_OK);
			dsv32_tensor dx = tu_to_dev(gpu, &x), dy = tu_to_dev(gpu, &y);
			dsv32_tensor dw = tu_to_dev(gpu, &w), db = tu_to_dev(gpu, &b);
			assert_int_equal(dsv32_layernorm(gpu, &dy, &dx, &dw, &db, EPS, NULL), DSV32_OK);
			dsv32_tensor g = tu_from_dev(gpu, &dy);
			char what[64];
			snprintf(what, sizeof what, "gpu layernorm torch %d x %s", major,
				 xf32 ? "F32" : "BF16");
			tu_check_ulps(what, &g, &y, 1); /* summation order (mean, var) only */
			dsv32_backend_free(gpu, &dx); dsv32_backend_free(gpu, &dy);
			dsv32_backend_free(gpu, &dw); dsv32_backend_free(gpu, &db);
			dsv32_tensor_free(&x); dsv32_tensor_free(&y); dsv32_tensor_free(&w);
			dsv32_tensor_free(&b); dsv32_tensor_free(&g);
		}
	cpu->torch_major = saved_major;
	dsv32_backend_destroy(gpu);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_layernorm_fp32_params_matches_oracle),
		cmocka_unit_test(test_layernorm_bf16_params_matches_oracle),
		cmocka_unit_test(test_layernorm_rejects_mixed_param_dtypes),
		cmocka_unit_test(test_layernorm_gpu_matches_cpu),
	};
	return cmocka_run_group_tests(tests, tc_setup_cpu_backend, tc_teardown_backend);
}
