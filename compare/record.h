/* record.h: a live model's taps over a prefill and greedy decode steps, in the recording's names
 * (docs/tap-format.md): what `dump` writes to a file, and what `compare` replays for a side that
 * ran on real tensor-parallel ranks (comm=mpi, docs/distributed.md). */
#ifndef DSV32_RECORD_H
#define DSV32_RECORD_H

#include "compare/result.h"
#include "compare/tapstore.h"
#include "core/model.h"

/* Run m on prompt [batch, prompt_len] from position 0, then decode_steps single-token steps,
 * each row's next token the argmax of its logits (dsv32_argmax_f32: lowest index on ties; the
 * rule of the compare plan, compare/plan.h). Every tap goes to store as "step{s}.{tap}", with
 * "step{s}.input_ids" (I64 [B,S]) and "step{s}.start_pos" (I64 [1]) before the step's taps.
 *   store  NULL: the taps are emitted and dropped (the ranks other than 0 of a distributed run,
 *          whose gathers of split taps are collectives every rank must join)
 *   tm     NULL, or filled with the forwards' time and tokens (load_s is the caller's; live set)
 * Errors: the forward's, the store's (DSV32_E_NOMEM). */
dsv32_status dsv32_record_run(dsv32_model *m, const int64_t *prompt, int64_t batch,
			      int64_t prompt_len, int decode_steps, dsv32_tapstore *store,
			      dsv32_side_timing *tm, dsv32_error *err);

/* The same recording with the decode tokens given instead of chosen (decode: [batch,
 * decode_steps] row-major, row b's token of decode step k at b * decode_steps + k; NULL =
 * greedy as above). layer_major (decode given and m->vt->lm_layer set only): the run goes layer
 * by layer over every step (core/model.h "Layer-major"), each layer's weights released after
 * its last step, and the store is put back in step order, so it holds the same entries, bytes
 * and order as the step-major run. */
typedef struct {
	const int64_t *prompt;
	int64_t batch, prompt_len;
	int decode_steps;
	const int64_t *decode;
	bool layer_major;
} dsv32_record_req;

dsv32_status dsv32_record_run_req(dsv32_model *m, const dsv32_record_req *q,
				  dsv32_tapstore *store, dsv32_side_timing *tm, dsv32_error *err);

/* Whether m can run layer-major (its layout implements core/model.h's lm_ entries). */
bool dsv32_model_has_layer_major(const dsv32_model *m);

/* Put the "step{s}.*" entries of a store in step order, keeping the order within each step
 * (what a step-major run produces); names without the prefix go first, in their order. */
dsv32_status dsv32_tapstore_sort_steps(dsv32_tapstore *s, dsv32_error *err);

#endif
