/* report.h: render a comparison result as JSON (schema_version 1), Markdown and HTML, read a
 * stored JSON report back. The CI gate over two runs is compare/check.h.
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
/* One self-contained HTML page with inline SVG charts (no network): to a stream, or to path
 * atomically. */
void dsv32_report_html(const dsv32_cmp_result *r, FILE *out);
dsv32_status dsv32_report_write_html(const dsv32_cmp_result *r, const char *path, dsv32_error *err);
/* The terminal drift table, every tap (what `compare --verbose` prints). */
void dsv32_report_table(const dsv32_cmp_result *r, FILE *out);
/* What `compare` prints by default (console.c): a summary of at most about 30 lines. */
void dsv32_report_console(const dsv32_cmp_result *r, FILE *out);
/* The one verdict line ("verdict: PASS (N taps within budget)" / "verdict: FAIL; ..."). */
void dsv32_report_verdict(const dsv32_cmp_result *r, FILE *out);

/* For the renderers: text into HTML content or a single- or double-quoted attribute (escapes
 * < > & " '). */
void dsv32_html_escape(FILE *f, const char *s);

/* For the renderers: where free-running divergence starts (issue 17), one sentence about the
 * result's first differing selection (dsv32_cmp_result_first_flip): step, tap, mode, first
 * differing row and that tap's rows by class with its largest flip margin. NULL when no
 * selection differs. */
const char *dsv32_report_first_flip(char *buf, size_t len, const dsv32_cmp_result *r);
/* For the renderers: the summary figures of t's family (the metric table's summary view) as
 * "label value" pairs, each preceded by sep except the first, which gets lead ("KL 1.2e-05,
 * top1 1.000, top5 1.000"). Returns buf. */
const char *dsv32_report_summary(char *buf, size_t len, const dsv32_tap_result *t,
				 const char *lead, const char *sep);

#endif
