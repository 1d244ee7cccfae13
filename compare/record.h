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

#endif
