/* rmsnorm_impl.h: the internals of rmsnorm.h, shared by its dispatcher and its CPU/CUDA bodies:
 * argument bundles, per-element math, the CPU/CUDA body declarations (arguments checked).
 * Private to kernels/ (and the tests and benches that call a body directly); everyone else
 * includes kernels/rmsnorm.h, which holds the API and its precision contract.
 * The CUDA declarations are visible in every build: see DSV32_CUDA_BODY in backend_impl.h. */
#ifndef DSV32_RMSNORM_IMPL_H
#define DSV32_RMSNORM_IMPL_H

#include "kernels/backend_impl.h"
#include "kernels/rmsnorm.h"

/* inv = 1 / sqrt(ss / dim + eps), PyTorch CPU order (see above). */
DSV32_HD static inline float dsv32_rmsnorm_inv(float ss, float dim, float eps)
{
	float ms = dsv32_fdiv_rn(ss, dim);
	return dsv32_fdiv_rn(1.0f, dsv32_fsqrt_rn(dsv32_fadd_rn(ms, eps)));
}

/* Reference element: w · (r · inv), with the optional planted pre-rounding of r · inv. */
DSV32_HD static inline float dsv32_rmsnorm_ref_elem(float r, float inv, float w, bool planted)
{
	float xn = dsv32_fmul_rn(r, inv);
	if (planted)
		xn = dsv32_round_bf16(xn);
	return dsv32_fmul_rn(w, xn);
}

/* HF element: w · round(r · inv); round_bf16 says whether h is rounded (BF16 output). */
DSV32_HD static inline float dsv32_rmsnorm_hf_elem(float r, float inv, float w, bool round_bf16)
{
	float h = dsv32_fmul_rn(r, inv);
	if (round_bf16)
		h = dsv32_round_bf16(h);
	return dsv32_fmul_rn(w, h);
}

typedef enum { DSV32_RMSNORM_REF = 0, DSV32_RMSNORM_REF_ADD, DSV32_RMSNORM_HF } dsv32_rmsnorm_mode;
typedef struct {
	dsv32_rmsnorm_mode mode;
	void *y; dsv32_dtype yt;
	void *res_out; dsv32_dtype rt;     /* REF_ADD only */
	const void *x; dsv32_dtype xt;
	const void *res; dsv32_dtype rest; /* REF_ADD only */
	const void *w; dsv32_dtype wt;
	int64_t rows, dim;
	float eps;
	bool planted;                      /* test_hooks->rmsnorm_no_final_round */
	int lanes;                         /* torch cascade lanes (reduce.h), CPU body */
} dsv32_rmsnorm_args;
void dsv32_rmsnorm_cpu(const dsv32_rmsnorm_args *a);
dsv32_status dsv32_rmsnorm_cuda(dsv32_backend *be, const dsv32_rmsnorm_args *a, dsv32_error *err);

#endif
