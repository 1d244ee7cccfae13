/* topk_impl.h: the internals of topk.h, shared by its dispatcher and its CPU/CUDA bodies:
 * the CPU/CUDA body declarations (arguments checked; the per-row math is public in topk.h,
 * where its precision contract lives).
 * Private to kernels/ (and the tests and benches that call a body directly); everyone else
 * includes kernels/topk.h.
 * The CUDA declarations are visible in every build: see DSV32_CUDA_BODY in backend_impl.h. */
#ifndef DSV32_TOPK_IMPL_H
#define DSV32_TOPK_IMPL_H

#include "kernels/backend_impl.h"
#include "kernels/topk.h"

dsv32_status dsv32_topk_cpu(void *idx, dsv32_dtype idx_t, void *val, dsv32_dtype val_t,
			    const void *x, dsv32_dtype x_t, const int64_t *lens, int64_t rows,
			    int64_t n, int64_t k, dsv32_error *err);
dsv32_status dsv32_topk_cuda(dsv32_backend *be, void *idx, dsv32_dtype idx_t, void *val,
			     dsv32_dtype val_t, const void *x, dsv32_dtype x_t, const int64_t *lens,
			     int64_t rows, int64_t n, int64_t k, dsv32_error *err);

#endif
