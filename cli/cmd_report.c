/* cmd_report.c: `dsv32-parity report check|render`: CI regression checks between two stored
 * runs, and re-rendering a stored run as Markdown or HTML. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "cli/cli_outputs.h"
#include "compare/check.h"
#include "reports/report.h"

static const char *const CHECK_KINDS[] = {"note", "regression", "missing", "new_tap",
					   "different", "nonfinite", "summary"};

/* --json: the check's lines as findings (kind, step, tap, mode, message). */
static void collect_finding(void *user, const dsv32_check_finding *f)
{
	cJSON *doc = user;
	if (f->kind == DSV32_CHECK_SUMMARY) {
		cJSON_AddStringToObject(doc, "summary", f->line);
		return;
	}
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "kind", CHECK_KINDS[f->kind]);
	if (f->tap) {
		cJSON_AddNumberToObject(o, "step", f->tap->step);
		cJSON_AddStringToObject(o, "tap", f->tap->name);
		cJSON_AddStringToObject(o, "mode", f->tap->mode == DSV32_DRIFT_LOCAL ? "local"
											: "propagate");
	}
	cJSON_AddStringToObject(o, "message", f->line);
	cJSON_AddItemToArray(cJSON_GetObjectItem(doc, "findings"), o);
}

/* Also print the line, when stdout is not the JSON document. */
static void collect_and_print(void *user, const dsv32_check_finding *f)
{
	collect_finding(user, f);
	printf("%s\n", f->line);
}

typedef struct {
	const char *baseline, *current, *json;
	double max_regression;
	bool exact;
} check_args;

static cJSON *check_doc(const check_args *a)
{
	cJSON *doc = cJSON_CreateObject();
	cJSON_AddStringToObject(doc, "check", a->exact ? "exact" : "regression");
	cJSON_AddStringToObject(doc, "baseline", a->baseline);
	cJSON_AddStringToObject(doc, "current", a->current);
	if (!a->exact)
		cJSON_AddNumberToObject(doc, "max_regression", a->max_regression);
	cJSON_AddArrayToObject(doc, "findings");
	return doc;
}

/* Run the check on two read reports; returns the exit code and fills doc (if any). */
static int check_reports(const check_args *a, const dsv32_cmp_result *base,
			 const dsv32_cmp_result *cur, cJSON *doc)
{
	char why[320];
	if (!dsv32_check_comparable(base, cur, why, sizeof why)) { /* regressions would be noise */
		dsv32_error err = {0};
		DSV32_FAIL(&err, DSV32_E_USAGE, "the reports are not comparable: %s", why);
		if (doc)
			cJSON_AddStringToObject(doc, "error", err.what);
		return dsv32_cli_fail("report check", &err);
	}
	dsv32_check_fn fn = !doc ? NULL : dsv32_cli_out_file(a->json) ? collect_and_print
								       : collect_finding;
	int bad;
	if (!doc)
		bad = a->exact ? dsv32_check_exact(base, cur, stdout)
			       : dsv32_check_regressions(base, cur, a->max_regression, stdout);
	else
		bad = a->exact ? dsv32_check_exact_to(base, cur, fn, doc)
			       : dsv32_check_regressions_to(base, cur, a->max_regression, fn, doc);
	if (doc) {
		cJSON_AddNumberToObject(doc, "failures", bad);
		cJSON_AddNumberToObject(doc, "baseline_taps", (double)base->n_taps);
	}
	return bad ? DSV32_EXIT_CHECK_FAILED : DSV32_EXIT_OK;
}

static int check_run(const check_args *a)
{
	dsv32_cmp_result base, cur;
	dsv32_error err = {0};
	if (dsv32_report_read_json(&base, a->baseline, &err) != DSV32_OK)
		return dsv32_cli_fail("report check", &err);
	if (dsv32_report_read_json(&cur, a->current, &err) != DSV32_OK) {
		dsv32_cmp_result_free(&base);
		return dsv32_cli_fail("report check", &err);
	}
	cJSON *doc = a->json ? check_doc(a) : NULL;
	int code = check_reports(a, &base, &cur, doc);
	if (doc) {
		cJSON_AddBoolToObject(doc, "ok", code == DSV32_EXIT_OK);
		char *text = cJSON_Print(doc);
		int wrc = text ? dsv32_cli_write_output("report check", a->json, text)
			       : DSV32_EXIT_USAGE;
		free(text);
		cJSON_Delete(doc);
		if (wrc && code == DSV32_EXIT_OK)
			code = wrc;
	}
	dsv32_cmp_result_free(&base);
	dsv32_cmp_result_free(&cur);
	return code;
}

static int report_check(int argc, char **argv)
{
	check_args a = {.max_regression = 0.1};
	const char *max_reg = "0.1";
	bool force = false;
	const dsv32_arg_opt opts[] = {
		{"baseline", DSV32_ARG_STRING, &a.baseline, "A.json", "the stored baseline report", true},
		{"current", DSV32_ARG_STRING, &a.current, "B.json", "the report of this run", true},
		{"max-regression", DSV32_ARG_STRING, &max_reg, "R",
		 "allowed relative growth of each tap's drift (default 0.1 = 10 %)", false},
		{"exact", DSV32_ARG_FLAG, &a.exact, NULL,
		 "require every figure of every tap to be identical (same taps, same bits; for\n"
		 "  reports of the fixed GEMM engine, whose numbers are the same on every machine)",
		 false},
		{"json", DSV32_ARG_OUTPUT, &a.json, "FILE",
		 "the outcome as one JSON document (ok, failures, findings with kind, step, tap,\n"
		 "  mode, message) to FILE, or alone / '-': to stdout instead of the text", false},
		{"force", DSV32_ARG_FLAG, &force, NULL, "replace an existing --json FILE", false},
	};
	dsv32_arg_spec spec = {"report check",
			       "--baseline A.json --current B.json [--max-regression R | --exact] [--json [FILE|-]]",
			       "Fails (exit 1) when any tap's drift (relative L2, or 1 - Jaccard for index sets)\n"
			       "grew by more than R relative to the baseline, when a baseline tap is missing,\n"
			       "or when non-finite values appeared. With --exact: when any figure of any tap\n"
			       "differs at all, or the two runs compared different taps. Reports of different\n"
			       "runs (mode, sides, weights, config, tokens, steps) are refused (exit 2).",
			       opts, (int)(sizeof opts / sizeof opts[0]), 0, 0};
	const char *pos[2];
	int npos;
	int prc = dsv32_args_parse(&spec, argc, argv, pos, &npos);
	if (prc != DSV32_ARGS_OK)
		return prc == DSV32_ARGS_HELP ? DSV32_EXIT_OK : DSV32_EXIT_USAGE;
	char *end;
	a.max_regression = strtod(max_reg, &end);
	if (*end || !(a.max_regression >= 0))
		return dsv32_cli_usage_error("report check", "--max-regression %s: expected a number >= 0",
					     max_reg);
	const char *names[] = {"--json"}, *outs[] = {dsv32_cli_out_file(a.json)};
	const char *inputs[] = {a.baseline, a.current};
	dsv32_cli_outputs claimed = {.force = force};
	int crc = dsv32_cli_outputs_claim(&claimed, "report check", names, outs, 1, inputs, 2);
	if (crc)
		return crc;
	crc = check_run(&a);
	dsv32_cli_outputs_release(&claimed);
	return crc;
}

static int render(const char *report, const char *html, const char *md);

static int report_render(int argc, char **argv)
{
	const char *html = NULL, *md = NULL;
	bool force = false;
	const dsv32_arg_opt opts[] = {
		{"html", DSV32_ARG_STRING, &html, "FILE", "write the HTML page ('-' = stdout)", false},
		{"markdown", DSV32_ARG_STRING, &md, "FILE", "write the Markdown summary ('-' = stdout)", false},
		{"force", DSV32_ARG_FLAG, &force, NULL, "replace existing output files", false},
	};
	dsv32_arg_spec spec = {"report render", "REPORT.json [--html out.html] [--markdown out.md]",
			       "Re-renders a stored JSON report. Without an output option the drift table is\n"
			       "printed.",
			       opts, (int)(sizeof opts / sizeof opts[0]), 1, 1};
	const char *pos[2];
	int npos;
	int prc = dsv32_args_parse(&spec, argc, argv, pos, &npos);
	if (prc != DSV32_ARGS_OK)
		return prc == DSV32_ARGS_HELP ? DSV32_EXIT_OK : DSV32_EXIT_USAGE;
	/* the report read must never be the page written, nor two options one file */
	const char *names[] = {"--html", "--markdown"};
	if (html && md && !strcmp(html, "-") && !strcmp(md, "-"))
		return dsv32_cli_usage_error("report render", "--html - and --markdown -: only one "
					     "output can go to stdout");
	const char *outs[] = {html && strcmp(html, "-") ? html : NULL, md && strcmp(md, "-") ? md : NULL};
	dsv32_cli_outputs claimed = {.force = force};
	int crc = dsv32_cli_outputs_claim(&claimed, "report render", names, outs, 2, pos, 1);
	if (crc)
		return crc;
	crc = render(pos[0], html, md);
	dsv32_cli_outputs_release(&claimed);
	return crc;
}

/* Read report and write the pages asked for (the table when none). Returns the exit code. */
static int render(const char *report, const char *html, const char *md)
{
	dsv32_cmp_result r;
	dsv32_error err = {0};
	if (dsv32_report_read_json(&r, report, &err) != DSV32_OK)
		return dsv32_cli_fail("report render", &err);
	dsv32_status rc = DSV32_OK;
	if (html && !strcmp(html, "-"))
		dsv32_report_html(&r, stdout);
	else if (html)
		rc = dsv32_report_write_html(&r, html, &err);
	if (rc == DSV32_OK && md) {
		if (!strcmp(md, "-"))
			dsv32_report_markdown(&r, stdout);
		else
			rc = dsv32_report_write_markdown(&r, md, &err);
	}
	if (rc == DSV32_OK && !html && !md)
		dsv32_report_table(&r, stdout);
	dsv32_cmp_result_free(&r);
	return rc == DSV32_OK ? DSV32_EXIT_OK : dsv32_cli_fail("report render", &err);
}

int dsv32_cmd_report(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		FILE *out = argc < 2 ? stderr : stdout;
		fprintf(out, "usage: dsv32-parity report check --baseline A.json --current B.json [--max-regression R | --exact]\n"
			     "                                 [--json [FILE|-]] [--force]\n"
			     "       dsv32-parity report render REPORT.json [--html out.html] [--markdown out.md]\n"
			     "  check   exit 1 when any tap's drift grew by more than R over the baseline\n"
			     "  render  re-render a stored run\n");
		return argc < 2 ? DSV32_EXIT_USAGE : DSV32_EXIT_OK;
	}
	if (!strcmp(argv[1], "check"))
		return report_check(argc - 1, argv + 1);
	if (!strcmp(argv[1], "render"))
		return report_render(argc - 1, argv + 1);
	return dsv32_cli_usage_error("report", "unknown subcommand '%s' (expected check or render)",
				     argv[1]);
}
