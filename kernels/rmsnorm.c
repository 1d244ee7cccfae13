/* rmsnorm.c: argument checks and dispatch for the RMSNorm family (rmsnorm.h). */
#include "kernels/rmsnorm_impl.h"

static dsv32_status check_w(dsv32_backend *be, const char *op, const dsv32_tensor *w, int64_t dim,
			    bool bf16_ok, dsv32_error *err)
{
	DSV32_TRY(dsv32_ew_check_device(be, w, op, "w", err));
	if (w->dtype != DSV32_F32 && !(bf16_ok && w->dtype == DSV32_BF16))
		return DSV32_FAIL(err, DSV32_E_DTYPE, "%s: w dtype %s, expected %s", op,
				  dsv32_dtype_name(w->dtype), bf16_ok ? "BF16 or F32" : "F32");
	if (dsv32_tensor_numel(w) != dim || dsv32_ew_last_dim(w) != dim)
		return DSV32_FAIL(err, DSV32_E_SHAPE, "%s: w has %lld elements, expected [%lld]", op,
				  (long long)dsv32_tensor_numel(w), (long long)dim);
	return DSV32_OK;
}

static dsv32_status run(dsv32_backend *be, const dsv32_rmsnorm_args *a, const char *op,
			dsv32_error *err)
{
	if (a->rows == 0)
		return DSV32_OK;
	dsv32_rmsnorm_args b = *a;
	b.lanes = dsv32_torch_lanes(be);
	a = &b;
	if (be->device == DSV32_DEV_CPU) {
		dsv32_rmsnorm_cpu(a);
		return DSV32_OK;
	}
	return DSV32_CUDA_BODY(be, op, err, dsv32_rmsnorm_cuda(be, a, err));
}

/* The planted-bug hook; real runs have no hooks. */
static bool planted(const dsv32_backend *be)
{
	return be->test_hooks && be->test_hooks->rmsnorm_no_final_round;
}

static dsv32_status check_xy(dsv32_backend *be, const char *op, const dsv32_tensor *y,
			     const dsv32_tensor *x, dsv32_error *err)
{
	DSV32_TRY(dsv32_ew_check_act(be, y, op, "y", err));
	DSV32_TRY(dsv32_ew_check_act(be, x, op, "x", err));
	DSV32_TRY(dsv32_ew_check_same_shape(y, x, op, "y", "x", err));
	if (dsv32_ew_last_dim(x) < 1)
		return DSV32_FAIL(err, DSV32_E_SHAPE, "%s: x has an empty last dim", op);
	if (dsv32_ew_overlap(y, x) && !(y->data == x->data && y->dtype == x->dtype))
		return DSV32_FAIL(err, DSV32_E_USAGE, "%s: y partially overlaps x", op);
	return DSV32_OK;
}

dsv32_status dsv32_rmsnorm(dsv32_backend *be, dsv32_tensor *y, const dsv32_tensor *x,
			   const dsv32_tensor *w, double eps, dsv32_error *err)
{
	const char *op = "rmsnorm";
	DSV32_TRY(check_xy(be, op, y, x, err));
	int64_t dim = dsv32_ew_last_dim(x);
	DSV32_TRY(check_w(be, op, w, dim, false, err));
	dsv32_rmsnorm_args a = {.mode = DSV32_RMSNORM_REF, .y = y->data, .yt = y->dtype,
				.x = x->data, .xt = x->dtype, .w = w->data, .wt = w->dtype,
				.rows = dsv32_ew_rows(x), .dim = dim, .eps = (float)eps,
				.planted = planted(be)};
	return run(be, &a, op, err);
}

dsv32_status dsv32_rmsnorm_add(dsv32_backend *be, dsv32_tensor *y, dsv32_tensor *res_out,
			       const dsv32_tensor *x, const dsv32_tensor *res, const dsv32_tensor *w,
			       double eps, dsv32_error *err)
{
	const char *op = "rmsnorm_add";
	DSV32_TRY(check_xy(be, op, y, x, err));
	DSV32_TRY(dsv32_ew_check_act(be, res_out, op, "res_out", err));
	DSV32_TRY(dsv32_ew_check_act(be, res, op, "res", err));
	DSV32_TRY(dsv32_ew_check_same_shape(res, x, op, "res", "x", err));
	DSV32_TRY(dsv32_ew_check_same_shape(res_out, x, op, "res_out", "x", err));
	if (dsv32_ew_overlap(y, res_out))
		return DSV32_FAIL(err, DSV32_E_USAGE, "%s: y and res_out share storage", op);
	if (dsv32_ew_overlap(y, res) && !(y->data == res->data && y->dtype == res->dtype))
		return DSV32_FAIL(err, DSV32_E_USAGE, "%s: y partially overlaps res", op);
	if (dsv32_ew_overlap(res_out, res) &&
	    !(res_out->data == res->data && res_out->dtype == res->dtype))
		return DSV32_FAIL(err, DSV32_E_USAGE, "%s: res_out partially overlaps res", op);
	if (dsv32_ew_overlap(res_out, x) && !(res_out->data == x->data && res_out->dtype == x->dtype))
		return DSV32_FAIL(err, DSV32_E_USAGE, "%s: res_out partially overlaps x", op);
	int64_t dim = dsv32_ew_last_dim(x);
	DSV32_TRY(check_w(be, op, w, dim, false, err));
	dsv32_rmsnorm_args a = {.mode = DSV32_RMSNORM_REF_ADD, .y = y->data, .yt = y->dtype,
				.res_out = res_out->data, .rt = res_out->dtype, .x = x->data,
				.xt = x->dtype, .res = res->data, .rest = res->dtype, .w = w->data,
				.wt = w->dtype, .rows = dsv32_ew_rows(x), .dim = dim,
				.eps = (float)eps,
				.planted = planted(be)};
	return run(be, &a, op, err);
}

dsv32_status dsv32_rmsnorm_hf(dsv32_backend *be, dsv32_tensor *y, const dsv32_tensor *x,
			      const dsv32_tensor *w, double eps, dsv32_error *err)
{
	const char *op = "rmsnorm_hf";
	DSV32_TRY(check_xy(be, op, y, x, err));
	int64_t dim = dsv32_ew_last_dim(x);
	DSV32_TRY(check_w(be, op, w, dim, true, err));
	dsv32_rmsnorm_args a = {.mode = DSV32_RMSNORM_HF, .y = y->data, .yt = y->dtype,
				.x = x->data, .xt = x->dtype, .w = w->data, .wt = w->dtype,
				.rows = dsv32_ew_rows(x), .dim = dim, .eps = (float)eps};
	return run(be, &a, op, err);
}
