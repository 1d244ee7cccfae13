/* moe_hf.c: the moe-accum knob (core/knobs.h): the MoE of one layer with the reference's weights
 * but the HF layout's router normalisation and expert accumulation (docs/spec/hf_layout.md §6,
 * hf_layout/moe.c, grouped_mm):
 *
 *   logits = F.linear(fp32 x, fp32 gate.weight);  (w, idx) = router in HF mode (w / (sum +
 *   1e-20) iff norm_topk_prob; group scores always top-2 sums; kernels/router.h)
 *   per (token, slot) the bf16 expert output (ref_mlp_apply, so silu-gating and act-quant apply
 *   as in the dense MLP), summed over the k slots in slot order in fp32 with its weight, one
 *   cast to bf16 (dsv32_moe_combine_hf_grouped); out = bf16(routed + shared) (one bf16 add).
 *
 * Instead of ref/moe.c's fp32 index-add per expert in expert order, + the shared expert in fp32,
 * one cast. One rank only (HF has no tensor parallelism to mirror): W > 1 is
 * DSV32_E_UNSUPPORTED.
 */
#include <stdlib.h>

#include "kernels/combine.h"
#include "kernels/elementwise.h"
#include "kernels/gemm.h"
#include "kernels/router.h"
#include "ref/ref_internal.h"
#include "layout_common/route.h"

/* Every (token, slot) row of expert e appended at slot row off of the expert-sorted outputs:
 * tok[] receives the tokens, dst[t·K + s] the slot row; returns the count. */
static int64_t expert_rows(const int64_t *idx, int64_t e, int64_t T, int64_t K, int64_t off,
			   int64_t *tok, int64_t *dst)
{
	int64_t n = 0;
	for (int64_t t = 0; t < T; t++)
		for (int64_t s = 0; s < K; s++)
			if (idx[t * K + s] == e) {
				tok[n] = t;
				dst[t * K + s] = off + n;
				n++;
			}
	return n;
}

/* Expert e on its n tokens: y [n, dim] = expert(x[tok]). */
static dsv32_status run_expert(ref_model *m, ref_layer *ly, int64_t e, const dsv32_tensor *x2,
			       const int64_t *tok, int64_t n, dsv32_tensor *y, dsv32_error *err)
{
	lc_pool p = {.be = m->be};
	dsv32_status rc = DSV32_OK;
	dsv32_tensor *rows, *xe;
	LC_POOL(rows, DSV32_I64, 1, n);
	LC_POOL(xe, m->act, 2, n, x2->shape[1]);
	LC_CK(dsv32_backend_upload(m->be, rows->data, tok, (size_t)n * sizeof(int64_t), err));
	LC_CK(dsv32_embedding(m->be, xe, x2, rows, err)); /* x[idx]: a row gather */
	LC_CK(ref_mlp_apply(m, &ly->ew1[e], &ly->ew3[e], &ly->ew2[e], xe, y, err));
out:
	lc_pool_free(&p);
	return rc;
}

dsv32_status ref_moe_forward_hf(ref_model *m, int layer, const dsv32_tensor *x, int64_t B,
				int64_t S, dsv32_tensor *out, dsv32_error *err)
{
	const dsv32_config *c = &m->base.cfg;
	ref_layer *ly = &m->layers[layer];
	int64_t T = B * S, E = c->n_routed_experts, K = c->n_activated_experts, dim = c->dim;
	if (m->W != 1)
		return DSV32_FAIL(err, DSV32_E_UNSUPPORTED, "moe-accum knob: world size %d, the HF "
				  "accumulation has one rank", m->W);
	lc_tapper tp = ref_tapper(m);
	lc_pool p = {.be = m->be};
	dsv32_status rc = DSV32_OK;
	dsv32_tensor *logits, *w, *idx, *slots, *src, *acc, *sh;
	size_t nk = (size_t)(T * K);
	int64_t *idx_h = malloc(nk * sizeof *idx_h), *tok = malloc(nk * sizeof *tok);
	int64_t *dst = malloc(nk * sizeof *dst);
	if (!idx_h || !tok || !dst) {
		rc = DSV32_FAIL(err, DSV32_E_NOMEM, "layer %d: routing tables", layer);
		goto out;
	}
	dsv32_tensor x2 = lc_view(x, 0, 2, LC_SHAPE(T, dim));
	LC_POOL(logits, DSV32_F32, 2, T, E);
	LC_CK(dsv32_gemm(m->be, logits, &x2, &ly->gate_w, err)); /* fp32(x) @ fp32(W)^T */
	LC_POOL(w, DSV32_F32, 2, T, K);
	LC_POOL(idx, DSV32_I64, 2, T, K);
	dsv32_router_params rp = lc_router_params(&m->base, DSV32_ROUTER_HF);
	const dsv32_tensor *bias = ly->gate_b.data ? &ly->gate_b : NULL;
	LC_CK(dsv32_router(m->be, w, idx, logits, bias, &rp, err));
	dsv32_tensor idx3 = lc_view(idx, 0, 3, LC_SHAPE(B, S, K));
	dsv32_tensor w3 = lc_view(w, 0, 3, LC_SHAPE(B, S, K));
	/* the selection's scores and its decision, as ref/moe.c and hf_layout/moe.c offer them */
	LC_CK(lc_tap_router_scores(&m->base, tp, DSV32_ROUTER_HF, layer, logits, bias, B, S, err));
	LC_CK(lc_tap_layer(tp, DSV32_LTAP_MOE_EXPERTS, layer, &idx3, err));
	bool forced;
	LC_CK(lc_tap_decide(tp, &m->base.decide, DSV32_LTAP_MOE_EXPERTS, layer, &idx3, E, &forced,
			    err));
	if (forced) /* the router's weights at the forced experts, from this layer's own scores */
		LC_CK(dsv32_router_weights_at(m->be, w, idx, logits, bias, &rp, err));
	LC_CK(lc_tap_layer(tp, DSV32_LTAP_MOE_WEIGHTS, layer, &w3, err));
	LC_CK(dsv32_backend_download(m->be, idx_h, idx->data, nk * sizeof *idx_h, err));
	for (size_t i = 0; i < nk; i++)
		if (idx_h[i] < 0 || idx_h[i] >= E) {
			rc = DSV32_FAIL(err, DSV32_E_INTERNAL, "layer %d: router chose expert %lld "
					"outside [0, %lld)", layer, (long long)idx_h[i], (long long)E);
			goto out;
		}
	LC_POOL(slots, m->act, 2, T * K, dim);
	for (int64_t e = 0, off = 0; e < E; e++) {
		int64_t n = expert_rows(idx_h, e, T, K, off, tok, dst);
		if (n == 0)
			continue;
		dsv32_tensor yv = lc_view(slots, off * dim, 2, LC_SHAPE(n, dim));
		LC_CK(run_expert(m, ly, e, &x2, tok, n, &yv, err));
		off += n;
	}
	LC_POOL(src, DSV32_I64, 1, T * K);
	LC_CK(dsv32_backend_upload(m->be, src->data, dst, nk * sizeof *dst, err));
	LC_POOL(acc, m->act, 2, T, dim);
	LC_CK(dsv32_moe_combine_hf_grouped(m->be, acc, slots, src, w, K, err));
	LC_POOL(sh, m->act, 2, T, dim);
	LC_CK(ref_mlp_apply(m, &ly->rk[0].sw1, &ly->rk[0].sw3, &ly->rk[0].sw2, &x2, sh, err));
	dsv32_tensor o2 = lc_view(out, 0, 2, LC_SHAPE(T, dim));
	LC_CK(dsv32_add(m->be, &o2, acc, sh, err)); /* + shared_experts(x), one add */
out:
	free(idx_h);
	free(tok);
	free(dst);
	lc_pool_free(&p);
	return rc;
}
