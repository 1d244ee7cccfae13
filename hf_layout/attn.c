/* attn.c: DeepseekV32Attention.forward, eager (hf_layout.md §4.1-4.3; transformers 5.24):
 * q_a_proj -> q_a_layernorm -> q_b_proj; kv_a_proj_with_mqa -> kv_a_layernorm on the latent;
 * MLA RoPE by de-interleaving the rope channels (they stay permuted) then half-split rotation
 * with bf16 cos/sin; cache update of the latents; expand_kv (kv_b_proj on every cached latent);
 * indexer top-k folded into the mask as finfo.min; eager attention; o_proj. Always multi-head,
 * also in decode. */
#include <stdio.h>

#include "hf_layout/hf_internal.h"
#include "kernels/attention.h"
#include "kernels/elementwise.h"
#include "kernels/gemm.h"
#include "kernels/rmsnorm.h"
#include "kernels/rope.h"

#define HF_QA_EPS 1e-6 /* DeepseekV32RMSNorm(q_lora_rank) / (kv_lora_rank): default eps */

typedef struct {
	dsv32_tensor qa, q_lat, q, ckv, kv_pass, kv_lat, krot, kvb, k, v, topk, mask, o;
} attn_tmp;

static void tmp_free(hf_model *m, attn_tmp *t)
{
	dsv32_tensor *all[] = {&t->qa, &t->q_lat, &t->q, &t->ckv, &t->kv_pass, &t->kv_lat, &t->krot,
			       &t->kvb, &t->k, &t->v, &t->topk, &t->mask, &t->o};
	for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
		hf_free(m, all[i]);
}

/* expand_kv over the whole cached length: kvb [B,T,H,nope+v] = kv_b_proj(latent[b, :T]);
 * k [B,T,H,192] = [k_nope | shared rope key], v [B,T,H,v]. (HF builds [B,H,T,.]; the BSHD
 * attention layout holds the same values.) */
static dsv32_status expand_kv(hf_model *m, int li, const hf_fwd *f, attn_tmp *t, dsv32_error *err)
{
	const dsv32_config *c = &m->base.cfg;
	hf_layer_cache *kc = &m->cache[li];
	int64_t B = f->B, T = f->T, H = c->n_heads, N = c->qk_nope_head_dim, Vd = c->v_head_dim;
	int64_t R = c->qk_rope_head_dim, C = c->kv_lora_rank, Tc = m->cap_t, QK = N + R;
	DSV32_TRY(hf_alloc(m, &t->kvb, m->act, 4, HF_SHAPE(B, T, H, N + Vd), err));
	DSV32_TRY(hf_alloc(m, &t->k, m->act, 4, HF_SHAPE(B, T, H, QK), err));
	DSV32_TRY(hf_alloc(m, &t->v, m->act, 4, HF_SHAPE(B, T, H, Vd), err));
	dsv32_tensor kv_b; /* dequantized once (lazy fp8) for every row's GEMM */
	DSV32_TRY(hf_mat_get(m, &m->layers[li].kv_b, &kv_b, err));
	for (int64_t b = 0; b < B; b++) {
		dsv32_tensor lat = hf_view(&kc->kv, b * Tc * C, 2, HF_SHAPE(T, C));
		dsv32_tensor out = hf_view(&t->kvb, b * T * H * (N + Vd), 2, HF_SHAPE(T, H * (N + Vd)));
		DSV32_TRY(dsv32_gemm(m->be, &out, &lat, &kv_b, err));
		dsv32_tensor kr = hf_view(&kc->krot, b * Tc * R, 2, HF_SHAPE(T, R));
		dsv32_tensor kb = hf_view(&t->k, b * T * H * QK, 2, HF_SHAPE(T, H * QK));
		for (int64_t h = 0; h < H; h++)
			DSV32_TRY(dsv32_copy_cols(m->be, &kb, &kr, 0, h * QK + N, R, err));
	}
	dsv32_tensor kvb2 = hf_view(&t->kvb, 0, 2, HF_SHAPE(B * T * H, N + Vd));
	dsv32_tensor k2 = hf_view(&t->k, 0, 2, HF_SHAPE(B * T * H, QK));
	dsv32_tensor v2 = hf_view(&t->v, 0, 2, HF_SHAPE(B * T * H, Vd));
	DSV32_TRY(dsv32_copy_cols(m->be, &k2, &kvb2, 0, 0, N, err));
	return dsv32_copy_cols(m->be, &v2, &kvb2, N, 0, Vd, err);
}

static dsv32_status attention(hf_model *m, int li, const hf_fwd *f, const dsv32_tensor *x,
			      dsv32_tensor *out, attn_tmp *t, dsv32_error *err)
{
	const dsv32_config *c = &m->base.cfg;
	hf_layer_w *w = &m->layers[li];
	hf_layer_cache *kc = &m->cache[li];
	dsv32_backend *be = m->be;
	int64_t B = f->B, S = f->S, T = f->T, H = c->n_heads, N = c->qk_nope_head_dim;
	int64_t R = c->qk_rope_head_dim, C = c->kv_lora_rank, QK = N + R, Vd = c->v_head_dim;
	dsv32_dtype a = m->act;

	/* queries */
	DSV32_TRY(hf_alloc(m, &t->qa, a, 3, HF_SHAPE(B, S, c->q_lora_rank), err));
	DSV32_TRY(hf_alloc(m, &t->q_lat, a, 3, HF_SHAPE(B, S, c->q_lora_rank), err));
	DSV32_TRY(hf_linear(m, &t->qa, x, &w->q_a, err));
	DSV32_TRY(dsv32_rmsnorm_hf(be, &t->q_lat, &t->qa, &w->q_a_ln, HF_QA_EPS, err));
	DSV32_TRY(hf_tapf(m, &t->q_lat, err, "layers.%d.attn.q_latent", li));
	DSV32_TRY(hf_alloc(m, &t->q, a, 4, HF_SHAPE(B, S, H, QK), err));
	dsv32_tensor q3 = hf_view(&t->q, 0, 3, HF_SHAPE(B, S, H * QK));
	DSV32_TRY(hf_linear(m, &q3, &t->q_lat, &w->q_b, err));

	/* latent and shared rope key */
	DSV32_TRY(hf_alloc(m, &t->ckv, a, 3, HF_SHAPE(B, S, C + R), err));
	DSV32_TRY(hf_linear(m, &t->ckv, x, &w->kv_a, err));
	DSV32_TRY(hf_alloc(m, &t->kv_pass, a, 3, HF_SHAPE(B, S, C), err));
	DSV32_TRY(hf_alloc(m, &t->kv_lat, a, 3, HF_SHAPE(B, S, C), err));
	DSV32_TRY(hf_alloc(m, &t->krot, a, 3, HF_SHAPE(B, S, R), err));
	DSV32_TRY(dsv32_copy_cols(be, &t->kv_pass, &t->ckv, 0, 0, C, err));
	DSV32_TRY(dsv32_copy_cols(be, &t->krot, &t->ckv, C, 0, R, err));
	DSV32_TRY(dsv32_rmsnorm_hf(be, &t->kv_lat, &t->kv_pass, &w->kv_a_ln, HF_QA_EPS, err));
	DSV32_TRY(hf_tapf(m, &t->kv_lat, err, "layers.%d.attn.kv_latent", li));

	/* apply_rotary_pos_emb_interleave: de-interleave, half-split rotation; stays permuted */
	DSV32_TRY(dsv32_permute_deinterleave(be, &t->q, &t->q, N, R, false, err));
	DSV32_TRY(dsv32_rope_hf(be, &t->q, &t->q, &f->cos, &f->sin, N, err));
	DSV32_TRY(dsv32_permute_deinterleave(be, &t->krot, &t->krot, 0, R, false, err));
	DSV32_TRY(dsv32_rope_hf(be, &t->krot, &t->krot, &f->cos, &f->sin, 0, err));
	if (hf_taps_on(m)) {
		char name[96];
		snprintf(name, sizeof name, "layers.%d.attn.q_rope", li);
		DSV32_TRY(hf_tap_rope(m, name, &t->q, N, err));
		snprintf(name, sizeof name, "layers.%d.attn.k_rope", li);
		DSV32_TRY(hf_tap_rope(m, name, &t->krot, 0, err));
	}

	/* cache.update (latents), then expand_kv over all T cached positions */
	DSV32_TRY(hf_cache_write(m, &kc->kv, &t->kv_lat, f->past, err));
	DSV32_TRY(hf_cache_write(m, &kc->krot, &t->krot, f->past, err));
	DSV32_TRY(expand_kv(m, li, f, t, err));

	/* indexer top-k, folded into the mask: masked_fill(index_mask, finfo.min) */
	int64_t k = c->index_topk < T ? c->index_topk : T;
	DSV32_TRY(hf_alloc(m, &t->topk, DSV32_I64, 3, HF_SHAPE(B, S, k), err));
	DSV32_TRY(hf_indexer(m, li, f, x, &t->q_lat, &t->topk, err));
	DSV32_TRY(hf_alloc(m, &t->mask, a, 3, HF_SHAPE(B, S, T), err));
	DSV32_TRY(dsv32_attn_mask_hf(be, &t->mask, &t->topk, &f->pad_dev, f->past, err));

	/* eager attention: bf16 scores, · scaling, + mask, fp32 softmax -> bf16, P·V */
	DSV32_TRY(hf_alloc(m, &t->o, a, 4, HF_SHAPE(B, S, H, Vd), err));
	DSV32_TRY(dsv32_attn_prefill(be, &t->o, &t->q, &t->k, &t->v, &t->mask, m->scaling,
				     DSV32_ATTN_BSHD, err));
	dsv32_tensor o2 = hf_view(&t->o, 0, 3, HF_SHAPE(B, S, H * Vd));
	return hf_linear(m, out, &o2, &w->o_proj, err);
}

dsv32_status hf_attention(hf_model *m, int li, const hf_fwd *f, const dsv32_tensor *x,
			  dsv32_tensor *out, dsv32_error *err)
{
	attn_tmp t = {0};
	dsv32_status rc = attention(m, li, f, x, out, &t, err);
	tmp_free(m, &t);
	return rc;
}
