/* attn.c: DeepseekV32Attention.forward, eager (docs/spec/hf_layout.md §4.1-4.3; transformers 5.24):
 * q_a_proj -> q_a_layernorm -> q_b_proj; kv_a_proj_with_mqa -> kv_a_layernorm on the latent;
 * MLA RoPE by de-interleaving the rope channels (they stay permuted) then half-split rotation
 * with bf16 cos/sin; cache update of the latents; expand_kv (kv_b_proj on every cached latent);
 * indexer top-k folded into the mask as finfo.min; eager attention; o_proj. Always multi-head,
 * also in decode.
 *
 * The knobs toward ref (core/knobs.h, opts.knobs_to_ref) of this part, each with the kernel
 * the reference layout uses for it (ref/attn.c): kv-fp8 (the latent's fp8 round trip), mask
 * (-inf masks, dsv32_attn_mask_ref), decode-path (absorbed MQA over the latent caches,
 * dsv32_attn_decode_absorbed); the rope knobs are in ops.c (hf_rope). */
#include <math.h>
#include <stdlib.h>

#include "core/knobs.h"
#include "hf_layout/hf_internal.h"
#include "kernels/attention.h"
#include "kernels/elementwise.h"
#include "kernels/fp8.h"
#include "kernels/gemm.h"
#include "kernels/rmsnorm.h"
#include "kernels/rope.h"

#define HF_QA_EPS 1e-6 /* DeepseekV32RMSNorm(q_lora_rank) / (kv_lora_rank): default eps */

/* Positions [from, from + n) of batch row b expanded (HF's expand_kv): kvb = kv_b_proj(
 * latent[b, from:from+n]) into the scratch kvb [n, H·(nope+v)], then k [n·H, nope+rope] =
 * [k_nope | shared rope key] and v [n·H, v]. kv_b through wkvb, or with wkvb NULL through
 * hf_linear (the act-quant knob quantizes each row block's activations). */
static dsv32_status expand_positions(hf_model *m, int li, int64_t b, int64_t from, int64_t n,
				     const dsv32_tensor *wkvb, dsv32_tensor *kvb, dsv32_tensor *k,
				     dsv32_tensor *v, dsv32_error *err)
{
	const dsv32_config *c = &m->base.cfg;
	hf_layer_cache *kc = &m->cache[li];
	int64_t H = c->n_heads, N = c->qk_nope_head_dim, Vd = c->v_head_dim, Tc = m->cap_t;
	int64_t R = c->qk_rope_head_dim, C = c->kv_lora_rank, QK = N + R;
	dsv32_tensor lat = lc_view(&kc->kv, (b * Tc + from) * C, 2, LC_SHAPE(n, C));
	DSV32_TRY(wkvb ? dsv32_gemm(m->be, kvb, &lat, wkvb, err)
		       : hf_linear(m, kvb, &lat, &m->layers[li].kv_b, err));
	dsv32_tensor kvb2 = lc_view(kvb, 0, 2, LC_SHAPE(n * H, N + Vd));
	DSV32_TRY(dsv32_copy_cols(m->be, k, &kvb2, 0, 0, N, err));
	DSV32_TRY(dsv32_copy_cols(m->be, v, &kvb2, N, 0, Vd, err));
	dsv32_tensor kr = lc_view(&kc->krot, (b * Tc + from) * R, 2, LC_SHAPE(n, R));
	dsv32_tensor kb = lc_view(k, 0, 2, LC_SHAPE(n, H * QK));
	for (int64_t h = 0; h < H; h++)
		DSV32_TRY(dsv32_copy_cols(m->be, &kb, &kr, 0, h * QK + N, R, err));
	return DSV32_OK;
}

/* expand_kv over the whole cached length: k [B,T,H,192] = [k_nope | shared rope key],
 * v [B,T,H,v] of every position. (HF builds [B,H,T,.]; the BSHD attention layout holds the
 * same values.) */
static dsv32_status expand_kv(hf_model *m, int li, const hf_fwd *f, dsv32_tensor *k,
			      dsv32_tensor *v, dsv32_error *err)
{
	const dsv32_config *c = &m->base.cfg;
	int64_t B = f->B, T = f->T, H = c->n_heads, N = c->qk_nope_head_dim, Vd = c->v_head_dim;
	int64_t QK = N + c->qk_rope_head_dim;
	lc_pool p = {.be = m->be};
	dsv32_status rc = DSV32_OK;
	dsv32_tensor *kvb, wkvb = {0};
	const hf_mat *kv_b = &m->layers[li].kv_b;
	/* the act-quant knob quantizes each row block's activations (hf_linear); otherwise the
	 * weight is fetched (a lazy fp8 one dequantized) once for all batch rows */
	bool per_call = kv_b->w.dtype == DSV32_F8_E4M3 &&
			dsv32_hfknob_on(&m->base.opts, DSV32_HFKNOB_ACT_QUANT);
	LC_POOL(kvb, m->act, 2, T, H * (N + Vd));
	if (!per_call)
		LC_CK(hf_mat_get(m, kv_b, &wkvb, err));
	for (int64_t b = 0; b < B; b++) {
		dsv32_tensor kb = lc_view(k, b * T * H * QK, 2, LC_SHAPE(T * H, QK));
		dsv32_tensor vb = lc_view(v, b * T * H * Vd, 2, LC_SHAPE(T * H, Vd));
		LC_CK(expand_positions(m, li, b, 0, T, per_call ? NULL : &wkvb, kvb, &kb, &vb, err));
	}
out:
	lc_pool_free(&p);
	return rc;
}

/* expand_kv with the layer's expanded caches (hf_cache_expanded): only the positions not
 * expanded yet (from the first one this call rewrote: f->past) run kv_b_proj, into the
 * caches, then k and v are copied out of them. The fixed engine's output rows do not depend
 * on how many rows a GEMM call has (gemm.h: one summation order per output), so the bits are
 * expand_kv's; the host engine's kernels may choose by M, so it always runs expand_kv. */
static dsv32_status expand_kv_cached(hf_model *m, int li, const hf_fwd *f, dsv32_tensor *k,
				     dsv32_tensor *v, dsv32_error *err)
{
	const dsv32_config *c = &m->base.cfg;
	hf_layer_cache *kc = &m->cache[li];
	int64_t B = f->B, T = f->T, H = c->n_heads, N = c->qk_nope_head_dim, Vd = c->v_head_dim;
	int64_t QK = N + c->qk_rope_head_dim, X = kc->kx_cap;
	int64_t from = kc->n_expanded < f->past ? kc->n_expanded : f->past, n = T - from;
	lc_pool p = {.be = m->be};
	dsv32_status rc = DSV32_OK;
	dsv32_tensor *kvb, wkvb = {0};
	kc->n_expanded = from; /* rows from `from` on are stale until written */
	if (n > 0) {
		LC_POOL(kvb, m->act, 2, n, H * (N + Vd));
		LC_CK(hf_mat_get(m, &m->layers[li].kv_b, &wkvb, err));
		for (int64_t b = 0; b < B; b++) {
			dsv32_tensor kb = lc_view(&kc->kx, (b * X + from) * H * QK, 2,
						  LC_SHAPE(n * H, QK));
			dsv32_tensor vb = lc_view(&kc->vx, (b * X + from) * H * Vd, 2,
						  LC_SHAPE(n * H, Vd));
			LC_CK(expand_positions(m, li, b, from, n, &wkvb, kvb, &kb, &vb, err));
		}
		kc->n_expanded = T;
	}
	for (int64_t b = 0; b < B; b++) {
		dsv32_tensor ks = lc_view(&kc->kx, b * X * H * QK, 2, LC_SHAPE(T * H, QK));
		dsv32_tensor kd = lc_view(k, b * T * H * QK, 2, LC_SHAPE(T * H, QK));
		dsv32_tensor vs = lc_view(&kc->vx, b * X * H * Vd, 2, LC_SHAPE(T * H, Vd));
		dsv32_tensor vd = lc_view(v, b * T * H * Vd, 2, LC_SHAPE(T * H, Vd));
		LC_CK(dsv32_copy_cols(m->be, &kd, &ks, 0, 0, QK, err));
		LC_CK(dsv32_copy_cols(m->be, &vd, &vs, 0, 0, Vd, err));
	}
out:
	lc_pool_free(&p);
	return rc;
}

/* Whether layer li keeps its expanded keys and values of T positions across calls: CPU, fixed
 * engine, kv_b not quantized per call (the act-quant knob), and room in the budget. */
static bool keeps_expanded(hf_model *m, int li, int64_t T)
{
	const hf_mat *kv_b = &m->layers[li].kv_b;
	bool per_call = kv_b->w.dtype == DSV32_F8_E4M3 &&
			dsv32_hfknob_on(&m->base.opts, DSV32_HFKNOB_ACT_QUANT);
	return m->be->device == DSV32_DEV_CPU && m->be->gemm_engine == DSV32_GEMM_FIXED &&
	       !per_call && hf_cache_expanded(m, li, T);
}

/* The decode-path knob toward ref: the reference's absorbed MQA decode (§A.8 step 7, the
 * kernel ref/attn.c calls) over hf's latent caches, one query token per row: q [B,1,H,N+R]
 * split into q_nope and q_pe, kv_b in the activation dtype (dequantized as the reference's
 * dequant_wkv_b does: dsv32_weight_dequant), mask [B,1,T]. */
static dsv32_status decode_absorbed(hf_model *m, int li, const hf_fwd *f, const dsv32_tensor *q,
				    const dsv32_tensor *mask, dsv32_tensor *o, dsv32_error *err)
{
	const dsv32_config *c = &m->base.cfg;
	int64_t B = f->B, H = c->n_heads, N = c->qk_nope_head_dim, R = c->qk_rope_head_dim;
	int64_t Vd = c->v_head_dim;
	lc_pool p = {.be = m->be};
	dsv32_status rc = DSV32_OK;
	dsv32_tensor *qn, *qp, kv_b = {0};
	LC_POOL(qn, m->act, 3, B, H, N);
	LC_POOL(qp, m->act, 3, B, H, R);
	dsv32_tensor q2 = lc_view(q, 0, 2, LC_SHAPE(B * H, N + R));
	dsv32_tensor qn2 = lc_view(qn, 0, 2, LC_SHAPE(B * H, N));
	dsv32_tensor qp2 = lc_view(qp, 0, 2, LC_SHAPE(B * H, R));
	LC_CK(dsv32_copy_cols(m->be, &qn2, &q2, 0, 0, N, err));
	LC_CK(dsv32_copy_cols(m->be, &qp2, &q2, N, 0, R, err));
	LC_CK(hf_mat_get(m, &m->layers[li].kv_b, &kv_b, err));
	dsv32_tensor o3 = lc_view(o, 0, 3, LC_SHAPE(B, H, Vd));
	LC_CK(dsv32_attn_decode_absorbed(m->be, &o3, qn, qp, &kv_b, &m->cache[li].kv,
					 &m->cache[li].krot, f->T, mask, m->scaling, err));
out:
	lc_pool_free(&p);
	return rc;
}

dsv32_status hf_causal_mask(hf_model *m, hf_fwd *f, dsv32_error *err)
{
	int64_t B = f->B, S = f->S, T = f->T;
	if (!dsv32_hfknob_on(&m->base.opts, DSV32_HFKNOB_MASK))
		return dsv32_attn_mask_hf(m->be, &f->causal, NULL, &f->pad_dev, f->past, err);
	for (int64_t b = 0; b < B; b++)
		for (int64_t t = 0; t < T; t++)
			if (!m->pad[b * m->cap_t + t])
				return DSV32_FAIL(err, DSV32_E_UNSUPPORTED, "hf forward: mask knob: "
						  "attention_mask[%lld][%lld] = 0, the reference has no "
						  "padding", (long long)b, (long long)t);
	/* torch.full(-inf).triu_(1) from the query's position past + s: exact in bf16 */
	size_t n = (size_t)(B * S * T);
	float *h = malloc(n * sizeof *h + 1);
	void *hc = malloc(n * dsv32_dtype_size(m->act) + 1);
	dsv32_status rc = DSV32_OK;
	if (!h || !hc) {
		rc = DSV32_FAIL(err, DSV32_E_NOMEM, "hf forward: mask of %zu", n);
		goto out;
	}
	for (int64_t b = 0; b < B; b++)
		for (int64_t s = 0; s < S; s++)
			for (int64_t t = 0; t < T; t++)
				h[(b * S + s) * T + t] = t > f->past + s ? -INFINITY : 0.0f;
	dsv32_convert(hc, m->act, h, DSV32_F32, n);
	rc = dsv32_backend_upload(m->be, f->causal.data, hc, n * dsv32_dtype_size(m->act), err);
out:
	free(h);
	free(hc);
	return rc;
}

dsv32_status hf_attention(hf_model *m, int li, const hf_fwd *f, const dsv32_tensor *x,
			  dsv32_tensor *out, dsv32_error *err)
{
	const dsv32_config *c = &m->base.cfg;
	hf_layer_w *w = &m->layers[li];
	hf_layer_cache *kc = &m->cache[li];
	dsv32_backend *be = m->be;
	int64_t B = f->B, S = f->S, T = f->T, H = c->n_heads, N = c->qk_nope_head_dim;
	int64_t R = c->qk_rope_head_dim, C = c->kv_lora_rank, QK = N + R, Vd = c->v_head_dim;
	int64_t k = c->index_topk < T ? c->index_topk : T;
	dsv32_dtype a = m->act;
	lc_tapper tp = hf_tapper(m);
	lc_pool p = {.be = m->be};
	dsv32_status rc = DSV32_OK;
	dsv32_tensor *qa, *q_lat, *q, *ckv, *kv_pass, *kv_lat, *krot, *kk, *v, *topk, *mask, *o;

	/* queries */
	LC_POOL(qa, a, 3, B, S, c->q_lora_rank);
	LC_POOL(q_lat, a, 3, B, S, c->q_lora_rank);
	LC_CK(hf_linear(m, qa, x, &w->q_a, err));
	LC_CK(hf_rmsnorm(m, q_lat, qa, &w->q_a_ln, HF_QA_EPS, err));
	LC_CK(lc_tap_layer(tp, DSV32_LTAP_Q_LATENT, li, q_lat, err));
	LC_POOL(q, a, 4, B, S, H, QK);
	dsv32_tensor q3 = lc_view(q, 0, 3, LC_SHAPE(B, S, H * QK));
	LC_CK(hf_linear(m, &q3, q_lat, &w->q_b, err));

	/* latent and shared rope key */
	LC_POOL(ckv, a, 3, B, S, C + R);
	LC_CK(hf_linear(m, ckv, x, &w->kv_a, err));
	LC_POOL(kv_pass, a, 3, B, S, C);
	LC_POOL(kv_lat, a, 3, B, S, C);
	LC_POOL(krot, a, 3, B, S, R);
	LC_CK(dsv32_copy_cols(be, kv_pass, ckv, 0, 0, C, err));
	LC_CK(dsv32_copy_cols(be, krot, ckv, C, 0, R, err));
	LC_CK(hf_rmsnorm(m, kv_lat, kv_pass, &w->kv_a_ln, HF_QA_EPS, err));
	if (dsv32_hfknob_on(&m->base.opts, DSV32_HFKNOB_KV_FP8) && a == DSV32_BF16)
		/* the reference's fp8 round trip of the normed latent (§B.6; its bf16 profile only),
		 * before the tap and the cache as there */
		LC_CK(dsv32_fp8_roundtrip(be, kv_lat, kv_lat, c->scale_fmt_ue8m0, err));
	LC_CK(lc_tap_layer(tp, DSV32_LTAP_KV_LATENT, li, kv_lat, err));

	/* apply_rotary_pos_emb_interleave: de-interleave, half-split rotation; stays permuted
	 * (hf_rope: or what the rope knobs toward ref take over) */
	LC_CK(hf_rope(m, f, q, N, true, err));
	LC_CK(hf_rope(m, f, krot, 0, true, err));
	LC_CK(hf_tap_rope(m, DSV32_LTAP_Q_ROPE, li, q, N, err));
	LC_CK(hf_tap_rope(m, DSV32_LTAP_K_ROPE, li, krot, 0, err));

	/* cache.update (latents) */
	LC_CK(hf_cache_write(m, &kc->kv, kv_lat, f->past, err));
	LC_CK(hf_cache_write(m, &kc->krot, krot, f->past, err));

	/* indexer top-k, folded into the mask: masked_fill(index_mask, finfo.min), or with the
	 * mask knob the reference's -inf outside the top-k and above the diagonal (causal from
	 * past: at S = 1 every cached key, as its decode mask without a causal part) */
	LC_POOL(topk, DSV32_I64, 3, B, S, k);
	LC_CK(hf_indexer(m, li, f, x, q_lat, topk, err));
	LC_POOL(mask, a, 3, B, S, T);
	if (dsv32_hfknob_on(&m->base.opts, DSV32_HFKNOB_MASK))
		LC_CK(dsv32_attn_mask_ref(be, mask, topk, f->past, err));
	else
		LC_CK(dsv32_attn_mask_hf(be, mask, topk, &f->pad_dev, f->past, err));

	LC_POOL(o, a, 4, B, S, H, Vd);
	if (S == 1 && dsv32_hfknob_on(&m->base.opts, DSV32_HFKNOB_DECODE_PATH)) {
		LC_CK(decode_absorbed(m, li, f, q, mask, o, err));
	} else { /* expand_kv over all T cached positions; eager attention: bf16 scores,
		  * · scaling, + mask, fp32 softmax -> bf16, P·V */
		LC_POOL(kk, a, 4, B, T, H, QK);
		LC_POOL(v, a, 4, B, T, H, Vd);
		LC_CK(keeps_expanded(m, li, T) ? expand_kv_cached(m, li, f, kk, v, err)
					    : expand_kv(m, li, f, kk, v, err));
		LC_CK(dsv32_attn_prefill(be, o, q, kk, v, mask, m->scaling, DSV32_ATTN_BSHD, err));
	}
	dsv32_tensor o2 = lc_view(o, 0, 3, LC_SHAPE(B, S, H * Vd));
	LC_CK(hf_linear(m, out, &o2, &w->o_proj, err));
out:
	lc_pool_free(&p);
	return rc;
}
