/* indexer.c: argument checks and dispatch for dsv32_fp8_index / dsv32_index_scores_hf
 * (contract in indexer.h). */
#include "kernels/indexer.h"

#include "kernels/indexer_impl.h"

static dsv32_status mask_desc(const dsv32_tensor *mask, int64_t B, int64_t S, int64_t T,
			      dsv32_backend *be, dsv32_idx_mask *m, dsv32_error *err)
{
	char a[128];
	*m = (dsv32_idx_mask){0};
	if (!mask)
		return DSV32_OK;
	if (mask->dtype != DSV32_F32 && mask->dtype != DSV32_BF16)
		return DSV32_FAIL(err, DSV32_E_DTYPE, "index mask: dtype %s, expected F32 or BF16",
				  dsv32_dtype_name(mask->dtype));
	bool ok2 = mask->ndim == 2 && mask->shape[0] == S && mask->shape[1] == T;
	bool ok3 = mask->ndim == 3 && mask->shape[0] == B && mask->shape[1] == S && mask->shape[2] == T;
	bool ok4 = mask->ndim == 4 && mask->shape[0] == B && mask->shape[1] == 1 &&
		   mask->shape[2] == S && mask->shape[3] == T;
	if (!ok2 && !ok3 && !ok4)
		return DSV32_FAIL(err, DSV32_E_SHAPE,
				  "index mask: shape %s, expected [S,T], [B,S,T] or [B,1,S,T] with B=%lld S=%lld T=%lld",
				  dsv32_shape_str(a, sizeof a, mask->ndim, mask->shape), (long long)B,
				  (long long)S, (long long)T);
	if (mask->device != be->device)
		return DSV32_FAIL(err, DSV32_E_USAGE, "index mask: not on the backend's device");
	m->data = mask->data;
	m->dtype = mask->dtype;
	m->batch_stride = ok2 ? 0 : S * T;
	return DSV32_OK;
}

/* Check a cache tensor [Bc, Tc, D] (or [Bc, Tc] / [Bc, Tc, 1] when D == 0). */
static dsv32_status check_cache(const dsv32_tensor *c, const char *name, int64_t B, int64_t T,
				int64_t D, int64_t *Tc, dsv32_error *err)
{
	char a[128];
	bool ok = c->ndim >= 2 && c->shape[0] >= B && c->shape[1] >= T;
	if (ok && D > 0)
		ok = c->ndim == 3 && c->shape[2] == D;
	if (ok && D == 0)
		ok = c->ndim == 2 || (c->ndim == 3 && c->shape[2] == 1);
	if (!ok)
		return DSV32_FAIL(err, DSV32_E_SHAPE, "%s: shape %s, expected [>=%lld, >=%lld%s%lld]",
				  name, dsv32_shape_str(a, sizeof a, c->ndim, c->shape), (long long)B,
				  (long long)T, D > 0 ? ", " : "(, 1)", D > 0 ? (long long)D : 0LL);
	*Tc = c->shape[1];
	return DSV32_OK;
}

static dsv32_status check_out(const dsv32_tensor *out, int64_t *B, int64_t *S, int64_t *T,
			      dsv32_error *err)
{
	char a[128];
	if (out->dtype != DSV32_F32 || out->ndim != 3)
		return DSV32_FAIL(err, DSV32_E_SHAPE, "index out: %s %s, expected F32 [B, S, T]",
				  dsv32_dtype_name(out->dtype),
				  dsv32_shape_str(a, sizeof a, out->ndim, out->shape));
	*B = out->shape[0];
	*S = out->shape[1];
	*T = out->shape[2];
	return DSV32_OK;
}

static dsv32_status check_q(const dsv32_tensor *q, int64_t B, int64_t S, const char *name,
			    int64_t *H, int64_t *D, dsv32_error *err)
{
	char a[128];
	if (q->ndim != 4 || q->shape[0] != B || q->shape[1] != S)
		return DSV32_FAIL(err, DSV32_E_SHAPE, "%s: shape %s, expected [%lld, %lld, H, D]", name,
				  dsv32_shape_str(a, sizeof a, q->ndim, q->shape), (long long)B,
				  (long long)S);
	*H = q->shape[2];
	*D = q->shape[3];
	return DSV32_OK;
}

static dsv32_status check_w(const dsv32_tensor *w, int64_t B, int64_t S, int64_t H,
			    dsv32_error *err)
{
	char a[128];
	bool ok = w->dtype == DSV32_F32 && w->ndim >= 3 && w->shape[0] == B && w->shape[1] == S &&
		  w->shape[2] == H && (w->ndim == 3 || (w->ndim == 4 && w->shape[3] == 1));
	if (!ok)
		return DSV32_FAIL(err, DSV32_E_SHAPE, "index w: %s %s, expected F32 [%lld, %lld, %lld(, 1)]",
				  dsv32_dtype_name(w->dtype), dsv32_shape_str(a, sizeof a, w->ndim, w->shape),
				  (long long)B, (long long)S, (long long)H);
	return DSV32_OK;
}

static bool on_dev(const dsv32_backend *be, const dsv32_tensor *t)
{
	return t->device == be->device;
}

dsv32_status dsv32_fp8_index(dsv32_backend *be, dsv32_tensor *out, const dsv32_tensor *q8,
			     const dsv32_tensor *w, const dsv32_tensor *k8, const dsv32_tensor *k_s,
			     const dsv32_tensor *mask, dsv32_error *err)
{
	int64_t B = 0, S = 0, T = 0, H = 0, D = 0, Tc = 0, Tcs = 0;
	dsv32_idx_mask m;
	DSV32_TRY(check_out(out, &B, &S, &T, err));
	if (q8->dtype != DSV32_F8_E4M3 || k8->dtype != DSV32_F8_E4M3)
		return DSV32_FAIL(err, DSV32_E_DTYPE, "fp8_index: q8 %s, k8 %s, expected F8_E4M3",
				  dsv32_dtype_name(q8->dtype), dsv32_dtype_name(k8->dtype));
	if (k_s->dtype != DSV32_F32)
		return DSV32_FAIL(err, DSV32_E_DTYPE, "fp8_index k_s: %s, expected F32",
				  dsv32_dtype_name(k_s->dtype));
	DSV32_TRY(check_q(q8, B, S, "fp8_index q8", &H, &D, err));
	DSV32_TRY(check_w(w, B, S, H, err));
	DSV32_TRY(check_cache(k8, "fp8_index k8", B, T, D, &Tc, err));
	DSV32_TRY(check_cache(k_s, "fp8_index k_s", B, T, 0, &Tcs, err));
	DSV32_TRY(mask_desc(mask, B, S, T, be, &m, err));
	if (!on_dev(be, out) || !on_dev(be, q8) || !on_dev(be, w) || !on_dev(be, k8) || !on_dev(be, k_s))
		return DSV32_FAIL(err, DSV32_E_USAGE, "fp8_index: a tensor is not on the backend's device");
	if (B * S * T == 0)
		return DSV32_OK;
	dsv32_idx_fp8_args a = {out->data, q8->data, w->data, k8->data, k_s->data, m,
				B, S, T, H, D, Tc, Tcs};
	if (be->device == DSV32_DEV_CPU)
		return dsv32_fp8_index_cpu(&a, err);
	return DSV32_CUDA_BODY(be, "fp8_index", err, dsv32_fp8_index_cuda(be, &a, err));
}

dsv32_status dsv32_index_scores_hf(dsv32_backend *be, dsv32_tensor *out, const dsv32_tensor *q,
				   const dsv32_tensor *k, const dsv32_tensor *w, float softmax_scale,
				   const dsv32_tensor *mask, dsv32_error *err)
{
	int64_t B = 0, S = 0, T = 0, H = 0, D = 0, Tc = 0;
	dsv32_idx_mask m;
	DSV32_TRY(check_out(out, &B, &S, &T, err));
	if ((q->dtype != DSV32_F32 && q->dtype != DSV32_BF16) ||
	    (k->dtype != DSV32_F32 && k->dtype != DSV32_BF16))
		return DSV32_FAIL(err, DSV32_E_DTYPE, "index_scores_hf: q %s, k %s, expected F32|BF16",
				  dsv32_dtype_name(q->dtype), dsv32_dtype_name(k->dtype));
	DSV32_TRY(check_q(q, B, S, "index_scores_hf q", &H, &D, err));
	if (w->ndim != 3)
		return DSV32_FAIL(err, DSV32_E_SHAPE, "index_scores_hf w: rank %d, expected [B, S, H]",
				  w->ndim);
	DSV32_TRY(check_w(w, B, S, H, err));
	DSV32_TRY(check_cache(k, "index_scores_hf k", B, T, D, &Tc, err));
	DSV32_TRY(mask_desc(mask, B, S, T, be, &m, err));
	if (!on_dev(be, out) || !on_dev(be, q) || !on_dev(be, w) || !on_dev(be, k))
		return DSV32_FAIL(err, DSV32_E_USAGE,
				  "index_scores_hf: a tensor is not on the backend's device");
	if (out->data == q->data || out->data == k->data || out->data == w->data)
		return DSV32_FAIL(err, DSV32_E_USAGE, "index_scores_hf: out aliases an input");
	if (B * S * T == 0)
		return DSV32_OK;
	dsv32_idx_hf_args a = {out->data, q->data, q->dtype, k->data, k->dtype, w->data,
			       softmax_scale, m, B, S, T, H, D, Tc};
	if (be->device == DSV32_DEV_CPU)
		return dsv32_index_scores_hf_cpu(&a, err);
	return DSV32_CUDA_BODY(be, "index_scores_hf", err, dsv32_index_scores_hf_cuda(be, &a, err));
}
