/* scratch.c: device tensors and the scratch pool of both layouts (scratch.h). */
#include "layout_common/scratch.h"

dsv32_status lc_alloc(dsv32_backend *be, dsv32_tensor *t, dsv32_dtype dt, int ndim,
		      const int64_t *shape, dsv32_error *err)
{
	return dsv32_backend_alloc(be, t, dt, ndim, shape, err);
}

void lc_free(dsv32_backend *be, dsv32_tensor *t)
{
	if (t->data) /* dsv32_backend_free leaves borrowed tensors alone */
		dsv32_backend_free(be, t);
	*t = (dsv32_tensor){0};
}

dsv32_status lc_logits_out(const dsv32_model *base, dsv32_tensor *keep, dsv32_tensor *out,
			   int64_t B, int64_t V, dsv32_error *err)
{
	const int64_t shape[2] = {B, V};
	if (!base->opts.logits_view)
		return dsv32_tensor_alloc(out, DSV32_F32, 2, shape, err);
	if (keep->data && keep->shape[0] != B) /* V is the model's: only B changes */
		dsv32_tensor_free(keep);
	if (!keep->data)
		DSV32_TRY(dsv32_tensor_alloc(keep, DSV32_F32, 2, shape, err));
	*out = dsv32_tensor_view(keep->data, DSV32_F32, 2, shape);
	return DSV32_OK;
}

dsv32_tensor lc_view(const dsv32_tensor *t, int64_t off, int ndim, const int64_t *shape)
{
	dsv32_tensor v = dsv32_tensor_view((char *)t->data + (size_t)off * dsv32_dtype_size(t->dtype),
					   t->dtype, ndim, shape);
	v.device = t->device;
	return v;
}

dsv32_tensor *lc_pool_alloc(lc_pool *p, dsv32_dtype dt, int ndim, const int64_t *shape,
			    dsv32_error *err)
{
	if (p->n == LC_POOL_MAX) {
		DSV32_FAIL(err, DSV32_E_INTERNAL, "scratch pool full (%d tensors)", LC_POOL_MAX);
		return NULL;
	}
	dsv32_tensor *t = &p->t[p->n];
	if (lc_alloc(p->be, t, dt, ndim, shape, err) != DSV32_OK)
		return NULL;
	p->n++;
	return t;
}

void lc_pool_free(lc_pool *p)
{
	for (int i = 0; i < p->n; i++)
		lc_free(p->be, &p->t[i]);
	p->n = 0;
}
