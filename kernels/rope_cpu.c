/* rope_cpu.c: CPU body of RoPE and the de-interleave permutation (rope.h). One (b, s, h) row of
 * rd rope channels per iteration (dsv32_rope_row in rope.h, shared with the CUDA body).
 *
 * With AVX2 and rd a multiple of 16, the REF and HF rows run row_avx2 (8 channels a step, the
 * same fp32 ops on the same operands, no FMA):
 *   REF interleaved: 4 pairs a vector; (c, s) duplicated by moveldup / movehdup, the swapped
 *     pairs times s, and addsub gives re·c − im·s (even lanes) and im·c + re·s (odd lanes; the
 *     scalar re·s + im·c: IEEE addition is commutative).
 *   REF half-split: re = v[i..i+8), im = v[i+half..), c and s de-interleaved from the table.
 *   HF: rot = ±v[j ∓ half] (a sign flip, exact), round(x·c) + round(rot·s), rounded by the store.
 * Both halves of a step are read before either is written, so y may be x. Every non-NaN output
 * is bit-identical to dsv32_rope_row; a NaN output is NaN at the same position (sign and payload
 * unspecified, docs/numerics.md "NaN"). The permutation and other rd run dsv32_rope_row. */
#include "kernels/rope_impl.h"
#include "kernels/cpu_parallel.h"
#include "kernels/elementwise_cpu_avx2.h"

#ifdef DSV32_CPU_AVX2
DSV32_AVX2_FN static void row_ref_avx2(const dsv32_rope_args *a, int64_t s, int64_t base)
{
	int64_t rd = a->rd, half = rd / 2;
	const float *f = a->freqs + (a->pos0 + s) * rd; /* [half][2] */
	if (a->interleaved) {
		for (int64_t j = 0; j < rd; j += 8) {
			__m256 v = dsv32_ld8(a->x, a->xt, base + j);
			__m256 cs = _mm256_loadu_ps(f + j);
			__m256 p1 = _mm256_mul_ps(v, _mm256_moveldup_ps(cs));   /* re·c, im·c */
			__m256 sw = _mm256_permute_ps(v, 0xb1);                 /* im, re */
			__m256 p2 = _mm256_mul_ps(sw, _mm256_movehdup_ps(cs));  /* im·s, re·s */
			dsv32_st8(a->y, a->yt, base + j, _mm256_addsub_ps(p1, p2));
		}
		return;
	}
	for (int64_t i = 0; i < half; i += 8) {
		__m256 f0 = _mm256_loadu_ps(f + 2 * i), f1 = _mm256_loadu_ps(f + 2 * i + 8);
		__m256 c = _mm256_shuffle_ps(f0, f1, 0x88), sn = _mm256_shuffle_ps(f0, f1, 0xdd);
		c = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(c), 0xd8));
		sn = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(sn), 0xd8));
		__m256 re = dsv32_ld8(a->x, a->xt, base + i);
		__m256 im = dsv32_ld8(a->x, a->xt, base + half + i);
		__m256 ore = _mm256_sub_ps(_mm256_mul_ps(re, c), _mm256_mul_ps(im, sn));
		__m256 oim = _mm256_add_ps(_mm256_mul_ps(re, sn), _mm256_mul_ps(im, c));
		dsv32_st8(a->y, a->yt, base + i, ore);
		dsv32_st8(a->y, a->yt, base + half + i, oim);
	}
}

DSV32_AVX2_FN static inline __m256 hf_elem8(__m256 x, __m256 rot, __m256 c, __m256 sn, bool rb)
{
	__m256 p = _mm256_mul_ps(x, c), q = _mm256_mul_ps(rot, sn);
	if (rb) {
		p = dsv32_round8(p);
		q = dsv32_round8(q);
	}
	return _mm256_add_ps(p, q);
}

DSV32_AVX2_FN static void row_hf_avx2(const dsv32_rope_args *a, int64_t b, int64_t s,
				      int64_t base)
{
	int64_t rd = a->rd, half = rd / 2;
	int64_t cb = a->cB == 1 ? 0 : b, crow = (cb * a->S + s) * rd;
	bool rb = a->yt == DSV32_BF16;
	const __m256 sign = _mm256_set1_ps(-0.0f);
	for (int64_t i = 0; i < half; i += 8) {
		__m256 x1 = dsv32_ld8(a->x, a->xt, base + i);
		__m256 x2 = dsv32_ld8(a->x, a->xt, base + half + i);
		__m256 o1 = hf_elem8(x1, _mm256_xor_ps(x2, sign), dsv32_ld8(a->cos, a->ct, crow + i),
				     dsv32_ld8(a->sin, a->ct, crow + i), rb);
		__m256 o2 = hf_elem8(x2, x1, dsv32_ld8(a->cos, a->ct, crow + half + i),
				     dsv32_ld8(a->sin, a->ct, crow + half + i), rb);
		dsv32_st8(a->y, a->yt, base + i, o1);
		dsv32_st8(a->y, a->yt, base + half + i, o2);
	}
}
#endif

void dsv32_rope_cpu_portable(const dsv32_rope_args *a)
{
	int64_t nrows = a->B * a->S * a->H;
#pragma omp parallel for schedule(static) if (dsv32_par_worth((double)nrows * (double)a->rd))
	for (int64_t r = 0; r < nrows; r++) {
		int64_t b = r / (a->S * a->H), s = (r / a->H) % a->S;
		dsv32_rope_row(a, b, s, r * a->D + a->off);
	}
}

void dsv32_rope_cpu(const dsv32_rope_args *a)
{
#ifdef DSV32_CPU_AVX2
	if (dsv32_cpu_has_avx2() && a->rd % 16 == 0 && a->mode != DSV32_ROPE_PERMUTE) {
		int64_t nrows = a->B * a->S * a->H;
#pragma omp parallel for schedule(static) if (dsv32_par_worth((double)nrows * (double)a->rd))
		for (int64_t r = 0; r < nrows; r++) {
			int64_t b = r / (a->S * a->H), s = (r / a->H) % a->S;
			if (a->mode == DSV32_ROPE_REF)
				row_ref_avx2(a, s, r * a->D + a->off);
			else
				row_hf_avx2(a, b, s, r * a->D + a->off);
		}
		return;
	}
#endif
	dsv32_rope_cpu_portable(a);
}
