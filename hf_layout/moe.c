/* moe.c: DeepseekV32MoE (docs/spec/hf_layout.md §6; transformers 5.24): fp32 router logits
 * (F.linear(x.float(), W.float())), the HF router (its selection offered to the caller's
 * decision sink, core/model.h "Decisions"; forced experts get the router's weights at them),
 * routed experts and the shared expert.
 * grouped_mm (default): per (token, slot) the bf16 expert output times its fp32 weight (fp32),
 *   summed over the k slots in slot order in fp32, one cast; eager: bf16 index_add_ of
 *   bf16(y·w) in ascending expert order. Then + shared_experts(x) (one add, act dtype).
 * The moe-accum knob toward ref (core/knobs.h): the reference's Gate (DSV32_ROUTER_REF) and its
 *   sum (ref/moe.c at W = 1): fp32 acc += f32(y)·w per expert in ascending expert order, + the
 *   shared expert in fp32, one cast (the zeros_like acc of eager becomes fp32). */
#include <stdlib.h>
#include <string.h>

#include "core/knobs.h"
#include "hf_layout/hf_internal.h"
#include "kernels/combine.h"
#include "kernels/elementwise.h"
#include "kernels/router.h"
#include "layout_common/route.h"

/* The router's mode: HF's, or with the moe-accum knob toward ref the reference's Gate (its
 * normalisation without +1e-20 and its group scores; kernels/router.h). */
static dsv32_router_mode router_mode(const hf_model *m)
{
	return dsv32_hfknob_on(&m->base.opts, DSV32_HFKNOB_MOE_ACCUM) ? DSV32_ROUTER_REF
								      : DSV32_ROUTER_HF;
}

/* DeepseekV32TopkRouter on the fp32 router logits [N, E]: weights F32 [N, K], idx I64 [N, K]. */
static dsv32_status route(hf_model *m, const hf_layer_w *w, dsv32_tensor *weights,
			  dsv32_tensor *idx, const dsv32_tensor *logits, dsv32_error *err)
{
	dsv32_router_params rp = lc_router_params(&m->base, router_mode(m));
	return dsv32_router(m->be, weights, idx, logits, &w->router_bias, &rp, err);
}

/* Run expert e on its n rows (tokens tok[0..n)): y [n, D] = expert(x2[tok]). */
static dsv32_status run_expert(hf_model *m, hf_layer_w *w, int64_t e, const dsv32_tensor *x2,
			       const int64_t *tok, int64_t n, dsv32_tensor *y, dsv32_error *err)
{
	int64_t D = x2->shape[1];
	lc_pool p = {.be = m->be};
	dsv32_status rc = DSV32_OK;
	dsv32_tensor *ids, *xs;
	LC_POOL(ids, DSV32_I64, 1, n);
	LC_CK(dsv32_backend_upload(m->be, ids->data, tok, sizeof(int64_t) * (size_t)n, err));
	LC_POOL(xs, m->act, 2, n, D);
	LC_CK(dsv32_embedding(m->be, xs, x2, ids, err)); /* hidden_states[token_idx]: a row gather */
	LC_CK(hf_mlp(m, &w->e_gate[e], &w->e_up[e], &w->e_down[e], true, xs, y, err));
out:
	lc_pool_free(&p);
	return rc;
}

/* eager: expert e on its n rows, then acc += bf16(y · w) by bf16 index_add_ over those rows
 * (dsv32_moe_combine_hf_eager); ref_sum (the moe-accum knob): acc is fp32 and acc += y · w in
 * fp32 (dsv32_moe_combine_ref, the reference's per-expert index add). */
static dsv32_status expert_indexed(hf_model *m, hf_layer_w *w, int64_t e, const dsv32_tensor *x2,
				   const int64_t *tok, const float *wt, int64_t n, bool ref_sum,
				   dsv32_tensor *acc, dsv32_error *err)
{
	lc_pool p = {.be = m->be};
	dsv32_status rc = DSV32_OK;
	dsv32_tensor *y, *rows, *wd;
	LC_POOL(y, m->act, 2, n, x2->shape[1]);
	LC_CK(run_expert(m, w, e, x2, tok, n, y, err));
	LC_POOL(rows, DSV32_I64, 1, n);
	LC_CK(dsv32_backend_upload(m->be, rows->data, tok, sizeof(int64_t) * (size_t)n, err));
	LC_POOL(wd, DSV32_F32, 1, n);
	LC_CK(dsv32_backend_upload(m->be, wd->data, wt, sizeof(float) * (size_t)n, err));
	LC_CK(ref_sum ? dsv32_moe_combine_ref(m->be, acc, y, rows, wd, err)
		      : dsv32_moe_combine_hf_eager(m->be, acc, y, rows, wd, err));
out:
	lc_pool_free(&p);
	return rc;
}

/* The host routing tables of one call: per (token, slot) the expert and weight; per expert the
 * rows it serves (tok, wt) and where each (token, slot) output lands in expert order (dst). */
typedef struct {
	int64_t *hidx, *tok, *dst;
	float *hw, *wt;
} route_tables;

/* The tables of nk = N·K entries, host scratch of the model's backend (no allocation once a
 * step of this size has run). */
static route_tables tables_get(dsv32_backend *be, size_t nk)
{
	return (route_tables){dsv32_backend_host_get(be, sizeof(int64_t) * nk),
			      dsv32_backend_host_get(be, sizeof(int64_t) * nk),
			      dsv32_backend_host_get(be, sizeof(int64_t) * nk),
			      dsv32_backend_host_get(be, sizeof(float) * nk),
			      dsv32_backend_host_get(be, sizeof(float) * nk)};
}

static void tables_free(dsv32_backend *be, route_tables *t, size_t nk)
{
	dsv32_backend_host_put(be, t->hidx, sizeof(int64_t) * nk);
	dsv32_backend_host_put(be, t->tok, sizeof(int64_t) * nk);
	dsv32_backend_host_put(be, t->dst, sizeof(int64_t) * nk);
	dsv32_backend_host_put(be, t->hw, sizeof(float) * nk);
	dsv32_backend_host_put(be, t->wt, sizeof(float) * nk);
}

/* The rows of expert e, appended at slot offset off: returns their count. */
static int64_t expert_rows(route_tables *t, int64_t e, int64_t N, int64_t K, int64_t off)
{
	int64_t n = 0;
	for (int64_t i = 0; i < N; i++)
		for (int64_t s = 0; s < K; s++)
			if (t->hidx[i * K + s] == e) {
				t->tok[n] = i;
				t->dst[i * K + s] = off + n;
				t->wt[n] = t->hw[i * K + s];
				n++;
			}
	return n;
}

dsv32_status hf_moe(hf_model *m, int li, const dsv32_tensor *x, dsv32_tensor *out,
		    dsv32_error *err)
{
	const dsv32_config *c = &m->base.cfg;
	hf_layer_w *w = &m->layers[li];
	int64_t D = c->dim, E = c->n_routed_experts, K = c->n_activated_experts;
	int64_t N = dsv32_tensor_numel(x) / D;
	bool ref_sum = dsv32_hfknob_on(&m->base.opts, DSV32_HFKNOB_MOE_ACCUM);
	bool eager = m->base.opts.experts == DSV32_EXPERTS_EAGER || ref_sum;
	dsv32_tensor x2 = lc_view(x, 0, 2, LC_SHAPE(N, D));
	size_t nk = (size_t)(N * K);
	route_tables t = tables_get(m->be, nk);
	lc_tapper tp = hf_tapper(m);
	lc_pool p = {.be = m->be};
	dsv32_status rc = DSV32_OK;
	dsv32_tensor *lg, *wts, *idx, *acc, *slots = NULL, *src, *sh;
	if (!t.hidx || !t.tok || !t.dst || !t.hw || !t.wt) {
		rc = DSV32_FAIL(err, DSV32_E_NOMEM, "layer %d: moe routing tables", li);
		goto out;
	}
	LC_POOL(lg, DSV32_F32, 2, N, E);
	LC_CK(hf_linear(m, lg, &x2, &w->router_w, err)); /* fp32 GEMM: bf16 x widened exactly */
	LC_POOL(wts, DSV32_F32, 2, N, K);
	LC_POOL(idx, DSV32_I64, 2, N, K);
	LC_CK(route(m, w, wts, idx, lg, err));
	dsv32_tensor iv = lc_view(idx, 0, 3, LC_SHAPE(x->shape[0], x->shape[1], K));
	dsv32_tensor wv = lc_view(wts, 0, 3, LC_SHAPE(x->shape[0], x->shape[1], K));
	LC_CK(lc_tap_router_scores(&m->base, tp, router_mode(m), li, lg,
				   &w->router_bias, x->shape[0], x->shape[1], err));
	LC_CK(lc_tap_layer(tp, DSV32_LTAP_MOE_EXPERTS, li, &iv, err));
	bool forced;
	LC_CK(lc_tap_decide(tp, &m->base.decide, DSV32_LTAP_MOE_EXPERTS, li, &iv, E, &forced, err));
	if (forced) { /* the router's weights at the forced experts, from this layer's own scores */
		dsv32_router_params rp = lc_router_params(&m->base, router_mode(m));
		LC_CK(dsv32_router_weights_at(m->be, wts, idx, lg, &w->router_bias, &rp, err));
	}
	LC_CK(lc_tap_layer(tp, DSV32_LTAP_MOE_WEIGHTS, li, &wv, err));
	LC_CK(dsv32_backend_download(m->be, t.hidx, idx->data, sizeof(int64_t) * nk, err));
	LC_CK(dsv32_backend_download(m->be, t.hw, wts->data, sizeof(float) * nk, err));
	/* grouped_mm: every (token, slot) expert output in slots [N*K, D] (expert-sorted rows), then
	 * one fp32 slot sum in slot order (dsv32_moe_combine_hf_grouped, src = the un-sort);
	 * eager: a running bf16 index_add_ per expert in ascending expert order (moe-accum: fp32) */
	LC_POOL(acc, ref_sum ? DSV32_F32 : m->act, 2, N, D); /* zero-filled */
	if (!eager)
		LC_POOL(slots, m->act, 2, N * K, D);
	for (int64_t e = 0, off = 0; e < E; e++) {
		int64_t n = expert_rows(&t, e, N, K, off);
		if (n == 0)
			continue;
		if (eager) {
			LC_CK(expert_indexed(m, w, e, &x2, t.tok, t.wt, n, ref_sum, acc, err));
		} else {
			dsv32_tensor yv = lc_view(slots, off * D, 2, LC_SHAPE(n, D));
			LC_CK(run_expert(m, w, e, &x2, t.tok, n, &yv, err));
		}
		off += n;
	}
	if (!eager) {
		for (int64_t i = 0; i < N * K; i++)
			if (t.hidx[i] < 0 || t.hidx[i] >= E) {
				rc = DSV32_FAIL(err, DSV32_E_INTERNAL, "layer %d: router chose expert "
						"%lld outside [0, %lld)", li, (long long)t.hidx[i],
						(long long)E);
				goto out;
			}
		LC_POOL(src, DSV32_I64, 1, N * K);
		LC_CK(dsv32_backend_upload(m->be, src->data, t.dst, sizeof(int64_t) * nk, err));
		LC_CK(dsv32_moe_combine_hf_grouped(m->be, acc, slots, src, wts, K, err));
	}
	LC_POOL(sh, m->act, 2, N, D);
	LC_CK(hf_mlp(m, &w->gate, &w->up, &w->down, false, &x2, sh, err));
	dsv32_tensor o2 = lc_view(out, 0, 2, LC_SHAPE(N, D));
	if (ref_sum) { /* the reference: + the shared expert in fp32, then the one cast */
		LC_CK(dsv32_add(m->be, acc, acc, sh, err));
		LC_CK(dsv32_cast(m->be, &o2, acc, err));
	} else {
		LC_CK(dsv32_add(m->be, &o2, acc, sh, err)); /* + shared_experts(x), one add */
	}
out:
	lc_pool_free(&p);
	tables_free(m->be, &t, nk);
	return rc;
}
