/* indexer.c: DeepseekV32Indexer.forward (hf_layout.md §9; transformers 5.24): wq_b on the q
 * latent, wk + k_norm (LayerNorm, bf16 weight/bias), half-split RoPE on the first rope dims of
 * q and k (no Hadamard, no fp8), key cache append, fp32 scores ReLU(q·k·D^-0.5) weighted by
 * weights_proj(x) (a bf16 GEMM, widened, × H^-0.5) and summed over heads, + the causal/padding
 * mask, top-k = min(index_topk, T). */
#include <math.h>

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
	dsv32_tensor q = {0}, kr = {0}, k = {0}, wp = {0}, wf = {0}, sc = {0};
	dsv32_status rc = hf_alloc(m, &q, a, 4, HF_SHAPE(B, S, IH, ID), err);
	if (rc == DSV32_OK) {
		dsv32_tensor q3 = hf_view(&q, 0, 3, HF_SHAPE(B, S, IH * ID));
		rc = hf_linear(m, &q3, q_lat, &w->ix_wq_b, err);
	}
	if (rc == DSV32_OK)
		rc = dsv32_rope_hf(be, &q, &q, &f->cos, &f->sin, 0, err);
	if (rc == DSV32_OK)
		rc = hf_alloc(m, &kr, a, 3, HF_SHAPE(B, S, ID), err);
	if (rc == DSV32_OK)
		rc = hf_alloc(m, &k, a, 3, HF_SHAPE(B, S, ID), err);
	if (rc == DSV32_OK)
		rc = hf_linear(m, &kr, x, &w->ix_wk, err);
	if (rc == DSV32_OK)
		rc = dsv32_layernorm(be, &k, &kr, &w->ix_kn_w, &w->ix_kn_b, HF_KNORM_EPS, err);
	if (rc == DSV32_OK)
		rc = dsv32_rope_hf(be, &k, &k, &f->cos, &f->sin, 0, err);
	if (rc == DSV32_OK)
		rc = hf_cache_write(m, &m->cache[li].ikey, &k, f->past, err);
	/* weights_proj(x).float() * H^-0.5: GEMM rounded to the activation dtype, then an fp32
	 * multiply (exact for a power-of-two H) */
	if (rc == DSV32_OK)
		rc = hf_alloc(m, &wp, a, 3, HF_SHAPE(B, S, IH), err);
	if (rc == DSV32_OK)
		rc = hf_linear(m, &wp, x, &w->ix_wproj, err);
	if (rc == DSV32_OK)
		rc = hf_alloc(m, &wf, DSV32_F32, 3, HF_SHAPE(B, S, IH), err);
	if (rc == DSV32_OK)
		rc = dsv32_scale(be, &wf, &wp, (float)pow((double)IH, -0.5), err);
	if (rc == DSV32_OK)
		rc = hf_alloc(m, &sc, DSV32_F32, 3, HF_SHAPE(B, S, T), err);
	if (rc == DSV32_OK)
		rc = dsv32_index_scores_hf(be, &sc, &q, &m->cache[li].ikey, &wf,
					   (float)pow((double)ID, -0.5), &f->causal, err);
	if (rc == DSV32_OK)
		rc = hf_tapf(m, &sc, err, "layers.%d.indexer.scores", li);
	if (rc == DSV32_OK)
		rc = dsv32_topk(be, topk, NULL, &sc, topk->shape[2], err);
	if (rc == DSV32_OK)
		rc = hf_tapf(m, topk, err, "layers.%d.indexer.topk", li);
	hf_free(m, &q);
	hf_free(m, &kr);
	hf_free(m, &k);
	hf_free(m, &wp);
	hf_free(m, &wf);
	hf_free(m, &sc);
	return rc;
}
