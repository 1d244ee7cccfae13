/* elementwise_cpu_avx2.h: AVX2 helpers of the k2 CPU bodies (kernels/<family>_cpu.c), host code only.
 *
 * The CPU bodies keep their scalar loops as the portable path and as the exact reference; where
 * the CPU has AVX2 (__builtin_cpu_supports) a row or block may instead run the vector code, which
 * performs the same IEEE fp32 operations on the same operands (one rounding each, no FMA: the
 * target is "avx2" only and host code is ISO C11, -ffp-contract=off), so every non-NaN output is
 * bit-identical to the scalar loops. NaN sign and payload are not part of any op's contract
 * (docs/numerics.md "NaN"): a NaN output is NaN at the same position, which NaN is unspecified
 * (an IEEE op with two NaN operands returns one of them depending on operand order). softmax and
 * act_quant still route NaN rows to the scalar loop (they were written before that decision);
 * rmsnorm, rope, silu_mul and hadamard do not. docs/perf.md ("Vectorised CPU element-wise
 * bodies") describes the checks. The one exception to "no FMA" is kernels/expf_avx2.c (softmax,
 * silu_mul): it reproduces glibc's __expf_fma, fused where that function fuses, and is used
 * only after a self-check against the running libm's expf (kernels/expf_avx2.h).
 *
 * Portable entry points (declared at the end, any CPU): the scalar loops of rmsnorm, rope,
 * silu_mul and hadamard, with the arguments of dsv32_<op>_cpu; tests compare the two.
 *
 *   dsv32_ld8(p, t, i)      8 elements of a BF16 or F32 buffer from element i, widened exactly
 *   dsv32_bf16bits8(v)      dsv32_f32_to_bf16 of 8 lanes (RNE, NaN quieted with its payload),
 *                           as 8 x u32
 *   dsv32_round8(v)         dsv32_round_bf16 of 8 lanes
 *   dsv32_st8(p, t, i, v)   dsv32_act_store of 8 lanes from element i
 *   dsv32_nan8(v)           all-ones lanes where v is NaN
 *   dsv32_e4m3x8_f16c(c, &mx)  8 e4m3 codes at c widened exactly through binary16 (F16C), the
 *                           NaN codes as +-480; mx keeps the running maximum of c | 0x80, which
 *                           is 0xff exactly where a NaN code was met (dsv32_e4m3_nan_seen)
 */
#ifndef DSV32_ELEMENTWISE_CPU_AVX2_H
#define DSV32_ELEMENTWISE_CPU_AVX2_H

#include "kernels/elementwise.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__CUDACC__)
#define DSV32_CPU_AVX2 1
#include <immintrin.h>

#define DSV32_AVX2_FN __attribute__((target("avx2")))

static inline bool dsv32_cpu_has_avx2(void)
{
	return __builtin_cpu_supports("avx2");
}

DSV32_AVX2_FN static inline __m256 dsv32_ld8(const void *p, dsv32_dtype t, int64_t i)
{
	if (t == DSV32_BF16) {
		__m128i h = _mm_loadu_si128((const __m128i *)((const uint16_t *)p + i));
		return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
	}
	return _mm256_loadu_ps((const float *)p + i);
}

DSV32_AVX2_FN static inline __m256i dsv32_bf16bits8(__m256 v)
{
	__m256i u = _mm256_castps_si256(v);
	__m256i mag = _mm256_and_si256(u, _mm256_set1_epi32(0x7fffffff));
	__m256i nan = _mm256_cmpgt_epi32(mag, _mm256_set1_epi32(0x7f800000));
	__m256i hi = _mm256_srli_epi32(u, 16);
	__m256i lsb = _mm256_and_si256(hi, _mm256_set1_epi32(1));
	__m256i r = _mm256_add_epi32(_mm256_add_epi32(u, _mm256_set1_epi32(0x7fff)), lsb);
	r = _mm256_srli_epi32(r, 16);
	__m256i q = _mm256_or_si256(hi, _mm256_set1_epi32(0x40));
	return _mm256_blendv_epi8(r, q, nan);
}

DSV32_AVX2_FN static inline __m256 dsv32_round8(__m256 v)
{
	return _mm256_castsi256_ps(_mm256_slli_epi32(dsv32_bf16bits8(v), 16));
}

DSV32_AVX2_FN static inline void dsv32_st8(void *p, dsv32_dtype t, int64_t i, __m256 v)
{
	if (t == DSV32_BF16) {
		__m256i b = dsv32_bf16bits8(v);
		__m128i h = _mm_packus_epi32(_mm256_castsi256_si128(b), _mm256_extracti128_si256(b, 1));
		_mm_storeu_si128((__m128i *)((uint16_t *)p + i), h);
	} else {
		_mm256_storeu_ps((float *)p + i, v);
	}
}

/* An e4m3 code's bits shifted into a binary16 (exponent bias 15 for e4m3's 7, the same 3
 * mantissa bits, subnormals included) are its value times 2^-8; binary16 -> f32 is exact, and
 * so is the multiply by 2^8. The fixed GEMM's avx2 body and the fp8 weight dequantization use
 * it; the avx512 body's e4m3x16_f16c is the same in 16 lanes. */
__attribute__((target("avx2,f16c"))) static inline __m256 dsv32_e4m3x8_f16c(const uint8_t *c,
									  __m128i *mx)
{
	__m128i v = _mm_loadl_epi64((const __m128i *)c), top = _mm_set1_epi8((char)0x80);
	*mx = _mm_max_epu8(*mx, _mm_or_si128(v, top));
	__m128i h = _mm_cvtepi8_epi16(v); /* sign-extended: bits 15 and 14 hold the sign */
	h = _mm_and_si128(_mm_slli_epi16(h, 7), _mm_set1_epi16((short)0xBF80));
	return _mm256_mul_ps(_mm256_cvtph_ps(h), _mm256_set1_ps(0x1p8f));
}

/* Whether the codes behind a dsv32_e4m3x8_f16c maximum held a NaN code. */
DSV32_AVX2_FN static inline bool dsv32_e4m3_nan_seen(__m128i mx)
{
	return (_mm_movemask_epi8(_mm_cmpeq_epi8(mx, _mm_set1_epi8((char)0xff))) & 0xff) != 0;
}

DSV32_AVX2_FN static inline __m256 dsv32_nan8(__m256 v)
{
	return _mm256_cmp_ps(v, v, _CMP_UNORD_Q);
}

/* Horizontal max of 8 lanes without NaNs (the order does not matter then). */
DSV32_AVX2_FN static inline float dsv32_hmax8(__m256 v)
{
	__m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
	m = _mm_max_ps(m, _mm_movehl_ps(m, m));
	m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
	return _mm_cvtss_f32(m);
}
#endif

/* ---- the portable scalar loops (every CPU); dsv32_<op>_cpu runs them where AVX2 is absent ---- */
#include "kernels/hadamard_impl.h"
#include "kernels/rmsnorm_impl.h"
#include "kernels/rope_impl.h"
#include "kernels/silu_impl.h"

void dsv32_rmsnorm_cpu_portable(const dsv32_rmsnorm_args *a);
void dsv32_rope_cpu_portable(const dsv32_rope_args *a);
void dsv32_silu_mul_cpu_portable(void *h, dsv32_dtype ht, const void *a, dsv32_dtype at,
				 const void *b, dsv32_dtype bt, int64_t n, bool hf);
void dsv32_hadamard_cpu_portable(void *y, dsv32_dtype yt, const void *x, dsv32_dtype xt,
				 int64_t rows, int64_t d, float scale);

#endif
