/* gemm_impl.h: the internals of gemm.h, shared by its dispatcher and its CPU/CUDA bodies:
 * argument bundles, per-element math, the CPU/CUDA body declarations (arguments checked).
 * Private to kernels/ (and the tests and benches that call a body directly); everyone else
 * includes kernels/gemm.h, which holds the API and its precision contract.
 * The CUDA declarations are visible in every build: see DSV32_CUDA_BODY in backend_impl.h. */
#ifndef DSV32_GEMM_IMPL_H
#define DSV32_GEMM_IMPL_H

#include "kernels/backend_impl.h"
#include "kernels/gemm.h"

dsv32_status dsv32_gemm_cpu(dsv32_backend *be, const dsv32_gemm_desc *d, dsv32_error *err);
/* "fixed-blocked" (the fixed engine's order; "avx2-blocked" before the avx512 body) or
 * "sgemm-widened" (no vector body): the host engine's body when oneDNN has no bf16 matmul. */
const char *dsv32_gemm_cpu_fallback_name(void);
/* A weight operand of the fixed engine: dtype BF16, F32 or F8_E4M3; trans ("NT"): element
 * (n, k) at p[n·ld + k]; else ("NN") (k, n) at p[k·ld + n]. */
typedef struct {
	const void *p;
	dsv32_dtype dtype;
	bool trans;
	int64_t ld;
} dsv32_gemm_wref;
/* The fixed engine on f32 x: xf [M, Kp] with Kp % 8 == 0 and zero padding beyond K; acc [M, N]
 * receives, per K chunk of kc values (kc % 8 == 0), the chunk sum t: GEMM (xs == NULL):
 * acc = t, then acc + t; fp8 (kc = 128): acc = acc + t·(xs[m,kb]·ws[n/128,kb]) from +0 in
 * chunk order. */
dsv32_status dsv32_gemm_fixed_f32x(float *acc, const float *xf, int64_t M, int64_t Kp,
				   const dsv32_gemm_wref *w, int64_t N, int64_t K, int64_t kc,
				   const float *xs, const float *ws, int64_t nkb, dsv32_error *err);
/* The fp8 GEMM of the fixed engine (kc = 128) on x given as e4m3 codes x8 [M, K], where the
 * body packs them itself (the avx512bf16 body, M > 6): *done = false elsewhere (the caller
 * widens x and calls dsv32_gemm_fixed_f32x). Same bits either way. */
dsv32_status dsv32_gemm_fixed_e4m3x(float *acc, const dsv32_f8 *x8, int64_t M, int64_t K,
				    const dsv32_gemm_wref *w, int64_t N, const float *xs,
				    const float *ws, int64_t nkb, bool *done, dsv32_error *err);
/* The fixed engine on a checked desc (K > 0). */
dsv32_status dsv32_gemm_fixed(const dsv32_gemm_desc *d, dsv32_error *err);
/* acc [M][N] rounded to bf16 (dsv32_f32_to_bf16) into rows of y ldy apart (vector where the
 * CPU has AVX2; the same bits). */
void dsv32_gemm_store_bf16(uint16_t *y, int64_t ldy, const float *acc, int64_t M, int64_t N);
/* The host engine's bf16 body on CPUs with AVX512-BF16 and no AMX (gemm_dpbf16.c: torch's
 * oneDNN order there); DSV32_HOST_BF16=onednn turns it off. */
bool dsv32_gemm_dpbf16_usable(void);
/* DSV32_HOST_BF16_ROW=lanes: one-row GEMMs in torch 2.15's single-row order (gemm_dpbf16.c). */
bool dsv32_gemm_dpbf16_row_lanes(void);
dsv32_status dsv32_gemm_dpbf16(const dsv32_gemm_desc *d, dsv32_error *err);
/* oneDNN bf16 body: sets *done = false (and returns DSV32_OK) when oneDNN cannot run it here. */
dsv32_status dsv32_gemm_dnnl(const dsv32_gemm_desc *d, bool *done, dsv32_error *err);
#ifdef __cplusplus
extern "C" {
#endif
dsv32_status dsv32_gemm_cuda(dsv32_backend *be, const dsv32_gemm_desc *d, dsv32_error *err);
#ifdef __cplusplus
}
#endif

#endif
