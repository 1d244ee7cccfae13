/* ops.c: the reference layout's ops over its own parameter and cache types, below the layer
 * parts (attn.c, indexer.c, mlp.c, moe.c call them; they call only kernels/): one Linear and the
 * cache write. */
#include "core/knobs.h"
#include "kernels/elementwise.h"
#include "kernels/fp8.h"
#include "kernels/gemm.h"
#include "ref/ref_internal.h"

/* The act-quant knob (core/knobs.h): HF's Linear on an fp8 weight, dequantized to bf16
 * (dsv32_weight_dequant, as its loader does) and multiplied with the bf16 activations. */
static dsv32_status dequant_linear(ref_model *m, dsv32_tensor *y, const dsv32_tensor *x,
				   const ref_lin *l, dsv32_error *err)
{
	lc_pool p = {.be = m->be};
	dsv32_status rc = DSV32_OK;
	dsv32_tensor *w;
	LC_POOL(w, DSV32_BF16, 2, l->w.shape[0], l->w.shape[1]);
	LC_CK(dsv32_weight_dequant(m->be, w, &l->w, &l->s, err));
	LC_CK(dsv32_gemm(m->be, y, x, w, err));
out:
	lc_pool_free(&p);
	return rc;
}

dsv32_status ref_linear(ref_model *m, dsv32_tensor *y, const dsv32_tensor *x, const ref_lin *l,
			dsv32_error *err)
{
	/* flatten every leading dim to rows: x [M, K], y [M, N] */
	int64_t K = x->shape[x->ndim - 1], N = l->w.shape[0];
	int64_t M = K ? dsv32_tensor_numel(x) / K : 0;
	if (dsv32_tensor_numel(y) != M * N)
		return DSV32_FAIL(err, DSV32_E_SHAPE, "linear: %lld rows of %lld outputs expected",
				  (long long)M, (long long)N);
	dsv32_tensor x2 = lc_view(x, 0, 2, LC_SHAPE(M, K));
	dsv32_tensor y2 = lc_view(y, 0, 2, LC_SHAPE(M, N));
	if (l->w.dtype == DSV32_F8_E4M3 && dsv32_knob_on(&m->base.opts, DSV32_KNOB_ACT_QUANT))
		return dequant_linear(m, &y2, &x2, l, err);
	if (l->w.dtype == DSV32_F8_E4M3)
		return dsv32_linear_fp8(m->be, &y2, &x2, &l->w, &l->s, m->ue8m0, err);
	return dsv32_gemm(m->be, &y2, &x2, &l->w, err);
}

dsv32_status ref_cache_write(ref_model *m, dsv32_tensor *cache, const dsv32_tensor *x, int64_t B,
			     int64_t S, int64_t P, dsv32_error *err)
{
	int64_t maxS = cache->shape[1], d = cache->shape[2];
	dsv32_tensor dst = lc_view(cache, 0, 2, LC_SHAPE(B, maxS * d)); /* rows [0, B) */
	dsv32_tensor src = lc_view(x, 0, 2, LC_SHAPE(B, S * d));
	return dsv32_copy_cols(m->be, &dst, &src, 0, P * d, S * d, err);
}
