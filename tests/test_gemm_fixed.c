/* test_gemm_fixed.c: the fixed GEMM engine (kernels/gemm.h "Engines", gemm_fixed.c) gives the
 * bits of its written summation order, on every body and thread count.
 *
 * Oracle: the order of gemm_fixed.c's header, written out here independently in double-free
 * fp32 (fmaf per lane, the fixed tree per chunk of 1024, chunks in order; fp8: one chunk per
 * 128-block, scaled and accumulated from +0). Every case is checked bit for bit against it:
 *   - on every body: avx512 (where the CPU has AVX-512F), avx2 (DSV32_GEMM_NO_AVX512=1, where
 *     the CPU has AVX2+FMA) and scalar (DSV32_GEMM_NO_AVX2=1); a body this CPU cannot run, or
 *     one the outer environment switches off (running the test with DSV32_GEMM_NO_AVX512=1
 *     or DSV32_GEMM_NO_AVX2=1 stands for a CPU without it), is skipped with a printed note,
 *   - with 1 and 2 OpenMP threads,
 *   - for "NT", "NN" and batched layouts and every BF16/F32 dtype combination, K not a
 *     multiple of 8 or of the chunk, M and N not multiples of the micro tiles (avx512: 6 x 8,
 *     avx2: 4 x 24), M large enough for the avx512 body's row blocks, strided operands
 *     (dsv32_gemm_run with ld > row length and batch strides), and fp8_gemm with short last
 *     blocks and several groups of blocks.
 * The contract that makes a host-independent baseline possible is exactly this: same bits
 * everywhere. (Accuracy against the exact sum is test_gemm's job.) */
#include <math.h>
#include <omp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kernels/fp8.h"
#include "kernels/gemm.h"
#include "tests/support/test_util.h"
#include "tests/support/test_common.h"

typedef struct {
	bool trans;
	int64_t Bt, M, N, K;
	dsv32_dtype xt, wt, yt;
} fcase;

static float w_val(const dsv32_tensor *w, const fcase *c, int64_t b, int64_t n, int64_t k)
{
	int64_t i = b * c->N * c->K + (c->trans ? n * c->K + k : k * c->N + n);
	return (float)tu_get(w, i);
}

/* The written order for one output: chunks of kc, 8 lanes by fmaf, the tree, chunks added. */
static float oracle_dot(const float *x, const float *wcol, int64_t K, int64_t kc)
{
	float acc = 0.0f;
	int64_t Kp = (K + 7) / 8 * 8;
	for (int64_t k0 = 0; k0 < Kp; k0 += kc) {
		int64_t end = k0 + kc < Kp ? k0 + kc : Kp;
		float L[8] = {0};
		for (int64_t k = k0; k < end; k++)
			L[k % 8] = fmaf(k < K ? x[k] : 0.0f, k < K ? wcol[k] : 0.0f, L[k % 8]);
		float t = ((L[0] + L[4]) + (L[2] + L[6])) + ((L[1] + L[5]) + (L[3] + L[7]));
		acc = k0 == 0 ? t : acc + t;
	}
	return acc;
}

static void fill(dsv32_tensor *t, tu_rng *r)
{
	for (int64_t i = 0; i < dsv32_tensor_numel(t); i++)
		tu_set_f32(t, i, (tu_uniform(r) * 2.0 - 1.0) * ldexp(1.0, tu_int(r, -6, 6)));
}

/* The bodies, each forced by its environment switches (gemm.h "Engines"). A switch set
 * outside the test (DSV32_GEMM_NO_AVX512=1 or DSV32_GEMM_NO_AVX2=1 in the environment) stands
 * for a CPU without that extension: the bodies it excludes are skipped. */
static const struct {
	const char *name, *avx512bf16, *no_avx512, *no_avx2;
} BODIES[] = {{"avx512bf16", "1", NULL, NULL},
	      {"avx512", "0", NULL, NULL},
	      {"avx2", NULL, "1", NULL},
	      {"scalar", NULL, NULL, "1"}};
enum { NBODIES = 4 };
static int g_first_body; /* the first body the outer environment allows */

static void set_or_unset(const char *name, const char *v)
{
	if (v)
		setenv(name, v, 1);
	else
		unsetenv(name);
}

static void select_body(int b)
{
	set_or_unset("DSV32_GEMM_AVX512BF16", BODIES[b].avx512bf16);
	set_or_unset("DSV32_GEMM_NO_AVX512", BODIES[b].no_avx512);
	set_or_unset("DSV32_GEMM_NO_AVX2", BODIES[b].no_avx2);
}

/* Back to the outer environment's choice. */
static void restore_body(void)
{
	select_body(g_first_body);
}

/* Whether body b runs here: the outer environment allows it, its switches select it and
 * dsv32_gemm_fixed_body() names it (a CPU without AVX-512F falls through to avx2, one without
 * AVX2 to scalar). */
static bool body_available(int b)
{
	if (b < g_first_body)
		return false;
	select_body(b);
	bool ok = !strcmp(dsv32_gemm_fixed_body(), BODIES[b].name);
	restore_body();
	return ok;
}

static void print_bodies(void)
{
	printf("# fixed body by default here: %s; checked:", dsv32_gemm_fixed_body());
	for (int b = 0; b < NBODIES; b++)
		printf(" %s%s", BODIES[b].name,
		       b < g_first_body	     ? " (skipped: switched off in the environment)"
		       : body_available(b) ? ""
					     : " (skipped: not on this CPU)");
	printf("\n");
}

static dsv32_tensor run_once(const fcase *c, const dsv32_tensor *x, const dsv32_tensor *w,
			     int threads, int body)
{
	dsv32_backend *be = NULL;
	assert_int_equal(dsv32_backend_create(&be, DSV32_DEV_CPU, NULL), DSV32_OK);
	be->gemm_engine = DSV32_GEMM_FIXED;
	dsv32_tensor y = tu_hostv(c->yt, 3, c->Bt, c->M, c->N);
	select_body(body);
	omp_set_num_threads(threads);
	dsv32_error err = {0};
	dsv32_status rc = c->trans ? dsv32_gemm_batched(be, &y, x, w, &err)
				   : dsv32_gemm_nn_batched(be, &y, x, w, &err);
	restore_body();
	if (rc != DSV32_OK)
		fail_msg("gemm: %s", err.what);
	dsv32_backend_destroy(be);
	return y;
}

/* Every body at 1 and 2 threads gives the written order's bits for x, w of case c. */
static void check_data(const fcase *c, const dsv32_tensor *x, const dsv32_tensor *w)
{
	float *xr = malloc((size_t)c->K * sizeof(float)), *wc = malloc((size_t)c->K * sizeof(float));
	dsv32_tensor want = tu_hostv(c->yt, 3, c->Bt, c->M, c->N);
	for (int64_t b = 0; b < c->Bt; b++)
		for (int64_t m = 0; m < c->M; m++)
			for (int64_t n = 0; n < c->N; n++) {
				for (int64_t k = 0; k < c->K; k++) {
					xr[k] = (float)tu_get(x, (b * c->M + m) * c->K + k);
					wc[k] = w_val(w, c, b, n, k);
				}
				float v = oracle_dot(xr, wc, c->K, DSV32_GEMM_FIXED_KC);
				tu_set_f32(&want, (b * c->M + m) * c->N + n, v); /* tu_set_f32 rounds to bf16 */
			}
	for (int b = 0; b < NBODIES; b++)
		for (int threads = 1; threads <= 2 && body_available(b); threads++) {
			dsv32_tensor y = run_once(c, x, w, threads, b);
			if (memcmp(y.data, want.data, dsv32_tensor_nbytes(&y)) != 0)
				fail_msg("%s %s x %s -> %s B%lld M%lld N%lld K%lld, %d thread(s), %s "
					 "body: not the bits of the written order",
					 c->trans ? "NT" : "NN", dsv32_dtype_name(c->xt),
					 dsv32_dtype_name(c->wt), dsv32_dtype_name(c->yt),
					 (long long)c->Bt, (long long)c->M, (long long)c->N,
					 (long long)c->K, threads, BODIES[b].name);
			dsv32_tensor_free(&y);
		}
	free(xr);
	free(wc);
	dsv32_tensor_free(&want);
}

static void check_case(const fcase *c, uint64_t seed)
{
	tu_rng r = tu_rng_xorshift64(seed);
	dsv32_tensor x = tu_hostv(c->xt, 3, c->Bt, c->M, c->K);
	dsv32_tensor w = c->trans ? tu_hostv(c->wt, 3, c->Bt, c->N, c->K)
				  : tu_hostv(c->wt, 3, c->Bt, c->K, c->N);
	fill(&x, &r);
	fill(&w, &r);
	check_data(c, &x, &w);
	dsv32_tensor_free(&x);
	dsv32_tensor_free(&w);
}

static const dsv32_dtype combos[][3] = {
	{DSV32_BF16, DSV32_BF16, DSV32_BF16}, {DSV32_BF16, DSV32_BF16, DSV32_F32},
	{DSV32_F32, DSV32_F32, DSV32_F32},    {DSV32_F32, DSV32_BF16, DSV32_BF16},
	{DSV32_BF16, DSV32_F32, DSV32_F32},
};

static void test_fixed_gemm_is_the_written_order_on_every_body(void **state)
{
	(void)state;
	print_bodies();
	static const int64_t shapes[][4] = {
		/* Bt, M, N, K: odd sizes, K across chunk boundaries, one wide K; M = 7, 13: row
		 * tiles of 6 plus a tail; M = 200: two row blocks of the avx512 body; M = 260,
		 * K = 2100: x large enough to be packed by all threads */
		{1, 1, 1, 1}, {2, 3, 5, 7}, {1, 5, 25, 1031}, {1, 9, 50, 2053}, {3, 4, 24, 64},
		{1, 17, 49, 3000}, {2, 7, 16, 8}, {1, 13, 9, 1024}, {1, 200, 11, 1100},
		{1, 260, 5, 2100},
	};
	uint64_t seed = 77;
	for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
		for (size_t i = 0; i < sizeof combos / sizeof combos[0]; i++)
			for (int t = 0; t < 2; t++) {
				fcase c = {t == 0, shapes[s][0], shapes[s][1], shapes[s][2],
					   shapes[s][3], combos[i][0], combos[i][1], combos[i][2]};
				check_case(&c, seed++);
			}
}

/* Few rows (M <= 6, one m tile of the avx512 body): a BF16 "NT" w is read in place there
 * (gemm_fixed_avx512.c kernb_*), full 8-column tiles and whole chunks, with a column tail and a
 * short last chunk beside them; every dtype combination, so the in-place and panel paths meet
 * in one run. */
static void test_fixed_gemm_few_rows_is_the_written_order(void **state)
{
	(void)state;
	static const int64_t shapes[][4] = {
		/* Bt, M, N, K */
		{1, 1, 16, 1024}, {1, 2, 40, 2048}, {2, 2, 19, 1536}, {1, 3, 24, 3000},
		{1, 4, 33, 2056}, {1, 5, 8, 1024}, {1, 6, 17, 2048}, {1, 7, 16, 1024},
	};
	uint64_t seed = 4242;
	for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
		for (size_t i = 0; i < sizeof combos / sizeof combos[0]; i++)
			for (int t = 0; t < 2; t++) {
				fcase c = {t == 0, shapes[s][0], shapes[s][1], shapes[s][2],
					   shapes[s][3], combos[i][0], combos[i][1], combos[i][2]};
				check_case(&c, seed++);
			}
}

/* x row m, w row n (BF16 "NT") of the pairs edge cases: uniform in +-[1, 2)·2^e, e drawn from
 * [elo, ehi] for x and from the row's own range for w. */
static void fill_rows(dsv32_tensor *t, int64_t rows, int64_t K, tu_rng *r,
		      void (*range)(int64_t row, int *elo, int *ehi))
{
	for (int64_t i = 0; i < rows; i++) {
		int elo, ehi;
		range(i, &elo, &ehi);
		for (int64_t k = 0; k < K; k++) {
			double v = (1.0 + tu_uniform(r)) * ldexp(1.0, tu_int(r, elo, ehi));
			tu_set_f32(t, i * K + k, tu_int(r, 0, 1) ? v : -v);
		}
	}
}

static void x_normal(int64_t row, int *elo, int *ehi)
{
	(void)row;
	*elo = -8;
	*ehi = 4;
}

/* Columns 0-7: ordinary; 8-15: products near 2^-130 (subnormal: VDPBF16PS would flush
 * their sums); 16-23: products from 2^115 to past 2^128; 24-31: products from 2^-128 to
 * 2^-107, a few subnormal. */
static void w_edges(int64_t row, int *elo, int *ehi)
{
	static const int lo[] = {-8, -124, 123, -120}, hi[] = {4, -118, 124, -112};
	*elo = lo[(row / 8) % 4];
	*ehi = hi[(row / 8) % 4];
}

/* The avx512bf16 variant (two steps per VDPBF16PS) where it must not change a bit: an odd
 * step count in the last chunk (a pad step), -0 inputs (x row 3), panels whose sums would be
 * subnormal there (run as FMAs) beside panels that take the fast path, in one GEMM; x row 7
 * and w row 16 meet in one lane as -1.5·2^127 + 2^128 (2^126: no product rounded on its
 * own). Variant 1: x row 5 (2^-60) sends more panels the FMA way; variant 2: x >= 2^16 and
 * one subnormal w value, which VDPBF16PS would read as zero. M > 6: the variant needs two m
 * tiles. */
static void test_fixed_gemm_bf16_pairs_edges(void **state)
{
	(void)state;
	static const int64_t Ks[] = {24, 1048, 2072, 1031};
	uint64_t seed = 5150;
	for (size_t i = 0; i < sizeof Ks / sizeof Ks[0]; i++)
		for (int variant = 0; variant < 3; variant++) {
			fcase c = {true, 1, 13, 37, Ks[i], DSV32_BF16, DSV32_BF16, DSV32_BF16};
			tu_rng r = tu_rng_xorshift64(seed++);
			dsv32_tensor x = tu_hostv(DSV32_BF16, 3, 1, c.M, c.K);
			dsv32_tensor w = tu_hostv(DSV32_BF16, 3, 1, c.N, c.K);
			fill_rows(&x, c.M, c.K, &r, x_normal);
			fill_rows(&w, c.N, c.K, &r, w_edges);
			for (int64_t k = 0; k < c.K; k++) {
				tu_set_f32(&x, 3 * c.K + k, -0.0);
				tu_set_f32(&x, 7 * c.K + k, k == 0 ? -12.0 : k == 8 ? 16.0 : 0.0);
				tu_set_f32(&w, 16 * c.K + k, ldexp(1.0, 124));
				if (variant == 1)
					tu_set_f32(&x, 5 * c.K + k, ldexp(1.0, -60));
			}
			if (variant == 2) { /* x >= 2^16: only w's subnormal keeps panel 24-31 off */
				for (int64_t i = 0; i < c.M * c.K; i++)
					tu_set_f32(&x, i, ldexp(tu_get(&x, i), 24));
				tu_set_f32(&w, 25 * c.K, ldexp(1.0, -130));
			}
			check_data(&c, &x, &w);
			c.yt = DSV32_F32;
			check_data(&c, &x, &w);
			dsv32_tensor_free(&x);
			dsv32_tensor_free(&w);
		}
}

/* The instruction the avx512bf16 body rests on: VDPBF16PS adds to each f32 element the
 * product of its odd bf16 pair element, then that of the even one, each as an f32 FMA that
 * rounds to nearest even (Intel SDM), on normal values. 2^20 random elements: exponents near 1,
 * in a wide range, with heavy cancellation; the other order (even first) must differ somewhere,
 * or the check could not tell the two apart. Skipped without AVX512-BF16. */
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
__attribute__((target("avx512f,avx512bf16"))) static void dp16(float *acc, const uint16_t *a,
							      const uint16_t *b)
{
	__m512bh va, vb;
	memcpy(&va, a, sizeof va);
	memcpy(&vb, b, sizeof vb);
	_mm512_storeu_ps(acc, _mm512_dpbf16_ps(_mm512_loadu_ps(acc), va, vb));
}

static uint16_t rand_bf16(tu_rng *r, int elo, int ehi)
{
	if (tu_int(r, 0, 15) == 0)
		return (uint16_t)(tu_int(r, 0, 1) << 15); /* +-0 */
	return (uint16_t)((tu_int(r, 0, 1) << 15) | ((127 + tu_int(r, elo, ehi)) << 7) |
			  tu_int(r, 0, 127));
}

static void test_vdpbf16ps_is_two_fmas_odd_first(void **state)
{
	(void)state;
	if (!__builtin_cpu_supports("avx512bf16")) {
		printf("# skipped: this CPU has no AVX512-BF16\n");
		return;
	}
	static const int ranges[][2] = {{-3, 3}, {-40, 40}, {-1, 1}};
	tu_rng r = tu_rng_xorshift64(2027);
	long other_order_differs = 0;
	for (int it = 0; it < (1 << 16); it++) {
		int elo = ranges[it % 3][0], ehi = ranges[it % 3][1];
		uint16_t a[32], b[32];
		float acc[16], got[16];
		for (int i = 0; i < 32; i++) {
			a[i] = rand_bf16(&r, elo, ehi);
			b[i] = rand_bf16(&r, elo, ehi);
		}
		for (int j = 0; j < 16; j++)
			acc[j] = got[j] = (float)((tu_uniform(&r) * 2 - 1) * ldexp(1.0, tu_int(&r, elo, ehi)));
		dp16(got, a, b);
		for (int j = 0; j < 16; j++) {
			float odd = fmaf(dsv32_bf16_to_f32(a[2 * j + 1]), dsv32_bf16_to_f32(b[2 * j + 1]),
					 acc[j]);
			float want = fmaf(dsv32_bf16_to_f32(a[2 * j]), dsv32_bf16_to_f32(b[2 * j]), odd);
			float even = fmaf(dsv32_bf16_to_f32(a[2 * j]), dsv32_bf16_to_f32(b[2 * j]), acc[j]);
			float rev = fmaf(dsv32_bf16_to_f32(a[2 * j + 1]), dsv32_bf16_to_f32(b[2 * j + 1]),
					 even);
			if (memcmp(&got[j], &want, sizeof want) != 0)
				fail_msg("VDPBF16PS element %d: %a, two FMAs odd first give %a", j,
					 got[j], want);
			other_order_differs += memcmp(&rev, &want, sizeof want) != 0;
		}
	}
	printf("# VDPBF16PS = two FMAs odd first on 2^20 elements; even first differs in %ld\n",
	       other_order_differs);
	assert_true(other_order_differs > 0);
}
#else
static void test_vdpbf16ps_is_two_fmas_odd_first(void **state)
{
	(void)state;
	printf("# skipped: not x86-64\n");
}
#endif

/* Any e4m3 code but the two NaNs (0x7f, 0xff): subnormals, both zeros, every exponent. */
static uint8_t e4m3_code(tu_rng *r)
{
	for (;;) {
		uint8_t c = (uint8_t)tu_int(r, 0, 255);
		if ((c & 0x7f) != 0x7f)
			return c;
	}
}

/* fp8_gemm: the same engine with one chunk per 128-block, scaled (fp8.h); a short last block
 * where K % 128 != 0. With nans, w holds the two NaN codes (0x7f in row 1, 0xff in the last
 * row), which the avx512 body's fast w decode must notice: their columns are NaN, with the
 * written order's bits as every other output. */
static void check_fp8(int64_t M, int64_t N, int64_t K, uint64_t seed, bool nans)
{
	const int64_t nkb = (K + 127) / 128, nnb = (N + 127) / 128;
	tu_rng r = tu_rng_xorshift64(seed);
	dsv32_tensor x8 = tu_hostv(DSV32_F8_E4M3, 2, M, K), w8 = tu_hostv(DSV32_F8_E4M3, 2, N, K);
	dsv32_tensor xs = tu_hostv(DSV32_F32, 2, M, nkb), ws = tu_hostv(DSV32_F32, 2, nnb, nkb);
	for (int64_t i = 0; i < M * K; i++)
		((uint8_t *)x8.data)[i] = e4m3_code(&r);
	for (int64_t i = 0; i < N * K; i++)
		((uint8_t *)w8.data)[i] = e4m3_code(&r);
	if (nans) {
		((uint8_t *)w8.data)[1 * K + K / 2] = 0x7f;
		((uint8_t *)w8.data)[N * K - 1] = 0xff;
	}
	fill(&xs, &r);
	fill(&ws, &r);
	float *want = malloc((size_t)(M * N) * sizeof(float));
	for (int64_t m = 0; m < M; m++)
		for (int64_t n = 0; n < N; n++) {
			float acc = 0.0f;
			for (int64_t kb = 0; kb < nkb; kb++) {
				float xr[128], wr[128];
				int64_t len = K - kb * 128 < 128 ? K - kb * 128 : 128;
				for (int64_t j = 0; j < len; j++) {
					xr[j] = dsv32_e4m3_to_f32(((uint8_t *)x8.data)[m * K + kb * 128 + j]);
					wr[j] = dsv32_e4m3_to_f32(((uint8_t *)w8.data)[n * K + kb * 128 + j]);
				}
				float t = oracle_dot(xr, wr, len, 128);
				float sc = ((float *)xs.data)[m * nkb + kb] *
					   ((float *)ws.data)[(n / 128) * nkb + kb];
				acc = acc + t * sc;
			}
			want[m * N + n] = acc;
		}
	/* the avx512bf16 body twice: on quad tiles (its default) and on row pairs */
	for (int b = 0; b < NBODIES; b++)
		for (int quads = 1; quads >= (b == 0 ? 0 : 1); quads--)
			for (int threads = 1; threads <= 2 && body_available(b); threads++) {
				dsv32_backend *be = NULL;
				assert_int_equal(dsv32_backend_create(&be, DSV32_DEV_CPU, NULL), DSV32_OK);
				dsv32_tensor y = tu_hostv(DSV32_F32, 2, M, N);
				select_body(b);
				setenv("DSV32_GEMM_FP8_QUADS", quads ? "1" : "0", 1);
				omp_set_num_threads(threads);
				dsv32_status rc = dsv32_fp8_gemm(be, &y, &x8, &xs, &w8, &ws, NULL);
				unsetenv("DSV32_GEMM_FP8_QUADS");
				restore_body();
				assert_int_equal(rc, DSV32_OK);
				if (memcmp(y.data, want, (size_t)(M * N) * sizeof(float)) != 0)
					fail_msg("fp8_gemm M%lld N%lld K%lld, %d thread(s), %s body%s: "
						 "not the bits of the written order", (long long)M,
						 (long long)N, (long long)K, threads, BODIES[b].name,
						 b == 0 ? (quads ? " (quad tiles)" : " (row pairs)") : "");
				dsv32_tensor_free(&y);
				dsv32_backend_destroy(be);
			}
	free(want);
	dsv32_tensor_free(&x8);
	dsv32_tensor_free(&w8);
	dsv32_tensor_free(&xs);
	dsv32_tensor_free(&ws);
}

static void test_fixed_fp8_gemm_is_the_written_order_on_every_body(void **state)
{
	(void)state;
	print_bodies();
	/* M, N, K: two scale columns of w; row tiles plus tails; K of several groups of 8 blocks
	 * (the avx512 body's w panel) with a short last block; M = 1543: row blocks; M = 3: the
	 * avx2 body's few-rows kernel over three scale rows of w, K % 8 != 0; M = 3100: row blocks
	 * of the avx512bf16 body's quad tiles; M = 26, 23: quad tiles with one and two row groups
	 * in the tail */
	static const int64_t shapes[][3] = {
		{5, 200, 384}, {1, 8, 128}, {13, 131, 1300}, {7, 256, 1100}, {2, 3, 100},
		{1543, 9, 300}, {3, 300, 1300}, {3100, 5, 260}, {26, 12, 1200}, {23, 20, 140},
	};
	for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
		check_fp8(shapes[i][0], shapes[i][1], shapes[i][2], 2024 + i, false);
	check_fp8(7, 19, 1100, 77, true);
	check_fp8(13, 131, 300, 78, true);
	check_fp8(2, 19, 1100, 79, true); /* NaN codes in the avx2 few-rows kernel's steps */
}

/* dsv32_gemm_run on slices: ld > row length and batch strides on x, w and y (the avx512 body
 * packs x from its own rows and reads an F32 "NT" w in place). */
static void test_fixed_gemm_strided_operands(void **state)
{
	(void)state;
	print_bodies();
	static const dsv32_dtype dts[][3] = {
		{DSV32_BF16, DSV32_BF16, DSV32_BF16}, {DSV32_F32, DSV32_F32, DSV32_F32},
		{DSV32_BF16, DSV32_F32, DSV32_F32},
	};
	const int64_t B = 2, M = 11, N = 21, K = 1037, ldx = 1050, ldw = 1040, ldy = 30;
	tu_rng r = tu_rng_xorshift64(99);
	for (size_t i = 0; i < sizeof dts / sizeof dts[0]; i++)
		for (int trans = 0; trans < 2; trans++) {
			int64_t wrows = trans ? N : K, wld = trans ? ldw : ldw + 7;
			int64_t sx = M * ldx + 3, sw = wrows * wld + 5, sy = M * ldy + 2;
			dsv32_tensor x = tu_hostv(dts[i][0], 1, B * sx), w = tu_hostv(dts[i][1], 1, B * sw);
			fill(&x, &r);
			fill(&w, &r);
			float *want = malloc((size_t)(B * M * N) * sizeof(float));
			float *xr = malloc((size_t)K * sizeof(float)), *wc = malloc((size_t)K * sizeof(float));
			for (int64_t b = 0; b < B; b++)
				for (int64_t m = 0; m < M; m++)
					for (int64_t n = 0; n < N; n++) {
						for (int64_t k = 0; k < K; k++) {
							xr[k] = (float)tu_get(&x, b * sx + m * ldx + k);
							wc[k] = (float)tu_get(&w, b * sw + (trans ? n * wld + k
												  : k * wld + n));
						}
						want[(b * M + m) * N + n] =
							oracle_dot(xr, wc, K, DSV32_GEMM_FIXED_KC);
					}
			for (int bd = 0; bd < NBODIES; bd++)
				for (int threads = 1; threads <= 2 && body_available(bd); threads++) {
					dsv32_backend *be = NULL;
					assert_int_equal(dsv32_backend_create(&be, DSV32_DEV_CPU, NULL),
							 DSV32_OK);
					be->gemm_engine = DSV32_GEMM_FIXED;
					dsv32_tensor y = tu_hostv(dts[i][2], 1, B * sy);
					dsv32_gemm_desc d = {B, M, N, K, trans == 1, dts[i][0], dts[i][1],
							     dts[i][2], x.data, ldx, sx, w.data, wld, sw,
							     y.data, ldy, sy};
					select_body(bd);
					omp_set_num_threads(threads);
					dsv32_error err = {0};
					dsv32_status rc = dsv32_gemm_run(be, &d, &err);
					restore_body();
					if (rc != DSV32_OK)
						fail_msg("gemm_run: %s", err.what);
					for (int64_t b = 0; b < B; b++)
						for (int64_t m = 0; m < M; m++)
							for (int64_t n = 0; n < N; n++) {
								float got = (float)tu_get(&y, b * sy + m * ldy + n);
								float v = want[(b * M + m) * N + n];
								if (dts[i][2] == DSV32_BF16)
									v = dsv32_bf16_to_f32(dsv32_f32_to_bf16(v));
								if (memcmp(&got, &v, sizeof v) != 0)
									fail_msg("strided %s %s, %s body, %d thread(s): "
										 "y[%lld,%lld,%lld] %a, want %a",
										 trans ? "NT" : "NN",
										 dsv32_dtype_name(dts[i][1]),
										 BODIES[bd].name, threads,
										 (long long)b, (long long)m,
										 (long long)n, got, v);
							}
					/* the gaps between rows and batches of y stay untouched (zero) */
					for (int64_t e = 0; e < B * sy; e++) {
						int64_t in = e % sy, m = in / ldy, n = in % ldy;
						if ((m >= M || n >= N) && tu_get(&y, e) != 0.0)
							fail_msg("strided: y element %lld written", (long long)e);
					}
					dsv32_tensor_free(&y);
					dsv32_backend_destroy(be);
				}
			free(want);
			free(xr);
			free(wc);
			dsv32_tensor_free(&x);
			dsv32_tensor_free(&w);
		}
}

int main(void)
{
	const char *no2 = getenv("DSV32_GEMM_NO_AVX2"), *no512 = getenv("DSV32_GEMM_NO_AVX512");
	const char *dp = getenv("DSV32_GEMM_AVX512BF16");
	g_first_body = no2 && no2[0] == '1'	  ? 3
		       : no512 && no512[0] == '1' ? 2
		       : dp && dp[0] == '0'	  ? 1
						  : 0;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fixed_gemm_is_the_written_order_on_every_body),
		cmocka_unit_test(test_fixed_fp8_gemm_is_the_written_order_on_every_body),
		cmocka_unit_test(test_fixed_gemm_strided_operands),
		cmocka_unit_test(test_fixed_gemm_few_rows_is_the_written_order),
		cmocka_unit_test(test_vdpbf16ps_is_two_fmas_odd_first),
		cmocka_unit_test(test_fixed_gemm_bf16_pairs_edges),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
