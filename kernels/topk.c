/* topk.c: argument checks and dispatch for dsv32_topk / dsv32_topk_len (contract in topk.h). */
#include "kernels/topk_impl.h"

#include <stdio.h>

static dsv32_status check_out(const dsv32_tensor *o, const dsv32_tensor *x, int64_t k,
			      const char *name, dsv32_error *err)
{
	char a[128], b[128];
	bool ok = o->ndim == x->ndim && o->shape[o->ndim - 1] == k;
	for (int i = 0; ok && i < x->ndim - 1; i++)
		ok = o->shape[i] == x->shape[i];
	if (!ok)
		return DSV32_FAIL(err, DSV32_E_SHAPE, "topk %s: shape %s, expected x's %s with last dim %lld",
				  name, dsv32_shape_str(a, sizeof a, o->ndim, o->shape),
				  dsv32_shape_str(b, sizeof b, x->ndim, x->shape), (long long)k);
	return DSV32_OK;
}

static dsv32_status topk_run(dsv32_backend *be, dsv32_tensor *idx_out, dsv32_tensor *val_out,
			     const dsv32_tensor *x, const dsv32_tensor *lens, int64_t k,
			     dsv32_error *err)
{
	if (x->ndim < 1)
		return DSV32_FAIL(err, DSV32_E_SHAPE, "topk x: rank 0, expected [..., n]");
	if (x->dtype != DSV32_F32 && x->dtype != DSV32_BF16)
		return DSV32_FAIL(err, DSV32_E_DTYPE, "topk x: dtype %s, expected F32 or BF16",
				  dsv32_dtype_name(x->dtype));
	int64_t n = x->shape[x->ndim - 1];
	int64_t rows = n > 0 ? dsv32_tensor_numel(x) / n : 0;
	if (k < 1 || k > n)
		return DSV32_FAIL(err, DSV32_E_USAGE, "topk: k = %lld, expected 1..n = %lld",
				  (long long)k, (long long)n);
	if (n > INT32_MAX)
		return DSV32_FAIL(err, DSV32_E_SHAPE, "topk x: row length %lld exceeds 2^31-1",
				  (long long)n);
	if (idx_out->dtype != DSV32_I64 && idx_out->dtype != DSV32_I32)
		return DSV32_FAIL(err, DSV32_E_DTYPE, "topk idx_out: dtype %s, expected I64 or I32",
				  dsv32_dtype_name(idx_out->dtype));
	DSV32_TRY(check_out(idx_out, x, k, "idx_out", err));
	if (val_out) {
		if (val_out->dtype != DSV32_F32 && val_out->dtype != x->dtype)
			return DSV32_FAIL(err, DSV32_E_DTYPE,
					  "topk val_out: dtype %s, expected F32 or x's %s",
					  dsv32_dtype_name(val_out->dtype), dsv32_dtype_name(x->dtype));
		DSV32_TRY(check_out(val_out, x, k, "val_out", err));
		if (val_out->data == idx_out->data || val_out->data == x->data)
			return DSV32_FAIL(err, DSV32_E_USAGE, "topk val_out aliases idx_out or x");
	}
	if (idx_out->data == x->data)
		return DSV32_FAIL(err, DSV32_E_USAGE, "topk idx_out aliases x");
	if (lens) {
		if (lens->dtype != DSV32_I64 || dsv32_tensor_numel(lens) != rows)
			return DSV32_FAIL(err, DSV32_E_SHAPE,
					  "topk lens: %s with %lld elements, expected I64 with %lld",
					  dsv32_dtype_name(lens->dtype),
					  (long long)dsv32_tensor_numel(lens), (long long)rows);
		if (lens->device != be->device)
			return DSV32_FAIL(err, DSV32_E_USAGE, "topk lens: not on the backend's device");
	}
	if (x->device != be->device || idx_out->device != be->device ||
	    (val_out && val_out->device != be->device))
		return DSV32_FAIL(err, DSV32_E_USAGE, "topk: a tensor is not on the backend's device");
	if (rows == 0)
		return DSV32_OK;
	void *val = val_out ? val_out->data : NULL;
	dsv32_dtype vt = val_out ? val_out->dtype : DSV32_F32;
	const int64_t *lp = lens ? (const int64_t *)lens->data : NULL;
	if (be->device == DSV32_DEV_CPU)
		return dsv32_topk_cpu(idx_out->data, idx_out->dtype, val, vt, x->data, x->dtype, lp,
				      rows, n, k, err);
	return DSV32_CUDA_BODY(be, "topk", err,
			       dsv32_topk_cuda(be, idx_out->data, idx_out->dtype, val, vt, x->data,
					       x->dtype, lp, rows, n, k, err));
}

dsv32_status dsv32_topk(dsv32_backend *be, dsv32_tensor *idx_out, dsv32_tensor *val_out,
			const dsv32_tensor *x, int64_t k, dsv32_error *err)
{
	return topk_run(be, idx_out, val_out, x, NULL, k, err);
}

dsv32_status dsv32_topk_len(dsv32_backend *be, dsv32_tensor *idx_out, dsv32_tensor *val_out,
			    const dsv32_tensor *x, const dsv32_tensor *lens, int64_t k,
			    dsv32_error *err)
{
	if (!lens)
		return DSV32_FAIL(err, DSV32_E_USAGE, "topk_len: lens is NULL");
	return topk_run(be, idx_out, val_out, x, lens, k, err);
}
