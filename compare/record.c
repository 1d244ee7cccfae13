/* record.c: a live model's taps over a prefill and greedy decode steps (record.h). */
#include "compare/record.h"

#include <stdlib.h>
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

dsv32_status dsv32_record_run(dsv32_model *m, const int64_t *prompt, int64_t batch,
			      int64_t prompt_len, int decode_steps, dsv32_tapstore *store,
			      dsv32_side_timing *tm, dsv32_error *err)
{
	record_ctx c = {.store = store};
	int64_t B = batch, S = prompt_len, pos = 0;
	const int64_t *cur = prompt;
	int64_t *next = malloc((size_t)B * sizeof *next);
	if (!next)
		return DSV32_FAIL(err, DSV32_E_NOMEM, "tokens");
	if (tm)
		tm->live = true;
	dsv32_status rc = DSV32_OK;
	for (int step = 0; step <= decode_steps && rc == DSV32_OK; step++) {
		int64_t shape[2] = {B, S}, one = 1;
		c.step = step;
		if (store)
			rc = put_i64(store, step, "input_ids", cur, 2, shape, err);
		if (rc == DSV32_OK && store)
			rc = put_i64(store, step, "start_pos", &pos, 1, &one, err);
		dsv32_tensor logits = {0};
		m->taps = (dsv32_tap_sink){store ? keep_tap : drop_tap, &c};
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
		pos += S;
		S = 1;
		cur = next;
	}
	free(next);
	return rc;
}
