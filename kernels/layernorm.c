/* layernorm.c: argument checks and dispatch for LayerNorm (layernorm.h). */
#include "kernels/layernorm_impl.h"

dsv32_status dsv32_layernorm(dsv32_backend *be, dsv32_tensor *y, const dsv32_tensor *x,
			     const dsv32_tensor *w, const dsv32_tensor *b, double eps,
			     dsv32_error *err)
{
	const char *op = "layernorm";
	DSV32_TRY(dsv32_ew_check_act(be, y, op, "y", err));
	DSV32_TRY(dsv32_ew_check_act(be, x, op, "x", err));
	DSV32_TRY(dsv32_ew_check_act(be, w, op, "w", err));
	DSV32_TRY(dsv32_ew_check_act(be, b, op, "b", err));
	DSV32_TRY(dsv32_ew_check_same_shape(y, x, op, "y", "x", err));
	if (dsv32_ew_overlap(y, x) && !(y->data == x->data && y->dtype == x->dtype))
		return DSV32_FAIL(err, DSV32_E_USAGE, "%s: y partially overlaps x", op);
	int64_t dim = dsv32_ew_last_dim(x);
	if (dim < 1)
		return DSV32_FAIL(err, DSV32_E_SHAPE, "%s: x has an empty last dim", op);
	if (w->dtype != b->dtype)
		return DSV32_FAIL(err, DSV32_E_DTYPE, "%s: w is %s but b is %s, expected one dtype", op,
				  dsv32_dtype_name(w->dtype), dsv32_dtype_name(b->dtype));
	if (dsv32_tensor_numel(w) != dim || dsv32_tensor_numel(b) != dim)
		return DSV32_FAIL(err, DSV32_E_SHAPE, "%s: w/b have %lld/%lld elements, expected %lld",
				  op, (long long)dsv32_tensor_numel(w), (long long)dsv32_tensor_numel(b),
				  (long long)dim);
	dsv32_layernorm_args a = {.y = y->data, .yt = y->dtype, .x = x->data, .xt = x->dtype,
				  .w = w->data, .b = b->data, .wt = w->dtype,
				  .rows = dsv32_ew_rows(x), .dim = dim, .eps = (float)eps,
				  .lanes = dsv32_torch_lanes(be),
				  .torch_major = dsv32_torch_major(be)};
	if (a.rows == 0)
		return DSV32_OK;
	if (be->device == DSV32_DEV_CPU) {
		dsv32_layernorm_cpu(&a);
		return DSV32_OK;
	}
	return DSV32_CUDA_BODY(be, op, err, dsv32_layernorm_cuda(be, &a, err));
}
