/* attention_impl.h: the internals of attention.h, shared by its dispatcher and its CPU/CUDA bodies:
 * argument bundles, per-element math, the CPU/CUDA body declarations (arguments checked).
 * Private to kernels/ (and the tests and benches that call a body directly); everyone else
 * includes kernels/attention.h, which holds the API and its precision contract.
 * The CUDA declarations are visible in every build: see DSV32_CUDA_BODY in backend_impl.h. */
#ifndef DSV32_ATTENTION_IMPL_H
#define DSV32_ATTENTION_IMPL_H

#include "kernels/backend_impl.h"
#include "kernels/attention.h"

DSV32_HD static inline float dsv32_attn_ld(const void *p, dsv32_dtype t, int64_t i)
{
	return t == DSV32_BF16 ? dsv32_bf16_to_f32(((const dsv32_bf16 *)p)[i]) : ((const float *)p)[i];
}

DSV32_HD static inline void dsv32_attn_st(void *p, dsv32_dtype t, int64_t i, float v)
{
	if (t == DSV32_BF16)
		((dsv32_bf16 *)p)[i] = dsv32_f32_to_bf16(v);
	else
		((float *)p)[i] = v;
}

/* Optional additive mask, element (b,s,t) at data[b*batch_stride + s*T + t]. */
typedef struct {
	const void *data; /* NULL: none */
	dsv32_dtype dtype;
	int64_t batch_stride;
} dsv32_attn_mask_desc;

DSV32_HD static inline float dsv32_attn_mask_at(const dsv32_attn_mask_desc *m, int64_t b,
						int64_t s, int64_t t, int64_t T)
{
	if (!m->data)
		return 0.0f;
	return dsv32_attn_ld(m->data, m->dtype, b * m->batch_stride + s * T + t);
}

typedef struct {
	void *o;
	dsv32_dtype o_t;
	const void *q, *k, *v;
	dsv32_dtype q_t, k_t, v_t;
	dsv32_attn_mask_desc mask;
	int64_t B, S, T, H, Dqk, Dv;
	dsv32_attn_layout layout;
	float scale;
} dsv32_attn_prefill_args;

/* Element offsets of q[b,s,h,0], k[b,t,h,0], v[b,t,h,0] and o[b,s,h,0]. */
DSV32_HD static inline int64_t dsv32_attn_q_off(const dsv32_attn_prefill_args *a, int64_t b,
					       int64_t s, int64_t h)
{
	return (a->layout == DSV32_ATTN_BSHD ? (b * a->S + s) * a->H + h : (b * a->H + h) * a->S + s) *
	       a->Dqk;
}

DSV32_HD static inline int64_t dsv32_attn_kv_row(const dsv32_attn_prefill_args *a, int64_t b,
						 int64_t t, int64_t h)
{
	return a->layout == DSV32_ATTN_BSHD ? (b * a->T + t) * a->H + h : (b * a->H + h) * a->T + t;
}

/* Prefill score a_t of row (b,s,h). */
DSV32_HD static inline float dsv32_attn_prefill_score(const dsv32_attn_prefill_args *a, int64_t b,
						      int64_t s, int64_t h, int64_t t)
{
	const int64_t qo = dsv32_attn_q_off(a, b, s, h), ko = dsv32_attn_kv_row(a, b, t, h) * a->Dqk;
	float dot = 0.0f;
	for (int64_t d = 0; d < a->Dqk; d++)
		dot = dsv32_fadd_rn(dot, dsv32_fmul_rn(dsv32_attn_ld(a->q, a->q_t, qo + d),
						     dsv32_attn_ld(a->k, a->k_t, ko + d)));
	return dsv32_attn_score(dot, a->scale, dsv32_attn_mask_at(&a->mask, b, s, t, a->T),
				a->o_t == DSV32_BF16);
}

/* In-place softmax of one row of n scores: p_t = R(expf(a_t - m) / Z), Z summed in order. */
DSV32_HD static inline void dsv32_attn_softmax_row(float *a, int64_t n, bool r)
{
	float m = -INFINITY, Z = 0.0f;
	for (int64_t t = 0; t < n; t++)
		m = a[t] > m || a[t] != a[t] ? a[t] : m;
	for (int64_t t = 0; t < n; t++)
		Z = dsv32_fadd_rn(Z, expf(a[t] - m));
	for (int64_t t = 0; t < n; t++)
		a[t] = dsv32_attn_prob(a[t], m, Z, r);
}

typedef struct {
	void *o;
	dsv32_dtype o_t;
	const void *qn, *qp, *w, *kv, *pe;
	dsv32_dtype qn_t, qp_t, w_t, kv_t, pe_t;
	dsv32_attn_mask_desc mask; /* batch_stride T, S = 1 */
	int64_t B, H, Dn, Dv, R, C, T;
	int64_t Tc_kv, Tc_pe; /* cache rows per batch */
	float scale;
} dsv32_attn_decode_args;

/* qa[c] for head (b,h). */
DSV32_HD static inline float dsv32_attn_dec_qa(const dsv32_attn_decode_args *a, int64_t b,
					       int64_t h, int64_t c)
{
	const int64_t qo = (b * a->H + h) * a->Dn, wo = h * (a->Dn + a->Dv) * a->C + c;
	float acc = 0.0f;
	for (int64_t d = 0; d < a->Dn; d++)
		acc = dsv32_fadd_rn(acc, dsv32_fmul_rn(dsv32_attn_ld(a->qn, a->qn_t, qo + d),
						     dsv32_attn_ld(a->w, a->w_t, wo + d * a->C)));
	return dsv32_k3_round(acc, a->o_t == DSV32_BF16);
}

/* a_t of head (b,h) given its rounded qa[0..C). */
DSV32_HD static inline float dsv32_attn_dec_score(const dsv32_attn_decode_args *a, const float *qa,
						  int64_t b, int64_t h, int64_t t)
{
	const bool r = a->o_t == DSV32_BF16;
	const int64_t ko = (b * a->Tc_kv + t) * a->C, po = (b * a->Tc_pe + t) * a->R;
	const int64_t qo = (b * a->H + h) * a->R;
	float s1 = 0.0f, s2 = 0.0f;
	for (int64_t c = 0; c < a->C; c++)
		s1 = dsv32_fadd_rn(s1, dsv32_fmul_rn(qa[c], dsv32_attn_ld(a->kv, a->kv_t, ko + c)));
	for (int64_t i = 0; i < a->R; i++)
		s2 = dsv32_fadd_rn(s2, dsv32_fmul_rn(dsv32_attn_ld(a->qp, a->qp_t, qo + i),
						   dsv32_attn_ld(a->pe, a->pe_t, po + i)));
	float s = dsv32_attn_decode_score(s1, s2, a->scale, r);
	if (a->mask.data)
		s = dsv32_attn_add_mask(s, dsv32_attn_mask_at(&a->mask, b, 0, t, a->T), r);
	return s;
}

/* ol[c] = R(Σ_t p_t kv[b,t,c]). */
DSV32_HD static inline float dsv32_attn_dec_ol(const dsv32_attn_decode_args *a, const float *p,
					       int64_t b, int64_t c)
{
	float acc = 0.0f;
	for (int64_t t = 0; t < a->T; t++)
		acc = dsv32_fadd_rn(acc, dsv32_fmul_rn(p[t], dsv32_attn_ld(a->kv, a->kv_t,
									 (b * a->Tc_kv + t) * a->C + c)));
	return dsv32_k3_round(acc, a->o_t == DSV32_BF16);
}

/* o[d] = R(Σ_c ol[c] W_UV[h,d,c]). */
DSV32_HD static inline float dsv32_attn_dec_out(const dsv32_attn_decode_args *a, const float *ol,
						int64_t h, int64_t d)
{
	const int64_t wo = (h * (a->Dn + a->Dv) + a->Dn + d) * a->C;
	float acc = 0.0f;
	for (int64_t c = 0; c < a->C; c++)
		acc = dsv32_fadd_rn(acc, dsv32_fmul_rn(ol[c], dsv32_attn_ld(a->w, a->w_t, wo + c)));
	return acc; /* the store rounds iff o is BF16 */
}

typedef struct {
	void *mask;
	dsv32_dtype mask_t;
	const void *idx; /* NULL: no index selection (HF only) */
	dsv32_dtype idx_t;
	const void *pad; /* HF only, NULL: none */
	dsv32_dtype pad_t;
	int64_t B, S, T, K;
	int64_t causal_start; /* ref: < 0 none; HF: past_len */
	bool hf;
} dsv32_attn_mask_args;

DSV32_HD static inline int64_t dsv32_attn_idx_at(const dsv32_attn_mask_args *a, int64_t i)
{
	return a->idx_t == DSV32_I64 ? ((const int64_t *)a->idx)[i] : ((const int32_t *)a->idx)[i];
}

/* Visible by causality (and padding, HF) for (b,s,t). */
DSV32_HD static inline bool dsv32_attn_mask_visible(const dsv32_attn_mask_args *a, int64_t b,
						    int64_t s, int64_t t)
{
	if (a->causal_start >= 0 && t > a->causal_start + s)
		return false;
	if (a->hf && a->pad) {
		int64_t i = b * a->T + t;
		bool on;
		switch (a->pad_t) {
		case DSV32_I64: on = ((const int64_t *)a->pad)[i] != 0; break;
		case DSV32_I32: on = ((const int32_t *)a->pad)[i] != 0; break;
		default: on = ((const uint8_t *)a->pad)[i] != 0; break;
		}
		if (!on)
			return false;
	}
	return true;
}

DSV32_HD static inline float dsv32_attn_mask_off(const dsv32_attn_mask_args *a)
{
	if (!a->hf)
		return -INFINITY;
	return a->mask_t == DSV32_BF16 ? dsv32_bf16_to_f32(0xff7fu) : -3.40282346638528859812e+38f;
}

dsv32_status dsv32_attn_prefill_cpu(const dsv32_attn_prefill_args *a, dsv32_error *err);
dsv32_status dsv32_attn_decode_cpu(const dsv32_attn_decode_args *a, dsv32_error *err);
dsv32_status dsv32_attn_mask_cpu(const dsv32_attn_mask_args *a, dsv32_error *err);
/* The CPU bodies behind dsv32_attn_*_cpu: the scalar oracle loops (attention_cpu.c) and the AVX2
 * bodies (attention_avx2.c; same bits; only where dsv32_scores_vec_enabled() and the q/k head
 * width is <= DSV32_ATTN_VEC_DMAX; they return nonzero when out of memory). */
#define DSV32_ATTN_VEC_DMAX 512
dsv32_status dsv32_attn_prefill_cpu_scalar(const dsv32_attn_prefill_args *a, dsv32_error *err);
dsv32_status dsv32_attn_decode_cpu_scalar(const dsv32_attn_decode_args *a, dsv32_error *err);
int dsv32_attn_prefill_avx2(const dsv32_attn_prefill_args *a);
int dsv32_attn_decode_avx2(const dsv32_attn_decode_args *a);
dsv32_status dsv32_attn_prefill_cuda(dsv32_backend *be, const dsv32_attn_prefill_args *a,
				     dsv32_error *err);
dsv32_status dsv32_attn_decode_cuda(dsv32_backend *be, const dsv32_attn_decode_args *a,
				    dsv32_error *err);
dsv32_status dsv32_attn_mask_cuda(dsv32_backend *be, const dsv32_attn_mask_args *a,
				  dsv32_error *err);

#endif
