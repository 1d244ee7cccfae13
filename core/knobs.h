/* knobs.h: the numerics differences between the two layouts, one named knob each (issue 18,
 * docs/attribution.md).
 *
 * A knob makes the ref layout take over one difference of the hf layout, alone, with nothing
 * else changed, so `dsv32-parity attribute` can put a number on each difference: ref vs
 * ref+knob is the drift that difference adds, and ref with every knob flipped should be hf.
 * Every difference of docs/spec/hf_layout.md and docs/spec-notes.md has an entry, with the row
 * of the HF port's status table it belongs to; an entry whose apply is NULL is a difference
 * that is not yet a switch of the ref layout (listed so the list is complete, and reported as
 * "not measured", never as zero). The model options that existed before the knobs
 * (no-fp8-kv, force-yarn, lanes=/torch=) are what those knobs set; indexer-fp8 sets
 * no-fp8-indexer and DSV32_KNOB_INDEXER_HF_SCORES (HF's whole bf16 score form).
 */
#ifndef DSV32_KNOBS_H
#define DSV32_KNOBS_H

#include <stdbool.h>
#include <stddef.h>

#include "core/model.h"

/* The knobs that are bits of dsv32_model_opts.knobs (the others set older option fields). */
typedef enum {
	DSV32_KNOB_SILU_GATING = 0, /* ref/mlp.c: dsv32_silu_mul_hf instead of _ref */
	DSV32_KNOB_ACT_QUANT,       /* ref/ops.c: fp8 weights dequantized, bf16 GEMM */
	DSV32_KNOB_LOGITS_DTYPE,    /* ref/model.c: the head's GEMM rounded to bf16, widened */
	DSV32_KNOB_NORM_FUSION,     /* ref/model.c: bf16 residual add, then the norm */
	DSV32_KNOB_NORM_WEIGHT_DTYPE, /* ref/model.c, attn.c: dsv32_rmsnorm_hf's two roundings */
	DSV32_KNOB_MASK,            /* ref/attn.c, indexer.c: dsv32_attn_mask_hf (finfo.min) */
	DSV32_KNOB_SOFTMAX_SCALE,   /* ref/model.c: dsv32_softmax_scale_hf */
	DSV32_KNOB_ROPE_FREQS,      /* ref/ops.c: dsv32_yarn_hf_cos_sin + dsv32_rope_hf */
	DSV32_KNOB_MOE_ACCUM,       /* ref/moe_hf.c: HF router normalisation, grouped slot sum */
	DSV32_KNOB_INDEXER_WEIGHTS_DTYPE, /* ref/indexer.c: weights_proj as a bf16 GEMM */
	DSV32_KNOB_INDEXER_HF_SCORES, /* ref/indexer.c: with no_fp8_indexer, HF's score form (no
				       * Hadamard, D^-0.5 inside the ReLU); set by indexer-fp8 */
	DSV32_KNOB_DECODE_PATH,     /* ref/attn.c: decode as MHA over the expanded cache */
	DSV32_KNOB_ROPE_PAIRING,    /* ref/ops.c, attn.c: MLA rope channels kept de-interleaved */
	DSV32_KNOB_BIT_COUNT
} dsv32_knob_bit;

static inline bool dsv32_knob_on(const dsv32_model_opts *o, dsv32_knob_bit b)
{
	return (o->knobs >> b) & 1u;
}

/* The other direction (issue 18): bits of dsv32_model_opts.knobs_to_ref, each making the hf
 * layout take over one difference of the ref layout, alone. One bit per knob of the table that
 * needs one (reduction-order sets torch_lanes/torch_major instead). */
typedef enum {
	DSV32_HFKNOB_YARN = 0,        /* hf: YaRN and mscale^2 only when max_seq_len > original */
	DSV32_HFKNOB_KV_FP8,          /* hf: the KV latent through its fp8 round trip */
	DSV32_HFKNOB_INDEXER_FP8,     /* hf: the reference's fp8 indexer (Hadamard, fp8_index) */
	DSV32_HFKNOB_ROPE_FREQS,      /* hf: precomputed fp32 freqs_cis */
	DSV32_HFKNOB_ROPE_PAIRING,    /* hf: MLA rope channels interleaved */
	DSV32_HFKNOB_SOFTMAX_SCALE,   /* hf: the reference's softmax scale arithmetic */
	DSV32_HFKNOB_NORM_FUSION,     /* hf: fused residual add + norm of the fp32 sum */
	DSV32_HFKNOB_NORM_WEIGHT_DTYPE, /* hf: the norm weight applied in fp32 */
	DSV32_HFKNOB_MASK,            /* hf: -inf masking */
	DSV32_HFKNOB_DECODE_PATH,     /* hf: absorbed MQA decode over a latent cache */
	DSV32_HFKNOB_INDEXER_WEIGHTS_DTYPE, /* hf: weights_proj as the reference applies it */
	DSV32_HFKNOB_ACT_QUANT,       /* hf: fp8 weights with e4m3 activations in 128-blocks */
	DSV32_HFKNOB_SILU_GATING,     /* hf: one rounding of the fp32 silu * gate product */
	DSV32_HFKNOB_MOE_ACCUM,       /* hf: the reference's router normalisation and slot sum */
	DSV32_HFKNOB_LOGITS_DTYPE,    /* hf: fp32 logits straight from the head's GEMM */
	DSV32_HFKNOB_BIT_COUNT
} dsv32_hfknob_bit;

static inline bool dsv32_hfknob_on(const dsv32_model_opts *o, dsv32_hfknob_bit b)
{
	return (o->knobs_to_ref >> b) & 1u;
}

typedef struct {
	const char *name;       /* "kv-fp8" */
	const char *row;        /* status-table row, e.g. "§5 attention / MLA decode path" */
	const char *summary;    /* one sentence: what ref does instead when the knob is flipped */
	const char *side_token; /* the side option with the same effect ("no-fp8-kv"), or NULL */
	/* Flip the knob on a ref side's options; NULL: not yet a switch. */
	void (*apply_ref)(dsv32_model_opts *o);
	/* Flip it on an hf side's options, toward ref (knobs_to_ref); NULL: not yet a switch. */
	void (*apply_hf)(dsv32_model_opts *o);
} dsv32_knob;

/* The table, in the order the cumulative path flips them; *n receives its length. */
const dsv32_knob *dsv32_knob_table(size_t *n);
/* The knob called name, or NULL. */
const dsv32_knob *dsv32_knob_find(const char *name);
/* Whether the knob is a switch today (apply_ref != NULL). */
bool dsv32_knob_implemented(const dsv32_knob *k);
/* Whether it is a switch of the hf layout toward ref (apply_hf != NULL). */
bool dsv32_knob_implemented_hf(const dsv32_knob *k);

#endif
