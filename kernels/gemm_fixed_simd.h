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

#define DSV32_TR8_TARGET GF_TARGET
#include "kernels/simd_transpose.h"
#endif

#endif
