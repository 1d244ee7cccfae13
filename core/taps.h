/* taps.h: the tap grammar, defined once (docs/spec/taps.md). A tap is a named host tensor a
 * model emits during a forward (core/model.h). Its name is either a model-level name ("embed",
 * "final_norm", "logits"), a step input ("input_ids", "start_pos", "position_ids") or
 * "layers.{i}.{op}" for an op of decoder layer i. Both models build their names from the table
 * below, and the runner, budgets and reports read kinds and order from it, so a tap is added in
 * one place.
 *
 * Classes decide how a tap is compared:
 *   DENSE          float activations, compared element-wise (metrics.h);
 *   INDEX_SET      I64 [B, S, k] selections, compared as sets per row;
 *   MASKED_SCORES  float scores where -inf / finfo.min mean "masked" (equal to each other);
 *   ROUTE_WEIGHTS  per-row weights of a selection (compared in the selection's slot order);
 *   LOGITS         fp32 logits, compared at the last position with softmax metrics;
 *   INPUT          the step's tokens and positions: never compared, they define the step.
 * A name not in the table is an extra tap: DENSE, or MASKED_SCORES when it ends in ".scores",
 * sorted just before its layer's "out". */
#ifndef DSV32_TAPS_H
#define DSV32_TAPS_H

#include <stdbool.h>
#include <stddef.h>

typedef enum {
	DSV32_TAPC_DENSE = 0,
	DSV32_TAPC_INDEX_SET,
	DSV32_TAPC_MASKED_SCORES,
	DSV32_TAPC_ROUTE_WEIGHTS,
	DSV32_TAPC_LOGITS,
	DSV32_TAPC_INPUT,
} dsv32_tap_class;

/* The ops of a decoder layer, in the order the models emit them: X(id, op name, class).
 * The order is the "model order" of first divergences (docs/tap-format.md). */
#define DSV32_LAYER_TAPS(X)                                     \
	X(ATTN_NORM, "attn_norm", DENSE)                        \
	X(Q_LATENT, "attn.q_latent", DENSE)                     \
	X(KV_LATENT, "attn.kv_latent", DENSE)                   \
	X(Q_ROPE, "attn.q_rope", DENSE)                         \
	X(K_ROPE, "attn.k_rope", DENSE)                         \
	X(INDEXER_K_FP8, "indexer.k_fp8", DENSE)                \
	X(INDEXER_K_SCALE, "indexer.k_scale", DENSE)            \
	X(INDEXER_SCORES, "indexer.scores", MASKED_SCORES)      \
	X(INDEXER_TOPK, "indexer.topk", INDEX_SET)              \
	X(ATTN_SCORES, "attn.scores", MASKED_SCORES)            \
	X(ATTN_OUT, "attn.out", DENSE)                          \
	X(ATTN_RESIDUAL, "attn_residual", DENSE)                \
	X(FFN_NORM, "ffn_norm", DENSE)                          \
	X(MOE_GROUP_SCORES, "moe.group_scores", MASKED_SCORES)  \
	X(MOE_SCORES, "moe.scores", MASKED_SCORES)              \
	X(MOE_EXPERTS, "moe.experts", INDEX_SET)                \
	X(MOE_WEIGHTS, "moe.weights", ROUTE_WEIGHTS)            \
	X(FFN_OUT, "ffn.out", DENSE)                            \
	X(OUT, "out", DENSE)

/* The discrete decisions of a layer and the scores each is selected from:
 * X(set id, scores id, masked picks unused). A flip of the set (a row whose selection differs)
 * is classified against these scores (compare/tapcmp.c: tie, near-tie, genuine), and both are
 * the decisions a layout offers to its sink's on_decision (core/model.h "Decisions").
 * "Masked picks unused": a pick whose score is masked (-inf) does nothing, so set metrics leave
 * it out (a key the causal mask hides: the attention masks it again); not so for experts, where
 * -inf marks a group the group limit dropped and picking from it is a real difference. */
#define DSV32_SELECTION_TAPS(X)                                 \
	X(INDEXER_TOPK, INDEXER_SCORES, true)                   \
	X(MOE_EXPERTS, MOE_SCORES, false)

/* Selections made in two stages: X(set id, group scores id). The router keeps the best groups
 * by their group scores (kernels/router.h step 3) and picks experts inside them; its scores tap
 * masks the dropped groups, so a flip to an expert of a group one side dropped has no margin
 * there and is measured at the group stage instead (compare/tapcmp.c). The group scores tap is
 * emitted only by a router with more than one group. */
#define DSV32_GROUP_STAGES(X) X(MOE_EXPERTS, MOE_GROUP_SCORES)

/* Model-level taps and step inputs: X(id, name, class). */
#define DSV32_MODEL_TAPS(X)                                     \
	X(EMBED, "embed", DENSE)                                \
	X(FINAL_NORM, "final_norm", DENSE)                      \
	X(LOGITS, "logits", LOGITS)                             \
	X(INPUT_IDS, "input_ids", INPUT)                        \
	X(START_POS, "start_pos", INPUT)                        \
	X(POSITION_IDS, "position_ids", INPUT)

#define DSV32_TAP_ENUM_(id, name, kind) DSV32_LTAP_##id,
typedef enum { DSV32_LAYER_TAPS(DSV32_TAP_ENUM_) DSV32_LTAP_COUNT } dsv32_layer_tap;
#undef DSV32_TAP_ENUM_
#define DSV32_TAP_ENUM_(id, name, kind) DSV32_MTAP_##id,
typedef enum { DSV32_MODEL_TAPS(DSV32_TAP_ENUM_) DSV32_MTAP_COUNT } dsv32_model_tap;
#undef DSV32_TAP_ENUM_

/* The op name of a layer tap ("attn.q_rope") and the full name of a model tap ("embed"). */
const char *dsv32_layer_tap_op(dsv32_layer_tap t);
const char *dsv32_model_tap_name(dsv32_model_tap t);

/* "layers.{layer}.{op}" of t into buf (len >= 64 always suffices); returns buf. */
const char *dsv32_layer_tap_name(char *buf, size_t len, int layer, dsv32_layer_tap t);

/* Split a tap name into layer and op ("layers.3.attn.out" -> 3, "attn.out"; "logits" -> -1,
 * "logits"). */
void dsv32_tap_split_name(const char *name, int *layer, char *op, size_t op_len);

/* The class of a tap by name (extras as described above). */
dsv32_tap_class dsv32_tap_class_of(const char *name);
bool dsv32_tap_is_input(const char *name);

/* Order of an op inside a layer: its table index, except that extras sort after every listed op
 * and before "out", which is last. */
int dsv32_layer_op_rank(const char *op);

/* The layer op with this name, or -1 if it is an extra. */
int dsv32_layer_tap_find(const char *op);

/* The scores tap a selection tap is made from (DSV32_SELECTION_TAPS), or -1 when `set` is not a
 * selection. */
int dsv32_layer_tap_scores_of(dsv32_layer_tap set);
/* The selection tap made from scores tap `scores`, or -1. */
int dsv32_layer_tap_selection_of(dsv32_layer_tap scores);
/* Whether picks of selection `set` at masked scores do nothing (DSV32_SELECTION_TAPS). */
bool dsv32_layer_tap_masked_picks_unused(dsv32_layer_tap set);
/* The group scores tap of a two-stage selection `set` (DSV32_GROUP_STAGES), or -1. */
int dsv32_layer_tap_group_scores_of(dsv32_layer_tap set);
/* The selection whose group stage scores tap `t` is, or -1. */
int dsv32_layer_tap_group_selection_of(dsv32_layer_tap t);

#endif
