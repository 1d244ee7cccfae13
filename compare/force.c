/* force.c: decision forcing in the teacher-forced pass (sink.h dsv32_sink_decide; core/model.h
 * "Decisions"; issue 17): the live side takes the driver's selection where its own differs as a
 * set, and every forced row is recorded with its flip class, so the dense taps that follow
 * measure arithmetic only and no decision is replaced silently. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compare/sink.h"
#include "compare/tapcmp.h"

static int cmp_i64(const void *x, const void *y)
{
	int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
	return (a > b) - (a < b);
}

/* Whether rows x and y (k ids each) hold the same ids in any order; tmp: 2k scratch. */
static bool same_set(const int64_t *x, const int64_t *y, int64_t k, int64_t *tmp)
{
	memcpy(tmp, x, (size_t)k * sizeof *tmp);
	memcpy(tmp + k, y, (size_t)k * sizeof *tmp);
	qsort(tmp, (size_t)k, sizeof *tmp, cmp_i64);
	qsort(tmp + k, (size_t)k, sizeof *tmp, cmp_i64);
	return memcmp(tmp, tmp + k, (size_t)k * sizeof *tmp) == 0;
}

/* The scores of selection `name` in store s when they fit rows x n_cols, or NULL. */
static const float *scores_of(dsv32_tapstore *s, const char *name, int64_t rows, int64_t *n_cols,
			      const dsv32_tensor **t_out)
{
	char sname[96];
	*t_out = NULL;
	if (!s || !dsv32_tapcmp_scores_name(sname, sizeof sname, name))
		return NULL;
	dsv32_tap_entry *e = dsv32_tapstore_get(s, sname);
	if (!e || e->t.dtype != DSV32_F32 || dsv32_tensor_numel(&e->t) % rows)
		return NULL;
	*n_cols = dsv32_tensor_numel(&e->t) / rows;
	*t_out = &e->t;
	return e->t.data;
}

/* Force the rows of sel that differ from the driver's d; records each in the result. */
static dsv32_status force_rows(dsv32_cmp_sink *c, const char *name, dsv32_tensor *sel,
			       const dsv32_tensor *d, bool *forced, dsv32_error *err)
{
	int64_t k = sel->shape[sel->ndim - 1], rows = dsv32_tensor_numel(sel) / k, n_cols = 0, nc2;
	const dsv32_tensor *held_sc, *live_sc;
	const float *sc = scores_of(c->held, name, rows, &n_cols, &held_sc);
	(void)scores_of(c->streamed_sets, name, rows, &nc2, &live_sc);
	double noise = held_sc && live_sc ? dsv32_tapcmp_score_noise(held_sc, live_sc) : -1;
	dsv32_group_stage gs; /* a: the driver (held), b: the live side, as classified below */
	bool staged = dsv32_tapcmp_group_stage(&gs, name, c->held, c->held, c->streamed_sets, rows);
	int64_t *tmp = malloc((size_t)(2 * k) * sizeof *tmp);
	if (!tmp)
		return DSV32_FAIL(err, DSV32_E_NOMEM, "%s: forcing a decision", name);
	int64_t *live = sel->data;
	const int64_t *drv = d->data;
	dsv32_forced_row f = {.step = c->step};
	snprintf(f.tap, sizeof f.tap, "%s", name);
	char op[64];
	dsv32_tap_split_name(name, &f.layer, op, sizeof op);
	dsv32_status rc = DSV32_OK;
	for (int64_t r = 0; r < rows && rc == DSV32_OK; r++) {
		int64_t *lr = live + r * k;
		const int64_t *dr = drv + r * k;
		if (same_set(lr, dr, k, tmp))
			continue;
		f.row = r;
		f.cls = dsv32_tapcmp_classify_row(name, dr, k, lr, k, sc ? sc + r * n_cols : NULL,
						  n_cols, noise, staged ? &gs : NULL, r, &f.margin);
		memcpy(lr, dr, (size_t)k * sizeof *lr);
		*forced = true;
		if (!dsv32_cmp_result_force(c->res, &f))
			rc = DSV32_FAIL(err, DSV32_E_NOMEM, "%s: recording a forced row", name);
	}
	free(tmp);
	return rc;
}

dsv32_status dsv32_sink_decide(void *user, const char *name, dsv32_tensor *sel, bool *forced,
			       dsv32_error *err)
{
	dsv32_cmp_sink *c = user;
	*forced = false;
	dsv32_tap_entry *d = dsv32_tapstore_get(c->held, name);
	dsv32_status rc = DSV32_OK;
	if (d && d->t.dtype == DSV32_I64 && sel->dtype == DSV32_I64 && sel->ndim >= 1 &&
	    d->t.ndim >= 1 && d->t.shape[d->t.ndim - 1] == sel->shape[sel->ndim - 1] &&
	    sel->shape[sel->ndim - 1] > 0 && dsv32_tensor_numel(&d->t) == dsv32_tensor_numel(sel))
		rc = force_rows(c, name, sel, &d->t, forced, err);
	/* the live side's set as used from here on: routing weights pair with these experts */
	if (rc == DSV32_OK && *forced && c->streamed_sets)
		rc = dsv32_tapstore_put(c->streamed_sets, name, sel, err);
	dsv32_sink_drop_scores(c, name);
	return rc;
}
