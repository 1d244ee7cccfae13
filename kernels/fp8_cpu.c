/* fp8_cpu.c: CPU bodies of the fp8 family (fp8.h; reference_layout.md §B.2, §B.5, §B.6).
 * OpenMP over 128-blocks / rows; fp8_gemm runs one sgemm per K block on e4m3 values widened to
 * f32 (exact), then scales and accumulates the blocks in increasing order. */
#include "kernels/fp8.h"
#include "kernels/gemm.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#define BLK DSV32_FP8_BLOCK

static void e4m3_table(float lut[256])
{
	for (int c = 0; c < 256; c++)
		lut[c] = dsv32_e4m3_to_f32((dsv32_f8)c);
}

static inline float load(const void *x, dsv32_dtype t, int64_t i)
{
	return t == DSV32_F32 ? ((const float *)x)[i] : dsv32_bf16_to_f32(((const uint16_t *)x)[i]);
}

static inline void store(void *y, dsv32_dtype t, int64_t i, float v)
{
	if (t == DSV32_F32)
		((float *)y)[i] = v;
	else
		((uint16_t *)y)[i] = dsv32_f32_to_bf16(v);
}

/* Quantize one block of 128 values at x + base; returns the scale. */
static float quant_block(dsv32_f8 q[BLK], const void *x, dsv32_dtype xt, int64_t base, bool ue8m0)
{
	float v[BLK], amax = 0.0f;
	for (int j = 0; j < BLK; j++) {
		v[j] = load(x, xt, base + j);
		float a = fabsf(v[j]);
		if (a > amax)
			amax = a;
	}
	float s = dsv32_fp8_scale_elem(amax, ue8m0);
	for (int j = 0; j < BLK; j++)
		q[j] = dsv32_fp8_quant_elem(v[j], s);
	return s;
}

void dsv32_act_quant_cpu(dsv32_f8 *y8, float *s, const void *x, dsv32_dtype xt, int64_t rows,
			 int64_t K, bool ue8m0)
{
	int64_t nblk = rows * (K / BLK);
#pragma omp parallel for schedule(static) if (nblk > 64)
	for (int64_t b = 0; b < nblk; b++)
		s[b] = quant_block(y8 + b * BLK, x, xt, b * BLK, ue8m0);
}

void dsv32_fp8_roundtrip_cpu(void *y, dsv32_dtype yt, const void *x, dsv32_dtype xt,
			     int64_t rows, int64_t K, bool ue8m0)
{
	int64_t nblk = rows * (K / BLK);
#pragma omp parallel for schedule(static) if (nblk > 64)
	for (int64_t b = 0; b < nblk; b++) {
		dsv32_f8 q[BLK];
		float s = quant_block(q, x, xt, b * BLK, ue8m0); /* reads the whole block first */
		for (int j = 0; j < BLK; j++)
			store(y, yt, b * BLK + j, dsv32_e4m3_to_f32(q[j]) * s);
	}
}

void dsv32_weight_dequant_cpu(void *w, dsv32_dtype wt, const dsv32_f8 *w8, const float *scale,
			      int64_t N, int64_t K)
{
	float lut[256];
	e4m3_table(lut);
	int64_t sk = (K + BLK - 1) / BLK;
#pragma omp parallel for schedule(static) if (N * K > 65536)
	for (int64_t n = 0; n < N; n++) {
		const float *srow = scale + (n / BLK) * sk;
		for (int64_t k = 0; k < K; k++)
			store(w, wt, n * K + k, lut[w8[n * K + k]] * srow[k / BLK]);
	}
}

static void write_out(void *y, dsv32_dtype yt, const float *acc, int64_t M, int64_t N)
{
	if (yt == DSV32_F32) {
		memcpy(y, acc, (size_t)(M * N) * sizeof(float));
		return;
	}
	for (int64_t i = 0; i < M * N; i++)
		((uint16_t *)y)[i] = dsv32_f32_to_bf16(acc[i]);
}

/* The blocked AVX2 body of gemm_cpu.c with one chunk per 128-block; *done = false when this
 * CPU lacks it. */
static dsv32_status fp8_gemm_blocked(bool *done, void *y, dsv32_dtype yt, const dsv32_f8 *x8,
				     const float *xs, const dsv32_f8 *w8, const float *ws,
				     int64_t M, int64_t N, int64_t K, dsv32_error *err)
{
	int64_t Mp = DSV32_GEMM_MPAD(M), Kp = (K + 7) & ~(int64_t)7, nkb = (K + BLK - 1) / BLK;
	float *xf = calloc((size_t)(Mp * Kp + Mp * N), sizeof(float));
	if (!xf)
		return DSV32_FAIL(err, DSV32_E_NOMEM, "fp8_gemm: scratch for M %lld N %lld K %lld",
				  (long long)M, (long long)N, (long long)K);
	float lut[256];
	e4m3_table(lut);
	for (int64_t m = 0; m < M; m++)
		for (int64_t k = 0; k < K; k++)
			xf[m * Kp + k] = lut[x8[m * K + k]];
	float *acc = xf + Mp * Kp;
	bool nomem = false;
	*done = dsv32_gemm_blocked_f32x(acc, xf, M, Kp, w8, true, K, N, K, BLK, xs, ws, nkb,
					&nomem);
	if (*done && !nomem)
		write_out(y, yt, acc, M, N);
	free(xf);
	if (nomem)
		return DSV32_FAIL(err, DSV32_E_NOMEM, "fp8_gemm: per-thread weight buffers");
	return DSV32_OK;
}

dsv32_status dsv32_fp8_gemm_cpu(void *y, dsv32_dtype yt, const dsv32_f8 *x8, const float *xs,
				const dsv32_f8 *w8, const float *ws, int64_t M, int64_t N,
				int64_t K, dsv32_error *err)
{
	bool done = false;
	DSV32_TRY(fp8_gemm_blocked(&done, y, yt, x8, xs, w8, ws, M, N, K, err));
	if (done)
		return DSV32_OK;
	/* portable path: one sgemm per K block on widened values */
	float lut[256];
	e4m3_table(lut);
	int64_t nkb = (K + BLK - 1) / BLK;
	size_t nacc = yt == DSV32_F32 ? 0 : (size_t)(M * N);
	size_t total = (size_t)(M * K) + (size_t)(N * BLK) + (size_t)(M * N) + nacc + 1;
	float *buf = malloc(total * sizeof(float));
	if (!buf)
		return DSV32_FAIL(err, DSV32_E_NOMEM, "fp8_gemm: %zu bytes of scratch for M %lld "
				  "N %lld K %lld", total * sizeof(float), (long long)M,
				  (long long)N, (long long)K);
	float *xf = buf, *wf = xf + M * K, *P = wf + N * BLK;
	float *acc = yt == DSV32_F32 ? (float *)y : P + M * N;
#pragma omp parallel for schedule(static) if (M * K > 65536)
	for (int64_t i = 0; i < M * K; i++)
		xf[i] = lut[x8[i]];
	memset(acc, 0, (size_t)(M * N) * sizeof(float)); /* the accumulator starts at +0 */
	for (int64_t kb = 0; kb < nkb; kb++) {
		int64_t k0 = kb * BLK, kw = K - k0 < BLK ? K - k0 : BLK;
#pragma omp parallel for schedule(static) if (N * kw > 65536)
		for (int64_t n = 0; n < N; n++)
			for (int64_t k = 0; k < kw; k++)
				wf[n * kw + k] = lut[w8[n * K + k0 + k]];
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)M, (blasint)N,
			    (blasint)kw, 1.0f, xf + k0, (blasint)K, wf, (blasint)kw, 0.0f, P,
			    (blasint)N);
#pragma omp parallel for schedule(static) if (M * N > 65536)
		for (int64_t m = 0; m < M; m++) {
			float sx = xs[m * nkb + kb];
			for (int64_t n = 0; n < N; n++) {
				float sc = sx * ws[(n / BLK) * nkb + kb]; /* one fp32 multiply */
				float t = P[m * N + n] * sc;           /* one fp32 multiply */
				acc[m * N + n] += t;                   /* one fp32 add */
			}
		}
	}
	if (yt != DSV32_F32) {
#pragma omp parallel for schedule(static) if (M * N > 65536)
		for (int64_t i = 0; i < M * N; i++)
			((uint16_t *)y)[i] = dsv32_f32_to_bf16(acc[i]);
	}
	free(buf);
	return DSV32_OK;
}
