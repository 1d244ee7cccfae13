/* elementwise_impl.h: the internals of elementwise.h, shared by its dispatcher and bodies:
 * argument bundles, per-element math, the CPU/CUDA body declarations (arguments checked).
 * Private to kernels/ (and the tests and benches that call a body directly); everyone else
 * includes kernels/elementwise.h, which holds the API and its precision contract.
 * The CUDA declarations are visible in every build: see DSV32_CUDA_BODY in backend_impl.h. */
#ifndef DSV32_ELEMENTWISE_IMPL_H
#define DSV32_ELEMENTWISE_IMPL_H

#include "kernels/backend_impl.h"
#include "kernels/elementwise.h"

typedef struct {
	void *y; dsv32_dtype yt;
	const void *a; dsv32_dtype at;
	const void *b; dsv32_dtype bt;
	int64_t n;                  /* elements of y */
	int64_t mid, inner, b_outer; /* add_bcast index map (plain add: mid 1, inner n, b_outer 1) */
	float c;                    /* scale */
} dsv32_ew_args;
typedef struct {
	void *y; dsv32_dtype yt;
	const void *x; dsv32_dtype xt;
	int64_t rows, dx, dy, x_off, y_off, n;
} dsv32_copy_cols_args;
void dsv32_add_cpu(const dsv32_ew_args *a);
void dsv32_scale_cpu(const dsv32_ew_args *a);
void dsv32_cast_cpu(const dsv32_ew_args *a);
void dsv32_copy_cols_cpu(const dsv32_copy_cols_args *a);
void dsv32_embedding_cpu(void *y, dsv32_dtype yt, const void *table, dsv32_dtype tt,
			 const int64_t *ids, int64_t N, int64_t D);
dsv32_status dsv32_add_cuda(dsv32_backend *be, const dsv32_ew_args *a, dsv32_error *err);
dsv32_status dsv32_scale_cuda(dsv32_backend *be, const dsv32_ew_args *a, dsv32_error *err);
dsv32_status dsv32_cast_cuda(dsv32_backend *be, const dsv32_ew_args *a, dsv32_error *err);
dsv32_status dsv32_copy_cols_cuda(dsv32_backend *be, const dsv32_copy_cols_args *a,
				  dsv32_error *err);
dsv32_status dsv32_embedding_cuda(dsv32_backend *be, void *y, dsv32_dtype yt, const void *table,
				  dsv32_dtype tt, const int64_t *ids, int64_t N, int64_t D,
				  dsv32_error *err);

#endif
