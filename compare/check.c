/* check.c: the CI gate of `report check` over two runs' results (see check.h). */
#include "compare/check.h"

#include <math.h>
#include <stdarg.h>
#include <string.h>

/* Where findings go: a callback (JSON, tests) or, through print_line, a FILE. */
typedef struct {
	dsv32_check_fn fn;
	void *user;
} emitter;

__attribute__((format(printf, 4, 5))) static void emit(const emitter *e, dsv32_check_kind kind,
							const dsv32_tap_result *tap,
							const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	dsv32_check_finding f = {kind, tap, line};
	e->fn(e->user, &f);
}

static void print_line(void *user, const dsv32_check_finding *f)
{
	fprintf(user, "%s\n", f->line);
}

/* A numerics key both reports state (not absent, not "unknown"). */
static bool key_known(const dsv32_side_host *h)
{
	return h->present && h->numerics_key[0] && strcmp(h->numerics_key, "unknown") != 0;
}

/* One note line when a side's numerics key differs between the runs: their bits are then not
 * expected to agree, whatever the code did. Does not change the verdict. */
static void note_numerics_keys(const dsv32_cmp_result *baseline, const dsv32_cmp_result *current,
			       const emitter *out)
{
	bool differ = false;
	for (int i = 0; i < 2; i++)
		differ = differ || (key_known(&baseline->host[i]) && key_known(&current->host[i]) &&
				    strcmp(baseline->host[i].numerics_key,
					   current->host[i].numerics_key) != 0);
	if (!differ)
		return;
	emit(out, DSV32_CHECK_NOTE, NULL,
	     "note: numerics keys differ (baseline a=%s b=%s; current a=%s b=%s): the GEMM "
		"engine or host changed, so drift may differ for reasons other than the code",
		baseline->host[0].numerics_key[0] ? baseline->host[0].numerics_key : "-",
		baseline->host[1].numerics_key[0] ? baseline->host[1].numerics_key : "-",
		current->host[0].numerics_key[0] ? current->host[0].numerics_key : "-",
		current->host[1].numerics_key[0] ? current->host[1].numerics_key : "-");
}

static const char *prov_value(const dsv32_cmp_result *r, const char *key)
{
	const char *v = dsv32_cmp_result_prov_get(r, key);
	return v ? v : "";
}

/* A side label without its ":comm=..." token: where a ref side's ranks ran (one process, or one
 * per process over MPI / NCCL) is not what they computed (docs/distributed.md), so a report of
 * the real ranks is checked against one of the in-process emulation. */
static void side_numerics(char *out, size_t len, const char *label)
{
	const char *c = strstr(label, ":comm=");
	if (!c) {
		snprintf(out, len, "%s", label);
		return;
	}
	const char *rest = strchr(c + 1, ':');
	snprintf(out, len, "%.*s%s", (int)(c - label), label, rest ? rest : "");
}

bool dsv32_check_comparable(const dsv32_cmp_result *baseline, const dsv32_cmp_result *current,
			     char *why, size_t len)
{
	char sa[2][160], sb[2][160];
	side_numerics(sa[0], sizeof sa[0], baseline->side_a);
	side_numerics(sa[1], sizeof sa[1], current->side_a);
	side_numerics(sb[0], sizeof sb[0], baseline->side_b);
	side_numerics(sb[1], sizeof sb[1], current->side_b);
	/* what decides the numbers compared; the checkpoint path, the budget, the build and the
	 * host are not (the host has its own note) */
	static const char *const keys[] = {"weights_fingerprint_sha256", "config", "layers",
					   "tokens", "seed", "decode_steps", "decode_tokens"};
	const struct {
		const char *what, *x, *y;
	} top[] = {{"mode", baseline->mode, current->mode},
		   {"side a", sa[0], sa[1]},
		   {"side b", sb[0], sb[1]}};
	for (size_t i = 0; i < sizeof top / sizeof top[0]; i++)
		if (strcmp(top[i].x, top[i].y) != 0) {
			snprintf(why, len, "%s differs: \"%.60s\" (baseline) vs \"%.60s\" (current)",
				 top[i].what, top[i].x, top[i].y);
			return false;
		}
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
		const char *x = prov_value(baseline, keys[i]), *y = prov_value(current, keys[i]);
		if (strcmp(x, y) != 0) {
			snprintf(why, len, "provenance \"%s\" differs: \"%.40s%s\" (baseline) vs "
				 "\"%.40s%s\" (current)", keys[i], x, strlen(x) > 40 ? "..." : "", y,
				 strlen(y) > 40 ? "..." : "");
			return false;
		}
	}
	return true;
}

/* Genuine decision flips (metrics.h "Decision flips") current has beyond the baseline's (b
 * NULL: none), in an index-set tap: a new genuine flip is a regression, whatever the drift. */
static int64_t new_genuine_flips(const dsv32_tap_result *b, const dsv32_tap_result *c)
{
	if (c->family != DSV32_FAMILY_SET)
		return 0;
	int64_t base = b && b->family == DSV32_FAMILY_SET ? b->set.rows_genuine : 0;
	return c->set.rows_genuine - base;
}

/* Rows of a set tap that differ beyond ties and near-ties (genuine and unclassified). */
static int64_t beyond_near_ties(const dsv32_set_metrics *s)
{
	return s->rows - s->rows_tie_equal - s->rows_near_tie;
}

/* Whether a set tap's grown drift comes from ties and near-ties only: a tie is no regression. */
static bool flips_within_ties(const dsv32_tap_result *b, const dsv32_tap_result *c)
{
	return c->family == DSV32_FAMILY_SET && b->family == DSV32_FAMILY_SET &&
	       beyond_near_ties(&c->set) <= beyond_near_ties(&b->set);
}

static int regressions(const dsv32_cmp_result *baseline, const dsv32_cmp_result *current,
		       double max_regression, const emitter *out)
{
	int bad = 0;
	note_numerics_keys(baseline, current, out);
	for (size_t i = 0; i < baseline->n_taps; i++) {
		const dsv32_tap_result *b = &baseline->taps[i];
		const dsv32_tap_result *c = dsv32_cmp_result_find(current, b);
		if (!c) {
			emit(out, DSV32_CHECK_MISSING, b, "REGRESSION step %d %s: missing in the current run",
			     b->step, b->name);
			bad++;
			continue;
		}
		double vb = dsv32_tap_drift(b), vc = dsv32_tap_drift(c);
		double limit = vb * (1.0 + max_regression) + 1e-6;
		if (new_genuine_flips(b, c) > 0) {
			emit(out, DSV32_CHECK_REGRESSION, c,
			     "REGRESSION step %d %s (%s): %lld genuine decision flip(s), baseline %lld",
			     c->step, c->name, c->mode == DSV32_DRIFT_LOCAL ? "local" : "propagate",
			     (long long)c->set.rows_genuine, (long long)b->set.rows_genuine);
			bad++;
		} else if (!(vc <= limit) && flips_within_ties(b, c)) {
			emit(out, DSV32_CHECK_NOTE, c,
			     "note: step %d %s (%s): drift %.4g > baseline %.4g, from ties and near-ties "
			     "only (no new genuine or unclassified flip)", c->step, c->name,
			     c->mode == DSV32_DRIFT_LOCAL ? "local" : "propagate", vc, vb);
		} else if (!(vc <= limit)) {
			emit(out, DSV32_CHECK_REGRESSION, c,
			     "REGRESSION step %d %s (%s): drift %.4g > baseline %.4g x %.3g", c->step,
			     c->name, c->mode == DSV32_DRIFT_LOCAL ? "local" : "propagate", vc, vb,
			     1.0 + max_regression);
			bad++;
		}
	}
	for (size_t i = 0; i < current->n_taps; i++) {
		const dsv32_tap_result *c = &current->taps[i];
		if (dsv32_cmp_result_find(baseline, c))
			continue;
		emit(out, DSV32_CHECK_NEW_TAP, c, "new tap (not in baseline): step %d %s", c->step,
		     c->name);
		if (new_genuine_flips(NULL, c) > 0) {
			emit(out, DSV32_CHECK_REGRESSION, c,
			     "REGRESSION step %d %s: %lld genuine decision flip(s) in a tap the "
			     "baseline lacks", c->step, c->name, (long long)c->set.rows_genuine);
			bad++;
		}
	}
	if (!current->nonfinite && baseline->nonfinite)
		emit(out, DSV32_CHECK_NOTE, NULL,
		     "note: the baseline had non-finite values, the current run has none");
	if (current->nonfinite && !baseline->nonfinite) {
		emit(out, DSV32_CHECK_NONFINITE, NULL, "REGRESSION: non-finite values at %s",
		     current->nonfinite_tap);
		bad++;
	}
	emit(out, DSV32_CHECK_SUMMARY, NULL, "%d regression(s) over %zu baseline taps (max regression %.3g)",
	     bad, baseline->n_taps, max_regression);
	return bad;
}

int dsv32_check_regressions_to(const dsv32_cmp_result *baseline, const dsv32_cmp_result *current,
			       double max_regression, dsv32_check_fn fn, void *user)
{
	emitter e = {fn, user};
	return regressions(baseline, current, max_regression, &e);
}

int dsv32_check_regressions(const dsv32_cmp_result *baseline, const dsv32_cmp_result *current,
			    double max_regression, FILE *out)
{
	return dsv32_check_regressions_to(baseline, current, max_regression, print_line, out);
}

static bool same_num(double a, double b)
{
	return a == b || (isnan(a) && isnan(b));
}

/* The name of the first figure that differs between two results of one tap, or NULL: the
 * figures of the metric table's exact view, in its order (compare/metrics.h). */
static const char *first_figure_diff(const dsv32_tap_result *b, const dsv32_tap_result *c,
				     char *buf, size_t len)
{
	const dsv32_metric_desc *m;
	for (int place = 1; (m = dsv32_metric_at(DSV32_VIEW_EXACT, place)); place++)
		if (!same_num(dsv32_tap_figure(b, m), dsv32_tap_figure(c, m)))
			return dsv32_metric_figure_name(buf, len, m);
	return NULL;
}

static bool same_forced(const dsv32_forced_row *x, const dsv32_forced_row *y)
{
	return x->step == y->step && x->layer == y->layer && x->row == y->row && x->cls == y->cls &&
	       same_num(x->margin, y->margin) && strcmp(x->tap, y->tap) == 0;
}

/* The exact check of the forced decisions: the same rows, classes and margins, in order. */
static int forced_differences(const dsv32_cmp_result *baseline, const dsv32_cmp_result *current,
			      const emitter *out)
{
	size_t n = baseline->n_forced < current->n_forced ? baseline->n_forced : current->n_forced;
	for (size_t i = 0; i < n; i++)
		if (!same_forced(&baseline->forced[i], &current->forced[i])) {
			const dsv32_forced_row *c = &current->forced[i];
			emit(out, DSV32_CHECK_DIFFERENT, NULL,
			     "DIFFERENT forced decision %zu: step %d %s row %lld (%s), baseline step %d "
			     "%s row %lld (%s)", i, c->step, c->tap, (long long)c->row,
			     dsv32_flip_class_name(c->cls), baseline->forced[i].step,
			     baseline->forced[i].tap, (long long)baseline->forced[i].row,
			     dsv32_flip_class_name(baseline->forced[i].cls));
			return 1;
		}
	if (baseline->n_forced == current->n_forced)
		return 0;
	emit(out, DSV32_CHECK_DIFFERENT, NULL, "DIFFERENT forced decisions: %zu rows, baseline %zu",
	     current->n_forced, baseline->n_forced);
	return 1;
}

static int exact(const dsv32_cmp_result *baseline, const dsv32_cmp_result *current,
		 const emitter *out)
{
	int bad = 0;
	note_numerics_keys(baseline, current, out);
	for (size_t i = 0; i < baseline->n_taps; i++) {
		const dsv32_tap_result *b = &baseline->taps[i];
		const dsv32_tap_result *c = dsv32_cmp_result_find(current, b);
		char name[64];
		const char *what = c ? first_figure_diff(b, c, name, sizeof name) : NULL;
		if (!c)
			emit(out, DSV32_CHECK_MISSING, b, "DIFFERENT step %d %s: missing in the current run",
			     b->step, b->name);
		else if (what)
			emit(out, DSV32_CHECK_DIFFERENT, c,
			     "DIFFERENT step %d %s: %s differs (rel_l2 %.17g vs baseline %.17g)", b->step,
			     b->name, what, c->dense.rel_l2, b->dense.rel_l2);
		bad += !c || what;
	}
	for (size_t i = 0; i < current->n_taps; i++)
		if (!dsv32_cmp_result_find(baseline, &current->taps[i])) {
			emit(out, DSV32_CHECK_NEW_TAP, &current->taps[i],
			     "DIFFERENT step %d %s: not in the baseline", current->taps[i].step,
			     current->taps[i].name);
			bad++;
		}
	bad += forced_differences(baseline, current, out);
	emit(out, DSV32_CHECK_SUMMARY, NULL, "%d difference(s) over %zu baseline taps (exact check)",
	     bad, baseline->n_taps);
	return bad;
}

int dsv32_check_exact_to(const dsv32_cmp_result *baseline, const dsv32_cmp_result *current,
			 dsv32_check_fn fn, void *user)
{
	emitter e = {fn, user};
	return exact(baseline, current, &e);
}

int dsv32_check_exact(const dsv32_cmp_result *baseline, const dsv32_cmp_result *current,
		      FILE *out)
{
	return dsv32_check_exact_to(baseline, current, print_line, out);
}
