/* attention_avx2.c: AVX2 bodies of dsv32_attn_prefill and dsv32_attn_decode_absorbed
 * (attention.h): the scalar bodies' operations with the lanes across independent outputs.
 * Prefill: across 16 query rows s of one (b, h) for the dots (4 keys side by side), across t for
 * the score roundings and the softmax, across d for P·V (4 rows side by side). Decode: across c
 * for qa and ol, across 16 keys for the scores, across 8 columns d for o (W_UV through 8x8
 * transposes). Every sum keeps its order: each dot, Z over t (one scalar chain) and each output
 * sum over t or c are sequential fp32 chains from +0; expf is glibc's (kernels/expf_avx2.h). */
#include "kernels/attention_impl.h"
#include "kernels/cpu_parallel.h"
#include "kernels/expf_avx2.h"
#include "kernels/scores_simd.h"

#ifdef DSV32_CPU_AVX2

#define SB 16 /* query rows per unit */

#define AI __attribute__((always_inline)) DSV32_AVX2_FN static inline
#define DSV32_TR8_TARGET DSV32_AVX2_FN
#include "kernels/simd_transpose.h"

AI __m256 bcast(const void *p, dsv32_dtype t, int64_t i)
{
	if (t == DSV32_BF16)
		return _mm256_castsi256_ps(
			_mm256_set1_epi32((int)((uint32_t)((const uint16_t *)p)[i] << 16)));
	return _mm256_broadcast_ss((const float *)p + i);
}

AI __m256 rnd(__m256 v, bool r)
{
	return r ? dsv32_round8(v) : v;
}


/* Raw dots of one row (b, s, h) against every key, 8 keys per lane (for units of fewer than 4
 * rows, e.g. one decode token): the key rows go through 8x8 transposes, each key's d sum stays
 * one chain in d order; keys past the last multiple of 8 run the scalar chain. */
DSV32_AVX2_FN static void dots_keys(const dsv32_attn_prefill_args *a, int64_t b, int64_t s,
				    int64_t h, float *p)
{
	const int64_t D = a->Dqk, T = a->T, qo = dsv32_attn_q_off(a, b, s, h);
	int64_t t0 = 0;
	for (; t0 + 8 <= T; t0 += 8) {
		int64_t ko[8];
		for (int j = 0; j < 8; j++)
			ko[j] = dsv32_attn_kv_row(a, b, t0 + j, h) * D;
		__m256 acc = _mm256_setzero_ps();
		int64_t d = 0;
		for (; d + 8 <= D; d += 8) {
			__m256 k[8];
			for (int j = 0; j < 8; j++)
				k[j] = dsv32_ld8(a->k, a->k_t, ko[j] + d);
			dsv32_transpose8(k); /* k[i] = keys t0..t0+7 at d + i */
			for (int i = 0; i < 8; i++)
				acc = _mm256_add_ps(acc, _mm256_mul_ps(bcast(a->q, a->q_t, qo + d + i), k[i]));
		}
		for (; d < D; d++) {
			float col[8];
			for (int j = 0; j < 8; j++)
				col[j] = dsv32_attn_ld(a->k, a->k_t, ko[j] + d);
			acc = _mm256_add_ps(acc, _mm256_mul_ps(bcast(a->q, a->q_t, qo + d),
							       _mm256_loadu_ps(col)));
		}
		_mm256_storeu_ps(p + t0, acc);
	}
	for (; t0 < T; t0++) {
		const int64_t ko = dsv32_attn_kv_row(a, b, t0, h) * D;
		float dot = 0.0f;
		for (int64_t d = 0; d < D; d++)
			dot = dsv32_fadd_rn(dot, dsv32_fmul_rn(dsv32_attn_ld(a->q, a->q_t, qo + d),
							     dsv32_attn_ld(a->k, a->k_t, ko + d)));
		p[t0] = dot;
	}
}

/* Raw dots of rows [s0, s0+ns) (q tile qt [Dqk][16]) against keys t0..t0+nk-1 (nk <= 4):
 * p[j*T + t] = Σ_d q·k in order from +0. */
DSV32_AVX2_FN static void dots4(const dsv32_attn_prefill_args *a, const float *qt, int64_t b,
				int64_t h, int64_t t0, int nk, int64_t ns, float *p)
{
	const int64_t D = a->Dqk;
	__m256 z = _mm256_setzero_ps();
	__m256 c[4][2] = {{z, z}, {z, z}, {z, z}, {z, z}};
	int64_t ko[4];
	for (int j = 0; j < 4; j++)
		ko[j] = dsv32_attn_kv_row(a, b, t0 + (j < nk ? j : 0), h) * D;
	if (nk == 4) {
		for (int64_t d = 0; d < D; d++) {
			__m256 q0 = _mm256_load_ps(qt + d * SB), q1 = _mm256_load_ps(qt + d * SB + 8);
			for (int j = 0; j < 4; j++) {
				__m256 k = bcast(a->k, a->k_t, ko[j] + d);
				c[j][0] = _mm256_add_ps(c[j][0], _mm256_mul_ps(q0, k));
				c[j][1] = _mm256_add_ps(c[j][1], _mm256_mul_ps(q1, k));
			}
		}
	} else {
		for (int j = 0; j < nk; j++)
			for (int64_t d = 0; d < D; d++) {
				__m256 k = bcast(a->k, a->k_t, ko[j] + d);
				c[j][0] = _mm256_add_ps(c[j][0], _mm256_mul_ps(_mm256_load_ps(qt + d * SB), k));
				c[j][1] = _mm256_add_ps(c[j][1],
							_mm256_mul_ps(_mm256_load_ps(qt + d * SB + 8), k));
			}
	}
	float tmp[SB];
	for (int j = 0; j < nk; j++) {
		_mm256_storeu_ps(tmp, c[j][0]);
		_mm256_storeu_ps(tmp + 8, c[j][1]);
		for (int64_t i = 0; i < ns; i++)
			p[i * a->T + t0 + j] = tmp[i];
	}
}

/* The softmax of attention.h on one row of T scores in place: m = max (NaN if any a_t is NaN,
 * as the scalar max keeps a NaN once seen), e_t = expf(a_t - m), Z = Σ_t e_t (one sequential
 * chain), p_t = R(e_t / Z); e is a T-float buffer. */
DSV32_AVX2_FN static void softmax_row(float *p, float *e, int64_t T, bool r)
{
	int64_t t = 0;
	__m256 mx = _mm256_set1_ps(-INFINITY), nan = _mm256_setzero_ps();
	for (; t + 8 <= T; t += 8) {
		__m256 v = _mm256_loadu_ps(p + t);
		nan = _mm256_or_ps(nan, dsv32_nan8(v));
		mx = _mm256_max_ps(mx, v);
	}
	float m = dsv32_hmax8(mx);
	bool any_nan = _mm256_movemask_ps(nan) != 0;
	for (; t < T; t++) {
		any_nan = any_nan || p[t] != p[t];
		m = p[t] > m ? p[t] : m;
	}
	if (any_nan)
		m = NAN;
	const __m256 mv = _mm256_set1_ps(m);
	for (t = 0; t + 8 <= T; t += 8)
		_mm256_storeu_ps(e + t, _mm256_sub_ps(_mm256_loadu_ps(p + t), mv));
	for (; t < T; t++)
		e[t] = p[t] - m;
	dsv32_expf_inplace(e, T);
	float Z = 0.0f;
	for (t = 0; t < T; t++)
		Z = dsv32_fadd_rn(Z, e[t]);
	const __m256 zv = _mm256_set1_ps(Z);
	for (t = 0; t + 8 <= T; t += 8)
		_mm256_storeu_ps(p + t, rnd(_mm256_div_ps(_mm256_loadu_ps(e + t), zv), r));
	for (; t < T; t++)
		p[t] = dsv32_k3_round(e[t] / Z, r);
}

/* Row s of raw dots in place: a_t = R(R(R(dot)·scale) + mask) (no mask: + 0), then the softmax. */
DSV32_AVX2_FN static void score_softmax_row(const dsv32_attn_prefill_args *a, float *p, float *e,
					    int64_t b, int64_t s)
{
	const int64_t T = a->T;
	const bool r = a->o_t == DSV32_BF16;
	const __m256 sc = _mm256_set1_ps(a->scale);
	const int64_t mo = a->mask.data ? b * a->mask.batch_stride + s * T : 0;
	int64_t t = 0;
	for (; t + 8 <= T; t += 8) {
		__m256 v = rnd(_mm256_loadu_ps(p + t), r);
		v = rnd(_mm256_mul_ps(v, sc), r);
		__m256 m = a->mask.data ? dsv32_ld8(a->mask.data, a->mask.dtype, mo + t)
					: _mm256_setzero_ps();
		_mm256_storeu_ps(p + t, rnd(_mm256_add_ps(v, m), r));
	}
	for (; t < T; t++)
		p[t] = dsv32_attn_score(p[t], a->scale, dsv32_attn_mask_at(&a->mask, b, s, t, T), r);
	softmax_row(p, e, T, r);
}

/* o rows [s0, s0+ns) of (b, h): o[d] = R(Σ_t p_t v[t,d]), 4 rows x 16 columns at a time. */
DSV32_AVX2_FN static void pv(const dsv32_attn_prefill_args *a, const float *p, int64_t b,
			     int64_t h, int64_t s0, int64_t ns)
{
	const int64_t T = a->T, Dv = a->Dv;
	const __m256 z = _mm256_setzero_ps();
	for (int64_t i0 = 0; i0 < ns; i0 += 4) {
		const int nr = ns - i0 < 4 ? (int)(ns - i0) : 4;
		int64_t d = 0;
		for (; d + 16 <= Dv; d += 16) {
			__m256 c[4][2] = {{z, z}, {z, z}, {z, z}, {z, z}};
			for (int64_t t = 0; t < T; t++) {
				const int64_t vo = dsv32_attn_kv_row(a, b, t, h) * Dv + d;
				__m256 v0 = dsv32_ld8(a->v, a->v_t, vo), v1 = dsv32_ld8(a->v, a->v_t, vo + 8);
				for (int i = 0; i < nr; i++) {
					__m256 pt = _mm256_broadcast_ss(p + (i0 + i) * T + t);
					c[i][0] = _mm256_add_ps(c[i][0], _mm256_mul_ps(pt, v0));
					c[i][1] = _mm256_add_ps(c[i][1], _mm256_mul_ps(pt, v1));
				}
			}
			for (int i = 0; i < nr; i++) {
				const int64_t oo = ((b * a->S + s0 + i0 + i) * a->H + h) * Dv + d;
				dsv32_st8(a->o, a->o_t, oo, c[i][0]);
				dsv32_st8(a->o, a->o_t, oo + 8, c[i][1]);
			}
		}
		for (; d < Dv; d++) /* column tail: the scalar chain */
			for (int i = 0; i < nr; i++) {
				const float *pr = p + (i0 + i) * T;
				float acc = 0.0f;
				for (int64_t t = 0; t < T; t++)
					acc = dsv32_fadd_rn(acc, dsv32_fmul_rn(pr[t], dsv32_attn_ld(a->v, a->v_t,
							dsv32_attn_kv_row(a, b, t, h) * Dv + d)));
				dsv32_attn_st(a->o, a->o_t, ((b * a->S + s0 + i0 + i) * a->H + h) * Dv + d,
					      acc);
			}
	}
}

DSV32_AVX2_FN static int prefill_unit(const dsv32_attn_prefill_args *a, int64_t b, int64_t h,
				      int64_t s0)
{
	_Alignas(32) float qt[DSV32_ATTN_VEC_DMAX * SB];
	const int64_t ns = a->S - s0 < SB ? a->S - s0 : SB, D = a->Dqk, T = a->T;
	float *p = dsv32_scores_scratch(0, (size_t)((SB + 1) * T));
	if (!p)
		return 1;
	if (ns < 4) {
		for (int64_t i = 0; i < ns; i++)
			dots_keys(a, b, s0 + i, h, p + i * T);
	} else {
		for (int64_t i = 0; i < SB; i++) {
			const int64_t qo = i < ns ? dsv32_attn_q_off(a, b, s0 + i, h) : 0;
			for (int64_t d = 0; d < D; d++)
				qt[d * SB + i] = i < ns ? dsv32_attn_ld(a->q, a->q_t, qo + d) : 0.0f;
		}
		for (int64_t t0 = 0; t0 < T; t0 += 4)
			dots4(a, qt, b, h, t0, T - t0 < 4 ? (int)(T - t0) : 4, ns, p);
	}
	for (int64_t i = 0; i < ns; i++)
		score_softmax_row(a, p + i * T, p + SB * T, b, s0 + i);
	pv(a, p, b, h, s0, ns);
	return 0;
}

int dsv32_attn_prefill_avx2(const dsv32_attn_prefill_args *a)
{
	const int64_t nsb = (a->S + SB - 1) / SB, units = a->B * a->H * nsb;
	int failed = 0;
#pragma omp parallel for schedule(dynamic, 1) if (dsv32_par_worth((double)(a->B * a->H * a->S) * (double)a->T * (double)(a->Dqk + a->Dv))) reduction(|| : failed)
	for (int64_t u = 0; u < units; u++) {
		int64_t sb = u % nsb, bh = u / nsb;
		if (prefill_unit(a, bh / a->H, bh % a->H, sb * SB))
			failed = 1;
	}
	return failed;
}

/* ---- absorbed decode (the lanes across c for qa and ol, across 16 keys for the scores, across
 * 8 output columns d for o, via 8x8 transposes of W_UV) ---- */

#define KT 16

/* qa[c] of row (b, h) for all c: R(Σ_d q_nope[d]·W_UK[h,d,c]), d in order, 8 c per lane. */
DSV32_AVX2_FN static void dec_qa(const dsv32_attn_decode_args *a, float *qa, int64_t b, int64_t h)
{
	const bool r = a->o_t == DSV32_BF16;
	const int64_t C = a->C, qo = (b * a->H + h) * a->Dn, wo = h * (a->Dn + a->Dv) * C;
	int64_t c = 0;
	for (; c + 32 <= C; c += 32) {
		__m256 z = _mm256_setzero_ps(), c0 = z, c1 = z, c2 = z, c3 = z;
		for (int64_t d = 0; d < a->Dn; d++) {
			__m256 x = bcast(a->qn, a->qn_t, qo + d);
			const int64_t o = wo + d * C + c;
			c0 = _mm256_add_ps(c0, _mm256_mul_ps(x, dsv32_ld8(a->w, a->w_t, o)));
			c1 = _mm256_add_ps(c1, _mm256_mul_ps(x, dsv32_ld8(a->w, a->w_t, o + 8)));
			c2 = _mm256_add_ps(c2, _mm256_mul_ps(x, dsv32_ld8(a->w, a->w_t, o + 16)));
			c3 = _mm256_add_ps(c3, _mm256_mul_ps(x, dsv32_ld8(a->w, a->w_t, o + 24)));
		}
		_mm256_storeu_ps(qa + c, rnd(c0, r));
		_mm256_storeu_ps(qa + c + 8, rnd(c1, r));
		_mm256_storeu_ps(qa + c + 16, rnd(c2, r));
		_mm256_storeu_ps(qa + c + 24, rnd(c3, r));
	}
	for (; c < C; c++)
		qa[c] = dsv32_attn_dec_qa(a, b, h, c);
}

/* Scores of nh heads h.. (nh 4 or 1: 2·nh independent chains per sum) against the key tile. */
AI void dec_heads(const dsv32_attn_decode_args *a, const float *qa_b, float *p_b, int64_t b,
		  int64_t t0, int64_t n, int64_t h, const int nh, const float *kvt, const float *pet)
{
	const int64_t C = a->C, R = a->R, T = a->T;
	const bool r = a->o_t == DSV32_BF16;
	const __m256 sc = _mm256_set1_ps(a->scale), z = _mm256_setzero_ps();
	__m256 s1[4][2] = {{z, z}, {z, z}, {z, z}, {z, z}}, s2[4][2] = {{z, z}, {z, z}, {z, z}, {z, z}};
	for (int64_t c = 0; c < C; c++) {
		__m256 k0 = _mm256_load_ps(kvt + c * KT), k1 = _mm256_load_ps(kvt + c * KT + 8);
		for (int i = 0; i < nh; i++) {
			__m256 x = _mm256_broadcast_ss(qa_b + (h + i) * C + c);
			s1[i][0] = _mm256_add_ps(s1[i][0], _mm256_mul_ps(x, k0));
			s1[i][1] = _mm256_add_ps(s1[i][1], _mm256_mul_ps(x, k1));
		}
	}
	for (int64_t j = 0; j < R; j++) {
		__m256 k0 = _mm256_load_ps(pet + j * KT), k1 = _mm256_load_ps(pet + j * KT + 8);
		for (int i = 0; i < nh; i++) {
			__m256 x = bcast(a->qp, a->qp_t, (b * a->H + h + i) * R + j);
			s2[i][0] = _mm256_add_ps(s2[i][0], _mm256_mul_ps(x, k0));
			s2[i][1] = _mm256_add_ps(s2[i][1], _mm256_mul_ps(x, k1));
		}
	}
	for (int i = 0; i < nh; i++) {
		float tmp[KT];
		for (int v = 0; v < 2; v++) { /* R(R(R(s1) + R(s2)) · scale) */
			__m256 x = rnd(_mm256_add_ps(rnd(s1[i][v], r), rnd(s2[i][v], r)), r);
			_mm256_storeu_ps(tmp + 8 * v, rnd(_mm256_mul_ps(x, sc), r));
		}
		for (int64_t j = 0; j < n; j++) {
			float x = tmp[j];
			if (a->mask.data)
				x = dsv32_attn_add_mask(x, dsv32_attn_mask_at(&a->mask, b, 0, t0 + j, T), r);
			p_b[(h + i) * T + t0 + j] = x;
		}
	}
}

/* Scores of keys t0.. t0+n-1 (n <= 16) of batch row b for every head: p[h*T + t] = a_t. */
DSV32_AVX2_FN static void dec_scores(const dsv32_attn_decode_args *a, const float *qa_b, float *p_b,
				     int64_t b, int64_t t0)
{
	_Alignas(32) float kvt[DSV32_ATTN_VEC_DMAX * KT], pet[DSV32_ATTN_VEC_DMAX * KT];
	const int64_t n = a->T - t0 < KT ? a->T - t0 : KT, C = a->C, R = a->R;
	for (int64_t j = 0; j < KT; j++) {
		const int64_t ko = (b * a->Tc_kv + t0 + j) * C, po = (b * a->Tc_pe + t0 + j) * R;
		for (int64_t c = 0; c < C; c++)
			kvt[c * KT + j] = j < n ? dsv32_attn_ld(a->kv, a->kv_t, ko + c) : 0.0f;
		for (int64_t i = 0; i < R; i++)
			pet[i * KT + j] = j < n ? dsv32_attn_ld(a->pe, a->pe_t, po + i) : 0.0f;
	}
	int64_t h = 0;
	for (; h + 4 <= a->H; h += 4)
		dec_heads(a, qa_b, p_b, b, t0, n, h, 4, kvt, pet);
	for (; h < a->H; h++)
		dec_heads(a, qa_b, p_b, b, t0, n, h, 1, kvt, pet);
}

/* ol[c] = R(Σ_t p_t kv[b,t,c]) of up to 4 heads h0.. of batch row b, t in order, 8 c per lane. */
DSV32_AVX2_FN static void dec_ol(const dsv32_attn_decode_args *a, const float *p_b, float *ol_b,
				 int64_t b, int64_t h0, int nh)
{
	const bool r = a->o_t == DSV32_BF16;
	const int64_t C = a->C, T = a->T;
	int64_t c = 0;
	for (; c + 16 <= C; c += 16) {
		__m256 z = _mm256_setzero_ps();
		__m256 acc[4][2] = {{z, z}, {z, z}, {z, z}, {z, z}};
		for (int64_t t = 0; t < T; t++) {
			const int64_t ko = (b * a->Tc_kv + t) * C + c;
			__m256 k0 = dsv32_ld8(a->kv, a->kv_t, ko), k1 = dsv32_ld8(a->kv, a->kv_t, ko + 8);
			for (int i = 0; i < nh; i++) {
				__m256 x = _mm256_broadcast_ss(p_b + (h0 + i) * T + t);
				acc[i][0] = _mm256_add_ps(acc[i][0], _mm256_mul_ps(x, k0));
				acc[i][1] = _mm256_add_ps(acc[i][1], _mm256_mul_ps(x, k1));
			}
		}
		for (int i = 0; i < nh; i++) {
			_mm256_storeu_ps(ol_b + (h0 + i) * C + c, rnd(acc[i][0], r));
			_mm256_storeu_ps(ol_b + (h0 + i) * C + c + 8, rnd(acc[i][1], r));
		}
	}
	for (; c < C; c++)
		for (int i = 0; i < nh; i++)
			ol_b[(h0 + i) * C + c] = dsv32_attn_dec_ol(a, p_b + (h0 + i) * T, b, c);
}

/* o[b,h,d0..d0+7] = Σ_c ol[c]·W_UV[h,d,c] (c in order) for batch rows b0..b0+nb-1 (nb <= 4). */
DSV32_AVX2_FN static void dec_out8(const dsv32_attn_decode_args *a, const float *ol, int64_t h,
				   int64_t d0, int64_t b0, int nb)
{
	const int64_t C = a->C, wo = (h * (a->Dn + a->Dv) + a->Dn + d0) * C;
	__m256 z = _mm256_setzero_ps(), acc[4] = {z, z, z, z};
	int64_t c = 0;
	for (; c + 8 <= C; c += 8) {
		__m256 w[8];
		for (int i = 0; i < 8; i++)
			w[i] = dsv32_ld8(a->w, a->w_t, wo + i * C + c);
		dsv32_transpose8(w); /* w[j] = W_UV[h, d0..d0+7, c+j] */
		for (int i = 0; i < nb; i++) {
			const float *o = ol + ((b0 + i) * a->H + h) * C + c;
			for (int j = 0; j < 8; j++)
				acc[i] = _mm256_add_ps(acc[i], _mm256_mul_ps(_mm256_broadcast_ss(o + j), w[j]));
		}
	}
	for (; c < C; c++) {
		float col[8];
		for (int i = 0; i < 8; i++)
			col[i] = dsv32_attn_ld(a->w, a->w_t, wo + i * C + c);
		__m256 wv = _mm256_loadu_ps(col);
		for (int i = 0; i < nb; i++)
			acc[i] = _mm256_add_ps(acc[i], _mm256_mul_ps(
				_mm256_broadcast_ss(ol + ((b0 + i) * a->H + h) * C + c), wv));
	}
	for (int i = 0; i < nb; i++)
		dsv32_st8(a->o, a->o_t, ((b0 + i) * a->H + h) * a->Dv + d0, acc[i]);
}

int dsv32_attn_decode_avx2(const dsv32_attn_decode_args *a)
{
	const int64_t B = a->B, H = a->H, C = a->C, T = a->T, Dv = a->Dv;
	float *qa = dsv32_scores_scratch(1, (size_t)(B * H * (2 * C + T)));
	if (!qa)
		return 1;
	float *ol = qa + B * H * C, *p = ol + B * H * C;
	const bool r = a->o_t == DSV32_BF16;
	const int64_t nt = (T + KT - 1) / KT, nhg = (H + 3) / 4, ndb = (Dv + 7) / 8;
	int failed = 0;
#pragma omp parallel if (dsv32_par_worth((double)(B * H) * (double)T * (double)(C + a->R))) reduction(|| : failed)
	{
#pragma omp for schedule(dynamic, 1)
		for (int64_t u = 0; u < B * H; u++)
			dec_qa(a, qa + u * C, u / H, u % H);
#pragma omp for schedule(dynamic, 1)
		for (int64_t u = 0; u < B * nt; u++)
			dec_scores(a, qa + (u / nt) * H * C, p + (u / nt) * H * T, u / nt, (u % nt) * KT);
		float *e = dsv32_scores_scratch(0, (size_t)(T > 0 ? T : 1));
		if (!e)
			failed = 1;
#pragma omp for schedule(dynamic, 1)
		for (int64_t u = 0; u < B * H; u++)
			if (e)
				softmax_row(p + u * T, e, T, r);
#pragma omp for schedule(dynamic, 1)
		for (int64_t u = 0; u < B * nhg; u++) {
			int64_t b = u / nhg, h0 = (u % nhg) * 4;
			dec_ol(a, p + b * H * T, ol + b * H * C, b, h0, H - h0 < 4 ? (int)(H - h0) : 4);
		}
#pragma omp for schedule(dynamic, 1)
		for (int64_t u = 0; u < H * ndb; u++) {
			const int64_t h = u / ndb, d0 = (u % ndb) * 8;
			if (d0 + 8 <= Dv) {
				for (int64_t b0 = 0; b0 < B; b0 += 4)
					dec_out8(a, ol, h, d0, b0, B - b0 < 4 ? (int)(B - b0) : 4);
				continue;
			}
			for (int64_t b = 0; b < B; b++) /* column tail: the scalar chain */
				for (int64_t d = d0; d < Dv; d++)
					dsv32_attn_st(a->o, a->o_t, (b * H + h) * Dv + d,
						      dsv32_attn_dec_out(a, ol + (b * H + h) * C, h, d));
		}
	}
	return failed;
}

#else

int dsv32_attn_prefill_avx2(const dsv32_attn_prefill_args *a)
{
	(void)a;
	return 1;
}

int dsv32_attn_decode_avx2(const dsv32_attn_decode_args *a)
{
	(void)a;
	return 1;
}

#endif
