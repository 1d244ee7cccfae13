/* model.c: open/close, the HF forward (DeepseekV32ForCausalLM.forward, docs/spec/hf_layout.md §3.2, §4.2
 * mask, §5 decoder layer, §7 LM head) and the common dsv32_model vtable. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convert/namemap.h"
#include "core/knobs.h"
#include "hf_layout/hf_internal.h"
#include "kernels/attention.h"
#include "kernels/elementwise.h"
#include "kernels/gemm.h"
#include "kernels/rmsnorm.h"
#include "kernels/yarn.h"
#include "layout_common/norm.h"

static hf_model *HF(dsv32_model *m)
{
	return (hf_model *)m;
}

/* ---- per-forward context: cos/sin from position_ids, the causal + padding mask ---- */
static void fwd_free(hf_model *m, hf_fwd *f)
{
	lc_free(m->be, &f->cos);
	lc_free(m->be, &f->sin);
	lc_free(m->be, &f->causal);
	lc_free(m->be, &f->pad_dev);
}

static dsv32_status fwd_begin(hf_model *m, hf_fwd *f, int64_t B, int64_t S, int64_t past,
			      const int64_t *amask, const int64_t *pos_in, dsv32_error *err)
{
	const dsv32_config *c = &m->base.cfg;
	memset(f, 0, sizeof *f);
	if (B < 1 || S < 1)
		return DSV32_FAIL(err, DSV32_E_USAGE, "hf forward: B = %lld, S = %lld, expected >= 1",
				  (long long)B, (long long)S);
	if (past > 0 && B != m->cache_b)
		return DSV32_FAIL(err, DSV32_E_USAGE,
				  "hf forward: batch %lld, but the cache holds a sequence of batch %lld "
				  "(reset the model for a new sequence)", (long long)B,
				  (long long)m->cache_b);
	if (B > m->cap_b)
		return DSV32_FAIL(err, DSV32_E_USAGE, "hf forward: batch %lld above the cache capacity %lld",
				  (long long)B, (long long)m->cap_b);
	if (past + S > m->cap_t)
		return DSV32_FAIL(err, DSV32_E_USAGE,
				  "hf forward: cache length %lld + %lld new tokens exceeds the cache "
				  "capacity %lld (max_seq_len)", (long long)past, (long long)S,
				  (long long)m->cap_t);
	f->B = B, f->S = S, f->past = past, f->T = past + S;
	int64_t T = f->T, R = c->qk_rope_head_dim;

	int64_t *pos = dsv32_backend_host_get(m->be, sizeof(int64_t) * (size_t)(B * S));
	int64_t *pad = dsv32_backend_host_get(m->be, sizeof(int64_t) * (size_t)(B * T));
	dsv32_status rc = DSV32_OK;
	if (!pos || !pad) {
		rc = DSV32_FAIL(err, DSV32_E_NOMEM, "hf forward: positions");
		goto out;
	}
	for (int64_t b = 0; b < B; b++)
		for (int64_t s = 0; s < S; s++) {
			int64_t p = pos_in ? pos_in[b * S + s] : past + s;
			if (p < 0 || p >= (int64_t)1 << 40) {
				rc = DSV32_FAIL(err, DSV32_E_USAGE,
						"hf forward: position_ids[%lld][%lld] = %lld, expected "
						"a non-negative position", (long long)b, (long long)s,
						(long long)p);
				goto out;
			}
			pos[b * S + s] = p;
		}
	/* HF folds the 2-D mask it is given (covering past + new tokens) into the causal mask;
	 * without one every key is attended */
	for (int64_t b = 0; b < B; b++)
		for (int64_t t = 0; t < T; t++) {
			int64_t v = amask ? amask[b * T + t] : 1;
			if (v != 0 && v != 1) {
				rc = DSV32_FAIL(err, DSV32_E_USAGE,
						"hf forward: attention_mask[%lld][%lld] = %lld, expected 0 or 1",
						(long long)b, (long long)t, (long long)v);
				goto out;
			}
			pad[b * T + t] = v;
			m->pad[b * m->cap_t + t] = v;
		}
	LC_CK(hf_rope_check_positions(m, pos, B, S, past, err)); /* the rope-freqs knob's table */
	LC_CK(lc_alloc(m->be, &f->cos, m->act, 3, LC_SHAPE(B, S, R), err));
	LC_CK(lc_alloc(m->be, &f->sin, m->act, 3, LC_SHAPE(B, S, R), err));
	LC_CK(dsv32_yarn_hf_cos_sin(m->be, &f->cos, &f->sin, m->inv_freq, m->attn_factor, pos, B, S,
				    err));
	LC_CK(lc_alloc(m->be, &f->pad_dev, DSV32_I64, 2, LC_SHAPE(B, T), err));
	LC_CK(dsv32_backend_upload(m->be, f->pad_dev.data, pad, sizeof(int64_t) * (size_t)(B * T),
				   err));
	LC_CK(lc_alloc(m->be, &f->causal, m->act, 3, LC_SHAPE(B, S, T), err));
	LC_CK(hf_causal_mask(m, f, err)); /* attn.c: finfo.min, or -inf with the mask knob */
out:
	dsv32_backend_host_put(m->be, pos, sizeof(int64_t) * (size_t)(B * S));
	dsv32_backend_host_put(m->be, pad, sizeof(int64_t) * (size_t)(B * T));
	if (rc != DSV32_OK)
		fwd_free(m, f);
	return rc;
}

static bool fused_norms(const hf_model *m)
{
	return dsv32_hfknob_on(&m->base.opts, DSV32_HFKNOB_NORM_FUSION);
}

/* The residual add and the norm after it (layout_common/norm.h): HF's bf16 add, then the norm
 * of the rounded stream; with the norm-fusion knob toward ref, the reference's fused form (the
 * norm of the unrounded fp32 sum). res_out may alias res. The stream res_out is the same bf16
 * rounding of the same fp32 sum either way. */
static dsv32_status norm_add(hf_model *m, dsv32_tensor *y, dsv32_tensor *res_out,
			     const dsv32_tensor *x, const dsv32_tensor *res, const dsv32_tensor *w,
			     dsv32_error *err)
{
	bool hf_w = !dsv32_hfknob_on(&m->base.opts, DSV32_HFKNOB_NORM_WEIGHT_DTYPE);
	return lc_norm_add(m->be, y, res_out, x, res, w, m->base.cfg.rms_norm_eps, fused_norms(m),
			   hf_w, err);
}

/* The MLP or MoE of layer li on its norm x: out [B,S,dim]. */
static dsv32_status ffn(hf_model *m, int li, const dsv32_tensor *x, dsv32_tensor *out,
			dsv32_error *err)
{
	hf_layer_w *w = &m->layers[li];
	return w->moe ? hf_moe(m, li, x, out, err)
		      : hf_mlp(m, &w->gate, &w->up, &w->down, false, x, out, err);
}

/* One decoder layer (DeepseekV32DecoderLayer.forward): h [B,S,dim] is the residual stream.
 * HF (br NULL): h is updated in place, both adds done here. With the norm-fusion knob toward
 * ref, the residual is carried the way the reference's Block carries it: br receives the
 * layer's un-added ffn output, and when `pending` br holds the previous layer's, added to h
 * only inside this layer's fused attention norm (which forms layers.{li-1}.out). */
static dsv32_status layer_step(hf_model *m, int li, const hf_fwd *f, dsv32_tensor *h,
			       dsv32_tensor *br, bool pending, dsv32_error *err)
{
	const dsv32_config *c = &m->base.cfg;
	hf_layer_w *w = &m->layers[li];
	lc_tapper tp = hf_tapper(m);
	lc_pool p = {.be = m->be};
	dsv32_status rc = DSV32_OK;
	dsv32_tensor *x, *a;
	LC_POOL_AS(x, m->act, 3, h->shape);
	LC_POOL_AS(a, m->act, 3, h->shape);
	if (pending) {
		LC_CK(norm_add(m, x, h, br, h, &w->input_ln, err));
		LC_CK(lc_tap_layer(tp, DSV32_LTAP_OUT, li - 1, h, err));
	} else {
		LC_CK(hf_rmsnorm(m, x, h, &w->input_ln, c->rms_norm_eps, err));
	}
	LC_CK(lc_tap_layer(tp, DSV32_LTAP_ATTN_NORM, li, x, err));
	LC_CK(hf_attention(m, li, f, x, a, err));
	LC_CK(lc_tap_layer(tp, DSV32_LTAP_ATTN_OUT, li, a, err));
	LC_CK(norm_add(m, x, h, a, h, &w->post_ln, err)); /* residual + attn (act dtype) */
	LC_CK(lc_tap_layer(tp, DSV32_LTAP_ATTN_RESIDUAL, li, h, err));
	LC_CK(lc_tap_layer(tp, DSV32_LTAP_FFN_NORM, li, x, err));
	LC_CK(ffn(m, li, x, br ? br : a, err));
	LC_CK(lc_tap_layer(tp, DSV32_LTAP_FFN_OUT, li, br ? br : a, err));
	if (!br) {
		LC_CK(dsv32_add(m->be, h, h, a, err));
		LC_CK(lc_tap_layer(tp, DSV32_LTAP_OUT, li, h, err));
	}
out:
	lc_pool_free(&p);
	return rc;
}

/* Whether the lm_head of all B rows can run as one GEMM (one pass over the [V, dim] weight,
 * 1.85 GB at real width, instead of B): the kept positions are one strided row set (keep 1) or
 * all of y (keep S), on the CPU. The fixed engine's outputs do not depend on how rows are
 * grouped into calls (gemm.h: one order per output); the host engine's kernels may choose by M,
 * and one call of M = B (keep 1: rows S·dim apart, as transformers' hidden_states[:, -1:, :]
 * reaches F.linear as a strided [B, dim] view) is the call torch makes. CUDA keeps one call
 * per batch row until it has run on a device. */
static bool lm_head_one_gemm(const hf_model *m, int64_t B, int64_t S, int64_t keep)
{
	return B > 1 && (keep == 1 || keep == S) && m->be->device == DSV32_DEV_CPU;
}

/* The dtype of the head's output: the activation dtype, F32 with the logits-dtype knob. */
static dsv32_dtype hf_logits_dtype(const hf_model *m)
{
	return dsv32_hfknob_on(&m->base.opts, DSV32_HFKNOB_LOGITS_DTYPE) ? DSV32_F32 : m->act;
}

/* The final norm and lm_head on the last `keep` positions of h [B,S,dim] (with the norm-fusion
 * knob, h is the residual and br the last layer's un-added output, added in the fused norm);
 * logits_out: host [B, keep, V] in the activation dtype, or F32 with the logits-dtype knob
 * toward ref (the head's GEMM output kept in fp32, as the reference's), allocated here, or
 * with `into` a host buffer of that dtype and shape the caller gives. */
static dsv32_status lm_head(hf_model *m, dsv32_tensor *h, dsv32_tensor *br, int64_t keep,
			    dsv32_tensor *logits_out, bool into, dsv32_error *err)
{
	const dsv32_config *c = &m->base.cfg;
	int64_t B = h->shape[0], S = h->shape[1], D = c->dim, V = c->vocab_size;
	lc_tapper tp = hf_tapper(m);
	lc_pool p = {.be = m->be};
	dsv32_status rc = DSV32_OK;
	dsv32_tensor *y, *lg, head = {0};
	dsv32_dtype ldt = hf_logits_dtype(m);
	LC_POOL(y, m->act, 3, B, S, D);
	if (br) {
		LC_CK(norm_add(m, y, h, br, h, &m->norm, err));
		LC_CK(lc_tap_layer(tp, DSV32_LTAP_OUT, (int)c->n_layers - 1, h, err));
	} else {
		LC_CK(hf_rmsnorm(m, y, h, &m->norm, c->rms_norm_eps, err));
	}
	LC_CK(lc_tap_model(tp, DSV32_MTAP_FINAL_NORM, y, err));
	LC_POOL(lg, ldt, 3, B, keep, V);
	LC_CK(hf_mat_get(m, &m->lm_head, &head, err));
	if (lm_head_one_gemm(m, B, S, keep)) { /* rows b·S + S - keep .. of y, stride S·D if keep 1 */
		size_t esz = dsv32_dtype_size(m->act);
		dsv32_gemm_desc d = {
			.batch = 1, .M = keep == S ? B * S : B, .N = V, .K = D, .trans_w = true,
			.x_dtype = m->act, .w_dtype = head.dtype, .y_dtype = ldt,
			.x = (const char *)y->data + (size_t)((S - keep) * D) * esz,
			.ldx = keep == S ? D : S * D, .w = head.data, .ldw = D,
			.y = lg->data, .ldy = V,
		};
		LC_CK(dsv32_gemm_run(m->be, &d, err));
	} else {
		for (int64_t b = 0; b < B; b++) { /* lm_head on the kept positions */
			dsv32_tensor xv = lc_view(y, (b * S + S - keep) * D, 2, LC_SHAPE(keep, D));
			dsv32_tensor lv = lc_view(lg, b * keep * V, 2, LC_SHAPE(keep, V));
			LC_CK(dsv32_gemm(m->be, &lv, &xv, &head, err));
		}
	}
	LC_CK(lc_tap_model(tp, DSV32_MTAP_LOGITS, lg, err));
	if (!into)
		LC_CK(dsv32_tensor_alloc(logits_out, ldt, 3, LC_SHAPE(B, keep, V), err));
	LC_CK(dsv32_backend_download(m->be, logits_out->data, lg->data, dsv32_tensor_nbytes(lg),
				     err));
out:
	lc_pool_free(&p);
	return rc;
}

/* dsv32_hf_forward; into: logits_out is a host buffer of the output's dtype and shape to
 * write (the common forward's scratch), else a new tensor is allocated. */
static dsv32_status hf_forward(dsv32_model *mm, const int64_t *input_ids, int64_t B, int64_t S,
			       const int64_t *attention_mask, const int64_t *position_ids,
			       int64_t logits_to_keep, dsv32_tensor *logits_out, bool into,
			       dsv32_error *err)
{
	hf_model *m = HF(mm);
	const dsv32_config *c = &m->base.cfg;
	int64_t D = c->dim, V = c->vocab_size;
	if (logits_to_keep < 0)
		return DSV32_FAIL(err, DSV32_E_USAGE, "hf forward: logits_to_keep = %lld, expected >= 0",
				  (long long)logits_to_keep);
	for (int64_t i = 0; i < B * S; i++)
		if (input_ids[i] < 0 || input_ids[i] >= V)
			return DSV32_FAIL(err, DSV32_E_USAGE,
					  "hf forward: input_ids[%lld][%lld] = %lld outside the "
					  "vocabulary [0, %lld)", (long long)(i / S), (long long)(i % S),
					  (long long)input_ids[i], (long long)V);
	hf_fwd f;
	int64_t past = m->cache_len;
	DSV32_TRY(fwd_begin(m, &f, B, S, past, attention_mask, position_ids, err));
	int64_t keep = logits_to_keep == 0 || logits_to_keep > S ? S : logits_to_keep;
	lc_pool p = {.be = m->be};
	dsv32_status rc = DSV32_OK;
	dsv32_tensor *ids, *h, *br = NULL;
	LC_POOL(ids, DSV32_I64, 2, B, S);
	LC_CK(dsv32_backend_upload(m->be, ids->data, input_ids, sizeof(int64_t) * (size_t)(B * S),
				   err));
	LC_POOL(h, m->act, 3, B, S, D);
	LC_CK(dsv32_embedding(m->be, h, &m->embed, ids, err));
	LC_CK(lc_tap_model(hf_tapper(m), DSV32_MTAP_EMBED, h, err));
	if (fused_norms(m)) /* the carried branch of the reference's Block */
		LC_POOL(br, m->act, 3, B, S, D);
	m->cache_b = B; /* the layers write the cache rows of this batch */
	for (int li = 0; li < (int)c->n_layers; li++)
		LC_CK(layer_step(m, li, &f, h, br, br && li > 0, err));
	LC_CK(lm_head(m, h, br, keep, logits_out, into, err));
	m->cache_len = past + S;
out:
	if (rc != DSV32_OK && past == 0)
		m->cache_b = 0;
	lc_pool_free(&p);
	fwd_free(m, &f);
	return rc;
}

dsv32_status dsv32_hf_forward(dsv32_model *mm, const int64_t *input_ids, int64_t B, int64_t S,
			      const int64_t *attention_mask, const int64_t *position_ids,
			      int64_t logits_to_keep, dsv32_tensor *logits_out, dsv32_error *err)
{
	return hf_forward(mm, input_ids, B, S, attention_mask, position_ids, logits_to_keep,
			  logits_out, false, err);
}

int64_t dsv32_hf_cache_length(const dsv32_model *m)
{
	return ((const hf_model *)m)->cache_len;
}

/* ---- the common vtable ---- */
static dsv32_status vt_forward(dsv32_model *mm, const int64_t *tokens, int64_t B, int64_t S,
			       int64_t start_pos, dsv32_tensor *logits_out, dsv32_error *err)
{
	hf_model *m = HF(mm);
	if (start_pos != m->cache_len)
		return DSV32_FAIL(err, DSV32_E_USAGE,
				  "hf forward: start_pos %lld does not match the cache length %lld "
				  "(the HF cache appends; reset for a new sequence)",
				  (long long)start_pos, (long long)m->cache_len);
	/* the [B, 1, V] logits in their dtype, in host scratch of the backend's cache */
	int64_t V = mm->cfg.vocab_size;
	dsv32_dtype ldt = hf_logits_dtype(m);
	size_t bytes = (size_t)(B * V) * dsv32_dtype_size(ldt);
	dsv32_tensor lg = dsv32_tensor_view(dsv32_backend_host_get(m->be, bytes), ldt, 3,
					    LC_SHAPE(B, 1, V));
	if (!lg.data)
		return DSV32_FAIL(err, DSV32_E_NOMEM, "hf forward: %zu bytes of logits", bytes);
	*logits_out = (dsv32_tensor){0};
	dsv32_status rc = hf_forward(mm, tokens, B, S, NULL, NULL, 1, &lg, true, err);
	if (rc == DSV32_OK)
		rc = lc_logits_out(&m->base, &m->logits_keep, logits_out, B, V, err);
	if (rc == DSV32_OK)
		dsv32_convert(logits_out->data, DSV32_F32, lg.data, lg.dtype, (size_t)(B * V));
	dsv32_backend_host_put(m->be, lg.data, bytes);
	return rc;
}

/* Host tensor h (any float dtype, the shape of dev) -> dev, in the activation dtype. */
static dsv32_status upload_act(hf_model *m, dsv32_tensor *dev, const dsv32_tensor *h,
			       dsv32_error *err)
{
	if (!dsv32_tensor_same_shape(dev, h))
		return DSV32_FAIL(err, DSV32_E_SHAPE, "hf layer_forward: input tensors of one shape "
				  "[B, S, dim] expected");
	dsv32_tensor tmp = {0}; /* host: h in the activation dtype */
	DSV32_TRY(dsv32_tensor_alloc(&tmp, m->act, h->ndim, h->shape, err));
	dsv32_status rc = DSV32_OK;
	if (!dsv32_convert(tmp.data, m->act, h->data, h->dtype, (size_t)dsv32_tensor_numel(h)))
		rc = DSV32_FAIL(err, DSV32_E_DTYPE, "hf layer_forward: input dtype %s",
				dsv32_dtype_name(h->dtype));
	if (rc == DSV32_OK)
		rc = dsv32_backend_upload(m->be, dev->data, tmp.data, dsv32_tensor_nbytes(&tmp), err);
	dsv32_tensor_free(&tmp);
	return rc;
}

/* The layer's inputs on the device: h the stream, and with the norm-fusion knob (br non-NULL)
 * the pending branch *pending added inside the fused norm, as the reference's layer_forward
 * takes them (ref/model.c vt_layer_forward): the driver's un-added pair (in->branch /
 * in->residual) when given, so the norm sees the unrounded fp32 sum; else hidden + 0, exact.
 * Layer 0 has no pending branch (its norm is the plain norm of the embedding). */
static dsv32_status layer_inputs(hf_model *m, int layer, const dsv32_layer_input *in,
				 dsv32_tensor *h, dsv32_tensor *br, bool *pending, dsv32_error *err)
{
	*pending = br && layer > 0;
	if (!br || !in->branch || (layer > 0 && !in->residual))
		return upload_act(m, h, in->hidden, err); /* br stays zero-filled */
	if (layer == 0)
		return upload_act(m, h, in->branch, err);
	DSV32_TRY(upload_act(m, h, in->residual, err));
	return upload_act(m, br, in->branch, err);
}

static dsv32_status vt_layer_forward(dsv32_model *mm, int layer, const dsv32_layer_input *in,
				     int64_t start_pos, dsv32_tensor *hidden_out, dsv32_error *err)
{
	hf_model *m = HF(mm);
	const dsv32_tensor *hidden_in = in->hidden; /* HF adds in bf16 first: the pair is not needed */
	const dsv32_config *c = &mm->cfg;
	if (layer < 0 || layer >= (int)c->n_layers)
		return DSV32_FAIL(err, DSV32_E_USAGE, "hf layer_forward: layer %d outside [0, %lld)",
				  layer, (long long)c->n_layers);
	if (hidden_in->ndim != 3 || hidden_in->shape[2] != c->dim)
		return DSV32_FAIL(err, DSV32_E_SHAPE, "hf layer_forward: hidden_in must be [B, S, %lld]",
				  (long long)c->dim);
	/* layer-major (m->lm set): layer 0 runs every step before layer 1 runs any, so the
	 * cached length moves on only with the last layer */
	if (layer == 0 && !m->lm && start_pos != m->cache_len)
		return DSV32_FAIL(err, DSV32_E_USAGE,
				  "hf layer_forward: start_pos %lld does not match the cache length %lld",
				  (long long)start_pos, (long long)m->cache_len);
	int64_t B = hidden_in->shape[0], S = hidden_in->shape[1];
	hf_fwd f;
	DSV32_TRY(fwd_begin(m, &f, B, S, start_pos, NULL, NULL, err));
	lc_pool p = {.be = m->be};
	dsv32_status rc = DSV32_OK;
	dsv32_tensor *h, *br = NULL;
	bool pending;
	LC_POOL_AS(h, m->act, 3, hidden_in->shape);
	if (fused_norms(m))
		LC_POOL_AS(br, m->act, 3, hidden_in->shape);
	LC_CK(layer_inputs(m, layer, in, h, br, &pending, err));
	m->cache_b = B;
	LC_CK(layer_step(m, layer, &f, h, br, pending, err));
	if (br) /* layers.{layer}.out: the stream the next fused norm stores, bf16(ffn.out + res) */
		LC_CK(dsv32_add(m->be, h, h, br, err));
	LC_CK(dsv32_tensor_alloc(hidden_out, m->act, 3, hidden_in->shape, err));
	LC_CK(dsv32_backend_download(m->be, hidden_out->data, h->data, dsv32_tensor_nbytes(h), err));
	if (layer == (int)c->n_layers - 1)
		m->cache_len = start_pos + S;
out:
	lc_pool_free(&p);
	fwd_free(m, &f);
	return rc;
}

/* ---- layer-major (core/model.h): dsv32_hf_forward's loop nest turned inside out ---- */

/* One step's state between layers: forward's hidden state h, with the norm-fusion knob the
 * carried branch br (forward's br; NULL data otherwise), and its per-forward context. */
typedef struct hf_lm_slot {
	dsv32_tensor h, br;
	hf_fwd f;
	bool on;
} hf_lm_slot;

static dsv32_tensor *slot_br(hf_lm_slot *sl)
{
	return sl->br.data ? &sl->br : NULL;
}

static void lm_free_slots(hf_model *m)
{
	for (int s = 0; s < m->lm_n; s++) {
		lc_free(m->be, &m->lm[s].h);
		lc_free(m->be, &m->lm[s].br);
		if (m->lm[s].on)
			fwd_free(m, &m->lm[s].f);
	}
	free(m->lm);
	m->lm = NULL;
	m->lm_n = 0;
}

static dsv32_status vt_lm_begin(dsv32_model *mm, int n_steps, dsv32_error *err)
{
	hf_model *m = HF(mm);
	lm_free_slots(m);
	m->lm = calloc((size_t)(n_steps > 0 ? n_steps : 1), sizeof *m->lm);
	if (!m->lm)
		return DSV32_FAIL(err, DSV32_E_NOMEM, "hf layer-major: %d step slots", n_steps);
	m->lm_n = n_steps;
	return DSV32_OK;
}

static hf_lm_slot *lm_slot(hf_model *m, int step, bool embedded, dsv32_error *err)
{
	if (step < 0 || step >= m->lm_n) {
		DSV32_FAIL(err, DSV32_E_USAGE, "hf layer-major: step %d outside [0, %d) (lm_begin "
			   "first)", step, m->lm_n);
		return NULL;
	}
	if (embedded && !m->lm[step].on) {
		DSV32_FAIL(err, DSV32_E_USAGE, "hf layer-major: step %d is not embedded", step);
		return NULL;
	}
	return &m->lm[step];
}

/* forward's first part: checks, the per-forward context, embedding, tap "embed" */
static dsv32_status vt_lm_embed(dsv32_model *mm, int step, const int64_t *tokens, int64_t B,
				int64_t S, int64_t P, dsv32_error *err)
{
	hf_model *m = HF(mm);
	hf_lm_slot *sl = lm_slot(m, step, false, err);
	if (!sl)
		return err ? err->code : DSV32_E_USAGE;
	for (int64_t i = 0; i < B * S; i++)
		if (tokens[i] < 0 || tokens[i] >= mm->cfg.vocab_size)
			return DSV32_FAIL(err, DSV32_E_USAGE,
					  "hf forward: input_ids[%lld][%lld] = %lld outside the "
					  "vocabulary [0, %lld)", (long long)(i / S), (long long)(i % S),
					  (long long)tokens[i], (long long)mm->cfg.vocab_size);
	if (step == 0)
		m->cache_b = 0; /* a new sequence: its batch is this one's */
	DSV32_TRY(fwd_begin(m, &sl->f, B, S, P, NULL, NULL, err));
	sl->on = true;
	m->cache_b = B; /* the layers write the cache rows of this batch */
	lc_pool p = {.be = m->be};
	dsv32_status rc = DSV32_OK;
	dsv32_tensor *ids;
	LC_POOL(ids, DSV32_I64, 2, B, S);
	LC_CK(dsv32_backend_upload(m->be, ids->data, tokens, sizeof(int64_t) * (size_t)(B * S), err));
	LC_CK(lc_alloc(m->be, &sl->h, m->act, 3, LC_SHAPE(B, S, mm->cfg.dim), err));
	if (fused_norms(m)) /* the carried branch, as forward's */
		LC_CK(lc_alloc(m->be, &sl->br, m->act, 3, LC_SHAPE(B, S, mm->cfg.dim), err));
	LC_CK(dsv32_embedding(m->be, &sl->h, &m->embed, ids, err));
	LC_CK(lc_tap_model(hf_tapper(m), DSV32_MTAP_EMBED, &sl->h, err));
out:
	lc_pool_free(&p);
	return rc;
}

static dsv32_status vt_lm_layer(dsv32_model *mm, int layer, int step, dsv32_error *err)
{
	hf_model *m = HF(mm);
	hf_lm_slot *sl = lm_slot(m, step, true, err);
	if (!sl)
		return err ? err->code : DSV32_E_USAGE;
	if (layer < 0 || layer >= (int)mm->cfg.n_layers)
		return DSV32_FAIL(err, DSV32_E_USAGE, "hf layer-major: layer %d outside [0, %lld)",
				  layer, (long long)mm->cfg.n_layers);
	return layer_step(m, layer, &sl->f, &sl->h, slot_br(sl), slot_br(sl) && layer > 0, err);
}

static void vt_lm_release(dsv32_model *mm, int layer)
{
	hf_model *m = HF(mm);
	if (layer >= (int)mm->cfg.n_layers)
		return;
	hf_weights_release_layer(m, layer);
	if (layer >= 0)
		hf_cache_release_layer(m, layer);
}

/* forward's last part with vt_forward's logits_to_keep 1 and F32 widening */
static dsv32_status vt_lm_head(dsv32_model *mm, int step, dsv32_tensor *logits_out,
			       dsv32_error *err)
{
	hf_model *m = HF(mm);
	*logits_out = (dsv32_tensor){0};
	hf_lm_slot *sl = lm_slot(m, step, true, err);
	if (!sl)
		return err ? err->code : DSV32_E_USAGE;
	int64_t B = sl->f.B, V = mm->cfg.vocab_size;
	dsv32_tensor lg = {0};
	DSV32_TRY(lm_head(m, &sl->h, slot_br(sl), 1, &lg, false, err));
	dsv32_status rc = dsv32_tensor_alloc(logits_out, DSV32_F32, 2, LC_SHAPE(B, V), err);
	if (rc == DSV32_OK)
		dsv32_convert(logits_out->data, DSV32_F32, lg.data, lg.dtype, (size_t)(B * V));
	dsv32_tensor_free(&lg);
	if (rc == DSV32_OK)
		m->cache_len = sl->f.T;
	return rc;
}

static void vt_lm_end(dsv32_model *mm)
{
	hf_model *m = HF(mm);
	lm_free_slots(m);
	(void)hf_cache_restore(m, NULL); /* a failure: that layer's next forward reports it */
}

static void vt_reset(dsv32_model *mm)
{
	HF(mm)->cache_len = 0;
	HF(mm)->cache_b = 0;
}

static void vt_close(dsv32_model *mm)
{
	hf_model *m = HF(mm);
	if (!m)
		return;
	hf_indexer_cache_free(m);
	lm_free_slots(m);
	dsv32_tensor_free(&m->logits_keep);
	hf_cache_free(m);
	hf_weights_free(m);
	dsv32_backend_destroy(m->be);
	hf_weights_close_src(m); /* last: the parameters may have borrowed its mappings */
	free(m);
}

static const dsv32_model_vtbl hf_vtbl = {
	.layout = "hf",
	.forward = vt_forward,
	.layer_forward = vt_layer_forward,
	.reset = vt_reset,
	.close = vt_close,
	.lm_begin = vt_lm_begin,
	.lm_embed = vt_lm_embed,
	.lm_layer = vt_lm_layer,
	.lm_release = vt_lm_release,
	.lm_head = vt_lm_head,
	.lm_end = vt_lm_end,
};

/* dsv32_hf_open (ckpt_dir set) and dsv32_hf_open_shards (shards_dir set). */
static dsv32_status hf_open_any(dsv32_model **out, const char *ckpt_dir, const char *shards_dir,
				const char *config_path, const dsv32_model_opts *opts,
				dsv32_error *err)
{
	dsv32_error local = {0};
	if (!err) /* the checks below read err->code */
		err = &local;
	memset(err, 0, sizeof *err);
	const char *label = ckpt_dir ? ckpt_dir : shards_dir;
	if (!out || !label)
		return DSV32_FAIL(err, DSV32_E_USAGE, "hf open: %s is NULL",
				  !out ? "out" : "the checkpoint directory");
	*out = NULL;
	hf_model *m = calloc(1, sizeof *m);
	if (!m)
		return DSV32_FAIL(err, DSV32_E_NOMEM, "hf open: %s: model", label);
	m->base.vt = &hf_vtbl;
	if (opts)
		m->base.opts = *opts;
	else
		dsv32_model_opts_default(&m->base.opts);
	const dsv32_model_opts *o = &m->base.opts;
	dsv32_config *c = &m->base.cfg;
	char path[4096];
	bool is_hf = false;
	dsv32_status rc;
	if (shards_dir) { /* the source is opened (and checked) first: the config needs W */
		rc = dsv32_shard_source_open(&m->shards, &shards_dir, 1, config_path, err);
		snprintf(path, sizeof path, "%s", m->shards ? dsv32_shard_source_label(m->shards)
							      : shards_dir);
		if (rc == DSV32_OK)
			rc = dsv32_shard_source_hf_config(m->shards, c, err);
		is_hf = true;
	} else {
		if (config_path)
			snprintf(path, sizeof path, "%s", config_path);
		else
			snprintf(path, sizeof path, "%s/config.json", ckpt_dir);
		rc = dsv32_config_load(c, path, &is_hf, err);
	}
	if (rc == DSV32_OK && !is_hf)
		rc = DSV32_FAIL(err, DSV32_E_FORMAT, "%s: not an HF config.json (no model_type / hidden_size)",
				path);
	if (rc == DSV32_OK)
		rc = dsv32_config_validate_file(c, true, 0, path, err);
	if (rc == DSV32_OK && o->layers < 0)
		rc = DSV32_FAIL(err, DSV32_E_USAGE, "hf: layers = %d, expected >= 0 (0 = all %lld)",
				o->layers, (long long)c->n_layers);
	if (rc != DSV32_OK)
		goto fail;
	/* a prefix of the model: the loader fetches tensors by name, so layers >= N (and the MTP
	 * layers after the checkpoint's real count) are never read */
	if (o->layers > 0 && o->layers < c->n_layers)
		c->n_layers = o->layers;
	m->act = o->profile == DSV32_PROFILE_FP32 ? DSV32_F32 : DSV32_BF16;
	m->cap_b = o->max_batch_size > 0 ? o->max_batch_size : c->max_batch_size;
	m->cap_t = o->max_seq_len > 0 ? o->max_seq_len
				      : (c->max_position_embeddings < 4096 ? c->max_position_embeddings
									     : 4096);
	if (m->cap_b < 1 || m->cap_t < 1) {
		rc = DSV32_FAIL(err, DSV32_E_USAGE, "hf: cache capacity %lld x %lld",
				(long long)m->cap_b, (long long)m->cap_t);
		goto fail;
	}
	hf_rope_init(m); /* ops.c: inv_freq, attn_factor, scaling (and the knobs toward ref) */
	rc = dsv32_backend_create(&m->be, o->device, err);
	if (rc == DSV32_OK) { /* the transformers golden: torch 2.15, AVX2 (docs/numerics.md) */
		m->be->torch_lanes = o->torch_lanes ? o->torch_lanes : 8;
		m->be->torch_major = o->torch_major ? o->torch_major : 2;
		m->be->gemm_engine = o->gemm_engine;
	}
	if (rc == DSV32_OK)
		rc = hf_weights_load(m, ckpt_dir, err); /* ckpt_dir NULL: from m->shards */
	if (rc == DSV32_OK)
		rc = hf_cache_init(m, err);
	if (rc == DSV32_OK)
		rc = hf_indexer_cache_init(m, err);
	if (rc != DSV32_OK)
		goto fail;
	*out = &m->base;
	return DSV32_OK;
fail:
	if (err->code == DSV32_OK) /* a callee that returned a status without filling err */
		DSV32_FAIL(err, rc, "hf open: %s: %s", label, dsv32_status_str(rc));
	else
		dsv32_error_prefix(err, "hf open %s", label);
	vt_close(&m->base);
	return rc;
}

/* A directory of reference shards: it holds *.safetensors files and every one of them is named
 * model{r}-mp{W}.safetensors (an HF checkpoint never uses that name). */
static bool is_shard_dir(const char *dir)
{
	DIR *dp = opendir(dir);
	if (!dp)
		return false;
	struct dirent *de;
	int shards = 0, others = 0;
	while ((de = readdir(dp))) {
		size_t n = strlen(de->d_name), k = strlen(".safetensors");
		int r, w;
		if (n < k || strcmp(de->d_name + n - k, ".safetensors"))
			continue;
		if (dsv32_shard_file_parse(de->d_name, &r, &w))
			shards++;
		else
			others++;
	}
	closedir(dp);
	return shards > 0 && others == 0;
}

dsv32_status dsv32_hf_open(dsv32_model **out, const char *ckpt_dir, const char *config_path,
			   const dsv32_model_opts *opts, dsv32_error *err)
{
	if (!ckpt_dir) {
		if (out)
			*out = NULL;
		return DSV32_FAIL(err, DSV32_E_USAGE, "hf open: the checkpoint directory is NULL");
	}
	if (is_shard_dir(ckpt_dir))
		return hf_open_any(out, NULL, ckpt_dir, config_path, opts, err);
	return hf_open_any(out, ckpt_dir, NULL, config_path, opts, err);
}

dsv32_status dsv32_hf_open_shards(dsv32_model **out, const char *shards_dir,
				  const char *config_path, const dsv32_model_opts *opts,
				  dsv32_error *err)
{
	if (!shards_dir) {
		if (out)
			*out = NULL;
		return DSV32_FAIL(err, DSV32_E_USAGE, "hf open: the shard directory is NULL");
	}
	return hf_open_any(out, NULL, shards_dir, config_path, opts, err);
}

dsv32_status dsv32_hf_open_dir(dsv32_model **out, const char *ckpt_dir,
			       const dsv32_model_opts *opts, dsv32_error *err)
{
	return dsv32_hf_open(out, ckpt_dir, NULL, opts, err);
}

int64_t dsv32_hf_lazy_matrices(const dsv32_model *m)
{
	return ((const hf_model *)m)->n_lazy;
}

int64_t dsv32_hf_expanded_cache_bytes(const dsv32_model *m)
{
	return (int64_t)((const hf_model *)m)->kx_bytes;
}
