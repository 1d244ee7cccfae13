/* metrics.h: drift metrics between two tensors of one tap (docs/architecture.md "Metrics,
 * budgets, reports"), reduced as the tensors arrive so no activation is kept.
 *
 * dsv32_metrics_dense(m, a, b, n)
 *   a, b    any float dtype (F32, BF16, F16, F8_*, F64), n elements each, same dtype or not
 *   m       out: max |a-b| with its flat index, mean |a-b|, RMS of a-b, relative L2
 *           ||a-b|| / ||a||, cosine(a, b), bf16 ULP distance (max, mean, p99), the fraction of
 *           elements over the dtype-aware tolerance (dsv32_dtype_tolerance), NaN / Inf counts
 * Accum:  every sum in double (Kahan-free: n <= 2^40 keeps the relative error below 1e-4 of
 *         the reported metric, far below what the metrics are used for)
 * ULP:    bf16 ULP distance at the magnitude of the pair: both values are rounded to bf16,
 *         then d = ceil(|a-b| / spacing(max(|a|,|b|))), spacing(x) = 2^(exponent(x)-7) (the
 *         subnormal spacing 2^-133 below 2^-126). Neighbours on the grid are 1 apart; -0 == +0;
 *         a value against its negation is ~2|x|/spacing (256..512): cancellation shows as a
 *         large distance, as it should. Distances are capped at DSV32_ULP_CAP (an infinity
 *         against a finite value). p99 is exact (a histogram over 0..DSV32_ULP_CAP).
 *         Elements where either side is NaN count in nan_a / nan_b and are excluded from every
 *         other metric.
 */
#ifndef DSV32_METRICS_H
#define DSV32_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "core/dtype.h"

/* The metric family of a tap result: which metric struct below holds its figures (and in a JSON
 * report, tap "kind"; the dense object is "metrics"). A logits result carries the dense figures
 * of its logits too. */
typedef enum {
	DSV32_FAMILY_DENSE = 0,
	DSV32_FAMILY_SET,
	DSV32_FAMILY_LOGITS,
	DSV32_FAMILY_COUNT
} dsv32_metric_family;

typedef struct {
	int64_t n;            /* elements compared (NaN-free pairs) */
	int64_t n_diff;       /* elements with a != b */
	double max_abs;       /* max |a-b| */
	int64_t max_abs_at;   /* flat index of max_abs (-1 if none) */
	double mean_abs;
	double rms;           /* sqrt(mean((a-b)^2)) */
	double rel_l2;        /* ||a-b||_2 / ||a||_2 (0 if both are 0; inf if only a is 0) */
	double cosine;        /* <a,b> / (||a|| ||b||); 1 if both are all zero */
	uint32_t ulp_max;
	double ulp_mean;
	uint32_t ulp_p99;
	double frac_over_tol; /* fraction with |a-b| > atol + rtol |a| (dsv32_dtype_tolerance) */
	int64_t nan_a, nan_b, inf_a, inf_b;
	int64_t n_masked;     /* masked scores: pairs masked on both sides (excluded) */
	int64_t n_mask_diff;  /* masked on exactly one side (excluded, counted over tolerance) */
} dsv32_metrics;

#define DSV32_ULP_CAP 65535u

/* Ordered-integer position of x on the bf16 grid (x rounded to bf16 first). */
int32_t dsv32_bf16_ordinal(float x);
uint32_t dsv32_bf16_ulp_distance(float a, float b);

/* Compare two dense tensors of n elements; allocates a scratch histogram (returns false only on
 * allocation failure or a non-float dtype). */
bool dsv32_metrics_dense(dsv32_metrics *m, const void *a, dsv32_dtype ta, const void *b,
			 dsv32_dtype tb, int64_t n);

/* The same for score tensors that carry an additive mask (e.g. indexer.scores): a value that is
 * -inf or <= -1e37 (finfo(f32/bf16).min) is "masked"; pairs masked on both sides are equal and
 * excluded (n_masked), pairs masked on one side only count in n_mask_diff (and as over the
 * tolerance) and are excluded from the numeric metrics. -inf is then not counted in inf_a/b. */
bool dsv32_metrics_dense_masked(dsv32_metrics *m, const void *a, dsv32_dtype ta, const void *b,
				dsv32_dtype tb, int64_t n);

/* The dtype-aware tolerance of frac_over_tol: torch.testing.assert_close's defaults for the
 * less precise of the two dtypes (bf16: rtol 1.6e-2, atol 1e-5; f16: 1e-3, 1e-5; f32: 1.3e-6,
 * 1e-5; f64: 1e-7, 1e-7; fp8 e4m3: 0.125, 1e-5 (2^-3, its spacing); e5m2: 0.25, 1e-5). */
void dsv32_dtype_tolerance(dsv32_dtype ta, dsv32_dtype tb, double *rtol, double *atol);

/* Index-set comparison per row: a and b are I64 [rows, k] (k may differ: ka, kb).
 *   recall  = mean over rows of |A ∩ B| / |A|
 *   jaccard = mean over rows of |A ∩ B| / |A ∪ B|
 *   rows_equal = rows whose sets are identical; first_diff_row = first row that differs (-1)
 * When scores (F32 [rows, n_cols], the side-a scores the selection was made from) are given, the
 * tie-tolerant check re-scores both selections: a row counts as tie-equal when the multiset of
 * scores of b's choices equals that of a's choices (so swapping equal-scored members is fine). */
typedef struct {
	int64_t rows;
	double recall, jaccard;
	int64_t rows_equal;
	int64_t rows_tie_equal; /* rows equal up to ties (== rows_equal when no scores) */
	int64_t first_diff_row;
	/* Decision flips: the rows that differ beyond ties, classified (compare/tapcmp.c) by their
	 * flip margin, the largest |s[i] - s[j]| over a pick i one side made and the other did not
	 * and a pick j of the other side (s: the held side's selection scores), against the noise,
	 * the largest |s_a - s_b| over the positions both sides' scores leave unmasked in this tap:
	 * near-tie when margin <= 2·noise (two sides that each follow their own scores flip by at
	 * most that: the pair's scores can move apart by the noise each), genuine beyond it (a
	 * selection its scores do not explain). Without both sides' scores the rows stay
	 * unclassified (both counts 0, score_noise -1), and so does a row whose flip involves a
	 * pick the held side's scores mask (moe.experts: an expert of a group its group limit
	 * dropped) when no group scores measure it (compare/tapcmp.h dsv32_group_stage). */
	int64_t rows_near_tie, rows_genuine;
	double flip_margin_max; /* over the classified rows; 0 when none */
	double score_noise;     /* -1: not measured */
} dsv32_set_metrics;

bool dsv32_metrics_sets(dsv32_set_metrics *m, const int64_t *a, int64_t ka, const int64_t *b,
			int64_t kb, int64_t rows, const float *scores, int64_t n_cols);

/* Logits comparison per row of [rows, V] (fp32 or any float dtype):
 *   kl = mean over rows of KL(softmax(a) || softmax(b)), in double
 *   top1_agree = fraction of rows whose argmax agree (lowest index on ties)
 *   top5_overlap = mean |top5(a) ∩ top5(b)| / 5 */
typedef struct {
	int64_t rows;
	double kl, top1_agree, top5_overlap;
} dsv32_logit_metrics;

bool dsv32_metrics_logits(dsv32_logit_metrics *m, const void *a, dsv32_dtype ta, const void *b,
			  dsv32_dtype tb, int64_t rows, int64_t V);

/* ---- the metric table ----
 * Every figure a tap result holds or a budget can bound, once (metrics.c dsv32_metric_table):
 * the JSON writer and reader (reports/json.c), the schema test, the budget's metric names
 * (budget.c), `report check --exact` (check.c) and the report columns (reports/markdown.c,
 * reports/html.c) all walk it. A new metric is one line there plus its computation above. */
typedef enum { DSV32_FIG_F64 = 0, DSV32_FIG_I64, DSV32_FIG_U32 } dsv32_figure_type;

/* Which way a budget bounds a metric: from above ("max": larger is worse, rel_l2) or from
 * below ("min": smaller is worse, cosine); NONE for figures no budget names (counts). */
typedef enum { DSV32_DIR_NONE = 0, DSV32_DIR_MAX, DSV32_DIR_MIN } dsv32_metric_dir;

typedef struct {
	dsv32_metric_family family; /* the struct (and JSON object) that holds it */
	const char *json_key;   /* key in that JSON object; NULL: derived, not stored */
	const char *budget_key; /* name in budget files (budget.h); NULL: no budget names it */
	dsv32_figure_type type;
	size_t offset;          /* in its family's struct (stored figures) */
	double (*derive)(const void *fam); /* derived figures: from the family's struct */
	unsigned applies;       /* bit f: a metric of results of family f (budget look-ups) */
	dsv32_metric_dir dir;
	int exact;              /* place among the figures `report check --exact` compares; 0: not */
	/* reports: the printf format of a value (matching type: %u for U32, %lld for I64) ... */
	const char *fmt;
	/* ... its column in the per-tap tables (terminal, HTML, Markdown's per-layer table):
	 * place (0: no column), terminal header and width, HTML header, Markdown header (NULL:
	 * not in the per-layer table) ... */
	int col;
	const char *col_term;
	int col_width;
	const char *col_html;
	const char *col_md;
	/* ... its place in the one-line summaries of its family's results (logits: "KL 1.2e-05,
	 * top1 1.000, ..."; 0: not there) with its label there, and its place among the
	 * per-layer charts (HTML; 0: none). */
	int summary;
	const char *label;
	int chart;
} dsv32_metric_desc;

extern const dsv32_metric_desc dsv32_metric_table[];
extern const size_t dsv32_metric_count;

/* The metric a budget names (budget_key), or NULL. */
const dsv32_metric_desc *dsv32_metric_by_budget_key(const char *key);
/* The figure at a place (1, 2, ...) of a view, or NULL past its last: views walk places from 1
 * until NULL, so their order is the table's place numbers, not the table's order. */
typedef enum {
	DSV32_VIEW_COLUMN = 0,
	DSV32_VIEW_SUMMARY,
	DSV32_VIEW_EXACT,
	DSV32_VIEW_CHART
} dsv32_metric_view;
const dsv32_metric_desc *dsv32_metric_at(dsv32_metric_view view, int place);
/* The name a figure goes by in `report check --exact` output: "rel_l2", "set.jaccard". */
const char *dsv32_metric_figure_name(char *buf, size_t len, const dsv32_metric_desc *m);

#endif
