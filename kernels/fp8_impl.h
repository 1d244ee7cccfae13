/* fp8_impl.h: the internals of fp8.h, shared by its dispatcher and its CPU/CUDA bodies:
 * argument bundles, per-element math, the CPU/CUDA body declarations (arguments checked).
 * Private to kernels/ (and the tests and benches that call a body directly); everyone else
 * includes kernels/fp8.h, which holds the API and its precision contract.
 * The CUDA declarations are visible in every build: see DSV32_CUDA_BODY in backend_impl.h. */
#ifndef DSV32_FP8_IMPL_H
#define DSV32_FP8_IMPL_H

#include "kernels/backend_impl.h"
#include "kernels/fp8.h"

/* Scale of one block from its amax (amax >= 0; NaN never reaches here). */
DSV32_HD static inline float dsv32_fp8_scale_elem(float amax, bool ue8m0)
{
	if (!(amax > DSV32_FP8_AMAX_MIN))
		amax = DSV32_FP8_AMAX_MIN;
	float s = amax * DSV32_FP8_INV_MAX;
	if (ue8m0) {
		uint32_t u = dsv32_f32_bits(s);
		int e = (int)((u >> 23) & 0xffu) - 127 + ((u & 0x7fffffu) != 0u ? 1 : 0);
		s = dsv32_f32_from_bits((uint32_t)(e + 127) << 23);
	}
	return s;
}

/* Bodies: checked arguments, raw pointers, rows >= 1; xt/yt are DSV32_BF16 or DSV32_F32. */
#ifdef __cplusplus
extern "C" {
#endif
void dsv32_act_quant_cpu(dsv32_f8 *y8, float *s, const void *x, dsv32_dtype xt, int64_t rows,
			 int64_t K, bool ue8m0);
void dsv32_fp8_roundtrip_cpu(void *y, dsv32_dtype yt, const void *x, dsv32_dtype xt,
			     int64_t rows, int64_t K, bool ue8m0);
void dsv32_weight_dequant_cpu(void *w, dsv32_dtype wt, const dsv32_f8 *w8, const float *scale,
			      int64_t N, int64_t K);
/* dequant_gemm's body under the fixed engine (fp8_dequant_cpu.c): x [M, K], y [M, N] rows
 * contiguous. */
dsv32_status dsv32_dequant_gemm_cpu(void *y, dsv32_dtype yt, const void *x, dsv32_dtype xt,
				    const dsv32_f8 *w8, const float *scale, int64_t M, int64_t N,
				    int64_t K, dsv32_error *err);
dsv32_status dsv32_fp8_gemm_cpu(void *y, dsv32_dtype yt, const dsv32_f8 *x8, const float *xs,
				const dsv32_f8 *w8, const float *ws, int64_t M, int64_t N,
				int64_t K, dsv32_error *err);
dsv32_status dsv32_act_quant_cuda(dsv32_backend *be, dsv32_f8 *y8, float *s, const void *x,
				  dsv32_dtype xt, int64_t rows, int64_t K, bool ue8m0,
				  dsv32_error *err);
dsv32_status dsv32_fp8_roundtrip_cuda(dsv32_backend *be, void *y, dsv32_dtype yt,
				      const void *x, dsv32_dtype xt, int64_t rows, int64_t K,
				      bool ue8m0, dsv32_error *err);
dsv32_status dsv32_weight_dequant_cuda(dsv32_backend *be, void *w, dsv32_dtype wt,
				       const dsv32_f8 *w8, const float *scale, int64_t N,
				       int64_t K, dsv32_error *err);
dsv32_status dsv32_fp8_gemm_cuda(dsv32_backend *be, void *y, dsv32_dtype yt, const dsv32_f8 *x8,
				 const float *xs, const dsv32_f8 *w8, const float *ws, int64_t M,
				 int64_t N, int64_t K, dsv32_error *err);
#ifdef __cplusplus
}
#endif

#endif
