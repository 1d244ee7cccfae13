/* test_indexer.c: dsv32_fp8_index and dsv32_index_scores_hf against double oracles from
 * docs/spec/ref_layout.md §B.2.3 and docs/spec/hf_layout.md §9 (exact on small integers), cache strides,
 * masks, and the CUDA twin (bit-exact: same summation order). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <cmocka.h>

#include "kernels/indexer.h"
#include "tests/support/test_util.h"
#include "tests/support/test_common.h"

enum { B = 2, S = 3, H = 4, D = 128, T = 5, TC = 9 };

typedef struct {
	dsv32_tensor q8, w, k8, ks, out, qb, kb, wh;
} icase;

/* Small integers (exact in e4m3 and bf16), powers of two for the scales: every fp32 operation
 * of the contract is exact, so the result must equal the double oracle bit for bit. */
static icase make(uint64_t seed, bool ints)
{
	tu_rng r = tu_rng_xorshift64star(seed);
	icase c;
	int64_t qs[4] = {B, S, H, D}, ws[3] = {B, S, H}, ks[3] = {B, TC, D}, ss[2] = {B, TC},
		os[3] = {B, S, T};
	c.q8 = tu_host(DSV32_F8_E4M3, 4, qs);
	c.qb = tu_host(DSV32_BF16, 4, qs);
	c.w = tu_host(DSV32_F32, 3, ws);
	c.k8 = tu_host(DSV32_F8_E4M3, 3, ks);
	c.kb = tu_host(DSV32_BF16, 3, ks);
	c.ks = tu_host(DSV32_F32, 2, ss);
	c.out = tu_host(DSV32_F32, 3, os);
	for (int64_t i = 0; i < B * S * H * D; i++) {
		double v = ints ? tu_int(&r, -4, 4) : (tu_uniform(&r) * 2 - 1) * 300;
		tu_set_f32(&c.q8, i, v);
		tu_set_f32(&c.qb, i, ints ? v : v / 300);
	}
	for (int64_t i = 0; i < B * TC * D; i++) {
		double v = ints ? tu_int(&r, -4, 4) : (tu_uniform(&r) * 2 - 1) * 300;
		tu_set_f32(&c.k8, i, v);
		tu_set_f32(&c.kb, i, ints ? v : v / 300);
	}
	for (int64_t i = 0; i < B * S * H; i++)
		tu_set_f32(&c.w, i, ints ? ldexp(tu_int(&r, -3, 3), -tu_int(&r, 0, 4))
				     : tu_uniform(&r) * 2 - 1);
	for (int64_t i = 0; i < B * TC; i++)
		tu_set_f32(&c.ks, i, ldexp(1.0, tu_int(&r, -8, -2)));
	return c;
}

static void drop(icase *c)
{
	dsv32_tensor *ts[] = {&c->q8, &c->w, &c->k8, &c->ks, &c->out, &c->qb, &c->kb};
	for (size_t i = 0; i < sizeof ts / sizeof *ts; i++)
		dsv32_tensor_free(ts[i]);
}

/* Double oracle, with |terms| accumulated for an error bound. */
static double oracle_ref(const icase *c, int b, int i, int t, double *mag)
{
	double acc = 0, m = 0;
	for (int h = 0; h < H; h++) {
		double dot = 0, dm = 0;
		for (int d = 0; d < D; d++) {
			double p = tu_get(&c->q8, ((int64_t)(b * S + i) * H + h) * D + d) *
				   tu_get(&c->k8, ((int64_t)b * TC + t) * D + d);
			dot += p;
			dm += fabs(p);
		}
		double wv = tu_get(&c->w, (int64_t)(b * S + i) * H + h);
		acc += (dot > 0 ? dot : 0) * wv;
		m += dm * fabs(wv);
	}
	double s = tu_get(&c->ks, (int64_t)b * TC + t);
	*mag = m * s;
	return acc * s;
}

static double oracle_hf(const icase *c, double scale, int b, int i, int t, double *mag)
{
	double acc = 0, m = 0;
	for (int h = 0; h < H; h++) {
		double dot = 0, dm = 0;
		for (int d = 0; d < D; d++) {
			double p = tu_get(&c->qb, ((int64_t)(b * S + i) * H + h) * D + d) *
				   tu_get(&c->kb, ((int64_t)b * TC + t) * D + d);
			dot += p;
			dm += fabs(p);
		}
		double sc = dot * scale, wv = tu_get(&c->w, (int64_t)(b * S + i) * H + h);
		acc += wv * (sc > 0 ? sc : 0);
		m += fabs(wv) * dm * scale;
	}
	*mag = m;
	return acc;
}

static void check(const icase *c, bool hf, double scale, bool exact, const float *mask)
{
	for (int b = 0; b < B; b++)
		for (int i = 0; i < S; i++)
			for (int t = 0; t < T; t++) {
				double mag, want = hf ? oracle_hf(c, scale, b, i, t, &mag)
						      : oracle_ref(c, b, i, t, &mag);
				if (mask)
					want += mask[i * T + t];
				float got = ((float *)c->out.data)[(b * S + i) * T + t];
				/* fp32 sums of D then H terms: each partial sum rounds by <= 2^-24 */
				double tol = exact ? 0 : (D + H + 3) * 0x1p-24 * mag;
				if (!(fabs(got - want) <= tol) && !(isinf(want) && got == want))
					fail_msg("%s b%d i%d t%d: %.9g, expected %.9g (tol %.3g)",
						 hf ? "index_hf" : "fp8_index", b, i, t, got, want, tol);
			}
}

static void test_fp8_index_is_exact_on_small_integers_with_cache_stride(void **state)
{
	icase c = make(1, true);
	dsv32_error e;
	assert_int_equal(dsv32_fp8_index(*state, &c.out, &c.q8, &c.w, &c.k8, &c.ks, NULL, &e), DSV32_OK);
	check(&c, false, 0, true, NULL);
	/* at least one score is exactly +0 (all heads ReLU'd) or positive: sanity of the data */
	drop(&c);
}

static void test_fp8_index_random_within_fp32_bound_and_mask(void **state)
{
	icase c = make(2, false);
	float mk[S * T];
	for (int i = 0; i < S; i++)
		for (int t = 0; t < T; t++)
			mk[i * T + t] = t > i + 2 ? -INFINITY : 0.0f; /* causal-like */
	int64_t ms[2] = {S, T};
	dsv32_tensor mask = dsv32_tensor_view(mk, DSV32_F32, 2, ms);
	assert_int_equal(dsv32_fp8_index(*state, &c.out, &c.q8, &c.w, &c.k8, &c.ks, &mask, NULL),
			 DSV32_OK);
	check(&c, false, 0, false, mk);
	drop(&c);
}

static void test_index_scores_hf_matches_oracle(void **state)
{
	icase c = make(3, true);
	assert_int_equal(dsv32_index_scores_hf(*state, &c.out, &c.qb, &c.kb, &c.w, 0.125f, NULL, NULL),
			 DSV32_OK);
	check(&c, true, 0.125, true, NULL);
	drop(&c);
	c = make(4, false);
	const float sc = 0.0883883476f;
	assert_int_equal(dsv32_index_scores_hf(*state, &c.out, &c.qb, &c.kb, &c.w, sc, NULL, NULL),
			 DSV32_OK);
	check(&c, true, sc, false, NULL);
	drop(&c);
}

static void test_indexer_rejects_short_cache(void **state)
{
	icase c = make(5, true);
	int64_t ks[3] = {B, T - 1, D};
	dsv32_tensor k8 = dsv32_tensor_view(c.k8.data, DSV32_F8_E4M3, 3, ks);
	dsv32_error e;
	assert_int_equal(dsv32_fp8_index(*state, &c.out, &c.q8, &c.w, &k8, &c.ks, NULL, &e),
			 DSV32_E_SHAPE);
	drop(&c);
}

static void test_indexer_cuda_twin_is_bit_exact(void **state)
{
	dsv32_backend *g = tc_cuda_backend_or_null();
	if (!g)
		skip();
	icase c = make(6, false);
	dsv32_tensor want = tu_host(DSV32_F32, 3, c.out.shape);
	for (int hf = 0; hf < 2; hf++) {
		if (hf)
			assert_int_equal(dsv32_index_scores_hf(*state, &want, &c.qb, &c.kb, &c.w, 0.0883883476f,
							       NULL, NULL), DSV32_OK);
		else
			assert_int_equal(dsv32_fp8_index(*state, &want, &c.q8, &c.w, &c.k8, &c.ks, NULL, NULL),
					 DSV32_OK);
		dsv32_tensor q8 = tu_to_dev(g, &c.q8), w = tu_to_dev(g, &c.w), k8 = tu_to_dev(g, &c.k8),
			     ks = tu_to_dev(g, &c.ks), qb = tu_to_dev(g, &c.qb), kb = tu_to_dev(g, &c.kb),
			     out = tu_to_dev(g, &c.out);
		dsv32_error e;
		if (hf)
			assert_int_equal(dsv32_index_scores_hf(g, &out, &qb, &kb, &w, 0.0883883476f, NULL, &e),
					 DSV32_OK);
		else
			assert_int_equal(dsv32_fp8_index(g, &out, &q8, &w, &k8, &ks, NULL, &e), DSV32_OK);
		tu_download(g, &c.out, &out);
		assert_memory_equal(c.out.data, want.data, dsv32_tensor_nbytes(&want));
		dsv32_tensor *ds[] = {&q8, &w, &k8, &ks, &qb, &kb, &out};
		for (size_t i = 0; i < 7; i++)
			dsv32_backend_free(g, ds[i]);
	}
	dsv32_tensor_free(&want);
	drop(&c);
	dsv32_backend_destroy(g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fp8_index_is_exact_on_small_integers_with_cache_stride),
		cmocka_unit_test(test_fp8_index_random_within_fp32_bound_and_mask),
		cmocka_unit_test(test_index_scores_hf_matches_oracle),
		cmocka_unit_test(test_indexer_rejects_short_cache),
		cmocka_unit_test(test_indexer_cuda_twin_is_bit_exact),
	};
	return cmocka_run_group_tests(tests, tc_setup_cpu_backend, tc_teardown_backend);
}
