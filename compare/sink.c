/* sink.c: the tap callbacks of a comparison (see sink.h). */
#include "compare/sink.h"

#include <stdio.h>
#include <string.h>

#include "compare/tapcmp.h"
#include "compare/tapfile.h"
#include "core/taps.h"

static bool is_logits(const char *name)
{
	return dsv32_tap_class_of(name) == DSV32_TAPC_LOGITS;
}

static void note_nonfinite(dsv32_cmp_sink *c, const dsv32_tap_result *r)
{
	if (c->res->nonfinite || r->family == DSV32_FAMILY_SET)
		return;
	if (r->dense.nan_a || r->dense.nan_b || r->dense.inf_a || r->dense.inf_b) {
		c->res->nonfinite = true;
		snprintf(c->res->nonfinite_tap, sizeof c->res->nonfinite_tap, "step %d %s (%s)",
			 c->step, r->name, r->dense.nan_a || r->dense.inf_a ? "side a" : "side b");
	}
}

/* An uncovered tap would pass unchecked: the budget is incomplete, not the run. */
static dsv32_status check_covered(const dsv32_cmp_sink *c, const dsv32_tap_result *r,
				  dsv32_error *err)
{
	if (!c->cfg->budget || dsv32_budget_covers(c->cfg->budget, r))
		return DSV32_OK;
	return DSV32_FAIL(err, DSV32_E_USAGE,
			  "the budget covers no tap %s (step %d, %s mode): add a rule for it "
			  "(docs/budgets.md)", r->name, c->step,
			  c->mode == DSV32_DRIFT_LOCAL ? "local" : "propagate");
}

/* Compare a streamed tap with the held one of the same name; a pair that does not compare is
 * a skip, not a failure. */
static dsv32_status compare_tap(dsv32_cmp_sink *c, const char *name, const dsv32_tensor *streamed,
				dsv32_error *err)
{
	dsv32_tap_entry *e = dsv32_tapstore_get(c->held, name);
	if (!e) {
		dsv32_cmp_result_skip(c->res, name, c->step, c->live_is_a ? "only in a" : "only in b");
		return DSV32_OK;
	}
	e->used = true;
	const dsv32_tensor *a = c->live_is_a ? streamed : &e->t;
	const dsv32_tensor *b = c->live_is_a ? &e->t : streamed;
	dsv32_tapcmp_peers peers = {c->held, c->live_is_a ? c->streamed_sets : c->held,
				    c->live_is_a ? c->held : c->streamed_sets};
	dsv32_tap_result r;
	char why[128];
	dsv32_tapcmp_header(&r, name, c->step, c->mode, a, b);
	if (!dsv32_tapcmp(&r, &peers, name, a, b, why, sizeof why)) {
		dsv32_cmp_result_skip(c->res, name, c->step, why);
		return DSV32_OK;
	}
	DSV32_TRY(check_covered(c, &r, err));
	dsv32_budget_apply(c->cfg->budget, &r);
	note_nonfinite(c, &r);
	if (!dsv32_cmp_result_add(c->res, &r))
		return DSV32_FAIL(err, DSV32_E_NOMEM, "storing the result of %s", name);
	return DSV32_OK;
}

static dsv32_status dump_tap(dsv32_cmp_sink *c, const char *name, const dsv32_tensor *t,
			     dsv32_error *err)
{
	if (!c->dump)
		return DSV32_OK;
	char full[192];
	dsv32_tapfile_name(full, sizeof full, c->step, name);
	return dsv32_tapstore_put(c->dump, full, t, err);
}

dsv32_status dsv32_sink_hold(void *user, const char *name, const dsv32_tensor *t,
			     dsv32_error *err)
{
	dsv32_cmp_sink *c = user;
	c->saw_logits |= is_logits(name);
	DSV32_TRY(dump_tap(c, name, t, err));
	return dsv32_tapstore_put(c->held, name, t, err);
}

/* Once a layer's selection is compared, the streamed side's scores of it are not needed: at
 * most one layer's (B·S·T floats) is kept besides the held side's. While decisions are forced
 * they are kept until the decision is (dsv32_sink_decide classifies the forced rows with them). */
void dsv32_sink_drop_scores(dsv32_cmp_sink *c, const char *set_name)
{
	char scores[96];
	if (c->streamed_sets && dsv32_tapcmp_scores_name(scores, sizeof scores, set_name))
		dsv32_tapstore_drop(c->streamed_sets, scores);
	if (c->streamed_sets && dsv32_tapcmp_group_scores_name(scores, sizeof scores, set_name))
		dsv32_tapstore_drop(c->streamed_sets, scores);
}

/* A decoder layer's output has been compared: tell the progress callback. */
static void note_layer_done(dsv32_cmp_sink *c, const char *name)
{
	int layer;
	char op[64];
	if (!c->cfg->progress)
		return;
	dsv32_tap_split_name(name, &layer, op, sizeof op);
	if (layer < 0 || strcmp(op, dsv32_layer_tap_op(DSV32_LTAP_OUT)))
		return;
	c->at.layer = layer;
	c->cfg->progress(c->cfg->progress_user, &c->at);
}

/* Local mode compares one layer's taps: a layer may emit its predecessor's output too. */
static bool outside_layer(const dsv32_cmp_sink *c, const char *name)
{
	if (c->only_layer < 0)
		return false;
	int layer;
	char op[64];
	dsv32_tap_split_name(name, &layer, op, sizeof op);
	return layer != c->only_layer;
}

dsv32_status dsv32_sink_compare(void *user, const char *name, const dsv32_tensor *t,
				dsv32_error *err)
{
	dsv32_cmp_sink *c = user;
	c->saw_logits |= is_logits(name);
	c->saw_watch |= c->watch && strcmp(name, c->watch) == 0;
	if (outside_layer(c, name))
		return DSV32_OK;
	DSV32_TRY(dump_tap(c, name, t, err));
	/* the scores a selection is made from are kept from the streamed side too, so a flip's
	 * margin can be set against how far the two sides' scores disagree (tapcmp.c) */
	if (c->streamed_sets && (dsv32_tapcmp_is_set(t) || dsv32_tapcmp_is_selection_scores(name)))
		DSV32_TRY(dsv32_tapstore_put(c->streamed_sets, name, t, err));
	if (dsv32_tap_is_input(name))
		return DSV32_OK;
	DSV32_TRY(compare_tap(c, name, t, err));
	if (!c->forcing)
		dsv32_sink_drop_scores(c, name);
	note_layer_done(c, name);
	return DSV32_OK;
}
