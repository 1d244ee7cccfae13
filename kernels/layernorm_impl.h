/* layernorm_impl.h: the internals of layernorm.h, shared by its dispatcher and its CPU/CUDA bodies:
 * argument bundles, per-element math, the CPU/CUDA body declarations (arguments checked).
 * Private to kernels/ (and the tests and benches that call a body directly); everyone else
 * includes kernels/layernorm.h, which holds the API and its precision contract.
 * The CUDA declarations are visible in every build: see DSV32_CUDA_BODY in backend_impl.h. */
#ifndef DSV32_LAYERNORM_IMPL_H
#define DSV32_LAYERNORM_IMPL_H

#include "kernels/backend_impl.h"
#include "kernels/layernorm.h"

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
dsv32_status dsv32_layernorm_cuda(dsv32_backend *be, const dsv32_layernorm_args *a,
				  dsv32_error *err);

#endif
