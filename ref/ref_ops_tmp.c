/* ref_ops_tmp.c: two elementwise ops the reference model needs that kernels/ does not offer yet
 * (TODO(kernels/elementwise.h): move them there as dsv32_mul and dsv32_index_add_scaled).
 * Contracts in ref/ref_internal.h. CPU bodies here, CUDA bodies in ref_ops_tmp.cu. */
#include "kernels/elementwise.h"
#include "ref/ref_internal.h"

#ifdef DSV32_HAVE_CUDA
dsv32_status ref_tmp_mul_cuda(dsv32_backend *be, void *y, dsv32_dtype yt, const void *a,
			      dsv32_dtype at, const void *b, dsv32_dtype bt, int64_t n,
			      dsv32_error *err);
dsv32_status ref_tmp_index_add_scaled_cuda(dsv32_backend *be, float *y, const void *x,
					   dsv32_dtype xt, const int64_t *rows, const float *w,
					   int64_t n, int64_t D, dsv32_error *err);
#endif

static bool is_act(const dsv32_tensor *t)
{
	return t->dtype == DSV32_BF16 || t->dtype == DSV32_F32;
}

dsv32_status ref_tmp_mul(dsv32_backend *be, dsv32_tensor *y, const dsv32_tensor *a,
			 const dsv32_tensor *b, dsv32_error *err)
{
	int64_t n = dsv32_tensor_numel(y);
	if (!is_act(y) || !is_act(a) || !is_act(b))
		return DSV32_FAIL(err, DSV32_E_DTYPE, "ref_tmp_mul: BF16|F32 tensors expected");
	if (dsv32_tensor_numel(a) != n || dsv32_tensor_numel(b) != n)
		return DSV32_FAIL(err, DSV32_E_SHAPE, "ref_tmp_mul: %lld / %lld / %lld elements",
				  (long long)n, (long long)dsv32_tensor_numel(a),
				  (long long)dsv32_tensor_numel(b));
	if (y->device != be->device || a->device != be->device || b->device != be->device)
		return DSV32_FAIL(err, DSV32_E_USAGE, "ref_tmp_mul: tensor not on the backend device");
	if (be->device == DSV32_DEV_CUDA) {
#ifdef DSV32_HAVE_CUDA
		return ref_tmp_mul_cuda(be, y->data, y->dtype, a->data, a->dtype, b->data, b->dtype, n,
					err);
#else
		return DSV32_FAIL(err, DSV32_E_UNSUPPORTED, "ref_tmp_mul: no CUDA in this build");
#endif
	}
	for (int64_t i = 0; i < n; i++)
		dsv32_act_store(y->data, y->dtype, i,
				dsv32_fmul_rn(dsv32_act_load(a->data, a->dtype, i),
					      dsv32_act_load(b->data, b->dtype, i)));
	return DSV32_OK;
}

dsv32_status ref_tmp_index_add_scaled(dsv32_backend *be, dsv32_tensor *y, const dsv32_tensor *x,
				      const dsv32_tensor *rows, const dsv32_tensor *w,
				      dsv32_error *err)
{
	if (y->dtype != DSV32_F32 || !is_act(x) || rows->dtype != DSV32_I64 || w->dtype != DSV32_F32)
		return DSV32_FAIL(err, DSV32_E_DTYPE,
				  "ref_tmp_index_add_scaled: y F32, x BF16|F32, rows I64, w F32");
	int64_t D = y->shape[y->ndim - 1], T = dsv32_tensor_numel(y) / (D ? D : 1);
	int64_t n = dsv32_tensor_numel(rows);
	if (x->shape[x->ndim - 1] != D || dsv32_tensor_numel(x) != n * D ||
	    dsv32_tensor_numel(w) != n)
		return DSV32_FAIL(err, DSV32_E_SHAPE, "ref_tmp_index_add_scaled: x [%lld, %lld] expected",
				  (long long)n, (long long)D);
	if (y->device != be->device || x->device != be->device || rows->device != be->device ||
	    w->device != be->device)
		return DSV32_FAIL(err, DSV32_E_USAGE,
				  "ref_tmp_index_add_scaled: tensor not on the backend device");
	if (be->device == DSV32_DEV_CUDA) {
#ifdef DSV32_HAVE_CUDA
		return ref_tmp_index_add_scaled_cuda(be, y->data, x->data, x->dtype, rows->data,
						     w->data, n, D, err);
#else
		return DSV32_FAIL(err, DSV32_E_UNSUPPORTED,
				  "ref_tmp_index_add_scaled: no CUDA in this build");
#endif
	}
	const int64_t *r = rows->data;
	const float *wv = w->data;
	float *yv = y->data;
	for (int64_t i = 0; i < n; i++) {
		if (r[i] < 0 || r[i] >= T)
			return DSV32_FAIL(err, DSV32_E_USAGE,
					  "ref_tmp_index_add_scaled: row %lld out of [0, %lld)",
					  (long long)r[i], (long long)T);
	}
	for (int64_t i = 0; i < n; i++)
		for (int64_t d = 0; d < D; d++) {
			float v = dsv32_fmul_rn(dsv32_act_load(x->data, x->dtype, i * D + d), wv[i]);
			yv[r[i] * D + d] = dsv32_fadd_rn(yv[r[i] * D + d], v);
		}
	return DSV32_OK;
}
