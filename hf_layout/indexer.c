/* indexer.c: DeepseekV32Indexer.forward (docs/spec/hf_layout.md §9; transformers 5.24): wq_b on the q
 * latent, wk + k_norm (LayerNorm, bf16 weight/bias), half-split RoPE on the first rope dims of
 * q and k (no Hadamard, no fp8), key cache append, fp32 scores ReLU(q·k·D^-0.5) weighted by
 * weights_proj(x) (a bf16 GEMM, widened, × H^-0.5) and summed over heads, + the causal/padding
 * mask, top-k = min(index_topk, T), offered to the caller's decision sink (core/model.h
 * "Decisions") before the attention mask is built from it.
 *
 * Knobs toward ref (core/knobs.h, opts.knobs_to_ref), as ref/indexer.c computes:
 *   indexer-weights-dtype  weights_proj(fp32 x) as an fp32 GEMM of the F32 weight (weights.c),
 *                          then × H^-0.5 (one rounding instead of the bf16 GEMM's two)
 *   indexer-fp8            the Hadamard transform of q and k; bf16 profile: q8, q_s =
 *                          act_quant(q), k8, k_s = act_quant(k) into the fp8 key caches,
 *                          w = (w · q_s) · fp32(D^-0.5), scores = fp8_index; fp32 profile (the
 *                          reference runs no fp8 there): w · fp32(D^-0.5), scores Σ w·ReLU(q·k).
 * The mask stays HF's (finfo.min; the mask knob's). */
#include <math.h>

#include "core/knobs.h"
#include "hf_layout/hf_internal.h"
#include "kernels/combine.h"
#include "kernels/elementwise.h"
#include "kernels/fp8.h"
#include "kernels/hadamard.h"
#include "kernels/indexer.h"
#include "kernels/layernorm.h"
#include "kernels/rope.h"
#include "kernels/topk_torch.h"

#define HF_KNORM_EPS 1e-6

/* The reference's fp8 indexer is taken over (the knob, outside the fp32 profile). */
static bool fp8_keys(const hf_model *m)
{
	return dsv32_hfknob_on(&m->base.opts, DSV32_HFKNOB_INDEXER_FP8) && m->act != DSV32_F32;
}

dsv32_status hf_indexer_cache_init(hf_model *m, dsv32_error *err)
{
	const dsv32_config *c = &m->base.cfg;
	if (!fp8_keys(m))
		return DSV32_OK;
	for (int i = 0; i < (int)c->n_layers; i++) {
		hf_layer_cache *k = &m->cache[i];
		DSV32_TRY(lc_alloc(m->be, &k->ik8, DSV32_F8_E4M3, 3,
				   LC_SHAPE(m->cap_b, m->cap_t, c->index_head_dim), err));
		DSV32_TRY(lc_alloc(m->be, &k->iks, DSV32_F32, 3, LC_SHAPE(m->cap_b, m->cap_t, 1), err));
	}
	return DSV32_OK;
}

void hf_indexer_cache_free(hf_model *m)
{
	if (m->cache)
		for (int i = 0; i < (int)m->base.cfg.n_layers; i++) {
			lc_free(m->be, &m->cache[i].ik8);
			lc_free(m->be, &m->cache[i].iks);
		}
}

/* wf F32 [B,S,IH] = weights_proj(x).float() * H^-0.5: HF's GEMM rounded to the activation
 * dtype, then an fp32 multiply; with the indexer-weights-dtype knob, the reference's fp32 GEMM
 * (the F32 weight, bf16 x widened exactly) scaled in place. */
static dsv32_status head_weights(hf_model *m, const hf_layer_w *w, const dsv32_tensor *x,
				 dsv32_tensor *wf, dsv32_error *err)
{
	float s = (float)pow((double)m->base.cfg.index_n_heads, -0.5);
	if (dsv32_hfknob_on(&m->base.opts, DSV32_HFKNOB_INDEXER_WEIGHTS_DTYPE)) {
		DSV32_TRY(hf_linear(m, wf, x, &w->ix_wproj, err));
		return dsv32_scale(m->be, wf, wf, s, err);
	}
	lc_pool p = {.be = m->be};
	dsv32_status rc = DSV32_OK;
	dsv32_tensor *wp;
	LC_POOL_AS(wp, m->act, 3, wf->shape);
	LC_CK(hf_linear(m, wp, x, &w->ix_wproj, err));
	LC_CK(dsv32_scale(m->be, wf, wp, s, err));
out:
	lc_pool_free(&p);
	return rc;
}

/* The reference's fp8 scores (ref/indexer.c): q8, q_s = act_quant(q); k8, k_s = act_quant(k)
 * straight into the fp8 caches at [b, past:T); w = (w · q_s) · D^-0.5; fp8_index. */
static dsv32_status fp8_scores(hf_model *m, int li, const hf_fwd *f, const dsv32_tensor *q,
			       const dsv32_tensor *k, dsv32_tensor *wf, float dscale,
			       dsv32_tensor *sc, dsv32_error *err)
{
	hf_layer_cache *kc = &m->cache[li];
	int64_t B = f->B, S = f->S, IH = q->shape[2], ID = q->shape[3], Tc = kc->ik8.shape[1];
	bool ue8m0 = m->base.cfg.scale_fmt_ue8m0;
	lc_tapper tp = hf_tapper(m);
	lc_pool p = {.be = m->be};
	dsv32_status rc = DSV32_OK;
	dsv32_tensor *q8, *qs;
	LC_POOL(q8, DSV32_F8_E4M3, 4, B, S, IH, ID);
	LC_POOL(qs, DSV32_F32, 3, B, S, IH);
	dsv32_tensor qs4 = lc_view(qs, 0, 4, LC_SHAPE(B, S, IH, 1));
	LC_CK(dsv32_act_quant(m->be, q8, &qs4, q, ue8m0, err));
	for (int64_t b = 0; b < B; b++) {
		dsv32_tensor kb = lc_view(k, b * S * ID, 2, LC_SHAPE(S, ID));
		dsv32_tensor k8 = lc_view(&kc->ik8, (b * Tc + f->past) * ID, 2, LC_SHAPE(S, ID));
		dsv32_tensor ks = lc_view(&kc->iks, b * Tc + f->past, 2, LC_SHAPE(S, 1));
		LC_CK(dsv32_act_quant(m->be, &k8, &ks, &kb, ue8m0, err));
	}
	LC_CK(dsv32_mul_bcast(m->be, wf, wf, qs, err)); /* w[..., None] * q_s */
	LC_CK(dsv32_scale(m->be, wf, wf, dscale, err));
	LC_CK(dsv32_fp8_index(m->be, sc, q8, wf, &kc->ik8, &kc->iks, &f->causal, err));
	LC_CK(lc_tap_layer_cache(tp, DSV32_LTAP_INDEXER_K_FP8, li, &kc->ik8, B, S, f->past, err));
	LC_CK(lc_tap_layer_cache(tp, DSV32_LTAP_INDEXER_K_SCALE, li, &kc->iks, B, S, f->past, err));
out:
	lc_pool_free(&p);
	return rc;
}

/* The scores sc F32 [B,S,T] of q [B,S,IH,ID] against the keys of this step k [B,S,ID] and the
 * cache, weighted by wf (which the reference's forms scale in place). */
static dsv32_status scores(hf_model *m, int li, const hf_fwd *f, const dsv32_tensor *q,
			   const dsv32_tensor *k, dsv32_tensor *wf, dsv32_tensor *sc,
			   dsv32_error *err)
{
	float dscale = (float)pow((double)m->base.cfg.index_head_dim, -0.5);
	if (fp8_keys(m))
		return fp8_scores(m, li, f, q, k, wf, dscale, sc, err);
	dsv32_tensor *ikey = &m->cache[li].ikey;
	DSV32_TRY(hf_cache_write(m, ikey, k, f->past, err));
	if (!dsv32_hfknob_on(&m->base.opts, DSV32_HFKNOB_INDEXER_FP8))
		return dsv32_index_scores_hf(m->be, sc, q, ikey, wf, dscale, &f->causal, err);
	/* the reference without fp8 (fp32 profile): D^-0.5 on the weights, not inside the ReLU */
	DSV32_TRY(dsv32_scale(m->be, wf, wf, dscale, err));
	return dsv32_index_scores_hf(m->be, sc, q, ikey, wf, 1.0f, &f->causal, err);
}

dsv32_status hf_indexer(hf_model *m, int li, const hf_fwd *f, const dsv32_tensor *x,
			const dsv32_tensor *q_lat, dsv32_tensor *topk, dsv32_error *err)
{
	const dsv32_config *c = &m->base.cfg;
	hf_layer_w *w = &m->layers[li];
	dsv32_backend *be = m->be;
	int64_t B = f->B, S = f->S, T = f->T, IH = c->index_n_heads, ID = c->index_head_dim;
	bool hadamard = dsv32_hfknob_on(&m->base.opts, DSV32_HFKNOB_INDEXER_FP8);
	dsv32_dtype a = m->act;
	lc_tapper tp = hf_tapper(m);
	lc_pool p = {.be = m->be};
	dsv32_status rc = DSV32_OK;
	dsv32_tensor *q, *kr, *k, *wf, *sc;
	LC_POOL(q, a, 4, B, S, IH, ID);
	dsv32_tensor q3 = lc_view(q, 0, 3, LC_SHAPE(B, S, IH * ID));
	dsv32_tensor q2 = lc_view(q, 0, 2, LC_SHAPE(B * S * IH, ID));
	LC_CK(hf_linear(m, &q3, q_lat, &w->ix_wq_b, err));
	LC_CK(hf_rope(m, f, q, 0, false, err)); /* ops.c: or the rope-freqs knob's */
	if (hadamard)
		LC_CK(dsv32_hadamard(be, &q2, &q2, err));
	LC_POOL(kr, a, 3, B, S, ID);
	LC_POOL(k, a, 3, B, S, ID);
	LC_CK(hf_linear(m, kr, x, &w->ix_wk, err));
	LC_CK(dsv32_layernorm(be, k, kr, &w->ix_kn_w, &w->ix_kn_b, HF_KNORM_EPS, err));
	LC_CK(hf_rope(m, f, k, 0, false, err)); /* ops.c: or the rope-freqs knob's */
	if (hadamard)
		LC_CK(dsv32_hadamard(be, k, k, err));
	LC_POOL(wf, DSV32_F32, 3, B, S, IH);
	LC_CK(head_weights(m, w, x, wf, err));
	LC_POOL(sc, DSV32_F32, 3, B, S, T);
	LC_CK(scores(m, li, f, q, k, wf, sc, err));
	LC_CK(lc_tap_layer(tp, DSV32_LTAP_INDEXER_SCORES, li, sc, err));
	LC_CK(dsv32_topk_rule(be, topk, NULL, sc, topk->shape[2],
			      (dsv32_tie_rule)m->base.opts.ties, true, err)); /* sorted, as topk() */
	LC_CK(lc_tap_layer(tp, DSV32_LTAP_INDEXER_TOPK, li, topk, err));
	bool forced; /* a forced selection is written into topk, which builds the mask */
	LC_CK(lc_tap_decide(tp, &m->base.decide, DSV32_LTAP_INDEXER_TOPK, li, topk, T, &forced,
			    err));
out:
	lc_pool_free(&p);
	return rc;
}
