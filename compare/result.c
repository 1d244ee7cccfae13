/* result.c: the comparison result container. */
#include "compare/result.h"
#include "core/error.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void dsv32_cmp_result_init(dsv32_cmp_result *r)
{
	memset(r, 0, sizeof *r);
	r->first_divergence = -1;
}

void dsv32_cmp_result_free(dsv32_cmp_result *r)
{
	free(r->taps);
	free(r->skips);
	dsv32_cmp_result_init(r);
}

static bool grow(void **p, size_t *cap, size_t need, size_t elem)
{
	if (need <= *cap)
		return true;
	size_t nc = *cap ? *cap * 2 : 64;
	while (nc < need)
		nc *= 2;
	void *q = realloc(*p, nc * elem);
	if (!q)
		return false;
	*p = q;
	*cap = nc;
	return true;
}

/* Where a tap sits in the model: embed before the layers, final_norm and logits after them. */
static int layer_rank(const dsv32_tap_result *t)
{
	if (t->layer >= 0)
		return t->layer + 1;
	if (!strcmp(t->name, "embed"))
		return 0;
	return INT_MAX - (strcmp(t->name, "logits") == 0 ? 0 : 1);
}

int dsv32_tap_model_order(const dsv32_tap_result *x, const dsv32_tap_result *y)
{
	int kx[4] = {x->step, layer_rank(x), x->layer >= 0 ? dsv32_layer_op_rank(x->op) : 0, (int)x->mode};
	int ky[4] = {y->step, layer_rank(y), y->layer >= 0 ? dsv32_layer_op_rank(y->op) : 0, (int)y->mode};
	for (int i = 0; i < 4; i++)
		if (kx[i] != ky[i])
			return kx[i] < ky[i] ? -1 : 1;
	return 0;
}

dsv32_tap_result *dsv32_cmp_result_add(dsv32_cmp_result *r, const dsv32_tap_result *t)
{
	if (!grow((void **)&r->taps, &r->cap_taps, r->n_taps + 1, sizeof *r->taps))
		return NULL;
	r->taps[r->n_taps] = *t;
	dsv32_tap_result *out = &r->taps[r->n_taps++];
	/* names can come from a recording: keep terminal control characters out of every report */
	dsv32_sanitize_term(out->name, sizeof out->name, t->name);
	dsv32_sanitize_term(out->op, sizeof out->op, t->op);
	if (out->over_budget &&
	    (r->first_divergence < 0 || dsv32_tap_model_order(out, &r->taps[r->first_divergence]) < 0))
		r->first_divergence = (long)(r->n_taps - 1);
	if (out->layer + 1 > r->n_layers)
		r->n_layers = out->layer + 1;
	if (out->step + 1 > r->n_steps)
		r->n_steps = out->step + 1;
	return out;
}

bool dsv32_cmp_result_skip(dsv32_cmp_result *r, const char *name, int step, const char *reason)
{
	if (!grow((void **)&r->skips, &r->cap_skips, r->n_skips + 1, sizeof *r->skips))
		return false;
	dsv32_tap_skip *s = &r->skips[r->n_skips++];
	dsv32_sanitize_term(s->name, sizeof s->name, name); /* a recording's names, escaped */
	s->step = step;
	dsv32_sanitize_term(s->reason, sizeof s->reason, reason);
	return true;
}

void dsv32_cmp_result_prov(dsv32_cmp_result *r, const char *key, const char *value)
{
	for (int i = 0; i < r->n_prov; i++) {
		if (strcmp(r->prov[i].key, key) == 0) {
			snprintf(r->prov[i].value, sizeof r->prov[i].value, "%s", value);
			return;
		}
	}
	if (r->n_prov >= (int)(sizeof r->prov / sizeof r->prov[0]))
		return;
	snprintf(r->prov[r->n_prov].key, sizeof r->prov[0].key, "%s", key);
	snprintf(r->prov[r->n_prov].value, sizeof r->prov[0].value, "%s", value);
	r->n_prov++;
}

bool dsv32_cmp_result_passed(const dsv32_cmp_result *r)
{
	return r->first_divergence < 0 && !r->nonfinite;
}
