/* test_gemm_dpbf16.c: the host engine's bf16 GEMM on CPUs with AVX512-BF16 and no AMX
 * (kernels/gemm_dpbf16.c) gives the bits of its stated order, written out here in scalar fp32:
 * per output and K chunk of 1024 values acc = +0, then for each pair j of the chunk
 * acc = (acc + x[2j+1]·w[2j+1]) + x[2j]·w[2j] (each product exact in fp32, each sum rounded), a
 * missing odd partner read as 0; y = the first chunk's acc, then y + acc per chunk; a BF16 y
 * rounded to nearest even; one row (M = 1) in torch's single-row order instead (oracle_row).
 * Data stay in the normal range (the instruction's DAZ/FTZ
 * is not exercised). Layouts "NT" (read in place, or packed where K or its row stride is odd)
 * and "NN", odd K, M and N off the 32 x 8 tiles, a batch of strided slices, F32 and BF16 y, 1 and
 * 2 threads. Skipped (77) where the body does not run.
 * That this order is torch's on such a CPU is shown by py_test_dpbf16_torch.py (bit for bit
 * against torch's bf16 linear at real widths, through `--emit` below) and by the recording test
 * (test_hf_golden_ties.c, its avx512_bf16 exact tier).
 *
 * test_gemm_dpbf16 --emit M K N X W Y: y [M, N] = x [M, K] · w [N, K]^T through the host
 * engine, raw bf16 files in and out (exit 77 where this body does not run). */
#include <math.h>
#include <omp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/dtype.h"
#include "kernels/backend.h"
#include "kernels/gemm.h"
#include "kernels/gemm_impl.h"

static uint64_t rng = 88172645463325252ull;
static uint16_t rand_bf16(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	float v = ((float)(rng >> 40) / (float)(1 << 24) - 0.5f) * 4.0f; /* normal or zero-free */
	return dsv32_f32_to_bf16(v == 0.0f ? 0.25f : v);
}

static float oracle(const uint16_t *x, int64_t sx, const uint16_t *w, int64_t sw, int64_t K)
{
	float y = 0.0f;
	for (int64_t k0 = 0; k0 < K; k0 += 1024) {
		float acc = 0.0f;
		for (int64_t j = k0 / 2; 2 * j < K && 2 * j < k0 + 1024; j++) {
			float xo = 2 * j + 1 < K ? dsv32_bf16_to_f32(x[(2 * j + 1) * sx]) : 0.0f;
			float wo = 2 * j + 1 < K ? dsv32_bf16_to_f32(w[(2 * j + 1) * sw]) : 0.0f;
			acc = acc + xo * wo;
			acc = acc + dsv32_bf16_to_f32(x[2 * j * sx]) * dsv32_bf16_to_f32(w[2 * j * sw]);
		}
		y = k0 == 0 ? acc : y + acc;
	}
	return y;
}

/* One row (M = 1): 16 lanes from +0, lane l taking pairs j = l mod 16 of all of K as above,
 * then (l + l+8), (l + l+4), (0+1) + (2+3): torch's single-row order (gemm_dpbf16.c). */
static float oracle_row(const uint16_t *x, const uint16_t *w, int64_t sw, int64_t K)
{
	float lane[16] = {0};
	for (int64_t j = 0; 2 * j < K; j++) {
		float xo = 2 * j + 1 < K ? dsv32_bf16_to_f32(x[2 * j + 1]) : 0.0f;
		float wo = 2 * j + 1 < K ? dsv32_bf16_to_f32(w[(2 * j + 1) * sw]) : 0.0f;
		float *l = &lane[j % 16];
		*l = *l + xo * wo;
		*l = *l + dsv32_bf16_to_f32(x[2 * j]) * dsv32_bf16_to_f32(w[2 * j * sw]);
	}
	for (int h = 8; h >= 4; h /= 2)
		for (int i = 0; i < h; i++)
			lane[i] = lane[i] + lane[i + h];
	return (lane[0] + lane[1]) + (lane[2] + lane[3]);
}

static void check(int64_t B, int64_t M, int64_t N, int64_t K, bool trans, bool y_f32, int threads,
		  int64_t wpad)
{
	int64_t ldx = K + 3, ldw = trans ? K + wpad : N + 5, ldy = N + 2;
	int64_t sxb = M * ldx + 7, swb = (trans ? N : K) * ldw + 3, syb = M * ldy + 1;
	uint16_t *x = malloc((size_t)(B * sxb) * 2), *w = malloc((size_t)(B * swb) * 2);
	void *y = calloc((size_t)(B * syb), 4);
	for (int64_t i = 0; i < B * sxb; i++)
		x[i] = rand_bf16();
	for (int64_t i = 0; i < B * swb; i++)
		w[i] = rand_bf16();
	dsv32_gemm_desc d = {.batch = B, .M = M, .N = N, .K = K, .trans_w = trans,
			     .x_dtype = DSV32_BF16, .w_dtype = DSV32_BF16,
			     .y_dtype = y_f32 ? DSV32_F32 : DSV32_BF16, .x = x, .ldx = ldx,
			     .stride_x = sxb, .w = w, .ldw = ldw, .stride_w = swb, .y = y,
			     .ldy = ldy, .stride_y = syb};
	omp_set_num_threads(threads);
	assert_int_equal(dsv32_gemm_dpbf16(&d, NULL), DSV32_OK);
	for (int64_t b = 0; b < B; b++)
		for (int64_t m = 0; m < M; m++)
			for (int64_t n = 0; n < N; n++) {
				const uint16_t *xr = x + b * sxb + m * ldx;
				const uint16_t *wc = w + b * swb + (trans ? n * ldw : n);
				float want = M == 1 && dsv32_gemm_dpbf16_row_lanes()
						     ? oracle_row(xr, wc, trans ? 1 : ldw, K)
						     : oracle(xr, 1, wc, trans ? 1 : ldw, K);
				int64_t i = b * syb + m * ldy + n;
				uint32_t got, exp;
				if (y_f32) {
					memcpy(&got, (float *)y + i, 4);
					memcpy(&exp, &want, 4);
				} else {
					got = ((uint16_t *)y)[i];
					exp = dsv32_f32_to_bf16(want);
				}
				if (got != exp)
					fail_msg("B%lld M%lld N%lld K%lld %s y %s, %d thread(s): y[%lld,%lld,"
						 "%lld] bits %08x, the order gives %08x", (long long)B,
						 (long long)M, (long long)N, (long long)K,
						 trans ? "NT" : "NN", y_f32 ? "F32" : "BF16", threads,
						 (long long)b, (long long)m, (long long)n, got, exp);
			}
	free(x);
	free(w);
	free(y);
}

static void test_dpbf16_is_its_written_order(void **state)
{
	(void)state;
	static const int64_t shapes[][4] = {
		{1, 1, 1, 1},	  {1, 5, 33, 7},     {2, 7, 70, 129}, {1, 120, 256, 512},
		{1, 3, 64, 7168}, {2, 40, 19, 130}, {1, 33, 9, 256}, {1, 17, 24, 2049},
	};
	/* wpad 1 or 2: an "NT" w with an odd or even row stride (even K and stride: read in place
	 * as rows of pairs; otherwise packed) */
	for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
		for (int t = 0; t < 2; t++)
			for (int f = 0; f < 2; f++)
				for (int64_t wpad = 1; wpad <= 2; wpad++)
					check(shapes[s][0], shapes[s][1], shapes[s][2], shapes[s][3],
					      t == 0, f == 0, 1 + (int)(s % 2), wpad);
}

/* M <= 4 with an "NT" w of even K and row stride takes the body whose lanes run across 16
 * columns of w (transposed 16 x 16): every such M, N off the 64-column tiles and off 16, K with
 * a pair count off 16, one pair past a 1024-value chunk, and several chunks. */
static void test_dpbf16_small_m_is_its_written_order(void **state)
{
	(void)state;
	static const int64_t ns[] = {1, 15, 16, 70, 129, 300};
	static const int64_t ks[] = {2, 34, 1026, 2050, 7168};
	for (int64_t m = 1; m <= 4; m++)
		for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++)
			for (size_t j = 0; j < sizeof ks / sizeof ks[0]; j++)
				check(1 + (int64_t)(j % 2), m, ns[i], ks[j], true, (i + j) % 2 == 0,
				      1 + (int)((i + m) % 2), 2);
}

/* The host engine takes this body and names it in the numerics key (with the one-row order
 * of DSV32_HOST_BF16_ROW=lanes under its own name). */
static void test_host_engine_names_it(void **state)
{
	(void)state;
	assert_string_equal(dsv32_gemm_bf16_impl(), dsv32_gemm_dpbf16_row_lanes()
							    ? "dsv32:dpbf16-seq-row16"
							    : "dsv32:dpbf16-seq");
}

static int emit(char **a)
{
	int64_t M = atoll(a[0]), K = atoll(a[1]), N = atoll(a[2]);
	if (M <= 0 || K <= 0 || N <= 0)
		return 2;
	uint16_t *x = malloc((size_t)(M * K) * 2), *w = malloc((size_t)(N * K) * 2);
	uint16_t *y = malloc((size_t)(M * N) * 2);
	FILE *fx = fopen(a[3], "rb"), *fw = fopen(a[4], "rb");
	int rc = x && w && y && fx && fw && fread(x, 2, (size_t)(M * K), fx) == (size_t)(M * K) &&
				 fread(w, 2, (size_t)(N * K), fw) == (size_t)(N * K)
			 ? 0
			 : 2;
	if (fx)
		fclose(fx);
	if (fw)
		fclose(fw);
	dsv32_gemm_desc d = {.batch = 1, .M = M, .N = N, .K = K, .trans_w = true,
			     .x_dtype = DSV32_BF16, .w_dtype = DSV32_BF16, .y_dtype = DSV32_BF16,
			     .x = x, .ldx = K, .w = w, .ldw = K, .y = y, .ldy = N};
	FILE *fy = rc ? NULL : fopen(a[5], "wb");
	if (!fy || dsv32_gemm_dpbf16(&d, NULL) != DSV32_OK ||
	    fwrite(y, 2, (size_t)(M * N), fy) != (size_t)(M * N))
		rc = 2;
	if (fy && fclose(fy) != 0)
		rc = 2;
	free(x);
	free(w);
	free(y);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc == 8 && !strcmp(argv[1], "--emit"))
		return dsv32_gemm_dpbf16_usable() ? emit(argv + 2) : 77;
	if (!dsv32_gemm_dpbf16_usable()) {
		printf("# no AVX512-BF16 without AMX here (or DSV32_HOST_BF16=onednn): body not run\n");
		return 77;
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dpbf16_is_its_written_order),
		cmocka_unit_test(test_dpbf16_small_m_is_its_written_order),
		cmocka_unit_test(test_host_engine_names_it),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
