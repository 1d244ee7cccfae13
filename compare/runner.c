/* runner.c: the comparison passes (propagate, teacher-forced) over live models and recordings:
 * which forwards run on which input, and where their taps go. See runner.h for the semantics;
 * plan.c fixes the steps, sink.c takes each tap as it arrives, tapcmp.c measures each pair. */
#include "compare/runner.h"

#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "compare/plan.h"
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

static void list_unused(dsv32_cmp_sink *c, const char *held_side)
{
	char why[64];
	for (size_t i = 0; i < c->held->n; i++) {
		dsv32_tap_entry *e = &c->held->e[i];
		int layer;
		char op[64];
		if (e->used || dsv32_tap_is_input(e->name))
			continue;
		dsv32_tap_split_name(e->name, &layer, op, sizeof op);
		if (c->mode == DSV32_DRIFT_LOCAL && layer < 0)
			snprintf(why, sizeof why, "teacher-forced mode runs decoder layers only");
		else
			snprintf(why, sizeof why, "only in %s", held_side);
		dsv32_cmp_result_skip(c->res, e->name, c->step, why);
	}
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

/* Run every decoder layer of the live model on the driver's input to that layer. */
static dsv32_status local_layers(side_rt *live, dsv32_step_plan *p, int step, dsv32_cmp_sink *c,
				 dsv32_error *err)
{
	dsv32_model *m = live->m;
	for (int i = 0; i < (int)m->cfg.n_layers; i++) {
		char in_name[96];
		dsv32_layer_input in;
		if (!layer_input(c->held, i, &in, in_name, sizeof in_name)) {
			char what[64], why[160];
			snprintf(what, sizeof what, "layers.%d.*", i);
			snprintf(why, sizeof why, "no input to the layer: %s is not recorded", in_name);
			dsv32_cmp_result_skip(c->res, what, step, why);
			continue;
		}
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
	if (rc == DSV32_OK && (a->has_tf || b->has_tf))
		dsv32_plan_prov_recorded(out, &plan);
	if (rc == DSV32_OK && cfg->propagate)
		rc = pass_propagate(a, b, &plan, &c, err);
	if (rc == DSV32_OK && cfg->local) {
		reset_models(a, b);
		rc = pass_local(a, b, &plan, &c, err);
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
