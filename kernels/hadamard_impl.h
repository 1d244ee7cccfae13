/* hadamard_impl.h: the internals of hadamard.h, shared by its dispatcher and its CPU/CUDA bodies:
 * argument bundles, per-element math, the CPU/CUDA body declarations (arguments checked).
 * Private to kernels/ (and the tests and benches that call a body directly); everyone else
 * includes kernels/hadamard.h, which holds the API and its precision contract.
 * The CUDA declarations are visible in every build: see DSV32_CUDA_BODY in backend_impl.h. */
#ifndef DSV32_HADAMARD_IMPL_H
#define DSV32_HADAMARD_IMPL_H

#include "kernels/backend_impl.h"
#include "kernels/hadamard.h"

/* In-place butterflies on v[0..d) (fp32), Sylvester order, strides 1, 2, ..., d/2. */
DSV32_HD static inline void dsv32_hadamard_row(float *v, int64_t d)
{
	for (int64_t h = 1; h < d; h <<= 1)
		for (int64_t j = 0; j < d; j++)
			if (!(j & h)) {
				float a = v[j], b = v[j + h];
				v[j] = dsv32_fadd_rn(a, b);
				v[j + h] = dsv32_fsub_rn(a, b);
			}
}

void dsv32_hadamard_cpu(void *y, dsv32_dtype yt, const void *x, dsv32_dtype xt, int64_t rows,
			int64_t d, float scale);
dsv32_status dsv32_hadamard_cuda(dsv32_backend *be, void *y, dsv32_dtype yt, const void *x,
				 dsv32_dtype xt, int64_t rows, int64_t d, float scale,
				 dsv32_error *err);

#endif
