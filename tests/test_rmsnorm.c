/* test_rmsnorm.c: RMSNorm (kernels/rmsnorm.h) against double-precision oracles written from
 * docs/spec/ref_layout.md §A.2 and docs/spec/hf_layout.md §5; the planted-bug switch; the GPU twin. */
#include "tests/support/test_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/rmsnorm.h"
#include "tests/support/gpu_twin.h"

#define ROWS 7
#define DIM 301
#define EPS 1e-6

/* Inputs with edge rows: zeros, huge, tiny, -0 with a spike; the rest normal. */
static void fill_rows(dsv32_tensor *x, tu_rng *r, double scale)
{
	tu_fill_normal(x, r, scale);
	for (int64_t j = 0; j < DIM; j++) {
		tu_set(x, 0 * DIM + j, 0.0);
		tu_set(x, 1 * DIM + j, 1e15 * tu_normal(r));
		tu_set(x, 2 * DIM + j, 1e-30 * tu_normal(r));
		tu_set(x, 3 * DIM + j, j % 2 ? -0.0 : 0.01 * tu_normal(r));
	}
	tu_set(x, 3 * DIM + 17, 3000.0);
}

static dsv32_tensor make_w(dsv32_dtype t, tu_rng *r)
{
	int64_t s[1] = {DIM};
	dsv32_tensor w = tu_host(t, 1, s);
	for (int64_t j = 0; j < DIM; j++) /* bf16-representable, as checkpoints hold */
		tu_set(&w, j, tu_bf16_rne(1.0 + 0.05 * tu_normal(r)));
	return w;
}

/* Oracle: r (already the contract's fp32 r), double norm, roundings per mode. */
static void oracle(const double *rr, const dsv32_tensor *w, int hf_or_planted, dsv32_dtype yt,
		   double *y)
{
	for (int64_t i = 0; i < ROWS; i++) {
		double ss = 0;
		for (int64_t j = 0; j < DIM; j++)
			ss += rr[i * DIM + j] * rr[i * DIM + j];
		double inv = 1.0 / sqrt(ss / DIM + EPS);
		for (int64_t j = 0; j < DIM; j++) {
			double xn = rr[i * DIM + j] * inv;
			if (hf_or_planted && yt == DSV32_BF16)
				xn = tu_bf16_rne(xn);
			double v = tu_get(w, j) * xn;
			y[i * DIM + j] = yt == DSV32_BF16 ? tu_bf16_rne(v) : (double)(float)v;
		}
	}
}

static void test_rmsnorm_matches_oracle(void **state)
{
	dsv32_backend *be = *state;
	tu_rng r;
	r = tu_rng_seed(11);
	int64_t s[2] = {ROWS, DIM};
	for (int yf = 0; yf < 2; yf++) {
		dsv32_dtype t = yf ? DSV32_F32 : DSV32_BF16;
		dsv32_tensor x = tu_host(t, 2, s), y = tu_host(t, 2, s), w = make_w(DSV32_F32, &r);
		fill_rows(&x, &r, 1.0);
		double *rr = malloc(sizeof(double) * ROWS * DIM), *want = malloc(sizeof(double) * ROWS * DIM);
		for (int64_t i = 0; i < ROWS * DIM; i++)
			rr[i] = tu_get(&x, i);
		oracle(rr, &w, 0, t, want);
		assert_int_equal(dsv32_rmsnorm(be, &y, &x, &w, EPS, NULL), DSV32_OK);
		/* fp32 sum of squares and three fp32 roundings before the final one: <= 1 ulp of the
		 * output dtype for bf16; fp32 outputs carry the fp32 summation error (~sqrt(dim) u) */
		tu_check_ulps_d(t == DSV32_BF16 ? "rmsnorm y bf16" : "rmsnorm y f32", &y, want,
				t == DSV32_BF16 ? 1 : 16);
		free(rr);
		free(want);
		dsv32_tensor_free(&x);
		dsv32_tensor_free(&y);
		dsv32_tensor_free(&w);
	}
}

static void test_rmsnorm_add_residual_is_bit_exact(void **state)
{
	dsv32_backend *be = *state;
	tu_rng r;
	r = tu_rng_seed(12);
	int64_t s[2] = {ROWS, DIM};
	dsv32_tensor x = tu_host(DSV32_BF16, 2, s), res = tu_host(DSV32_BF16, 2, s);
	dsv32_tensor y = tu_host(DSV32_BF16, 2, s), ro = tu_host(DSV32_BF16, 2, s);
	dsv32_tensor w = make_w(DSV32_F32, &r);
	fill_rows(&x, &r, 1.0);
	tu_fill_normal(&res, &r, 3.0);
	double *rr = malloc(sizeof(double) * ROWS * DIM), *want = malloc(sizeof(double) * ROWS * DIM);
	double *rwant = malloc(sizeof(double) * ROWS * DIM);
	for (int64_t i = 0; i < ROWS * DIM; i++) {
		rr[i] = (double)(float)(tu_get(&x, i) + tu_get(&res, i)); /* one fp32 add */
		rwant[i] = tu_bf16_rne(rr[i]);
	}
	oracle(rr, &w, 0, DSV32_BF16, want); /* y from the UNROUNDED fp32 r */
	assert_int_equal(dsv32_rmsnorm_add(be, &y, &ro, &x, &res, &w, EPS, NULL), DSV32_OK);
	tu_check_ulps_d("rmsnorm_add res_out", &ro, rwant, 0);
	tu_check_ulps_d("rmsnorm_add y", &y, want, 1);
	/* in place: res_out aliases res gives the same bits */
	dsv32_tensor y2 = tu_host(DSV32_BF16, 2, s);
	assert_int_equal(dsv32_rmsnorm_add(be, &y2, &res, &x, &res, &w, EPS, NULL), DSV32_OK);
	tu_check_ulps("rmsnorm_add in place res", &res, &ro, 0);
	tu_check_ulps("rmsnorm_add in place y", &y2, &y, 0);
	free(rr);
	free(want);
	free(rwant);
	dsv32_tensor_free(&x); dsv32_tensor_free(&res); dsv32_tensor_free(&y);
	dsv32_tensor_free(&ro); dsv32_tensor_free(&w); dsv32_tensor_free(&y2);
}

static void test_rmsnorm_hf_rounds_twice(void **state)
{
	dsv32_backend *be = *state;
	tu_rng r;
	r = tu_rng_seed(13);
	int64_t s[2] = {ROWS, DIM};
	dsv32_tensor x = tu_host(DSV32_BF16, 2, s), yh = tu_host(DSV32_BF16, 2, s);
	dsv32_tensor yr = tu_host(DSV32_BF16, 2, s);
	dsv32_tensor wb = make_w(DSV32_BF16, &r), wf = tu_host(DSV32_F32, 1, (int64_t[]){DIM});
	for (int64_t j = 0; j < DIM; j++)
		tu_set(&wf, j, tu_get(&wb, j));
	fill_rows(&x, &r, 1.0);
	double *rr = malloc(sizeof(double) * ROWS * DIM), *want = malloc(sizeof(double) * ROWS * DIM);
	for (int64_t i = 0; i < ROWS * DIM; i++)
		rr[i] = tu_get(&x, i);
	oracle(rr, &wb, 1, DSV32_BF16, want);
	assert_int_equal(dsv32_rmsnorm_hf(be, &yh, &x, &wb, EPS, NULL), DSV32_OK);
	/* bf16(xn) can land on the other side of a tie than the double oracle (1 ulp of h), which
	 * the weight multiply carries into y: <= 1 ulp */
	tu_check_ulps_d("rmsnorm_hf y", &yh, want, 1);
	assert_int_equal(dsv32_rmsnorm(be, &yr, &x, &wf, EPS, NULL), DSV32_OK);
	int differ = 0;
	for (int64_t i = 0; i < ROWS * DIM; i++)
		differ += tu_get(&yh, i) != tu_get(&yr, i);
	/* the double rounding is visible: same weights, same input, other bits */
	assert_true(differ > 0);

	/* crafted single case: x = [3, 4] and a weight where one rounding and two disagree */
	int64_t s2[2] = {1, 2};
	dsv32_tensor cx = tu_host(DSV32_BF16, 2, s2), cy1 = tu_host(DSV32_BF16, 2, s2);
	dsv32_tensor cy2 = tu_host(DSV32_BF16, 2, s2);
	dsv32_tensor cwb = tu_host(DSV32_BF16, 1, (int64_t[]){2});
	dsv32_tensor cwf = tu_host(DSV32_F32, 1, (int64_t[]){2});
	tu_set(&cx, 0, 3.0);
	tu_set(&cx, 1, 4.0);
	double xn0 = 3.0 / sqrt(12.5 + EPS), found = 0;
	for (int k = 0; k < 128 && !found; k++) {
		double wv = 1.0 + k / 128.0; /* bf16 values in [1, 2) */
		if (tu_bf16_rne(wv * xn0) != tu_bf16_rne(wv * tu_bf16_rne(xn0)))
			found = wv;
	}
	assert_true(found != 0);
	tu_set(&cwb, 0, found); tu_set(&cwb, 1, 1.0);
	tu_set(&cwf, 0, found); tu_set(&cwf, 1, 1.0);
	assert_int_equal(dsv32_rmsnorm_hf(be, &cy1, &cx, &cwb, EPS, NULL), DSV32_OK);
	assert_int_equal(dsv32_rmsnorm(be, &cy2, &cx, &cwf, EPS, NULL), DSV32_OK);
	assert_true(tu_get(&cy1, 0) == tu_bf16_rne(found * tu_bf16_rne(xn0)));
	assert_true(tu_get(&cy2, 0) == tu_bf16_rne(found * xn0));
	assert_true(tu_get(&cy1, 0) != tu_get(&cy2, 0));
	free(rr);
	free(want);
	dsv32_tensor_free(&x); dsv32_tensor_free(&yh); dsv32_tensor_free(&yr);
	dsv32_tensor_free(&wb); dsv32_tensor_free(&wf); dsv32_tensor_free(&cx);
	dsv32_tensor_free(&cy1); dsv32_tensor_free(&cy2); dsv32_tensor_free(&cwb);
	dsv32_tensor_free(&cwf);
}

static void test_rmsnorm_planted_flag_pre_rounds(void **state)
{
	dsv32_backend *be = *state;
	tu_rng r;
	r = tu_rng_seed(14);
	int64_t s[2] = {ROWS, DIM};
	dsv32_tensor x = tu_host(DSV32_BF16, 2, s), y = tu_host(DSV32_BF16, 2, s);
	dsv32_tensor y0 = tu_host(DSV32_BF16, 2, s), w = make_w(DSV32_F32, &r);
	fill_rows(&x, &r, 1.0);
	double *rr = malloc(sizeof(double) * ROWS * DIM), *want = malloc(sizeof(double) * ROWS * DIM);
	for (int64_t i = 0; i < ROWS * DIM; i++)
		rr[i] = tu_get(&x, i);
	oracle(rr, &w, 1, DSV32_BF16, want);
	assert_int_equal(dsv32_rmsnorm(be, &y0, &x, &w, EPS, NULL), DSV32_OK);
	static const dsv32_test_hooks planted = {.rmsnorm_no_final_round = true};
	be->test_hooks = &planted;
	dsv32_status rc = dsv32_rmsnorm(be, &y, &x, &w, EPS, NULL);
	be->test_hooks = NULL;
	assert_int_equal(rc, DSV32_OK);
	tu_check_ulps_d("planted rmsnorm", &y, want, 1);
	int differ = 0;
	for (int64_t i = 0; i < ROWS * DIM; i++)
		differ += tu_get(&y, i) != tu_get(&y0, i);
	assert_true(differ > ROWS * DIM / 20); /* the bug is loud: many elements move */
	free(rr);
	free(want);
	dsv32_tensor_free(&x); dsv32_tensor_free(&y); dsv32_tensor_free(&y0); dsv32_tensor_free(&w);
}

static void test_rmsnorm_rejects_bad_arguments(void **state)
{
	dsv32_backend *be = *state;
	int64_t s[2] = {2, 8}, s2[2] = {2, 9};
	dsv32_tensor x = tu_host(DSV32_BF16, 2, s), y = tu_host(DSV32_BF16, 2, s2);
	dsv32_tensor wb = tu_host(DSV32_BF16, 1, (int64_t[]){8});
	dsv32_tensor y8 = tu_host(DSV32_BF16, 2, s);
	dsv32_error err = {0};
	assert_int_equal(dsv32_rmsnorm(be, &y, &x, &wb, EPS, &err), DSV32_E_SHAPE);
	assert_int_equal(dsv32_rmsnorm(be, &y8, &x, &wb, EPS, &err), DSV32_E_DTYPE);
	assert_non_null(strstr(err.what, "w dtype BF16"));
	assert_int_equal(dsv32_rmsnorm_add(be, &y8, &y8, &x, &x, &wb, EPS, &err), DSV32_E_USAGE);
	dsv32_tensor_free(&x); dsv32_tensor_free(&y); dsv32_tensor_free(&wb); dsv32_tensor_free(&y8);
}

static void test_rmsnorm_gpu_matches_cpu(void **state)
{
	dsv32_backend *cpu = *state, *gpu = gt_dev_backend_or_null();
	if (!gpu)
		skip();
	tu_rng r;
	r = tu_rng_seed(15);
	int64_t s[2] = {ROWS, DIM};
	dsv32_tensor x = tu_host(DSV32_BF16, 2, s), res = tu_host(DSV32_BF16, 2, s);
	dsv32_tensor y = tu_host(DSV32_BF16, 2, s), ro = tu_host(DSV32_BF16, 2, s);
	dsv32_tensor yh = tu_host(DSV32_BF16, 2, s);
	dsv32_tensor w = make_w(DSV32_F32, &r), wb = make_w(DSV32_BF16, &r);
	fill_rows(&x, &r, 1.0);
	tu_fill_normal(&res, &r, 2.0);
	assert_int_equal(dsv32_rmsnorm_add(cpu, &y, &ro, &x, &res, &w, EPS, NULL), DSV32_OK);
	assert_int_equal(dsv32_rmsnorm_hf(cpu, &yh, &x, &wb, EPS, NULL), DSV32_OK);
	dsv32_tensor dx = tu_to_dev(gpu, &x), dres = tu_to_dev(gpu, &res), dy = tu_to_dev(gpu, &y);
	dsv32_tensor dro = tu_to_dev(gpu, &ro), dyh = tu_to_dev(gpu, &yh);
	dsv32_tensor dw = tu_to_dev(gpu, &w), dwb = tu_to_dev(gpu, &wb);
	assert_int_equal(dsv32_rmsnorm_add(gpu, &dy, &dro, &dx, &dres, &dw, EPS, NULL), DSV32_OK);
	assert_int_equal(dsv32_rmsnorm_hf(gpu, &dyh, &dx, &dwb, EPS, NULL), DSV32_OK);
	dsv32_tensor gy = tu_from_dev(gpu, &dy), gro = tu_from_dev(gpu, &dro);
	dsv32_tensor gyh = tu_from_dev(gpu, &dyh);
	tu_check_ulps("gpu rmsnorm_add res_out", &gro, &ro, 0);
	tu_check_ulps("gpu rmsnorm_add y", &gy, &y, 1); /* summation order only */
	tu_check_ulps("gpu rmsnorm_hf y", &gyh, &yh, 1);
	dsv32_backend_free(gpu, &dx); dsv32_backend_free(gpu, &dres); dsv32_backend_free(gpu, &dy);
	dsv32_backend_free(gpu, &dro); dsv32_backend_free(gpu, &dyh); dsv32_backend_free(gpu, &dw);
	dsv32_backend_free(gpu, &dwb);
	dsv32_backend_destroy(gpu);
	dsv32_tensor_free(&x); dsv32_tensor_free(&res); dsv32_tensor_free(&y); dsv32_tensor_free(&ro);
	dsv32_tensor_free(&yh); dsv32_tensor_free(&w); dsv32_tensor_free(&wb); dsv32_tensor_free(&gy);
	dsv32_tensor_free(&gro); dsv32_tensor_free(&gyh);
}

/* ---- GPU twin of the plain reference rmsnorm (dsv32_rmsnorm) ----
 * twin_* takes the second backend (gt_dev_backend_or_null: CUDA, or a CPU backend in a dry-run
 * build). rmsnorm.h: the CUDA body sums the squares in another order (not part of the
 * contract); everything after the sum is the shared per-element math. So:
 *   * inputs whose squares and partial sums are all exact in fp32 (small integers) make the
 *     sum order-independent: both bodies must then agree bit for bit, both output dtypes;
 *   * general inputs with a BF16 output: the two fp32 sums differ by a few fp32 ulps, far
 *     below a bf16 ulp, so y may differ only where the fp32 value sits at a rounding
 *     boundary: <= 1 bf16 ulp. (The contract states no bound for an F32 output with general
 *     inputs; none is tested.) */
static void twin_rmsnorm_exact_case(dsv32_backend *cpu, dsv32_backend *dev, int64_t rows,
				    int64_t dim, dsv32_dtype xt, dsv32_dtype yt, bool in_place)
{
	tu_rng r;
	r = tu_rng_seed(300 + (uint64_t)(rows * 1000 + dim));
	int64_t s[2] = {rows, dim}, sw[1] = {dim};
	dsv32_tensor x = tu_host(xt, 2, s), y = tu_host(yt, 2, s), w = tu_host(DSV32_F32, 1, sw);
	/* |x| <= 16: squares <= 256, sums <= 1001 * 256 < 2^24, every partial sum exact */
	for (int64_t i = 0; i < rows * dim; i++)
		tu_set(&x, i, (double)((int64_t)(tu_uniform(&r) * 33) - 16));
	if (rows > 1)
		for (int64_t j = 0; j < dim; j++) /* a zero row: inv = 1 / sqrt(eps) */
			tu_set(&x, dim + j, j % 2 ? -0.0 : 0.0);
	for (int64_t j = 0; j < dim; j++)
		tu_set(&w, j, tu_bf16_rne(1.0 + 0.05 * tu_normal(&r)));
	dsv32_tensor dx = gt_to_dev(dev, &x), dy = gt_to_dev(dev, &y), dw = gt_to_dev(dev, &w);
	dsv32_tensor *hy = in_place ? &x : &y, *dyy = in_place ? &dx : &dy;
	assert_int_equal(dsv32_rmsnorm(cpu, hy, &x, &w, EPS, NULL), DSV32_OK);
	dsv32_error err = {0};
	assert_int_equal(dsv32_rmsnorm(dev, dyy, &dx, &dw, EPS, &err), DSV32_OK);
	dsv32_tensor g = gt_from_dev(dev, dyy);
	gt_assert_bits_equal(in_place ? "gpu rmsnorm exact sums, in place" : "gpu rmsnorm exact sums",
			     &g, hy);
	gt_free(dev, &dx); gt_free(dev, &dy); gt_free(dev, &dw);
	dsv32_tensor_free(&x); dsv32_tensor_free(&y); dsv32_tensor_free(&w); dsv32_tensor_free(&g);
}

static void twin_rmsnorm(dsv32_backend *cpu, dsv32_backend *dev)
{
	twin_rmsnorm_exact_case(cpu, dev, 5, 1001, DSV32_BF16, DSV32_BF16, false);
	twin_rmsnorm_exact_case(cpu, dev, 5, 1001, DSV32_BF16, DSV32_F32, false);
	twin_rmsnorm_exact_case(cpu, dev, 3, 257, DSV32_F32, DSV32_F32, false);
	twin_rmsnorm_exact_case(cpu, dev, 3, 257, DSV32_F32, DSV32_BF16, false);
	twin_rmsnorm_exact_case(cpu, dev, 4, 300, DSV32_BF16, DSV32_BF16, true);
	twin_rmsnorm_exact_case(cpu, dev, 1, 1, DSV32_BF16, DSV32_BF16, false); /* dim 1 */
	/* general bf16 inputs with the edge rows of fill_rows (zero, huge, tiny, signed zeros) */
	tu_rng r;
	r = tu_rng_seed(310);
	int64_t s[2] = {ROWS, DIM};
	dsv32_tensor x = tu_host(DSV32_BF16, 2, s), y = tu_host(DSV32_BF16, 2, s);
	dsv32_tensor w = make_w(DSV32_F32, &r);
	fill_rows(&x, &r, 1.0);
	assert_int_equal(dsv32_rmsnorm(cpu, &y, &x, &w, EPS, NULL), DSV32_OK);
	dsv32_tensor dx = gt_to_dev(dev, &x), dy = gt_to_dev(dev, &y), dw = gt_to_dev(dev, &w);
	assert_int_equal(dsv32_rmsnorm(dev, &dy, &dx, &dw, EPS, NULL), DSV32_OK);
	dsv32_tensor g = gt_from_dev(dev, &dy);
	tu_check_ulps("gpu rmsnorm y (bf16)", &g, &y, 1); /* summation order only */
	gt_free(dev, &dx); gt_free(dev, &dy); gt_free(dev, &dw);
	dsv32_tensor_free(&x); dsv32_tensor_free(&y); dsv32_tensor_free(&w); dsv32_tensor_free(&g);
}

static void test_rmsnorm_plain_gpu_matches_cpu(void **state)
{
	dsv32_backend *dev = gt_dev_backend_or_null();
	if (!dev)
		skip();
	twin_rmsnorm(*state, dev);
	dsv32_backend_destroy(dev);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rmsnorm_matches_oracle),
		cmocka_unit_test(test_rmsnorm_add_residual_is_bit_exact),
		cmocka_unit_test(test_rmsnorm_hf_rounds_twice),
		cmocka_unit_test(test_rmsnorm_planted_flag_pre_rounds),
		cmocka_unit_test(test_rmsnorm_rejects_bad_arguments),
		cmocka_unit_test(test_rmsnorm_gpu_matches_cpu),
		cmocka_unit_test(test_rmsnorm_plain_gpu_matches_cpu),
	};
	return cmocka_run_group_tests(tests, tc_setup_cpu_backend, tc_teardown_backend);
}
