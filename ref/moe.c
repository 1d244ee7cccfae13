/* moe.c: the MoE of one layer (docs/spec/ref_layout.md §A.11-A.13, §C.6; Part E items 11-12, 15).
 *
 *   logits = F.linear(fp32 x, fp32 gate.weight);  (w, idx) = Gate (kernels/router.h, ref mode);
 *   idx offered to the caller's decision sink (core/model.h "Decisions"): forced experts get
 *   the Gate's weights at them (dsv32_router_weights_at)
 *   per rank r: y_r = 0 (fp32); for each owned expert e in increasing order with tokens:
 *       y_r[tok] += f32(expert_e(x[tok])) · w[tok, slot]        (fp32 product, fp32 add)
 *     y_r += f32(shared_expert_slice_r(x))   (the bf16 partial of the rank's inter slice)
 *   out = bf16(all_reduce(y_r))   (W == 1: bf16(y_0), the single cast)
 * The routing indices are brought to the host once (the reference's bincount sync).
 */
#include <stdlib.h>
#include <string.h>

#include "core/knobs.h"
#include "kernels/combine.h"
#include "kernels/elementwise.h"
#include "kernels/gemm.h"
#include "kernels/router.h"
#include "ref/ref_internal.h"
#include "layout_common/route.h"

/* The Gate's selection (§A.11) on the fp32 gate logits [T, E]: w F32 [T, K], idx I64 [T, K]. */
static dsv32_status route(ref_model *m, const ref_layer *ly, dsv32_tensor *w, dsv32_tensor *idx,
			  const dsv32_tensor *logits, dsv32_error *err)
{
	dsv32_router_params rp = lc_router_params(&m->base, DSV32_ROUTER_REF);
	return dsv32_router(m->be, w, idx, logits, ly->gate_b.data ? &ly->gate_b : NULL, &rp, err);
}

/* One routed expert on its tokens: y += expert(x[rows]) · wsel. */
static dsv32_status run_expert(ref_model *m, ref_layer *ly, int64_t e, const dsv32_tensor *x,
			       const int64_t *rows_h, const float *w_h, int64_t n, dsv32_tensor *y,
			       dsv32_error *err)
{
	int64_t dim = m->base.cfg.dim;
	lc_pool p = {.be = m->be};
	dsv32_status rc = DSV32_OK;
	dsv32_tensor *rows, *wsel, *xe, *oe;
	LC_POOL(rows, DSV32_I64, 1, n);
	LC_POOL(wsel, DSV32_F32, 1, n);
	LC_POOL(xe, m->act, 2, n, dim);
	LC_POOL(oe, m->act, 2, n, dim);
	LC_CK(dsv32_backend_upload(m->be, rows->data, rows_h, (size_t)n * sizeof(int64_t), err));
	LC_CK(dsv32_backend_upload(m->be, wsel->data, w_h, (size_t)n * sizeof(float), err));
	dsv32_tensor x2 = lc_view(x, 0, 2, (int64_t[]){dsv32_tensor_numel(x) / dim, dim});
	LC_CK(dsv32_embedding(m->be, xe, &x2, rows, err)); /* x[idx]: a row gather */
	LC_CK(ref_mlp_apply(m, &ly->ew1[e], &ly->ew3[e], &ly->ew2[e], xe, oe, err));
	LC_CK(dsv32_moe_combine_ref(m->be, y, oe, rows, wsel, err));
out:
	lc_pool_free(&p);
	return rc;
}

dsv32_status ref_moe_forward(ref_model *m, int layer, const dsv32_tensor *x, int64_t B, int64_t S,
			     dsv32_tensor *out, dsv32_error *err)
{
	const dsv32_config *c = &m->base.cfg;
	ref_layer *ly = &m->layers[layer];
	int64_t T = B * S, E = c->n_routed_experts, K = c->n_activated_experts, dim = c->dim;
	int W = m->W;
	lc_tapper tp = ref_tapper(m);
	lc_pool p = {.be = m->be};
	dsv32_status rc = DSV32_OK;
	dsv32_tensor *logits, *w, *idx, *sh;
	dsv32_tensor parts[DSV32_MAX_WORLD_SIZE];
	int64_t *idx_h = NULL, *rows_h = NULL;
	float *w_h = NULL, *ws_h = NULL;
	if (dsv32_knob_on(&m->base.opts, DSV32_KNOB_MOE_ACCUM)) /* ref/moe_hf.c */
		return ref_moe_forward_hf(m, layer, x, B, S, out, err);

	dsv32_tensor xf = lc_view(x, 0, 2, (int64_t[]){T, dim});
	LC_POOL(logits, DSV32_F32, 2, T, E);
	LC_CK(dsv32_gemm(m->be, logits, &xf, &ly->gate_w, err)); /* fp32(x) @ fp32(W)^T */
	LC_POOL(w, DSV32_F32, 2, T, K);
	LC_POOL(idx, DSV32_I64, 2, T, K);
	LC_CK(route(m, ly, w, idx, logits, err));
	dsv32_tensor idx3 = lc_view(idx, 0, 3, LC_SHAPE(B, S, K));
	dsv32_tensor w3 = lc_view(w, 0, 3, LC_SHAPE(B, S, K));
	LC_CK(lc_tap_router_scores(&m->base, tp, DSV32_ROUTER_REF, layer, logits,
				   ly->gate_b.data ? &ly->gate_b : NULL, B, S, err));
	LC_CK(lc_tap_layer(tp, DSV32_LTAP_MOE_EXPERTS, layer, &idx3, err));
	bool forced;
	LC_CK(lc_tap_decide(tp, &m->base.decide, DSV32_LTAP_MOE_EXPERTS, layer, &idx3, E, &forced,
			    err));
	if (forced) { /* the Gate's weights at the forced experts, from this layer's own scores */
		dsv32_router_params rp = lc_router_params(&m->base, DSV32_ROUTER_REF);
		LC_CK(dsv32_router_weights_at(m->be, w, idx, logits,
					      ly->gate_b.data ? &ly->gate_b : NULL, &rp, err));
	}
	LC_CK(lc_tap_layer(tp, DSV32_LTAP_MOE_WEIGHTS, layer, &w3, err));

	idx_h = dsv32_backend_host_get(m->be, (size_t)(T * K) * sizeof *idx_h);
	w_h = dsv32_backend_host_get(m->be, (size_t)(T * K) * sizeof *w_h);
	rows_h = dsv32_backend_host_get(m->be, (size_t)T * sizeof *rows_h);
	ws_h = dsv32_backend_host_get(m->be, (size_t)T * sizeof *ws_h);
	if (!idx_h || !w_h || !rows_h || !ws_h) {
		rc = DSV32_FAIL(err, DSV32_E_NOMEM, "layer %d: routing tables", layer);
		goto out;
	}
	LC_CK(dsv32_backend_download(m->be, idx_h, idx->data, (size_t)(T * K) * sizeof *idx_h, err));
	LC_CK(dsv32_backend_download(m->be, w_h, w->data, (size_t)(T * K) * sizeof *w_h, err));

	LC_POOL(sh, m->act, 3, B, S, dim);
	for (int r = 0; r < W; r++) {
		dsv32_tensor *y;
		if (!ref_rank_is_local(m, r)) { /* real ranks: that rank's partial arrives in the reduce */
			parts[r] = (dsv32_tensor){0};
			continue;
		}
		LC_POOL(y, DSV32_F32, 2, T, dim); /* zero-filled */
		int64_t e0 = r * (E / W), e1 = e0 + E / W;
		for (int64_t e = e0; e < e1; e++) {
			int64_t n = 0;
			for (int64_t t = 0; t < T; t++)
				for (int64_t s = 0; s < K; s++)
					if (idx_h[t * K + s] == e) {
						rows_h[n] = t;
						ws_h[n++] = w_h[t * K + s];
					}
			if (n)
				LC_CK(run_expert(m, ly, e, x, rows_h, ws_h, n, y, err));
		}
		LC_CK(ref_mlp_apply(m, &ly->rk[r].sw1, &ly->rk[r].sw3, &ly->rk[r].sw2, x, sh, err));
		dsv32_tensor sh2 = lc_view(sh, 0, 2, (int64_t[]){T, dim});
		LC_CK(dsv32_add(m->be, y, y, &sh2, err)); /* y += shared (bf16 partial), fp32 */
		parts[r] = *y;
	}
	dsv32_tensor o2 = lc_view(out, 0, 2, (int64_t[]){T, dim});
	LC_CK(ref_all_reduce(m, &o2, parts, err));
out:
	dsv32_backend_host_put(m->be, idx_h, (size_t)(T * K) * sizeof *idx_h);
	dsv32_backend_host_put(m->be, w_h, (size_t)(T * K) * sizeof *w_h);
	dsv32_backend_host_put(m->be, rows_h, (size_t)T * sizeof *rows_h);
	dsv32_backend_host_put(m->be, ws_h, (size_t)T * sizeof *ws_h);
	lc_pool_free(&p);
	return rc;
}
