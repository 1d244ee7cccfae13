/* test_vec_scores.c: the vector CPU bodies of the index scores (kernels/indexer_avx2.c) and the
 * attention cores (kernels/attention_avx2.c) against their scalar bodies, on >= 100,000 random
 * cases each: every output element must have the same bits, except that a NaN may match any
 * NaN (docs/numerics.md "NaN"). Cases use odd sizes around the vector and tile edges (tails of
 * 1..15 keys, 1..3 heads past a group of 4, short rows), cache strides larger than T, every
 * e4m3 code (±0, subnormals, NaN codes), inputs with ±0, ±inf, f32 subnormals, NaN and huge
 * values, and masks with -inf / finfo.min entries. On a CPU without AVX2 the vector bodies are
 * not run and the test says so (the scalar bodies are still checked against the elem math). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <omp.h>

#include "tests/support/test_util.h"
#include "kernels/attention_impl.h"
#include "kernels/indexer_impl.h"
#include "kernels/scores_simd.h"

#define CASES 100000

static float bits_f32(uint32_t u)
{
	float f;
	memcpy(&f, &u, 4);
	return f;
}

static uint32_t f32_bits(float f)
{
	uint32_t u;
	memcpy(&u, &f, 4);
	return u;
}

static float special(tu_rng *r)
{
	uint32_t sign = (uint32_t)(tu_u64(r) & 1) << 31;
	switch (tu_u64(r) % 6) {
	case 0: return bits_f32(0x7f800000u | sign);                              /* ±inf */
	case 1: return bits_f32(sign);                                            /* ±0 */
	case 2: return bits_f32(sign | (uint32_t)(tu_u64(r) % 0x7fffffu + 1)); /* subnormal */
	case 3: return sign ? -3.0e38f : 3.0e38f;                                 /* overflows */
	case 4: return bits_f32(0x7fc00000u | sign | (uint32_t)(tu_u64(r) & 0x3fffff));
	default: return (float)((tu_uniform(r) - 0.5) * 1e-39);
	}
}

/* One value: mostly normal at the case's scale, some specials (rate 0, 1/64 or 1/4). */
static float value(tu_rng *r, double scale, int spec)
{
	if (spec && tu_u64(r) % (spec == 1 ? 64 : 4) == 0)
		return special(r);
	return (float)((tu_uniform(r) * 2.0 - 1.0) * scale);
}

static void fill_t(tu_rng *r, void *p, dsv32_dtype t, int64_t n, double scale, int spec)
{
	for (int64_t i = 0; i < n; i++) {
		float v = value(r, scale, spec);
		if (t == DSV32_BF16)
			((dsv32_bf16 *)p)[i] = dsv32_f32_to_bf16(v);
		else
			((float *)p)[i] = v;
	}
}

/* Mask entries: 0, -inf (or finfo.min when hf_min), a random value, rarely NaN. */
static void fill_mask(tu_rng *r, void *p, dsv32_dtype t, int64_t n, bool hf_min)
{
	for (int64_t i = 0; i < n; i++) {
		uint64_t u = tu_u64(r) % 16;
		float v = u < 8 ? 0.0f : u < 13 ? (hf_min ? -3.40282346638528859812e+38f : -INFINITY)
			: u < 15 ? value(r, 4.0, 0) : bits_f32(0x7fc00000u);
		if (t == DSV32_BF16)
			((dsv32_bf16 *)p)[i] = dsv32_f32_to_bf16(v);
		else
			((float *)p)[i] = v;
	}
}

static bool same_f32(float a, float b)
{
	return f32_bits(a) == f32_bits(b) || (a != a && b != b);
}

static int64_t pick(tu_rng *r, int64_t max, const int64_t *edges, int nedges)
{
	if (tu_u64(r) % 3 == 0)
		return edges[tu_u64(r) % (uint64_t)nedges];
	return 1 + (int64_t)(tu_u64(r) % (uint64_t)max);
}

static double pick_scale(tu_rng *r)
{
	return ldexp(1.0, (int)(tu_u64(r) % 24) - 12);
}

static void check_out(const char *what, const float *want, const float *got, int64_t n,
		      long long c)
{
	for (int64_t e = 0; e < n; e++)
		if (!same_f32(want[e], got[e]))
			fail_msg("%s case %lld: out[%lld] want %a (0x%08x) got %a (0x%08x)", what, c,
				 (long long)e, (double)want[e], f32_bits(want[e]), (double)got[e],
				 f32_bits(got[e]));
}

static const int64_t T_EDGES[] = {1, 7, 8, 9, 15, 16, 17, 31, 32, 33, 47, 48};
static const int64_t H_EDGES[] = {1, 3, 4, 5, 7, 8, 9};
static const int64_t D_EDGES[] = {1, 2, 7, 8, 16, 64, 128};

static void test_e4m3_table_matches_decoder(void **state)
{
	(void)state;
	float lut[256];
	dsv32_e4m3_table(lut);
	for (int c = 0; c < 256; c++) {
		float want = dsv32_e4m3_to_f32((dsv32_f8)c);
		if (!same_f32(want, lut[c]) || (want == want && f32_bits(want) != f32_bits(lut[c])))
			fail_msg("e4m3 code 0x%02x: table %a, decoder %a", c, (double)lut[c],
				 (double)want);
	}
}

static void test_fp8_index_vector_matches_scalar(void **state)
{
	(void)state;
	tu_rng r = tu_rng_xorshift64(0x9e3779b97f4a7c15ull);
	const bool vec = dsv32_scores_vec_enabled();
	if (!vec)
		print_message("no AVX2 (or DSV32_CPU_NO_AVX2): vector body not run\n");
	long long outs = 0;
	for (long long c = 0; c < CASES; c++) {
		int64_t B = 1 + (int64_t)(tu_u64(&r) % 2), S = 1 + (int64_t)(tu_u64(&r) % 3);
		int64_t T = pick(&r, 40, T_EDGES, 12), H = pick(&r, 9, H_EDGES, 7);
		int64_t D = c % 500 == 0 ? 128 : pick(&r, 20, D_EDGES, 5);
		int64_t Tc = T + (int64_t)(tu_u64(&r) % 3), Tcs = T + (int64_t)(tu_u64(&r) % 3);
		int spec = (int)(tu_u64(&r) % 3);
		int mk = (int)(tu_u64(&r) % 4); /* 0 none, 1 [S,T] f32, 2 [B,S,T] f32, 3 bf16 */
		dsv32_f8 *q8 = malloc((size_t)(B * S * H * D)), *k8 = malloc((size_t)(B * Tc * D));
		float *w = malloc((size_t)(B * S * H) * 4), *ks = malloc((size_t)(B * Tcs) * 4);
		float *want = malloc((size_t)(B * S * T) * 4), *got = malloc((size_t)(B * S * T) * 4);
		void *mask = malloc((size_t)(B * S * T) * 4);
		for (int64_t i = 0; i < B * S * H * D; i++)
			q8[i] = (dsv32_f8)(spec ? tu_u64(&r) : tu_u64(&r) % 0x7e);
		for (int64_t i = 0; i < B * Tc * D; i++)
			k8[i] = (dsv32_f8)(spec ? tu_u64(&r) : tu_u64(&r) % 0x7e);
		double sc = pick_scale(&r);
		fill_t(&r, w, DSV32_F32, B * S * H, sc, spec);
		fill_t(&r, ks, DSV32_F32, B * Tcs, sc, spec);
		dsv32_idx_fp8_args a = {.out = want, .q8 = q8, .w = w, .k8 = k8, .k_s = ks,
					.B = B, .S = S, .T = T, .H = H, .D = D, .Tc = Tc, .Tcs = Tcs};
		if (mk) {
			a.mask.data = mask;
			a.mask.dtype = mk == 3 ? DSV32_BF16 : DSV32_F32;
			a.mask.batch_stride = mk == 1 ? 0 : S * T;
			fill_mask(&r, mask, a.mask.dtype, B * S * T, false);
		}
		for (int64_t e = 0; e < B * S * T; e++) /* the oracle: the header's elem math */
			want[e] = dsv32_fp8_index_elem(&a, e / T / S, e / T % S, e % T);
		a.out = got;
		dsv32_fp8_index_cpu_scalar(&a);
		check_out("fp8_index scalar", want, got, B * S * T, c);
		if (vec) {
			memset(got, 0xff, (size_t)(B * S * T) * 4);
			omp_set_num_threads(c % 1000 == 0 ? 2 : 1);
			dsv32_fp8_index_avx2(&a);
			check_out("fp8_index avx2", want, got, B * S * T, c);
		}
		outs += B * S * T;
		free(q8), free(k8), free(w), free(ks), free(want), free(got), free(mask);
	}
	print_message("fp8_index: %d cases, %lld outputs, identical bits\n", CASES, outs);
}

static void test_index_scores_hf_vector_matches_scalar(void **state)
{
	(void)state;
	tu_rng r = tu_rng_xorshift64(0x2545f4914f6cdd1dull);
	const bool vec = dsv32_scores_vec_enabled();
	long long outs = 0;
	for (long long c = 0; c < CASES; c++) {
		int64_t B = 1 + (int64_t)(tu_u64(&r) % 2), S = 1 + (int64_t)(tu_u64(&r) % 3);
		int64_t T = pick(&r, 40, T_EDGES, 12), H = pick(&r, 9, H_EDGES, 7);
		int64_t D = c % 500 == 0 ? 128 : pick(&r, 20, D_EDGES, 5);
		int64_t Tc = T + (int64_t)(tu_u64(&r) % 3);
		dsv32_dtype qt = tu_u64(&r) & 1 ? DSV32_BF16 : DSV32_F32;
		dsv32_dtype kt = tu_u64(&r) & 1 ? DSV32_BF16 : DSV32_F32;
		int spec = (int)(tu_u64(&r) % 3);
		int mk = (int)(tu_u64(&r) % 4);
		void *q = malloc((size_t)(B * S * H * D) * 4), *k = malloc((size_t)(B * Tc * D) * 4);
		float *w = malloc((size_t)(B * S * H) * 4);
		float *want = malloc((size_t)(B * S * T) * 4), *got = malloc((size_t)(B * S * T) * 4);
		void *mask = malloc((size_t)(B * S * T) * 4);
		double sc = pick_scale(&r);
		fill_t(&r, q, qt, B * S * H * D, sc, spec);
		fill_t(&r, k, kt, B * Tc * D, pick_scale(&r), spec);
		fill_t(&r, w, DSV32_F32, B * S * H, 1.0, spec);
		float scale = tu_u64(&r) % 8 == 0 ? special(&r) : (float)tu_uniform(&r);
		dsv32_idx_hf_args a = {.out = want, .q = q, .q_t = qt, .k = k, .k_t = kt, .w = w,
				       .scale = scale, .B = B, .S = S, .T = T, .H = H, .D = D,
				       .Tc = Tc};
		if (mk) {
			a.mask.data = mask;
			a.mask.dtype = mk == 3 ? DSV32_BF16 : DSV32_F32;
			a.mask.batch_stride = mk == 1 ? 0 : S * T;
			fill_mask(&r, mask, a.mask.dtype, B * S * T, tu_u64(&r) & 1);
		}
		for (int64_t e = 0; e < B * S * T; e++)
			want[e] = dsv32_index_hf_elem(&a, e / T / S, e / T % S, e % T);
		a.out = got;
		dsv32_index_scores_hf_cpu_scalar(&a);
		check_out("index_scores_hf scalar", want, got, B * S * T, c);
		if (vec) {
			memset(got, 0xff, (size_t)(B * S * T) * 4);
			omp_set_num_threads(c % 1000 == 0 ? 2 : 1);
			dsv32_index_scores_hf_avx2(&a);
			check_out("index_scores_hf avx2", want, got, B * S * T, c);
		}
		outs += B * S * T;
		free(q), free(k), free(w), free(want), free(got), free(mask);
	}
	print_message("index_scores_hf: %d cases, %lld outputs, identical bits\n", CASES, outs);
}

static bool same_at(const void *x, const void *y, dsv32_dtype t, int64_t i)
{
	if (t == DSV32_BF16) {
		uint16_t u = ((const uint16_t *)x)[i], v = ((const uint16_t *)y)[i];
		bool nu = (u & 0x7f80u) == 0x7f80u && (u & 0x7fu), nv = (v & 0x7f80u) == 0x7f80u && (v & 0x7fu);
		return u == v || (nu && nv);
	}
	return same_f32(((const float *)x)[i], ((const float *)y)[i]);
}

static void check_t(const char *what, const void *want, const void *got, dsv32_dtype t, int64_t n,
		    long long c)
{
	for (int64_t e = 0; e < n; e++)
		if (!same_at(want, got, t, e)) {
			float w = t == DSV32_BF16 ? dsv32_bf16_to_f32(((const uint16_t *)want)[e])
						  : ((const float *)want)[e];
			float g = t == DSV32_BF16 ? dsv32_bf16_to_f32(((const uint16_t *)got)[e])
						  : ((const float *)got)[e];
			fail_msg("%s case %lld: out[%lld] of %lld want %a got %a", what, c, (long long)e,
				 (long long)n, (double)w, (double)g);
		}
}

static dsv32_dtype pick_dt(tu_rng *r)
{
	return tu_u64(r) & 1 ? DSV32_BF16 : DSV32_F32;
}

static const int64_t S_EDGES[] = {1, 3, 4, 5, 15, 16, 17, 33};
static const int64_t DV_EDGES[] = {1, 7, 8, 15, 16, 17, 32, 64};

static void test_attn_prefill_vector_matches_scalar(void **state)
{
	(void)state;
	tu_rng r = tu_rng_xorshift64(0xd1b54a32d192ed03ull);
	const bool vec = dsv32_scores_vec_enabled();
	long long outs = 0;
	for (long long c = 0; c < CASES; c++) {
		int64_t B = 1 + (int64_t)(tu_u64(&r) % 2), S = pick(&r, 20, S_EDGES, 8);
		int64_t T = pick(&r, 24, T_EDGES, 12), H = 1 + (int64_t)(tu_u64(&r) % 3);
		int64_t Dqk = c % 500 == 0 ? 128 : pick(&r, 20, D_EDGES, 5);
		int64_t Dv = pick(&r, 24, DV_EDGES, 8);
		if (tu_u64(&r) % 2) /* a causal prefill has S <= T */
			S = S < T ? S : T;
		dsv32_dtype qt = pick_dt(&r), kt = pick_dt(&r), vt = pick_dt(&r), ot = pick_dt(&r);
		int spec = (int)(tu_u64(&r) % 3), mk = (int)(tu_u64(&r) % 4);
		void *q = malloc((size_t)(B * S * H * Dqk) * 4), *k = malloc((size_t)(B * T * H * Dqk) * 4);
		void *v = malloc((size_t)(B * T * H * Dv) * 4), *mask = malloc((size_t)(B * S * T) * 4);
		void *want = malloc((size_t)(B * S * H * Dv) * 4), *got = malloc((size_t)(B * S * H * Dv) * 4);
		double sc = pick_scale(&r);
		fill_t(&r, q, qt, B * S * H * Dqk, sc, spec);
		fill_t(&r, k, kt, B * T * H * Dqk, pick_scale(&r), spec);
		fill_t(&r, v, vt, B * T * H * Dv, pick_scale(&r), spec);
		dsv32_attn_prefill_args a = {.o = want, .o_t = ot, .q = q, .k = k, .v = v, .q_t = qt,
					     .k_t = kt, .v_t = vt, .B = B, .S = S, .T = T, .H = H,
					     .Dqk = Dqk, .Dv = Dv,
					     .layout = tu_u64(&r) & 1 ? DSV32_ATTN_BHSD : DSV32_ATTN_BSHD,
					     .scale = tu_u64(&r) % 16 == 0 ? special(&r) : (float)tu_uniform(&r)};
		if (mk) {
			a.mask.data = mask;
			a.mask.dtype = mk == 3 ? DSV32_BF16 : DSV32_F32;
			a.mask.batch_stride = mk == 1 ? 0 : S * T;
			fill_mask(&r, mask, a.mask.dtype, B * S * T, tu_u64(&r) & 1);
		}
		assert_int_equal(dsv32_attn_prefill_cpu_scalar(&a, NULL), DSV32_OK);
		if (vec) {
			a.o = got;
			memset(got, 0xff, (size_t)(B * S * H * Dv) * 4);
			omp_set_num_threads(c % 1000 == 0 ? 2 : 1);
			assert_int_equal(dsv32_attn_prefill_avx2(&a), 0);
			check_t("attn_prefill avx2", want, got, ot, B * S * H * Dv, c);
		}
		outs += B * S * H * Dv;
		free(q), free(k), free(v), free(mask), free(want), free(got);
	}
	print_message("attn_prefill: %d cases, %lld outputs, identical bits\n", CASES, outs);
}

static const int64_t C_EDGES[] = {1, 7, 8, 9, 16, 31, 32, 33, 64};

static void test_attn_decode_vector_matches_scalar(void **state)
{
	(void)state;
	tu_rng r = tu_rng_xorshift64(0x8cb92ba72f3d8dd7ull);
	const bool vec = dsv32_scores_vec_enabled();
	long long outs = 0;
	for (long long c = 0; c < CASES; c++) {
		int64_t B = 1 + (int64_t)(tu_u64(&r) % 6), H = pick(&r, 9, H_EDGES, 7);
		int64_t T = pick(&r, 40, T_EDGES, 12), C = pick(&r, 40, C_EDGES, 9);
		int64_t R = pick(&r, 12, D_EDGES, 4), Dn = pick(&r, 12, D_EDGES, 4);
		int64_t Dv = pick(&r, 20, DV_EDGES, 8);
		if (c % 500 == 0)
			C = 256, R = 64, Dn = 64, Dv = 64;
		int64_t Tck = T + (int64_t)(tu_u64(&r) % 3), Tcp = T + (int64_t)(tu_u64(&r) % 3);
		dsv32_dtype qnt = pick_dt(&r), qpt = pick_dt(&r), wt = pick_dt(&r), kvt = pick_dt(&r);
		dsv32_dtype pet = pick_dt(&r), ot = pick_dt(&r);
		int spec = (int)(tu_u64(&r) % 3), mk = (int)(tu_u64(&r) % 3);
		void *qn = malloc((size_t)(B * H * Dn) * 4), *qp = malloc((size_t)(B * H * R) * 4);
		void *w = malloc((size_t)(H * (Dn + Dv) * C) * 4), *kv = malloc((size_t)(B * Tck * C) * 4);
		void *pe = malloc((size_t)(B * Tcp * R) * 4), *mask = malloc((size_t)(B * T) * 4);
		void *want = malloc((size_t)(B * H * Dv) * 4), *got = malloc((size_t)(B * H * Dv) * 4);
		fill_t(&r, qn, qnt, B * H * Dn, pick_scale(&r), spec);
		fill_t(&r, qp, qpt, B * H * R, pick_scale(&r), spec);
		fill_t(&r, w, wt, H * (Dn + Dv) * C, pick_scale(&r), spec);
		fill_t(&r, kv, kvt, B * Tck * C, pick_scale(&r), spec);
		fill_t(&r, pe, pet, B * Tcp * R, pick_scale(&r), spec);
		dsv32_attn_decode_args a = {.o = want, .o_t = ot, .qn = qn, .qp = qp, .w = w, .kv = kv,
					    .pe = pe, .qn_t = qnt, .qp_t = qpt, .w_t = wt, .kv_t = kvt,
					    .pe_t = pet, .B = B, .H = H, .Dn = Dn, .Dv = Dv, .R = R,
					    .C = C, .T = T, .Tc_kv = Tck, .Tc_pe = Tcp,
					    .scale = tu_u64(&r) % 16 == 0 ? special(&r) : (float)tu_uniform(&r)};
		if (mk) {
			a.mask.data = mask;
			a.mask.dtype = mk == 2 ? DSV32_BF16 : DSV32_F32;
			a.mask.batch_stride = T;
			fill_mask(&r, mask, a.mask.dtype, B * T, false);
		}
		assert_int_equal(dsv32_attn_decode_cpu_scalar(&a, NULL), DSV32_OK);
		if (vec) {
			a.o = got;
			memset(got, 0xff, (size_t)(B * H * Dv) * 4);
			omp_set_num_threads(c % 1000 == 0 ? 2 : 1);
			assert_int_equal(dsv32_attn_decode_avx2(&a), 0);
			check_t("attn_decode_absorbed avx2", want, got, ot, B * H * Dv, c);
		}
		outs += B * H * Dv;
		free(qn), free(qp), free(w), free(kv), free(pe), free(mask), free(want), free(got);
	}
	print_message("attn_decode_absorbed: %d cases, %lld outputs, identical bits\n", CASES, outs);
}

static void test_comparison_detects_one_ulp(void **state)
{
	(void)state;
	assert_true(same_f32(bits_f32(0x7fc00001u), bits_f32(0xffc12345u)));
	assert_false(same_f32(1.0f, nextafterf(1.0f, 2.0f)));
	assert_false(same_f32(0.0f, -0.0f));
}

int main(void)
{
	omp_set_num_threads(1); /* tiny calls: 2 spinning threads on a shared machine cost minutes */
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_comparison_detects_one_ulp),
		cmocka_unit_test(test_e4m3_table_matches_decoder),
		cmocka_unit_test(test_fp8_index_vector_matches_scalar),
		cmocka_unit_test(test_index_scores_hf_vector_matches_scalar),
		cmocka_unit_test(test_attn_prefill_vector_matches_scalar),
		cmocka_unit_test(test_attn_decode_vector_matches_scalar),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
