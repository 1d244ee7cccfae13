/* weights.c: loading the reference model's parameters per rank (docs/spec/ref_layout.md §2, §C.5;
 * docs/spec/checkpoints.md §6-§8) from reference shards model{r}-mp{W}.safetensors or from an HF
 * checkpoint sliced in memory through convert/namemap.h, and allocating the caches (§A.17).
 *
 * Parameter dtypes as the reference holds them: norms, indexer k_norm, gate bias F32; head and
 * indexer weights_proj upcast to F32 (exact; the head stays BF16 under the CPU's fixed GEMM
 * engine, which gives the same bits for it, ld_head); the gate weight upcast to F32 (the Gate
 * GEMM is F.linear(fp32(x), fp32(weight))); embed BF16; every other matrix in its file dtype
 * (BF16, or F8_E4M3 + F32 block scale for the fp8 GEMM path). fp32 profile: fp8 matrices are
 * dequantized to F32 once here (fp8 simulation off).
 *
 * Copies (docs/perf.md "Weight loading"): on the CPU backend a parameter kept in its file dtype
 * is a borrowed, read-only view of the mmap'd file (PROT_READ: a write faults), or, for an HF
 * tensor split across ranks in strided runs, the one owned slice made while reading it. A dtype
 * change is one conversion straight into the owned parameter. The files stay open while any
 * parameter borrows from them and are closed by ref_weights_close_src, last in the model's
 * close. On CUDA each parameter is one upload, from the mapping or from one host staging buffer
 * when its dtype changes; nothing borrows and the files are closed at the end of the load.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convert/namemap.h"
#include "core/fsutil.h"
#include "core/safetensors.h"
#include "kernels/elementwise.h"
#include "kernels/fp8.h"
#include "ref/ref_internal.h"

/* The open checkpoint the parameters are read from (and, on CPU, borrow from). */
struct ref_wsrc {
	bool is_hf;
	dsv32_ckpt *hf;
	dsv32_st_file **shard; /* [W] */
	int W;
	int64_t n_borrowed;    /* parameters that are views of the mappings */
	char buf[DSV32_NAME_MAX];
};
typedef struct ref_wsrc wsrc;

/* Host bytes of rank `rank`'s tensor `name` (reference naming): a borrowed view (a shard, or an
 * HF tensor whose rank slice is one contiguous run) or an owned copy of the rank's slice (HF,
 * strided runs). *found false when absent (no error). */
static dsv32_status src_get(wsrc *s, int rank, const char *name, dsv32_tensor *out, bool *found,
			    dsv32_error *err)
{
	*found = false;
	if (!s->is_hf) {
		const dsv32_st_entry *e = dsv32_st_find(s->shard[rank], name);
		if (!e)
			return DSV32_OK;
		DSV32_TRY(dsv32_st_tensor(s->shard[rank], name, out, err));
		*found = true;
		return DSV32_OK;
	}
	dsv32_name_info info;
	DSV32_TRY(dsv32_name_ref_to_hf(name, s->buf, sizeof s->buf, &info, err));
	if (!dsv32_ckpt_find(s->hf, s->buf, NULL))
		return DSV32_OK;
	dsv32_tensor full;
	DSV32_TRY(dsv32_ckpt_tensor(s->hf, s->buf, &full, err));
	dsv32_slice sl;
	DSV32_TRY(dsv32_slice_for_rank(&sl, s->buf, info.split, full.dtype, full.ndim, full.shape,
				       rank, s->W, err));
	if (sl.runs <= 1 || sl.stride == sl.run_bytes) { /* one contiguous run: a view */
		*out = dsv32_tensor_view((char *)full.data + sl.offset, full.dtype, sl.ndim, sl.shape);
		*found = true;
		return DSV32_OK;
	}
	DSV32_TRY(dsv32_tensor_alloc(out, full.dtype, sl.ndim, sl.shape, err));
	for (uint64_t i = 0; i < sl.runs; i++)
		memcpy((char *)out->data + i * sl.run_bytes,
		       (const char *)full.data + sl.offset + i * sl.stride, sl.run_bytes);
	*found = true;
	return DSV32_OK;
}

/* The name a user finds in the files: the HF name (with the reference name beside it) when the
 * weights come from an HF checkpoint through the name map. */
static const char *shown_name(const wsrc *s, const char *name, char *buf, size_t len)
{
	if (!s->is_hf)
		return name;
	snprintf(buf, len, "%s (reference name %s)", s->buf, name);
	return buf;
}

/* Whether p may be read as elements of dt in place (the kernels load typed elements). */
static bool is_aligned(const void *p, dsv32_dtype dt)
{
	size_t a = dsv32_dtype_size(dt);
	return a == 0 || (uintptr_t)p % a == 0;
}

/* Make dst, a parameter of dtype dt on m's device, from the host tensor src of the same shape
 * with the fewest copies (file comment). src is emptied when dst takes it over; otherwise the
 * caller still releases it. dst is empty on failure. */
static dsv32_status place(ref_model *m, wsrc *s, dsv32_tensor *src, dsv32_dtype dt,
			  dsv32_tensor *dst, dsv32_error *err)
{
	size_t n = (size_t)dsv32_tensor_numel(src);
	dsv32_status rc;
	if (m->be->device == DSV32_DEV_CPU) {
		if (dt == src->dtype && is_aligned(src->data, dt)) {
			*dst = *src; /* borrowed view of the mapping, or the owned slice handed over */
			if (!src->owned)
				s->n_borrowed++;
			*src = (dsv32_tensor){0};
			return DSV32_OK;
		}
		DSV32_TRY(lc_alloc(m->be, dst, dt, src->ndim, src->shape, err));
		dsv32_convert(dst->data, dt, src->data, src->dtype, n);
		return DSV32_OK;
	}
	dsv32_tensor stage = {0};
	const void *from = src->data;
	if (dt != src->dtype) { /* the one host staging copy */
		DSV32_TRY(dsv32_tensor_alloc(&stage, dt, src->ndim, src->shape, err));
		dsv32_convert(stage.data, dt, src->data, src->dtype, n);
		from = stage.data;
	}
	rc = lc_alloc(m->be, dst, dt, src->ndim, src->shape, err);
	if (rc == DSV32_OK)
		rc = dsv32_backend_upload(m->be, dst->data, from, dsv32_tensor_nbytes(dst), err);
	if (rc != DSV32_OK)
		lc_free(m->be, dst);
	dsv32_tensor_free(&stage);
	return rc;
}

/* Load `name` of `rank` as dtype `want` (DSV32_DTYPE_COUNT: keep the file dtype) with the
 * expected local shape onto the device. optional: absent is not an error (dst stays empty). */
static dsv32_status ld(ref_model *m, wsrc *s, int rank, const char *name, dsv32_dtype want,
		       int ndim, const int64_t *shape, bool optional, dsv32_tensor *dst,
		       dsv32_error *err)
{
	dsv32_tensor src = {0};
	bool found;
	char shown[640];
	dsv32_status rc = src_get(s, rank, name, &src, &found, err);
	if (rc != DSV32_OK)
		return dsv32_error_prefix(err, "rank %d", rank);
	if (!found) {
		if (optional)
			return DSV32_OK;
		return DSV32_FAIL(err, DSV32_E_NOTFOUND, "%s: not in the checkpoint (rank %d of %d)",
				  shown_name(s, name, shown, sizeof shown), rank, m->W);
	}
	dsv32_tensor want_t = dsv32_tensor_view(NULL, src.dtype, ndim, shape);
	if (!dsv32_tensor_same_shape(&src, &want_t)) {
		char a[96], b[96];
		rc = DSV32_FAIL(err, DSV32_E_SHAPE, "%s: shape %s on rank %d of %d, expected %s",
				shown_name(s, name, shown, sizeof shown),
				dsv32_shape_str(a, sizeof a, src.ndim, src.shape), rank, m->W,
				dsv32_shape_str(b, sizeof b, ndim, shape));
		goto out_release;
	}
	dsv32_dtype dt = want == DSV32_DTYPE_COUNT ? src.dtype : want;
	if (dt != src.dtype && !(dsv32_dtype_is_float(dt) && dsv32_dtype_is_float(src.dtype) &&
				 src.dtype != DSV32_F8_E4M3 && src.dtype != DSV32_F8_E5M2)) {
		rc = DSV32_FAIL(err, DSV32_E_DTYPE, "%s: dtype %s, expected %s",
				shown_name(s, name, shown, sizeof shown),
				dsv32_dtype_name(src.dtype), dsv32_dtype_name(dt));
		goto out_release;
	}
	rc = place(m, s, &src, dt, dst, err);
out_release:
	dsv32_tensor_free(&src); /* an owned HF slice not handed over; views are only reset */
	return rc;
}

/* A Linear "<prefix>.weight" [N, K] (+ "<prefix>.scale" when fp8). */
static dsv32_status ld_lin(ref_model *m, wsrc *s, int rank, const char *prefix, int64_t N,
			   int64_t K, ref_lin *l, dsv32_error *err)
{
	char name[DSV32_NAME_MAX];
	int64_t shape[2] = {N, K};
	snprintf(name, sizeof name, "%s.weight", prefix);
	DSV32_TRY(ld(m, s, rank, name, DSV32_DTYPE_COUNT, 2, shape, false, &l->w, err));
	if (l->w.dtype != DSV32_F8_E4M3) {
		if (l->w.dtype != DSV32_BF16 && l->w.dtype != DSV32_F32)
		{
			char shown[640];
			return DSV32_FAIL(err, DSV32_E_DTYPE, "%s: dtype %s, expected BF16, F32 or F8_E4M3",
					  shown_name(s, name, shown, sizeof shown),
					  dsv32_dtype_name(l->w.dtype));
		}
		return DSV32_OK;
	}
	int64_t sshape[2] = {(N + 127) / 128, (K + 127) / 128};
	snprintf(name, sizeof name, "%s.scale", prefix);
	DSV32_TRY(ld(m, s, rank, name, DSV32_F32, 2, sshape, false, &l->s, err));
	if (m->act == DSV32_F32) { /* fp32 profile: no fp8 simulation, dequantize once */
		dsv32_tensor wf;
		DSV32_TRY(lc_alloc(m->be, &wf, DSV32_F32, 2, shape, err));
		dsv32_status rc = dsv32_weight_dequant(m->be, &wf, &l->w, &l->s, err);
		s->n_borrowed -= (l->w.owned ? 0 : 1) + (l->s.owned ? 0 : 1);
		lc_free(m->be, &l->w); /* a view of the mapping is only reset */
		lc_free(m->be, &l->s);
		l->w = wf;
		if (rc != DSV32_OK)
			return dsv32_error_prefix(err, "%s", prefix);
	}
	return DSV32_OK;
}

static void lin_free(ref_model *m, ref_lin *l)
{
	lc_free(m->be, &l->w);
	lc_free(m->be, &l->s);
}

/* The head "head.weight" of rank r [V/W, dim]: F32, as the reference holds it (the file's BF16
 * upcast exactly), except on the CPU under the fixed GEMM engine, whose order widens a BF16 w
 * exactly inside the GEMM (gemm.h "Engines": the same bits for every dtype pair): there a BF16
 * or F32 head stays in its file dtype, a view of the mapping, which spares the F32 copy (3.7 GB
 * at the real vocabulary, most of the load time) and halves the bytes each logits GEMM reads.
 * The host engine and CUDA take other bodies for other dtype pairs, so they get F32 as before. */
static dsv32_status ld_head(ref_model *m, wsrc *s, int r, const int64_t *vshape, dsv32_tensor *dst,
			    dsv32_error *err)
{
	bool keep = m->be->device == DSV32_DEV_CPU && m->be->gemm_engine == DSV32_GEMM_FIXED;
	DSV32_TRY(ld(m, s, r, "head.weight", keep ? DSV32_DTYPE_COUNT : DSV32_F32, 2, vshape, false,
		     dst, err));
	if (dst->dtype == DSV32_BF16 || dst->dtype == DSV32_F32)
		return DSV32_OK;
	dsv32_tensor f; /* another float file dtype (e.g. F16): the F32 copy after all */
	DSV32_TRY(lc_alloc(m->be, &f, DSV32_F32, 2, vshape, err));
	dsv32_convert(f.data, DSV32_F32, dst->data, dst->dtype, (size_t)dsv32_tensor_numel(dst));
	s->n_borrowed -= dst->owned ? 0 : 1;
	lc_free(m->be, dst); /* a view of the mapping is only reset */
	*dst = f;
	return DSV32_OK;
}

/* Real ranks: the slots of the other ranks' split parameters (rank tables, routed experts) point
 * at this rank's own (shallow copies, never freed through them), so a loop over every rank that
 * does not skip the remote ones (ref_rank_is_local) still runs on valid shapes; what it computes
 * for a remote rank is discarded by the collectives, which take that rank's partial from it. */
static void alias_remote(ref_model *m, ref_layer *ly)
{
	if (!m->dist)
		return;
	int W = m->W;
	for (int r = 0; r < W; r++)
		if (r != m->rank)
			ly->rk[r] = ly->rk[m->rank];
	int64_t E = m->base.cfg.n_routed_experts, El = E / W;
	for (int64_t e = 0; ly->ew1 && e < E; e++) {
		if (dsv32_expert_owner(e, E, W) == m->rank)
			continue;
		int64_t mine = (int64_t)m->rank * El + e % El;
		ly->ew1[e] = ly->ew1[mine];
		ly->ew2[e] = ly->ew2[mine];
		ly->ew3[e] = ly->ew3[mine];
	}
}

static dsv32_status load_layer(ref_model *m, wsrc *s, int L, dsv32_error *err)
{
	const dsv32_config *c = &m->base.cfg;
	ref_layer *ly = &m->layers[L];
	int W = m->W, home = ref_home_rank(m);
	int64_t dim = c->dim, dq = dsv32_config_qk_head_dim(c), Hl = c->n_heads / W;
	int64_t one[1];
	char p[DSV32_NAME_MAX];
#define NM(...) (snprintf(p, sizeof p, __VA_ARGS__), p)
	one[0] = dim;
	DSV32_TRY(ld(m, s, home, NM("layers.%d.attn_norm.weight", L), DSV32_F32, 1, one, false,
		     &ly->attn_norm, err));
	DSV32_TRY(ld(m, s, home, NM("layers.%d.ffn_norm.weight", L), DSV32_F32, 1, one, false,
		     &ly->ffn_norm, err));
	one[0] = c->q_lora_rank;
	DSV32_TRY(ld(m, s, home, NM("layers.%d.attn.q_norm.weight", L), DSV32_F32, 1, one, false,
		     &ly->q_norm, err));
	one[0] = c->kv_lora_rank;
	DSV32_TRY(ld(m, s, home, NM("layers.%d.attn.kv_norm.weight", L), DSV32_F32, 1, one, false,
		     &ly->kv_norm, err));
	DSV32_TRY(ld_lin(m, s, home, NM("layers.%d.attn.wq_a", L), c->q_lora_rank, dim, &ly->wq_a, err));
	DSV32_TRY(ld_lin(m, s, home, NM("layers.%d.attn.wkv_a", L), c->kv_lora_rank + c->qk_rope_head_dim,
			 dim, &ly->wkv_a, err));
	/* indexer (replicated) */
	DSV32_TRY(ld_lin(m, s, home, NM("layers.%d.attn.indexer.wq_b", L),
			 c->index_n_heads * c->index_head_dim, c->q_lora_rank, &ly->iwq_b, err));
	DSV32_TRY(ld_lin(m, s, home, NM("layers.%d.attn.indexer.wk", L), c->index_head_dim, dim,
			 &ly->iwk, err));
	one[0] = c->index_head_dim;
	DSV32_TRY(ld(m, s, home, NM("layers.%d.attn.indexer.k_norm.weight", L), DSV32_F32, 1, one, false,
		     &ly->ik_norm_w, err));
	DSV32_TRY(ld(m, s, home, NM("layers.%d.attn.indexer.k_norm.bias", L), DSV32_F32, 1, one, false,
		     &ly->ik_norm_b, err));
	int64_t wp[2] = {c->index_n_heads, dim};
	DSV32_TRY(ld(m, s, home, NM("layers.%d.attn.indexer.weights_proj.weight", L), DSV32_F32, 2, wp,
		     false, &ly->iw_proj, err));
	bool moe = dsv32_config_layer_is_moe(c, L);
	if (moe) {
		int64_t gw[2] = {c->n_routed_experts, dim};
		DSV32_TRY(ld(m, s, home, NM("layers.%d.ffn.gate.weight", L), DSV32_F32, 2, gw, false,
			     &ly->gate_w, err));
		one[0] = c->n_routed_experts;
		DSV32_TRY(ld(m, s, home, NM("layers.%d.ffn.gate.bias", L), DSV32_F32, 1, one, true,
			     &ly->gate_b, err));
		int64_t E = c->n_routed_experts;
		ly->ew1 = calloc((size_t)E, sizeof(ref_lin));
		ly->ew2 = calloc((size_t)E, sizeof(ref_lin));
		ly->ew3 = calloc((size_t)E, sizeof(ref_lin));
		if (!ly->ew1 || !ly->ew2 || !ly->ew3)
			return DSV32_FAIL(err, DSV32_E_NOMEM, "layer %d: expert table", L);
		for (int64_t e = 0; e < E; e++) {
			int r = dsv32_expert_owner(e, E, W);
			int64_t mi = c->moe_inter_dim;
			if (!ref_rank_is_local(m, r))
				continue; /* real ranks: another process owns it (aliased below) */
			DSV32_TRY(ld_lin(m, s, r, NM("layers.%d.ffn.experts.%lld.w1", L, (long long)e), mi,
					 dim, &ly->ew1[e], err));
			DSV32_TRY(ld_lin(m, s, r, NM("layers.%d.ffn.experts.%lld.w3", L, (long long)e), mi,
					 dim, &ly->ew3[e], err));
			DSV32_TRY(ld_lin(m, s, r, NM("layers.%d.ffn.experts.%lld.w2", L, (long long)e), dim,
					 mi, &ly->ew2[e], err));
		}
	}
	ly->rk = calloc((size_t)W, sizeof(ref_rank_w));
	if (!ly->rk)
		return DSV32_FAIL(err, DSV32_E_NOMEM, "layer %d: rank table", L);
	for (int r = 0; r < W; r++) {
		ref_rank_w *k = &ly->rk[r];
		if (!ref_rank_is_local(m, r))
			continue;
		DSV32_TRY(ld_lin(m, s, r, NM("layers.%d.attn.wq_b", L), Hl * dq, c->q_lora_rank, &k->wq_b,
				 err));
		DSV32_TRY(ld_lin(m, s, r, NM("layers.%d.attn.wkv_b", L),
				 Hl * (c->qk_nope_head_dim + c->v_head_dim), c->kv_lora_rank, &k->wkv_b,
				 err));
		DSV32_TRY(ld_lin(m, s, r, NM("layers.%d.attn.wo", L), dim, Hl * c->v_head_dim, &k->wo,
				 err));
		if (!moe) {
			int64_t il = c->inter_dim / W;
			DSV32_TRY(ld_lin(m, s, r, NM("layers.%d.ffn.w1", L), il, dim, &k->w1, err));
			DSV32_TRY(ld_lin(m, s, r, NM("layers.%d.ffn.w3", L), il, dim, &k->w3, err));
			DSV32_TRY(ld_lin(m, s, r, NM("layers.%d.ffn.w2", L), dim, il, &k->w2, err));
		} else {
			int64_t il = c->n_shared_experts * c->moe_inter_dim / W;
			DSV32_TRY(ld_lin(m, s, r, NM("layers.%d.ffn.shared_experts.w1", L), il, dim, &k->sw1,
					 err));
			DSV32_TRY(ld_lin(m, s, r, NM("layers.%d.ffn.shared_experts.w3", L), il, dim, &k->sw3,
					 err));
			DSV32_TRY(ld_lin(m, s, r, NM("layers.%d.ffn.shared_experts.w2", L), dim, il, &k->sw2,
					 err));
		}
	}
#undef NM
	alias_remote(m, ly);
	return DSV32_OK;
}

static dsv32_status open_src(wsrc *s, ref_model *m, const char *ckpt, bool is_hf, dsv32_error *err)
{
	s->is_hf = is_hf;
	s->W = m->W;
	if (is_hf)
		return dsv32_ckpt_open(&s->hf, ckpt, err);
	s->shard = calloc((size_t)m->W, sizeof *s->shard);
	if (!s->shard)
		return DSV32_FAIL(err, DSV32_E_NOMEM, "shard table");
	for (int r = 0; r < m->W; r++) {
		char base[64], path[4096];
		if (!ref_rank_is_local(m, r)) /* real ranks: each process opens its own shard only */
			continue;
		dsv32_shard_file_name(base, sizeof base, r, m->W);
		if (!dsv32_path_join(path, sizeof path, ckpt, base))
			return DSV32_FAIL(err, DSV32_E_USAGE, "%s: path too long", ckpt);
		if (!dsv32_path_exists(path))
			return DSV32_FAIL(err, DSV32_E_NOTFOUND,
					  "%s: no shard %s for world size %d (reference shards are "
					  "model{rank}-mp{W}.safetensors)%s", ckpt, base, m->W,
					  m->dist ? " on this rank's machine" : "");
		DSV32_TRY(dsv32_st_open(&s->shard[r], path, err));
	}
	return DSV32_OK;
}

void ref_weights_close_src(ref_model *m)
{
	wsrc *s = m->src;
	if (!s)
		return;
	if (s->hf)
		dsv32_ckpt_close(s->hf);
	if (s->shard) {
		for (int r = 0; r < s->W; r++)
			if (s->shard[r])
				dsv32_st_close(s->shard[r]);
		free(s->shard);
	}
	free(s);
	m->src = NULL;
}

dsv32_status ref_weights_load(ref_model *m, const char *ckpt, bool is_hf, dsv32_error *err)
{
	const dsv32_config *c = &m->base.cfg;
	wsrc *s = calloc(1, sizeof *s);
	if (!s)
		return DSV32_FAIL(err, DSV32_E_NOMEM, "checkpoint source");
	m->src = s; /* closed by ref_weights_close_src, even after a failure below */
	dsv32_status rc = open_src(s, m, ckpt, is_hf, err);
	if (rc != DSV32_OK)
		return rc;
	int W = m->W;
	m->head = calloc((size_t)W, sizeof *m->head);
	m->layers = calloc((size_t)c->n_layers, sizeof *m->layers);
	if (!m->head || !m->layers)
		return DSV32_FAIL(err, DSV32_E_NOMEM, "model tables");
	int64_t vshape[2] = {c->vocab_size / W, c->dim}, eshape[2] = {c->vocab_size, c->dim};
	/* the one rank's rows are the table: no placement copy (real ranks: each process keeps
	 * its own rows, ref_embed takes the owner's) */
	if (W == 1 || m->dist)
		rc = ld(m, s, ref_home_rank(m), "embed.weight", DSV32_BF16, 2, vshape, false, &m->embed,
			err);
	else
		rc = lc_alloc(m->be, &m->embed, DSV32_BF16, 2, eshape, err);
	for (int r = 0; r < W && rc == DSV32_OK; r++) {
		if (!ref_rank_is_local(m, r))
			continue;
		if (W > 1 && !m->dist) {
			dsv32_tensor e = {0};
			rc = ld(m, s, r, "embed.weight", DSV32_BF16, 2, vshape, false, &e, err);
			if (rc == DSV32_OK) { /* place the rank's rows: the exact all_reduce of §C.2 */
				dsv32_tensor dst = lc_view(&m->embed, r * vshape[0] * vshape[1], 2,
							    vshape);
				rc = dsv32_cast(m->be, &dst, &e, err);
			}
			lc_free(m->be, &e);
		}
		if (rc == DSV32_OK)
			rc = ld_head(m, s, r, vshape, &m->head[r], err);
	}
	int64_t one[1] = {c->dim};
	if (rc == DSV32_OK)
		rc = ld(m, s, ref_home_rank(m), "norm.weight", DSV32_F32, 1, one, false, &m->norm, err);
	for (int L = 0; L < c->n_layers && rc == DSV32_OK; L++)
		rc = load_layer(m, s, L, err);
	if (rc == DSV32_OK && s->n_borrowed == 0) { /* nothing borrows (CUDA, or all converted) */
		rc = dsv32_backend_sync(m->be, err); /* every upload has read its source */
		if (rc == DSV32_OK)
			ref_weights_close_src(m);
	}
	return rc;
}

static void layer_free(ref_model *m, ref_layer *ly)
{
	const dsv32_config *c = &m->base.cfg;
	lc_free(m->be, &ly->attn_norm);
	lc_free(m->be, &ly->ffn_norm);
	lc_free(m->be, &ly->q_norm);
	lc_free(m->be, &ly->kv_norm);
	lin_free(m, &ly->wq_a);
	lin_free(m, &ly->wkv_a);
	lin_free(m, &ly->iwq_b);
	lin_free(m, &ly->iwk);
	lc_free(m->be, &ly->ik_norm_w);
	lc_free(m->be, &ly->ik_norm_b);
	lc_free(m->be, &ly->iw_proj);
	lc_free(m->be, &ly->gate_w);
	lc_free(m->be, &ly->gate_b);
	for (int64_t e = 0; ly->ew1 && e < c->n_routed_experts; e++) {
		if (!ref_rank_is_local(m, dsv32_expert_owner(e, c->n_routed_experts, m->W)))
			continue; /* an alias of one of ours (alias_remote) */
		lin_free(m, &ly->ew1[e]);
		lin_free(m, &ly->ew2[e]);
		lin_free(m, &ly->ew3[e]);
	}
	free(ly->ew1);
	free(ly->ew2);
	free(ly->ew3);
	for (int r = 0; ly->rk && r < m->W; r++) {
		ref_rank_w *k = &ly->rk[r];
		if (!ref_rank_is_local(m, r))
			continue; /* an alias of ours (alias_remote) */
		lin_free(m, &k->wq_b);
		lin_free(m, &k->wkv_b);
		lc_free(m->be, &k->wkv_b_deq);
		lin_free(m, &k->wo);
		lin_free(m, &k->w1);
		lin_free(m, &k->w2);
		lin_free(m, &k->w3);
		lin_free(m, &k->sw1);
		lin_free(m, &k->sw2);
		lin_free(m, &k->sw3);
	}
	free(ly->rk);
	lc_free(m->be, &ly->kv_cache);
	lc_free(m->be, &ly->pe_cache);
	lc_free(m->be, &ly->k_cache);
	lc_free(m->be, &ly->k_scale);
}

void ref_weights_free(ref_model *m)
{
	lc_free(m->be, &m->embed);
	for (int r = 0; m->head && r < m->W; r++)
		lc_free(m->be, &m->head[r]);
	free(m->head);
	lc_free(m->be, &m->norm);
	lc_free(m->be, &m->freqs);
	for (int64_t L = 0; m->layers && L < m->base.cfg.n_layers; L++)
		layer_free(m, &m->layers[L]);
	free(m->layers);
	m->head = NULL;
	m->layers = NULL;
}

/* The resident pages of the parameters under prefix (reference name, e.g. "layers.3."), in
 * whichever files they are borrowed from. */
static void release_prefix(ref_model *m, const char *ref_prefix, const char *hf_prefix)
{
	wsrc *s = m->src;
	if (!s)
		return;
	if (s->is_hf) {
		dsv32_ckpt_release_prefix(s->hf, hf_prefix);
		return;
	}
	for (int r = 0; r < s->W; r++)
		dsv32_st_release_prefix(s->shard[r], ref_prefix);
}

void ref_weights_release_layer(ref_model *m, int L)
{
	char rp[64], hp[64];
	if (L < 0) { /* the embedding table */
		release_prefix(m, "embed.", "model.embed_tokens.");
		return;
	}
	snprintf(rp, sizeof rp, "layers.%d.", L);
	snprintf(hp, sizeof hp, "model.layers.%d.", L);
	release_prefix(m, rp, hp);
	ref_layer *ly = &m->layers[L];
	for (int r = 0; ly->rk && r < m->W; r++) /* rebuilt on its next use (attn.c) */
		if (ref_rank_is_local(m, r))
			lc_free(m->be, &ly->rk[r].wkv_b_deq);
	lc_free(m->be, &ly->kv_cache);
	lc_free(m->be, &ly->pe_cache);
	lc_free(m->be, &ly->k_cache);
	lc_free(m->be, &ly->k_scale);
}

/* Every layer's caches that are not allocated (all at open; the released ones after a
 * layer-major run). */
dsv32_status ref_caches_alloc(ref_model *m, dsv32_error *err)
{
	const dsv32_config *c = &m->base.cfg;
	for (int64_t L = 0; L < c->n_layers; L++) {
		ref_layer *ly = &m->layers[L];
		if (ly->kv_cache.data)
			continue;
		int64_t s_kv[3] = {m->maxB, m->maxS, c->kv_lora_rank};
		int64_t s_pe[3] = {m->maxB, m->maxS, c->qk_rope_head_dim};
		int64_t s_k[3] = {m->maxB, m->maxS, c->index_head_dim};
		int64_t s_ks[3] = {m->maxB, m->maxS, 1};
		DSV32_TRY(lc_alloc(m->be, &ly->kv_cache, m->act, 3, s_kv, err));
		DSV32_TRY(lc_alloc(m->be, &ly->pe_cache, m->act, 3, s_pe, err));
		DSV32_TRY(lc_alloc(m->be, &ly->k_cache, m->fp8_idx ? DSV32_F8_E4M3 : m->act, 3, s_k, err));
		DSV32_TRY(lc_alloc(m->be, &ly->k_scale, DSV32_F32, 3, s_ks, err));
	}
	return DSV32_OK;
}
