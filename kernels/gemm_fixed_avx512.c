/* gemm_fixed_avx512.c: the avx512 body of the fixed GEMM engine (gemm_fixed.c has the summation
 * order, the contract this body keeps bit for bit, and the dispatch: chosen at run time when
 * the CPU has AVX-512F, DSV32_GEMM_NO_AVX512=1 forces the avx2 body, DSV32_GEMM_NO_AVX2=1 the
 * scalar one). Only AVX-512F and F16C instructions (target "avx512f,f16c"; 256-bit ops in
 * their VEX forms; every CPU with AVX-512F has F16C, and the dispatch checks both).
 *
 * Vectors run across outputs, never across k. One zmm holds the 8 lane sums of two outputs,
 * (m, n) in elements 0..7 and (m+1, n) in 8..15: element l of a half adds x[m, k0+8q+l] ·
 * w[n, k0+8q+l] by FMA for q = 0, 1, ... in order from +0, which is lane l's chain of the
 * written order. After a chunk the 8 accumulators of a row pair (columns n..n+7) are reduced by
 * in-register shuffles exactly as the tree: lane i + lane i+4, then those sums i + i+2, then
 * i + i+1, each output on its own ((L0+L4)+(L2+L6))+((L1+L5)+(L3+L7)), giving 16 chunk sums.
 * The chunk sums are added in chunk order (GEMM: a = t, then a + t; fp8: a = +0, then
 * a + t·sc with sc = xs·ws one product). So vector width, tile shape, blocking and thread count
 * change no bit.
 *
 * Micro tile: MR = 2·MP rows (MP = 3 row pairs) x NR = 8 columns, MP·8 zmm accumulators; per
 * step q it loads MP x vectors (rows m, m+1 of 8 k values each, packed) and, per column, the 8
 * k values of w row n broadcast to both halves, so w is read in its own row layout: an F32
 * "NT" w straight from memory, a BF16 "NT" w too when x is one m tile (M <= MR: kernb_*, the
 * decode GEMMs; widened in registers), other dtypes and layouts through a widened panel
 * wp[NR][span] per column tile and chunk (bf16 by a 16-bit shift, e4m3 exactly through
 * binary16 and F16C, "NN" by 8x8 transposes). A row tail runs a tile of 1 or
 * 2 pairs.
 *
 * Blocking: x is packed once per call (xp[chunk][m tile][q][pair][16], widened from x's own
 * rows). The work items are units of up to 16 column tiles (each output formed by one thread);
 * a unit walks K super-blocks of whole chunks, and row blocks where one chunk of all rows is
 * too large, whose packed x stays within XBUDGET512 bytes so every tile of the unit rereads it
 * from L2. The threads meet once per call (twice when x is large enough to be packed by all
 * of them). Between chunks the running sums of a tile live in a tile-major buffer
 * (contiguous); the last chunk writes acc.
 * fp8 (128-blocks): one w panel and one kernel call cover 8 blocks, the running sums of the
 * tile staying in registers from block to block. The next tile's w is prefetched while the
 * current one computes. The separate multiply and add of the fp8 scale step rely on
 * -ffp-contract=off (CMakeLists.txt), as the scalar body does.
 *
 * The avx512bf16 variant (further down, "the avx512bf16 variant") runs the bf16 and
 * fp8 GEMMs of more than one m tile on the same blocking with x and w packed as bf16 pairs,
 * two steps of every lane chain per VDPBF16PS where that is exactly two FMAs; the fp8 GEMM
 * there on quad tiles of 12 rows ("the fp8 GEMM in quads"). */
#include "kernels/gemm_impl.h"
#include "kernels/cpu_scratch.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

#define GF_TARGET __attribute__((target("avx512f")))
#include "kernels/gemm_fixed_simd.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

/* Used by gemm_fixed.c's dispatch; declared there. */
bool dsv32_gemm_fixed_avx512_usable(void);
bool dsv32_gemm_fixed_bf16dp_usable(void);
bool dsv32_gemm_fixed_e4m3x_ok(int64_t M);
bool dsv32_gemm_fixed_avx512(float *acc, const void *x, dsv32_dtype xt, int64_t ldx, int64_t M,
			     int64_t Kp, const dsv32_gemm_wref *w, int64_t N, int64_t K,
			     int64_t kc_max, const float *xs, const float *ws, int64_t nkb);

#define KC 1024 /* largest K chunk */
#ifndef MP
#define MP 3    /* row pairs per micro tile */
#endif
#define MR (2 * MP)
#define NR 8    /* columns per micro tile */
#define KB (KC / 128) /* fp8 blocks per w panel */
#ifndef XBUDGET512
#define XBUDGET512 (768u << 10) /* bytes of packed x per K super-block */
#endif
#ifndef XPF
#define XPF 384 /* x prefetch distance in floats (8 steps of a 3-pair tile) */
#endif
#define AVX512 __attribute__((target("avx512f,f16c")))
#define UNROLL _Pragma("GCC unroll 16")

bool dsv32_gemm_fixed_avx512_usable(void)
{
	const char *off = getenv("DSV32_GEMM_NO_AVX512");
	if (off && off[0] == '1')
		return false;
	off = getenv("DSV32_GEMM_NO_AVX2"); /* the scalar body wins over both */
	if (off && off[0] == '1')
		return false;
	return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("f16c");
}

/* 16 e4m3 codes decoded exactly, the bits of dsv32_e4m3_to_f32 (a table gather is slower, and
 * so is multiplying the shifted bits by 2^120, exact but 17x slower on the Xeon with AMX: the
 * subnormal f32 operands of codes with e = 0 take a microcode assist; session 10, 0.17 ns a
 * value for this one):
 * |c| = e·8 + m; e >= 1: the f32 with exponent e + 120 and mantissa m·2^20; e = 0: m·2^-9
 * (exact, normal); |c| = 0x7f: the quiet NaN; then the sign bit. */
AVX512 static inline __m512 e4m3x16(__m128i codes)
{
	__m512i c = _mm512_cvtepu8_epi32(codes);
	__m512i a = _mm512_and_si512(c, _mm512_set1_epi32(0x7f));
	__m512i sign = _mm512_slli_epi32(_mm512_and_si512(c, _mm512_set1_epi32(0x80)), 24);
	__m512 v = _mm512_castsi512_ps(
		_mm512_add_epi32(_mm512_slli_epi32(a, 20), _mm512_set1_epi32(0x3C000000)));
	__m512 sub = _mm512_mul_ps(_mm512_cvtepi32_ps(a), _mm512_set1_ps(0x1p-9f));
	v = _mm512_mask_mov_ps(v, _mm512_cmplt_epi32_mask(a, _mm512_set1_epi32(8)), sub);
	__m512i bits = _mm512_or_si512(_mm512_castps_si512(v), sign);
	bits = _mm512_mask_or_epi32(bits, _mm512_cmpeq_epi32_mask(a, _mm512_set1_epi32(0x7f)), sign,
				    _mm512_set1_epi32(0x7fc00000));
	return _mm512_castsi512_ps(bits);
}

/* 16 e4m3 codes through F16C: an e4m3 code's bits shifted into a binary16 (exponent bias 15
 * for e4m3's 7, the same 3 mantissa bits, subnormals included) are the value times 2^-8, and
 * binary16 -> f32 is exact, so one multiply by 2^8 gives the value exactly. The NaN codes
 * (|c| = 0x7f) come out as +-480 here; decode_row_f16c notices them and falls back.
 * About 5 uops for 16 values against e4m3x16's 12 (docs/perf.md, "The fp8 GEMM"). */
AVX512 static inline __m512 e4m3x16_f16c(__m128i codes)
{
	__m256i h = _mm256_cvtepi8_epi16(codes); /* sign-extended: bits 15 and 14 hold the sign */
	h = _mm256_and_si256(_mm256_slli_epi16(h, 7), _mm256_set1_epi16((short)0xBF80));
	return _mm512_mul_ps(_mm512_cvtph_ps(h), _mm512_set1_ps(0x1p8f));
}

/* d[0 .. 16·(kv/16)-1] = the e4m3 codes c decoded by e4m3x16_f16c; returns how many were
 * written: 0 where one of them is a NaN (|c| = 0x7f, noticed by the running unsigned maximum
 * of c | 0x80 reaching 0xff), so the caller decodes that row exactly instead. The bytes
 * next[0 .. next_bytes) are prefetched into L1 on the way (as pair_row does). */
AVX512 static int64_t decode_row_f16c(float *d, const uint8_t *c, int64_t kv, const char *next,
				      int64_t next_bytes)
{
	__m128i top = _mm_set1_epi8((char)0x80), mx = top;
	int64_t kk = 0;
	for (; kk + 16 <= kv; kk += 16) {
		if (kk % 64 == 0 && kk < next_bytes)
			_mm_prefetch(next + kk, _MM_HINT_T0);
		__m128i v = _mm_loadu_si128((const __m128i *)(c + kk));
		mx = _mm_max_epu8(mx, _mm_or_si128(v, top));
		_mm512_storeu_ps(d + kk, e4m3x16_f16c(v));
	}
	return _mm_movemask_epi8(_mm_cmpeq_epi8(mx, _mm_set1_epi8((char)0xff))) ? 0 : kk;
}

/* 16 consecutive w values at element offset off, widened exactly. */
AVX512 static inline __m512 load16(const dsv32_gemm_wref *w, int64_t off)
{
	if (w->dtype == DSV32_BF16) {
		__m256i h = _mm256_loadu_si256((const __m256i *)((const uint16_t *)w->p + off));
		return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
	}
	if (w->dtype == DSV32_F32)
		return _mm512_loadu_ps((const float *)w->p + off);
	return e4m3x16(_mm_loadu_si128((const __m128i *)((const uint8_t *)w->p + off)));
}

/* The w values of the next (tile, chunk) a thread will run, fetched into L2 while the current
 * one computes (w comes from memory once per tile and chunk). */
typedef struct {
	const char *base; /* first byte of the first row */
	int64_t rows, row_bytes, stride; /* NT: NR rows of kc values; NN: kc rows of NR values */
} prefetch;

static void prefetch_plan(prefetch *pf, const dsv32_gemm_wref *w, int64_t N, int64_t K,
			  int64_t n0, int64_t k0, int64_t span)
{
	pf->rows = 0;
	if (n0 >= N || k0 >= K)
		return;
	size_t esz = dsv32_dtype_size(w->dtype);
	int64_t kv = K - k0 < span ? K - k0 : span, ng = N - n0 < NR ? N - n0 : NR;
	pf->stride = w->ld * (int64_t)esz;
	if (w->trans) {
		pf->base = (const char *)w->p + (n0 * w->ld + k0) * (int64_t)esz;
		pf->rows = ng;
		pf->row_bytes = kv * (int64_t)esz;
	} else {
		pf->base = (const char *)w->p + (k0 * w->ld + n0) * (int64_t)esz;
		pf->rows = kv;
		pf->row_bytes = ng * (int64_t)esz;
	}
}

/* The w panel of columns n0 .. n0+ng-1 (ng <= NR) and chunk k0 .. k0+kc-1: wp[j·kc + kk] =
 * f32(w[n0+j, k0+kk]) for j < ng and kk < kv, 0 elsewhere (rows j >= ng, kk >= kv). "NT":
 * row j of the next panel (pf) is prefetched into L1 while row j is widened. */
AVX512 static void pack_w(float *wp, const dsv32_gemm_wref *w, const float *lut, int64_t n0,
			  int64_t ng, int64_t k0, int64_t kc, int64_t kv, const prefetch *pf)
{
	if (w->trans) {
		for (int j = 0; j < NR; j++) {
			float *d = wp + j * kc;
			int64_t kk = 0;
			if (j < ng) {
				int64_t base = (n0 + j) * w->ld + k0;
				int64_t esz = (int64_t)dsv32_dtype_size(w->dtype);
				const char *nx = j < pf->rows ? pf->base + j * pf->stride : NULL;
				if (w->dtype == DSV32_F8_E4M3)
					kk = decode_row_f16c(d, (const uint8_t *)w->p + base, kv, nx,
							     nx ? pf->row_bytes : 0);
				for (; kk + 16 <= kv; kk += 16) {
					if (nx && kk * esz < pf->row_bytes)
						_mm_prefetch(nx + kk * esz, _MM_HINT_T0);
					_mm512_storeu_ps(d + kk, load16(w, base + kk));
				}
				for (; kk < kv; kk++)
					d[kk] = w_at(w, lut, n0 + j, k0 + kk);
			}
			for (; kk < kc; kk++)
				d[kk] = 0.0f;
		}
		return;
	}
	/* "NN": w [K, N]; 8 k-rows x 8 columns transposed at a time */
	int64_t kk = 0;
	if (ng == NR)
		for (; kk + 8 <= kv; kk += 8) {
			__m256 r[8];
			for (int i = 0; i < 8; i++)
				r[i] = load8(w, lut, (k0 + kk + i) * w->ld + n0);
			dsv32_transpose8(r);
			for (int j = 0; j < NR; j++)
				_mm256_store_ps(wp + j * kc + kk, r[j]);
		}
	for (int j = 0; j < NR; j++)
		for (int64_t k = kk; k < kc; k++)
			wp[j * kc + k] = j < ng && k < kv ? w_at(w, lut, n0 + j, k0 + k) : 0.0f;
}

/* m tile mt of xp[chunk][m tile][q][pair p][16] from x (element (m, k) at x[m·ldx + k], F32 or
 * BF16, widened exactly; zero for m >= M or k >= K): element h·8 + l of pair p is
 * x[mt·MR + 2p + h, k0 + 8q + l]; the chunk at k0 starts at nmt·MR·k0. */
AVX512 static void pack_x(float *xp, const void *x, dsv32_dtype xt, int64_t ldx, int64_t M,
			  int64_t K, int64_t nmt, int64_t mt, int64_t Kp, int64_t kc_max)
{
	for (int64_t k0 = 0; k0 < Kp; k0 += kc_max) {
		int64_t kc = Kp - k0 < kc_max ? Kp - k0 : kc_max, kq = kc / 8;
		float *d = xp + nmt * MR * k0 + mt * MR * kc;
		for (int i = 0; i < MR; i++) {
			int64_t m = mt * MR + i, q = 0;
			float *o = d + (i / 2) * 16 + (i % 2) * 8;
			if (m >= M) { /* a row of the last tile beyond M (all of them when M = 1) */
				for (; q < kq; q++)
					_mm256_store_ps(o + q * MR * 8, _mm256_setzero_ps());
				continue;
			}
			if (xt == DSV32_F32) {
				const float *s = (const float *)x + m * ldx + k0;
				for (; q < kq && k0 + 8 * q + 8 <= K; q++)
					_mm256_store_ps(o + q * MR * 8, _mm256_loadu_ps(s + 8 * q));
			} else {
				const uint16_t *s = (const uint16_t *)x + m * ldx + k0;
				for (; q < kq && k0 + 8 * q + 8 <= K; q++) {
					__m128i h = _mm_loadu_si128((const __m128i *)(s + 8 * q));
					_mm256_store_ps(o + q * MR * 8,
							_mm256_castsi256_ps(_mm256_slli_epi32(
								_mm256_cvtepu16_epi32(h), 16)));
				}
			}
			for (; q < kq; q++)
				for (int l = 0; l < 8; l++) {
					int64_t k = k0 + 8 * q + l;
					float v = 0.0f;
					if (k < K)
						v = xt == DSV32_F32
							    ? ((const float *)x)[m * ldx + k]
							    : dsv32_bf16_to_f32(
								      ((const uint16_t *)x)[m * ldx + k]);
					o[q * MR * 8 + l] = v;
				}
		}
	}
}

/* The 16 chunk sums of one row pair from its 8 column accumulators c[0..7] (element h·8 + l:
 * lane l of row h), each output on its own ((L0+L4)+(L2+L6))+((L1+L5)+(L3+L7)), in "raw"
 * order: element h·8 + i is row h, column 0 2 4 6 1 3 5 7 for i = 0..7. Each add takes one
 * operand as a blend of two accumulators in place and the other by one shuffle, so the
 * operands of some adds come swapped (a + b as b + a: the same bits, except which payload
 * survives where two NaNs meet, which IEEE 754 leaves open and the contract does not fix). */
AVX512 static inline __m512 reduce8_raw(const __m512 c[8])
{
	/* quarters 1, 0, 3, 2 of the pair (c[2i] quarters 1 and 3 meet c[2i+1]'s 0 and 2) */
	const __m512i swap = _mm512_set_epi32(27, 26, 25, 24, 15, 14, 13, 12, 19, 18, 17, 16, 7, 6,
					      5, 4);
	__m512 s[4], t[2];
	UNROLL for (int i = 0; i < 4; i++) /* quarters: row 0 col 2i, 2i+1, row 1 col 2i, 2i+1 */
		s[i] = _mm512_add_ps(_mm512_mask_blend_ps(0xF0F0, c[2 * i], c[2 * i + 1]),
				     _mm512_permutex2var_ps(c[2 * i], swap, c[2 * i + 1]));
	/* each quarter held L0+L4, L1+L5, L2+L6, L3+L7 of one output; now its pairs of sums */
	UNROLL for (int i = 0; i < 2; i++)
		t[i] = _mm512_add_ps(_mm512_mask_blend_ps(0xCCCC, s[2 * i], s[2 * i + 1]),
				     _mm512_shuffle_ps(s[2 * i], s[2 * i + 1], 0x4E));
	return _mm512_add_ps(_mm512_shuffle_ps(t[0], t[1], 0x88),
			     _mm512_shuffle_ps(t[0], t[1], 0xDD));
}

/* raw order <-> [row][column 0..7] */
#define RAW_TO_COLS _mm512_set_epi32(15, 11, 14, 10, 13, 9, 12, 8, 7, 3, 6, 2, 5, 1, 4, 0)
#define COLS_TO_RAW _mm512_set_epi32(15, 13, 11, 9, 14, 12, 10, 8, 7, 5, 3, 1, 6, 4, 2, 0)

/* reduce8_raw's sums as [row][column 0..7]. */
AVX512 static inline __m512 reduce8(const __m512 c[8])
{
	return _mm512_permutexvar_ps(RAW_TO_COLS, reduce8_raw(c));
}

/* c[p][j] = +0 for the NP row pairs and NR columns of a micro tile's accumulators. */
#define ZERO_TILE(c, NP)                                                                      \
	do {                                                                                  \
		UNROLL for (int p_ = 0; p_ < (NP); p_++)                                      \
			UNROLL for (int j_ = 0; j_ < NR; j_++)                                \
				(c)[p_][j_] = _mm512_setzero_ps();                            \
	} while (0)

/* One micro tile of NP row pairs over the kq steps of a chunk: t[r·8 + j] = chunk sum of row r
 * (< 2·NP), column j. xp: [q][MP][16] of the tile (the next tile's x follows and is
 * prefetched); w row j at wp + j·wld. */
#define KERN(NAME, NP)                                                                        \
	AVX512 static void NAME(float *t, const float *xp, const float *wp, int64_t wld,      \
				int64_t kq)                                                   \
	{                                                                                     \
		__m512 c[NP][NR];                                                             \
		ZERO_TILE(c, NP);                                                             \
		for (int64_t q = 0; q < kq; q++) {                                            \
			__m512 a[NP];                                                         \
			UNROLL for (int p = 0; p < NP; p++) {                                 \
				a[p] = _mm512_load_ps(xp + (q * MP + p) * 16);                \
				_mm_prefetch((const char *)(xp + (q * MP + p) * 16 + XPF),    \
					     _MM_HINT_T0);                                    \
			}                                                                     \
			UNROLL for (int j = 0; j < NR; j++) {                                 \
				__m512 b = _mm512_castpd_ps(_mm512_broadcast_f64x4(           \
					_mm256_loadu_pd((const double *)(wp + j * wld + 8 * q)))); \
				UNROLL for (int p = 0; p < NP; p++)                           \
					c[p][j] = _mm512_fmadd_ps(a[p], b, c[p][j]);          \
			}                                                                     \
		}                                                                             \
		UNROLL for (int p = 0; p < NP; p++)                                           \
			_mm512_storeu_ps(t + p * 16, reduce8(c[p]));                          \
	}
KERN(kern_p1, 1)
KERN(kern_p2, 2)
#if MP > 2
KERN(kern_p3, 3)
#endif

/* The same micro tile reading a BF16 "NT" w in place (no panel): per step q and column j, the
 * 8 bf16 values w[n0+j, k0+8q .. k0+8q+7] (row j at wb + j·wld) are widened exactly (a 16-bit
 * shift) into both halves of the vector, i.e. the very vector the panel path broadcasts; the
 * FMAs and the reduction are KERN's. For x of one m tile (M <= MR), where a panel would be
 * written and read once per tile: the decode GEMMs, bound by reading w from memory. */
#define WPF 512 /* kernb's prefetch distance along each w row, in bf16 values (1 KiB) */
#define KERNB(NAME, NP)                                                                       \
	AVX512 static void NAME(float *t, const float *xp, const uint16_t *wb, int64_t wld,   \
				int64_t kq)                                                   \
	{                                                                                     \
		__m512 c[NP][NR];                                                             \
		ZERO_TILE(c, NP);                                                             \
		for (int64_t q = 0; q < kq; q++) {                                            \
			__m512 a[NP];                                                         \
			UNROLL for (int p = 0; p < NP; p++)                                   \
				a[p] = _mm512_load_ps(xp + (q * MP + p) * 16);                \
			/* two of the 8 rows a step, a line (4 steps) each, WPF ahead */      \
			const uint16_t *pr = wb + 2 * (q & 3) * wld + 8 * q + WPF;            \
			_mm_prefetch((const char *)pr, _MM_HINT_T0);                          \
			_mm_prefetch((const char *)(pr + wld), _MM_HINT_T0);                  \
			UNROLL for (int j = 0; j < NR; j++) {                                 \
				__m256i h = _mm256_broadcastsi128_si256(_mm_loadu_si128(      \
					(const __m128i *)(wb + j * wld + 8 * q)));            \
				__m512 b = _mm512_castsi512_ps(                               \
					_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));     \
				UNROLL for (int p = 0; p < NP; p++)                           \
					c[p][j] = _mm512_fmadd_ps(a[p], b, c[p][j]);          \
			}                                                                     \
		}                                                                             \
		UNROLL for (int p = 0; p < NP; p++)                                           \
			_mm512_storeu_ps(t + p * 16, reduce8(c[p]));                          \
	}
KERNB(kernb_p1, 1)
KERNB(kernb_p2, 2)
#if MP > 2
KERNB(kernb_p3, 3)
#endif

/* s + t·sc for the chunk sums t = reduce8_raw(c) of rows 2p, 2p+1 of block b (sc as
 * block_scales writes it; s in raw order too): the fp8 step of the written order, a multiply
 * and an add. */
AVX512 static inline __m512 scale_step(__m512 s, const __m512 c[8], const float *sc, int p,
				      int64_t b)
{
	__m512 v = _mm512_mask_blend_ps(0xFF00, _mm512_set1_ps(sc[2 * p * KB + b]),
					_mm512_set1_ps(sc[(2 * p + 1) * KB + b]));
	return _mm512_add_ps(s, _mm512_mul_ps(reduce8_raw(c), v));
}

/* The fp8 kernels' running sums of a row pair, kept in raw order: from prev ([row][8]) or +0,
 * and out again. */
AVX512 static inline __m512 sums_in(const float *prev, int p, bool first)
{
	return first ? _mm512_setzero_ps()
		     : _mm512_permutexvar_ps(COLS_TO_RAW, _mm512_loadu_ps(prev + p * 16));
}

AVX512 static inline void sums_out(float *out, __m512 s)
{
	_mm512_storeu_ps(out, _mm512_permutexvar_ps(RAW_TO_COLS, s));
}

/* fp8 (chunk = one 128-block): nb consecutive blocks of one micro tile of NP row pairs, the
 * running sums kept in registers: s = (first ? +0 : prev) then, block by block, s + t·sc with
 * t the block's chunk sums and sc[r·KB + b] = xs[m,kb]·ws[n/128,kb] of row r (fp8.h). Block b's
 * packed x starts at xc + b·xstride (its chunk) + r0·(its width) ([q][MP][16] of the tile whose
 * first row is r0), its w at row j: wp + j·wld + b·128; the last block has kq_last steps (the
 * others 16). out/prev: [pair][16] (rows 2p, 2p+1 of 8 columns). */
#define KERN8(NAME, NP)                                                                       \
	AVX512 static void NAME(float *out, const float *prev, bool first, const float *xc,   \
				int64_t xstride, int64_t r0, const float *wp, int64_t wld,    \
				int64_t nb, int64_t kq_last, const float *sc)                 \
	{                                                                                     \
		__m512 s[NP];                                                                 \
		UNROLL for (int p = 0; p < NP; p++)                                           \
			s[p] = sums_in(prev, p, first);                                        \
		for (int64_t b = 0; b < nb; b++) {                                            \
			int64_t kq = b == nb - 1 ? kq_last : 16;                              \
			const float *xb = xc + b * xstride + r0 * 8 * kq, *wbk = wp + b * 128; \
			__m512 c[NP][NR];                                                     \
			ZERO_TILE(c, NP);                                                     \
			for (int64_t q = 0; q < kq; q++) {                                    \
				__m512 a[NP];                                                 \
				UNROLL for (int p = 0; p < NP; p++)                           \
					a[p] = _mm512_load_ps(xb + (q * MP + p) * 16);        \
				UNROLL for (int j = 0; j < NR; j++) {                         \
					__m512 bv = _mm512_castpd_ps(_mm512_broadcast_f64x4(  \
						_mm256_loadu_pd(                              \
							(const double *)(wbk + j * wld + 8 * q)))); \
					UNROLL for (int p = 0; p < NP; p++)                   \
						c[p][j] = _mm512_fmadd_ps(a[p], bv, c[p][j]); \
				}                                                             \
			}                                                                     \
			UNROLL for (int p = 0; p < NP; p++)                                   \
				s[p] = scale_step(s[p], c[p], sc, p, b);                      \
		}                                                                             \
		UNROLL for (int p = 0; p < NP; p++)                                           \
			sums_out(out + p * 16, s[p]);                                         \
	}
KERN8(kern8_p1, 1)
KERN8(kern8_p2, 2)
#if MP > 2
KERN8(kern8_p3, 3)
#endif

/* Add the chunk sums t [rows][8] of a tile (rows m0.., < M; columns n0 .. n0+ng-1) into its
 * running sums: a = t (first chunk) or a + t. The running sums of a tile stay in its
 * tile-major block run[m·8 + j] between chunks (contiguous, unlike rows of acc); the last chunk
 * writes acc[m·N + n0 + j]. */
AVX512 static void combine(float *acc, int64_t N, float *run, const float *t, int rows,
			   int64_t m0, int64_t M, int64_t n0, int64_t ng, bool first, bool last)
{
	for (int r = 0; r < rows && m0 + r < M; r++) {
		int64_t m = m0 + r;
		__m256 v = _mm256_loadu_ps(t + r * 8);
		if (!first)
			v = _mm256_add_ps(_mm256_load_ps(run + m * 8), v);
		if (!last) {
			_mm256_store_ps(run + m * 8, v);
		} else if (ng == NR) {
			_mm256_storeu_ps(acc + m * N + n0, v);
		} else {
			float tmp[8];
			_mm256_storeu_ps(tmp, v);
			memcpy(acc + m * N + n0, tmp, (size_t)ng * sizeof(float));
		}
	}
}

/* Store the running sums v [rows][8] of a tile (rows m0.., < M): to its block of run, or, after
 * the last chunk, to acc columns n0 .. n0+ng-1. */
AVX512 static void store_sums(float *acc, int64_t N, float *run, const float *v, int rows,
			      int64_t m0, int64_t M, int64_t n0, int64_t ng, bool last)
{
	for (int r = 0; r < rows && m0 + r < M; r++) {
		int64_t m = m0 + r;
		if (!last)
			_mm256_store_ps(run + m * 8, _mm256_loadu_ps(v + r * 8));
		else
			memcpy(acc + m * N + n0, v + r * 8, (size_t)ng * sizeof(float));
	}
}

/* Part mt of nmt of the prefetch (lines of 64 bytes, row by row). */
static inline void prefetch_part(const prefetch *pf, int64_t mt, int64_t nmt)
{
	if (pf->rows <= 0)
		return;
	int64_t lpr = (pf->row_bytes + 127) / 64, lines = pf->rows * lpr;
	int64_t i0 = lines * mt / nmt, i1 = lines * (mt + 1) / nmt;
	for (int64_t i = i0; i < i1; i++)
		__builtin_prefetch(pf->base + (i / lpr) * pf->stride + (i % lpr) * 64, 0, 2);
}

/* sc[r·KB + b] = xs[m, kb+b] · ws[n0/128, kb+b] for the rows m = mt·MR + r of an m tile (0
 * for m >= M), blocks b < nb <= KB: the fp8 scale of each block's chunk sums (fp8.h). */
AVX512 static void block_scales(float *sc, const float *xs, const float *ws, int64_t nkb,
				int64_t kb, int64_t nb, int64_t mt, int64_t M, int64_t n0)
{
	__mmask16 mask = (__mmask16)((1u << nb) - 1);
	__m512 wsb = _mm512_maskz_loadu_ps(mask, ws + (n0 / 128) * nkb + kb);
	int rows = M - mt * MR < MR ? (int)(M - mt * MR) : MR;
	for (int r = 0; r < MR; r++) {
		__m512 v = _mm512_setzero_ps();
		if (r < rows)
			v = _mm512_mul_ps(_mm512_maskz_loadu_ps(mask, xs + (mt * MR + r) * nkb + kb),
					  wsb);
		_mm512_mask_storeu_ps(sc + r * KB, mask, v);
	}
}

/* The chunks k0 .. k1-1 (GEMM: one chunk; fp8: up to KC values of 128-blocks) of the NR-column
 * tile at n0: the w panel, then m tiles mt0 .. mt1-1. */
AVX512 static void chunk(float *acc, const float *xp, int64_t nmt, int64_t mt0, int64_t mt1,
			 int64_t M, int64_t Kp, const dsv32_gemm_wref *w, const float *lut,
			 bool direct, int64_t N, int64_t K, int64_t kc_max, int64_t k0, int64_t k1,
			 int64_t n0, int64_t ng, float *wb, float *run, const float *xs,
			 const float *ws, int64_t nkb, const prefetch *pf)
{
	int64_t span = k1 - k0, kv = K - k0 < span ? K - k0 : span, kb = k0 / kc_max;
	const float *wp = NULL;
	int64_t wld = w->ld;
	/* a BF16 "NT" w read in place by a single m tile (kernb_*) */
	bool in_place_bf16 = !xs && w->trans && w->dtype == DSV32_BF16 && ng == NR &&
			     kv == span && nmt == 1;
	if (direct && ng == NR && kv == span) {
		wp = (const float *)w->p + n0 * w->ld + k0;
	} else if (!in_place_bf16) {
		pack_w(wb, w, lut, n0, ng, k0, span, kv, pf);
		wp = wb;
		wld = span;
	}
	const float *xc = xp + nmt * MR * k0;
	bool first = k0 == 0, last = k1 >= Kp;
	int64_t nb = (span + kc_max - 1) / kc_max, kc_last = span - (nb - 1) * kc_max;
	/* a packed "NT" panel prefetched the next one while it was packed (pack_w) */
	bool spread = !(wp == wb && w->trans);
	for (int64_t mt = mt0; mt < mt1; mt++) {
		if (spread)
			prefetch_part(pf, mt - mt0, mt1 - mt0);
		float t[MR * NR] __attribute__((aligned(64)));
		int64_t left = M - mt * MR;
		int np = left >= MR ? MP : (int)((left + 1) / 2);
		if (xs) { /* fp8: nb blocks, the last (or only) one kc_last wide */
			float sc[KB * MR];
			block_scales(sc, xs, ws, nkb, kb, nb, mt, M, n0);
			const float *prev = run ? run + mt * MR * 8 : NULL;
			int64_t xstride = nmt * MR * kc_max, r0 = mt * MR, kql = kc_last / 8;
#if MP > 2
			if (np == 3)
				kern8_p3(t, prev, first, xc, xstride, r0, wp, wld, nb, kql, sc);
			else
#endif
			if (np == 2)
				kern8_p2(t, prev, first, xc, xstride, r0, wp, wld, nb, kql, sc);
			else
				kern8_p1(t, prev, first, xc, xstride, r0, wp, wld, nb, kql, sc);
			store_sums(acc, N, run, t, 2 * np, mt * MR, M, n0, ng, last);
			continue;
		}
		const float *xt = xc + mt * MR * span;
		if (in_place_bf16) {
			const uint16_t *wb16 = (const uint16_t *)w->p + n0 * w->ld + k0;
#if MP > 2
			if (np == 3)
				kernb_p3(t, xt, wb16, wld, span / 8);
			else
#endif
			if (np == 2)
				kernb_p2(t, xt, wb16, wld, span / 8);
			else
				kernb_p1(t, xt, wb16, wld, span / 8);
			combine(acc, N, run, t, 2 * np, mt * MR, M, n0, ng, first, last);
			continue;
		}
#if MP > 2
		if (np == 3)
			kern_p3(t, xt, wp, wld, span / 8);
		else
#endif
		if (np == 2)
			kern_p2(t, xt, wp, wld, span / 8);
		else
			kern_p1(t, xt, wp, wld, span / 8);
		combine(acc, N, run, t, 2 * np, mt * MR, M, n0, ng, first, last);
	}
}

/* ---- the avx512bf16 variant: bf16 x and w as pairs of steps (VDPBF16PS) ----
 *
 * For x and w both BF16 ("NT" w, more than one m tile), lane l's chain takes two steps per
 * instruction: VDPBF16PS adds to each f32 element the product of its odd bf16 pair element and
 * then that of the even one, each as an f32 FMA that rounds to nearest even, with subnormal
 * inputs read as zero and subnormal results flushed (Intel SDM; checked on 32 M random elements
 * on an AMD Zen 5, where the even-first order differs in 4%, docs/perf.md). So the pair
 * (odd = x[m, k0+16p+l], even = x[m, k0+16p+8+l]) continues the chain by steps 2p and 2p+1,
 * exactly as two FMAs, wherever no input and no sum is subnormal: with G = 2^(ex+ew-14) for
 * the smallest exponents ex, ew of the nonzero x and w values every product (16 significant
 * bits) and every running sum is a multiple of G, so none is subnormal when ex + ew >= -112.
 * (The product is not rounded on its own: -1.5·2^127 + 2^128 gives 2^126, as the FMA.)
 * pairs_exact() checks that per w panel (x once per call); a panel that fails runs the same
 * packed pairs through two FMAs per pair instead.
 * Packing: x as xp[chunk][m tile][p][pair][32] (element 2·(h·8 + l) + 1 = x[m+h, k0+16p+l],
 * element 2·(h·8 + l) = x[m+h, k0+16p+8+l]), w panels as wp[j][p][16] alike; an odd step count
 * gets one more step of +0 · +0, which changes no sum: a lane sum starts at +0 and a sum that
 * rounds to nearest is -0 only when both addends are, so it is never -0. */
#define BF16DP __attribute__((target("avx512f,avx512bw,avx512bf16,f16c")))

/* Where the VDPBF16PS variant runs: CPUs with AVX512-BF16 that issue it at the FMA rate (AMD
 * Zen 4/5; on Intel without AMX it issues at a quarter of that, docs/perf.md), unless
 * DSV32_GEMM_AVX512BF16=0; =1 forces it on any CPU with AVX512-BF16 (for tests). */
bool dsv32_gemm_fixed_bf16dp_usable(void)
{
	if (!dsv32_gemm_fixed_avx512_usable() || !__builtin_cpu_supports("avx512bf16") ||
	    !__builtin_cpu_supports("avx512bw"))
		return false;
	const char *v = getenv("DSV32_GEMM_AVX512BF16");
	if (v && (v[0] == '0' || v[0] == '1'))
		return v[0] == '1';
	return __builtin_cpu_is("amd");
}

/* Whether the avx512 body takes the fp8 GEMM's x as e4m3 codes (xt = DSV32_F8_E4M3, ldx = K):
 * only on step pairs, i.e. more than one m tile on the avx512bf16 body. */
bool dsv32_gemm_fixed_e4m3x_ok(int64_t M)
{
	return M > MR && dsv32_gemm_fixed_bf16dp_usable();
}

/* The magnitude range of bf16 values: lo = (smallest nonzero |v| bits) - 1 (0xffff if none),
 * hi = largest |v| bits (0x7f80 and above: inf or NaN). */
typedef struct {
	uint16_t lo, hi;
} bf16_range;

static const bf16_range RANGE_EMPTY = {0xffff, 0};

static inline void range_add(bf16_range *r, uint16_t v)
{
	uint16_t a = v & 0x7fff, a1 = (uint16_t)(a - 1);
	r->lo = a1 < r->lo ? a1 : r->lo;
	r->hi = a > r->hi ? a : r->hi;
}

static inline void range_merge(bf16_range *r, bf16_range s)
{
	r->lo = s.lo < r->lo ? s.lo : r->lo;
	r->hi = s.hi > r->hi ? s.hi : r->hi;
}

/* Whether no value in xr, wr and no sum of their products is subnormal, so that VDPBF16PS
 * adds as the FMAs do. Panels with inf or NaN go the FMA way too (which NaN an instruction
 * passes on is not part of VDPBF16PS's documented behaviour). */
static bool pairs_exact(bf16_range xr, bf16_range wr)
{
	uint32_t xmin = xr.lo + 1u, wmin = wr.lo + 1u; /* 0x10000: no nonzero value */
	if (xr.hi >= 0x7f80 || wr.hi >= 0x7f80 || xmin < 0x80 || wmin < 0x80)
		return false; /* inf, NaN or a subnormal */
	if (xmin == 0x10000 || wmin == 0x10000)
		return true; /* every product is +-0 */
	return (xmin >> 7) + (wmin >> 7) >= 142;
}

/* 32 e4m3 codes as bf16 bits, exactly but for the NaN codes (|c| = 0x7f: the caller looks
 * for them): |c| = e·8 + m, e >= 1: exponent e + 120, mantissa m·2^4, i.e. (|c| << 4) +
 * (120 << 7); e = 0: m·2^-9 from a table of 8; then the sign. */
BF16DP static inline __m512i e4m3_bf16x32(__m256i codes)
{
	const __m512i sub = _mm512_set_epi16(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
					     0, 0, 0, 0, 0, 0x3c60, 0x3c40, 0x3c20, 0x3c00, 0x3bc0,
					     0x3b80, 0x3b00, 0);
	__m512i c = _mm512_cvtepu8_epi16(codes), a = _mm512_and_si512(c, _mm512_set1_epi16(0x7f));
	__m512i v = _mm512_add_epi16(_mm512_slli_epi16(a, 4), _mm512_set1_epi16(0x3c00));
	v = _mm512_mask_permutexvar_epi16(v, _mm512_cmplt_epu16_mask(a, _mm512_set1_epi16(8)), a,
					  sub);
	return _mm512_or_si512(
		v, _mm512_slli_epi16(_mm512_and_si512(c, _mm512_set1_epi16(0x80)), 8));
}

/* Value k of a BF16 or e4m3 row s as bf16 bits (e4m3 exactly: dsv32_e4m3_to_f32). */
static inline uint16_t bf16_at(const void *s, dsv32_dtype dt, int64_t k)
{
	if (dt == DSV32_BF16)
		return ((const uint16_t *)s)[k];
	float f = dsv32_e4m3_to_f32(((const dsv32_f8 *)s)[k]);
	uint32_t u;
	memcpy(&u, &f, sizeof u);
	return (uint16_t)(u >> 16);
}

/* 32 bf16 values v (values 16g + l and 16g + 8 + l: odd and even element of pair l of step
 * pair g) stored as the pairs of step pair 0 at d0 and of step pair 1 at d1. One VPERMW. */
BF16DP static inline void pair32(uint16_t *d0, uint16_t *d1, __m512i v)
{
	const __m512i idx = _mm512_set_epi16(23, 31, 22, 30, 21, 29, 20, 28, 19, 27, 18, 26, 17, 25,
					     16, 24, 7, 15, 6, 14, 5, 13, 4, 12, 3, 11, 2, 10, 1,
					     9, 0, 8);
	__m512i p = _mm512_permutexvar_epi16(idx, v);
	_mm256_storeu_si256((__m256i *)d0, _mm512_castsi512_si256(p));
	_mm256_storeu_si256((__m256i *)d1, _mm512_extracti64x4_epi64(p, 1));
}

/* The magnitudes of 32 bf16 values v added to a running range (lo: the minimum of |v| - 1,
 * hi: the maximum). */
BF16DP static inline void range32(__m512i v, __m512i *lo, __m512i *hi)
{
	__m512i m = _mm512_and_si512(v, _mm512_set1_epi16(0x7fff));
	*lo = _mm512_min_epu16(*lo, _mm512_sub_epi16(m, _mm512_set1_epi16(1)));
	*hi = _mm512_max_epu16(*hi, m);
}

BF16DP static bf16_range range_of(__m512i lo, __m512i hi)
{
	uint16_t l[32], h[32];
	_mm512_storeu_si512(l, lo);
	_mm512_storeu_si512(h, hi);
	bf16_range r = RANGE_EMPTY;
	for (int i = 0; i < 32; i++)
		range_merge(&r, (bf16_range){l[i], h[i]});
	return r;
}

/* pair_row's vector part for e4m3 codes: the step pairs p < (returned) of the row, decoded
 * and paired; 0 where a NaN code is among them (the caller's exact loop then does the row). */
BF16DP static int64_t pair_row_e4m3(uint16_t *d, int64_t stride, const uint8_t *s, int64_t np,
				    int64_t kv, const char *next, int64_t next_bytes)
{
	__m256i nan = _mm256_setzero_si256();
	const __m256i mag = _mm256_set1_epi8(0x7f);
	int64_t p = 0;
	for (; p + 1 < np && 16 * p + 32 <= kv; p += 2) {
		if (16 * p < next_bytes && p % 4 == 0)
			_mm_prefetch(next + 16 * p, _MM_HINT_T0);
		__m256i c = _mm256_loadu_si256((const __m256i *)(s + 16 * p));
		nan = _mm256_or_si256(nan, _mm256_cmpeq_epi8(_mm256_and_si256(c, mag), mag));
		pair32(d + p * stride, d + (p + 1) * stride, e4m3_bf16x32(c));
	}
	return _mm256_testz_si256(nan, nan) ? p : 0;
}

/* One row's kc values from s[0..] (BF16 or e4m3; kv of them real, the rest +0) as pairs at
 * d, the pair of steps 2p, 2p+1 at d + p·stride (a pad step of +0 after an odd count). Line by
 * line, the bytes next[0 .. next_bytes) are prefetched into L1: the row this one's caller
 * packs next (a burst of prefetches beside the micro kernel, prefetch_part's way, did not
 * hide the w stream here: at M = 64 the pack took a third of the GEMM's time, now a tenth). */
BF16DP static void pair_row(uint16_t *d, int64_t stride, const void *s, dsv32_dtype dt,
			    int64_t kc, int64_t kv, bf16_range *r, const char *next,
			    int64_t next_bytes)
{
	int64_t np = (kc + 15) / 16, p = 0;
	if (dt == DSV32_F8_E4M3) {
		p = pair_row_e4m3(d, stride, s, np, kv, next, next_bytes);
		/* every e4m3 value lies in 2^-9 .. 448 (a bound is all pairs_exact needs) */
		range_merge(r, (bf16_range){0x3b00 - 1, 0x43e0});
	} else {
		__m512i lo = _mm512_set1_epi16((short)0xffff), hi = _mm512_setzero_si512();
		for (; p + 1 < np && 16 * p + 32 <= kv; p += 2) { /* 32 values: one line */
			if (32 * p < next_bytes)
				_mm_prefetch(next + 32 * p, _MM_HINT_T0);
			__m512i v = _mm512_loadu_si512((const uint16_t *)s + 16 * p);
			pair32(d + p * stride, d + (p + 1) * stride, v);
			range32(v, &lo, &hi);
		}
		range_merge(r, range_of(lo, hi));
	}
	for (; p < np; p++)
		for (int l = 0; l < 8; l++) {
			int64_t k1 = 16 * p + l, k2 = k1 + 8;
			uint16_t a = k1 < kv ? bf16_at(s, dt, k1) : 0, b = k2 < kv ? bf16_at(s, dt, k2) : 0;
			if (k1 < kv)
				range_add(r, a);
			if (k2 < kv)
				range_add(r, b);
			d[p * stride + 2 * l + 1] = a;
			d[p * stride + 2 * l] = b;
		}
}

/* Row m of x from value k0, for a chunk of kc values: its first value; *kv: how many of the kc
 * are real (0 for a padding row m >= M, which then points at x's first value). */
static inline const char *x_chunk_row(const void *x, size_t esz, int64_t ldx, int64_t M,
				      int64_t K, int64_t m, int64_t k0, int64_t kc, int64_t *kv)
{
	*kv = m < M ? (K - k0 < kc ? K - k0 : kc) : 0;
	return (const char *)x + (size_t)(m < M ? m * ldx + k0 : 0) * esz;
}

/* x rows (BF16 or e4m3 codes) of m tile mt as pairs: xp[chunk][m tile][p][pair][32] (the
 * chunk at k0 starts at nmt·MR·k0, each tile of it holds MR·kc2 values, kc2 = kc rounded up
 * to 16); returns the range of the tile's values. */
BF16DP static bf16_range pack_x_pairs(uint16_t *xp, const void *x, dsv32_dtype xt, int64_t ldx,
				      int64_t M, int64_t K, int64_t nmt, int64_t mt, int64_t Kp,
				      int64_t kc_max)
{
	bf16_range r = RANGE_EMPTY;
	size_t esz = dsv32_dtype_size(xt);
	for (int64_t k0 = 0; k0 < Kp; k0 += kc_max) {
		int64_t kc = Kp - k0 < kc_max ? Kp - k0 : kc_max, kc2 = (kc + 15) & ~(int64_t)15;
		uint16_t *d = xp + nmt * MR * k0 + mt * MR * kc2;
		for (int i = 0; i < MR; i++) {
			int64_t kv;
			const char *s = x_chunk_row(x, esz, ldx, M, K, mt * MR + i, k0, kc, &kv);
			pair_row(d + (i / 2) * 32 + (i % 2) * 16, MP * 32, s, xt, kc, kv, &r, NULL,
				 0);
		}
	}
	return r;
}

/* The w panel (BF16 or e4m3, "NT") of columns n0 .. n0+ng-1 and values k0 .. k0+kc-1 as
 * pairs: row j at wp + j·kc2, step pair p at 16·p (rows j >= ng zero); returns the range of
 * its values. Row j of the next panel (pf) is prefetched while row j is packed. */
BF16DP static bf16_range pack_w_pairs(uint16_t *wp, const dsv32_gemm_wref *w, int64_t n0,
				      int64_t ng, int64_t k0, int64_t kc, int64_t kv,
				      const prefetch *pf)
{
	bf16_range r = RANGE_EMPTY;
	int64_t kc2 = (kc + 15) & ~(int64_t)15;
	size_t esz = dsv32_dtype_size(w->dtype);
	for (int j = 0; j < NR; j++) {
		const char *s = (const char *)w->p + (size_t)((n0 + (j < ng ? j : 0)) * w->ld + k0) * esz;
		bool pj = j < pf->rows;
		pair_row(wp + j * kc2, 16, s, w->dtype, kc, j < ng ? kv : 0, &r,
			 pj ? pf->base + j * pf->stride : NULL, pj ? pf->row_bytes : 0);
	}
	return r;
}

/* c[p][j] += the np step pairs from x pairs xp ([p][MP][32] of a tile) and w pairs (row j at
 * wp + j·wld): DP, one VDPBF16PS per pair; otherwise the pair's two steps as two FMAs (odd
 * element first), for panels pairs_exact() rejects. */
#define PAIR_STEPS(c, NP, DP, xp, wp, wld, np)                                                \
	do {                                                                                  \
		const __m512i hi_mask = _mm512_set1_epi32((int)0xffff0000);                   \
		for (int64_t s = 0; s < (np); s++) {                                          \
			__m512i a[NP];                                                        \
			UNROLL for (int p = 0; p < NP; p++) {                                 \
				a[p] = _mm512_load_si512((xp) + (s * MP + p) * 32);           \
				_mm_prefetch((const char *)((xp) + (s * MP + p) * 32 + 2 * XPF), \
					     _MM_HINT_T0);                                    \
			}                                                                     \
			UNROLL for (int j = 0; j < NR; j++) {                                 \
				__m512i b = _mm512_broadcast_i64x4(_mm256_loadu_si256(        \
					(const __m256i *)((wp) + j * (wld) + 16 * s)));       \
				UNROLL for (int p = 0; p < NP; p++) {                         \
					if (DP) {                                             \
						c[p][j] = _mm512_dpbf16_ps(c[p][j],           \
									   (__m512bh)a[p],    \
									   (__m512bh)b);      \
						continue;                                     \
					}                                                     \
					c[p][j] = _mm512_fmadd_ps(                            \
						_mm512_castsi512_ps(                          \
							_mm512_and_si512(a[p], hi_mask)),     \
						_mm512_castsi512_ps(_mm512_and_si512(b, hi_mask)), \
						c[p][j]);                                     \
					c[p][j] = _mm512_fmadd_ps(                            \
						_mm512_castsi512_ps(_mm512_slli_epi32(a[p], 16)), \
						_mm512_castsi512_ps(_mm512_slli_epi32(b, 16)), \
						c[p][j]);                                     \
				}                                                             \
			}                                                                     \
		}                                                                             \
	} while (0)

/* One micro tile of NP row pairs over the np step pairs of a chunk, from packed pairs: t as
 * KERN's. */
#define KERNP(NAME, NP, DP)                                                                   \
	BF16DP static void NAME(float *t, const uint16_t *xp, const uint16_t *wp, int64_t wld, \
				int64_t np)                                                   \
	{                                                                                     \
		__m512 c[NP][NR];                                                             \
		ZERO_TILE(c, NP);                                                             \
		PAIR_STEPS(c, NP, DP, xp, wp, wld, np);                                       \
		UNROLL for (int p = 0; p < NP; p++)                                           \
			_mm512_storeu_ps(t + p * 16, reduce8(c[p]));                          \
	}
KERNP(kernp_p1, 1, true)
KERNP(kernp_p2, 2, true)
KERNP(kernf_p1, 1, false)
KERNP(kernf_p2, 2, false)
#if MP > 2
KERNP(kernp_p3, 3, true)
KERNP(kernf_p3, 3, false)
#else
#define kernp_p3 kernp_p2 /* never called: np <= MP */
#define kernf_p3 kernf_p2
#endif

/* fp8 from packed pairs: KERN8's blocks (the running sums in registers, s + t·sc per block),
 * each block's chunk sums from PAIR_STEPS. Block b's x pairs start at xc + b·xstride + r0·kc2
 * (kc2: the block's width rounded up to 16), its w pairs at row j: wp + j·wld + b·128. */
#define KERN8P(NAME, NP, DP)                                                                  \
	BF16DP static void NAME(float *out, const float *prev, bool first, const uint16_t *xc, \
				int64_t xstride, int64_t r0, const uint16_t *wp, int64_t wld, \
				int64_t nb, int64_t kq_last, const float *sc)                 \
	{                                                                                     \
		__m512 sum[NP];                                                               \
		UNROLL for (int p = 0; p < NP; p++)                                           \
			sum[p] = sums_in(prev, p, first);                                      \
		for (int64_t b = 0; b < nb; b++) {                                            \
			int64_t np2 = ((b == nb - 1 ? kq_last : 16) + 1) / 2;                 \
			const uint16_t *xb = xc + b * xstride + r0 * 16 * np2,                \
				       *wbk = wp + b * 128;                                   \
			__m512 c[NP][NR];                                                     \
			ZERO_TILE(c, NP);                                                     \
			PAIR_STEPS(c, NP, DP, xb, wbk, wld, np2);                             \
			UNROLL for (int p = 0; p < NP; p++)                                   \
				sum[p] = scale_step(sum[p], c[p], sc, p, b);                  \
		}                                                                             \
		UNROLL for (int p = 0; p < NP; p++)                                           \
			sums_out(out + p * 16, sum[p]);                                       \
	}
KERN8P(kern8p_p1, 1, true)
KERN8P(kern8p_p2, 2, true)
KERN8P(kern8f_p1, 1, false)
KERN8P(kern8f_p2, 2, false)
#if MP > 2
KERN8P(kern8p_p3, 3, true)
KERN8P(kern8f_p3, 3, false)
#else
#define kern8p_p3 kern8p_p2
#define kern8f_p3 kern8f_p2
#endif

/* One w panel's work on packed pairs (chunk_pairs, chunk_quads): the values k0 .. k0+span-1
 * of the NR-column tile at n0 (ng columns real), packed as pairs into wb, against the x tiles
 * mt0 .. mt1-1 of nmt at xp16 (range xr: all of x); run: the tile's running sums or NULL. */
typedef struct {
	float *acc, *run;
	const uint16_t *xp16;
	bf16_range xr;
	int64_t nmt, mt0, mt1, M, Kp, N, K, kc_max, k0, span, n0, ng, nkb;
	const dsv32_gemm_wref *w;
	uint16_t *wb;
	const float *ws; /* fp8: w scales [N/128][nkb] */
	const prefetch *pf;
} pair_panel;

/* The panel's w packed as pairs at p->wb; whether VDPBF16PS adds as the FMAs do on it with x's
 * range (pairs_exact). *span2: span rounded up to 16; fp8 (kc_max 128): *nb blocks, the last
 * of *kq_last steps of 8. */
BF16DP static bool panel_pairs(const pair_panel *p, int64_t *span2, int64_t *nb, int64_t *kq_last)
{
	int64_t span = p->span, kv = p->K - p->k0 < span ? p->K - p->k0 : span;
	*span2 = (span + 15) & ~(int64_t)15;
	*nb = (span + p->kc_max - 1) / p->kc_max;
	*kq_last = (span - (*nb - 1) * p->kc_max) / 8;
	return pairs_exact(p->xr, pack_w_pairs(p->wb, p->w, p->n0, p->ng, p->k0, span, kv, p->pf));
}

/* ---- the fp8 GEMM in quads: 12-row tiles, the tree's first level a vertical add ----
 * A quad tile is QR = 12 rows, three groups of 4. Its accumulators hold, per group g, column c
 * and lane half h, the chains of lanes 4h .. 4h+3 of rows 4g .. 4g+3: element 4·rr + i is lane
 * 4h + i of row 4g + rr. Per step pair, x comes as 6 vectors (xq[chunk][quad tile][step pair]
 * [g][h][rr][pair i][2], pairs as pair_row makes them) and w as 128-bit broadcasts of one lane
 * half of a column's pairs, 4 columns per kernel call. The block's tree per output,
 * ((L0+L4)+(L2+L6))+((L1+L5)+(L3+L7)): its first level adds the two halves' accumulators
 * (vertical), the second and third run within 128-bit lanes (one in-lane shuffle per add), and
 * each result vector holds 4 rows x 4 columns. 12 in-lane shuffles and 6 blends per 48 outputs
 * against the row-pair kernels' 24 shuffles (12 across lanes) and 18 blends. */
#define QR 12
#define QG (QR / 4) /* row groups of a quad tile */

/* x rows (BF16 or e4m3 codes) of quad tile qt as quads (layout above; the chunk at k0 starts
 * at nqt·QR·k0, the tile at qt·QR·kc2); returns the range of the tile's values. */
BF16DP static bf16_range pack_x_quads(uint16_t *xq, const void *x, dsv32_dtype xt, int64_t ldx,
				      int64_t M, int64_t K, int64_t nqt, int64_t qt, int64_t Kp,
				      int64_t kc_max)
{
	bf16_range r = RANGE_EMPTY;
	size_t esz = dsv32_dtype_size(xt);
	uint16_t row[KC] __attribute__((aligned(64)));
	for (int64_t k0 = 0; k0 < Kp; k0 += kc_max) {
		int64_t kc = Kp - k0 < kc_max ? Kp - k0 : kc_max, kc2 = (kc + 15) & ~(int64_t)15;
		uint16_t *d = xq + nqt * QR * k0 + qt * QR * kc2;
		for (int i = 0; i < QR; i++) {
			int64_t kv;
			const char *src = x_chunk_row(x, esz, ldx, M, K, qt * QR + i, k0, kc, &kv);
			pair_row(row, 16, src, xt, kc, kv, &r, NULL, 0);
			uint16_t *o = d + (i / 4) * 64 + (i % 4) * 8;
			for (int64_t p = 0; p < kc2 / 16; p++) {
				memcpy(o + p * QR * 16, row + p * 16, 16);
				memcpy(o + p * QR * 16 + 32, row + p * 16 + 8, 16);
			}
		}
	}
	return r;
}

/* c[g][j][h] += the np step pairs of a quad tile's NG groups (xq: [p][g][h][32]) and columns
 * j < 4 (w pairs of column j at wp + j·wld); DP as PAIR_STEPS. Step p of the next block's x
 * (xnext) is prefetched: a block of a tile is 3 KiB, and the blocks of a chunk group lie a
 * chunk apart. */
#define QUAD_STEPS(c, NG, DP, xq, xnext, wp, wld, np)                                         \
	do {                                                                                  \
		const __m512i hi_mask = _mm512_set1_epi32((int)0xffff0000);                   \
		for (int64_t s = 0; s < (np); s++) {                                          \
			__m512i a[NG][2];                                                     \
			UNROLL for (int g = 0; g < NG; g++) UNROLL for (int h = 0; h < 2; h++) \
				a[g][h] = _mm512_load_si512((xq) + s * QR * 16 + (g * 2 + h) * 32); \
			UNROLL for (int g = 0; g < NG; g++) UNROLL for (int h = 0; h < 2; h++) \
				_mm_prefetch((const char *)((xnext) + s * QR * 16 + (g * 2 + h) * 32), \
					     _MM_HINT_T0);                                    \
			UNROLL for (int j = 0; j < 4; j++) UNROLL for (int h = 0; h < 2; h++) { \
				__m512i b = _mm512_broadcast_i32x4(_mm_loadu_si128(          \
					(const __m128i *)((wp) + j * (wld) + 16 * s + 8 * h))); \
				UNROLL for (int g = 0; g < NG; g++) {                         \
					if (DP) {                                             \
						c[g][j][h] = _mm512_dpbf16_ps(                \
							c[g][j][h], (__m512bh)a[g][h], (__m512bh)b); \
						continue;                                     \
					}                                                     \
					c[g][j][h] = _mm512_fmadd_ps(                         \
						_mm512_castsi512_ps(                          \
							_mm512_and_si512(a[g][h], hi_mask)),  \
						_mm512_castsi512_ps(_mm512_and_si512(b, hi_mask)), \
						c[g][j][h]);                                  \
					c[g][j][h] = _mm512_fmadd_ps(                         \
						_mm512_castsi512_ps(_mm512_slli_epi32(a[g][h], 16)), \
						_mm512_castsi512_ps(_mm512_slli_epi32(b, 16)), \
						c[g][j][h]);                                  \
				}                                                             \
			}                                                                     \
		}                                                                             \
	} while (0)

/* The 16 block sums of a group's 4 columns from its accumulators c[j][h] (lane halves): the
 * tree per output, element 4·rr + j row rr, column j (operands of some adds swapped, as in
 * reduce8_raw). */
AVX512 static inline __m512 reduce_quad(const __m512 c[4][2])
{
	__m512 l1[4];
	UNROLL for (int j = 0; j < 4; j++) /* L0+L4, L1+L5, L2+L6, L3+L7 of each row */
		l1[j] = _mm512_add_ps(c[j][0], c[j][1]);
	__m512 t01 = _mm512_add_ps(_mm512_mask_blend_ps(0xCCCC, l1[0], l1[1]),
				   _mm512_shuffle_ps(l1[0], l1[1], 0x4E));
	__m512 t23 = _mm512_add_ps(_mm512_mask_blend_ps(0xCCCC, l1[2], l1[3]),
				   _mm512_shuffle_ps(l1[2], l1[3], 0x4E));
	return _mm512_add_ps(_mm512_shuffle_ps(t01, t23, 0x88), _mm512_shuffle_ps(t01, t23, 0xDD));
}

/* Rows 4g .. 4g+3, columns j0 .. j0+3 of a [row][8] buffer as one quad vector, and back. */
AVX512 static inline __m512 quad_load(const float *v, int g, int j0)
{
	const float *b = v + g * 32 + j0;
	__m512 q = _mm512_castps128_ps512(_mm_loadu_ps(b));
	q = _mm512_insertf32x4(q, _mm_loadu_ps(b + 8), 1);
	q = _mm512_insertf32x4(q, _mm_loadu_ps(b + 16), 2);
	return _mm512_insertf32x4(q, _mm_loadu_ps(b + 24), 3);
}

AVX512 static inline void quad_store(float *v, int g, int j0, __m512 q)
{
	float *b = v + g * 32 + j0;
	_mm_storeu_ps(b, _mm512_castps512_ps128(q));
	_mm_storeu_ps(b + 8, _mm512_extractf32x4_ps(q, 1));
	_mm_storeu_ps(b + 16, _mm512_extractf32x4_ps(q, 2));
	_mm_storeu_ps(b + 24, _mm512_extractf32x4_ps(q, 3));
}

/* fp8 on a quad tile: nb consecutive blocks of NG row groups and columns j0 .. j0+3, the
 * running sums in registers: s = (first ? +0 : prev) then, block by block, s + t·sc with t
 * the block's sums and sc = xs·ws of the row (xsq: x scales [block][QR rows] of the tile,
 * ws: the column block's w scales by block). Block b's x quads start at xc + b·xstride + r0·kc2,
 * its w pairs at row j: wp + j·wld + b·128. out and prev: [row][8]. */
#define KERN8Q(NAME, NG, DP)                                                                  \
	BF16DP static void NAME(float *out, const float *prev, bool first, const uint16_t *xc, \
				int64_t xstride, int64_t r0, const uint16_t *wp, int64_t wld, \
				int64_t nb, int64_t kq_last, const float *xsq, int64_t xsld, \
				const float *ws, int j0)                                      \
	{                                                                                     \
		const __m512i spread = _mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, \
							0, 0, 0);                             \
		__m512 sum[NG];                                                               \
		UNROLL for (int g = 0; g < NG; g++)                                           \
			sum[g] = first ? _mm512_setzero_ps() : quad_load(prev, g, j0);        \
		for (int64_t b = 0; b < nb; b++) {                                            \
			int64_t np2 = ((b == nb - 1 ? kq_last : 16) + 1) / 2;                 \
			const uint16_t *xb = xc + b * xstride + r0 * 16 * np2,                \
				       *wbk = wp + j0 * wld + b * 128;                        \
			__m512 c[NG][4][2];                                                   \
			UNROLL for (int g = 0; g < NG; g++) UNROLL for (int j = 0; j < 4; j++) \
				c[g][j][0] = c[g][j][1] = _mm512_setzero_ps();                \
			QUAD_STEPS(c, NG, DP, xb, xb + xstride, wbk, wld, np2);               \
			__m512 wsb = _mm512_set1_ps(ws[b]);                                   \
			UNROLL for (int g = 0; g < NG; g++) {                                 \
				__m512 xs4 = _mm512_castps128_ps512(                          \
					_mm_loadu_ps(xsq + b * xsld + 4 * g));                \
				__m512 sc = _mm512_mul_ps(                                    \
					_mm512_permutexvar_ps(spread, xs4), wsb);             \
				sum[g] = _mm512_add_ps(sum[g],                                \
						       _mm512_mul_ps(reduce_quad(c[g]), sc)); \
			}                                                                     \
		}                                                                             \
		UNROLL for (int g = 0; g < NG; g++)                                           \
			quad_store(out, g, j0, sum[g]);                                       \
	}
KERN8Q(kern8q_g1, 1, true)
KERN8Q(kern8q_g2, 2, true)
KERN8Q(kern8q_g3, 3, true)
KERN8Q(kern8qf_g1, 1, false)
KERN8Q(kern8qf_g2, 2, false)
KERN8Q(kern8qf_g3, 3, false)

/* chunk_pairs() for the fp8 GEMM on quad tiles (p's tiles are quad tiles, xp16 as pack_x_quads
 * makes it; xst: the x scales transposed, [block][row] with rows padded to nmt·QR). */
BF16DP static void chunk_quads(const pair_panel *p, const float *xst)
{
	int64_t span2, nb, kq_last, nqt = p->nmt, kc_max = p->kc_max;
	bool dp = panel_pairs(p, &span2, &nb, &kq_last);
	const uint16_t *xc = p->xp16 + nqt * QR * p->k0;
	bool first = p->k0 == 0, last = p->k0 + p->span >= p->Kp;
	int64_t kb = p->k0 / kc_max, xsld = nqt * QR;
	const float *wsb = p->ws + (p->n0 / 128) * p->nkb + kb;
	for (int64_t qt = p->mt0; qt < p->mt1; qt++) {
		float t[QR * NR] __attribute__((aligned(64)));
		int64_t left = p->M - qt * QR;
		int ngr = left >= QR ? QG : (int)((left + 3) / 4);
		const float *prev = p->run ? p->run + qt * QR * NR : NULL;
		const float *xsq = xst + kb * xsld + qt * QR;
		void (*k8)(float *, const float *, bool, const uint16_t *, int64_t, int64_t,
			   const uint16_t *, int64_t, int64_t, int64_t, const float *, int64_t,
			   const float *, int) =
			ngr == 3 ? (dp ? kern8q_g3 : kern8qf_g3)
			: ngr == 2 ? (dp ? kern8q_g2 : kern8qf_g2)
				   : (dp ? kern8q_g1 : kern8qf_g1);
		for (int j0 = 0; j0 < NR; j0 += 4)
			k8(t, prev, first, xc, nqt * QR * kc_max, qt * QR, p->wb, span2, nb, kq_last,
			   xsq, xsld, wsb, j0);
		store_sums(p->acc, p->N, p->run, t, 4 * ngr, qt * QR, p->M, p->n0, p->ng, last);
	}
}

/* chunk() for packed pairs (p's tiles are m tiles, xp16 as pack_x_pairs makes it; GEMM: one
 * chunk; fp8, xs set: up to 8 blocks of 128). */
BF16DP static void chunk_pairs(const pair_panel *p, const float *xs)
{
	int64_t span2, nb, kq_last, nmt = p->nmt, M = p->M;
	bool dp = panel_pairs(p, &span2, &nb, &kq_last);
	const uint16_t *xc = p->xp16 + nmt * MR * p->k0;
	bool first = p->k0 == 0, last = p->k0 + p->span >= p->Kp;
	for (int64_t mt = p->mt0; mt < p->mt1; mt++) {
		float t[MR * NR] __attribute__((aligned(64)));
		int64_t left = M - mt * MR;
		int np = left >= MR ? MP : (int)((left + 1) / 2);
		if (xs) {
			float sc[KB * MR];
			block_scales(sc, xs, p->ws, p->nkb, p->k0 / p->kc_max, nb, mt, M, p->n0);
			const float *prev = p->run ? p->run + mt * MR * 8 : NULL;
			void (*k8)(float *, const float *, bool, const uint16_t *, int64_t, int64_t,
				   const uint16_t *, int64_t, int64_t, int64_t, const float *) =
				np == 3 ? (dp ? kern8p_p3 : kern8f_p3)
				: np == 2 ? (dp ? kern8p_p2 : kern8f_p2)
					  : (dp ? kern8p_p1 : kern8f_p1);
			k8(t, prev, first, xc, nmt * MR * p->kc_max, mt * MR, p->wb, span2, nb, kq_last,
			   sc);
			store_sums(p->acc, p->N, p->run, t, 2 * np, mt * MR, M, p->n0, p->ng, last);
			continue;
		}
		void (*kern)(float *, const uint16_t *, const uint16_t *, int64_t, int64_t) =
			np == 3 ? (dp ? kernp_p3 : kernf_p3)
			: np == 2 ? (dp ? kernp_p2 : kernf_p2)
				  : (dp ? kernp_p1 : kernf_p1);
		kern(t, xc + mt * MR * span2, p->wb, span2, span2 / 16);
		combine(p->acc, p->N, p->run, t, 2 * np, mt * MR, M, p->n0, p->ng, first, last);
	}
}

/* DSV32_GEMM_FP8_QUADS=0: the fp8 GEMM on the row-pair kernels (kern8p_*) instead of quad
 * tiles, the same bits (for comparing the two). */
static bool quads_off(void)
{
	const char *v = getenv("DSV32_GEMM_FP8_QUADS");
	return v && v[0] == '0';
}

/* Pack tile mt of x: as quads or pairs (adding its range to lo, hi) or widened to f32. */
AVX512 static void pack_x_tile(float *xp, uint16_t *lo, uint16_t *hi, bool pairs, bool quads,
			       const void *x, dsv32_dtype xt, int64_t ldx, int64_t M, int64_t K,
			       int64_t nmt, int64_t mt, int64_t Kp, int64_t kc_max)
{
	if (!pairs) {
		pack_x(xp, x, xt, ldx, M, K, nmt, mt, Kp, kc_max);
		return;
	}
	bf16_range r = quads ? pack_x_quads((uint16_t *)xp, x, xt, ldx, M, K, nmt, mt, Kp, kc_max)
			     : pack_x_pairs((uint16_t *)xp, x, xt, ldx, M, K, nmt, mt, Kp, kc_max);
	*lo = r.lo < *lo ? r.lo : *lo;
	*hi = r.hi > *hi ? r.hi : *hi;
}

bool dsv32_gemm_fixed_avx512(float *acc, const void *x, dsv32_dtype xt, int64_t ldx, int64_t M,
			     int64_t Kp, const dsv32_gemm_wref *w, int64_t N, int64_t K,
			     int64_t kc_max, const float *xs, const float *ws, int64_t nkb)
{
	if (kc_max > KC)
		return false;
	int64_t nmt = (M + MR - 1) / MR, ntiles = (N + NR - 1) / NR;
	/* step pairs (VDPBF16PS) where a panel is more than one m tile's: bf16 x and w, or the
	 * fp8 GEMM with x as e4m3 codes (dsv32_gemm_fixed_e4m3x), which runs on quad tiles */
	bool pairs = w->trans && nmt > 1 && dsv32_gemm_fixed_bf16dp_usable() &&
		     ((xt == DSV32_BF16 && w->dtype == DSV32_BF16 && !xs && kc_max == KC) ||
		      (xt == DSV32_F8_E4M3 && w->dtype == DSV32_F8_E4M3 && xs && kc_max == 128));
	if (xt == DSV32_F8_E4M3 && !pairs)
		return false; /* dsv32_gemm_fixed_e4m3x_ok() said no */
	bool quads = pairs && xs && !quads_off();
	int64_t tr = quads ? QR : MR; /* rows per tile */
	nmt = (M + tr - 1) / tr;
	size_t xel = pairs ? sizeof(uint16_t) : sizeof(float);
	size_t xbytes = ((size_t)(nmt * tr * (Kp + 8)) * xel + 63) & ~(size_t)63;
	float *xp = dsv32_cpu_scratch(0, xbytes + (quads ? (size_t)(nkb * nmt * tr) * 4 : 0));
	if (!xp)
		return false;
	float *xst = quads ? (float *)((char *)xp + xbytes) : NULL; /* x scales [block][row] */
	if (quads)
		for (int64_t b = 0; b < nkb; b++)
			for (int64_t m = 0; m < nmt * tr; m++)
				xst[b * nmt * tr + m] = m < M ? xs[m * nkb + b] : 0.0f;
	uint16_t *xp16 = (uint16_t *)xp, xlo = 0xffff, xhi = 0; /* pairs: the range of x */
	/* small products (e.g. per-head attention) run on the calling thread; a small x (up to
	 * 2 MiB packed, M <= 64 at K = 7168) is packed there too, so that the threads meet once
	 * per call (a barrier costs a time slice when another process holds one of the cores) */
	bool par = (double)M * (double)N * (double)Kp >= (double)(1 << 20);
	bool par_pack = par && (double)(nmt * tr) * (double)Kp * sizeof(float) > (double)(2u << 20);
	if (!par_pack)
		for (int64_t mt = 0; mt < nmt; mt++)
			pack_x_tile(xp, &xlo, &xhi, pairs, quads, x, xt, ldx, M, K, nmt, mt, Kp,
				    kc_max);
	float lut[256]; /* read for an e4m3 w only (built per call: not for the others) */
	if (w->dtype == DSV32_F8_E4M3)
		dsv32_e4m3_table(lut);
	/* running sums between chunks, tile-major: [tile][row][NR] */
	float *run = NULL;
	if (Kp > kc_max) {
		run = dsv32_cpu_scratch(1, (size_t)(ntiles * nmt * tr * NR) * sizeof(float));
		if (!run) {
			dsv32_cpu_scratch_done(0);
			return false;
		}
	}
	bool ok = true;
	bool direct = w->dtype == DSV32_F32 && w->trans; /* full tiles read w in place */
	/* x blocks of mb m tiles and sk values of K (whole chunks) whose packed x stays within
	 * XBUDGET512 bytes (in L2), so that every column tile rereads it from cache; more than one
	 * m block only where one chunk of all rows does not fit (each m block reads w again) */
	int64_t xfl = (int64_t)(XBUDGET512 / xel), mb = nmt;
	if (nmt * tr * kc_max > xfl) {
		int64_t most = xfl / (tr * kc_max) > 0 ? xfl / (tr * kc_max) : 1;
		int64_t nblk = (nmt + most - 1) / most;
		mb = (nmt + nblk - 1) / nblk;
	}
	int64_t sk = xfl / (mb * tr) / kc_max * kc_max;
	if (sk < kc_max)
		sk = kc_max;
	/* K values per w panel: one GEMM chunk; fp8: KC / 128 blocks at a time (kern8_*) */
	int64_t grp = xs && kc_max == 128 ? KC : kc_max;
	if (sk > grp)
		sk = sk / grp * grp;
	/* Units of up to 16 column tiles are the work items: a unit runs all its passes (K
	 * super-blocks, row blocks) on one thread, so the threads meet at one barrier per call and
	 * a preempted thread holds up at most one unit. At least 4 units per thread. */
	int nth = par ? omp_get_max_threads() : 1;
	int64_t ut = ntiles / (4 * (int64_t)nth);
	ut = ut < 1 ? 1 : ut > 16 ? 16 : ut;
	int64_t nunits = (ntiles + ut - 1) / ut;
#pragma omp parallel if (par)
	{
		float *wb = dsv32_cpu_scratch(2, (size_t)NR * KC * sizeof(float)); /* per thread */
		if (!wb) {
#pragma omp atomic write
			ok = false;
		}
		if (par_pack) {
#pragma omp for schedule(dynamic, 1) reduction(min : xlo) reduction(max : xhi)
			for (int64_t mt = 0; mt < nmt; mt++)
				pack_x_tile(xp, &xlo, &xhi, pairs, quads, x, xt, ldx, M, K, nmt, mt,
					    Kp, kc_max);
		}
#pragma omp for schedule(dynamic, 1)
		for (int64_t u = 0; u < nunits; u++) {
			int64_t nt0 = u * ut, nt1 = ntiles - nt0 < ut ? ntiles : nt0 + ut;
			for (int64_t s0 = 0; s0 < Kp && wb; s0 += sk) {
				int64_t s1 = Kp - s0 < sk ? Kp : s0 + sk;
				for (int64_t mt0 = 0; mt0 < nmt; mt0 += mb) {
					int64_t mt1 = nmt - mt0 < mb ? nmt : mt0 + mb;
					for (int64_t nt = nt0; nt < nt1; nt++) {
						int64_t n0 = nt * NR, ng = N - n0 < NR ? N - n0 : NR;
						for (int64_t k0 = s0; k0 < s1; k0 += grp) {
							int64_t k1 = s1 - k0 < grp ? s1 : k0 + grp;
							/* prefetch the next group, else the next tile's
							 * first, else the unit's next super-block */
							int64_t pn = n0, pk = k1;
							if (k1 >= s1) {
								pn = nt + 1 < nt1 ? n0 + NR : nt0 * NR;
								pk = nt + 1 < nt1 ? s0 : s1;
							}
							prefetch pf;
							prefetch_plan(&pf, w, N, K, pn, pk, grp);
							float *trun =
								run ? run + nt * nmt * tr * NR : NULL;
							if (!pairs) {
								chunk(acc, xp, nmt, mt0, mt1, M, Kp, w,
								      lut, direct, N, K, kc_max, k0, k1,
								      n0, ng, wb, trun, xs, ws, nkb, &pf);
								continue;
							}
							pair_panel pp = {
								.acc = acc, .run = trun, .xp16 = xp16,
								.xr = {xlo, xhi}, .nmt = nmt, .mt0 = mt0,
								.mt1 = mt1, .M = M, .Kp = Kp, .N = N,
								.K = K, .kc_max = kc_max, .k0 = k0,
								.span = k1 - k0, .n0 = n0, .ng = ng,
								.nkb = nkb, .w = w, .wb = (uint16_t *)wb,
								.ws = ws, .pf = &pf};
							if (quads)
								chunk_quads(&pp, xst);
							else
								chunk_pairs(&pp, xs);
						}
					}
				}
			}
		}
	}
	dsv32_cpu_scratch_done(0);
	dsv32_cpu_scratch_done(1);
	return ok;
}
#endif
