/* test_rng.c: SplitMix64 known answers (computed independently in Python from the published
 * algorithm), FNV-1a, distribution ranges and moments, named-stream independence; the
 * counter-based access that lets the fixture generator draw a band in parallel (core/rng.h). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/rng.h"

static void test_splitmix64_seed0_known_values(void **state)
{
	(void)state;
	static const uint64_t want[5] = {0xe220a8397b1dcdafull, 0x6e789e6aa1b965f4ull,
					 0x06c45d188009454full, 0xf88bb8a8724c81ecull,
					 0x1b39896a51a8749bull};
	dsv32_rng r;
	dsv32_rng_seed(&r, 0);
	for (int i = 0; i < 5; i++)
		assert_true(dsv32_rng_u64(&r) == want[i]);
}

static void test_splitmix64_seed1234567_known_values(void **state)
{
	(void)state;
	static const uint64_t want[5] = {0x599ed017fb08fc85ull, 0x2c73f08458540fa5ull,
					 0x883ebce5a3f27c77ull, 0x3fbef740e9177b3full,
					 0xe3b8346708cb5ecdull};
	dsv32_rng r;
	dsv32_rng_seed(&r, 1234567);
	for (int i = 0; i < 5; i++)
		assert_true(dsv32_rng_u64(&r) == want[i]);
}

static void test_fnv1a64_known_values(void **state)
{
	(void)state;
	assert_true(dsv32_fnv1a64("", 0, DSV32_FNV1A64_INIT) == 0xcbf29ce484222325ull);
	assert_true(dsv32_fnv1a64("a", 1, DSV32_FNV1A64_INIT) == 0xaf63dc4c8601ec8cull);
	const char *n = "model.embed_tokens.weight";
	assert_true(dsv32_fnv1a64(n, strlen(n), DSV32_FNV1A64_INIT) == 0xa88fd795d5c6d156ull);
}

static void test_named_stream_known_value(void **state)
{
	(void)state;
	dsv32_rng r;
	dsv32_rng_seed_named(&r, 42, "lm_head.weight"); /* seed ^ fnv, one draw discarded */
	assert_true(dsv32_rng_u64(&r) == 0xfbecd24d5d0af872ull);
}

static void test_uniform_and_normal_known_values(void **state)
{
	(void)state;
	dsv32_rng r;
	dsv32_rng_seed(&r, 7);
	assert_true(dsv32_rng_uniform(&r) == 0.38982969522476196f);
	dsv32_rng_seed(&r, 7);
	/* Box-Muller in double with glibc log/cos, as Python's math module computes it */
	double v = dsv32_rng_normal(&r);
	assert_true(fabs(v - 1.3649922974572282) <= 4e-16 * 1.37);
}

static void test_named_streams_independent_of_call_order(void **state)
{
	(void)state;
	uint64_t a1[8], b1[8], a2[8], b2[8];
	dsv32_rng ra, rb;
	dsv32_rng_seed_named(&ra, 5, "layers.0.a");
	for (int i = 0; i < 8; i++)
		a1[i] = dsv32_rng_u64(&ra);
	dsv32_rng_seed_named(&rb, 5, "layers.0.b");
	for (int i = 0; i < 8; i++)
		b1[i] = dsv32_rng_u64(&rb);
	/* reverse order, interleaved */
	dsv32_rng_seed_named(&rb, 5, "layers.0.b");
	dsv32_rng_seed_named(&ra, 5, "layers.0.a");
	for (int i = 0; i < 8; i++) {
		b2[i] = dsv32_rng_u64(&rb);
		a2[i] = dsv32_rng_u64(&ra);
	}
	assert_memory_equal(a1, a2, sizeof a1);
	assert_memory_equal(b1, b2, sizeof b1);
	assert_memory_not_equal(a1, b1, sizeof a1);
	/* a different seed gives a different stream for the same name */
	dsv32_rng_seed_named(&ra, 6, "layers.0.a");
	assert_true(dsv32_rng_u64(&ra) != a1[0]);
}

static void test_uniform_in_unit_interval_with_right_mean(void **state)
{
	(void)state;
	dsv32_rng r;
	dsv32_rng_seed(&r, 99);
	double sum = 0;
	float lo = 1, hi = 0;
	for (int i = 0; i < 100000; i++) {
		float u = dsv32_rng_uniform(&r);
		assert_true(u >= 0.0f && u < 1.0f);
		assert_true(u * 16777216.0f == floorf(u * 16777216.0f)); /* 24-bit grid */
		sum += u;
		lo = u < lo ? u : lo;
		hi = u > hi ? u : hi;
	}
	assert_true(fabs(sum / 100000 - 0.5) < 0.005); /* sd of the mean 0.0009 */
	assert_true(lo < 1e-3f && hi > 0.999f);
}

static void test_range_bounds_and_unbiased(void **state)
{
	(void)state;
	dsv32_rng r;
	dsv32_rng_seed(&r, 3);
	int64_t count[3] = {0, 0, 0};
	for (int i = 0; i < 300000; i++) {
		int64_t v = dsv32_rng_range(&r, -1, 1);
		assert_true(v >= -1 && v <= 1);
		count[v + 1]++;
	}
	for (int i = 0; i < 3; i++) /* expected 100000, sd 258: 5 sd */
		assert_true(llabs(count[i] - 100000) < 1300);
	/* a single-value range and the full int64 range */
	assert_int_equal(dsv32_rng_range(&r, 17, 17), 17);
	bool neg = false, pos = false;
	for (int i = 0; i < 64; i++) {
		int64_t v = dsv32_rng_range(&r, INT64_MIN, INT64_MAX);
		neg |= v < 0;
		pos |= v > 0;
	}
	assert_true(neg && pos);
	/* a span that does not divide 2^64: bounds are hit, nothing outside */
	bool hit_lo = false, hit_hi = false;
	for (int i = 0; i < 20000; i++) {
		int64_t v = dsv32_rng_range(&r, 10, 16);
		assert_true(v >= 10 && v <= 16);
		hit_lo |= v == 10;
		hit_hi |= v == 16;
	}
	assert_true(hit_lo && hit_hi);
}

static void test_normal_moments(void **state)
{
	(void)state;
	dsv32_rng r;
	dsv32_rng_seed(&r, 11);
	double s1 = 0, s2 = 0, s4 = 0;
	const int n = 100000;
	for (int i = 0; i < n; i++) {
		double v = dsv32_rng_normal(&r);
		assert_true(isfinite(v));
		s1 += v;
		s2 += v * v;
		s4 += v * v * v * v;
	}
	double mean = s1 / n, var = s2 / n - mean * mean;
	assert_true(fabs(mean) < 0.016);        /* sd of the mean 0.0032: 5 sd */
	assert_true(fabs(var - 1.0) < 0.023);   /* sd of the variance 0.0045: 5 sd */
	assert_true(fabs(s4 / n - 3.0) < 0.16); /* kurtosis of a normal */
}


/* The k-th next output of a stream is dsv32_rng_u64_at(state, k). */
static void test_u64_at_is_the_sequential_stream(void **state)
{
	(void)state;
	dsv32_rng r;
	dsv32_rng_seed_named(&r, 3, "model.layers.0.mlp.up_proj.weight");
	uint64_t s0 = r.state;
	for (uint64_t k = 1; k <= 1000; k++)
		assert_true(dsv32_rng_u64(&r) == dsv32_rng_u64_at(s0, k));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_splitmix64_seed0_known_values),
		cmocka_unit_test(test_splitmix64_seed1234567_known_values),
		cmocka_unit_test(test_fnv1a64_known_values),
		cmocka_unit_test(test_named_stream_known_value),
		cmocka_unit_test(test_uniform_and_normal_known_values),
		cmocka_unit_test(test_named_streams_independent_of_call_order),
		cmocka_unit_test(test_uniform_in_unit_interval_with_right_mean),
		cmocka_unit_test(test_range_bounds_and_unbiased),
		cmocka_unit_test(test_normal_moments),
		cmocka_unit_test(test_u64_at_is_the_sequential_stream),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
