/* silu_impl.h: the internals of silu.h, shared by its dispatcher and its CPU/CUDA bodies:
 * argument bundles, per-element math, the CPU/CUDA body declarations (arguments checked).
 * Private to kernels/ (and the tests and benches that call a body directly); everyone else
 * includes kernels/silu.h, which holds the API and its precision contract.
 * The CUDA declarations are visible in every build: see DSV32_CUDA_BODY in backend_impl.h. */
#ifndef DSV32_SILU_IMPL_H
#define DSV32_SILU_IMPL_H

#include "kernels/backend_impl.h"
#include "kernels/silu.h"

void dsv32_silu_mul_cpu(void *h, dsv32_dtype ht, const void *a, dsv32_dtype at, const void *b,
			dsv32_dtype bt, int64_t n, bool hf);
/* exp=torch-cpu (silu.h "_rule"): xo checked, CPU. */
dsv32_status dsv32_silu_mul_cpu_torch(void *h, dsv32_dtype ht, const void *a, dsv32_dtype at,
				      const void *b, dsv32_dtype bt, int64_t n, bool hf,
				      const dsv32_exp_opts *xo, dsv32_error *err);
dsv32_status dsv32_silu_mul_cuda(dsv32_backend *be, void *h, dsv32_dtype ht, const void *a,
				 dsv32_dtype at, const void *b, dsv32_dtype bt, int64_t n, bool hf,
				 dsv32_error *err);

#endif
