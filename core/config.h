/* config.h: DeepSeek V3.2 model configuration, read from either form and written to either.
 *
 * One struct holds the union of what both layouts need, in the reference (`ModelArgs`) naming.
 * Readers: the HF `config.json` (docs/spec/checkpoints.md §4; `rope_scaling` or v5 `rope_parameters`,
 * `quantization_config`) and the reference JSON (`config_671B_v3.2.json` form, missing fields
 * take the ModelArgs defaults of docs/spec/ref_layout.md §1.1). Writers produce each form back.
 * Validation names the offending field: "n_heads: 6 does not divide by world size 4".
 */
#ifndef DSV32_CONFIG_H
#define DSV32_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "core/error.h"

typedef enum { DSV32_WDTYPE_BF16 = 0, DSV32_WDTYPE_FP8 } dsv32_weight_dtype;
typedef enum {
	DSV32_SCORE_SIGMOID = 0,
	DSV32_SCORE_SOFTMAX,
	DSV32_SCORE_FUNC_COUNT /* append only, above this line */
} dsv32_score_func;

typedef struct {
	/* reference ModelArgs fields */
	int64_t max_batch_size;    /* default 8 */
	int64_t max_seq_len;       /* default 16384; HF: not in config (runtime) */
	dsv32_weight_dtype dtype;  /* "bf16" | "fp8" */
	bool scale_fmt_ue8m0;      /* scale_fmt "ue8m0" (true) or None (false) */
	int64_t vocab_size;
	int64_t dim;
	int64_t inter_dim;
	int64_t moe_inter_dim;
	int64_t n_layers;
	int64_t n_dense_layers;
	int64_t n_heads;
	int64_t n_routed_experts;
	int64_t n_shared_experts;
	int64_t n_activated_experts;
	int64_t n_expert_groups;
	int64_t n_limited_groups;
	dsv32_score_func score_func;
	double route_scale;
	int64_t q_lora_rank;
	int64_t kv_lora_rank;
	int64_t qk_nope_head_dim;
	int64_t qk_rope_head_dim;
	int64_t v_head_dim;
	int64_t original_seq_len;
	double rope_theta;
	double rope_factor;
	double beta_fast;
	double beta_slow;
	double mscale;
	int64_t index_n_heads;
	int64_t index_head_dim;
	int64_t index_topk;

	/* HF-only fields (defaults when read from the reference form) */
	double rms_norm_eps;           /* 1e-6 */
	double mscale_all_dim;         /* rope_scaling.mscale_all_dim; 0.0 when absent (HF treats it as falsy) */
	bool has_attention_factor;     /* rope_scaling.attention_factor given */
	double attention_factor;
	bool rope_yarn;                /* rope_scaling type/rope_type == "yarn" */
	int64_t max_position_embeddings;
	bool norm_topk_prob;           /* true */
	int64_t num_nextn_predict_layers; /* MTP layers stored after n_layers (ignored) */
	int64_t bos_token_id, eos_token_id;
	bool has_quant;                /* quantization_config present (fp8 weights) */
	int64_t quant_block[2];        /* weight_block_size, [128, 128] */
} dsv32_config;

/* The largest tensor-parallel world size anything accepts (docs/spec/ref_layout.md §C.11: the
 * shared expert's 16 scale rows allow mp <= 16; 64 leaves room for other configurations). One
 * limit for config validation, the converters and the ref layout's in-process ranks. */
#define DSV32_MAX_WORLD_SIZE 64

/* The widest heads the kernels take: the indexer's Hadamard transform over index_head_dim
 * (kernels/hadamard.h DSV32_HADAMARD_MAX_DIM) and RoPE over qk_rope_head_dim (kernels/rope.h
 * DSV32_ROPE_MAX_DIM; kernels/hadamard.c and rope.c assert that they agree). Validation
 * refuses a config beyond them, so it fails before any weight is read, not at the first
 * forward. */
#define DSV32_MAX_INDEX_HEAD_DIM 4096
#define DSV32_MAX_ROPE_HEAD_DIM 256

/* ModelArgs defaults (docs/spec/ref_layout.md §1.1) with the HF-only fields at their defaults. */
void dsv32_config_defaults(dsv32_config *c);

/* Parse from a JSON text; label names the source in errors (a path). */
dsv32_status dsv32_config_from_hf_json(dsv32_config *c, const char *json, const char *label,
				       dsv32_error *err);
dsv32_status dsv32_config_from_ref_json(dsv32_config *c, const char *json, const char *label,
					dsv32_error *err);
/* Read a file, detecting the form: HF if it has "hidden_size" or "model_type", else reference. */
dsv32_status dsv32_config_load(dsv32_config *c, const char *path, bool *is_hf, dsv32_error *err);

/* Serialize; the caller frees the returned string with free(). NULL on allocation failure. */
char *dsv32_config_to_hf_json(const dsv32_config *c);
char *dsv32_config_to_ref_json(const dsv32_config *c);

/* Structural checks (positive sizes, n_dense_layers <= n_layers, experts divisible into groups,
 * topk within bounds, index_head_dim a power of two >= qk_rope_head_dim, qk_rope_head_dim even,
 * ...) and, if world_size > 0, the tensor-parallel divisibility rules of
 * docs/spec/ref_layout.md §C.11. */
dsv32_status dsv32_config_validate(const dsv32_config *c, int world_size, dsv32_error *err);
/* dsv32_config_validate of a config read from the file label, the message naming the file and
 * the key as that file spells it: "LABEL: invalid config: hidden_size: 0, must be >= 1" for an
 * HF config (the checks themselves name the reference field, dim). */
dsv32_status dsv32_config_validate_file(const dsv32_config *c, bool is_hf, int world_size,
					const char *label, dsv32_error *err);

/* Derived sizes. */
static inline int64_t dsv32_config_qk_head_dim(const dsv32_config *c)
{
	return c->qk_nope_head_dim + c->qk_rope_head_dim;
}
/* YaRN and the mscale^2 softmax factor are on in the reference iff max_seq_len > original. */
static inline bool dsv32_config_ref_yarn_on(const dsv32_config *c)
{
	return c->max_seq_len > c->original_seq_len;
}
static inline bool dsv32_config_layer_is_moe(const dsv32_config *c, int64_t layer)
{
	return layer >= c->n_dense_layers;
}

#endif
