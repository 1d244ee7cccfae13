/* combine_impl.h: the internals of combine.h, shared by its dispatcher and its CPU/CUDA bodies:
 * argument bundles, per-element math, the CPU/CUDA body declarations (arguments checked).
 * Private to kernels/ (and the tests and benches that call a body directly); everyone else
 * includes kernels/combine.h, which holds the API and its precision contract.
 * The CUDA declarations are visible in every build: see DSV32_CUDA_BODY in backend_impl.h. */
#ifndef DSV32_COMBINE_IMPL_H
#define DSV32_COMBINE_IMPL_H

#include "kernels/backend_impl.h"
#include "kernels/combine.h"

/* ---- per-element math shared by the CPU and CUDA bodies ---- */
/* reference: y + (x · w), fp32 */
DSV32_HD static inline float dsv32_combine_ref_elem(float y, float x, float w)
{
#ifdef __CUDA_ARCH__
	return __fadd_rn(y, __fmul_rn(x, w));
#else
	float p = x * w;
	return y + p;
#endif
}

/* HF eager: round(out + round(x · w)); bf16 = true rounds at both points */
DSV32_HD static inline float dsv32_combine_hf_eager_elem(float out, float x, float w, bool bf16)
{
#ifdef __CUDA_ARCH__
	float p = __fmul_rn(x, w);
	if (bf16)
		p = dsv32_round_bf16(p);
	float s = __fadd_rn(out, p);
#else
	float p = x * w;
	if (bf16)
		p = dsv32_round_bf16(p);
	float s = out + p;
#endif
	return bf16 ? dsv32_round_bf16(s) : s;
}

#define DSV32_COMBINE_MAX_DIMS DSV32_MAX_DIMS
typedef struct {
	void *y; dsv32_dtype yt;
	const void *a; dsv32_dtype at;
	const void *b; dsv32_dtype bt;
	int ndim;                              /* y's ndim */
	int64_t shape[DSV32_COMBINE_MAX_DIMS]; /* y's shape */
	int64_t sa[DSV32_COMBINE_MAX_DIMS];    /* a's element stride per y dim (0 = broadcast) */
	int64_t sb[DSV32_COMBINE_MAX_DIMS];
	int64_t n;                             /* numel of y */
} dsv32_mul_bcast_args;

typedef enum { DSV32_COMBINE_REF = 0, DSV32_COMBINE_HF_EAGER } dsv32_combine_kind;
typedef struct {
	void *y; dsv32_dtype yt;
	const void *x; dsv32_dtype xt;
	const int64_t *rows;
	const float *w;
	int64_t n, D;
	dsv32_combine_kind kind;
} dsv32_index_combine_args;

typedef struct {
	void *out; dsv32_dtype ot;
	const void *x; dsv32_dtype xt;
	const int64_t *src; /* NULL = identity */
	const float *w;
	int64_t T, K, D;
} dsv32_slot_combine_args;

void dsv32_mul_bcast_cpu(const dsv32_mul_bcast_args *a);
void dsv32_index_combine_cpu(const dsv32_index_combine_args *a);
void dsv32_slot_combine_cpu(const dsv32_slot_combine_args *a);
dsv32_status dsv32_mul_bcast_cuda(dsv32_backend *be, const dsv32_mul_bcast_args *a,
				  dsv32_error *err);
dsv32_status dsv32_index_combine_cuda(dsv32_backend *be, const dsv32_index_combine_args *a,
				      dsv32_error *err);
dsv32_status dsv32_slot_combine_cuda(dsv32_backend *be, const dsv32_slot_combine_args *a,
				     dsv32_error *err);

#endif
