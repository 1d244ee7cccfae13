/* elementwise.c: argument checks and dispatch for casts, adds, scale, embedding and column
 * copies (elementwise.h), and the check helpers the k2 op families share. */
#include "kernels/elementwise_impl.h"

#include <stdlib.h>


dsv32_status dsv32_ew_check_device(const dsv32_backend *be, const dsv32_tensor *t,
				   const char *op, const char *name, dsv32_error *err)
{
	if (!t || (!t->data && dsv32_tensor_numel(t) > 0))
		return DSV32_FAIL(err, DSV32_E_USAGE, "%s: %s has no data", op, name);
	if (t->device != be->device)
		return DSV32_FAIL(err, DSV32_E_USAGE, "%s: %s lives on device %d, backend is %d", op,
				  name, (int)t->device, (int)be->device);
	return DSV32_OK;
}

dsv32_status dsv32_ew_check_act(const dsv32_backend *be, const dsv32_tensor *t, const char *op,
				const char *name, dsv32_error *err)
{
	DSV32_TRY(dsv32_ew_check_device(be, t, op, name, err));
	if (t->dtype != DSV32_BF16 && t->dtype != DSV32_F32)
		return DSV32_FAIL(err, DSV32_E_DTYPE, "%s: %s dtype %s, expected BF16 or F32", op, name,
				  dsv32_dtype_name(t->dtype));
	if (t->ndim < 1)
		return DSV32_FAIL(err, DSV32_E_SHAPE, "%s: %s is a scalar, expected ndim >= 1", op,
				  name);
	return DSV32_OK;
}

int64_t dsv32_ew_last_dim(const dsv32_tensor *t)
{
	return t->ndim > 0 ? t->shape[t->ndim - 1] : 0;
}

int64_t dsv32_ew_rows(const dsv32_tensor *t)
{
	int64_t d = dsv32_ew_last_dim(t);
	return d > 0 ? dsv32_tensor_numel(t) / d : 0;
}

dsv32_status dsv32_ew_check_same_shape(const dsv32_tensor *t, const dsv32_tensor *ref,
				       const char *op, const char *name, const char *ref_name,
				       dsv32_error *err)
{
	if (dsv32_tensor_same_shape(t, ref))
		return DSV32_OK;
	char a[96], b[96];
	return DSV32_FAIL(err, DSV32_E_SHAPE, "%s: %s shape %s, expected %s (the shape of %s)", op,
			  name, dsv32_shape_str(a, sizeof a, t->ndim, t->shape),
			  dsv32_shape_str(b, sizeof b, ref->ndim, ref->shape), ref_name);
}

bool dsv32_ew_overlap(const dsv32_tensor *a, const dsv32_tensor *b)
{
	size_t na = dsv32_tensor_nbytes(a), nb = dsv32_tensor_nbytes(b);
	if (!na || !nb || !a->data || !b->data)
		return false;
	const char *pa = a->data, *pb = b->data;
	return pa < pb + nb && pb < pa + na;
}

dsv32_status dsv32_cast(dsv32_backend *be, dsv32_tensor *y, const dsv32_tensor *x,
			dsv32_error *err)
{
	const char *op = "cast";
	DSV32_TRY(dsv32_ew_check_device(be, y, op, "y", err));
	DSV32_TRY(dsv32_ew_check_device(be, x, op, "x", err));
	if (!dsv32_dtype_is_float(x->dtype) || !dsv32_dtype_is_float(y->dtype))
		return DSV32_FAIL(err, DSV32_E_DTYPE, "%s: %s -> %s, expected float dtypes", op,
				  dsv32_dtype_name(x->dtype), dsv32_dtype_name(y->dtype));
	if (dsv32_tensor_numel(x) != dsv32_tensor_numel(y))
		return DSV32_FAIL(err, DSV32_E_SHAPE, "%s: y has %lld elements, x %lld", op,
				  (long long)dsv32_tensor_numel(y), (long long)dsv32_tensor_numel(x));
	if (dsv32_ew_overlap(y, x) && !(y->data == x->data && y->dtype == x->dtype))
		return DSV32_FAIL(err, DSV32_E_USAGE, "%s: y overlaps x", op);
	dsv32_ew_args a = {.y = y->data, .yt = y->dtype, .a = x->data, .at = x->dtype,
			   .n = dsv32_tensor_numel(y)};
	if (be->device == DSV32_DEV_CPU) {
		if (x->dtype == DSV32_F64 && y->dtype != DSV32_F32 && y->dtype != DSV32_F64)
			return DSV32_FAIL(err, DSV32_E_UNSUPPORTED,
					  "%s: F64 -> %s would round twice; not supported", op,
					  dsv32_dtype_name(y->dtype));
		dsv32_cast_cpu(&a);
		return DSV32_OK;
	}
	if (x->dtype == DSV32_F64 || y->dtype == DSV32_F64)
		return DSV32_FAIL(err, DSV32_E_UNSUPPORTED, "%s: F64 is not supported on CUDA", op);
	return DSV32_CUDA_BODY(be, op, err, dsv32_cast_cuda(be, &a, err));
}

static dsv32_status check_binary(dsv32_backend *be, const char *op, const dsv32_tensor *y,
				 const dsv32_tensor *a, const dsv32_tensor *b, dsv32_error *err)
{
	DSV32_TRY(dsv32_ew_check_act(be, y, op, "y", err));
	DSV32_TRY(dsv32_ew_check_act(be, a, op, "a", err));
	DSV32_TRY(dsv32_ew_check_act(be, b, op, "b", err));
	if (dsv32_tensor_numel(y) != dsv32_tensor_numel(a))
		return DSV32_FAIL(err, DSV32_E_SHAPE, "%s: y has %lld elements, a %lld", op,
				  (long long)dsv32_tensor_numel(y), (long long)dsv32_tensor_numel(a));
	if (dsv32_ew_overlap(y, a) && !(y->data == a->data && y->dtype == a->dtype))
		return DSV32_FAIL(err, DSV32_E_USAGE, "%s: y partially overlaps a", op);
	if (dsv32_ew_overlap(y, b) && !(y->data == b->data && y->data == a->data))
		return DSV32_FAIL(err, DSV32_E_USAGE, "%s: y overlaps b", op);
	return DSV32_OK;
}

dsv32_status dsv32_add_bcast(dsv32_backend *be, dsv32_tensor *y, const dsv32_tensor *a,
			     const dsv32_tensor *b, int64_t mid, int64_t inner, dsv32_error *err)
{
	const char *op = "add";
	DSV32_TRY(check_binary(be, op, y, a, b, err));
	int64_t n = dsv32_tensor_numel(a), nb = dsv32_tensor_numel(b);
	if (mid < 1 || inner < 1 || n % (mid * inner) || nb % inner)
		return DSV32_FAIL(err, DSV32_E_SHAPE,
				  "%s: a (%lld elements) / b (%lld) do not split as [outer, %lld, %lld]"
				  " / [b_outer, %lld]", op, (long long)n, (long long)nb,
				  (long long)mid, (long long)inner, (long long)inner);
	int64_t outer = n / (mid * inner), b_outer = nb / inner;
	if (b_outer < 1 || outer % b_outer)
		return DSV32_FAIL(err, DSV32_E_SHAPE, "%s: outer %lld is not a multiple of b's %lld",
				  op, (long long)outer, (long long)b_outer);
	dsv32_ew_args arg = {.y = y->data, .yt = y->dtype, .a = a->data, .at = a->dtype,
			     .b = b->data, .bt = b->dtype, .n = n, .mid = mid, .inner = inner,
			     .b_outer = b_outer};
	if (n == 0)
		return DSV32_OK;
	if (be->device == DSV32_DEV_CPU) {
		dsv32_add_cpu(&arg);
		return DSV32_OK;
	}
	return DSV32_CUDA_BODY(be, op, err, dsv32_add_cuda(be, &arg, err));
}

dsv32_status dsv32_add(dsv32_backend *be, dsv32_tensor *y, const dsv32_tensor *a,
		       const dsv32_tensor *b, dsv32_error *err)
{
	int64_t n = dsv32_tensor_numel(a);
	if (b && dsv32_tensor_numel(b) != n)
		return DSV32_FAIL(err, DSV32_E_SHAPE, "add: b has %lld elements, a %lld",
				  (long long)dsv32_tensor_numel(b), (long long)n);
	if (n == 0)
		return DSV32_OK;
	return dsv32_add_bcast(be, y, a, b, 1, n, err);
}

dsv32_status dsv32_scale(dsv32_backend *be, dsv32_tensor *y, const dsv32_tensor *x, float c,
			 dsv32_error *err)
{
	const char *op = "scale";
	DSV32_TRY(dsv32_ew_check_act(be, y, op, "y", err));
	DSV32_TRY(dsv32_ew_check_act(be, x, op, "x", err));
	if (dsv32_tensor_numel(y) != dsv32_tensor_numel(x))
		return DSV32_FAIL(err, DSV32_E_SHAPE, "%s: y has %lld elements, x %lld", op,
				  (long long)dsv32_tensor_numel(y), (long long)dsv32_tensor_numel(x));
	if (dsv32_ew_overlap(y, x) && !(y->data == x->data && y->dtype == x->dtype))
		return DSV32_FAIL(err, DSV32_E_USAGE, "%s: y partially overlaps x", op);
	dsv32_ew_args a = {.y = y->data, .yt = y->dtype, .a = x->data, .at = x->dtype,
			   .n = dsv32_tensor_numel(y), .c = c};
	if (a.n == 0)
		return DSV32_OK;
	if (be->device == DSV32_DEV_CPU) {
		dsv32_scale_cpu(&a);
		return DSV32_OK;
	}
	return DSV32_CUDA_BODY(be, op, err, dsv32_scale_cuda(be, &a, err));
}

static dsv32_status check_ids(const int64_t *ids, int64_t N, int64_t V, dsv32_error *err)
{
	for (int64_t i = 0; i < N; i++)
		if (ids[i] < 0 || ids[i] >= V)
			return DSV32_FAIL(err, DSV32_E_USAGE,
					  "embedding: token id %lld at position %lld is outside the "
					  "vocabulary [0, %lld)", (long long)ids[i], (long long)i,
					  (long long)V);
	return DSV32_OK;
}

dsv32_status dsv32_embedding(dsv32_backend *be, dsv32_tensor *y, const dsv32_tensor *table,
			     const dsv32_tensor *ids, dsv32_error *err)
{
	const char *op = "embedding";
	DSV32_TRY(dsv32_ew_check_act(be, y, op, "y", err));
	DSV32_TRY(dsv32_ew_check_act(be, table, op, "table", err));
	DSV32_TRY(dsv32_ew_check_device(be, ids, op, "ids", err));
	if (ids->dtype != DSV32_I64)
		return DSV32_FAIL(err, DSV32_E_DTYPE, "%s: ids dtype %s, expected I64", op,
				  dsv32_dtype_name(ids->dtype));
	if (table->ndim != 2)
		return DSV32_FAIL(err, DSV32_E_SHAPE, "%s: table has %d dims, expected [V, D]", op,
				  table->ndim);
	int64_t V = table->shape[0], D = table->shape[1], N = dsv32_tensor_numel(ids);
	if (dsv32_ew_last_dim(y) != D || dsv32_tensor_numel(y) != N * D)
		return DSV32_FAIL(err, DSV32_E_SHAPE, "%s: y has %lld elements with last dim %lld, "
				  "expected %lld x %lld", op, (long long)dsv32_tensor_numel(y),
				  (long long)dsv32_ew_last_dim(y), (long long)N, (long long)D);
	if (N == 0)
		return DSV32_OK;
	if (be->device == DSV32_DEV_CPU) {
		DSV32_TRY(check_ids(ids->data, N, V, err));
		dsv32_embedding_cpu(y->data, y->dtype, table->data, table->dtype, ids->data, N, D);
		return DSV32_OK;
	}
	/* ids are checked on the host before the body: they index the table */
	if (!dsv32_op_supported(be, DSV32_OP_ELEMENTWISE))
		return dsv32_op_unsupported(be, op, err);
	int64_t *host = malloc((size_t)N * sizeof *host);
	if (!host)
		return DSV32_FAIL(err, DSV32_E_NOMEM, "%s: %lld ids", op, (long long)N);
	dsv32_status rc = dsv32_backend_download(be, host, ids->data, (size_t)N * sizeof *host, err);
	if (rc == DSV32_OK)
		rc = check_ids(host, N, V, err);
	free(host);
	if (rc != DSV32_OK)
		return rc;
	return DSV32_CUDA_BODY(be, op, err,
			       dsv32_embedding_cuda(be, y->data, y->dtype, table->data, table->dtype,
						    ids->data, N, D, err));
}

dsv32_status dsv32_copy_cols(dsv32_backend *be, dsv32_tensor *y, const dsv32_tensor *x,
			     int64_t x_off, int64_t y_off, int64_t n, dsv32_error *err)
{
	const char *op = "copy_cols";
	DSV32_TRY(dsv32_ew_check_act(be, y, op, "y", err));
	DSV32_TRY(dsv32_ew_check_act(be, x, op, "x", err));
	int64_t dx = dsv32_ew_last_dim(x), dy = dsv32_ew_last_dim(y);
	int64_t rows = dsv32_ew_rows(x);
	if (dsv32_ew_rows(y) != rows)
		return DSV32_FAIL(err, DSV32_E_SHAPE, "%s: y has %lld rows, x %lld", op,
				  (long long)dsv32_ew_rows(y), (long long)rows);
	if (n < 0 || x_off < 0 || y_off < 0 || x_off + n > dx || y_off + n > dy)
		return DSV32_FAIL(err, DSV32_E_SHAPE,
				  "%s: columns [%lld, %lld) of x (last dim %lld) into [%lld, %lld) of y "
				  "(last dim %lld) are out of range", op, (long long)x_off,
				  (long long)(x_off + n), (long long)dx, (long long)y_off,
				  (long long)(y_off + n), (long long)dy);
	if (dsv32_ew_overlap(y, x))
		return DSV32_FAIL(err, DSV32_E_USAGE, "%s: y and x share storage", op);
	dsv32_copy_cols_args a = {.y = y->data, .yt = y->dtype, .x = x->data, .xt = x->dtype,
				  .rows = rows, .dx = dx, .dy = dy, .x_off = x_off, .y_off = y_off,
				  .n = n};
	if (rows == 0 || n == 0)
		return DSV32_OK;
	if (be->device == DSV32_DEV_CPU) {
		dsv32_copy_cols_cpu(&a);
		return DSV32_OK;
	}
	return DSV32_CUDA_BODY(be, op, err, dsv32_copy_cols_cuda(be, &a, err));
}

dsv32_status dsv32_concat_cols(dsv32_backend *be, dsv32_tensor *y, const dsv32_tensor *a,
			       const dsv32_tensor *b, dsv32_error *err)
{
	int64_t da = dsv32_ew_last_dim(a), db = dsv32_ew_last_dim(b);
	if (dsv32_ew_last_dim(y) != da + db)
		return DSV32_FAIL(err, DSV32_E_SHAPE, "concat_cols: y last dim %lld, expected %lld + %lld",
				  (long long)dsv32_ew_last_dim(y), (long long)da, (long long)db);
	DSV32_TRY(dsv32_copy_cols(be, y, a, 0, 0, da, err));
	return dsv32_copy_cols(be, y, b, 0, da, db, err);
}
