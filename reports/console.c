/* console.c: what `compare` prints on a terminal by default: a summary of at most about 30
 * lines, whatever the model size (the budget, what was compared and skipped, the first
 * divergence, the worst taps per mode, the residual stream per layer, index-set rows that
 * differ, the verdict). `--verbose` prints the full table (markdown.c) instead. */
#include <stdlib.h>
#include <string.h>

#include "core/taps.h"
#include "reports/report.h"

#define WORST_PER_MODE 3
#define SKIP_REASONS_SHOWN 3
#define LAYERS_SHOWN 8

static const char *mode_name(dsv32_drift_mode m)
{
	return m == DSV32_DRIFT_LOCAL ? "teacher-forced" : "propagate";
}

/* Index-set rows that differ, by class (metrics.h "Decision flips"). */
typedef struct {
	long long taps, differ, rows, ties, near, genuine, unclassified;
	const dsv32_tap_result *first; /* the first set tap with a flip, in result order */
} flip_counts;

static flip_counts count_flips(const dsv32_cmp_result *r)
{
	flip_counts f = {0};
	for (size_t i = 0; i < r->n_taps; i++) {
		const dsv32_tap_result *t = &r->taps[i];
		const dsv32_set_metrics *s = &t->set;
		if (t->family != DSV32_FAMILY_SET)
			continue;
		f.taps++;
		if (s->rows_equal == s->rows)
			continue;
		f.differ++;
		dsv32_set_row_classes c = dsv32_set_row_classes_of(s);
		f.rows = dsv32_sat_add_i64(f.rows, c.differ);
		f.ties = dsv32_sat_add_i64(f.ties, c.ties);
		f.near = dsv32_sat_add_i64(f.near, s->rows_near_tie);
		f.genuine = dsv32_sat_add_i64(f.genuine, s->rows_genuine);
		f.unclassified = dsv32_sat_add_i64(f.unclassified, c.unclassified);
		if (!f.first || (f.first->mode != DSV32_DRIFT_PROPAGATE &&
				 t->mode == DSV32_DRIFT_PROPAGATE))
			f.first = t; /* the first in model order, a free-running one if any */
	}
	return f;
}

/* "; decision flips are ties and near-ties only" when every flip is one of those. */
static const char *flip_note(const dsv32_cmp_result *r)
{
	flip_counts f = count_flips(r);
	return f.rows && !f.genuine && !f.unclassified
		       ? "; every decision flip is a tie or a near-tie (no genuine flip)"
		       : "";
}

/* "; 12 over-budget taps after the first decision flip not judged" (result.h), and the
 * scores that decide nothing (a prompt no longer than index_topk). */
static const char *unjudged_note(const dsv32_cmp_result *r, char *buf, size_t len)
{
	size_t after = r->n_unjudged - r->n_unjudged_scores - r->n_unjudged_flips;
	int n = 0;
	buf[0] = '\0';
	if (after)
		n = snprintf(buf, len, "; %zu over-budget tap(s) after the first decision flip not "
			     "judged (free-running divergence)", after);
	if (r->n_unjudged_scores && n >= 0 && (size_t)n < len)
		n += snprintf(buf + n, len - (size_t)n, "; %zu over-budget score tap(s) not judged: "
			      "every row's selection takes all its visible entries",
			      r->n_unjudged_scores);
	if (r->n_unjudged_flips && n >= 0 && (size_t)n < len)
		snprintf(buf + n, len - (size_t)n, "; %zu over-budget selection tap(s) not judged: "
			 "every flip is a tie or a near-tie", r->n_unjudged_flips);
	return buf;
}

void dsv32_report_verdict(const dsv32_cmp_result *r, FILE *out)
{
	char un[384];
	if (r->first_divergence >= 0) {
		const dsv32_tap_result *t = &r->taps[r->first_divergence];
		fprintf(out, "verdict: FAIL; first divergence: step %d %s (%s)%s%s\n", t->step,
			t->name, t->budget_note, flip_note(r), unjudged_note(r, un, sizeof un));
	} else if (r->nonfinite) {
		fprintf(out, "verdict: FAIL; non-finite values first at %s\n", r->nonfinite_tap);
	} else {
		fprintf(out, "verdict: PASS (%zu taps within budget)%s%s\n", r->n_taps - r->n_unjudged,
			flip_note(r), unjudged_note(r, un, sizeof un));
	}
}

/* Skipped taps, counted per reason (the most frequent first). */
static void print_skips(const dsv32_cmp_result *r, FILE *out)
{
	size_t n = r->n_skips, n_reasons = 0;
	if (!n)
		return;
	const char **reason = calloc(n, sizeof *reason);
	size_t *count = calloc(n, sizeof *count);
	for (size_t i = 0; reason && count && i < n; i++) {
		size_t k = 0;
		while (k < n_reasons && strcmp(reason[k], r->skips[i].reason))
			k++;
		if (k == n_reasons)
			reason[n_reasons++] = r->skips[i].reason;
		count[k]++;
	}
	fprintf(out, "skipped %zu tap(s)%s\n", n, n_reasons ? ":" : "");
	for (size_t shown = 0; shown < SKIP_REASONS_SHOWN && shown < n_reasons; shown++) {
		size_t best = 0;
		for (size_t k = 1; k < n_reasons; k++)
			if (count[k] > count[best])
				best = k;
		fprintf(out, "  %zu x %s\n", count[best], reason[best]);
		count[best] = 0;
	}
	if (n_reasons > SKIP_REASONS_SHOWN)
		fprintf(out, "  ... %zu other reason(s) (--verbose lists every skipped tap)\n",
			n_reasons - SKIP_REASONS_SHOWN);
	free(reason);
	free(count);
}

static void describe(const dsv32_tap_result *t, char *buf, size_t len)
{
	char sum[128];
	if (t->family == DSV32_FAMILY_SET)
		snprintf(buf, len, "jaccard %.4f, %lld/%lld rows equal (%lld up to ties)",
			 t->set.jaccard, (long long)t->set.rows_equal, (long long)t->set.rows,
			 (long long)t->set.rows_tie_equal);
	else if (t->family == DSV32_FAMILY_LOGITS)
		snprintf(buf, len, "rel_l2 %.2e%s", t->dense.rel_l2,
			 dsv32_report_summary(sum, sizeof sum, t, ", ", ", "));
	else
		snprintf(buf, len, "rel_l2 %.2e, max abs %.3g, ulp max %u", t->dense.rel_l2,
			 t->dense.max_abs, t->dense.ulp_max);
}

static int cmp_drift_desc(const void *pa, const void *pb)
{
	double a = dsv32_tap_drift(*(const dsv32_tap_result *const *)pa);
	double b = dsv32_tap_drift(*(const dsv32_tap_result *const *)pb);
	return (a < b) - (a > b);
}

static void print_worst(const dsv32_cmp_result *r, dsv32_drift_mode mode, FILE *out)
{
	const dsv32_tap_result *first_flip = count_flips(r).first;
	const dsv32_tap_result **v = calloc(r->n_taps + 1, sizeof *v);
	size_t n = 0;
	for (size_t i = 0; v && i < r->n_taps; i++)
		if (r->taps[i].mode == mode && r->taps[i].family == DSV32_FAMILY_DENSE)
			v[n++] = &r->taps[i];
	if (n) {
		qsort(v, n, sizeof *v, cmp_drift_desc);
		fprintf(out, "worst dense taps (%s):\n", mode_name(mode));
		for (size_t i = 0; i < n && i < WORST_PER_MODE; i++) {
			char d[192];
			describe(v[i], d, sizeof d);
			/* after a flip the note stands even within budget: its drift is not arithmetic */
			const char *why = dsv32_tap_after_flip(v[i], first_flip)
						  ? "after a decision flip"
						  : dsv32_tap_unjudged_why(v[i], first_flip);
			fprintf(out, "  step %d %-28s %s%s%s%s%s\n", v[i]->step, v[i]->name, d,
				!v[i]->over_budget ? "" : why ? "  over budget, not judged" : "  OVER BUDGET",
				why ? "  (" : "", why ? why : "", why ? ")" : "");
		}
	}
	free(v);
}

/* rel_l2 of layers.N.out at step 0 in one mode: a few layers on one line. */
static void print_layers(const dsv32_cmp_result *r, dsv32_drift_mode mode, FILE *out)
{
	const char *op = dsv32_layer_tap_op(DSV32_LTAP_OUT);
	int n = 0, worst = -1;
	double worst_v = -1;
	for (size_t i = 0; i < r->n_taps; i++) {
		const dsv32_tap_result *t = &r->taps[i];
		if (t->step || t->mode != mode || t->layer < 0 || strcmp(t->op, op))
			continue;
		if (!n)
			fprintf(out, "  %-15s", mode_name(mode));
		if (n < LAYERS_SHOWN)
			fprintf(out, " L%d %.1e", t->layer, t->dense.rel_l2);
		if (t->dense.rel_l2 > worst_v) {
			worst_v = t->dense.rel_l2;
			worst = t->layer;
		}
		n++;
	}
	if (n > LAYERS_SHOWN)
		fprintf(out, " ... (%d layers; largest L%d %.1e)", n, worst, worst_v);
	if (n)
		fputc('\n', out);
}

static bool mode_present(const dsv32_cmp_result *r, dsv32_drift_mode mode)
{
	for (size_t i = 0; i < r->n_taps; i++)
		if (r->taps[i].mode == mode)
			return true;
	return false;
}

/* Index-set taps whose rows differ, the flips by class, and the first one. */
static void print_sets(const dsv32_cmp_result *r, FILE *out)
{
	flip_counts f = count_flips(r);
	if (!f.taps)
		return;
	fprintf(out, "decision flips: %lld of %lld set taps have rows that differ (%lld rows: %lld "
		"ties, %lld near-ties, %lld genuine, %lld unclassified)\n", f.differ, f.taps, f.rows,
		f.ties, f.near, f.genuine, f.unclassified);
	char flip[512];
	if (dsv32_report_first_flip(flip, sizeof flip, r)) /* the same result as f.first */
		fprintf(out, "  first: %s\n", flip);
}

/* The forced decisions of the teacher-forced pass: counts by class and the first row. */
static void print_forced(const dsv32_cmp_result *r, FILE *out)
{
	if (!r->n_forced)
		return;
	int64_t n[DSV32_FLIP_CLASS_COUNT];
	dsv32_cmp_result_forced_counts(r, n);
	const dsv32_forced_row *f = &r->forced[0];
	fprintf(out, "forced decisions (teacher-forced): %zu row(s): %lld tie, %lld near-tie, %lld "
		"genuine, %lld unclassified; first: step %d %s row %lld (%s, margin %.3g)\n",
		r->n_forced, (long long)n[DSV32_FLIP_TIE], (long long)n[DSV32_FLIP_NEAR_TIE],
		(long long)n[DSV32_FLIP_GENUINE], (long long)n[DSV32_FLIP_UNCLASSIFIED], f->step,
		f->tap, (long long)f->row, dsv32_flip_class_name(f->cls), f->margin);
}

void dsv32_report_console(const dsv32_cmp_result *r, FILE *out)
{
	const char *budget = dsv32_cmp_result_prov_get(r, "budget");
	fprintf(out, "%s vs %s (%s)\n", r->side_a, r->side_b, r->mode);
	fprintf(out, "budget: %s\n", budget ? budget : "none");
	fprintf(out, "compared %zu tap(s) over %d step(s), %d layer(s)\n", r->n_taps, r->n_steps,
		r->n_layers);
	print_skips(r, out);
	if (r->nonfinite)
		fprintf(out, "NON-FINITE values first at %s\n", r->nonfinite_tap);
	for (int m = 0; m < DSV32_DRIFTMODE_COUNT; m++)
		if (mode_present(r, (dsv32_drift_mode)m))
			print_worst(r, (dsv32_drift_mode)m, out);
	fprintf(out, "residual stream, rel_l2 of layers.N.out at step 0:\n");
	for (int m = 0; m < DSV32_DRIFTMODE_COUNT; m++)
		print_layers(r, (dsv32_drift_mode)m, out);
	print_sets(r, out);
	print_forced(r, out);
	dsv32_report_verdict(r, out);
	fprintf(out, "(every tap: --verbose; reports: --json, --markdown, --html)\n");
}
