/* test_decision_flips.c: index-set rows that differ are classified against the two sides'
 * scores (compare/tapcmp.c, metrics.h "Decision flips"): a swap among equal scores is a tie, a
 * swap whose margin lies within how far the sides' scores disagree is a near-tie, anything
 * beyond is genuine; without the other side's scores nothing is classified. The same for
 * moe.experts against moe.scores (the tap table's pairing), where a pick at a masked score (a
 * group the group limit dropped) counts and is classified at the group stage from
 * moe.group_scores (unclassified without them). Hand-made rows with the expected class of
 * each worked out below. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "compare/tapcmp.h"

#define ROWS 3
#define T 6
#define K 2

/* held (side a) scores; the streamed side's differ only in row 1, by at most 0.15 */
static const float S_A[ROWS][T] = {{5, 4, 4, 1, 0, 0}, {5, 4, 3.9f, 1, 0, 0}, {5, 4, 1, 0, 0, 0}};
static const float S_B[ROWS][T] = {{5, 4, 4, 1, 0, 0}, {5, 3.85f, 3.95f, 1, 0, 0},
				   {5, 4, 1, 0, 0, 0}};
/* row 0: {0,1} vs {0,2}, s[1] == s[2]: a tie
 * row 1: {0,1} vs {0,2}, margin |4 - 3.9| = 0.1 <= noise 0.15 (|4 - 3.85|): near-tie
 * row 2: {0,1} vs {0,3}, margin |4 - 0| = 4 > 0.15: genuine */
static const int64_t PICK_A[ROWS][K] = {{0, 1}, {0, 1}, {0, 1}};
static const int64_t PICK_B[ROWS][K] = {{0, 2}, {0, 2}, {0, 3}};

static void put(dsv32_tapstore *s, const char *name, const void *data, dsv32_dtype dt, int64_t cols)
{
	int64_t shape[3] = {1, ROWS, cols};
	dsv32_tensor t = dsv32_tensor_view((void *)data, dt, 3, shape);
	assert_int_equal(dsv32_tapstore_put(s, name, &t, NULL), DSV32_OK);
}

/* The set metrics of selection `set` (scores in `scores`) for the given rows. */
static dsv32_set_metrics classify_as(const char *set, const char *scores, bool with_b_scores,
				     const float (*sa)[T], const float (*sb)[T],
				     const int64_t (*pa)[K], const int64_t (*pb)[K])
{
	dsv32_tapstore held, streamed;
	dsv32_tapstore_init(&held);
	dsv32_tapstore_init(&streamed);
	put(&held, scores, sa, DSV32_F32, T);
	put(&held, set, pa, DSV32_I64, K);
	if (with_b_scores)
		put(&streamed, scores, sb, DSV32_F32, T);
	put(&streamed, set, pb, DSV32_I64, K);
	int64_t shape[3] = {1, ROWS, K};
	dsv32_tensor a = dsv32_tensor_view((void *)pa, DSV32_I64, 3, shape);
	dsv32_tensor b = dsv32_tensor_view((void *)pb, DSV32_I64, 3, shape);
	dsv32_tapcmp_peers peers = {&held, &held, &streamed}; /* side a held, b streamed */
	dsv32_tap_result r;
	char why[128];
	dsv32_tapcmp_header(&r, set, 0, DSV32_DRIFT_PROPAGATE, &a, &b);
	assert_true(dsv32_tapcmp(&r, &peers, set, &a, &b, why, sizeof why));
	dsv32_tapstore_free(&held);
	dsv32_tapstore_free(&streamed);
	assert_int_equal(r.family, DSV32_FAMILY_SET);
	return r.set;
}

static dsv32_set_metrics classify(bool with_b_scores)
{
	return classify_as("layers.0.indexer.topk", "layers.0.indexer.scores", with_b_scores, S_A,
			   S_B, PICK_A, PICK_B);
}

static void test_tie_near_tie_genuine(void **state)
{
	(void)state;
	dsv32_set_metrics m = classify(true);
	assert_int_equal(m.rows, ROWS);
	assert_int_equal(m.rows_equal, 0);
	assert_int_equal(m.rows_tie_equal, 1);
	assert_int_equal(m.rows_near_tie, 1);
	assert_int_equal(m.rows_genuine, 1);
	assert_true(fabs(m.flip_margin_max - 4.0) < 1e-9);
	assert_true(fabs(m.score_noise - (4.0 - (double)3.85f)) < 1e-12); /* row 1, column 1 */
}

static void test_unclassified_without_the_other_scores(void **state)
{
	(void)state;
	dsv32_set_metrics m = classify(false);
	assert_int_equal(m.rows_tie_equal, 1); /* ties need one side's scores only */
	assert_int_equal(m.rows_near_tie, 0);
	assert_int_equal(m.rows_genuine, 0);
	assert_true(m.score_noise < 0);
}

static void test_expert_flips_are_classified_like_key_flips(void **state)
{
	(void)state;
	dsv32_set_metrics m = classify_as("layers.2.moe.experts", "layers.2.moe.scores", true, S_A,
					  S_B, PICK_A, PICK_B);
	assert_int_equal(m.rows_tie_equal, 1);
	assert_int_equal(m.rows_near_tie, 1);
	assert_int_equal(m.rows_genuine, 1);
	assert_true(fabs(m.flip_margin_max - 4.0) < 1e-9);
}

/* Row 2 of side b picks column 3, whose held score is masked (-inf): for the indexer the pick
 * does nothing and is left out; for experts (a group the held side's group limit dropped) it is
 * a real difference, with no margin: counted, unclassified. */
static const float S_M[ROWS][T] = {{5, 4, 4, 1, 0, 0}, {5, 4, 3.9f, 1, 0, 0},
				   {5, 4, 1, -INFINITY, -INFINITY, 0}};

static void test_a_masked_pick_counts_for_experts_but_not_for_keys(void **state)
{
	(void)state;
	dsv32_set_metrics e = classify_as("layers.2.moe.experts", "layers.2.moe.scores", true, S_M,
					  S_M, PICK_A, PICK_B);
	assert_int_equal(e.rows_equal, 0);
	assert_int_equal(e.rows_tie_equal, 1);
	assert_int_equal(e.rows_near_tie + e.rows_genuine, 1); /* row 1 (noise 0: genuine) */
	assert_true(e.jaccard < 0.5); /* every row differs by one of two picks */
	dsv32_set_metrics k = classify_as("layers.2.indexer.topk", "layers.2.indexer.scores", true,
					  S_M, S_M, PICK_A, PICK_B);
	/* row 2 without its masked pick: {0,1} vs {0}, nothing to set a margin against */
	assert_int_equal(k.rows_genuine, 1);
	assert_int_equal(k.rows_near_tie, 1);
	assert_true(k.jaccard > e.jaccard);
	double margin;
	int64_t a[K] = {0, 1}, b[K] = {0, 3};
	assert_int_equal(dsv32_tapcmp_classify_row("layers.2.moe.experts", a, K, b, K, S_M[2], T, 0,
						   NULL, 2, &margin), DSV32_FLIP_UNCLASSIFIED);
	assert_true(margin < 0);
	int64_t c[K] = {0, 2};
	assert_int_equal(dsv32_tapcmp_classify_row("layers.2.moe.experts", a, K, c, K, S_M[2], T, 0,
						   NULL, 2, &margin), DSV32_FLIP_GENUINE);
	assert_true(margin == 3.0);
	assert_int_equal(dsv32_tapcmp_classify_row("layers.2.moe.experts", PICK_A[0], K, PICK_B[0],
						   K, S_M[0], T, 0, NULL, 0, &margin), DSV32_FLIP_TIE);
	assert_true(margin == 0.0);
}

/* The group stage: 8 experts in 4 groups of 2, 2 picks. The group scores are given as tapped
 * (the classifier does not recompute them); each side's kept groups are the unmasked ones. */
#define E8 8
#define G4 4
#define NI -INFINITY
static const float GS_A[ROWS][E8] = {{1.5f, 1.3f, 1.2f, 0.8f, NI, NI, NI, NI},
				     {1.5f, 0.2f, 1.2f, 0.8f, NI, NI, NI, NI},
				     {1.5f, 0.2f, 1.2f, 0.8f, NI, NI, NI, NI}};
static const float GS_B[ROWS][E8] = {{1.5f, 1.05f, NI, NI, 1.9f, 0.1f, NI, NI},
				     {1.5f, 0.2f, NI, NI, NI, NI, 1.0f, 0.7f},
				     {1.5f, 0.2f, NI, NI, 1.1f, 0.9f, NI, NI}};
static const float G_A[ROWS][G4] = {{3, 2, 1.95f, 0.5f}, {3, 2, 1, 0.9f}, {3, 2, 1.95f, 0.5f}};
static const float G_B[ROWS][G4] = {{3, 1.9f, 2, 0.5f}, {3, 2, 1, 0.9f}, {3, 2, 1.95f, 0.5f}};
/* Near-tie: margin <= 2 x noise (metrics.h); group noise 0.1 (row 0, group 1), score noise
 * 0.25 (row 0, expert 1).
 * row 0: a keeps groups {0,1} and picks both experts in group 0, b keeps {0,2} and picks
 *        expert 4 of group 2: group margin |2 - 1.95| = 0.05 (held b: |1.9 - 2| = 0.1) <= 0.2,
 *        and in group 0 b's pick is one of a's: near-tie. (With b held, every pick of a is
 *        visible in b's scores, but a's expert 1 never competed with b's expert 4 of a group a
 *        dropped: the group stage measures the row whichever side is held.)
 * row 1: a keeps {0,1}, b {0,3}: group margin |2 - 0.9| = 1.1 > 0.2: genuine
 * row 2: the groups of row 0 (group margin 0.05), but in group 0 a picks expert 1 and b expert
 *        0: expert margin |0.2 - 1.5| = 1.3 > 0.5: genuine */
static const int64_t GP_A[ROWS][K] = {{0, 1}, {0, 2}, {1, 2}};
static const int64_t GP_B[ROWS][K] = {{0, 4}, {0, 6}, {0, 4}};

static dsv32_set_metrics classify_groups_held(bool with_group_scores, bool held_a)
{
	dsv32_tapstore held, streamed;
	dsv32_tapstore_init(&held);
	dsv32_tapstore_init(&streamed);
	put(&held, "layers.1.moe.scores", GS_A, DSV32_F32, E8);
	put(&streamed, "layers.1.moe.scores", GS_B, DSV32_F32, E8);
	if (with_group_scores) {
		put(&held, "layers.1.moe.group_scores", G_A, DSV32_F32, G4);
		put(&streamed, "layers.1.moe.group_scores", G_B, DSV32_F32, G4);
	}
	int64_t shape[3] = {1, ROWS, K};
	dsv32_tensor a = dsv32_tensor_view((void *)GP_A, DSV32_I64, 3, shape);
	dsv32_tensor b = dsv32_tensor_view((void *)GP_B, DSV32_I64, 3, shape);
	/* "held" holds side a's taps, "streamed" side b's; either may be the held side */
	dsv32_tapcmp_peers peers = {held_a ? &held : &streamed, &held, &streamed};
	dsv32_tap_result r;
	char why[128];
	dsv32_tapcmp_header(&r, "layers.1.moe.experts", 0, DSV32_DRIFT_LOCAL, &a, &b);
	assert_true(dsv32_tapcmp(&r, &peers, "layers.1.moe.experts", &a, &b, why, sizeof why));
	dsv32_group_stage gs;
	bool staged = dsv32_tapcmp_group_stage(&gs, "layers.1.moe.experts", &held, &held,
					       &streamed, ROWS);
	assert_true(staged == with_group_scores);
	if (staged && held_a) { /* one row through the forcing path's entry point */
		double margin;
		assert_true(fabs(gs.noise - (double)(2.0f - 1.9f)) < 1e-12);
		assert_int_equal(dsv32_tapcmp_classify_row("layers.1.moe.experts", GP_A[0], K,
							   GP_B[0], K, GS_A[0], E8, 0.05, &gs, 0,
							   &margin),
				 DSV32_FLIP_NEAR_TIE);
		assert_true(fabs(margin - (2.0 - (double)1.95f)) < 1e-12);
		assert_int_equal(dsv32_tapcmp_classify_row("layers.1.moe.experts", GP_A[1], K,
							   GP_B[1], K, GS_A[1], E8, 0.05, &gs, 1,
							   &margin),
				 DSV32_FLIP_GENUINE);
	}
	dsv32_tapstore_free(&held);
	dsv32_tapstore_free(&streamed);
	return r.set;
}

static void test_group_flips_are_classified_at_the_group_stage(void **state)
{
	(void)state;
	for (int h = 0; h < 2; h++) { /* the same classes whichever side is held */
		dsv32_set_metrics m = classify_groups_held(true, h == 0);
		assert_int_equal(m.rows_equal, 0);
		assert_int_equal(m.rows_tie_equal, 0);
		assert_int_equal(m.rows_near_tie, 1);
		assert_int_equal(m.rows_genuine, 2);
		assert_true(fabs(m.flip_margin_max - (1.5 - (double)0.2f)) < 1e-6);
	}
	/* without the group scores no margin reaches a dropped group: each row has a pick of b
	 * that the held side a's scores mask, so all three stay unclassified */
	dsv32_set_metrics u = classify_groups_held(false, true);
	assert_int_equal(u.rows_near_tie + u.rows_genuine + u.rows_tie_equal, 0);
	assert_true(u.score_noise >= 0); /* both sides' expert scores were there */
}

/* Group scores that do not fit the experts (3 groups for 8 experts, or F16) leave the group
 * stage out: the rows stay unclassified, nothing is read out of bounds (the sanitizer suite
 * runs this too). */
static void test_group_scores_that_do_not_fit_are_ignored(void **state)
{
	(void)state;
	static const float G3[ROWS][3] = {{1, 2, 3}, {1, 2, 3}, {1, 2, 3}};
	static const uint16_t GH[ROWS][G4] = {{0}};
	for (int v = 0; v < 2; v++) {
		dsv32_tapstore held, streamed;
		dsv32_tapstore_init(&held);
		dsv32_tapstore_init(&streamed);
		put(&held, "layers.1.moe.scores", GS_A, DSV32_F32, E8);
		put(&streamed, "layers.1.moe.scores", GS_B, DSV32_F32, E8);
		put(&held, "layers.1.moe.group_scores", v ? (const void *)GH : (const void *)G3,
		    v ? DSV32_F16 : DSV32_F32, v ? G4 : 3);
		put(&streamed, "layers.1.moe.group_scores", v ? (const void *)GH : (const void *)G3,
		    v ? DSV32_F16 : DSV32_F32, v ? G4 : 3);
		int64_t shape[3] = {1, ROWS, K};
		dsv32_tensor a = dsv32_tensor_view((void *)GP_A, DSV32_I64, 3, shape);
		dsv32_tensor b = dsv32_tensor_view((void *)GP_B, DSV32_I64, 3, shape);
		dsv32_tapcmp_peers peers = {&held, &held, &streamed};
		dsv32_tap_result r;
		char why[128];
		dsv32_tapcmp_header(&r, "layers.1.moe.experts", 0, DSV32_DRIFT_LOCAL, &a, &b);
		assert_true(dsv32_tapcmp(&r, &peers, "layers.1.moe.experts", &a, &b, why,
					 sizeof why));
		assert_int_equal(r.set.rows_near_tie + r.set.rows_genuine, 0);
		dsv32_tapstore_free(&held);
		dsv32_tapstore_free(&streamed);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tie_near_tie_genuine),
		cmocka_unit_test(test_unclassified_without_the_other_scores),
		cmocka_unit_test(test_expert_flips_are_classified_like_key_flips),
		cmocka_unit_test(test_a_masked_pick_counts_for_experts_but_not_for_keys),
		cmocka_unit_test(test_group_flips_are_classified_at_the_group_stage),
		cmocka_unit_test(test_group_scores_that_do_not_fit_are_ignored),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
