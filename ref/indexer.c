/* indexer.c: the lightning indexer of one layer (docs/spec/ref_layout.md §A.9, §B.4, §B.7; Part E
 * items 9-10). Replicated on every rank (§C.5), so it runs once; the cross-rank broadcast check
 * of §C.7 is trivially true in-process and is not performed.
 *
 *   q  = wq_b(qr) [B,S,Hi,di];  RoPE half-split on dims [0, dr) of each head;  Hadamard
 *   k  = LayerNorm(wk(x)) [B,S,di]; RoPE half-split on [0, dr);  Hadamard
 *   fp8 (default): q8,q_s = act_quant(q); k8,k_s = act_quant(k) -> k cache / k_scale cache
 *        w = ((weights_proj(fp32 x) · Hi^-0.5) · q_s) · fp32(di^-0.5)
 *        scores = fp8_index(q8, w, k_cache[:B,:E], k_scale[:B,:E]) (+ causal mask in prefill)
 *   no fp8 (fp32 profile or no_fp8_indexer): the cache holds k itself,
 *        w = (weights_proj(fp32 x) · Hi^-0.5) · fp32(di^-0.5), scores = Σ_h w_h·ReLU(q_h·k)
 *        (dsv32_index_scores_hf with scale 1: the same formula without quantization)
 *   topk = top-min(index_topk, E) of scores (CUDA tie rule, kernels/topk.h), offered to the
 *   caller's decision sink (core/model.h "Decisions") before the attention uses it.
 */
#include <math.h>
#include <stdlib.h>

#include "core/knobs.h"
#include "kernels/attention.h"
#include "kernels/combine.h"
#include "kernels/elementwise.h"
#include "kernels/fp8.h"
#include "kernels/gemm.h"
#include "kernels/hadamard.h"
#include "kernels/indexer.h"
#include "kernels/layernorm.h"
#include "kernels/rope.h"
#include "kernels/topk_torch.h"
#include "ref/ref_internal.h"

/* The prefill causal mask (S, S): -inf strictly above the diagonal (torch.full(-inf).triu_(1)),
 * built on the host and uploaded. */
static dsv32_status causal_mask(ref_model *m, dsv32_tensor *mask, int64_t S, dsv32_error *err)
{
	float *h = malloc((size_t)(S * S) * sizeof(float) + 1);
	if (!h)
		return DSV32_FAIL(err, DSV32_E_NOMEM, "causal mask %lld x %lld", (long long)S,
				  (long long)S);
	for (int64_t i = 0; i < S; i++)
		for (int64_t j = 0; j < S; j++)
			h[i * S + j] = j > i ? -INFINITY : 0.0f;
	dsv32_status rc = dsv32_backend_upload(m->be, mask->data, h, (size_t)(S * S) * sizeof(float),
					       err);
	free(h);
	return rc;
}

dsv32_status ref_indexer_forward(ref_model *m, int layer, const dsv32_tensor *x,
				 const dsv32_tensor *qr, int64_t B, int64_t S, int64_t P,
				 dsv32_tensor *topk, dsv32_error *err)
{
	const dsv32_config *c = &m->base.cfg;
	ref_layer *ly = &m->layers[layer];
	dsv32_backend *be = m->be;
	int64_t Hi = c->index_n_heads, di = c->index_head_dim;
	int64_t T = B * S, E = P + S, k = c->index_topk < E ? c->index_topk : E;
	dsv32_dtype act = m->act;
	lc_tapper tp = ref_tapper(m);
	lc_pool p = {.be = m->be};
	dsv32_status rc = DSV32_OK;
	dsv32_tensor *q, *kk, *w, *mask = NULL, *scores;

	LC_POOL(q, act, 4, B, S, Hi, di);
	LC_CK(ref_linear(m, q, qr, &ly->iwq_b, err));
	LC_CK(ref_rope(m, q, q, P, 0, false, err));
	dsv32_tensor q2 = lc_view(q, 0, 2, (int64_t[]){T * Hi, di});
	/* the indexer-fp8 knob: HF's bf16 scores, no Hadamard, D^-0.5 inside the ReLU */
	bool hf_sc = !m->fp8_idx && dsv32_knob_on(&m->base.opts, DSV32_KNOB_INDEXER_HF_SCORES);
	if (!hf_sc)
		LC_CK(dsv32_hadamard(be, &q2, &q2, err));

	LC_POOL(kk, act, 3, B, S, di);
	LC_CK(ref_linear(m, kk, x, &ly->iwk, err));
	LC_CK(dsv32_layernorm(be, kk, kk, &ly->ik_norm_w, &ly->ik_norm_b, 1e-6, err));
	LC_CK(ref_rope(m, kk, kk, P, 0, false, err));
	if (!hf_sc)
		LC_CK(dsv32_hadamard(be, kk, kk, err));

	/* w = weights_proj(fp32(x)) · Hi^-0.5: an fp32 GEMM (the bf16 x is widened exactly) */
	LC_POOL(w, DSV32_F32, 3, B, S, Hi);
	if (dsv32_knob_on(&m->base.opts, DSV32_KNOB_INDEXER_WEIGHTS_DTYPE)) { /* HF: a bf16 GEMM */
		dsv32_tensor *wb;
		LC_POOL(wb, act, 3, B, S, Hi);
		LC_CK(dsv32_gemm(be, wb, x, &ly->iw_proj, err));
		LC_CK(dsv32_scale(be, w, wb, (float)pow((double)Hi, -0.5), err));
	} else {
		LC_CK(dsv32_gemm(be, w, x, &ly->iw_proj, err));
		LC_CK(dsv32_scale(be, w, w, (float)pow((double)Hi, -0.5), err));
	}
	float dscale = (float)pow((double)di, -0.5);
	int64_t maxS = m->maxS;

	if (dsv32_knob_on(&m->base.opts, DSV32_KNOB_MASK)) { /* HF's finfo.min, decode too */
		LC_POOL(mask, act, 3, B, S, E);
		LC_CK(dsv32_attn_mask_hf(be, mask, NULL, NULL, P, err));
	} else if (S > 1) {
		LC_POOL(mask, DSV32_F32, 2, S, S);
		LC_CK(causal_mask(m, mask, S, err));
	}
	LC_POOL(scores, DSV32_F32, 3, B, S, E);
	if (m->fp8_idx) {
		dsv32_tensor *q8, *qs;
		LC_POOL(q8, DSV32_F8_E4M3, 4, B, S, Hi, di);
		LC_POOL(qs, DSV32_F32, 3, B, S, Hi);
		dsv32_tensor qs4 = lc_view(qs, 0, 4, (int64_t[]){B, S, Hi, 1});
		LC_CK(dsv32_act_quant(be, q8, &qs4, q, m->ue8m0, err));
		for (int64_t b = 0; b < B; b++) { /* k8, k_s straight into the caches at [b, P:E) */
			dsv32_tensor kb = lc_view(kk, b * S * di, 2, (int64_t[]){S, di});
			dsv32_tensor k8 = lc_view(&ly->k_cache, (b * maxS + P) * di, 2,
						   (int64_t[]){S, di});
			dsv32_tensor ks = lc_view(&ly->k_scale, b * maxS + P, 2, (int64_t[]){S, 1});
			LC_CK(dsv32_act_quant(be, &k8, &ks, &kb, m->ue8m0, err));
		}
		LC_CK(dsv32_mul_bcast(be, w, w, qs, err)); /* w[..., None] * q_s */
		LC_CK(dsv32_scale(be, w, w, dscale, err));
		LC_CK(dsv32_fp8_index(be, scores, q8, w, &ly->k_cache, &ly->k_scale, mask, err));
	} else {
		LC_CK(ref_cache_write(m, &ly->k_cache, kk, B, S, P, err));
		if (!hf_sc)
			LC_CK(dsv32_scale(be, w, w, dscale, err));
		LC_CK(dsv32_index_scores_hf(be, scores, q, &ly->k_cache, w, hf_sc ? dscale : 1.0f,
					    mask, err));
	}
	LC_CK(lc_tap_layer_cache(tp, DSV32_LTAP_INDEXER_K_FP8, layer, &ly->k_cache, B, S, P, err));
	LC_CK(lc_tap_layer_cache(tp, DSV32_LTAP_INDEXER_K_SCALE, layer, &ly->k_scale, B, S, P, err));
	LC_CK(lc_tap_layer(tp, DSV32_LTAP_INDEXER_SCORES, layer, scores, err));
	(void)k;
	LC_CK(dsv32_topk_rule(be, topk, NULL, scores, topk->shape[2],
			      (dsv32_tie_rule)m->base.opts.ties, true, err)); /* sorted, as topk() */
	LC_CK(lc_tap_layer(tp, DSV32_LTAP_INDEXER_TOPK, layer, topk, err));
	bool forced; /* a forced selection is written into topk, which builds the mask */
	LC_CK(lc_tap_decide(tp, &m->base.decide, DSV32_LTAP_INDEXER_TOPK, layer, topk, E, &forced,
			    err));
out:
	lc_pool_free(&p);
	return rc;
}
