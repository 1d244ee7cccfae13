/* test_gemm.c: the GEMM family (kernels/gemm.h) against double-precision oracles written from
 * the contract: y = Σ_k x·w in exact arithmetic, rounded once to bf16 when y is BF16.
 * Budgets: bit-exact where every fp32 partial sum is exact (small integers); otherwise an F32 y
 * within K·2^-24·Σ|x·w| of the exact sum (fp32 summation in any order) and a BF16 y within one
 * bf16 ulp of the exact sum rounded once, plus that same fp32 bound (which only matters under
 * heavy cancellation; otherwise it is far below half a bf16 ulp and only near-ties move by 1).
 * The CPU group runs four times: the fixed engine (avx2 body, then the scalar body) and the
 * host engine (oneDNN/AVX2 body, then the portable sgemm body); the CUDA group runs the same
 * cases on a device and skips without one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "kernels/gemm.h"
#include "tests/support/test_util.h"
#include "tests/support/test_common.h"

enum { OP_NT, OP_NN, OP_NT_BATCHED, OP_NN_BATCHED };

static const char *op_name[] = {"gemm", "gemm_nn", "gemm_batched", "gemm_nn_batched"};

typedef struct {
	int op;
	int64_t Bt, M, N, K;
	dsv32_dtype xt, wt, yt;
	bool ints; /* small-integer data: every partial sum exact */
	uint64_t seed;
} gcase;

static void fill(dsv32_tensor *t, tu_rng *r, bool ints)
{
	int64_t n = dsv32_tensor_numel(t);
	for (int64_t i = 0; i < n; i++)
		tu_set_f32(t, i, ints ? (double)tu_int(r, -8, 8) : (tu_uniform(r) * 2.0 - 1.0) *
				    ldexp(1.0, tu_int(r, -3, 3)));
}

/* element (b, n, k) of w for the op's layout */
static int64_t widx(const gcase *c, int64_t b, int64_t n, int64_t k)
{
	bool nt = c->op == OP_NT || c->op == OP_NT_BATCHED;
	return b * c->N * c->K + (nt ? n * c->K + k : k * c->N + n);
}

/* Run the case on be and check every output against the oracle; returns the worst error in
 * units of the budget (<= 1 passes). */
static void run_case(dsv32_backend *be, const gcase *c)
{
	tu_rng r = tu_rng_xorshift64(c->seed);
	bool batched = c->op >= OP_NT_BATCHED;
	int64_t Bt = batched ? c->Bt : 1;
	dsv32_tensor x, w, y;
	if (batched) {
		x = tu_hostv(c->xt, 3, Bt, c->M, c->K);
		w = c->op == OP_NT_BATCHED ? tu_hostv(c->wt, 3, Bt, c->N, c->K)
					   : tu_hostv(c->wt, 3, Bt, c->K, c->N);
		y = tu_hostv(c->yt, 3, Bt, c->M, c->N);
	} else {
		x = tu_hostv(c->xt, 2, c->M, c->K);
		w = c->op == OP_NT ? tu_hostv(c->wt, 2, c->N, c->K) : tu_hostv(c->wt, 2, c->K, c->N);
		y = tu_hostv(c->yt, 2, c->M, c->N);
	}
	fill(&x, &r, c->ints);
	fill(&w, &r, c->ints);
	dsv32_tensor dx = tu_to_dev(be, &x), dw = tu_to_dev(be, &w), dy = tu_to_dev(be, &y);
	dsv32_error err = {0};
	dsv32_status (*fn[])(dsv32_backend *, dsv32_tensor *, const dsv32_tensor *,
			     const dsv32_tensor *, dsv32_error *) = {
		dsv32_gemm, dsv32_gemm_nn, dsv32_gemm_batched, dsv32_gemm_nn_batched};
	dsv32_status rc = fn[c->op](be, &dy, &dx, &dw, &err);
	if (rc != DSV32_OK)
		fail_msg("%s: %s", op_name[c->op], err.what);
	tu_back(be, &y, &dy);
	dsv32_backend_free(be, &dx);
	dsv32_backend_free(be, &dw);
	for (int64_t b = 0; b < Bt; b++)
		for (int64_t m = 0; m < c->M; m++)
			for (int64_t n = 0; n < c->N; n++) {
				double s = 0.0, sa = 0.0;
				for (int64_t k = 0; k < c->K; k++) {
					double p = tu_get(&x, (b * c->M + m) * c->K + k) *
						   tu_get(&w, widx(c, b, n, k));
					s += p;
					sa += fabs(p);
				}
				int64_t i = (b * c->M + m) * c->N + n;
				double got = tu_get(&y, i);
				double want = c->yt == DSV32_BF16 ? tu_bf16_rne(s) : s;
				double tol = c->ints ? 0.0
					     : (double)c->K * 0x1p-24 * sa +
						     (c->yt == DSV32_BF16 ? tu_bf16_spacing(want) : 0.0);
				if (!(fabs(got - want) <= tol))
					fail_msg("%s %s x %s -> %s [B%lld M%lld N%lld K%lld seed "
						 "%llu] y[%lld,%lld,%lld] = %.9g, want %.9g (tol %.3g)",
						 op_name[c->op], dsv32_dtype_name(c->xt),
						 dsv32_dtype_name(c->wt), dsv32_dtype_name(c->yt),
						 (long long)Bt, (long long)c->M, (long long)c->N,
						 (long long)c->K, (unsigned long long)c->seed,
						 (long long)b, (long long)m, (long long)n, got, want, tol);
			}
	dsv32_tensor_free(&x);
	dsv32_tensor_free(&w);
	dsv32_tensor_free(&y);
}

static const dsv32_dtype combos[][3] = {
	{DSV32_BF16, DSV32_BF16, DSV32_BF16}, {DSV32_BF16, DSV32_BF16, DSV32_F32},
	{DSV32_F32, DSV32_F32, DSV32_F32},    {DSV32_F32, DSV32_F32, DSV32_BF16},
	{DSV32_F32, DSV32_BF16, DSV32_BF16},  {DSV32_BF16, DSV32_F32, DSV32_F32},
	{DSV32_F32, DSV32_BF16, DSV32_F32},   {DSV32_BF16, DSV32_F32, DSV32_BF16},
};

static void run_all_combos(dsv32_backend *be, int op, int64_t Bt, int64_t M, int64_t N,
			   int64_t K, bool ints)
{
	for (size_t i = 0; i < sizeof combos / sizeof combos[0]; i++) {
		gcase c = {op, Bt, M, N, K, combos[i][0], combos[i][1], combos[i][2], ints,
			   1000 + i * 7 + (uint64_t)op};
		run_case(be, &c);
	}
}

static void test_gemm_small_integers_are_bit_exact(void **state)
{
	tc_skip_without_backend(state);
	run_all_combos(*state, OP_NT, 1, 5, 9, 37, true);
	run_all_combos(*state, OP_NN, 1, 5, 9, 37, true);
}

static void test_gemm_random_matches_oracle_within_budget(void **state)
{
	tc_skip_without_backend(state);
	run_all_combos(*state, OP_NT, 1, 33, 65, 300, false);
	run_all_combos(*state, OP_NN, 1, 17, 70, 129, false);
}

static void test_gemm_wide_panels_match_oracle(void **state)
{
	/* N above one widened panel of w (2 MiB / 4 / K columns) and K = 7168 */
	tc_skip_without_backend(state);
	gcase c = {OP_NT, 1, 3, 200, 7168, DSV32_BF16, DSV32_BF16, DSV32_BF16, false, 77};
	run_case(*state, &c);
	c.op = OP_NN;
	c.yt = DSV32_F32;
	run_case(*state, &c);
}

static void test_gemm_odd_shapes(void **state)
{
	tc_skip_without_backend(state);
	run_all_combos(*state, OP_NT, 1, 1, 3, 7, false);
	run_all_combos(*state, OP_NN, 1, 1, 3, 7, false);
	run_all_combos(*state, OP_NT, 1, 3, 1, 1, true);
}

static void test_gemm_batched_and_nn_batched(void **state)
{
	tc_skip_without_backend(state);
	run_all_combos(*state, OP_NT_BATCHED, 3, 4, 6, 40, false);
	run_all_combos(*state, OP_NN_BATCHED, 3, 4, 6, 40, false);
	run_all_combos(*state, OP_NN_BATCHED, 2, 3, 5, 11, true);
}

/* x [2, 3, K] flattens to 6 rows; the result keeps x's leading dims. */
static void test_gemm_flattens_leading_dims(void **state)
{
	tc_skip_without_backend(state);
	dsv32_backend *be = *state;
	tu_rng r = tu_rng_xorshift64(5);
	dsv32_tensor x = tu_hostv(DSV32_BF16, 3, (int64_t)2, (int64_t)3, (int64_t)10);
	dsv32_tensor w = tu_hostv(DSV32_BF16, 2, (int64_t)4, (int64_t)10);
	dsv32_tensor y = tu_hostv(DSV32_BF16, 3, (int64_t)2, (int64_t)3, (int64_t)4);
	fill(&x, &r, true);
	fill(&w, &r, true);
	dsv32_tensor dx = tu_to_dev(be, &x), dw = tu_to_dev(be, &w), dy = tu_to_dev(be, &y);
	assert_int_equal(dsv32_gemm(be, &dy, &dx, &dw, NULL), DSV32_OK);
	tu_back(be, &y, &dy);
	for (int64_t m = 0; m < 6; m++)
		for (int64_t n = 0; n < 4; n++) {
			double s = 0;
			for (int64_t k = 0; k < 10; k++)
				s += tu_get(&x, m * 10 + k) * tu_get(&w, n * 10 + k);
			assert_true(tu_get(&y, m * 4 + n) == s);
		}
	dsv32_backend_free(be, &dx);
	dsv32_backend_free(be, &dw);
	dsv32_tensor_free(&x);
	dsv32_tensor_free(&w);
	dsv32_tensor_free(&y);
}

/* Per-head slices of q [S, H, D] and k [T, H, D] through the strided descriptor:
 * scores[h, s, t] = Σ_d q[s,h,d]·k[t,h,d]. */
static void test_gemm_desc_strided_heads(void **state)
{
	tc_skip_without_backend(state);
	dsv32_backend *be = *state;
	const int64_t S = 3, T = 5, H = 4, D = 16;
	tu_rng r = tu_rng_xorshift64(9);
	dsv32_tensor q = tu_hostv(DSV32_BF16, 3, S, H, D), k = tu_hostv(DSV32_BF16, 3, T, H, D);
	dsv32_tensor y = tu_hostv(DSV32_F32, 3, H, S, T);
	fill(&q, &r, true);
	fill(&k, &r, true);
	dsv32_tensor dq = tu_to_dev(be, &q), dk = tu_to_dev(be, &k), dy = tu_to_dev(be, &y);
	dsv32_gemm_desc d = {.batch = H, .M = S, .N = T, .K = D, .trans_w = true,
			     .x_dtype = DSV32_BF16, .w_dtype = DSV32_BF16, .y_dtype = DSV32_F32,
			     .x = dq.data, .ldx = H * D, .stride_x = D,
			     .w = dk.data, .ldw = H * D, .stride_w = D,
			     .y = dy.data, .ldy = T, .stride_y = S * T};
	dsv32_error err = {0};
	if (dsv32_gemm_run(be, &d, &err) != DSV32_OK)
		fail_msg("gemm_run: %s", err.what);
	tu_back(be, &y, &dy);
	for (int64_t h = 0; h < H; h++)
		for (int64_t s = 0; s < S; s++)
			for (int64_t t = 0; t < T; t++) {
				double want = 0;
				for (int64_t j = 0; j < D; j++)
					want += tu_get(&q, (s * H + h) * D + j) *
						tu_get(&k, (t * H + h) * D + j);
				assert_true(tu_get(&y, (h * S + s) * T + t) == want);
			}
	dsv32_backend_free(be, &dq);
	dsv32_backend_free(be, &dk);
	dsv32_tensor_free(&q);
	dsv32_tensor_free(&k);
	dsv32_tensor_free(&y);
}

/* A subnormal bf16 input (2^-133) times 2^127 gives 2^-6: kept by the fixed engine, the
 * sgemm-widened path and cuBLAS; counted as zero where the host engine runs vdpbf16ps, in
 * oneDNN or in our dpbf16 body (gemm.h states this). */
static void test_gemm_bf16_subnormal_input_handling(void **state)
{
	tc_skip_without_backend(state);
	dsv32_backend *be = *state;
	dsv32_tensor x = tu_hostv(DSV32_BF16, 2, (int64_t)1, (int64_t)2);
	dsv32_tensor w = tu_hostv(DSV32_BF16, 2, (int64_t)1, (int64_t)2);
	dsv32_tensor y = tu_hostv(DSV32_F32, 2, (int64_t)1, (int64_t)1);
	((uint16_t *)x.data)[0] = 0x0001; /* 2^-133 */
	((uint16_t *)w.data)[0] = 0x7f00; /* 2^127 */
	dsv32_tensor dx = tu_to_dev(be, &x), dw = tu_to_dev(be, &w), dy = tu_to_dev(be, &y);
	assert_int_equal(dsv32_gemm(be, &dy, &dx, &dw, NULL), DSV32_OK);
	tu_back(be, &y, &dy);
	bool flushes = be->device == DSV32_DEV_CPU && be->gemm_engine == DSV32_GEMM_HOST &&
		       (strncmp(dsv32_gemm_bf16_impl(), "onednn", 6) == 0 ||
			strcmp(dsv32_gemm_bf16_impl(), "dsv32:dpbf16-seq") == 0);
	printf("# bf16 CPU body: %s\n", dsv32_gemm_bf16_impl());
	assert_true(tu_get(&y, 0) == (flushes ? 0.0 : 0x1p-6));
	dsv32_backend_free(be, &dx);
	dsv32_backend_free(be, &dw);
	dsv32_tensor_free(&x);
	dsv32_tensor_free(&w);
	dsv32_tensor_free(&y);
}

static void test_gemm_rejects_bad_arguments(void **state)
{
	tc_skip_without_backend(state);
	dsv32_backend *be = *state;
	dsv32_tensor x = tu_hostv(DSV32_BF16, 2, (int64_t)2, (int64_t)8);
	dsv32_tensor w = tu_hostv(DSV32_BF16, 2, (int64_t)3, (int64_t)7);
	dsv32_tensor y = tu_hostv(DSV32_BF16, 2, (int64_t)2, (int64_t)3);
	dsv32_tensor w8 = tu_hostv(DSV32_F8_E4M3, 2, (int64_t)3, (int64_t)8);
	dsv32_tensor dx = tu_to_dev(be, &x), dw = tu_to_dev(be, &w), dy = tu_to_dev(be, &y);
	dsv32_tensor dw8 = tu_to_dev(be, &w8);
	dsv32_error err = {0};
	assert_int_equal(dsv32_gemm(be, &dy, &dx, &dw, &err), DSV32_E_SHAPE);
	assert_non_null(strstr(err.what, "[3, 7]"));
	assert_int_equal(dsv32_gemm(be, &dy, &dx, &dw8, &err), DSV32_E_DTYPE);
	assert_int_equal(dsv32_gemm(be, &dx, &dx, &dw8, &err), DSV32_E_DTYPE);
	dsv32_tensor alias = dx; /* y viewing x's storage */
	alias.shape[1] = 3;
	dsv32_tensor w3 = tu_hostv(DSV32_BF16, 2, (int64_t)3, (int64_t)8);
	dsv32_tensor dw3 = tu_to_dev(be, &w3);
	assert_int_equal(dsv32_gemm(be, &alias, &dx, &dw3, &err), DSV32_E_USAGE);
	assert_int_equal(dsv32_gemm(be, &dy, &dx, &dw3, &err), DSV32_OK);
	dsv32_backend_free(be, &dx);
	dsv32_backend_free(be, &dw);
	dsv32_backend_free(be, &dy);
	dsv32_backend_free(be, &dw8);
	dsv32_backend_free(be, &dw3);
	dsv32_tensor_free(&x);
	dsv32_tensor_free(&w);
	dsv32_tensor_free(&y);
	dsv32_tensor_free(&w8);
	dsv32_tensor_free(&w3);
}

#define ALL_TESTS                                                   \
	cmocka_unit_test(test_gemm_small_integers_are_bit_exact),      \
	cmocka_unit_test(test_gemm_random_matches_oracle_within_budget), \
	cmocka_unit_test(test_gemm_wide_panels_match_oracle),          \
	cmocka_unit_test(test_gemm_odd_shapes),                        \
	cmocka_unit_test(test_gemm_batched_and_nn_batched),            \
	cmocka_unit_test(test_gemm_flattens_leading_dims),             \
	cmocka_unit_test(test_gemm_desc_strided_heads),                \
	cmocka_unit_test(test_gemm_bf16_subnormal_input_handling),     \
	cmocka_unit_test(test_gemm_rejects_bad_arguments)

static int setup_host(void **state)
{
	int rc = tc_setup_cpu_backend(state);
	if (rc == 0)
		((dsv32_backend *)*state)->gemm_engine = DSV32_GEMM_HOST;
	return rc;
}

int main(void)
{
	const struct CMUnitTest tests[] = {ALL_TESTS};
	int rc = cmocka_run_group_tests_name("gemm_cpu_fixed", tests, tc_setup_cpu_backend,
					 tc_teardown_backend);
	rc |= cmocka_run_group_tests_name("gemm_cpu_host", tests, setup_host, tc_teardown_backend);
	setenv("DSV32_GEMM_NO_AVX2", "1", 1); /* the scalar fixed body; host: the sgemm paths */
	rc |= cmocka_run_group_tests_name("gemm_cpu_fixed_scalar", tests, tc_setup_cpu_backend,
					 tc_teardown_backend);
	rc |= cmocka_run_group_tests_name("gemm_cpu_host_portable", tests, setup_host,
					 tc_teardown_backend);
	unsetenv("DSV32_GEMM_NO_AVX2");
	rc |= cmocka_run_group_tests_name("gemm_cuda", tests, tc_setup_cuda_backend,
					 tc_teardown_backend);
	return rc;
}
