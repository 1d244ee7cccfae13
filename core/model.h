/* model.h: the interface both layouts implement (docs/architecture.md "The model interface"), so compare/,
 * cli/ and the tests treat `ref` and `hf` alike. Layout-specific APIs (the full HF forward with
 * attention_mask / position_ids / logits_to_keep, the ref start_pos API with TP ranks) live in
 * ref/ref_model.h and hf_layout/hf_model.h; this is the common subset.
 *
 * Taps: during a forward, a model calls sink->on_tap(user, name, t, err) for every canonical tap of
 * docs/spec/taps.md ("embed", "layers.3.attn.q_rope", ..., "logits"), with t a HOST tensor in canonical
 * form: activations [B, S, ...] in the dtype the layout holds them (bf16 mostly, fp32 logits),
 * index sets as I64 [B, S, k]. The tensor is valid only during the call. Emitting taps never
 * changes numerics. Layouts may emit extra taps (e.g. "layers.1.attn_residual",
 * "layers.1.indexer.scores"); consumers ignore names they do not know.
 */
#ifndef DSV32_MODEL_H
#define DSV32_MODEL_H

#include "core/config.h"
#include "core/error.h"
#include "core/tensor.h"

typedef struct {
	/* Returns DSV32_OK, or a failure (with err set) that ends the forward with that status. */
	dsv32_status (*on_tap)(void *user, const char *name, const dsv32_tensor *t,
			       dsv32_error *err);
	void *user;
} dsv32_tap_sink;

/* Decisions: a layout takes two discrete decisions per row, the indexer's key selection
 * ("layers.N.indexer.topk", I64 [B,S,k]) and the router's expert selection ("layers.N.moe.experts",
 * I64 [B,S,topk]). Right after taking one, after emitting its tap (so the tap always shows the
 * layout's own choice) and BEFORE using it, the layout calls on_decision when it is set
 * (layout_common/tap_emit.h lc_tap_decide), with sel a HOST copy of the selection. The sink may
 * overwrite rows of sel in place with another selection and set *forced; the layout then checks
 * it (same shape and dtype, every id in range, no id twice in a row: DSV32_E_USAGE naming the
 * tap, the row and the bad id otherwise) and uses it instead of its own.
 * Why: teacher-forced comparisons put both sides on the same decisions, so the dense taps that
 * follow measure arithmetic only (compare/runner.c, --force-decisions). A forced decision changes
 * only what depends on the ids: the attention mask; the MoE mixing weights, gathered from the
 * layout's OWN router scores at the forced experts with its own normalisation and route_scale
 * (kernels/router.h dsv32_router_weights_at). An unforced decision (on_decision NULL, *forced
 * left false, or the same selection written back) leaves every bit of the forward unchanged.
 * A struct of its own, beside the tap sink, so every existing {on_tap, user} sink stays valid. */
typedef struct {
	dsv32_status (*on_decision)(void *user, const char *name, dsv32_tensor *sel, bool *forced,
				    dsv32_error *err);
	void *user;
} dsv32_decision_sink;

/* Test-only planted bugs: which (bit i = DSV32_TEST_FLAG_* of kernels/test_hooks.h) and where
 * (a decoder layer, -1 = everywhere), so tests and the dogfood gate can check that the harness
 * finds a known bug. Reached only through dsv32_model_opts.plant, which every real run leaves
 * NULL; a model copies it at open. */
typedef struct {
	uint32_t flags;
	int layer;
} dsv32_plant;

typedef enum { DSV32_PROFILE_BF16 = 0, DSV32_PROFILE_FP32, DSV32_PROFILE_COUNT } dsv32_profile;
typedef enum { DSV32_EXPERTS_GROUPED_MM = 0, DSV32_EXPERTS_EAGER } dsv32_experts_impl;

typedef struct {
	dsv32_device device;         /* CPU or CUDA */
	dsv32_profile profile;       /* bf16: the layout's numerics; fp32: every rounding off */
	int world_size;              /* ref: TP ranks run in-process (1 = no TP) */
	int64_t max_batch_size;      /* 0 = config value */
	int64_t max_seq_len;         /* 0 = config value */
	bool force_yarn;             /* ref: YaRN + mscale^2 even if max_seq_len <= original */
	bool no_fp8_indexer;         /* ref: indexer without the fp8 simulation */
	bool no_fp8_kv;              /* ref: no fp8 round trip of the KV latent */
	dsv32_experts_impl experts;  /* hf: grouped_mm (default) or eager */
	int torch_lanes;             /* CPU reduction order to follow (kernels/reduce.h): 8 | 16, 0 =
				      * layout default (ref 16: DeepSeek's recording machine; hf 8:
				      * torch 2.x on this project's AVX2 machines) */
	int torch_major;             /* 1 | 2, 0 = layout default (ref 1, hf 2) */
	int gemm_engine;             /* DSV32_GEMM_FIXED (0, default: same bits on every CPU) or
				      * DSV32_GEMM_HOST (oneDNN/OpenBLAS as PyTorch on this CPU);
				      * kernels/gemm.h "Engines" */
	const dsv32_plant *plant;    /* tests only (and the plant= side token): NULL in real runs */
	int layers;                  /* run only the first N decoder layers, then the final norm and
				      * head as usual (a truncated model: its logits are not the
				      * model's). 0, or N >= the config's count = all; < 0 is
				      * DSV32_E_USAGE at open. Layers >= N are never read. */
	int ties;                    /* top-k tie rule of the indexer and the router: 0 index (CUDA's,
				      * default), 1 torch-cpu (torch.topk on a CPU, as transformers
				      * runs there); dsv32_tie_rule of kernels/topk_torch.h, CPU only */
	int exp_rule;                /* exp of the router's sigmoid and the MLPs' silu: 0 libm
				      * (default), 1 torch-cpu (torch's CPU kernels: Sleef's expf_u10
				      * in the vector body, libm in the tails, with this process's
				      * OpenMP thread count as torch's threads and this CPU's
				      * capability, unless the two fields below say otherwise);
				      * dsv32_exp_rule of kernels/exp_torch.h, CPU only */
	int exp_threads;             /* torch-cpu exp: torch's thread count to follow (0 = this
				      * process's OpenMP count); compare takes a recording's */
	int exp_cap;                 /* torch-cpu exp: 0 = this CPU's capability, else 1 +
				      * dsv32_torch_cap of the run to follow (a recording's) */
	uint32_t knobs;              /* ref: bit DSV32_KNOB_* of core/knobs.h = take over that numerics
				      * difference of the hf layout (`dsv32-parity attribute`) */
	uint32_t knobs_to_ref;       /* hf: bit DSV32_HFKNOB_* of core/knobs.h = take over that
				      * numerics difference of the ref layout (the other direction) */
	bool eager_dequant;          /* hf, CPU: dequantize fp8 matrices to the activation dtype at
				      * load (false = lazy: keep the fp8 codes + scales mapped and
				      * dequantize each into a scratch buffer right before its GEMM;
				      * same values). CUDA is always eager. */
	int64_t hf_kx_budget;        /* hf, CPU fixed engine: bytes the expanded keys and values of
				      * past positions may take to be kept across calls instead of
				      * recomputed by kv_b_proj each call (the same bits either way:
				      * hf_layout/attn.c expand_kv_cached); 0 = 1 GiB, < 0 = never */
	bool logits_view;            /* forward's logits_out is a borrowed view of a buffer the
				      * model keeps (valid until its next forward, reset or close;
				      * dsv32_tensor_free on it does nothing), so a decode loop
				      * allocates nothing per step (tests/test_decode_alloc.c);
				      * false: a new owned tensor each call */
} dsv32_model_opts;

void dsv32_model_opts_default(dsv32_model_opts *o);

typedef struct dsv32_model dsv32_model;

/* The input of one decoder layer in teacher forcing.
 *   hidden    required: the residual stream entering the layer, [B,S,dim] in any float dtype
 *             ("embed" for layer 0, "layers.{i-1}.out" after)
 *   branch    optional: the previous layer's un-added output ("layers.{i-1}.ffn.out"; "embed"
 *             for layer 0), and
 *   residual  optional: its residual ("layers.{i-1}.attn_residual"; NULL for layer 0).
 * A layout whose first norm fuses the residual add (ref) normalizes the UNROUNDED fp32 sum of
 * branch and residual, which hidden (their bf16-rounded sum) cannot give it; it uses the pair
 * when given. Layouts that add in bf16 first (hf) use hidden only. */
typedef struct {
	const dsv32_tensor *hidden;
	const dsv32_tensor *branch;
	const dsv32_tensor *residual;
} dsv32_layer_input;

typedef struct {
	const char *layout; /* "ref" or "hf" */
	/* One step: tokens [B, S] (row-major int64), positions start_pos .. start_pos+S-1 shared
	 * by all rows. logits_out: fp32 [B, vocab] of the last position (allocated by the model
	 * on the host; the caller frees with dsv32_tensor_free; a borrowed view of the model's
	 * own buffer with opts.logits_view). */
	dsv32_status (*forward)(dsv32_model *m, const int64_t *tokens, int64_t B, int64_t S,
				int64_t start_pos, dsv32_tensor *logits_out, dsv32_error *err);
	/* Teacher forcing: run decoder layer `layer` of a step on `in` (dsv32_layer_input),
	 * updating this layer's caches as forward would; hidden_out receives "layers.{layer}.out".
	 * Taps of the layer are emitted. */
	dsv32_status (*layer_forward)(dsv32_model *m, int layer, const dsv32_layer_input *in,
				      int64_t start_pos, dsv32_tensor *hidden_out, dsv32_error *err);
	/* Forget the caches (a new sequence). */
	void (*reset)(dsv32_model *m);
	void (*close)(dsv32_model *m);
	/* Layer-major execution (optional: NULL where a layout lacks it). For a run whose tokens of
	 * every step are known before it starts (teacher forcing against a recording, given decode
	 * tokens), so that each layer's weights are read once for all steps and only one layer is
	 * resident: lm_begin(n_steps) makes one activation slot per step; lm_embed(step, tokens, B,
	 * S, start_pos) embeds a step into its slot (tap "embed"); lm_layer(layer, step) runs
	 * decoder layer `layer` of that step on its slot with the layer's caches (taps and
	 * decisions as in forward); lm_release(layer) drops that layer's weights from memory
	 * (mapped pages, copies derived from them) and its caches after its last step (layer -1:
	 * the embedding table, after the last lm_embed); lm_head(step, logits_out) runs the final
	 * norm and head (logits_out as forward's); lm_end frees the slots and restores what was
	 * released, so forward and another layer-major run work after it. The caller runs every
	 * lm_embed, then per layer every step in order then lm_release, then every lm_head: each
	 * step's taps, logits and caches are then bit-identical to forward's, in forward's order
	 * within the step (the same kernels on the same tensors; only the loop nest changes). */
	dsv32_status (*lm_begin)(dsv32_model *m, int n_steps, dsv32_error *err);
	dsv32_status (*lm_embed)(dsv32_model *m, int step, const int64_t *tokens, int64_t B,
				 int64_t S, int64_t start_pos, dsv32_error *err);
	dsv32_status (*lm_layer)(dsv32_model *m, int layer, int step, dsv32_error *err);
	void (*lm_release)(dsv32_model *m, int layer);
	dsv32_status (*lm_head)(dsv32_model *m, int step, dsv32_tensor *logits_out,
				dsv32_error *err);
	void (*lm_end)(dsv32_model *m);
} dsv32_model_vtbl;

struct dsv32_model {
	const dsv32_model_vtbl *vt;
	dsv32_config cfg;
	dsv32_model_opts opts;
	dsv32_tap_sink taps; /* set by the caller; on_tap NULL = no taps */
	dsv32_decision_sink decide; /* set by the caller; on_decision NULL = the layout decides */
};

#endif
