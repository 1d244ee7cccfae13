/* gemm_dpbf16.c: the host engine's bf16 x bf16 GEMM on CPUs with AVX512-BF16 but no AMX, in the
 * order torch's oneDNN (3.13, inside torch 2.15) runs it there (`brg_matmul:avx512_core_bf16`):
 * K in chunks of 1024 values; per output and chunk, one fp32 accumulator from +0, then one
 * VDPBF16PS per pair of k values, pairs in increasing k (k = 2j and 2j+1 in one instruction,
 * which adds the product of element 2j+1 and then that of element 2j, each rounded to fp32,
 * bf16 subnormal inputs read as zero and subnormal results flushed, as the SDM defines it); the
 * chunk sums added in chunk order (y = t0, then y + t1, ...); an odd K's last pair has a zero
 * partner; a BF16 y is rounded by VCVTNEPS2BF16 (RNE; subnormal results flushed), as oneDNN
 * does. Measured against torch 2.15 on an Intel Xeon (model 207) without AMX, 1 and 2 threads:
 * the same bits for every output of the tiny model's GEMMs and of random products with K up to
 * 16384 and M up to 128 (docs/topk-ties.md "Without AMX"). Debian's oneDNN 2.6 picks `gemm:jit`
 * for most of these shapes, whose order differs in a few outputs per GEMM.
 * With DSV32_HOST_BF16_ROW=lanes a single row (M = 1) takes the order torch 2.15's oneDNN runs
 * for one row (found by numpy emulation on an AMD EPYC Zen 5: 0 of 67,584 outputs differ over
 * K = 130 to 18432, N up to 8192, 1 and 2 threads; docs/topk-ties.md "Without AMX"): 16 fp32
 * lanes from +0, lane l taking pairs j = l mod 16 of all of K (no chunks) by VDPBF16PS, then
 * the lanes summed as (l, l+8), then (l, l+4), then neighbours (0+1, 2+3), then those two. It is
 * not the default: torch 1.13, which recorded DeepSeek's fixtures/golden/ref_tiny, runs one row
 * in the chunked order above, and the default reproduces that recording bit for bit.
 * torch's single-row `F.linear`, `_grouped_mm` groups of one row and `matmul(q, k^T)` all run it
 * there; an "NN" product of one row (p·V) matched neither order in 1 of 3 shapes, and no model
 * GEMM here is "NN".
 * Each output is formed by one thread, so the thread count changes no bit.
 * Two vector layouts, the same order per output: up to SM_ROWS rows of x (decode steps of up to
 * four prompts), the 16 lanes run across 16 columns of w (its pairs transposed 16 x 16 in
 * registers, x pairs broadcast); otherwise across 16 rows of x (w pairs broadcast), which
 * leaves 15 of 16 lanes idle at M = 1. The products are the same two numbers either way (x·w = w·x exactly; only which
 * NaN payload survives where x and w are both NaN may differ, as gemm.h allows). */
#include "kernels/gemm_impl.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "kernels/cpu_parallel.h"
#include "kernels/cpu_scratch.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define DP __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))

/* oneDNN's ISA cap (ONEDNN_MAX_CPU_ISA / DNNL_MAX_CPU_ISA) stands for another CPU in
 * scripts/ci-portability.sh, so it steers this body as it steers oneDNN (and torch's oneDNN): a
 * cap below AVX512_CORE_BF16 means no AVX512-BF16; a cap at it or at AVX512_CORE_FP16 means no
 * AMX, so this body runs on an AMX CPU too. *allow_amx: the cap leaves AMX on. */
static bool isa_cap_allows_bf16(bool *allow_amx)
{
	static const char *const vars[] = {"ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA"};
	*allow_amx = true;
	for (int i = 0; i < 2; i++) {
		const char *v = getenv(vars[i]);
		if (!v || !*v || !strcasecmp(v, "ALL"))
			continue;
		if (!strcasestr(v, "BF16") && !strcasestr(v, "FP16") && !strcasestr(v, "AMX"))
			return false;
		*allow_amx = *allow_amx && strcasestr(v, "AMX") != NULL;
	}
	return true;
}

static bool usable_here(void)
{
	const char *v = getenv("DSV32_HOST_BF16");
	bool allow_amx = true;
	if ((v && !strcmp(v, "onednn")) || !isa_cap_allows_bf16(&allow_amx))
		return false;
	return __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512bw") &&
	       __builtin_cpu_supports("avx512vl") &&
	       !(allow_amx && __builtin_cpu_supports("amx-bf16"));
}

/* probe() decided once per process (the host engine asks at every bf16 GEMM), as the
 * environment and the CPU do not change under it; *cached starts at -1. */
static bool decided_once(int *cached, bool (*probe)(void))
{
	int v = __atomic_load_n(cached, __ATOMIC_RELAXED); /* benign: every thread gets the same */
	if (v < 0) {
		v = probe();
		__atomic_store_n(cached, v, __ATOMIC_RELAXED);
	}
	return v != 0;
}

bool dsv32_gemm_dpbf16_usable(void)
{
	static int cached = -1;
	return decided_once(&cached, usable_here);
}

static bool row_lanes_asked(void)
{
	const char *e = getenv("DSV32_HOST_BF16_ROW");
	return e && !strcmp(e, "lanes");
}

/* DSV32_HOST_BF16_ROW=lanes: one row in torch 2.15's single-row order (file comment). */
bool dsv32_gemm_dpbf16_row_lanes(void)
{
	static int cached = -1;
	return decided_once(&cached, row_lanes_asked);
}

/* The pair (k = 2j, 2j+1) of row r of a bf16 matrix with element (r, k) at p[r·ld + k], as one
 * 32-bit word (element 2j in the low half); k = K reads as 0. */
static inline uint32_t pair_rowmajor(const uint16_t *p, int64_t ld, int64_t r, int64_t j,
				     int64_t K)
{
	const uint16_t *q = p + r * ld + 2 * j;
	uint32_t hi = 2 * j + 1 < K ? q[1] : 0;
	return (uint32_t)q[0] | hi << 16;
}

#define MB 16  /* rows per vector: the 16 fp32 lanes are 16 rows of x */
#define NC 8   /* columns per tile */
#define KCP 512 /* pairs per K chunk (1024 values), as torch's oneDNN blocks K */

/* x as pairs, 16 rows per block: xp[(mb·J + j)·16 + l] = pair j of row 16·mb + l (0 past M). */
static void pack_x(uint32_t *xp, const uint16_t *x, int64_t ldx, int64_t M, int64_t K)
{
	int64_t J = (K + 1) / 2, nmb = (M + MB - 1) / MB;
	for (int64_t mb = 0; mb < nmb; mb++)
		for (int64_t l = 0; l < MB; l++) {
			int64_t m = mb * MB + l;
			for (int64_t j = 0; j < J; j++)
				xp[(mb * J + j) * MB + l] = m < M ? pair_rowmajor(x, ldx, m, j, K) : 0;
		}
}

/* w as rows of pairs where it is not one already: wp[n·J + j] = pair j of column n. */
static void pack_w(uint32_t *wp, const dsv32_gemm_desc *d, const uint16_t *w)
{
	int64_t J = (d->K + 1) / 2;
	for (int64_t n = 0; n < d->N; n++)
		for (int64_t j = 0; j < J; j++) {
			uint32_t v;
			if (d->trans_w) {
				v = pair_rowmajor(w, d->ldw, n, j, d->K);
			} else {
				uint32_t hi = 2 * j + 1 < d->K ? w[(2 * j + 1) * d->ldw + n] : 0;
				v = (uint32_t)w[2 * j * d->ldw + n] | hi << 16;
			}
			wp[n * J + j] = v;
		}
}

/* Pairs j0 .. j1-1 of one chunk into c (from +0), for one or two row blocks; inlined with `two`
 * a constant, so the one-block loop (M <= 16, the decode GEMMs) carries no test of it. */
DP static inline __attribute__((always_inline)) void chunk_pairs(
	__m512 c[2][NC], const uint32_t *x0, const uint32_t *x1, const uint8_t *wr, int64_t wld,
	int64_t n0, int nc, int64_t j0, int64_t j1, bool two)
{
	/* past the last of nc columns the tile repeats it (not stored): a loop of constant
	 * length keeps the accumulators in registers (with a break at nc they went to memory:
	 * a third of the speed) */
	const uint8_t *wc[NC];
	for (int q = 0; q < NC; q++)
		wc[q] = wr + (n0 + (q < nc ? q : nc - 1)) * wld * 4;
#pragma GCC unroll 2
	for (int h = 0; h < 2; h++)
#pragma GCC unroll 8
		for (int q = 0; q < NC; q++)
			c[h][q] = _mm512_setzero_ps();
	for (int64_t j = j0; j < j1; j++) {
		__m512bh a0 = (__m512bh)_mm512_loadu_si512(x0 + j * MB);
		__m512bh a1 = two ? (__m512bh)_mm512_loadu_si512(x1 + j * MB) : a0;
#pragma GCC unroll 8
		for (int q = 0; q < NC; q++) {
			uint32_t wv;
			memcpy(&wv, wc[q] + j * 4, 4);
			__m512bh b = (__m512bh)_mm512_set1_epi32((int)wv);
			c[0][q] = _mm512_dpbf16_ps(c[0][q], a0, b);
			if (two)
				c[1][q] = _mm512_dpbf16_ps(c[1][q], a1, b);
		}
	}
}

/* Rows 16·mb .. (two blocks where mb2) x columns n0 .. n0+nc-1: per pair j, the x pairs of 16
 * rows against the broadcast w pair of each column, one accumulator per (block, column). w
 * pair j of column n at wr[n·wld + j] (32-bit words, unaligned). */
DP static void tile(const dsv32_gemm_desc *d, const uint32_t *xp, int64_t J, const uint8_t *wr,
		    int64_t wld, void *y, int64_t mb, bool two, int64_t n0, int nc)
{
	__m512 c[2][NC], t[2][NC];
	const uint32_t *x0 = xp + mb * J * MB, *x1 = x0 + J * MB;
	for (int64_t j0 = 0; j0 < J; j0 += KCP) {
		int64_t j1 = J - j0 < KCP ? J : j0 + KCP;
		if (two)
			chunk_pairs(c, x0, x1, wr, wld, n0, nc, j0, j1, true);
		else
			chunk_pairs(c, x0, x1, wr, wld, n0, nc, j0, j1, false);
#pragma GCC unroll 2
		for (int h = 0; h < 2; h++) /* chunk sums in chunk order: t = c, then t + c */
#pragma GCC unroll 8
			for (int q = 0; q < NC; q++)
				t[h][q] = j0 == 0 ? c[h][q] : _mm512_add_ps(t[h][q], c[h][q]);
	}
	for (int h = 0; h < (two ? 2 : 1); h++)
		for (int q = 0; q < nc; q++) {
			int64_t m0 = (mb + h) * MB, rows = d->M - m0 < MB ? d->M - m0 : MB;
			int64_t n = n0 + q;
			if (d->y_dtype == DSV32_F32) {
				float v[MB];
				_mm512_storeu_ps(v, t[h][q]);
				for (int64_t l = 0; l < rows; l++)
					((float *)y)[(m0 + l) * d->ldy + n] = v[l];
			} else {
				uint16_t v[MB];
				_mm256_storeu_si256((__m256i *)v, (__m256i)_mm512_cvtneps_pbh(t[h][q]));
				for (int64_t l = 0; l < rows; l++)
					((uint16_t *)y)[(m0 + l) * d->ldy + n] = v[l];
			}
		}
}

/* The lanes of v in mask k stored at element i of y: F32, or BF16 by VCVTNEPS2BF16 (the file
 * comment's rounding). */
DP static inline void store16(void *y, dsv32_dtype yt, int64_t i, __mmask16 k, __m512 v)
{
	if (yt == DSV32_F32)
		_mm512_mask_storeu_ps((float *)y + i, k, v);
	else
		_mm256_mask_storeu_epi16((uint16_t *)y + i, k, (__m256i)_mm512_cvtneps_pbh(v));
}

/* Rows of x up to which the lanes run across columns of w: real-width decode steps of 1 and 2
 * prompts ran 10% and 5% faster so than on the rows body, of 3 and 4 no faster, but the small
 * preset's steps of 4 took 12-13 ms against 19-20; at 8 rows it was slower. */
#define SM_ROWS 4
#define SG 4 /* column blocks of 16 per tile there: SG x M = 4 to 16 chains in flight */
#define WPF_PAIRS 32 /* prefetch distance along a w row there: 2 lines */

/* Rows 0..15 of v (16 pairs each) transposed: v[j] = pair j of the 16 rows. */
DP static inline __attribute__((always_inline)) void transpose16(__m512i v[16])
{
	__m512i a[16], b[16];
	for (int i = 0; i < 8; i++) {
		a[2 * i] = _mm512_unpacklo_epi32(v[2 * i], v[2 * i + 1]);
		a[2 * i + 1] = _mm512_unpackhi_epi32(v[2 * i], v[2 * i + 1]);
	}
	/* b[4i + k], 128-bit lane q: column 4q + k of rows 4i .. 4i+3 */
	for (int i = 0; i < 4; i++) {
		b[4 * i] = _mm512_unpacklo_epi64(a[4 * i], a[4 * i + 2]);
		b[4 * i + 1] = _mm512_unpackhi_epi64(a[4 * i], a[4 * i + 2]);
		b[4 * i + 2] = _mm512_unpacklo_epi64(a[4 * i + 1], a[4 * i + 3]);
		b[4 * i + 3] = _mm512_unpackhi_epi64(a[4 * i + 1], a[4 * i + 3]);
	}
	for (int k = 0; k < 4; k++) {
		__m512i c0 = _mm512_shuffle_i32x4(b[k], b[4 + k], 0x88);
		__m512i c1 = _mm512_shuffle_i32x4(b[k], b[4 + k], 0xDD);
		__m512i c2 = _mm512_shuffle_i32x4(b[8 + k], b[12 + k], 0x88);
		__m512i c3 = _mm512_shuffle_i32x4(b[8 + k], b[12 + k], 0xDD);
		v[k] = _mm512_shuffle_i32x4(c0, c2, 0x88);
		v[8 + k] = _mm512_shuffle_i32x4(c0, c2, 0xDD);
		v[4 + k] = _mm512_shuffle_i32x4(c1, c3, 0x88);
		v[12 + k] = _mm512_shuffle_i32x4(c1, c3, 0xDD);
	}
}

/* Pairs jb .. jb+jn-1 (jn <= 16) of the nn <= 16 columns of w from n0 (pair j of column n at
 * wr + (n·wld + j)·4), as vt[j] = that pair of the 16 columns (0 past nn and jn). */
DP static inline __attribute__((always_inline)) void w_block(__m512i vt[16], const uint8_t *wr,
							    int64_t wld, int64_t n0, int nn,
							    int64_t jb, int jn)
{
	__mmask16 km = (__mmask16)((1u << jn) - 1);
	for (int l = 0; l < 16; l++) {
		vt[l] = _mm512_setzero_si512();
		if (l >= nn)
			continue;
		const uint8_t *row = wr + ((n0 + l) * wld + jb) * 4;
		/* SG·16 rows are read side by side, more streams than the hardware prefetcher
		 * follows (decode steps ran 2.5x slower without): each row's line WPF_PAIRS
		 * ahead is asked for here */
		_mm_prefetch((const char *)(row + WPF_PAIRS * 4), _MM_HINT_T0);
		vt[l] = _mm512_maskz_loadu_epi32(km, row);
	}
	transpose16(vt);
}

/* y rows 0..MM-1 (MM <= SM_ROWS) x columns n0 .. n0+16·SG-1 (nc of them real): per K chunk and
 * pair j, the transposed w pairs of each 16 columns against the broadcast x pair of each row. */
DP static inline __attribute__((always_inline)) void small_tile(const dsv32_gemm_desc *d,
							       const uint16_t *x,
							       const uint8_t *wr, int64_t wld,
							       int64_t J, void *y, int64_t n0,
							       int64_t nc, int MM)
{
	__m512 c[SG][SM_ROWS], t[SG][SM_ROWS];
	__m512i vt[SG][16];
	for (int64_t j0 = 0; j0 < J; j0 += KCP) {
		int64_t j1 = J - j0 < KCP ? J : j0 + KCP;
#pragma GCC unroll 4
		for (int g = 0; g < SG; g++)
#pragma GCC unroll 4
			for (int m = 0; m < MM; m++)
				c[g][m] = _mm512_setzero_ps();
		for (int64_t jb = j0; jb < j1; jb += 16) {
			int jn = j1 - jb < 16 ? (int)(j1 - jb) : 16;
			for (int g = 0; g < SG; g++) {
				int64_t left = nc - 16 * g;
				int nn = left < 0 ? 0 : left > 16 ? 16 : (int)left;
				w_block(vt[g], wr, wld, n0 + 16 * g, nn, jb, jn);
			}
			for (int jj = 0; jj < jn; jj++)
#pragma GCC unroll 4
				for (int m = 0; m < MM; m++) {
					uint32_t xv;
					memcpy(&xv, x + m * d->ldx + 2 * (jb + jj), 4);
					__m512bh a = (__m512bh)_mm512_set1_epi32((int)xv);
#pragma GCC unroll 4
					for (int g = 0; g < SG; g++)
						c[g][m] = _mm512_dpbf16_ps(c[g][m], (__m512bh)vt[g][jj], a);
				}
		}
#pragma GCC unroll 4
		for (int g = 0; g < SG; g++) /* chunk sums in chunk order: t = c, then t + c */
#pragma GCC unroll 4
			for (int m = 0; m < MM; m++)
				t[g][m] = j0 == 0 ? c[g][m] : _mm512_add_ps(t[g][m], c[g][m]);
	}
	for (int g = 0; g < SG; g++) {
		int64_t left = nc - 16 * g;
		__mmask16 km = left >= 16 ? 0xffff : left > 0 ? (__mmask16)((1u << left) - 1) : 0;
		for (int m = 0; m < MM; m++)
			store16(y, d->y_dtype, m * d->ldy + n0 + 16 * g, km, t[g][m]);
	}
}

#define R1_COLS 16 /* columns per tile of the one-row body */

/* The one-row order's lane sum (file comment): (l + l+8), (l + l+4), then (0+1) + (2+3). */
DP static inline float row_lane_sum(__m512 acc)
{
	__m256 s8 = _mm256_add_ps(_mm512_castps512_ps256(acc),
				  _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(acc), 1)));
	__m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
	float v[4];
	_mm_storeu_ps(v, s4);
	return (v[0] + v[1]) + (v[2] + v[3]);
}

/* y[0, n0 .. n0+nc-1] of one row of x (its J pairs at xr) against the w pairs (pair j of
 * column n at wr + (n·wld + j)·4): per column the lanes of the one-row order, R1_COLS columns at
 * a time so that their chains overlap. */
DP static void row_tile(const dsv32_gemm_desc *d, const uint32_t *xr, const uint8_t *wr,
			int64_t wld, int64_t J, void *y, int64_t n0, int nc)
{
	__m512 acc[R1_COLS];
	const uint8_t *wc[R1_COLS];
	for (int q = 0; q < R1_COLS; q++) { /* past nc the tile repeats the last column */
		acc[q] = _mm512_setzero_ps();
		wc[q] = wr + (n0 + (q < nc ? q : nc - 1)) * wld * 4;
	}
	for (int64_t jb = 0; jb < J; jb += 16) {
		__mmask16 km = J - jb >= 16 ? 0xffff : (__mmask16)((1u << (J - jb)) - 1);
		__m512bh a = (__m512bh)_mm512_maskz_loadu_epi32(km, xr + jb);
#pragma GCC unroll 16
		for (int q = 0; q < R1_COLS; q++) {
			_mm_prefetch((const char *)(wc[q] + (jb + WPF_PAIRS) * 4), _MM_HINT_T0);
			__m512bh b = (__m512bh)_mm512_maskz_loadu_epi32(km, wc[q] + jb * 4);
			acc[q] = _mm512_dpbf16_ps(acc[q], a, b);
		}
	}
	float r[R1_COLS];
	for (int q = 0; q < R1_COLS; q++)
		r[q] = row_lane_sum(acc[q]);
	store16(y, d->y_dtype, n0, (__mmask16)((1u << nc) - 1), _mm512_loadu_ps(r));
}

/* The one-row body over all column tiles of one GEMM of the batch (xr: the row's pairs; w as
 * rows of pairs). */
DP static void one_row(const dsv32_gemm_desc *d, const uint32_t *xr, const uint8_t *wr,
		       int64_t wld, int64_t J, void *y)
{
	int64_t nt = (d->N + R1_COLS - 1) / R1_COLS;
#pragma omp parallel for schedule(dynamic, 4) if (dsv32_par_worth((double)d->N * (double)d->K))
	for (int64_t t = 0; t < nt; t++) {
		int64_t n0 = t * R1_COLS;
		row_tile(d, xr, wr, wld, J, y, n0, (int)(d->N - n0 < R1_COLS ? d->N - n0 : R1_COLS));
	}
}

/* The small-M body over all column tiles of one GEMM of the batch (x: M <= SM_ROWS rows of an
 * even K, w: "NT" rows of pairs). */
DP static void small_m(const dsv32_gemm_desc *d, const uint16_t *x, const uint8_t *wr,
		       int64_t wld, int64_t J, void *y)
{
	int64_t cols = 16 * SG, nt = (d->N + cols - 1) / cols;
#pragma omp parallel for schedule(dynamic, 1) if (dsv32_par_worth((double)d->M * (double)d->N * \
							       (double)d->K))
	for (int64_t t = 0; t < nt; t++) {
		int64_t n0 = t * cols, nc = d->N - n0 < cols ? d->N - n0 : cols;
		switch (d->M) {
		case 1: small_tile(d, x, wr, wld, J, y, n0, nc, 1); break;
		case 2: small_tile(d, x, wr, wld, J, y, n0, nc, 2); break;
		case 3: small_tile(d, x, wr, wld, J, y, n0, nc, 3); break;
		default: small_tile(d, x, wr, wld, J, y, n0, nc, 4); break;
		}
	}
}

dsv32_status dsv32_gemm_dpbf16(const dsv32_gemm_desc *d, dsv32_error *err)
{
	int64_t J = (d->K + 1) / 2, nmb = (d->M + MB - 1) / MB;
	/* an "NT" w of even K and row stride is already rows of pairs */
	bool w_pairs = d->trans_w && d->K % 2 == 0 && d->ldw % 2 == 0;
	size_t ysz = dsv32_dtype_size(d->y_dtype);
	bool one = d->M == 1 && dsv32_gemm_dpbf16_row_lanes(); /* torch 2.15's one-row order */
	if (w_pairs && d->M <= SM_ROWS && !one) {
		for (int64_t b = 0; b < d->batch; b++)
			small_m(d, (const uint16_t *)d->x + b * d->stride_x,
				(const uint8_t *)((const uint16_t *)d->w + b * d->stride_w), d->ldw / 2,
				J, (char *)d->y + (size_t)(b * d->stride_y) * ysz);
		return DSV32_OK;
	}
	size_t nxp = (size_t)(one ? J : nmb * J * MB), nwp = w_pairs ? 0 : (size_t)(d->N * J);
	uint32_t *buf = dsv32_cpu_scratch(0, (nxp + nwp) * sizeof *buf);
	if (!buf)
		return DSV32_FAIL(err, DSV32_E_NOMEM, "gemm (dpbf16): %zu bytes of packed operands "
				  "for M %lld N %lld K %lld", (nxp + nwp) * 4, (long long)d->M,
				  (long long)d->N, (long long)d->K);
	uint32_t *xp = buf, *wp = buf + nxp;
	int64_t nmt = (nmb + 1) / 2, nnt = (d->N + NC - 1) / NC;
	for (int64_t b = 0; b < d->batch; b++) {
		const uint16_t *w = (const uint16_t *)d->w + b * d->stride_w;
		const uint16_t *x = (const uint16_t *)d->x + b * d->stride_x;
		if (one)
			for (int64_t j = 0; j < J; j++)
				xp[j] = pair_rowmajor(x, d->ldx, 0, j, d->K);
		else
			pack_x(xp, x, d->ldx, d->M, d->K);
		if (!w_pairs)
			pack_w(wp, d, w);
		const uint8_t *wr = w_pairs ? (const uint8_t *)w : (const uint8_t *)wp;
		int64_t wld = w_pairs ? d->ldw / 2 : J;
		void *y = (char *)d->y + (size_t)(b * d->stride_y) * ysz;
		if (one) {
			one_row(d, xp, wr, wld, J, y);
			continue;
		}
#pragma omp parallel for schedule(dynamic, 1) if (dsv32_par_worth((double)d->M * (double)d->N * \
							       (double)d->K))
		for (int64_t t = 0; t < nmt * nnt; t++) {
			int64_t mb = (t % nmt) * 2, n0 = (t / nmt) * NC;
			tile(d, xp, J, wr, wld, y, mb, mb + 1 < nmb, n0,
			     (int)(d->N - n0 < NC ? d->N - n0 : NC));
		}
	}
	dsv32_cpu_scratch_done(0);
	return DSV32_OK;
}
#else
bool dsv32_gemm_dpbf16_usable(void)
{
	return false;
}

bool dsv32_gemm_dpbf16_row_lanes(void)
{
	return false;
}

dsv32_status dsv32_gemm_dpbf16(const dsv32_gemm_desc *d, dsv32_error *err)
{
	(void)d;
	return DSV32_FAIL(err, DSV32_E_UNSUPPORTED, "gemm (dpbf16): x86-64 only");
}
#endif
