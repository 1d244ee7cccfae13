/* softmax_impl.h: the internals of softmax.h, shared by its dispatcher and its CPU/CUDA bodies:
 * argument bundles, per-element math, the CPU/CUDA body declarations (arguments checked).
 * Private to kernels/ (and the tests and benches that call a body directly); everyone else
 * includes kernels/softmax.h, which holds the API and its precision contract.
 * The CUDA declarations are visible in every build: see DSV32_CUDA_BODY in backend_impl.h. */
#ifndef DSV32_SOFTMAX_IMPL_H
#define DSV32_SOFTMAX_IMPL_H

#include "kernels/backend_impl.h"
#include "kernels/softmax.h"

/* NaN-propagating max (vec::maximum semantics). */
DSV32_HD static inline float dsv32_softmax_max(float a, float b)
{
	if (a != a || b != b)
		return a + b; /* NaN */
	return a > b ? a : b;
}

DSV32_HD static inline float dsv32_softmax_exp(float x, float m)
{
	return expf(dsv32_fsub_rn(x, m));
}

void dsv32_softmax_cpu(void *y, dsv32_dtype yt, const void *x, dsv32_dtype xt, int64_t rows,
		       int64_t T);
dsv32_status dsv32_softmax_cuda(dsv32_backend *be, void *y, dsv32_dtype yt, const void *x,
				dsv32_dtype xt, int64_t rows, int64_t T, dsv32_error *err);

#endif
