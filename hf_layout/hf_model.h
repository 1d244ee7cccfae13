/* hf_model.h: the HF-layout model of DeepSeek V3.2 (docs/spec/hf_layout.md): transformers v5
 * `deepseek_v32` (DeepseekV32ForCausalLM, as installed: transformers 5.24) with
 * attn_implementation="eager", on the op layer (kernels/), CPU and CUDA through the same code.
 *
 * Open:    an HF checkpoint directory (config.json + one or many safetensors files, with or
 *          without model.safetensors.index.json). bf16 weights, or fp8 e4m3 + weight_scale_inv
 *          dequantized to bf16 (fp32(w8)·scale per 128x128 block, one RNE to bf16): on CPU by
 *          default lazily, each GEMM matrix right before its GEMM (dsv32_dequant_gemm: a few
 *          rows at a time in cache under the CPU's fixed engine, else into one reusable scratch
 *          buffer; the fp8 codes stay mapped: the checkpoint is held once, in fp8); with
 *          opts.eager_dequant, and always on CUDA, once at load. Same bf16 values either way.
 *          opts.layers = N > 0 opens only the first N decoder layers (a truncated model; the
 *          final norm and head run on layers.{N-1}.out).
 *          In-memory dtypes as transformers gives them under dtype=torch.bfloat16: every
 *          parameter bf16 (norms, k_norm, weights_proj included) except the gate's weight and
 *          e_score_correction_bias (fp32, _keep_in_fp32_modules_strict). MTP layers
 *          (model.layers.{n_layers}...) are ignored.
 * Forward: dsv32_hf_forward: input_ids [B,S], optional 2-D attention_mask [B, past+S] (padding,
 *          left or right), optional position_ids [B,S] (default arange(S) + past, shared by all
 *          rows), the model's DynamicCache (appends at the end, any S at any cache length), and
 *          logits_to_keep (0 = all positions) -> logits [B, keep, vocab] in the activation dtype
 *          (bf16 in the bf16 profile, as HF: not upcast).
 * Cache:   per layer the normed KV latent [B,T,kv_lora_rank], the rotated shared rope key
 *          [B,T,64] (HF half-split channel order) and the indexer keys [B,T,index_head_dim].
 *          transformers 5.24 caches the compressed latents and expands K/V through kv_b_proj
 *          after every cache read (expand_kv); the expanded per-head K [B,T,H,192] and V
 *          [B,T,H,128] are rebuilt per forward from them. Row-wise this is the same arithmetic
 *          as caching expanded K/V (each key row is its own kv_b_proj GEMM row).
 * Profile: bf16 = HF's numerics; fp32 = every tensor F32 (no rounding point anywhere).
 * Experts: opts.experts = DSV32_EXPERTS_GROUPED_MM (default, HF's default: fp32 sum of the k
 *          weighted slot outputs, one cast) or DSV32_EXPERTS_EAGER (bf16 index_add_ in ascending
 *          expert order).
 * Taps:    the canonical taps of docs/spec/taps.md plus layers.{i}.attn_residual and
 *          layers.{i}.indexer.scores (F32 [B,S,T], the tensor HF takes the top-k of). q_rope /
 *          k_rope are emitted in reference (interleaved) channel order. "logits" is the
 *          activation-dtype [B, keep, vocab] tensor of dsv32_hf_forward (F32 with the
 *          logits-dtype knob toward ref, opts.knobs_to_ref: core/knobs.h).
 */
#ifndef DSV32_HF_MODEL_H
#define DSV32_HF_MODEL_H

#include "core/model.h"

/* Open an HF-layout model from an HF checkpoint directory (a directory whose *.safetensors are
 * all reference shard files model{r}-mp{W}.safetensors is opened as dsv32_hf_open_shards does,
 * config_path then naming the reference config). Same signature as dsv32_ref_open
 * (the CLI's layout table calls both through one function type): config_path NULL =
 * <ckpt_dir>/config.json, else that HF config.json is used instead. opts NULL = defaults (CPU,
 * bf16, grouped_mm). Cache capacity: opts->max_batch_size (0: config max_batch_size) rows and
 * opts->max_seq_len (0: min(max_position_embeddings, 4096)) positions. On success *out has
 * vt->layout "hf"; close with (*out)->vt->close(*out). On failure *out is NULL and err (when not
 * NULL) always holds the code and a message naming the file / tensor. */
dsv32_status dsv32_hf_open(dsv32_model **out, const char *ckpt_dir, const char *config_path,
			   const dsv32_model_opts *opts, dsv32_error *err);
/* The same on reference shards (docs/hf_layout.md "On reference shards"): shards_dir holds
 * model{r}-mp{W}.safetensors, read in place through the convert/ shard source (convert.h): every
 * parameter gets exactly the bytes `convert ref-to-hf --dtype keep` would have written for it,
 * and the config is the one that converter writes (from config_path, a reference config JSON or
 * an HF config.json; NULL = <shards_dir>/config.json), so the model computes what
 * dsv32_hf_open computes on the converted checkpoint, bit for bit. No file is written.
 * Replicated tensors are read from rank 0 without comparing the ranks (verify-shards does).
 * Errors name the shard file / tensor: a missing rank file, a world size that does not divide
 * the config, shapes that disagree between ranks, a tensor in no rank file. */
dsv32_status dsv32_hf_open_shards(dsv32_model **out, const char *shards_dir,
				  const char *config_path, const dsv32_model_opts *opts,
				  dsv32_error *err);
/* The same without config_path (= NULL). */
dsv32_status dsv32_hf_open_dir(dsv32_model **out, const char *ckpt_dir,
			       const dsv32_model_opts *opts, dsv32_error *err);
/* Number of fp8 matrices the model keeps lazily (fp8 codes + scales, dequantized per GEMM);
 * 0 for a bf16 checkpoint, with opts.eager_dequant, or on CUDA. */
int64_t dsv32_hf_lazy_matrices(const dsv32_model *m);
/* Bytes the expanded key/value caches hold (dsv32_model_opts.hf_kx_budget): > 0 once a layer
 * has kept its expanded keys and values; 0 off the CPU fixed engine or with the budget < 0. */
int64_t dsv32_hf_expanded_cache_bytes(const dsv32_model *m);

/* One HF forward call (DeepseekV32ForCausalLM.forward with use_cache=True).
 *   input_ids       host I64 [B*S] row-major
 *   attention_mask  host I64 [B*(past+S)] (1 = attend, 0 = padding) or NULL (all ones)
 *   position_ids    host I64 [B*S] or NULL (arange(S) + past for every row)
 *   logits_to_keep  0 = all S positions, else the last min(keep, S)
 *   logits_out      receives an owned host tensor [B, keep, vocab] (BF16 or F32 by profile)
 * The batch size of a sequence is fixed by its first call (past = 0). Errors (DSV32_E_USAGE):
 * token id outside [0, vocab), B different from the cached batch, past+S above the cache
 * capacity, logits_to_keep < 0, negative positions. */
dsv32_status dsv32_hf_forward(dsv32_model *m, const int64_t *input_ids, int64_t B, int64_t S,
			      const int64_t *attention_mask, const int64_t *position_ids,
			      int64_t logits_to_keep, dsv32_tensor *logits_out, dsv32_error *err);

/* Number of cached positions (DynamicCache.get_seq_length()). */
int64_t dsv32_hf_cache_length(const dsv32_model *m);

#endif
