/* cache.c: the DynamicCache of the HF layout (docs/spec/hf_layout.md §4.4, transformers 5.24
 * DynamicIndexedLayer): per layer the normed KV latent, the rotated shared rope key (HF
 * half-split order) and the indexer keys, appended at the end of the cached length. Buffers
 * are preallocated to the capacity [cap_b, cap_t]; calls past it fail with DSV32_E_USAGE.
 * With the rope-freqs knob toward ref (core/knobs.h) the reference's fp32 freqs_cis table is
 * position-indexed state of the same lifetime: built here, freed with the caches. */
#include <stdlib.h>

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

void hf_cache_release_layer(hf_model *m, int li)
{
	if (!m->cache || li < 0 || li >= (int)m->base.cfg.n_layers)
		return;
	lc_free(m->be, &m->cache[li].kv);
	lc_free(m->be, &m->cache[li].krot);
	lc_free(m->be, &m->cache[li].ikey);
}

void hf_cache_free(hf_model *m)
{
	if (m->cache)
		for (int i = 0; i < (int)m->base.cfg.n_layers; i++) {
			lc_free(m->be, &m->cache[i].kv);
			lc_free(m->be, &m->cache[i].krot);
			lc_free(m->be, &m->cache[i].ikey);
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
