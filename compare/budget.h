/* budget.h: drift budgets per tap pattern and metric, read from a JSON file.
 *
 * {
 *   "schema": "dsv32-parity-budget/1",
 *   "rules": [
 *     { "pattern": "layers.*.attn.out",      fnmatch(3) glob over the canonical tap name
 *       "mode": "propagate",                 optional: propagate | local | any (default any)
 *       "max": { "rel_l2": 0.05, "ulp_p99": 8 },   upper limits
 *       "min": { "cosine": 0.999 },                lower limits
 *       "why": "measured ... (see docs/budgets.md)" }
 *   ]
 * }
 * Metric names: the budget keys of the metric table (compare/metrics.h dsv32_metric_table):
 * max_abs, mean_abs, rms, rel_l2, ulp_max, ulp_mean, ulp_p99, frac_over_tol, cosine, nan (count
 * on either side), mask_diff (score entries masked on one side only), recall, jaccard,
 * rows_tie_equal_frac, kl, top1, top5.
 * For each tap result the FIRST rule whose pattern (and mode) matches applies. A compared tap
 * that no rule matches is an error of the comparison (compare/runner.c): a budget that is
 * silent about a tap would pass it unchecked. NaN/Inf in either side is always over budget.
 */
#ifndef DSV32_BUDGET_H
#define DSV32_BUDGET_H

#include "compare/result.h"
#include "core/error.h"

#define DSV32_BUDGET_MAX_LIMITS 8

typedef struct {
	char metric[24];
	double value;
	bool is_min;
} dsv32_budget_limit;

typedef struct {
	char pattern[96];
	int mode; /* -1 any, else dsv32_drift_mode */
	dsv32_budget_limit limits[DSV32_BUDGET_MAX_LIMITS];
	int n_limits;
} dsv32_budget_rule;

typedef struct {
	dsv32_budget_rule *rules;
	int n_rules;
} dsv32_budget;

dsv32_status dsv32_budget_parse(dsv32_budget *b, const char *json, const char *label,
				dsv32_error *err);
dsv32_status dsv32_budget_load(dsv32_budget *b, const char *path, dsv32_error *err);
/* The shipped budget as budget JSON (malloc'ed; NULL when out of memory): for checkpoints with
 * bf16 weights, or with fp8 ones (the reference then runs its GEMMs on fp8 activations, which
 * widens the first GEMM outputs of each layer). compare/budget_default.c, docs/budgets.md. */
char *dsv32_default_budget_json(bool fp8_weights);
void dsv32_budget_free(dsv32_budget *b);

/* Value of a named metric for a tap result; false if the metric does not apply to its family. */
bool dsv32_tap_metric(const dsv32_tap_result *t, const char *metric, double *out);

/* Whether some rule of b matches t (pattern and mode). */
bool dsv32_budget_covers(const dsv32_budget *b, const dsv32_tap_result *t);

/* Apply the budget to one result: sets over_budget and budget_note. */
void dsv32_budget_apply(const dsv32_budget *b, dsv32_tap_result *t);

#endif
