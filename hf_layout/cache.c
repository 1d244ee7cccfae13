/* cache.c: the DynamicCache of the HF layout (docs/spec/hf_layout.md §4.4, transformers 5.24
 * DynamicIndexedLayer): per layer the normed KV latent, the rotated shared rope key (HF
 * half-split order) and the indexer keys, appended at the end of the cached length. Buffers
 * are preallocated to the capacity [cap_b, cap_t]; calls past it fail with DSV32_E_USAGE.
 * With the rope-freqs knob toward ref (core/knobs.h) the reference's fp32 freqs_cis table is
 * position-indexed state of the same lifetime: built here, freed with the caches. */
#include <stdlib.h>
#include <string.h>

#include "core/knobs.h"
#include "hf_layout/hf_internal.h"
#include "kernels/elementwise.h"

dsv32_status hf_cache_init(hf_model *m, dsv32_error *err)
{
	const dsv32_config *c = &m->base.cfg;
	m->cache = calloc((size_t)c->n_layers, sizeof(hf_layer_cache));
	m->pad = calloc((size_t)(m->cap_b * m->cap_t), sizeof(int64_t));
	if (!m->cache || !m->pad)
		return DSV32_FAIL(err, DSV32_E_NOMEM, "hf: cache tables");
	DSV32_TRY(hf_cache_restore(m, err));
	m->cache_len = 0;
	m->cache_b = 0;
	if (dsv32_hfknob_on(&m->base.opts, DSV32_HFKNOB_ROPE_FREQS))
		DSV32_TRY(dsv32_yarn_ref_table(m->be, &m->freqs, &m->yref, err));
	return DSV32_OK;
}

dsv32_status hf_cache_restore(hf_model *m, dsv32_error *err)
{
	const dsv32_config *c = &m->base.cfg;
	for (int i = 0; m->cache && i < (int)c->n_layers; i++) {
		hf_layer_cache *k = &m->cache[i];
		if (k->kv.data) /* not released */
			continue;
		DSV32_TRY(lc_alloc(m->be, &k->kv, m->act, 3,
				   LC_SHAPE(m->cap_b, m->cap_t, c->kv_lora_rank), err));
		DSV32_TRY(lc_alloc(m->be, &k->krot, m->act, 3,
				   LC_SHAPE(m->cap_b, m->cap_t, c->qk_rope_head_dim), err));
		DSV32_TRY(lc_alloc(m->be, &k->ikey, m->act, 3,
				   LC_SHAPE(m->cap_b, m->cap_t, c->index_head_dim), err));
	}
	return DSV32_OK;
}

/* Layer li's expanded caches back to the budget. */
static void free_expanded(hf_model *m, hf_layer_cache *k)
{
	if (k->kx.data)
		m->kx_bytes -= dsv32_tensor_nbytes(&k->kx) + dsv32_tensor_nbytes(&k->vx);
	lc_free(m->be, &k->kx);
	lc_free(m->be, &k->vx);
	k->kx_cap = k->n_expanded = 0;
}

/* Rows [0, n) of every batch row of `old` ([Bc, old_cap, W]) into `nw` ([Bc, new_cap, W]). */
static void copy_rows(dsv32_tensor *nw, const dsv32_tensor *old, int64_t Bc, int64_t old_cap,
		      int64_t new_cap, int64_t n, int64_t W)
{
	size_t es = dsv32_dtype_size(old->dtype);
	for (int64_t b = 0; b < Bc; b++)
		memcpy((char *)nw->data + (size_t)(b * new_cap * W) * es,
		       (const char *)old->data + (size_t)(b * old_cap * W) * es, (size_t)(n * W) * es);
}

bool hf_cache_expanded(hf_model *m, int li, int64_t T)
{
	const dsv32_config *c = &m->base.cfg;
	hf_layer_cache *k = &m->cache[li];
	if (k->kx.data && T <= k->kx_cap)
		return true;
	int64_t H = c->n_heads, QK = c->qk_nope_head_dim + c->qk_rope_head_dim;
	int64_t Vd = c->v_head_dim, cap = k->kx_cap * 2 > T ? k->kx_cap * 2 : T;
	cap = cap < 16 ? 16 : cap;
	cap = cap > m->cap_t ? m->cap_t : cap; /* >= T: fwd_begin keeps T within cap_t */
	size_t bytes = (size_t)(m->cap_b * cap * H * (QK + Vd)) * dsv32_dtype_size(m->act);
	size_t held = k->kx.data ? dsv32_tensor_nbytes(&k->kx) + dsv32_tensor_nbytes(&k->vx) : 0;
	int64_t budget = m->base.opts.hf_kx_budget ? m->base.opts.hf_kx_budget : (int64_t)1 << 30;
	dsv32_tensor kx = {0}, vx = {0};
	if (budget < 0 || m->kx_bytes - held + bytes > (size_t)budget ||
	    lc_alloc(m->be, &kx, m->act, 4, LC_SHAPE(m->cap_b, cap, H, QK), NULL) != DSV32_OK ||
	    lc_alloc(m->be, &vx, m->act, 4, LC_SHAPE(m->cap_b, cap, H, Vd), NULL) != DSV32_OK) {
		lc_free(m->be, &kx);
		free_expanded(m, k);
		return false;
	}
	if (k->kx.data) { /* grown: the rows expanded so far move along */
		copy_rows(&kx, &k->kx, m->cap_b, k->kx_cap, cap, k->n_expanded, H * QK);
		copy_rows(&vx, &k->vx, m->cap_b, k->kx_cap, cap, k->n_expanded, H * Vd);
	}
	int64_t kept = k->kx.data ? k->n_expanded : 0;
	free_expanded(m, k);
	k->kx = kx;
	k->vx = vx;
	k->kx_cap = cap;
	k->n_expanded = kept;
	m->kx_bytes += bytes;
	return true;
}

void hf_cache_release_layer(hf_model *m, int li)
{
	if (!m->cache || li < 0 || li >= (int)m->base.cfg.n_layers)
		return;
	lc_free(m->be, &m->cache[li].kv);
	lc_free(m->be, &m->cache[li].krot);
	lc_free(m->be, &m->cache[li].ikey);
	free_expanded(m, &m->cache[li]);
}

void hf_cache_free(hf_model *m)
{
	if (m->cache)
		for (int i = 0; i < (int)m->base.cfg.n_layers; i++) {
			lc_free(m->be, &m->cache[i].kv);
			lc_free(m->be, &m->cache[i].krot);
			lc_free(m->be, &m->cache[i].ikey);
			free_expanded(m, &m->cache[i]);
		}
	lc_free(m->be, &m->freqs);
	free(m->cache);
	free(m->pad);
	m->cache = NULL;
	m->pad = NULL;
}

dsv32_status hf_cache_write(hf_model *m, dsv32_tensor *c, const dsv32_tensor *x, int64_t past,
			    dsv32_error *err)
{
	int64_t B = x->shape[0], S = x->shape[1], D = x->shape[2], Tc = c->shape[1];
	for (int64_t b = 0; b < B; b++) {
		dsv32_tensor dst = lc_view(c, (b * Tc + past) * D, 2, LC_SHAPE(S, D));
		dsv32_tensor src = lc_view(x, b * S * D, 2, LC_SHAPE(S, D));
		DSV32_TRY(dsv32_copy_cols(m->be, &dst, &src, 0, 0, D, err));
	}
	return DSV32_OK;
}
