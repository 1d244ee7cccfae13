/* indexer.c: DeepseekV32Indexer.forward (docs/spec/hf_layout.md §9; transformers 5.24): wq_b on the q
 * latent, wk + k_norm (LayerNorm, bf16 weight/bias), half-split RoPE on the first rope dims of
 * q and k (no Hadamard, no fp8), key cache append, fp32 scores ReLU(q·k·D^-0.5) weighted by
 * weights_proj(x) (a bf16 GEMM, widened, × H^-0.5) and summed over heads, + the causal/padding
 * mask, top-k = min(index_topk, T), offered to the caller's decision sink (core/model.h
 * "Decisions") before the attention mask is built from it. */
#include <math.h>

#include "kernels/topk_torch.h"
#include "hf_layout/hf_internal.h"
#include "kernels/elementwise.h"
#include "kernels/indexer.h"
#include "kernels/layernorm.h"
#include "kernels/rope.h"

#define HF_KNORM_EPS 1e-6

dsv32_status hf_indexer(hf_model *m, int li, const hf_fwd *f, const dsv32_tensor *x,
			const dsv32_tensor *q_lat, dsv32_tensor *topk, dsv32_error *err)
{
	const dsv32_config *c = &m->base.cfg;
	hf_layer_w *w = &m->layers[li];
	dsv32_backend *be = m->be;
	int64_t B = f->B, S = f->S, T = f->T, IH = c->index_n_heads, ID = c->index_head_dim;
	dsv32_dtype a = m->act;
	lc_tapper tp = hf_tapper(m);
	lc_pool p = {.be = m->be};
	dsv32_status rc = DSV32_OK;
	dsv32_tensor *q, *kr, *k, *wp, *wf, *sc;
	LC_POOL(q, a, 4, B, S, IH, ID);
	dsv32_tensor q3 = lc_view(q, 0, 3, LC_SHAPE(B, S, IH * ID));
	LC_CK(hf_linear(m, &q3, q_lat, &w->ix_wq_b, err));
	LC_CK(hf_rope(m, f, q, 0, false, err)); /* ops.c: or the rope-freqs knob's */
	LC_POOL(kr, a, 3, B, S, ID);
	LC_POOL(k, a, 3, B, S, ID);
	LC_CK(hf_linear(m, kr, x, &w->ix_wk, err));
	LC_CK(dsv32_layernorm(be, k, kr, &w->ix_kn_w, &w->ix_kn_b, HF_KNORM_EPS, err));
	LC_CK(hf_rope(m, f, k, 0, false, err)); /* ops.c: or the rope-freqs knob's */
	LC_CK(hf_cache_write(m, &m->cache[li].ikey, k, f->past, err));
	/* weights_proj(x).float() * H^-0.5: GEMM rounded to the activation dtype, then an fp32
	 * multiply (exact for a power-of-two H) */
	LC_POOL(wp, a, 3, B, S, IH);
	LC_CK(hf_linear(m, wp, x, &w->ix_wproj, err));
	LC_POOL(wf, DSV32_F32, 3, B, S, IH);
	LC_CK(dsv32_scale(be, wf, wp, (float)pow((double)IH, -0.5), err));
	LC_POOL(sc, DSV32_F32, 3, B, S, T);
	LC_CK(dsv32_index_scores_hf(be, sc, q, &m->cache[li].ikey, wf, (float)pow((double)ID, -0.5),
				    &f->causal, err));
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
