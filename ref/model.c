/* model.c: open/close, the Block and Transformer forward of the reference layout
 * (docs/spec/ref_layout.md §A.14-A.16, Part D's start_pos API), teacher forcing and the common
 * model interface (core/model.h). */
#include <stdlib.h>
#include <string.h>

#include "core/fsutil.h"
#include "core/knobs.h"
#include "kernels/elementwise.h"
#include "kernels/gemm.h"
#include "kernels/rmsnorm.h"
#include "kernels/yarn.h"
#include "layout_common/norm.h"
#include "ref/ref_internal.h"

#define REF_MAX_WORLD DSV32_MAX_WORLD_SIZE

/* The test-only planted bugs (opts.plant) for the code about to run: layer L (-1: the parts
 * outside the layers, i.e. embedding, final norm and head). A plant at layer < 0 applies
 * everywhere; at layer >= 0 only inside that layer, so a harness must find the bug there. */
static void plant_flags(ref_model *m, int L)
{
	static const dsv32_test_hooks rmsnorm_planted = {.rmsnorm_no_final_round = true};
	int pl = m->plant.layer;
	bool on = pl < 0 || pl == L;
	bool rms = (m->plant.flags >> DSV32_TEST_FLAG_RMSNORM_NO_FINAL_ROUND) & 1u;
	m->be->test_hooks = on && rms ? &rmsnorm_planted : NULL; /* the only hook today */
}

/* The residual add and the norm after it: the fused dsv32_rmsnorm_add (§A.2: the norm of the
 * unrounded fp32 sum, res_out = its bf16 rounding), or what the knobs take over from HF
 * (DecoderLayer: `hidden = residual + x` in bf16, then DeepseekV32RMSNorm):
 *   norm-fusion        res_out = bf16(x + res) (dsv32_add), then the norm of res_out
 *   norm-weight-dtype  the norm is dsv32_rmsnorm_hf (bf16 before the weight multiply); alone,
 *                      of the fp32 sum (an fp32 dsv32_add), res_out its rounding.
 * res_out may alias res. */
static dsv32_status norm_add(ref_model *m, dsv32_tensor *y, dsv32_tensor *res_out,
			     const dsv32_tensor *x, const dsv32_tensor *res, const dsv32_tensor *w,
			     dsv32_error *err)
{
	bool fuse_off = dsv32_knob_on(&m->base.opts, DSV32_KNOB_NORM_FUSION);
	bool hf_w = dsv32_knob_on(&m->base.opts, DSV32_KNOB_NORM_WEIGHT_DTYPE);
	return lc_norm_add(m->be, y, res_out, x, res, w, 1e-6, !fuse_off, hf_w, err); /* norm.h */
}

/* Block.forward (§A.14): x / res -> (ffn.out, attn_residual); res NULL for layer 0. */
static dsv32_status block_forward(ref_model *m, int L, const dsv32_tensor *x,
				  const dsv32_tensor *res, int64_t B, int64_t S, int64_t P,
				  dsv32_tensor *x_out, dsv32_tensor *res_out, dsv32_error *err)
{
	const dsv32_config *c = &m->base.cfg;
	ref_layer *ly = &m->layers[L];
	lc_tapper tp = ref_tapper(m);
	lc_pool p = {.be = m->be};
	dsv32_status rc = DSV32_OK;
	dsv32_tensor *a, *r1, *ao, *f;
	LC_POOL(a, m->act, 3, B, S, c->dim);
	LC_POOL(r1, m->act, 3, B, S, c->dim);
	LC_POOL(ao, m->act, 3, B, S, c->dim);
	LC_POOL(f, m->act, 3, B, S, c->dim);
	plant_flags(m, L);
	if (!res) { /* layer 0: residual = x, x = attn_norm(x) */
		LC_CK(dsv32_cast(m->be, r1, x, err));
		LC_CK(ref_rmsnorm(m, a, x, &ly->attn_norm, err));
	} else {
		LC_CK(norm_add(m, a, r1, x, res, &ly->attn_norm, err));
		if (L > 0) /* the fused norm forms the previous layer's output only now */
			LC_CK(lc_tap_layer(tp, DSV32_LTAP_OUT, L - 1, r1, err));
	}
	LC_CK(lc_tap_layer(tp, DSV32_LTAP_ATTN_NORM, L, a, err));
	LC_CK(ref_attn_forward(m, L, a, B, S, P, ao, err));
	LC_CK(lc_tap_layer(tp, DSV32_LTAP_ATTN_OUT, L, ao, err));
	LC_CK(norm_add(m, f, res_out, ao, r1, &ly->ffn_norm, err));
	LC_CK(lc_tap_layer(tp, DSV32_LTAP_ATTN_RESIDUAL, L, res_out, err));
	LC_CK(lc_tap_layer(tp, DSV32_LTAP_FFN_NORM, L, f, err));
	LC_CK(dsv32_config_layer_is_moe(c, L) ? ref_moe_forward(m, L, f, B, S, x_out, err)
					      : ref_mlp_forward(m, L, f, B, S, x_out, err));
	LC_CK(lc_tap_layer(tp, DSV32_LTAP_FFN_OUT, L, x_out, err));
out:
	if (rc != DSV32_OK)
		dsv32_error_prefix(err, "layer %d", L);
	plant_flags(m, -1);
	lc_pool_free(&p);
	return rc;
}

static dsv32_status check_step(ref_model *m, int64_t B, int64_t S, int64_t P, dsv32_error *err)
{
	if (B < 1 || S < 1)
		return DSV32_FAIL(err, DSV32_E_USAGE, "forward: B = %lld, S = %lld, both must be >= 1",
				  (long long)B, (long long)S);
	if (B > m->maxB)
		return DSV32_FAIL(err, DSV32_E_USAGE, "forward: batch %lld > max_batch_size %lld",
				  (long long)B, (long long)m->maxB);
	if (P < 0 || P + S > m->maxS)
		return DSV32_FAIL(err, DSV32_E_USAGE,
				  "forward: positions [%lld, %lld) outside max_seq_len %lld",
				  (long long)P, (long long)(P + S), (long long)m->maxS);
	if (S > 1 && P > 0)
		return DSV32_FAIL(err, DSV32_E_USAGE,
				  "forward: chunked prefill (start_pos %lld with %lld tokens) is not "
				  "supported: the reference prefill attends only within the call "
				  "(docs/spec/ref_layout.md Part F); prefill at start_pos 0, then decode "
				  "one token per call", (long long)P, (long long)S);
	return DSV32_OK;
}

static dsv32_status check_tokens(ref_model *m, const int64_t *tokens, int64_t B, int64_t S,
				 dsv32_error *err)
{
	int64_t V = m->base.cfg.vocab_size;
	for (int64_t i = 0; i < B * S; i++)
		if (tokens[i] < 0 || tokens[i] >= V)
			return DSV32_FAIL(err, DSV32_E_USAGE,
					  "forward: token %lld at [%lld, %lld] outside the vocabulary "
					  "[0, %lld)", (long long)tokens[i], (long long)(i / S),
					  (long long)(i % S), (long long)V);
	return DSV32_OK;
}

/* Final fused norm and the fp32 head on the last position (§A.15 steps 5-7). The logits-dtype
 * knob: the same GEMM rounded to the activation dtype (HF's bf16 lm_head output), widened. */
static dsv32_status final_head(ref_model *m, const dsv32_tensor *x, const dsv32_tensor *res,
			       int64_t B, int64_t S, dsv32_tensor *logits_out, dsv32_error *err)
{
	const dsv32_config *c = &m->base.cfg;
	int64_t dim = c->dim, V = c->vocab_size, Vl = V / m->W;
	lc_tapper tp = ref_tapper(m);
	lc_pool p = {.be = m->be};
	dsv32_status rc = DSV32_OK;
	dsv32_tensor parts[REF_MAX_WORLD];
	dsv32_tensor *h, *rf, *last, *lg, *lgo;
	dsv32_dtype ldt = dsv32_knob_on(&m->base.opts, DSV32_KNOB_LOGITS_DTYPE) ? m->act : DSV32_F32;
	LC_POOL(h, m->act, 3, B, S, dim);
	LC_POOL(rf, m->act, 3, B, S, dim);
	LC_POOL(last, m->act, 2, B, dim);
	LC_POOL(lgo, ldt, 2, B, V);
	LC_POOL(lg, DSV32_F32, 2, B, V);
	LC_CK(norm_add(m, h, rf, x, res, &m->norm, err));
	LC_CK(lc_tap_layer(tp, DSV32_LTAP_OUT, (int)c->n_layers - 1, rf, err));
	LC_CK(lc_tap_model(tp, DSV32_MTAP_FINAL_NORM, h, err));
	dsv32_tensor h2 = lc_view(h, 0, 2, LC_SHAPE(B, S * dim));
	LC_CK(dsv32_copy_cols(m->be, last, &h2, (S - 1) * dim, 0, dim, err));
	for (int r = 0; r < m->W; r++) {
		if (!ref_rank_is_local(m, r)) /* real ranks: gathered below */
			continue;
		dsv32_tensor *pr;
		LC_POOL(pr, ldt, 2, B, Vl);
		LC_CK(dsv32_gemm(m->be, pr, last, &m->head[r], err)); /* fp32 GEMM on fp32(h) */
		parts[r] = *pr;
	}
	LC_CK(ref_all_gather(m, lgo, parts, err));
	LC_CK(dsv32_cast(m->be, lg, lgo, err)); /* exact (a copy without the knob) */
	LC_CK(lc_tap_model(tp, DSV32_MTAP_LOGITS, lg, err));
	LC_CK(lc_logits_out(&m->base, &m->logits_keep, logits_out, B, V, err));
	LC_CK(dsv32_backend_download(m->be, logits_out->data, lg->data,
				     dsv32_tensor_nbytes(logits_out), err));
out:
	lc_pool_free(&p);
	return rc;
}

dsv32_status dsv32_ref_forward(dsv32_model *mm, const int64_t *tokens, int64_t B, int64_t S,
			       int64_t start_pos, dsv32_tensor *logits_out, dsv32_error *err)
{
	ref_model *m = ref_of(mm);
	const dsv32_config *c = &m->base.cfg;
	*logits_out = (dsv32_tensor){0};
	DSV32_TRY(check_step(m, B, S, start_pos, err));
	DSV32_TRY(check_tokens(m, tokens, B, S, err));
	lc_pool p = {.be = m->be};
	dsv32_status rc = DSV32_OK;
	dsv32_tensor *ids, *x, *res, *x2;
	LC_POOL(ids, DSV32_I64, 2, B, S);
	LC_POOL(x, m->act, 3, B, S, c->dim);
	LC_POOL(res, m->act, 3, B, S, c->dim);
	LC_POOL(x2, m->act, 3, B, S, c->dim);
	LC_CK(dsv32_backend_upload(m->be, ids->data, tokens, (size_t)(B * S) * sizeof(int64_t), err));
	LC_CK(ref_embed(m, x, ids, tokens, err));
	LC_CK(lc_tap_model(ref_tapper(m), DSV32_MTAP_EMBED, x, err));
	for (int L = 0; L < c->n_layers; L++) {
		/* res_out may alias res in the fused norm; x_out must be fresh */
		LC_CK(block_forward(m, L, x, L ? res : NULL, B, S, start_pos, x2, res, err));
		dsv32_tensor t = *x;
		*x = *x2;
		*x2 = t;
	}
	LC_CK(final_head(m, x, res, B, S, logits_out, err));
out:
	lc_pool_free(&p);
	return rc;
}

/* Host tensor -> device tensor of the activation dtype. */
static dsv32_status upload_act(ref_model *m, lc_pool *p, const dsv32_tensor *h,
			       dsv32_tensor **out, dsv32_error *err)
{
	if (h->dtype != DSV32_BF16 && h->dtype != DSV32_F32)
		return DSV32_FAIL(err, DSV32_E_DTYPE, "layer input: dtype %s, expected BF16 or F32",
				  dsv32_dtype_name(h->dtype));
	dsv32_tensor *raw = lc_pool_alloc(p, h->dtype, h->ndim, h->shape, err);
	*out = raw ? lc_pool_alloc(p, m->act, h->ndim, h->shape, err) : NULL;
	if (!*out)
		return err ? err->code : DSV32_E_NOMEM;
	DSV32_TRY(dsv32_backend_upload(m->be, raw->data, h->data, dsv32_tensor_nbytes(h), err));
	return dsv32_cast(m->be, *out, raw, err);
}

static dsv32_status download_owned(ref_model *m, const dsv32_tensor *d, dsv32_tensor *h,
				   dsv32_error *err)
{
	DSV32_TRY(dsv32_tensor_alloc(h, d->dtype, d->ndim, d->shape, err));
	return dsv32_backend_download(m->be, h->data, d->data, dsv32_tensor_nbytes(h), err);
}

dsv32_status dsv32_ref_layer_step(dsv32_model *mm, int layer, const dsv32_tensor *x,
				  const dsv32_tensor *residual, int64_t start_pos,
				  dsv32_tensor *x_out, dsv32_tensor *res_out, dsv32_error *err)
{
	ref_model *m = ref_of(mm);
	const dsv32_config *c = &m->base.cfg;
	*x_out = *res_out = (dsv32_tensor){0};
	if (layer < 0 || layer >= c->n_layers)
		return DSV32_FAIL(err, DSV32_E_USAGE, "layer %d outside [0, %lld)", layer,
				  (long long)c->n_layers);
	if (x->ndim != 3 || x->shape[2] != c->dim ||
	    (residual && !dsv32_tensor_same_shape(x, residual)))
		return DSV32_FAIL(err, DSV32_E_SHAPE, "layer input: expected [B, S, %lld] tensors",
				  (long long)c->dim);
	int64_t B = x->shape[0], S = x->shape[1];
	DSV32_TRY(check_step(m, B, S, start_pos, err));
	lc_pool p = {.be = m->be};
	dsv32_status rc = DSV32_OK;
	dsv32_tensor *xd, *rd = NULL, *xo, *ro;
	LC_CK(upload_act(m, &p, x, &xd, err));
	if (residual)
		LC_CK(upload_act(m, &p, residual, &rd, err));
	LC_POOL(xo, m->act, 3, B, S, c->dim);
	LC_POOL(ro, m->act, 3, B, S, c->dim);
	LC_CK(block_forward(m, layer, xd, rd, B, S, start_pos, xo, ro, err));
	LC_CK(download_owned(m, xo, x_out, err));
	LC_CK(download_owned(m, ro, res_out, err));
out:
	lc_pool_free(&p);
	return rc;
}

dsv32_status dsv32_ref_head_step(dsv32_model *mm, const dsv32_tensor *x,
				 const dsv32_tensor *residual, dsv32_tensor *logits_out,
				 dsv32_error *err)
{
	ref_model *m = ref_of(mm);
	*logits_out = (dsv32_tensor){0};
	if (x->ndim != 3 || x->shape[2] != m->base.cfg.dim || !dsv32_tensor_same_shape(x, residual))
		return DSV32_FAIL(err, DSV32_E_SHAPE, "head input: expected [B, S, %lld] tensors",
				  (long long)m->base.cfg.dim);
	lc_pool p = {.be = m->be};
	dsv32_status rc = DSV32_OK;
	dsv32_tensor *xd, *rd;
	LC_CK(upload_act(m, &p, x, &xd, err));
	LC_CK(upload_act(m, &p, residual, &rd, err));
	LC_CK(final_head(m, xd, rd, x->shape[0], x->shape[1], logits_out, err));
out:
	lc_pool_free(&p);
	return rc;
}

/* Upload host rows [B, S, d] into a cache at [:B, pos:pos+S), converting to the cache dtype. */
static dsv32_status cache_put(ref_model *m, dsv32_tensor *cache, const dsv32_tensor *h,
			      int64_t pos, const char *what, dsv32_error *err)
{
	if (!h)
		return DSV32_OK;
	int64_t maxB = cache->shape[0], maxS = cache->shape[1], d = cache->shape[2];
	if (h->ndim != 3 || h->shape[2] != d || h->shape[0] > maxB || pos < 0 ||
	    pos + h->shape[1] > maxS)
		return DSV32_FAIL(err, DSV32_E_SHAPE, "cache_set %s: expected [B<=%lld, S, %lld] at "
				  "positions within %lld", what, (long long)maxB, (long long)d,
				  (long long)maxS);
	if (!dsv32_dtype_is_float(h->dtype))
		return DSV32_FAIL(err, DSV32_E_DTYPE, "cache_set %s: float tensor expected", what);
	int64_t B = h->shape[0], S = h->shape[1];
	size_t es = dsv32_dtype_size(cache->dtype), n = (size_t)(B * S * d);
	void *tmp = malloc(n * es + 1);
	if (!tmp)
		return DSV32_FAIL(err, DSV32_E_NOMEM, "cache_set %s", what);
	dsv32_convert(tmp, cache->dtype, h->data, h->dtype, n);
	dsv32_status rc = DSV32_OK;
	for (int64_t b = 0; b < B && rc == DSV32_OK; b++)
		rc = dsv32_backend_upload(m->be, (char *)cache->data + (size_t)((b * maxS + pos) * d) * es,
					  (char *)tmp + (size_t)(b * S * d) * es, (size_t)(S * d) * es,
					  err);
	free(tmp);
	return rc;
}

dsv32_status dsv32_ref_cache_set(dsv32_model *mm, int layer, int64_t pos,
				 const dsv32_tensor *kv_latent, const dsv32_tensor *k_rope,
				 const dsv32_tensor *k_fp8, const dsv32_tensor *k_scale,
				 dsv32_error *err)
{
	ref_model *m = ref_of(mm);
	if (layer < 0 || layer >= m->base.cfg.n_layers)
		return DSV32_FAIL(err, DSV32_E_USAGE, "cache_set: layer %d out of range", layer);
	ref_layer *ly = &m->layers[layer];
	DSV32_TRY(cache_put(m, &ly->kv_cache, kv_latent, pos, "kv_latent", err));
	DSV32_TRY(cache_put(m, &ly->pe_cache, k_rope, pos, "k_rope", err));
	DSV32_TRY(cache_put(m, &ly->k_cache, k_fp8, pos, "k_fp8", err));
	return cache_put(m, &ly->k_scale, k_scale, pos, "k_scale", err);
}

int dsv32_ref_world_size(const dsv32_model *mm)
{
	return ((const ref_model *)mm)->W;
}

/* ---- the common interface ---- */

static dsv32_status vt_forward(dsv32_model *m, const int64_t *tokens, int64_t B, int64_t S,
			       int64_t start_pos, dsv32_tensor *logits_out, dsv32_error *err)
{
	return dsv32_ref_forward(m, tokens, B, S, start_pos, logits_out, err);
}

/* The common layer_forward gets the residual stream h entering the layer. The reference block
 * takes (x, residual) and forms h inside its fused norm, so: layer 0 runs with x = h and no
 * residual (as the reference); layer L > 0 with x = h and residual = 0, which is exact
 * (fp32(h) + 0 = h is what the norm sees, bf16(h) = h is the new residual). When the caller
 * gives the pair (in->branch / in->residual: the driver's ffn.out and attn_residual), it is used
 * instead, so the norm sees the unrounded fp32 sum as in the driver's forward.
 * hidden_out = bf16(fp32(ffn.out) + fp32(attn_residual)): what the next fused norm stores. */
static dsv32_status vt_layer_forward(dsv32_model *mm, int layer, const dsv32_layer_input *in,
				     int64_t start_pos, dsv32_tensor *hidden_out, dsv32_error *err)
{
	ref_model *m = ref_of(mm);
	const dsv32_tensor *hidden_in = in->hidden;
	dsv32_tensor zero = {0}, xo = {0}, ro = {0};
	dsv32_status rc = DSV32_OK;
	if (layer > 0) {
		rc = dsv32_tensor_alloc(&zero, hidden_in->dtype, hidden_in->ndim, hidden_in->shape, err);
		if (rc != DSV32_OK)
			return rc;
	}
	/* with the un-added pair (dsv32_layer_input branch / residual) the fused norm sees exactly
	 * the unrounded sum the driver's run saw */
	const dsv32_tensor *x = hidden_in, *res = layer > 0 ? &zero : NULL;
	if (in->branch && (layer == 0 || in->residual)) {
		x = in->branch;
		res = layer > 0 ? in->residual : NULL;
	}
	rc = dsv32_ref_layer_step(mm, layer, x, res, start_pos, &xo, &ro, err);
	if (rc == DSV32_OK)
		rc = dsv32_tensor_alloc(hidden_out, m->act, xo.ndim, xo.shape, err);
	if (rc == DSV32_OK) { /* bf16(fp32(x) + fp32(res)) on the host: the next norm's residual */
		int64_t n = dsv32_tensor_numel(&xo);
		for (int64_t i = 0; i < n; i++)
			dsv32_act_store(hidden_out->data, m->act, i,
					dsv32_act_load(xo.data, xo.dtype, i) +
						dsv32_act_load(ro.data, ro.dtype, i));
	}
	dsv32_tensor_free(&zero);
	dsv32_tensor_free(&xo);
	dsv32_tensor_free(&ro);
	return rc;
}

/* ---- layer-major (core/model.h): forward's loop nest turned inside out ---- */

/* One step's activations between layers: forward's x, res and x2, kept across the layers. */
typedef struct ref_lm_slot {
	int64_t B, S, P;
	dsv32_tensor x, res, x2;
} ref_lm_slot;

static void lm_free_slots(ref_model *m)
{
	for (int s = 0; s < m->lm_n; s++) {
		lc_free(m->be, &m->lm[s].x);
		lc_free(m->be, &m->lm[s].res);
		lc_free(m->be, &m->lm[s].x2);
	}
	free(m->lm);
	m->lm = NULL;
	m->lm_n = 0;
}

static dsv32_status vt_lm_begin(dsv32_model *mm, int n_steps, dsv32_error *err)
{
	ref_model *m = ref_of(mm);
	lm_free_slots(m);
	m->lm = calloc((size_t)(n_steps > 0 ? n_steps : 1), sizeof *m->lm);
	if (!m->lm)
		return DSV32_FAIL(err, DSV32_E_NOMEM, "layer-major: %d step slots", n_steps);
	m->lm_n = n_steps;
	return DSV32_OK;
}

static ref_lm_slot *lm_slot(ref_model *m, int step, dsv32_error *err)
{
	if (step < 0 || step >= m->lm_n) {
		DSV32_FAIL(err, DSV32_E_USAGE, "layer-major: step %d outside [0, %d) (lm_begin first)",
			   step, m->lm_n);
		return NULL;
	}
	return &m->lm[step];
}

/* forward's first part: checks, embedding, tap "embed" */
static dsv32_status vt_lm_embed(dsv32_model *mm, int step, const int64_t *tokens, int64_t B,
				int64_t S, int64_t P, dsv32_error *err)
{
	ref_model *m = ref_of(mm);
	int64_t dim = m->base.cfg.dim;
	ref_lm_slot *sl = lm_slot(m, step, err);
	if (!sl)
		return err ? err->code : DSV32_E_USAGE;
	DSV32_TRY(check_step(m, B, S, P, err));
	DSV32_TRY(check_tokens(m, tokens, B, S, err));
	*sl = (ref_lm_slot){.B = B, .S = S, .P = P};
	lc_pool p = {.be = m->be};
	dsv32_status rc = DSV32_OK;
	dsv32_tensor *ids;
	LC_POOL(ids, DSV32_I64, 2, B, S);
	LC_CK(lc_alloc(m->be, &sl->x, m->act, 3, LC_SHAPE(B, S, dim), err));
	LC_CK(lc_alloc(m->be, &sl->res, m->act, 3, LC_SHAPE(B, S, dim), err));
	LC_CK(lc_alloc(m->be, &sl->x2, m->act, 3, LC_SHAPE(B, S, dim), err));
	LC_CK(dsv32_backend_upload(m->be, ids->data, tokens, (size_t)(B * S) * sizeof(int64_t), err));
	LC_CK(ref_embed(m, &sl->x, ids, tokens, err));
	LC_CK(lc_tap_model(ref_tapper(m), DSV32_MTAP_EMBED, &sl->x, err));
out:
	lc_pool_free(&p);
	return rc;
}

/* one iteration of forward's layer loop */
static dsv32_status vt_lm_layer(dsv32_model *mm, int L, int step, dsv32_error *err)
{
	ref_model *m = ref_of(mm);
	ref_lm_slot *sl = lm_slot(m, step, err);
	if (!sl)
		return err ? err->code : DSV32_E_USAGE;
	if (L < 0 || L >= m->base.cfg.n_layers || !sl->x.data)
		return DSV32_FAIL(err, DSV32_E_USAGE, "layer-major: layer %d of step %d (embedded: %s)",
				  L, step, sl->x.data ? "yes" : "no");
	DSV32_TRY(block_forward(m, L, &sl->x, L ? &sl->res : NULL, sl->B, sl->S, sl->P, &sl->x2,
				&sl->res, err));
	dsv32_tensor t = sl->x;
	sl->x = sl->x2;
	sl->x2 = t;
	return DSV32_OK;
}

static void vt_lm_release(dsv32_model *mm, int L)
{
	ref_model *m = ref_of(mm);
	if (L < m->base.cfg.n_layers)
		ref_weights_release_layer(m, L);
}

static dsv32_status vt_lm_head(dsv32_model *mm, int step, dsv32_tensor *logits_out,
			       dsv32_error *err)
{
	ref_model *m = ref_of(mm);
	*logits_out = (dsv32_tensor){0};
	ref_lm_slot *sl = lm_slot(m, step, err);
	if (!sl)
		return err ? err->code : DSV32_E_USAGE;
	if (!sl->x.data)
		return DSV32_FAIL(err, DSV32_E_USAGE, "layer-major: head of step %d before its embedding",
				  step);
	return final_head(m, &sl->x, &sl->res, sl->B, sl->S, logits_out, err);
}

static void vt_lm_end(dsv32_model *mm)
{
	ref_model *m = ref_of(mm);
	lm_free_slots(m);
	/* the released caches come back as at open (untouched pages cost nothing); a failure
	 * here leaves a layer without caches, which its next forward reports */
	(void)ref_caches_alloc(m, NULL);
}

static void vt_reset(dsv32_model *mm)
{
	(void)mm; /* the reference overwrites its caches; positions < start_pos are always written */
}

static void vt_close(dsv32_model *mm)
{
	ref_model *m = ref_of(mm);
	if (!m)
		return;
	lm_free_slots(m);
	dsv32_tensor_free(&m->logits_keep);
	ref_weights_free(m);
	dsv32_backend_destroy(m->be);
	ref_weights_close_src(m); /* last: the parameters may have borrowed its mappings */
	free(m);
}

static const dsv32_model_vtbl ref_vtbl = {
	.layout = "ref",
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

static dsv32_status load_config(dsv32_config *c, const char *ckpt, const char *config_path,
				bool *ckpt_is_hf, dsv32_error *err)
{
	char path[4096];
	bool is_hf = false;
	if (!dsv32_path_join(path, sizeof path, ckpt, "config.json"))
		return DSV32_FAIL(err, DSV32_E_USAGE, "%s: path too long", ckpt);
	/* the checkpoint kind: HF if its directory's config.json is an HF config */
	*ckpt_is_hf = false;
	if (dsv32_path_exists(path)) {
		dsv32_config tmp;
		DSV32_TRY(dsv32_config_load(&tmp, path, &is_hf, err));
		*ckpt_is_hf = is_hf;
		if (!config_path)
			*c = tmp;
	} else if (!config_path) {
		return DSV32_FAIL(err, DSV32_E_NOTFOUND,
				  "%s: no config.json (give the reference config with --config)",
				  path);
	}
	if (config_path)
		DSV32_TRY(dsv32_config_load(c, config_path, &is_hf, err));
	/* the file's own values, named by the file; open_model validates again with the options
	 * and the world size */
	return dsv32_config_validate_file(c, is_hf, 0, config_path ? config_path : path, err);
}

static dsv32_status open_model(dsv32_model **out, const char *ckpt, const char *config_path,
			       const dsv32_model_opts *opts, dsv32_comm *comm, dsv32_error *err)
{
	*out = NULL;
	dsv32_model_opts o;
	if (opts)
		o = *opts;
	else
		dsv32_model_opts_default(&o);
	ref_model *m = calloc(1, sizeof *m);
	if (!m)
		return DSV32_FAIL(err, DSV32_E_NOMEM, "ref model");
	bool is_hf = false;
	dsv32_status rc = load_config(&m->base.cfg, ckpt, config_path, &is_hf, err);
	dsv32_config *c = &m->base.cfg;
	if (rc != DSV32_OK)
		goto out_free;
	if (o.max_batch_size > 0)
		c->max_batch_size = o.max_batch_size;
	if (o.max_seq_len > 0)
		c->max_seq_len = o.max_seq_len;
	m->W = o.world_size > 0 ? o.world_size : 1;
	if (m->W > REF_MAX_WORLD) {
		rc = DSV32_FAIL(err, DSV32_E_USAGE, "world size %d > %d", m->W, REF_MAX_WORLD);
		goto out_free;
	}
	m->comm = comm;
	m->dist = dsv32_comm_is_distributed(comm);
	m->rank = m->dist ? comm->rank : 0;
	if (m->dist && comm->size != m->W) {
		rc = DSV32_FAIL(err, DSV32_E_USAGE, "%s: the checkpoint is for %d tensor-parallel ranks, "
				"but the job has %d processes (%s): start it with -np %d", ckpt, m->W,
				comm->size, dsv32_comm_kind_name(comm->kind), m->W);
		goto out_free;
	}
	rc = dsv32_config_validate(c, m->W, err);
	if (rc == DSV32_OK && o.layers < 0)
		rc = DSV32_FAIL(err, DSV32_E_USAGE, "ref: layers = %d, expected >= 0 (0 = all %lld)",
				o.layers, (long long)c->n_layers);
	if (rc != DSV32_OK)
		goto out_free;
	/* a prefix of the model: the loader fetches tensors by name, so layers >= N (and the MTP
	 * layers of an HF checkpoint, beyond its real count) are never read */
	if (o.layers > 0 && o.layers < c->n_layers)
		c->n_layers = o.layers;
	m->base.vt = &ref_vtbl;
	m->base.opts = o;
	if (o.plant)
		m->plant = *o.plant;
	m->base.opts.plant = NULL; /* the copy above is what the model reads */
	m->maxB = c->max_batch_size;
	m->maxS = c->max_seq_len;
	m->act = o.profile == DSV32_PROFILE_FP32 ? DSV32_F32 : DSV32_BF16;
	bool sim = o.profile != DSV32_PROFILE_FP32;
	m->fp8_kv = sim && !o.no_fp8_kv;
	m->fp8_idx = sim && !o.no_fp8_indexer;
	m->ue8m0 = c->scale_fmt_ue8m0;
	rc = dsv32_backend_create(&m->be, o.device, err);
	if (rc != DSV32_OK)
		goto out_free;
	/* DeepSeek's golden recording: torch 1.13 on an AVX-512 machine (docs/numerics.md) */
	m->be->torch_lanes = o.torch_lanes ? o.torch_lanes : 16;
	m->be->torch_major = o.torch_major ? o.torch_major : 1;
	m->be->gemm_engine = o.gemm_engine;
	plant_flags(m, -1); /* re-planted per layer in block_forward */
	dsv32_yarn_params yp;
	dsv32_yarn_params_from_config(&yp, c);
	yp.max_seq_len = m->maxS;
	m->yarn_on = m->maxS > c->original_seq_len || o.force_yarn;
	if (o.force_yarn && yp.max_seq_len <= c->original_seq_len)
		yp.max_seq_len = c->original_seq_len + 1; /* the reference's switch, forced on */
	m->softmax_scale = (float)dsv32_softmax_scale_ref(dsv32_config_qk_head_dim(c), &yp);
	dsv32_yarn_params yh; /* HF's, from the config alone: the softmax-scale and rope-freqs knobs */
	dsv32_yarn_params_from_config(&yh, c);
	if (dsv32_knob_on(&o, DSV32_KNOB_SOFTMAX_SCALE))
		m->softmax_scale = (float)dsv32_softmax_scale_hf(dsv32_config_qk_head_dim(c), &yh);
	if (c->qk_rope_head_dim / 2 <= (int64_t)(sizeof m->hf_inv_freq / sizeof m->hf_inv_freq[0]))
		dsv32_yarn_hf_inv_freq(&yh, m->hf_inv_freq, &m->hf_attn_factor);
	rc = dsv32_yarn_ref_table(m->be, &m->freqs, &yp, err);
	if (rc == DSV32_OK)
		rc = ref_weights_load(m, ckpt, is_hf, err);
	if (rc == DSV32_OK)
		rc = ref_caches_alloc(m, err);
	if (rc != DSV32_OK) {
		vt_close(&m->base);
		return rc;
	}
	*out = &m->base;
	return DSV32_OK;
out_free:
	free(m);
	return rc;
}

dsv32_status dsv32_ref_open(dsv32_model **out, const char *ckpt, const char *config_path,
			    const dsv32_model_opts *opts, dsv32_error *err)
{
	return open_model(out, ckpt, config_path, opts, NULL, err);
}

dsv32_status dsv32_ref_open_comm(dsv32_model **out, const char *ckpt, const char *config_path,
				 const dsv32_model_opts *opts, dsv32_comm *comm, dsv32_error *err)
{
	dsv32_status rc = open_model(out, ckpt, config_path, opts, comm, err);
	if (!dsv32_comm_is_distributed(comm))
		return rc;
	/* every rank opened, or all fail alike (a missing shard on one rank names that rank) */
	rc = dsv32_comm_agree(comm, rc, "open", err);
	if (rc != DSV32_OK && *out) {
		(*out)->vt->close(*out);
		*out = NULL;
	}
	return rc;
}
