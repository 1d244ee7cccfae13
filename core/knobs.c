/* knobs.c: the knob table (core/knobs.h). Rows are the sections of the HF port's status table
 * (docs/attribution.md "The status table"); "FP8" stands for its "FP8 is not supported", and
 * "machine" for a difference of the machines the two upstream runs were recorded on rather
 * than of the layouts. */
#include "core/knobs.h"

#include <string.h>

static void kv_fp8(dsv32_model_opts *o)
{
	o->no_fp8_kv = true;
}

/* no-fp8-indexer alone keeps the reference's Hadamard and D^-0.5 on the weights (its own
 * variant); the knob takes over HF's whole bf16 score form */
static void indexer_fp8(dsv32_model_opts *o)
{
	o->no_fp8_indexer = true;
	o->knobs |= 1u << DSV32_KNOB_INDEXER_HF_SCORES;
}

static void indexer_weights_dtype(dsv32_model_opts *o)
{
	o->knobs |= 1u << DSV32_KNOB_INDEXER_WEIGHTS_DTYPE;
}

static void yarn_always(dsv32_model_opts *o)
{
	o->force_yarn = true;
}

/* transformers' recording machine: torch 2's 8-lane reduction forms (kernels/reduce.h) */
static void reduction_order(dsv32_model_opts *o)
{
	o->torch_lanes = 8;
	o->torch_major = 2;
}

static void silu_gating(dsv32_model_opts *o)
{
	o->knobs |= 1u << DSV32_KNOB_SILU_GATING;
}

static void act_quant(dsv32_model_opts *o)
{
	o->knobs |= 1u << DSV32_KNOB_ACT_QUANT;
}

static void logits_dtype(dsv32_model_opts *o)
{
	o->knobs |= 1u << DSV32_KNOB_LOGITS_DTYPE;
}

static void norm_fusion(dsv32_model_opts *o)
{
	o->knobs |= 1u << DSV32_KNOB_NORM_FUSION;
}

static void norm_weight_dtype(dsv32_model_opts *o)
{
	o->knobs |= 1u << DSV32_KNOB_NORM_WEIGHT_DTYPE;
}

static void mask(dsv32_model_opts *o)
{
	o->knobs |= 1u << DSV32_KNOB_MASK;
}

static void softmax_scale(dsv32_model_opts *o)
{
	o->knobs |= 1u << DSV32_KNOB_SOFTMAX_SCALE;
}

static void rope_freqs(dsv32_model_opts *o)
{
	o->knobs |= 1u << DSV32_KNOB_ROPE_FREQS;
}

static void moe_accum(dsv32_model_opts *o)
{
	o->knobs |= 1u << DSV32_KNOB_MOE_ACCUM;
}

static void decode_path(dsv32_model_opts *o)
{
	o->knobs |= 1u << DSV32_KNOB_DECODE_PATH;
}

/* Bit-neutral in the rotation itself (the same values in another channel order); it shows only
 * where the fp32 order of an attention dot product moves a bf16 rounding: on the tiny model's
 * 2 x 24 prompt none does, on 4 x 40 from seed 1 one does (tests/test_attribute.c shows both,
 * docs/attribution.md). */
static void rope_pairing(dsv32_model_opts *o)
{
	o->knobs |= 1u << DSV32_KNOB_ROPE_PAIRING;
}

/* ---- the hf layout toward ref (opts.knobs_to_ref; issue 18's other direction) ---- */
#define HF_BIT(fn, bit)                                 \
	static void fn(dsv32_model_opts *o)             \
	{                                               \
		o->knobs_to_ref |= 1u << DSV32_HFKNOB_##bit; \
	}
/* the whole reference form: Hadamard, fp8 keys and queries, fp8_index, D^-0.5 on the weights */
HF_BIT(indexer_fp8_hf, INDEXER_FP8)
HF_BIT(indexer_weights_dtype_hf, INDEXER_WEIGHTS_DTYPE)
HF_BIT(silu_gating_hf, SILU_GATING)
HF_BIT(act_quant_hf, ACT_QUANT)
HF_BIT(logits_dtype_hf, LOGITS_DTYPE)
HF_BIT(norm_fusion_hf, NORM_FUSION)
HF_BIT(norm_weight_dtype_hf, NORM_WEIGHT_DTYPE)
HF_BIT(moe_accum_hf, MOE_ACCUM)
HF_BIT(hf_yarn, YARN)
HF_BIT(hf_kv_fp8, KV_FP8)
HF_BIT(hf_rope_freqs, ROPE_FREQS)
HF_BIT(hf_rope_pairing, ROPE_PAIRING)
HF_BIT(hf_softmax_scale, SOFTMAX_SCALE)
HF_BIT(hf_mask, MASK)
HF_BIT(hf_decode_path, DECODE_PATH)
#undef HF_BIT

/* DeepSeek's recording machine: torch 1's 16-lane reduction forms, the ref layout's defaults */
static void reduction_order_hf(dsv32_model_opts *o)
{
	o->torch_lanes = 16;
	o->torch_major = 1;
}

static const dsv32_knob knobs[] = {
	{"yarn-always", "§6 rotary / YaRN frequencies",
	 "applies YaRN scaling and mscale^2 even when max_seq_len <= original_seq_len, as HF always does",
	 "force-yarn", yarn_always, hf_yarn},
	{"kv-fp8", "§5 attention / MLA decode path",
	 "keeps the latent KV cache in bf16 instead of its fp8 round trip", "no-fp8-kv", kv_fp8,
	 hf_kv_fp8},
	{"indexer-fp8", "§4 lightning indexer (FP8)",
	 "scores the indexer in bf16 as HF (no Hadamard, D^-0.5 inside the ReLU) instead of fp8 "
	 "keys and queries after the Hadamard transform",
	 NULL, indexer_fp8, indexer_fp8_hf},
	{"reduction-order", "machine",
	 "reduces norms in torch 2's 8-lane order (transformers' machine) instead of torch 1's 16 lanes",
	 "lanes=8:torch=2", reduction_order, reduction_order_hf},
	{"rope-freqs", "§6 rotary / YaRN frequencies",
	 "rotates with bf16 cos/sin computed from positions instead of the precomputed fp32 freqs_cis",
	 NULL, rope_freqs, hf_rope_freqs},
	{"rope-pairing", "§6 rotary / YaRN frequencies",
	 "keeps the MLA rotary dimensions de-interleaved and pairs them half-split (rotate_half), "
	 "as HF, instead of interleaved (the indexer is half-split in both)",
	 NULL, rope_pairing, hf_rope_pairing},
	{"softmax-scale", "§6 rotary / YaRN frequencies",
	 "forms the attention softmax scale with HF's mscale arithmetic", NULL, softmax_scale,
	 hf_softmax_scale},
	{"norm-fusion", "§9 residual & norm handling",
	 "adds the residual in bf16 and then normalises, instead of normalising the fp32 sum", NULL,
	 norm_fusion, norm_fusion_hf},
	{"norm-weight-dtype", "§9 residual & norm handling",
	 "multiplies the bf16-rounded normalised value by the norm weight in bf16, instead of fp32",
	 NULL, norm_weight_dtype, norm_weight_dtype_hf},
	{"mask", "§7 causal mask contract",
	 "masks with finfo.min added to the scores, as HF, instead of -inf", NULL, mask,
	 hf_mask},
	{"decode-path", "§5 attention / MLA decode path",
	 "decodes with MHA over the expanded cache instead of absorbed MQA over the latent", NULL,
	 decode_path, hf_decode_path},
	{"indexer-weights-dtype", "§4 lightning indexer (FP8)",
	 "applies the indexer's weights_proj in bf16 as HF loads it", NULL, indexer_weights_dtype,
	 indexer_weights_dtype_hf},
	{"act-quant", "FP8",
	 "multiplies fp8 weights dequantized to bf16 with bf16 activations, instead of e4m3 "
	 "activations in 128-blocks",
	 NULL, act_quant, act_quant_hf},
	{"silu-gating", "MLP and experts (no status row)",
	 "rounds the SiLU output to bf16 before the gate product, as HF, instead of one rounding of "
	 "the fp32 product",
	 NULL, silu_gating, silu_gating_hf},
	{"moe-accum", "§3 MoE routing semantics",
	 "sums the expert outputs in HF's order and dtype and normalises the router weights with "
	 "+1e-20",
	 NULL, moe_accum, moe_accum_hf},
	{"logits-dtype", "§8 output / logit behavior",
	 "produces the logits in bf16 and widens them, as HF", NULL, logits_dtype,
	 logits_dtype_hf},
	/* not a difference of the layouts: both take ties=index|torch-cpu (side option, --ties),
	 * and both upstreams use the index rule on the GPUs they run on; torch-cpu is the device's
	 * rule (transformers on a CPU), so it is not on the path from ref to hf */
	{"topk-ties", "machine",
	 "breaks top-k ties as torch's CPU topk does (transformers on a CPU) instead of by index; a "
	 "device rule both layouts take (ties=torch-cpu), not a layout difference",
	 NULL, NULL, NULL},
};

const dsv32_knob *dsv32_knob_table(size_t *n)
{
	*n = sizeof knobs / sizeof knobs[0];
	return knobs;
}

const dsv32_knob *dsv32_knob_find(const char *name)
{
	for (size_t i = 0; i < sizeof knobs / sizeof knobs[0]; i++)
		if (!strcmp(knobs[i].name, name))
			return &knobs[i];
	return NULL;
}

bool dsv32_knob_implemented(const dsv32_knob *k)
{
	return k && k->apply_ref;
}

bool dsv32_knob_implemented_hf(const dsv32_knob *k)
{
	return k && k->apply_hf;
}
