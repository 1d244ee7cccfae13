/* check.h: the CI gate over two stored runs (`report check`): whether two runs measured the same
 * thing, whether drift grew beyond a tolerance, and the exact check of fixed-engine runs. It
 * works on results (compare/result.h), whoever read them; the CLI reads them from JSON reports.
 */
#ifndef DSV32_CHECK_H
#define DSV32_CHECK_H

#include <stdio.h>

#include "compare/result.h"

/* One line of a check's outcome, as the text output prints it; tap is the result it is about
 * (the current run's, or the baseline's for a missing tap), NULL for notes and the summary. */
typedef enum {
	DSV32_CHECK_NOTE = 0,     /* does not change the verdict */
	DSV32_CHECK_REGRESSION,   /* drift grew beyond the tolerance */
	DSV32_CHECK_MISSING,      /* a baseline tap the current run lacks (a failure) */
	DSV32_CHECK_NEW_TAP,      /* a current tap the baseline lacks (a failure only when exact) */
	DSV32_CHECK_DIFFERENT,    /* exact: a figure differs */
	DSV32_CHECK_NONFINITE,    /* non-finite values appeared */
	DSV32_CHECK_SUMMARY,      /* the last line: counts */
} dsv32_check_kind;

typedef struct {
	dsv32_check_kind kind;
	const dsv32_tap_result *tap;
	const char *line; /* valid during the callback */
} dsv32_check_finding;

typedef void (*dsv32_check_fn)(void *user, const dsv32_check_finding *f);

/* Whether two runs measured the same thing, so that a check means something: same mode and
 * side labels (but for a ref side's comm= token: real ranks give the emulation's bits,
 * docs/distributed.md), and the same provenance of what decides the numbers (weights fingerprint,
 * config, layers, tokens, seed, decode steps; absent counts as ""). When not, why names the
 * first difference. A different host or GEMM engine is only a note of the checks below. */
bool dsv32_check_comparable(const dsv32_cmp_result *baseline, const dsv32_cmp_result *current,
			    char *why, size_t len);

/* Regression check: for every tap present in both runs (same name, step, mode), fails when
 * current drift (dsv32_tap_drift: rel_l2, or 1-jaccard for sets) exceeds
 * baseline * (1 + max_regression) + floor, where floor = 1e-6 absorbs zero baselines. Index
 * sets by their decision flips (metrics.h): more genuine flips than the baseline is a
 * regression whatever the drift; drift grown by ties and near-ties only (no more genuine or
 * unclassified rows) is a note, not a regression. Lists each regression on out. Taps missing
 * in the current run are regressions; new taps are reported but pass, unless a new set tap has
 * genuine flips. Returns the number of regressions. */
int dsv32_check_regressions(const dsv32_cmp_result *baseline, const dsv32_cmp_result *current,
			    double max_regression, FILE *out);

/* The exact check (report check --exact): the same taps (name, step, mode) in both runs and,
 * for each, the same value of every figure (dense, set and logit metrics; NaN equals NaN), and
 * the same forced decisions (rows, classes, margins; at most one line for them). For
 * runs of the fixed GEMM engine, which are the same on every machine (kernels/gemm.h). Lists
 * each difference on out (the first differing figure per tap); returns their number. */
int dsv32_check_exact(const dsv32_cmp_result *baseline, const dsv32_cmp_result *current,
		      FILE *out);

/* The same checks with each line handed to fn instead of printed (report check --json). */
int dsv32_check_regressions_to(const dsv32_cmp_result *baseline, const dsv32_cmp_result *current,
			       double max_regression, dsv32_check_fn fn, void *user);
int dsv32_check_exact_to(const dsv32_cmp_result *baseline, const dsv32_cmp_result *current,
			 dsv32_check_fn fn, void *user);

#endif
