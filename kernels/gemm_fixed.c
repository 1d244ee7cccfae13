/* gemm_fixed.c: the fixed GEMM engine (gemm.h "Engines"): one summation order for every GEMM
 * family, the same bits on every CPU, thread count and body.
 *
 * Summation order (the contract of the fixed engine): x and w are widened to f32 exactly; per
 * output (m, n) and per K chunk of kc values (1024 for the GEMM, one 128-block for fp8_gemm),
 * eight fp32 lane sums, lane l taking k = k0+l, k0+l+8, ... in increasing k by FMA from +0
 * (the zero padding of K up to a multiple of 8 included); the chunk sum t is then
 *     t = ((L0 + L4) + (L2 + L6)) + ((L1 + L5) + (L3 + L7))
 * and the chunk sums are added in chunk order: acc = t for the first chunk, acc + t after it.
 * fp8 (block scales): acc = (first ? +0 : acc) + t·(xs[m,kb]·ws[n/128,kb]), the two products
 * each rounded once (fp8.h).
 *
 * Bodies, all giving these bits (x86-64; chosen at run time, first that applies):
 *   avx512bf16  the avx512 body whose bf16 x bf16 GEMMs of more than 6 rows take two steps
 *           of each lane per VDPBF16PS, the very FMAs (gemm_fixed_avx512.c "the avx512bf16
 *           variant"); AMD CPUs with AVX512-BF16, DSV32_GEMM_AVX512BF16=0 skips it, =1 forces
 *           it on any CPU with AVX512-BF16;
 *   avx512  AVX-512F (gemm_fixed_avx512.c: the 8 lanes side by side in a zmm, two outputs per
 *           vector, 6 x 8 micro tiles; DSV32_GEMM_NO_AVX512=1 skips it);
 *   avx2    AVX2+FMA+F16C (below: the 8 lanes as separate passes, 4 x 24 micro tiles);
 *   scalar  the order above written out with fmaf (C99: one rounding), for any CPU
 *           (DSV32_GEMM_NO_AVX2=1 forces it, for tests and for checking another machine's
 *           path).
 * Each output is formed by one thread in the order above, so the thread count and the
 * schedule never change a bit. tests/test_gemm_fixed.c checks every body against the order.
 *
 * Schedule of the avx2 body: the lane sums of one chunk are eight independent GEMMs with
 * K' = kc/8 (lane l sees x[m, k0+8q+l] and w[n, k0+8q+l], q = 0..kc/8-1). Each runs as an
 * outer-product micro kernel (MR x NR = 4 x 24 outputs, 12 ymm accumulators; x broadcast, w
 * in 3 vectors) on packed operands: x packed once per call as xp[chunk][m tile][l][q][MR], w
 * packed per NR-row tile and chunk as wp[l][q][NR] (widened exactly; 8x8 transposes for the
 * "NT" layout, row copies for "NN"). A micro kernel call runs one lane over the whole chunk,
 * so the per-lane FMA chain is the one above. GEMMs of 1 to 4 rows with a BF16 or F32 "NT" w,
 * or an e4m3 one with fp8 scales (decode steps), read w in place instead, one ymm of 8 lane
 * sums per output ("the avx2 body's few-rows kernel" below). */
#include "kernels/gemm_impl.h"
#include "kernels/cpu_scratch.h"
#include "kernels/cpu_parallel.h"
#include "kernels/elementwise_cpu_avx2.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define GF_TARGET __attribute__((target("avx2,fma")))
#include "kernels/gemm_fixed_simd.h"

/* ---- the scalar body: the contract written out ---- */

/* The chunk sum t of output (m, n) over k0 .. k0+kc-1 (kc % 8 == 0; k >= K reads 0). */
static float chunk_sum(const float *xrow, const dsv32_gemm_wref *w, const float *lut, int64_t n,
		       int64_t K, int64_t k0, int64_t kc)
{
	float L[8] = {0};
	for (int64_t q = 0; q < kc / 8; q++)
		for (int l = 0; l < 8; l++) {
			int64_t k = k0 + 8 * q + l;
			float wv = k < K ? w_at(w, lut, n, k) : 0.0f;
			L[l] = fmaf(xrow[k], wv, L[l]);
		}
	return ((L[0] + L[4]) + (L[2] + L[6])) + ((L[1] + L[5]) + (L[3] + L[7]));
}

static void gemm_scalar(float *acc, const float *xf, int64_t M, int64_t Kp,
			const dsv32_gemm_wref *w, int64_t N, int64_t K, int64_t kc_max,
			const float *xs, const float *ws, int64_t nkb)
{
	float lut[256];
	dsv32_e4m3_table(lut);
#pragma omp parallel for schedule(static) if (dsv32_par_worth((double)M * (double)N * (double)K))
	for (int64_t i = 0; i < M * N; i++) {
		int64_t m = i / N, n = i % N;
		float a = 0.0f;
		for (int64_t k0 = 0; k0 < Kp; k0 += kc_max) {
			int64_t kc = Kp - k0 < kc_max ? Kp - k0 : kc_max, kb = k0 / kc_max;
			float t = chunk_sum(xf + m * Kp, w, lut, n, K, k0, kc);
			if (xs) {
				float sc = xs[m * nkb + kb] * ws[(n / 128) * nkb + kb];
				a = (k0 == 0 ? 0.0f : a) + t * sc;
			} else {
				a = k0 == 0 ? t : a + t;
			}
		}
		acc[i] = a;
	}
}

/* ---- the avx2 body ---- */
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HAVE_AVX2_BODY 1
#define KC 1024    /* largest K chunk (the GEMM's chunk) */
#define MR 4       /* rows of a micro tile */
#define NR 24      /* columns of a micro tile (3 x 8 lanes) */
#define MB 4       /* micro tiles per sweep over the 8 lanes (lane buffer 12 KiB) */
#ifndef XBUDGET
#define XBUDGET (2u << 20)
#endif
#define NTU 1      /* NR-column tiles per unit of work */
#define AVX2 __attribute__((target("avx2,fma,f16c")))

static bool avx2_usable(void)
{
	const char *off = getenv("DSV32_GEMM_NO_AVX2");
	if (off && off[0] == '1')
		return false;
	return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
	       __builtin_cpu_supports("f16c");
}

/* e4m3 codes through F16C: dsv32_e4m3x8_f16c (elementwise_cpu_avx2.h); a gather from lut costs
 * twice as much (docs/perf.md, "The fp8 GEMM"). */
#define e4m3x8_f16c dsv32_e4m3x8_f16c

/* One pass of pack_w_nt, e4m3 through e4m3x8_f16c where f16c is set; returns whether that
 * met a NaN code (the panel is then to be packed again without it). */
AVX2 static bool pack_w_nt_pass(float *wp, const dsv32_gemm_wref *w, const float *lut,
				int64_t n0, int64_t ng, int64_t k0, int64_t kc, int64_t kv, bool f16c)
{
	int64_t kq = kc / 8;
	__m128i mx = _mm_setzero_si128();
	for (int rb = 0; rb < NR / 8; rb++)
		for (int64_t q = 0; q < kq; q++) {
			__m256 r[8];
			int64_t kk = 8 * q;
			for (int i = 0; i < 8; i++) {
				int64_t j = rb * 8 + i;
				int64_t off = (n0 + j) * w->ld + k0 + kk;
				if (j < ng && kk + 8 <= kv && f16c) {
					r[i] = e4m3x8_f16c((const uint8_t *)w->p + off, &mx);
				} else if (j < ng && kk + 8 <= kv) {
					r[i] = load8(w, lut, off);
				} else {
					float t[8];
					for (int c = 0; c < 8; c++)
						t[c] = j < ng && kk + c < kv
							       ? w_at(w, lut, n0 + j, k0 + kk + c)
							       : 0.0f;
					r[i] = _mm256_loadu_ps(t);
				}
			}
			dsv32_transpose8(r);
			for (int l = 0; l < 8; l++)
				_mm256_store_ps(wp + (l * kq + q) * NR + rb * 8, r[l]);
		}
	return _mm_movemask_epi8(_mm_cmpeq_epi8(mx, _mm_set1_epi8((char)0xff))) != 0;
}

/* "NT" w: wp[l][q][NR] = f32(w[n0 + j, k0 + 8q + l]) for j < ng and 8q + l < kv (else 0). */
AVX2 static void pack_w_nt(float *wp, const dsv32_gemm_wref *w, const float *lut, int64_t n0,
			   int64_t ng, int64_t k0, int64_t kc, int64_t kv)
{
	bool f16c = w->dtype == DSV32_F8_E4M3;
	if (pack_w_nt_pass(wp, w, lut, n0, ng, k0, kc, kv, f16c))
		pack_w_nt_pass(wp, w, lut, n0, ng, k0, kc, kv, false);
}

/* "NN" w ([K, N] rows): the same packed layout from row copies. */
static void pack_w_nn(float *wp, const dsv32_gemm_wref *w, const float *lut, int64_t n0,
		      int64_t ng, int64_t k0, int64_t kc, int64_t kv)
{
	int64_t kq = kc / 8;
	for (int64_t q = 0; q < kq; q++)
		for (int l = 0; l < 8; l++) {
			float *d = wp + (l * kq + q) * NR;
			int64_t kk = 8 * q + l;
			for (int j = 0; j < NR; j++)
				d[j] = j < ng && kk < kv ? w_at(w, lut, n0 + j, k0 + kk) : 0.0f;
		}
}
/* out[12 vectors] = lane sums of one MR x NR tile over kq steps: out[i*3 + h][c] =
 * Σ_q xp[q][i] · wp[q][8h + c] by FMA from +0, q increasing. */
AVX2 static void kern_4x24(float *out, const float *xp, const float *wp, int64_t kq)
{
	__m256 c00 = _mm256_setzero_ps(), c01 = c00, c02 = c00, c10 = c00, c11 = c00, c12 = c00;
	__m256 c20 = c00, c21 = c00, c22 = c00, c30 = c00, c31 = c00, c32 = c00;
	for (int64_t q = 0; q < kq; q++) {
		const float *b = wp + q * NR, *a = xp + q * MR;
		__m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);
		__m256 b2 = _mm256_load_ps(b + 16);
		__m256 s = _mm256_broadcast_ss(a);
		c00 = _mm256_fmadd_ps(s, b0, c00);
		c01 = _mm256_fmadd_ps(s, b1, c01);
		c02 = _mm256_fmadd_ps(s, b2, c02);
		s = _mm256_broadcast_ss(a + 1);
		c10 = _mm256_fmadd_ps(s, b0, c10);
		c11 = _mm256_fmadd_ps(s, b1, c11);
		c12 = _mm256_fmadd_ps(s, b2, c12);
		s = _mm256_broadcast_ss(a + 2);
		c20 = _mm256_fmadd_ps(s, b0, c20);
		c21 = _mm256_fmadd_ps(s, b1, c21);
		c22 = _mm256_fmadd_ps(s, b2, c22);
		s = _mm256_broadcast_ss(a + 3);
		c30 = _mm256_fmadd_ps(s, b0, c30);
		c31 = _mm256_fmadd_ps(s, b1, c31);
		c32 = _mm256_fmadd_ps(s, b2, c32);
	}
	_mm256_store_ps(out + 0, c00), _mm256_store_ps(out + 8, c01);
	_mm256_store_ps(out + 16, c02), _mm256_store_ps(out + 24, c10);
	_mm256_store_ps(out + 32, c11), _mm256_store_ps(out + 40, c12);
	_mm256_store_ps(out + 48, c20), _mm256_store_ps(out + 56, c21);
	_mm256_store_ps(out + 64, c22), _mm256_store_ps(out + 72, c30);
	_mm256_store_ps(out + 80, c31), _mm256_store_ps(out + 88, c32);
}

/* Chunk sums of one tile from its 8 lane outputs lb[l][96], added into acc rows m0.. (< M) and
 * columns n0.. (< n0 + ng). GEMM (xs NULL): acc = t (first chunk) or acc + t. fp8 (chunk = one
 * 128-block kb): acc = (first ? +0 : acc) + t·(xs[m,kb]·ws[n/128,kb]) (fp8.h). */
AVX2 static void combine(float *acc, int64_t N, const float *lb, int64_t m0, int64_t M,
			 int64_t n0, int64_t ng, bool first, const float *xs, const float *ws,
			 int64_t kb, int64_t nkb)
{
	for (int v = 0; v < MR * NR / 8; v++) {
		int64_t m = m0 + v / 3, c0 = (int64_t)(v % 3) * 8, nc = ng - c0;
		if (m >= M || nc <= 0)
			continue;
		const float *L = lb + v * 8;
#define LN(l) _mm256_load_ps(L + (l) * MR * NR)
		__m256 t = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(LN(0), LN(4)),
						       _mm256_add_ps(LN(2), LN(6))),
					 _mm256_add_ps(_mm256_add_ps(LN(1), LN(5)),
						       _mm256_add_ps(LN(3), LN(7))));
#undef LN
		float *a = acc + m * N + n0 + c0;
		float tmp[8];
		bool full = nc >= 8;
		__m256 prev = _mm256_setzero_ps();
		if (!first || xs) {
			if (full) {
				if (!first)
					prev = _mm256_loadu_ps(a);
			} else {
				for (int c = 0; c < 8; c++)
					tmp[c] = !first && c < nc ? a[c] : 0.0f;
				prev = _mm256_loadu_ps(tmp);
			}
		}
		if (xs) {
			/* n0 + c0 is a multiple of 8: the vector's columns share one 128-block */
			float sc = xs[m * nkb + kb] * ws[((n0 + c0) / 128) * nkb + kb];
			t = _mm256_add_ps(prev, _mm256_mul_ps(t, _mm256_set1_ps(sc)));
		} else if (!first) {
			t = _mm256_add_ps(prev, t);
		}
		if (full) {
			_mm256_storeu_ps(a, t);
		} else {
			_mm256_storeu_ps(tmp, t);
			for (int c = 0; c < nc; c++)
				a[c] = tmp[c];
		}
	}
}

/* xp[chunk][mt][l][q][MR] from xf [.., Kp] (rows >= M zero); chunk at k0 starts at
 * nmt·MR·k0. */
static void pack_x(float *xp, const float *xf, int64_t M, int64_t nmt, int64_t Kp,
		   int64_t kc_max)
{
#pragma omp parallel for schedule(static) if (dsv32_par_worth((double)(nmt * MR) * (double)Kp))
	for (int64_t mt = 0; mt < nmt; mt++)
		for (int64_t k0 = 0; k0 < Kp; k0 += kc_max) {
			int64_t kc = Kp - k0 < kc_max ? Kp - k0 : kc_max, kq = kc / 8;
			float *d = xp + nmt * MR * k0 + mt * 8 * kq * MR;
			for (int i = 0; i < MR; i++) {
				int64_t m = mt * MR + i;
				const float *s = xf + m * Kp + k0;
				for (int64_t q = 0; q < kq; q++)
					for (int l = 0; l < 8; l++)
						d[(l * kq + q) * MR + i] = m < M ? s[8 * q + l] : 0.0f;
			}
		}
}

/* One K chunk (at k0) of nu NR-column tiles from tile nt0: pack w, run the 8 lanes, add the
 * chunk sums into acc. */
AVX2 static void chunk(float *acc, const float *xp, int64_t nmt, int64_t M, int64_t Kp,
		       const dsv32_gemm_wref *w, const float *lut, int64_t N, int64_t K,
		       int64_t kc_max, int64_t k0, int64_t nt0, int64_t nu, float *wp, float *lb,
		       const float *xs, const float *ws, int64_t nkb)
{
	int64_t kc = Kp - k0 < kc_max ? Kp - k0 : kc_max, kq = kc / 8, kb = k0 / kc_max;
	int64_t kv = K - k0 < kc ? K - k0 : kc; /* unpadded values */
	for (int64_t u = 0; u < nu; u++) {
		int64_t n0 = (nt0 + u) * NR, ng = N - n0 < NR ? N - n0 : NR;
		if (w->trans)
			pack_w_nt(wp + u * KC * NR, w, lut, n0, ng, k0, kc, kv);
		else
			pack_w_nn(wp + u * KC * NR, w, lut, n0, ng, k0, kc, kv);
	}
	const float *xc = xp + nmt * MR * k0;
	for (int64_t mb = 0; mb < nmt; mb += MB) {
		int64_t nb = nmt - mb < MB ? nmt - mb : MB;
		for (int l = 0; l < 8; l++)
			for (int64_t t = 0; t < nb; t++)
				for (int64_t u = 0; u < nu; u++)
					kern_4x24(lb + ((u * MB + t) * 8 + l) * MR * NR,
						  xc + ((mb + t) * 8 + l) * kq * MR,
						  wp + u * KC * NR + l * kq * NR, kq);
		for (int64_t u = 0; u < nu; u++) {
			int64_t n0 = (nt0 + u) * NR, ng = N - n0 < NR ? N - n0 : NR;
			for (int64_t t = 0; t < nb; t++)
				combine(acc, N, lb + (u * MB + t) * 8 * MR * NR, (mb + t) * MR, M, n0,
					ng, k0 == 0, xs, ws, kb, nkb);
		}
	}
}

/* ---- the avx2 body's few-rows kernel (M <= 4, "NT" w of BF16 or F32, or e4m3 with fp8
 * scales) ----
 * A decode GEMM (one to four rows) would pack every 24-column panel of w for one use; here w
 * is read in place. One ymm holds the 8 lane sums of one output: element l adds
 * xf[m, k0+8q+l] · w[n, k0+8q+l] by FMA for q = 0, 1, ... from +0, lane l's chain of the
 * written order (the zero padding of the last 8 included), then the tree and the chunk sums in
 * order, as above (fp8: a = (first ? +0 : a) + t·(xs·ws)). MR x NC outputs at a time
 * (MR·NC + NC + 1 of the 16 ymm registers); a column tail repeats the last column and does not
 * store it. */
#define FR_PF 512 /* prefetch distance along each w row, in values (1 KiB of bf16) */

typedef struct {
	const float *xf; /* [M, Kp] */
	int64_t Kp;
	const dsv32_gemm_wref *w;
	int64_t N, K, kc_max;
	const float *lut, *xs, *ws; /* e4m3 decode table; fp8 scales (NULL: plain GEMM) */
	int64_t nkb;
} fr_args;

/* 8 w values of row n from k, widened exactly; zero for k + i >= K. */
AVX2 static inline __m256 fr_w8_tail(const fr_args *g, int64_t n, int64_t k)
{
	float t[8];
	for (int i = 0; i < 8; i++)
		t[i] = k + i < g->K ? w_at(g->w, g->lut, n, k + i) : 0.0f;
	return _mm256_loadu_ps(t);
}

/* 8 e4m3 codes decoded exactly (e4m3x8_f16c; a step holding a NaN code through lut). */
AVX2 static inline __m256 fr_e4m3_8(const uint8_t *c, const float *lut)
{
	__m128i mx = _mm_setzero_si128();
	__m256 v = e4m3x8_f16c(c, &mx);
	if (!dsv32_e4m3_nan_seen(mx))
		return v;
	float t[8];
	for (int i = 0; i < 8; i++)
		t[i] = lut[c[i]];
	return _mm256_loadu_ps(t);
}

/* 8 values of dtype DT (0 F32, 1 BF16, 2 e4m3) at p + i, widened exactly. */
#define FR_W8(DT, p, i)                                                                       \
	((DT) == 2 ? fr_e4m3_8((const uint8_t *)(p) + (i), g->lut)                            \
	 : (DT) == 1                                                                          \
		? _mm256_castsi256_ps(_mm256_slli_epi32(                                      \
			  _mm256_cvtepu16_epi32(_mm_loadu_si128(                              \
				  (const __m128i *)((const uint16_t *)(p) + (i)))),           \
			  16))                                                                \
		: _mm256_loadu_ps((const float *)(p) + (i)))

/* The chunk sum of 8 lane sums: ((L0+L4)+(L2+L6))+((L1+L5)+(L3+L7)). */
AVX2 static inline float fr_tree(__m256 v)
{
	__m128 a = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
	__m128 b = _mm_add_ps(a, _mm_movehl_ps(a, a));
	return _mm_cvtss_f32(_mm_add_ss(b, _mm_movehdup_ps(b)));
}

/* One step of 8 values at k for every row and column: w straight from its rows (full steps) or
 * through fr_w8_tail (the last, partial one). */
#define FR_STEP(RM, NC, LOADW)                                                                \
	do {                                                                                  \
		__m256 wv[NC];                                                                \
		for (int j = 0; j < NC; j++)                                                  \
			wv[j] = LOADW;                                                        \
		for (int m = 0; m < RM; m++) {                                                \
			__m256 xv = _mm256_loadu_ps(g->xf + m * g->Kp + k);                   \
			for (int j = 0; j < NC; j++)                                          \
				c[m][j] = _mm256_fmadd_ps(xv, wv[j], c[m][j]);                \
		}                                                                             \
	} while (0)

/* The chunk sums of chunk k0 added into a (GEMM: a = t, then a + t; fp8 (DT 2): a = (first ?
 * +0 : a) + t·sc, sc = xs[m, kb]·ws[n/128, kb], each product rounded once). */
#define FR_ADD(DT, RM, NC)                                                                    \
	for (int m = 0; m < RM; m++)                                                          \
		for (int j = 0; j < NC; j++) {                                                \
			float t = fr_tree(c[m][j]);                                           \
			if ((DT) == 2) {                                                      \
				int64_t kb = k0 / g->kc_max;                                  \
				float sc = g->xs[m * g->nkb + kb] *                           \
					   g->ws[(col[j] / 128) * g->nkb + kb];               \
				a[m][j] = (k0 == 0 ? 0.0f : a[m][j]) + t * sc;                \
			} else {                                                              \
				a[m][j] = k0 == 0 ? t : a[m][j] + t;                          \
			}                                                                     \
		}

#define FEW_ROWS(NAME, DT, RM, NC)                                                            \
	AVX2 static void NAME(float *acc, const fr_args *g, int64_t n0)                       \
	{                                                                                     \
		const size_t esz = (DT) == 2 ? 1 : (DT) == 1 ? 2 : 4;                          \
		const char *row[NC];                                                          \
		int64_t col[NC], N = g->N, kfull = g->K & ~(int64_t)7;                        \
		float a[RM][NC];                                                              \
		for (int j = 0; j < NC; j++) {                                                \
			col[j] = n0 + j < N ? n0 + j : N - 1;                                 \
			row[j] = (const char *)g->w->p + (size_t)(col[j] * g->w->ld) * esz;   \
		}                                                                             \
		for (int64_t k0 = 0; k0 < g->Kp; k0 += g->kc_max) {                           \
			int64_t k1 = g->Kp - k0 < g->kc_max ? g->Kp : k0 + g->kc_max;         \
			int64_t kf = k1 < kfull ? k1 : kfull, k = k0;                         \
			__m256 c[RM][NC];                                                     \
			_Pragma("GCC unroll 8") for (int m = 0; m < RM; m++)                  \
				_Pragma("GCC unroll 8") for (int j = 0; j < NC; j++)          \
					c[m][j] = _mm256_setzero_ps();                        \
			for (; k < kf; k += 8) {                                              \
				if ((k * esz) % 64 == 0)                                       \
					for (int j = 0; j < NC; j++)                          \
						_mm_prefetch(row[j] + (k + FR_PF) * esz,      \
							     _MM_HINT_T0);                    \
				FR_STEP(RM, NC, FR_W8(DT, row[j], k));                        \
			}                                                                     \
			for (; k < k1; k += 8)                                                \
				FR_STEP(RM, NC, fr_w8_tail(g, col[j], k));                    \
			FR_ADD(DT, RM, NC)                                                    \
		}                                                                             \
		for (int m = 0; m < RM; m++)                                                  \
			for (int j = 0; j < NC && n0 + j < N; j++)                            \
				acc[m * N + n0 + j] = a[m][j];                                \
	}
/* the kernels of one dtype for 1, 2, 3 and 4 rows */
#define FEW_ROWS_1_TO_4(P, DT)                                                                \
	FEW_ROWS(P##1, DT, 1, 6) FEW_ROWS(P##2, DT, 2, 4) FEW_ROWS(P##3, DT, 3, 3)            \
	FEW_ROWS(P##4, DT, 4, 2)
FEW_ROWS_1_TO_4(few_rows_f, 0)
FEW_ROWS_1_TO_4(few_rows_b, 1)
FEW_ROWS_1_TO_4(few_rows_e, 2)

static bool few_rows_fit(int64_t M, const dsv32_gemm_wref *w, const float *xs)
{
	if (M < 1 || M > 4 || !w->trans)
		return false;
	return xs ? w->dtype == DSV32_F8_E4M3 : w->dtype == DSV32_BF16 || w->dtype == DSV32_F32;
}

/* acc [M, N] by the few-rows kernel, column tiles spread over the threads. */
static void few_rows_avx2(float *acc, int64_t M, const fr_args *g)
{
	static const int nc_of[5] = {0, 6, 4, 3, 2};
	static void (*const body[3][4])(float *, const fr_args *, int64_t) = {
		{few_rows_f1, few_rows_f2, few_rows_f3, few_rows_f4},
		{few_rows_b1, few_rows_b2, few_rows_b3, few_rows_b4},
		{few_rows_e1, few_rows_e2, few_rows_e3, few_rows_e4}};
	int dt = g->w->dtype == DSV32_F8_E4M3 ? 2 : g->w->dtype == DSV32_BF16 ? 1 : 0;
	int64_t nc = nc_of[M], tiles = (g->N + nc - 1) / nc;
#pragma omp parallel for schedule(static) if (dsv32_par_worth((double)M * (double)g->N * (double)g->Kp))
	for (int64_t t = 0; t < tiles; t++)
		body[dt][M - 1](acc, g, t * nc);
}

/* The avx2 body: acc [.., N] rows < M written; false on allocation failure. */
static bool gemm_avx2(float *acc, const float *xf, int64_t M, int64_t Kp,
		      const dsv32_gemm_wref *w, int64_t N, int64_t K, int64_t kc_max,
		      const float *xs, const float *ws, int64_t nkb)
{
	int64_t nmt = (M + MR - 1) / MR, ntiles = (N + NR - 1) / NR;
	float *xp = dsv32_cpu_scratch(1, (size_t)(nmt * MR * Kp) * sizeof(float) + 64);
	if (!xp)
		return false;
	pack_x(xp, xf, M, nmt, Kp, kc_max);
	float lut[256]; /* read for an e4m3 w only */
	if (w->dtype == DSV32_F8_E4M3)
		dsv32_e4m3_table(lut);
	bool ok = true;
	int64_t nunits = (ntiles + NTU - 1) / NTU;
	/* K super-blocks of whole chunks whose packed x (nmt·MR·sk floats) stays within XBUDGET
	 * bytes, so it is reread from cache by every unit; each unit walks the chunks of a
	 * super-block in order (long sequential reads of its w rows). */
	int64_t sk = (int64_t)(XBUDGET / sizeof(float)) / (nmt * MR) / kc_max * kc_max;
	if (sk < kc_max)
		sk = kc_max;
#pragma omp parallel if (dsv32_par_worth((double)M * (double)N * (double)Kp))
	{
		float *wp = dsv32_cpu_scratch(2, (size_t)NTU * KC * NR * sizeof(float)); /* per thread */
		float *lb = dsv32_cpu_scratch(3, (size_t)NTU * MB * 8 * MR * NR * sizeof(float));
		if (!wp || !lb) {
#pragma omp atomic write
			ok = false;
		}
		for (int64_t s0 = 0; s0 < Kp; s0 += sk) {
			int64_t s1 = Kp - s0 < sk ? Kp : s0 + sk;
#pragma omp for schedule(dynamic, 1)
			for (int64_t un = 0; un < nunits; un++) {
				if (!wp || !lb)
					continue;
				int64_t nt0 = un * NTU, nu = ntiles - nt0 < NTU ? ntiles - nt0 : NTU;
				for (int64_t k0 = s0; k0 < s1; k0 += kc_max)
					chunk(acc, xp, nmt, M, Kp, w, lut, N, K, kc_max, k0, nt0, nu, wp,
					      lb, xs, ws, nkb);
			}
		}
	}
	dsv32_cpu_scratch_done(1);
	return ok;
}
#endif

/* The avx512 body (gemm_fixed_avx512.c). */
bool dsv32_gemm_fixed_avx512_usable(void);
bool dsv32_gemm_fixed_bf16dp_usable(void);
/* x: element (m, k) at x[m·ldx + k], F32 or BF16, read for m < M and k < K (zero beyond). */
bool dsv32_gemm_fixed_avx512(float *acc, const void *x, dsv32_dtype xt, int64_t ldx, int64_t M,
			     int64_t Kp, const dsv32_gemm_wref *w, int64_t N, int64_t K,
			     int64_t kc_max, const float *xs, const float *ws, int64_t nkb);

bool dsv32_gemm_fixed_e4m3x_ok(int64_t M);

dsv32_status dsv32_gemm_fixed_e4m3x(float *acc, const dsv32_f8 *x8, int64_t M, int64_t K,
				    const dsv32_gemm_wref *w, int64_t N, const float *xs,
				    const float *ws, int64_t nkb, bool *done, dsv32_error *err)
{
	*done = false;
#ifdef HAVE_AVX2_BODY
	if (w->dtype != DSV32_F8_E4M3 || !dsv32_gemm_fixed_e4m3x_ok(M))
		return DSV32_OK;
	int64_t Kp = (K + 7) & ~(int64_t)7;
	if (!dsv32_gemm_fixed_avx512(acc, x8, DSV32_F8_E4M3, K, M, Kp, w, N, K, 128, xs, ws, nkb))
		return DSV32_FAIL(err, DSV32_E_NOMEM, "fp8_gemm: packing buffers for M %lld N %lld "
				  "K %lld", (long long)M, (long long)N, (long long)K);
	*done = true;
#else
	(void)acc, (void)x8, (void)M, (void)K, (void)w, (void)N, (void)xs, (void)ws, (void)nkb;
	(void)err;
#endif
	return DSV32_OK;
}

const char *dsv32_gemm_fixed_body(void)
{
#ifdef HAVE_AVX2_BODY
	if (dsv32_gemm_fixed_bf16dp_usable())
		return "avx512bf16";
	if (dsv32_gemm_fixed_avx512_usable())
		return "avx512";
	if (avx2_usable())
		return "avx2";
#endif
	return "scalar";
}

dsv32_status dsv32_gemm_fixed_f32x(float *acc, const float *xf, int64_t M, int64_t Kp,
				   const dsv32_gemm_wref *w, int64_t N, int64_t K, int64_t kc,
				   const float *xs, const float *ws, int64_t nkb, dsv32_error *err)
{
	if (kc <= 0 || kc % 8 != 0 || Kp % 8 != 0 || Kp < K)
		return DSV32_FAIL(err, DSV32_E_INTERNAL, "gemm_fixed: chunk %lld, Kp %lld, K %lld",
				  (long long)kc, (long long)Kp, (long long)K);
#ifdef HAVE_AVX2_BODY
	if (kc <= KC && dsv32_gemm_fixed_avx512_usable()) {
		if (!dsv32_gemm_fixed_avx512(acc, xf, DSV32_F32, Kp, M, Kp, w, N, K, kc, xs, ws,
					     nkb))
			return DSV32_FAIL(err, DSV32_E_NOMEM, "gemm_fixed: packing buffers for M %lld "
					  "N %lld K %lld", (long long)M, (long long)N, (long long)K);
		return DSV32_OK;
	}
	if (kc <= KC && avx2_usable() && few_rows_fit(M, w, xs)) {
		float lut[256];
		if (w->dtype == DSV32_F8_E4M3)
			dsv32_e4m3_table(lut);
		fr_args g = {xf, Kp, w, N, K, kc, w->dtype == DSV32_F8_E4M3 ? lut : NULL, xs, ws, nkb};
		few_rows_avx2(acc, M, &g);
		return DSV32_OK;
	}
	if (kc <= KC && avx2_usable()) {
		if (!gemm_avx2(acc, xf, M, Kp, w, N, K, kc, xs, ws, nkb))
			return DSV32_FAIL(err, DSV32_E_NOMEM, "gemm_fixed: packing buffers for M %lld "
					  "N %lld K %lld", (long long)M, (long long)N, (long long)K);
		return DSV32_OK;
	}
#endif
	gemm_scalar(acc, xf, M, Kp, w, N, K, kc, xs, ws, nkb);
	return DSV32_OK;
}

/* x_b rows widened into xf [M, Kp] (the padding columns stay zero). */
static void widen_x(float *xf, const dsv32_gemm_desc *d, const char *xb, int64_t Kp)
{
	size_t xsz = dsv32_dtype_size(d->x_dtype);
	for (int64_t m = 0; m < d->M; m++) {
		const char *s = xb + (size_t)(m * d->ldx) * xsz;
		if (d->x_dtype == DSV32_F32)
			memcpy(xf + m * Kp, s, (size_t)d->K * sizeof(float));
		else
			for (int64_t k = 0; k < d->K; k++)
				xf[m * Kp + k] = dsv32_bf16_to_f32(((const uint16_t *)s)[k]);
	}
}

/* Row m of acc rounded to bf16 (dsv32_f32_to_bf16), 8 at a time where the CPU has AVX2. */
#ifdef DSV32_CPU_AVX2
DSV32_AVX2_FN static int64_t round_row_avx2(uint16_t *row, const float *a, int64_t N)
{
	int64_t n = 0;
	for (; n + 8 <= N; n += 8)
		dsv32_st8(row, DSV32_BF16, n, _mm256_loadu_ps(a + n));
	return n;
}
#endif

void dsv32_gemm_store_bf16(uint16_t *y, int64_t ldy, const float *acc, int64_t M, int64_t N)
{
#ifdef DSV32_CPU_AVX2
	bool vec = dsv32_cpu_has_avx2();
#endif
	for (int64_t m = 0; m < M; m++) {
		uint16_t *row = y + m * ldy;
		int64_t n = 0;
#ifdef DSV32_CPU_AVX2
		if (vec)
			n = round_row_avx2(row, acc + m * N, N);
#endif
		for (; n < N; n++)
			row[n] = dsv32_f32_to_bf16(acc[m * N + n]);
	}
}

static void store_y(char *yb, const dsv32_gemm_desc *d, const float *acc)
{
	if (d->y_dtype != DSV32_F32) {
		dsv32_gemm_store_bf16((uint16_t *)yb, d->ldy, acc, d->M, d->N);
		return;
	}
	for (int64_t m = 0; m < d->M; m++)
		memcpy((float *)yb + m * d->ldy, acc + m * d->N, (size_t)d->N * sizeof(float));
}

dsv32_status dsv32_gemm_fixed(const dsv32_gemm_desc *d, dsv32_error *err)
{
	int64_t Kp = (d->K + 7) & ~(int64_t)7;
	size_t xsz = dsv32_dtype_size(d->x_dtype), wsz = dsv32_dtype_size(d->w_dtype);
	size_t ysz = dsv32_dtype_size(d->y_dtype);
#ifdef HAVE_AVX2_BODY
	/* the avx512 body packs x from its own rows (no widened copy) */
	bool direct_x = dsv32_gemm_fixed_avx512_usable();
#else
	bool direct_x = false;
#endif
	size_t nxf = direct_x ? 0 : (size_t)(d->M * Kp);
	float *xf = dsv32_cpu_scratch(0, (nxf + (size_t)(d->M * d->N)) * sizeof(float));
	if (!xf)
		return DSV32_FAIL(err, DSV32_E_NOMEM, "gemm: scratch for M %lld N %lld K %lld",
				  (long long)d->M, (long long)d->N, (long long)d->K);
	if (nxf) /* the K padding of xf stays zero (widen_x writes k < K) */
		for (int64_t m = 0; m < d->M; m++)
			memset(xf + m * Kp + d->K, 0, (size_t)(Kp - d->K) * sizeof(float));
	float *acc = xf + nxf;
	dsv32_status rc = DSV32_OK;
	for (int64_t b = 0; b < d->batch && rc == DSV32_OK; b++) {
		dsv32_gemm_wref w = {(const char *)d->w + (size_t)(b * d->stride_w) * wsz,
				     d->w_dtype, d->trans_w, d->ldw};
		const char *xb = (const char *)d->x + (size_t)(b * d->stride_x) * xsz;
#ifdef HAVE_AVX2_BODY
		if (direct_x) {
			if (!dsv32_gemm_fixed_avx512(acc, xb, d->x_dtype, d->ldx, d->M, Kp, &w, d->N,
						     d->K, DSV32_GEMM_FIXED_KC, NULL, NULL, 0))
				rc = DSV32_FAIL(err, DSV32_E_NOMEM, "gemm_fixed: packing buffers for "
						"M %lld N %lld K %lld", (long long)d->M,
						(long long)d->N, (long long)d->K);
		} else
#endif
		{
			widen_x(xf, d, xb, Kp);
			rc = dsv32_gemm_fixed_f32x(acc, xf, d->M, Kp, &w, d->N, d->K,
						   DSV32_GEMM_FIXED_KC, NULL, NULL, 0, err);
		}
		if (rc == DSV32_OK)
			store_y((char *)d->y + (size_t)(b * d->stride_y) * ysz, d, acc);
	}
	dsv32_cpu_scratch_done(0);
	return rc;
}
