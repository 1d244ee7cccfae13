/* test_vec_elementwise.c: the vectorised CPU bodies of rmsnorm, rope, silu_mul and hadamard
 * (dsv32_<op>_cpu: AVX2 where the CPU has it) against their portable scalar loops
 * (dsv32_<op>_cpu_portable, kernels/elementwise_cpu_avx2.h) on random rows: every output
 * element must have the same bits, except that a NaN may match any NaN (NaN sign and payload
 * are not part of the contract, docs/numerics.md "NaN"). Rows mix normal values at random
 * scales, sprinkled specials (±inf, ±0, f32 subnormals, values whose squares overflow, NaNs
 * with random payloads) and raw bit patterns; sizes include the vector edges (7, 8, 9, 15-17)
 * and the model widths. On a CPU without AVX2 both sides are the same loop and the test still
 * runs (trivially). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kernels/elementwise_cpu_avx2.h"

#define CASES 150

typedef struct {
	uint64_t s;
} rng;

static uint64_t rng_next(rng *r)
{
	r->s ^= r->s << 13;
	r->s ^= r->s >> 7;
	r->s ^= r->s << 17;
	return r->s;
}

static double rng_unif(rng *r)
{
	return (double)(rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

static double rng_gauss(rng *r)
{
	double u = rng_unif(r) + 1e-300, v = rng_unif(r);
	return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

static float bits_f32(uint32_t u)
{
	float f;
	memcpy(&f, &u, 4);
	return f;
}

static float special(rng *r)
{
	uint32_t sign = (uint32_t)(rng_next(r) & 1) << 31;
	switch (rng_next(r) % 8) {
	case 0: return bits_f32(0x7f800000u | sign);                              /* ±inf */
	case 1: return bits_f32(sign);                                            /* ±0 */
	case 2: return bits_f32(sign | (uint32_t)(rng_next(r) % 0x7fffffu + 1)); /* subnormal */
	case 3: return (sign ? -3.0e38f : 3.0e38f);                               /* r² overflows */
	case 4: return (float)(rng_gauss(r) * 1e30);
	case 5: return bits_f32(0x7fc00000u | sign | (uint32_t)(rng_next(r) & 0x3fffff));
	case 6: return bits_f32(0x7f800001u | sign | (uint32_t)(rng_next(r) & 0x7ffffe));
	default: return (float)(rng_gauss(r) * 1e-42);
	}
}

static size_t elem_size(dsv32_dtype t)
{
	return t == DSV32_BF16 ? 2 : 4;
}

/* n elements of dtype t: pattern 0 normal, 1 sprinkled specials, 2 raw bits, 3 many specials */
static void fill(rng *r, void *p, dsv32_dtype t, int64_t n)
{
	int pat = (int)(rng_next(r) % 4);
	double scale = ldexp(1.0, (int)(rng_next(r) % 40) - 20);
	for (int64_t i = 0; i < n; i++) {
		uint32_t u = (uint32_t)rng_next(r);
		float v = (float)(rng_gauss(r) * scale);
		if (pat == 1 && u % 40 == 0)
			v = special(r);
		else if (pat == 2)
			v = bits_f32(u);
		else if (pat == 3 && u % 4 == 0)
			v = special(r);
		if (t == DSV32_BF16)
			((dsv32_bf16 *)p)[i] = pat == 2 ? (dsv32_bf16)(u >> 16) : dsv32_f32_to_bf16(v);
		else
			((float *)p)[i] = v;
	}
}

static bool is_nan_at(const void *p, dsv32_dtype t, int64_t i)
{
	if (t == DSV32_BF16) {
		uint16_t b = ((const uint16_t *)p)[i];
		return (b & 0x7f80u) == 0x7f80u && (b & 0x7fu);
	}
	uint32_t u;
	memcpy(&u, (const float *)p + i, 4);
	return (u & 0x7f800000u) == 0x7f800000u && (u & 0x7fffffu);
}

/* Same bits, or NaN on both sides; names the first differing element. */
static void assert_same(const char *what, const void *want, const void *got, dsv32_dtype t,
			int64_t n)
{
	size_t e = elem_size(t);
	for (int64_t i = 0; i < n; i++) {
		if (!memcmp((const char *)want + i * e, (const char *)got + i * e, e))
			continue;
		if (is_nan_at(want, t, i) && is_nan_at(got, t, i))
			continue;
		fail_msg("%s: element %lld of %lld differs from the portable loop", what,
			 (long long)i, (long long)n);
	}
}

static dsv32_dtype pick_dtype(rng *r)
{
	return rng_next(r) & 1 ? DSV32_BF16 : DSV32_F32;
}

static int64_t pick_size(rng *r, const int64_t *list, int nlist, int64_t max)
{
	uint64_t u = rng_next(r) % 3;
	if (u == 0)
		return list[rng_next(r) % (uint64_t)nlist];
	if (u == 1)
		return 1 + (int64_t)(rng_next(r) % 40);
	return 1 + (int64_t)(rng_next(r) % (uint64_t)max);
}

static void test_rmsnorm_vector_matches_portable(void **state)
{
	(void)state;
	static const int64_t dims[] = {1, 7, 8, 9, 15, 16, 17, 64, 128, 512, 1536, 7168};
	rng r = {0x1234abcd5678ef01ull};
	for (int c = 0; c < CASES; c++) {
		dsv32_rmsnorm_args a;
		memset(&a, 0, sizeof a);
		a.mode = (dsv32_rmsnorm_mode)(rng_next(&r) % 3);
		a.dim = pick_size(&r, dims, 12, 9000);
		a.rows = 1 + (int64_t)(rng_next(&r) % 3);
		a.lanes = rng_next(&r) & 1 ? 8 : 16;
		a.planted = rng_next(&r) % 4 == 0;
		a.eps = 1e-6f;
		a.xt = pick_dtype(&r); a.rest = pick_dtype(&r);
		a.yt = pick_dtype(&r); a.rt = pick_dtype(&r);
		a.wt = a.mode == DSV32_RMSNORM_HF ? pick_dtype(&r) : DSV32_F32;
		int64_t n = a.rows * a.dim;
		void *x = malloc((size_t)n * 4), *res = malloc((size_t)n * 4);
		void *w = malloc((size_t)a.dim * 4);
		void *y[2] = {malloc((size_t)n * 4), malloc((size_t)n * 4)};
		void *ro[2] = {malloc((size_t)n * 4), malloc((size_t)n * 4)};
		assert_non_null(x); assert_non_null(res); assert_non_null(w);
		assert_non_null(y[0]); assert_non_null(y[1]); assert_non_null(ro[0]); assert_non_null(ro[1]);
		fill(&r, x, a.xt, n);
		fill(&r, res, a.rest, n);
		fill(&r, w, a.wt, a.dim);
		a.x = x; a.res = res; a.w = w;
		for (int v = 0; v < 2; v++) {
			a.y = y[v];
			a.res_out = ro[v];
			if (v == 0)
				dsv32_rmsnorm_cpu_portable(&a);
			else
				dsv32_rmsnorm_cpu(&a);
		}
		assert_same("rmsnorm y", y[0], y[1], a.yt, n);
		if (a.mode == DSV32_RMSNORM_REF_ADD)
			assert_same("rmsnorm res_out", ro[0], ro[1], a.rt, n);
		free(x); free(res); free(w); free(y[0]); free(y[1]); free(ro[0]); free(ro[1]);
	}
}

static void test_rope_vector_matches_portable(void **state)
{
	(void)state;
	static const int64_t rds[] = {16, 32, 64, 128, 256, 6, 62};
	rng r = {0x0badc0ffee123457ull};
	for (int c = 0; c < CASES; c++) {
		dsv32_rope_args a;
		memset(&a, 0, sizeof a);
		a.mode = rng_next(&r) & 1 ? DSV32_ROPE_REF : DSV32_ROPE_HF;
		a.rd = rng_next(&r) % 2 ? 64 : rds[rng_next(&r) % 7];
		a.B = 1 + (int64_t)(rng_next(&r) % 2);
		a.S = 1 + (int64_t)(rng_next(&r) % 4);
		a.H = 1 + (int64_t)(rng_next(&r) % 4);
		a.off = rng_next(&r) % 2 ? 0 : (int64_t)(rng_next(&r) % 130);
		a.D = a.off + a.rd + (int64_t)(rng_next(&r) % 3);
		a.interleaved = rng_next(&r) & 1;
		a.xt = pick_dtype(&r); a.yt = pick_dtype(&r); a.ct = pick_dtype(&r);
		a.pos0 = (int64_t)(rng_next(&r) % 4);
		a.cB = rng_next(&r) % 2 ? 1 : a.B;
		int64_t n = a.B * a.S * a.H * a.D, T = a.pos0 + a.S, nc = a.cB * a.S * a.rd;
		void *x = malloc((size_t)n * 4), *y[2] = {malloc((size_t)n * 4), malloc((size_t)n * 4)};
		float *freqs = malloc((size_t)(T * a.rd) * 4);
		void *cs = malloc((size_t)nc * 4), *sn = malloc((size_t)nc * 4);
		assert_non_null(x); assert_non_null(y[0]); assert_non_null(y[1]);
		assert_non_null(freqs); assert_non_null(cs); assert_non_null(sn);
		fill(&r, x, a.xt, n);
		fill(&r, freqs, DSV32_F32, T * a.rd);
		fill(&r, cs, a.ct, nc);
		fill(&r, sn, a.ct, nc);
		fill(&r, y[0], a.yt, n);
		memcpy(y[1], y[0], (size_t)n * elem_size(a.yt)); /* the untouched columns */
		a.x = x; a.freqs = freqs; a.cos = cs; a.sin = sn;
		for (int v = 0; v < 2; v++) {
			a.y = y[v];
			if (v == 0)
				dsv32_rope_cpu_portable(&a);
			else
				dsv32_rope_cpu(&a);
		}
		assert_same(a.mode == DSV32_ROPE_REF ? "rope_ref y" : "rope_hf y", y[0], y[1], a.yt, n);
		free(x); free(y[0]); free(y[1]); free(freqs); free(cs); free(sn);
	}
}

static void test_silu_mul_vector_matches_portable(void **state)
{
	(void)state;
	static const int64_t ns[] = {1, 7, 8, 9, 15, 16, 17, 255, 256, 257, 18432};
	rng r = {0x5eed5eed12345679ull};
	for (int c = 0; c < CASES; c++) {
		int64_t n = pick_size(&r, ns, 11, 20000);
		dsv32_dtype at = pick_dtype(&r), bt = pick_dtype(&r), ht = pick_dtype(&r);
		bool hf = rng_next(&r) & 1;
		void *a = malloc((size_t)n * 4), *b = malloc((size_t)n * 4);
		void *h[2] = {malloc((size_t)n * 4), malloc((size_t)n * 4)};
		assert_non_null(a); assert_non_null(b); assert_non_null(h[0]); assert_non_null(h[1]);
		fill(&r, a, at, n);
		fill(&r, b, bt, n);
		dsv32_silu_mul_cpu_portable(h[0], ht, a, at, b, bt, n, hf);
		dsv32_silu_mul_cpu(h[1], ht, a, at, b, bt, n, hf);
		assert_same(hf ? "silu_mul_hf h" : "silu_mul_ref h", h[0], h[1], ht, n);
		free(a); free(b); free(h[0]); free(h[1]);
	}
}

static void test_hadamard_vector_matches_portable(void **state)
{
	(void)state;
	rng r = {0x600dcafe87654321ull};
	for (int c = 0; c < CASES; c++) {
		int64_t d = rng_next(&r) % 2 ? 128 : (int64_t)1 << (rng_next(&r) % 13);
		int64_t rows = 1 + (int64_t)(rng_next(&r) % 4), n = rows * d;
		dsv32_dtype xt = pick_dtype(&r), yt = pick_dtype(&r);
		void *x = malloc((size_t)n * 4), *y[2] = {malloc((size_t)n * 4), malloc((size_t)n * 4)};
		assert_non_null(x); assert_non_null(y[0]); assert_non_null(y[1]);
		fill(&r, x, xt, n);
		float scale = dsv32_hadamard_scale(d);
		dsv32_hadamard_cpu_portable(y[0], yt, x, xt, rows, d, scale);
		dsv32_hadamard_cpu(y[1], yt, x, xt, rows, d, scale);
		assert_same("hadamard y", y[0], y[1], yt, n);
		free(x); free(y[0]); free(y[1]);
	}
}

/* The comparison itself must see a one-ulp difference (and accept a NaN for a NaN). */
static void test_comparison_detects_one_ulp(void **state)
{
	(void)state;
	float a[2] = {1.0f, bits_f32(0x7fc00001u)}, b[2] = {1.0f, bits_f32(0xffc12345u)};
	assert_same("nan vs nan", a, b, DSV32_F32, 2);
	b[0] = nextafterf(1.0f, 2.0f);
	assert_true(memcmp(a, b, 4) != 0);
	assert_false(is_nan_at(b, DSV32_F32, 0));
	assert_true(is_nan_at(b, DSV32_F32, 1));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_comparison_detects_one_ulp),
		cmocka_unit_test(test_rmsnorm_vector_matches_portable),
		cmocka_unit_test(test_rope_vector_matches_portable),
		cmocka_unit_test(test_silu_mul_vector_matches_portable),
		cmocka_unit_test(test_hadamard_vector_matches_portable),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
