/* attention.c: argument checks and dispatch for the attention cores and mask builders
 * (contract in attention.h). */
#include "kernels/attention_impl.h"

const char *dsv32_attn_layout_name(dsv32_attn_layout l)
{
	switch (l) {
	case DSV32_ATTN_BSHD: return "BSHD";
	case DSV32_ATTN_BHSD: return "BHSD";
	default: return "?";
	}
}

static bool is_act(const dsv32_tensor *t)
{
	return t->dtype == DSV32_F32 || t->dtype == DSV32_BF16;
}

static bool dims_are(const dsv32_tensor *t, int n, const int64_t *want)
{
	if (t->ndim != n)
		return false;
	for (int i = 0; i < n; i++)
		if (t->shape[i] != want[i])
			return false;
	return true;
}

static dsv32_status shape_fail(const dsv32_tensor *t, const char *name, int n, const int64_t *want,
			       dsv32_error *err)
{
	char a[128], b[128];
	return DSV32_FAIL(err, DSV32_E_SHAPE, "%s: shape %s %s, expected %s", name,
			  dsv32_dtype_name(t->dtype), dsv32_shape_str(a, sizeof a, t->ndim, t->shape),
			  dsv32_shape_str(b, sizeof b, n, want));
}

/* A mask of [S,T] / [B,S,T] / [B,1,S,T] (S == 1 additionally allows [B,T]). */
static dsv32_status mask_desc(dsv32_backend *be, const dsv32_tensor *mask, int64_t B, int64_t S,
			      int64_t T, dsv32_attn_mask_desc *m, dsv32_error *err)
{
	char a[128];
	*m = (dsv32_attn_mask_desc){0};
	if (!mask)
		return DSV32_OK;
	if (!is_act(mask))
		return DSV32_FAIL(err, DSV32_E_DTYPE, "attention mask: dtype %s, expected F32 or BF16",
				  dsv32_dtype_name(mask->dtype));
	const int64_t s2[2] = {S, T}, s3[3] = {B, S, T}, s4[4] = {B, 1, S, T}, sb[2] = {B, T};
	bool bcast = dims_are(mask, 2, s2) && !(S == 1 && B != 1);
	bool full = dims_are(mask, 3, s3) || dims_are(mask, 4, s4) || (S == 1 && dims_are(mask, 2, sb));
	if (!bcast && !full)
		return DSV32_FAIL(err, DSV32_E_SHAPE,
				  "attention mask: shape %s, expected [S,T], [B,S,T] or [B,1,S,T] with B=%lld S=%lld T=%lld",
				  dsv32_shape_str(a, sizeof a, mask->ndim, mask->shape), (long long)B,
				  (long long)S, (long long)T);
	if (mask->device != be->device)
		return DSV32_FAIL(err, DSV32_E_USAGE, "attention mask: not on the backend's device");
	m->data = mask->data;
	m->dtype = mask->dtype;
	m->batch_stride = full ? S * T : 0;
	return DSV32_OK;
}

static bool on(const dsv32_backend *be, const dsv32_tensor *t)
{
	return t->device == be->device;
}

dsv32_status dsv32_attn_prefill(dsv32_backend *be, dsv32_tensor *o, const dsv32_tensor *q,
				const dsv32_tensor *k, const dsv32_tensor *v,
				const dsv32_tensor *mask, float scale, dsv32_attn_layout layout,
				dsv32_error *err)
{
	if ((unsigned)layout >= DSV32_ATTN_LAYOUT_COUNT)
		return DSV32_FAIL(err, DSV32_E_USAGE, "attn_prefill: layout %d unknown", (int)layout);
	if (!is_act(o) || !is_act(q) || !is_act(k) || !is_act(v))
		return DSV32_FAIL(err, DSV32_E_DTYPE, "attn_prefill: o %s q %s k %s v %s, expected F32|BF16",
				  dsv32_dtype_name(o->dtype), dsv32_dtype_name(q->dtype),
				  dsv32_dtype_name(k->dtype), dsv32_dtype_name(v->dtype));
	if (o->ndim != 4 || q->ndim != 4 || k->ndim != 4 || v->ndim != 4)
		return DSV32_FAIL(err, DSV32_E_SHAPE, "attn_prefill: o, q, k, v must be 4-D (ranks %d %d %d %d)",
				  o->ndim, q->ndim, k->ndim, v->ndim);
	const bool bshd = layout == DSV32_ATTN_BSHD;
	int64_t B = o->shape[0], S = o->shape[1], H = o->shape[2], Dv = o->shape[3];
	int64_t Dqk = q->shape[3], T = bshd ? k->shape[1] : k->shape[2];
	int64_t wq[4] = {B, S, H, Dqk}, wk[4] = {B, T, H, Dqk}, wv[4] = {B, T, H, Dv};
	if (!bshd) {
		wq[1] = H, wq[2] = S;
		wk[1] = H, wk[2] = T;
		wv[1] = H, wv[2] = T;
	}
	if (!dims_are(q, 4, wq))
		return shape_fail(q, "attn_prefill q", 4, wq, err);
	if (!dims_are(k, 4, wk))
		return shape_fail(k, "attn_prefill k", 4, wk, err);
	if (!dims_are(v, 4, wv))
		return shape_fail(v, "attn_prefill v", 4, wv, err);
	dsv32_attn_mask_desc m;
	DSV32_TRY(mask_desc(be, mask, B, S, T, &m, err));
	if (!on(be, o) || !on(be, q) || !on(be, k) || !on(be, v))
		return DSV32_FAIL(err, DSV32_E_USAGE, "attn_prefill: a tensor is not on the backend's device");
	if (o->data == q->data || o->data == k->data || o->data == v->data ||
	    (mask && o->data == mask->data))
		return DSV32_FAIL(err, DSV32_E_USAGE, "attn_prefill: o aliases an input");
	if (B * S * H * Dv == 0)
		return DSV32_OK;
	dsv32_attn_prefill_args a = {o->data, o->dtype, q->data, k->data, v->data, q->dtype, k->dtype,
				     v->dtype, m, B, S, T, H, Dqk, Dv, layout, scale};
	if (be->device == DSV32_DEV_CPU)
		return dsv32_attn_prefill_cpu(&a, err);
	return DSV32_CUDA_BODY(be, "attn_prefill", err, dsv32_attn_prefill_cuda(be, &a, err));
}

/* [B,H,D] or [B,1,H,D]: returns D through *D, or -1. */
static int64_t head_vec_dim(const dsv32_tensor *t, int64_t B, int64_t H)
{
	if (t->ndim == 3 && t->shape[0] == B && t->shape[1] == H)
		return t->shape[2];
	if (t->ndim == 4 && t->shape[0] == B && t->shape[1] == 1 && t->shape[2] == H)
		return t->shape[3];
	return -1;
}

dsv32_status dsv32_attn_decode_absorbed(dsv32_backend *be, dsv32_tensor *o,
					const dsv32_tensor *q_nope, const dsv32_tensor *q_pe,
					const dsv32_tensor *wkv_b, const dsv32_tensor *kv_cache,
					const dsv32_tensor *pe_cache, int64_t T,
					const dsv32_tensor *mask, float scale, dsv32_error *err)
{
	char s[128];
	if (!is_act(o) || !is_act(q_nope) || !is_act(q_pe) || !is_act(wkv_b) || !is_act(kv_cache) ||
	    !is_act(pe_cache))
		return DSV32_FAIL(err, DSV32_E_DTYPE, "attn_decode_absorbed: every tensor must be F32|BF16");
	if (o->ndim < 3)
		return DSV32_FAIL(err, DSV32_E_SHAPE, "attn_decode_absorbed o: shape %s, expected [B,(1,)H,Dv]",
				  dsv32_shape_str(s, sizeof s, o->ndim, o->shape));
	int64_t B = o->shape[0], H = o->shape[o->ndim - 2];
	int64_t Dv = head_vec_dim(o, B, H), Dn = head_vec_dim(q_nope, B, H);
	int64_t R = head_vec_dim(q_pe, B, H);
	if (Dv < 1 || Dn < 1 || R < 1)
		return DSV32_FAIL(err, DSV32_E_SHAPE,
				  "attn_decode_absorbed: o, q_nope, q_pe must be [B,H,*] or [B,1,H,*] with B=%lld H=%lld",
				  (long long)B, (long long)H);
	if (kv_cache->ndim != 3 || pe_cache->ndim != 3)
		return DSV32_FAIL(err, DSV32_E_SHAPE, "attn_decode_absorbed: caches must be [Bc, Tc, *]");
	int64_t C = kv_cache->shape[2];
	bool w2 = wkv_b->ndim == 2 && wkv_b->shape[0] == H * (Dn + Dv) && wkv_b->shape[1] == C;
	bool w3 = wkv_b->ndim == 3 && wkv_b->shape[0] == H && wkv_b->shape[1] == Dn + Dv &&
		  wkv_b->shape[2] == C;
	if (!w2 && !w3)
		return DSV32_FAIL(err, DSV32_E_SHAPE,
				  "attn_decode_absorbed wkv_b: shape %s, expected [%lld, %lld] or [%lld, %lld, %lld]",
				  dsv32_shape_str(s, sizeof s, wkv_b->ndim, wkv_b->shape),
				  (long long)(H * (Dn + Dv)), (long long)C, (long long)H,
				  (long long)(Dn + Dv), (long long)C);
	if (T < 1 || kv_cache->shape[0] < B || kv_cache->shape[1] < T || pe_cache->shape[0] < B ||
	    pe_cache->shape[1] < T || pe_cache->shape[2] != R)
		return DSV32_FAIL(err, DSV32_E_SHAPE,
				  "attn_decode_absorbed caches: kv %s, pe [%lld, %lld, %lld]; need >= [%lld, %lld, C] and R = %lld, T >= 1",
				  dsv32_shape_str(s, sizeof s, 3, kv_cache->shape),
				  (long long)pe_cache->shape[0], (long long)pe_cache->shape[1],
				  (long long)pe_cache->shape[2], (long long)B, (long long)T, (long long)R);
	dsv32_attn_mask_desc m;
	DSV32_TRY(mask_desc(be, mask, B, 1, T, &m, err));
	if (!on(be, o) || !on(be, q_nope) || !on(be, q_pe) || !on(be, wkv_b) || !on(be, kv_cache) ||
	    !on(be, pe_cache))
		return DSV32_FAIL(err, DSV32_E_USAGE,
				  "attn_decode_absorbed: a tensor is not on the backend's device");
	if (o->data == q_nope->data || o->data == q_pe->data || o->data == kv_cache->data ||
	    o->data == pe_cache->data || o->data == wkv_b->data)
		return DSV32_FAIL(err, DSV32_E_USAGE, "attn_decode_absorbed: o aliases an input");
	if (B == 0)
		return DSV32_OK;
	m.batch_stride = m.batch_stride ? T : 0;
	dsv32_attn_decode_args a = {o->data, o->dtype, q_nope->data, q_pe->data, wkv_b->data,
				    kv_cache->data, pe_cache->data, q_nope->dtype, q_pe->dtype,
				    wkv_b->dtype, kv_cache->dtype, pe_cache->dtype, m, B, H, Dn, Dv, R,
				    C, T, kv_cache->shape[1], pe_cache->shape[1], scale};
	if (be->device == DSV32_DEV_CPU)
		return dsv32_attn_decode_cpu(&a, err);
	return DSV32_CUDA_BODY(be, "attn_decode_absorbed", err, dsv32_attn_decode_cuda(be, &a, err));
}

static dsv32_status mask_common(dsv32_backend *be, dsv32_tensor *mask, const dsv32_tensor *idx,
				dsv32_attn_mask_args *a, dsv32_error *err)
{
	char s[128];
	if (!is_act(mask) || mask->ndim != 3)
		return DSV32_FAIL(err, DSV32_E_SHAPE, "attention mask out: %s %s, expected F32|BF16 [B,S,T]",
				  dsv32_dtype_name(mask->dtype),
				  dsv32_shape_str(s, sizeof s, mask->ndim, mask->shape));
	*a = (dsv32_attn_mask_args){0};
	a->mask = mask->data;
	a->mask_t = mask->dtype;
	a->B = mask->shape[0];
	a->S = mask->shape[1];
	a->T = mask->shape[2];
	if (!on(be, mask))
		return DSV32_FAIL(err, DSV32_E_USAGE, "attention mask out: not on the backend's device");
	if (idx) {
		if ((idx->dtype != DSV32_I64 && idx->dtype != DSV32_I32) || idx->ndim != 3 ||
		    idx->shape[0] != a->B || idx->shape[1] != a->S)
			return DSV32_FAIL(err, DSV32_E_SHAPE,
					  "attention mask topk_idx: %s %s, expected I64|I32 [%lld, %lld, k]",
					  dsv32_dtype_name(idx->dtype),
					  dsv32_shape_str(s, sizeof s, idx->ndim, idx->shape),
					  (long long)a->B, (long long)a->S);
		if (!on(be, idx))
			return DSV32_FAIL(err, DSV32_E_USAGE, "attention mask topk_idx: not on the backend's device");
		a->idx = idx->data;
		a->idx_t = idx->dtype;
		a->K = idx->shape[2];
	}
	return DSV32_OK;
}

static dsv32_status mask_run(dsv32_backend *be, const dsv32_attn_mask_args *a, dsv32_error *err)
{
	if (a->B * a->S * a->T == 0)
		return DSV32_OK;
	if (be->device == DSV32_DEV_CPU)
		return dsv32_attn_mask_cpu(a, err);
	return DSV32_CUDA_BODY(be, "attention mask", err, dsv32_attn_mask_cuda(be, a, err));
}

dsv32_status dsv32_attn_mask_ref(dsv32_backend *be, dsv32_tensor *mask,
				 const dsv32_tensor *topk_idx, int64_t causal_start,
				 dsv32_error *err)
{
	dsv32_attn_mask_args a;
	if (!topk_idx)
		return DSV32_FAIL(err, DSV32_E_USAGE, "attn_mask_ref: topk_idx is NULL");
	DSV32_TRY(mask_common(be, mask, topk_idx, &a, err));
	a.causal_start = causal_start < 0 ? -1 : causal_start;
	a.hf = false;
	return mask_run(be, &a, err);
}

dsv32_status dsv32_attn_mask_hf(dsv32_backend *be, dsv32_tensor *mask,
				const dsv32_tensor *topk_idx, const dsv32_tensor *pad,
				int64_t past_len, dsv32_error *err)
{
	char s[128];
	dsv32_attn_mask_args a;
	DSV32_TRY(mask_common(be, mask, topk_idx, &a, err));
	if (past_len < 0)
		return DSV32_FAIL(err, DSV32_E_USAGE, "attn_mask_hf: past_len %lld < 0", (long long)past_len);
	if (pad) {
		bool dt = pad->dtype == DSV32_I64 || pad->dtype == DSV32_I32 || pad->dtype == DSV32_U8 ||
			  pad->dtype == DSV32_BOOL;
		if (!dt || pad->ndim != 2 || pad->shape[0] != a.B || pad->shape[1] != a.T)
			return DSV32_FAIL(err, DSV32_E_SHAPE,
					  "attn_mask_hf pad: %s %s, expected I64|I32|U8|BOOL [%lld, %lld]",
					  dsv32_dtype_name(pad->dtype),
					  dsv32_shape_str(s, sizeof s, pad->ndim, pad->shape),
					  (long long)a.B, (long long)a.T);
		if (!on(be, pad))
			return DSV32_FAIL(err, DSV32_E_USAGE, "attn_mask_hf pad: not on the backend's device");
		a.pad = pad->data;
		a.pad_t = pad->dtype;
	}
	a.causal_start = past_len;
	a.hf = true;
	return mask_run(be, &a, err);
}
