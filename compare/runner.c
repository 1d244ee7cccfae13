/* runner.c: the comparison passes (propagate, teacher-forced) over live models and recordings:
 * which forwards run on which input, and where their taps go. See runner.h for the semantics;
 * plan.c fixes the steps, sink.c takes each tap as it arrives, tapcmp.c measures each pair. */
#include "compare/runner.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "compare/plan.h"
#include "compare/record.h"
#include "compare/sink.h"
#include "compare/tapfile.h"
#include "core/taps.h"

typedef struct {
	const dsv32_side_spec *spec;
	dsv32_side_timing *tm; /* where its time goes (the result's) */
	dsv32_model *m;
	dsv32_tapfile tf;
	bool has_tf;
} side_rt;

/* ---- sides ---- */

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static dsv32_status side_open(side_rt *s, const dsv32_side_spec *spec, const dsv32_cmp_config *cfg,
			      dsv32_side_timing *tm, dsv32_error *err)
{
	memset(s, 0, sizeof *s);
	s->spec = spec;
	s->tm = tm;
	if (spec->kind == DSV32_SIDE_TAPS) {
		DSV32_TRY(spec->mem ? dsv32_tapfile_open_store(&s->tf, spec->mem, spec->label, err)
				    : dsv32_tapfile_open(&s->tf, spec->path, err));
		s->has_tf = true;
		return DSV32_OK;
	}
	if (!cfg->open || !cfg->checkpoint)
		return DSV32_FAIL(err, DSV32_E_USAGE, "side %s needs a checkpoint", spec->label);
	double t0 = now_s();
	dsv32_status rc = cfg->open(spec->layout, cfg->checkpoint, &spec->opts, &s->m, err);
	tm->live = true;
	tm->load_s = now_s() - t0;
	if (rc != DSV32_OK)
		dsv32_error_prefix(err, "side %s", spec->label);
	return rc;
}

static void side_close(side_rt *s)
{
	if (s->m)
		s->m->vt->close(s->m);
	if (s->has_tf)
		dsv32_tapfile_close(&s->tf);
	memset(s, 0, sizeof *s);
}

typedef dsv32_status (*tap_fn)(void *, const char *, const dsv32_tensor *, dsv32_error *);

/* Feed a recorded step's taps to a callback as if a model had emitted them; the first failure
 * ends the step, as it ends a model's forward. */
static dsv32_status replay_step(const side_rt *s, int step, tap_fn fn, void *user,
				dsv32_error *err)
{
	const char *tap;
	dsv32_tensor t;
	for (size_t i = 0; dsv32_tapfile_tap_at(&s->tf, step, i, &tap, &t); i++)
		DSV32_TRY(fn(user, tap, &t, err));
	return DSV32_OK;
}

/* ---- passes ---- */

/* One forward of a live side with its taps going to fn (a failed sink ends the forward with
 * its error); the returned logits feed the greedy choice and stand in for a "logits" tap if
 * the model did not emit one. */
static dsv32_status model_step(side_rt *s, dsv32_step_plan *p, int step, tap_fn fn, dsv32_cmp_sink *c,
			       dsv32_error *err)
{
	dsv32_tensor logits = {0};
	c->saw_logits = false;
	s->m->taps = (dsv32_tap_sink){fn, c};
	double t0 = now_s();
	dsv32_status rc = s->m->vt->forward(s->m, p->tokens[step], p->batch, p->seqlen[step],
					    p->start_pos[step], &logits, err);
	double dt = now_s() - t0;
	*(step ? &s->tm->decode_s : &s->tm->prefill_s) += dt;
	*(step ? &s->tm->decode_tokens : &s->tm->prefill_tokens) += p->batch * p->seqlen[step];
	s->m->taps = (dsv32_tap_sink){0};
	if (rc == DSV32_OK && !c->saw_logits && c->mode == DSV32_DRIFT_PROPAGATE)
		rc = fn(c, dsv32_model_tap_name(DSV32_MTAP_LOGITS), &logits, err);
	if (rc == DSV32_OK)
		rc = dsv32_plan_choose_next(p, step, &logits, err);
	dsv32_tensor_free(&logits);
	if (rc != DSV32_OK)
		dsv32_error_prefix(err, "%s, step %d", s->spec->label, step);
	return rc;
}

static dsv32_status fill_side(side_rt *s, dsv32_step_plan *p, int step, tap_fn fn, dsv32_cmp_sink *c,
			      dsv32_error *err)
{
	if (s->m)
		return model_step(s, p, step, fn, c, err);
	return replay_step(s, step, fn, c, err);
}

/* The held taps nobody compared, as skips added to `to`; keep(name) true leaves a tap out
 * (layer-major: not retired yet). */
static void unused_to(dsv32_cmp_sink *c, dsv32_cmp_result *to, const char *held_side,
		      bool (*keep)(const char *name, const void *arg), const void *arg)
{
	char why[64];
	for (size_t i = 0; i < c->held->n; i++) {
		dsv32_tap_entry *e = &c->held->e[i];
		int layer;
		char op[64];
		if (e->used || dsv32_tap_is_input(e->name) || (keep && keep(e->name, arg)))
			continue;
		dsv32_tap_split_name(e->name, &layer, op, sizeof op);
		if (c->mode == DSV32_DRIFT_LOCAL && layer < 0)
			snprintf(why, sizeof why, "teacher-forced mode runs decoder layers only");
		else
			snprintf(why, sizeof why, "only in %s", held_side);
		dsv32_cmp_result_skip(to, e->name, c->step, why);
	}
}

static void list_unused(dsv32_cmp_sink *c, const char *held_side)
{
	unused_to(c, c->res, held_side, NULL, NULL);
}

/* A step of a pass begins. */
static void progress(dsv32_cmp_sink *c, int step, int n_steps, const char *pass)
{
	c->at.pass = pass;
	c->at.pass_index = c->cfg->propagate && !strcmp(pass, "teacher-forced") ? 1 : 0;
	c->at.n_passes = c->cfg->propagate + c->cfg->local;
	c->at.step = step;
	c->at.n_steps = n_steps;
	c->at.layer = -1;
	c->at.layer_major = false;
	if (c->cfg->progress)
		c->cfg->progress(c->cfg->progress_user, &c->at);
}

/* A step begins with nothing held. */
static void begin_step(dsv32_cmp_sink *c, int step)
{
	dsv32_tapstore_clear(c->held);
	dsv32_tapstore_clear(c->streamed_sets);
	c->step = step;
}

static dsv32_status pass_propagate(side_rt *a, side_rt *b, dsv32_step_plan *p, dsv32_cmp_sink *c,
				   dsv32_error *err)
{
	c->mode = DSV32_DRIFT_PROPAGATE;
	for (int s = 0; s < p->n_steps; s++) {
		progress(c, s, p->n_steps, "propagate");
		begin_step(c, s);
		c->live_is_a = false;
		c->dump = c->cfg->dump_a;
		DSV32_TRY(fill_side(a, p, s, dsv32_sink_hold, c, err));
		c->dump = c->cfg->dump_b;
		DSV32_TRY(fill_side(b, p, s, dsv32_sink_compare, c, err));
		list_unused(c, "a");
	}
	return DSV32_OK;
}

/* The driver's input to layer i: the residual stream entering it, plus the un-added pair the
 * reference's fused norm needs (core/model.h dsv32_layer_input), when recorded. */
static bool layer_input(dsv32_tapstore *held, int i, dsv32_layer_input *in, char *in_name,
			size_t len)
{
	char bname[96], rname[96];
	dsv32_tap_entry *br = NULL, *res = NULL;
	if (i == 0) {
		snprintf(in_name, len, "%s", dsv32_model_tap_name(DSV32_MTAP_EMBED));
		br = dsv32_tapstore_get(held, in_name);
	} else {
		dsv32_layer_tap_name(in_name, len, i - 1, DSV32_LTAP_OUT);
		br = dsv32_tapstore_get(held, dsv32_layer_tap_name(bname, sizeof bname, i - 1,
								    DSV32_LTAP_FFN_OUT));
		res = dsv32_tapstore_get(held, dsv32_layer_tap_name(rname, sizeof rname, i - 1,
								     DSV32_LTAP_ATTN_RESIDUAL));
	}
	dsv32_tap_entry *h = dsv32_tapstore_get(held, in_name);
	in->hidden = h ? &h->t : NULL;
	in->branch = br && (i == 0 || res) ? &br->t : NULL;
	in->residual = res && br ? &res->t : NULL;
	return in->hidden != NULL;
}

/* Layer i of the live model on input `in`, its taps compared as they come. The layer's
 * output is a canonical tap even where a layout only forms it inside the next layer's fused
 * norm: compared from the returned output when the layer did not emit it. */
static dsv32_status local_layer(dsv32_model *m, int i, const dsv32_layer_input *in,
				int64_t start_pos, dsv32_cmp_sink *c, dsv32_error *err)
{
	char out_name[96];
	dsv32_tensor out = {0};
	dsv32_layer_tap_name(out_name, sizeof out_name, i, DSV32_LTAP_OUT);
	c->watch = out_name;
	c->saw_watch = false;
	c->only_layer = i;
	m->taps = (dsv32_tap_sink){dsv32_sink_compare, c};
	m->decide = (dsv32_decision_sink){c->forcing ? dsv32_sink_decide : NULL, c};
	dsv32_status rc = m->vt->layer_forward(m, i, in, start_pos, &out, err);
	m->taps = (dsv32_tap_sink){0};
	m->decide = (dsv32_decision_sink){0};
	if (rc == DSV32_OK && !c->saw_watch && out.data)
		rc = dsv32_sink_compare(c, out_name, &out, err);
	c->watch = NULL;
	c->only_layer = -1;
	dsv32_tensor_free(&out);
	return rc;
}

/* The driver's input to layer i at this step, from the held taps; false (the layer's taps then
 * recorded as skipped, with the missing tap named) when it was not recorded. */
static bool held_layer_input(dsv32_cmp_sink *c, int i, int step, dsv32_layer_input *in)
{
	char in_name[96], what[64], why[160];
	if (layer_input(c->held, i, in, in_name, sizeof in_name))
		return true;
	snprintf(what, sizeof what, "layers.%d.*", i);
	snprintf(why, sizeof why, "no input to the layer: %s is not recorded", in_name);
	dsv32_cmp_result_skip(c->res, what, step, why);
	return false;
}

/* Run every decoder layer of the live model on the driver's input to that layer. */
static dsv32_status local_layers(side_rt *live, dsv32_step_plan *p, int step, dsv32_cmp_sink *c,
				 dsv32_error *err)
{
	dsv32_model *m = live->m;
	for (int i = 0; i < (int)m->cfg.n_layers; i++) {
		dsv32_layer_input in;
		if (!held_layer_input(c, i, step, &in))
			continue;
		if (local_layer(m, i, &in, p->start_pos[step], c, err) != DSV32_OK)
			return dsv32_error_prefix(err, "%s, step %d, layer %d (teacher-forced)",
						  live->spec->label, step, i);
	}
	return DSV32_OK;
}

static dsv32_status pass_local(side_rt *a, side_rt *b, dsv32_step_plan *p, dsv32_cmp_sink *c,
			       dsv32_error *err)
{
	side_rt *driver = (a->m && !b->m) ? b : a;
	side_rt *live = driver == a ? b : a;
	if (!live->m)
		return DSV32_FAIL(err, DSV32_E_USAGE,
				  "teacher-forced mode needs a live model on one side (both are recordings)");
	c->mode = DSV32_DRIFT_LOCAL;
	c->live_is_a = live == a;
	c->forcing = !c->cfg->keep_decisions;
	dsv32_cmp_result_prov(c->res, "force_decisions", c->forcing ? "on" : "off");
	/* the dump holds one pass: the propagate one when both run, else this one (the driver's
	 * taps and the live side's teacher-forced layer taps) */
	bool dump = !c->cfg->propagate;
	dsv32_tapstore *dump_driver = driver == a ? c->cfg->dump_a : c->cfg->dump_b;
	dsv32_tapstore *dump_live = driver == a ? c->cfg->dump_b : c->cfg->dump_a;
	for (int s = 0; s < p->n_steps; s++) {
		progress(c, s, p->n_steps, "teacher-forced");
		begin_step(c, s);
		c->dump = dump ? dump_driver : NULL;
		DSV32_TRY(fill_side(driver, p, s, dsv32_sink_hold, c, err));
		c->dump = dump ? dump_live : NULL;
		DSV32_TRY(local_layers(live, p, s, c, err));
		c->dump = NULL;
		list_unused(c, driver == a ? "a" : "b");
	}
	c->forcing = false;
	return DSV32_OK;
}

/* ---- layer-major passes (core/model.h "Layer-major"; issue 19) ----
 * Each side runs one unit at a time over every step: -1 the embedding, 0..n-1 the decoder
 * layers, n the final norm and head; a live side releases a unit's weights after its last
 * step. The held (driver / a) side runs one unit ahead of the compared side, because a
 * layout may emit a layer's output only inside the next layer (ref's fused norm). Each step
 * keeps its own held and streamed stores; what no later unit can ask for is retired (its
 * unused taps become the step's skips at its end, as list_unused would say them). The result
 * is then put back in step order (dsv32_cmp_result_sort_steps), so it equals the step-major
 * pass's, entry for entry. */

typedef struct {
	int n_steps, n;       /* steps, decoder layers */
	dsv32_tapstore *held; /* [n_steps]: the held side's taps of each step */
	dsv32_tapstore *streamed;
	dsv32_cmp_result *pend; /* [n_steps]: skips of retired taps, added at the step's end */
	size_t taps0, skips0, forced0; /* the result's sizes when the pass began */
} lm_ctx;

typedef struct {
	bool prop, local; /* which passes run layer-major */
} lm_order;

/* The unit a tap belongs to: -1 before the layers (embed, inputs), its layer, or n (head). */
static int tap_unit(const char *name, int n)
{
	int layer;
	char op[64];
	dsv32_tap_split_name(name, &layer, op, sizeof op);
	if (layer >= 0)
		return layer;
	bool pre = dsv32_tap_is_input(name) || !strcmp(name, dsv32_model_tap_name(DSV32_MTAP_EMBED));
	return pre ? -1 : n;
}

static void lm_at(dsv32_cmp_sink *c, lm_ctx *x, int s)
{
	c->held = &x->held[s];
	c->streamed_sets = &x->streamed[s];
	c->step = s;
}

/* A recording's taps of one unit of a step, replayed as the model would emit them. */
static dsv32_status replay_unit(const side_rt *sd, int step, int unit, int n, tap_fn fn,
				void *user, dsv32_error *err)
{
	const char *tap;
	dsv32_tensor t;
	for (size_t i = 0; dsv32_tapfile_tap_at(&sd->tf, step, i, &tap, &t); i++)
		if (tap_unit(tap, n) == unit)
			DSV32_TRY(fn(user, tap, &t, err));
	return DSV32_OK;
}

/* One unit of one step of a live side (model_step's counterpart). */
static dsv32_status model_unit(side_rt *sd, dsv32_step_plan *p, int unit, int s, int n,
			       tap_fn fn, dsv32_cmp_sink *c, dsv32_error *err)
{
	dsv32_model *m = sd->m;
	dsv32_tensor logits = {0};
	dsv32_status rc;
	c->saw_logits = false;
	m->taps = (dsv32_tap_sink){fn, c};
	double t0 = now_s();
	if (unit < 0)
		rc = m->vt->lm_embed(m, s, p->tokens[s], p->batch, p->seqlen[s], p->start_pos[s], err);
	else if (unit < n)
		rc = m->vt->lm_layer(m, unit, s, err);
	else
		rc = m->vt->lm_head(m, s, &logits, err);
	*(s ? &sd->tm->decode_s : &sd->tm->prefill_s) += now_s() - t0;
	if (unit < 0)
		*(s ? &sd->tm->decode_tokens : &sd->tm->prefill_tokens) += p->batch * p->seqlen[s];
	m->taps = (dsv32_tap_sink){0};
	if (rc == DSV32_OK && unit == n && !c->saw_logits && c->mode == DSV32_DRIFT_PROPAGATE)
		rc = fn(c, dsv32_model_tap_name(DSV32_MTAP_LOGITS), &logits, err);
	dsv32_tensor_free(&logits);
	if (rc != DSV32_OK)
		dsv32_error_prefix(err, "%s, step %d, %s %d (layer-major)", sd->spec->label, s,
				   unit < 0 ? "embedding" : unit < n ? "layer" : "head", unit);
	return rc;
}

/* The progress line as the compared side's unit of step s begins (the layers before it done). */
static void lm_progress(dsv32_cmp_sink *c, int unit, int n, const char *pass, int s,
			int n_steps)
{
	progress(c, s, n_steps, pass);
	c->at.layer = (unit < n ? unit : n) - 1;
	c->at.layer_major = true;
	if (c->cfg->progress && unit >= 0)
		c->cfg->progress(c->cfg->progress_user, &c->at);
}

/* One unit of a side over every step, then (live) its release. */
static dsv32_status lm_units(side_rt *sd, dsv32_step_plan *p, int unit, tap_fn fn,
			     dsv32_cmp_sink *c, lm_ctx *x, dsv32_tapstore *dump, dsv32_error *err)
{
	dsv32_status rc = DSV32_OK;
	for (int s = 0; s < x->n_steps && rc == DSV32_OK; s++) {
		lm_at(c, x, s);
		c->dump = dump;
		if (fn == dsv32_sink_compare)
			lm_progress(c, unit, x->n, "propagate", s, x->n_steps);
		rc = sd->m ? model_unit(sd, p, unit, s, x->n, fn, c, err)
			   : replay_unit(sd, s, unit, x->n, fn, c, err);
	}
	c->dump = NULL;
	if (sd->m && unit < x->n)
		sd->m->vt->lm_release(sd->m, unit);
	return rc;
}

/* The teacher-forced layer L of the live side over every step (local_layers' body). */
static dsv32_status lm_local_units(side_rt *live, dsv32_step_plan *p, int L, dsv32_cmp_sink *c,
				   lm_ctx *x, dsv32_tapstore *dump, dsv32_error *err)
{
	for (int s = 0; s < x->n_steps; s++) {
		dsv32_layer_input in;
		lm_at(c, x, s);
		if (!held_layer_input(c, L, s, &in))
			continue;
		c->dump = dump;
		lm_progress(c, L, x->n, "teacher-forced", s, x->n_steps);
		dsv32_status rc = local_layer(live->m, L, &in, p->start_pos[s], c, err);
		c->dump = NULL;
		if (rc != DSV32_OK)
			return dsv32_error_prefix(err, "%s, step %d, layer %d (teacher-forced, "
						  "layer-major)", live->spec->label, s, L);
	}
	live->m->vt->lm_release(live->m, L);
	return DSV32_OK;
}

typedef struct {
	int max, n;
} unit_cut;

static bool after_cut(const char *name, const void *arg)
{
	const unit_cut *k = arg;
	return tap_unit(name, k->n) > k->max;
}

/* Drop every step's held and streamed taps of units <= max: no later unit asks for them. The
 * unused held ones become skips, added at the step's end. */
static void lm_retire(dsv32_cmp_sink *c, lm_ctx *x, int max, const char *held_side)
{
	unit_cut k = {max, x->n};
	for (int s = 0; s < x->n_steps; s++) {
		lm_at(c, x, s);
		unused_to(c, &x->pend[s], held_side, after_cut, &k);
		dsv32_tapstore *st[2] = {c->held, c->streamed_sets};
		for (int j = 0; j < 2; j++)
			for (size_t i = st[j]->n; i-- > 0;)
				if (tap_unit(st[j]->e[i].name, x->n) <= max)
					dsv32_tapstore_drop(st[j], st[j]->e[i].name);
	}
}

/* The steps' ends: the retired skips, then what is left unused, as list_unused at a step's
 * end; then the whole pass in step order. */
static dsv32_status lm_finish(dsv32_cmp_sink *c, lm_ctx *x, const char *held_side,
			      dsv32_error *err)
{
	for (int s = 0; s < x->n_steps; s++) {
		lm_at(c, x, s);
		for (size_t i = 0; i < x->pend[s].n_skips; i++)
			dsv32_cmp_result_skip(c->res, x->pend[s].skips[i].name, s,
					      x->pend[s].skips[i].reason);
		list_unused(c, held_side);
	}
	if (!dsv32_cmp_result_sort_steps(c->res, x->taps0, x->skips0, x->forced0))
		return DSV32_FAIL(err, DSV32_E_NOMEM, "putting the layer-major results in step order");
	return DSV32_OK;
}

static void lm_ctx_free(lm_ctx *x)
{
	for (int s = 0; s < x->n_steps; s++) {
		if (x->held)
			dsv32_tapstore_free(&x->held[s]);
		if (x->streamed)
			dsv32_tapstore_free(&x->streamed[s]);
		if (x->pend)
			dsv32_cmp_result_free(&x->pend[s]);
	}
	free(x->held);
	free(x->streamed);
	free(x->pend);
}

static dsv32_status lm_ctx_init(lm_ctx *x, int n_steps, int n, const dsv32_cmp_result *r,
				dsv32_error *err)
{
	*x = (lm_ctx){.n_steps = n_steps, .n = n, .taps0 = r->n_taps, .skips0 = r->n_skips,
		      .forced0 = r->n_forced};
	x->held = calloc((size_t)n_steps, sizeof *x->held);
	x->streamed = calloc((size_t)n_steps, sizeof *x->streamed);
	x->pend = calloc((size_t)n_steps, sizeof *x->pend);
	if (!x->held || !x->streamed || !x->pend) {
		lm_ctx_free(x);
		x->n_steps = 0;
		return DSV32_FAIL(err, DSV32_E_NOMEM, "layer-major: %d steps", n_steps);
	}
	for (int s = 0; s < n_steps; s++) {
		dsv32_tapstore_init(&x->held[s]);
		dsv32_tapstore_init(&x->streamed[s]);
		dsv32_cmp_result_init(&x->pend[s]);
	}
	return DSV32_OK;
}

/* The units of a pass: the held side one unit ahead of the compared one. */
static dsv32_status lm_schedule(side_rt *held, side_rt *cmp, dsv32_step_plan *p,
				dsv32_cmp_sink *c, lm_ctx *x, bool local, dsv32_tapstore *dump_held,
				dsv32_tapstore *dump_cmp, const char *held_side, dsv32_error *err)
{
	for (int u = -1; u <= x->n + 1; u++) {
		if (u <= x->n)
			DSV32_TRY(lm_units(held, p, u, dsv32_sink_hold, c, x, dump_held, err));
		int v = u - 1; /* the compared side's unit */
		if (!local && v >= -1)
			DSV32_TRY(lm_units(cmp, p, v, dsv32_sink_compare, c, x, dump_cmp, err));
		if (local && v >= 0 && v < x->n)
			DSV32_TRY(lm_local_units(cmp, p, v, c, x, dump_cmp, err));
		if (u - 2 >= -1 && u - 2 < x->n)
			lm_retire(c, x, u - 2, held_side);
	}
	return lm_finish(c, x, held_side, err);
}

static void lm_end(side_rt *a, side_rt *b)
{
	if (a->m)
		a->m->vt->lm_end(a->m);
	if (b->m)
		b->m->vt->lm_end(b->m);
}

/* A pass (propagate, or teacher-forced when local) in layer-major order. */
static dsv32_status lm_pass(side_rt *a, side_rt *b, dsv32_step_plan *p, dsv32_cmp_sink *c,
			    bool local, dsv32_error *err)
{
	side_rt *held = a, *cmp = b;
	if (local) { /* pass_local's roles */
		held = (a->m && !b->m) ? b : a;
		cmp = held == a ? b : a;
		c->forcing = !c->cfg->keep_decisions;
		dsv32_cmp_result_prov(c->res, "force_decisions", c->forcing ? "on" : "off");
	}
	c->mode = local ? DSV32_DRIFT_LOCAL : DSV32_DRIFT_PROPAGATE;
	c->live_is_a = cmp == a;
	bool dump = !local || !c->cfg->propagate; /* pass_local: the dump holds one pass */
	dsv32_tapstore *dh = !dump ? NULL : held == a ? c->cfg->dump_a : c->cfg->dump_b;
	dsv32_tapstore *dc = !dump ? NULL : held == a ? c->cfg->dump_b : c->cfg->dump_a;
	int n = (int)(a->m ? a->m : b->m)->cfg.n_layers;
	lm_ctx x;
	dsv32_tapstore *keep_held = c->held, *keep_streamed = c->streamed_sets;
	DSV32_TRY(lm_ctx_init(&x, p->n_steps, n, c->res, err));
	dsv32_status rc = DSV32_OK;
	if (a->m)
		rc = a->m->vt->lm_begin(a->m, p->n_steps, err);
	if (rc == DSV32_OK && b->m)
		rc = b->m->vt->lm_begin(b->m, p->n_steps, err);
	if (rc == DSV32_OK)
		rc = lm_schedule(held, cmp, p, c, &x, local, dh, dc, held == a ? "a" : "b", err);
	lm_end(a, b);
	c->held = keep_held;
	c->streamed_sets = keep_streamed;
	c->forcing = false;
	lm_ctx_free(&x);
	for (int i = 0; rc == DSV32_OK && i < 2; i++) { /* the dumps in step order, as step-major */
		dsv32_tapstore *d = i ? c->cfg->dump_b : c->cfg->dump_a;
		if (dump && d)
			rc = dsv32_tapstore_sort_steps(d, err);
	}
	return rc;
}

/* Which passes run layer-major (runner.h "order"), and the provenance "order" saying so. */
static dsv32_status pick_order(side_rt *a, side_rt *b, const dsv32_cmp_config *cfg,
			       lm_order *o, dsv32_cmp_result *out, dsv32_error *err)
{
	const char *no = NULL;
	bool rec = a->has_tf || b->has_tf;
	*o = (lm_order){0};
	if ((a->m && !dsv32_model_has_layer_major(a->m)) || (b->m && !dsv32_model_has_layer_major(b->m)))
		no = "a live side's layout has no layer-major execution";
	else if (a->m && b->m && a->m->cfg.n_layers != b->m->cfg.n_layers)
		no = "the live sides run different numbers of layers";
	else if (!a->m && !b->m)
		no = "both sides are recordings";
	bool known = rec || cfg->decode || cfg->decode_steps == 0;
	const char *prop_no = no ? no : known ? NULL
		: "free-running propagate: each decode step's tokens come from side a's logits of the "
		  "step before (give them with --decode-tokens)";
	/* the teacher-forced pass after a propagate pass knows its tokens (that pass chose them) */
	const char *local_no = no ? no : (known || cfg->propagate) ? NULL
		: "the driver's decode tokens come from its logits, step by step (give them with "
		  "--decode-tokens)";
	bool want = cfg->order != DSV32_ORDER_STEP;
	o->prop = cfg->propagate && want && !prop_no;
	o->local = cfg->local && want && !local_no;
	const char *why = cfg->propagate && prop_no ? prop_no : cfg->local && local_no ? local_no : NULL;
	if (cfg->order == DSV32_ORDER_LAYER && why)
		return DSV32_FAIL(err, DSV32_E_USAGE, "--order layer: %s", why);
	char buf[320];
	bool all = (!cfg->propagate || o->prop) && (!cfg->local || o->local);
	bool none = !o->prop && !o->local;
	if (all)
		snprintf(buf, sizeof buf, "layer");
	else if (none)
		snprintf(buf, sizeof buf, "step (%s)", cfg->order == DSV32_ORDER_STEP ? "--order step" : why);
	else
		snprintf(buf, sizeof buf, "propagate: step (%s); teacher-forced: layer", why);
	dsv32_cmp_result_prov(out, "order", buf);
	return DSV32_OK;
}

static void reset_models(side_rt *a, side_rt *b)
{
	if (a->m)
		a->m->vt->reset(a->m);
	if (b->m)
		b->m->vt->reset(b->m);
}

/* The passes over two open sides, with the step plan and the stores they need. */
static dsv32_status run_passes(side_rt *a, side_rt *b, const dsv32_cmp_config *cfg,
			       dsv32_cmp_result *out, dsv32_error *err)
{
	dsv32_step_plan plan;
	dsv32_tapstore held, streamed;
	dsv32_tapstore_init(&held);
	dsv32_tapstore_init(&streamed);
	dsv32_cmp_sink c = {.held = &held, .res = out, .cfg = cfg, .only_layer = -1,
		      .streamed_sets = &streamed};
	c.at.n_layers = a->m ? (int)a->m->cfg.n_layers : b->m ? (int)b->m->cfg.n_layers : 0;
	dsv32_status rc = dsv32_plan_make(&plan, a->has_tf ? &a->tf : NULL,
					  b->has_tf ? &b->tf : NULL, cfg->prompt, cfg->batch,
					  cfg->prompt_len, cfg->decode_steps, err);
	if (rc == DSV32_OK && cfg->decode && !a->has_tf && !b->has_tf)
		rc = dsv32_plan_set_decode(&plan, cfg->decode, err);
	if (rc == DSV32_OK && (a->has_tf || b->has_tf))
		dsv32_plan_prov_recorded(out, &plan);
	lm_order ord;
	if (rc == DSV32_OK)
		rc = pick_order(a, b, cfg, &ord, out, err);
	if (rc == DSV32_OK && cfg->propagate)
		rc = ord.prop ? lm_pass(a, b, &plan, &c, false, err) : pass_propagate(a, b, &plan, &c, err);
	if (rc == DSV32_OK && cfg->local) {
		reset_models(a, b);
		rc = ord.local ? lm_pass(a, b, &plan, &c, true, err) : pass_local(a, b, &plan, &c, err);
	}
	dsv32_plan_free(&plan);
	dsv32_tapstore_free(&held);
	dsv32_tapstore_free(&streamed);
	return rc;
}

dsv32_status dsv32_cmp_run(const dsv32_cmp_config *cfg, const dsv32_side_spec *sa,
			   const dsv32_side_spec *sb, dsv32_cmp_result *out, dsv32_error *err)
{
	dsv32_cmp_result_init(out);
	snprintf(out->side_a, sizeof out->side_a, "%s", sa->label);
	snprintf(out->side_b, sizeof out->side_b, "%s", sb->label);
	snprintf(out->mode, sizeof out->mode, "%s",
		 cfg->propagate && cfg->local ? "both" : cfg->local ? "teacher-forced" : "propagate");
	if (!cfg->propagate && !cfg->local)
		return DSV32_FAIL(err, DSV32_E_USAGE, "no comparison mode selected");
	side_rt a, b;
	double t0 = now_s();
	DSV32_TRY(side_open(&a, sa, cfg, &out->timing[0], err));
	dsv32_status rc = side_open(&b, sb, cfg, &out->timing[1], err);
	if (rc == DSV32_OK)
		rc = run_passes(&a, &b, cfg, out, err);
	if (rc == DSV32_OK && out->n_taps == 0) /* nothing checked is not a PASS */
		rc = DSV32_FAIL(err, DSV32_E_USAGE,
				"no tap was compared (%zu skipped; first: %s, %s): the sides share "
				"no comparable tap", out->n_skips,
				out->n_skips ? out->skips[0].name : "-",
				out->n_skips ? out->skips[0].reason : "no taps");
	side_close(&b);
	side_close(&a);
	struct rusage ru;
	out->wall_s = now_s() - t0;
	out->peak_rss_mb = getrusage(RUSAGE_SELF, &ru) == 0 ? (double)ru.ru_maxrss / 1024.0 : 0;
	return rc;
}
