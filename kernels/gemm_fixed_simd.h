/* gemm_fixed_simd.h: helpers shared by the fixed GEMM engine's bodies (gemm_fixed.c,
 * gemm_fixed_avx512.c). Each body is compiled for its own ISA through a target attribute, so
 * the vector helpers take the includer's: define GF_TARGET before including this file. */
#ifndef DSV32_GEMM_FIXED_SIMD_H
#define DSV32_GEMM_FIXED_SIMD_H

#include "kernels/gemm_impl.h"

/* Element (n, k) of w widened exactly (e4m3 through the decode table lut). */
static inline float w_at(const dsv32_gemm_wref *w, const float *lut, int64_t n, int64_t k)
{
	int64_t i = w->trans ? n * w->ld + k : k * w->ld + n;
	if (w->dtype == DSV32_F32)
		return ((const float *)w->p)[i];
	if (w->dtype == DSV32_BF16)
		return dsv32_bf16_to_f32(((const uint16_t *)w->p)[i]);
	return lut[((const uint8_t *)w->p)[i]];
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

/* 8 consecutive w values at element offset off, widened exactly (e4m3 through lut). */
GF_TARGET static inline __m256 load8(const dsv32_gemm_wref *w, const float *lut, int64_t off)
{
	if (w->dtype == DSV32_BF16) {
		__m128i h = _mm_loadu_si128((const __m128i *)((const uint16_t *)w->p + off));
		return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
	}
	if (w->dtype == DSV32_F32)
		return _mm256_loadu_ps((const float *)w->p + off);
	__m128i c = _mm_loadl_epi64((const __m128i *)((const uint8_t *)w->p + off));
	return _mm256_i32gather_ps(lut, _mm256_cvtepu8_epi32(c), 4);
}

/* r[j][i] <- r[i][j] for an 8x8 f32 block */
GF_TARGET static inline void transpose8(__m256 r[8])
{
	__m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
	__m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
	__m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
	__m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
	__m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
	__m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
	__m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
	__m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
	r[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
	r[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
	r[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
	r[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
	r[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
	r[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
	r[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
	r[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}
#endif

#endif
