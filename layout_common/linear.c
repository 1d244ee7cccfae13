/* linear.c: the row view of a Linear's operands (linear.h). */
#include "layout_common/linear.h"

#include "layout_common/scratch.h"

dsv32_status lc_linear_rows(const dsv32_tensor *x, const dsv32_tensor *y, int64_t N,
			    dsv32_tensor *x2, dsv32_tensor *y2, dsv32_error *err)
{
	int64_t K = x->shape[x->ndim - 1];
	int64_t M = K ? dsv32_tensor_numel(x) / K : 0;
	if (dsv32_tensor_numel(y) != M * N)
		return DSV32_FAIL(err, DSV32_E_SHAPE, "linear: %lld rows of %lld outputs expected",
				  (long long)M, (long long)N);
	*x2 = lc_view(x, 0, 2, LC_SHAPE(M, K));
	*y2 = lc_view(y, 0, 2, LC_SHAPE(M, N));
	return DSV32_OK;
}
