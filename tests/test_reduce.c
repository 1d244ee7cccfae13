/* test_reduce.c: the torch-order reductions of kernels/reduce.h.
 *
 * cmocka tests: (1) the cascade sum against an independent re-statement of SumKernel.cpp's order
 * (written lane-first, for the sizes without the level cascade) bit-exactly, and against a
 * double-precision sum within the fp32 error bound for long rows (level cascade active);
 * (2) an input where the torch order and the sequential order give different fp32 results, so the
 * order is really tested; (3) the Welford moments against double-precision two-pass moments
 * (<= 4 fp32 ulps of the scale; exact for constant rows).
 *
 * Emit mode for tests/py_test_torch_reductions.py (bit-exact comparison with the installed torch):
 *   test_reduce --emit OP LANES ROWS DIM DTYPE IN OUT
 *   OP sum:         IN f32 x[ROWS*DIM]                   OUT f32 [ROWS]   (DTYPE ignored)
 *   OP rmsnorm_ref: IN x[ROWS*DIM] (DTYPE), w f32[DIM]   OUT DTYPE        (eps 1e-6)
 *   OP rmsnorm_hf:  IN x (DTYPE), w (DTYPE)[DIM]         OUT DTYPE        (eps 1e-6)
 *   OP layernorm:   IN x (DTYPE), w, b (DTYPE)[DIM]       OUT DTYPE        (eps 1e-6)
 *   DTYPE f32 or bf16; LANES 8 or 16 (set through DSV32_TORCH_LANES). Exit 0 on success.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kernels/layernorm.h"
#include "kernels/reduce.h"
#include "kernels/rmsnorm.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static double urand(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (double)(rng_state >> 11) / 9007199254740992.0;
}
static double nrand(void)
{
	double u = urand() + 1e-300, v = urand();
	return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

/* Independent statement of the order for n with n/L/4 < 16 (no level cascade):
 * per lane l and slot k: a sequential fp32 sum of x[(4i+k)L + l], i < nv/4; slot 0 then gets the
 * leftover vectors, then slot0 + slot1 + slot2 + slot3; the scalar tail is summed from 0, then
 * the lanes in order; n < L: 4 scalar slots. */
static float oracle_small(const float *x, int64_t n, int L)
{
	volatile float s;
	if (n < L) {
		float p[4] = {0, 0, 0, 0};
		for (int64_t i = 0; i + 4 <= n; i += 4)
			for (int k = 0; k < 4; k++)
				p[k] = p[k] + x[i + k];
		for (int64_t i = n / 4 * 4; i < n; i++)
			p[0] = p[0] + x[i];
		s = ((p[0] + p[1]) + p[2]) + p[3];
		return 0.0f + s;
	}
	int64_t nv = n / L, ni = nv / 4;
	float lane[16];
	for (int l = 0; l < L; l++) {
		float slot[4];
		for (int k = 0; k < 4; k++) {
			slot[k] = 0.0f;
			for (int64_t i = 0; i < ni; i++)
				slot[k] = slot[k] + x[(4 * i + k) * L + l];
		}
		for (int64_t v = 4 * ni; v < nv; v++)
			slot[0] = slot[0] + x[v * L + l];
		lane[l] = ((slot[0] + slot[1]) + slot[2]) + slot[3];
	}
	s = 0.0f;
	for (int64_t t = nv * L; t < n; t++)
		s = s + x[t];
	for (int l = 0; l < L; l++)
		s = s + lane[l];
	return 0.0f + s;
}

static void test_sum_matches_independent_order(void **state)
{
	(void)state;
	static const int64_t sizes[] = {1, 3, 4, 7, 8, 9, 15, 16, 17, 31, 63, 64, 65, 127, 128, 129,
					200, 255, 256, 257, 301, 512, 1000, 1023};
	float *x = malloc(1100 * sizeof *x);
	assert_non_null(x);
	int lanes[2] = {8, 16};
	for (int li = 0; li < 2; li++)
		for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
			int64_t n = sizes[si];
			if (n / lanes[li] / 4 >= 16)
				continue;
			for (int rep = 0; rep < 20; rep++) {
				for (int64_t i = 0; i < n; i++)
					x[i] = (float)(nrand() * (rep % 3 == 0 ? 1e4 : 1.0));
				float got = dsv32_sum_f32_torch(x, n, lanes[li]);
				float want = oracle_small(x, n, lanes[li]);
				if (memcmp(&got, &want, sizeof got) != 0)
					fail_msg("sum L=%d n=%lld rep %d: got %.9g want %.9g", lanes[li],
						 (long long)n, rep, got, want);
			}
		}
	free(x);
}

/* Long rows (level cascade active: nv/4 >= 16): error bound of the cascade, |err| <= c·eps·Σ|x|
 * with c = 8 (at most ~8 rounding levels for n <= 2^17 here), against a double sum. */
static void test_sum_long_rows_within_bound(void **state)
{
	(void)state;
	static const int64_t sizes[] = {4096, 4099, 7168, 65536, 100003};
	float *x = malloc(100003 * sizeof *x);
	assert_non_null(x);
	for (int li = 0; li < 2; li++)
		for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
			int64_t n = sizes[si];
			double ref = 0, abs = 0;
			for (int64_t i = 0; i < n; i++) {
				x[i] = (float)nrand();
				ref += x[i];
				abs += fabs(x[i]);
			}
			float got = dsv32_sum_f32_torch(x, n, li ? 16 : 8);
			double bound = 8.0 * 5.96e-8 * abs;
			if (fabs(got - ref) > bound)
				fail_msg("long sum n=%lld: got %.9g double %.9g bound %.3g", (long long)n,
					 got, ref, bound);
		}
	free(x);
}

/* x = [2^24, 1 x 31]: sequential fp32 gives 2^24 (each +1 is lost), the torch order (L=8: lanes
 * 1..7 of vector 0 collect 1s, vectors 1..3 add lane-wise) gives 2^24 + 30 rounded to even
 * within the lanes: lane 0 = 2^24 + 1 + 1 + 1 = 2^24 + 2 (ties to even), ... so the result
 * differs from the sequential one. Checked against the independent oracle and != 2^24. */
static void test_sum_order_matters(void **state)
{
	(void)state;
	float x[32];
	x[0] = 16777216.0f;
	for (int i = 1; i < 32; i++)
		x[i] = 1.0f;
	float seq = 0.0f;
	for (int i = 0; i < 32; i++)
		seq += x[i];
	assert_true(seq == 16777216.0f);
	for (int L = 8; L <= 16; L += 8) {
		float got = dsv32_sum_f32_torch(x, 32, L);
		assert_true(got == oracle_small(x, 32, L));
		assert_true(got > 16777216.0f);
	}
	assert_true(dsv32_sum_f32_torch(x, 0, 8) == 0.0f);
	float mz[3] = {-0.0f, -0.0f, -0.0f};
	assert_false(signbit(dsv32_sum_f32_torch(mz, 3, 8))); /* 0 + (-0) = +0, as torch */
	assert_true(dsv32_mean_f32_torch(x, 32, 8) == dsv32_sum_f32_torch(x, 32, 8) / 32.0f);
}

static void test_moments_close_to_double(void **state)
{
	(void)state;
	static const int64_t sizes[] = {1, 5, 8, 16, 17, 100, 128, 129, 256, 301, 1024, 4096, 7000};
	float *x = malloc(7000 * sizeof *x);
	assert_non_null(x);
	for (int li = 0; li < 2; li++)
		for (int kv = 1; kv <= 2; kv++)
			for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
				int64_t n = sizes[si];
				int L = li ? 16 : 8;
				double m = 0, v = 0;
				for (int64_t i = 0; i < n; i++) {
					x[i] = (float)(3.0 + nrand());
					m += x[i];
				}
				m /= (double)n;
				for (int64_t i = 0; i < n; i++)
					v += (x[i] - m) * (x[i] - m);
				v /= (double)n;
				float mean, var;
				dsv32_moments_torch_fn(dsv32_reduce_load_f32, x, n, kv * L, L, false,
						       &mean, &var);
				if (fabs(mean - m) > 4 * 2.4e-7 * 3.0 ||
				    (n > 1 && fabs(var - v) > 64 * 1.2e-7 * v))
					fail_msg("moments n=%lld L=%d kvec=%d: mean %.9g/%.9g var %.9g/%.9g",
						 (long long)n, L, kv * L, mean, m, var, v);
				for (int64_t i = 0; i < n; i++)
					x[i] = 0.375f;
				dsv32_moments_torch_fn(dsv32_reduce_load_f32, x, n, kv * L, L, false,
						       &mean, &var);
				assert_true(mean == 0.375f);
				assert_true(var == 0.0f);
			}
	free(x);
}

/* ---- emit mode ---- */
static size_t esize(dsv32_dtype t) { return t == DSV32_BF16 ? 2 : 4; }

static int emit(int argc, char **argv)
{
	if (argc != 9) {
		fprintf(stderr, "usage: --emit OP LANES ROWS DIM DTYPE IN OUT\n");
		return 2;
	}
	const char *op = argv[2];
	setenv("DSV32_TORCH_LANES", argv[3], 1);
	int64_t rows = atoll(argv[4]), dim = atoll(argv[5]);
	dsv32_dtype dt = strcmp(argv[6], "bf16") == 0 ? DSV32_BF16 : DSV32_F32;
	FILE *f = fopen(argv[7], "rb");
	if (!f) {
		perror(argv[7]);
		return 1;
	}
	size_t cap = (size_t)(rows * dim + 2 * dim) * 4 + 64;
	unsigned char *in = malloc(cap), *out = malloc((size_t)(rows * dim) * 4 + 64);
	size_t got = fread(in, 1, cap, f);
	fclose(f);
	size_t outn = 0;
	int rc = 0;
	if (strcmp(op, "sum") == 0) {
		const float *x = (const float *)in;
		if (got < (size_t)(rows * dim) * 4)
			rc = 1;
		for (int64_t r = 0; r < rows && !rc; r++)
			((float *)out)[r] = dsv32_sum_f32_torch(x + r * dim, dim, atoi(argv[3]));
		outn = (size_t)rows * 4;
	} else {
		dsv32_backend *be = NULL;
		dsv32_error err = {0};
		if (dsv32_backend_create(&be, DSV32_DEV_CPU, &err) != DSV32_OK) {
			fprintf(stderr, "backend: %s\n", err.what);
			return 1;
		}
		int64_t xs[2] = {rows, dim}, ws[1] = {dim};
		size_t xb = (size_t)(rows * dim) * esize(dt);
		dsv32_dtype wt = strcmp(op, "rmsnorm_ref") == 0 ? DSV32_F32 : dt;
		dsv32_tensor x = dsv32_tensor_view(in, dt, 2, xs);
		dsv32_tensor w = dsv32_tensor_view(in + xb, wt, 1, ws);
		dsv32_tensor b = dsv32_tensor_view(in + xb + (size_t)dim * esize(wt), wt, 1, ws);
		dsv32_tensor y = dsv32_tensor_view(out, dt, 2, xs);
		dsv32_status st;
		if (strcmp(op, "rmsnorm_ref") == 0)
			st = dsv32_rmsnorm(be, &y, &x, &w, 1e-6, &err);
		else if (strcmp(op, "rmsnorm_hf") == 0)
			st = dsv32_rmsnorm_hf(be, &y, &x, &w, 1e-6, &err);
		else
			st = dsv32_layernorm(be, &y, &x, &w, &b, 1e-6, &err);
		if (st != DSV32_OK) {
			fprintf(stderr, "%s: %s\n", op, err.what);
			rc = 1;
		}
		outn = xb;
		dsv32_backend_destroy(be);
	}
	if (!rc) {
		FILE *o = fopen(argv[8], "wb");
		if (!o || fwrite(out, 1, outn, o) != outn)
			rc = 1;
		if (o)
			fclose(o);
	}
	free(in);
	free(out);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "--emit") == 0)
		return emit(argc, argv);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sum_matches_independent_order),
		cmocka_unit_test(test_sum_long_rows_within_bound),
		cmocka_unit_test(test_sum_order_matters),
		cmocka_unit_test(test_moments_close_to_double),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
