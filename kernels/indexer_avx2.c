/* indexer_avx2.c: AVX2 bodies of dsv32_fp8_index / dsv32_index_scores_hf (indexer.h): the scalar
 * bodies' operations with the lanes across 16 keys t of one batch row. Per (b, tile of 16 keys)
 * the keys are widened once into a [D][16] tile; each output's d sum and h sum stay sequential
 * fp32 chains from +0 (4 heads run side by side for latency, each its own chain). */
#include "kernels/indexer_impl.h"
#include "kernels/cpu_parallel.h"
#include "kernels/scores_simd.h"

#ifdef DSV32_CPU_AVX2

#define KT 16

typedef enum { Q_E4M3, Q_BF16, Q_F32 } qkind;

#define AI __attribute__((always_inline)) DSV32_AVX2_FN static inline

AI __m256 bq(const void *q, qkind k, const float *lut, int64_t i)
{
	if (k == Q_E4M3)
		return _mm256_broadcast_ss(lut + ((const uint8_t *)q)[i]);
	if (k == Q_BF16)
		return _mm256_castsi256_ps(
			_mm256_set1_epi32((int)((uint32_t)((const uint16_t *)q)[i] << 16)));
	return _mm256_broadcast_ss((const float *)q + i);
}

/* max(x, 0) keeping NaN (the scalar `x > 0 || x != x ? x : 0`): +0 for -0 and negatives. */
AI __m256 relu(__m256 x)
{
	return _mm256_and_ps(x, _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_NLE_UQ));
}

/* acc += head term of 16 lanes: fp8 ReLU(dot)·w; HF w·ReLU(dot·scale). */
AI void head(__m256 *a0, __m256 *a1, __m256 d0, __m256 d1, float w, bool hf, __m256 sc)
{
	__m256 wv = _mm256_set1_ps(w);
	if (hf) {
		*a0 = _mm256_add_ps(*a0, _mm256_mul_ps(wv, relu(_mm256_mul_ps(d0, sc))));
		*a1 = _mm256_add_ps(*a1, _mm256_mul_ps(wv, relu(_mm256_mul_ps(d1, sc))));
	} else {
		*a0 = _mm256_add_ps(*a0, _mm256_mul_ps(relu(d0), wv));
		*a1 = _mm256_add_ps(*a1, _mm256_mul_ps(relu(d1), wv));
	}
}

/* The head sums of one query row (q row at element qo, H heads of D) against the key tile. */
AI void row16(__m256 *a0, __m256 *a1, const void *q, int64_t qo, qkind qk, const float *lut,
	      const float *kt, const float *w, int64_t H, int64_t D, bool hf, float scale)
{
	const __m256 z = _mm256_setzero_ps(), sc = _mm256_set1_ps(scale);
	*a0 = z;
	*a1 = z;
	int64_t h = 0;
	for (; h + 4 <= H; h += 4) {
		__m256 p0 = z, p1 = z, q0 = z, q1 = z, r0 = z, r1 = z, s0 = z, s1 = z;
		const int64_t o = qo + h * D;
		for (int64_t d = 0; d < D; d++) {
			__m256 k0 = _mm256_load_ps(kt + d * KT), k1 = _mm256_load_ps(kt + d * KT + 8);
			__m256 x = bq(q, qk, lut, o + d);
			p0 = _mm256_add_ps(p0, _mm256_mul_ps(x, k0));
			p1 = _mm256_add_ps(p1, _mm256_mul_ps(x, k1));
			x = bq(q, qk, lut, o + D + d);
			q0 = _mm256_add_ps(q0, _mm256_mul_ps(x, k0));
			q1 = _mm256_add_ps(q1, _mm256_mul_ps(x, k1));
			x = bq(q, qk, lut, o + 2 * D + d);
			r0 = _mm256_add_ps(r0, _mm256_mul_ps(x, k0));
			r1 = _mm256_add_ps(r1, _mm256_mul_ps(x, k1));
			x = bq(q, qk, lut, o + 3 * D + d);
			s0 = _mm256_add_ps(s0, _mm256_mul_ps(x, k0));
			s1 = _mm256_add_ps(s1, _mm256_mul_ps(x, k1));
		}
		head(a0, a1, p0, p1, w[h], hf, sc);
		head(a0, a1, q0, q1, w[h + 1], hf, sc);
		head(a0, a1, r0, r1, w[h + 2], hf, sc);
		head(a0, a1, s0, s1, w[h + 3], hf, sc);
	}
	for (; h < H; h++) {
		__m256 p0 = z, p1 = z;
		const int64_t o = qo + h * D;
		for (int64_t d = 0; d < D; d++) {
			__m256 x = bq(q, qk, lut, o + d);
			p0 = _mm256_add_ps(p0, _mm256_mul_ps(x, _mm256_load_ps(kt + d * KT)));
			p1 = _mm256_add_ps(p1, _mm256_mul_ps(x, _mm256_load_ps(kt + d * KT + 8)));
		}
		head(a0, a1, p0, p1, w[h], hf, sc);
	}
}

/* 16 lanes of an F32 or BF16 row at element i, n valid (the rest 0), widened exactly. */
AI void ld16(__m256 *v0, __m256 *v1, const void *p, dsv32_dtype t, int64_t i, int64_t n)
{
	if (n == KT) {
		*v0 = dsv32_ld8(p, t, i);
		*v1 = dsv32_ld8(p, t, i + 8);
		return;
	}
	float tmp[KT] = {0};
	for (int64_t j = 0; j < n; j++)
		tmp[j] = t == DSV32_BF16 ? dsv32_bf16_to_f32(((const dsv32_bf16 *)p)[i + j])
					 : ((const float *)p)[i + j];
	*v0 = _mm256_loadu_ps(tmp);
	*v1 = _mm256_loadu_ps(tmp + 8);
}

AI void st16(float *o, __m256 v0, __m256 v1, int64_t n)
{
	if (n == KT) {
		_mm256_storeu_ps(o, v0);
		_mm256_storeu_ps(o + 8, v1);
		return;
	}
	float tmp[KT];
	_mm256_storeu_ps(tmp, v0);
	_mm256_storeu_ps(tmp + 8, v1);
	for (int64_t j = 0; j < n; j++)
		o[j] = tmp[j];
}

AI void mask16(__m256 *o0, __m256 *o1, const dsv32_idx_mask *m, int64_t b, int64_t i, int64_t t0,
	       int64_t n, int64_t T)
{
	if (!m->data)
		return;
	__m256 m0, m1;
	ld16(&m0, &m1, m->data, m->dtype, b * m->batch_stride + i * T + t0, n);
	*o0 = _mm256_add_ps(*o0, m0);
	*o1 = _mm256_add_ps(*o1, m1);
}

DSV32_AVX2_FN static void fp8_unit(const dsv32_idx_fp8_args *a, const float *lut, int64_t b,
				   int64_t t0)
{
	_Alignas(32) float kt[DSV32_IDX_VEC_DMAX * KT];
	const int64_t n = a->T - t0 < KT ? a->T - t0 : KT, D = a->D;
	for (int64_t j = 0; j < KT; j++) {
		const dsv32_f8 *kr = a->k8 + (b * a->Tc + t0 + j) * D;
		for (int64_t d = 0; d < D; d++)
			kt[d * KT + j] = j < n ? lut[kr[d]] : 0.0f;
	}
	__m256 ks0, ks1;
	ld16(&ks0, &ks1, a->k_s, DSV32_F32, b * a->Tcs + t0, n);
	for (int64_t i = 0; i < a->S; i++) {
		__m256 a0, a1;
		row16(&a0, &a1, a->q8, (b * a->S + i) * a->H * D, Q_E4M3, lut, kt,
		      a->w + (b * a->S + i) * a->H, a->H, D, false, 0.0f);
		a0 = _mm256_mul_ps(ks0, a0);
		a1 = _mm256_mul_ps(ks1, a1);
		mask16(&a0, &a1, &a->mask, b, i, t0, n, a->T);
		st16(a->out + (b * a->S + i) * a->T + t0, a0, a1, n);
	}
}

DSV32_AVX2_FN static void hf_unit(const dsv32_idx_hf_args *a, int64_t b, int64_t t0)
{
	_Alignas(32) float kt[DSV32_IDX_VEC_DMAX * KT];
	const int64_t n = a->T - t0 < KT ? a->T - t0 : KT, D = a->D;
	for (int64_t j = 0; j < KT; j++) {
		const int64_t kb = (b * a->Tc + t0 + j) * D;
		for (int64_t d = 0; d < D; d++)
			kt[d * KT + j] = j < n ? dsv32_idx_load(a->k, a->k_t, kb + d) : 0.0f;
	}
	const qkind qk = a->q_t == DSV32_BF16 ? Q_BF16 : Q_F32;
	for (int64_t i = 0; i < a->S; i++) {
		__m256 a0, a1;
		const int64_t qo = (b * a->S + i) * a->H * D;
		const float *w = a->w + (b * a->S + i) * a->H;
		if (qk == Q_BF16)
			row16(&a0, &a1, a->q, qo, Q_BF16, NULL, kt, w, a->H, D, true, a->scale);
		else
			row16(&a0, &a1, a->q, qo, Q_F32, NULL, kt, w, a->H, D, true, a->scale);
		mask16(&a0, &a1, &a->mask, b, i, t0, n, a->T);
		st16(a->out + (b * a->S + i) * a->T + t0, a0, a1, n);
	}
}

void dsv32_fp8_index_avx2(const dsv32_idx_fp8_args *a)
{
	float lut[256];
	dsv32_e4m3_table(lut);
	const int64_t nt = (a->T + KT - 1) / KT, units = a->B * nt;
#pragma omp parallel for schedule(dynamic, 1) if (dsv32_par_worth((double)(a->B * a->S) * (double)a->T * (double)(a->H * a->D)))
	for (int64_t u = 0; u < units; u++)
		fp8_unit(a, lut, u / nt, (u % nt) * KT);
}

void dsv32_index_scores_hf_avx2(const dsv32_idx_hf_args *a)
{
	const int64_t nt = (a->T + KT - 1) / KT, units = a->B * nt;
#pragma omp parallel for schedule(dynamic, 1) if (dsv32_par_worth((double)(a->B * a->S) * (double)a->T * (double)(a->H * a->D)))
	for (int64_t u = 0; u < units; u++)
		hf_unit(a, u / nt, (u % nt) * KT);
}

#else

void dsv32_fp8_index_avx2(const dsv32_idx_fp8_args *a)
{
	(void)a;
}

void dsv32_index_scores_hf_avx2(const dsv32_idx_hf_args *a)
{
	(void)a;
}

#endif
