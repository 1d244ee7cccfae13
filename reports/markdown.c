/* markdown.c: the terminal drift table and the Markdown CI summary. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/fsutil.h"
#include "core/taps.h"
#include "reports/report.h"

const char *dsv32_report_first_flip(char *buf, size_t len, const dsv32_cmp_result *r)
{
	const dsv32_tap_result *t = dsv32_cmp_result_first_flip(r);
	if (!t)
		return NULL;
	const dsv32_set_metrics *s = &t->set;
	dsv32_set_row_classes c = dsv32_set_row_classes_of(s);
	bool prop = t->mode == DSV32_DRIFT_PROPAGATE;
	snprintf(buf, len,
		 "step %d %s (%s), first at row %lld; %lld row(s) differ: %lld tie, %lld near-tie, "
		 "%lld genuine, %lld unclassified (largest margin %.3g)%s", t->step, t->name,
		 prop ? "free-running" : "teacher-forced", (long long)s->first_diff_row,
		 (long long)c.differ, (long long)c.ties, (long long)s->rows_near_tie,
		 (long long)s->rows_genuine, (long long)c.unclassified, s->flip_margin_max,
		 prop ? ". Free-running divergence starts here: the taps after it are marked "
			"\"after a decision flip\" and their drift is not arithmetic alone"
		      : "");
	return buf;
}

/* " (after a decision flip)" on every free-running tap after the first flip, " (not judged:
 * ...)" on another over-budget tap the verdict leaves out, else "". */
static const char *unjudged_note(const dsv32_tap_result *t, const dsv32_tap_result *first_flip)
{
	if (dsv32_tap_after_flip(t, first_flip))
		return " (after a decision flip)";
	const char *why = dsv32_tap_unjudged_why(t, first_flip);
	if (!why)
		return "";
	return t->decides_nothing ? " (not judged: its selection takes every visible entry)"
				  : " (not judged: every flip is a tie or a near-tie)";
}

const char *dsv32_report_summary(char *buf, size_t len, const dsv32_tap_result *t,
				 const char *lead, const char *sep)
{
	const dsv32_metric_desc *m;
	size_t off = 0;
	buf[0] = '\0';
	for (int place = 1; (m = dsv32_metric_at(DSV32_VIEW_SUMMARY, place)); place++) {
		char v[48];
		if (m->family != t->family || off >= len)
			continue;
		off += (size_t)snprintf(buf + off, len - off, "%s%s %s", off ? sep : lead, m->label,
					dsv32_tap_figure_str(v, sizeof v, t, m));
	}
	return buf;
}

static void describe(const dsv32_tap_result *t, char *buf, size_t len)
{
	char sum[128];
	if (t->family == DSV32_FAMILY_SET && t->set.score_noise >= 0)
		snprintf(buf, len, "jaccard %.4f, %lld/%lld rows equal (%lld up to ties; flips: %lld "
			 "near-tie, %lld genuine)", t->set.jaccard, (long long)t->set.rows_equal,
			 (long long)t->set.rows, (long long)t->set.rows_tie_equal,
			 (long long)t->set.rows_near_tie, (long long)t->set.rows_genuine);
	else if (t->family == DSV32_FAMILY_SET)
		snprintf(buf, len, "jaccard %.4f, %lld/%lld rows equal (%lld up to ties)",
			 t->set.jaccard, (long long)t->set.rows_equal, (long long)t->set.rows,
			 (long long)t->set.rows_tie_equal);
	else if (t->family == DSV32_FAMILY_LOGITS)
		snprintf(buf, len, "rel_l2 %.3e, max abs %.3g%s", t->dense.rel_l2, t->dense.max_abs,
			 dsv32_report_summary(sum, sizeof sum, t, ", ", ", "));
	else
		snprintf(buf, len, "rel_l2 %.3e, max abs %.3g, ulp max %u p99 %u, cos %.6f",
			 t->dense.rel_l2, t->dense.max_abs, t->dense.ulp_max, t->dense.ulp_p99,
			 t->dense.cosine);
}

/* The per-tap columns (the metric table's column view) of a dense or logits result. */
static void table_columns(const dsv32_tap_result *t, FILE *out)
{
	const dsv32_metric_desc *m;
	for (int place = 1; (m = dsv32_metric_at(DSV32_VIEW_COLUMN, place)); place++) {
		char v[48];
		fprintf(out, " %*s", m->col_width, dsv32_tap_figure_str(v, sizeof v, t, m));
	}
}

static void table_head(FILE *out)
{
	const dsv32_metric_desc *m;
	fprintf(out, "%-4s %-5s %-34s", "step", "mode", "tap");
	for (int place = 1; (m = dsv32_metric_at(DSV32_VIEW_COLUMN, place)); place++)
		fprintf(out, " %*s", m->col_width, m->col_term);
	fprintf(out, "  %s\n", "");
}

static void table_row(const dsv32_tap_result *t, FILE *out)
{
	const char *flag = t->over_budget ? "OVER" : "";
	const char *mode = t->mode == DSV32_DRIFT_LOCAL ? "local" : "prop";
	char sum[128];
	if (t->family == DSV32_FAMILY_SET) {
		fprintf(out, "%-4d %-5s %-34s%s  rows equal %lld/%lld (ties %lld) %s\n", t->step, mode,
			t->name, dsv32_report_summary(sum, sizeof sum, t, "  ", "  "),
			(long long)t->set.rows_equal, (long long)t->set.rows,
			(long long)t->set.rows_tie_equal, flag);
		return;
	}
	fprintf(out, "%-4d %-5s %-34s", t->step, mode, t->name);
	table_columns(t, out);
	fprintf(out, "  %s", flag);
	if (t->noise_ratio_a > 0 || t->noise_ratio_b > 0)
		fprintf(out, " noise x%.3g / x%.3g", t->noise_ratio_a, t->noise_ratio_b);
	fprintf(out, "\n");
	if (t->family == DSV32_FAMILY_LOGITS)
		fprintf(out, "%-4s %-5s %-34s%s\n", "", "", "",
			dsv32_report_summary(sum, sizeof sum, t, "  ", "  "));
}

static void table_verdict(const dsv32_cmp_result *r, FILE *out)
{
	for (size_t i = 0; i < r->n_skips; i++)
		fprintf(out, "skipped step %d %s: %s\n", r->skips[i].step, r->skips[i].name,
			r->skips[i].reason);
	if (r->nonfinite)
		fprintf(out, "NON-FINITE values first at %s\n", r->nonfinite_tap);
	if (r->first_divergence >= 0 || !r->nonfinite)
		dsv32_report_verdict(r, out);
}

void dsv32_report_table(const dsv32_cmp_result *r, FILE *out)
{
	fprintf(out, "%s vs %s (%s)\n", r->side_a, r->side_b, r->mode);
	table_head(out);
	for (size_t i = 0; i < r->n_taps; i++)
		table_row(&r->taps[i], out);
	table_verdict(r, out);
}

static int cmp_worst(const void *pa, const void *pb)
{
	const dsv32_tap_result *a = *(const dsv32_tap_result *const *)pa;
	const dsv32_tap_result *b = *(const dsv32_tap_result *const *)pb;
	double da = dsv32_tap_drift(a), db = dsv32_tap_drift(b);
	return (da < db) - (da > db);
}

/* The per-layer table has the columns (metric table) that name a Markdown header. */
static void layers_head(FILE *out)
{
	const dsv32_metric_desc *m;
	int n = 0;
	fprintf(out, "| layer | mode ");
	for (int place = 1; (m = dsv32_metric_at(DSV32_VIEW_COLUMN, place)); place++) {
		if (!m->col_md)
			continue;
		fprintf(out, "| %s ", m->col_md);
		n++;
	}
	fprintf(out, "|\n|---|---");
	for (int i = 0; i < n; i++)
		fprintf(out, "|---");
	fprintf(out, "|\n");
}

static void layers_row(const dsv32_tap_result *t, FILE *out)
{
	const dsv32_metric_desc *m;
	fprintf(out, "| %d | %s ", t->layer, t->mode == DSV32_DRIFT_LOCAL ? "local" : "propagate");
	for (int place = 1; (m = dsv32_metric_at(DSV32_VIEW_COLUMN, place)); place++) {
		char v[48];
		if (m->col_md)
			fprintf(out, "| %s ", dsv32_tap_figure_str(v, sizeof v, t, m));
	}
	fprintf(out, "|\n");
}

static void markdown_layers(const dsv32_cmp_result *r, FILE *out)
{
	fprintf(out, "\n### Per layer (step 0, residual stream `layers.N.out`)\n\n");
	layers_head(out);
	for (size_t i = 0; i < r->n_taps; i++) {
		const dsv32_tap_result *t = &r->taps[i];
		if (t->step == 0 && t->layer >= 0 && !strcmp(t->op, dsv32_layer_tap_op(DSV32_LTAP_OUT)))
			layers_row(t, out);
	}
}

/* One "Host" line per side that has one: engine and one-line fingerprint (live), or what the
 * recording states. */
static void markdown_hosts(const dsv32_cmp_result *r, FILE *out)
{
	bool any = false;
	for (int i = 0; i < 2; i++) {
		const dsv32_side_host *h = &r->host[i];
		if (!h->present)
			continue;
		any = true;
		fprintf(out, "- **Host %c** (%s, engine `%s`, numerics key `%s`", 'a' + i,
			h->recorded ? "recording" : "live", h->engine, h->numerics_key);
		if (h->ties[0])
			fprintf(out, ", ties `%s` from %s", h->ties, h->ties_from);
		if (h->exp[0])
			fprintf(out, ", exp `%s` from %s", h->exp, h->exp_from);
		fprintf(out, "): %s\n", h->line);
	}
	if (any)
		fprintf(out, "\n");
}

#define FORCED_SHOWN 50

/* The decisions the teacher-forced pass forced: every row (up to FORCED_SHOWN), its class and
 * margin, so no replaced decision goes unseen. */
static void markdown_forced(const dsv32_cmp_result *r, FILE *out)
{
	if (!r->n_forced)
		return;
	int64_t n[DSV32_FLIP_CLASS_COUNT];
	dsv32_cmp_result_forced_counts(r, n);
	fprintf(out, "\n### Forced decisions (teacher-forced)\n\n%zu row(s) used the other side's "
		"selection (%lld tie, %lld near-tie, %lld genuine, %lld unclassified); the taps after "
		"them measure arithmetic only, the set metrics above keep the unforced difference.\n\n"
		"| step | tap | row | class | margin |\n|---|---|---|---|---|\n", r->n_forced,
		(long long)n[DSV32_FLIP_TIE], (long long)n[DSV32_FLIP_NEAR_TIE],
		(long long)n[DSV32_FLIP_GENUINE], (long long)n[DSV32_FLIP_UNCLASSIFIED]);
	for (size_t i = 0; i < r->n_forced && i < FORCED_SHOWN; i++) {
		const dsv32_forced_row *f = &r->forced[i];
		fprintf(out, "| %d | `%s` | %lld | %s | %.3g |\n", f->step, f->tap, (long long)f->row,
			dsv32_flip_class_name(f->cls), f->margin);
	}
	if (r->n_forced > FORCED_SHOWN)
		fprintf(out, "\n... %zu more (the JSON report lists every one)\n",
			r->n_forced - FORCED_SHOWN);
}

void dsv32_report_markdown(const dsv32_cmp_result *r, FILE *out)
{
	bool pass = dsv32_cmp_result_passed(r);
	fprintf(out, "## dsv32-parity: `%s` vs `%s` (%s) — %s\n\n", r->side_a, r->side_b, r->mode,
		pass ? "✅ pass" : "❌ fail");
	markdown_hosts(r, out);
	if (dsv32_cmp_result_layer_limit(r))
		fprintf(out, "**Truncated model:** decoder layers %s (`--layers`); `final_norm` and "
			"`logits` are the truncated model's, not the model's.\n\n", dsv32_cmp_result_layer_limit(r));
	if (r->nonfinite)
		fprintf(out, "**Non-finite values** first appear at `%s`.\n\n", r->nonfinite_tap);
	if (r->first_divergence >= 0) {
		const dsv32_tap_result *t = &r->taps[r->first_divergence];
		fprintf(out, "**First divergence:** step %d, `%s` (%s)\n\n", t->step, t->name,
			t->budget_note);
	} else {
		fprintf(out, "%zu taps compared, all within budget.\n\n", r->n_taps);
	}
	char flip[512];
	if (dsv32_report_first_flip(flip, sizeof flip, r))
		fprintf(out, "**First decision flip:** %s.\n\n", flip);
	const dsv32_tap_result *first_flip = dsv32_cmp_result_first_flip(r);
	const dsv32_tap_result **order = malloc((r->n_taps ? r->n_taps : 1) * sizeof *order);
	if (order) {
		for (size_t i = 0; i < r->n_taps; i++)
			order[i] = &r->taps[i];
		qsort(order, r->n_taps, sizeof *order, cmp_worst);
		fprintf(out, "### Worst taps\n\n| step | tap | mode | drift |\n|---|---|---|---|\n");
		for (size_t i = 0; i < r->n_taps && i < 10; i++) {
			char d[160];
			describe(order[i], d, sizeof d);
			fprintf(out, "| %d | `%s` | %s | %s%s%s |\n", order[i]->step, order[i]->name,
				order[i]->mode == DSV32_DRIFT_LOCAL ? "local" : "propagate", d,
				order[i]->over_budget ? " **over budget**" : "",
				unjudged_note(order[i], first_flip));
		}
		free(order);
	}
	markdown_layers(r, out);
	markdown_forced(r, out);
	if (r->n_skips) {
		fprintf(out, "\n### Skipped taps\n\n");
		for (size_t i = 0; i < r->n_skips && i < 50; i++)
			fprintf(out, "- step %d `%s`: %s\n", r->skips[i].step, r->skips[i].name,
				r->skips[i].reason);
	}
}

dsv32_status dsv32_report_write_markdown(const dsv32_cmp_result *r, const char *path,
					 dsv32_error *err)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (!f)
		return DSV32_FAIL(err, DSV32_E_NOMEM, "%s: rendering Markdown", path);
	dsv32_report_markdown(r, f);
	fclose(f);
	dsv32_status rc = dsv32_write_file_atomic(path, buf, len, err);
	free(buf);
	return rc;
}
