/* ref_model.h: the reference-layout model of DeepSeek V3.2 (docs/spec/ref_layout.md, Parts A-F):
 * DeepSeek's final inference/model.py, on the op layer (kernels/), CPU and CUDA alike.
 *
 * Open:   from reference shards  <dir>/model{r}-mp{W}.safetensors + reference config JSON
 *         (<dir>/config.json unless given), or from an HF checkpoint directory through the
 *         name map (each rank's slice is cut in memory; nothing is written).
 * Ranks:  W = opts->world_size tensor-parallel ranks run in this process (or one per process
 *         with dsv32_ref_open_comm, docs/distributed.md: same bits). Replicated parts
 *         (norms, wq_a, wkv_a, the indexer, the gate) are computed once: every rank of the
 *         reference computes the same bits there (§C.5-C.7). Split parts (wq_b/wkv_b/attention
 *         of the local heads, wo, dense w1/w2/w3, shared expert, owned routed experts, embed and
 *         head rows) run per rank on the rank's own slice, and the collectives of §C.9 combine
 *         them: all_reduce = fp32 sum of the bf16-rounded partials in rank order, then one bf16
 *         cast (W == 1: the single bf16 GEMM output, no fp32 detour), head all_gather in rank
 *         order.
 * Steps:  dsv32_ref_forward(tokens [B,S], start_pos): S > 1 only at start_pos 0 (prefill, the
 *         multi-head path over this call's keys); S == 1 decodes (absorbed MQA over the latent
 *         kv_cache + pe_cache). Logits: fp32 [B, vocab] of the last position.
 * Profile bf16: the reference's numerics. fp32: every activation F32 (no bf16 rounding points),
 *         fp8 simulation off (no act_quant, no latent round trip, indexer on unquantized
 *         vectors; fp8 weights are dequantized to fp32 at load).
 * Tests:  opts->plant (planted bugs, kernels/test_hooks.h) applies to every layer when
 *         plant->layer < 0, else only inside that layer (copied at open).
 * Taps:   every canonical tap of docs/spec/taps.md plus layers.{i}.attn_residual, indexer.scores,
 *         indexer.k_fp8, indexer.k_scale (fixtures/golden/ref_tiny/README.md "Taps"), host
 *         tensors in canonical form. Set m->taps (dsv32_model) before forward.
 */
#ifndef DSV32_REF_MODEL_H
#define DSV32_REF_MODEL_H

#include "core/model.h"

/* Open a reference-layout model. ckpt: a directory of reference shards model{r}-mp{W}.safetensors
 * (W = opts->world_size; the reference config JSON is config_path or <ckpt>/config.json) or an
 * HF checkpoint directory (config.json with "model_type"/"hidden_size"; config_path may name a
 * reference JSON to use instead). opts NULL = dsv32_model_opts_default. On success *out is a
 * dsv32_model whose vt->layout is "ref"; close it with (*out)->vt->close(*out). */
dsv32_status dsv32_ref_open(dsv32_model **out, const char *ckpt, const char *config_path,
			    const dsv32_model_opts *opts, dsv32_error *err);

/* dsv32_ref_open with real tensor-parallel ranks (docs/distributed.md): comm (ref/comm.h,
 * borrowed, must outlive the model; NULL or inproc = dsv32_ref_open) makes this process rank
 * comm->rank of W = comm->size (which must equal opts->world_size): it opens only its own shard
 * model{rank}-mp{W}.safetensors (an HF checkpoint: only its own slice), runs only its own split
 * parts, and the collectives combine them to the in-process emulation's bits. Every rank of the
 * job must make the same calls (open, forward, close) with the same arguments, with taps on or
 * off alike (taps of split tensors are gathered: a collective); the open ends on every rank with
 * the same error when it fails on one ("rank R of W: ..."). */
typedef struct dsv32_comm dsv32_comm;
dsv32_status dsv32_ref_open_comm(dsv32_model **out, const char *ckpt, const char *config_path,
				 const dsv32_model_opts *opts, dsv32_comm *comm, dsv32_error *err);

/* One step (reference Transformer.forward): tokens [B, S] row-major, start_pos P. logits_out
 * receives an owned host fp32 tensor [B, vocab] (free with dsv32_tensor_free). Errors:
 * DSV32_E_USAGE for B > max_batch, P + S > max_seq_len, S > 1 with P > 0 (chunked prefill:
 * the reference cannot do it), token ids outside the vocabulary. */
dsv32_status dsv32_ref_forward(dsv32_model *m, const int64_t *tokens, int64_t B, int64_t S,
			       int64_t start_pos, dsv32_tensor *logits_out, dsv32_error *err);

/* Teacher forcing, exactly as the reference Block.forward (§A.14): x = the previous block's
 * un-added output (layer 0: the embedding), residual = the previous block's residual (NULL
 * for layer 0: residual = x). Host tensors [B, S, dim] in the profile's activation dtype (BF16,
 * or F32 in the fp32 profile; BF16 inputs are widened in the fp32 profile). Writes this layer's
 * caches at [start_pos, start_pos + S) and emits the layer's taps. x_out / res_out receive
 * owned host tensors: ffn.out and attn_residual (the pair Block.forward returns). */
dsv32_status dsv32_ref_layer_step(dsv32_model *m, int layer, const dsv32_tensor *x,
				  const dsv32_tensor *residual, int64_t start_pos,
				  dsv32_tensor *x_out, dsv32_tensor *res_out, dsv32_error *err);

/* Overwrite a layer's caches at batch rows [0, B) and positions [pos, pos + S) from host tensors
 * (teacher forcing of decode steps): kv_latent [B,S,kv_lora_rank] and k_rope [B,S,rope_dim]
 * (BF16 or F32), k_fp8 [B,S,index_head_dim] F32 holding e4m3 values (or the unquantized key
 * in the fp32 profile / no_fp8_indexer), k_scale [B,S,1] F32. Any of them may be NULL. */
dsv32_status dsv32_ref_cache_set(dsv32_model *m, int layer, int64_t pos,
				 const dsv32_tensor *kv_latent, const dsv32_tensor *k_rope,
				 const dsv32_tensor *k_fp8, const dsv32_tensor *k_scale,
				 dsv32_error *err);

/* Teacher forcing of the end (§A.15 steps 5-7): final fused norm of (x, residual), the last
 * position's fp32 logits [B, vocab] (owned host tensor). Emits layers.{n-1}.out, final_norm,
 * logits. */
dsv32_status dsv32_ref_head_step(dsv32_model *m, const dsv32_tensor *x,
				 const dsv32_tensor *residual, dsv32_tensor *logits_out,
				 dsv32_error *err);

/* Sizes of the open model (for callers that allocate). */
int dsv32_ref_world_size(const dsv32_model *m);

#endif
