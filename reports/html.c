/* html.c: one self-contained HTML page with inline SVG drift charts (no scripts, no network):
 * drift per layer for each metric and op (propagated and local side by side), drift per decode
 * step, and the per-tap table. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/fsutil.h"
#include "core/taps.h"
#include "reports/report.h"

#define W 520
#define H 260
#define PAD_L 60
#define PAD_B 36
#define PAD_T 28
#define PAD_R 130

static const char *const palette[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e",
				      "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"};
/* The layer ops drawn per layer (core/taps.h), one colour each: the residual stream and the
 * activations on its way; scores, selections and the indexer's fp8 keys have their own scale. */
static const dsv32_layer_tap chart_ops[] = {
	DSV32_LTAP_ATTN_NORM, DSV32_LTAP_Q_LATENT, DSV32_LTAP_KV_LATENT,
	DSV32_LTAP_Q_ROPE,    DSV32_LTAP_K_ROPE,   DSV32_LTAP_ATTN_OUT,
	DSV32_LTAP_FFN_NORM,  DSV32_LTAP_FFN_OUT,  DSV32_LTAP_OUT,
};
#define N_OPS (sizeof chart_ops / sizeof chart_ops[0])

void dsv32_html_escape(FILE *f, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '<': fputs("&lt;", f); break;
		case '>': fputs("&gt;", f); break;
		case '&': fputs("&amp;", f); break;
		case '"': fputs("&quot;", f); break;
		case '\'': fputs("&#39;", f); break;
		default: fputc(*s, f);
		}
	}
}

/* A legend row: a short line in the series colour and its name. */
static void legend_entry(FILE *f, int row, const char *color, const char *name)
{
	int y = PAD_T + 12 * row;
	fprintf(f, "<line x1='%d' x2='%d' y1='%d' y2='%d' stroke='%s' stroke-width='3'/>"
		   "<text x='%d' y='%d' class='a'>%s</text>\n",
		W - PAD_R + 6, W - PAD_R + 20, y - 3, y - 3, color, W - PAD_R + 24, y, name);
}

typedef struct {
	const dsv32_metric_desc *metric; /* a figure of the metric table's chart view */
	int step;
	int mode;
} chart_spec;

static double tap_value(const dsv32_tap_result *t, const dsv32_metric_desc *metric)
{
	return dsv32_tap_figure(t, metric);
}

/* log10 axis bounds over the values that will be plotted */
static void value_range(const dsv32_cmp_result *r, const chart_spec *c, double *lo, double *hi)
{
	*lo = INFINITY;
	*hi = -INFINITY;
	for (size_t i = 0; i < r->n_taps; i++) {
		const dsv32_tap_result *t = &r->taps[i];
		if (t->step != c->step || (int)t->mode != c->mode || t->layer < 0 || t->family != DSV32_FAMILY_DENSE)
			continue;
		double v = tap_value(t, c->metric);
		if (v > 0 && isfinite(v)) {
			double l = log10(v);
			*lo = l < *lo ? l : *lo;
			*hi = l > *hi ? l : *hi;
		}
	}
	if (!isfinite(*lo)) {
		*lo = -8;
		*hi = 0;
	}
	*lo = floor(*lo);
	*hi = ceil(*hi);
	if (*hi <= *lo)
		*hi = *lo + 1;
}

static double px_x(int layer, int n_layers)
{
	int n = n_layers > 1 ? n_layers - 1 : 1;
	return PAD_L + (double)layer * (W - PAD_L - PAD_R) / n;
}

static double px_y(double v, double lo, double hi)
{
	double l = v > 0 ? log10(v) : lo;
	return PAD_T + (hi - l) * (H - PAD_T - PAD_B) / (hi - lo);
}

static void chart_axes(FILE *f, const char *title, double lo, double hi, int n_layers)
{
	fprintf(f, "<text x='%d' y='18' class='t'>", PAD_L);
	dsv32_html_escape(f, title);
	fprintf(f, "</text>\n");
	for (double e = lo; e <= hi + 1e-9; e += 1) {
		double y = px_y(pow(10, e), lo, hi);
		fprintf(f, "<line x1='%d' x2='%d' y1='%.1f' y2='%.1f' class='g'/>"
			   "<text x='%d' y='%.1f' class='a' text-anchor='end'>1e%d</text>\n",
			PAD_L, W - PAD_R, y, y, PAD_L - 4, y + 4, (int)e);
	}
	for (int l = 0; l < n_layers; l++) {
		double x = px_x(l, n_layers);
		fprintf(f, "<text x='%.1f' y='%d' class='a' text-anchor='middle'>%d</text>\n", x,
			H - PAD_B + 14, l);
	}
	fprintf(f, "<text x='%d' y='%d' class='a' text-anchor='middle'>layer</text>\n",
		(PAD_L + W - PAD_R) / 2, H - 6);
}

static void chart(FILE *f, const dsv32_cmp_result *r, const chart_spec *c)
{
	double lo, hi;
	value_range(r, c, &lo, &hi);
	char title[96];
	snprintf(title, sizeof title, "%s per layer, step %d, %s", c->metric->json_key, c->step,
		 c->mode == DSV32_DRIFT_LOCAL ? "local (teacher-forced)" : "propagated");
	fprintf(f, "<svg width='%d' height='%d' viewBox='0 0 %d %d' role='img'>\n", W, H, W, H);
	chart_axes(f, title, lo, hi, r->n_layers);
	int legend = 0;
	for (size_t o = 0; o < N_OPS; o++) {
		int pts = 0;
		for (size_t i = 0; i < r->n_taps; i++) {
			const dsv32_tap_result *t = &r->taps[i];
			if (t->step != c->step || (int)t->mode != c->mode || t->layer < 0 ||
			    strcmp(t->op, dsv32_layer_tap_op(chart_ops[o])) != 0 || t->family != DSV32_FAMILY_DENSE)
				continue;
			if (pts++ == 0)
				fprintf(f, "<polyline fill='none' stroke='%s' stroke-width='1.6' points='",
					palette[o % 10]);
			fprintf(f, "%.1f,%.1f ", px_x(t->layer, r->n_layers),
				px_y(tap_value(t, c->metric), lo, hi));
		}
		if (!pts)
			continue;
		fprintf(f, "'/>\n");
		legend_entry(f, legend, palette[o % 10], dsv32_layer_tap_op(chart_ops[o]));
		legend++;
	}
	fprintf(f, "</svg>\n");
}

/* One chart per figure of the metric table's chart view and drift mode present at step s. */
static void step_charts(FILE *f, const dsv32_cmp_result *r, int s)
{
	const dsv32_metric_desc *m;
	for (int place = 1; (m = dsv32_metric_at(DSV32_VIEW_CHART, place)); place++)
		for (int mode = 0; mode < DSV32_DRIFTMODE_COUNT; mode++) {
			bool any = false;
			for (size_t i = 0; i < r->n_taps && !any; i++)
				any = r->taps[i].step == s && (int)r->taps[i].mode == mode;
			if (!any)
				continue;
			chart_spec c = {m, s, mode};
			chart(f, r, &c);
		}
}

static void step_chart(FILE *f, const dsv32_cmp_result *r)
{
	if (r->n_steps < 2)
		return;
	double lo = INFINITY, hi = -INFINITY;
	for (size_t i = 0; i < r->n_taps; i++) {
		const dsv32_tap_result *t = &r->taps[i];
		if (t->family == DSV32_FAMILY_LOGITS && t->dense.rel_l2 > 0 && isfinite(t->dense.rel_l2)) {
			double l = log10(t->dense.rel_l2);
			lo = l < lo ? l : lo;
			hi = l > hi ? l : hi;
		}
	}
	if (!isfinite(lo)) {
		lo = -8;
		hi = 0;
	}
	lo = floor(lo);
	hi = ceil(hi) > lo ? ceil(hi) : lo + 1;
	fprintf(f, "<svg width='%d' height='%d' viewBox='0 0 %d %d' role='img'>\n", W, H, W, H);
	chart_axes(f, "logits rel_l2 per decode step (x axis: step)", lo, hi, r->n_steps);
	for (int mode = 0; mode < DSV32_DRIFTMODE_COUNT; mode++) {
		int pts = 0;
		for (size_t i = 0; i < r->n_taps; i++) {
			const dsv32_tap_result *t = &r->taps[i];
			if (t->family != DSV32_FAMILY_LOGITS || (int)t->mode != mode)
				continue;
			if (pts++ == 0)
				fprintf(f, "<polyline fill='none' stroke='%s' stroke-width='1.6' points='",
					palette[mode]);
			fprintf(f, "%.1f,%.1f ", px_x(t->step, r->n_steps), px_y(t->dense.rel_l2, lo, hi));
		}
		if (pts)
		{
			fprintf(f, "'/>\n");
			legend_entry(f, mode, palette[mode], mode ? "local" : "propagated");
		}
	}
	fprintf(f, "</svg>\n");
}

/* The per-tap columns of the metric table: headers, or a result's cells. */
static int columns_head(FILE *f)
{
	const dsv32_metric_desc *m;
	int n = 0;
	for (int place = 1; (m = dsv32_metric_at(DSV32_VIEW_COLUMN, place)); place++, n++)
		fprintf(f, "<th>%s</th>", m->col_html);
	return n;
}

static void columns_row(FILE *f, const dsv32_tap_result *t)
{
	const dsv32_metric_desc *m;
	for (int place = 1; (m = dsv32_metric_at(DSV32_VIEW_COLUMN, place)); place++) {
		char v[48];
		fprintf(f, "<td>%s</td>", dsv32_tap_figure_str(v, sizeof v, t, m));
	}
}

static void tap_row(FILE *f, const dsv32_tap_result *t, int n_cols, bool after_flip)
{
	char sum[128];
	const char *cls = t->over_budget ? (after_flip ? " class='over flip'" : " class='over'")
					 : (after_flip ? " class='flip'" : "");
	fprintf(f, "<tr%s><td>%d</td><td>%s</td><td><code>", cls, t->step,
		t->mode == DSV32_DRIFT_LOCAL ? "local" : "prop");
	dsv32_html_escape(f, t->name);
	fprintf(f, "</code>%s</td><td>%s / %s</td>", after_flip ? " <i>after a decision flip</i>" : "",
		t->dtype_a, t->dtype_b);
	if (t->family == DSV32_FAMILY_SET) {
		fprintf(f, "<td colspan='%d'></td><td>jaccard %.4f, equal %lld/%lld, ties %lld",
			n_cols, t->set.jaccard, (long long)t->set.rows_equal, (long long)t->set.rows,
			(long long)t->set.rows_tie_equal);
		if (t->set.score_noise >= 0) /* both sides' scores: the flips classified */
			fprintf(f, "; flips: %lld near-tie, %lld genuine (margin %.3g, noise %.3g)",
				(long long)t->set.rows_near_tie, (long long)t->set.rows_genuine,
				t->set.flip_margin_max, t->set.score_noise);
		fprintf(f, "</td>");
	} else {
		columns_row(f, t);
		fprintf(f, "<td>%s</td>", t->family == DSV32_FAMILY_LOGITS
			? dsv32_report_summary(sum, sizeof sum, t, "", ", ") : "");
	}
	fprintf(f, "<td>");
	dsv32_html_escape(f, t->over_budget ? t->budget_note : "ok");
	fprintf(f, "%s</td></tr>\n",
		t->over_budget && (after_flip || t->decides_nothing || dsv32_tap_flips_explained(t))
			? " (not judged)"
			: "");
}

static void tap_table(FILE *f, const dsv32_cmp_result *r)
{
	fprintf(f, "<table><thead><tr><th>step</th><th>mode</th><th>tap</th><th>dtypes</th>");
	int n_cols = columns_head(f);
	fprintf(f, "<th>sets / logits</th><th>budget</th></tr></thead><tbody>\n");
	const dsv32_tap_result *first_flip = dsv32_cmp_result_first_flip(r);
	for (size_t i = 0; i < r->n_taps; i++)
		tap_row(f, &r->taps[i], n_cols, dsv32_tap_after_flip(&r->taps[i], first_flip));
	fprintf(f, "</tbody></table>\n");
}

static void page_head(FILE *f, const dsv32_cmp_result *r)
{
	bool pass = dsv32_cmp_result_passed(r);
	fprintf(f, "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
		   "<title>dsv32-parity drift report</title>\n<style>\n"
		   "body{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#222}"
		   "h1{font-size:20px}.v{padding:2px 8px;border-radius:4px;color:#fff}"
		   ".pass{background:#2a7}.fail{background:#c33}svg{border:1px solid #ddd;margin:4px;background:#fff}"
		   ".t{font-size:13px;font-weight:600}.a{font-size:10px;fill:#555}.g{stroke:#eee}"
		   "table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ddd;padding:2px 6px;text-align:right}"
		   "td:nth-child(3){text-align:left}tr.over{background:#fdd}tr.flip{color:#777}tr.over.flip{background:#f3eee0}dl{display:grid;grid-template-columns:max-content auto;gap:2px 12px}"
		   "dt{font-weight:600}dd{margin:0;word-break:break-all}\n</style></head><body>\n");
	fprintf(f, "<h1>dsv32-parity: <code>");
	dsv32_html_escape(f, r->side_a);
	fprintf(f, "</code> vs <code>");
	dsv32_html_escape(f, r->side_b);
	fprintf(f, "</code> <span class='v %s'>%s</span></h1>\n", pass ? "pass" : "fail",
		pass ? "PASS" : "FAIL");
	for (int i = 0; i < 2; i++) {
		const dsv32_side_host *h = &r->host[i];
		if (!h->present)
			continue;
		fprintf(f, "<p><b>Host %c</b> (%s, engine <code>", 'a' + i,
			h->recorded ? "recording" : "live");
		dsv32_html_escape(f, h->engine);
		fprintf(f, "</code>, numerics key <code>");
		dsv32_html_escape(f, h->numerics_key);
		fprintf(f, "</code>");
		if (h->ties[0]) {
			fprintf(f, ", ties <code>");
			dsv32_html_escape(f, h->ties);
			fprintf(f, "</code> from ");
			dsv32_html_escape(f, h->ties_from);
		}
		if (h->exp[0]) {
			fprintf(f, ", exp <code>");
			dsv32_html_escape(f, h->exp);
			fprintf(f, "</code> from ");
			dsv32_html_escape(f, h->exp_from);
		}
		fprintf(f, "): ");
		dsv32_html_escape(f, h->line);
		fprintf(f, "</p>\n");
	}
	if (dsv32_cmp_result_layer_limit(r)) {
		fprintf(f, "<p><b>Truncated model:</b> decoder layers ");
		dsv32_html_escape(f, dsv32_cmp_result_layer_limit(r));
		fprintf(f, " (<code>--layers</code>); final_norm and logits are the truncated "
			   "model's, not the model's.</p>\n");
	}
	if (r->first_divergence >= 0) {
		const dsv32_tap_result *t = &r->taps[r->first_divergence];
		fprintf(f, "<p><b>First divergence:</b> step %d, <code>", t->step);
		dsv32_html_escape(f, t->name);
		fprintf(f, "</code>: ");
		dsv32_html_escape(f, t->budget_note);
		fprintf(f, "</p>\n");
	}
	char flip[512];
	if (dsv32_report_first_flip(flip, sizeof flip, r)) {
		fprintf(f, "<p><b>First decision flip:</b> ");
		dsv32_html_escape(f, flip);
		fprintf(f, ".</p>\n");
	}
	if (r->nonfinite) {
		fprintf(f, "<p><b>Non-finite values</b> first at <code>");
		dsv32_html_escape(f, r->nonfinite_tap);
		fprintf(f, "</code></p>\n");
	}
	fprintf(f, "<dl>");
	for (int i = 0; i < r->n_prov; i++) {
		fprintf(f, "<dt>");
		dsv32_html_escape(f, r->prov[i].key);
		fprintf(f, "</dt><dd>");
		dsv32_html_escape(f, r->prov[i].value);
		fprintf(f, "</dd>");
	}
	fprintf(f, "</dl>\n");
}

#define FORCED_SHOWN 200

/* The decisions the teacher-forced pass forced, one row each (up to FORCED_SHOWN). */
static void forced_table(FILE *f, const dsv32_cmp_result *r)
{
	if (!r->n_forced)
		return;
	int64_t n[DSV32_FLIP_CLASS_COUNT];
	dsv32_cmp_result_forced_counts(r, n);
	fprintf(f, "<h2>Forced decisions (teacher-forced)</h2>\n<p>%zu row(s) used the other side's "
		"selection (%lld tie, %lld near-tie, %lld genuine, %lld unclassified): the taps after "
		"them measure arithmetic only; the set metrics keep the unforced difference.</p>\n"
		"<table><thead><tr><th>step</th><th>layer</th><th>tap</th><th>row</th><th>class</th>"
		"<th>margin</th></tr></thead><tbody>\n", r->n_forced, (long long)n[DSV32_FLIP_TIE],
		(long long)n[DSV32_FLIP_NEAR_TIE], (long long)n[DSV32_FLIP_GENUINE],
		(long long)n[DSV32_FLIP_UNCLASSIFIED]);
	for (size_t i = 0; i < r->n_forced && i < FORCED_SHOWN; i++) {
		const dsv32_forced_row *x = &r->forced[i];
		fprintf(f, "<tr><td>%d</td><td>%d</td><td><code>", x->step, x->layer);
		dsv32_html_escape(f, x->tap);
		fprintf(f, "</code></td><td>%lld</td><td>%s</td><td>%.3g</td></tr>\n",
			(long long)x->row, dsv32_flip_class_name(x->cls), x->margin);
	}
	fprintf(f, "</tbody></table>\n");
	if (r->n_forced > FORCED_SHOWN)
		fprintf(f, "<p>... %zu more (the JSON report lists every one)</p>\n",
			r->n_forced - FORCED_SHOWN);
}

void dsv32_report_html(const dsv32_cmp_result *r, FILE *f)
{
	page_head(f, r);
	for (int s = 0; s < (r->n_steps > 0 ? r->n_steps : 1); s++) {
		fprintf(f, "<h2>Step %d%s</h2><div>\n", s, s == 0 ? " (prefill)" : " (decode)");
		step_charts(f, r, s);
		fprintf(f, "</div>\n");
	}
	step_chart(f, r);
	forced_table(f, r);
	fprintf(f, "<h2>All taps</h2>\n");
	tap_table(f, r);
	fprintf(f, "</body></html>\n");
}

dsv32_status dsv32_report_write_html(const dsv32_cmp_result *r, const char *path, dsv32_error *err)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (!f)
		return DSV32_FAIL(err, DSV32_E_NOMEM, "%s: rendering HTML", path);
	dsv32_report_html(r, f);
	fclose(f);
	dsv32_status rc = dsv32_write_file_atomic(path, buf, len, err);
	free(buf);
	return rc;
}
