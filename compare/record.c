/* record.c: a live model's taps over a prefill and greedy decode steps (record.h). */
#include "compare/record.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "compare/tapfile.h"

typedef struct {
	dsv32_tapstore *store;
	int step;
} record_ctx;


/* The sink of a rank that keeps nothing: the taps are emitted alike on every rank (gathering a
 * split tap is a collective), only rank 0 keeps them. */
static dsv32_status drop_tap(void *user, const char *name, const dsv32_tensor *t, dsv32_error *err)
{
	(void)user, (void)name, (void)t, (void)err;
	return DSV32_OK;
}

static dsv32_status keep_tap(void *user, const char *name, const dsv32_tensor *t, dsv32_error *err)
{
	record_ctx *c = user;
	char full[192];
	dsv32_tapfile_name(full, sizeof full, c->step, name);
	return dsv32_tapstore_put(c->store, full, t, err);
}

static dsv32_status put_i64(dsv32_tapstore *s, int step, const char *name, const int64_t *v,
			    int ndim, const int64_t *shape, dsv32_error *err)
{
	char full[64];
	dsv32_tapfile_name(full, sizeof full, step, name);
	dsv32_tensor t = dsv32_tensor_view((void *)v, DSV32_I64, ndim, shape);
	return dsv32_tapstore_put(s, full, &t, err);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The tokens of step s: the prompt, then column s - 1 of the given decode tokens. */
static void given_tokens(const dsv32_record_req *q, int s, int64_t *next)
{
	for (int64_t b = 0; b < q->batch; b++)
		next[b] = q->decode[b * q->decode_steps + s - 1];
}

static dsv32_status step_major(dsv32_model *m, const dsv32_record_req *q, record_ctx *c,
			       dsv32_side_timing *tm, dsv32_error *err)
{
	int64_t B = q->batch, S = q->prompt_len, pos = 0;
	const int64_t *cur = q->prompt;
	int64_t *next = malloc((size_t)B * sizeof *next);
	if (!next)
		return DSV32_FAIL(err, DSV32_E_NOMEM, "tokens");
	dsv32_status rc = DSV32_OK;
	for (int step = 0; step <= q->decode_steps && rc == DSV32_OK; step++) {
		int64_t shape[2] = {B, S}, one = 1;
		c->step = step;
		if (c->store)
			rc = put_i64(c->store, step, "input_ids", cur, 2, shape, err);
		if (rc == DSV32_OK && c->store)
			rc = put_i64(c->store, step, "start_pos", &pos, 1, &one, err);
		dsv32_tensor logits = {0};
		m->taps = (dsv32_tap_sink){c->store ? keep_tap : drop_tap, c};
		double t0 = now_s();
		if (rc == DSV32_OK)
			rc = m->vt->forward(m, cur, B, S, pos, &logits, err);
		if (tm) {
			*(step ? &tm->decode_s : &tm->prefill_s) += now_s() - t0;
			*(step ? &tm->decode_tokens : &tm->prefill_tokens) += B * S;
		}
		m->taps = (dsv32_tap_sink){0};
		for (int64_t b = 0; rc == DSV32_OK && b < B; b++)
			next[b] = dsv32_argmax_f32((const float *)logits.data + b * logits.shape[1],
						   logits.shape[1]);
		dsv32_tensor_free(&logits);
		if (q->decode && step < q->decode_steps)
			given_tokens(q, step + 1, next);
		pos += S;
		S = 1;
		cur = next;
	}
	free(next);
	return rc;
}

/* ---- layer-major ---- */

typedef struct {
	dsv32_model *m;
	const dsv32_record_req *q;
	record_ctx *c;
	dsv32_side_timing *tm;
	double *step_s; /* [steps]: each step's time, summed over its layers */
	int64_t *tok;   /* [B]: a decode step's tokens */
} lm_run;

static int64_t lm_len(const dsv32_record_req *q, int s)
{
	return s == 0 ? q->prompt_len : 1;
}

static int64_t lm_pos(const dsv32_record_req *q, int s)
{
	return s == 0 ? 0 : q->prompt_len + s - 1;
}

static dsv32_status lm_embed_all(lm_run *r, dsv32_error *err)
{
	const dsv32_record_req *q = r->q;
	for (int s = 0; s <= q->decode_steps; s++) {
		int64_t S = lm_len(q, s), pos = lm_pos(q, s), shape[2] = {q->batch, S}, one = 1;
		const int64_t *ids = q->prompt;
		if (s > 0) {
			given_tokens(q, s, r->tok);
			ids = r->tok;
		}
		r->c->step = s;
		if (r->c->store) {
			DSV32_TRY(put_i64(r->c->store, s, "input_ids", ids, 2, shape, err));
			DSV32_TRY(put_i64(r->c->store, s, "start_pos", &pos, 1, &one, err));
		}
		double t0 = now_s();
		DSV32_TRY(r->m->vt->lm_embed(r->m, s, ids, q->batch, S, pos, err));
		r->step_s[s] += now_s() - t0;
	}
	r->m->vt->lm_release(r->m, -1); /* the embedding table is done with */
	return DSV32_OK;
}

static dsv32_status lm_layers(lm_run *r, dsv32_error *err)
{
	int n = (int)r->m->cfg.n_layers;
	for (int L = 0; L < n; L++) {
		for (int s = 0; s <= r->q->decode_steps; s++) {
			r->c->step = s;
			double t0 = now_s();
			dsv32_status rc = r->m->vt->lm_layer(r->m, L, s, err);
			r->step_s[s] += now_s() - t0;
			if (rc != DSV32_OK)
				return dsv32_error_prefix(err, "layer-major, layer %d, step %d", L, s);
		}
		r->m->vt->lm_release(r->m, L);
	}
	return DSV32_OK;
}

static dsv32_status lm_heads(lm_run *r, dsv32_error *err)
{
	for (int s = 0; s <= r->q->decode_steps; s++) {
		dsv32_tensor logits = {0};
		r->c->step = s;
		double t0 = now_s();
		dsv32_status rc = r->m->vt->lm_head(r->m, s, &logits, err);
		r->step_s[s] += now_s() - t0;
		dsv32_tensor_free(&logits);
		DSV32_TRY(rc);
	}
	return DSV32_OK;
}

static dsv32_status layer_major(dsv32_model *m, const dsv32_record_req *q, record_ctx *c,
				dsv32_side_timing *tm, dsv32_error *err)
{
	int n = q->decode_steps + 1;
	lm_run r = {m, q, c, tm, calloc((size_t)n, sizeof(double)),
		    malloc((size_t)q->batch * sizeof(int64_t))};
	dsv32_status rc = r.step_s && r.tok ? m->vt->lm_begin(m, n, err)
					    : DSV32_FAIL(err, DSV32_E_NOMEM, "layer-major run");
	if (rc == DSV32_OK) {
		m->taps = (dsv32_tap_sink){c->store ? keep_tap : drop_tap, c};
		rc = lm_embed_all(&r, err);
		if (rc == DSV32_OK)
			rc = lm_layers(&r, err);
		if (rc == DSV32_OK)
			rc = lm_heads(&r, err);
		m->taps = (dsv32_tap_sink){0};
		m->vt->lm_end(m);
	}
	for (int s = 0; tm && s < n; s++) {
		*(s ? &tm->decode_s : &tm->prefill_s) += r.step_s[s];
		*(s ? &tm->decode_tokens : &tm->prefill_tokens) += q->batch * lm_len(q, s);
	}
	free(r.step_s);
	free(r.tok);
	if (rc == DSV32_OK && c->store)
		rc = dsv32_tapstore_sort_steps(c->store, err);
	return rc;
}

bool dsv32_model_has_layer_major(const dsv32_model *m)
{
	const dsv32_model_vtbl *v = m->vt;
	return v->lm_begin && v->lm_embed && v->lm_layer && v->lm_release && v->lm_head && v->lm_end;
}

/* The step of a "step{s}." name, -1 for any other. */
static int name_step(const char *name)
{
	int s, k = 0;
	return sscanf(name, "step%d.%n", &s, &k) == 1 && k > 0 && s >= 0 ? s : -1;
}

dsv32_status dsv32_tapstore_sort_steps(dsv32_tapstore *s, dsv32_error *err)
{
	int max = -1;
	for (size_t i = 0; i < s->n; i++) {
		int st = name_step(s->e[i].name);
		max = st > max ? st : max;
	}
	dsv32_tap_entry *out = malloc((s->n ? s->n : 1) * sizeof *out);
	if (!out)
		return DSV32_FAIL(err, DSV32_E_NOMEM, "sorting %zu taps", s->n);
	size_t k = 0; /* a stable pass per step: small step counts, so O(steps * taps) is fine */
	for (int st = -1; st <= max; st++)
		for (size_t i = 0; i < s->n; i++)
			if (name_step(s->e[i].name) == st)
				out[k++] = s->e[i];
	memcpy(s->e, out, s->n * sizeof *out);
	free(out);
	return DSV32_OK;
}

dsv32_status dsv32_record_run_req(dsv32_model *m, const dsv32_record_req *q,
				  dsv32_tapstore *store, dsv32_side_timing *tm, dsv32_error *err)
{
	record_ctx c = {.store = store};
	if (tm)
		tm->live = true;
	if (q->layer_major && (!q->decode && q->decode_steps > 0))
		return DSV32_FAIL(err, DSV32_E_USAGE, "layer-major order needs every step's tokens "
				  "before the run (the decode tokens given)");
	if (q->layer_major && !dsv32_model_has_layer_major(m))
		return DSV32_FAIL(err, DSV32_E_UNSUPPORTED, "layout %s: no layer-major execution",
				  m->vt->layout);
	return q->layer_major ? layer_major(m, q, &c, tm, err) : step_major(m, q, &c, tm, err);
}

dsv32_status dsv32_record_run(dsv32_model *m, const int64_t *prompt, int64_t batch,
			      int64_t prompt_len, int decode_steps, dsv32_tapstore *store,
			      dsv32_side_timing *tm, dsv32_error *err)
{
	dsv32_record_req q = {prompt, batch, prompt_len, decode_steps, NULL, false};
	return dsv32_record_run_req(m, &q, store, tm, err);
}
