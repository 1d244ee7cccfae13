/* check.h: the CI gate over two stored runs (`report check`): whether two runs measured the same
 * thing, whether drift grew beyond a tolerance, and the exact check of fixed-engine runs. It
 * works on results (compare/result.h), whoever read them; the CLI reads them from JSON reports.
 */
#ifndef DSV32_CHECK_H
#define DSV32_CHECK_H

#include <stdio.h>

#include "compare/result.h"

/* Whether two runs measured the same thing, so that a check means something: same mode and
 * side labels, and the same provenance of what decides the numbers (weights fingerprint,
 * config, layers, tokens, seed, decode steps; absent counts as ""). When not, why names the
 * first difference. A different host or GEMM engine is only a note of the checks below. */
bool dsv32_check_comparable(const dsv32_cmp_result *baseline, const dsv32_cmp_result *current,
			    char *why, size_t len);

/* Regression check: for every tap present in both runs (same name, step, mode), fails when
 * current drift (dsv32_tap_drift: rel_l2, or 1-jaccard for sets) exceeds
 * baseline * (1 + max_regression) + floor, where floor = 1e-6 absorbs zero baselines. Lists
 * each regression on out. Taps missing in the current run are regressions; new taps are
 * reported but pass. Returns the number of regressions. */
int dsv32_check_regressions(const dsv32_cmp_result *baseline, const dsv32_cmp_result *current,
			    double max_regression, FILE *out);

/* The exact check (report check --exact): the same taps (name, step, mode) in both runs and,
 * for each, the same value of every figure (dense, set and logit metrics; NaN equals NaN). For
 * runs of the fixed GEMM engine, which are the same on every machine (kernels/gemm.h). Lists
 * each difference on out (the first differing figure per tap); returns their number. */
int dsv32_check_exact(const dsv32_cmp_result *baseline, const dsv32_cmp_result *current,
		      FILE *out);

#endif
