/* test_metrics.c: the drift metrics on hand-computed cases. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "compare/metrics.h"

static void test_identical_tensors_have_zero_drift(void **state)
{
	(void)state;
	float a[5] = {1.0f, -2.5f, 0.0f, 3.0e-3f, 100.0f};
	dsv32_metrics m;
	assert_true(dsv32_metrics_dense(&m, a, DSV32_F32, a, DSV32_F32, 5));
	assert_int_equal(m.n, 5);
	assert_true(m.max_abs == 0.0 && m.rms == 0.0 && m.rel_l2 == 0.0);
	assert_int_equal(m.ulp_max, 0);
	assert_true(fabs(m.cosine - 1.0) < 1e-15);
	assert_true(m.frac_over_tol == 0.0);
}

static void test_one_bf16_ulp_is_measured_as_one(void **state)
{
	(void)state;
	/* 1.0 and the next bf16 above it (1 + 2^-7) */
	float a[2] = {1.0f, -4.0f}, b[2] = {1.0078125f, -4.0f};
	dsv32_metrics m;
	assert_true(dsv32_metrics_dense(&m, a, DSV32_F32, b, DSV32_F32, 2));
	assert_int_equal(m.ulp_max, 1);
	assert_int_equal(m.n_diff, 1);
	assert_true(m.max_abs == 0.0078125);
	assert_int_equal(m.max_abs_at, 0);
	assert_true(m.frac_over_tol == 0.5);
	assert_true(fabs(m.mean_abs - 0.0078125 / 2) < 1e-15);
	/* rel L2 = 2^-7 / sqrt(1 + 16) */
	assert_true(fabs(m.rel_l2 - 0.0078125 / sqrt(17.0)) < 1e-15);
}

static void test_ulp_distance_crosses_zero(void **state)
{
	(void)state;
	float tiny = dsv32_bf16_to_f32(0x0001); /* smallest positive bf16 subnormal */
	assert_int_equal(dsv32_bf16_ulp_distance(tiny, -tiny), 2);
	assert_int_equal(dsv32_bf16_ulp_distance(0.0f, -0.0f), 0);
	assert_int_equal(dsv32_bf16_ulp_distance(INFINITY, dsv32_bf16_to_f32(0x7f7f)), DSV32_ULP_CAP);
	/* across a binade: 1 - 2^-8 and 1 are one step apart on the grid */
	assert_int_equal(dsv32_bf16_ulp_distance(0.99609375f, 1.0f), 1);
	/* x against -x is 2|x| / spacing(x): 2 * 1.5 / 2^-7 = 384 */
	assert_int_equal(dsv32_bf16_ulp_distance(1.5f, -1.5f), 384);
}

static void test_nan_is_counted_and_excluded(void **state)
{
	(void)state;
	float a[3] = {1.0f, NAN, 2.0f}, b[3] = {1.0f, 1.0f, INFINITY};
	dsv32_metrics m;
	assert_true(dsv32_metrics_dense(&m, a, DSV32_F32, b, DSV32_F32, 3));
	assert_int_equal(m.nan_a, 1);
	assert_int_equal(m.nan_b, 0);
	assert_int_equal(m.inf_b, 1);
	assert_int_equal(m.n, 2);
	assert_true(isinf(m.max_abs));
	assert_int_equal(m.max_abs_at, 2);
}

static void test_masked_scores_compare_equal_when_both_masked(void **state)
{
	(void)state;
	float a[4] = {1.0f, -INFINITY, -INFINITY, 2.0f};
	float b[4] = {1.0f, -3.3895314e38f, 5.0f, 2.0f}; /* finfo(bf16).min masks like -inf */
	dsv32_metrics m;
	assert_true(dsv32_metrics_dense_masked(&m, a, DSV32_F32, b, DSV32_F32, 4));
	assert_int_equal(m.n_masked, 1);
	assert_int_equal(m.n_mask_diff, 1);
	assert_int_equal(m.n, 2);
	assert_int_equal(m.inf_a, 0);
	assert_true(m.max_abs == 0.0);
	assert_true(fabs(m.frac_over_tol - 1.0 / 3.0) < 1e-12);
	/* without mask semantics the same data is an infinite difference */
	assert_true(dsv32_metrics_dense(&m, a, DSV32_F32, b, DSV32_F32, 4));
	assert_true(isinf(m.max_abs));
	assert_int_equal(m.inf_a, 2);
}

static void test_bf16_and_f32_inputs_compare_by_value(void **state)
{
	(void)state;
	uint16_t a[3] = {dsv32_f32_to_bf16(1.5f), dsv32_f32_to_bf16(-3.0f), 0};
	float b[3] = {1.5f, -3.0f, 0.0f};
	dsv32_metrics m;
	assert_true(dsv32_metrics_dense(&m, a, DSV32_BF16, b, DSV32_F32, 3));
	assert_true(m.max_abs == 0.0);
	assert_int_equal(m.ulp_p99, 0);
}

static void test_p99_is_exact_over_a_known_distribution(void **state)
{
	(void)state;
	enum { N = 200 };
	float a[N], b[N];
	for (int i = 0; i < N; i++) {
		a[i] = 1.0f;
		b[i] = 1.0f;
	}
	/* two elements at 5 ulps, the rest at 0: p99 of 200 -> the 198th smallest = 0 */
	b[0] = b[1] = 1.0f + 5 * 0.0078125f;
	dsv32_metrics m;
	assert_true(dsv32_metrics_dense(&m, a, DSV32_F32, b, DSV32_F32, N));
	assert_int_equal(m.ulp_max, 5);
	assert_int_equal(m.ulp_p99, 0);
	b[2] = b[3] = 1.0f + 3 * 0.0078125f; /* now 4 of 200 are nonzero: the 198th is 3 */
	assert_true(dsv32_metrics_dense(&m, a, DSV32_F32, b, DSV32_F32, N));
	assert_int_equal(m.ulp_p99, 3);
}

static void test_sets_recall_jaccard_and_ties(void **state)
{
	(void)state;
	int64_t a[2 * 3] = {0, 1, 2, 5, 6, 7};
	int64_t b[2 * 3] = {2, 1, 0, 5, 6, 8};
	float scores[2 * 9] = {0};
	for (int i = 0; i < 9; i++)
		scores[i] = (float)(9 - i);
	scores[9 + 5] = 3, scores[9 + 6] = 2, scores[9 + 7] = 1, scores[9 + 8] = 1;
	dsv32_set_metrics m;
	assert_true(dsv32_metrics_sets(&m, a, 3, b, 3, 2, NULL, 0));
	assert_int_equal(m.rows_equal, 1);
	assert_int_equal(m.first_diff_row, 1);
	assert_true(fabs(m.recall - (1.0 + 2.0 / 3.0) / 2) < 1e-12);
	assert_true(fabs(m.jaccard - (1.0 + 2.0 / 4.0) / 2) < 1e-12);
	assert_true(dsv32_metrics_sets(&m, a, 3, b, 3, 2, scores, 9));
	assert_int_equal(m.rows_tie_equal, 2); /* 7 and 8 tie at score 1 */
	scores[9 + 8] = 0.5f;
	assert_true(dsv32_metrics_sets(&m, a, 3, b, 3, 2, scores, 9));
	assert_int_equal(m.rows_tie_equal, 1);
}

static void test_logits_kl_top1_top5(void **state)
{
	(void)state;
	float a[2 * 6] = {0, 1, 2, 3, 4, 5, 5, 4, 3, 2, 1, 0};
	float b[2 * 6] = {0, 1, 2, 3, 4, 5, 0, 4, 3, 2, 1, 5};
	dsv32_logit_metrics m;
	assert_true(dsv32_metrics_logits(&m, a, DSV32_F32, b, DSV32_F32, 2, 6));
	assert_true(fabs(m.top1_agree - 0.5) < 1e-12);
	assert_true(fabs(m.top5_overlap - 0.9) < 1e-12); /* row 1: {0..4} vs {1..5} */
	/* KL of row 0 is 0; row 1 by direct evaluation */
	double pa[6], pb[6], za = 0, zb = 0, kl = 0;
	for (int i = 0; i < 6; i++) {
		za += exp(a[6 + i]);
		zb += exp(b[6 + i]);
	}
	for (int i = 0; i < 6; i++) {
		pa[i] = exp(a[6 + i]) / za;
		pb[i] = exp(b[6 + i]) / zb;
		kl += pa[i] * log(pa[i] / pb[i]);
	}
	assert_true(fabs(m.kl - kl / 2) < 1e-12);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_identical_tensors_have_zero_drift),
		cmocka_unit_test(test_one_bf16_ulp_is_measured_as_one),
		cmocka_unit_test(test_ulp_distance_crosses_zero),
		cmocka_unit_test(test_nan_is_counted_and_excluded),
		cmocka_unit_test(test_masked_scores_compare_equal_when_both_masked),
		cmocka_unit_test(test_bf16_and_f32_inputs_compare_by_value),
		cmocka_unit_test(test_p99_is_exact_over_a_known_distribution),
		cmocka_unit_test(test_sets_recall_jaccard_and_ties),
		cmocka_unit_test(test_logits_kl_top1_top5),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
