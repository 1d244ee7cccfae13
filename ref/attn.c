/* attn.c: MLA with the DSA sparse mask (docs/spec/ref_layout.md §A.8, §B.5, §B.6, §C.4-C.5; Part E
 * items 4-6, 8, 10), the latent caches, prefill (explicit K/V over this call's keys) and
 * absorbed decode (over kv_cache + pe_cache).
 *
 * Replicated part (once): qr = q_norm(wq_a(x)); kv|k_pe = wkv_a(x); kv = kv_norm(kv) and its fp8
 * round trip; k_pe interleaved RoPE; caches at [:B, P:E); the indexer's top-k.
 * Per rank r (local heads Hl): q = wq_b_r(qr) with interleaved RoPE on the last dr dims of each
 * head; prefill: kvb = wkv_b_r(kv) -> k = [k_nope | k_pe], v; attention with mask =
 * index mask + causal; decode: absorbed attention with the (dequantized) wkv_b_r; then the
 * row-parallel wo_r partial. attn.out = all_reduce(partials).
 */
#include "core/knobs.h"
#include "kernels/attention.h"
#include "kernels/elementwise.h"
#include "kernels/fp8.h"
#include "kernels/rmsnorm.h"
#include "kernels/rope.h"
#include "ref/ref_internal.h"

/* The decode wkv_b in the activation dtype: the weight itself (bf16 config) or its dequantized
 * copy, made once and kept (MLA.dequant_wkv_b, §B.5). */
static dsv32_status decode_wkv_b(ref_model *m, ref_rank_w *k, const dsv32_tensor **out,
				 dsv32_error *err)
{
	if (k->wkv_b.w.dtype != DSV32_F8_E4M3) {
		*out = &k->wkv_b.w;
		return DSV32_OK;
	}
	if (!k->wkv_b_deq.data) {
		DSV32_TRY(lc_alloc(m->be, &k->wkv_b_deq, m->act, 2, k->wkv_b.w.shape, err));
		DSV32_TRY(dsv32_weight_dequant(m->be, &k->wkv_b_deq, &k->wkv_b.w, &k->wkv_b.s, err));
	}
	*out = &k->wkv_b_deq;
	return DSV32_OK;
}

/* Rows [:B, :Tk) of a cache [maxB, maxS, d] into y [B, Tk, d]. */
static dsv32_status cache_rows(ref_model *m, dsv32_tensor *y, const dsv32_tensor *cache,
			       int64_t B, int64_t Tk, dsv32_error *err)
{
	int64_t maxS = cache->shape[1], d = cache->shape[2];
	dsv32_tensor src = lc_view(cache, 0, 2, LC_SHAPE(B, maxS * d));
	dsv32_tensor dst = lc_view(y, 0, 2, LC_SHAPE(B, Tk * d));
	return dsv32_copy_cols(m->be, &dst, &src, 0, 0, Tk * d, err);
}

/* One rank's heads: o [B,S,Hl,dv] from q [B,S,Hl,dq] (RoPE applied). Prefill: explicit K/V of
 * this call's keys; decode: absorbed MQA over the latent caches, or with the decode-path knob
 * the prefill form over every cached key. */
static dsv32_status rank_attention(ref_model *m, ref_rank_w *k, const dsv32_tensor *q,
				   const dsv32_tensor *kv, const dsv32_tensor *kpe,
				   const dsv32_tensor *imask, ref_layer *ly, int64_t B, int64_t S,
				   int64_t P, dsv32_tensor *o, dsv32_error *err)
{
	const dsv32_config *c = &m->base.cfg;
	dsv32_backend *be = m->be;
	int64_t Hl = c->n_heads / m->W, dn = c->qk_nope_head_dim, dr = c->qk_rope_head_dim;
	int64_t dv = c->v_head_dim, dq = dn + dr, T = B * S;
	lc_pool p = {.be = m->be};
	dsv32_status rc = DSV32_OK;
	dsv32_tensor q2 = lc_view(q, 0, 2, (int64_t[]){T * Hl, dq});
	if (S > 1 || dsv32_knob_on(&m->base.opts, DSV32_KNOB_DECODE_PATH)) {
		/* keys: this call's (prefill), or with the decode-path knob every cached position
		 * (HF's MHA over the expanded cache: kv_b on each cached latent) */
		int64_t Tk = S > 1 ? S : P + S, Nk = B * Tk;
		dsv32_tensor *kvb, *kk, *v;
		if (S == 1) {
			dsv32_tensor *kvc, *kpc;
			LC_POOL(kvc, m->act, 3, B, Tk, c->kv_lora_rank);
			LC_POOL(kpc, m->act, 3, B, Tk, dr);
			LC_CK(cache_rows(m, kvc, &ly->kv_cache, B, Tk, err));
			LC_CK(cache_rows(m, kpc, &ly->pe_cache, B, Tk, err));
			kv = kvc;
			kpe = kpc;
		}
		LC_POOL(kvb, m->act, 2, Nk * Hl, dn + dv);
		dsv32_tensor kvb2 = lc_view(kvb, 0, 2, (int64_t[]){Nk, Hl * (dn + dv)});
		LC_CK(ref_linear(m, &kvb2, kv, &k->wkv_b, err));
		LC_POOL(kk, m->act, 4, B, Tk, Hl, dq);
		LC_POOL(v, m->act, 4, B, Tk, Hl, dv);
		dsv32_tensor k2 = lc_view(kk, 0, 2, (int64_t[]){Nk * Hl, dq});
		dsv32_tensor v2 = lc_view(v, 0, 2, (int64_t[]){Nk * Hl, dv});
		LC_CK(dsv32_copy_cols(be, &k2, kvb, 0, 0, dn, err));
		LC_CK(dsv32_copy_cols(be, &v2, kvb, dn, 0, dv, err));
		dsv32_tensor kh = lc_view(kk, 0, 2, (int64_t[]){Nk, Hl * dq});
		for (int64_t h = 0; h < Hl; h++) /* k_pe broadcast to every local head */
			LC_CK(dsv32_copy_cols(be, &kh, kpe, 0, h * dq + dn, dr, err));
		LC_CK(dsv32_attn_prefill(be, o, q, kk, v, imask, m->softmax_scale, DSV32_ATTN_BSHD, err));
	} else {
		const dsv32_tensor *wkvb;
		dsv32_tensor *qn, *qp;
		LC_CK(decode_wkv_b(m, k, &wkvb, err));
		LC_POOL(qn, m->act, 3, B, Hl, dn);
		LC_POOL(qp, m->act, 3, B, Hl, dr);
		dsv32_tensor qn2 = lc_view(qn, 0, 2, (int64_t[]){T * Hl, dn});
		dsv32_tensor qp2 = lc_view(qp, 0, 2, (int64_t[]){T * Hl, dr});
		LC_CK(dsv32_copy_cols(be, &qn2, &q2, 0, 0, dn, err));
		LC_CK(dsv32_copy_cols(be, &qp2, &q2, dn, 0, dr, err));
		dsv32_tensor o3 = lc_view(o, 0, 3, (int64_t[]){B, Hl, dv});
		LC_CK(dsv32_attn_decode_absorbed(be, &o3, qn, qp, wkvb, &ly->kv_cache, &ly->pe_cache, P + S,
					      imask, m->softmax_scale, err));
	}
out:
	lc_pool_free(&p);
	return rc;
}

/* A rotary tap [.., dr] in the reference's interleaved order (the rope-pairing knob keeps the
 * channels de-interleaved: a copy is put back). */
static dsv32_status tap_rope(ref_model *m, dsv32_layer_tap id, int layer, const dsv32_tensor *t,
			     dsv32_error *err)
{
	if (!dsv32_knob_on(&m->base.opts, DSV32_KNOB_ROPE_PAIRING) || !lc_taps_on(ref_tapper(m)))
		return lc_tap_layer(ref_tapper(m), id, layer, t, err);
	lc_pool p = {.be = m->be};
	dsv32_status rc = DSV32_OK;
	dsv32_tensor *u;
	LC_POOL_AS(u, t->dtype, t->ndim, t->shape);
	LC_CK(dsv32_permute_deinterleave(m->be, u, t, 0, t->shape[t->ndim - 1], true, err));
	LC_CK(lc_tap_layer(ref_tapper(m), id, layer, u, err));
out:
	lc_pool_free(&p);
	return rc;
}

dsv32_status ref_attn_forward(ref_model *m, int layer, const dsv32_tensor *x, int64_t B,
			      int64_t S, int64_t P, dsv32_tensor *out, dsv32_error *err)
{
	const dsv32_config *c = &m->base.cfg;
	ref_layer *ly = &m->layers[layer];
	dsv32_backend *be = m->be;
	int W = m->W;
	int64_t H = c->n_heads, Hl = H / W, dn = c->qk_nope_head_dim, dr = c->qk_rope_head_dim;
	int64_t dv = c->v_head_dim, dq = dn + dr, kvl = c->kv_lora_rank, T = B * S, E = P + S;
	int64_t k = c->index_topk < E ? c->index_topk : E;
	dsv32_dtype act = m->act;
	lc_tapper tp = ref_tapper(m);
	lc_pool p = {.be = m->be};
	dsv32_status rc = DSV32_OK;
	dsv32_tensor *qa, *qr, *kva, *kv, *kpe, *topk, *imask, *q, *o, *qrope = NULL;
	dsv32_tensor parts[DSV32_MAX_WORLD_SIZE];

	/* q latent */
	LC_POOL(qa, act, 3, B, S, c->q_lora_rank);
	LC_POOL(qr, act, 3, B, S, c->q_lora_rank);
	LC_CK(ref_linear(m, qa, x, &ly->wq_a, err));
	LC_CK(ref_rmsnorm(m, qr, qa, &ly->q_norm, err));
	LC_CK(lc_tap_layer(tp, DSV32_LTAP_Q_LATENT, layer, qr, err));

	/* kv latent and the shared rope key */
	LC_POOL(kva, act, 3, B, S, kvl + dr);
	LC_POOL(kv, act, 3, B, S, kvl);
	LC_POOL(kpe, act, 3, B, S, dr);
	LC_CK(ref_linear(m, kva, x, &ly->wkv_a, err));
	LC_CK(dsv32_copy_cols(be, kv, kva, 0, 0, kvl, err));
	LC_CK(ref_rmsnorm(m, kv, kv, &ly->kv_norm, err));
	if (m->fp8_kv)
		LC_CK(dsv32_fp8_roundtrip(be, kv, kv, m->ue8m0, err));
	LC_CK(ref_rope(m, kva, kva, P, kvl, true, err));
	LC_CK(dsv32_copy_cols(be, kpe, kva, kvl, 0, dr, err));
	LC_CK(lc_tap_layer(tp, DSV32_LTAP_KV_LATENT, layer, kv, err));
	LC_CK(tap_rope(m, DSV32_LTAP_K_ROPE, layer, kpe, err));
	LC_CK(ref_cache_write(m, &ly->kv_cache, kv, B, S, P, err));
	LC_CK(ref_cache_write(m, &ly->pe_cache, kpe, B, S, P, err));

	/* sparse selection and its mask: 0 at the top-k, -inf elsewhere (+ causal in prefill); the
	 * mask knob: HF's finfo.min set outside the top-k and the causal part (prefill is at P = 0,
	 * so E is S there) */
	LC_POOL(topk, DSV32_I64, 3, B, S, k);
	LC_CK(ref_indexer_forward(m, layer, x, qr, B, S, P, topk, err));
	LC_CK(ref_check_topk(m, layer, topk, err)); /* real ranks: the reference's cross-rank check */
	LC_POOL(imask, act, 3, B, S, S > 1 ? S : E);
	if (dsv32_knob_on(&m->base.opts, DSV32_KNOB_MASK))
		LC_CK(dsv32_attn_mask_hf(be, imask, topk, NULL, P, err));
	else
		LC_CK(dsv32_attn_mask_ref(be, imask, topk, S > 1 ? 0 : -1, err));

	if (lc_taps_on(tp)) /* q_rope gathers every rank's heads */
		LC_POOL(qrope, act, 2, T, H * dr);
	LC_POOL(q, act, 4, B, S, Hl, dq);
	LC_POOL(o, act, 4, B, S, Hl, dv);
	for (int r = 0; r < W; r++) {
		if (!ref_rank_is_local(m, r)) /* real ranks: that rank's partial arrives in the reduce */
			continue;
		ref_rank_w *kr = &ly->rk[r];
		LC_CK(ref_linear(m, q, qr, &kr->wq_b, err));
		LC_CK(ref_rope(m, q, q, P, dn, true, err));
		if (qrope) {
			dsv32_tensor q2 = lc_view(q, 0, 2, (int64_t[]){T * Hl, dq});
			dsv32_tensor *qp;
			LC_POOL(qp, act, 2, T * Hl, dr);
			LC_CK(dsv32_copy_cols(be, qp, &q2, dn, 0, dr, err));
			dsv32_tensor qp2 = lc_view(qp, 0, 2, (int64_t[]){T, Hl * dr});
			LC_CK(dsv32_copy_cols(be, qrope, &qp2, 0, r * Hl * dr, Hl * dr, err));
		}
		LC_CK(rank_attention(m, kr, q, kv, kpe, imask, ly, B, S, P, o, err));
		dsv32_tensor *part;
		LC_POOL(part, act, 3, B, S, c->dim);
		dsv32_tensor o2 = lc_view(o, 0, 2, (int64_t[]){T, Hl * dv});
		LC_CK(ref_linear(m, part, &o2, &kr->wo, err));
		parts[r] = *part;
	}
	if (qrope) {
		LC_CK(ref_gather_cols(m, qrope, qrope, err)); /* real ranks: the others' heads */
		dsv32_tensor qr4 = lc_view(qrope, 0, 4, LC_SHAPE(B, S, H, dr));
		LC_CK(tap_rope(m, DSV32_LTAP_Q_ROPE, layer, &qr4, err));
	}
	LC_CK(ref_all_reduce(m, out, parts, err));
out:
	lc_pool_free(&p);
	return rc;
}
