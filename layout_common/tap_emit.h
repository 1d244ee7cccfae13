/* tap_emit.h: the one tap emitter of both layouts (core/model.h "Taps", core/taps.h). A model
 * names each canonical tap by its id in the tap grammar, never by a string; the emitter formats
 * the name, copies the tensor to the host and calls the caller's sink, whose status it returns
 * (the model stops on the first failure).
 *
 * Canonical host form, the same for both layouts: the tensor's dtype and shape, except fp8 codes
 * (F8_E4M3), which are emitted as their F32 values. Emitting never changes numerics. Every call
 * is a no-op returning DSV32_OK without a sink (on_tap NULL).
 */
#ifndef DSV32_LAYOUT_TAP_EMIT_H
#define DSV32_LAYOUT_TAP_EMIT_H

#include "core/model.h"
#include "core/taps.h"
#include "kernels/backend.h"

/* What emitting needs of a model: the backend its tensors live on and the caller's sink. Built
 * on the fly by each layout (ref_tapper / hf_tapper), as the caller may set the sink at any time
 * between calls. */
typedef struct {
	dsv32_backend *be;
	const dsv32_tap_sink *sink;
} lc_tapper;

bool lc_taps_on(lc_tapper tp);

/* A model-level tap ("embed", "final_norm", "logits") of a device tensor. */
dsv32_status lc_tap_model(lc_tapper tp, dsv32_model_tap id, const dsv32_tensor *t,
			  dsv32_error *err);

/* "layers.{layer}.{op}" of a device tensor, in its own shape (reshape with lc_view first). */
dsv32_status lc_tap_layer(lc_tapper tp, dsv32_layer_tap id, int layer, const dsv32_tensor *t,
			  dsv32_error *err);

/* "layers.{layer}.{op}" of rows [0,B) x positions [P, P+S) of a cache [maxB, maxS, d], emitted
 * as [B, S, d]. */
dsv32_status lc_tap_layer_cache(lc_tapper tp, dsv32_layer_tap id, int layer,
				const dsv32_tensor *cache, int64_t B, int64_t S, int64_t P,
				dsv32_error *err);

/* The decision hook (core/model.h "Decisions"): offer to d (NULL or on_decision NULL: nothing
 * happens) the selection sel (a device or host I64
 * tensor, [B, S, k] as its tap) of decision `id` ("layers.{layer}.indexer.topk" or
 * "layers.{layer}.moe.experts") to the sink's on_decision, after its tap was emitted and before
 * the layout uses it. When the sink forces it, the new selection is checked (same dtype and
 * shape, ids in [0, n_ids), no id twice in a row: DSV32_E_USAGE "<tap>: forced row r ...") and
 * written back into sel, and *forced is true; the caller then recomputes what depends on the
 * ids. No on_decision (or not forced): sel is untouched and *forced false. */
dsv32_status lc_tap_decide(lc_tapper tp, const dsv32_decision_sink *d, dsv32_layer_tap id,
			   int layer, dsv32_tensor *sel, int64_t n_ids, bool *forced,
			   dsv32_error *err);

#endif
