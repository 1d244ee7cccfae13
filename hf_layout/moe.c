/* moe.c: DeepseekV32MoE (hf_layout.md §6; transformers 5.24): fp32 router logits
 * (F.linear(x.float(), W.float())), the HF router, routed experts and the shared expert.
 * grouped_mm (default): per (token, slot) the bf16 expert output times its fp32 weight (fp32),
 *   summed over the k slots in slot order in fp32, one cast; eager: bf16 index_add_ of
 *   bf16(y·w) in ascending expert order. Then + shared_experts(x) (one add, act dtype). */
#include <stdlib.h>
#include <string.h>

#include "hf_layout/hf_internal.h"
#include "kernels/combine.h"
#include "kernels/elementwise.h"

/* Run expert e on its n rows (tokens tok[0..n)): y [n, D] = expert(x2[tok]). */
static dsv32_status run_expert(hf_model *m, hf_layer_w *w, int64_t e, const dsv32_tensor *x2,
			       const int64_t *tok, int64_t n, dsv32_tensor *y, dsv32_error *err)
{
	int64_t D = x2->shape[1];
	dsv32_tensor ids = {0}, xs = {0};
	dsv32_status rc = hf_alloc(m, &ids, DSV32_I64, 1, HF_SHAPE(n), err);
	if (rc == DSV32_OK)
		rc = dsv32_backend_upload(m->be, ids.data, tok, sizeof(int64_t) * (size_t)n, err);
	if (rc == DSV32_OK)
		rc = hf_alloc(m, &xs, m->act, 2, HF_SHAPE(n, D), err);
	if (rc == DSV32_OK) /* hidden_states[token_idx]: a row gather */
		rc = dsv32_embedding(m->be, &xs, x2, &ids, err);
	if (rc == DSV32_OK)
		rc = hf_mlp(m, &w->e_gate[e], &w->e_up[e], &w->e_down[e], &xs, y, err);
	hf_free(m, &ids);
	hf_free(m, &xs);
	return rc;
}

/* eager: out += bf16(y · w) by bf16 index_add_ over the expert's rows (dsv32_moe_combine_hf_eager) */
static dsv32_status combine_eager(hf_model *m, dsv32_tensor *acc, const dsv32_tensor *y,
				  const int64_t *tok, const float *wt, int64_t n, dsv32_error *err)
{
	dsv32_tensor rows = {0}, w = {0};
	dsv32_status rc = hf_alloc(m, &rows, DSV32_I64, 1, HF_SHAPE(n), err);
	if (rc == DSV32_OK)
		rc = dsv32_backend_upload(m->be, rows.data, tok, sizeof(int64_t) * (size_t)n, err);
	if (rc == DSV32_OK)
		rc = hf_alloc(m, &w, DSV32_F32, 1, HF_SHAPE(n), err);
	if (rc == DSV32_OK)
		rc = dsv32_backend_upload(m->be, w.data, wt, sizeof(float) * (size_t)n, err);
	if (rc == DSV32_OK)
		rc = dsv32_moe_combine_hf_eager(m->be, acc, y, &rows, &w, err);
	hf_free(m, &rows);
	hf_free(m, &w);
	return rc;
}

dsv32_status hf_moe(hf_model *m, int li, const dsv32_tensor *x, dsv32_tensor *out,
		    dsv32_error *err)
{
	const dsv32_config *c = &m->base.cfg;
	hf_layer_w *w = &m->layers[li];
	int64_t D = c->dim, E = c->n_routed_experts, K = c->n_activated_experts;
	int64_t N = dsv32_tensor_numel(x) / D;
	bool eager = m->base.opts.experts == DSV32_EXPERTS_EAGER;
	dsv32_tensor x2 = hf_view(x, 0, 2, HF_SHAPE(N, D));
	dsv32_tensor lg = {0}, wts = {0}, idx = {0}, acc = {0}, slots = {0}, sh = {0}, src = {0};
	int64_t *hidx = malloc(sizeof(int64_t) * (size_t)(N * K));
	float *hw = malloc(sizeof(float) * (size_t)(N * K));
	int64_t *tok = malloc(sizeof(int64_t) * (size_t)(N * K));
	int64_t *dst = malloc(sizeof(int64_t) * (size_t)(N * K));
	float *wt = malloc(sizeof(float) * (size_t)(N * K));
	dsv32_status rc = DSV32_OK;
	if (!hidx || !hw || !tok || !dst || !wt) {
		rc = DSV32_FAIL(err, DSV32_E_NOMEM, "layer %d: moe routing tables", li);
		goto out;
	}
	rc = hf_alloc(m, &lg, DSV32_F32, 2, HF_SHAPE(N, E), err);
	if (rc == DSV32_OK) /* fp32 GEMM: the bf16 activations widened exactly */
		rc = hf_linear(m, &lg, &x2, &w->router_w, err);
	if (rc == DSV32_OK)
		rc = hf_alloc(m, &wts, DSV32_F32, 2, HF_SHAPE(N, K), err);
	if (rc == DSV32_OK)
		rc = hf_alloc(m, &idx, DSV32_I64, 2, HF_SHAPE(N, K), err);
	if (rc == DSV32_OK)
		rc = hf_route(m->be, &wts, &idx, &lg, &w->router_bias, (int)c->n_expert_groups,
			      (int)c->n_limited_groups, (int)K, (float)c->route_scale,
			      c->norm_topk_prob, err);
	if (rc == DSV32_OK && hf_taps_on(m)) {
		dsv32_tensor iv = hf_view(&idx, 0, 3, HF_SHAPE(x->shape[0], x->shape[1], K));
		dsv32_tensor wv = hf_view(&wts, 0, 3, HF_SHAPE(x->shape[0], x->shape[1], K));
		rc = hf_tapf(m, &iv, err, "layers.%d.moe.experts", li);
		if (rc == DSV32_OK)
			rc = hf_tapf(m, &wv, err, "layers.%d.moe.weights", li);
	}
	if (rc == DSV32_OK)
		rc = dsv32_backend_download(m->be, hidx, idx.data, sizeof(int64_t) * (size_t)(N * K), err);
	if (rc == DSV32_OK)
		rc = dsv32_backend_download(m->be, hw, wts.data, sizeof(float) * (size_t)(N * K), err);
	/* grouped_mm: every (token, slot) expert output in ys [N*K, D] (expert-sorted rows), then
	 * one fp32 slot sum in slot order (dsv32_moe_combine_hf_grouped, src = the un-sort);
	 * eager: a running bf16 index_add_ per expert in ascending expert order */
	if (rc == DSV32_OK) /* zero-filled: zeros_like(hidden_states) */
		rc = hf_alloc(m, &acc, m->act, 2, HF_SHAPE(N, D), err);
	if (rc == DSV32_OK && !eager)
		rc = hf_alloc(m, &slots, m->act, 2, HF_SHAPE(N * K, D), err);
	for (int64_t e = 0, off = 0; rc == DSV32_OK && e < E; e++) {
		int64_t n = 0;
		for (int64_t t = 0; t < N; t++)
			for (int64_t s = 0; s < K; s++)
				if (hidx[t * K + s] == e) {
					tok[n] = t;
					dst[t * K + s] = off + n;
					wt[n] = hw[t * K + s];
					n++;
				}
		if (n == 0)
			continue;
		if (eager) {
			dsv32_tensor y = {0};
			rc = hf_alloc(m, &y, m->act, 2, HF_SHAPE(n, D), err);
			if (rc == DSV32_OK)
				rc = run_expert(m, w, e, &x2, tok, n, &y, err);
			if (rc == DSV32_OK)
				rc = combine_eager(m, &acc, &y, tok, wt, n, err);
			hf_free(m, &y);
		} else {
			dsv32_tensor yv = hf_view(&slots, off * D, 2, HF_SHAPE(n, D));
			rc = run_expert(m, w, e, &x2, tok, n, &yv, err);
		}
		off += n;
	}
	if (rc == DSV32_OK && !eager) {
		for (int64_t i = 0; i < N * K; i++)
			if (hidx[i] < 0 || hidx[i] >= E)
				rc = DSV32_FAIL(err, DSV32_E_INTERNAL, "layer %d: router chose expert %lld "
						"outside [0, %lld)", li, (long long)hidx[i], (long long)E);
		if (rc == DSV32_OK)
			rc = hf_alloc(m, &src, DSV32_I64, 1, HF_SHAPE(N * K), err);
		if (rc == DSV32_OK)
			rc = dsv32_backend_upload(m->be, src.data, dst,
						  sizeof(int64_t) * (size_t)(N * K), err);
		if (rc == DSV32_OK)
			rc = dsv32_moe_combine_hf_grouped(m->be, &acc, &slots, &src, &wts, K, err);
	}
	if (rc == DSV32_OK)
		rc = hf_alloc(m, &sh, m->act, 2, HF_SHAPE(N, D), err);
	if (rc == DSV32_OK)
		rc = hf_mlp(m, &w->gate, &w->up, &w->down, &x2, &sh, err);
	if (rc == DSV32_OK) {
		dsv32_tensor o2 = hf_view(out, 0, 2, HF_SHAPE(N, D));
		rc = dsv32_add(m->be, &o2, &acc, &sh, err);
	}
out:
	hf_free(m, &lg);
	hf_free(m, &wts);
	hf_free(m, &idx);
	hf_free(m, &acc);
	hf_free(m, &slots);
	hf_free(m, &sh);
	hf_free(m, &src);
	free(hidx);
	free(hw);
	free(tok);
	free(dst);
	free(wt);
	return rc;
}
