/* result.h: what a comparison run produces, independent of how it is reported.
 *
 * One dsv32_tap_result per (step, tap) compared, in the order the taps were produced, plus the
 * taps that were skipped (present on one side only, with the reason). reports/ renders this
 * as JSON (schema_version 1, reports/schema/drift-report.schema.json), Markdown and HTML.
 */
#ifndef DSV32_RESULT_H
#define DSV32_RESULT_H

#include <stdbool.h>
#include <stddef.h>

#include "compare/metrics.h"
#include "core/taps.h"

typedef enum { DSV32_DRIFT_PROPAGATE = 0, DSV32_DRIFT_LOCAL, DSV32_DRIFTMODE_COUNT } dsv32_drift_mode;

typedef struct {
	char name[96];        /* canonical tap name, e.g. "layers.3.attn.out" */
	char op[32];          /* tap name without the layer prefix, e.g. "attn.out" */
	int step;             /* 0 = prefill, 1.. = decode steps */
	int layer;            /* -1 for embed, final_norm, logits */
	dsv32_drift_mode mode;
	dsv32_metric_family family; /* which metric structs below are filled */
	char dtype_a[12], dtype_b[12];
	int ndim;
	int64_t shape[6];
	dsv32_metrics dense;        /* family DENSE (and LOGITS: the dense metrics of the logits) */
	dsv32_set_metrics set;      /* family SET */
	dsv32_logit_metrics logits; /* family LOGITS */
	double noise_ratio_a;       /* rel_l2(a,b) / rel_l2(a_bf16, a_fp32); 0 if not measured */
	double noise_ratio_b;
	bool over_budget;
	char budget_note[160];      /* which rule was exceeded: "rel_l2 0.031 > 0.02 (layers.*.out)" */
	/* Selection scores (masked-score taps): the most entries either side leaves unmasked in
	 * one row (0: not counted, e.g. read from a report). When it is at most the width k of
	 * the selection made from them, every row picks every visible entry whatever the scores
	 * are (a prompt no longer than index_topk): the scores decide nothing, and the tap is
	 * reported but not judged (decides_nothing, set when the selection tap arrives). */
	int64_t visible_max;
	bool decides_nothing;
} dsv32_tap_result;

typedef struct {
	char name[96];
	int step;
	char reason[128]; /* "only in a", "only in b", "shape [2,24,256] vs [2,1,256]", ... */
} dsv32_tap_skip;

/* The class of a decision flip, a row whose selection differs between the sides (metrics.h
 * "Decision flips"): equal scores, a margin inside the two sides' score noise, or beyond it;
 * unclassified without both sides' scores. Append only. */
typedef enum {
	DSV32_FLIP_TIE = 0,
	DSV32_FLIP_NEAR_TIE,
	DSV32_FLIP_GENUINE,
	DSV32_FLIP_UNCLASSIFIED,
	DSV32_FLIP_CLASS_COUNT
} dsv32_flip_class;

/* "tie", "near-tie", "genuine", "unclassified" ("?" out of range). */
const char *dsv32_flip_class_name(dsv32_flip_class c);
/* The class of a name, or -1. */
int dsv32_flip_class_find(const char *name);

/* A row whose decision the teacher-forced pass forced onto the driver's (runner.h
 * "--force-decisions"): the live side used the driver's selection from here on, so the taps
 * after it measure arithmetic only; the tap's set metrics keep the unforced difference. */
typedef struct {
	int step, layer;
	char tap[96];   /* "layers.1.indexer.topk" */
	int64_t row;    /* b * S + s */
	dsv32_flip_class cls;
	double margin;  /* the flip margin (metrics.h), 0 for a tie; -1 when unclassified */
} dsv32_forced_row;

typedef struct {
	char key[48];
	char value[512];
} dsv32_prov_item;

/* Where one side's numbers came from (kernels/host_info.h): the GEMM engine and the host
 * fingerprint of a live side, or what a recording's metadata says (docs/tap-format.md keys
 * gemm_engine, host_numerics_key, host_fingerprint). Strings are "" when unknown; a recording
 * without a fingerprint has engine and numerics_key "unknown". */
typedef struct {
	bool present;           /* filled (false: the report predates fingerprints) */
	bool recorded;          /* from a recording (taps:FILE), not measured live */
	char engine[16];        /* "fixed" | "host" | "unknown" */
	char numerics_key[256]; /* "fixed", "host:<onednn_impl>|<openblas_core>", "unknown" */
	char cpu_model[96];     /* live sides only (a recording stores the line below) */
	char isa[96];
	char onednn_impl[192];
	char openblas_core[48];
	char versions[256];
	int threads;            /* 0: unknown */
	char line[1024];        /* the one-line fingerprint (dsv32_host_fingerprint_line) */
	char ties[16];          /* top-k tie rule: "index" | "torch-cpu" | "" (a recording that
				 * does not say) */
	char ties_from[32];     /* live: "default" | "side option" | "recording" (adopted from the
				 * other side, a recording); recording: "metadata" | "device" */
	char exp[16];           /* exp rule of sigmoid and silu: "libm" | "torch-cpu" | "" (a
				 * recording that does not say) */
	char exp_from[32];      /* as ties_from ("metadata" for a recording) */
} dsv32_side_host;

/* Where one side's time went (issue 19): its open, and its forwards (every pass; step 0 is the
 * prefill, later steps decode) including the handling of their taps by the comparison. A
 * recording side has none (live false). */
typedef struct {
	bool live;
	double load_s, prefill_s, decode_s;
	int64_t prefill_tokens, decode_tokens;
} dsv32_side_timing;

typedef struct {
	/* provenance */
	dsv32_prov_item prov[32];
	dsv32_side_host host[2];     /* side a, side b */
	int n_prov;
	char side_a[160], side_b[160]; /* "ref:cpu:bf16:mp=1", "taps:golden.safetensors" */
	char mode[24];               /* "propagate", "teacher-forced", "both" */
	/* results */
	dsv32_tap_result *taps;
	size_t n_taps, cap_taps;
	dsv32_tap_skip *skips;
	size_t n_skips, cap_skips;
	long first_divergence;       /* index into taps of the first over-budget tap in model order
				      * (dsv32_tap_model_order) that the verdict judges, -1 if none */
	/* Free-running (propagate) taps after the first propagated decision flip (an index or
	 * expert set that differs in some row) are reported but not judged: from that flip on the
	 * two runs attend to different keys or route to different experts, and what follows is
	 * divergence of the inputs, not drift of the arithmetic, which the teacher-forced pass
	 * (with the decisions forced) measures. The flip itself is judged, unless every row of
	 * it is a tie or a near-tie (dsv32_tap_flips_explained). */
	long first_prop_flip;        /* index into taps of that flip, -1 if none */
	dsv32_side_timing timing[2]; /* side a, side b */
	double wall_s;               /* the whole run (0: not timed, e.g. read from a report) */
	double peak_rss_mb;          /* the process's peak resident set at the run's end */
	size_t n_unjudged;           /* over-budget taps not in the verdict: after it, scores
				      * that decide nothing (dsv32_tap_result.decides_nothing), or
				      * selections whose flips are explained (below) */
	size_t n_unjudged_scores;    /* of those, the scores that decide nothing */
	size_t n_unjudged_flips;     /* of those, the selections whose flips are explained */
	dsv32_forced_row *forced;    /* teacher-forced decisions, in the order they were forced */
	size_t n_forced, cap_forced;
	bool nonfinite;              /* NaN/Inf appeared in an activation */
	char nonfinite_tap[160];
	int n_layers, n_steps;
} dsv32_cmp_result;

void dsv32_cmp_result_init(dsv32_cmp_result *r);
void dsv32_cmp_result_free(dsv32_cmp_result *r);
/* Append (copies); returns NULL on allocation failure. */
dsv32_tap_result *dsv32_cmp_result_add(dsv32_cmp_result *r, const dsv32_tap_result *t);
bool dsv32_cmp_result_skip(dsv32_cmp_result *r, const char *name, int step, const char *reason);
/* After a layer-major pass (core/model.h "Layer-major"), whose taps arrive layer by layer over
 * all steps: put the taps, skips and forced rows added since the pass began (indices from
 * taps_from, skips_from, forced_from) in step order, keeping the order within each step, which
 * is what the step-major pass adds; then recompute what depends on the order of additions
 * (first divergence, first propagated flip, unjudged count, first non-finite tap) as
 * dsv32_cmp_result_add would have on that order. false: out of memory (r unchanged). */
bool dsv32_cmp_result_sort_steps(dsv32_cmp_result *r, size_t taps_from, size_t skips_from,
				 size_t forced_from);
/* Append a forced row (copies); false on allocation failure. */
bool dsv32_cmp_result_force(dsv32_cmp_result *r, const dsv32_forced_row *f);
/* The forced rows by class: counts[DSV32_FLIP_CLASS_COUNT]. */
void dsv32_cmp_result_forced_counts(const dsv32_cmp_result *r, int64_t *counts);
/* The first set tap whose rows differ, in result order, a free-running (propagate) one if any:
 * where free-running divergence starts; NULL when no selection differs. */
const dsv32_tap_result *dsv32_cmp_result_first_flip(const dsv32_cmp_result *r);

/* A set tap's differing rows by class, from its stored counts: differ = rows - rows_equal,
 * ties = rows_tie_equal - rows_equal, unclassified = rows - rows_tie_equal - rows_near_tie -
 * rows_genuine. Saturated to the int64 range, as are sums of them (dsv32_sat_add_i64): a report
 * read back may hold any counts (reports/json.c saturates them), and the renderers add them up. */
typedef struct {
	int64_t differ, ties, unclassified;
} dsv32_set_row_classes;
dsv32_set_row_classes dsv32_set_row_classes_of(const dsv32_set_metrics *s);
int64_t dsv32_sat_add_i64(int64_t a, int64_t b);
/* Whether t is a free-running tap after that first flip in model order: its drift includes
 * other decisions, not arithmetic alone. */
bool dsv32_tap_after_flip(const dsv32_tap_result *t, const dsv32_tap_result *first_flip);
/* Whether t is a selection whose differing rows are all ties or near-ties (metrics.h
 * "Decision flips"): each flip is explained by the two sides' own score difference, which the
 * scores tap is judged on, so the set metrics of t are reported but not judged, in every
 * mode. A row left unclassified (no scores to measure it) keeps t judged. */
bool dsv32_tap_flips_explained(const dsv32_tap_result *t);
/* Why an over-budget t is reported but not judged: "after a decision flip", "its selection
 * takes every visible entry", "every flip is a tie or a near-tie", or NULL when it is judged
 * (or within budget). */
const char *dsv32_tap_unjudged_why(const dsv32_tap_result *t,
				   const dsv32_tap_result *first_flip);
void dsv32_cmp_result_prov(dsv32_cmp_result *r, const char *key, const char *value);
bool dsv32_cmp_result_passed(const dsv32_cmp_result *r);
/* The result in r of the same tap as t (name, step and mode), or NULL. r may be NULL. */
const dsv32_tap_result *dsv32_cmp_result_find(const dsv32_cmp_result *r,
					      const dsv32_tap_result *t);
/* The provenance value of key, or NULL when r has none. */
const char *dsv32_cmp_result_prov_get(const dsv32_cmp_result *r, const char *key);
/* The "layers" provenance of a --layers run ("4 of 61"), NULL for a whole model. */
const char *dsv32_cmp_result_layer_limit(const dsv32_cmp_result *r);
/* The one drift figure of a result that rankings and the CI gate use: rel_l2 (dense, logits),
 * 1 - jaccard (sets). */
double dsv32_tap_drift(const dsv32_tap_result *t);

/* A figure of the metric table (metrics.h) in a result, as a double; 0 when the result does not
 * carry the figure's family (a set result's dense figures). */
double dsv32_tap_figure(const dsv32_tap_result *t, const dsv32_metric_desc *m);
/* Whether m is a metric of t's family (what a budget limit on m applies to). */
bool dsv32_tap_has_metric(const dsv32_tap_result *t, const dsv32_metric_desc *m);
/* Where t stores the figure m (of m->type); NULL for a derived figure. */
void *dsv32_tap_figure_ptr(dsv32_tap_result *t, const dsv32_metric_desc *m);
/* A figure formatted with its table format (m->fmt) into buf; returns buf. */
const char *dsv32_tap_figure_str(char *buf, size_t len, const dsv32_tap_result *t,
				 const dsv32_metric_desc *m);

/* Noise floor: for every dense tap of `r`, noise_ratio_a = rel_l2 / rel_l2 of the same tap in
 * floor_a (a's bf16 run vs its fp32 run), likewise for b. Taps absent from a floor keep 0. */
void dsv32_cmp_apply_noise_floor(dsv32_cmp_result *r, const dsv32_cmp_result *floor_a,
				 const dsv32_cmp_result *floor_b);

/* Model order of two results: step, then layer (embed, layers 0..N-1, final_norm, logits), then
 * the op's place in a layer as the models emit them, then mode. <0, 0, >0 as strcmp. */
int dsv32_tap_model_order(const dsv32_tap_result *x, const dsv32_tap_result *y);

#endif
