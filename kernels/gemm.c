/* gemm.c: argument checks and dispatch of the GEMM family (contract in gemm.h). */
#include "kernels/gemm_impl.h"

#include <stdio.h>

static bool is_act_dtype(dsv32_dtype t)
{
	return t == DSV32_BF16 || t == DSV32_F32;
}

static dsv32_status check_tensor(dsv32_backend *be, const dsv32_tensor *t, const char *name,
				 int min_ndim, dsv32_error *err)
{
	if (!t || (!t->data && dsv32_tensor_numel(t) > 0))
		return DSV32_FAIL(err, DSV32_E_USAGE, "gemm: %s is NULL", name);
	if (!is_act_dtype(t->dtype))
		return DSV32_FAIL(err, DSV32_E_DTYPE, "gemm: %s dtype %s, expected BF16 or F32", name,
				  dsv32_dtype_name(t->dtype));
	if (t->ndim < min_ndim)
		return DSV32_FAIL(err, DSV32_E_SHAPE, "gemm: %s has %d dims, expected >= %d", name,
				  t->ndim, min_ndim);
	if (t->device != be->device)
		return DSV32_FAIL(err, DSV32_E_USAGE, "gemm: %s lives on device %d, backend on %d",
				  name, (int)t->device, (int)be->device);
	return DSV32_OK;
}

static bool overlaps(const dsv32_tensor *a, const dsv32_tensor *b)
{
	const char *pa = a->data, *pb = b->data;
	size_t na = dsv32_tensor_nbytes(a), nb = dsv32_tensor_nbytes(b);
	return na && nb && pa < pb + nb && pb < pa + na;
}

static dsv32_status check_alias(const dsv32_tensor *y, const dsv32_tensor *x,
				const dsv32_tensor *w, dsv32_error *err)
{
	if (overlaps(y, x) || overlaps(y, w))
		return DSV32_FAIL(err, DSV32_E_USAGE, "gemm: y must not alias x or w");
	return DSV32_OK;
}

/* y = x · w^T (trans_w) or x · w, with `nb` leading batch dims shared by x, w, y
 * (nb = 0: x's leading dims are rows and w is 2-D). */
static dsv32_status gemm_tensors(dsv32_backend *be, dsv32_tensor *y, const dsv32_tensor *x,
				 const dsv32_tensor *w, bool trans_w, bool batched, dsv32_error *err)
{
	char b1[96], b2[96], b3[96];
	DSV32_TRY(check_tensor(be, x, "x", batched ? 3 : 1, err));
	DSV32_TRY(check_tensor(be, w, "w", batched ? 3 : 2, err));
	DSV32_TRY(check_tensor(be, y, "y", batched ? 3 : 1, err));
	DSV32_TRY(check_alias(y, x, w, err));
	int64_t K = x->shape[x->ndim - 1];
	int64_t Kw = w->shape[w->ndim - (trans_w ? 1 : 2)];
	int64_t N = w->shape[w->ndim - (trans_w ? 2 : 1)];
	int64_t Bt = 1, M;
	bool ok = Kw == K && y->ndim == x->ndim && y->shape[y->ndim - 1] == N;
	if (batched) {
		ok = ok && w->ndim == x->ndim;
		for (int i = 0; ok && i < x->ndim - 2; i++) {
			ok = w->shape[i] == x->shape[i] && y->shape[i] == x->shape[i];
			Bt *= x->shape[i];
		}
		M = x->shape[x->ndim - 2];
		ok = ok && y->shape[y->ndim - 2] == M;
	} else {
		ok = ok && w->ndim == 2;
		for (int i = 0; ok && i < x->ndim - 1; i++)
			ok = y->shape[i] == x->shape[i];
		M = K ? dsv32_tensor_numel(x) / K : dsv32_shape_numel(x->ndim - 1, x->shape);
	}
	if (!ok)
		return DSV32_FAIL(err, DSV32_E_SHAPE, "gemm%s%s: x %s, w %s, y %s do not fit %s",
				  trans_w ? "" : "_nn", batched ? "_batched" : "",
				  dsv32_shape_str(b1, sizeof b1, x->ndim, x->shape),
				  dsv32_shape_str(b2, sizeof b2, w->ndim, w->shape),
				  dsv32_shape_str(b3, sizeof b3, y->ndim, y->shape),
				  trans_w ? "x[..,M,K] w[..,N,K] y[..,M,N]"
					  : "x[..,M,K] w[..,K,N] y[..,M,N]");
	dsv32_gemm_desc d = {
		.batch = Bt, .M = M, .N = N, .K = K, .trans_w = trans_w,
		.x_dtype = x->dtype, .w_dtype = w->dtype, .y_dtype = y->dtype,
		.x = x->data, .ldx = K, .stride_x = M * K,
		.w = w->data, .ldw = trans_w ? K : N, .stride_w = N * K,
		.y = y->data, .ldy = N, .stride_y = M * N,
	};
	return dsv32_gemm_run(be, &d, err);
}

dsv32_status dsv32_gemm(dsv32_backend *be, dsv32_tensor *y, const dsv32_tensor *x,
			const dsv32_tensor *w, dsv32_error *err)
{
	return gemm_tensors(be, y, x, w, true, false, err);
}

dsv32_status dsv32_gemm_nn(dsv32_backend *be, dsv32_tensor *y, const dsv32_tensor *x,
			   const dsv32_tensor *w, dsv32_error *err)
{
	return gemm_tensors(be, y, x, w, false, false, err);
}

dsv32_status dsv32_gemm_batched(dsv32_backend *be, dsv32_tensor *y, const dsv32_tensor *x,
				const dsv32_tensor *w, dsv32_error *err)
{
	return gemm_tensors(be, y, x, w, true, true, err);
}

dsv32_status dsv32_gemm_nn_batched(dsv32_backend *be, dsv32_tensor *y, const dsv32_tensor *x,
				   const dsv32_tensor *w, dsv32_error *err)
{
	return gemm_tensors(be, y, x, w, false, true, err);
}

dsv32_status dsv32_gemm_run(dsv32_backend *be, const dsv32_gemm_desc *d, dsv32_error *err)
{
	if (!be || !d)
		return DSV32_FAIL(err, DSV32_E_USAGE, "gemm_run: NULL backend or descriptor");
	if (!is_act_dtype(d->x_dtype) || !is_act_dtype(d->w_dtype) || !is_act_dtype(d->y_dtype))
		return DSV32_FAIL(err, DSV32_E_DTYPE,
				  "gemm_run: dtypes x %s, w %s, y %s; each must be BF16 or F32",
				  dsv32_dtype_name(d->x_dtype), dsv32_dtype_name(d->w_dtype),
				  dsv32_dtype_name(d->y_dtype));
	int64_t wcols = d->trans_w ? d->K : d->N;
	if (d->batch < 0 || d->M < 0 || d->N < 0 || d->K < 0 || d->ldx < d->K ||
	    d->ldw < wcols || d->ldy < d->N || d->stride_x < 0 || d->stride_w < 0 ||
	    d->stride_y < 0)
		return DSV32_FAIL(err, DSV32_E_SHAPE,
				  "gemm_run: batch %lld M %lld N %lld K %lld with ldx %lld ldw %lld "
				  "ldy %lld: sizes must be >= 0 and each ld >= its row length",
				  (long long)d->batch, (long long)d->M, (long long)d->N,
				  (long long)d->K, (long long)d->ldx, (long long)d->ldw,
				  (long long)d->ldy);
	if (d->batch == 0 || d->M == 0 || d->N == 0)
		return DSV32_OK;
	if (!d->x || !d->w || !d->y)
		return DSV32_FAIL(err, DSV32_E_USAGE, "gemm_run: NULL data pointer");
	if (be->device == DSV32_DEV_CPU)
		return dsv32_gemm_cpu(be, d, err);
	return DSV32_CUDA_BODY(be, "gemm", err, dsv32_gemm_cuda(be, d, err));
}
