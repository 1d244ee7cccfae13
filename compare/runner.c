/* runner.c: the comparison passes (propagate, teacher-forced) over live models and recordings.
 * See runner.h for the semantics. */
#include "compare/runner.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compare/tapfile.h"

typedef struct {
	const dsv32_side_spec *spec;
	dsv32_model *m;
	dsv32_tapfile tf;
	bool has_tf;
} side_rt;

typedef struct {
	int n_steps;
	int64_t batch;
	int64_t *seqlen;    /* per step */
	int64_t *start_pos; /* per step */
	int64_t **tokens;   /* per step: [batch, seqlen] (NULL until chosen for greedy steps) */
} step_plan;

/* The sink state shared by both sides' tap callbacks. */
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
	const char *watch;       /* a tap name to look out for ... */
	bool saw_watch;          /* ... and whether it was emitted */
	dsv32_status rc;         /* first failure inside a callback */
	dsv32_error err;
} sink_ctx;

static bool is_input_tap(const char *name)
{
	return !strcmp(name, "input_ids") || !strcmp(name, "start_pos") ||
	       !strcmp(name, "position_ids");
}

/* Taps that hold additively masked scores (-inf / finfo.min outside the allowed set). */
static bool is_masked_scores(const char *name)
{
	size_t n = strlen(name);
	return n >= 7 && strcmp(name + n - 7, ".scores") == 0;
}

static bool is_set_tap(const dsv32_tensor *t)
{
	return t->dtype == DSV32_I64 || t->dtype == DSV32_I32;
}

static void fill_header(dsv32_tap_result *r, const char *name, const dsv32_tensor *a,
			const dsv32_tensor *b, const sink_ctx *c)
{
	memset(r, 0, sizeof *r);
	snprintf(r->name, sizeof r->name, "%s", name);
	dsv32_tap_split_name(name, &r->layer, r->op, sizeof r->op);
	r->step = c->step;
	r->mode = c->mode;
	snprintf(r->dtype_a, sizeof r->dtype_a, "%s", dsv32_dtype_name(a->dtype));
	snprintf(r->dtype_b, sizeof r->dtype_b, "%s", dsv32_dtype_name(b->dtype));
	r->ndim = b->ndim;
	for (int i = 0; i < b->ndim; i++)
		r->shape[i] = b->shape[i];
}

/* Scores the selection was made from, for the tie-tolerant set check (side a's, if recorded). */
static const dsv32_tensor *set_scores(sink_ctx *c, const char *name, int64_t rows)
{
	char sname[128];
	size_t n = strlen(name);
	if (n < 5 || strcmp(name + n - 5, ".topk") != 0)
		return NULL;
	snprintf(sname, sizeof sname, "%.*s.scores", (int)(n - 5), name);
	dsv32_tap_entry *e = dsv32_tapstore_get(c->held, sname);
	if (!e || e->t.dtype != DSV32_F32 || e->t.ndim < 1 ||
	    dsv32_tensor_numel(&e->t) % rows != 0)
		return NULL;
	return &e->t;
}

/* Copy of a row's picks without the ones whose score is masked (-inf / finfo.min): a row with
 * fewer visible keys than k picks masked positions arbitrarily, and the mask removes them. */
static int64_t visible_picks(int64_t *out, const int64_t *row, int64_t k, const float *scores,
			     int64_t n_cols)
{
	int64_t n = 0;
	for (int64_t i = 0; i < k; i++) {
		int64_t j = row[i];
		if (scores && j >= 0 && j < n_cols && scores[j] <= -1e37f)
			continue;
		out[n++] = j;
	}
	return n;
}

/* Set metrics over the visible picks of each row (all picks when no scores are recorded). */
static bool sets_visible(dsv32_set_metrics *m, const int64_t *a, int64_t ka, const int64_t *b,
			 int64_t kb, int64_t rows, const float *scores, int64_t n_cols)
{
	if (!scores)
		return dsv32_metrics_sets(m, a, ka, b, kb, rows, NULL, 0);
	int64_t k = ka > kb ? ka : kb;
	int64_t *ra = malloc((size_t)k * sizeof *ra), *rb = malloc((size_t)k * sizeof *rb);
	dsv32_set_metrics acc = {.rows = rows, .first_diff_row = -1};
	bool ok = ra && rb;
	double rec = 0, jac = 0;
	for (int64_t r = 0; ok && r < rows; r++) {
		const float *sc = scores + r * n_cols;
		int64_t na = visible_picks(ra, a + r * ka, ka, sc, n_cols);
		int64_t nb = visible_picks(rb, b + r * kb, kb, sc, n_cols);
		dsv32_set_metrics one;
		/* a row at a time: sizes may differ per row once masked picks are dropped */
		ok = dsv32_metrics_sets(&one, ra, na, rb, nb, 1, sc, n_cols);
		rec += one.recall;
		jac += one.jaccard;
		acc.rows_equal += one.rows_equal;
		acc.rows_tie_equal += one.rows_tie_equal;
		if (one.rows_equal == 0 && acc.first_diff_row < 0)
			acc.first_diff_row = r;
	}
	acc.recall = rows ? rec / (double)rows : 1.0;
	acc.jaccard = rows ? jac / (double)rows : 1.0;
	*m = acc;
	free(ra);
	free(rb);
	return ok;
}

static bool compare_sets(dsv32_tap_result *r, sink_ctx *c, const char *name, const dsv32_tensor *a,
			 const dsv32_tensor *b)
{
	if (a->dtype != DSV32_I64 || b->dtype != DSV32_I64 || a->ndim < 1 || b->ndim < 1)
		return false;
	int64_t ka = a->shape[a->ndim - 1], kb = b->shape[b->ndim - 1];
	int64_t rows = ka ? dsv32_tensor_numel(a) / ka : 0;
	if (!kb || rows != dsv32_tensor_numel(b) / kb)
		return false;
	const dsv32_tensor *sc = set_scores(c, name, rows);
	r->kind = DSV32_TAP_SET;
	return sets_visible(&r->set, a->data, ka, b->data, kb, rows, sc ? sc->data : NULL,
			    sc ? dsv32_tensor_numel(sc) / rows : 0);
}

/* Logits may come as [B,V] (last position) on one side and [B,S,V] on the other: compare the
 * last position. Returns the row pointer offsets through *off_a / *off_b. */
static bool logits_align(const dsv32_tensor *a, const dsv32_tensor *b, int64_t *rows, int64_t *V,
			 int64_t *S_a, int64_t *S_b)
{
	*V = a->shape[a->ndim - 1];
	if (b->shape[b->ndim - 1] != *V || a->ndim < 2 || b->ndim < 2)
		return false;
	*rows = a->shape[0];
	if (b->shape[0] != *rows)
		return false;
	*S_a = a->ndim == 3 ? a->shape[1] : 1;
	*S_b = b->ndim == 3 ? b->shape[1] : 1;
	return true;
}

static bool compare_logits(dsv32_tap_result *r, const dsv32_tensor *a, const dsv32_tensor *b)
{
	int64_t rows, V, Sa, Sb;
	if (!logits_align(a, b, &rows, &V, &Sa, &Sb))
		return false;
	size_t ia = dsv32_dtype_size(a->dtype), ib = dsv32_dtype_size(b->dtype);
	/* gather the last position of each row into contiguous buffers when S > 1 */
	char *pa = a->data, *pb = b->data, *ga = NULL, *gb = NULL;
	if (Sa > 1 || Sb > 1) {
		ga = malloc((size_t)(rows * V) * ia);
		gb = malloc((size_t)(rows * V) * ib);
		if (!ga || !gb) {
			free(ga);
			free(gb);
			return false;
		}
		for (int64_t i = 0; i < rows; i++) {
			memcpy(ga + (size_t)(i * V) * ia, pa + (size_t)((i * Sa + Sa - 1) * V) * ia, (size_t)V * ia);
			memcpy(gb + (size_t)(i * V) * ib, pb + (size_t)((i * Sb + Sb - 1) * V) * ib, (size_t)V * ib);
		}
		pa = ga;
		pb = gb;
	}
	r->kind = DSV32_TAP_LOGITS;
	bool ok = dsv32_metrics_dense(&r->dense, pa, a->dtype, pb, b->dtype, rows * V) &&
		  dsv32_metrics_logits(&r->logits, pa, a->dtype, pb, b->dtype, rows, V);
	free(ga);
	free(gb);
	return ok;
}

static void note_nonfinite(sink_ctx *c, const dsv32_tap_result *r)
{
	if (c->res->nonfinite || r->kind == DSV32_TAP_SET)
		return;
	if (r->dense.nan_a || r->dense.nan_b || r->dense.inf_a || r->dense.inf_b) {
		c->res->nonfinite = true;
		snprintf(c->res->nonfinite_tap, sizeof c->res->nonfinite_tap, "step %d %s (%s)",
			 c->step, r->name, r->dense.nan_a || r->dense.inf_a ? "side a" : "side b");
	}
}

/* The expert ids that go with a moe.weights tap, from the held side or the streamed side. */
static const dsv32_tensor *experts_for(dsv32_tapstore *s, const char *weights_name)
{
	char en[128];
	size_t n = strlen(weights_name);
	if (!s || n < 8 || strcmp(weights_name + n - 8, ".weights") != 0)
		return NULL;
	snprintf(en, sizeof en, "%.*s.experts", (int)(n - 8), weights_name);
	dsv32_tap_entry *e = dsv32_tapstore_get(s, en);
	return e && e->t.dtype == DSV32_I64 ? &e->t : NULL;
}

/* Mixing weights as a dense [rows, E] routing matrix (0 for experts not selected), so slot
 * order is not drift and a different expert counts as its weight moving from one expert to
 * another. E = 1 + the largest id on either side. */
static int64_t max_id(const dsv32_tensor *ids)
{
	int64_t m = -1;
	for (int64_t i = 0; i < dsv32_tensor_numel(ids); i++)
		m = ((const int64_t *)ids->data)[i] > m ? ((const int64_t *)ids->data)[i] : m;
	return m;
}

static float *weights_dense(const dsv32_tensor *w, const dsv32_tensor *ids, int64_t E)
{
	int64_t n = dsv32_tensor_numel(w), k = w->shape[w->ndim - 1];
	if (!ids || dsv32_tensor_numel(ids) != n || k < 1 || E < 1 || E > (1 << 20))
		return NULL;
	float *out = calloc((size_t)(n / k * E), sizeof *out);
	if (!out)
		return NULL;
	const int64_t *id = ids->data;
	for (int64_t i = 0; i < n; i++) {
		if (id[i] < 0 || id[i] >= E) {
			free(out);
			return NULL;
		}
		out[i / k * E + id[i]] += (float)dsv32_load_f64(w->data, w->dtype, (size_t)i);
	}
	return out;
}

static bool compare_moe_weights(dsv32_tap_result *r, sink_ctx *c, const char *name,
				const dsv32_tensor *a, const dsv32_tensor *b)
{
	dsv32_tapstore *sa = c->live_is_a ? c->streamed_sets : c->held;
	dsv32_tapstore *sb = c->live_is_a ? c->held : c->streamed_sets;
	const dsv32_tensor *ia = experts_for(sa, name), *ib = experts_for(sb, name);
	int64_t E = 0;
	if (ia && ib) {
		E = max_id(ia) > max_id(ib) ? max_id(ia) : max_id(ib);
		E += 1;
	}
	float *wa = E ? weights_dense(a, ia, E) : NULL;
	float *wb = E ? weights_dense(b, ib, E) : NULL;
	bool ok;
	if (wa && wb)
		ok = dsv32_metrics_dense(&r->dense, wa, DSV32_F32, wb, DSV32_F32,
					 dsv32_tensor_numel(a) / a->shape[a->ndim - 1] * E);
	else
		ok = dsv32_metrics_dense(&r->dense, a->data, a->dtype, b->data, b->dtype,
					 dsv32_tensor_numel(a));
	free(wa);
	free(wb);
	return ok;
}

static bool is_moe_weights(const char *name)
{
	size_t n = strlen(name);
	return n >= 12 && strcmp(name + n - 12, ".moe.weights") == 0;
}

/* Compare a streamed tap with the held one of the same name. */
static void compare_tap(sink_ctx *c, const char *name, const dsv32_tensor *streamed)
{
	dsv32_tap_entry *e = dsv32_tapstore_get(c->held, name);
	char why[128];
	if (!e) {
		dsv32_cmp_result_skip(c->res, name, c->step, c->live_is_a ? "only in a" : "only in b");
		return;
	}
	e->used = true;
	const dsv32_tensor *a = c->live_is_a ? streamed : &e->t;
	const dsv32_tensor *b = c->live_is_a ? &e->t : streamed;
	dsv32_tap_result r;
	fill_header(&r, name, a, b, c);
	bool ok;
	if (is_set_tap(a) || is_set_tap(b))
		ok = compare_sets(&r, c, name, a, b);
	else if (!strcmp(name, "logits"))
		ok = compare_logits(&r, a, b);
	else if (is_moe_weights(name) && dsv32_tensor_numel(a) == dsv32_tensor_numel(b))
		ok = compare_moe_weights(&r, c, name, a, b);
	else if (is_masked_scores(name))
		ok = dsv32_tensor_numel(a) == dsv32_tensor_numel(b) &&
		     dsv32_metrics_dense_masked(&r.dense, a->data, a->dtype, b->data, b->dtype,
						dsv32_tensor_numel(a));
	else
		ok = dsv32_tensor_numel(a) == dsv32_tensor_numel(b) &&
		     dsv32_metrics_dense(&r.dense, a->data, a->dtype, b->data, b->dtype,
					 dsv32_tensor_numel(a));
	if (!ok) {
		char sa[64], sb[64];
		snprintf(why, sizeof why, "not comparable: %s %s vs %s %s", dsv32_dtype_name(a->dtype),
			 dsv32_shape_str(sa, sizeof sa, a->ndim, a->shape), dsv32_dtype_name(b->dtype),
			 dsv32_shape_str(sb, sizeof sb, b->ndim, b->shape));
		dsv32_cmp_result_skip(c->res, name, c->step, why);
		return;
	}
	if (c->cfg->budget && !dsv32_budget_covers(c->cfg->budget, &r)) {
		/* an uncovered tap would pass unchecked: the budget is incomplete, not the run */
		if (c->rc == DSV32_OK)
			c->rc = DSV32_FAIL(&c->err, DSV32_E_USAGE,
					   "the budget covers no tap %s (step %d, %s mode): add a rule "
					   "for it (docs/budgets.md)", name, c->step,
					   c->mode == DSV32_DRIFT_LOCAL ? "local" : "propagate");
		return;
	}
	dsv32_budget_apply(c->cfg->budget, &r);
	note_nonfinite(c, &r);
	if (!dsv32_cmp_result_add(c->res, &r) && c->rc == DSV32_OK)
		c->rc = DSV32_FAIL(&c->err, DSV32_E_NOMEM, "storing the result of %s", name);
}

static void dump_tap(sink_ctx *c, const char *name, const dsv32_tensor *t)
{
	if (!c->dump || c->rc != DSV32_OK)
		return;
	char full[192];
	dsv32_tapfile_name(full, sizeof full, c->step, name);
	c->rc = dsv32_tapstore_put(c->dump, full, t, &c->err);
}

/* A failed sink ends the model's forward with the sink's error. */
static dsv32_status sink_status(const sink_ctx *c, dsv32_error *err)
{
	if (c->rc != DSV32_OK && err)
		*err = c->err;
	return c->rc;
}

static dsv32_status on_tap_hold(void *user, const char *name, const dsv32_tensor *t,
				dsv32_error *err)
{
	sink_ctx *c = user;
	if (c->rc != DSV32_OK)
		return sink_status(c, err);
	c->saw_logits |= strcmp(name, "logits") == 0;
	dump_tap(c, name, t);
	if (c->rc == DSV32_OK)
		c->rc = dsv32_tapstore_put(c->held, name, t, &c->err);
	return sink_status(c, err);
}

static dsv32_status on_tap_compare(void *user, const char *name, const dsv32_tensor *t,
				   dsv32_error *err)
{
	sink_ctx *c = user;
	if (c->rc != DSV32_OK)
		return sink_status(c, err);
	c->saw_logits |= strcmp(name, "logits") == 0;
	c->saw_watch |= c->watch && strcmp(name, c->watch) == 0;
	if (c->only_layer >= 0) { /* local mode: a layer may emit its predecessor's output too */
		int layer;
		char op[64];
		dsv32_tap_split_name(name, &layer, op, sizeof op);
		if (layer != c->only_layer)
			return DSV32_OK;
	}
	dump_tap(c, name, t);
	if (c->streamed_sets && is_set_tap(t) && c->rc == DSV32_OK)
		c->rc = dsv32_tapstore_put(c->streamed_sets, name, t, &c->err);
	if (!is_input_tap(name))
		compare_tap(c, name, t);
	return sink_status(c, err);
}

/* ---- sides ---- */

static dsv32_status side_open(side_rt *s, const dsv32_side_spec *spec, const dsv32_cmp_config *cfg,
			      dsv32_error *err)
{
	memset(s, 0, sizeof *s);
	s->spec = spec;
	if (spec->kind == DSV32_SIDE_TAPS) {
		DSV32_TRY(dsv32_tapfile_open(&s->tf, spec->path, err));
		s->has_tf = true;
		return DSV32_OK;
	}
	if (!cfg->open || !cfg->checkpoint)
		return DSV32_FAIL(err, DSV32_E_USAGE, "side %s needs a checkpoint", spec->label);
	dsv32_status rc = cfg->open(spec->layout, cfg->checkpoint, &spec->opts, &s->m, err);
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

/* Feed a recorded step's taps to a callback as if a model had emitted them (a failure stays in
 * the sink's context and is read after the step). */
static void replay_step(const side_rt *s, int step, tap_fn fn, void *user)
{
	const char *tap;
	dsv32_tensor t;
	for (size_t i = 0; dsv32_tapfile_tap_at(&s->tf, step, i, &tap, &t); i++)
		fn(user, tap, &t, NULL);
}

/* ---- the step plan ---- */

static void plan_free(step_plan *p)
{
	for (int s = 0; s < p->n_steps && p->tokens; s++)
		free(p->tokens[s]);
	free(p->tokens);
	free(p->seqlen);
	free(p->start_pos);
	memset(p, 0, sizeof *p);
}

static dsv32_status plan_alloc(step_plan *p, int n, dsv32_error *err)
{
	p->n_steps = n;
	p->seqlen = calloc((size_t)n, sizeof *p->seqlen);
	p->start_pos = calloc((size_t)n, sizeof *p->start_pos);
	p->tokens = calloc((size_t)n, sizeof *p->tokens);
	if (!p->seqlen || !p->start_pos || !p->tokens) {
		plan_free(p);
		return DSV32_FAIL(err, DSV32_E_NOMEM, "step plan of %d steps", n);
	}
	return DSV32_OK;
}

static dsv32_status plan_from_recording(step_plan *p, const dsv32_tapfile *tf, dsv32_error *err)
{
	DSV32_TRY(plan_alloc(p, tf->n_steps, err));
	p->batch = tf->batch;
	for (int s = 0; s < tf->n_steps; s++) {
		dsv32_tensor ids;
		DSV32_TRY(dsv32_tapfile_get(tf, s, "input_ids", &ids, err));
		p->seqlen[s] = ids.shape[1];
		int64_t sp = s < 64 ? tf->start_pos[s] : -1;
		if (sp < 0) /* positions not recorded: consecutive calls from 0 */
			sp = s == 0 ? 0 : p->start_pos[s - 1] + p->seqlen[s - 1];
		p->start_pos[s] = sp;
		p->tokens[s] = malloc(dsv32_tensor_nbytes(&ids));
		if (!p->tokens[s])
			return DSV32_FAIL(err, DSV32_E_NOMEM, "tokens of step %d", s);
		memcpy(p->tokens[s], ids.data, dsv32_tensor_nbytes(&ids));
	}
	return DSV32_OK;
}

static dsv32_status plan_live(step_plan *p, const dsv32_cmp_config *cfg, dsv32_error *err)
{
	if (!cfg->prompt || cfg->batch < 1 || cfg->prompt_len < 1)
		return DSV32_FAIL(err, DSV32_E_USAGE, "no prompt tokens to run");
	DSV32_TRY(plan_alloc(p, 1 + (cfg->decode_steps > 0 ? cfg->decode_steps : 0), err));
	p->batch = cfg->batch;
	for (int s = 0; s < p->n_steps; s++) {
		p->seqlen[s] = s == 0 ? cfg->prompt_len : 1;
		p->start_pos[s] = s == 0 ? 0 : cfg->prompt_len + s - 1;
	}
	size_t n = (size_t)(cfg->batch * cfg->prompt_len);
	p->tokens[0] = malloc(n * sizeof(int64_t));
	if (!p->tokens[0])
		return DSV32_FAIL(err, DSV32_E_NOMEM, "prompt tokens");
	memcpy(p->tokens[0], cfg->prompt, n * sizeof(int64_t));
	return DSV32_OK;
}

/* Greedy choice for the next step from fp32 logits [B, V] (lowest index on ties). */
static dsv32_status choose_next(step_plan *p, int step, const dsv32_tensor *logits, dsv32_error *err)
{
	if (step + 1 >= p->n_steps || p->tokens[step + 1])
		return DSV32_OK;
	if (logits->dtype != DSV32_F32 || logits->ndim != 2 || logits->shape[0] != p->batch)
		return DSV32_FAIL(err, DSV32_E_INTERNAL, "logits of step %d: expected F32 [%lld, V]",
				  step, (long long)p->batch);
	int64_t V = logits->shape[1];
	p->tokens[step + 1] = malloc((size_t)p->batch * sizeof(int64_t));
	if (!p->tokens[step + 1])
		return DSV32_FAIL(err, DSV32_E_NOMEM, "tokens of step %d", step + 1);
	for (int64_t b = 0; b < p->batch; b++) {
		p->tokens[step + 1][b] = dsv32_argmax_f32((const float *)logits->data + b * V, V);
	}
	return DSV32_OK;
}

/* ---- passes ---- */


/* One forward of a live side with its taps going to fn; the returned logits feed the greedy
 * choice and stand in for a "logits" tap if the model did not emit one. */
static dsv32_status model_step(side_rt *s, step_plan *p, int step, tap_fn fn, sink_ctx *c,
			       dsv32_error *err)
{
	dsv32_tensor logits = {0};
	c->saw_logits = false;
	s->m->taps = (dsv32_tap_sink){fn, c};
	dsv32_status rc = s->m->vt->forward(s->m, p->tokens[step], p->batch, p->seqlen[step],
					    p->start_pos[step], &logits, err);
	s->m->taps = (dsv32_tap_sink){0};
	if (rc == DSV32_OK && c->rc != DSV32_OK) {
		if (err)
			*err = c->err;
		rc = c->rc;
	}
	if (rc == DSV32_OK && !c->saw_logits && c->mode == DSV32_DRIFT_PROPAGATE)
		fn(c, "logits", &logits, NULL);
	if (rc == DSV32_OK && c->rc != DSV32_OK) {
		if (err)
			*err = c->err;
		rc = c->rc;
	}
	if (rc == DSV32_OK)
		rc = choose_next(p, step, &logits, err);
	dsv32_tensor_free(&logits);
	if (rc != DSV32_OK)
		dsv32_error_prefix(err, "%s, step %d", s->spec->label, step);
	return rc;
}

static dsv32_status fill_side(side_rt *s, step_plan *p, int step, tap_fn fn, sink_ctx *c,
			      dsv32_error *err)
{
	if (s->m)
		return model_step(s, p, step, fn, c, err);
	replay_step(s, step, fn, c);
	if (c->rc != DSV32_OK && err)
		*err = c->err;
	return c->rc;
}

static bool is_layer_tap(const char *name)
{
	return strncmp(name, "layers.", 7) == 0;
}

static void list_unused(sink_ctx *c, const char *held_side)
{
	char why[64];
	for (size_t i = 0; i < c->held->n; i++) {
		dsv32_tap_entry *e = &c->held->e[i];
		if (e->used || is_input_tap(e->name))
			continue;
		if (c->mode == DSV32_DRIFT_LOCAL && !is_layer_tap(e->name))
			snprintf(why, sizeof why, "teacher-forced mode runs decoder layers only");
		else
			snprintf(why, sizeof why, "only in %s", held_side);
		dsv32_cmp_result_skip(c->res, e->name, c->step, why);
	}
}

static void progress(const dsv32_cmp_config *cfg, int step, int n, const char *pass)
{
	if (cfg->progress)
		cfg->progress(cfg->progress_user, step, n, pass);
}

static dsv32_status pass_propagate(side_rt *a, side_rt *b, step_plan *p, sink_ctx *c,
				   dsv32_error *err)
{
	c->mode = DSV32_DRIFT_PROPAGATE;
	for (int s = 0; s < p->n_steps; s++) {
		progress(c->cfg, s, p->n_steps, "propagate");
		dsv32_tapstore_clear(c->held);
		dsv32_tapstore_clear(c->streamed_sets);
		c->step = s;
		c->live_is_a = false;
		c->dump = c->cfg->dump_a;
		DSV32_TRY(fill_side(a, p, s, on_tap_hold, c, err));
		c->dump = c->cfg->dump_b;
		DSV32_TRY(fill_side(b, p, s, on_tap_compare, c, err));
		list_unused(c, "a");
	}
	return DSV32_OK;
}

/* The driver's input to layer i: the residual stream entering it, plus the un-added pair the
 * reference's fused norm needs (core/model.h dsv32_layer_input), when recorded. */
static bool layer_input(dsv32_tapstore *held, int i, dsv32_layer_input *in, char *in_name,
			size_t len)
{
	char bname[64], rname[64];
	dsv32_tap_entry *br = NULL, *res = NULL;
	if (i == 0) {
		snprintf(in_name, len, "embed");
		br = dsv32_tapstore_get(held, "embed");
	} else {
		snprintf(in_name, len, "layers.%d.out", i - 1);
		snprintf(bname, sizeof bname, "layers.%d.ffn.out", i - 1);
		snprintf(rname, sizeof rname, "layers.%d.attn_residual", i - 1);
		br = dsv32_tapstore_get(held, bname);
		res = dsv32_tapstore_get(held, rname);
	}
	dsv32_tap_entry *h = dsv32_tapstore_get(held, in_name);
	in->hidden = h ? &h->t : NULL;
	in->branch = br && (i == 0 || res) ? &br->t : NULL;
	in->residual = res && br ? &res->t : NULL;
	return in->hidden != NULL;
}

/* Run every decoder layer of the live model on the driver's input to that layer. */
static dsv32_status local_layers(side_rt *live, step_plan *p, int step, sink_ctx *c,
				 dsv32_error *err)
{
	dsv32_model *m = live->m;
	for (int i = 0; i < (int)m->cfg.n_layers; i++) {
		char in_name[64], out_name[64];
		dsv32_layer_input in;
		if (!layer_input(c->held, i, &in, in_name, sizeof in_name)) {
			char what[64], why[128];
			snprintf(what, sizeof what, "layers.%d.*", i);
			snprintf(why, sizeof why, "no input to the layer: %s is not recorded", in_name);
			dsv32_cmp_result_skip(c->res, what, step, why);
			continue;
		}
		dsv32_tensor out = {0};
		snprintf(out_name, sizeof out_name, "layers.%d.out", i);
		c->watch = out_name;
		c->saw_watch = false;
		c->only_layer = i;
		m->taps = (dsv32_tap_sink){on_tap_compare, c};
		dsv32_status rc = m->vt->layer_forward(m, i, &in, p->start_pos[step], &out, err);
		m->taps = (dsv32_tap_sink){0};
		/* the layer's output is a canonical tap even where a layout only forms it inside the
		 * next layer's fused norm */
		if (rc == DSV32_OK && !c->saw_watch && out.data)
			on_tap_compare(c, out_name, &out, NULL);
		c->watch = NULL;
		c->only_layer = -1;
		dsv32_tensor_free(&out);
		if (rc == DSV32_OK && c->rc != DSV32_OK) {
			if (err)
				*err = c->err;
			rc = c->rc;
		}
		if (rc != DSV32_OK)
			return dsv32_error_prefix(err, "%s, step %d, layer %d (teacher-forced)",
						  live->spec->label, step, i);
	}
	return DSV32_OK;
}

static dsv32_status pass_local(side_rt *a, side_rt *b, step_plan *p, sink_ctx *c, dsv32_error *err)
{
	side_rt *driver = (a->m && !b->m) ? b : a;
	side_rt *live = driver == a ? b : a;
	if (!live->m)
		return DSV32_FAIL(err, DSV32_E_USAGE,
				  "teacher-forced mode needs a live model on one side (both are recordings)");
	c->mode = DSV32_DRIFT_LOCAL;
	c->live_is_a = live == a;
	/* the dump holds one pass: the propagate one when both run, else this one (the driver's
	 * taps and the live side's teacher-forced layer taps) */
	bool dump = !c->cfg->propagate;
	dsv32_tapstore *dump_driver = driver == a ? c->cfg->dump_a : c->cfg->dump_b;
	dsv32_tapstore *dump_live = driver == a ? c->cfg->dump_b : c->cfg->dump_a;
	for (int s = 0; s < p->n_steps; s++) {
		progress(c->cfg, s, p->n_steps, "teacher-forced");
		dsv32_tapstore_clear(c->held);
		dsv32_tapstore_clear(c->streamed_sets);
		c->step = s;
		c->dump = dump ? dump_driver : NULL;
		DSV32_TRY(fill_side(driver, p, s, on_tap_hold, c, err));
		c->dump = dump ? dump_live : NULL;
		DSV32_TRY(local_layers(live, p, s, c, err));
		c->dump = NULL;
		list_unused(c, driver == a ? "a" : "b");
	}
	return DSV32_OK;
}

/* Two recordings are comparable only when they ran the same calls on the same tokens: the
 * batch, the number of steps and every step's input_ids must agree. */
static dsv32_status recordings_agree(const side_rt *a, const side_rt *b, dsv32_error *err)
{
	const dsv32_tapfile *x = &a->tf, *y = &b->tf;
	if (x->batch != y->batch)
		return DSV32_FAIL(err, DSV32_E_USAGE, "not comparable: batch %lld (a) vs %lld (b)",
				  (long long)x->batch, (long long)y->batch);
	if (x->n_steps != y->n_steps)
		return DSV32_FAIL(err, DSV32_E_USAGE, "not comparable: %d steps (a) vs %d (b)",
				  x->n_steps, y->n_steps);
	for (int s = 0; s < x->n_steps; s++) {
		dsv32_tensor ia, ib;
		DSV32_TRY(dsv32_tapfile_get(x, s, "input_ids", &ia, err));
		DSV32_TRY(dsv32_tapfile_get(y, s, "input_ids", &ib, err));
		if (ia.shape[1] != ib.shape[1] ||
		    memcmp(ia.data, ib.data, dsv32_tensor_nbytes(&ia)) != 0)
			return DSV32_FAIL(err, DSV32_E_USAGE,
					  "not comparable: step %d input_ids differ between a and b "
					  "(different prompts or decoded tokens)", s);
	}
	return DSV32_OK;
}

/* The recording (if any) fixes the steps; otherwise the prompt and greedy decode do. */
static dsv32_status make_plan(step_plan *p, const side_rt *a, const side_rt *b,
			      const dsv32_cmp_config *cfg, dsv32_error *err)
{
	if (a->has_tf && b->has_tf)
		DSV32_TRY(recordings_agree(a, b, err));
	if (a->has_tf || b->has_tf)
		return plan_from_recording(p, a->has_tf ? &a->tf : &b->tf, err);
	return plan_live(p, cfg, err);
}

/* A recording's prompt, as the report states a live run's ("5,17;1,2"), so `report check`
 * can tell runs of different prompts apart. */
static void prov_recorded_tokens(dsv32_cmp_result *out, const step_plan *p)
{
	char buf[512];
	size_t off = 0;
	int64_t cols = p->seqlen[0], n = p->batch * cols;
	for (int64_t i = 0; i < n && off + 24 < sizeof buf; i++)
		off += (size_t)snprintf(buf + off, sizeof buf - off, "%s%lld",
					i == 0 ? "" : (i % cols == 0 ? ";" : ","),
					(long long)p->tokens[0][i]);
	dsv32_cmp_result_prov(out, "tokens", buf);
	snprintf(buf, sizeof buf, "%d", p->n_steps - 1);
	dsv32_cmp_result_prov(out, "decode_steps", buf);
}

static void reset_models(side_rt *a, side_rt *b)
{
	if (a->m)
		a->m->vt->reset(a->m);
	if (b->m)
		b->m->vt->reset(b->m);
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
	step_plan plan = {0};
	dsv32_tapstore held;
	dsv32_tapstore_init(&held);
	dsv32_tapstore streamed;
	dsv32_tapstore_init(&streamed);
	sink_ctx c = {.held = &held, .res = out, .cfg = cfg, .only_layer = -1,
		      .streamed_sets = &streamed};
	dsv32_status rc = side_open(&a, sa, cfg, err);
	if (rc != DSV32_OK)
		return rc;
	rc = side_open(&b, sb, cfg, err);
	if (rc != DSV32_OK)
		goto out_close_a;
	rc = make_plan(&plan, &a, &b, cfg, err);
	if (rc == DSV32_OK && (a.has_tf || b.has_tf))
		prov_recorded_tokens(out, &plan);
	if (rc == DSV32_OK && cfg->propagate)
		rc = pass_propagate(&a, &b, &plan, &c, err);
	if (rc == DSV32_OK && cfg->local) {
		reset_models(&a, &b);
		rc = pass_local(&a, &b, &plan, &c, err);
	}
	if (rc == DSV32_OK && out->n_taps == 0) /* nothing checked is not a PASS */
		rc = DSV32_FAIL(err, DSV32_E_USAGE,
				"no tap was compared (%zu skipped; first: %s, %s): the sides share "
				"no comparable tap", out->n_skips,
				out->n_skips ? out->skips[0].name : "-",
				out->n_skips ? out->skips[0].reason : "no taps");
	plan_free(&plan);
	dsv32_tapstore_free(&held);
	dsv32_tapstore_free(&streamed);
	side_close(&b);
out_close_a:
	side_close(&a);
	return rc;
}

static const dsv32_tap_result *floor_find(const dsv32_cmp_result *f, const dsv32_tap_result *t)
{
	if (!f)
		return NULL;
	for (size_t i = 0; i < f->n_taps; i++)
		if (f->taps[i].step == t->step && f->taps[i].mode == t->mode &&
		    !strcmp(f->taps[i].name, t->name))
			return &f->taps[i];
	return NULL;
}

void dsv32_cmp_apply_noise_floor(dsv32_cmp_result *r, const dsv32_cmp_result *floor_a,
				 const dsv32_cmp_result *floor_b)
{
	for (size_t i = 0; i < r->n_taps; i++) {
		dsv32_tap_result *t = &r->taps[i];
		if (t->kind == DSV32_TAP_SET)
			continue;
		const dsv32_tap_result *fa = floor_find(floor_a, t), *fb = floor_find(floor_b, t);
		if (fa && fa->dense.rel_l2 > 0)
			t->noise_ratio_a = t->dense.rel_l2 / fa->dense.rel_l2;
		if (fb && fb->dense.rel_l2 > 0)
			t->noise_ratio_b = t->dense.rel_l2 / fb->dense.rel_l2;
	}
}
