/* test_dtype.c: exhaustive checks of core/dtype.h against oracles written here from the format
 * definitions (double arithmetic, no code shared with dtype.h):
 *   decode   every code of bf16 / f16 / e4m3fn / e5m2 against sign * mantissa * 2^exp
 *   encode   round to nearest, ties to the even code, by searching the sorted table of all
 *            representable magnitudes (the "next" value above the largest finite one is inf
 *            at 2^(emax+1) for IEEE-like types, so overflow follows RNE too); e4m3 saturates
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/dtype.h"
#include "core/rng.h"

/* ---- oracle decoders ---- */
typedef struct {
	int ebits, mbits, bias;
	bool ieee_special; /* all-ones exponent = inf/NaN (bf16, f16, e5m2) */
} fmt;

static const fmt F_BF16 = {8, 7, 127, true};
static const fmt F_F16 = {5, 10, 15, true};
static const fmt F_E4M3 = {4, 3, 7, false};
static const fmt F_E5M2 = {5, 2, 15, true};

static bool oracle_is_nan(const fmt *f, uint32_t code)
{
	uint32_t e = (code >> f->mbits) & ((1u << f->ebits) - 1);
	uint32_t m = code & ((1u << f->mbits) - 1);
	if (f->ieee_special)
		return e == (1u << f->ebits) - 1 && m != 0;
	return e == (1u << f->ebits) - 1 && m == (1u << f->mbits) - 1; /* e4m3fn: S.1111.111 */
}

static double oracle_decode(const fmt *f, uint32_t code)
{
	uint32_t s = (code >> (f->ebits + f->mbits)) & 1;
	uint32_t e = (code >> f->mbits) & ((1u << f->ebits) - 1);
	uint32_t m = code & ((1u << f->mbits) - 1);
	double v;
	if (oracle_is_nan(f, code))
		return NAN;
	if (f->ieee_special && e == (1u << f->ebits) - 1)
		v = INFINITY;
	else if (e == 0)
		v = (double)m * pow(2.0, 1 - f->bias - f->mbits);
	else
		v = (1.0 + (double)m / (double)(1u << f->mbits)) * pow(2.0, (int)e - f->bias);
	return s ? -v : v;
}

/* ---- oracle encoder: sorted table of non-negative magnitudes ---- */
typedef struct {
	double *val;
	uint32_t *code;
	int n;
	double max_finite;
} grid;

static grid grid_make(const fmt *f)
{
	uint32_t ncodes = 1u << (f->ebits + f->mbits); /* non-negative codes */
	grid g = {malloc(sizeof(double) * (ncodes + 1)), malloc(sizeof(uint32_t) * (ncodes + 1)), 0,
		  0};
	for (uint32_t c = 0; c < ncodes; c++) { /* codes are monotone in magnitude */
		if (oracle_is_nan(f, c))
			continue;
		double v = oracle_decode(f, c);
		if (isinf(v)) /* the value RNE overflow is measured against: 2^(emax+1) */
			v = pow(2.0, (1 << f->ebits) - 1 - f->bias);
		else
			g.max_finite = v;
		g.val[g.n] = v;
		g.code[g.n] = c;
		g.n++;
	}
	return g;
}

static void grid_free(grid *g)
{
	free(g->val);
	free(g->code);
}

/* RNE of |x| onto the grid, result code without sign. Ties go to the even code (LSB 0). */
static uint32_t grid_round(const grid *g, double a)
{
	int lo = 0, hi = g->n - 1;
	if (a >= g->val[hi])
		return g->code[hi];
	while (hi - lo > 1) {
		int mid = (lo + hi) / 2;
		if (g->val[mid] <= a)
			lo = mid;
		else
			hi = mid;
	}
	double dl = a - g->val[lo], dh = g->val[hi] - a;
	if (dl < dh)
		return g->code[lo];
	if (dh < dl)
		return g->code[hi];
	return (g->code[lo] & 1u) ? g->code[hi] : g->code[lo];
}

static uint32_t sign_bit(const fmt *f)
{
	return 1u << (f->ebits + f->mbits);
}

/* Expected encode of a finite or infinite float x (not NaN). */
static uint32_t oracle_encode(const fmt *f, const grid *g, double x)
{
	uint32_t s = signbit(x) ? sign_bit(f) : 0;
	double a = fabs(x);
	if (!f->ieee_special && a > g->max_finite) /* e4m3fn saturates */
		return s | grid_round(g, g->max_finite);
	return s | grid_round(g, a);
}

/* ---- bf16 ---- */
static void test_bf16_all_codes_decode_and_round_trip(void **state)
{
	(void)state;
	for (uint32_t h = 0; h < 65536; h++) {
		float f = dsv32_bf16_to_f32((dsv32_bf16)h);
		double want = oracle_decode(&F_BF16, h);
		if (oracle_is_nan(&F_BF16, h)) {
			assert_true(isnan(f));
			dsv32_bf16 back = dsv32_f32_to_bf16(f);
			assert_true(oracle_is_nan(&F_BF16, back));
			assert_true(back & 0x0040u);                   /* quiet */
			assert_int_equal(back & 0x8000u, h & 0x8000u); /* sign kept */
			continue;
		}
		assert_true((double)f == want);
		assert_int_equal(signbit(f) != 0, (h & 0x8000u) != 0);
		assert_int_equal(dsv32_f32_to_bf16(f), h);
	}
}

static void test_bf16_ties_round_to_even(void **state)
{
	(void)state;
	grid g = grid_make(&F_BF16);
	for (uint32_t h = 0; h < 0x7f80u; h++) { /* every finite positive code and its sign twin */
		for (uint32_t s = 0; s < 2; s++) {
			uint32_t bits = (s << 31) | (h << 16) | 0x8000u; /* exactly halfway up */
			float x = dsv32_f32_from_bits(bits);
			uint32_t want_mag = (h & 1u) ? h + 1 : h; /* to the even neighbour */
			dsv32_bf16 got = dsv32_f32_to_bf16(x);
			assert_int_equal(got, (s << 15) | want_mag);
			assert_int_equal(got, oracle_encode(&F_BF16, &g, (double)x));
			/* one f32 ulp either side of the tie goes to the nearer neighbour */
			float below = dsv32_f32_from_bits(bits - 1), above = dsv32_f32_from_bits(bits + 1);
			assert_int_equal(dsv32_f32_to_bf16(below), (s << 15) | h);
			assert_int_equal(dsv32_f32_to_bf16(above), (s << 15) | (h + 1));
		}
	}
	/* the largest finite value plus half an ulp overflows to inf (the tie goes to even inf) */
	assert_int_equal(dsv32_f32_to_bf16(dsv32_f32_from_bits(0x7f7f8000u)), 0x7f80u);
	assert_int_equal(dsv32_f32_to_bf16(dsv32_f32_from_bits(0x7f7f7fffu)), 0x7f7fu);
	assert_int_equal(dsv32_f32_to_bf16(-INFINITY), 0xff80u);
	grid_free(&g);
}

static void test_bf16_random_values_match_oracle(void **state)
{
	(void)state;
	grid g = grid_make(&F_BF16);
	dsv32_rng r;
	dsv32_rng_seed(&r, 2024);
	for (int i = 0; i < 300000; i++) {
		uint32_t bits = (uint32_t)dsv32_rng_u64(&r);
		float x = dsv32_f32_from_bits(bits);
		if (isnan(x))
			continue;
		assert_int_equal(dsv32_f32_to_bf16(x), oracle_encode(&F_BF16, &g, (double)x));
	}
	grid_free(&g);
}

/* ---- e4m3fn ---- */
static void test_e4m3_all_codes_decode_and_round_trip(void **state)
{
	(void)state;
	for (uint32_t c = 0; c < 256; c++) {
		float f = dsv32_e4m3_to_f32((dsv32_f8)c);
		if (c == 0x7f || c == 0xff) {
			assert_true(isnan(f));
			assert_true(oracle_is_nan(&F_E4M3, c));
			assert_int_equal(dsv32_f32_to_e4m3(f) & 0x7f, 0x7f);
			continue;
		}
		assert_false(oracle_is_nan(&F_E4M3, c));
		assert_true((double)f == oracle_decode(&F_E4M3, c));
		assert_int_equal(dsv32_f32_to_e4m3(f), c); /* -0 (0x80) included */
	}
	assert_true(dsv32_e4m3_to_f32(0x7e) == 448.0f);
	assert_true(dsv32_e4m3_to_f32(0x01) == ldexpf(1.0f, -9));
	assert_true(dsv32_e4m3_to_f32(0x08) == ldexpf(1.0f, -6));
	assert_true(signbit(dsv32_e4m3_to_f32(0x80)) && dsv32_e4m3_to_f32(0x80) == 0.0f);
}

static void test_e4m3_midpoints_go_to_even_code(void **state)
{
	(void)state;
	grid g = grid_make(&F_E4M3);
	for (uint32_t c = 0; c < 0x7e; c++) {
		double lo = oracle_decode(&F_E4M3, c), hi = oracle_decode(&F_E4M3, c + 1);
		float mid = (float)((lo + hi) / 2); /* exact in f32 */
		assert_true((double)mid == (lo + hi) / 2);
		uint32_t even = (c & 1u) ? c + 1 : c;
		assert_int_equal(dsv32_f32_to_e4m3(mid), even);
		assert_int_equal(dsv32_f32_to_e4m3(-mid), 0x80u | even);
		assert_int_equal(dsv32_f32_to_e4m3(nextafterf(mid, 0.0f)), c);
		assert_int_equal(dsv32_f32_to_e4m3(nextafterf(mid, 1000.0f)), c + 1);
		assert_int_equal(oracle_encode(&F_E4M3, &g, mid), even);
	}
	grid_free(&g);
}

static void test_e4m3_saturates_and_keeps_nan(void **state)
{
	(void)state;
	assert_int_equal(dsv32_f32_to_e4m3(448.0f), 0x7e);
	assert_int_equal(dsv32_f32_to_e4m3(449.0f), 0x7e);
	assert_int_equal(dsv32_f32_to_e4m3(464.0f), 0x7e); /* would be the tie to 480 */
	assert_int_equal(dsv32_f32_to_e4m3(1e9f), 0x7e);
	assert_int_equal(dsv32_f32_to_e4m3(INFINITY), 0x7e);
	assert_int_equal(dsv32_f32_to_e4m3(-INFINITY), 0xfe);
	assert_int_equal(dsv32_f32_to_e4m3(-1e30f), 0xfe);
	assert_int_equal(dsv32_f32_to_e4m3(NAN), 0x7f);
	assert_int_equal(dsv32_f32_to_e4m3(-NAN), 0xff);
	assert_int_equal(dsv32_f32_to_e4m3(-0.0f), 0x80);
}

static void test_e4m3_subnormals(void **state)
{
	(void)state;
	float q = ldexpf(1.0f, -9); /* subnormal quantum */
	assert_int_equal(dsv32_f32_to_e4m3(q), 0x01);
	assert_int_equal(dsv32_f32_to_e4m3(0.5f * q), 0x00); /* tie 0 / 1 -> 0 */
	assert_int_equal(dsv32_f32_to_e4m3(1.5f * q), 0x02); /* tie 1 / 2 -> 2 */
	assert_int_equal(dsv32_f32_to_e4m3(2.5f * q), 0x02); /* tie 2 / 3 -> 2 */
	assert_int_equal(dsv32_f32_to_e4m3(0.26f * q), 0x00);
	assert_int_equal(dsv32_f32_to_e4m3(0.51f * q), 0x01);
	assert_int_equal(dsv32_f32_to_e4m3(7.5f * q), 0x08); /* tie 7 / smallest normal -> 8 */
	assert_int_equal(dsv32_f32_to_e4m3(-3.0f * q), 0x83);
	for (uint32_t m = 0; m < 8; m++)
		assert_true(dsv32_e4m3_to_f32((dsv32_f8)m) == (float)m * q);
}

static void test_e4m3_random_values_match_oracle(void **state)
{
	(void)state;
	grid g = grid_make(&F_E4M3);
	dsv32_rng r;
	dsv32_rng_seed(&r, 77);
	for (int i = 0; i < 200000; i++) {
		/* log-uniform magnitudes over 2^-14 .. 2^10 plus random signs */
		double e = -14.0 + 24.0 * dsv32_rng_uniform(&r);
		float x = (float)(pow(2.0, e) * (dsv32_rng_u64(&r) & 1 ? -1 : 1));
		assert_int_equal(dsv32_f32_to_e4m3(x), oracle_encode(&F_E4M3, &g, x));
	}
	grid_free(&g);
}

/* The encoder rounds on the f32 bits (dtype.h): every sign and f32 exponent, every leading
 * 4 mantissa bits, and the low 19 bits at the patterns where rounding turns (0, 1, just below,
 * at and above half, all ones) plus random ones, against the table oracle. */
static void test_e4m3_every_exponent_and_rounding_pattern_matches_oracle(void **state)
{
	(void)state;
	static const uint32_t low[] = {0, 1, 0x3fffe, 0x3ffff, 0x40000, 0x40001, 0x7fffe, 0x7ffff};
	enum { NLOW = sizeof low / sizeof low[0], NRAND = 8 };
	grid g = grid_make(&F_E4M3);
	dsv32_rng r;
	dsv32_rng_seed(&r, 78);
	for (uint32_t top = 0; top < (1u << 13); top++) { /* sign, exponent, 4 mantissa bits */
		for (int i = 0; i < NLOW + NRAND; i++) {
			uint32_t lo = i < NLOW ? low[i] : (uint32_t)dsv32_rng_u64(&r) & 0x7ffffu;
			uint32_t u = top << 19 | lo;
			float x = dsv32_f32_from_bits(u);
			if (isnan(x)) {
				assert_int_equal(dsv32_f32_to_e4m3(x), (u >> 24 & 0x80u) | 0x7fu);
				continue;
			}
			uint32_t want = oracle_encode(&F_E4M3, &g, x);
			if (dsv32_f32_to_e4m3(x) != want)
				fail_msg("e4m3(%a) [bits %08x] = 0x%02x, want 0x%02x", (double)x, u,
					 dsv32_f32_to_e4m3(x), want);
		}
	}
	grid_free(&g);
}

/* ---- e5m2 ---- */
static void test_e5m2_all_codes_ties_and_overflow(void **state)
{
	(void)state;
	grid g = grid_make(&F_E5M2);
	for (uint32_t c = 0; c < 256; c++) {
		float f = dsv32_e5m2_to_f32((dsv32_f8)c);
		if (oracle_is_nan(&F_E5M2, c)) {
			assert_true(isnan(f));
			assert_true(oracle_is_nan(&F_E5M2, dsv32_f32_to_e5m2(f)));
			continue;
		}
		assert_true((double)f == oracle_decode(&F_E5M2, c));
		assert_int_equal(dsv32_f32_to_e5m2(f), c);
	}
	for (uint32_t c = 0; c < 0x7b; c++) {
		double lo = oracle_decode(&F_E5M2, c), hi = oracle_decode(&F_E5M2, c + 1);
		float mid = (float)((lo + hi) / 2);
		uint32_t even = (c & 1u) ? c + 1 : c;
		assert_int_equal(dsv32_f32_to_e5m2(mid), even);
		assert_int_equal(dsv32_f32_to_e5m2(-mid), 0x80u | even);
	}
	assert_true(dsv32_e5m2_to_f32(0x7b) == 57344.0f);
	assert_int_equal(dsv32_f32_to_e5m2(61439.0f), 0x7b);
	assert_int_equal(dsv32_f32_to_e5m2(61440.0f), 0x7c); /* tie with inf goes to inf */
	assert_int_equal(dsv32_f32_to_e5m2(1e9f), 0x7c);
	assert_int_equal(dsv32_f32_to_e5m2(-INFINITY), 0xfc);
	assert_int_equal(dsv32_f32_to_e5m2(ldexpf(1.0f, -17)), 0x00); /* tie 0 / 2^-16 -> 0 */
	assert_int_equal(dsv32_f32_to_e5m2(ldexpf(3.0f, -17)), 0x02);
	dsv32_rng r;
	dsv32_rng_seed(&r, 5);
	for (int i = 0; i < 100000; i++) {
		double e = -20.0 + 38.0 * dsv32_rng_uniform(&r);
		float x = (float)pow(2.0, e);
		assert_int_equal(dsv32_f32_to_e5m2(x), oracle_encode(&F_E5M2, &g, x));
	}
	grid_free(&g);
}

/* ---- f16 ---- */
static void test_f16_all_codes_round_trip(void **state)
{
	(void)state;
	for (uint32_t h = 0; h < 65536; h++) {
		float f = dsv32_f16_to_f32((dsv32_f16)h);
		if (oracle_is_nan(&F_F16, h)) {
			assert_true(isnan(f));
			dsv32_f16 back = dsv32_f32_to_f16(f);
			assert_true(oracle_is_nan(&F_F16, back));
			assert_int_equal(back & 0x8000u, h & 0x8000u);
			continue;
		}
		assert_true((double)f == oracle_decode(&F_F16, h));
		assert_int_equal(dsv32_f32_to_f16(f), h);
	}
}

static void test_f16_ties_overflow_subnormals(void **state)
{
	(void)state;
	grid g = grid_make(&F_F16);
	for (uint32_t c = 0; c < 0x7bff; c++) {
		double lo = oracle_decode(&F_F16, c), hi = oracle_decode(&F_F16, c + 1);
		float mid = (float)((lo + hi) / 2);
		assert_true((double)mid == (lo + hi) / 2);
		uint32_t even = (c & 1u) ? c + 1 : c;
		assert_int_equal(dsv32_f32_to_f16(mid), even);
		assert_int_equal(dsv32_f32_to_f16(-mid), 0x8000u | even);
		assert_int_equal(dsv32_f32_to_f16(nextafterf(mid, 0.0f)), c);
		assert_int_equal(dsv32_f32_to_f16(nextafterf(mid, 1e6f)), c + 1);
	}
	assert_int_equal(dsv32_f32_to_f16(65504.0f), 0x7bff);
	assert_int_equal(dsv32_f32_to_f16(nextafterf(65520.0f, 0.0f)), 0x7bff);
	assert_int_equal(dsv32_f32_to_f16(65520.0f), 0x7c00);
	assert_int_equal(dsv32_f32_to_f16(-1e10f), 0xfc00);
	assert_int_equal(dsv32_f32_to_f16(INFINITY), 0x7c00);
	float q = ldexpf(1.0f, -24);
	assert_int_equal(dsv32_f32_to_f16(q), 0x0001);
	assert_int_equal(dsv32_f32_to_f16(0.5f * q), 0x0000);
	assert_int_equal(dsv32_f32_to_f16(1.5f * q), 0x0002);
	assert_int_equal(dsv32_f32_to_f16(-0.0f), 0x8000);
	dsv32_rng r;
	dsv32_rng_seed(&r, 9);
	for (int i = 0; i < 200000; i++) {
		uint32_t bits = (uint32_t)dsv32_rng_u64(&r);
		float x = dsv32_f32_from_bits(bits);
		if (isnan(x))
			continue;
		assert_int_equal(dsv32_f32_to_f16(x), oracle_encode(&F_F16, &g, x));
	}
	grid_free(&g);
}

/* ---- bulk conversion ---- */
static void test_convert_between_types(void **state)
{
	(void)state;
	enum { N = 1000 };
	float src[N], back[N];
	uint16_t b16[N], h16[N];
	uint8_t e4[N], e5[N];
	double d[N];
	dsv32_rng r;
	dsv32_rng_seed(&r, 31);
	for (int i = 0; i < N; i++)
		src[i] = (float)(dsv32_rng_normal(&r) * 100.0);
	src[0] = 1e6f;
	src[1] = -1e6f;
	src[2] = -0.0f;
	assert_true(dsv32_convert(b16, DSV32_BF16, src, DSV32_F32, N));
	assert_true(dsv32_convert(h16, DSV32_F16, src, DSV32_F32, N));
	assert_true(dsv32_convert(e4, DSV32_F8_E4M3, src, DSV32_F32, N));
	assert_true(dsv32_convert(e5, DSV32_F8_E5M2, src, DSV32_F32, N));
	for (int i = 0; i < N; i++) {
		assert_int_equal(b16[i], dsv32_f32_to_bf16(src[i]));
		assert_int_equal(h16[i], dsv32_f32_to_f16(src[i]));
		assert_int_equal(e4[i], dsv32_f32_to_e4m3(src[i]));
		assert_int_equal(e5[i], dsv32_f32_to_e5m2(src[i]));
	}
	assert_int_equal(e4[0], 0x7e); /* saturated */
	assert_int_equal(e4[1], 0xfe);
	/* bf16 -> e4m3 equals e4m3 of the decoded value; bf16 -> f32 and -> f64 are exact */
	assert_true(dsv32_convert(e4, DSV32_F8_E4M3, b16, DSV32_BF16, N));
	assert_true(dsv32_convert(back, DSV32_F32, b16, DSV32_BF16, N));
	assert_true(dsv32_convert(d, DSV32_F64, b16, DSV32_BF16, N));
	for (int i = 0; i < N; i++) {
		assert_int_equal(e4[i], dsv32_f32_to_e4m3(dsv32_bf16_to_f32(b16[i])));
		assert_true(back[i] == dsv32_bf16_to_f32(b16[i]));
		assert_true(d[i] == (double)back[i]);
		assert_true(dsv32_load_f64(b16, DSV32_BF16, (size_t)i) == d[i]);
	}
	/* f64 -> f32 rounds once; f64 -> narrow is refused (double rounding); ints are refused */
	assert_true(dsv32_convert(back, DSV32_F32, d, DSV32_F64, N));
	assert_false(dsv32_convert(b16, DSV32_BF16, d, DSV32_F64, N));
	assert_false(dsv32_convert(b16, DSV32_BF16, d, DSV32_I64, N));
	/* same type is a copy */
	uint16_t copy[N];
	assert_true(dsv32_convert(copy, DSV32_BF16, b16, DSV32_BF16, N));
	assert_memory_equal(copy, b16, sizeof copy);
	/* names and sizes */
	dsv32_dtype t;
	assert_true(dsv32_dtype_from_name("F8_E4M3", &t) && t == DSV32_F8_E4M3);
	assert_false(dsv32_dtype_from_name("F8_E3M4", &t));
	assert_int_equal(dsv32_dtype_size(DSV32_BF16), 2);
	assert_string_equal(dsv32_dtype_name(DSV32_F8_E5M2), "F8_E5M2");
}

/* Every e8m0 code decodes to 2^(e-127) (0xff: NaN) and encodes back to itself. */
static void test_e8m0_all_codes_decode_and_round_trip(void **state)
{
	(void)state;
	for (int c = 0; c < 255; c++) {
		float v = dsv32_e8m0_to_f32((dsv32_f8)c);
		assert_true(v == ldexpf(1.0f, c - 127));
		assert_int_equal(dsv32_f32_to_e8m0(v), c);
	}
	assert_true(isnan(dsv32_e8m0_to_f32(0xffu)));
	assert_int_equal(dsv32_f32_to_e8m0(NAN), 0xff);
}

/* ml_dtypes' float8_e8m0fnu rules (checked against ml_dtypes itself in
 * tests/py_test_e8m0_ml_dtypes.py): ties up, no zero or sign, saturation below 2^-127 only. */
static void test_e8m0_ties_go_up_and_non_positive_is_nan(void **state)
{
	(void)state;
	assert_int_equal(dsv32_f32_to_e8m0(1.5f), 128);           /* tie 1 | 2 -> 2 */
	assert_int_equal(dsv32_f32_to_e8m0(3.0f), 129);           /* tie 2 | 4 -> 4 (odd code) */
	assert_int_equal(dsv32_f32_to_e8m0(0.75f), 127);          /* tie .5 | 1 -> 1 */
	assert_int_equal(dsv32_f32_to_e8m0(nextafterf(1.5f, 0.0f)), 127);
	assert_int_equal(dsv32_f32_to_e8m0(0.0f), 0xff);
	assert_int_equal(dsv32_f32_to_e8m0(-0.0f), 0xff);
	assert_int_equal(dsv32_f32_to_e8m0(-1.0f), 0xff);
	assert_int_equal(dsv32_f32_to_e8m0(INFINITY), 0xff);
	assert_int_equal(dsv32_f32_to_e8m0(ldexpf(1.49f, 127)), 254);
	assert_int_equal(dsv32_f32_to_e8m0(ldexpf(1.5f, 127)), 0xff); /* rounds past 2^127 */
	assert_int_equal(dsv32_f32_to_e8m0(ldexpf(1.0f, -149)), 0);    /* saturates at 2^-127 */
	assert_int_equal(dsv32_f32_to_e8m0(ldexpf(1.0f, -128)), 0);
	assert_int_equal(dsv32_f32_to_e8m0(ldexpf(1.5f, -127)), 1);    /* subnormal tie goes up */
	assert_int_equal(dsv32_f32_to_e8m0(ldexpf(1.49f, -127)), 0);
	/* through dsv32_convert both ways, and load_f64 */
	const float x[4] = {1.0f, 1.5f, 0.25f, -2.0f};
	uint8_t e[4];
	float back[4];
	assert_true(dsv32_convert(e, DSV32_F8_E8M0, x, DSV32_F32, 4));
	assert_true(e[0] == 127 && e[1] == 128 && e[2] == 125 && e[3] == 0xff);
	assert_true(dsv32_convert(back, DSV32_F32, e, DSV32_F8_E8M0, 4));
	assert_true(back[1] == 2.0f && back[2] == 0.25f && isnan(back[3]));
	assert_true(dsv32_load_f64(e, DSV32_F8_E8M0, 2) == 0.25);
}

/* The types Python's safetensors knows but we only list: names, bit sizes, not readable. */
static void test_listed_only_dtypes_have_names_and_bits(void **state)
{
	(void)state;
	static const struct {
		const char *name;
		unsigned bits;
		size_t size;
	} want[] = {{"F4", 4, 0},          {"F6_E2M3", 6, 0},       {"F6_E3M2", 6, 0},
		    {"F8_E4M3FNUZ", 8, 1}, {"F8_E5M2FNUZ", 8, 1}, {"C64", 64, 8}};
	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
		dsv32_dtype t;
		assert_true(dsv32_dtype_from_name(want[i].name, &t));
		assert_string_equal(dsv32_dtype_name(t), want[i].name);
		assert_int_equal(dsv32_dtype_bits(t), want[i].bits);
		assert_int_equal(dsv32_dtype_size(t), want[i].size);
		assert_false(dsv32_dtype_is_readable(t));
		assert_false(dsv32_dtype_is_float(t));
	}
	dsv32_dtype t;
	assert_true(dsv32_dtype_from_name("F8_E8M0", &t) && t == DSV32_F8_E8M0);
	assert_true(dsv32_dtype_is_readable(t) && dsv32_dtype_is_float(t));
	assert_int_equal(dsv32_dtype_size(t), 1);
	assert_int_equal(dsv32_dtype_bits(DSV32_DTYPE_COUNT), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bf16_all_codes_decode_and_round_trip),
		cmocka_unit_test(test_bf16_ties_round_to_even),
		cmocka_unit_test(test_bf16_random_values_match_oracle),
		cmocka_unit_test(test_e4m3_all_codes_decode_and_round_trip),
		cmocka_unit_test(test_e4m3_midpoints_go_to_even_code),
		cmocka_unit_test(test_e4m3_saturates_and_keeps_nan),
		cmocka_unit_test(test_e4m3_subnormals),
		cmocka_unit_test(test_e4m3_random_values_match_oracle),
		cmocka_unit_test(test_e4m3_every_exponent_and_rounding_pattern_matches_oracle),
		cmocka_unit_test(test_e5m2_all_codes_ties_and_overflow),
		cmocka_unit_test(test_f16_all_codes_round_trip),
		cmocka_unit_test(test_f16_ties_overflow_subnormals),
		cmocka_unit_test(test_convert_between_types),
		cmocka_unit_test(test_e8m0_all_codes_decode_and_round_trip),
		cmocka_unit_test(test_e8m0_ties_go_up_and_non_positive_is_nan),
		cmocka_unit_test(test_listed_only_dtypes_have_names_and_bits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
