/* ops.c: the HF layout's ops over its own parameter type, below the layer parts (attn.c,
 * indexer.c, mlp.c, moe.c and model.c call them; they call only kernels/ and layout_common/):
 * a GEMM operand from an hf_mat (lazy fp8 dequantized on demand), one Linear, the unfused
 * RMSNorm, and the rope tap in canonical order.
 *
 * Rope taps: the MLA rope channels stay in HF's half-split (de-interleaved) order inside the
 * model; the q_rope / k_rope taps put them back in the reference's interleaved order (inverse
 * permutation) on a copy, so the model's tensors are never modified (with the rope-pairing knob
 * they are interleaved already and tapped as they are).
 *
 * The rotary embedding (hf_rope_init, hf_rope) is here with the knobs toward ref that change it
 * (core/knobs.h: yarn-always, softmax-scale, rope-freqs, rope-pairing), each the reference's
 * own kernel or arithmetic (ref/model.c, ref/ops.c). */
#include "core/knobs.h"
#include "hf_layout/hf_internal.h"
#include "kernels/elementwise.h"
#include "kernels/fp8.h"
#include "kernels/gemm.h"
#include "kernels/rope.h"
#include "layout_common/linear.h"
#include "layout_common/norm.h"

dsv32_status hf_mat_get(hf_model *m, const hf_mat *mat, dsv32_tensor *out, dsv32_error *err)
{
	if (mat->w.dtype != DSV32_F8_E4M3) {
		*out = mat->w;
		return DSV32_OK;
	}
	/* lazy fp8: the load sized the scratch for the largest lazy matrix */
	int64_t n = dsv32_tensor_numel(&mat->w);
	if (!m->wscratch.data || n > dsv32_tensor_numel(&m->wscratch))
		return DSV32_FAIL(err, DSV32_E_INTERNAL, "hf: fp8 matrix of %lld elements, dequant "
				  "scratch of %lld", (long long)n,
				  (long long)dsv32_tensor_numel(&m->wscratch));
	*out = lc_view(&m->wscratch, 0, mat->w.ndim, mat->w.shape);
	return dsv32_weight_dequant(m->be, out, &mat->w, &mat->scale, err);
}

/* The act-quant knob toward ref (core/knobs.h): the reference's Linear on an fp8 weight, e4m3
 * activations in 128-blocks and the fp8 GEMM (dsv32_linear_fp8, as ref_linear), over every
 * leading dim flattened to rows. The codes are there: the knob keeps fp8 matrices lazy
 * (weights.c). */
static dsv32_status fp8_linear(hf_model *m, dsv32_tensor *y, const dsv32_tensor *x,
			       const hf_mat *mat, dsv32_error *err)
{
	dsv32_tensor x2, y2;
	DSV32_TRY(lc_linear_rows(x, y, mat->w.shape[0], &x2, &y2, err));
	return dsv32_linear_fp8(m->be, &y2, &x2, &mat->w, &mat->scale, m->base.cfg.scale_fmt_ue8m0,
				err);
}

dsv32_status hf_linear(hf_model *m, dsv32_tensor *y, const dsv32_tensor *x, const hf_mat *mat,
		       dsv32_error *err)
{
	if (mat->w.dtype == DSV32_F8_E4M3 && dsv32_hfknob_on(&m->base.opts, DSV32_HFKNOB_ACT_QUANT))
		return fp8_linear(m, y, x, mat, err);
	if (mat->w.dtype == DSV32_F8_E4M3) /* lazy fp8: the bits of hf_mat_get + dsv32_gemm */
		return dsv32_dequant_gemm(m->be, y, x, &mat->w, &mat->scale,
					  m->wscratch.data ? &m->wscratch : NULL, err);
	return dsv32_gemm(m->be, y, x, &mat->w, err);
}

dsv32_status hf_rmsnorm(hf_model *m, dsv32_tensor *y, const dsv32_tensor *x,
		       const dsv32_tensor *w, double eps, dsv32_error *err)
{
	bool hf_w = !dsv32_hfknob_on(&m->base.opts, DSV32_HFKNOB_NORM_WEIGHT_DTYPE);
	return lc_rmsnorm(m->be, y, x, w, eps, hf_w, err);
}

dsv32_status hf_tap_rope(hf_model *m, dsv32_layer_tap id, int li, const dsv32_tensor *x,
			 int64_t off, dsv32_error *err)
{
	if (!lc_taps_on(hf_tapper(m)))
		return DSV32_OK;
	int64_t R = m->base.cfg.qk_rope_head_dim;
	int nd = x->ndim;
	int64_t shape[4] = {x->shape[0], x->shape[1], nd == 4 ? x->shape[2] : R, R};
	int64_t rows = dsv32_tensor_numel(x) / x->shape[nd - 1];
	lc_pool p = {.be = m->be};
	dsv32_status rc = DSV32_OK;
	dsv32_tensor *r, *perm;
	LC_POOL_AS(r, x->dtype, nd, shape);
	LC_POOL_AS(perm, x->dtype, nd, shape);
	dsv32_tensor r2 = lc_view(r, 0, 2, LC_SHAPE(rows, R));
	dsv32_tensor x2 = lc_view(x, 0, 2, LC_SHAPE(rows, x->shape[nd - 1]));
	LC_CK(dsv32_copy_cols(m->be, &r2, &x2, off, 0, R, err));
	if (dsv32_hfknob_on(&m->base.opts, DSV32_HFKNOB_ROPE_PAIRING)) { /* already interleaved */
		LC_CK(lc_tap_layer(hf_tapper(m), id, li, r, err));
		goto out;
	}
	LC_CK(dsv32_permute_deinterleave(m->be, perm, r, 0, R, true, err));
	LC_CK(lc_tap_layer(hf_tapper(m), id, li, perm, err));
out:
	lc_pool_free(&p);
	return rc;
}

/* ---- rotary embedding and its knobs toward ref (core/knobs.h) ---- */

void hf_rope_init(hf_model *m)
{
	const dsv32_config *c = &m->base.cfg;
	const dsv32_model_opts *o = &m->base.opts;
	int64_t qk = dsv32_config_qk_head_dim(c);
	/* the reference's max_seq_len: its table length and YaRN switch (ref/model.c) */
	int64_t max_seq = o->max_seq_len > 0 ? o->max_seq_len : c->max_seq_len;
	dsv32_yarn_params yp;
	dsv32_yarn_params_from_config(&yp, c);
	/* the yarn-always knob: the reference turns YaRN (and mscale) off at this length */
	bool off = dsv32_hfknob_on(o, DSV32_HFKNOB_YARN) && max_seq <= c->original_seq_len;
	if (off) { /* HF's default rope: 1 / base^(2i/dim), the reference's unscaled freqs */
		yp.yarn = false;
		dsv32_yarn_params plain = yp;
		plain.max_seq_len = plain.original_seq_len;
		dsv32_yarn_ref_freqs(&plain, m->inv_freq);
		m->attn_factor = 1.0;
	} else {
		dsv32_yarn_hf_inv_freq(&yp, m->inv_freq, &m->attn_factor);
	}
	m->scaling = (float)dsv32_softmax_scale_hf(qk, &yp);
	/* the reference's parameters; the softmax-scale knob takes its whole arithmetic, its own
	 * YaRN switch included (as the knob toward hf takes HF's from the config alone) */
	m->yref = yp;
	m->yref.max_seq_len = max_seq;
	if (dsv32_hfknob_on(o, DSV32_HFKNOB_SOFTMAX_SCALE))
		m->scaling = (float)dsv32_softmax_scale_ref(qk, &m->yref);
	/* the rope-freqs table: YaRN on exactly when hf has it on (force-yarn's switch) */
	if (!off && max_seq <= c->original_seq_len)
		m->yref.max_seq_len = c->original_seq_len + 1;
}

dsv32_status hf_rope_check_positions(const hf_model *m, const int64_t *pos, int64_t B, int64_t S,
				     int64_t past, dsv32_error *err)
{
	if (!dsv32_hfknob_on(&m->base.opts, DSV32_HFKNOB_ROPE_FREQS))
		return DSV32_OK;
	for (int64_t i = 0; i < B * S; i++)
		if (pos[i] != past + i % S)
			return DSV32_FAIL(err, DSV32_E_UNSUPPORTED,
					  "hf forward: rope-freqs knob: position_ids[%lld][%lld] = %lld, "
					  "the reference's table needs start_pos + s = %lld",
					  (long long)(i / S), (long long)(i % S), (long long)pos[i],
					  (long long)(past + i % S));
	if (past + S > m->freqs.shape[0])
		return DSV32_FAIL(err, DSV32_E_USAGE, "hf forward: rope-freqs knob: position %lld "
				  "beyond the reference's table of %lld", (long long)(past + S - 1),
				  (long long)m->freqs.shape[0]);
	return DSV32_OK;
}

dsv32_status hf_rope(hf_model *m, const hf_fwd *f, dsv32_tensor *x, int64_t off, bool mla,
		     dsv32_error *err)
{
	const dsv32_model_opts *o = &m->base.opts;
	int64_t R = m->base.cfg.qk_rope_head_dim;
	bool pairing = mla && dsv32_hfknob_on(o, DSV32_HFKNOB_ROPE_PAIRING);
	if (dsv32_hfknob_on(o, DSV32_HFKNOB_ROPE_FREQS)) { /* the reference's rotation */
		DSV32_TRY(dsv32_rope_ref(m->be, x, x, &m->freqs, f->past, off, mla, err));
		if (mla && !pairing) /* HF's channel order from here on */
			DSV32_TRY(dsv32_permute_deinterleave(m->be, x, x, off, R, false, err));
		return DSV32_OK;
	}
	/* apply_rotary_pos_emb_interleave: de-interleave, then half-split rotation; the
	 * rope-pairing knob puts the channels back in the interleaved order (an exact copy) */
	if (mla)
		DSV32_TRY(dsv32_permute_deinterleave(m->be, x, x, off, R, false, err));
	DSV32_TRY(dsv32_rope_hf(m->be, x, x, &f->cos, &f->sin, off, err));
	if (pairing)
		DSV32_TRY(dsv32_permute_deinterleave(m->be, x, x, off, R, true, err));
	return DSV32_OK;
}
