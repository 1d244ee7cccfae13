/* gemm_cpu.c: CPU body of the GEMM family (gemm.h): oneDNN for bf16 x bf16 where it has a
 * native kernel; else, for a bf16 w in "NT" layout, an own AVX2+FMA blocked kernel (w widened
 * exactly per 64-row x 1024-K chunk into a cache-resident buffer); otherwise OpenBLAS sgemm on
 * f32 operands, bf16 operands widened exactly in panels of w that stay in cache. A BF16 y is
 * rounded once from the fp32 result. The blocked kernel also serves fp8_gemm (fp8_cpu.c). */
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


/* ---- AVX2+FMA body for a bf16 weight in "NT" layout (x widened to f32, w widened per chunk
 * into a cache-resident buffer). fp32 accumulation: 8-lane partial sums per 1024-wide K chunk,
 * reduced and added across chunks; the order differs from sgemm's, as the contract allows. ---- */
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HAVE_AVX2_BODY 1
#define KC 1024    /* K chunk: 3 x-rows and 4 w-rows of it (28 KiB) sit in L1 */
#define NG 64      /* w rows widened together (one thread's unit of work) */

__attribute__((target("avx2,fma"))) static inline float hsum8(__m256 v)
{
	__m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
	s = _mm_add_ps(s, _mm_movehl_ps(s, s));
	s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
	return _mm_cvtss_f32(s);
}

/* out[i][j] = Σ_k x_i[k]·w_j[k] for 3 x rows and 4 w rows over kc (multiple of 8) values;
 * 12 independent 8-lane fp32 accumulators (FMA latency x throughput on current cores). */
__attribute__((target("avx2,fma"))) static void dot_3x4(float out[3][4], const float *x0,
							 int64_t ldx, const float *w, int64_t ldw,
							 int64_t kc)
{
	__m256 a00 = _mm256_setzero_ps(), a01 = a00, a02 = a00, a03 = a00;
	__m256 a10 = a00, a11 = a00, a12 = a00, a13 = a00;
	__m256 a20 = a00, a21 = a00, a22 = a00, a23 = a00;
	const float *x1 = x0 + ldx, *x2 = x0 + 2 * ldx;
	const float *w0 = w, *w1 = w + ldw, *w2 = w + 2 * ldw, *w3 = w + 3 * ldw;
	for (int64_t k = 0; k < kc; k += 8) {
		__m256 u = _mm256_loadu_ps(x0 + k), v = _mm256_loadu_ps(x1 + k);
		__m256 t = _mm256_loadu_ps(x2 + k), b = _mm256_loadu_ps(w0 + k);
		a00 = _mm256_fmadd_ps(u, b, a00);
		a10 = _mm256_fmadd_ps(v, b, a10);
		a20 = _mm256_fmadd_ps(t, b, a20);
		b = _mm256_loadu_ps(w1 + k);
		a01 = _mm256_fmadd_ps(u, b, a01);
		a11 = _mm256_fmadd_ps(v, b, a11);
		a21 = _mm256_fmadd_ps(t, b, a21);
		b = _mm256_loadu_ps(w2 + k);
		a02 = _mm256_fmadd_ps(u, b, a02);
		a12 = _mm256_fmadd_ps(v, b, a12);
		a22 = _mm256_fmadd_ps(t, b, a22);
		b = _mm256_loadu_ps(w3 + k);
		a03 = _mm256_fmadd_ps(u, b, a03);
		a13 = _mm256_fmadd_ps(v, b, a13);
		a23 = _mm256_fmadd_ps(t, b, a23);
	}
	out[0][0] = hsum8(a00), out[0][1] = hsum8(a01), out[0][2] = hsum8(a02);
	out[0][3] = hsum8(a03), out[1][0] = hsum8(a10), out[1][1] = hsum8(a11);
	out[1][2] = hsum8(a12), out[1][3] = hsum8(a13), out[2][0] = hsum8(a20);
	out[2][1] = hsum8(a21), out[2][2] = hsum8(a22), out[2][3] = hsum8(a23);
}

static bool avx2_usable(void)
{
	const char *off = getenv("DSV32_GEMM_NO_AVX2");
	if (off && off[0] == '1')
		return false;
	return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

/* Widen values k0..k0+kr of w row n (bf16 or e4m3 codes) into d. */
static void widen_w(float *d, const void *w, bool e4m3, const float *lut, int64_t off,
		    int64_t kr)
{
	if (!e4m3) {
		widen_row(d, (const uint16_t *)w + off, kr);
		return;
	}
	const uint8_t *c = (const uint8_t *)w + off;
	for (int64_t k = 0; k < kr; k++)
		d[k] = lut[c[k]];
}

/* Add one chunk's sum t into *a. GEMM: plain fp32 add. fp8 (xs != NULL, chunk = one 128-block
 * kb): t · (xs[m,kb] · ws[n/128,kb]), two fp32 multiplies, then added to an accumulator that
 * starts at +0 (fp8.h). */
static inline void accumulate(float *a, float t, bool first, const float *xs, const float *ws,
			      int64_t m, int64_t n, int64_t kb, int64_t nkb)
{
	if (xs) {
		float sc = xs[m * nkb + kb] * ws[(n / 128) * nkb + kb];
		float p = t * sc;
		*a = (first ? 0.0f : *a) + p;
	} else {
		*a = first ? t : *a + t;
	}
}

/* The blocked AVX2 body (see gemm.h, internal section). */
static bool gemm_avx2(float *acc, const float *xf, int64_t M, int64_t Mp, int64_t Kp,
		      const void *w, bool e4m3, int64_t ldw, int64_t N, int64_t K, int64_t kc_max,
		      const float *xs, const float *ws, int64_t nkb)
{
	int64_t ngroups = (N + NG - 1) / NG;
	float lut[256];
	for (int c = 0; c < 256; c++)
		lut[c] = dsv32_e4m3_to_f32((dsv32_f8)c);
	bool ok = true;
#pragma omp parallel
	{
		float *wb = aligned_alloc(64, (size_t)NG * KC * sizeof(float));
		if (!wb) {
#pragma omp atomic write
			ok = false;
		}
#pragma omp for schedule(dynamic, 1)
		for (int64_t g = 0; g < ngroups; g++) {
			if (!wb)
				continue;
			int64_t n0 = g * NG, ng = N - n0 < NG ? N - n0 : NG;
			int64_t ngp = (ng + 3) & ~(int64_t)3;
			for (int64_t k0 = 0, kb = 0; k0 < Kp; k0 += kc_max, kb++) {
				int64_t kc = Kp - k0 < kc_max ? Kp - k0 : kc_max;
				int64_t kv = K - k0 < kc ? K - k0 : kc; /* unpadded values */
				for (int64_t r = 0; r < ngp; r++) {
					int64_t kr = r < ng ? kv : 0;
					float *d = wb + r * KC;
					if (kr)
						widen_w(d, w, e4m3, lut, (n0 + r) * ldw + k0, kr);
					memset(d + kr, 0, (size_t)(kc - kr) * sizeof(float));
				}
				/* x rows outer (3 rows of the chunk stay in L1), the widened w group
				 * chunk (64 x KC floats) streams from L2 */
				for (int64_t m = 0; m < Mp; m += 3)
					for (int64_t j = 0; j < ngp; j += 4) {
						float o[3][4];
						dot_3x4(o, xf + m * Kp + k0, Kp, wb + j * KC, KC, kc);
						for (int i = 0; i < 3 && m + i < M; i++)
							for (int c = 0; c < 4 && j + c < ng; c++)
								accumulate(&acc[(m + i) * N + n0 + j + c],
									   o[i][c], k0 == 0, xs, ws,
									   m + i, n0 + j + c, kb, nkb);
					}
			}
		}
		free(wb);
	}
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
		if (!gemm_avx2(acc, xf, d->M, Mp, Kp, wb, false, d->ldw, d->N, d->K, KC, NULL, NULL, 0)) {
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
	*nomem = !gemm_avx2(acc, xf, M, DSV32_GEMM_MPAD(M), Kp, w, w_e4m3, ldw, N, K, kc, xs,
			    ws, nkb);
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
