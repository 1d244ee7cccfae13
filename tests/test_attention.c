/* test_attention.c: attention cores and mask builders against double oracles applying the
 * contract's rounding points (reference_layout.md §A.8, hf_layout.md §4.2), exactness of the
 * sparse mask, fully masked rows, layouts, cache strides, and the CUDA twin. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <cmocka.h>
#include <float.h>
#include <string.h>

#include "kernels/attention.h"
#include "tests/support/k3_util.h"
#include "tests/support/test_common.h"

static const float SCALE = 0.19124945f; /* the golden tiny model's fp32 softmax_scale */

static double rb(double x, bool r) /* contract rounding point: fp32 op result, then bf16 */
{
	return r ? dsv32_round_bf16((float)x) : x;
}

/* Multiples of 1/8 in [-1, 1]: bf16-exact, and every dot product of <= 64 terms is exact in
 * fp32, so the only inexact steps are the ones the contract names. */
static void fill8(dsv32_tensor *t, k3_rng *r)
{
	for (int64_t i = 0; i < dsv32_tensor_numel(t); i++)
		k3_set(t, i, k3_randint(r, -8, 8) / 8.0);
}

static void softmax_oracle(double *a, int n, bool r)
{
	double m = -INFINITY, Z = 0;
	for (int t = 0; t < n; t++)
		m = a[t] > m ? a[t] : m;
	for (int t = 0; t < n; t++)
		Z += exp(a[t] - m);
	for (int t = 0; t < n; t++)
		a[t] = rb(exp(a[t] - m) / Z, r);
}

enum { B = 2, S = 6, H = 3, DQ = 16, DV = 8 };

static void prefill_oracle(const dsv32_tensor *q, const dsv32_tensor *k, const dsv32_tensor *v,
			   const dsv32_tensor *mask, bool r, double *o)
{
	const int T = S;
	for (int b = 0; b < B; b++)
		for (int s = 0; s < S; s++)
			for (int h = 0; h < H; h++) {
				double a[S];
				for (int t = 0; t < T; t++) {
					double dot = 0;
					for (int d = 0; d < DQ; d++)
						dot += k3_get(q, ((b * S + s) * H + h) * DQ + d) *
						       k3_get(k, ((b * T + t) * H + h) * DQ + d);
					double x = rb(rb(dot, r) * (double)SCALE, r);
					a[t] = rb(x + (mask ? k3_get(mask, (b * S + s) * T + t) : 0), r);
				}
				softmax_oracle(a, T, r);
				for (int d = 0; d < DV; d++) {
					double acc = 0;
					for (int t = 0; t < T; t++)
						acc += a[t] * k3_get(v, ((b * T + t) * H + h) * DV + d);
					o[((b * S + s) * H + h) * DV + d] = rb(acc, r);
				}
			}
}

typedef struct { dsv32_tensor q, k, v, o, idx, mask; } pcase;

static pcase pmake(dsv32_dtype ot, uint64_t seed, int K)
{
	k3_rng r = {seed};
	int64_t qs[4] = {B, S, H, DQ}, vs[4] = {B, S, H, DV}, is[3] = {B, S, K}, ms[3] = {B, S, S};
	pcase c = {k3_host(ot, 4, qs), k3_host(ot, 4, qs), k3_host(ot, 4, vs), k3_host(ot, 4, vs),
		   k3_host(DSV32_I64, 3, is), k3_host(ot, 3, ms)};
	for (int64_t i = 0; i < dsv32_tensor_numel(&c.q); i++) { /* full bf16 mantissas */
		k3_set(&c.q, i, (k3_uniform(&r) * 2 - 1) * 3);
		k3_set(&c.k, i, (k3_uniform(&r) * 2 - 1) * 3);
	}
	fill8(&c.v, &r);
	for (int row = 0; row < B * S; row++) { /* K distinct positions per row, some in the future */
		int perm[S];
		for (int t = 0; t < S; t++)
			perm[t] = t;
		for (int t = S - 1; t > 0; t--) {
			int j = k3_randint(&r, 0, t), x = perm[t];
			perm[t] = perm[j];
			perm[j] = x;
		}
		for (int j = 0; j < K; j++)
			((int64_t *)c.idx.data)[row * K + j] = perm[j];
		((int64_t *)c.idx.data)[row * K] = row % S; /* the diagonal is always selected */
		for (int j = 1; j < K; j++)
			if (((int64_t *)c.idx.data)[row * K + j] == row % S)
				((int64_t *)c.idx.data)[row * K + j] = perm[0];
	}
	return c;
}

static void pdrop(pcase *c)
{
	dsv32_tensor *ts[] = {&c->q, &c->k, &c->v, &c->o, &c->idx, &c->mask};
	for (int i = 0; i < 6; i++)
		dsv32_tensor_free(ts[i]);
}

static void test_attn_prefill_matches_oracle_bf16_and_f32(void **state)
{
	for (int f = 0; f < 2; f++) {
		dsv32_dtype ot = f ? DSV32_F32 : DSV32_BF16;
		pcase c = pmake(ot, 10 + f, 4);
		dsv32_error e;
		assert_int_equal(dsv32_attn_mask_ref(*state, &c.mask, &c.idx, 0, &e), DSV32_OK);
		assert_int_equal(dsv32_attn_prefill(*state, &c.o, &c.q, &c.k, &c.v, &c.mask, SCALE,
						    DSV32_ATTN_BSHD, &e), DSV32_OK);
		double *want = malloc(sizeof(double) * B * S * H * DV);
		prefill_oracle(&c.q, &c.k, &c.v, &c.mask, !f, want);
		int exact = 0;
		for (int i = 0; i < B * S * H * DV; i++) {
			float got = (float)k3_get(&c.o, i);
			exact += f || got == (float)want[i];
			if (!f) { /* expf vs exp and the fp32 Z may flip p's bf16 rounding: <= 2 ulps */
				if (k3_bf16_ulps(got, (float)want[i]) > 2)
					fail_msg("prefill bf16 o[%d] = %g, expected %g", i, got, want[i]);
			} else if (fabs(got - want[i]) > 1e-6 * (1 + fabs(want[i]))) {
				fail_msg("prefill f32 o[%d] = %.9g, expected %.9g", i, got, want[i]);
			}
		}
		/* such flips are rare: at least 90 % of the outputs are bit-exact */
		assert_true(exact * 10 >= 9 * B * S * H * DV);
		free(want);
		pdrop(&c);
	}
}

/* Masked keys get p = +0 exactly: the output equals attention over the selected, causally
 * visible keys only (same order), bit for bit. */
static void test_attn_sparse_mask_equals_compacted_keys(void **state)
{
	pcase c = pmake(DSV32_BF16, 20, 3);
	assert_int_equal(dsv32_attn_mask_ref(*state, &c.mask, &c.idx, 0, NULL), DSV32_OK);
	assert_int_equal(dsv32_attn_prefill(*state, &c.o, &c.q, &c.k, &c.v, &c.mask, SCALE,
					    DSV32_ATTN_BSHD, NULL), DSV32_OK);
	for (int b = 0; b < B; b++)
		for (int s = 0; s < S; s++) {
			int sel[S], n = 0;
			for (int t = 0; t < S; t++)
				if (k3_get(&c.mask, (b * S + s) * S + t) == 0.0)
					sel[n++] = t;
			assert_true(n >= 1);
			int64_t q1s[4] = {1, 1, H, DQ}, k1s[4] = {1, n, H, DQ}, v1s[4] = {1, n, H, DV},
				o1s[4] = {1, 1, H, DV};
			dsv32_tensor q1 = k3_host(DSV32_BF16, 4, q1s), k1 = k3_host(DSV32_BF16, 4, k1s),
				     v1 = k3_host(DSV32_BF16, 4, v1s), o1 = k3_host(DSV32_BF16, 4, o1s);
			memcpy(q1.data, (dsv32_bf16 *)c.q.data + (b * S + s) * H * DQ, 2 * H * DQ);
			for (int j = 0; j < n; j++) {
				memcpy((dsv32_bf16 *)k1.data + j * H * DQ,
				       (dsv32_bf16 *)c.k.data + (b * S + sel[j]) * H * DQ, 2 * H * DQ);
				memcpy((dsv32_bf16 *)v1.data + j * H * DV,
				       (dsv32_bf16 *)c.v.data + (b * S + sel[j]) * H * DV, 2 * H * DV);
			}
			assert_int_equal(dsv32_attn_prefill(*state, &o1, &q1, &k1, &v1, NULL, SCALE,
							    DSV32_ATTN_BSHD, NULL), DSV32_OK);
			assert_memory_equal(o1.data, (dsv32_bf16 *)c.o.data + (b * S + s) * H * DV, 2 * H * DV);
			dsv32_tensor_free(&q1);
			dsv32_tensor_free(&k1);
			dsv32_tensor_free(&v1);
			dsv32_tensor_free(&o1);
		}
	pdrop(&c);
}

static void test_attn_fully_masked_rows_nan_ref_finite_hf(void **state)
{
	pcase c = pmake(DSV32_BF16, 30, 2);
	for (int64_t i = 0; i < B * S * S; i++)
		k3_set(&c.mask, i, -INFINITY);
	assert_int_equal(dsv32_attn_prefill(*state, &c.o, &c.q, &c.k, &c.v, &c.mask, SCALE,
					    DSV32_ATTN_BSHD, NULL), DSV32_OK);
	for (int64_t i = 0; i < B * S * H * DV; i++)
		assert_true(isnan(k3_get(&c.o, i))); /* as PyTorch: exp(-inf - -inf) */
	for (int64_t i = 0; i < B * S * S; i++)
		((dsv32_bf16 *)c.mask.data)[i] = 0xff7fu; /* finfo(bf16).min everywhere */
	assert_int_equal(dsv32_attn_prefill(*state, &c.o, &c.q, &c.k, &c.v, &c.mask, SCALE,
					    DSV32_ATTN_BSHD, NULL), DSV32_OK);
	for (int64_t i = 0; i < B * S * H * DV; i++)
		assert_true(isfinite(k3_get(&c.o, i)));
	pdrop(&c);
}

static void test_attn_mask_builders_exact_values(void **state)
{
	pcase c = pmake(DSV32_BF16, 40, 3);
	assert_int_equal(dsv32_attn_mask_ref(*state, &c.mask, &c.idx, 0, NULL), DSV32_OK);
	int64_t ps[2] = {B, S};
	dsv32_tensor pad = k3_host(DSV32_I64, 2, ps), hm = k3_host(DSV32_F32, 3, c.mask.shape);
	for (int i = 0; i < B * S; i++)
		((int64_t *)pad.data)[i] = !(i / S == 1 && i % S == 0); /* batch 1 pads position 0 */
	assert_int_equal(dsv32_attn_mask_hf(*state, &hm, &c.idx, &pad, 0, NULL), DSV32_OK);
	for (int b = 0; b < B; b++)
		for (int s = 0; s < S; s++)
			for (int t = 0; t < S; t++) {
				bool in = false;
				for (int j = 0; j < 3; j++)
					in |= ((int64_t *)c.idx.data)[(b * S + s) * 3 + j] == t;
				bool vis = in && t <= s;
				double m = k3_get(&c.mask, (b * S + s) * S + t);
				assert_true(vis ? m == 0.0 && !signbit(m) : isinf(m) && m < 0);
				bool hv = vis && !(b == 1 && t == 0);
				float hmv = ((float *)hm.data)[(b * S + s) * S + t];
				assert_true(hv ? hmv == 0.0f : hmv == -FLT_MAX);
			}
	dsv32_tensor_free(&pad);
	dsv32_tensor_free(&hm);
	pdrop(&c);
}

static void test_attn_bhsd_layout_equals_bshd(void **state)
{
	pcase c = pmake(DSV32_BF16, 50, 4);
	assert_int_equal(dsv32_attn_mask_ref(*state, &c.mask, &c.idx, 0, NULL), DSV32_OK);
	assert_int_equal(dsv32_attn_prefill(*state, &c.o, &c.q, &c.k, &c.v, &c.mask, SCALE,
					    DSV32_ATTN_BSHD, NULL), DSV32_OK);
	int64_t qs[4] = {B, H, S, DQ}, vs[4] = {B, H, S, DV};
	dsv32_tensor q = k3_host(DSV32_BF16, 4, qs), k = k3_host(DSV32_BF16, 4, qs),
		     v = k3_host(DSV32_BF16, 4, vs), o = k3_host(DSV32_BF16, 4, c.o.shape);
	for (int b = 0; b < B; b++)
		for (int s = 0; s < S; s++)
			for (int h = 0; h < H; h++) {
				memcpy((dsv32_bf16 *)q.data + ((b * H + h) * S + s) * DQ,
				       (dsv32_bf16 *)c.q.data + ((b * S + s) * H + h) * DQ, 2 * DQ);
				memcpy((dsv32_bf16 *)k.data + ((b * H + h) * S + s) * DQ,
				       (dsv32_bf16 *)c.k.data + ((b * S + s) * H + h) * DQ, 2 * DQ);
				memcpy((dsv32_bf16 *)v.data + ((b * H + h) * S + s) * DV,
				       (dsv32_bf16 *)c.v.data + ((b * S + s) * H + h) * DV, 2 * DV);
			}
	int64_t m4[4] = {B, 1, S, S};
	dsv32_tensor mask4 = dsv32_tensor_view(c.mask.data, DSV32_BF16, 4, m4);
	assert_int_equal(dsv32_attn_prefill(*state, &o, &q, &k, &v, &mask4, SCALE, DSV32_ATTN_BHSD,
					    NULL), DSV32_OK);
	assert_memory_equal(o.data, c.o.data, dsv32_tensor_nbytes(&o));
	dsv32_tensor_free(&q);
	dsv32_tensor_free(&k);
	dsv32_tensor_free(&v);
	dsv32_tensor_free(&o);
	pdrop(&c);
}

enum { DB = 2, DH = 3, DN = 8, DDV = 8, DR = 8, DC = 32, DT = 7, DTC = 10 };

typedef struct { dsv32_tensor qn, qp, w, kv, pe, mask, o; } dcase;

static dcase dmake(dsv32_dtype ot, uint64_t seed)
{
	k3_rng r = {seed};
	int64_t qn[3] = {DB, DH, DN}, qp[3] = {DB, DH, DR}, w[2] = {DH * (DN + DDV), DC},
		kv[3] = {DB, DTC, DC}, pe[3] = {DB, DTC, DR}, m[2] = {DB, DT}, o[3] = {DB, DH, DDV};
	dcase c = {k3_host(ot, 3, qn), k3_host(ot, 3, qp), k3_host(ot, 2, w), k3_host(ot, 3, kv),
		   k3_host(ot, 3, pe), k3_host(ot, 2, m), k3_host(ot, 3, o)};
	fill8(&c.qn, &r);
	fill8(&c.qp, &r);
	fill8(&c.w, &r);
	fill8(&c.kv, &r);
	fill8(&c.pe, &r);
	for (int i = 0; i < DB * DT; i++)
		k3_set(&c.mask, i, i % 3 == 1 ? -INFINITY : 0.0);
	return c;
}

static void test_attn_decode_absorbed_matches_oracle(void **state)
{
	for (int f = 0; f < 2; f++) {
		bool r = !f;
		dcase c = dmake(f ? DSV32_F32 : DSV32_BF16, 60 + f);
		dsv32_error e;
		assert_int_equal(dsv32_attn_decode_absorbed(*state, &c.o, &c.qn, &c.qp, &c.w, &c.kv, &c.pe,
							    DT, &c.mask, SCALE, &e), DSV32_OK);
		for (int b = 0; b < DB; b++)
			for (int h = 0; h < DH; h++) {
				double qa[DC], a[DT], ol[DC];
				for (int cc = 0; cc < DC; cc++) {
					double acc = 0;
					for (int d = 0; d < DN; d++)
						acc += k3_get(&c.qn, (b * DH + h) * DN + d) *
						       k3_get(&c.w, (h * (DN + DDV) + d) * DC + cc);
					qa[cc] = rb(acc, r);
				}
				for (int t = 0; t < DT; t++) {
					double s1 = 0, s2 = 0;
					for (int cc = 0; cc < DC; cc++)
						s1 += qa[cc] * k3_get(&c.kv, (b * DTC + t) * DC + cc);
					for (int i = 0; i < DR; i++)
						s2 += k3_get(&c.qp, (b * DH + h) * DR + i) *
						      k3_get(&c.pe, (b * DTC + t) * DR + i);
					double x = rb(rb(rb(s1, r) + rb(s2, r), r) * (double)SCALE, r);
					a[t] = rb(x + k3_get(&c.mask, b * DT + t), r);
				}
				softmax_oracle(a, DT, r);
				for (int cc = 0; cc < DC; cc++) {
					double acc = 0;
					for (int t = 0; t < DT; t++)
						acc += a[t] * k3_get(&c.kv, (b * DTC + t) * DC + cc);
					ol[cc] = rb(acc, r);
				}
				for (int d = 0; d < DDV; d++) {
					double acc = 0;
					for (int cc = 0; cc < DC; cc++)
						acc += ol[cc] * k3_get(&c.w, (h * (DN + DDV) + DN + d) * DC + cc);
					float got = (float)k3_get(&c.o, (b * DH + h) * DDV + d);
					double want = rb(acc, r);
					/* bf16: p may flip by one ulp (expf, fp32 Z), then ol and o by the
					 * propagated difference: <= 3 ulps; f32: fp32 sums, 1e-5 relative */
					if (r ? k3_bf16_ulps(got, (float)want) > 3
					      : fabs(got - want) > 1e-5 * (1 + fabs(want)))
						fail_msg("decode %s b%d h%d d%d: %.9g, expected %.9g",
							 r ? "bf16" : "f32", b, h, d, got, want);
				}
			}
		dsv32_tensor *ts[] = {&c.qn, &c.qp, &c.w, &c.kv, &c.pe, &c.mask, &c.o};
		for (int i = 0; i < 7; i++)
			dsv32_tensor_free(ts[i]);
	}
}

static void test_attn_cuda_twin(void **state)
{
	dsv32_backend *g = tc_cuda_backend_or_null();
	if (!g)
		skip();
	pcase c = pmake(DSV32_BF16, 70, 4);
	assert_int_equal(dsv32_attn_mask_ref(*state, &c.mask, &c.idx, 0, NULL), DSV32_OK);
	assert_int_equal(dsv32_attn_prefill(*state, &c.o, &c.q, &c.k, &c.v, &c.mask, SCALE,
					    DSV32_ATTN_BSHD, NULL), DSV32_OK);
	dsv32_tensor q = k3_to_dev(g, &c.q), k = k3_to_dev(g, &c.k), v = k3_to_dev(g, &c.v),
		     idx = k3_to_dev(g, &c.idx), mask = k3_to_dev(g, &c.mask), o = k3_to_dev(g, &c.o);
	dsv32_tensor hm = k3_host(DSV32_BF16, 3, c.mask.shape), ho = k3_host(DSV32_BF16, 4, c.o.shape);
	dsv32_error e;
	assert_int_equal(dsv32_attn_mask_ref(g, &mask, &idx, 0, &e), DSV32_OK);
	assert_int_equal(dsv32_attn_prefill(g, &o, &q, &k, &v, &mask, SCALE, DSV32_ATTN_BSHD, &e), DSV32_OK);
	k3_from_dev(g, &hm, &mask);
	k3_from_dev(g, &ho, &o);
	assert_memory_equal(hm.data, c.mask.data, dsv32_tensor_nbytes(&hm)); /* masks: exact */
	for (int64_t i = 0; i < dsv32_tensor_numel(&ho); i++) /* CUDA expf vs glibc: <= 1 ulp */
		assert_true(k3_bf16_ulps((float)k3_get(&ho, i), (float)k3_get(&c.o, i)) <= 1);
	dsv32_tensor *ds[] = {&q, &k, &v, &idx, &mask, &o};
	for (int i = 0; i < 6; i++)
		dsv32_backend_free(g, ds[i]);
	dsv32_tensor_free(&hm);
	dsv32_tensor_free(&ho);
	pdrop(&c);

	dcase d = dmake(DSV32_BF16, 80);
	dsv32_tensor want = k3_host(DSV32_BF16, 3, d.o.shape);
	assert_int_equal(dsv32_attn_decode_absorbed(*state, &want, &d.qn, &d.qp, &d.w, &d.kv, &d.pe, DT,
						    &d.mask, SCALE, NULL), DSV32_OK);
	dsv32_tensor dd[7];
	dsv32_tensor *hs[] = {&d.qn, &d.qp, &d.w, &d.kv, &d.pe, &d.mask, &d.o};
	for (int i = 0; i < 7; i++)
		dd[i] = k3_to_dev(g, hs[i]);
	assert_int_equal(dsv32_attn_decode_absorbed(g, &dd[6], &dd[0], &dd[1], &dd[2], &dd[3], &dd[4], DT,
						    &dd[5], SCALE, &e), DSV32_OK);
	k3_from_dev(g, &d.o, &dd[6]);
	for (int64_t i = 0; i < dsv32_tensor_numel(&want); i++)
		assert_true(k3_bf16_ulps((float)k3_get(&d.o, i), (float)k3_get(&want, i)) <= 2);
	for (int i = 0; i < 7; i++) {
		dsv32_backend_free(g, &dd[i]);
		dsv32_tensor_free(hs[i]);
	}
	dsv32_tensor_free(&want);
	dsv32_backend_destroy(g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_attn_prefill_matches_oracle_bf16_and_f32),
		cmocka_unit_test(test_attn_sparse_mask_equals_compacted_keys),
		cmocka_unit_test(test_attn_fully_masked_rows_nan_ref_finite_hf),
		cmocka_unit_test(test_attn_mask_builders_exact_values),
		cmocka_unit_test(test_attn_bhsd_layout_equals_bshd),
		cmocka_unit_test(test_attn_decode_absorbed_matches_oracle),
		cmocka_unit_test(test_attn_cuda_twin),
	};
	return cmocka_run_group_tests(tests, tc_setup_cpu_backend, tc_teardown_backend);
}
