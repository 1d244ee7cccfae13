/* report.h: render a comparison result as JSON (schema_version 1), Markdown and HTML, read a
 * stored JSON report back, and compare two runs for CI.
 *
 * JSON: reports/schema/drift-report.schema.json describes it. Non-finite numbers are written as
 * null (JSON has no inf/NaN) and read back as +inf. Every writer goes through a temporary file
 * renamed on success.
 */
#ifndef DSV32_REPORT_H
#define DSV32_REPORT_H

#include <stdio.h>

#include "compare/result.h"
#include "core/error.h"

#define DSV32_REPORT_SCHEMA_VERSION 1
/* Reading a report back: a tap's layer lies in [-1, DSV32_REPORT_MAX_LAYER] and its step in
 * [0, DSV32_REPORT_MAX_STEP] (renderers draw one axis label per layer and one section per step). */
#define DSV32_REPORT_MAX_LAYER 4095
#define DSV32_REPORT_MAX_STEP 4095

/* Serialize to a malloc'd string (caller frees); NULL on allocation failure. */
char *dsv32_report_json_string(const dsv32_cmp_result *r);
dsv32_status dsv32_report_write_json(const dsv32_cmp_result *r, const char *path, dsv32_error *err);
dsv32_status dsv32_report_read_json(dsv32_cmp_result *r, const char *path, dsv32_error *err);
dsv32_status dsv32_report_parse_json(dsv32_cmp_result *r, const char *text, const char *label,
				     dsv32_error *err);

/* Markdown summary for a CI step summary: verdict, first divergence, worst taps, per layer. */
void dsv32_report_markdown(const dsv32_cmp_result *r, FILE *out);
dsv32_status dsv32_report_write_markdown(const dsv32_cmp_result *r, const char *path,
					 dsv32_error *err);
/* One self-contained HTML page with inline SVG charts (no network). */
dsv32_status dsv32_report_write_html(const dsv32_cmp_result *r, const char *path, dsv32_error *err);
/* The terminal drift table (what `compare` prints). */
void dsv32_report_table(const dsv32_cmp_result *r, FILE *out);

/* Whether two reports measured the same thing, so that `report check` means something: same
 * mode and side labels, and the same provenance of what decides the numbers (weights
 * fingerprint, config, layers, tokens, seed, decode steps; absent counts as ""). When not,
 * why names the first difference. A different host or GEMM engine is only a note of the
 * checks below. */
bool dsv32_report_comparable(const dsv32_cmp_result *baseline, const dsv32_cmp_result *current,
			     char *why, size_t len);

/* CI regression check: for every tap present in both runs (same name, step, mode), fails when
 * current rel_l2 (dense/logits) or 1-jaccard (sets) exceeds baseline * (1 + max_regression) +
 * floor, where floor = 1e-6 absorbs zero baselines. Lists each regression on out. Taps missing
 * in the current run are regressions; new taps are reported but pass. Returns the number of
 * regressions. */
int dsv32_report_check(const dsv32_cmp_result *baseline, const dsv32_cmp_result *current,
		       double max_regression, FILE *out);
/* The exact check (report check --exact): the same taps (name, step, mode) in both runs and,
 * for each, the same value of every figure (dense, set and logit metrics; NaN equals NaN). For
 * reports of the fixed GEMM engine, which are the same on every machine (kernels/gemm.h). Lists
 * each difference on out (the first differing figure per tap); returns their number. */
int dsv32_report_check_exact(const dsv32_cmp_result *baseline, const dsv32_cmp_result *current,
			     FILE *out);

#endif
