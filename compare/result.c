/* result.c: the comparison result container. */
#include "compare/result.h"
#include "core/error.h"

#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void dsv32_cmp_result_init(dsv32_cmp_result *r)
{
	memset(r, 0, sizeof *r);
	r->first_divergence = -1;
	r->first_prop_flip = -1;
}

void dsv32_cmp_result_free(dsv32_cmp_result *r)
{
	free(r->taps);
	free(r->skips);
	free(r->forced);
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
	if (!strcmp(t->name, dsv32_model_tap_name(DSV32_MTAP_EMBED)))
		return 0;
	return INT_MAX - (strcmp(t->name, dsv32_model_tap_name(DSV32_MTAP_LOGITS)) == 0 ? 0 : 1);
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

bool dsv32_tap_flips_explained(const dsv32_tap_result *t)
{
	const dsv32_set_metrics *s = &t->set;
	return t->family == DSV32_FAMILY_SET && s->rows_equal < s->rows && s->rows_genuine == 0 &&
	       s->rows_tie_equal + s->rows_near_tie == s->rows;
}

/* Reported but not judged whatever its mode (result.h n_unjudged). */
static bool exempt(const dsv32_tap_result *t)
{
	return t->decides_nothing || dsv32_tap_flips_explained(t);
}

/* The first over-budget tap in model order that the verdict judges, -1 if none. */
static long first_judged_over(const dsv32_cmp_result *r)
{
	long first = -1;
	for (size_t i = 0; i < r->n_taps; i++) {
		const dsv32_tap_result *t = &r->taps[i];
		bool after = t->mode == DSV32_DRIFT_PROPAGATE && r->first_prop_flip >= 0 &&
			     dsv32_tap_model_order(t, &r->taps[r->first_prop_flip]) > 0;
		if (t->over_budget && !after && !exempt(t) &&
		    (first < 0 || dsv32_tap_model_order(t, &r->taps[first]) < 0))
			first = (long)i;
	}
	return first;
}

/* A selection tap arrived: when its scores (an earlier result of the same step and mode) leave
 * no row more visible entries than it picks, those scores decided nothing; an over-budget one
 * leaves the verdict. Only for selections whose masked entries are the causal mask (the
 * indexer's keys), not a decision of their own (the router's dropped groups). */
static void mark_scores_of(dsv32_cmp_result *r, const dsv32_tap_result *sel)
{
	int set = dsv32_layer_tap_find(sel->op);
	int sc = set >= 0 && sel->layer >= 0 && sel->ndim >= 1 &&
			 dsv32_layer_tap_masked_picks_unused((dsv32_layer_tap)set)
		     ? dsv32_layer_tap_scores_of((dsv32_layer_tap)set)
		     : -1;
	if (sc < 0)
		return;
	char name[96];
	dsv32_layer_tap_name(name, sizeof name, sel->layer, (dsv32_layer_tap)sc);
	for (size_t i = r->n_taps; i-- > 0;) {
		dsv32_tap_result *t = &r->taps[i];
		if (t->step != sel->step || t->mode != sel->mode || strcmp(t->name, name))
			continue;
		if (t->visible_max <= 0 || t->visible_max > sel->shape[sel->ndim - 1] ||
		    t->decides_nothing)
			return;
		t->decides_nothing = true;
		bool after = t->mode == DSV32_DRIFT_PROPAGATE && r->first_prop_flip >= 0 &&
			     dsv32_tap_model_order(t, &r->taps[r->first_prop_flip]) > 0;
		if (t->over_budget && !after) {
			r->n_unjudged++;
			r->n_unjudged_scores++;
			r->first_divergence = first_judged_over(r);
		}
		return;
	}
}

/* What an added tap (the last of r->taps) changes in the order-dependent fields. */
static void note_added(dsv32_cmp_result *r, dsv32_tap_result *out)
{
	bool after = out->mode == DSV32_DRIFT_PROPAGATE && r->first_prop_flip >= 0 &&
		     dsv32_tap_model_order(out, &r->taps[r->first_prop_flip]) > 0;
	bool judged = !after && !exempt(out);
	if (out->over_budget && !judged)
		r->n_unjudged++;
	if (out->over_budget && !after && out->decides_nothing) /* read back, or replayed */
		r->n_unjudged_scores++;
	if (out->over_budget && !after && dsv32_tap_flips_explained(out))
		r->n_unjudged_flips++;
	if (out->over_budget && judged &&
	    (r->first_divergence < 0 || dsv32_tap_model_order(out, &r->taps[r->first_divergence]) < 0))
		r->first_divergence = (long)(r->n_taps - 1);
	if (out->mode == DSV32_DRIFT_PROPAGATE && out->family == DSV32_FAMILY_SET &&
	    out->set.rows_equal < out->set.rows &&
	    (r->first_prop_flip < 0 || dsv32_tap_model_order(out, &r->taps[r->first_prop_flip]) < 0))
		r->first_prop_flip = (long)(r->n_taps - 1);
	if (out->family == DSV32_FAMILY_SET)
		mark_scores_of(r, out);
	if (out->layer + 1 > r->n_layers)
		r->n_layers = out->layer + 1;
	if (out->step + 1 > r->n_steps)
		r->n_steps = out->step + 1;
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
	note_added(r, out);
	return out;
}

/* Stable by step: one pass per step over [from, n) (few steps). */
#define SORT_BY_STEP(T, arr, from, n, ok)                                                         \
	do {                                                                                      \
		size_t cnt_ = (n) - (from), k_ = 0;                                               \
		int max_ = -1;                                                                    \
		if (cnt_ == 0) /* arr may be NULL: no pointer arithmetic on it */                 \
			break;                                                                    \
		T *tmp_ = malloc(cnt_ * sizeof(T));                                               \
		if (!tmp_) {                                                                      \
			ok = false;                                                               \
			break;                                                                    \
		}                                                                                 \
		for (size_t i_ = (from); i_ < (n); i_++)                                          \
			max_ = (arr)[i_].step > max_ ? (arr)[i_].step : max_;                     \
		for (int st_ = 0; st_ <= max_; st_++)                                             \
			for (size_t i_ = (from); i_ < (n); i_++)                                  \
				if ((arr)[i_].step == st_)                                        \
					tmp_[k_++] = (arr)[i_];                                   \
		if (k_ == cnt_) /* steps are >= 0: every entry placed */                          \
			memcpy((arr) + (from), tmp_, cnt_ * sizeof(T));                           \
		free(tmp_);                                                                       \
	} while (0)

bool dsv32_cmp_result_sort_steps(dsv32_cmp_result *r, size_t taps_from, size_t skips_from,
				 size_t forced_from)
{
	bool ok = true;
	SORT_BY_STEP(dsv32_tap_result, r->taps, taps_from, r->n_taps, ok);
	if (ok)
		SORT_BY_STEP(dsv32_tap_skip, r->skips, skips_from, r->n_skips, ok);
	if (ok)
		SORT_BY_STEP(dsv32_forced_row, r->forced, forced_from, r->n_forced, ok);
	if (!ok)
		return false;
	r->first_divergence = r->first_prop_flip = -1;
	r->n_unjudged = r->n_unjudged_scores = r->n_unjudged_flips = 0;
	r->nonfinite = false;
	r->nonfinite_tap[0] = '\0';
	size_t n = r->n_taps;
	for (r->n_taps = 1; r->n_taps <= n; r->n_taps++) { /* replay the additions in order */
		dsv32_tap_result *t = &r->taps[r->n_taps - 1];
		note_added(r, t);
		if (!r->nonfinite && t->family != DSV32_FAMILY_SET &&
		    (t->dense.nan_a || t->dense.nan_b || t->dense.inf_a || t->dense.inf_b)) {
			r->nonfinite = true; /* as compare/sink.c note_nonfinite words it */
			snprintf(r->nonfinite_tap, sizeof r->nonfinite_tap, "step %d %s (%s)", t->step,
				 t->name, t->dense.nan_a || t->dense.inf_a ? "side a" : "side b");
		}
	}
	r->n_taps = n;
	return true;
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

static const char *const flip_class_names[DSV32_FLIP_CLASS_COUNT] = {"tie", "near-tie", "genuine",
									 "unclassified"};

const char *dsv32_flip_class_name(dsv32_flip_class c)
{
	return (unsigned)c < DSV32_FLIP_CLASS_COUNT ? flip_class_names[c] : "?";
}

int dsv32_flip_class_find(const char *name)
{
	for (int i = 0; i < DSV32_FLIP_CLASS_COUNT; i++)
		if (!strcmp(name, flip_class_names[i]))
			return i;
	return -1;
}

bool dsv32_cmp_result_force(dsv32_cmp_result *r, const dsv32_forced_row *f)
{
	if (!grow((void **)&r->forced, &r->cap_forced, r->n_forced + 1, sizeof *r->forced))
		return false;
	dsv32_forced_row *o = &r->forced[r->n_forced++];
	*o = *f;
	dsv32_sanitize_term(o->tap, sizeof o->tap, f->tap);
	return true;
}

void dsv32_cmp_result_forced_counts(const dsv32_cmp_result *r, int64_t *counts)
{
	for (int i = 0; i < DSV32_FLIP_CLASS_COUNT; i++)
		counts[i] = 0;
	for (size_t i = 0; i < r->n_forced; i++)
		if ((unsigned)r->forced[i].cls < DSV32_FLIP_CLASS_COUNT)
			counts[r->forced[i].cls]++;
}

int64_t dsv32_sat_add_i64(int64_t a, int64_t b)
{
	int64_t r;
	return __builtin_add_overflow(a, b, &r) ? (b > 0 ? INT64_MAX : INT64_MIN) : r;
}

static int64_t sat_sub(int64_t a, int64_t b)
{
	int64_t r;
	return __builtin_sub_overflow(a, b, &r) ? (b < 0 ? INT64_MAX : INT64_MIN) : r;
}

dsv32_set_row_classes dsv32_set_row_classes_of(const dsv32_set_metrics *s)
{
	int64_t other = sat_sub(sat_sub(s->rows, s->rows_tie_equal), s->rows_near_tie);
	return (dsv32_set_row_classes){.differ = sat_sub(s->rows, s->rows_equal),
				       .ties = sat_sub(s->rows_tie_equal, s->rows_equal),
				       .unclassified = sat_sub(other, s->rows_genuine)};
}

const dsv32_tap_result *dsv32_cmp_result_first_flip(const dsv32_cmp_result *r)
{
	if (r->first_prop_flip >= 0) /* a free-running one when there is one */
		return &r->taps[r->first_prop_flip];
	for (size_t i = 0; i < r->n_taps; i++) {
		const dsv32_tap_result *t = &r->taps[i];
		if (t->family == DSV32_FAMILY_SET && t->set.rows_equal < t->set.rows)
			return t;
	}
	return NULL;
}

bool dsv32_tap_after_flip(const dsv32_tap_result *t, const dsv32_tap_result *first_flip)
{
	return first_flip && t->mode == DSV32_DRIFT_PROPAGATE &&
	       first_flip->mode == DSV32_DRIFT_PROPAGATE && dsv32_tap_model_order(t, first_flip) > 0;
}

const char *dsv32_tap_unjudged_why(const dsv32_tap_result *t, const dsv32_tap_result *first_flip)
{
	if (!t->over_budget)
		return NULL;
	if (dsv32_tap_after_flip(t, first_flip))
		return "after a decision flip";
	if (t->decides_nothing)
		return "its selection takes every visible entry";
	return dsv32_tap_flips_explained(t) ? "every flip is a tie or a near-tie" : NULL;
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

const dsv32_tap_result *dsv32_cmp_result_find(const dsv32_cmp_result *r,
					      const dsv32_tap_result *t)
{
	for (size_t i = 0; r && i < r->n_taps; i++) {
		const dsv32_tap_result *c = &r->taps[i];
		if (c->step == t->step && c->mode == t->mode && strcmp(c->name, t->name) == 0)
			return c;
	}
	return NULL;
}

const char *dsv32_cmp_result_prov_get(const dsv32_cmp_result *r, const char *key)
{
	for (int i = 0; i < r->n_prov; i++)
		if (!strcmp(r->prov[i].key, key))
			return r->prov[i].value;
	return NULL;
}

const char *dsv32_cmp_result_layer_limit(const dsv32_cmp_result *r)
{
	return dsv32_cmp_result_prov_get(r, "layers");
}

double dsv32_tap_drift(const dsv32_tap_result *t)
{
	if (t->family == DSV32_FAMILY_SET)
		return 1.0 - t->set.jaccard;
	return t->dense.rel_l2;
}

void dsv32_cmp_apply_noise_floor(dsv32_cmp_result *r, const dsv32_cmp_result *floor_a,
				 const dsv32_cmp_result *floor_b)
{
	for (size_t i = 0; i < r->n_taps; i++) {
		dsv32_tap_result *t = &r->taps[i];
		if (t->family == DSV32_FAMILY_SET)
			continue;
		const dsv32_tap_result *fa = dsv32_cmp_result_find(floor_a, t);
		const dsv32_tap_result *fb = dsv32_cmp_result_find(floor_b, t);
		if (fa && fa->dense.rel_l2 > 0)
			t->noise_ratio_a = t->dense.rel_l2 / fa->dense.rel_l2;
		if (fb && fb->dense.rel_l2 > 0)
			t->noise_ratio_b = t->dense.rel_l2 / fb->dense.rel_l2;
	}
}

/* The struct of t that holds figures of family f, or NULL when t does not carry f (a logits
 * result carries the dense figures of its logits). */
static const void *family_struct(const dsv32_tap_result *t, dsv32_metric_family f)
{
	switch (f) {
	case DSV32_FAMILY_DENSE: return t->family != DSV32_FAMILY_SET ? &t->dense : NULL;
	case DSV32_FAMILY_SET: return t->family == DSV32_FAMILY_SET ? &t->set : NULL;
	case DSV32_FAMILY_LOGITS: return t->family == DSV32_FAMILY_LOGITS ? &t->logits : NULL;
	default: return NULL;
	}
}

static double load_figure(const void *p, dsv32_figure_type type)
{
	switch (type) {
	case DSV32_FIG_I64: return (double)*(const int64_t *)p;
	case DSV32_FIG_U32: return *(const uint32_t *)p;
	default: return *(const double *)p;
	}
}

double dsv32_tap_figure(const dsv32_tap_result *t, const dsv32_metric_desc *m)
{
	const char *fam = family_struct(t, m->family);
	if (!fam)
		return 0.0;
	return m->derive ? m->derive(fam) : load_figure(fam + m->offset, m->type);
}

bool dsv32_tap_has_metric(const dsv32_tap_result *t, const dsv32_metric_desc *m)
{
	return (m->applies >> t->family) & 1u;
}

void *dsv32_tap_figure_ptr(dsv32_tap_result *t, const dsv32_metric_desc *m)
{
	static const size_t base[DSV32_FAMILY_COUNT] = {offsetof(dsv32_tap_result, dense),
							offsetof(dsv32_tap_result, set),
							offsetof(dsv32_tap_result, logits)};
	if (m->derive || (unsigned)m->family >= DSV32_FAMILY_COUNT)
		return NULL;
	return (char *)t + base[m->family] + m->offset;
}

const char *dsv32_tap_figure_str(char *buf, size_t len, const dsv32_tap_result *t,
				 const dsv32_metric_desc *m)
{
	/* a figure of a family t does not carry reads 0 (all-zero bits: 0 in every type) */
	static const union {
		int64_t i;
		uint32_t u;
		double d;
	} zero;
	const char *fam = family_struct(t, m->family);
	dsv32_figure_type type = m->derive ? DSV32_FIG_F64 : m->type;
	const void *p = fam ? (const void *)(fam + m->offset) : (const void *)&zero;
	/* the table's formats match the figure's type (tests/test_metric_table.c checks it) */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
	switch (type) {
	case DSV32_FIG_I64: snprintf(buf, len, m->fmt, (long long)*(const int64_t *)p); break;
	case DSV32_FIG_U32: snprintf(buf, len, m->fmt, *(const uint32_t *)p); break;
	default: snprintf(buf, len, m->fmt, dsv32_tap_figure(t, m)); break;
	}
#pragma GCC diagnostic pop
	return buf;
}
