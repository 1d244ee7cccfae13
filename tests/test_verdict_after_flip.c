/* test_verdict_after_flip.c: the verdict judges free-running taps only up to the first
 * propagated decision flip (compare/result.h first_prop_flip); teacher-forced taps always.
 * Selection scores whose selection takes every visible entry decide nothing and are not
 * judged either (result.h decides_nothing), nor is a selection whose every flip is a tie or a
 * near-tie (result.h dsv32_tap_flips_explained).
 * Markdown and HTML lead with that flip (the console summary names it the same way) and HTML
 * marks every free-running tap after it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "compare/result.h"
#include "reports/report.h"

static dsv32_tap_result tap(const char *op, int layer, int step, dsv32_drift_mode mode,
			    bool over)
{
	dsv32_tap_result t;
	memset(&t, 0, sizeof t);
	snprintf(t.name, sizeof t.name, "layers.%d.%s", layer, op);
	snprintf(t.op, sizeof t.op, "%s", op);
	t.layer = layer;
	t.step = step;
	t.mode = mode;
	t.over_budget = over;
	t.family = DSV32_FAMILY_DENSE;
	return t;
}

static dsv32_tap_result flip(int layer, int step, dsv32_drift_mode mode)
{
	dsv32_tap_result t = tap("indexer.topk", layer, step, mode, false);
	t.family = DSV32_FAMILY_SET;
	t.set.rows = 4;
	t.set.rows_equal = 3; /* one row picked other keys */
	t.set.rows_tie_equal = 3;
	return t;
}

static void add(dsv32_cmp_result *r, dsv32_tap_result t)
{
	assert_non_null(dsv32_cmp_result_add(r, &t));
}

/* Over budget after the flip, free-running: reported, not judged. */
static void test_after_flip_is_not_judged(void **state)
{
	(void)state;
	dsv32_cmp_result r;
	dsv32_cmp_result_init(&r);
	add(&r, tap("attn_norm", 0, 0, DSV32_DRIFT_PROPAGATE, false));
	add(&r, flip(0, 0, DSV32_DRIFT_PROPAGATE));
	add(&r, tap("attn.out", 0, 0, DSV32_DRIFT_PROPAGATE, true));
	add(&r, tap("out", 1, 1, DSV32_DRIFT_PROPAGATE, true));
	assert_true(dsv32_cmp_result_passed(&r));
	assert_int_equal(r.n_unjudged, 2);
	assert_int_equal(r.first_prop_flip, 1);
	assert_ptr_equal(dsv32_cmp_result_first_flip(&r), &r.taps[1]);
	dsv32_cmp_result_free(&r);
}

/* Before the flip (or with no flip), and in the teacher-forced pass, over budget fails. */
static void test_before_flip_and_teacher_forced_are_judged(void **state)
{
	(void)state;
	dsv32_cmp_result r;
	dsv32_cmp_result_init(&r);
	add(&r, tap("attn_norm", 0, 0, DSV32_DRIFT_PROPAGATE, true));
	add(&r, flip(0, 0, DSV32_DRIFT_PROPAGATE));
	assert_false(dsv32_cmp_result_passed(&r));
	assert_string_equal(r.taps[r.first_divergence].name, "layers.0.attn_norm");
	dsv32_cmp_result_free(&r);

	dsv32_cmp_result_init(&r);
	add(&r, flip(0, 0, DSV32_DRIFT_PROPAGATE));
	add(&r, tap("attn.out", 2, 0, DSV32_DRIFT_LOCAL, true)); /* forced decisions: arithmetic */
	assert_false(dsv32_cmp_result_passed(&r));
	assert_int_equal(r.n_unjudged, 0);
	dsv32_cmp_result_free(&r);

	dsv32_cmp_result_init(&r); /* a teacher-forced flip does not start free-running chaos */
	add(&r, flip(0, 0, DSV32_DRIFT_LOCAL));
	add(&r, tap("attn.out", 1, 0, DSV32_DRIFT_PROPAGATE, true));
	assert_false(dsv32_cmp_result_passed(&r));
	dsv32_cmp_result_free(&r);
}

static int count(const char *hay, const char *needle)
{
	int n = 0;
	for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

static char *render(const dsv32_cmp_result *r, void (*fn)(const dsv32_cmp_result *, FILE *))
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	assert_non_null(f);
	fn(r, f);
	fclose(f);
	return buf;
}

/* The reports lead with the first flip and mark the taps after it (and only those). */
static void test_reports_lead_with_the_flip_and_mark_after_it(void **state)
{
	(void)state;
	dsv32_cmp_result r;
	dsv32_cmp_result_init(&r);
	add(&r, tap("attn_norm", 0, 0, DSV32_DRIFT_PROPAGATE, false));
	add(&r, flip(0, 0, DSV32_DRIFT_PROPAGATE));
	add(&r, tap("attn.out", 0, 0, DSV32_DRIFT_PROPAGATE, true));
	add(&r, tap("out", 1, 1, DSV32_DRIFT_PROPAGATE, false));
	add(&r, tap("out", 1, 0, DSV32_DRIFT_LOCAL, false));
	const char *lead = "First decision flip:** step 0 layers.0.indexer.topk (free-running), "
			   "first at row 0; 1 row(s) differ: 0 tie, 0 near-tie, 0 genuine, "
			   "1 unclassified";
	char *md = render(&r, dsv32_report_markdown);
	assert_non_null(strstr(md, lead));
	char *con = render(&r, dsv32_report_console);
	assert_non_null(strstr(con, lead + strlen("First decision flip:** ")));
	free(con);
	char *html = render(&r, dsv32_report_html);
	assert_non_null(strstr(html, lead + strlen("First decision flip:** ")));
	assert_int_equal(count(html, "<i>after a decision flip</i>"), 2);
	assert_int_equal(count(html, "<tr class='over flip'>"), 1);
	assert_int_equal(count(html, "<tr class='flip'>"), 1);
	assert_non_null(strstr(html, "(not judged)"));
	free(md);
	free(html);
	dsv32_cmp_result_free(&r);
}


/* Indexer scores over budget with k = 16 picks: judged when some row sees more than 16 keys,
 * not judged (every key is selected whatever the scores) when no row does. */
static dsv32_tap_result scores(int64_t visible, bool over)
{
	dsv32_tap_result t = tap("indexer.scores", 2, 1, DSV32_DRIFT_LOCAL, over);
	t.visible_max = visible;
	return t;
}

static dsv32_tap_result topk16(void)
{
	dsv32_tap_result t = tap("indexer.topk", 2, 1, DSV32_DRIFT_LOCAL, false);
	t.family = DSV32_FAMILY_SET;
	t.ndim = 3;
	t.shape[0] = 1, t.shape[1] = 1, t.shape[2] = 16;
	t.set.rows = t.set.rows_equal = t.set.rows_tie_equal = 1;
	return t;
}

static void test_scores_that_decide_nothing_are_not_judged(void **state)
{
	(void)state;
	dsv32_cmp_result r;
	dsv32_cmp_result_init(&r);
	add(&r, scores(5, true));
	assert_false(dsv32_cmp_result_passed(&r)); /* until its selection arrives */
	add(&r, topk16());
	assert_true(dsv32_cmp_result_passed(&r));
	assert_true(r.taps[0].decides_nothing);
	assert_int_equal(r.n_unjudged, 1);
	assert_int_equal(r.n_unjudged_scores, 1);
	char *con = render(&r, dsv32_report_console);
	assert_non_null(strstr(con, "over budget, not judged  (its selection takes every visible "
				    "entry)"));
	assert_non_null(strstr(con, "1 over-budget score tap(s) not judged"));
	free(con);
	char *json = dsv32_report_json_string(&r);
	assert_non_null(json);
	assert_int_equal(count(json, "\"decides_nothing\""), 1);
	free(json);
	dsv32_cmp_result_free(&r);

	int64_t judged[] = {17, 0}; /* a row with 17 keys; not counted (a report without it) */
	for (int i = 0; i < 2; i++) {
		dsv32_cmp_result_init(&r);
		add(&r, scores(judged[i], true));
		add(&r, topk16());
		assert_false(dsv32_cmp_result_passed(&r));
		assert_false(r.taps[0].decides_nothing);
		assert_string_equal(r.taps[r.first_divergence].name, "layers.2.indexer.scores");
		dsv32_cmp_result_free(&r);
	}
}

/* The flag survives a JSON round trip, so report render / check judge as compare did. */
static void test_decides_nothing_survives_the_json_round_trip(void **state)
{
	(void)state;
	dsv32_cmp_result r, back;
	dsv32_cmp_result_init(&r);
	add(&r, scores(5, true));
	add(&r, topk16());
	char path[] = "/tmp/dsv32_decides_nothing_XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	dsv32_error err;
	assert_int_equal(dsv32_report_write_json(&r, path, &err), DSV32_OK);
	dsv32_cmp_result_init(&back);
	assert_int_equal(dsv32_report_read_json(&back, path, &err), DSV32_OK);
	assert_true(dsv32_cmp_result_passed(&back));
	assert_int_equal(back.n_unjudged_scores, 1);
	unlink(path);
	dsv32_cmp_result_free(&back);
	dsv32_cmp_result_free(&r);
}

/* One decode row of 2 experts with one swapped (Jaccard 1/3), over the 0.5 limit: not judged
 * when the row is a near-tie (or a tie), judged when it is genuine or unclassified. */
static dsv32_tap_result expert_flip(int64_t tie, int64_t near, int64_t genuine)
{
	dsv32_tap_result t = tap("moe.experts", 2, 2, DSV32_DRIFT_LOCAL, true);
	t.family = DSV32_FAMILY_SET;
	t.set.rows = 1;
	t.set.rows_tie_equal = tie;
	t.set.rows_near_tie = near;
	t.set.rows_genuine = genuine;
	t.set.jaccard = 1.0 / 3.0;
	snprintf(t.budget_note, sizeof t.budget_note, "jaccard 0.3333 < 0.5");
	return t;
}

static void test_selections_whose_flips_are_explained_are_not_judged(void **state)
{
	(void)state;
	dsv32_cmp_result r;
	const int64_t cls[2][3] = {{0, 1, 0}, {1, 0, 0}}; /* near-tie; tie */
	for (int i = 0; i < 2; i++) {
		dsv32_cmp_result_init(&r);
		add(&r, expert_flip(cls[i][0], cls[i][1], cls[i][2]));
		assert_true(dsv32_tap_flips_explained(&r.taps[0]));
		assert_true(dsv32_cmp_result_passed(&r));
		assert_int_equal(r.n_unjudged, 1);
		assert_int_equal(r.n_unjudged_flips, 1);
		char *con = render(&r, dsv32_report_console);
		assert_non_null(strstr(con, "1 over-budget selection tap(s) not judged: every flip "
					    "is a tie or a near-tie"));
		free(con);
		char *md = render(&r, dsv32_report_markdown);
		assert_non_null(strstr(md, "(not judged: every flip is a tie or a near-tie)"));
		free(md);
		dsv32_cmp_result_free(&r);
	}
	const int64_t judged[2][3] = {{0, 0, 1}, {0, 0, 0}}; /* genuine; unclassified */
	for (int i = 0; i < 2; i++) {
		dsv32_cmp_result_init(&r);
		add(&r, expert_flip(judged[i][0], judged[i][1], judged[i][2]));
		assert_false(dsv32_tap_flips_explained(&r.taps[0]));
		assert_false(dsv32_cmp_result_passed(&r));
		assert_int_equal(r.n_unjudged, 0);
		dsv32_cmp_result_free(&r);
	}
	/* read back from JSON the figures still say it: report render / check judge alike */
	dsv32_cmp_result_init(&r);
	add(&r, expert_flip(0, 1, 0));
	char *json = dsv32_report_json_string(&r);
	assert_non_null(json);
	char path[] = "/tmp/dsv32_explained_XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_true(write(fd, json, strlen(json)) == (ssize_t)strlen(json));
	close(fd);
	free(json);
	dsv32_cmp_result back;
	dsv32_error err;
	dsv32_cmp_result_init(&back);
	assert_int_equal(dsv32_report_read_json(&back, path, &err), DSV32_OK);
	assert_true(dsv32_cmp_result_passed(&back));
	assert_int_equal(back.n_unjudged_flips, 1);
	unlink(path);
	dsv32_cmp_result_free(&back);
	dsv32_cmp_result_free(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_after_flip_is_not_judged),
		cmocka_unit_test(test_before_flip_and_teacher_forced_are_judged),
		cmocka_unit_test(test_reports_lead_with_the_flip_and_mark_after_it),
		cmocka_unit_test(test_scores_that_decide_nothing_are_not_judged),
		cmocka_unit_test(test_decides_nothing_survives_the_json_round_trip),
		cmocka_unit_test(test_selections_whose_flips_are_explained_are_not_judged),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
