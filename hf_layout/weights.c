/* weights.c: load an HF checkpoint into the dtypes transformers gives each parameter under a
 * bf16 load (docs/spec/hf_layout.md §2; transformers 5.24 _keep_in_fp32_modules_strict =
 * [e_score_correction_bias, gate.weight]): everything bf16 except the router weight and bias
 * (fp32). fp8 e4m3 matrices with weight_scale_inv are dequantized (dsv32_weight_dequant: fp32
 * product per 128x128 block, one RNE to bf16), as transformers' dequantizing load does.
 * fp32 profile: every parameter F32. MTP layers, and with opts.layers = N the layers >= N,
 * are never read.
 *
 * Lazy fp8 (docs/hf_layout.md "Lazy fp8 weights"; the CPU default, opts.eager_dequant off): a
 * GEMM matrix (hf_mat) stored as F8_E4M3 + weight_scale_inv keeps both as borrowed views of the
 * mapping; its GEMM is dsv32_dequant_gemm (hf_linear: on the CPU's fixed engine a few rows at
 * a time in a cache-sized buffer, else dsv32_weight_dequant into one per-model scratch buffer the
 * size of the largest such matrix, which hf_mat_get also fills for kv_b), so the values
 * multiplied are bit-identical to the eager load's while the checkpoint is held once, in fp8.
 * Embedding and norm vectors are never lazy. On CUDA every fp8 matrix is dequantized at load
 * (eager): device memory holds the bf16 weights that fit.
 *
 * Copies (docs/perf.md "Weight loading"): on the CPU backend a parameter whose file dtype is its
 * dtype (bf16 under a bf16 load) is a borrowed, read-only view of the mmap'd checkpoint
 * (PROT_READ: a write faults); a dtype change or an fp8 dequantization is written once, straight
 * into the owned parameter. The checkpoint stays open while any parameter borrows from it and is
 * closed by hf_weights_close_src, last in the model's close. On CUDA each parameter is one
 * upload, from the mapping or from one host staging buffer; nothing borrows and the checkpoint
 * is closed at the end of the load.
 *
 * Source (docs/hf_layout.md "On reference shards"): an HF checkpoint, or reference shards through
 * the convert/ shard source (dsv32_hf_open_shards). A shard tensor that lives whole in one rank
 * file (W = 1, replicated, a routed expert) is a borrowed view as above; one split across the
 * ranks arrives as an owned host tensor holding the bytes `convert ref-to-hf --dtype keep`
 * writes: on CPU it becomes the parameter itself when its dtype is kept (lazy fp8 codes and
 * scales included: owned, not borrowed), else it is converted / uploaded and freed. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/knobs.h"
#include "core/safetensors.h"
#include "hf_layout/hf_internal.h"
#include "kernels/fp8.h"

typedef struct {
	hf_model *m;
	dsv32_ckpt *ck;     /* m->ck, or NULL when reading from m->shards */
	dsv32_shard_source *shards;
	dsv32_backend *cpu; /* host backend for the fp8 dequant */
	int64_t n_borrowed; /* parameters that are views of the mappings */
	bool lazy;          /* keep fp8 GEMM matrices as codes + scales (file comment) */
	int64_t max_lazy;   /* elements of the largest lazy matrix: the scratch size */
} loader;

/* Tensor `name` from the source: a borrowed view, or (shards, split tensors) an owned host
 * tensor the caller frees with dsv32_tensor_free unless it keeps it. */
static dsv32_status src_tensor(const loader *L, const char *name, dsv32_tensor *out,
			       dsv32_error *err)
{
	if (L->shards)
		return dsv32_shard_source_tensor(L->shards, name, out, err);
	return dsv32_ckpt_tensor(L->ck, name, out, err);
}

/* Whether the source holds `name`, and its dtype. */
static bool src_dtype(const loader *L, const char *name, dsv32_dtype *dt)
{
	if (L->shards)
		return dsv32_shard_source_find(L->shards, name, dt, NULL, NULL);
	const dsv32_st_entry *e = dsv32_ckpt_find(L->ck, name, NULL);
	if (e)
		*dt = e->dtype;
	return e != NULL;
}

/* Whether p may be read as elements of dt in place (the kernels load typed elements). */
static bool is_aligned(const void *p, dsv32_dtype dt)
{
	size_t a = dsv32_dtype_size(dt);
	return a == 0 || (uintptr_t)p % a == 0;
}

/* Load `name` as a device tensor of dtype dt with the expected shape, copying as little as
 * possible (file comment): CPU + file dtype kept: a borrowed view of the mapping; CPU + dtype
 * change or fp8 dequant: written once into the owned parameter; CUDA: one upload, from the
 * mapping or from one host staging buffer. out is empty on failure. */
static dsv32_status load(loader *L, dsv32_tensor *out, const char *name, dsv32_dtype dt, int ndim,
			 const int64_t *shape, dsv32_error *err)
{
	hf_model *m = L->m;
	bool cpu = m->be->device == DSV32_DEV_CPU;
	dsv32_tensor src, host = {0}, scale = {0}, *to;
	memset(out, 0, sizeof *out);
	dsv32_status rc = src_tensor(L, name, &src, err);
	if (rc != DSV32_OK)
		return rc;
	if (src.ndim != ndim || memcmp(src.shape, shape, sizeof(int64_t) * (size_t)ndim) != 0) {
		char a[96], b[96];
		rc = DSV32_FAIL(err, DSV32_E_SHAPE, "%s: shape %s, expected %s", name,
				dsv32_shape_str(a, sizeof a, src.ndim, src.shape),
				dsv32_shape_str(b, sizeof b, ndim, shape));
		goto out_free;
	}
	if (src.dtype != DSV32_F8_E4M3 && src.dtype != DSV32_BF16 && src.dtype != DSV32_F32) {
		rc = DSV32_FAIL(err, DSV32_E_DTYPE, "%s: dtype %s, expected BF16, F32 or F8_E4M3",
				name, dsv32_dtype_name(src.dtype));
		goto out_free;
	}
	if (src.dtype == dt && cpu && is_aligned(src.data, dt)) {
		*out = src; /* borrowed, read-only; or (shards) an owned reassembly, adopted */
		if (!src.owned)
			L->n_borrowed++;
		return DSV32_OK;
	}
	if (src.dtype == dt) { /* CUDA (or a misaligned view): one upload from the mapping */
		rc = lc_alloc(m->be, out, dt, ndim, shape, err);
		if (rc == DSV32_OK)
			rc = dsv32_backend_upload(m->be, out->data, src.data, dsv32_tensor_nbytes(out),
						  err);
		goto out_free;
	}
	/* a dtype change: written once, into the parameter itself on CPU, else into a staging
	 * buffer that is uploaded */
	if (cpu)
		rc = lc_alloc(m->be, out, dt, ndim, shape, err);
	else
		rc = dsv32_tensor_alloc(&host, dt, ndim, shape, err);
	if (rc != DSV32_OK)
		goto out_free;
	to = cpu ? out : &host;
	if (src.dtype == DSV32_F8_E4M3) {
		char sname[512];
		snprintf(sname, sizeof sname, "%s_scale_inv", name);
		rc = src_tensor(L, sname, &scale, err);
		if (rc != DSV32_OK) {
			dsv32_error_prefix(err, "%s is F8_E4M3 without %s", name, sname);
			goto out_free;
		}
		rc = dsv32_weight_dequant(L->cpu, to, &src, &scale, err);
		if (rc != DSV32_OK)
			goto out_free;
	} else if (!dsv32_convert(to->data, dt, src.data, src.dtype, (size_t)dsv32_tensor_numel(&src))) {
		rc = DSV32_FAIL(err, DSV32_E_DTYPE, "%s: cannot convert %s to %s", name,
				dsv32_dtype_name(src.dtype), dsv32_dtype_name(dt));
		goto out_free;
	}
	if (!cpu) {
		rc = lc_alloc(m->be, out, dt, ndim, shape, err);
		if (rc == DSV32_OK)
			rc = dsv32_backend_upload(m->be, out->data, host.data,
						  dsv32_tensor_nbytes(&host), err);
	}
out_free:
	if (rc != DSV32_OK)
		lc_free(m->be, out);
	dsv32_tensor_free(&host);
	dsv32_tensor_free(&scale); /* an owned reassembly; a borrowed view is left alone */
	dsv32_tensor_free(&src);
	return rc;
}

/* The weight_scale_inv of the fp8 matrix `name` [N, K]: F32 [ceil(N/128), ceil(K/128)]; a
 * borrowed view or an owned reassembly (freed here on failure). */
static dsv32_status load_scale(loader *L, const char *name, int64_t N, int64_t K,
			       dsv32_tensor *scale, dsv32_error *err)
{
	char sname[512];
	int64_t want[2] = {(N + 127) / 128, (K + 127) / 128};
	snprintf(sname, sizeof sname, "%s_scale_inv", name);
	dsv32_status rc = src_tensor(L, sname, scale, err);
	if (rc != DSV32_OK) {
		dsv32_error_prefix(err, "%s is F8_E4M3 without %s", name, sname);
		return rc;
	}
	if (scale->dtype != DSV32_F32) {
		rc = DSV32_FAIL(err, DSV32_E_DTYPE, "%s: dtype %s, expected F32", sname,
				dsv32_dtype_name(scale->dtype));
	} else if (scale->ndim != 2 || scale->shape[0] != want[0] || scale->shape[1] != want[1]) {
		char a[96], b[96];
		rc = DSV32_FAIL(err, DSV32_E_SHAPE, "%s: shape %s, expected %s", sname,
				dsv32_shape_str(a, sizeof a, scale->ndim, scale->shape),
				dsv32_shape_str(b, sizeof b, 2, want));
	}
	if (rc != DSV32_OK)
		dsv32_tensor_free(scale);
	return rc;
}

/* Load the GEMM matrix `name` [N, K] as dtype dt: lazily (fp8 codes + scale, both borrowed;
 * from shards, a split one is an owned reassembly) when the loader is lazy, the file holds
 * F8_E4M3 and dt is the activation dtype the scratch holds; else as load() does. out is empty
 * on failure. */
static dsv32_status load_mat(loader *L, hf_mat *out, const char *name, dsv32_dtype dt, int64_t N,
			     int64_t K, dsv32_error *err)
{
	hf_model *m = L->m;
	dsv32_dtype fdt = DSV32_BF16;
	bool have = src_dtype(L, name, &fdt);
	memset(out, 0, sizeof *out);
	if (!L->lazy || dt != m->act || !have || fdt != DSV32_F8_E4M3)
		return load(L, &out->w, name, dt, 2, LC_SHAPE(N, K), err);
	dsv32_tensor src, scale;
	DSV32_TRY(src_tensor(L, name, &src, err));
	dsv32_status rc = DSV32_OK;
	if (src.ndim != 2 || src.shape[0] != N || src.shape[1] != K) {
		char a[96], b[96];
		rc = DSV32_FAIL(err, DSV32_E_SHAPE, "%s: shape %s, expected %s", name,
				dsv32_shape_str(a, sizeof a, src.ndim, src.shape),
				dsv32_shape_str(b, sizeof b, 2, LC_SHAPE(N, K)));
	}
	if (rc == DSV32_OK)
		rc = load_scale(L, name, N, K, &scale, err);
	if (rc != DSV32_OK) {
		dsv32_tensor_free(&src);
		return rc;
	}
	if (!scale.owned && !is_aligned(scale.data, DSV32_F32)) { /* a copy of the small grid */
		rc = lc_alloc(m->be, &out->scale, DSV32_F32, 2, scale.shape, err);
		if (rc != DSV32_OK) {
			dsv32_tensor_free(&src);
			return rc;
		}
		memcpy(out->scale.data, scale.data, dsv32_tensor_nbytes(&scale));
	} else {
		out->scale = scale; /* borrowed, read-only; or an owned reassembly, adopted */
		L->n_borrowed += !scale.owned;
	}
	out->w = src; /* borrowed, read-only fp8 codes; or an owned reassembly, adopted */
	L->n_borrowed += !src.owned;
	m->n_lazy++;
	if (N * K > L->max_lazy)
		L->max_lazy = N * K;
	return DSV32_OK;
}

static bool hfknob(const loader *L, dsv32_hfknob_bit b)
{
	return dsv32_hfknob_on(&L->m->base.opts, b);
}

/* The lm_head's dtype: the activation dtype; with the logits-dtype knob toward ref, as the
 * reference holds its head (ref/weights.c ld_head): F32 except on the CPU's fixed GEMM engine,
 * whose order gives the same bits for a BF16 weight. */
static dsv32_dtype head_dtype(const hf_model *m)
{
	bool keep = m->be->device == DSV32_DEV_CPU && m->be->gemm_engine == DSV32_GEMM_FIXED;
	if (!dsv32_hfknob_on(&m->base.opts, DSV32_HFKNOB_LOGITS_DTYPE) || keep)
		return m->act;
	return DSV32_F32;
}

/* The RMSNorm weights' dtype: the activation dtype; with a norm knob toward ref, F32 as the
 * reference holds them (exact upcast), which its fp32 weight multiply (dsv32_rmsnorm,
 * dsv32_rmsnorm_add) takes; dsv32_rmsnorm_hf gives the same bits for either. */
static dsv32_dtype norm_dtype(const hf_model *m)
{
	const dsv32_model_opts *o = &m->base.opts;
	bool ref_norm = dsv32_hfknob_on(o, DSV32_HFKNOB_NORM_WEIGHT_DTYPE) ||
			dsv32_hfknob_on(o, DSV32_HFKNOB_NORM_FUSION);
	return ref_norm ? DSV32_F32 : m->act;
}

#define LD(dst, dt, nd, ...)                                                              \
	do {                                                                              \
		rc = load(L, (dst), nm, (dt), (nd), LC_SHAPE(__VA_ARGS__), err);           \
		if (rc != DSV32_OK)                                                       \
			return rc;                                                        \
	} while (0)
#define LM(dst, dt, N, K)                                                                 \
	do {                                                                              \
		rc = load_mat(L, (dst), nm, (dt), (N), (K), err);                         \
		if (rc != DSV32_OK)                                                       \
			return rc;                                                        \
	} while (0)
#define NAME(...) snprintf(nm, sizeof nm, __VA_ARGS__)

static dsv32_status load_layer(loader *L, int i, dsv32_error *err)
{
	hf_model *m = L->m;
	const dsv32_config *c = &m->base.cfg;
	hf_layer_w *w = &m->layers[i];
	dsv32_dtype a = m->act, f32 = DSV32_F32;
	int64_t D = c->dim, H = c->n_heads, qk = dsv32_config_qk_head_dim(c), R = c->qk_rope_head_dim;
	int64_t IH = c->index_n_heads, ID = c->index_head_dim;
	char nm[256];
	dsv32_status rc;
	const char *p = "model.layers";

	dsv32_dtype ndt = norm_dtype(L->m);
	NAME("%s.%d.input_layernorm.weight", p, i); LD(&w->input_ln, ndt, 1, D);
	NAME("%s.%d.post_attention_layernorm.weight", p, i); LD(&w->post_ln, ndt, 1, D);
	NAME("%s.%d.self_attn.q_a_proj.weight", p, i); LM(&w->q_a, a, c->q_lora_rank, D);
	NAME("%s.%d.self_attn.q_a_layernorm.weight", p, i); LD(&w->q_a_ln, ndt, 1, c->q_lora_rank);
	NAME("%s.%d.self_attn.q_b_proj.weight", p, i); LM(&w->q_b, a, H * qk, c->q_lora_rank);
	NAME("%s.%d.self_attn.kv_a_proj_with_mqa.weight", p, i);
		LM(&w->kv_a, a, c->kv_lora_rank + R, D);
	NAME("%s.%d.self_attn.kv_a_layernorm.weight", p, i); LD(&w->kv_a_ln, ndt, 1, c->kv_lora_rank);
	NAME("%s.%d.self_attn.kv_b_proj.weight", p, i);
		LM(&w->kv_b, a, H * (c->qk_nope_head_dim + c->v_head_dim), c->kv_lora_rank);
	NAME("%s.%d.self_attn.o_proj.weight", p, i); LM(&w->o_proj, a, D, H * c->v_head_dim);
	NAME("%s.%d.self_attn.indexer.wq_b.weight", p, i); LM(&w->ix_wq_b, a, IH * ID, c->q_lora_rank);
	NAME("%s.%d.self_attn.indexer.wk.weight", p, i); LM(&w->ix_wk, a, ID, D);
	NAME("%s.%d.self_attn.indexer.k_norm.weight", p, i); LD(&w->ix_kn_w, a, 1, ID);
	NAME("%s.%d.self_attn.indexer.k_norm.bias", p, i); LD(&w->ix_kn_b, a, 1, ID);
	/* bf16 under a bf16 load: _keep_in_fp32_modules applies to float16 loads only; F32 as the
	 * reference holds it with the indexer-weights-dtype knob toward ref (exact upcast) */
	NAME("%s.%d.self_attn.indexer.weights_proj.weight", p, i);
		LM(&w->ix_wproj, hfknob(L, DSV32_HFKNOB_INDEXER_WEIGHTS_DTYPE) ? DSV32_F32 : a, IH, D);

	w->moe = dsv32_config_layer_is_moe(c, i);
	if (!w->moe) {
		NAME("%s.%d.mlp.gate_proj.weight", p, i); LM(&w->gate, a, c->inter_dim, D);
		NAME("%s.%d.mlp.up_proj.weight", p, i); LM(&w->up, a, c->inter_dim, D);
		NAME("%s.%d.mlp.down_proj.weight", p, i); LM(&w->down, a, D, c->inter_dim);
		return DSV32_OK;
	}
	int64_t E = c->n_routed_experts, I = c->moe_inter_dim, SI = I * c->n_shared_experts;
	NAME("%s.%d.mlp.gate.weight", p, i); LM(&w->router_w, f32, E, D);
	NAME("%s.%d.mlp.gate.e_score_correction_bias", p, i); LD(&w->router_bias, f32, 1, E);
	NAME("%s.%d.mlp.shared_experts.gate_proj.weight", p, i); LM(&w->gate, a, SI, D);
	NAME("%s.%d.mlp.shared_experts.up_proj.weight", p, i); LM(&w->up, a, SI, D);
	NAME("%s.%d.mlp.shared_experts.down_proj.weight", p, i); LM(&w->down, a, D, SI);
	w->e_gate = calloc((size_t)E, sizeof(hf_mat));
	w->e_up = calloc((size_t)E, sizeof(hf_mat));
	w->e_down = calloc((size_t)E, sizeof(hf_mat));
	if (!w->e_gate || !w->e_up || !w->e_down)
		return DSV32_FAIL(err, DSV32_E_NOMEM, "layer %d: expert table", i);
	/* transformers fuses gate/up into gate_up_proj [E, 2I, D] (gate rows first); each output
	 * element is its own dot product, so separate gate and up matrices give the same values */
	for (int64_t e = 0; e < E; e++) {
		NAME("%s.%d.mlp.experts.%lld.gate_proj.weight", p, i, (long long)e);
			LM(&w->e_gate[e], a, I, D);
		NAME("%s.%d.mlp.experts.%lld.up_proj.weight", p, i, (long long)e);
			LM(&w->e_up[e], a, I, D);
		NAME("%s.%d.mlp.experts.%lld.down_proj.weight", p, i, (long long)e);
			LM(&w->e_down[e], a, D, I);
	}
	return DSV32_OK;
}

dsv32_status hf_weights_load(hf_model *m, const char *dir, dsv32_error *err)
{
	const dsv32_config *c = &m->base.cfg;
	loader Lv = {.m = m}, *L = &Lv;
	char nm[256];
	/* m->ck / m->shards are closed by hf_weights_close_src, also after a failure below */
	dsv32_status rc = DSV32_OK;
	if (!m->shards && (rc = dsv32_ckpt_open(&m->ck, dir, err)) != DSV32_OK)
		return rc;
	L->ck = m->ck;
	L->shards = m->shards;
	/* the act-quant knob multiplies the fp8 codes themselves (hf_linear): kept lazy */
	bool act_quant = hfknob(L, DSV32_HFKNOB_ACT_QUANT);
	if (act_quant && m->be->device != DSV32_DEV_CPU)
		return DSV32_FAIL(err, DSV32_E_UNSUPPORTED, "hf: the act-quant knob keeps the fp8 "
				  "codes of the CPU's lazy load; not on %s",
				  m->be->device == DSV32_DEV_CUDA ? "CUDA" : "this device");
	L->lazy = m->be->device == DSV32_DEV_CPU && (!m->base.opts.eager_dequant || act_quant);
	rc = dsv32_backend_create(&L->cpu, DSV32_DEV_CPU, err);
	if (rc != DSV32_OK)
		return rc;
	m->layers = calloc((size_t)c->n_layers, sizeof(hf_layer_w));
	if (!m->layers) {
		rc = DSV32_FAIL(err, DSV32_E_NOMEM, "hf: layer table");
		goto out_be;
	}
	NAME("model.embed_tokens.weight");
	rc = load(L, &m->embed, nm, m->act, 2, LC_SHAPE(c->vocab_size, c->dim), err);
	if (rc == DSV32_OK) {
		NAME("model.norm.weight");
		rc = load(L, &m->norm, nm, norm_dtype(m), 1, LC_SHAPE(c->dim), err);
	}
	if (rc == DSV32_OK) {
		NAME("lm_head.weight");
		rc = load_mat(L, &m->lm_head, nm, head_dtype(m), c->vocab_size, c->dim, err);
	}
	for (int i = 0; rc == DSV32_OK && i < (int)c->n_layers; i++)
		rc = load_layer(L, i, err);
	if (rc == DSV32_OK && L->max_lazy > 0) /* the one dequantization buffer of the lazy matrices */
		rc = lc_alloc(m->be, &m->wscratch, m->act, 1, LC_SHAPE(L->max_lazy), err);
	/* MTP layers (model.layers.{n_layers}..) are never read: transformers drops them
	 * (_keys_to_ignore_on_load_unexpected) */
	if (rc == DSV32_OK && L->n_borrowed == 0) { /* nothing borrows (CUDA, or all converted) */
		rc = dsv32_backend_sync(m->be, err); /* every upload has read its source */
		if (rc == DSV32_OK)
			hf_weights_close_src(m);
	}
out_be:
	dsv32_backend_destroy(L->cpu);
	return rc;
}

void hf_weights_close_src(hf_model *m)
{
	if (m->ck)
		dsv32_ckpt_close(m->ck);
	m->ck = NULL;
	dsv32_shard_source_close(m->shards);
	m->shards = NULL;
}

void hf_weights_release_layer(hf_model *m, int li)
{
	char hp[64], rp[64];
	if (li < 0) {
		snprintf(hp, sizeof hp, "model.embed_tokens.");
		snprintf(rp, sizeof rp, "embed.");
	} else {
		snprintf(hp, sizeof hp, "model.layers.%d.", li);
		snprintf(rp, sizeof rp, "layers.%d.", li);
	}
	if (m->ck)
		dsv32_ckpt_release_prefix(m->ck, hp);
	dsv32_shard_source_release_prefix(m->shards, rp);
}

static void mat_free(hf_model *m, hf_mat *mat)
{
	lc_free(m->be, &mat->w);
	lc_free(m->be, &mat->scale);
}

void hf_weights_free(hf_model *m)
{
	const dsv32_config *c = &m->base.cfg;
	lc_free(m->be, &m->embed);
	lc_free(m->be, &m->norm);
	mat_free(m, &m->lm_head);
	lc_free(m->be, &m->wscratch);
	m->n_lazy = 0;
	if (!m->layers)
		return;
	for (int i = 0; i < (int)c->n_layers; i++) {
		hf_layer_w *w = &m->layers[i];
		dsv32_tensor *all[] = {&w->input_ln, &w->post_ln, &w->q_a_ln, &w->kv_a_ln,
				       &w->ix_kn_w, &w->ix_kn_b, &w->router_bias};
		hf_mat *mats[] = {&w->q_a, &w->q_b, &w->kv_a, &w->kv_b, &w->o_proj, &w->ix_wq_b,
				  &w->ix_wk, &w->ix_wproj, &w->gate, &w->up, &w->down, &w->router_w};
		for (size_t j = 0; j < sizeof all / sizeof all[0]; j++)
			lc_free(m->be, all[j]);
		for (size_t j = 0; j < sizeof mats / sizeof mats[0]; j++)
			mat_free(m, mats[j]);
		for (int64_t e = 0; w->e_gate && e < c->n_routed_experts; e++) {
			mat_free(m, &w->e_gate[e]);
			mat_free(m, &w->e_up[e]);
			mat_free(m, &w->e_down[e]);
		}
		free(w->e_gate);
		free(w->e_up);
		free(w->e_down);
	}
	free(m->layers);
	m->layers = NULL;
}
