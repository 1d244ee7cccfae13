/* test_topk.c: dsv32_topk / dsv32_topk_len against a sort oracle written from the contract
 * (CUDA radix order: NaN largest, -0 < +0; ties: lower index first). CUDA twin when a device
 * is present. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <cmocka.h>

#include "kernels/topk.h"
#include "tests/support/test_util.h"
#include "tests/support/test_common.h"
#include "tests/support/gpu_twin.h"

/* Oracle order, written from the contract (not from dsv32_topk_key): returns >0 if a ranks
 * before b. */
static int rank_cmp(float a, int ia, float b, int ib)
{
	bool na = isnan(a), nb = isnan(b);
	if (na != nb)
		return na ? 1 : -1;
	if (!na) {
		if (a > b)
			return 1;
		if (a < b)
			return -1;
		if (a == 0.0f && signbit(a) != signbit(b)) /* -0 < +0 */
			return signbit(a) ? -1 : 1;
	}
	return ia < ib ? 1 : -1; /* equal: lower index first */
}

/* Selection by repeated maximum: O(k n), independent of the radix code. */
static void oracle(const float *x, int n, int k, int64_t *idx)
{
	char *used = calloc((size_t)n, 1);
	for (int s = 0; s < k; s++) {
		int best = -1;
		for (int i = 0; i < n; i++)
			if (!used[i] && (best < 0 || rank_cmp(x[i], i, x[best], best) > 0))
				best = i;
		used[best] = 1;
		idx[s] = best;
	}
	free(used);
}

static float tricky(tu_rng *r)
{
	switch (tu_int(r, 0, 9)) {
	case 0: return -0.0f;
	case 1: return 0.0f;
	case 2: return NAN;
	case 3: return -INFINITY;
	case 4: return INFINITY;
	case 5: return (float)tu_int(r, -3, 3); /* many exact ties */
	default: return (float)(tu_uniform(r) * 4 - 2);
	}
}

static void run_case(dsv32_backend *be, dsv32_dtype xt, dsv32_dtype it, int rows, int n, int k,
		     uint64_t seed)
{
	tu_rng r = tu_rng_xorshift64star(seed);
	int64_t xs[2] = {rows, n}, os[2] = {rows, k};
	dsv32_tensor x = tu_host(xt, 2, xs), idx = tu_host(it, 2, os), val = tu_host(DSV32_F32, 2, os);
	for (int64_t i = 0; i < (int64_t)rows * n; i++)
		tu_set_f32(&x, i, tricky(&r));
	dsv32_error e;
	assert_int_equal(dsv32_topk(be, &idx, &val, &x, k, &e), DSV32_OK);
	float *row = malloc((size_t)n * sizeof *row);
	int64_t *want = malloc((size_t)k * sizeof *want);
	for (int q = 0; q < rows; q++) {
		for (int i = 0; i < n; i++)
			row[i] = (float)tu_get(&x, (int64_t)q * n + i);
		oracle(row, n, k, want);
		for (int s = 0; s < k; s++) {
			int64_t got = (int64_t)tu_get(&idx, (int64_t)q * k + s);
			if (got != want[s])
				fail_msg("topk seed %llu row %d slot %d: index %lld, expected %lld (x=%g vs %g)",
					 (unsigned long long)seed, q, s, (long long)got, (long long)want[s],
					 got >= 0 && got < n ? row[got] : 0.0, row[want[s]]);
			float gv = ((float *)val.data)[(int64_t)q * k + s];
			assert_int_equal(dsv32_f32_bits(gv), dsv32_f32_bits(row[want[s]]));
		}
	}
	free(row);
	free(want);
	dsv32_tensor_free(&x);
	dsv32_tensor_free(&idx);
	dsv32_tensor_free(&val);
}

static void test_topk_matches_oracle_with_ties_nan_and_signed_zero(void **state)
{
	dsv32_backend *be = *state;
	run_case(be, DSV32_F32, DSV32_I64, 7, 37, 5, 11);
	run_case(be, DSV32_F32, DSV32_I64, 3, 300, 300, 12); /* k = n: a full sort */
	run_case(be, DSV32_BF16, DSV32_I32, 5, 1000, 16, 13);
	run_case(be, DSV32_F32, DSV32_I64, 2, 5000, 2048, 14);
	run_case(be, DSV32_F32, DSV32_I64, 9, 1, 1, 15);
}

/* The golden README's tie: positions 3 and 18 tie at score 0 for the last slot; 3 is kept. */
static void test_topk_golden_tie_keeps_lower_index(void **state)
{
	dsv32_backend *be = *state;
	float v[21];
	for (int i = 0; i < 21; i++)
		v[i] = (i == 3 || i == 18) ? 0.0f : (i < 15 ? 1.0f + i : -INFINITY);
	/* 14 positive values (i = 0..14 minus 3), then the two zeros tie for slot 15 */
	int64_t xs[1] = {21}, os[1] = {15};
	dsv32_tensor x = dsv32_tensor_view(v, DSV32_F32, 1, xs), idx = tu_host(DSV32_I64, 1, os);
	assert_int_equal(dsv32_topk(be, &idx, NULL, &x, 15, NULL), DSV32_OK);
	int64_t *g = idx.data;
	assert_int_equal(g[0], 14);
	assert_int_equal(g[14], 3);
	for (int s = 0; s < 15; s++)
		assert_true(g[s] != 18);
	dsv32_tensor_free(&idx);
}

static void test_topk_rejects_bad_k(void **state)
{
	dsv32_backend *be = *state;
	float v[4] = {1, 2, 3, 4};
	int64_t xs[1] = {4}, os5[1] = {5}, os0[1] = {0};
	dsv32_tensor x = dsv32_tensor_view(v, DSV32_F32, 1, xs);
	dsv32_tensor i5 = tu_host(DSV32_I64, 1, os5), i0 = tu_host(DSV32_I64, 1, os0);
	dsv32_error e;
	assert_int_equal(dsv32_topk(be, &i5, NULL, &x, 5, &e), DSV32_E_USAGE);
	assert_int_equal(dsv32_topk(be, &i0, NULL, &x, 0, &e), DSV32_E_USAGE);
	dsv32_tensor_free(&i5);
	dsv32_tensor_free(&i0);
}

static void test_topk_len_pads_short_rows(void **state)
{
	dsv32_backend *be = *state;
	float v[2][6] = {{5, 1, 4, 9, 9, 0}, {3, 7, 2, 8, 1, 6}};
	int64_t L[2] = {6, 2}, xs[2] = {2, 6}, os[2] = {2, 4}, ls[1] = {2};
	dsv32_tensor x = dsv32_tensor_view(v, DSV32_F32, 2, xs);
	dsv32_tensor lens = dsv32_tensor_view(L, DSV32_I64, 1, ls);
	dsv32_tensor idx = tu_host(DSV32_I64, 2, os), val = tu_host(DSV32_F32, 2, os);
	assert_int_equal(dsv32_topk_len(be, &idx, &val, &x, &lens, 4, NULL), DSV32_OK);
	const int64_t want[8] = {3, 4, 0, 2, 1, 0, -1, -1};
	for (int i = 0; i < 8; i++)
		assert_int_equal(((int64_t *)idx.data)[i], want[i]);
	assert_true(isinf(((float *)val.data)[7]) && ((float *)val.data)[7] < 0);
	assert_true(((float *)val.data)[5] == 3.0f);
	dsv32_tensor_free(&idx);
	dsv32_tensor_free(&val);
}

static void test_topk_cuda_twin_is_bit_exact(void **state)
{
	(void)state;
	dsv32_backend *g = gt_dev_backend_or_null(), *c = NULL;
	if (!g)
		skip();
	assert_int_equal(dsv32_backend_create(&c, DSV32_DEV_CPU, NULL), DSV32_OK);
	const int cases[][3] = {{7, 37, 5}, {4, 5000, 2048}, {3, 129, 129}, {2, 70000, 64}};
	for (int ci = 0; ci < 4; ci++) {
		int rows = cases[ci][0], n = cases[ci][1], k = cases[ci][2];
		tu_rng r = tu_rng_xorshift64star(100 + (uint64_t)ci);
		int64_t xs[2] = {rows, n}, os[2] = {rows, k};
		dsv32_tensor x = tu_host(DSV32_BF16, 2, xs);
		for (int64_t i = 0; i < (int64_t)rows * n; i++)
			tu_set_f32(&x, i, tricky(&r));
		dsv32_tensor ic = tu_host(DSV32_I64, 2, os), vc = tu_host(DSV32_F32, 2, os);
		dsv32_tensor ig = tu_host(DSV32_I64, 2, os), vg = tu_host(DSV32_F32, 2, os);
		assert_int_equal(dsv32_topk(c, &ic, &vc, &x, k, NULL), DSV32_OK);
		dsv32_tensor xd = tu_to_dev(g, &x), id = tu_to_dev(g, &ig), vd = tu_to_dev(g, &vg);
		dsv32_error e;
		assert_int_equal(dsv32_topk(g, &id, &vd, &xd, k, &e), DSV32_OK);
		tu_download(g, &ig, &id);
		tu_download(g, &vg, &vd);
		assert_memory_equal(ic.data, ig.data, dsv32_tensor_nbytes(&ic));
		assert_memory_equal(vc.data, vg.data, dsv32_tensor_nbytes(&vc));
		dsv32_backend_free(g, &xd);
		dsv32_backend_free(g, &id);
		dsv32_backend_free(g, &vd);
		dsv32_tensor_free(&x);
		dsv32_tensor_free(&ic);
		dsv32_tensor_free(&vc);
		dsv32_tensor_free(&ig);
		dsv32_tensor_free(&vg);
	}
	dsv32_backend_destroy(c);
	dsv32_backend_destroy(g);
}

/* ---- GPU twin of topk_len (and of topk with I32 indices, BF16 values, no values) ----
 * twin_topk_len takes the second backend (gt_dev_backend_or_null: CUDA, or a CPU backend in a
 * dry-run build). topk.h: "no arithmetic; CPU and CUDA give identical bits", so indices and
 * values must agree bit for bit, padding slots (-1, -inf) included. The outputs start as the
 * same garbage on both sides, so a slot either body leaves unwritten shows. */
typedef struct {
	int rows, n, k;
	dsv32_dtype xt, it, vt; /* vt DSV32_DTYPE_COUNT: val_out NULL */
	int64_t lens[8];        /* all -1: plain dsv32_topk */
} topk_twin_case;

static void twin_topk_case(dsv32_backend *cpu, dsv32_backend *dev, const topk_twin_case *tc,
			   uint64_t seed)
{
	tu_rng r = tu_rng_xorshift64star(seed);
	int64_t xs[2] = {tc->rows, tc->n}, os[2] = {tc->rows, tc->k}, ls[1] = {tc->rows};
	bool has_val = tc->vt != DSV32_DTYPE_COUNT, has_len = tc->lens[0] >= 0;
	dsv32_tensor x = tu_host(tc->xt, 2, xs), idx = tu_host(tc->it, 2, os);
	dsv32_tensor val = has_val ? tu_host(tc->vt, 2, os) : (dsv32_tensor){0};
	dsv32_tensor lens = has_len ? tu_host(DSV32_I64, 1, ls) : (dsv32_tensor){0};
	for (int64_t i = 0; i < (int64_t)tc->rows * tc->n; i++)
		tu_set_f32(&x, i, tricky(&r));
	for (int64_t i = 0; i < (int64_t)tc->rows * tc->k; i++) { /* garbage */
		tu_set_f32(&idx, i, 1000 + (double)i);
		if (has_val)
			tu_set_f32(&val, i, 0.5 + (double)i);
	}
	if (has_len)
		memcpy(lens.data, tc->lens, sizeof(int64_t) * (size_t)tc->rows);
	dsv32_tensor dx = gt_to_dev(dev, &x), di = gt_to_dev(dev, &idx);
	dsv32_tensor dv = has_val ? gt_to_dev(dev, &val) : (dsv32_tensor){0};
	dsv32_tensor dl = has_len ? gt_to_dev(dev, &lens) : (dsv32_tensor){0};
	dsv32_error e = {0};
	if (has_len) {
		assert_int_equal(dsv32_topk_len(cpu, &idx, has_val ? &val : NULL, &x, &lens, tc->k, &e),
				 DSV32_OK);
		assert_int_equal(dsv32_topk_len(dev, &di, has_val ? &dv : NULL, &dx, &dl, tc->k, &e),
				 DSV32_OK);
	} else {
		assert_int_equal(dsv32_topk(cpu, &idx, has_val ? &val : NULL, &x, tc->k, &e), DSV32_OK);
		assert_int_equal(dsv32_topk(dev, &di, has_val ? &dv : NULL, &dx, tc->k, &e), DSV32_OK);
	}
	dsv32_tensor gi = gt_from_dev(dev, &di);
	gt_assert_bits_equal(has_len ? "gpu topk_len idx" : "gpu topk idx", &gi, &idx);
	dsv32_tensor_free(&gi);
	if (has_val) {
		dsv32_tensor gv = gt_from_dev(dev, &dv);
		gt_assert_bits_equal(has_len ? "gpu topk_len val" : "gpu topk val", &gv, &val);
		dsv32_tensor_free(&gv);
	}
	gt_free(dev, &dx); gt_free(dev, &di); gt_free(dev, &dv); gt_free(dev, &dl);
	dsv32_tensor_free(&x); dsv32_tensor_free(&idx); dsv32_tensor_free(&val);
	dsv32_tensor_free(&lens);
}

static void twin_topk_len(dsv32_backend *cpu, dsv32_backend *dev)
{
	const dsv32_dtype NONE = DSV32_DTYPE_COUNT;
	const topk_twin_case cases[] = {
		/* short rows: 0, < k, = k, > k, = n */
		{7, 37, 5, DSV32_F32, DSV32_I64, DSV32_F32, {37, 0, 1, 4, 5, 36, 20}},
		{5, 1000, 16, DSV32_BF16, DSV32_I32, DSV32_BF16, {1000, 15, 16, 17, 999}},
		{3, 5000, 2048, DSV32_BF16, DSV32_I64, DSV32_F32, {5000, 2047, 3000}},
		{4, 129, 129, DSV32_F32, DSV32_I32, NONE, {129, 128, 0, 64}}, /* k = n */
		{1, 1, 1, DSV32_F32, DSV32_I64, DSV32_F32, {0}},
		{2, 1, 1, DSV32_BF16, DSV32_I32, DSV32_BF16, {1, 0}},
		/* plain topk with the dtypes the existing twin does not use */
		{5, 1000, 16, DSV32_F32, DSV32_I32, DSV32_F32, {-1}},
		{3, 300, 17, DSV32_BF16, DSV32_I64, DSV32_BF16, {-1}},
		{2, 77, 77, DSV32_F32, DSV32_I64, NONE, {-1}},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		twin_topk_case(cpu, dev, &cases[i], 700 + i);
}

static void test_topk_len_and_dtypes_gpu_are_bit_exact(void **state)
{
	dsv32_backend *dev = gt_dev_backend_or_null();
	if (!dev)
		skip();
	twin_topk_len(*state, dev);
	dsv32_backend_destroy(dev);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_topk_matches_oracle_with_ties_nan_and_signed_zero),
		cmocka_unit_test(test_topk_golden_tie_keeps_lower_index),
		cmocka_unit_test(test_topk_rejects_bad_k),
		cmocka_unit_test(test_topk_len_pads_short_rows),
		cmocka_unit_test(test_topk_cuda_twin_is_bit_exact),
		cmocka_unit_test(test_topk_len_and_dtypes_gpu_are_bit_exact),
	};
	return cmocka_run_group_tests(tests, tc_setup_cpu_backend, tc_teardown_backend);
}
