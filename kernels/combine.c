/* combine.c: argument checks and dispatch of the broadcast multiply and the MoE combine ops
 * (combine.h). */
#include "kernels/combine_impl.h"

#include <stdlib.h>
#include <string.h>

#include "kernels/elementwise.h"


/* Element strides of t broadcast to y's shape (NumPy rules), 0 along broadcast dims. */
static dsv32_status bcast_strides(const dsv32_tensor *t, const dsv32_tensor *y, int64_t *st,
				  const char *name, dsv32_error *err)
{
	if (t->ndim > y->ndim)
		return DSV32_FAIL(err, DSV32_E_SHAPE, "mul_bcast: %s has %d dims, y only %d", name,
				  t->ndim, y->ndim);
	int64_t s = 1;
	for (int i = y->ndim - 1; i >= 0; i--) {
		int j = i - (y->ndim - t->ndim);
		int64_t d = j >= 0 ? t->shape[j] : 1;
		if (d != 1 && d != y->shape[i]) {
			char a[96], b[96];
			return DSV32_FAIL(err, DSV32_E_SHAPE,
					  "mul_bcast: %s shape %s does not broadcast to y shape %s",
					  name, dsv32_shape_str(a, sizeof a, t->ndim, t->shape),
					  dsv32_shape_str(b, sizeof b, y->ndim, y->shape));
		}
		st[i] = d == 1 ? 0 : s;
		s *= d;
	}
	return DSV32_OK;
}

dsv32_status dsv32_mul_bcast(dsv32_backend *be, dsv32_tensor *y, const dsv32_tensor *a,
			     const dsv32_tensor *b, dsv32_error *err)
{
	const char *op = "mul_bcast";
	DSV32_TRY(dsv32_ew_check_act(be, y, op, "y", err));
	DSV32_TRY(dsv32_ew_check_act(be, a, op, "a", err));
	DSV32_TRY(dsv32_ew_check_act(be, b, op, "b", err));
	dsv32_mul_bcast_args g = {.y = y->data, .yt = y->dtype, .a = a->data, .at = a->dtype,
				  .b = b->data, .bt = b->dtype, .ndim = y->ndim,
				  .n = dsv32_tensor_numel(y)};
	memcpy(g.shape, y->shape, sizeof g.shape);
	DSV32_TRY(bcast_strides(a, y, g.sa, "a", err));
	DSV32_TRY(bcast_strides(b, y, g.sb, "b", err));
	if ((dsv32_ew_overlap(y, a) && (y->data != a->data || dsv32_tensor_numel(a) != g.n ||
					 y->dtype != a->dtype)) ||
	    (dsv32_ew_overlap(y, b) && (y->data != b->data || dsv32_tensor_numel(b) != g.n ||
					 y->dtype != b->dtype)))
		return DSV32_FAIL(err, DSV32_E_USAGE,
				  "mul_bcast: y overlaps an input that is not the same tensor");
	if (g.n == 0)
		return DSV32_OK;
	if (be->device != DSV32_DEV_CPU)
		return DSV32_CUDA_BODY(be, op, err, dsv32_mul_bcast_cuda(be, &g, err));
	dsv32_mul_bcast_cpu(&g);
	return DSV32_OK;
}

/* Host copy of an I64 index tensor (the tensor's own data on the CPU). *tmp is set when a
 * buffer was allocated. */
static dsv32_status host_i64(dsv32_backend *be, const dsv32_tensor *t, const int64_t **h,
			     int64_t **tmp, dsv32_error *err)
{
	*tmp = NULL;
	if (be->device == DSV32_DEV_CPU) {
		*h = t->data;
		return DSV32_OK;
	}
	if (!dsv32_op_supported(be, DSV32_OP_COMBINE))
		return dsv32_op_unsupported(be, "combine", err);
	size_t nb = dsv32_tensor_nbytes(t);
	*tmp = malloc(nb ? nb : 1);
	if (!*tmp)
		return DSV32_FAIL(err, DSV32_E_NOMEM, "combine: %zu bytes of indices", nb);
	dsv32_status rc = dsv32_backend_download(be, *tmp, t->data, nb, err);
	if (rc != DSV32_OK) {
		free(*tmp);
		*tmp = NULL;
		return rc;
	}
	*h = *tmp;
	return DSV32_OK;
}

static dsv32_status index_combine(dsv32_backend *be, dsv32_tensor *y, const dsv32_tensor *x,
				  const dsv32_tensor *rows, const dsv32_tensor *w,
				  dsv32_combine_kind kind, const char *op, dsv32_error *err)
{
	if (kind == DSV32_COMBINE_REF && y->dtype != DSV32_F32)
		return DSV32_FAIL(err, DSV32_E_DTYPE, "%s: y dtype %s, expected F32", op,
				  dsv32_dtype_name(y->dtype));
	DSV32_TRY(dsv32_ew_check_act(be, y, op, "y", err));
	DSV32_TRY(dsv32_ew_check_act(be, x, op, "x", err));
	DSV32_TRY(dsv32_ew_check_device(be, rows, op, "rows", err));
	DSV32_TRY(dsv32_ew_check_device(be, w, op, "w", err));
	if (rows->dtype != DSV32_I64 || w->dtype != DSV32_F32)
		return DSV32_FAIL(err, DSV32_E_DTYPE, "%s: rows %s / w %s, expected I64 / F32", op,
				  dsv32_dtype_name(rows->dtype), dsv32_dtype_name(w->dtype));
	int64_t D = dsv32_ew_last_dim(y), T = dsv32_ew_rows(y);
	int64_t n = dsv32_tensor_numel(rows);
	if (dsv32_ew_last_dim(x) != D || dsv32_tensor_numel(x) != n * D ||
	    dsv32_tensor_numel(w) != n)
		return DSV32_FAIL(err, DSV32_E_SHAPE,
				  "%s: x must be [%lld, %lld] and w [%lld] for %lld rows (x has %lld "
				  "elements, last dim %lld; w %lld)", op, (long long)n, (long long)D,
				  (long long)n, (long long)n, (long long)dsv32_tensor_numel(x),
				  (long long)dsv32_ew_last_dim(x), (long long)dsv32_tensor_numel(w));
	if (dsv32_ew_overlap(y, x) || dsv32_ew_overlap(y, rows) || dsv32_ew_overlap(y, w))
		return DSV32_FAIL(err, DSV32_E_USAGE, "%s: y overlaps an input", op);
	if (n == 0 || D == 0)
		return DSV32_OK;
	const int64_t *rh;
	int64_t *tmp;
	DSV32_TRY(host_i64(be, rows, &rh, &tmp, err));
	dsv32_status rc = DSV32_OK;
	/* range check, and distinctness on the CPU (a mark per row; cheap next to the GEMMs) */
	unsigned char *seen = be->device == DSV32_DEV_CPU ? dsv32_backend_host_get(be, (size_t)T + 1)
							  : NULL;
	if (be->device == DSV32_DEV_CPU && !seen)
		rc = DSV32_FAIL(err, DSV32_E_NOMEM, "%s: %lld row marks", op, (long long)T);
	if (seen)
		memset(seen, 0, (size_t)T + 1);
	for (int64_t i = 0; i < n && rc == DSV32_OK; i++) {
		if (rh[i] < 0 || rh[i] >= T)
			rc = DSV32_FAIL(err, DSV32_E_USAGE, "%s: rows[%lld] = %lld outside [0, %lld)",
					op, (long long)i, (long long)rh[i], (long long)T);
		else if (seen && seen[rh[i]]++)
			rc = DSV32_FAIL(err, DSV32_E_USAGE,
					"%s: rows[%lld] = %lld repeats (rows of one call must be "
					"distinct)", op, (long long)i, (long long)rh[i]);
	}
	dsv32_backend_host_put(be, seen, (size_t)T + 1);
	free(tmp);
	if (rc != DSV32_OK)
		return rc;
	dsv32_index_combine_args g = {.y = y->data, .yt = y->dtype, .x = x->data, .xt = x->dtype,
				      .rows = rows->data, .w = w->data, .n = n, .D = D,
				      .kind = kind};
	if (be->device != DSV32_DEV_CPU)
		return DSV32_CUDA_BODY(be, op, err, dsv32_index_combine_cuda(be, &g, err));
	dsv32_index_combine_cpu(&g);
	return DSV32_OK;
}

dsv32_status dsv32_moe_combine_ref(dsv32_backend *be, dsv32_tensor *y, const dsv32_tensor *x,
				   const dsv32_tensor *rows, const dsv32_tensor *w,
				   dsv32_error *err)
{
	return index_combine(be, y, x, rows, w, DSV32_COMBINE_REF, "moe_combine_ref", err);
}

dsv32_status dsv32_moe_combine_hf_eager(dsv32_backend *be, dsv32_tensor *out,
					const dsv32_tensor *x, const dsv32_tensor *rows,
					const dsv32_tensor *w, dsv32_error *err)
{
	return index_combine(be, out, x, rows, w, DSV32_COMBINE_HF_EAGER, "moe_combine_hf_eager",
			     err);
}

dsv32_status dsv32_moe_combine_hf_grouped(dsv32_backend *be, dsv32_tensor *out,
					  const dsv32_tensor *x, const dsv32_tensor *src,
					  const dsv32_tensor *w, int64_t K, dsv32_error *err)
{
	const char *op = "moe_combine_hf_grouped";
	DSV32_TRY(dsv32_ew_check_act(be, out, op, "out", err));
	DSV32_TRY(dsv32_ew_check_act(be, x, op, "x", err));
	DSV32_TRY(dsv32_ew_check_device(be, w, op, "w", err));
	if (src)
		DSV32_TRY(dsv32_ew_check_device(be, src, op, "src", err));
	if (w->dtype != DSV32_F32 || (src && src->dtype != DSV32_I64))
		return DSV32_FAIL(err, DSV32_E_DTYPE, "%s: w %s / src %s, expected F32 / I64", op,
				  dsv32_dtype_name(w->dtype),
				  src ? dsv32_dtype_name(src->dtype) : "none");
	int64_t D = dsv32_ew_last_dim(out), T = dsv32_ew_rows(out);
	int64_t nx = dsv32_ew_rows(x);
	if (K < 1 || dsv32_ew_last_dim(x) != D || dsv32_tensor_numel(w) != T * K ||
	    (src ? dsv32_tensor_numel(src) != T * K : nx != T * K))
		return DSV32_FAIL(err, DSV32_E_SHAPE,
				  "%s: out [%lld, %lld], K %lld: expected w [%lld, %lld], x [., %lld]%s "
				  "(x has %lld rows of %lld, w %lld elements)", op, (long long)T,
				  (long long)D, (long long)K, (long long)T, (long long)K,
				  (long long)D, src ? " and src [T*K]" : " with T*K rows",
				  (long long)nx, (long long)dsv32_ew_last_dim(x),
				  (long long)dsv32_tensor_numel(w));
	if (dsv32_ew_overlap(out, x) || dsv32_ew_overlap(out, w) || (src && dsv32_ew_overlap(out, src)))
		return DSV32_FAIL(err, DSV32_E_USAGE, "%s: out overlaps an input", op);
	if (T == 0 || D == 0)
		return DSV32_OK;
	if (src) {
		const int64_t *sh;
		int64_t *tmp;
		DSV32_TRY(host_i64(be, src, &sh, &tmp, err));
		dsv32_status rc = DSV32_OK;
		for (int64_t i = 0; i < T * K && rc == DSV32_OK; i++)
			if (sh[i] < 0 || sh[i] >= nx)
				rc = DSV32_FAIL(err, DSV32_E_USAGE,
						"%s: src[%lld] = %lld outside [0, %lld)", op,
						(long long)i, (long long)sh[i], (long long)nx);
		free(tmp);
		if (rc != DSV32_OK)
			return rc;
	}
	dsv32_slot_combine_args g = {.out = out->data, .ot = out->dtype, .x = x->data,
				     .xt = x->dtype, .src = src ? src->data : NULL, .w = w->data,
				     .T = T, .K = K, .D = D};
	if (be->device != DSV32_DEV_CPU)
		return DSV32_CUDA_BODY(be, op, err, dsv32_slot_combine_cuda(be, &g, err));
	dsv32_slot_combine_cpu(&g);
	return DSV32_OK;
}
