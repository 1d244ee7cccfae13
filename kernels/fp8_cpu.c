/* fp8_cpu.c: CPU bodies of the fp8 family (fp8.h; docs/spec/ref_layout.md §B.2, §B.5, §B.6).
 * OpenMP over 128-blocks / rows; fp8_gemm runs one sgemm per K block on e4m3 values widened to
 * f32 (exact), then scales and accumulates the blocks in increasing order.
 * act_quant / fp8_roundtrip with AVX2: quant_block_avx2 does the same fp32 operations in 8 lanes
 * (amax as a max of |x| that skips NaN like the scalar compare, one true division x / s, the
 * clamps as min/max that keep NaN, the e4m3 RNE encoding by integer rounding of the f32 bits,
 * which equals dsv32_f32_to_e4m3 on every input: checked exhaustively), so its codes and scales
 * are bit-identical to quant_block's. */
#include "kernels/fp8_impl.h"
#include "kernels/cpu_scratch.h"
#include "kernels/cpu_parallel.h"
#include "kernels/gemm_impl.h"
#include "kernels/elementwise_cpu_avx2.h"

#include <stdlib.h>
#include <string.h>

#define BLK DSV32_FP8_BLOCK

static inline float load(const void *x, dsv32_dtype t, int64_t i)
{
	return t == DSV32_F32 ? ((const float *)x)[i] : dsv32_bf16_to_f32(((const uint16_t *)x)[i]);
}

static inline void store(void *y, dsv32_dtype t, int64_t i, float v)
{
	if (t == DSV32_F32)
		((float *)y)[i] = v;
	else
		((uint16_t *)y)[i] = dsv32_f32_to_bf16(v);
}

/* Quantize one block of 128 values at x + base; returns the scale. */
static float quant_block(dsv32_f8 q[BLK], const void *x, dsv32_dtype xt, int64_t base, bool ue8m0)
{
	float v[BLK], amax = 0.0f;
	for (int j = 0; j < BLK; j++) {
		v[j] = load(x, xt, base + j);
		float a = fabsf(v[j]);
		if (a > amax)
			amax = a;
	}
	float s = dsv32_fp8_scale_elem(amax, ue8m0);
	for (int j = 0; j < BLK; j++)
		q[j] = dsv32_fp8_quant_elem(v[j], s);
	return s;
}

#ifdef DSV32_CPU_AVX2
/* dsv32_f32_to_e4m3 of 8 lanes, as 8 x i32 codes. */
DSV32_AVX2_FN static inline __m256i e4m3_8(__m256 q)
{
	__m256i u = _mm256_castps_si256(q);
	__m256i sign = _mm256_and_si256(_mm256_srli_epi32(u, 24), _mm256_set1_epi32(0x80));
	__m256i a = _mm256_and_si256(u, _mm256_set1_epi32(0x7fffffff));
	/* normal e4m3 (|q| >= 2^-6): RNE of the f32 bits to 3 mantissa bits, rebias 127 -> 7 */
	__m256i lsb = _mm256_and_si256(_mm256_srli_epi32(a, 20), _mm256_set1_epi32(1));
	__m256i nrm = _mm256_add_epi32(_mm256_add_epi32(a, _mm256_set1_epi32(0x7ffff)), lsb);
	nrm = _mm256_sub_epi32(_mm256_srli_epi32(nrm, 20), _mm256_set1_epi32(120 << 3));
	/* subnormal e4m3: rint(|q| * 2^9) in the current rounding mode, as rintf */
	__m256 af = _mm256_castsi256_ps(a);
	__m256i sub = _mm256_cvtps_epi32(_mm256_mul_ps(af, _mm256_set1_ps(512.0f)));
	__m256i is_nrm = _mm256_cmpgt_epi32(a, _mm256_set1_epi32(0x3c800000 - 1));
	__m256i code = _mm256_blendv_epi8(sub, nrm, is_nrm);
	__m256i big = _mm256_cmpgt_epi32(a, _mm256_set1_epi32(0x43e00000 - 1)); /* >= 448 */
	code = _mm256_blendv_epi8(code, _mm256_set1_epi32(0x7e), big);
	__m256i nan = _mm256_cmpgt_epi32(a, _mm256_set1_epi32(0x7f800000));
	code = _mm256_blendv_epi8(code, _mm256_set1_epi32(0x7f), nan);
	return _mm256_or_si256(code, sign);
}

DSV32_AVX2_FN static float quant_block_avx2(dsv32_f8 q[BLK], const void *x, dsv32_dtype xt,
					    int64_t base, bool ue8m0)
{
	__m256 v[BLK / 8], am = _mm256_setzero_ps();
	__m256 absm = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
	for (int j = 0; j < BLK / 8; j++) {
		v[j] = dsv32_ld8(x, xt, base + 8 * j);
		am = _mm256_max_ps(_mm256_and_ps(v[j], absm), am); /* NaN lanes keep am */
	}
	float s = dsv32_fp8_scale_elem(dsv32_hmax8(am), ue8m0);
	__m256 vs = _mm256_set1_ps(s), hi = _mm256_set1_ps(DSV32_E4M3_MAX);
	__m256 lo = _mm256_set1_ps(-DSV32_E4M3_MAX);
	for (int j = 0; j < BLK / 8; j++) {
		__m256 t = _mm256_div_ps(v[j], vs);
		t = _mm256_min_ps(hi, t); /* hi < t ? hi : t: NaN stays */
		t = _mm256_max_ps(lo, t);
		__m256i c = e4m3_8(t);
		__m128i w = _mm_packus_epi32(_mm256_castsi256_si128(c), _mm256_extracti128_si256(c, 1));
		_mm_storel_epi64((__m128i *)(q + 8 * j), _mm_packus_epi16(w, w));
	}
	return s;
}

DSV32_AVX2_FN static void roundtrip_block_avx2(void *y, dsv32_dtype yt, const void *x,
					       dsv32_dtype xt, int64_t base, bool ue8m0,
					       const float lut[256])
{
	dsv32_f8 q[BLK];
	float d[BLK];
	float s = quant_block_avx2(q, x, xt, base, ue8m0); /* reads the whole block first */
	for (int j = 0; j < BLK; j++)
		d[j] = lut[q[j]];
	__m256 vs = _mm256_set1_ps(s);
	for (int j = 0; j < BLK; j += 8)
		dsv32_st8(y, yt, base + j, _mm256_mul_ps(_mm256_loadu_ps(d + j), vs));
}
#endif

void dsv32_act_quant_cpu(dsv32_f8 *y8, float *s, const void *x, dsv32_dtype xt, int64_t rows,
			 int64_t K, bool ue8m0)
{
	int64_t nblk = rows * (K / BLK);
#ifdef DSV32_CPU_AVX2
	if (dsv32_cpu_has_avx2()) {
#pragma omp parallel for schedule(static) if (dsv32_par_worth((double)nblk * BLK))
		for (int64_t b = 0; b < nblk; b++)
			s[b] = quant_block_avx2(y8 + b * BLK, x, xt, b * BLK, ue8m0);
		return;
	}
#endif
#pragma omp parallel for schedule(static) if (dsv32_par_worth((double)nblk * BLK))
	for (int64_t b = 0; b < nblk; b++)
		s[b] = quant_block(y8 + b * BLK, x, xt, b * BLK, ue8m0);
}

void dsv32_fp8_roundtrip_cpu(void *y, dsv32_dtype yt, const void *x, dsv32_dtype xt,
			     int64_t rows, int64_t K, bool ue8m0)
{
	int64_t nblk = rows * (K / BLK);
#ifdef DSV32_CPU_AVX2
	if (dsv32_cpu_has_avx2()) {
		float lut[256];
		dsv32_e4m3_table(lut);
#pragma omp parallel for schedule(static) if (dsv32_par_worth((double)nblk * BLK))
		for (int64_t b = 0; b < nblk; b++)
			roundtrip_block_avx2(y, yt, x, xt, b * BLK, ue8m0, lut);
		return;
	}
#endif
#pragma omp parallel for schedule(static) if (dsv32_par_worth((double)nblk * BLK))
	for (int64_t b = 0; b < nblk; b++) {
		dsv32_f8 q[BLK];
		float s = quant_block(q, x, xt, b * BLK, ue8m0); /* reads the whole block first */
		for (int j = 0; j < BLK; j++)
			store(y, yt, b * BLK + j, dsv32_e4m3_to_f32(q[j]) * s);
	}
}

static void write_out(void *y, dsv32_dtype yt, const float *acc, int64_t M, int64_t N)
{
	if (yt == DSV32_F32) {
		memcpy(y, acc, (size_t)(M * N) * sizeof(float));
		return;
	}
	dsv32_gemm_store_bf16(y, N, acc, M, N);
}

/* The fixed GEMM engine (gemm_fixed.c) with one chunk per 128-block: the same bits on every
 * CPU, for either engine (DeepSeek's fp8_gemm has no torch CPU counterpart to follow). */
dsv32_status dsv32_fp8_gemm_cpu(void *y, dsv32_dtype yt, const dsv32_f8 *x8, const float *xs,
				const dsv32_f8 *w8, const float *ws, int64_t M, int64_t N,
				int64_t K, dsv32_error *err)
{
	int64_t Kp = (K + 7) & ~(int64_t)7, nkb = (K + BLK - 1) / BLK;
	dsv32_gemm_wref w = {w8, DSV32_F8_E4M3, true, K};
	float *acc = dsv32_cpu_scratch(1, (size_t)(M * N) * sizeof(float));
	if (!acc)
		return DSV32_FAIL(err, DSV32_E_NOMEM, "fp8_gemm: scratch for M %lld N %lld K %lld",
				  (long long)M, (long long)N, (long long)K);
	bool done = false;
	dsv32_status rc = dsv32_gemm_fixed_e4m3x(acc, x8, M, K, &w, N, xs, ws, nkb, &done, err);
	if (rc != DSV32_OK || done) {
		if (rc == DSV32_OK)
			write_out(y, yt, acc, M, N);
		dsv32_cpu_scratch_done(1);
		return rc;
	}
	float *xf = dsv32_cpu_scratch(0, (size_t)(M * Kp) * sizeof(float));
	if (!xf) {
		dsv32_cpu_scratch_done(1);
		return DSV32_FAIL(err, DSV32_E_NOMEM, "fp8_gemm: scratch for M %lld N %lld K %lld",
				  (long long)M, (long long)N, (long long)K);
	}
	float lut[256];
	dsv32_e4m3_table(lut);
	for (int64_t m = 0; m < M; m++) {
		for (int64_t k = 0; k < K; k++)
			xf[m * Kp + k] = lut[x8[m * K + k]];
		for (int64_t k = K; k < Kp; k++) /* the K padding reads as zero */
			xf[m * Kp + k] = 0.0f;
	}
	rc = dsv32_gemm_fixed_f32x(acc, xf, M, Kp, &w, N, K, BLK, xs, ws, nkb, err);
	if (rc == DSV32_OK)
		write_out(y, yt, acc, M, N);
	dsv32_cpu_scratch_done(0);
	dsv32_cpu_scratch_done(1);
	return rc;
}
