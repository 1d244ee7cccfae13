/* ref_internal.h: the reference-layout model's private structures, shared by the ref/ sources only.
 *
 * Shapes legend: T = B·S tokens of this call, P = start_pos, E = P + S, Hl = n_heads / W local
 * heads, dim, ql = q_lora_rank, kvl = kv_lora_rank, dn = qk_nope_head_dim, dr = qk_rope_head_dim,
 * dq = dn + dr, dv = v_head_dim, Hi = index_n_heads, di = index_head_dim.
 * Every tensor below lives on m->be's device unless marked "host".
 */
#ifndef DSV32_REF_INTERNAL_H
#define DSV32_REF_INTERNAL_H

#include "kernels/backend.h"
#include "layout_common/scratch.h"
#include "layout_common/tap_emit.h"
#include "ref/comm.h"
#include "ref/ref_model.h"

/* A Linear's parameters: w BF16 / F32 (plain F.linear) or F8_E4M3 with its F32 block scale s
 * (act_quant + fp8_gemm, §B.3). s.data == NULL when the weight is not fp8. */
typedef struct {
	dsv32_tensor w;
	dsv32_tensor s;
} ref_lin;

/* The tensor-parallel parts of one layer held by one rank (§C.5). */
typedef struct {
	ref_lin wq_b;           /* [Hl·dq, ql]              column-parallel */
	ref_lin wkv_b;          /* [Hl·(dn+dv), kvl]        column-parallel */
	dsv32_tensor wkv_b_deq; /* bf16 (or f32) dequantized wkv_b for decode (§B.5), lazily */
	ref_lin wo;             /* [dim, Hl·dv]             row-parallel */
	ref_lin w1, w3, w2;     /* dense MLP slice [inter/W, dim], [dim, inter/W] */
	ref_lin sw1, sw3, sw2;  /* shared-expert slice (MoE layers) */
} ref_rank_w;

typedef struct {
	dsv32_tensor attn_norm, ffn_norm, q_norm, kv_norm; /* F32 */
	ref_lin wq_a, wkv_a;                               /* replicated */
	ref_lin iwq_b, iwk;                                /* indexer, replicated */
	dsv32_tensor ik_norm_w, ik_norm_b;                 /* F32 [di] */
	dsv32_tensor iw_proj;                              /* F32 [Hi, dim] */
	dsv32_tensor gate_w;                               /* F32 [n_routed, dim] (bf16 values) */
	dsv32_tensor gate_b;                               /* F32 [n_routed] or data NULL */
	ref_lin *ew1, *ew3, *ew2;                          /* [n_routed]; owner rank e / (E/W) */
	ref_rank_w *rk;                                    /* [W] */
	/* caches (§A.17), [maxB, maxS, ·], not split across ranks: one copy serves every rank */
	dsv32_tensor kv_cache; /* act dtype [maxB, maxS, kvl] */
	dsv32_tensor pe_cache; /* act dtype [maxB, maxS, dr] */
	dsv32_tensor k_cache;  /* F8_E4M3 [maxB, maxS, di] (act dtype without the fp8 indexer) */
	dsv32_tensor k_scale;  /* F32 [maxB, maxS, 1] */
} ref_layer;

typedef struct {
	dsv32_model base; /* first member: a ref_model * is a dsv32_model * */
	dsv32_backend *be;
	dsv32_plant plant; /* opts.plant copied at open (zero: none) */
	int W;
	/* Real ranks (docs/distributed.md): comm is the caller's communicator (borrowed; NULL =
	 * in-process). dist: this process is rank `rank` of W and holds only that rank's split
	 * parameters (its own shard); replicated parts run on every rank (same bits). In-process
	 * (dist false) rank is 0 and every rank's parameters are here. */
	dsv32_comm *comm;
	bool dist;
	int rank;
	dsv32_dtype act;  /* BF16 (bf16 profile) or F32 (fp32 profile) */
	bool fp8_kv;      /* MLA latent fp8 round trip on */
	bool fp8_idx;     /* indexer q/k act_quant + fp8 key cache on */
	bool ue8m0;       /* power-of-two activation scales */
	bool yarn_on;     /* YaRN interpolation + mscale^2 */
	float softmax_scale;
	int64_t maxB, maxS;
	dsv32_tensor freqs; /* F32 rope table [maxS', dr/2, 2] (kernels/yarn.h layout) */
	float hf_inv_freq[128]; /* the rope-freqs knob: HF's inv_freq (dr/2 <= 128) and */
	double hf_attn_factor;  /* attention_factor (kernels/yarn.h), from the config */
	dsv32_tensor embed; /* BF16 [V, dim]: the rank slices in rank order (the ParallelEmbedding
			       all_reduce is exact: one rank contributes each row, §C.2) */
	dsv32_tensor *head;   /* [W] local rows [V/W, dim] F32 (dist: only head[rank]) */
	dsv32_tensor norm;    /* F32 [dim] */
	ref_layer *layers;
	/* The open checkpoint files (weights.c). On CPU, parameters kept in their file dtype are
	 * borrowed (owned == false), read-only views of these mappings: never written, never
	 * freed; the files are closed last in the model's close (ref_weights_close_src). */
	struct ref_wsrc *src;
	/* layer-major (model.c): one activation slot per step, lm_n of them (NULL outside) */
	struct ref_lm_slot *lm;
	int lm_n;
	dsv32_tensor logits_keep; /* opts.logits_view: forward's F32 [B, V] output, kept */
} ref_model;

static inline ref_model *ref_of(dsv32_model *m)
{
	return (ref_model *)m;
}

/* The tap emitter's view of m (layout_common/tap_emit.h). */
static inline lc_tapper ref_tapper(ref_model *m)
{
	return (lc_tapper){m->be, &m->base.taps};
}

/* Whether rank r's split parameters live in this process (always in-process). Loops over the
 * ranks skip the others: their partials arrive through the collectives of tp.c. */
static inline bool ref_rank_is_local(const ref_model *m, int r)
{
	return !m->dist || r == m->rank;
}

/* The checkpoint rank whose file the replicated parameters are read from: 0 in-process (every
 * shard holds the same copy), this process's own rank with real ranks (it opens no other). */
static inline int ref_home_rank(const ref_model *m)
{
	return m->dist ? m->rank : 0;
}

/* weights.c */
dsv32_status ref_weights_load(ref_model *m, const char *ckpt, bool is_hf, dsv32_error *err);
/* Frees every owned parameter and resets every borrowed one; the files stay open. */
void ref_weights_free(ref_model *m);
/* Closes the checkpoint files the parameters borrow from (no-op when closed): call after
 * ref_weights_free, when nothing can read a borrowed view any more. */
void ref_weights_close_src(ref_model *m);
dsv32_status ref_caches_alloc(ref_model *m, dsv32_error *err);
/* Layer-major: drop layer L's borrowed pages, its dequantized wkv_b copies and its caches
 * (L = -1: the embedding table's pages). The parameters stay valid: pages fault in again and
 * the copies are rebuilt on use; ref_caches_alloc restores the caches. */
void ref_weights_release_layer(ref_model *m, int L);

/* tp.c: collectives over the in-process ranks (§C.4, §C.6, §C.8).
 * all_reduce: parts[0..W) (BF16 row-parallel partials, or the MoE's F32 buffers) ->
 *   out = round_out( ((f32(p0) + f32(p1)) + f32(p2)) + ... ) (rank order); W == 1: out =
 *   round_out(p0) (the bf16 GEMM output itself, no fp32 detour, §C.4).
 * all_gather: parts[r] [rows, n] -> out [rows, W·n] in rank order (exact). */
dsv32_status ref_all_reduce(ref_model *m, dsv32_tensor *out, const dsv32_tensor *parts,
			    dsv32_error *err);
dsv32_status ref_all_gather(ref_model *m, dsv32_tensor *out, const dsv32_tensor *parts,
			    dsv32_error *err);
/* With real ranks (m->dist) the two calls above read parts[m->rank] only and gather the others'
 * bytes (ref/comm.h), then reduce / concatenate exactly as in-process: the same bits.
 * ref_embed: x [.., dim] = embedding rows of ids (tokens: the same ids on the host); with real
 *   ranks each rank looks up the rows it owns and the owner's row is taken (§C.2, exact).
 * ref_gather_cols: out [rows, W·n] holds this rank's columns [rank·n, (rank+1)·n) (local is
 *   out itself or any [rows, W·n] tensor holding them); fills every rank's block. No-op
 *   in-process. Used for taps of split tensors, so a recording equals the emulation's.
 * ref_check_topk: the reference indexer's cross-rank check (rank 0 broadcasts its top-k, every
 *   rank compares, then all agree): DSV32_E_MISMATCH naming the rank and the first difference.
 *   No-op in-process (replicated parts run once there). */
dsv32_status ref_embed(ref_model *m, dsv32_tensor *x, const dsv32_tensor *ids,
		       const int64_t *tokens, dsv32_error *err);
dsv32_status ref_gather_cols(ref_model *m, dsv32_tensor *out, const dsv32_tensor *local,
			     dsv32_error *err);
dsv32_status ref_check_topk(ref_model *m, int layer, dsv32_tensor *topk, dsv32_error *err);

/* ops.c: one Linear (§A.1 / §B.3) */
dsv32_status ref_linear(ref_model *m, dsv32_tensor *y, const dsv32_tensor *x, const ref_lin *l,
			dsv32_error *err);
/* ops.c: the rotary embedding of rows x [B,S,H,D] or [B,S,D] at positions P.. on the columns
 * [off, off + dr) (kernels/rope.h): dsv32_rope_ref with the freqs table, interleaved or
 * half-split pairs; with the rope-freqs knob HF's bf16 cos/sin from the positions
 * (dsv32_yarn_hf_cos_sin) and dsv32_rope_hf (interleaved pairs: de-interleaved first and put
 * back after, both exact). With the rope-pairing knob interleaved channels stay de-interleaved
 * (HF's order: the q_pe/k_pe columns, pe_cache and the attention dot products see them so;
 * the taps put them back). y may be x. */
dsv32_status ref_rope(ref_model *m, dsv32_tensor *y, const dsv32_tensor *x, int64_t P,
		      int64_t off, bool interleaved, dsv32_error *err);
/* ops.c: an RMSNorm with no residual (q_norm, kv_norm, layer 0's attn_norm): dsv32_rmsnorm, or
 * with the norm-weight-dtype knob dsv32_rmsnorm_hf (bf16 before the weight multiply). */
dsv32_status ref_rmsnorm(ref_model *m, dsv32_tensor *y, const dsv32_tensor *x,
			 const dsv32_tensor *w, dsv32_error *err);
/* ops.c: write rows [0,B) x [P, P+S) of a BF16/F32 cache [maxB, maxS, d] from x [B, S, d]. */
dsv32_status ref_cache_write(ref_model *m, dsv32_tensor *cache, const dsv32_tensor *x, int64_t B,
			     int64_t S, int64_t P, dsv32_error *err);

/* attn.c: MLA of one layer. x: attn_norm output [B,S,dim]; out: [B,S,dim] (after wo and the
 * all-reduce). Writes the caches at [P, E). */
dsv32_status ref_attn_forward(ref_model *m, int layer, const dsv32_tensor *x, int64_t B,
			      int64_t S, int64_t P, dsv32_tensor *out, dsv32_error *err);
/* indexer.c: top-k indices I64 [B,S,k], k = min(index_topk, E). qr: q_norm output [B,S,ql]. */
dsv32_status ref_indexer_forward(ref_model *m, int layer, const dsv32_tensor *x,
				 const dsv32_tensor *qr, int64_t B, int64_t S, int64_t P,
				 dsv32_tensor *topk, dsv32_error *err);
/* moe.c / mlp.c: FFN of one layer. x: ffn_norm output [B,S,dim]; out [B,S,dim]. */
dsv32_status ref_moe_forward(ref_model *m, int layer, const dsv32_tensor *x, int64_t B, int64_t S,
			     dsv32_tensor *out, dsv32_error *err);
/* moe_hf.c: the moe-accum knob's MoE (HF router normalisation, grouped slot sum, bf16 adds). */
dsv32_status ref_moe_forward_hf(ref_model *m, int layer, const dsv32_tensor *x, int64_t B,
				int64_t S, dsv32_tensor *out, dsv32_error *err);
dsv32_status ref_mlp_forward(ref_model *m, int layer, const dsv32_tensor *x, int64_t B, int64_t S,
			     dsv32_tensor *out, dsv32_error *err);
/* One MLP (w1, w3, w2) on x: out = w2(bf16(silu(w1 x) · w3 x)), bf16 partial (no reduce). */
dsv32_status ref_mlp_apply(ref_model *m, const ref_lin *w1, const ref_lin *w3, const ref_lin *w2,
			   const dsv32_tensor *x, dsv32_tensor *out, dsv32_error *err);

#endif
