/* hf_names.h: the complete list of tensors an HF-layout DeepSeek V3.2 checkpoint holds for a
 * given config (docs/spec/checkpoints.md §2): names, dtypes, shapes, in the order the fixture generator
 * writes them (golden ref_tiny README order). Used by the fixture generator, `inspect`'s
 * coverage check and the converters.
 *
 *   global       model.embed_tokens.weight [vocab, dim] BF16, model.norm.weight [dim] F32,
 *                lm_head.weight [vocab, dim] BF16
 *   every layer  21 (fp8) / 14 (bf16) attention tensors, indexer included (dense layers too)
 *   dense FFN    gate_proj/up_proj [inter, dim], down_proj [dim, inter]
 *   MoE FFN      gate.weight [E, dim] BF16, gate.e_score_correction_bias [E] F32, experts
 *                0..E-1 and shared_experts (width moe_inter * n_shared) gate/up/down_proj
 * With fp8 every matrix except embed, lm_head, gate.weight and indexer.weights_proj is
 * F8_E4M3 followed by its F32 weight_scale_inv [ceil(out/128), ceil(in/128)]; otherwise BF16.
 * MTP layers (num_nextn_predict_layers) are not listed: both layouts ignore them.
 */
#ifndef DSV32_HF_NAMES_H
#define DSV32_HF_NAMES_H

#include "core/config.h"
#include "core/dtype.h"

typedef enum {
	DSV32_HF_MATRIX = 0, /* a projection; values ~ N(0,1)/sqrt(in) in the fixtures */
	DSV32_HF_SCALE,      /* weight_scale_inv of the matrix listed just before */
	DSV32_HF_EMBED,      /* model.embed_tokens.weight */
	DSV32_HF_NORM,       /* RMSNorm weights and the indexer k_norm weight */
	DSV32_HF_NORM_BIAS,  /* indexer k_norm bias */
	DSV32_HF_GATE_BIAS,  /* mlp.gate.e_score_correction_bias */
	DSV32_HF_KIND_COUNT  /* append only, above this line */
} dsv32_hf_kind;

typedef struct {
	const char *name;  /* valid only during the callback */
	dsv32_dtype dtype;
	int ndim;          /* 1 or 2 */
	int64_t shape[2];
	dsv32_hf_kind kind;
} dsv32_hf_tensor;

/* Called once per tensor; a status other than DSV32_OK stops the walk and is returned. */
typedef dsv32_status (*dsv32_hf_tensor_fn)(const dsv32_hf_tensor *t, void *user,
					   dsv32_error *err);

/* Walk every expected tensor of config c (fp8: quantized matrices with scales). */
dsv32_status dsv32_hf_expected_tensors(const dsv32_config *c, bool fp8, dsv32_hf_tensor_fn fn,
				       void *user, dsv32_error *err);

/* The same walk collected into an owned list (names copied), in walk order. */
typedef struct {
	dsv32_hf_tensor *v; /* v[i].name is owned by the list */
	size_t n, cap;
} dsv32_hf_tensor_list;

dsv32_status dsv32_hf_expected_list(const dsv32_config *c, bool fp8, dsv32_hf_tensor_list *out,
				    dsv32_error *err);
void dsv32_hf_tensor_list_free(dsv32_hf_tensor_list *l);

/* Number of tensors dsv32_hf_expected_tensors lists. */
int64_t dsv32_hf_expected_count(const dsv32_config *c, bool fp8);

/* True if name is "model.layers.N...." with N in [n_layers, n_layers + num_nextn_predict_layers)
 * (an MTP layer both layouts drop). */
bool dsv32_hf_is_mtp_name(const dsv32_config *c, const char *name);

#endif
