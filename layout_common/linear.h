/* linear.h: the row view both layouts' Linear takes of its operands (ref_linear, and hf_linear
 * on the act-quant knob's fp8 path), so that a GEMM sees x [..., K] and y [..., N] as
 * x2 [M, K] and y2 [M, N] with every leading dim flattened to rows. */
#ifndef DSV32_LC_LINEAR_H
#define DSV32_LC_LINEAR_H

#include "kernels/backend.h"

/* The views for a weight of N outputs; DSV32_E_SHAPE unless y holds M·N elements. */
dsv32_status lc_linear_rows(const dsv32_tensor *x, const dsv32_tensor *y, int64_t N,
			    dsv32_tensor *x2, dsv32_tensor *y2, dsv32_error *err);

#endif
