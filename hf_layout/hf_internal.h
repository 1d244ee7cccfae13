/* hf_internal.h: private structures of hf_layout/ (weights, cache, per-forward context) and the
 * helpers the model parts share. Not included outside hf_layout/. */
#ifndef DSV32_HF_INTERNAL_H
#define DSV32_HF_INTERNAL_H

#include "convert/convert.h"
#include "core/safetensors.h"
#include "hf_layout/hf_model.h"
#include "kernels/backend.h"
#include "kernels/yarn.h"
#include "layout_common/scratch.h"
#include "layout_common/tap_emit.h"

/* A matrix a GEMM multiplies by (y = x · Wᵀ), [N, K]. Either w is the parameter in its
 * in-memory dtype (scale empty), or, lazy fp8 (CPU, opts.eager_dequant false): w is the
 * F8_E4M3 codes and scale the F32 weight_scale_inv [ceil(N/128), ceil(K/128)], both borrowed
 * from the checkpoint mapping (from reference shards, a split matrix is an owned reassembly),
 * dequantized by hf_mat_get right before each GEMM. */
typedef struct {
	dsv32_tensor w;
	dsv32_tensor scale;
} hf_mat;

typedef struct {
	dsv32_tensor input_ln, post_ln;                  /* [dim] */
	hf_mat q_a, q_b;                                 /* [qr,dim], [H*192,qr] */
	dsv32_tensor q_a_ln;                             /* [qr] */
	hf_mat kv_a, kv_b;                               /* [kvr+64,dim], [H*(nope+v),kvr] */
	dsv32_tensor kv_a_ln;                            /* [kvr] */
	hf_mat o_proj;                                   /* [dim, H*v] */
	hf_mat ix_wq_b, ix_wk, ix_wproj;
	dsv32_tensor ix_kn_w, ix_kn_b;
	/* dense FFN, or the shared expert of a MoE layer */
	hf_mat gate, up, down;
	bool moe;
	hf_mat router_w;                                 /* F32 [E,dim] */
	dsv32_tensor router_bias;                        /* F32 [E] */
	hf_mat *e_gate, *e_up, *e_down;                  /* [E] each */
} hf_layer_w;

typedef struct {
	dsv32_tensor kv;      /* [Bc, Tc, kv_lora_rank] normed latent */
	dsv32_tensor krot;    /* [Bc, Tc, rope] rotated shared key, HF half-split order */
	dsv32_tensor ikey;    /* [Bc, Tc, index_head_dim] indexer keys (post-RoPE) */
	/* the indexer-fp8 knob toward ref (bf16 profile; indexer.c, empty otherwise): the
	 * reference's fp8 key cache F8_E4M3 [Bc, Tc, index_head_dim] and its scales F32 [Bc, Tc, 1] */
	dsv32_tensor ik8, iks;
	/* expand_kv's output kept across calls (attn.c, CPU fixed engine only): keys
	 * [Bc, kx_cap, H, nope+rope] and values [Bc, kx_cap, H, v] of positions [0, n_expanded),
	 * grown (doubling, at most Tc) as positions come, within dsv32_model_opts.hf_kx_budget;
	 * empty otherwise */
	dsv32_tensor kx, vx;
	int64_t kx_cap, n_expanded;
} hf_layer_cache;

typedef struct {
	dsv32_model base;
	dsv32_backend *be;
	dsv32_dtype act;               /* BF16 (bf16 profile) or F32 (fp32 profile) */
	dsv32_tensor embed, norm;
	hf_mat lm_head;
	hf_layer_w *layers;
	/* lazy fp8 (hf_mat): the one reusable dequantization buffer, act dtype, as many elements
	 * as the largest lazy matrix; n_lazy matrices are kept as fp8 codes */
	dsv32_tensor wscratch;
	int64_t n_lazy;
	/* The open weight source (weights.c): an HF checkpoint (ck) or reference shards read
	 * through the name map (shards, convert.h "shard source"); one of them while open. On
	 * CPU, parameters kept in their file dtype are borrowed (owned == false), read-only views
	 * of its mappings: never written, never freed; it is closed last in the model's close
	 * (hf_weights_close_src). */
	dsv32_ckpt *ck;
	dsv32_shard_source *shards;
	hf_layer_cache *cache;
	int64_t cap_b, cap_t;          /* cache capacity */
	int64_t cache_b, cache_len;    /* batch of the cached sequence, cached positions */
	size_t kx_bytes;               /* held by the expanded key/value caches (hf_layer_cache) */
	int64_t *pad;                  /* host [cap_b * cap_t] 2-D attention mask of the sequence */
	float inv_freq[128];            /* rope_dim/2 <= 128 */
	double attn_factor;
	float scaling;                 /* fp32(softmax scale of MLA) */
	/* the rope-freqs knob toward ref (opts.knobs_to_ref): the reference's fp32 freqs_cis
	 * [L, rope/2, 2] (kernels/yarn.h), built by hf_cache_init, freed by hf_cache_free */
	dsv32_tensor freqs;
	dsv32_yarn_params yref;        /* the reference's YaRN parameters for that table */
	/* layer-major (model.c): one slot per step, lm_n of them (NULL outside) */
	struct hf_lm_slot *lm;
	int lm_n;
	dsv32_tensor logits_keep; /* opts.logits_view: forward's F32 [B, V] output, kept */
} hf_model;

/* Per-forward state shared by the layers. */
typedef struct {
	int64_t B, S, past, T;
	dsv32_tensor cos, sin;         /* [B, S, rope] act dtype */
	dsv32_tensor causal;           /* [B, S, T] act dtype: 0 / finfo.min (causal + padding) */
	dsv32_tensor pad_dev;          /* I64 [B, T] on device */
} hf_fwd;

/* The tap emitter's view of m (layout_common/tap_emit.h). */
static inline lc_tapper hf_tapper(hf_model *m)
{
	return (lc_tapper){m->be, &m->base.taps};
}

/* ---- ops.c: below the layer parts, above kernels/ ---- */
/* The parameter of mat ready for a GEMM: &mat->w itself, or (lazy fp8) mat dequantized into
 * m->wscratch with dsv32_weight_dequant (the function the eager load uses: the same values) and
 * *out a view of it, valid until the next hf_mat_get. */
dsv32_status hf_mat_get(hf_model *m, const hf_mat *mat, dsv32_tensor *out, dsv32_error *err);
/* y = x · matᵀ (dsv32_gemm on hf_mat_get's tensor); with the act-quant knob toward ref and an
 * fp8 mat, the reference's dsv32_linear_fp8 instead. */
dsv32_status hf_linear(hf_model *m, dsv32_tensor *y, const dsv32_tensor *x, const hf_mat *mat,
		       dsv32_error *err);
/* DeepseekV32RMSNorm (dsv32_rmsnorm_hf), or with the norm-weight-dtype knob toward ref the
 * reference's weight multiply in fp32 (dsv32_rmsnorm; layout_common/norm.h). */
dsv32_status hf_rmsnorm(hf_model *m, dsv32_tensor *y, const dsv32_tensor *x,
		       const dsv32_tensor *w, double eps, dsv32_error *err);
/* The q_rope / k_rope tap of layer li: x [B,S,H,W] or [B,S,W] holds the rope channels at column
 * off in HF's half-split order; the tap puts them back in the reference's interleaved order. */
dsv32_status hf_tap_rope(hf_model *m, dsv32_layer_tap id, int li, const dsv32_tensor *x,
			 int64_t off, dsv32_error *err);

/* The rotary setup of open (docs/spec/hf_layout.md §3.1; the knobs toward ref of core/knobs.h):
 * inv_freq, attn_factor and scaling as HF computes them, or what yarn-always (YaRN only when
 * max_seq_len > original_seq_len, as the reference decides) and softmax-scale (the reference's
 * dsv32_softmax_scale_ref) take over; yref: the reference's parameters for rope-freqs. */
void hf_rope_init(hf_model *m);
/* The rotary embedding of x [B,S,H,W] or [B,S,W] at column off, positions past..past+S-1.
 * mla: the MLA rope channels, given in the checkpoint's interleaved order, left in HF's
 * half-split order (or, with the rope-pairing knob, interleaved as the reference keeps them);
 * else the indexer's half-split channels. HF: bf16 cos/sin of f (dsv32_rope_hf); the rope-freqs
 * knob: the reference's fp32 freqs_cis (dsv32_rope_ref, one rounding). */
dsv32_status hf_rope(hf_model *m, const hf_fwd *f, dsv32_tensor *x, int64_t off, bool mla,
		     dsv32_error *err);
/* With the rope-freqs knob the positions must be the reference's start_pos + s (its table is
 * indexed by them): pos [B*S] must be past + s, else DSV32_E_UNSUPPORTED. */
dsv32_status hf_rope_check_positions(const hf_model *m, const int64_t *pos, int64_t B, int64_t S,
				     int64_t past, dsv32_error *err);
/* f->causal [B,S,T] of the forward (the indexer's mask): HF's finfo.min causal + padding mask,
 * or with the mask knob the reference's -inf above the diagonal (a 2-D attention_mask with
 * padding is then refused: the reference has none). attn.c. */
dsv32_status hf_causal_mask(hf_model *m, hf_fwd *f, dsv32_error *err);

/* ---- parts ---- */
/* weights.c: from m->shards when the open set it, else from the HF checkpoint dir. */
dsv32_status hf_weights_load(hf_model *m, const char *dir, dsv32_error *err);
void hf_weights_free(hf_model *m);     /* owned parameters freed, borrowed ones reset */
/* Closes the checkpoint or shard source the parameters borrow from (no-op when closed): after
 * hf_weights_free. */
void hf_weights_close_src(hf_model *m);
dsv32_status hf_cache_init(hf_model *m, dsv32_error *err);                      /* cache.c */
void hf_cache_free(hf_model *m);
/* Layer-major: free layer li's cache buffers after its last step; hf_cache_restore allocates
 * every freed one again (empty, as at open). */
void hf_cache_release_layer(hf_model *m, int li);
/* Layer li's expanded key/value caches (hf_layer_cache kx, vx) with room for T positions,
 * allocated or grown (keeping the expanded rows) when they fit the budget
 * (dsv32_model_opts.hf_kx_budget); false when they do not or memory ran out (the caches are
 * then freed): the caller expands every position each call instead, with the same bits. */
bool hf_cache_expanded(hf_model *m, int li, int64_t T);
dsv32_status hf_cache_restore(hf_model *m, dsv32_error *err);
/* weights.c, layer-major: drop the resident pages of layer li's borrowed parameters (li = -1:
 * the embedding table's); they fault in again on their next use (the same bytes). */
void hf_weights_release_layer(hf_model *m, int li);
/* Write rows [past, past+S) of batch rows [0,B) of cache buffer c ([Bc,Tc,D]) from x [B,S,D]. */
dsv32_status hf_cache_write(hf_model *m, dsv32_tensor *c, const dsv32_tensor *x, int64_t past,
			    dsv32_error *err);
dsv32_status hf_attention(hf_model *m, int li, const hf_fwd *f, const dsv32_tensor *x,
			  dsv32_tensor *out, dsv32_error *err);                 /* attn.c */
dsv32_status hf_indexer(hf_model *m, int li, const hf_fwd *f, const dsv32_tensor *x,
			const dsv32_tensor *q_lat, dsv32_tensor *topk, dsv32_error *err); /* indexer.c */
/* The fp8 key caches of the indexer-fp8 knob (ik8, iks of every layer; nothing without the
 * knob or in the fp32 profile): after hf_cache_init; freed before hf_cache_free. */
dsv32_status hf_indexer_cache_init(hf_model *m, dsv32_error *err);
void hf_indexer_cache_free(hf_model *m);
dsv32_status hf_mlp(hf_model *m, const hf_mat *gate, const hf_mat *up, const hf_mat *down,
		    bool routed, const dsv32_tensor *x, dsv32_tensor *out,
		    dsv32_error *err);                                          /* mlp.c */
dsv32_status hf_moe(hf_model *m, int li, const dsv32_tensor *x, dsv32_tensor *out,
		    dsv32_error *err);                                          /* moe.c */

#endif
