/* gemm_cpu.c: CPU body of the GEMM family (gemm.h): oneDNN for bf16 x bf16 where it has a
 * native kernel; else, for a bf16 w in "NT" layout, an own AVX2+FMA blocked kernel (packed
 * operands, 4x24 outer-product micro kernel per lane of an 8-lane chunk sum, see below);
 * otherwise OpenBLAS sgemm on f32 operands, bf16 operands widened exactly in panels of w that
 * stay in cache. A BF16 y is rounded once from the fp32 result. The blocked kernel also serves
 * fp8_gemm (fp8_cpu.c). */
#include "kernels/gemm.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* Target bytes of one widened f32 panel of w (fits the L2/L3 of the development machines). */
#ifndef PANEL_BYTES
#define PANEL_BYTES (2u << 20)
#endif

/* d[c] = f32(s[c]): bf16 bits become the high half of the f32 bits (exact). */
static void widen_row(float *d, const uint16_t *s, int64_t n)
{
	int64_t c = 0;
#if defined(__SSE2__)
	const __m128i z = _mm_setzero_si128();
	for (; c + 8 <= n; c += 8) {
		__m128i v = _mm_loadu_si128((const __m128i *)(s + c));
		_mm_storeu_si128((__m128i *)(d + c), _mm_unpacklo_epi16(z, v));
		_mm_storeu_si128((__m128i *)(d + c + 4), _mm_unpackhi_epi16(z, v));
	}
#endif
	for (; c < n; c++)
		d[c] = dsv32_bf16_to_f32(s[c]);
}

/* dst[r*cols + c] = f32(src[r*ld + c]) for a rows x cols block. Single-threaded on purpose:
 * it runs between OpenBLAS calls, whose worker threads an OpenMP team would compete with. */
static void widen(float *dst, const void *src, dsv32_dtype t, int64_t rows, int64_t cols,
		  int64_t ld)
{
	for (int64_t r = 0; r < rows; r++) {
		float *d = dst + r * cols;
		if (t == DSV32_F32)
			memcpy(d, (const float *)src + r * ld, (size_t)cols * sizeof(float));
		else
			widen_row(d, (const uint16_t *)src + r * ld, cols);
	}
}

/* y[m*ldy + n] = bf16(acc[m*N + n]) */
static void round_out(void *y, int64_t ldy, const float *acc, int64_t M, int64_t N)
{
	for (int64_t m = 0; m < M; m++) {
		uint16_t *d = (uint16_t *)y + m * ldy;
		for (int64_t n = 0; n < N; n++)
			d[n] = dsv32_f32_to_bf16(acc[m * N + n]);
	}
}

static void zero_out(const dsv32_gemm_desc *d, void *y)
{
	size_t esz = dsv32_dtype_size(d->y_dtype);
	for (int64_t m = 0; m < d->M; m++)
		memset((char *)y + (size_t)(m * d->ldy) * esz, 0, (size_t)d->N * esz);
}


/* ---- AVX2+FMA body for a bf16 (or e4m3) weight in "NT" layout.
 *
 * Summation order (fixed; the golden tests pin figures measured with it): per output (m, n) and
 * per K chunk of kc values (1024 for the GEMM, one 128-block for fp8_gemm), eight fp32 lane
 * sums, lane l taking k = k0+l, k0+l+8, ... in increasing k by FMA from +0 (the zero padding of
 * K up to a multiple of 8 included); the chunk sum t is then
 *     t = ((L0 + L4) + (L2 + L6)) + ((L1 + L5) + (L3 + L7))
 * (the horizontal sum of an 8-lane vector), and the chunk sums are added in chunk order.
 *
 * Schedule: the lane sums of one chunk are eight independent GEMMs with K' = kc/8 (lane l
 * sees x[m, k0+8q+l] and w[n, k0+8q+l], q = 0..kc/8-1). Each runs as an outer-product micro
 * kernel (MR x NR = 4 x 24 outputs, 12 ymm accumulators; x broadcast, w in 3 vectors) on
 * packed operands: x packed once per call as xp[chunk][m tile][l][q][MR], w packed per NR-row
 * tile and chunk as wp[l][q][NR] (bf16 widened exactly; 8x8 transposes). A micro kernel call
 * runs one lane over the whole chunk, so the per-lane FMA chain is the one above. ---- */
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
#ifndef NTU
#define NTU 1      /* NR-column tiles per unit of work (they share each x slice load; 1 and 2
		      * measured the same here) */
#endif
#define AVX2 __attribute__((target("avx2,fma")))

static bool avx2_usable(void)
{
	const char *off = getenv("DSV32_GEMM_NO_AVX2");
	if (off && off[0] == '1')
		return false;
	return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

/* r[j][i] <- r[i][j] for an 8x8 f32 block */
AVX2 static inline void transpose8(__m256 r[8])
{
	__m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
	__m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
	__m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
	__m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
	__m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
	__m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
	__m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
	__m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
	r[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
	r[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
	r[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
	r[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
	r[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
	r[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
	r[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
	r[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

/* wp[l][q][NR] = f32(w[n0 + j, k0 + 8q + l]) for j < ng and k0 + 8q + l < K (else 0), for the
 * kc-value chunk at k0 (kv = min(kc, K - k0) values present). w: bf16 or e4m3 codes. */
AVX2 static void pack_w(float *wp, const void *w, bool e4m3, const float *lut, int64_t ldw,
			int64_t n0, int64_t ng, int64_t k0, int64_t kc, int64_t kv)
{
	int64_t kq = kc / 8;
	for (int rb = 0; rb < NR / 8; rb++)
		for (int64_t q = 0; q < kq; q++) {
			__m256 r[8];
			int64_t kk = 8 * q;
			for (int i = 0; i < 8; i++) {
				int64_t j = rb * 8 + i, off = (n0 + j) * ldw + k0 + kk;
				if (j < ng && kk + 8 <= kv && !e4m3) {
					__m128i h = _mm_loadu_si128((const __m128i *)((const uint16_t *)w +
										       off));
					r[i] = _mm256_castsi256_ps(
						_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
				} else if (j < ng && kk + 8 <= kv) {
					__m128i c = _mm_loadl_epi64((const __m128i *)((const uint8_t *)w +
										      off));
					r[i] = _mm256_i32gather_ps(lut, _mm256_cvtepu8_epi32(c), 4);
				} else {
					float t[8];
					for (int c = 0; c < 8; c++) {
						if (j >= ng || kk + c >= kv)
							t[c] = 0.0f;
						else if (e4m3)
							t[c] = lut[((const uint8_t *)w)[off + c]];
						else
							t[c] = dsv32_bf16_to_f32(
								((const uint16_t *)w)[off + c]);
					}
					r[i] = _mm256_loadu_ps(t);
				}
			}
			transpose8(r);
			for (int l = 0; l < 8; l++)
				_mm256_store_ps(wp + (l * kq + q) * NR + rb * 8, r[l]);
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
#pragma omp parallel for schedule(static)
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
		       const void *w, bool e4m3, const float *lut, int64_t ldw, int64_t N,
		       int64_t K, int64_t kc_max, int64_t k0, int64_t nt0, int64_t nu, float *wp,
		       float *lb, const float *xs, const float *ws, int64_t nkb)
{
	int64_t kc = Kp - k0 < kc_max ? Kp - k0 : kc_max, kq = kc / 8, kb = k0 / kc_max;
	int64_t kv = K - k0 < kc ? K - k0 : kc; /* unpadded values */
	for (int64_t u = 0; u < nu; u++) {
		int64_t n0 = (nt0 + u) * NR, ng = N - n0 < NR ? N - n0 : NR;
		pack_w(wp + u * KC * NR, w, e4m3, lut, ldw, n0, ng, k0, kc, kv);
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

/* The blocked AVX2 body (see gemm.h, internal section): acc [.., N] rows < M written. */
static bool gemm_avx2(float *acc, const float *xf, int64_t M, int64_t Kp, const void *w,
		      bool e4m3, int64_t ldw, int64_t N, int64_t K, int64_t kc_max,
		      const float *xs, const float *ws, int64_t nkb)
{
	int64_t nmt = (M + MR - 1) / MR, ntiles = (N + NR - 1) / NR;
	float *xp = aligned_alloc(64, (size_t)(nmt * MR * Kp) * sizeof(float) + 64);
	if (!xp)
		return false;
	pack_x(xp, xf, M, nmt, Kp, kc_max);
	float lut[256];
	for (int c = 0; c < 256; c++)
		lut[c] = dsv32_e4m3_to_f32((dsv32_f8)c);
	bool ok = true;
	int64_t nunits = (ntiles + NTU - 1) / NTU;
	/* K super-blocks of whole chunks whose packed x (nmt·MR·sk floats) stays within XBUDGET
	 * bytes, so it is reread from cache by every unit; each unit walks the chunks of a
	 * super-block in order (long sequential reads of its w rows). */
	int64_t sk = (int64_t)(XBUDGET / sizeof(float)) / (nmt * MR) / kc_max * kc_max;
	if (sk < kc_max)
		sk = kc_max;
#pragma omp parallel
	{
		float *wp = aligned_alloc(64, (size_t)NTU * KC * NR * sizeof(float));
		float *lb = aligned_alloc(64, (size_t)NTU * MB * 8 * MR * NR * sizeof(float));
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
					chunk(acc, xp, nmt, M, Kp, w, e4m3, lut, ldw, N, K, kc_max, k0, nt0,
					      nu, wp, lb, xs, ws, nkb);
			}
		}
		free(wp);
		free(lb);
	}
	free(xp);
	return ok;
}
#endif

#ifdef HAVE_AVX2_BODY
/* y = x · w^T for a bf16 w [N, K] through gemm_avx2, batch by batch. */
static dsv32_status gemm_bf16w_avx2(const dsv32_gemm_desc *d, dsv32_error *err)
{
	int64_t Mp = DSV32_GEMM_MPAD(d->M), Kp = (d->K + 7) & ~(int64_t)7;
	size_t xsz = dsv32_dtype_size(d->x_dtype), ysz = dsv32_dtype_size(d->y_dtype);
	float *xf = calloc((size_t)(Mp * Kp + Mp * d->N), sizeof(float));
	if (!xf)
		return DSV32_FAIL(err, DSV32_E_NOMEM, "gemm: scratch for M %lld N %lld K %lld",
				  (long long)d->M, (long long)d->N, (long long)d->K);
	float *acc = xf + Mp * Kp;
	dsv32_status rc = DSV32_OK;
	for (int64_t b = 0; b < d->batch && rc == DSV32_OK; b++) {
		const char *xb = (const char *)d->x + (size_t)(b * d->stride_x) * xsz;
		const uint16_t *wb = (const uint16_t *)d->w + b * d->stride_w;
		char *yb = (char *)d->y + (size_t)(b * d->stride_y) * ysz;
		for (int64_t m = 0; m < d->M; m++) /* padding rows/columns stay zero */
			widen(xf + m * Kp, xb + (size_t)(m * d->ldx) * xsz, d->x_dtype, 1, d->K, 0);
		if (!gemm_avx2(acc, xf, d->M, Kp, wb, false, d->ldw, d->N, d->K, KC, NULL, NULL, 0)) {
			rc = DSV32_FAIL(err, DSV32_E_NOMEM, "gemm: per-thread weight buffers");
			break;
		}
		if (d->y_dtype == DSV32_F32)
			for (int64_t m = 0; m < d->M; m++)
				memcpy((float *)yb + m * d->ldy, acc + m * d->N,
				       (size_t)d->N * sizeof(float));
		else
			round_out(yb, d->ldy, acc, d->M, d->N);
	}
	free(xf);
	return rc;
}
#endif

const char *dsv32_gemm_cpu_fallback_name(void)
{
#ifdef HAVE_AVX2_BODY
	if (avx2_usable())
		return "avx2-blocked";
#endif
	return "sgemm-widened";
}

bool dsv32_gemm_blocked_f32x(float *acc, const float *xf, int64_t M, int64_t Kp, const void *w,
			     bool w_e4m3, int64_t ldw, int64_t N, int64_t K, int64_t kc,
			     const float *xs, const float *ws, int64_t nkb, bool *nomem)
{
	*nomem = false;
#ifdef HAVE_AVX2_BODY
	if (!avx2_usable() || kc > KC || kc % 8 != 0 || Kp % 8 != 0)
		return false;
	*nomem = !gemm_avx2(acc, xf, M, Kp, w, w_e4m3, ldw, N, K, kc, xs, ws, nkb);
	return true;
#else
	(void)acc; (void)xf; (void)M; (void)Kp; (void)w; (void)w_e4m3; (void)ldw; (void)N;
	(void)K; (void)kc; (void)xs; (void)ws; (void)nkb;
	return false;
#endif
}

typedef struct {
	float *xf;   /* widened x [M, K] (NULL when x is F32 and used in place) */
	float *wf;   /* one widened panel of w */
	float *acc;  /* f32 result panel [M, nb] when y is BF16 */
	int64_t nb;  /* panel width in output columns */
} scratch;

/* One batch entry: y_b = x_b · op(w_b), through sgemm on f32 panels of nb output columns. */
static void gemm_one(const dsv32_gemm_desc *d, scratch *s, const void *xb, const void *wb,
		     void *yb)
{
	const float *xf = xb;
	int64_t lda = d->ldx;
	if (d->x_dtype != DSV32_F32) {
		widen(s->xf, xb, d->x_dtype, d->M, d->K, d->ldx);
		xf = s->xf;
		lda = d->K;
	}
	bool y_f32 = d->y_dtype == DSV32_F32;
	size_t wsz = dsv32_dtype_size(d->w_dtype);
	for (int64_t n0 = 0; n0 < d->N; n0 += s->nb) {
		int64_t nb = d->N - n0 < s->nb ? d->N - n0 : s->nb;
		const float *wp;
		int64_t ldb;
		if (d->w_dtype == DSV32_F32) {
			wp = (const float *)wb + (d->trans_w ? n0 * d->ldw : n0);
			ldb = d->ldw;
		} else if (d->trans_w) { /* rows n0..n0+nb of w [N, K] */
			widen(s->wf, (const char *)wb + (size_t)(n0 * d->ldw) * wsz, d->w_dtype, nb,
			      d->K, d->ldw);
			wp = s->wf;
			ldb = d->K;
		} else { /* columns n0..n0+nb of w [K, N] */
			widen(s->wf, (const char *)wb + (size_t)n0 * wsz, d->w_dtype, d->K, nb,
			      d->ldw);
			wp = s->wf;
			ldb = nb;
		}
		float *c = y_f32 ? (float *)yb + n0 : s->acc;
		int64_t ldc = y_f32 ? d->ldy : nb;
		cblas_sgemm(CblasRowMajor, CblasNoTrans, d->trans_w ? CblasTrans : CblasNoTrans,
			    (blasint)d->M, (blasint)nb, (blasint)d->K, 1.0f, xf, (blasint)lda, wp,
			    (blasint)ldb, 0.0f, c, (blasint)ldc);
		if (!y_f32)
			round_out((uint16_t *)yb + n0, d->ldy, s->acc, d->M, nb);
	}
}

dsv32_status dsv32_gemm_cpu(dsv32_backend *be, const dsv32_gemm_desc *d, dsv32_error *err)
{
	(void)be;
	if (d->x_dtype == DSV32_BF16 && d->w_dtype == DSV32_BF16 && d->K > 0) {
		bool done = false;
		DSV32_TRY(dsv32_gemm_dnnl(d, &done, err));
		if (done)
			return DSV32_OK;
	}
	size_t xsz = dsv32_dtype_size(d->x_dtype), wsz = dsv32_dtype_size(d->w_dtype);
	size_t ysz = dsv32_dtype_size(d->y_dtype);
	if (d->K == 0) {
		for (int64_t b = 0; b < d->batch; b++)
			zero_out(d, (char *)d->y + (size_t)(b * d->stride_y) * ysz);
		return DSV32_OK;
	}
#ifdef HAVE_AVX2_BODY
	if (d->trans_w && d->w_dtype == DSV32_BF16 && avx2_usable())
		return gemm_bf16w_avx2(d, err);
#endif
	scratch s = {0};
	s.nb = d->N;
	if (d->w_dtype != DSV32_F32) {
		int64_t nb = (int64_t)(PANEL_BYTES / sizeof(float)) / d->K;
		nb = nb < 64 ? 64 : nb & ~(int64_t)15;
		s.nb = nb < d->N ? nb : d->N;
	}
	size_t nx = d->x_dtype != DSV32_F32 ? (size_t)(d->M * d->K) : 0;
	size_t nw = d->w_dtype != DSV32_F32 ? (size_t)(s.nb * d->K) : 0;
	size_t nacc = d->y_dtype != DSV32_F32 ? (size_t)(d->M * s.nb) : 0;
	float *buf = malloc((nx + nw + nacc + 1) * sizeof(float));
	if (!buf)
		return DSV32_FAIL(err, DSV32_E_NOMEM, "gemm: %zu bytes of f32 scratch for M %lld N "
				  "%lld K %lld", (nx + nw + nacc) * sizeof(float),
				  (long long)d->M, (long long)d->N, (long long)d->K);
	s.xf = buf;
	s.wf = buf + nx;
	s.acc = buf + nx + nw;
	for (int64_t b = 0; b < d->batch; b++)
		gemm_one(d, &s, (const char *)d->x + (size_t)(b * d->stride_x) * xsz,
			 (const char *)d->w + (size_t)(b * d->stride_w) * wsz,
			 (char *)d->y + (size_t)(b * d->stride_y) * ysz);
	free(buf);
	return DSV32_OK;
}
