/* fp8_dequant_cpu.c: weight_dequant (fp8.h, docs/spec/ref_layout.md §B.5) on the CPU, and the
 * CPU body of dequant_gemm under the fixed engine (the hf layout's lazy fp8 matrices).
 *
 * Both go by 128-row groups of w8: every value of a group's 128-column block k comes from one
 * scale s = scale[n/128, k/128], so the group's bf16 values are a table lookup,
 * T[kb][code] = bf16(fp32(code) · s), each entry computed by the contract's fp32 multiply and
 * RNE rounding (dsv32_f32_to_bf16, NaN kept quiet). The lookup gives every value, NaN codes and
 * signs included, the bits of the formula; AVX-512BW runs it 32 codes at a time (four VPERMI2W
 * over the 256 entries). With AVX2 alone the formula itself runs 8 at a time (rows_avx2), and
 * without AVX2 the table one code at a time.
 *
 * dequant_gemm's fixed body never writes the N·K matrix: each thread takes whole groups, turns
 * rows_per_block(K) rows at a time into bf16 in a buffer that stays in its L2 and runs the
 * fixed engine on those columns of y. The fixed engine forms each output alone in its one
 * order, whatever the columns of a call (gemm.h), so y has the bits of weight_dequant followed
 * by one dsv32_gemm. */
#include "kernels/fp8_impl.h"
#include "kernels/cpu_scratch.h"
#include "kernels/cpu_parallel.h"
#include "kernels/gemm_impl.h"

#include <string.h>

#define BLK DSV32_FP8_BLOCK
#define TAB 256 /* table entries per 128-column block */

/* T[kb·256 + c] = bf16(fp32(c) · srow[kb]) for kb < sk (lut: dsv32_e4m3_table). */
static void group_table_scalar(uint16_t *T, const float *srow, int64_t sk, const float *lut)
{
	for (int64_t kb = 0; kb < sk; kb++)
		for (int c = 0; c < TAB; c++)
			T[kb * TAB + c] = dsv32_f32_to_bf16(lut[c] * srow[kb]);
}

/* Rows [0, rows) of a group: d[r·ldd + k] = T[(k/128)·256 + w[r·ldw + k]]. */
static void rows_scalar(uint16_t *d, int64_t ldd, const uint8_t *w, int64_t ldw, int64_t rows,
			int64_t K, const uint16_t *T)
{
	for (int64_t r = 0; r < rows; r++)
		for (int64_t k = 0; k < K; k++)
			d[r * ldd + k] = T[(k / BLK) * TAB + w[r * ldw + k]];
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HAVE_BW_BODY 1
#define BW __attribute__((target("avx512f,avx512bw")))
#define PF_AHEAD 2048 /* bytes of codes fetched ahead of the lookup (rows are contiguous) */

/* dsv32_f32_to_bf16 of 16 lanes (RNE; a NaN keeps sign and payload, made quiet). */
BW static inline __m256i bf16x16(__m512 v)
{
	__m512i u = _mm512_castps_si512(v), hi = _mm512_srli_epi32(u, 16);
	__m512i r = _mm512_add_epi32(u, _mm512_add_epi32(_mm512_set1_epi32(0x7fff),
							 _mm512_and_si512(hi, _mm512_set1_epi32(1))));
	r = _mm512_srli_epi32(r, 16);
	__mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff)),
						_mm512_set1_epi32(0x7f800000));
	r = _mm512_mask_or_epi32(r, nan, hi, _mm512_set1_epi32(0x40));
	return _mm512_cvtepi32_epi16(r);
}

/* group_table_scalar with 16 entries a step (the same fp32 multiply and rounding). */
BW static void group_table_bw(uint16_t *T, const float *srow, int64_t sk, const float lut[TAB])
{
	for (int64_t kb = 0; kb < sk; kb++) {
		__m512 s = _mm512_set1_ps(srow[kb]);
		for (int c = 0; c < TAB; c += 16)
			_mm256_storeu_si256((__m256i *)(T + kb * TAB + c),
					    bf16x16(_mm512_mul_ps(_mm512_loadu_ps(lut + c), s)));
	}
}

/* 32 codes looked up in the 256 entries t[0..7] (32 each): code bits 0-5 pick within a pair
 * of registers, bit 6 and bit 7 the pair. */
BW static inline __m512i lookup32(const __m512i t[8], __m256i codes)
{
	__m512i idx = _mm512_cvtepu8_epi16(codes);
	__m512i a = _mm512_permutex2var_epi16(t[0], idx, t[1]);
	__m512i b = _mm512_permutex2var_epi16(t[2], idx, t[3]);
	__m512i c = _mm512_permutex2var_epi16(t[4], idx, t[5]);
	__m512i d = _mm512_permutex2var_epi16(t[6], idx, t[7]);
	__mmask32 b6 = _mm512_test_epi16_mask(idx, _mm512_set1_epi16(0x40));
	__mmask32 b7 = _mm512_test_epi16_mask(idx, _mm512_set1_epi16(0x80));
	return _mm512_mask_blend_epi16(b7, _mm512_mask_blend_epi16(b6, a, b),
				       _mm512_mask_blend_epi16(b6, c, d));
}

/* rows_scalar, 32 codes a step (the tail of each 128-block one at a time). */
BW static void rows_bw(uint16_t *d, int64_t ldd, const uint8_t *w, int64_t ldw, int64_t rows,
		       int64_t K, const uint16_t *T)
{
	for (int64_t r = 0; r < rows; r++) {
		const uint8_t *src = w + r * ldw;
		uint16_t *dst = d + r * ldd;
		for (int64_t k0 = 0; k0 < K; k0 += BLK) {
			const uint16_t *tk = T + (k0 / BLK) * TAB;
			__m512i t[8];
			for (int i = 0; i < 8; i++)
				t[i] = _mm512_loadu_si512(tk + 32 * i);
			int64_t k1 = K - k0 < BLK ? K : k0 + BLK, k = k0;
			for (; k + 32 <= k1; k += 32) {
				_mm_prefetch((const char *)src + k + PF_AHEAD, _MM_HINT_T0);
				_mm512_storeu_si512(dst + k, lookup32(t, _mm256_loadu_si256(
									(const __m256i *)(src + k))));
			}
			for (; k < k1; k++)
				dst[k] = tk[src[k]];
		}
	}
}
#endif

#ifdef HAVE_BW_BODY
#include "kernels/elementwise_cpu_avx2.h"
#define A2 __attribute__((target("avx2,f16c")))

/* rows_scalar without the table where AVX2 is all there is: 8 codes a step decoded exactly
 * (dsv32_e4m3x8_f16c), times s (the formula's one fp32 multiply), rounded by dsv32_bf16bits8
 * (dsv32_f32_to_bf16's bits). A step holding a NaN code (decoded as +-480 there) and the tail
 * of a block take the table. */
A2 static void rows_avx2(uint16_t *d, int64_t ldd, const uint8_t *w, int64_t ldw, int64_t rows,
			 int64_t K, const uint16_t *T, const float *srow)
{
	for (int64_t r = 0; r < rows; r++) {
		const uint8_t *src = w + r * ldw;
		uint16_t *dst = d + r * ldd;
		for (int64_t k0 = 0; k0 < K; k0 += BLK) {
			const uint16_t *tk = T + (k0 / BLK) * TAB;
			__m256 s = _mm256_set1_ps(srow[k0 / BLK]);
			int64_t k1 = K - k0 < BLK ? K : k0 + BLK, k = k0;
			for (; k + 8 <= k1; k += 8) {
				_mm_prefetch((const char *)src + k + PF_AHEAD, _MM_HINT_T0);
				__m128i mx = _mm_setzero_si128();
				__m256 f = dsv32_e4m3x8_f16c(src + k, &mx);
				if (dsv32_e4m3_nan_seen(mx)) {
					for (int j = 0; j < 8; j++)
						dst[k + j] = tk[src[k + j]];
					continue;
				}
				__m256i b = dsv32_bf16bits8(_mm256_mul_ps(f, s));
				_mm_storeu_si128((__m128i *)(dst + k),
						 _mm_packus_epi32(_mm256_castsi256_si128(b),
								  _mm256_extracti128_si256(b, 1)));
			}
			for (; k < k1; k++)
				dst[k] = tk[src[k]];
		}
	}
}
#endif

/* The tables of the group whose scale row is srow (sk blocks). */
static void group_table(uint16_t *T, const float *srow, int64_t sk, bool bw, const float *lut)
{
#ifdef HAVE_BW_BODY
	if (bw) {
		group_table_bw(T, srow, sk, lut);
		return;
	}
#endif
	(void)bw;
	group_table_scalar(T, srow, sk, lut);
}

/* The vector body a call takes, following the fixed GEMM engine's (gemm.h "Bodies": so
 * DSV32_GEMM_NO_AVX512=1 and DSV32_GEMM_NO_AVX2=1 choose the lower ones here too; the tests run
 * the table one code at a time that way): 2 AVX-512BW under an avx512 body, 1 AVX2 + F16C
 * under any vector body, 0 none. */
static int vec_body(void)
{
#ifdef HAVE_BW_BODY
	const char *b = dsv32_gemm_fixed_body();
	if (strncmp(b, "avx512", 6) == 0 && __builtin_cpu_supports("avx512bw"))
		return 2;
	return strcmp(b, "scalar") != 0;
#else
	return 0;
#endif
}

/* rows of the group whose tables are T and scale row srow. */
static void group_rows(uint16_t *d, int64_t ldd, const uint8_t *w, int64_t ldw, int64_t rows,
		       int64_t K, const uint16_t *T, const float *srow, int body)
{
#ifdef HAVE_BW_BODY
	if (body == 2) {
		rows_bw(d, ldd, w, ldw, rows, K, T);
		return;
	}
	if (body == 1) {
		rows_avx2(d, ldd, w, ldw, rows, K, T, srow);
		return;
	}
#endif
	(void)body, (void)srow;
	rows_scalar(d, ldd, w, ldw, rows, K, T);
}

/* Per-thread buffers are asked for at least the sizes the largest K of the model's matrices
 * needs (18432: 144 tables; a block of 32 rows), so that a thread's buffers stop growing
 * whichever groups it happened to take in the first steps (no allocation in a decode step). */
#define MIN_TAB_BYTES ((size_t)160 * TAB * sizeof(uint16_t))
#define MIN_BUF_BYTES ((size_t)3 << 19)

void dsv32_weight_dequant_cpu(void *w, dsv32_dtype wt, const dsv32_f8 *w8, const float *scale,
			      int64_t N, int64_t K)
{
	float lut[TAB];
	dsv32_e4m3_table(lut);
	int64_t sk = (K + BLK - 1) / BLK, ng = (N + BLK - 1) / BLK;
	if (wt == DSV32_F32) { /* no rounding: fp32(code) · s */
#pragma omp parallel for schedule(static) if (dsv32_par_worth((double)N * (double)K))
		for (int64_t n = 0; n < N; n++) {
			const float *srow = scale + (n / BLK) * sk;
			for (int64_t k = 0; k < K; k++)
				((float *)w)[n * K + k] = lut[w8[n * K + k]] * srow[k / BLK];
		}
		return;
	}
	int body = vec_body();
#pragma omp parallel for schedule(dynamic, 1) if (dsv32_par_worth((double)N * (double)K))
	for (int64_t g = 0; g < ng; g++) {
		int64_t n0 = g * BLK, rows = N - n0 < BLK ? N - n0 : BLK;
		size_t tab_bytes = (size_t)(sk * TAB) * sizeof(uint16_t);
		uint16_t *T = dsv32_cpu_scratch(0, tab_bytes > MIN_TAB_BYTES ? tab_bytes
									  : MIN_TAB_BYTES);
		if (T) {
			group_table(T, scale + g * sk, sk, body == 2, lut);
			group_rows((uint16_t *)w + n0 * K, K, (const uint8_t *)w8 + n0 * K, K, rows,
				   K, T, scale + g * sk, body);
		} else { /* no memory for a table: the formula itself, value by value */
			for (int64_t i = n0 * K; i < (n0 + rows) * K; i++)
				((uint16_t *)w)[i] = dsv32_f32_to_bf16(
					lut[w8[i]] * scale[g * sk + (i % K) / BLK]);
		}
	}
}

/* Rows of w per block in dequant_gemm: as many as keep the block's bf16 values within about
 * 1.5 MiB (a core's L2 here), a power of two from 8 to 128 so blocks never straddle a group,
 * and at least 32 so that x, packed again for each block, stays a small part of the work. */
static int64_t rows_per_block(int64_t K)
{
	int64_t nb = 128;
	while (nb > 32 && nb * K * 2 > (int64_t)(3u << 19))
		nb /= 2;
	return nb;
}

/* Group g's columns of y: its tables, then blocks of rows dequantized into buf and multiplied
 * by the fixed engine. */
static dsv32_status dequant_gemm_group(const dsv32_gemm_desc *whole, const dsv32_f8 *w8,
				       const float *scale, int64_t g, int body, const float *lut,
				       dsv32_error *err)
{
	int64_t N = whole->N, K = whole->K, sk = (K + BLK - 1) / BLK, nb = rows_per_block(K);
	int64_t n0 = g * BLK, n1 = N - n0 < BLK ? N : n0 + BLK;
	size_t tab_bytes = (size_t)(sk * TAB) * sizeof(uint16_t);
	size_t buf_bytes = (size_t)(nb * K) * sizeof(uint16_t);
	uint16_t *T = dsv32_cpu_scratch(0, tab_bytes > MIN_TAB_BYTES ? tab_bytes : MIN_TAB_BYTES);
	uint16_t *buf = dsv32_cpu_scratch(1, buf_bytes > MIN_BUF_BYTES ? buf_bytes : MIN_BUF_BYTES);
	if (!T || !buf)
		return DSV32_FAIL(err, DSV32_E_NOMEM, "dequant_gemm: %lld-row block buffers for "
				  "K %lld", (long long)nb, (long long)K);
	group_table(T, scale + g * sk, sk, body == 2, lut);
	size_t ysz = dsv32_dtype_size(whole->y_dtype);
	for (int64_t r0 = n0; r0 < n1; r0 += nb) {
		int64_t rows = n1 - r0 < nb ? n1 - r0 : nb;
		group_rows(buf, K, (const uint8_t *)w8 + r0 * K, K, rows, K, T, scale + g * sk,
			   body);
		dsv32_gemm_desc d = *whole;
		d.N = rows;
		d.w = buf;
		d.y = (char *)whole->y + (size_t)r0 * ysz;
		DSV32_TRY(dsv32_gemm_fixed(&d, err));
	}
	return DSV32_OK;
}

/* One group of dequant_gemm_cpu, its error kept in *first (the first one met wins). */
static void group_or_skip(const dsv32_gemm_desc *whole, const dsv32_f8 *w8, const float *scale,
			  int64_t g, int body, const float *lut, dsv32_status *rc,
			  dsv32_error *first)
{
	dsv32_status st;
#pragma omp atomic read
	st = *rc;
	if (st != DSV32_OK)
		return;
	dsv32_error e = {0};
	st = dequant_gemm_group(whole, w8, scale, g, body, lut, &e);
	if (st == DSV32_OK)
		return;
#pragma omp critical(dsv32_dequant_gemm_err)
	if (first->code == DSV32_OK) {
		*first = e;
#pragma omp atomic write
		*rc = st;
	}
}

dsv32_status dsv32_dequant_gemm_cpu(void *y, dsv32_dtype yt, const void *x, dsv32_dtype xt,
				    const dsv32_f8 *w8, const float *scale, int64_t M, int64_t N,
				    int64_t K, dsv32_error *err)
{
	dsv32_gemm_desc whole = {.batch = 1, .M = M, .N = N, .K = K, .trans_w = true,
				 .x_dtype = xt, .w_dtype = DSV32_BF16, .y_dtype = yt, .x = x,
				 .ldx = K, .ldw = K, .y = y, .ldy = N};
	float lut[TAB];
	dsv32_e4m3_table(lut);
	int body = vec_body();
	int64_t ng = (N + BLK - 1) / BLK;
	dsv32_status rc = DSV32_OK;
	dsv32_error first = {0};
	/* Each thread runs whole groups, the fixed engine inside on that thread alone (a nested
	 * parallel region is inactive). Where that is not worth it no parallel construct is
	 * entered at all: inside an inactive one the engine's own region would be a nested active
	 * one, whose threads libgomp creates anew each time. */
	if (ng > 1 && dsv32_par_worth((double)M * (double)N * (double)K)) {
#pragma omp parallel for schedule(dynamic, 1)
		for (int64_t g = 0; g < ng; g++)
			group_or_skip(&whole, w8, scale, g, body, lut, &rc, &first);
	} else {
		for (int64_t g = 0; g < ng; g++)
			group_or_skip(&whole, w8, scale, g, body, lut, &rc, &first);
	}
	dsv32_cpu_scratch_done(1);
	if (rc != DSV32_OK && err)
		*err = first;
	return rc;
}
