/* test_gemm_fixed.c: the fixed GEMM engine (kernels/gemm.h "Engines", gemm_fixed.c) gives the
 * bits of its written summation order, on every body and thread count.
 *
 * Oracle: the order of gemm_fixed.c's header, written out here independently in double-free
 * fp32 (fmaf per lane, the fixed tree per chunk of 1024, chunks in order; fp8: one chunk per
 * 128-block, scaled and accumulated from +0). Every case is checked bit for bit against it:
 *   - on the avx2 body (where the CPU has AVX2+FMA) and the scalar body (DSV32_GEMM_NO_AVX2=1),
 *   - with 1 and 2 OpenMP threads,
 *   - for "NT", "NN" and batched layouts and every BF16/F32 dtype combination, K not a
 *     multiple of 8 or of the chunk, M and N not multiples of the micro tile.
 * The contract that makes a host-independent baseline possible is exactly this: same bits
 * everywhere. (Accuracy against the exact sum is test_gemm's job.) */
#include <math.h>
#include <omp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kernels/fp8.h"
#include "kernels/gemm.h"
#include "tests/support/k1_util.h"
#include "tests/support/test_common.h"

typedef struct {
	bool trans;
	int64_t Bt, M, N, K;
	dsv32_dtype xt, wt, yt;
} fcase;

static float w_val(const dsv32_tensor *w, const fcase *c, int64_t b, int64_t n, int64_t k)
{
	int64_t i = b * c->N * c->K + (c->trans ? n * c->K + k : k * c->N + n);
	return (float)k1_get(w, i);
}

/* The written order for one output: chunks of kc, 8 lanes by fmaf, the tree, chunks added. */
static float oracle_dot(const float *x, const float *wcol, int64_t K, int64_t kc)
{
	float acc = 0.0f;
	int64_t Kp = (K + 7) / 8 * 8;
	for (int64_t k0 = 0; k0 < Kp; k0 += kc) {
		int64_t end = k0 + kc < Kp ? k0 + kc : Kp;
		float L[8] = {0};
		for (int64_t k = k0; k < end; k++)
			L[k % 8] = fmaf(k < K ? x[k] : 0.0f, k < K ? wcol[k] : 0.0f, L[k % 8]);
		float t = ((L[0] + L[4]) + (L[2] + L[6])) + ((L[1] + L[5]) + (L[3] + L[7]));
		acc = k0 == 0 ? t : acc + t;
	}
	return acc;
}

static void fill(dsv32_tensor *t, k1_rng *r)
{
	for (int64_t i = 0; i < dsv32_tensor_numel(t); i++)
		k1_set(t, i, (k1_uniform(r) * 2.0 - 1.0) * ldexp(1.0, k1_int(r, -6, 6)));
}

static dsv32_tensor run_once(const fcase *c, const dsv32_tensor *x, const dsv32_tensor *w,
			     int threads, bool scalar)
{
	dsv32_backend *be = NULL;
	assert_int_equal(dsv32_backend_create(&be, DSV32_DEV_CPU, NULL), DSV32_OK);
	be->gemm_engine = DSV32_GEMM_FIXED;
	dsv32_tensor y = k1_host(c->yt, 3, c->Bt, c->M, c->N);
	if (scalar)
		setenv("DSV32_GEMM_NO_AVX2", "1", 1);
	omp_set_num_threads(threads);
	dsv32_error err = {0};
	dsv32_status rc = c->trans ? dsv32_gemm_batched(be, &y, x, w, &err)
				   : dsv32_gemm_nn_batched(be, &y, x, w, &err);
	unsetenv("DSV32_GEMM_NO_AVX2");
	if (rc != DSV32_OK)
		fail_msg("gemm: %s", err.what);
	dsv32_backend_destroy(be);
	return y;
}

static void check_case(const fcase *c, uint64_t seed)
{
	k1_rng r = {seed};
	dsv32_tensor x = k1_host(c->xt, 3, c->Bt, c->M, c->K);
	dsv32_tensor w = c->trans ? k1_host(c->wt, 3, c->Bt, c->N, c->K)
				  : k1_host(c->wt, 3, c->Bt, c->K, c->N);
	fill(&x, &r);
	fill(&w, &r);
	float *xr = malloc((size_t)c->K * sizeof(float)), *wc = malloc((size_t)c->K * sizeof(float));
	dsv32_tensor want = k1_host(c->yt, 3, c->Bt, c->M, c->N);
	for (int64_t b = 0; b < c->Bt; b++)
		for (int64_t m = 0; m < c->M; m++)
			for (int64_t n = 0; n < c->N; n++) {
				for (int64_t k = 0; k < c->K; k++) {
					xr[k] = (float)k1_get(&x, (b * c->M + m) * c->K + k);
					wc[k] = w_val(&w, c, b, n, k);
				}
				float v = oracle_dot(xr, wc, c->K, DSV32_GEMM_FIXED_KC);
				k1_set(&want, (b * c->M + m) * c->N + n, v); /* k1_set rounds to bf16 */
			}
	static const struct { int threads; bool scalar; } runs[] = {{1, false}, {2, false},
								    {1, true}, {2, true}};
	for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
		dsv32_tensor y = run_once(c, &x, &w, runs[i].threads, runs[i].scalar);
		if (memcmp(y.data, want.data, dsv32_tensor_nbytes(&y)) != 0)
			fail_msg("%s %s x %s -> %s B%lld M%lld N%lld K%lld, %d thread(s), %s body: "
				 "not the bits of the written order", c->trans ? "NT" : "NN",
				 dsv32_dtype_name(c->xt), dsv32_dtype_name(c->wt),
				 dsv32_dtype_name(c->yt), (long long)c->Bt, (long long)c->M,
				 (long long)c->N, (long long)c->K, runs[i].threads,
				 runs[i].scalar ? "scalar" : dsv32_gemm_fixed_body());
		dsv32_tensor_free(&y);
	}
	free(xr);
	free(wc);
	dsv32_tensor_free(&x);
	dsv32_tensor_free(&w);
	dsv32_tensor_free(&want);
}

static const dsv32_dtype combos[][3] = {
	{DSV32_BF16, DSV32_BF16, DSV32_BF16}, {DSV32_BF16, DSV32_BF16, DSV32_F32},
	{DSV32_F32, DSV32_F32, DSV32_F32},    {DSV32_F32, DSV32_BF16, DSV32_BF16},
	{DSV32_BF16, DSV32_F32, DSV32_F32},
};

static void test_fixed_gemm_is_the_written_order_on_every_body(void **state)
{
	(void)state;
	printf("# fixed body here: %s; also checked: scalar\n", dsv32_gemm_fixed_body());
	static const int64_t shapes[][4] = {
		/* Bt, M, N, K: odd sizes, K across chunk boundaries, one wide K */
		{1, 1, 1, 1}, {2, 3, 5, 7}, {1, 5, 25, 1031}, {1, 9, 50, 2053}, {3, 4, 24, 64},
		{1, 17, 49, 3000},
	};
	uint64_t seed = 77;
	for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
		for (size_t i = 0; i < sizeof combos / sizeof combos[0]; i++)
			for (int t = 0; t < 2; t++) {
				fcase c = {t == 0, shapes[s][0], shapes[s][1], shapes[s][2],
					   shapes[s][3], combos[i][0], combos[i][1], combos[i][2]};
				check_case(&c, seed++);
			}
}

/* fp8_gemm: the same engine with one chunk per 128-block, scaled (fp8.h). */
static void test_fixed_fp8_gemm_is_the_written_order_on_every_body(void **state)
{
	(void)state;
	const int64_t M = 5, N = 200, K = 384, nkb = K / 128, nnb = (N + 127) / 128;
	k1_rng r = {2024};
	dsv32_tensor x8 = k1_host(DSV32_F8_E4M3, 2, M, K), w8 = k1_host(DSV32_F8_E4M3, 2, N, K);
	dsv32_tensor xs = k1_host(DSV32_F32, 2, M, nkb), ws = k1_host(DSV32_F32, 2, nnb, nkb);
	for (int64_t i = 0; i < M * K; i++)
		((uint8_t *)x8.data)[i] = (uint8_t)k1_int(&r, 0, 255) & 0xf7; /* no NaN codes */
	for (int64_t i = 0; i < N * K; i++)
		((uint8_t *)w8.data)[i] = (uint8_t)k1_int(&r, 0, 255) & 0xf7;
	fill(&xs, &r);
	fill(&ws, &r);
	float *want = malloc((size_t)(M * N) * sizeof(float));
	for (int64_t m = 0; m < M; m++)
		for (int64_t n = 0; n < N; n++) {
			float acc = 0.0f;
			for (int64_t kb = 0; kb < nkb; kb++) {
				float xr[128], wr[128];
				for (int64_t j = 0; j < 128; j++) {
					xr[j] = dsv32_e4m3_to_f32(((uint8_t *)x8.data)[m * K + kb * 128 + j]);
					wr[j] = dsv32_e4m3_to_f32(((uint8_t *)w8.data)[n * K + kb * 128 + j]);
				}
				float t = oracle_dot(xr, wr, 128, 128);
				float sc = ((float *)xs.data)[m * nkb + kb] *
					   ((float *)ws.data)[(n / 128) * nkb + kb];
				acc = acc + t * sc;
			}
			want[m * N + n] = acc;
		}
	for (int run = 0; run < 4; run++) {
		dsv32_backend *be = NULL;
		assert_int_equal(dsv32_backend_create(&be, DSV32_DEV_CPU, NULL), DSV32_OK);
		dsv32_tensor y = k1_host(DSV32_F32, 2, M, N);
		if (run >= 2)
			setenv("DSV32_GEMM_NO_AVX2", "1", 1);
		omp_set_num_threads(1 + run % 2);
		assert_int_equal(dsv32_fp8_gemm(be, &y, &x8, &xs, &w8, &ws, NULL), DSV32_OK);
		unsetenv("DSV32_GEMM_NO_AVX2");
		assert_memory_equal(y.data, want, (size_t)(M * N) * sizeof(float));
		dsv32_tensor_free(&y);
		dsv32_backend_destroy(be);
	}
	free(want);
	dsv32_tensor_free(&x8);
	dsv32_tensor_free(&w8);
	dsv32_tensor_free(&xs);
	dsv32_tensor_free(&ws);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fixed_gemm_is_the_written_order_on_every_body),
		cmocka_unit_test(test_fixed_fp8_gemm_is_the_written_order_on_every_body),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
