/* scratch.h: the device tensors of a model forward, shared by ref/ and hf_layout/ (the model
 * plumbing between kernels/ and the two layouts): allocation and release on the model's
 * backend, borrowed views, and the scratch pool.
 *
 * Cleanup style of both layouts: a function that owns scratch tensors takes them from one
 * lc_pool and frees the pool at a single `out:` label, so no early return can leak one.
 * LC_POOL / LC_CK are the statements of that style. A function that owns nothing uses
 * DSV32_TRY (core/error.h).
 */
#ifndef DSV32_LAYOUT_SCRATCH_H
#define DSV32_LAYOUT_SCRATCH_H

#include "core/model.h"
#include "kernels/backend.h"

/* A zero-filled tensor on be's device. */
dsv32_status lc_alloc(dsv32_backend *be, dsv32_tensor *t, dsv32_dtype dt, int ndim,
		      const int64_t *shape, dsv32_error *err);
/* Frees owned storage only (a borrowed view, e.g. a parameter mapped from the checkpoint, is
 * left alone) and resets t in both cases. */
void lc_free(dsv32_backend *be, dsv32_tensor *t);
/* The logits output of the common forward (core/model.h), F32 [B, V] on the host: with
 * base->opts.logits_view a borrowed view of *keep (an owned buffer the model keeps, made again
 * only when B changes), else a new owned tensor. */
dsv32_status lc_logits_out(const dsv32_model *base, dsv32_tensor *keep, dsv32_tensor *out,
			   int64_t B, int64_t V, dsv32_error *err);
/* A borrowed view of t's storage from element offset `off`, with a new shape (same dtype and
 * device). */
dsv32_tensor lc_view(const dsv32_tensor *t, int64_t off, int ndim, const int64_t *shape);

/* A shape argument written in place: LC_SHAPE(B, S, dim). */
#define LC_SHAPE(...) ((const int64_t[]){__VA_ARGS__})

/* The scratch tensors of one call, freed together: `lc_pool p = {.be = m->be};`. A fixed
 * bound, so taking a tensor never allocates a table: the largest user, the reference MLA, holds
 * 10 + 2 per TP rank (so at most 43 ranks). */
#define LC_POOL_MAX 96
typedef struct {
	dsv32_backend *be;
	int n;
	dsv32_tensor t[LC_POOL_MAX];
} lc_pool;

/* A zero-filled scratch tensor from the pool; NULL with err filled on failure. */
dsv32_tensor *lc_pool_alloc(lc_pool *p, dsv32_dtype dt, int ndim, const int64_t *shape,
			    dsv32_error *err);
void lc_pool_free(lc_pool *p);

/* Statements for a function that declares `lc_pool p`, `dsv32_status rc`, `dsv32_error *err`
 * and a label `out` that frees the pool.
 * LC_POOL(t, dt, nd, d0, d1, ...): t = a zero-filled scratch tensor of that dtype and shape, or
 * rc = the failure and goto out; LC_POOL_AS(t, dt, nd, shape) takes the shape as an array.
 * LC_CK(expr): rc = expr; goto out unless DSV32_OK. */
#define LC_POOL_AS(t, dt, nd, shape)                                                 \
	do {                                                                         \
		(t) = lc_pool_alloc(&p, (dt), (nd), (shape), err);                   \
		if (!(t)) {                                                          \
			rc = err && err->code != DSV32_OK ? err->code : DSV32_E_NOMEM; \
			goto out;                                                    \
		}                                                                    \
	} while (0)
#define LC_POOL(t, dt, nd, ...) LC_POOL_AS(t, dt, nd, LC_SHAPE(__VA_ARGS__))
#define LC_CK(expr)                 \
	do {                        \
		rc = (expr);        \
		if (rc != DSV32_OK) \
			goto out;   \
	} while (0)

#endif
