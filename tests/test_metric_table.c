/* test_metric_table.c: the metric table (compare/metrics.h) is the one place a metric is
 * declared, so this walks it: every stored figure round-trips through the JSON writer and
 * reader, every budget name reaches its metric (and a limit in the metric's direction trips),
 * every figure of a report view appears in that view's output (terminal, Markdown, HTML), the
 * views' places are 1..N without gaps, formats match types, and the JSON schema names exactly
 * the table's keys. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <cjson/cJSON.h>

#include "compare/budget.h"
#include "compare/check.h"
#include "core/infile.h"
#include "reports/report.h"

/* A result of the family that carries m's figures, named so every report view lists it (step
 * 0, the residual stream of layer 0: the Markdown per-layer table). */
static dsv32_tap_result carrier(const dsv32_metric_desc *m)
{
	dsv32_tap_result t;
	memset(&t, 0, sizeof t);
	snprintf(t.name, sizeof t.name, "%s",
		 m->family == DSV32_FAMILY_LOGITS ? "logits" : "layers.0.out");
	dsv32_tap_split_name(t.name, &t.layer, t.op, sizeof t.op);
	t.family = m->family;
	snprintf(t.dtype_a, sizeof t.dtype_a, "BF16");
	snprintf(t.dtype_b, sizeof t.dtype_b, "BF16");
	t.set.rows = 4;
	t.set.rows_tie_equal = 2;
	return t;
}

/* A value of m's type that no other figure of the carrier holds: i picks it. */
static void put_figure(dsv32_tap_result *t, const dsv32_metric_desc *m, size_t i)
{
	void *p = dsv32_tap_figure_ptr(t, m);
	if (!p)
		return;
	if (m->type == DSV32_FIG_I64)
		*(int64_t *)p = 1000 + (int64_t)i;
	else if (m->type == DSV32_FIG_U32)
		*(uint32_t *)p = 2000u + (uint32_t)i;
	else
		*(double *)p = 0.125 * (double)(i + 1) + 1e-9 * (double)i;
}

static void one_result(dsv32_cmp_result *r, const dsv32_tap_result *t)
{
	dsv32_cmp_result_init(r);
	snprintf(r->side_a, sizeof r->side_a, "ref:cpu:bf16:mp=1");
	snprintf(r->side_b, sizeof r->side_b, "hf:cpu:bf16");
	snprintf(r->mode, sizeof r->mode, "propagate");
	assert_non_null(dsv32_cmp_result_add(r, t));
}

static void test_stored_figures_round_trip_through_json(void **state)
{
	(void)state;
	for (size_t i = 0; i < dsv32_metric_count; i++) {
		const dsv32_metric_desc *m = &dsv32_metric_table[i];
		if (!m->json_key) {
			assert_non_null(m->derive); /* not stored: computed from stored figures */
			continue;
		}
		dsv32_tap_result t = carrier(m);
		put_figure(&t, m, i);
		dsv32_cmp_result r, back;
		one_result(&r, &t);
		char *json = dsv32_report_json_string(&r);
		assert_non_null(json);
		char key[64];
		snprintf(key, sizeof key, "\"%s\":", m->json_key);
		assert_non_null(strstr(json, key));
		dsv32_error err = {0};
		assert_int_equal(dsv32_report_parse_json(&back, json, "table", &err), DSV32_OK);
		assert_int_equal(back.n_taps, 1);
		if (dsv32_tap_figure(&back.taps[0], m) != dsv32_tap_figure(&t, m))
			fail_msg("%s did not round-trip", m->json_key);
		free(json);
		dsv32_cmp_result_free(&r);
		dsv32_cmp_result_free(&back);
	}
}

/* A budget with one limit on m just on the good side of v, or just past it. */
static void budget_for(dsv32_budget *b, const dsv32_metric_desc *m, double v, bool trip)
{
	char json[256];
	bool max = m->dir == DSV32_DIR_MAX;
	double limit = max ? (trip ? v * 0.5 - 1 : v * 2 + 1) : (trip ? v * 2 + 1 : v * 0.5 - 1);
	snprintf(json, sizeof json, "{\"rules\":[{\"pattern\":\"*\",\"%s\":{\"%s\":%.17g}}]}",
		 max ? "max" : "min", m->budget_key, limit);
	dsv32_error err = {0};
	assert_int_equal(dsv32_budget_parse(b, json, "table", &err), DSV32_OK);
}

static void test_budget_keys_reach_their_metrics(void **state)
{
	(void)state;
	for (size_t i = 0; i < dsv32_metric_count; i++) {
		const dsv32_metric_desc *m = &dsv32_metric_table[i];
		if (!m->budget_key) {
			assert_int_equal(m->dir, DSV32_DIR_NONE);
			continue;
		}
		assert_ptr_equal(dsv32_metric_by_budget_key(m->budget_key), m);
		assert_true(m->dir == DSV32_DIR_MAX || m->dir == DSV32_DIR_MIN);
		dsv32_tap_result t = carrier(m);
		put_figure(&t, m, i);
		assert_true(dsv32_tap_has_metric(&t, m));
		double v = -1;
		assert_true(dsv32_tap_metric(&t, m->budget_key, &v));
		assert_true(v == dsv32_tap_figure(&t, m));
		for (int trip = 0; trip < 2; trip++) {
			dsv32_budget b;
			budget_for(&b, m, v, trip);
			dsv32_tap_result u = t;
			dsv32_budget_apply(&b, &u);
			if (u.over_budget != (bool)trip)
				fail_msg("%s = %g: limit %s", m->budget_key, v,
					 trip ? "not tripped" : "tripped");
			dsv32_budget_free(&b);
		}
	}
	double v;
	dsv32_tap_result t = carrier(&dsv32_metric_table[0]);
	assert_false(dsv32_tap_metric(&t, "no_such_metric", &v));
}

/* What a stream renderer (Markdown, the terminal table) writes for r. */
static char *rendered(void (*render)(const dsv32_cmp_result *, FILE *), const dsv32_cmp_result *r)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	assert_non_null(f);
	render(r, f);
	fclose(f);
	return buf;
}

static char *markdown_of(const dsv32_cmp_result *r)
{
	return rendered(dsv32_report_markdown, r);
}

static char *table_of(const dsv32_cmp_result *r)
{
	return rendered(dsv32_report_table, r);
}

static char *html_of(const dsv32_cmp_result *r)
{
	char path[] = "/tmp/dsv32_metric_table_XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	dsv32_error err = {0};
	assert_int_equal(dsv32_report_write_html(r, path, &err), DSV32_OK);
	char *text = NULL;
	size_t len = 0;
	assert_int_equal(dsv32_infile_read(path, DSV32_INFILE_REPORT, &text, &len, &err), DSV32_OK);
	unlink(path);
	return text;
}

static void expect_in(const char *doc, const char *what, const char *needle, const char *view)
{
	if (!strstr(doc, needle))
		fail_msg("%s: \"%s\" not in the %s", what, needle, view);
}

/* Every figure of a view shows up in that view: its header or label, and its value. */
static void test_view_figures_appear_in_the_reports(void **state)
{
	(void)state;
	int shown = 0;
	for (size_t i = 0; i < dsv32_metric_count; i++) {
		const dsv32_metric_desc *m = &dsv32_metric_table[i];
		if (!m->col && !m->summary && !m->chart)
			continue;
		shown++;
		dsv32_tap_result t = carrier(m);
		put_figure(&t, m, i);
		dsv32_cmp_result r;
		one_result(&r, &t);
		char *md = markdown_of(&r), *html = html_of(&r), *tab = table_of(&r);
		char v[64], cell[96];
		const char *name = m->budget_key ? m->budget_key : m->json_key;
		dsv32_tap_figure_str(v, sizeof v, &t, m);
		expect_in(tab, name, v, "terminal table");
		if (m->col) {
			expect_in(tab, name, m->col_term, "terminal table");
			snprintf(cell, sizeof cell, "<th>%s</th>", m->col_html);
			expect_in(html, name, cell, "HTML table");
			snprintf(cell, sizeof cell, "<td>%s</td>", v);
			expect_in(html, name, cell, "HTML table");
		}
		if (m->col && m->col_md) {
			snprintf(cell, sizeof cell, "| %s ", m->col_md);
			expect_in(md, name, cell, "Markdown per-layer table");
			snprintf(cell, sizeof cell, "| %s ", v);
			expect_in(md, name, cell, "Markdown per-layer table");
		}
		if (m->summary) {
			snprintf(cell, sizeof cell, "%s %s", m->label, v);
			expect_in(tab, name, cell, "terminal table");
			if (m->family == DSV32_FAMILY_LOGITS) {
				expect_in(md, name, cell, "Markdown worst taps");
				expect_in(html, name, cell, "HTML table");
			}
		}
		if (m->chart) {
			snprintf(cell, sizeof cell, "%s per layer", m->json_key);
			expect_in(html, name, cell, "HTML charts");
		}
		free(md);
		free(html);
		free(tab);
		dsv32_cmp_result_free(&r);
	}
	assert_true(shown > 0);
}

/* Views walk places 1, 2, ... until a gap: a place used twice or skipped would hide a figure. */
static void test_view_places_have_no_gaps(void **state)
{
	(void)state;
	static const dsv32_metric_view views[] = {DSV32_VIEW_COLUMN, DSV32_VIEW_SUMMARY,
						  DSV32_VIEW_EXACT, DSV32_VIEW_CHART};
	for (size_t v = 0; v < sizeof views / sizeof views[0]; v++) {
		int in_view = 0, walked = 0;
		for (size_t i = 0; i < dsv32_metric_count; i++) {
			const dsv32_metric_desc *m = &dsv32_metric_table[i];
			int place = views[v] == DSV32_VIEW_COLUMN    ? m->col
				    : views[v] == DSV32_VIEW_SUMMARY ? m->summary
				    : views[v] == DSV32_VIEW_EXACT   ? m->exact
								     : m->chart;
			in_view += place > 0;
			if (place > 0) /* the first figure at its place is itself: no place is shared */
				assert_ptr_equal(dsv32_metric_at(views[v], place), m);
		}
		while (dsv32_metric_at(views[v], walked + 1))
			walked++;
		assert_int_equal(walked, in_view);
	}
}

static void test_formats_match_types(void **state)
{
	(void)state;
	for (size_t i = 0; i < dsv32_metric_count; i++) {
		const dsv32_metric_desc *m = &dsv32_metric_table[i];
		if (m->col || m->summary)
			assert_non_null(m->fmt);
		if (m->col)
			assert_true(m->col_term && m->col_html && m->col_width > 0);
		if (m->summary)
			assert_non_null(m->label);
		if (m->chart)
			assert_non_null(m->json_key);
		if (m->budget_key)
			assert_true(m->applies != 0);
		if (!m->fmt)
			continue;
		size_t n = strlen(m->fmt);
		char conv = m->fmt[n - 1];
		dsv32_figure_type type = m->derive ? DSV32_FIG_F64 : m->type;
		if (type == DSV32_FIG_U32)
			assert_true(conv == 'u' && !strstr(m->fmt, "ll"));
		else if (type == DSV32_FIG_I64)
			assert_non_null(strstr(m->fmt, "lld"));
		else
			assert_non_null(strchr("efg", conv));
		assert_int_equal(strchr(m->fmt, '%') - m->fmt, strrchr(m->fmt, '%') - m->fmt);
	}
}

/* The keys the schema declares for one family's object. */
static const cJSON *schema_props(const cJSON *schema, dsv32_metric_family f)
{
	const cJSON *defs = cJSON_GetObjectItemCaseSensitive(schema, "$defs");
	if (f == DSV32_FAMILY_DENSE)
		return cJSON_GetObjectItemCaseSensitive(
			cJSON_GetObjectItemCaseSensitive(defs, "dense"), "properties");
	const cJSON *tap = cJSON_GetObjectItemCaseSensitive(
		cJSON_GetObjectItemCaseSensitive(defs, "tap"), "properties");
	const cJSON *obj = cJSON_GetObjectItemCaseSensitive(tap, f == DSV32_FAMILY_SET ? "set"
										       : "logits");
	return cJSON_GetObjectItemCaseSensitive(obj, "properties");
}

static bool table_has(dsv32_metric_family f, const char *key)
{
	for (size_t i = 0; i < dsv32_metric_count; i++)
		if (dsv32_metric_table[i].family == f && dsv32_metric_table[i].json_key &&
		    !strcmp(dsv32_metric_table[i].json_key, key))
			return true;
	return false;
}

static void test_schema_names_exactly_the_table_keys(void **state)
{
	(void)state;
	const char *src = getenv("DSV32_SOURCE_DIR");
	char path[4096];
	snprintf(path, sizeof path, "%s/reports/schema/drift-report.schema.json",
		 src ? src : DSV32_SOURCE_DIR);
	char *text = NULL;
	size_t len = 0;
	dsv32_error err = {0};
	assert_int_equal(dsv32_infile_read(path, DSV32_INFILE_REPORT, &text, &len, &err), DSV32_OK);
	cJSON *schema = cJSON_Parse(text);
	assert_non_null(schema);
	for (int f = 0; f < DSV32_FAMILY_COUNT; f++) {
		const cJSON *props = schema_props(schema, (dsv32_metric_family)f), *it;
		assert_non_null(props);
		int n_schema = 0, n_table = 0;
		cJSON_ArrayForEach(it, props) {
			if (!table_has((dsv32_metric_family)f, it->string))
				fail_msg("schema key %s (family %d) is not in the metric table",
					 it->string, f);
			n_schema++;
		}
		for (size_t i = 0; i < dsv32_metric_count; i++) {
			const dsv32_metric_desc *m = &dsv32_metric_table[i];
			if ((int)m->family != f || !m->json_key)
				continue;
			if (!cJSON_GetObjectItemCaseSensitive(props, m->json_key))
				fail_msg("table key %s (family %d) is not in the schema", m->json_key, f);
			n_table++;
		}
		assert_int_equal(n_schema, n_table);
	}
	cJSON_Delete(schema);
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stored_figures_round_trip_through_json),
		cmocka_unit_test(test_budget_keys_reach_their_metrics),
		cmocka_unit_test(test_view_figures_appear_in_the_reports),
		cmocka_unit_test(test_view_places_have_no_gaps),
		cmocka_unit_test(test_formats_match_types),
		cmocka_unit_test(test_schema_names_exactly_the_table_keys),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
