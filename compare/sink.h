/* sink.h: what a comparison does with each tap as it arrives (runner.c drives the forwards):
 * the held side's taps are kept for the step, the streamed side's are compared with them at
 * once (tapcmp.h), checked against the budget and added to the result; both sides' taps can be
 * dumped. A failure (a tap the budget does not cover, memory) is the callback's status, which
 * ends the model's forward or the recording's replay. */
#ifndef DSV32_SINK_H
#define DSV32_SINK_H

#include "compare/runner.h"

typedef struct {
	dsv32_tapstore *held;    /* driver/a taps of this step */
	dsv32_tapstore *dump;    /* optional: every tap as step{s}.{tap} */
	dsv32_cmp_result *res;
	const dsv32_cmp_config *cfg;
	int step;
	dsv32_drift_mode mode;
	bool live_is_a;          /* the compared (streamed) side is side a */
	bool saw_logits;         /* the side emitted a "logits" tap itself */
	int only_layer;          /* local mode: compare taps of this layer only (-1: all) */
	dsv32_tapstore *streamed_sets; /* the streamed side's set taps of this step (for pairing) */
	dsv32_cmp_progress at;   /* where the run is (cfg->progress) */
	const char *watch;       /* a tap name to look out for ... */
	bool saw_watch;          /* ... and whether it was emitted */
	bool forcing;            /* the live side's decisions go to dsv32_sink_decide */
} dsv32_cmp_sink;

/* Tap callbacks (dsv32_tap_sink.on_tap, user = a dsv32_cmp_sink): keep the tap for the step,
 * or compare it with the kept one of the same name. */
dsv32_status dsv32_sink_hold(void *user, const char *name, const dsv32_tensor *t,
			     dsv32_error *err);
dsv32_status dsv32_sink_compare(void *user, const char *name, const dsv32_tensor *t,
				dsv32_error *err);

/* The decision callback of the teacher-forced pass (dsv32_decision_sink.on_decision, user = a
 * dsv32_cmp_sink, compare/force.c): each row of the live side's selection that differs as a set
 * from the held (driver's) tap of the same name is overwritten with the driver's ids (same ids
 * in another order are no flip: the live order is kept), classified (tapcmp.h) and recorded in
 * the result (dsv32_forced_row). Nothing is forced when the driver has no such tap or its shape
 * differs (the set metrics show that difference). */
dsv32_status dsv32_sink_decide(void *user, const char *name, dsv32_tensor *sel, bool *forced,
			       dsv32_error *err);

/* Drop the streamed side's scores of selection set_name (once they are no longer needed). */
void dsv32_sink_drop_scores(dsv32_cmp_sink *c, const char *set_name);

#endif
