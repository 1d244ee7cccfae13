/* fp8.c: argument checks and dispatch of the fp8 family (contract in fp8.h). */
#include "kernels/fp8_impl.h"
#include "kernels/gemm.h"

#include <stdio.h>
#include <string.h>

static dsv32_status check(dsv32_backend *be, const dsv32_tensor *t, const char *op,
			  const char *name, bool act, dsv32_dtype want, dsv32_error *err)
{
	if (!t || (!t->data && dsv32_tensor_numel(t) > 0))
		return DSV32_FAIL(err, DSV32_E_USAGE, "%s: %s is NULL", op, name);
	bool ok = act ? (t->dtype == DSV32_BF16 || t->dtype == DSV32_F32) : t->dtype == want;
	if (!ok)
		return DSV32_FAIL(err, DSV32_E_DTYPE, "%s: %s dtype %s, expected %s", op, name,
				  dsv32_dtype_name(t->dtype),
				  act ? "BF16 or F32" : dsv32_dtype_name(want));
	if (t->ndim < 1)
		return DSV32_FAIL(err, DSV32_E_SHAPE, "%s: %s is a scalar", op, name);
	if (t->device != be->device)
		return DSV32_FAIL(err, DSV32_E_USAGE, "%s: %s lives on device %d, backend on %d",
				  op, name, (int)t->device, (int)be->device);
	return DSV32_OK;
}

/* t has the leading dims of ref and last dim `last`. */
static dsv32_status check_lead(const dsv32_tensor *t, const dsv32_tensor *ref, int64_t last,
			       const char *op, const char *name, dsv32_error *err)
{
	bool ok = t->ndim == ref->ndim && t->shape[t->ndim - 1] == last;
	for (int i = 0; ok && i < ref->ndim - 1; i++)
		ok = t->shape[i] == ref->shape[i];
	if (!ok) {
		char b1[96], b2[96];
		return DSV32_FAIL(err, DSV32_E_SHAPE, "%s: %s shape %s, expected the leading dims "
				  "of %s and last dim %lld", op, name,
				  dsv32_shape_str(b1, sizeof b1, t->ndim, t->shape),
				  dsv32_shape_str(b2, sizeof b2, ref->ndim, ref->shape),
				  (long long)last);
	}
	return DSV32_OK;
}

static bool overlaps(const dsv32_tensor *a, const dsv32_tensor *b)
{
	const char *pa = a->data, *pb = b->data;
	size_t na = dsv32_tensor_nbytes(a), nb = dsv32_tensor_nbytes(b);
	return na && nb && pa < pb + nb && pb < pa + na;
}

static int64_t cdiv(int64_t a, int64_t b)
{
	return (a + b - 1) / b;
}

static dsv32_status check_quant_in(dsv32_backend *be, const dsv32_tensor *x, const char *op,
				   int64_t *rows, int64_t *K, dsv32_error *err)
{
	DSV32_TRY(check(be, x, op, "x", true, DSV32_BF16, err));
	*K = x->shape[x->ndim - 1];
	if (*K % DSV32_FP8_BLOCK != 0 || *K == 0)
		return DSV32_FAIL(err, DSV32_E_SHAPE, "%s: x last dim %lld, expected a positive "
				  "multiple of %d", op, (long long)*K, DSV32_FP8_BLOCK);
	*rows = dsv32_tensor_numel(x) / *K;
	return DSV32_OK;
}

dsv32_status dsv32_act_quant(dsv32_backend *be, dsv32_tensor *y8, dsv32_tensor *s,
			     const dsv32_tensor *x, bool ue8m0, dsv32_error *err)
{
	const char *op = "act_quant";
	int64_t rows = 0, K = 0;
	DSV32_TRY(check_quant_in(be, x, op, &rows, &K, err));
	DSV32_TRY(check(be, y8, op, "y8", false, DSV32_F8_E4M3, err));
	DSV32_TRY(check(be, s, op, "s", false, DSV32_F32, err));
	DSV32_TRY(check_lead(y8, x, K, op, "y8", err));
	DSV32_TRY(check_lead(s, x, K / DSV32_FP8_BLOCK, op, "s", err));
	if (overlaps(y8, x) || overlaps(s, x) || overlaps(y8, s))
		return DSV32_FAIL(err, DSV32_E_USAGE, "%s: y8, s and x must not overlap", op);
	if (rows == 0)
		return DSV32_OK;
	if (be->device == DSV32_DEV_CPU) {
		dsv32_act_quant_cpu(y8->data, s->data, x->data, x->dtype, rows, K, ue8m0);
		return DSV32_OK;
	}
	return DSV32_CUDA_BODY(be, op, err,
			       dsv32_act_quant_cuda(be, y8->data, s->data, x->data, x->dtype, rows,
						    K, ue8m0, err));
}

dsv32_status dsv32_fp8_roundtrip(dsv32_backend *be, dsv32_tensor *y, const dsv32_tensor *x,
				 bool ue8m0, dsv32_error *err)
{
	const char *op = "fp8_roundtrip";
	int64_t rows = 0, K = 0;
	DSV32_TRY(check_quant_in(be, x, op, &rows, &K, err));
	DSV32_TRY(check(be, y, op, "y", true, DSV32_BF16, err));
	DSV32_TRY(check_lead(y, x, K, op, "y", err));
	bool in_place = y->data == x->data && y->dtype == x->dtype;
	if (!in_place && overlaps(y, x))
		return DSV32_FAIL(err, DSV32_E_USAGE, "%s: y overlaps x without being x itself", op);
	if (rows == 0)
		return DSV32_OK;
	if (be->device == DSV32_DEV_CPU) {
		dsv32_fp8_roundtrip_cpu(y->data, y->dtype, x->data, x->dtype, rows, K, ue8m0);
		return DSV32_OK;
	}
	return DSV32_CUDA_BODY(be, op, err,
			       dsv32_fp8_roundtrip_cuda(be, y->data, y->dtype, x->data, x->dtype,
							rows, K, ue8m0, err));
}

static dsv32_status check_weight(dsv32_backend *be, const dsv32_tensor *w8,
				 const dsv32_tensor *scale, const char *op, dsv32_error *err)
{
	DSV32_TRY(check(be, w8, op, "w8", false, DSV32_F8_E4M3, err));
	DSV32_TRY(check(be, scale, op, "scale", false, DSV32_F32, err));
	char b1[96], b2[96];
	if (w8->ndim != 2)
		return DSV32_FAIL(err, DSV32_E_SHAPE, "%s: w8 shape %s, expected [N, K]", op,
				  dsv32_shape_str(b1, sizeof b1, w8->ndim, w8->shape));
	int64_t sn = cdiv(w8->shape[0], DSV32_FP8_BLOCK), sk = cdiv(w8->shape[1], DSV32_FP8_BLOCK);
	if (scale->ndim != 2 || scale->shape[0] != sn || scale->shape[1] != sk)
		return DSV32_FAIL(err, DSV32_E_SHAPE, "%s: scale shape %s, expected [%lld, %lld] "
				  "for w8 %s", op,
				  dsv32_shape_str(b1, sizeof b1, scale->ndim, scale->shape),
				  (long long)sn, (long long)sk,
				  dsv32_shape_str(b2, sizeof b2, w8->ndim, w8->shape));
	return DSV32_OK;
}

dsv32_status dsv32_weight_dequant(dsv32_backend *be, dsv32_tensor *w, const dsv32_tensor *w8,
				  const dsv32_tensor *scale, dsv32_error *err)
{
	const char *op = "weight_dequant";
	DSV32_TRY(check_weight(be, w8, scale, op, err));
	DSV32_TRY(check(be, w, op, "w", true, DSV32_BF16, err));
	if (!dsv32_tensor_same_shape(w, w8)) {
		char b1[96], b2[96];
		return DSV32_FAIL(err, DSV32_E_SHAPE, "%s: w shape %s, expected w8's %s", op,
				  dsv32_shape_str(b1, sizeof b1, w->ndim, w->shape),
				  dsv32_shape_str(b2, sizeof b2, w8->ndim, w8->shape));
	}
	if (overlaps(w, w8) || overlaps(w, scale))
		return DSV32_FAIL(err, DSV32_E_USAGE, "%s: w must not overlap w8 or scale", op);
	int64_t N = w8->shape[0], K = w8->shape[1];
	if (N == 0 || K == 0)
		return DSV32_OK;
	if (be->device == DSV32_DEV_CPU) {
		dsv32_weight_dequant_cpu(w->data, w->dtype, w8->data, scale->data, N, K);
		return DSV32_OK;
	}
	return DSV32_CUDA_BODY(be, op, err,
			       dsv32_weight_dequant_cuda(be, w->data, w->dtype, w8->data,
							 scale->data, N, K, err));
}

/* Whether dequant_gemm takes the fixed CPU engine's blocked body: always on the avx512 bodies
 * (x packed per block costs little there: 0.88 s against 1.12 s for the whole matrix in the
 * real-width fp8 prefill); on the avx2 and scalar bodies, which widen and pack x again for
 * every call, only up to 32 rows (that prefill: 4.8 s blocked, 2.6 s whole) or without a
 * scratch. Both give the same bits. */
static bool dequant_gemm_blocked(const dsv32_backend *be, const dsv32_tensor *x, int64_t K,
				 const dsv32_tensor *scratch)
{
	if (be->device != DSV32_DEV_CPU || be->gemm_engine != DSV32_GEMM_FIXED)
		return false;
	int64_t rows = K && x ? dsv32_tensor_numel(x) / K : 0;
	return !scratch || rows <= 32 || strncmp(dsv32_gemm_fixed_body(), "avx512", 6) == 0;
}

dsv32_status dsv32_dequant_gemm(dsv32_backend *be, dsv32_tensor *y, const dsv32_tensor *x,
				const dsv32_tensor *w8, const dsv32_tensor *scale,
				const dsv32_tensor *scratch, dsv32_error *err)
{
	const char *op = "dequant_gemm";
	DSV32_TRY(check_weight(be, w8, scale, op, err));
	int64_t N = w8->shape[0], K = w8->shape[1];
	if (!dequant_gemm_blocked(be, x, K, scratch)) {
		DSV32_TRY(check(be, scratch, op, "scratch", false, DSV32_BF16, err));
		if (dsv32_tensor_numel(scratch) < N * K)
			return DSV32_FAIL(err, DSV32_E_SHAPE, "%s: scratch of %lld elements for a "
					  "[%lld, %lld] weight", op,
					  (long long)dsv32_tensor_numel(scratch), (long long)N,
					  (long long)K);
		dsv32_tensor wd = *scratch;
		wd.ndim = 2;
		wd.shape[0] = N;
		wd.shape[1] = K;
		DSV32_TRY(dsv32_weight_dequant(be, &wd, w8, scale, err));
		return dsv32_gemm(be, y, x, &wd, err);
	}
	DSV32_TRY(check(be, x, op, "x", true, DSV32_BF16, err));
	DSV32_TRY(check(be, y, op, "y", true, DSV32_BF16, err));
	if (x->shape[x->ndim - 1] != K)
		return DSV32_FAIL(err, DSV32_E_SHAPE, "%s: w8 has K = %lld, x has K = %lld", op,
				  (long long)K, (long long)x->shape[x->ndim - 1]);
	DSV32_TRY(check_lead(y, x, N, op, "y", err));
	if (overlaps(y, x) || overlaps(y, w8) || overlaps(y, scale))
		return DSV32_FAIL(err, DSV32_E_USAGE, "%s: y must not overlap an input", op);
	int64_t M = dsv32_shape_numel(x->ndim - 1, x->shape);
	if (M == 0 || N == 0)
		return DSV32_OK;
	if (K == 0) { /* empty sums: +0 in either dtype */
		memset(y->data, 0, dsv32_tensor_nbytes(y));
		return DSV32_OK;
	}
	return dsv32_dequant_gemm_cpu(y->data, y->dtype, x->data, x->dtype, w8->data, scale->data,
				      M, N, K, err);
}

dsv32_status dsv32_fp8_gemm(dsv32_backend *be, dsv32_tensor *y, const dsv32_tensor *x8,
			    const dsv32_tensor *xs, const dsv32_tensor *w8, const dsv32_tensor *ws,
			    dsv32_error *err)
{
	const char *op = "fp8_gemm";
	DSV32_TRY(check(be, x8, op, "x8", false, DSV32_F8_E4M3, err));
	DSV32_TRY(check(be, xs, op, "xs", false, DSV32_F32, err));
	DSV32_TRY(check(be, y, op, "y", true, DSV32_BF16, err));
	DSV32_TRY(check_weight(be, w8, ws, op, err));
	int64_t K = x8->shape[x8->ndim - 1], N = w8->shape[0];
	if (w8->shape[1] != K)
		return DSV32_FAIL(err, DSV32_E_SHAPE, "%s: w8 has K = %lld, x8 has K = %lld", op,
				  (long long)w8->shape[1], (long long)K);
	DSV32_TRY(check_lead(xs, x8, cdiv(K, DSV32_FP8_BLOCK), op, "xs", err));
	DSV32_TRY(check_lead(y, x8, N, op, "y", err));
	if (overlaps(y, x8) || overlaps(y, xs) || overlaps(y, w8) || overlaps(y, ws))
		return DSV32_FAIL(err, DSV32_E_USAGE, "%s: y must not overlap an input", op);
	int64_t M = dsv32_shape_numel(x8->ndim - 1, x8->shape);
	if (M == 0 || N == 0)
		return DSV32_OK;
	if (be->device == DSV32_DEV_CPU)
		return dsv32_fp8_gemm_cpu(y->data, y->dtype, x8->data, xs->data, w8->data, ws->data,
					  M, N, K, err);
	return DSV32_CUDA_BODY(be, op, err,
			       dsv32_fp8_gemm_cuda(be, y->data, y->dtype, x8->data, xs->data,
						   w8->data, ws->data, M, N, K, err));
}

dsv32_status dsv32_linear_fp8(dsv32_backend *be, dsv32_tensor *y, const dsv32_tensor *x,
			      const dsv32_tensor *w8, const dsv32_tensor *ws, bool ue8m0,
			      dsv32_error *err)
{
	int64_t rows = 0, K = 0;
	DSV32_TRY(check_quant_in(be, x, "linear_fp8", &rows, &K, err));
	int64_t shape[DSV32_MAX_DIMS];
	for (int i = 0; i < x->ndim; i++)
		shape[i] = x->shape[i];
	dsv32_tensor x8 = {0}, xs = {0};
	dsv32_status rc = dsv32_backend_alloc(be, &x8, DSV32_F8_E4M3, x->ndim, shape, err);
	if (rc != DSV32_OK)
		return rc;
	shape[x->ndim - 1] = K / DSV32_FP8_BLOCK;
	rc = dsv32_backend_alloc(be, &xs, DSV32_F32, x->ndim, shape, err);
	if (rc != DSV32_OK)
		goto out_free_x8;
	rc = dsv32_act_quant(be, &x8, &xs, x, ue8m0, err);
	if (rc == DSV32_OK)
		rc = dsv32_fp8_gemm(be, y, &x8, &xs, w8, ws, err);
	dsv32_backend_free(be, &xs);
out_free_x8:
	dsv32_backend_free(be, &x8);
	return rc;
}
