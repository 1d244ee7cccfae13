/* tp.c: the tensor-parallel collectives (docs/spec/ref_layout.md §C.2, §C.4, §C.6-§C.9).
 * The reference's NCCL reductions choose their own summation order; here the ranks are summed in
 * rank order, left to right, in fp32 (for W = 2 every order gives the same bits). In-process every
 * rank's partial is at hand; with real ranks (m->dist, ref/comm.h) each process holds only its own
 * partial, the partials are gathered byte-exact to every rank and summed here with the same ops in
 * the same order, so a W-process run gives the emulation's bits (docs/distributed.md). */
#include <stdlib.h>
#include <string.h>

#include "kernels/elementwise.h"
#include "ref/ref_internal.h"

/* all[0..W) = every rank's copy of `local` (this rank's partial), device tensors of local's dtype
 * and shape from the pool, in rank order. local must be contiguous. */
static dsv32_status gather_parts(ref_model *m, lc_pool *p, const dsv32_tensor *local,
				 dsv32_tensor *all, const char *what, dsv32_error *err)
{
	int W = m->W;
	int64_t n = dsv32_tensor_numel(local);
	size_t nb = dsv32_tensor_nbytes(local);
	dsv32_tensor *buf = lc_pool_alloc(p, local->dtype, 2, LC_SHAPE(W, n), err);
	if (!buf)
		return err ? err->code : DSV32_E_NOMEM;
	if (dsv32_comm_on_device(m->comm)) {
		DSV32_TRY(dsv32_backend_sync(m->be, err)); /* the partial is complete */
		DSV32_TRY(dsv32_comm_allgather(m->comm, buf->data, local->data, nb, what, err));
	} else {
		char *h = malloc(nb * (size_t)W + 1);
		if (!h)
			return DSV32_FAIL(err, DSV32_E_NOMEM, "%s: %zu bytes of partials", what,
					  nb * (size_t)W);
		char *mine = h + nb * (size_t)m->rank;
		dsv32_status rc = dsv32_backend_download(m->be, mine, local->data, nb, err);
		if (rc == DSV32_OK)
			rc = dsv32_comm_allgather(m->comm, h, mine, nb, what, err);
		if (rc == DSV32_OK)
			rc = dsv32_backend_upload(m->be, buf->data, h, nb * (size_t)W, err);
		free(h);
		DSV32_TRY(rc);
	}
	for (int r = 0; r < W; r++)
		all[r] = lc_view(buf, r * n, local->ndim, local->shape);
	return DSV32_OK;
}

dsv32_status ref_all_reduce(ref_model *m, dsv32_tensor *out, const dsv32_tensor *parts,
			    dsv32_error *err)
{
	if (m->W == 1) /* no reduction: the partial is the result (one rounding to out's dtype) */
		return dsv32_cast(m->be, out, &parts[0], err);
	lc_pool p = {.be = m->be};
	dsv32_status rc = DSV32_OK;
	dsv32_tensor *acc, got[DSV32_MAX_WORLD_SIZE];
	if (m->dist) { /* this process holds parts[rank] only */
		LC_CK(gather_parts(m, &p, &parts[m->rank], got, "all_reduce", err));
		parts = got;
	}
	LC_POOL_AS(acc, DSV32_F32, out->ndim, out->shape);
	LC_CK(dsv32_cast(m->be, acc, &parts[0], err)); /* y.float() */
	for (int r = 1; r < m->W; r++)
		LC_CK(dsv32_add(m->be, acc, acc, &parts[r], err)); /* fp32 sum, rank order */
	LC_CK(dsv32_cast(m->be, out, acc, err)); /* one cast back to bf16 */
out:
	lc_pool_free(&p);
	return rc;
}

dsv32_status ref_all_gather(ref_model *m, dsv32_tensor *out, const dsv32_tensor *parts,
			    dsv32_error *err)
{
	lc_pool p = {.be = m->be};
	dsv32_status rc = DSV32_OK;
	dsv32_tensor got[DSV32_MAX_WORLD_SIZE];
	if (m->dist && m->W > 1) {
		LC_CK(gather_parts(m, &p, &parts[m->rank], got, "all_gather", err));
		parts = got;
	}
	int64_t n = parts[0].shape[parts[0].ndim - 1];
	for (int r = 0; r < m->W; r++)
		LC_CK(dsv32_copy_cols(m->be, out, &parts[r], 0, r * n, n, err));
out:
	lc_pool_free(&p);
	return rc;
}

dsv32_status ref_embed(ref_model *m, dsv32_tensor *x, const dsv32_tensor *ids,
		       const int64_t *tokens, dsv32_error *err)
{
	if (!m->dist || m->W == 1) /* the table holds every row */
		return dsv32_embedding(m->be, x, &m->embed, ids, err);
	/* ParallelEmbedding (§C.2): this rank looks up the tokens it owns; one rank contributes
	 * each row, so the reference's all_reduce is a selection: take the owner's row. */
	int64_t T = dsv32_tensor_numel(ids), dim = x->shape[x->ndim - 1];
	int64_t Vl = m->embed.shape[0];
	lc_pool p = {.be = m->be};
	dsv32_status rc = DSV32_OK;
	dsv32_tensor *lid, *lx, all[DSV32_MAX_WORLD_SIZE];
	int64_t *lid_h = malloc((size_t)T * sizeof *lid_h);
	if (!lid_h)
		return DSV32_FAIL(err, DSV32_E_NOMEM, "embedding ids");
	for (int64_t t = 0; t < T; t++) {
		int64_t o = tokens[t] / Vl;
		lid_h[t] = o == m->rank ? tokens[t] - o * Vl : 0; /* a row someone else replaces */
	}
	LC_POOL(lid, DSV32_I64, 1, T);
	LC_POOL(lx, m->act, 2, T, dim);
	LC_CK(dsv32_backend_upload(m->be, lid->data, lid_h, (size_t)T * sizeof *lid_h, err));
	LC_CK(dsv32_embedding(m->be, lx, &m->embed, lid, err));
	LC_CK(gather_parts(m, &p, lx, all, "embedding", err));
	dsv32_tensor x2 = lc_view(x, 0, 2, LC_SHAPE(T, dim));
	for (int64_t t = 0; t < T; t++) { /* row t of the owner's lookup */
		int o = (int)(tokens[t] / Vl);
		dsv32_tensor src = lc_view(&all[o], t * dim, 2, LC_SHAPE(1, dim));
		dsv32_tensor dst = lc_view(&x2, t * dim, 2, LC_SHAPE(1, dim));
		LC_CK(dsv32_copy_cols(m->be, &dst, &src, 0, 0, dim, err));
	}
out:
	free(lid_h);
	lc_pool_free(&p);
	return rc;
}

dsv32_status ref_gather_cols(ref_model *m, dsv32_tensor *out, const dsv32_tensor *local,
			     dsv32_error *err)
{
	if (!m->dist || m->W == 1)
		return DSV32_OK;
	lc_pool p = {.be = m->be};
	dsv32_status rc = DSV32_OK;
	dsv32_tensor *loc, all[DSV32_MAX_WORLD_SIZE];
	int64_t rows = out->shape[0], n = out->shape[1] / m->W;
	LC_POOL(loc, out->dtype, 2, rows, n);
	LC_CK(dsv32_copy_cols(m->be, loc, local, m->rank * n, 0, n, err));
	LC_CK(gather_parts(m, &p, loc, all, "tap gather", err));
	for (int r = 0; r < m->W; r++)
		LC_CK(dsv32_copy_cols(m->be, out, &all[r], 0, r * n, n, err));
out:
	lc_pool_free(&p);
	return rc;
}

dsv32_status ref_check_topk(ref_model *m, int layer, dsv32_tensor *topk, dsv32_error *err)
{ /* the caller (block_forward) names the layer in any error */
	if (!m->dist || m->W == 1)
		return DSV32_OK;
	size_t nb = dsv32_tensor_nbytes(topk);
	int64_t n = dsv32_tensor_numel(topk);
	int64_t *mine = malloc(nb + 1), *root = malloc(nb + 1);
	dsv32_status rc = DSV32_OK;
	if (!mine || !root) {
		rc = DSV32_FAIL(err, DSV32_E_NOMEM, "layer %d: index check buffers", layer);
		goto out;
	}
	rc = dsv32_backend_download(m->be, mine, topk->data, nb, err);
	if (rc != DSV32_OK)
		goto out;
	if (m->comm->fault.kind == DSV32_COMM_FAULT_TOPK && m->comm->fault.rank == m->rank && n > 0)
		mine[0] = mine[0] ? 0 : 1; /* test-only: this rank selects differently */
	memcpy(root, mine, nb);
	/* the reference: topk_indices_ = topk_indices.clone(); dist.broadcast(topk_indices_, 0);
	 * assert torch.all(topk_indices == topk_indices_) */
	rc = dsv32_comm_bcast(m->comm, root, nb, 0, "indexer broadcast", err);
	if (rc != DSV32_OK)
		goto out;
	int64_t first = -1;
	for (int64_t i = 0; i < n && first < 0; i++)
		if (mine[i] != root[i])
			first = i;
	dsv32_status local = DSV32_OK;
	if (first >= 0)
		local = DSV32_FAIL(err, DSV32_E_MISMATCH,
				   "the indexer's top-k selection differs from rank 0's (first at "
				   "flat index %lld: %lld here, %lld on rank 0); the reference's "
				   "cross-rank check (dist.broadcast + assert) fails", (long long)first, (long long)mine[first],
				   (long long)root[first]);
	rc = dsv32_comm_agree(m->comm, local, "indexer check", err);
out:
	free(mine);
	free(root);
	return rc;
}
