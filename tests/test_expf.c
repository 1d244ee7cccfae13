/* test_expf.c: glibc's expf in 8 lanes (kernels/expf_avx2.h).
 *
 * Known answers (independent of the code under test: exp in double, rounded once to float, at
 * inputs where that is glibc's result too; and the two inputs where glibc's FMA variant, which
 * the 8-lane body copies, rounds differently from its non-FMA variant); the 8-lane body against
 * the running libm's expf on about 4.3 million inputs (every binade of both signs with random
 * mantissas, every float within 2048 ulps of each special-case threshold, NaNs with random
 * payloads, ±inf, ±0, subnormals), which must give the same bits when the guard accepted this
 * libm; the guard refusing an expf that differs in one input, glibc's non-FMA variant and a
 * correctly rounded expf; dsv32_expf_inplace on every length 0..40. The exhaustive check over
 * all 2^32 inputs ran outside the tree (docs/perf.md). Without AVX2 + FMA the body tests skip. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __GLIBC__
#include <gnu/libc-version.h>
#endif

#include <cmocka.h>

#include "kernels/expf_avx2.h"

static uint32_t fbits(float f)
{
	uint32_t u;
	memcpy(&u, &f, sizeof(u));
	return u;
}

static float bitsf(uint32_t u)
{
	float f;
	memcpy(&f, &u, sizeof(f));
	return f;
}

static float libm_expf(float x)
{
	return expf(x);
}

/* 8-lane body on one value (the other lanes hold copies). */
static float expf8_one(float x)
{
	float in[8], out[8];
	for (int l = 0; l < 8; l++)
		in[l] = x;
	dsv32_expf8_raw(out, in);
	return out[3];
}

static void test_known_answers(void **state)
{
	(void)state;
	if (!dsv32_expf8_cpu_ok())
		skip();
	const float xs[] = { 1.0f, -1.0f, 0.5f, 10.0f, -10.0f, 88.5f, -100.0f, 0x1p-20f, -0x1p-20f,
			     0x1.62e42ep6f, -0x1.9d1d9ep6f, -0x1.9ep6f };
	for (size_t i = 0; i < sizeof(xs) / sizeof(xs[0]); i++) {
		float want = (float)exp((double)xs[i]);
		assert_int_equal(fbits(expf8_one(xs[i])), fbits(want));
	}
	assert_int_equal(fbits(expf8_one(0.0f)), 0x3f800000u);
	assert_int_equal(fbits(expf8_one(-0.0f)), 0x3f800000u);
	assert_int_equal(fbits(expf8_one(-INFINITY)), 0u);
	assert_int_equal(fbits(expf8_one(-104.0f)), 0u);
	assert_int_equal(fbits(expf8_one(-1e30f)), 0u);
	assert_int_equal(fbits(expf8_one(INFINITY)), 0x7f800000u);
	assert_int_equal(fbits(expf8_one(89.0f)), 0x7f800000u);
	assert_true(isnan(expf8_one(NAN)));
	/* glibc's __expf_fma misrounds these two where its non-FMA __expf (and exp in double)
	 * give ...1b / ...92: the body must follow the FMA variant. */
	assert_int_equal(fbits(expf8_one(bitsf(0x4202422fu))), 0x56fc9f1cu);
	assert_int_equal(fbits(expf8_one(bitsf(0xc27c65d9u))), 0x11fa2993u);
}

typedef struct {
	uint64_t s;
} rng;

static uint32_t rng_u32(rng *r)
{
	r->s ^= r->s << 13;
	r->s ^= r->s >> 7;
	r->s ^= r->s << 17;
	return (uint32_t)(r->s >> 32);
}

/* Compares n inputs; returns the number of mismatches (NaN must give NaN). */
static long compare_block(const uint32_t *xb, int n)
{
	float x[8], y[8];
	long bad = 0;
	for (int i = 0; i < n; i += 8) {
		for (int l = 0; l < 8; l++)
			x[l] = bitsf(xb[i + l]);
		dsv32_expf8_raw(y, x);
		for (int l = 0; l < 8; l++) {
			float g = expf(x[l]);
			bool ok = g != g ? y[l] != y[l] : fbits(g) == fbits(y[l]);
			if (!ok && bad++ < 5)
				print_error("x = %a (0x%08x): expf 0x%08x, 8-lane 0x%08x\n", (double)x[l],
					    xb[i + l], fbits(g), fbits(y[l]));
		}
	}
	return bad;
}

static void test_matches_libm(void **state)
{
	(void)state;
	if (!dsv32_expf8_cpu_ok())
		skip();
	if (!dsv32_expf8_usable()) {
		print_message("guard refused this libm's expf: comparison not meaningful\n");
		skip();
	}
	enum { PER_BINADE = 8192, BLK = 4096 };
	uint32_t *xb = malloc(BLK * sizeof(uint32_t));
	assert_non_null(xb);
	rng r = { 0x9e3779b97f4a7c15ull };
	long bad = 0, total = 0;
	/* every exponent (subnormals, normals, inf/NaN) of both signs, random mantissas */
	for (uint32_t se = 0; se < 512 && bad == 0; se++) {
		for (int k = 0; k < PER_BINADE; k += BLK) {
			for (int i = 0; i < BLK; i++)
				xb[i] = se << 23 | (rng_u32(&r) & 0x7fffffu);
			bad += compare_block(xb, BLK);
			total += BLK;
		}
	}
	/* every float within 2048 ulps of the thresholds and the main-path edge 88 */
	const float edges[] = { 0x1.62e42ep6f, -0x1.9fe368p6f, -0x1.9d1d9ep6f, 88.0f, -88.0f };
	for (size_t e = 0; e < sizeof(edges) / sizeof(edges[0]); e++) {
		for (int i = 0; i < BLK; i++)
			xb[i] = fbits(edges[e]) - 2048u + (uint32_t)i;
		bad += compare_block(xb, BLK);
		total += BLK;
	}
	print_message("8-lane expf vs libm expf: %ld inputs, %ld mismatches\n", total, bad);
	free(xb);
	assert_int_equal(bad, 0);
}

/* A wrong expf for the guard: libm's expf but one ulp up at one of the witnesses. */
static float off_by_one(float x)
{
	float y = expf(x);
	return fbits(x) == 0xc27c65d9u ? nextafterf(y, INFINITY) : y;
}

/* glibc's non-FMA expf: the same algorithm with each double op rounded (this file is ISO C11:
 * nothing is contracted into an FMA). */
static float nofma_expf(float x)
{
	double xd = x;
	if (!(fabsf(x) < 88.0f))
		return expf(x);
	double z = 0x1.71547652b82fep+5 * xd;
	double kd = z + 0x1.8p+52;
	kd -= 0x1.8p+52;
	double r = z - kd;
	double s = exp2(kd / 32.0); /* 2^(k/32) in double, as glibc's table */
	double p = 0x1.c6af84b912394p-20 * r + 0x1.ebfce50fac4f3p-13;
	double y = 0x1.62e42ff0c52d6p-6 * r + 1.0;
	y = p * (r * r) + y;
	return (float)(y * s);
}

static float cr_expf(float x)
{
	return (float)exp((double)x);
}

static void test_guard(void **state)
{
	(void)state;
	bool libm_ok = dsv32_expf8_selfcheck(libm_expf);
	assert_true(dsv32_expf8_usable() == libm_ok);
	if (!dsv32_expf8_cpu_ok()) {
		assert_false(libm_ok);
		skip();
	}
#if defined(__GLIBC__) && defined(__x86_64__)
	if (strcmp(gnu_get_libc_version(), "2.36") == 0)
		assert_true(libm_ok); /* the glibc the body was checked against exhaustively */
#endif
	assert_false(dsv32_expf8_selfcheck(off_by_one));
	assert_false(dsv32_expf8_selfcheck(nofma_expf));
	assert_false(dsv32_expf8_selfcheck(cr_expf));
}

static void test_inplace_lengths(void **state)
{
	(void)state;
	float v[48], x[48];
	rng r = { 77 };
	for (int n = 0; n <= 40; n++) {
		for (int i = 0; i < 48; i++)
			x[i] = v[i] = (float)((int)(rng_u32(&r) % 4000u) - 3000) * 0.037f;
		x[n] = v[n] = -INFINITY; /* past the end: must stay */
		dsv32_expf_inplace(v, n);
		for (int i = 0; i < n; i++)
			assert_int_equal(fbits(v[i]), fbits(expf(x[i])));
		assert_int_equal(fbits(v[n]), fbits(-INFINITY));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_known_answers),
		cmocka_unit_test(test_matches_libm),
		cmocka_unit_test(test_guard),
		cmocka_unit_test(test_inplace_lengths),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
