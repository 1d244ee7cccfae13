/* gemm_cpu.c: CPU dispatch of the GEMM family (gemm.h "Engines"): the fixed engine
 * (gemm_fixed.c) or the host engine: oneDNN for bf16 x bf16 where it has a native kernel; else,
 * for a bf16 w in "NT" layout, the fixed engine's vector body (its order, the same bits); otherwise OpenBLAS sgemm on f32
 * operands, bf16 operands widened exactly in panels of w that stay in cache. A BF16 y is
 * rounded once from the fp32 result. */
#include "kernels/gemm_impl.h"

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

/* The host engine: oneDNN for bf16 x bf16 where it has a native kernel, the fixed engine's
 * avx2 body for a bf16 "NT" w where it has none (faster than widening for sgemm), else sgemm. */
static dsv32_status gemm_host(const dsv32_gemm_desc *d, dsv32_error *err)
{
	bool done = false;
	if (d->x_dtype == DSV32_BF16 && d->w_dtype == DSV32_BF16 && dsv32_gemm_dpbf16_usable())
		return dsv32_gemm_dpbf16(d, err);
	if (d->x_dtype == DSV32_BF16 && d->w_dtype == DSV32_BF16)
		DSV32_TRY(dsv32_gemm_dnnl(d, &done, err));
	if (done)
		return DSV32_OK;
	if (d->trans_w && d->w_dtype == DSV32_BF16 && strcmp(dsv32_gemm_fixed_body(), "scalar") != 0)
		return dsv32_gemm_fixed(d, err);
	size_t xsz = dsv32_dtype_size(d->x_dtype), wsz = dsv32_dtype_size(d->w_dtype);
	size_t ysz = dsv32_dtype_size(d->y_dtype);
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

dsv32_status dsv32_gemm_cpu(dsv32_backend *be, const dsv32_gemm_desc *d, dsv32_error *err)
{
	if (d->K == 0) {
		size_t ysz = dsv32_dtype_size(d->y_dtype);
		for (int64_t b = 0; b < d->batch; b++)
			zero_out(d, (char *)d->y + (size_t)(b * d->stride_y) * ysz);
		return DSV32_OK;
	}
	if (be->gemm_engine == DSV32_GEMM_HOST)
		return gemm_host(d, err);
	return dsv32_gemm_fixed(d, err);
}

const char *dsv32_gemm_engine_name(int engine)
{
	return engine == DSV32_GEMM_HOST ? "host" : "fixed";
}

const char *dsv32_gemm_cpu_fallback_name(void)
{
	return strcmp(dsv32_gemm_fixed_body(), "scalar") ? "fixed-blocked" : "sgemm-widened";
}
