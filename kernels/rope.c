/* rope.c: argument checks and dispatch for RoPE and the de-interleave permutation (rope.h). */
#include "kernels/rope_impl.h"
#include "core/config.h"

_Static_assert(DSV32_ROPE_MAX_DIM == DSV32_MAX_ROPE_HEAD_DIM,
	       "config validation's qk_rope_head_dim limit is the RoPE kernel's");

static dsv32_status check_layout(dsv32_backend *be, const char *op, const dsv32_tensor *y,
				 const dsv32_tensor *x, int64_t off, int64_t rd,
				 dsv32_rope_args *a, dsv32_error *err)
{
	DSV32_TRY(dsv32_ew_check_act(be, y, op, "y", err));
	DSV32_TRY(dsv32_ew_check_act(be, x, op, "x", err));
	DSV32_TRY(dsv32_ew_check_same_shape(y, x, op, "y", "x", err));
	if (x->ndim != 3 && x->ndim != 4) {
		char s[96];
		return DSV32_FAIL(err, DSV32_E_SHAPE, "%s: x shape %s, expected [B, S, H, D] or "
				  "[B, S, D]", op, dsv32_shape_str(s, sizeof s, x->ndim, x->shape));
	}
	if (y->data != x->data && dsv32_ew_overlap(y, x))
		return DSV32_FAIL(err, DSV32_E_USAGE, "%s: y partially overlaps x", op);
	if (y->data == x->data && y->dtype != x->dtype)
		return DSV32_FAIL(err, DSV32_E_USAGE, "%s: in place with different dtypes", op);
	a->B = x->shape[0];
	a->S = x->shape[1];
	a->H = x->ndim == 4 ? x->shape[2] : 1;
	a->D = x->shape[x->ndim - 1];
	if (rd < 2 || rd % 2 || rd > DSV32_ROPE_MAX_DIM || off < 0 || off + rd > a->D)
		return DSV32_FAIL(err, DSV32_E_SHAPE, "%s: rope columns [%lld, %lld) in a last dim of "
				  "%lld (rope dim must be even, <= %d)", op, (long long)off,
				  (long long)(off + rd), (long long)a->D, DSV32_ROPE_MAX_DIM);
	a->y = y->data;
	a->yt = y->dtype;
	a->x = x->data;
	a->xt = x->dtype;
	a->off = off;
	a->rd = rd;
	return DSV32_OK;
}

static dsv32_status run(dsv32_backend *be, const dsv32_rope_args *a, const char *op,
			dsv32_error *err)
{
	if (a->B * a->S * a->H == 0)
		return DSV32_OK;
	if (be->device == DSV32_DEV_CPU) {
		dsv32_rope_cpu(a);
		return DSV32_OK;
	}
	return DSV32_CUDA_BODY(be, op, err, dsv32_rope_cuda(be, a, err));
}

dsv32_status dsv32_rope_ref(dsv32_backend *be, dsv32_tensor *y, const dsv32_tensor *x,
			    const dsv32_tensor *freqs, int64_t pos0, int64_t off, bool interleaved,
			    dsv32_error *err)
{
	const char *op = "rope_ref";
	DSV32_TRY(dsv32_ew_check_device(be, freqs, op, "freqs", err));
	if (freqs->dtype != DSV32_F32)
		return DSV32_FAIL(err, DSV32_E_DTYPE, "%s: freqs dtype %s, expected F32", op,
				  dsv32_dtype_name(freqs->dtype));
	if (freqs->ndim != 3 || freqs->shape[2] != 2) {
		char s[96];
		return DSV32_FAIL(err, DSV32_E_SHAPE, "%s: freqs shape %s, expected [T, rd/2, 2]", op,
				  dsv32_shape_str(s, sizeof s, freqs->ndim, freqs->shape));
	}
	dsv32_rope_args a = {.mode = DSV32_ROPE_REF};
	DSV32_TRY(check_layout(be, op, y, x, off, 2 * freqs->shape[1], &a, err));
	if (pos0 < 0 || pos0 + a.S > freqs->shape[0])
		return DSV32_FAIL(err, DSV32_E_SHAPE, "%s: positions [%lld, %lld) beyond the table's "
				  "%lld rows", op, (long long)pos0, (long long)(pos0 + a.S),
				  (long long)freqs->shape[0]);
	a.freqs = freqs->data;
	a.pos0 = pos0;
	a.interleaved = interleaved;
	return run(be, &a, op, err);
}

dsv32_status dsv32_rope_hf(dsv32_backend *be, dsv32_tensor *y, const dsv32_tensor *x,
			   const dsv32_tensor *cos, const dsv32_tensor *sin, int64_t off,
			   dsv32_error *err)
{
	const char *op = "rope_hf";
	DSV32_TRY(dsv32_ew_check_act(be, cos, op, "cos", err));
	DSV32_TRY(dsv32_ew_check_act(be, sin, op, "sin", err));
	DSV32_TRY(dsv32_ew_check_same_shape(sin, cos, op, "sin", "cos", err));
	if (cos->dtype != sin->dtype)
		return DSV32_FAIL(err, DSV32_E_DTYPE, "%s: cos is %s, sin %s", op,
				  dsv32_dtype_name(cos->dtype), dsv32_dtype_name(sin->dtype));
	dsv32_rope_args a = {.mode = DSV32_ROPE_HF};
	int64_t rd = dsv32_ew_last_dim(cos);
	DSV32_TRY(check_layout(be, op, y, x, off, rd, &a, err));
	int64_t cB = cos->ndim == 3 ? cos->shape[0] : 1;
	int64_t cS = cos->ndim >= 2 ? cos->shape[cos->ndim - 2] : 0;
	if ((cos->ndim != 2 && cos->ndim != 3) || cS != a.S || (cB != 1 && cB != a.B)) {
		char s[96];
		return DSV32_FAIL(err, DSV32_E_SHAPE, "%s: cos shape %s, expected [%lld, %lld] or "
				  "[%lld, %lld, %lld]", op,
				  dsv32_shape_str(s, sizeof s, cos->ndim, cos->shape), (long long)a.S,
				  (long long)rd, (long long)a.B, (long long)a.S, (long long)rd);
	}
	a.cos = cos->data;
	a.sin = sin->data;
	a.ct = cos->dtype;
	a.cB = cB;
	return run(be, &a, op, err);
}

dsv32_status dsv32_permute_deinterleave(dsv32_backend *be, dsv32_tensor *y, const dsv32_tensor *x,
					int64_t off, int64_t rd, bool inverse, dsv32_error *err)
{
	const char *op = "permute_deinterleave";
	dsv32_rope_args a = {.mode = DSV32_ROPE_PERMUTE, .inverse = inverse};
	DSV32_TRY(check_layout(be, op, y, x, off, rd, &a, err));
	return run(be, &a, op, err);
}
