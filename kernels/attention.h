/* attention.h: attention cores after the projections, and their masks (docs/spec/ref_layout.md
 * §A.8 steps 6-7 and Part E item 5/10; docs/spec/hf_layout.md §4.1 steps 9-11, §4.2 eager kernel).
 *
 * THE ROUNDING RULE: r = (o is BF16). Every rounding point below is a RNE rounding to bf16 iff
 * r; with an F32 o nothing is rounded (the fp32 profile). Inputs may be BF16 or F32 in any mix
 * (bf16 widened exactly). No fp32 operation is FMA-contracted (explicit mul/add in both bodies).
 *
 * dsv32_attn_prefill(be, o, q, k, v, mask, scale, layout, err)    explicit K/V ("MHA")
 *   layout BSHD: q [B,S,H,Dqk], k [B,T,H,Dqk], v [B,T,H,Dv]   (reference prefill)
 *   layout BHSD: q [B,H,S,Dqk], k [B,H,T,Dqk], v [B,H,T,Dv]   (HF query / DynamicCache K,V)
 *   o    BF16|F32 [B,S,H,Dv] in both layouts (what wo / o_proj read after the reshape)
 *   mask NULL, or F32|BF16 additive: [S,T] (broadcast over B), [B,S,T] or [B,1,S,T]
 *   scale  fp32 softmax scale (the model passes fp32(softmax_scale / scaling))
 *   Math per (b,s,h):  a_t = R( R( R(Σ_d q·k) · scale ) + mask[b,s,t] )
 *                      m = max_t a_t;  e_t = expf(a_t - m);  Z = Σ_t e_t (fp32)
 *                      p_t = R(e_t / Z);   o[d] = R(Σ_t p_t · v[t,d]) (fp32 accumulation)
 *   This is both layouts' rounding sequence: ref `einsum(q,k).mul_(softmax_scale)` (bf16 GEMM
 *   output, bf16(x·fp32 scale)), `scores += index_mask` (bf16 add), `softmax` (fp32 inside,
 *   one rounding), bf16 einsum with v; HF eager `matmul(q,kᵀ) * scaling + mask`,
 *   `softmax(dtype=float32).to(bf16)`, `matmul(w, v)`. The layouts differ only in the mask
 *   values (ref -inf, HF finfo.min, see the mask builders) and the q/k/v layout.
 *   Accum:  every sum fp32 in index order from +0 (dot over d, Z over t, P·V over t) in both
 *   bodies (torch/cuBLAS orders differ: not part of the contract). expf: glibc (CPU) vs CUDA
 *   expf (<= 2 ulp): p and o may differ by an ulp between the bodies, nothing else.
 *   A row whose a_t are all -inf gives p = NaN (as PyTorch: exp(-inf - -inf)); with the HF
 *   mask such a row stays finite (uniform weights over the finfo.min entries, as PyTorch).
 *   Masked entries: a_t = -inf gives p_t = +0 exactly.
 *
 * dsv32_attn_decode_absorbed(be, o, q_nope, q_pe, wkv_b, kv_cache, pe_cache, T, mask, scale, err)
 *   The reference decode (§A.8 step 7), one query token per batch row:
 *   q_nope   BF16|F32 [B,H,Dn] or [B,1,H,Dn]
 *   q_pe     BF16|F32 [B,H,R]  or [B,1,H,R]   (after RoPE)
 *   wkv_b    BF16|F32 [H*(Dn+Dv), C] or [H, Dn+Dv, C]: rows [h(Dn+Dv), h(Dn+Dv)+Dn) = W_UK[h],
 *            the next Dv rows = W_UV[h] (the dequantized bf16 weight in the fp8 config)
 *   kv_cache BF16|F32 [Bc,Tc,C],  pe_cache BF16|F32 [Bc,Tc,R]: whole cache buffers; positions
 *            [:B, :T] are read (Bc >= B, Tc >= T)
 *   mask     NULL or F32|BF16 [B,T] or [B,1,T] (index mask: -inf outside the top-k)
 *   o        BF16|F32 [B,H,Dv] or [B,1,H,Dv]
 *   Math:  qa[c]  = R(Σ_d q_nope[d]·W_UK[h,d,c])
 *          a_t    = R( R( R(Σ_c qa·kv[b,t,c]) + R(Σ_r q_pe·pe[b,t,r]) ) · scale ) ; then
 *          a_t    = R(a_t + mask[b,t]); softmax as above -> p_t (rounded)
 *          ol[c]  = R(Σ_t p_t·kv[b,t,c]);   o[d] = R(Σ_c ol[c]·W_UV[h,d,c])
 *
 * Mask builders (the models may also build masks themselves; these give the documented values):
 * dsv32_attn_mask_ref(be, mask, topk_idx, causal_start, err)
 *   mask     BF16|F32 [B,S,T]  out; topk_idx I64|I32 [B,S,k]
 *   mask[b,s,t] = 0 if t is among topk_idx[b,s,:] and (causal_start < 0 or t <= causal_start+s),
 *   else -inf. This is `full(-inf).scatter_(topk, 0)` followed by `+= triu(-inf, 1)` (prefill,
 *   causal_start = 0) or no causal part (decode: causal_start = -1, S = 1).
 * dsv32_attn_mask_hf(be, mask, topk_idx, pad, past_len, err)
 *   mask     BF16|F32 [B,S,T] out (view it as [B,1,S,T]); topk_idx NULL or I64|I32 [B,S,k];
 *   pad      NULL or I64|I32|U8|BOOL [B,T] 2-D attention_mask (nonzero = attend)
 *   mask[b,s,t] = 0 if t <= past_len + s and pad[b,t] != 0 and (topk_idx NULL or t in
 *   topk_idx[b,s,:]), else finfo(dtype).min (bf16: -3.3895314e38; f32: -FLT_MAX). Values are
 *   set, never summed (HF's masked_fill), so a masked entry is exactly finfo.min.
 *   Index entries outside 0..T-1 (e.g. -1 padding) are ignored by both builders.
 *
 * Errors: DSV32_E_DTYPE, DSV32_E_SHAPE, DSV32_E_USAGE (device, aliasing, bad layout),
 *         DSV32_E_UNSUPPORTED, DSV32_E_NOMEM, DSV32_E_CUDA.
 */
#ifndef DSV32_ATTENTION_H
#define DSV32_ATTENTION_H

#include "kernels/topk.h"

typedef enum {
	DSV32_ATTN_BSHD = 0, /* q [B,S,H,D], k/v [B,T,H,D] */
	DSV32_ATTN_BHSD,     /* q [B,H,S,D], k/v [B,H,T,D] */
	DSV32_ATTN_LAYOUT_COUNT /* append only, above this line */
} dsv32_attn_layout;

const char *dsv32_attn_layout_name(dsv32_attn_layout l);

/* Prefill score after the dot product: R(R(R(dot)·scale) + mask). */
DSV32_HD static inline float dsv32_attn_score(float dot, float scale, float mask, bool r)
{
	float s = dsv32_k3_round(dot, r);
	s = dsv32_k3_round(dsv32_fmul_rn(s, scale), r);
	return dsv32_k3_round(dsv32_fadd_rn(s, mask), r);
}

/* Decode score: R(R(R(s1) + R(s2)) · scale) (mask added separately with dsv32_attn_add_mask). */
DSV32_HD static inline float dsv32_attn_decode_score(float s1, float s2, float scale, bool r)
{
	float s = dsv32_fadd_rn(dsv32_k3_round(s1, r), dsv32_k3_round(s2, r));
	s = dsv32_k3_round(s, r);
	return dsv32_k3_round(dsv32_fmul_rn(s, scale), r);
}

DSV32_HD static inline float dsv32_attn_add_mask(float s, float mask, bool r)
{
	return dsv32_k3_round(dsv32_fadd_rn(s, mask), r);
}

/* Softmax element: R(expf(a - m) / Z). */
DSV32_HD static inline float dsv32_attn_prob(float a, float m, float Z, bool r)
{
	return dsv32_k3_round(expf(a - m) / Z, r);
}

dsv32_status dsv32_attn_prefill(dsv32_backend *be, dsv32_tensor *o, const dsv32_tensor *q,
				const dsv32_tensor *k, const dsv32_tensor *v,
				const dsv32_tensor *mask, float scale, dsv32_attn_layout layout,
				dsv32_error *err);

dsv32_status dsv32_attn_decode_absorbed(dsv32_backend *be, dsv32_tensor *o,
					const dsv32_tensor *q_nope, const dsv32_tensor *q_pe,
					const dsv32_tensor *wkv_b, const dsv32_tensor *kv_cache,
					const dsv32_tensor *pe_cache, int64_t T,
					const dsv32_tensor *mask, float scale, dsv32_error *err);

dsv32_status dsv32_attn_mask_ref(dsv32_backend *be, dsv32_tensor *mask,
				 const dsv32_tensor *topk_idx, int64_t causal_start,
				 dsv32_error *err);

dsv32_status dsv32_attn_mask_hf(dsv32_backend *be, dsv32_tensor *mask,
				const dsv32_tensor *topk_idx, const dsv32_tensor *pad,
				int64_t past_len, dsv32_error *err);

#endif
