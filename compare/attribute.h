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
 * The other direction (dsv32_attribute_dir, DSV32_ATTR_HF_TO_REF; docs/attribution.md "The other
 * direction") runs the knobs' switches of the hf layout toward ref (apply_hf) instead:
 *   total     ref vs hf (the same run)
 *   knob k    hf vs hf+k, for every knob that is an hf switch
 *   path i    ref vs hf+k_1..k_i, the hf switches flipped one after another in table order;
 *             the last point is what the knobs that are not yet hf switches leave.
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

typedef enum {
	DSV32_ATTR_REF_TO_HF = 0, /* ref takes over hf's differences (apply_ref): the default */
	DSV32_ATTR_HF_TO_REF,     /* hf takes over ref's (apply_hf) */
	DSV32_ATTR_DIRECTION_COUNT
} dsv32_attr_direction;

/* "ref-to-hf" | "hf-to-ref" (the CLI's --direction), and back; false for another name. */
const char *dsv32_attr_direction_name(dsv32_attr_direction d);
bool dsv32_attr_direction_from_name(const char *name, dsv32_attr_direction *d);

typedef struct {
	dsv32_attr_direction direction;            /* 0 (ref-to-hf) unless dsv32_attribute_dir */
	size_t n_knobs;                            /* the table's length (core/knobs.h) */
	const dsv32_knob *knobs;
	dsv32_attr_point total;                    /* ref vs hf */
	dsv32_attr_point alone[DSV32_ATTR_MAX_KNOBS]; /* ref vs ref+knob (switches); hf-to-ref: hf
						      * vs hf+knob */
	dsv32_attr_point path[DSV32_ATTR_MAX_KNOBS];  /* after flipping the i-th switch */
	int path_knob[DSV32_ATTR_MAX_KNOBS];       /* which knob each path point added */
	int n_path;
} dsv32_attribution;

/* Called before each run with its index (0-based), the run count and what it compares. */
typedef void (*dsv32_attr_progress)(void *user, int run, int n_runs, const char *what);

dsv32_status dsv32_attribute(const dsv32_cmp_config *cfg, const dsv32_side_spec *ref,
			     const dsv32_side_spec *hf, dsv32_attr_progress progress, void *user,
			     dsv32_attribution *out, dsv32_error *err);

/* The same in either direction (dsv32_attribute is dsv32_attribute_dir toward hf). */
dsv32_status dsv32_attribute_dir(const dsv32_cmp_config *cfg, const dsv32_side_spec *ref,
				 const dsv32_side_spec *hf, dsv32_attr_direction dir,
				 dsv32_attr_progress progress, void *user, dsv32_attribution *out,
				 dsv32_error *err);

/* Whether knob k is a switch in a's direction (dsv32_knob_implemented or _implemented_hf). */
bool dsv32_attr_switch(const dsv32_attribution *a, const dsv32_knob *k);
/* The layout the knobs are flipped on ("ref" toward hf, "hf" toward ref), and the other. */
const char *dsv32_attr_base(const dsv32_attribution *a);
const char *dsv32_attr_target(const dsv32_attribution *a);

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
 * length the drift that knob alone adds there. prov may be NULL. malloc'd, NULL on no memory.
 * Toward hf (the default) the three are what they were before the other direction, byte for
 * byte; toward ref the JSON adds "direction": "hf-to-ref" and, per knob, "switch":
 * {"ref-to-hf": bool, "hf-to-ref": bool} ("implemented" is this direction's), and the Markdown
 * and HTML say the direction and name the runs by it. */
char *dsv32_attr_json(const dsv32_attribution *a, const dsv32_cmp_result *prov);
char *dsv32_attr_markdown(const dsv32_attribution *a);
char *dsv32_attr_html(const dsv32_attribution *a, const dsv32_cmp_result *prov);

#endif
