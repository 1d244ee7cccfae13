/* layernorm.h: LayerNorm with weight and bias over the last dim (reference_layout.md §A.3, the
 * indexer's k_norm; hf_layout.md §9 step 2).
 *
 * dsv32_layernorm(be, y, x, w, b, eps, err)
 *   x, y [rows, dim] BF16 or F32 (y's dtype decides the rounding); w, b [dim] F32 (reference:
 *   `F.layer_norm(x.float(), ..., fp32 w, fp32 b).type_as(x)`) or BF16 (HF: F.layer_norm on bf16
 *   input with bf16 weight/bias). Both go through the same PyTorch CPU kernel arithmetic, which
 *   widens everything to fp32 and rounds once at the end, so one op serves both layouts:
 *     mean, var (population): CPU: PyTorch CPU's vectorised Welford cascade with L lanes
 *       (reduce.h dsv32_moments_torch_fn; L = dsv32_torch_lanes(be)); CUDA: two passes
 *     rstd  = 1.0f / sqrtf(max(var, 0) + fp32(eps))
 *     scale = rstd;  shift = -(rstd · mean)
 *     y = round_y( (x · scale + shift) · w + b )  (each op rounded to fp32, no FMA): torch 1.13;
 *     with dsv32_torch_major(be) == 2 the torch 2.x forms: fp32 x: fma((x - mean)·rstd, w, b);
 *     bf16 x: fma(fma(x, scale, shift), w, b) (and fused Welford updates; docs/numerics.md)
 *   (max(var, 0) keeps a NaN var, as std::max does.)
 * Note: PyTorch CUDA computes (x - mean) · rstd · w + b instead; we follow the CPU kernel (the
 * golden data's and the HF CPU run's).
 * y may alias x. Errors: DSV32_E_SHAPE, DSV32_E_DTYPE, DSV32_E_USAGE, DSV32_E_UNSUPPORTED.
 */
#ifndef DSV32_LAYERNORM_H
#define DSV32_LAYERNORM_H

#include <math.h>

#include "kernels/elementwise.h"
#include "kernels/reduce.h"

DSV32_HD static inline float dsv32_layernorm_elem(float x, float scale, float shift, float w,
						  float b)
{
	return dsv32_fadd_rn(dsv32_fmul_rn(dsv32_fadd_rn(dsv32_fmul_rn(x, scale), shift), w), b);
}

/* The affine step in one of torch's forms (DSV32_LN_FORM_*): mean and rstd per row, shift =
 * -(rstd · mean). */
enum {
	DSV32_LN_FORM_T1 = 0,      /* torch 1.13 CPU: (x·rstd + shift)·w + b, no FMA */
	DSV32_LN_FORM_T2_F32 = 1,  /* torch 2.x CPU fp32 input: fma((x - mean)·rstd, w, b) */
	DSV32_LN_FORM_T2_BF16 = 2, /* torch 2.x CPU bf16 input: fma(fma(x, rstd, shift), w, b) */
};
DSV32_HD static inline float dsv32_layernorm_elem_form(int form, float x, float mean, float rstd,
						       float shift, float w, float b)
{
	if (form == DSV32_LN_FORM_T2_F32)
		return fmaf(dsv32_fmul_rn(dsv32_fsub_rn(x, mean), rstd), w, b);
	if (form == DSV32_LN_FORM_T2_BF16)
		return fmaf(fmaf(x, rstd, shift), w, b);
	return dsv32_layernorm_elem(x, rstd, shift, w, b);
}

DSV32_HD static inline float dsv32_layernorm_rstd(float var, float eps)
{
	return dsv32_fdiv_rn(1.0f, dsv32_fsqrt_rn(dsv32_fadd_rn(var < 0.0f ? 0.0f : var, eps)));
}

dsv32_status dsv32_layernorm(dsv32_backend *be, dsv32_tensor *y, const dsv32_tensor *x,
			     const dsv32_tensor *w, const dsv32_tensor *b, double eps,
			     dsv32_error *err);

/* ---- internal: bodies behind the dispatcher (arguments already checked) ---- */
typedef struct {
	void *y; dsv32_dtype yt;
	const void *x; dsv32_dtype xt;
	const void *w; const void *b; dsv32_dtype wt; /* w and b share a dtype */
	int64_t rows, dim;
	float eps;
	int lanes; /* torch vector lanes for the CPU moments (reduce.h) */
	int torch_major; /* 1 or 2: which torch CPU affine form (DSV32_LN_FORM_*) */
} dsv32_layernorm_args;
void dsv32_layernorm_cpu(const dsv32_layernorm_args *a);
#ifdef DSV32_HAVE_CUDA
dsv32_status dsv32_layernorm_cuda(dsv32_backend *be, const dsv32_layernorm_args *a,
				  dsv32_error *err);
#endif

#endif
