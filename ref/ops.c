/* ops.c: the reference layout's ops over its own parameter and cache types, below the layer
 * parts (attn.c, indexer.c, mlp.c, moe.c call them; they call only kernels/): one Linear, the
 * rotary embedding, the unfused RMSNorm and the cache write. */
#include <stdlib.h>

#include "core/knobs.h"
#include "kernels/elementwise.h"
#include "kernels/fp8.h"
#include "kernels/gemm.h"
#include "kernels/rmsnorm.h"
#include "kernels/rope.h"
#include "kernels/yarn.h"
#include "layout_common/linear.h"
#include "layout_common/norm.h"
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
	dsv32_tensor x2, y2; /* every leading dim flattened to rows: x [M, K], y [M, N] */
	DSV32_TRY(lc_linear_rows(x, y, l->w.shape[0], &x2, &y2, err));
	if (l->w.dtype == DSV32_F8_E4M3 && dsv32_knob_on(&m->base.opts, DSV32_KNOB_ACT_QUANT))
		return dequant_linear(m, &y2, &x2, l, err);
	if (l->w.dtype == DSV32_F8_E4M3)
		return dsv32_linear_fp8(m->be, &y2, &x2, &l->w, &l->s, m->ue8m0, err);
	return dsv32_gemm(m->be, &y2, &x2, &l->w, err);
}

/* HF's rotary_emb(position_ids) for positions P..P+S-1 (shared by the batch rows): cos, sin
 * [1, S, dr] in the activation dtype. */
static dsv32_status hf_cos_sin(ref_model *m, dsv32_tensor *cos, dsv32_tensor *sin, int64_t P,
			       int64_t S, dsv32_error *err)
{
	int64_t *pos = malloc(sizeof(int64_t) * (size_t)S);
	if (!pos)
		return DSV32_FAIL(err, DSV32_E_NOMEM, "rope: %lld positions", (long long)S);
	for (int64_t s = 0; s < S; s++)
		pos[s] = P + s;
	dsv32_status rc = dsv32_yarn_hf_cos_sin(m->be, cos, sin, m->hf_inv_freq, m->hf_attn_factor,
						pos, 1, S, err);
	free(pos);
	return rc;
}

dsv32_status ref_rope(ref_model *m, dsv32_tensor *y, const dsv32_tensor *x, int64_t P,
		      int64_t off, bool interleaved, dsv32_error *err)
{
	int64_t S = x->shape[1], R = m->base.cfg.qk_rope_head_dim;
	bool pairing = interleaved && dsv32_knob_on(&m->base.opts, DSV32_KNOB_ROPE_PAIRING);
	if (!dsv32_knob_on(&m->base.opts, DSV32_KNOB_ROPE_FREQS)) {
		DSV32_TRY(dsv32_rope_ref(m->be, y, x, &m->freqs, P, off, interleaved, err));
		return pairing ? dsv32_permute_deinterleave(m->be, y, y, off, R, false, err) : DSV32_OK;
	}
	if (R / 2 > (int64_t)(sizeof m->hf_inv_freq / sizeof m->hf_inv_freq[0]))
		return DSV32_FAIL(err, DSV32_E_UNSUPPORTED, "rope-freqs knob: qk_rope_head_dim %lld "
				  "above 256", (long long)R);
	lc_pool p = {.be = m->be};
	dsv32_status rc = DSV32_OK;
	dsv32_tensor *cos, *sin;
	LC_POOL(cos, m->act, 3, 1, S, R);
	LC_POOL(sin, m->act, 3, 1, S, R);
	LC_CK(hf_cos_sin(m, cos, sin, P, S, err));
	dsv32_tensor c2 = lc_view(cos, 0, 2, LC_SHAPE(S, R)), s2 = lc_view(sin, 0, 2, LC_SHAPE(S, R));
	if (interleaved) { /* HF's apply_rotary_pos_emb_interleave, put back in the ref order
			    * unless the rope-pairing knob keeps HF's */
		LC_CK(dsv32_permute_deinterleave(m->be, y, x, off, R, false, err));
		LC_CK(dsv32_rope_hf(m->be, y, y, &c2, &s2, off, err));
		if (!pairing)
			LC_CK(dsv32_permute_deinterleave(m->be, y, y, off, R, true, err));
	} else {
		LC_CK(dsv32_rope_hf(m->be, y, x, &c2, &s2, off, err));
	}
out:
	lc_pool_free(&p);
	return rc;
}

dsv32_status ref_rmsnorm(ref_model *m, dsv32_tensor *y, const dsv32_tensor *x,
			 const dsv32_tensor *w, dsv32_error *err)
{
	return lc_rmsnorm(m->be, y, x, w, 1e-6,
			  dsv32_knob_on(&m->base.opts, DSV32_KNOB_NORM_WEIGHT_DTYPE), err);
}

dsv32_status ref_cache_write(ref_model *m, dsv32_tensor *cache, const dsv32_tensor *x, int64_t B,
			     int64_t S, int64_t P, dsv32_error *err)
{
	int64_t maxS = cache->shape[1], d = cache->shape[2];
	dsv32_tensor dst = lc_view(cache, 0, 2, LC_SHAPE(B, maxS * d)); /* rows [0, B) */
	dsv32_tensor src = lc_view(x, 0, 2, LC_SHAPE(B, S * d));
	return dsv32_copy_cols(m->be, &dst, &src, 0, P * d, S * d, err);
}
