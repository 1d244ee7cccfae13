/* hadamard.c: argument checks and dispatch for the Hadamard transform (hadamard.h). */
#include "kernels/hadamard_impl.h"
#include "core/config.h"

_Static_assert(DSV32_HADAMARD_MAX_DIM == DSV32_MAX_INDEX_HEAD_DIM,
	       "config validation's index_head_dim limit is the Hadamard kernel's");

dsv32_status dsv32_hadamard(dsv32_backend *be, dsv32_tensor *y, const dsv32_tensor *x,
			    dsv32_error *err)
{
	const char *op = "hadamard";
	DSV32_TRY(dsv32_ew_check_act(be, y, op, "y", err));
	DSV32_TRY(dsv32_ew_check_act(be, x, op, "x", err));
	DSV32_TRY(dsv32_ew_check_same_shape(y, x, op, "y", "x", err));
	if (dsv32_ew_overlap(y, x) && !(y->data == x->data && y->dtype == x->dtype))
		return DSV32_FAIL(err, DSV32_E_USAGE, "%s: y partially overlaps x", op);
	int64_t d = dsv32_ew_last_dim(x), rows = dsv32_ew_rows(x);
	if (d < 1 || (d & (d - 1)) || d > DSV32_HADAMARD_MAX_DIM)
		return DSV32_FAIL(err, DSV32_E_SHAPE,
				  "%s: last dim %lld, expected a power of two <= %d", op, (long long)d,
				  DSV32_HADAMARD_MAX_DIM);
	float scale = dsv32_hadamard_scale(d);
	if (rows == 0)
		return DSV32_OK;
	if (be->device == DSV32_DEV_CPU) {
		dsv32_hadamard_cpu(y->data, y->dtype, x->data, x->dtype, rows, d, scale);
		return DSV32_OK;
	}
	return DSV32_CUDA_BODY(be, op, err,
			       dsv32_hadamard_cuda(be, y->data, y->dtype, x->data, x->dtype, rows,
						   d, scale, err));
}
