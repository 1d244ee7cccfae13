/* attribution_html.c: the attribution result (compare/attribute.h, issue 18) as one
 * self-contained HTML page: provenance, the headline table (one line per status-table row),
 * then one bar chart per decoder layer and one for the logits, a bar per knob whose length is
 * the drift that knob alone adds there, then every run as the Markdown lists them. Bars are
 * plain HTML/CSS: no scripts, no network.
 *
 * Every chart lists the knobs in the headline table's order (rows in table order, each row's
 * knobs in table order) with the row cell spanning its knobs, so a chart reads as the table.
 * Each knob line carries data-knob and, when measured, data-value (the JSON's number, printed
 * by the JSON's printer) so a test or a script can read the chart back without the bars.
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compare/attribute.h"
#include "reports/report.h"

/* The track a bar lies in: its width in pixels (bars are a percentage of it). */
#define TRACK_PX 360
/* Values spanning this ratio or more are drawn on a log10 scale. */
#define LOG_SPAN 100.0
/* The logits chart's pseudo layer. */
#define LOGITS (-1)

static const char *const palette[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e",
				      "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"};


/* " data-value='V'" with V printed as the JSON document prints it (cJSON: 15 significant
 * digits when they read back as the value, else 17), so the two texts are equal. */
static void data_value(FILE *f, double v)
{
	char buf[64];
	cJSON *n = cJSON_CreateNumber(v);
	if (n && cJSON_PrintPreallocated(n, buf, sizeof buf, false))
		fprintf(f, " data-value='%s'", buf);
	else /* no memory for the number: the exact value, in another spelling */
		fprintf(f, " data-value='%.17g'", v);
	cJSON_Delete(n);
}

/* What a chart draws for one run: the layer's teacher-forced rel_l2, or at LOGITS the
 * propagated logits KL; -1 when that pass or tap did not run. */
static double value_at(const dsv32_attr_point *p, int layer)
{
	if (layer == LOGITS)
		return p->propagate_ran ? p->logits_kl : -1;
	if (!p->local_ran || layer < 0 || layer >= p->n_layers)
		return -1;
	return p->layer_rel_l2[layer];
}

typedef struct {
	bool log;      /* log10 lengths; else linear from 0 */
	double lo, hi; /* log: decade exponents; linear: 0 .. hi */
} scale;

static void range_add(double v, double *mn, double *mx)
{
	if (v > 0 && isfinite(v)) {
		*mn = fmin(*mn, v);
		*mx = fmax(*mx, v);
	}
}

/* One scale for all layer charts (so layers compare by eye), another for the logits (KL):
 * log10 when the positive values span LOG_SPAN or more, from the decade at least a quarter
 * decade below the smallest value, so that the shortest bar still shows. */
static scale scale_of(const dsv32_attribution *a, bool logits)
{
	double mn = INFINITY, mx = 0;
	int n = logits ? 1 : a->total.n_layers;
	for (int l = 0; l < n; l++) {
		int at = logits ? LOGITS : l;
		range_add(value_at(&a->total, at), &mn, &mx);
		for (size_t k = 0; k < a->n_knobs; k++)
			if (dsv32_attr_switch(a, &a->knobs[k]))
				range_add(value_at(&a->alone[k], at), &mn, &mx);
	}
	scale s = {false, 0, mx > 0 ? mx : 1};
	if (mx > 0 && mx / mn >= LOG_SPAN) {
		s.log = true;
		s.lo = floor(log10(mn) - 0.25);
		s.hi = ceil(log10(mx));
	}
	return s;
}

/* A bar's length in percent of its track. */
static double bar_pct(const scale *s, double v)
{
	if (v <= 0)
		return 0;
	double x = s->log ? (log10(v) - s->lo) / (s->hi - s->lo) : v / s->hi;
	return 100 * fmin(fmax(x, 0), 1);
}

static void scale_note(FILE *f, const scale *s)
{
	if (s->log)
		fprintf(f, "log scale, 1e%d to 1e%d, a grid line per decade", (int)s->lo, (int)s->hi);
	else
		fprintf(f, "linear scale, 0 to %.3g", s->hi);
}

/* The bar cell and the number cell of one measured value (v >= 0). */
static void bar_cells(FILE *f, const scale *s, double v, const char *color)
{
	fprintf(f, "<td><div class='track'");
	if (s->log)
		fprintf(f, " style='background-size:%.4f%% 100%%'", 100.0 / (s->hi - s->lo));
	fprintf(f, "><div class='bar' style='width:%.2f%%;background:%s'></div></div></td>",
		bar_pct(s, v), color);
	if (v > 0)
		fprintf(f, "<td class='num'>%.3g</td>", v);
	else
		fprintf(f, "<td class='num'>0</td>");
}

/* The knobs of row in table order; returns their count. */
static int knobs_of_row(const dsv32_attribution *a, const char *row, int *idx)
{
	int n = 0;
	for (size_t k = 0; k < a->n_knobs; k++)
		if (!strcmp(a->knobs[k].row, row))
			idx[n++] = (int)k;
	return n;
}

/* One knob's line: the row cell (first knob of the row only), the knob, its bar and number. */
static void knob_line(FILE *f, const dsv32_attribution *a, int k, const char *row, int span,
		      int row_i, int layer, const scale *s)
{
	const dsv32_knob *kb = &a->knobs[k];
	bool impl = dsv32_attr_switch(a, kb);
	double v = impl ? value_at(&a->alone[k], layer) : -1;
	fprintf(f, "<tr class='knob' data-knob='");
	dsv32_html_escape(f, kb->name);
	fprintf(f, "'");
	if (v >= 0)
		data_value(f, v);
	fprintf(f, ">");
	if (span > 0) {
		fprintf(f, "<td class='row' rowspan='%d'>", span);
		dsv32_html_escape(f, row);
		fprintf(f, "<div class='verdict'>");
		dsv32_html_escape(f, dsv32_attr_row_verdict(a, row));
		fprintf(f, "</div></td>");
	}
	fprintf(f, "<td><code title='");
	dsv32_html_escape(f, kb->summary);
	fprintf(f, "'>");
	dsv32_html_escape(f, kb->name);
	fprintf(f, "</code></td>");
	if (v >= 0)
		bar_cells(f, s, v, palette[row_i % 10]);
	else
		fprintf(f, "<td></td><td class='num'>%s</td>", impl ? "n/a" : "not a switch");
	fprintf(f, "</tr>\n");
}

/* One chart: the total, then every knob in the headline table's order. */
static void chart(FILE *f, const dsv32_attribution *a, const char *const *rows, int nr,
		  int layer, const scale *s)
{
	if (layer == LOGITS)
		fprintf(f, "<section class='chart' id='logits' data-chart='logits'>\n<h3>Logits: KL "
			   "(propagated, worst step)</h3>\n");
	else
		fprintf(f, "<section class='chart' id='layer-%d' data-chart='layer' data-layer='%d'>"
			   "\n<h3>Layer %d: <code>layers.%d.out</code> rel_l2 (teacher-forced, worst "
			   "step)</h3>\n", layer, layer, layer, layer);
	fprintf(f, "<p class='note'>");
	scale_note(f, s);
	fprintf(f, "</p>\n<table class='bars'><thead><tr><th>status-table row</th><th>knob</th>"
		   "<th>drift it adds alone</th><th>value</th></tr></thead><tbody>\n");
	double t = value_at(&a->total, layer);
	fprintf(f, "<tr class='total'");
	if (t >= 0)
		data_value(f, t);
	fprintf(f, "><td colspan='2'>ref vs hf (every difference)</td>");
	if (t >= 0)
		bar_cells(f, s, t, "#444");
	else
		fprintf(f, "<td></td><td class='num'>n/a</td>");
	fprintf(f, "</tr>\n");
	for (int i = 0; i < nr; i++) {
		int idx[DSV32_ATTR_MAX_KNOBS];
		int n = knobs_of_row(a, rows[i], idx);
		for (int j = 0; j < n; j++)
			knob_line(f, a, idx[j], rows[i], j == 0 ? n : 0, i, layer, s);
	}
	fprintf(f, "</tbody></table>\n</section>\n");
}

static void page_head(FILE *f, const dsv32_cmp_result *prov)
{
	fprintf(f, "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
		   "<title>dsv32-parity attribution</title>\n<style>\n"
		   "body{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#222}h1{font-size:20px}"
		   "table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ddd;"
		   "padding:2px 6px;text-align:left;vertical-align:middle}td.num{text-align:right;"
		   "white-space:nowrap}.verdict{color:#666;font-size:11px}.note{color:#555;"
		   "font-size:12px;margin:2px 0}.charts{display:flex;flex-wrap:wrap;gap:16px}"
		   ".chart h3{font-size:14px;margin:8px 0 2px}"
		   ".track{width:%dpx;height:12px;background-color:#f6f6f6;background-image:"
		   "linear-gradient(to right,#d8d8d8 1px,transparent 1px)}.bar{height:12px}"
		   "tr.total td{font-weight:600}dl{display:grid;grid-template-columns:max-content "
		   "auto;gap:2px 12px}dt{font-weight:600}dd{margin:0;word-break:break-all}\n"
		   "</style></head><body>\n<h1>dsv32-parity attribute: which difference between ref "
		   "and hf causes how much</h1>\n<dl>", TRACK_PX);
	for (int i = 0; prov && i < prov->n_prov; i++) {
		fprintf(f, "<dt>");
		dsv32_html_escape(f, prov->prov[i].key);
		fprintf(f, "</dt><dd>");
		dsv32_html_escape(f, prov->prov[i].value);
		fprintf(f, "</dd>");
	}
	fprintf(f, "</dl>\n");
}

/* The headline table: one line per status-table row, its knobs and its verdict. */
static void headline(FILE *f, const dsv32_attribution *a, const char *const *rows, int nr)
{
	fprintf(f, "<h2>Status-table rows</h2>\n<table class='headline'><thead><tr><th>"
		   "status-table row</th><th>knobs</th><th>verdict</th></tr></thead><tbody>\n");
	for (int i = 0; i < nr; i++) {
		int idx[DSV32_ATTR_MAX_KNOBS];
		int n = knobs_of_row(a, rows[i], idx);
		fprintf(f, "<tr><td>");
		dsv32_html_escape(f, rows[i]);
		fprintf(f, "</td><td>");
		for (int j = 0; j < n; j++) {
			fprintf(f, "%s<code>", j ? ", " : "");
			dsv32_html_escape(f, a->knobs[idx[j]].name);
			fprintf(f, "</code>%s", dsv32_attr_switch(a, &a->knobs[idx[j]]) ? ""
				: a->direction == DSV32_ATTR_HF_TO_REF ? " (not yet a switch of hf)"
								      : " (not yet a switch)");
		}
		fprintf(f, "</td><td>");
		dsv32_html_escape(f, dsv32_attr_row_verdict(a, rows[i]));
		fprintf(f, "</td></tr>\n");
	}
	fprintf(f, "</tbody></table>\n");
}

/* The cells of one run in the per-run table (the Markdown's columns). */
static void run_cells(FILE *f, const dsv32_attr_point *p)
{
	if (p->local_ran)
		fprintf(f, "<td class='num'>%.3g</td><td class='num'>%lld</td>",
			dsv32_attr_max_layer(p), (long long)p->flip_rows);
	else
		fprintf(f, "<td class='num'>n/a</td><td class='num'>n/a</td>");
	if (p->propagate_ran)
		fprintf(f, "<td class='num'>%.3g</td><td class='num'>%.3f</td>", p->logits_kl,
			p->logits_top1);
	else
		fprintf(f, "<td class='num'>n/a</td><td class='num'>n/a</td>");
	fprintf(f, "<td class='num'>%lld of %lld</td></tr>\n", (long long)p->taps_changed,
		(long long)p->taps);
}

/* Every run: the total, each switch alone and the path toward hf, as the Markdown has them. */
static void runs_table(FILE *f, const dsv32_attribution *a)
{
	const char *b = dsv32_attr_base(a), *g = dsv32_attr_target(a);
	fprintf(f, "<h2>Runs</h2>\n<p>The total (ref vs hf), each knob alone (%s vs %s with the "
		   "knob flipped) and the path (knobs flipped one after another toward %s, compared "
		   "with %s); the last path line is what the knobs that are not yet switches%s leave."
		   "</p>\n<table class='runs'><thead><tr><th>run</th><th>worst layer rel_l2 "
		   "(teacher-forced)</th><th>decision rows</th><th>logits KL</th><th>top-1</th>"
		   "<th>taps changed</th></tr></thead><tbody>\n<tr><td>ref vs hf</td>", b, b, g, g,
		a->direction == DSV32_ATTR_HF_TO_REF ? " of hf" : "");
	run_cells(f, &a->total);
	for (size_t k = 0; k < a->n_knobs; k++)
		if (dsv32_attr_switch(a, &a->knobs[k])) {
			fprintf(f, "<tr><td><code>");
			dsv32_html_escape(f, a->knobs[k].name);
			fprintf(f, "</code> alone</td>");
			run_cells(f, &a->alone[k]);
		}
	for (int i = 0; i < a->n_path; i++) {
		fprintf(f, "<tr><td>path: + <code>");
		dsv32_html_escape(f, a->knobs[a->path_knob[i]].name);
		fprintf(f, "</code>, vs %s</td>", g);
		run_cells(f, &a->path[i]);
	}
	fprintf(f, "</tbody></table>\n");
}

static void charts(FILE *f, const dsv32_attribution *a, const char *const *rows, int nr)
{
	fprintf(f, "<h2>Per layer</h2>\n<p>Each bar is the drift one knob adds alone (%s vs %s "
		   "with that knob flipped toward %s), the first the total (ref vs hf). Decisions are "
		   "forced in the teacher-forced pass, so these bars are arithmetic only; the "
		   "decision rows a knob flips are in the JSON and Markdown.</p>\n",
		dsv32_attr_base(a), dsv32_attr_base(a), dsv32_attr_target(a));
	if (!a->total.local_ran)
		fprintf(f, "<p>The teacher-forced pass did not run (--mode propagate): no per-layer "
			   "charts.</p>\n");
	scale s = scale_of(a, false);
	fprintf(f, "<div class='charts'>\n");
	for (int l = 0; a->total.local_ran && l < a->total.n_layers; l++)
		chart(f, a, rows, nr, l, &s);
	fprintf(f, "</div>\n<h2>Logits</h2>\n");
	if (a->total.propagate_ran) {
		s = scale_of(a, true);
		chart(f, a, rows, nr, LOGITS, &s);
	} else {
		fprintf(f, "<p>The propagated pass did not run (--mode teacher-forced): no logits "
			   "chart.</p>\n");
	}
}

char *dsv32_attr_html(const dsv32_attribution *a, const dsv32_cmp_result *prov)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (!f)
		return NULL;
	const char *rows[DSV32_ATTR_MAX_KNOBS];
	int nr = dsv32_attr_rows(a, rows, DSV32_ATTR_MAX_KNOBS);
	page_head(f, prov);
	if (a->direction == DSV32_ATTR_HF_TO_REF)
		fprintf(f, "<p class='direction' data-direction='hf-to-ref'>Direction: hf-to-ref "
			   "(each knob flipped on the hf layout toward ref).</p>\n");
	headline(f, a, rows, nr);
	charts(f, a, rows, nr);
	runs_table(f, a);
	fprintf(f, "</body></html>");
	bool bad = ferror(f) != 0;
	if (fclose(f) != 0 || bad) {
		free(buf);
		return NULL;
	}
	return buf;
}
