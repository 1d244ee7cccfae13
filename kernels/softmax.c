/* softmax.c: argument checks and dispatch for softmax (softmax.h). */
#include "kernels/softmax_impl.h"

dsv32_status dsv32_softmax(dsv32_backend *be, dsv32_tensor *y, const dsv32_tensor *x,
			   dsv32_error *err)
{
	const char *op = "softmax";
	DSV32_TRY(dsv32_ew_check_act(be, y, op, "y", err));
	DSV32_TRY(dsv32_ew_check_act(be, x, op, "x", err));
	DSV32_TRY(dsv32_ew_check_same_shape(y, x, op, "y", "x", err));
	if (dsv32_ew_overlap(y, x) && !(y->data == x->data && y->dtype == x->dtype))
		return DSV32_FAIL(err, DSV32_E_USAGE, "%s: y partially overlaps x", op);
	int64_t T = dsv32_ew_last_dim(x), rows = dsv32_ew_rows(x);
	if (rows == 0 || T == 0)
		return DSV32_OK;
	if (be->device == DSV32_DEV_CPU) {
		dsv32_softmax_cpu(y->data, y->dtype, x->data, x->dtype, rows, T);
		return DSV32_OK;
	}
	return DSV32_CUDA_BODY(be, op, err,
			       dsv32_softmax_cuda(be, y->data, y->dtype, x->data, x->dtype, rows, T,
						  err));
}
