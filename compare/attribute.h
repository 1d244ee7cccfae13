/* attribute.h: how much of the drift between ref and hf each numerics difference causes
 * (issue 18, docs/attribution.md; the knobs are core/knobs.h).
 *
 * dsv32_attribute(cfg, ref, hf, out, err) runs, with cfg's checkpoint, tokens, steps and passes
 * (no budget is applied: every run only measures):
 *   total     ref vs hf
 *   knob k    ref vs ref+k, for every implemented knob: the drift the difference adds alone
 *   path i    ref+k_1..k_i vs hf, the implemented knobs flipped one after another in table
 *             order: what is left of the drift after each step toward hf; the last point is
 *             the residual the knobs that are not yet switches leave.
 * Each run is summarised as a dsv32_attr_point: teacher-forced, the rel_l2 of layers.N.out per
 * layer (worst step); propagated, the logits' KL, top-1 agreement, top-5 overlap and rel_l2
 * (worst step); the decision rows that differ beyond ties (teacher-forced set taps); and the
 * taps with any difference at all.
 */
#ifndef DSV32_ATTRIBUTE_H
#define DSV32_ATTRIBUTE_H

#include "compare/runner.h"
#include "core/knobs.h"

#define DSV32_ATTR_MAX_LAYERS 128
#define DSV32_ATTR_MAX_KNOBS 32

typedef struct {
	bool local_ran, propagate_ran;
	int n_layers;
	double layer_rel_l2[DSV32_ATTR_MAX_LAYERS]; /* teacher-forced layers.N.out; -1: not run */
	double logits_kl, logits_top1, logits_top5, logits_rel_l2; /* propagated, worst step */
	int64_t flip_rows;   /* teacher-forced set-tap rows that differ beyond ties */
	int64_t taps_changed; /* taps (either pass) with any difference */
	int64_t taps;         /* taps compared */
} dsv32_attr_point;

typedef struct {
	size_t n_knobs;                            /* the table's length (core/knobs.h) */
	const dsv32_knob *knobs;
	dsv32_attr_point total;                    /* ref vs hf */
	dsv32_attr_point alone[DSV32_ATTR_MAX_KNOBS]; /* ref vs ref+knob (implemented knobs) */
	dsv32_attr_point path[DSV32_ATTR_MAX_KNOBS];  /* after flipping the i-th implemented knob */
	int path_knob[DSV32_ATTR_MAX_KNOBS];       /* which knob each path point added */
	int n_path;
} dsv32_attribution;

/* Called before each run with its index (0-based), the run count and what it compares. */
typedef void (*dsv32_attr_progress)(void *user, int run, int n_runs, const char *what);

dsv32_status dsv32_attribute(const dsv32_cmp_config *cfg, const dsv32_side_spec *ref,
			     const dsv32_side_spec *hf, dsv32_attr_progress progress, void *user,
			     dsv32_attribution *out, dsv32_error *err);

/* The largest per-layer teacher-forced drift of a point (0 when the pass did not run). */
double dsv32_attr_max_layer(const dsv32_attr_point *p);

/* How a status-table row reads: "not measured" (no knob of it is a switch yet), "no effect"
 * (its knobs change no tap), "small" (under 10% of the total's worst layer drift and logits
 * KL), "matters". */
const char *dsv32_attr_row_verdict(const dsv32_attribution *a, const char *row);

/* The distinct status-table rows of the knob table, in table order (the headline table's
 * order; each row's knobs follow in table order), at most cap into rows; returns the count. */
int dsv32_attr_rows(const dsv32_attribution *a, const char **rows, int cap);

/* JSON (schema "dsv32-parity-attribution/1") and Markdown (attribute.c), and one
 * self-contained HTML page (reports/attribution_html.c: no scripts, no network) with the
 * headline table and one bar chart per layer and one for the logits: a bar per knob, its
 * length the drift that knob alone adds there. prov may be NULL. malloc'd, NULL on no memory. */
char *dsv32_attr_json(const dsv32_attribution *a, const dsv32_cmp_result *prov);
char *dsv32_attr_markdown(const dsv32_attribution *a);
char *dsv32_attr_html(const dsv32_attribution *a, const dsv32_cmp_result *prov);

#endif
