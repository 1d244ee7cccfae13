/* plan.h: the step plan of a comparison run: for each step (0 = prefill, then decode steps) the
 * tokens both sides are fed and their positions. A recording fixes them; with two live sides
 * the prompt is step 0 and each decode step's tokens are chosen greedily from side a's logits
 * of the step before, as the run goes (runner.h). */
#ifndef DSV32_PLAN_H
#define DSV32_PLAN_H

#include "compare/result.h"
#include "compare/tapfile.h"
#include "core/error.h"

typedef struct {
	int n_steps;
	int64_t batch;
	int64_t *seqlen;    /* per step */
	int64_t *start_pos; /* per step */
	int64_t **tokens;   /* per step: [batch, seqlen] (NULL until chosen for greedy steps) */
} dsv32_step_plan;

/* The plan of a run: from the recording when a side is one (both recordings must agree:
 * batch, steps and every step's input_ids), else the prompt (prompt [batch, prompt_len]) and
 * decode_steps greedy steps. ta, tb: the sides' recordings or NULL. */
dsv32_status dsv32_plan_make(dsv32_step_plan *p, const dsv32_tapfile *ta, const dsv32_tapfile *tb,
			     const int64_t *prompt, int64_t batch, int64_t prompt_len,
			     int decode_steps, dsv32_error *err);
void dsv32_plan_free(dsv32_step_plan *p);
/* Given decode tokens ([batch, steps] row-major, steps = n_steps - 1) fix every decode step's
 * tokens of a live plan before the run. */
dsv32_status dsv32_plan_set_decode(dsv32_step_plan *p, const int64_t *decode, dsv32_error *err);

/* Greedy choice of the next step's tokens from fp32 logits [B, V] (lowest index on ties); a
 * no-op at the last step or when the next step's tokens are fixed already. */
dsv32_status dsv32_plan_choose_next(dsv32_step_plan *p, int step, const dsv32_tensor *logits,
				    dsv32_error *err);

/* A recording's prompt and steps as provenance, stated as a live run's ("5,17;1,2"), so
 * `report check` can tell runs of different prompts apart. */
void dsv32_plan_prov_recorded(dsv32_cmp_result *out, const dsv32_step_plan *p);

#endif
