/* test_fp8.c: the fp8 family (kernels/fp8.h) against oracles written in double from
 * docs/spec/ref_layout.md §B.2 / §B.5 / §B.6, independent of the kernel's inline math:
 *   scale:  v = fp32(amax' · fp32(1/448)) (a product of two floats is exact in double, rounded
 *           once); ue8m0: 2^ceil(log2 v) via frexp;
 *   codes:  q = fp32(x / s) (double division rounded to fp32 is the correctly rounded fp32
 *           quotient), then the nearest e4m3 grid value by brute force, ties to the even code;
 *   fp8_gemm: exact block sums in double, scaled as the contract says.
 * Budgets: scales, codes, round trip and weight_dequant bit-exact; fp8_gemm bit-exact against
 * the dequantized GEMM when every sum is exact (pow2 scales, integer-valued codes), and within
 * the fp32 summation bound of the double block formula otherwise. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "kernels/fp8.h"
#include "kernels/gemm.h"
#include "tests/support/test_util.h"
#include "tests/support/test_common.h"

static const float INV448 = 0x1.24924ap-9f; /* fp32(1/448), §B.8: 0x3b124925 */

/* Value of e4m3fn code c (c & 0x7f != 0x7f), from the format definition. */
static double e4m3_value(int c)
{
	int s = c >> 7, e = (c >> 3) & 15, m = c & 7;
	double v = e == 0 ? ldexp(m, -9) : ldexp(8 + m, e - 10);
	return s ? -v : v;
}

/* Nearest e4m3 code to q by exhaustive search; ties to the even code; saturating at 448. */
static int e4m3_nearest(double q)
{
	if (q > 448)
		q = 448;
	if (q < -448)
		q = -448;
	int best = 0;
	double bd = INFINITY;
	for (int c = 0; c < 0x7f; c++) {
		double d = fabs(fabs(q) - e4m3_value(c));
		if (d < bd || (d == bd && (c & 1) == 0 && (best & 1) == 1)) {
			bd = d;
			best = c;
		}
	}
	return (q < 0 || (q == 0 && signbit(q))) ? best | 0x80 : best;
}

static float oracle_scale(double amax, bool ue8m0)
{
	float a = (float)amax; /* amax of bf16/f32 data is a float */
	if (!(a > 1e-4f))
		a = 1e-4f;
	float v = (float)((double)a * (double)INV448);
	if (!ue8m0)
		return v;
	int e;
	double f = frexp(v, &e); /* v = f·2^e, f in [0.5, 1) */
	return (float)ldexp(1.0, f == 0.5 ? e - 1 : e);
}

typedef struct {
	int64_t rows, K;
	dsv32_tensor x;
} qcase;

/* Rows of mixed magnitudes with edge rows: all zero, a spike, -0, tiny, near 448·2^k. */
static qcase make_qcase(dsv32_dtype t, int64_t rows, int64_t K, uint64_t seed)
{
	tu_rng r = tu_rng_xorshift64(seed);
	qcase c = {rows, K, tu_hostv(t, 2, rows, K)};
	for (int64_t i = 0; i < rows; i++)
		for (int64_t j = 0; j < K; j++) {
			double v = (tu_uniform(&r) * 2 - 1) * ldexp(1.0, tu_int(&r, -6, 6));
			switch (i % 6) {
			case 1: v = 0.0; break;                                  /* amax clamp */
			case 2: v = (j == 5) ? 3e4 : v * 1e-3; break;            /* spike */
			case 3: v = (j % 2) ? -0.0 : ldexp(1.0, -20) * v; break; /* -0, tiny */
			case 4: v = (j == 0) ? 448.0 * 4 : v; break;            /* amax 448·2^2 */
			default: break;
			}
			tu_set_f32(&c.x, i * K + j, v);
		}
	return c;
}

/* Check codes and scales of act_quant on be for x (host) against the oracle. */
static void check_act_quant(dsv32_backend *be, const dsv32_tensor *x, bool ue8m0)
{
	int64_t rows = x->shape[0], K = x->shape[1], nb = K / 128;
	dsv32_tensor y8 = tu_hostv(DSV32_F8_E4M3, 2, rows, K), s = tu_hostv(DSV32_F32, 2, rows, nb);
	dsv32_tensor dx = tu_to_dev(be, x), dy = tu_to_dev(be, &y8), ds = tu_to_dev(be, &s);
	dsv32_error err = {0};
	if (dsv32_act_quant(be, &dy, &ds, &dx, ue8m0, &err) != DSV32_OK)
		fail_msg("act_quant: %s", err.what);
	tu_back(be, &y8, &dy);
	tu_back(be, &s, &ds);
	dsv32_backend_free(be, &dx);
	for (int64_t i = 0; i < rows; i++)
		for (int64_t b = 0; b < nb; b++) {
			double amax = 0;
			for (int j = 0; j < 128; j++)
				amax = fmax(amax, fabs(tu_get(x, i * K + b * 128 + j)));
			float sw = oracle_scale(amax, ue8m0);
			float sg = ((float *)s.data)[i * nb + b];
			if (sg != sw)
				fail_msg("act_quant(%s, ue8m0=%d) scale[%lld,%lld] = %a, want %a "
					 "(amax %a)", dsv32_dtype_name(x->dtype), ue8m0,
					 (long long)i, (long long)b, sg, sw, amax);
			for (int j = 0; j < 128; j++) {
				int64_t idx = i * K + b * 128 + j;
				double q = (float)(tu_get(x, idx) / (double)sw);
				int want = e4m3_nearest(q);
				int got = ((uint8_t *)y8.data)[idx];
				if (got != want)
					fail_msg("act_quant code[%lld,%lld] = 0x%02x, want 0x%02x "
						 "(x %a, s %a)", (long long)i, (long long)(b * 128 + j),
						 got, want, tu_get(x, idx), sw);
			}
		}
	dsv32_tensor_free(&y8);
	dsv32_tensor_free(&s);
}

static void test_act_quant_scales_and_codes_are_exact(void **state)
{
	tc_skip_without_backend(state);
	for (int t = 0; t < 2; t++) {
		qcase c = make_qcase(t ? DSV32_F32 : DSV32_BF16, 13, 384, 11 + t);
		check_act_quant(*state, &c.x, true);
		check_act_quant(*state, &c.x, false);
		dsv32_tensor_free(&c.x);
	}
}

static void test_act_quant_zero_block_gets_clamped_scale(void **state)
{
	tc_skip_without_backend(state);
	dsv32_backend *be = *state;
	dsv32_tensor x = tu_hostv(DSV32_BF16, 2, (int64_t)1, (int64_t)128);
	dsv32_tensor y8 = tu_hostv(DSV32_F8_E4M3, 2, (int64_t)1, (int64_t)128);
	dsv32_tensor s = tu_hostv(DSV32_F32, 2, (int64_t)1, (int64_t)1);
	for (int ue = 0; ue < 2; ue++) {
		dsv32_tensor dx = tu_to_dev(be, &x), dy = tu_to_dev(be, &y8), ds = tu_to_dev(be, &s);
		assert_int_equal(dsv32_act_quant(be, &dy, &ds, &dx, ue, NULL), DSV32_OK);
		tu_back(be, &y8, &dy);
		tu_back(be, &s, &ds);
		dsv32_backend_free(be, &dx);
		/* 1e-4f · fp32(1/448) = 2.2321e-7 in (2^-23, 2^-22]: ue8m0 gives 2^-22 */
		float want = ue ? 0x1p-22f : (float)((double)1e-4f * (double)INV448);
		assert_true(((float *)s.data)[0] == want);
		for (int j = 0; j < 128; j++)
			assert_int_equal(((uint8_t *)y8.data)[j], 0);
	}
	dsv32_tensor_free(&x);
	dsv32_tensor_free(&y8);
	dsv32_tensor_free(&s);
}

/* amax = 448·2^k gives s = 2^k exactly (§B.2.1 step 3) and the amax element maps to 448. */
static void test_act_quant_amax_448_pow2_gives_exact_scale(void **state)
{
	tc_skip_without_backend(state);
	dsv32_backend *be = *state;
	dsv32_tensor x = tu_hostv(DSV32_BF16, 2, (int64_t)6, (int64_t)128);
	for (int k = -3; k <= 2; k++)
		tu_set_f32(&x, (k + 3) * 128 + 7, -448.0 * ldexp(1.0, k));
	dsv32_tensor y8 = tu_hostv(DSV32_F8_E4M3, 2, (int64_t)6, (int64_t)128);
	dsv32_tensor s = tu_hostv(DSV32_F32, 2, (int64_t)6, (int64_t)1);
	dsv32_tensor dx = tu_to_dev(be, &x), dy = tu_to_dev(be, &y8), ds = tu_to_dev(be, &s);
	assert_int_equal(dsv32_act_quant(be, &dy, &ds, &dx, true, NULL), DSV32_OK);
	tu_back(be, &y8, &dy);
	tu_back(be, &s, &ds);
	dsv32_backend_free(be, &dx);
	for (int k = -3; k <= 2; k++) {
		assert_true(((float *)s.data)[k + 3] == (float)ldexp(1.0, k));
		assert_int_equal(((uint8_t *)y8.data)[(k + 3) * 128 + 7], 0xfe); /* -448 */
	}
	dsv32_tensor_free(&x);
	dsv32_tensor_free(&y8);
	dsv32_tensor_free(&s);
}

/* The clamp to ±448 then the saturating cast: values beyond ±448 become ±448 (codes 0x7e,
 * 0xfe); 464 (the midpoint to the NaN code's magnitude) too. Host-side element math. */
static void test_quant_elem_saturates(void **state)
{
	(void)state;
	assert_int_equal(dsv32_fp8_quant_elem(1000.0f, 1.0f), 0x7e);
	assert_int_equal(dsv32_fp8_quant_elem(-1000.0f, 1.0f), 0xfe);
	assert_int_equal(dsv32_fp8_quant_elem(464.0f, 1.0f), 0x7e);
	assert_int_equal(dsv32_fp8_quant_elem(INFINITY, 1.0f), 0x7e);
	assert_int_equal(dsv32_fp8_quant_elem(-0.0f, 1.0f), 0x80);
}

static void test_fp8_roundtrip_is_dequantized_codes(void **state)
{
	tc_skip_without_backend(state);
	dsv32_backend *be = *state;
	for (int t = 0; t < 4; t++) {
		dsv32_dtype xt = (t & 1) ? DSV32_F32 : DSV32_BF16;
		dsv32_dtype yt = (t & 2) ? DSV32_F32 : DSV32_BF16;
		bool ue8m0 = t != 3;
		qcase c = make_qcase(xt, 7, 512, 40 + t);
		dsv32_tensor y = tu_hostv(yt, 2, c.rows, c.K);
		dsv32_tensor dx = tu_to_dev(be, &c.x), dy = tu_to_dev(be, &y);
		assert_int_equal(dsv32_fp8_roundtrip(be, &dy, &dx, ue8m0, NULL), DSV32_OK);
		tu_back(be, &y, &dy);
		/* in place on a copy gives the same bits when dtypes agree */
		dsv32_tensor inplace = tu_hostv(xt, 2, c.rows, c.K);
		if (xt == yt) {
			assert_int_equal(dsv32_fp8_roundtrip(be, &dx, &dx, ue8m0, NULL), DSV32_OK);
			tu_back(be, &inplace, &dx);
			assert_memory_equal(inplace.data, y.data, dsv32_tensor_nbytes(&y));
		} else {
			dsv32_backend_free(be, &dx);
		}
		for (int64_t i = 0; i < c.rows; i++)
			for (int64_t b = 0; b < c.K / 128; b++) {
				double amax = 0;
				for (int j = 0; j < 128; j++)
					amax = fmax(amax, fabs(tu_get(&c.x, i * c.K + b * 128 + j)));
				float s = oracle_scale(amax, ue8m0);
				for (int j = 0; j < 128; j++) {
					int64_t idx = i * c.K + b * 128 + j;
					double q = (float)(tu_get(&c.x, idx) / (double)s);
					double v = (float)(e4m3_value(e4m3_nearest(q)) * s);
					double want = yt == DSV32_BF16 ? tu_bf16_rne(v) : v;
					if (tu_get(&y, idx) != want)
						fail_msg("roundtrip %s->%s ue8m0=%d [%lld] = %a, want %a",
							 dsv32_dtype_name(xt), dsv32_dtype_name(yt),
							 ue8m0, (long long)idx, tu_get(&y, idx), want);
				}
			}
		dsv32_tensor_free(&c.x);
		dsv32_tensor_free(&y);
		dsv32_tensor_free(&inplace);
	}
}

/* Random e4m3 codes (no NaN) and scales; pow2 = power-of-two scales in [2^-2, 2^2]. */
static void fill_codes(dsv32_tensor *t, tu_rng *r, bool small_ints)
{
	uint8_t *p = t->data;
	for (int64_t i = 0; i < dsv32_tensor_numel(t); i++) {
		if (small_ints)
			p[i] = dsv32_f32_to_e4m3((float)tu_int(r, -8, 8));
		else
			do
				p[i] = (uint8_t)tu_int(r, 0, 255);
			while ((p[i] & 0x7f) == 0x7f);
	}
}

static void fill_scales(dsv32_tensor *t, tu_rng *r, bool pow2)
{
	for (int64_t i = 0; i < dsv32_tensor_numel(t); i++)
		((float *)t->data)[i] = pow2 ? (float)ldexp(1.0, tu_int(r, -2, 2))
					     : (float)(ldexp(1.0, tu_int(r, -12, -6)) *
						       (1 + tu_uniform(r)));
}

static void test_weight_dequant_is_exact_with_pow2_scales(void **state)
{
	tc_skip_without_backend(state);
	dsv32_backend *be = *state;
	const int64_t N = 200, K = 300; /* partial blocks on both axes */
	tu_rng r = tu_rng_xorshift64(3);
	dsv32_tensor w8 = tu_hostv(DSV32_F8_E4M3, 2, N, K);
	dsv32_tensor sc = tu_hostv(DSV32_F32, 2, (int64_t)2, (int64_t)3);
	fill_codes(&w8, &r, false);
	fill_scales(&sc, &r, true);
	for (int t = 0; t < 2; t++) {
		dsv32_tensor w = tu_hostv(t ? DSV32_F32 : DSV32_BF16, 2, N, K);
		dsv32_tensor dw8 = tu_to_dev(be, &w8), dsc = tu_to_dev(be, &sc), dw = tu_to_dev(be, &w);
		assert_int_equal(dsv32_weight_dequant(be, &dw, &dw8, &dsc, NULL), DSV32_OK);
		tu_back(be, &w, &dw);
		dsv32_backend_free(be, &dw8);
		dsv32_backend_free(be, &dsc);
		for (int64_t n = 0; n < N; n++)
			for (int64_t k = 0; k < K; k++) {
				double want = e4m3_value(((uint8_t *)w8.data)[n * K + k]) *
					      ((float *)sc.data)[(n / 128) * 3 + k / 128];
				assert_true(tu_get(&w, n * K + k) == want);
			}
		dsv32_tensor_free(&w);
	}
	dsv32_tensor_free(&w8);
	dsv32_tensor_free(&sc);
}

/* weight_dequant (BF16) value by value against the contract's formula in fp32 (one product,
 * dsv32_f32_to_bf16): every code, NaN codes too, under scales whose products are subnormal,
 * overflow, change sign, or are NaN (NaN, inf and zero scales); the last group and the last
 * block are partial and the block tails are no multiple of 32 (the table lookup's steps).
 * Where a NaN code meets a NaN scale the product is one of the two NaNs, which one C leaves
 * open (fp8.h): there only NaN-ness is checked. */
static void test_weight_dequant_matches_formula_bitwise(void **state)
{
	tc_skip_without_backend(state);
	dsv32_backend *be = *state;
	const int64_t N = 300, K = 1100, SN = 3, SK = 9;
	static const float special[] = {0x1p-130f, -0x1.8p-120f, 0x1p+120f, NAN,
					INFINITY, 0.0f,      -0.0f,      -3.7e-3f};
	tu_rng r = tu_rng_xorshift64(11);
	dsv32_tensor w8 = tu_hostv(DSV32_F8_E4M3, 2, N, K), sc = tu_hostv(DSV32_F32, 2, SN, SK);
	uint8_t *code = w8.data;
	for (int64_t i = 0; i < N * K; i++)
		code[i] = (uint8_t)(i % 256 == 0 ? tu_int(&r, 0, 255) : code[i - 1] + 1);
	float *s = sc.data;
	for (int64_t j = 0; j < SN * SK; j++)
		s[j] = j < 8 ? special[j]
			     : (float)((tu_int(&r, 0, 1) ? -1 : 1) * ldexp(1 + tu_uniform(&r),
									   tu_int(&r, -20, 4)));
	dsv32_tensor w = tu_hostv(DSV32_BF16, 2, N, K);
	dsv32_tensor dw8 = tu_to_dev(be, &w8), dsc = tu_to_dev(be, &sc), dw = tu_to_dev(be, &w);
	assert_int_equal(dsv32_weight_dequant(be, &dw, &dw8, &dsc, NULL), DSV32_OK);
	tu_back(be, &w, &dw);
	const uint16_t *got = w.data;
	for (int64_t n = 0; n < N; n++)
		for (int64_t k = 0; k < K; k++) {
			float v = dsv32_e4m3_to_f32(code[n * K + k]), sv = s[(n / 128) * SK + k / 128];
			float f = v * sv;
			bool nan_meets_nan = isnan(v) && isnan(sv); /* either NaN may come out (C) */
			if (nan_meets_nan ? (got[n * K + k] & 0x7fff) <= 0x7f80
					  : got[n * K + k] != dsv32_f32_to_bf16(f))
				fail_msg("w[%lld, %lld]: code 0x%02x scale %a: 0x%04x, want 0x%04x",
					 (long long)n, (long long)k, code[n * K + k],
					 (double)s[(n / 128) * SK + k / 128], got[n * K + k],
					 dsv32_f32_to_bf16(f));
		}
	dsv32_backend_free(be, &dw8);
	dsv32_backend_free(be, &dsc);
	dsv32_tensor_free(&w);
	dsv32_tensor_free(&w8);
	dsv32_tensor_free(&sc);
}

/* y of dequant_gemm (x, w8, sc) and of weight_dequant followed by one gemm, both on be. */
static void dequant_gemm_both(dsv32_backend *be, dsv32_tensor *y_fused, dsv32_tensor *y_two,
			      const dsv32_tensor *x, const dsv32_tensor *w8, const dsv32_tensor *sc)
{
	int64_t N = w8->shape[0], K = w8->shape[1];
	dsv32_tensor wd = tu_hostv(DSV32_BF16, 2, N, K);
	dsv32_tensor dx = tu_to_dev(be, x), dw8 = tu_to_dev(be, w8), dsc = tu_to_dev(be, sc);
	dsv32_tensor dwd = tu_to_dev(be, &wd), scratch = tu_to_dev(be, &wd);
	dsv32_tensor d1 = tu_to_dev(be, y_fused), d2 = tu_to_dev(be, y_two);
	dsv32_error err = {0};
	if (dsv32_dequant_gemm(be, &d1, &dx, &dw8, &dsc, &scratch, &err) != DSV32_OK)
		fail_msg("dequant_gemm: %s", err.what);
	assert_int_equal(dsv32_weight_dequant(be, &dwd, &dw8, &dsc, NULL), DSV32_OK);
	assert_int_equal(dsv32_gemm(be, &d2, &dx, &dwd, NULL), DSV32_OK);
	tu_back(be, y_fused, &d1);
	tu_back(be, y_two, &d2);
	dsv32_tensor *dev[] = {&dx, &dw8, &dsc, &dwd, &scratch};
	for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++)
		dsv32_backend_free(be, dev[i]);
	dsv32_tensor_free(&wd);
}

/* dequant_gemm is weight_dequant then one gemm, bit for bit: one row to 40 (the decode tile,
 * more than one tile, the step-pair body), N ending inside a group and inside a column tile,
 * K across GEMM chunks and no multiple of 8; BF16 and F32 x and y; on the fixed engine (groups
 * in a cache-sized buffer) and on the host engine (whole matrix in scratch). */
static void test_dequant_gemm_is_dequant_then_gemm(void **state)
{
	tc_skip_without_backend(state);
	dsv32_backend *be = *state;
	static const int64_t shapes[][3] = {
		{1, 300, 1100}, {2, 130, 896}, {7, 64, 200}, {40, 261, 2056}, {5, 1, 129},
		{3, 200, 7000}, {33, 130, 12400}}; /* the last two: blocks of 64 and 32 rows */
	int engine0 = be->gemm_engine;
	tu_rng r = tu_rng_xorshift64(21);
	for (int e = 0; e < 2; e++) {
		be->gemm_engine = e ? DSV32_GEMM_HOST : DSV32_GEMM_FIXED;
		for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
			int64_t M = shapes[i][0], N = shapes[i][1], K = shapes[i][2];
			dsv32_tensor w8 = tu_hostv(DSV32_F8_E4M3, 2, N, K);
			dsv32_tensor sc = tu_hostv(DSV32_F32, 2, (N + 127) / 128, (K + 127) / 128);
			fill_codes(&w8, &r, false);
			fill_scales(&sc, &r, false);
			for (int t = 0; t < 4; t++) {
				dsv32_dtype xt = t & 1 ? DSV32_F32 : DSV32_BF16;
				dsv32_dtype yt = t & 2 ? DSV32_F32 : DSV32_BF16;
				dsv32_tensor x = tu_hostv(xt, 2, M, K);
				tu_fill_normal(&x, &r, 1.0);
				dsv32_tensor y1 = tu_hostv(yt, 2, M, N), y2 = tu_hostv(yt, 2, M, N);
				dequant_gemm_both(be, &y1, &y2, &x, &w8, &sc);
				if (memcmp(y1.data, y2.data, dsv32_tensor_nbytes(&y1)) != 0)
					fail_msg("%s engine, M %lld N %lld K %lld, x %s y %s: differs",
						 e ? "host" : "fixed", (long long)M, (long long)N,
						 (long long)K, dsv32_dtype_name(xt),
						 dsv32_dtype_name(yt));
				dsv32_tensor_free(&x);
				dsv32_tensor_free(&y1);
				dsv32_tensor_free(&y2);
			}
			dsv32_tensor_free(&w8);
			dsv32_tensor_free(&sc);
		}
	}
	be->gemm_engine = engine0;
}

/* Where the whole matrix is needed (host engine, CUDA) a missing or short scratch is an error
 * that names it; the fixed CPU engine needs none. */
static void test_dequant_gemm_scratch_errors(void **state)
{
	tc_skip_without_backend(state);
	dsv32_backend *be = *state;
	int engine0 = be->gemm_engine;
	dsv32_tensor x = tu_hostv(DSV32_BF16, 2, (int64_t)2, (int64_t)256);
	dsv32_tensor w8 = tu_hostv(DSV32_F8_E4M3, 2, (int64_t)130, (int64_t)256);
	dsv32_tensor sc = tu_hostv(DSV32_F32, 2, (int64_t)2, (int64_t)2);
	dsv32_tensor y = tu_hostv(DSV32_BF16, 2, (int64_t)2, (int64_t)130);
	dsv32_tensor small = tu_hostv(DSV32_BF16, 1, (int64_t)(130 * 256 - 1));
	tu_rng r = tu_rng_xorshift64(5);
	fill_codes(&w8, &r, false);
	fill_scales(&sc, &r, true);
	dsv32_tensor dx = tu_to_dev(be, &x), dw8 = tu_to_dev(be, &w8), dsc = tu_to_dev(be, &sc);
	dsv32_tensor dy = tu_to_dev(be, &y), dsmall = tu_to_dev(be, &small);
	dsv32_error err = {0};
	be->gemm_engine = DSV32_GEMM_HOST;
	assert_int_equal(dsv32_dequant_gemm(be, &dy, &dx, &dw8, &dsc, NULL, &err), DSV32_E_USAGE);
	assert_non_null(strstr(err.what, "scratch"));
	assert_int_equal(dsv32_dequant_gemm(be, &dy, &dx, &dw8, &dsc, &dsmall, &err),
			 DSV32_E_SHAPE);
	assert_non_null(strstr(err.what, "scratch of 33279 elements"));
	be->gemm_engine = DSV32_GEMM_FIXED;
	dsv32_status want = be->device == DSV32_DEV_CPU ? DSV32_OK : DSV32_E_USAGE;
	assert_int_equal(dsv32_dequant_gemm(be, &dy, &dx, &dw8, &dsc, NULL, &err), want);
	be->gemm_engine = engine0;
	dsv32_tensor *dev[] = {&dx, &dw8, &dsc, &dy, &dsmall};
	for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++)
		dsv32_backend_free(be, dev[i]);
	dsv32_tensor *host[] = {&x, &w8, &sc, &y, &small};
	for (size_t i = 0; i < sizeof host / sizeof host[0]; i++)
		dsv32_tensor_free(host[i]);
}

typedef struct {
	int64_t M, N, K;
	dsv32_tensor x8, xs, w8, ws;
} gcase8;

static gcase8 make_g8(int64_t M, int64_t N, int64_t K, uint64_t seed, bool exact)
{
	tu_rng r = tu_rng_xorshift64(seed);
	int64_t nkb = (K + 127) / 128;
	gcase8 c = {M, N, K, tu_hostv(DSV32_F8_E4M3, 2, M, K), tu_hostv(DSV32_F32, 2, M, nkb),
		    tu_hostv(DSV32_F8_E4M3, 2, N, K),
		    tu_hostv(DSV32_F32, 2, (N + 127) / 128, nkb)};
	fill_codes(&c.x8, &r, exact);
	fill_codes(&c.w8, &r, exact);
	fill_scales(&c.xs, &r, exact);
	fill_scales(&c.ws, &r, exact);
	return c;
}

static void free_g8(gcase8 *c)
{
	dsv32_tensor_free(&c->x8);
	dsv32_tensor_free(&c->xs);
	dsv32_tensor_free(&c->w8);
	dsv32_tensor_free(&c->ws);
}

static void run_fp8_gemm(dsv32_backend *be, gcase8 *c, dsv32_tensor *y)
{
	dsv32_tensor dx = tu_to_dev(be, &c->x8), dxs = tu_to_dev(be, &c->xs);
	dsv32_tensor dw = tu_to_dev(be, &c->w8), dws = tu_to_dev(be, &c->ws), dy = tu_to_dev(be, y);
	dsv32_error err = {0};
	if (dsv32_fp8_gemm(be, &dy, &dx, &dxs, &dw, &dws, &err) != DSV32_OK)
		fail_msg("fp8_gemm: %s", err.what);
	tu_back(be, y, &dy);
	dsv32_backend_free(be, &dx);
	dsv32_backend_free(be, &dxs);
	dsv32_backend_free(be, &dw);
	dsv32_backend_free(be, &dws);
}

/* The property: with power-of-two scales and exactly representable data, fp8_gemm
 * equals GEMM(dequant(x), weight_dequant(w)) bit for bit (every sum here is exact). */
static void test_fp8_gemm_equals_dequantized_gemm(void **state)
{
	tc_skip_without_backend(state);
	dsv32_backend *be = *state;
	gcase8 c = make_g8(9, 150, 384, 21, true);
	dsv32_tensor xd = tu_hostv(DSV32_F32, 2, c.M, c.K), wd = tu_hostv(DSV32_F32, 2, c.N, c.K);
	for (int64_t m = 0; m < c.M; m++)
		for (int64_t k = 0; k < c.K; k++)
			tu_set_f32(&xd, m * c.K + k, e4m3_value(((uint8_t *)c.x8.data)[m * c.K + k]) *
							((float *)c.xs.data)[m * 3 + k / 128]);
	dsv32_tensor dwd = tu_to_dev(be, &wd), dw8 = tu_to_dev(be, &c.w8), dws = tu_to_dev(be, &c.ws);
	assert_int_equal(dsv32_weight_dequant(be, &dwd, &dw8, &dws, NULL), DSV32_OK);
	dsv32_backend_free(be, &dw8);
	dsv32_backend_free(be, &dws);
	for (int t = 0; t < 2; t++) {
		dsv32_dtype yt = t ? DSV32_F32 : DSV32_BF16;
		dsv32_tensor y = tu_hostv(yt, 2, c.M, c.N), yg = tu_hostv(yt, 2, c.M, c.N);
		run_fp8_gemm(be, &c, &y);
		dsv32_tensor dxd = tu_to_dev(be, &xd), dyg = tu_to_dev(be, &yg);
		assert_int_equal(dsv32_gemm(be, &dyg, &dxd, &dwd, NULL), DSV32_OK);
		tu_back(be, &yg, &dyg);
		dsv32_backend_free(be, &dxd);
		assert_memory_equal(y.data, yg.data, dsv32_tensor_nbytes(&y));
		dsv32_tensor_free(&y);
		dsv32_tensor_free(&yg);
	}
	dsv32_backend_free(be, &dwd);
	dsv32_tensor_free(&xd);
	dsv32_tensor_free(&wd);
	free_g8(&c);
}

/* Random codes and non-pow2 scales against the block formula in double. In-block sums are
 * exact in double (products of e4m3 values have <= 8 significant bits). Budget for an F32 y:
 * Σ_kb |sc_kb| · (kw·2^-24·Σ_k|x·w|) for the in-block fp32 sums, plus 2^-24·|t_kb| per scale
 * multiply and 2^-24·Σ|t| per accumulation step; a BF16 y adds one bf16 ulp. */
static void test_fp8_gemm_matches_block_formula(void **state)
{
	tc_skip_without_backend(state);
	dsv32_backend *be = *state;
	gcase8 c = make_g8(5, 131, 300, 33, false); /* partial K block, partial N block */
	int64_t nkb = 3;
	for (int t = 0; t < 2; t++) {
		dsv32_dtype yt = t ? DSV32_F32 : DSV32_BF16;
		dsv32_tensor y = tu_hostv(yt, 2, c.M, c.N);
		run_fp8_gemm(be, &c, &y);
		for (int64_t m = 0; m < c.M; m++)
			for (int64_t n = 0; n < c.N; n++) {
				double acc = 0, tol = 0, tabs = 0;
				for (int64_t kb = 0; kb < nkb; kb++) {
					double P = 0, Pa = 0;
					int64_t kw = kb == 2 ? 44 : 128;
					for (int64_t k = kb * 128; k < kb * 128 + kw; k++) {
						double p = e4m3_value(((uint8_t *)c.x8.data)[m * c.K + k]) *
							   e4m3_value(((uint8_t *)c.w8.data)[n * c.K + k]);
						P += p;
						Pa += fabs(p);
					}
					float sc = (float)((double)((float *)c.xs.data)[m * nkb + kb] *
							   ((float *)c.ws.data)[(n / 128) * nkb + kb]);
					acc += P * sc;
					tabs += fabs(P * sc);
					tol += fabs(sc) * kw * 0x1p-24 * Pa + 0x1p-24 * fabs(P * sc);
				}
				tol += nkb * 0x1p-24 * tabs;
				double want = yt == DSV32_BF16 ? tu_bf16_rne(acc) : acc;
				if (yt == DSV32_BF16)
					tol += tu_bf16_spacing(want);
				double got = tu_get(&y, m * c.N + n);
				if (!(fabs(got - want) <= tol))
					fail_msg("fp8_gemm -> %s y[%lld,%lld] = %.9g, want %.9g "
						 "(tol %.3g)", dsv32_dtype_name(yt), (long long)m,
						 (long long)n, got, want, tol);
			}
		dsv32_tensor_free(&y);
	}
	free_g8(&c);
}

/* linear_fp8 is act_quant followed by fp8_gemm, bit for bit. */
static void test_linear_fp8_is_act_quant_then_fp8_gemm(void **state)
{
	tc_skip_without_backend(state);
	dsv32_backend *be = *state;
	qcase q = make_qcase(DSV32_BF16, 6, 256, 50);
	gcase8 c = make_g8(6, 70, 256, 51, false);
	dsv32_tensor y = tu_hostv(DSV32_BF16, 2, (int64_t)6, (int64_t)70);
	dsv32_tensor y2 = tu_hostv(DSV32_BF16, 2, (int64_t)6, (int64_t)70);
	dsv32_tensor dx = tu_to_dev(be, &q.x), dw = tu_to_dev(be, &c.w8), dws = tu_to_dev(be, &c.ws);
	dsv32_tensor dy = tu_to_dev(be, &y), dx8 = tu_to_dev(be, &c.x8), dxs = tu_to_dev(be, &c.xs);
	dsv32_error err = {0};
	if (dsv32_linear_fp8(be, &dy, &dx, &dw, &dws, true, &err) != DSV32_OK)
		fail_msg("linear_fp8: %s", err.what);
	tu_back(be, &y, &dy);
	assert_int_equal(dsv32_act_quant(be, &dx8, &dxs, &dx, true, NULL), DSV32_OK);
	dsv32_tensor dy2 = tu_to_dev(be, &y2);
	assert_int_equal(dsv32_fp8_gemm(be, &dy2, &dx8, &dxs, &dw, &dws, NULL), DSV32_OK);
	tu_back(be, &y2, &dy2);
	assert_memory_equal(y.data, y2.data, dsv32_tensor_nbytes(&y));
	dsv32_backend_free(be, &dx);
	dsv32_backend_free(be, &dw);
	dsv32_backend_free(be, &dws);
	dsv32_backend_free(be, &dx8);
	dsv32_backend_free(be, &dxs);
	dsv32_tensor_free(&q.x);
	dsv32_tensor_free(&y);
	dsv32_tensor_free(&y2);
	free_g8(&c);
}

static void test_fp8_rejects_bad_arguments(void **state)
{
	tc_skip_without_backend(state);
	dsv32_backend *be = *state;
	dsv32_tensor x = tu_hostv(DSV32_BF16, 2, (int64_t)2, (int64_t)100);
	dsv32_tensor y8 = tu_hostv(DSV32_F8_E4M3, 2, (int64_t)2, (int64_t)100);
	dsv32_tensor s = tu_hostv(DSV32_F32, 2, (int64_t)2, (int64_t)1);
	dsv32_tensor dx = tu_to_dev(be, &x), dy = tu_to_dev(be, &y8), ds = tu_to_dev(be, &s);
	dsv32_error err = {0};
	assert_int_equal(dsv32_act_quant(be, &dy, &ds, &dx, true, &err), DSV32_E_SHAPE);
	assert_non_null(strstr(err.what, "100"));
	assert_int_equal(dsv32_act_quant(be, &dx, &ds, &dx, true, &err), DSV32_E_SHAPE);
	dsv32_tensor w8 = tu_hostv(DSV32_F8_E4M3, 2, (int64_t)130, (int64_t)256);
	dsv32_tensor bad = tu_hostv(DSV32_F32, 2, (int64_t)1, (int64_t)2); /* want [2, 2] */
	dsv32_tensor w = tu_hostv(DSV32_BF16, 2, (int64_t)130, (int64_t)256);
	dsv32_tensor dw8 = tu_to_dev(be, &w8), dbad = tu_to_dev(be, &bad), dw = tu_to_dev(be, &w);
	assert_int_equal(dsv32_weight_dequant(be, &dw, &dw8, &dbad, &err), DSV32_E_SHAPE);
	assert_non_null(strstr(err.what, "[2, 2]"));
	assert_int_equal(dsv32_weight_dequant(be, &dw, &dw, &dbad, &err), DSV32_E_DTYPE);
	dsv32_backend_free(be, &dx);
	dsv32_backend_free(be, &dy);
	dsv32_backend_free(be, &ds);
	dsv32_backend_free(be, &dw8);
	dsv32_backend_free(be, &dbad);
	dsv32_backend_free(be, &dw);
	dsv32_tensor_free(&x);
	dsv32_tensor_free(&y8);
	dsv32_tensor_free(&s);
	dsv32_tensor_free(&w8);
	dsv32_tensor_free(&bad);
	dsv32_tensor_free(&w);
}

#define ALL_TESTS                                                      \
	cmocka_unit_test(test_act_quant_scales_and_codes_are_exact),      \
	cmocka_unit_test(test_act_quant_zero_block_gets_clamped_scale),   \
	cmocka_unit_test(test_act_quant_amax_448_pow2_gives_exact_scale), \
	cmocka_unit_test(test_quant_elem_saturates),                      \
	cmocka_unit_test(test_fp8_roundtrip_is_dequantized_codes),        \
	cmocka_unit_test(test_weight_dequant_is_exact_with_pow2_scales),  \
	cmocka_unit_test(test_weight_dequant_matches_formula_bitwise),    \
	cmocka_unit_test(test_dequant_gemm_is_dequant_then_gemm),         \
	cmocka_unit_test(test_dequant_gemm_scratch_errors),               \
	cmocka_unit_test(test_fp8_gemm_equals_dequantized_gemm),          \
	cmocka_unit_test(test_fp8_gemm_matches_block_formula),            \
	cmocka_unit_test(test_linear_fp8_is_act_quant_then_fp8_gemm),     \
	cmocka_unit_test(test_fp8_rejects_bad_arguments)

int main(void)
{
	const struct CMUnitTest tests[] = {ALL_TESTS};
	int rc = cmocka_run_group_tests_name("fp8_cpu", tests, tc_setup_cpu_backend,
					 tc_teardown_backend);
	setenv("DSV32_GEMM_NO_AVX2", "1", 1); /* the portable sgemm paths (gemm_cpu.c) */
	rc |= cmocka_run_group_tests_name("fp8_cpu_portable", tests, tc_setup_cpu_backend,
					 tc_teardown_backend);
	unsetenv("DSV32_GEMM_NO_AVX2");
	rc |= cmocka_run_group_tests_name("fp8_cuda", tests, tc_setup_cuda_backend,
					 tc_teardown_backend);
	return rc;
}
