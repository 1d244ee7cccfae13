/* test_attribute_html.c: `dsv32-parity attribute --html` end to end (issue 18): one bar chart
 * per layer and one for the logits, one line per knob in the headline table's order with the
 * JSON's numbers, a page whose tags balance and whose text is escaped, and no output at all
 * from a run that fails. The checkpoint's directory name carries '<', '&' and '"', which the
 * page shows in its provenance. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/fsutil.h"
#include "tests/support/test_common.h"

#define CKPT_NAME "ck<i>&\"q" /* a directory name an unescaped page would break on */

static char dir[64];
static const char *cli;
static char *html;  /* the page */
static cJSON *json; /* the JSON of the same run */

static int setup(void **state)
{
	(void)state;
	static const char *const none[] = {NULL};
	if (tc_cli_fixture_dir(&cli, "attrh", dir, sizeof dir, none) != 0 || !cli)
		return cli ? -1 : 0;
	char args[512], out[8192], path[128];
	snprintf(args, sizeof args, "fixture --preset tiny --out '%s/%s'", dir, CKPT_NAME);
	if (tc_run_cli(cli, args, out, sizeof out) != 0)
		return -1;
	/* 2 x 24 tokens (beyond index_topk 16) and a decode step: every knob path runs */
	snprintf(args, sizeof args, "attribute --checkpoint '%s/%s' --decode-steps 1 --quiet "
		 "--json %s/a.json --html %s/a.html", dir, CKPT_NAME, dir, dir);
	if (tc_run_cli(cli, args, out, sizeof out) != 0) {
		fprintf(stderr, "attribute failed:\n%s\n", out);
		return -1;
	}
	size_t len;
	snprintf(path, sizeof path, "%s/a.html", dir);
	if (dsv32_read_file(path, 16u << 20, &html, &len, NULL) != DSV32_OK)
		return -1;
	snprintf(path, sizeof path, "%s/a.json", dir);
	json = tc_load_json(path);
	return json ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	free(html);
	cJSON_Delete(json);
	return tc_remove_dir(dir);
}

static const cJSON *get(const cJSON *o, const char *k)
{
	return cJSON_GetObjectItemCaseSensitive(o, k);
}

/* The knob names in the headline table's order: the status-table rows in order of first
 * appearance, each row's knobs in table order. */
static int headline_order(const char **names, int cap)
{
	const cJSON *knobs = get(json, "knobs"), *r, *k;
	int n = 0;
	cJSON_ArrayForEach(r, get(json, "rows")) {
		cJSON_ArrayForEach(k, knobs) {
			if (!strcmp(get(k, "row")->valuestring, get(r, "row")->valuestring) && n < cap)
				names[n++] = get(k, "name")->valuestring;
		}
	}
	return n;
}

/* What the chart of layer (or, at -1, of the logits) must show for the point o; NAN when the
 * point has no value there. */
static double json_value(const cJSON *o, int layer)
{
	if (!o)
		return NAN;
	if (layer < 0)
		return get(o, "logits") ? get(get(o, "logits"), "kl")->valuedouble : NAN;
	const cJSON *l = get(o, "layer_rel_l2");
	return l ? cJSON_GetArrayItem(l, layer)->valuedouble : NAN;
}

static const cJSON *knob_json(const char *name)
{
	const cJSON *k;
	cJSON_ArrayForEach(k, get(json, "knobs")) {
		if (!strcmp(get(k, "name")->valuestring, name))
			return k;
	}
	return NULL;
}

/* The text between `from` and the next `end`, as a fresh string (NULL if end is missing). */
static char *cut(const char *from, const char *end)
{
	const char *e = strstr(from, end);
	return e ? strndup(from, (size_t)(e - from)) : NULL;
}

/* The value of the single-quoted attribute `name` in the tag starting at s, into buf. */
static bool attr(const char *s, const char *name, char *buf, size_t len)
{
	char key[48];
	snprintf(key, sizeof key, " %s='", name);
	const char *gt = strchr(s, '>'), *p = strstr(s, key);
	if (!p || (gt && p > gt))
		return false;
	p += strlen(key);
	const char *q = strchr(p, '\'');
	snprintf(buf, len, "%.*s", (int)(q - p), p);
	return true;
}

typedef struct {
	char knob[48];
	bool has_value, has_bar;
	double value, width;
	char num[48]; /* the printed number */
} bar_line;

/* The knob lines of one chart (its HTML), in order; returns their count. */
static int chart_lines(const char *sec, bar_line *out, int cap)
{
	int n = 0;
	for (const char *p = strstr(sec, "<tr class='knob'"); p && n < cap;
	     p = strstr(p + 1, "<tr class='knob'")) {
		bar_line *b = &out[n++];
		char *tr = cut(p, "</tr>"), v[64];
		assert_non_null(tr);
		assert_true(attr(tr, "data-knob", b->knob, sizeof b->knob));
		b->has_value = attr(tr, "data-value", v, sizeof v);
		b->value = b->has_value ? strtod(v, NULL) : NAN;
		const char *bar = strstr(tr, "class='bar' style='width:");
		b->has_bar = bar != NULL;
		b->width = bar ? strtod(bar + strlen("class='bar' style='width:"), NULL) : -1;
		const char *num = strstr(tr, "<td class='num'>");
		assert_non_null(num);
		num += strlen("<td class='num'>");
		snprintf(b->num, sizeof b->num, "%.*s", (int)(strchr(num, '<') - num), num);
		free(tr);
	}
	return n;
}

/* Checks one chart against the JSON: every knob in the headline order, the switches with the
 * JSON's value (bit for bit), its printed number, a bar; larger values draw longer bars. */
static void check_chart(const char *sec, int layer)
{
	const char *order[64];
	int n_knobs = headline_order(order, 64);
	bar_line lines[64];
	int n = chart_lines(sec, lines, 64);
	assert_int_equal(n, n_knobs);
	assert_int_equal(n, cJSON_GetArraySize(get(json, "knobs")));
	for (int i = 0; i < n; i++) {
		const bar_line *b = &lines[i];
		assert_string_equal(b->knob, order[i]);
		const cJSON *k = knob_json(b->knob);
		if (!cJSON_IsTrue(get(k, "implemented"))) {
			assert_false(b->has_value || b->has_bar);
			continue;
		}
		double want = json_value(get(k, "alone"), layer);
		assert_true(b->has_value && b->has_bar);
		if (b->value != want)
			fail_msg("layer %d, %s: chart %.17g, JSON %.17g", layer, b->knob, b->value, want);
		char num[48];
		snprintf(num, sizeof num, "%.3g", want);
		assert_string_equal(b->num, want > 0 ? num : "0");
		assert_true(b->width >= 0 && b->width <= 100);
		assert_int_equal(b->width > 0, want > 0);
		for (int j = 0; j < i; j++) { /* the length grows with the value */
			if (lines[j].has_value && lines[j].value < want)
				assert_true(lines[j].width <= b->width);
			if (lines[j].has_value && lines[j].value > want)
				assert_true(lines[j].width >= b->width);
		}
	}
	char v[64];
	const char *total = strstr(sec, "<tr class='total'");
	assert_non_null(total);
	assert_true(attr(total, "data-value", v, sizeof v));
	assert_true(strtod(v, NULL) == json_value(get(json, "total"), layer));
}

/* One chart per layer of the JSON (its layer_rel_l2 length) and one for the logits, each
 * checked line by line against the JSON. */
static void test_attribute_html_charts_match_the_json(void **state)
{
	(void)state;
	TC_NEED_CLI(cli);
	int n_layers = cJSON_GetArraySize(get(get(json, "total"), "layer_rel_l2"));
	assert_true(n_layers >= 2);
	int n_sections = 0;
	for (const char *p = strstr(html, "<section "); p; p = strstr(p + 1, "<section "))
		n_sections++;
	assert_int_equal(n_sections, n_layers + 1);
	for (int l = -1; l < n_layers; l++) {
		char head[96];
		if (l < 0)
			snprintf(head, sizeof head, "<section class='chart' id='logits' data-chart='logits'>");
		else
			snprintf(head, sizeof head, "<section class='chart' id='layer-%d' data-chart='layer' "
				 "data-layer='%d'>", l, l);
		const char *p = strstr(html, head);
		if (!p)
			fail_msg("no chart for %s %d", l < 0 ? "the logits" : "layer", l);
		char *sec = cut(p, "</section>");
		assert_non_null(sec);
		check_chart(sec, l);
		free(sec);
	}
	/* the checkpoint ran with several knobs alive: some bar is drawn at all */
	assert_non_null(strstr(html, "class='bar' style='width:1"));
	/* below the charts, every run as the Markdown lists them: one line per path point */
	int n_path = 0;
	for (const char *p = strstr(html, "<tr><td>path: + "); p; p = strstr(p + 1, "<tr><td>path: + "))
		n_path++;
	assert_int_equal(n_path, cJSON_GetArraySize(get(json, "path")));
}

/* ---- well-formedness: the elements the page emits balance, text and attributes escaped ---- */

static const char *const elements[] = {"html", "head", "meta", "title", "style", "body", "h1",
				       "h2", "h3", "p", "dl", "dt", "dd", "div", "section",
				       "table", "thead", "tbody", "tr", "th", "td", "code"};

static bool known_element(const char *name, size_t n)
{
	for (size_t i = 0; i < sizeof elements / sizeof elements[0]; i++)
		if (strlen(elements[i]) == n && !strncmp(elements[i], name, n))
			return true;
	return false;
}

/* An '&' must open one of the entities the escaper writes. */
static bool entity_ok(const char *p)
{
	static const char *const ok[] = {"&lt;", "&gt;", "&amp;", "&quot;", "&#39;"};
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
		if (!strncmp(p, ok[i], strlen(ok[i])))
			return true;
	return false;
}

/* Scans one tag at p ('<'); pushes or pops the stack; returns the position after its '>'. */
static const char *scan_tag(const char *p, const char **stack, size_t *lens, int *depth)
{
	bool closing = p[1] == '/';
	const char *name = p + 1 + closing;
	size_t n = strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789");
	if (!known_element(name, n))
		fail_msg("unknown or stray tag at: %.40s", p);
	const char *q = name + n;
	char quote = 0;
	for (; *q && (quote || *q != '>'); q++) {
		if (*q == '<')
			fail_msg("'<' inside a tag at: %.60s", p);
		if (*q == '&' && !entity_ok(q))
			fail_msg("bare '&' in an attribute at: %.60s", q);
		if (!quote && (*q == '\'' || *q == '"'))
			quote = *q;
		else if (*q == quote)
			quote = 0;
	}
	assert_true(*q == '>');
	if (closing) {
		assert_true(*depth > 0);
		(*depth)--;
		if (lens[*depth] != n || strncmp(stack[*depth], name, n))
			fail_msg("</%.*s> closes <%.*s>", (int)n, name, (int)lens[*depth], stack[*depth]);
	} else if (!(n == 4 && !strncmp(name, "meta", 4))) { /* the one void element */
		assert_true(*depth < 64);
		stack[*depth] = name;
		lens[(*depth)++] = n;
	}
	return q + 1;
}

static void test_attribute_html_is_well_formed_and_escaped(void **state)
{
	(void)state;
	TC_NEED_CLI(cli);
	const char *p = html;
	assert_true(!strncmp(p, "<!DOCTYPE html>\n", 16));
	p += 16;
	const char *stack[64];
	size_t lens[64];
	int depth = 0;
	while (*p) {
		if (*p == '<')
			p = scan_tag(p, stack, lens, &depth);
		else if (*p == '&' && !entity_ok(p))
			fail_msg("bare '&' in text at: %.60s", p);
		else if (*p == '>')
			fail_msg("bare '>' in text at: %.60s", p);
		else
			p++;
	}
	assert_int_equal(depth, 0);
	/* no script, no link to anything */
	assert_null(strstr(html, "<script"));
	assert_null(strstr(html, "http"));
	/* the checkpoint name and a status-table row, escaped */
	assert_non_null(strstr(html, "ck&lt;i&gt;&amp;&quot;q"));
	assert_null(strstr(html, CKPT_NAME));
	assert_non_null(strstr(html, "§9 residual &amp; norm handling"));
}

/* A run that fails inside the attribution runs (the config reads, so the prompt is made, but
 * the weights file is cut short) writes nothing: no page, no JSON, no Markdown, no temporary
 * file. */
static void test_attribute_failed_run_leaves_no_output(void **state)
{
	(void)state;
	TC_NEED_CLI(cli);
	char sub[96], args[1024], out[4096];
	snprintf(sub, sizeof sub, "%s/fail", dir);
	assert_int_equal(dsv32_mkdirs(sub, NULL), DSV32_OK);
	snprintf(args, sizeof args, "cp -r '%s/%s' %s/ck && truncate -s 4096 %s/ck/model.safetensors", dir,
		 CKPT_NAME, sub, sub);
	assert_int_equal(tc_run_capture(args, out, sizeof out), 0);
	snprintf(args, sizeof args, "attribute --checkpoint %s/ck --decode-steps 1 --quiet --json "
		 "%s/a.json --markdown %s/a.md --html %s/a.html", sub, sub, sub, sub);
	assert_int_not_equal(tc_run_cli(cli, args, out, sizeof out), 0);
	assert_int_equal(tc_count_dir_entries(sub), 1); /* only the checkpoint */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_attribute_html_charts_match_the_json),
		cmocka_unit_test(test_attribute_html_is_well_formed_and_escaped),
		cmocka_unit_test(test_attribute_failed_run_leaves_no_output),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
