/* test_layernorm.c: LayerNorm with bias (kernels/layernorm.h) against a double oracle, with fp32
 * (reference) and bf16 (HF) weight/bias; the GPU twin. */
#include "tests/support/k2_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "kernels/layernorm.h"

#define ROWS 5
#define DIM 128
#define EPS 1e-6

static void run_case(dsv32_backend *be, dsv32_dtype wt, dsv32_dtype yt, uint64_t seed)
{
	k2_rng r;
	k2_rng_seed(&r, seed);
	int64_t s[2] = {ROWS, DIM}, sw[1] = {DIM};
	dsv32_tensor x = k2_host(DSV32_BF16, 2, s), y = k2_host(yt, 2, s);
	dsv32_tensor w = k2_host(wt, 1, sw), b = k2_host(wt, 1, sw);
	k2_fill_normal(&x, &r, 2.0);
	for (int j = 0; j < DIM; j++) {
		k2_set(&x, j, 0.0);                          /* zero row: var 0 -> y = b */
		k2_set(&x, DIM + j, 5.0 + 0.01 * k2_normal(&r)); /* offset row: cancellation */
		k2_set(&w, j, k2_bf16_rne(1.0 + 0.05 * k2_normal(&r)));
		k2_set(&b, j, k2_bf16_rne(0.1 * k2_normal(&r)));
	}
	double want[ROWS * DIM], tol[ROWS * DIM];
	for (int i = 0; i < ROWS; i++) {
		double m = 0, v = 0;
		for (int j = 0; j < DIM; j++)
			m += k2_get(&x, i * DIM + j);
		m /= DIM;
		for (int j = 0; j < DIM; j++)
			v += (k2_get(&x, i * DIM + j) - m) * (k2_get(&x, i * DIM + j) - m);
		v /= DIM; /* population variance */
		double xmax = 0, rs = 1.0 / sqrt(v + EPS);
		for (int j = 0; j < DIM; j++)
			xmax = fmax(xmax, fabs(k2_get(&x, i * DIM + j)));
		for (int j = 0; j < DIM; j++) {
			double o = (k2_get(&x, i * DIM + j) - m) / sqrt(v + EPS) * k2_get(&w, j) +
				   k2_get(&b, j);
			want[i * DIM + j] = yt == DSV32_BF16 ? k2_bf16_rne(o) : (double)(float)o;
			/* the contract's x·rstd − rstd·mean cancels in fp32: the fp32 statistics (order
			 * not in the contract) move x·rstd by a few fp32 ulps of max|x|·rstd */
			tol[i * DIM + j] = 8.0 * 0x1p-24 * xmax * rs * fabs(k2_get(&w, j));
		}
	}
	assert_int_equal(dsv32_layernorm(be, &y, &x, &w, &b, EPS, NULL), DSV32_OK);
	/* budget per element: <= 1 ulp of y's dtype (one final rounding), or, where the affine
	 * step cancels (offset row, outputs near 0), the absolute fp32 bound tol above */
	int bad = 0;
	for (int64_t i = 0; i < ROWS * DIM; i++) {
		double g = k2_get(&y, i);
		int64_t d = k2_ulps(yt, g, want[i]);
		if (d > 1 && fabs(g - want[i]) > tol[i] && bad++ < 8)
			print_error("layernorm element %lld: got %.9g want %.9g (%lld ulps, tol %.3g)\n",
				    (long long)i, g, want[i], (long long)d, tol[i]);
	}
	assert_int_equal(bad, 0);
	/* the zero row gives exactly the bias */
	for (int j = 0; j < DIM; j++)
		assert_true(k2_get(&y, j) == (yt == DSV32_BF16 ? k2_bf16_rne(k2_get(&b, j)) : k2_get(&b, j)));
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
	dsv32_tensor x = k2_host(DSV32_BF16, 2, s), w = k2_host(DSV32_F32, 1, sw);
	dsv32_tensor b = k2_host(DSV32_BF16, 1, sw);
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
			k2_rng r;
			k2_rng_seed(&r, 64 + (uint64_t)(2 * major + xf32));
			int64_t s[2] = {ROWS, DIM}, sw[1] = {DIM};
			dsv32_tensor x = k2_host(xf32 ? DSV32_F32 : DSV32_BF16, 2, s);
			dsv32_tensor y = k2_host(DSV32_BF16, 2, s);
			dsv32_tensor w = k2_host(DSV32_F32, 1, sw), b = k2_host(DSV32_F32, 1, sw);
			k2_fill_normal(&x, &r, 2.0);
			k2_fill_normal(&w, &r, 1.0);
			k2_fill_normal(&b, &r, 0.1);
			assert_int_equal(dsv32_layernorm(cpu, &y, &x, &w, &b, EPS, NULL), DSV32_OK);
			dsv32_tensor dx = k2_to_dev(gpu, &x), dy = k2_to_dev(gpu, &y);
			dsv32_tensor dw = k2_to_dev(gpu, &w), db = k2_to_dev(gpu, &b);
			assert_int_equal(dsv32_layernorm(gpu, &dy, &dx, &dw, &db, EPS, NULL), DSV32_OK);
			dsv32_tensor g = k2_from_dev(gpu, &dy);
			char what[64];
			snprintf(what, sizeof what, "gpu layernorm torch %d x %s", major,
				 xf32 ? "F32" : "BF16");
			k2_check_ulps(what, &g, &y, 1); /* summation order (mean, var) only */
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
