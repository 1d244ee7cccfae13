/* test_reports.c: budgets, the JSON report round trip, Markdown, HTML and the CI regression
 * check, on a synthetic comparison result. `test_reports --write-sample PATH` writes the sample
 * report for the schema check in py_test_report_schema.py. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "compare/budget.h"
#include "core/fsutil.h"
#include "compare/check.h"
#include "reports/report.h"

static dsv32_tap_result dense_tap(const char *name, int step, double rel_l2, uint32_t ulp)
{
	dsv32_tap_result t;
	memset(&t, 0, sizeof t);
	snprintf(t.name, sizeof t.name, "%s", name);
	dsv32_tap_split_name(name, &t.layer, t.op, sizeof t.op);
	t.step = step;
	t.family = DSV32_FAMILY_DENSE;
	snprintf(t.dtype_a, sizeof t.dtype_a, "BF16");
	snprintf(t.dtype_b, sizeof t.dtype_b, "BF16");
	t.ndim = 3;
	t.shape[0] = 2, t.shape[1] = 24, t.shape[2] = 256;
	t.dense.n = 12288;
	t.dense.rel_l2 = rel_l2;
	t.dense.max_abs = rel_l2 * 3;
	t.dense.max_abs_at = 17;
	t.dense.cosine = 1 - rel_l2 * rel_l2 / 2;
	t.dense.ulp_max = ulp;
	t.dense.ulp_p99 = ulp / 2;
	return t;
}

static void sample_result(dsv32_cmp_result *r, const dsv32_budget *b)
{
	dsv32_cmp_result_init(r);
	snprintf(r->side_a, sizeof r->side_a, "ref:cpu:bf16:mp=1");
	snprintf(r->side_b, sizeof r->side_b, "hf:cpu:bf16");
	snprintf(r->mode, sizeof r->mode, "propagate");
	dsv32_cmp_result_prov(r, "seed", "1128");
	dsv32_cmp_result_prov(r, "weights_sha256", "b945330c");
	const char *names[] = {"embed", "layers.0.attn.out", "layers.0.out", "layers.1.attn.out",
			       "layers.1.out", "final_norm"};
	double drift[] = {0, 1e-3, 2e-3, 4e-3, 0.05, 0.06};
	for (int s = 0; s < 2; s++)
		for (int i = 0; i < 6; i++) {
			dsv32_tap_result t = dense_tap(names[i], s, drift[i], (uint32_t)(i * 3));
			dsv32_budget_apply(b, &t);
			assert_non_null(dsv32_cmp_result_add(r, &t));
		}
	dsv32_tap_result set;
	memset(&set, 0, sizeof set);
	snprintf(set.name, sizeof set.name, "layers.1.indexer.topk");
	dsv32_tap_split_name(set.name, &set.layer, set.op, sizeof set.op);
	set.family = DSV32_FAMILY_SET;
	set.set.rows = 48, set.set.rows_equal = 47, set.set.rows_tie_equal = 48;
	set.set.jaccard = 0.99, set.set.recall = 0.995, set.set.first_diff_row = 20;
	dsv32_budget_apply(b, &set);
	assert_non_null(dsv32_cmp_result_add(r, &set));
	dsv32_tap_result lg = dense_tap("logits", 0, 0.02, 40);
	lg.family = DSV32_FAMILY_LOGITS;
	lg.logits.rows = 2, lg.logits.kl = 1e-4, lg.logits.top1_agree = 1, lg.logits.top5_overlap = 0.9;
	dsv32_budget_apply(b, &lg);
	assert_non_null(dsv32_cmp_result_add(r, &lg));
	dsv32_cmp_result_skip(r, "layers.0.attn.q_rope", 0, "only in a");
	/* two decisions a teacher-forced pass forced: a tie and a genuine flip */
	dsv32_forced_row f1 = {0, 1, "layers.1.indexer.topk", 20, DSV32_FLIP_TIE, 0};
	dsv32_forced_row f2 = {1, 1, "layers.1.moe.experts", 3, DSV32_FLIP_GENUINE, 0.0625};
	assert_true(dsv32_cmp_result_force(r, &f1));
	assert_true(dsv32_cmp_result_force(r, &f2));
	/* side a live on the fixed engine, side b a recording without a fingerprint */
	dsv32_side_host *h = &r->host[0];
	h->present = true;
	snprintf(h->engine, sizeof h->engine, "fixed");
	snprintf(h->numerics_key, sizeof h->numerics_key, "fixed");
	snprintf(h->cpu_model, sizeof h->cpu_model, "Test CPU <1>");
	snprintf(h->isa, sizeof h->isa, "fma avx2");
	snprintf(h->onednn_impl, sizeof h->onednn_impl, "onednn:test");
	snprintf(h->openblas_core, sizeof h->openblas_core, "Haswell");
	snprintf(h->versions, sizeof h->versions, "oneDNN 3.0.0, OpenBLAS 0.3");
	h->threads = 4;
	snprintf(h->line, sizeof h->line, "engine fixed (avx2); Test CPU <1>; isa fma avx2");
	h = &r->host[1];
	h->present = h->recorded = true;
	snprintf(h->engine, sizeof h->engine, "unknown");
	snprintf(h->numerics_key, sizeof h->numerics_key, "unknown");
	snprintf(h->line, sizeof h->line, "unknown (recording has no fingerprint)");
}

static const char *budget_json =
	"{\"schema\":\"dsv32-parity-budget/1\",\"rules\":["
	"{\"pattern\":\"layers.1.out\",\"max\":{\"rel_l2\":0.01},\"why\":\"test\"},"
	"{\"pattern\":\"layers.*\",\"max\":{\"rel_l2\":0.1,\"ulp_max\":100}},"
	"{\"pattern\":\"logits\",\"min\":{\"top1\":1.0},\"max\":{\"kl\":1e-3}}]}";

static void test_budget_first_matching_rule_decides(void **state)
{
	(void)state;
	dsv32_budget b;
	assert_int_equal(dsv32_budget_parse(&b, budget_json, "inline", NULL), DSV32_OK);
	assert_int_equal(b.n_rules, 3);
	dsv32_tap_result t = dense_tap("layers.1.out", 0, 0.05, 1);
	dsv32_budget_apply(&b, &t);
	assert_true(t.over_budget);
	assert_non_null(strstr(t.budget_note, "rel_l2"));
	t = dense_tap("layers.0.out", 0, 0.05, 1);
	dsv32_budget_apply(&b, &t);
	assert_false(t.over_budget);
	t = dense_tap("final_norm", 0, 5.0, 1000); /* no rule: no budget */
	dsv32_budget_apply(&b, &t);
	assert_false(t.over_budget);
	t.dense.nan_b = 1; /* NaN is always over */
	dsv32_budget_apply(&b, &t);
	assert_true(t.over_budget);
	dsv32_budget_free(&b);
}

static void test_budget_rejects_unknown_metric_and_bad_json(void **state)
{
	(void)state;
	dsv32_budget b;
	dsv32_error err = {0};
	assert_int_equal(dsv32_budget_parse(&b, "{\"rules\":[{\"pattern\":\"x\",\"max\":{\"bogus\":1}}]}",
					    "b.json", &err), DSV32_E_FORMAT);
	assert_non_null(strstr(err.what, "bogus"));
	assert_int_equal(dsv32_budget_parse(&b, "{\"rules\":", "b.json", &err), DSV32_E_FORMAT);
	assert_int_equal(dsv32_budget_parse(&b, "{\"rules\":[{\"max\":{}}]}", "b.json", &err),
			 DSV32_E_FORMAT);
	assert_non_null(strstr(err.what, "pattern"));
}

/* Budget files name the teacher-forced drift as compare's --mode does, or as reports do. */
static void test_budget_mode_teacher_forced_is_local(void **state)
{
	(void)state;
	dsv32_budget b;
	dsv32_error err = {0};
	assert_int_equal(dsv32_budget_parse(&b, "{\"rules\":[{\"pattern\":\"x\",\"mode\":"
					    "\"teacher-forced\",\"max\":{\"rel_l2\":1}},"
					    "{\"pattern\":\"y\",\"mode\":\"local\",\"max\":"
					    "{\"rel_l2\":1}}]}", "b.json", &err), DSV32_OK);
	assert_int_equal(b.n_rules, 2);
	assert_int_equal(b.rules[0].mode, DSV32_DRIFT_LOCAL);
	assert_int_equal(b.rules[1].mode, DSV32_DRIFT_LOCAL);
	dsv32_budget_free(&b);
	assert_int_equal(dsv32_budget_parse(&b, "{\"rules\":[{\"pattern\":\"x\",\"mode\":"
					    "\"sideways\",\"max\":{\"rel_l2\":1}}]}", "b.json",
					    &err), DSV32_E_FORMAT);
	assert_non_null(strstr(err.what, "teacher-forced"));
}

static void test_first_divergence_is_the_first_tap_over_budget(void **state)
{
	(void)state;
	dsv32_budget b;
	assert_int_equal(dsv32_budget_parse(&b, budget_json, "inline", NULL), DSV32_OK);
	dsv32_cmp_result r;
	sample_result(&r, &b);
	assert_false(dsv32_cmp_result_passed(&r));
	assert_true(r.first_divergence >= 0);
	assert_string_equal(r.taps[r.first_divergence].name, "layers.1.out");
	assert_int_equal(r.taps[r.first_divergence].step, 0);
	dsv32_cmp_result_free(&r);
	dsv32_budget_free(&b);
}

static void test_json_round_trip_keeps_every_metric(void **state)
{
	(void)state;
	dsv32_budget b;
	assert_int_equal(dsv32_budget_parse(&b, budget_json, "inline", NULL), DSV32_OK);
	dsv32_cmp_result r, back;
	sample_result(&r, &b);
	r.taps[1].dense.rel_l2 = INFINITY;
	char *text = dsv32_report_json_string(&r);
	assert_non_null(text);
	assert_int_equal(dsv32_report_parse_json(&back, text, "mem", NULL), DSV32_OK);
	assert_int_equal(back.n_taps, r.n_taps);
	assert_int_equal(back.n_skips, 1);
	for (size_t i = 0; i < r.n_taps; i++) {
		assert_string_equal(back.taps[i].name, r.taps[i].name);
		assert_int_equal(back.taps[i].family, r.taps[i].family);
		assert_int_equal(back.taps[i].over_budget, r.taps[i].over_budget);
		assert_true(back.taps[i].dense.rel_l2 == r.taps[i].dense.rel_l2);
		assert_int_equal(back.taps[i].dense.ulp_max, r.taps[i].dense.ulp_max);
	}
	assert_true(back.taps[r.n_taps - 2].set.jaccard == 0.99);
	assert_int_equal(back.first_divergence, r.first_divergence);
	/* the forced decisions, every field */
	assert_int_equal(back.n_forced, 2);
	for (size_t i = 0; i < 2; i++) {
		assert_int_equal(back.forced[i].step, r.forced[i].step);
		assert_int_equal(back.forced[i].layer, r.forced[i].layer);
		assert_string_equal(back.forced[i].tap, r.forced[i].tap);
		assert_int_equal(back.forced[i].row, r.forced[i].row);
		assert_int_equal(back.forced[i].cls, r.forced[i].cls);
		assert_true(back.forced[i].margin == r.forced[i].margin);
	}
	/* free-running taps after the first flip (layers.1.indexer.topk, step 0) are marked */
	assert_non_null(strstr(text, "\"after_decision_flip\":\ttrue"));
	const char *flip = strstr(text, "\"name\":\t\"layers.1.out\"");
	const char *first = strstr(text, "\"name\":\t\"layers.0.out\"");
	assert_non_null(flip);
	assert_non_null(first);
	const char *next = strstr(first + 1, "\"name\"");
	assert_true(!strstr(first, "after_decision_flip") ||
		    strstr(first, "after_decision_flip") > next); /* layers.0.out precedes it */
	assert_string_equal(back.side_a, r.side_a);
	/* provenance.sides: engine and fingerprint per side */
	for (int i = 0; i < 2; i++) {
		assert_true(back.host[i].present);
		assert_int_equal(back.host[i].recorded, r.host[i].recorded);
		assert_string_equal(back.host[i].engine, r.host[i].engine);
		assert_string_equal(back.host[i].numerics_key, r.host[i].numerics_key);
		assert_string_equal(back.host[i].line, r.host[i].line);
		assert_string_equal(back.host[i].cpu_model, r.host[i].cpu_model);
		assert_string_equal(back.host[i].onednn_impl, r.host[i].onednn_impl);
		assert_string_equal(back.host[i].openblas_core, r.host[i].openblas_core);
		assert_string_equal(back.host[i].versions, r.host[i].versions);
		assert_int_equal(back.host[i].threads, r.host[i].threads);
	}
	free(text);
	dsv32_cmp_result_free(&r);
	dsv32_cmp_result_free(&back);
	dsv32_budget_free(&b);
}

static void test_json_reader_rejects_other_schema_versions(void **state)
{
	(void)state;
	dsv32_cmp_result r;
	dsv32_error err = {0};
	assert_int_equal(dsv32_report_parse_json(&r, "{\"schema_version\":2,\"taps\":[]}", "x.json", &err),
			 DSV32_E_FORMAT);
	assert_non_null(strstr(err.what, "schema_version"));
	assert_int_equal(dsv32_report_parse_json(&r, "[1,2", "x.json", &err), DSV32_E_FORMAT);
}

/* A report written before provenance.sides existed still loads, with no host facts. */
static void test_json_reader_loads_reports_without_sides(void **state)
{
	(void)state;
	dsv32_cmp_result r;
	const char *old = "{\"schema_version\":1,\"provenance\":{\"seed\":\"1\"},\"side_a\":\"ref\","
			  "\"side_b\":\"hf\",\"taps\":[],\"skipped\":[]}";
	assert_int_equal(dsv32_report_parse_json(&r, old, "old.json", NULL), DSV32_OK);
	assert_false(r.host[0].present);
	assert_false(r.host[1].present);
	assert_int_equal(r.n_prov, 1);
	char *text = dsv32_report_json_string(&r);
	assert_non_null(text);
	assert_null(strstr(text, "\"sides\"")); /* nothing invented on the way out */
	free(text);
	dsv32_cmp_result_free(&r);
}

static char *render_markdown(const dsv32_cmp_result *r)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	dsv32_report_markdown(r, f);
	fclose(f);
	return buf;
}

static void test_markdown_names_verdict_and_first_divergence(void **state)
{
	(void)state;
	dsv32_budget b;
	assert_int_equal(dsv32_budget_parse(&b, budget_json, "inline", NULL), DSV32_OK);
	dsv32_cmp_result r;
	sample_result(&r, &b);
	char *md = render_markdown(&r);
	assert_non_null(strstr(md, "fail"));
	assert_non_null(strstr(md, "First divergence:** step 0, `layers.1.out`"));
	assert_non_null(strstr(md, "| 1 | propagate |"));
	assert_non_null(strstr(md, "layers.0.attn.q_rope"));
	assert_non_null(strstr(md, "**Host a** (live, engine `fixed`, numerics key `fixed`): engine fixed"));
	assert_non_null(strstr(md, "**Host b** (recording, engine `unknown`"));
	assert_non_null(strstr(md, "unknown (recording has no fingerprint)"));
	assert_non_null(strstr(md, "### Forced decisions (teacher-forced)"));
	assert_non_null(strstr(md, "2 row(s) used the other side's selection (1 tie, 0 near-tie, 1 genuine"));
	assert_non_null(strstr(md, "| 1 | `layers.1.moe.experts` | 3 | genuine | 0.0625 |"));
	assert_non_null(strstr(md, "(after a decision flip)"));
	free(md);
	char *con = NULL;
	size_t con_len = 0;
	FILE *f = open_memstream(&con, &con_len);
	dsv32_report_console(&r, f);
	fclose(f);
	assert_non_null(strstr(con, "forced decisions (teacher-forced): 2 row(s): 1 tie, 0 near-tie, "
				    "1 genuine, 0 unclassified; first: step 0 layers.1.indexer.topk "
				    "row 20 (tie, margin 0)"));
	free(con);
	dsv32_cmp_result_free(&r);
	dsv32_budget_free(&b);
}

static void test_html_is_self_contained_with_svg(void **state)
{
	(void)state;
	dsv32_cmp_result r;
	sample_result(&r, NULL);
	char dir[] = "/tmp/dsv32_reports_XXXXXX";
	assert_non_null(mkdtemp(dir));
	char path[128];
	snprintf(path, sizeof path, "%s/r.html", dir);
	assert_int_equal(dsv32_report_write_html(&r, path, NULL), DSV32_OK);
	char *html = NULL;
	size_t len = 0;
	assert_int_equal(dsv32_read_file(path, 1u << 24, &html, &len, NULL), DSV32_OK);
	assert_non_null(strstr(html, "<svg"));
	assert_non_null(strstr(html, "<polyline"));
	assert_null(strstr(html, "http://"));
	assert_null(strstr(html, "<script src"));
	assert_non_null(strstr(html, "layers.1.indexer.topk"));
	assert_non_null(strstr(html, "<b>Host a</b> (live, engine <code>fixed</code>"));
	assert_non_null(strstr(html, "Test CPU &lt;1&gt;")); /* escaped */
	assert_non_null(strstr(html, "unknown (recording has no fingerprint)"));
	assert_non_null(strstr(html, "<h2>Forced decisions (teacher-forced)</h2>"));
	assert_non_null(strstr(html, "<td>3</td><td>genuine</td><td>0.0625</td>"));
	free(html);
	unlink(path);
	rmdir(dir);
	dsv32_cmp_result_free(&r);
}

static void test_report_check_flags_growth_beyond_tolerance(void **state)
{
	(void)state;
	dsv32_cmp_result base, cur;
	sample_result(&base, NULL);
	sample_result(&cur, NULL);
	FILE *devnull = fopen("/dev/null", "w");
	assert_int_equal(dsv32_check_regressions(&base, &cur, 0.1, devnull), 0);
	cur.taps[3].dense.rel_l2 *= 1.05; /* within 10 % */
	assert_int_equal(dsv32_check_regressions(&base, &cur, 0.1, devnull), 0);
	cur.taps[3].dense.rel_l2 *= 1.2; /* now 26 % over */
	assert_int_equal(dsv32_check_regressions(&base, &cur, 0.1, devnull), 1);
	cur.n_taps -= 1; /* a tap missing in the current run */
	assert_int_equal(dsv32_check_regressions(&base, &cur, 0.1, devnull), 2);
	fclose(devnull);
	dsv32_cmp_result_free(&base);
	dsv32_cmp_result_free(&cur);
}

/* --exact: any changed figure, in either direction, and any tap only on one side is a
 * difference; identical runs pass. */
static void test_report_check_exact_wants_every_figure_equal(void **state)
{
	(void)state;
	dsv32_cmp_result base, cur;
	sample_result(&base, NULL);
	sample_result(&cur, NULL);
	FILE *devnull = fopen("/dev/null", "w");
	assert_int_equal(dsv32_check_exact(&base, &cur, devnull), 0);
	double keep = cur.taps[3].dense.rel_l2;
	cur.taps[3].dense.rel_l2 *= 0.5; /* an improvement is a difference too */
	assert_int_equal(dsv32_check_exact(&base, &cur, devnull), 1);
	cur.taps[3].dense.rel_l2 = keep;
	cur.taps[0].dense.max_abs = nextafter(cur.taps[0].dense.max_abs, 1.0); /* one ulp */
	assert_int_equal(dsv32_check_exact(&base, &cur, devnull), 1);
	cur.n_taps -= 1; /* a tap missing in the current run */
	assert_int_equal(dsv32_check_exact(&base, &cur, devnull), 2);
	base.n_taps -= 2; /* ... and now one only in the current run */
	cur.taps[0].dense.max_abs = base.taps[0].dense.max_abs;
	assert_int_equal(dsv32_check_exact(&base, &cur, devnull), 1);
	base.n_taps += 2;
	cur.n_taps += 1;
	fclose(devnull);
	dsv32_cmp_result_free(&base);
	dsv32_cmp_result_free(&cur);
}

/* The check's output into out (NUL-terminated); returns the number of regressions. */
static int run_check(const dsv32_cmp_result *base, const dsv32_cmp_result *cur, char *out,
		     size_t len)
{
	memset(out, 0, len);
	FILE *f = fmemopen(out, len - 1, "w");
	assert_non_null(f);
	int bad = dsv32_check_regressions(base, cur, 0.1, f);
	fclose(f);
	return bad;
}

/* Different numerics keys give one note line naming both; the verdict does not change. */
static void test_report_check_notes_a_numerics_key_change(void **state)
{
	(void)state;
	dsv32_cmp_result base, cur;
	sample_result(&base, NULL);
	sample_result(&cur, NULL);
	char out[4096];
	assert_int_equal(run_check(&base, &cur, out, sizeof out), 0);
	assert_null(strstr(out, "numerics keys differ"));
	snprintf(cur.host[0].numerics_key, sizeof cur.host[0].numerics_key, "host:onednn:x|Haswell");
	assert_int_equal(run_check(&base, &cur, out, sizeof out), 0);
	const char *note = strstr(out, "note: numerics keys differ");
	assert_non_null(note);
	const char *eol = strchr(note, '\n');
	assert_non_null(eol);
	char line[512];
	snprintf(line, sizeof line, "%.*s", (int)(eol - note), note);
	assert_non_null(strstr(line, "a=fixed"));
	assert_non_null(strstr(line, "a=host:onednn:x|Haswell"));
	/* a side whose key is unknown (a recording without a fingerprint, an old report) is not
	 * compared */
	cur.host[0] = base.host[0];
	snprintf(cur.host[1].numerics_key, sizeof cur.host[1].numerics_key, "fixed");
	run_check(&base, &cur, out, sizeof out);
	assert_null(strstr(out, "numerics keys differ"));
	cur.host[0].present = false;
	snprintf(cur.host[1].numerics_key, sizeof cur.host[1].numerics_key, "unknown");
	run_check(&base, &cur, out, sizeof out);
	assert_null(strstr(out, "numerics keys differ"));
	dsv32_cmp_result_free(&base);
	dsv32_cmp_result_free(&cur);
}

/* Tap names can come from a recording: stored escaped, so no report prints raw control bytes. */
static void test_result_escapes_control_characters_in_names(void **state)
{
	(void)state;
	dsv32_cmp_result r;
	dsv32_cmp_result_init(&r);
	dsv32_tap_result t = {0};
	snprintf(t.name, sizeof t.name, "layers.0.\x1b[31mevil\n");
	assert_non_null(dsv32_cmp_result_add(&r, &t));
	assert_string_equal(r.taps[0].name, "layers.0.\\x1b[31mevil\\x0a");
	assert_true(dsv32_cmp_result_skip(&r, "bad\rname", 0, "only in a\x07"));
	assert_string_equal(r.skips[0].name, "bad\\x0dname");
	assert_string_equal(r.skips[0].reason, "only in a\\x07");
	dsv32_cmp_result_free(&r);
}

/* Over-budget taps added in file order (logits, a late op, then embed of a later step, ...):
 * the first divergence is the earliest in the model: step, layer, then the op's place. */
static void test_first_divergence_is_in_model_order(void **state)
{
	(void)state;
	const struct {
		const char *name;
		int step;
	} added[] = {{"logits", 0}, {"layers.1.out", 0}, {"embed", 1}, {"layers.1.moe.experts", 0},
		     {"final_norm", 0}, {"layers.1.attn_norm", 0}, {"layers.0.ffn.out", 0}};
	const char *first[] = {"logits", "layers.1.out", "layers.1.out", "layers.1.moe.experts",
			       "layers.1.moe.experts", "layers.1.attn_norm", "layers.0.ffn.out"};
	dsv32_cmp_result r;
	dsv32_cmp_result_init(&r);
	for (size_t i = 0; i < sizeof added / sizeof added[0]; i++) {
		dsv32_tap_result t = dense_tap(added[i].name, added[i].step, 1.0, 1);
		t.over_budget = true;
		assert_non_null(dsv32_cmp_result_add(&r, &t));
		assert_string_equal(r.taps[r.first_divergence].name, first[i]);
	}
	dsv32_tap_result e = dense_tap("embed", 0, 1.0, 1);
	e.over_budget = true;
	assert_non_null(dsv32_cmp_result_add(&r, &e));
	assert_string_equal(r.taps[r.first_divergence].name, "embed");
	assert_int_equal(r.taps[r.first_divergence].step, 0);
	dsv32_cmp_result_free(&r);
}

/* report check refuses reports of different runs, naming the first difference; the host is
 * not such a difference (it has its own note), nor a side's comm= token. */
static void test_reports_of_different_runs_are_not_comparable(void **state)
{
	(void)state;
	dsv32_budget b;
	assert_int_equal(dsv32_budget_parse(&b, budget_json, "inline", NULL), DSV32_OK);
	dsv32_cmp_result x, y;
	char why[320];
	sample_result(&x, &b);
	sample_result(&y, &b);
	snprintf(y.host[0].numerics_key, sizeof y.host[0].numerics_key, "host:other");
	assert_true(dsv32_check_comparable(&x, &y, why, sizeof why));
	dsv32_cmp_result_prov(&y, "tokens", "1,2,3");
	assert_false(dsv32_check_comparable(&x, &y, why, sizeof why));
	assert_non_null(strstr(why, "\"tokens\" differs"));
	dsv32_cmp_result_free(&y);
	sample_result(&y, &b);
	dsv32_cmp_result_prov(&y, "weights_fingerprint_sha256", "ab12");
	assert_false(dsv32_check_comparable(&x, &y, why, sizeof why));
	assert_non_null(strstr(why, "weights_fingerprint_sha256"));
	dsv32_cmp_result_free(&y);
	sample_result(&y, &b);
	snprintf(y.mode, sizeof y.mode, "both");
	assert_false(dsv32_check_comparable(&x, &y, why, sizeof why));
	assert_non_null(strstr(why, "mode differs"));
	snprintf(y.mode, sizeof y.mode, "propagate");
	/* where a ref side's ranks ran is no difference: real ranks give the emulation's bits */
	char side_a[sizeof x.side_a];
	snprintf(side_a, sizeof side_a, "%s", x.side_a);
	snprintf(x.side_a, sizeof x.side_a, "ref:cpu:bf16:mp=2:knob=a");
	snprintf(y.side_a, sizeof y.side_a, "ref:cpu:bf16:mp=2:comm=mpi:knob=a");
	assert_true(dsv32_check_comparable(&x, &y, why, sizeof why));
	snprintf(y.side_a, sizeof y.side_a, "ref:cpu:bf16:mp=4:comm=mpi:knob=a");
	assert_false(dsv32_check_comparable(&x, &y, why, sizeof why));
	assert_non_null(strstr(why, "side a differs"));
	snprintf(x.side_a, sizeof x.side_a, "%s", side_a);
	snprintf(y.side_a, sizeof y.side_a, "%s", side_a);
	snprintf(y.side_b, sizeof y.side_b, "taps:x.safetensors");
	assert_false(dsv32_check_comparable(&x, &y, why, sizeof why));
	assert_non_null(strstr(why, "side b differs"));
	dsv32_cmp_result_free(&x);
	dsv32_cmp_result_free(&y);
	dsv32_budget_free(&b);
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "--write-sample") == 0) {
		dsv32_budget b;
		dsv32_error err = {0};
		if (dsv32_budget_parse(&b, budget_json, "inline", &err) != DSV32_OK)
			return 1;
		dsv32_cmp_result r;
		sample_result(&r, &b);
		int rc = dsv32_report_write_json(&r, argv[2], &err) == DSV32_OK ? 0 : 1;
		dsv32_cmp_result_free(&r);
		dsv32_budget_free(&b);
		return rc;
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_budget_first_matching_rule_decides),
		cmocka_unit_test(test_budget_rejects_unknown_metric_and_bad_json),
		cmocka_unit_test(test_budget_mode_teacher_forced_is_local),
		cmocka_unit_test(test_first_divergence_is_the_first_tap_over_budget),
		cmocka_unit_test(test_json_round_trip_keeps_every_metric),
		cmocka_unit_test(test_json_reader_rejects_other_schema_versions),
		cmocka_unit_test(test_json_reader_loads_reports_without_sides),
		cmocka_unit_test(test_markdown_names_verdict_and_first_divergence),
		cmocka_unit_test(test_html_is_self_contained_with_svg),
		cmocka_unit_test(test_report_check_flags_growth_beyond_tolerance),
		cmocka_unit_test(test_report_check_exact_wants_every_figure_equal),
		cmocka_unit_test(test_result_escapes_control_characters_in_names),
		cmocka_unit_test(test_report_check_notes_a_numerics_key_change),
		cmocka_unit_test(test_first_divergence_is_in_model_order),
		cmocka_unit_test(test_reports_of_different_runs_are_not_comparable),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
