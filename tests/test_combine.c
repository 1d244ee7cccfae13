/* test_combine.c: broadcast multiply and the MoE combine ops of both layouts (kernels/combine.h)
 * against double-precision oracles that apply only the contract's rounding points; the GPU twin.
 * Budgets: bit-exact everywhere (each contract fixes every rounding: a double product of two
 * floats is exact, the sums below are exact in double before the one fp32 rounding). */
#include "tests/support/test_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/combine.h"

/* RNE of a double to fp32 (exact double inputs here: the product of two floats, or the sum of
 * two floats within 2^29 of each other). */
static double f32(double v)
{
	return (double)(float)v;
}

static void fill(dsv32_tensor *t, tu_rng *r, double scale)
{
	tu_fill_normal(t, r, scale);
}

/* edge values into the first elements of x: zeros, -0, tiny, a spike */
static void edges(dsv32_tensor *x)
{
	double e[6] = {0.0, -0.0, 1e-30, -3e-38, 1e30, -65504.0};
	int64_t n = dsv32_tensor_numel(x);
	for (int i = 0; i < 6 && i < n; i++)
		tu_set(x, i, e[i]);
}

static void test_mul_bcast_shapes_and_rounding(void **state)
{
	dsv32_backend *be = *state;
	tu_rng r;
	r = tu_rng_seed(301);
	enum { B = 2, S = 3, H = 5, D = 7 };
	/* in place, same shape [B,S,H,1] (the indexer's weights * q_s), F32 */
	int64_t s4[4] = {B, S, H, 1};
	dsv32_tensor w = tu_host(DSV32_F32, 4, s4), q = tu_host(DSV32_F32, 4, s4);
	fill(&w, &r, 2.0);
	fill(&q, &r, 1e-3);
	edges(&w);
	dsv32_tensor w0 = tu_host(DSV32_F32, 4, s4);
	memcpy(w0.data, w.data, dsv32_tensor_nbytes(&w));
	assert_int_equal(dsv32_mul_bcast(be, &w, &w, &q, NULL), DSV32_OK);
	for (int64_t i = 0; i < B * S * H; i++) {
		double want = f32(tu_get(&w0, i) * tu_get(&q, i));
		assert_true(tu_get(&w, i) == want || (isnan(want) && isnan(tu_get(&w, i))));
		assert_true(signbit(tu_get(&w, i)) == signbit(want));
	}
	/* [R, D] BF16 · [R, 1] F32 -> BF16 and [R, D] · [D] -> F32 */
	int64_t sa[2] = {B * S, D}, sg[2] = {B * S, 1}, sc[1] = {D};
	dsv32_tensor a = tu_host(DSV32_BF16, 2, sa), g = tu_host(DSV32_F32, 2, sg);
	dsv32_tensor c = tu_host(DSV32_BF16, 1, sc);
	dsv32_tensor yb = tu_host(DSV32_BF16, 2, sa), yf = tu_host(DSV32_F32, 2, sa);
	fill(&a, &r, 3.0);
	fill(&g, &r, 3.0);
	fill(&c, &r, 3.0);
	edges(&a);
	assert_int_equal(dsv32_mul_bcast(be, &yb, &a, &g, NULL), DSV32_OK);
	assert_int_equal(dsv32_mul_bcast(be, &yf, &a, &c, NULL), DSV32_OK);
	int64_t round_differs = 0;
	for (int64_t i = 0; i < B * S; i++)
		for (int64_t d = 0; d < D; d++) {
			double p = tu_get(&a, i * D + d) * tu_get(&g, i);
			assert_true(tu_ulps(DSV32_BF16, tu_get(&yb, i * D + d), tu_bf16_rne(f32(p))) == 0);
			round_differs += tu_get(&yb, i * D + d) != f32(p);
			assert_true(tu_get(&yf, i * D + d) == f32(tu_get(&a, i * D + d) * tu_get(&c, d)));
		}
	assert_true(round_differs > 0); /* the data exercises the bf16 rounding point */
	/* errors: non-broadcastable shape, partial aliasing, wrong dtype */
	dsv32_error err = {0};
	int64_t bad[1] = {D + 1};
	dsv32_tensor cb = tu_host(DSV32_F32, 1, bad);
	assert_int_equal(dsv32_mul_bcast(be, &yf, &a, &cb, &err), DSV32_E_SHAPE);
	assert_non_null(strstr(err.what, "broadcast"));
	assert_int_equal(dsv32_mul_bcast(be, &g, &g, &a, &err), DSV32_E_SHAPE);
	dsv32_tensor i64 = tu_host(DSV32_I64, 2, sa);
	assert_int_equal(dsv32_mul_bcast(be, &yf, &i64, &a, &err), DSV32_E_DTYPE);
	dsv32_tensor *ts[] = {&w, &q, &w0, &a, &g, &c, &yb, &yf, &cb, &i64};
	for (size_t i = 0; i < sizeof ts / sizeof *ts; i++)
		dsv32_tensor_free(ts[i]);
}

/* Expert e's token rows: tokens whose slot list contains e (ascending token order). */
static int64_t expert_rows(const int64_t *idx, int64_t T, int64_t K, int64_t e, int64_t *rows,
			   int64_t *slot)
{
	int64_t n = 0;
	for (int64_t t = 0; t < T; t++)
		for (int64_t k = 0; k < K; k++)
			if (idx[t * K + k] == e) {
				rows[n] = t;
				slot[n++] = k;
			}
	return n;
}

enum { T = 9, K = 3, E = 6, D = 13 };

/* A routing table: K distinct experts per token. */
static void route(tu_rng *r, int64_t *idx, float *w)
{
	for (int64_t t = 0; t < T; t++)
		for (int64_t k = 0; k < K; k++) {
			int64_t e;
			bool dup;
			do {
				e = (int64_t)(tu_uniform(r) * E);
				dup = false;
				for (int64_t j = 0; j < k; j++)
					dup |= idx[t * K + j] == e;
			} while (dup);
			idx[t * K + k] = e;
			w[t * K + k] = (float)(0.05 + tu_uniform(r) * 0.9);
		}
}

/* Run every expert in ascending order through the index-combine op; the oracle follows the
 * contract in double. eager = false: reference (F32 acc); true: HF eager (acc dtype ydt). */
static void run_index_combine(dsv32_backend *be, bool eager, dsv32_dtype ydt, dsv32_dtype xdt)
{
	tu_rng r;
	r = tu_rng_seed(eager ? 311 : 313);
	int64_t idx[T * K], rows_h[T], slot[T];
	float w_h[T * K];
	route(&r, idx, w_h);
	int64_t sy[2] = {T, D}, sx[2] = {E * T, D};
	dsv32_tensor y = tu_host(ydt, 2, sy), xall = tu_host(xdt, 2, sx);
	fill(&xall, &r, 4.0);
	edges(&xall);
	if (!eager)
		fill(&y, &r, 1.0); /* a nonzero start (the shared expert would come after; any value) */
	double want[T * D];
	for (int64_t i = 0; i < T * D; i++)
		want[i] = tu_get(&y, i);
	int64_t two_round_matters = 0;
	for (int64_t e = 0; e < E; e++) {
		int64_t n = expert_rows(idx, T, K, e, rows_h, slot);
		if (!n)
			continue;
		int64_t sn[1] = {n}, sxe[2] = {n, D};
		dsv32_tensor rows = tu_host(DSV32_I64, 1, sn), w = tu_host(DSV32_F32, 1, sn);
		dsv32_tensor x = tu_host(xdt, 2, sxe);
		memcpy(x.data, (char *)xall.data + (size_t)(e * T * D) * dsv32_dtype_size(xdt),
		       (size_t)(n * D) * dsv32_dtype_size(xdt));
		for (int64_t i = 0; i < n; i++) {
			((int64_t *)rows.data)[i] = rows_h[i];
			((float *)w.data)[i] = w_h[rows_h[i] * K + slot[i]];
			for (int64_t d = 0; d < D; d++) {
				double p = f32(tu_get(&x, i * D + d) * (double)((float *)w.data)[i]);
				double *o = &want[rows_h[i] * D + d];
				if (!eager) {
					*o = f32(*o + p);
				} else if (ydt == DSV32_BF16) {
					double one = tu_bf16_rne(f32(*o + p));
					*o = tu_bf16_rne(f32(*o + tu_bf16_rne(p)));
					two_round_matters += one != *o;
				} else {
					*o = f32(*o + p);
				}
			}
		}
		dsv32_status rc = eager ? dsv32_moe_combine_hf_eager(be, &y, &x, &rows, &w, NULL)
					: dsv32_moe_combine_ref(be, &y, &x, &rows, &w, NULL);
		assert_int_equal(rc, DSV32_OK);
		dsv32_tensor_free(&rows);
		dsv32_tensor_free(&w);
		dsv32_tensor_free(&x);
	}
	for (int64_t i = 0; i < T * D; i++) {
		double g = tu_get(&y, i);
		if (g != want[i])
			print_error("element %lld: got %.9g want %.9g\n", (long long)i, g, want[i]);
		assert_true(g == want[i] && signbit(g) == signbit(want[i]));
	}
	if (eager && ydt == DSV32_BF16)
		assert_true(two_round_matters > 0); /* the product rounding point is observable */
	dsv32_tensor_free(&y);
	dsv32_tensor_free(&xall);
}

static void test_combine_ref_fp32_index_add_in_expert_order(void **state)
{
	run_index_combine(*state, false, DSV32_F32, DSV32_BF16);
	run_index_combine(*state, false, DSV32_F32, DSV32_F32);
}

static void test_combine_hf_eager_two_bf16_roundings(void **state)
{
	run_index_combine(*state, true, DSV32_BF16, DSV32_BF16);
	run_index_combine(*state, true, DSV32_F32, DSV32_F32); /* fp32 profile: no rounding */
}

static void test_combine_index_errors(void **state)
{
	dsv32_backend *be = *state;
	int64_t sy[2] = {4, 3}, sx[2] = {2, 3}, sn[1] = {2};
	dsv32_tensor y = tu_host(DSV32_F32, 2, sy), yb = tu_host(DSV32_BF16, 2, sy);
	dsv32_tensor x = tu_host(DSV32_BF16, 2, sx), rows = tu_host(DSV32_I64, 1, sn);
	dsv32_tensor w = tu_host(DSV32_F32, 1, sn);
	int64_t *rh = rows.data;
	dsv32_error err = {0};
	rh[0] = 1;
	rh[1] = 1;
	assert_int_equal(dsv32_moe_combine_ref(be, &y, &x, &rows, &w, &err), DSV32_E_USAGE);
	assert_non_null(strstr(err.what, "distinct"));
	rh[1] = 4;
	assert_int_equal(dsv32_moe_combine_hf_eager(be, &yb, &x, &rows, &w, &err), DSV32_E_USAGE);
	assert_non_null(strstr(err.what, "outside"));
	rh[1] = 0;
	assert_int_equal(dsv32_moe_combine_ref(be, &yb, &x, &rows, &w, &err), DSV32_E_DTYPE);
	int64_t s3[1] = {3};
	dsv32_tensor w3 = tu_host(DSV32_F32, 1, s3);
	assert_int_equal(dsv32_moe_combine_ref(be, &y, &x, &rows, &w3, &err), DSV32_E_SHAPE);
	/* nothing was written by the failed calls */
	for (int64_t i = 0; i < 12; i++)
		assert_true(tu_get(&y, i) == 0.0 && tu_get(&yb, i) == 0.0);
	dsv32_tensor *ts[] = {&y, &yb, &x, &rows, &w, &w3};
	for (size_t i = 0; i < sizeof ts / sizeof *ts; i++)
		dsv32_tensor_free(ts[i]);
}

/* HF grouped_mm: the slot rows sorted by expert (src = un-sort), fp32 slot sum in slot order,
 * one cast. Also the identity layout (src NULL). */
static void run_grouped(dsv32_backend *be, dsv32_dtype odt, dsv32_dtype xdt, bool sorted)
{
	tu_rng r;
	r = tu_rng_seed(331);
	int64_t idx[T * K];
	float w_h[T * K];
	route(&r, idx, w_h);
	/* sorted order of the (t, k) pairs by expert (stable) and its inverse */
	int64_t order[T * K], src_h[T * K], n = 0;
	for (int64_t e = 0; e < E; e++)
		for (int64_t i = 0; i < T * K; i++)
			if (idx[i] == e)
				order[n++] = i;
	for (int64_t j = 0; j < T * K; j++)
		src_h[order[j]] = sorted ? j : order[j];
	if (!sorted)
		for (int64_t j = 0; j < T * K; j++)
			src_h[j] = j;
	int64_t sx[2] = {T * K, D}, so[2] = {T, D}, sw[2] = {T, K}, ss[1] = {T * K};
	dsv32_tensor x = tu_host(xdt, 2, sx), out = tu_host(odt, 2, so), w = tu_host(DSV32_F32, 2, sw);
	dsv32_tensor src = tu_host(DSV32_I64, 1, ss);
	fill(&x, &r, 4.0);
	edges(&x);
	memcpy(w.data, w_h, sizeof w_h);
	memcpy(src.data, src_h, sizeof src_h);
	assert_int_equal(dsv32_moe_combine_hf_grouped(be, &out, &x, sorted ? &src : NULL, &w, K,
						      NULL),
			 DSV32_OK);
	int64_t order_matters = 0;
	for (int64_t t = 0; t < T; t++)
		for (int64_t d = 0; d < D; d++) {
			double s = 0, rev = 0;
			for (int64_t k = 0; k < K; k++) {
				double p = f32(tu_get(&x, src_h[t * K + k] * D + d) * (double)w_h[t * K + k]);
				s = k ? f32(s + p) : p;
			}
			for (int64_t k = K - 1; k >= 0; k--) {
				double p = f32(tu_get(&x, src_h[t * K + k] * D + d) * (double)w_h[t * K + k]);
				rev = k < K - 1 ? f32(rev + p) : p;
			}
			order_matters += s != rev;
			double want = odt == DSV32_BF16 ? tu_bf16_rne(s) : s;
			double g = tu_get(&out, t * D + d);
			if (g != want)
				print_error("[%lld,%lld]: got %.9g want %.9g\n", (long long)t,
					    (long long)d, g, want);
			assert_true(g == want);
		}
	if (odt == DSV32_F32)
		assert_true(order_matters > 0); /* the slot order is observable in fp32 */
	dsv32_error err = {0};
	((int64_t *)src.data)[3] = T * K;
	assert_int_equal(dsv32_moe_combine_hf_grouped(be, &out, &x, &src, &w, K, &err),
			 DSV32_E_USAGE);
	assert_int_equal(dsv32_moe_combine_hf_grouped(be, &out, &x, NULL, &w, K + 1, &err),
			 DSV32_E_SHAPE);
	dsv32_tensor_free(&x);
	dsv32_tensor_free(&out);
	dsv32_tensor_free(&w);
	dsv32_tensor_free(&src);
}

static void test_combine_hf_grouped_fp32_slot_sum_one_cast(void **state)
{
	run_grouped(*state, DSV32_BF16, DSV32_BF16, true);
	run_grouped(*state, DSV32_BF16, DSV32_BF16, false);
	run_grouped(*state, DSV32_F32, DSV32_F32, true);
}

/* The CUDA bodies against the CPU bodies, bitwise. */
static void test_combine_gpu_matches_cpu(void **state)
{
	dsv32_backend *gpu = tc_cuda_backend_or_null();
	if (!gpu)
		skip();
	dsv32_backend *cpu = *state;
	tu_rng r;
	r = tu_rng_seed(341);
	int64_t sy[2] = {T, D}, sx[2] = {T, D}, sn[1] = {T}, sg[2] = {T, 1}, sw[2] = {T, K};
	int64_t sxk[2] = {T * K, D}, ss[1] = {T * K};
	dsv32_tensor a = tu_host(DSV32_BF16, 2, sy), g = tu_host(DSV32_F32, 2, sg);
	dsv32_tensor yf = tu_host(DSV32_F32, 2, sy), yb = tu_host(DSV32_BF16, 2, sy);
	dsv32_tensor x = tu_host(DSV32_BF16, 2, sx), rows = tu_host(DSV32_I64, 1, sn);
	dsv32_tensor w = tu_host(DSV32_F32, 1, sn), wk = tu_host(DSV32_F32, 2, sw);
	dsv32_tensor xk = tu_host(DSV32_BF16, 2, sxk), src = tu_host(DSV32_I64, 1, ss);
	dsv32_tensor ob = tu_host(DSV32_BF16, 2, sy), mb = tu_host(DSV32_BF16, 2, sy);
	fill(&a, &r, 3.0); fill(&g, &r, 3.0); fill(&yf, &r, 1.0); fill(&yb, &r, 1.0);
	fill(&x, &r, 3.0); fill(&w, &r, 1.0); fill(&wk, &r, 1.0); fill(&xk, &r, 3.0);
	for (int64_t i = 0; i < T; i++)
		((int64_t *)rows.data)[i] = (i * 4 + 1) % T; /* a permutation (T = 9, 4 coprime) */
	for (int64_t i = 0; i < T * K; i++)
		((int64_t *)src.data)[i] = (i * 5 + 2) % (T * K);
	dsv32_tensor d_a = tu_to_dev(gpu, &a), d_g = tu_to_dev(gpu, &g), d_yf = tu_to_dev(gpu, &yf);
	dsv32_tensor d_yb = tu_to_dev(gpu, &yb), d_x = tu_to_dev(gpu, &x);
	dsv32_tensor d_rows = tu_to_dev(gpu, &rows), d_w = tu_to_dev(gpu, &w);
	dsv32_tensor d_wk = tu_to_dev(gpu, &wk), d_xk = tu_to_dev(gpu, &xk);
	dsv32_tensor d_src = tu_to_dev(gpu, &src), d_ob = tu_to_dev(gpu, &ob), d_mb = tu_to_dev(gpu, &mb);
	assert_int_equal(dsv32_mul_bcast(cpu, &mb, &a, &g, NULL), DSV32_OK);
	assert_int_equal(dsv32_mul_bcast(gpu, &d_mb, &d_a, &d_g, NULL), DSV32_OK);
	assert_int_equal(dsv32_moe_combine_ref(cpu, &yf, &x, &rows, &w, NULL), DSV32_OK);
	assert_int_equal(dsv32_moe_combine_ref(gpu, &d_yf, &d_x, &d_rows, &d_w, NULL), DSV32_OK);
	assert_int_equal(dsv32_moe_combine_hf_eager(cpu, &yb, &x, &rows, &w, NULL), DSV32_OK);
	assert_int_equal(dsv32_moe_combine_hf_eager(gpu, &d_yb, &d_x, &d_rows, &d_w, NULL),
			 DSV32_OK);
	assert_int_equal(dsv32_moe_combine_hf_grouped(cpu, &ob, &xk, &src, &wk, K, NULL), DSV32_OK);
	assert_int_equal(dsv32_moe_combine_hf_grouped(gpu, &d_ob, &d_xk, &d_src, &d_wk, K, NULL),
			 DSV32_OK);
	dsv32_tensor h_mb = tu_from_dev(gpu, &d_mb), h_yf = tu_from_dev(gpu, &d_yf);
	dsv32_tensor h_yb = tu_from_dev(gpu, &d_yb), h_ob = tu_from_dev(gpu, &d_ob);
	assert_memory_equal(h_mb.data, mb.data, dsv32_tensor_nbytes(&mb));
	assert_memory_equal(h_yf.data, yf.data, dsv32_tensor_nbytes(&yf));
	assert_memory_equal(h_yb.data, yb.data, dsv32_tensor_nbytes(&yb));
	assert_memory_equal(h_ob.data, ob.data, dsv32_tensor_nbytes(&ob));
	dsv32_tensor *dv[] = {&d_a, &d_g, &d_yf, &d_yb, &d_x, &d_rows, &d_w, &d_wk, &d_xk, &d_src,
			      &d_ob, &d_mb};
	for (size_t i = 0; i < sizeof dv / sizeof *dv; i++)
		dsv32_backend_free(gpu, dv[i]);
	dsv32_tensor *hv[] = {&a, &g, &yf, &yb, &x, &rows, &w, &wk, &xk, &src, &ob, &mb,
			      &h_mb, &h_yf, &h_yb, &h_ob};
	for (size_t i = 0; i < sizeof hv / sizeof *hv; i++)
		dsv32_tensor_free(hv[i]);
	dsv32_backend_destroy(gpu);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mul_bcast_shapes_and_rounding),
		cmocka_unit_test(test_combine_ref_fp32_index_add_in_expert_order),
		cmocka_unit_test(test_combine_hf_eager_two_bf16_roundings),
		cmocka_unit_test(test_combine_index_errors),
		cmocka_unit_test(test_combine_hf_grouped_fp32_slot_sum_one_cast),
		cmocka_unit_test(test_combine_gpu_matches_cpu),
	};
	return cmocka_run_group_tests(tests, tc_setup_cpu_backend, tc_teardown_backend);
}
