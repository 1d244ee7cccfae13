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
 * Each output is formed by one thread, so the thread count changes no bit. */
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

/* Decided once per process (the host engine asks at every bf16 GEMM), as the environment and
 * the CPU do not change under it. */
bool dsv32_gemm_dpbf16_usable(void)
{
	static int cached = -1; /* benign: every thread computes the same value */
	int v = __atomic_load_n(&cached, __ATOMIC_RELAXED);
	if (v < 0) {
		v = usable_here();
		__atomic_store_n(&cached, v, __ATOMIC_RELAXED);
	}
	return v != 0;
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
	for (int h = 0; h < 2; h++)
		for (int q = 0; q < NC; q++)
			c[h][q] = _mm512_setzero_ps();
	for (int64_t j = j0; j < j1; j++) {
		__m512bh a0 = (__m512bh)_mm512_loadu_si512(x0 + j * MB);
		__m512bh a1 = two ? (__m512bh)_mm512_loadu_si512(x1 + j * MB) : a0;
		for (int q = 0; q < NC; q++) {
			if (q >= nc)
				break;
			uint32_t wv;
			memcpy(&wv, wr + ((n0 + q) * wld + j) * 4, 4);
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
		for (int h = 0; h < 2; h++) /* chunk sums in chunk order: t = c, then t + c */
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

dsv32_status dsv32_gemm_dpbf16(const dsv32_gemm_desc *d, dsv32_error *err)
{
	int64_t J = (d->K + 1) / 2, nmb = (d->M + MB - 1) / MB;
	/* an "NT" w of even K and row stride is already rows of pairs */
	bool w_pairs = d->trans_w && d->K % 2 == 0 && d->ldw % 2 == 0;
	size_t nxp = (size_t)(nmb * J * MB), nwp = w_pairs ? 0 : (size_t)(d->N * J);
	uint32_t *buf = dsv32_cpu_scratch(0, (nxp + nwp) * sizeof *buf);
	if (!buf)
		return DSV32_FAIL(err, DSV32_E_NOMEM, "gemm (dpbf16): %zu bytes of packed operands "
				  "for M %lld N %lld K %lld", (nxp + nwp) * 4, (long long)d->M,
				  (long long)d->N, (long long)d->K);
	uint32_t *xp = buf, *wp = buf + nxp;
	size_t ysz = dsv32_dtype_size(d->y_dtype);
	int64_t nmt = (nmb + 1) / 2, nnt = (d->N + NC - 1) / NC;
	for (int64_t b = 0; b < d->batch; b++) {
		const uint16_t *w = (const uint16_t *)d->w + b * d->stride_w;
		pack_x(xp, (const uint16_t *)d->x + b * d->stride_x, d->ldx, d->M, d->K);
		if (!w_pairs)
			pack_w(wp, d, w);
		const uint8_t *wr = w_pairs ? (const uint8_t *)w : (const uint8_t *)wp;
		int64_t wld = w_pairs ? d->ldw / 2 : J;
		void *y = (char *)d->y + (size_t)(b * d->stride_y) * ysz;
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

dsv32_status dsv32_gemm_dpbf16(const dsv32_gemm_desc *d, dsv32_error *err)
{
	(void)d;
	return DSV32_FAIL(err, DSV32_E_UNSUPPORTED, "gemm (dpbf16): x86-64 only");
}
#endif
