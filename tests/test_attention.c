/* test_attention.c: attention cores and mask builders against double oracles applying the
 * contract's rounding points (docs/spec/ref_layout.md §A.8, docs/spec/hf_layout.md §4.2), exactness of the
 * sparse mask, fully masked rows, layouts, cache strides, and the CUDA twin. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <cmocka.h>
#include <float.h>
#include <string.h>

#include "kernels/attention.h"
#include "tests/support/test_util.h"
#include "tests/support/test_common.h"
#include "tests/support/gpu_twin.h"

static const float SCALE = 0.19124945f; /* the golden tiny model's fp32 softmax_scale */

static double rb(double x, bool r) /* contract rounding point: fp32 op result, then bf16 */
{
	return r ? dsv32_round_bf16((float)x) : x;
}

/* Multiples of 1/8 in [-1, 1]: bf16-exact, and every dot product of <= 64 terms is exact in
 * fp32, so the only inexact steps are the ones the contract names. */
static void fill8(dsv32_tensor *t, tu_rng *r)
{
	for (int64_t i = 0; i < dsv32_tensor_numel(t); i++)
		tu_set_f32(t, i, tu_int(r, -8, 8) / 8.0);
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
						dot += tu_get(q, ((b * S + s) * H + h) * DQ + d) *
						       tu_get(k, ((b * T + t) * H + h) * DQ + d);
					double x = rb(rb(dot, r) * (double)SCALE, r);
					a[t] = rb(x + (mask ? tu_get(mask, (b * S + s) * T + t) : 0), r);
				}
				softmax_oracle(a, T, r);
				for (int d = 0; d < DV; d++) {
					double acc = 0;
					for (int t = 0; t < T; t++)
						acc += a[t] * tu_get(v, ((b * T + t) * H + h) * DV + d);
					o[((b * S + s) * H + h) * DV + d] = rb(acc, r);
				}
			}
}

typedef struct { dsv32_tensor q, k, v, o, idx, mask; } pcase;

static pcase pmake(dsv32_dtype ot, uint64_t seed, int K)
{
	tu_rng r = tu_rng_xorshift64star(seed);
	int64_t qs[4] = {B, S, H, DQ}, vs[4] = {B, S, H, DV}, is[3] = {B, S, K}, ms[3] = {B, S, S};
	pcase c = {tu_host(ot, 4, qs), tu_host(ot, 4, qs), tu_host(ot, 4, vs), tu_host(ot, 4, vs),
		   tu_host(DSV32_I64, 3, is), tu_host(ot, 3, ms)};
	for (int64_t i = 0; i < dsv32_tensor_numel(&c.q); i++) { /* full bf16 mantissas */
		tu_set_f32(&c.q, i, (tu_uniform(&r) * 2 - 1) * 3);
		tu_set_f32(&c.k, i, (tu_uniform(&r) * 2 - 1) * 3);
	}
	fill8(&c.v, &r);
	for (int row = 0; row < B * S; row++) { /* K distinct positions per row, some in the future */
		int perm[S];
		for (int t = 0; t < S; t++)
			perm[t] = t;
		for (int t = S - 1; t > 0; t--) {
			int j = tu_int(&r, 0, t), x = perm[t];
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
			float got = (float)tu_get(&c.o, i);
			exact += f || got == (float)want[i];
			if (!f) { /* expf vs exp and the fp32 Z may flip p's bf16 rounding: <= 2 ulps */
				if (tu_bf16_ulps(got, (float)want[i]) > 2)
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
				if (tu_get(&c.mask, (b * S + s) * S + t) == 0.0)
					sel[n++] = t;
			assert_true(n >= 1);
			int64_t q1s[4] = {1, 1, H, DQ}, k1s[4] = {1, n, H, DQ}, v1s[4] = {1, n, H, DV},
				o1s[4] = {1, 1, H, DV};
			dsv32_tensor q1 = tu_host(DSV32_BF16, 4, q1s), k1 = tu_host(DSV32_BF16, 4, k1s),
				     v1 = tu_host(DSV32_BF16, 4, v1s), o1 = tu_host(DSV32_BF16, 4, o1s);
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
		tu_set_f32(&c.mask, i, -INFINITY);
	assert_int_equal(dsv32_attn_prefill(*state, &c.o, &c.q, &c.k, &c.v, &c.mask, SCALE,
					    DSV32_ATTN_BSHD, NULL), DSV32_OK);
	for (int64_t i = 0; i < B * S * H * DV; i++)
		assert_true(isnan(tu_get(&c.o, i))); /* as PyTorch: exp(-inf - -inf) */
	for (int64_t i = 0; i < B * S * S; i++)
		((dsv32_bf16 *)c.mask.data)[i] = 0xff7fu; /* finfo(bf16).min everywhere */
	assert_int_equal(dsv32_attn_prefill(*state, &c.o, &c.q, &c.k, &c.v, &c.mask, SCALE,
					    DSV32_ATTN_BSHD, NULL), DSV32_OK);
	for (int64_t i = 0; i < B * S * H * DV; i++)
		assert_true(isfinite(tu_get(&c.o, i)));
	pdrop(&c);
}

static void test_attn_mask_builders_exact_values(void **state)
{
	pcase c = pmake(DSV32_BF16, 40, 3);
	assert_int_equal(dsv32_attn_mask_ref(*state, &c.mask, &c.idx, 0, NULL), DSV32_OK);
	int64_t ps[2] = {B, S};
	dsv32_tensor pad = tu_host(DSV32_I64, 2, ps), hm = tu_host(DSV32_F32, 3, c.mask.shape);
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
				double m = tu_get(&c.mask, (b * S + s) * S + t);
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
	dsv32_tensor q = tu_host(DSV32_BF16, 4, qs), k = tu_host(DSV32_BF16, 4, qs),
		     v = tu_host(DSV32_BF16, 4, vs), o = tu_host(DSV32_BF16, 4, c.o.shape);
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
	tu_rng r = tu_rng_xorshift64star(seed);
	int64_t qn[3] = {DB, DH, DN}, qp[3] = {DB, DH, DR}, w[2] = {DH * (DN + DDV), DC},
		kv[3] = {DB, DTC, DC}, pe[3] = {DB, DTC, DR}, m[2] = {DB, DT}, o[3] = {DB, DH, DDV};
	dcase c = {tu_host(ot, 3, qn), tu_host(ot, 3, qp), tu_host(ot, 2, w), tu_host(ot, 3, kv),
		   tu_host(ot, 3, pe), tu_host(ot, 2, m), tu_host(ot, 3, o)};
	fill8(&c.qn, &r);
	fill8(&c.qp, &r);
	fill8(&c.w, &r);
	fill8(&c.kv, &r);
	fill8(&c.pe, &r);
	for (int i = 0; i < DB * DT; i++)
		tu_set_f32(&c.mask, i, i % 3 == 1 ? -INFINITY : 0.0);
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
						acc += tu_get(&c.qn, (b * DH + h) * DN + d) *
						       tu_get(&c.w, (h * (DN + DDV) + d) * DC + cc);
					qa[cc] = rb(acc, r);
				}
				for (int t = 0; t < DT; t++) {
					double s1 = 0, s2 = 0;
					for (int cc = 0; cc < DC; cc++)
						s1 += qa[cc] * tu_get(&c.kv, (b * DTC + t) * DC + cc);
					for (int i = 0; i < DR; i++)
						s2 += tu_get(&c.qp, (b * DH + h) * DR + i) *
						      tu_get(&c.pe, (b * DTC + t) * DR + i);
					double x = rb(rb(rb(s1, r) + rb(s2, r), r) * (double)SCALE, r);
					a[t] = rb(x + tu_get(&c.mask, b * DT + t), r);
				}
				softmax_oracle(a, DT, r);
				for (int cc = 0; cc < DC; cc++) {
					double acc = 0;
					for (int t = 0; t < DT; t++)
						acc += a[t] * tu_get(&c.kv, (b * DTC + t) * DC + cc);
					ol[cc] = rb(acc, r);
				}
				for (int d = 0; d < DDV; d++) {
					double acc = 0;
					for (int cc = 0; cc < DC; cc++)
						acc += ol[cc] * tu_get(&c.w, (h * (DN + DDV) + DN + d) * DC + cc);
					float got = (float)tu_get(&c.o, (b * DH + h) * DDV + d);
					double want = rb(acc, r);
					/* bf16: p may flip by one ulp (expf, fp32 Z), then ol and o by the
					 * propagated difference: <= 3 ulps; f32: fp32 sums, 1e-5 relative */
					if (r ? tu_bf16_ulps(got, (float)want) > 3
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
	dsv32_backend *g = gt_dev_backend_or_null();
	if (!g)
		skip();
	pcase c = pmake(DSV32_BF16, 70, 4);
	assert_int_equal(dsv32_attn_mask_ref(*state, &c.mask, &c.idx, 0, NULL), DSV32_OK);
	assert_int_equal(dsv32_attn_prefill(*state, &c.o, &c.q, &c.k, &c.v, &c.mask, SCALE,
					    DSV32_ATTN_BSHD, NULL), DSV32_OK);
	dsv32_tensor q = tu_to_dev(g, &c.q), k = tu_to_dev(g, &c.k), v = tu_to_dev(g, &c.v),
		     idx = tu_to_dev(g, &c.idx), mask = tu_to_dev(g, &c.mask), o = tu_to_dev(g, &c.o);
	dsv32_tensor hm = tu_host(DSV32_BF16, 3, c.mask.shape), ho = tu_host(DSV32_BF16, 4, c.o.shape);
	dsv32_error e;
	assert_int_equal(dsv32_attn_mask_ref(g, &mask, &idx, 0, &e), DSV32_OK);
	assert_int_equal(dsv32_attn_prefill(g, &o, &q, &k, &v, &mask, SCALE, DSV32_ATTN_BSHD, &e), DSV32_OK);
	tu_download(g, &hm, &mask);
	tu_download(g, &ho, &o);
	assert_memory_equal(hm.data, c.mask.data, dsv32_tensor_nbytes(&hm)); /* masks: exact */
	for (int64_t i = 0; i < dsv32_tensor_numel(&ho); i++) /* CUDA expf vs glibc: <= 1 ulp */
		assert_true(tu_bf16_ulps((float)tu_get(&ho, i), (float)tu_get(&c.o, i)) <= 1);
	dsv32_tensor *ds[] = {&q, &k, &v, &idx, &mask, &o};
	for (int i = 0; i < 6; i++)
		dsv32_backend_free(g, ds[i]);
	dsv32_tensor_free(&hm);
	dsv32_tensor_free(&ho);
	pdrop(&c);

	dcase d = dmake(DSV32_BF16, 80);
	dsv32_tensor want = tu_host(DSV32_BF16, 3, d.o.shape);
	assert_int_equal(dsv32_attn_decode_absorbed(*state, &want, &d.qn, &d.qp, &d.w, &d.kv, &d.pe, DT,
						    &d.mask, SCALE, NULL), DSV32_OK);
	dsv32_tensor dd[7];
	dsv32_tensor *hs[] = {&d.qn, &d.qp, &d.w, &d.kv, &d.pe, &d.mask, &d.o};
	for (int i = 0; i < 7; i++)
		dd[i] = tu_to_dev(g, hs[i]);
	assert_int_equal(dsv32_attn_decode_absorbed(g, &dd[6], &dd[0], &dd[1], &dd[2], &dd[3], &dd[4], DT,
						    &dd[5], SCALE, &e), DSV32_OK);
	tu_download(g, &d.o, &dd[6]);
	for (int64_t i = 0; i < dsv32_tensor_numel(&want); i++)
		assert_true(tu_bf16_ulps((float)tu_get(&d.o, i), (float)tu_get(&want, i)) <= 2);
	for (int i = 0; i < 7; i++) {
		dsv32_backend_free(g, &dd[i]);
		dsv32_tensor_free(hs[i]);
	}
	dsv32_tensor_free(&want);
	dsv32_backend_destroy(g);
}

/* ---- GPU twins of the HF mask builder, the decode-form reference mask and the BHSD prefill
 * with an HF mask ----
 * twin_* takes the second backend (gt_dev_backend_or_null: CUDA, or a CPU backend in a dry-run
 * build). Tolerances from attention.h: the mask builders set values and never compute
 * ("Values are set, never summed"), so masks agree bit for bit; prefill "p and o may differ by
 * an ulp between the bodies" (CUDA expf vs glibc), so o within 1 bf16 ulp. Every mask buffer
 * starts as the same random garbage on both sides, so an element either body skips shows. */
enum { MB = 2, MS = 5, MT = 67, MK = 6 };

typedef struct {
	dsv32_dtype mask_t, idx_t, pad_t; /* idx_t / pad_t DSV32_DTYPE_COUNT: NULL */
	int64_t past_len;
	bool hf;                          /* false: dsv32_attn_mask_ref (past_len = causal_start) */
} mask_case;

static void mask_fill_ints(dsv32_tensor *t, const int64_t *v, int64_t n)
{
	for (int64_t i = 0; i < n; i++) {
		if (t->dtype == DSV32_I64)
			((int64_t *)t->data)[i] = v[i];
		else if (t->dtype == DSV32_I32)
			((int32_t *)t->data)[i] = (int32_t)v[i];
		else
			((uint8_t *)t->data)[i] = (uint8_t)(v[i] != 0);
	}
}

static dsv32_status mask_run_case(dsv32_backend *be, const mask_case *mc, dsv32_tensor *mask,
				  const dsv32_tensor *idx, const dsv32_tensor *pad, dsv32_error *err)
{
	if (mc->hf)
		return dsv32_attn_mask_hf(be, mask, idx, pad, mc->past_len, err);
	return dsv32_attn_mask_ref(be, mask, idx, mc->past_len, err);
}

static void twin_mask_case(dsv32_backend *cpu, dsv32_backend *dev, const mask_case *mc,
			   uint64_t seed)
{
	tu_rng r = tu_rng_xorshift64star(seed);
	int64_t S_ = mc->hf || mc->past_len >= 0 ? MS : 1; /* the decode-form ref mask: S = 1 */
	int64_t ms[3] = {MB, S_, MT}, is[3] = {MB, S_, MK}, ps[2] = {MB, MT};
	bool has_idx = mc->idx_t != DSV32_DTYPE_COUNT, has_pad = mc->pad_t != DSV32_DTYPE_COUNT;
	dsv32_tensor mask = tu_host(mc->mask_t, 3, ms);
	dsv32_tensor idx = has_idx ? tu_host(mc->idx_t, 3, is) : (dsv32_tensor){0};
	dsv32_tensor pad = has_pad ? tu_host(mc->pad_t, 2, ps) : (dsv32_tensor){0};
	for (int64_t i = 0; i < dsv32_tensor_numel(&mask); i++)
		tu_set_f32(&mask, i, (tu_uniform(&r) * 2 - 1) * 100);
	if (has_idx) { /* positions anywhere in 0..T-1, some repeated, some -1 / out of range */
		int64_t n = MB * S_ * MK, v[MB * MS * MK];
		for (int64_t i = 0; i < n; i++)
			v[i] = tu_int(&r, 0, MT - 1);
		v[1] = -1;
		v[2] = MT;
		v[3] = v[4];
		v[n - 1] = 0;
		mask_fill_ints(&idx, v, n);
	}
	if (has_pad) { /* left padding on batch row 1, one hole in row 0 */
		int64_t v[MB * MT];
		for (int64_t i = 0; i < MB * MT; i++)
			v[i] = i >= MT ? (i - MT >= 3 ? 1 + (i % 3) : 0) : (i != 5);
		mask_fill_ints(&pad, v, MB * MT);
	}
	dsv32_tensor dm = gt_to_dev(dev, &mask);
	dsv32_tensor di = has_idx ? gt_to_dev(dev, &idx) : (dsv32_tensor){0};
	dsv32_tensor dp = has_pad ? gt_to_dev(dev, &pad) : (dsv32_tensor){0};
	dsv32_error e = {0};
	assert_int_equal(mask_run_case(cpu, mc, &mask, has_idx ? &idx : NULL, has_pad ? &pad : NULL,
				       &e), DSV32_OK);
	assert_int_equal(mask_run_case(dev, mc, &dm, has_idx ? &di : NULL, has_pad ? &dp : NULL, &e),
			 DSV32_OK);
	dsv32_tensor g = gt_from_dev(dev, &dm);
	gt_assert_bits_equal(mc->hf ? "gpu attn_mask_hf" : "gpu attn_mask_ref", &g, &mask);
	gt_free(dev, &dm); gt_free(dev, &di); gt_free(dev, &dp);
	dsv32_tensor_free(&mask); dsv32_tensor_free(&idx); dsv32_tensor_free(&pad);
	dsv32_tensor_free(&g);
}

static void twin_masks(dsv32_backend *cpu, dsv32_backend *dev)
{
	const dsv32_dtype NONE = DSV32_DTYPE_COUNT;
	const mask_case cases[] = {
		{DSV32_BF16, DSV32_I64, DSV32_I64, 7, true},
		{DSV32_F32, DSV32_I32, DSV32_U8, 0, true},
		{DSV32_BF16, NONE, DSV32_BOOL, MT - MS, true}, /* the last query sees every key */
		{DSV32_F32, NONE, DSV32_I32, 3, true},
		{DSV32_F32, DSV32_I64, NONE, 0, true},
		{DSV32_BF16, NONE, NONE, 11, true},             /* causal only */
		{DSV32_F32, DSV32_I32, NONE, -1, false},        /* reference decode: S = 1 */
		{DSV32_BF16, DSV32_I32, NONE, 4, false},        /* reference prefill, causal_start 4 */
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		twin_mask_case(cpu, dev, &cases[i], 500 + i);
}

/* HF eager prefill: q [B,H,S,D], k/v [B,H,T,D] (BHSD), the HF mask with past_len = T - S. */
static void twin_prefill_bhsd_hf_mask(dsv32_backend *cpu, dsv32_backend *dev)
{
	enum { PH = 3, PT = 9, PD = 16, PV = 8 };
	tu_rng r = tu_rng_xorshift64star(520);
	int64_t qs[4] = {MB, PH, MS, PD}, ks[4] = {MB, PH, PT, PD}, vs[4] = {MB, PH, PT, PV};
	int64_t os[4] = {MB, MS, PH, PV}, ms[3] = {MB, MS, PT}, ps[2] = {MB, PT};
	dsv32_tensor q = tu_host(DSV32_BF16, 4, qs), k = tu_host(DSV32_BF16, 4, ks);
	dsv32_tensor v = tu_host(DSV32_BF16, 4, vs), o = tu_host(DSV32_BF16, 4, os);
	dsv32_tensor mask = tu_host(DSV32_BF16, 3, ms), pad = tu_host(DSV32_I64, 2, ps);
	for (int64_t i = 0; i < dsv32_tensor_numel(&q); i++)
		tu_set_f32(&q, i, (tu_uniform(&r) * 2 - 1) * 3);
	for (int64_t i = 0; i < dsv32_tensor_numel(&k); i++)
		tu_set_f32(&k, i, (tu_uniform(&r) * 2 - 1) * 3);
	fill8(&v, &r);
	for (int64_t i = 0; i < MB * PT; i++)
		((int64_t *)pad.data)[i] = !(i >= PT && i < PT + 2); /* row 1: two pad slots */
	assert_int_equal(dsv32_attn_mask_hf(cpu, &mask, NULL, &pad, PT - MS, NULL), DSV32_OK);
	dsv32_tensor dq = gt_to_dev(dev, &q), dk = gt_to_dev(dev, &k), dv = gt_to_dev(dev, &v);
	dsv32_tensor dmask = gt_to_dev(dev, &mask), dpad = gt_to_dev(dev, &pad);
	dsv32_tensor dmask2 = gt_to_dev(dev, &mask), dout = gt_to_dev(dev, &o);
	dsv32_error e = {0};
	/* the device builds its own mask too (must equal the CPU's), the prefill reads the CPU's */
	assert_int_equal(dsv32_attn_mask_hf(dev, &dmask2, NULL, &dpad, PT - MS, &e), DSV32_OK);
	assert_int_equal(dsv32_attn_prefill(cpu, &o, &q, &k, &v, &mask, SCALE, DSV32_ATTN_BHSD, &e),
			 DSV32_OK);
	assert_int_equal(dsv32_attn_prefill(dev, &dout, &dq, &dk, &dv, &dmask, SCALE,
					    DSV32_ATTN_BHSD, &e), DSV32_OK);
	dsv32_tensor gm = gt_from_dev(dev, &dmask2), go = gt_from_dev(dev, &dout);
	gt_assert_bits_equal("gpu attn_mask_hf (prefill case)", &gm, &mask);
	int64_t bad = 0;
	for (int64_t i = 0; i < dsv32_tensor_numel(&o); i++) {
		int64_t d = tu_bf16_ulps((float)tu_get(&go, i), (float)tu_get(&o, i));
		if (d > 1 && bad++ < 8)
			print_error("gpu prefill BHSD o[%lld]: %.9g vs cpu %.9g (%lld ulps)\n",
				    (long long)i, tu_get(&go, i), tu_get(&o, i), (long long)d);
	}
	if (bad)
		fail_msg("gpu prefill BHSD: %lld elements over 1 bf16 ulp", (long long)bad);
	dsv32_tensor *ds[] = {&dq, &dk, &dv, &dmask, &dpad, &dmask2, &dout};
	for (int i = 0; i < 7; i++)
		gt_free(dev, ds[i]);
	dsv32_tensor *hs[] = {&q, &k, &v, &o, &mask, &pad, &gm, &go};
	for (int i = 0; i < 8; i++)
		dsv32_tensor_free(hs[i]);
}

static void test_attn_masks_and_bhsd_prefill_gpu_match_cpu(void **state)
{
	dsv32_backend *dev = gt_dev_backend_or_null();
	if (!dev)
		skip();
	twin_masks(*state, dev);
	twin_prefill_bhsd_hf_mask(*state, dev);
	dsv32_backend_destroy(dev);
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
		cmocka_unit_test(test_attn_masks_and_bhsd_prefill_gpu_match_cpu),
	};
	return cmocka_run_group_tests(tests, tc_setup_cpu_backend, tc_teardown_backend);
}
