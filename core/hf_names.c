/* hf_names.c: the expected tensor list of an HF-layout checkpoint (docs/spec/checkpoints.md §2). */
#include "core/hf_names.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
	dsv32_hf_tensor_fn fn;
	void *user;
	bool fp8;
	dsv32_error *err;
	char name[256];
} walker;

static dsv32_status emit(walker *w, dsv32_hf_kind kind, dsv32_dtype dt, int ndim, int64_t d0,
			 int64_t d1)
{
	dsv32_hf_tensor t = {w->name, dt, ndim, {d0, d1}, kind};
	return w->fn(&t, w->user, w->err);
}

static dsv32_status vec(walker *w, dsv32_hf_kind kind, int64_t n, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static dsv32_status vec(walker *w, dsv32_hf_kind kind, int64_t n, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(w->name, sizeof w->name, fmt, ap);
	va_end(ap);
	return emit(w, kind, DSV32_F32, 1, n, 0);
}

/* A matrix [out, in]: BF16, or F8_E4M3 + weight_scale_inv when quantizable and fp8. */
static dsv32_status mat(walker *w, bool quantizable, int64_t out, int64_t in, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
static dsv32_status mat(walker *w, bool quantizable, int64_t out, int64_t in, const char *fmt, ...)
{
	char base[224];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(base, sizeof base, fmt, ap);
	va_end(ap);
	bool q = quantizable && w->fp8;
	snprintf(w->name, sizeof w->name, "%s.weight", base);
	DSV32_TRY(emit(w, DSV32_HF_MATRIX, q ? DSV32_F8_E4M3 : DSV32_BF16, 2, out, in));
	if (!q)
		return DSV32_OK;
	snprintf(w->name, sizeof w->name, "%s.weight_scale_inv", base);
	return emit(w, DSV32_HF_SCALE, DSV32_F32, 2, (out + 127) / 128, (in + 127) / 128);
}

static dsv32_status attention(walker *w, const dsv32_config *c, int64_t L)
{
	const char *p = "model.layers";
	int64_t dim = c->dim, H = c->n_heads, nope = c->qk_nope_head_dim;
	int64_t rope = c->qk_rope_head_dim;
	DSV32_TRY(vec(w, DSV32_HF_NORM, dim, "%s.%lld.input_layernorm.weight", p, (long long)L));
	DSV32_TRY(mat(w, true, c->q_lora_rank, dim, "%s.%lld.self_attn.q_a_proj", p, (long long)L));
	DSV32_TRY(vec(w, DSV32_HF_NORM, c->q_lora_rank, "%s.%lld.self_attn.q_a_layernorm.weight", p,
		      (long long)L));
	DSV32_TRY(mat(w, true, H * (nope + rope), c->q_lora_rank, "%s.%lld.self_attn.q_b_proj", p,
		      (long long)L));
	DSV32_TRY(mat(w, true, c->kv_lora_rank + rope, dim, "%s.%lld.self_attn.kv_a_proj_with_mqa",
		      p, (long long)L));
	DSV32_TRY(vec(w, DSV32_HF_NORM, c->kv_lora_rank, "%s.%lld.self_attn.kv_a_layernorm.weight",
		      p, (long long)L));
	DSV32_TRY(mat(w, true, H * (nope + c->v_head_dim), c->kv_lora_rank,
		      "%s.%lld.self_attn.kv_b_proj", p, (long long)L));
	DSV32_TRY(mat(w, true, dim, H * c->v_head_dim, "%s.%lld.self_attn.o_proj", p,
		      (long long)L));
	int64_t IH = c->index_n_heads, ID = c->index_head_dim;
	DSV32_TRY(mat(w, true, IH * ID, c->q_lora_rank, "%s.%lld.self_attn.indexer.wq_b", p,
		      (long long)L));
	DSV32_TRY(mat(w, true, ID, dim, "%s.%lld.self_attn.indexer.wk", p, (long long)L));
	DSV32_TRY(vec(w, DSV32_HF_NORM, ID, "%s.%lld.self_attn.indexer.k_norm.weight", p,
		      (long long)L));
	DSV32_TRY(vec(w, DSV32_HF_NORM_BIAS, ID, "%s.%lld.self_attn.indexer.k_norm.bias", p,
		      (long long)L));
	DSV32_TRY(mat(w, false, IH, dim, "%s.%lld.self_attn.indexer.weights_proj", p,
		      (long long)L));
	return vec(w, DSV32_HF_NORM, dim, "%s.%lld.post_attention_layernorm.weight", p,
		   (long long)L);
}

static dsv32_status mlp(walker *w, int64_t dim, int64_t inter, const char *prefix)
{
	DSV32_TRY(mat(w, true, inter, dim, "%s.gate_proj", prefix));
	DSV32_TRY(mat(w, true, inter, dim, "%s.up_proj", prefix));
	return mat(w, true, dim, inter, "%s.down_proj", prefix);
}

static dsv32_status ffn(walker *w, const dsv32_config *c, int64_t L)
{
	char pre[160];
	if (!dsv32_config_layer_is_moe(c, L)) {
		snprintf(pre, sizeof pre, "model.layers.%lld.mlp", (long long)L);
		return mlp(w, c->dim, c->inter_dim, pre);
	}
	int64_t E = c->n_routed_experts;
	DSV32_TRY(mat(w, false, E, c->dim, "model.layers.%lld.mlp.gate", (long long)L));
	DSV32_TRY(vec(w, DSV32_HF_GATE_BIAS, E, "model.layers.%lld.mlp.gate.e_score_correction_bias",
		      (long long)L));
	for (int64_t e = 0; e < E; e++) {
		snprintf(pre, sizeof pre, "model.layers.%lld.mlp.experts.%lld", (long long)L,
			 (long long)e);
		DSV32_TRY(mlp(w, c->dim, c->moe_inter_dim, pre));
	}
	if (c->n_shared_experts == 0)
		return DSV32_OK;
	snprintf(pre, sizeof pre, "model.layers.%lld.mlp.shared_experts", (long long)L);
	return mlp(w, c->dim, c->moe_inter_dim * c->n_shared_experts, pre);
}

dsv32_status dsv32_hf_expected_tensors(const dsv32_config *c, bool fp8, dsv32_hf_tensor_fn fn,
				       void *user, dsv32_error *err)
{
	walker w = {.fn = fn, .user = user, .fp8 = fp8, .err = err};
	snprintf(w.name, sizeof w.name, "model.embed_tokens.weight");
	DSV32_TRY(emit(&w, DSV32_HF_EMBED, DSV32_BF16, 2, c->vocab_size, c->dim));
	for (int64_t L = 0; L < c->n_layers; L++) {
		DSV32_TRY(attention(&w, c, L));
		DSV32_TRY(ffn(&w, c, L));
	}
	DSV32_TRY(vec(&w, DSV32_HF_NORM, c->dim, "model.norm.weight"));
	return mat(&w, false, c->vocab_size, c->dim, "lm_head");
}

static dsv32_status count_one(const dsv32_hf_tensor *t, void *user, dsv32_error *err)
{
	(void)t;
	(void)err;
	(*(int64_t *)user)++;
	return DSV32_OK;
}

int64_t dsv32_hf_expected_count(const dsv32_config *c, bool fp8)
{
	int64_t n = 0;
	(void)dsv32_hf_expected_tensors(c, fp8, count_one, &n, NULL);
	return n;
}

bool dsv32_hf_is_mtp_name(const dsv32_config *c, const char *name)
{
	static const char pre[] = "model.layers.";
	if (strncmp(name, pre, sizeof pre - 1) != 0)
		return false;
	char *end;
	long long L = strtoll(name + sizeof pre - 1, &end, 10);
	if (end == name + sizeof pre - 1 || *end != '.')
		return false;
	return L >= c->n_layers && L < c->n_layers + c->num_nextn_predict_layers;
}

static dsv32_status list_add(const dsv32_hf_tensor *t, void *user, dsv32_error *err)
{
	dsv32_hf_tensor_list *l = user;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 256;
		dsv32_hf_tensor *nv = realloc(l->v, cap * sizeof *nv);
		if (!nv)
			return DSV32_FAIL(err, DSV32_E_NOMEM, "expected tensor list (%zu)", cap);
		l->v = nv;
		l->cap = cap;
	}
	char *name = strdup(t->name);
	if (!name)
		return DSV32_FAIL(err, DSV32_E_NOMEM, "expected tensor list: %s", t->name);
	l->v[l->n] = *t;
	l->v[l->n++].name = name;
	return DSV32_OK;
}

dsv32_status dsv32_hf_expected_list(const dsv32_config *c, bool fp8, dsv32_hf_tensor_list *out,
				    dsv32_error *err)
{
	memset(out, 0, sizeof *out);
	dsv32_status rc = dsv32_hf_expected_tensors(c, fp8, list_add, out, err);
	if (rc != DSV32_OK)
		dsv32_hf_tensor_list_free(out);
	return rc;
}

void dsv32_hf_tensor_list_free(dsv32_hf_tensor_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free((char *)l->v[i].name);
	free(l->v);
	memset(l, 0, sizeof *l);
}
