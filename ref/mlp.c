/* mlp.c: the SiLU-gated MLP (reference_layout.md §A.10, Part E item 13): the dense FFN of the
 * first n_dense_layers (column-parallel w1/w3, row-parallel w2 with its all_reduce, §C.4) and
 * the body shared by the routed and shared experts. */
#include "kernels/silu.h"
#include "ref/ref_internal.h"

dsv32_status ref_mlp_apply(ref_model *m, const ref_lin *w1, const ref_lin *w3, const ref_lin *w2,
			   const dsv32_tensor *x, dsv32_tensor *out, dsv32_error *err)
{
	int64_t rows = dsv32_tensor_numel(x) / x->shape[x->ndim - 1], inter = w1->w.shape[0];
	ref_pool p = {0};
	dsv32_status rc = DSV32_E_NOMEM;
	int64_t sh[2] = {rows, inter};
	dsv32_tensor *a = ref_pool_alloc(m, &p, m->act, 2, sh, err);
	dsv32_tensor *b = a ? ref_pool_alloc(m, &p, m->act, 2, sh, err) : NULL;
	if (!b)
		goto out;
	dsv32_tensor x2 = ref_view(x, 0, 2, (int64_t[]){rows, x->shape[x->ndim - 1]});
	dsv32_tensor o2 = ref_view(out, 0, 2, (int64_t[]){rows, out->shape[out->ndim - 1]});
	rc = ref_linear(m, a, &x2, w1, err);
	if (rc == DSV32_OK)
		rc = ref_linear(m, b, &x2, w3, err);
	if (rc == DSV32_OK) /* bf16( silu(fp32 w1x) · fp32 w3x ) */
		rc = dsv32_silu_mul_ref(m->be, a, a, b, err);
	if (rc == DSV32_OK)
		rc = ref_linear(m, &o2, a, w2, err);
out:
	if (rc == DSV32_E_NOMEM && err && err->code != DSV32_E_NOMEM)
		rc = err->code;
	ref_pool_free(m, &p);
	return rc;
}

dsv32_status ref_mlp_forward(ref_model *m, int layer, const dsv32_tensor *x, int64_t B, int64_t S,
			     dsv32_tensor *out, dsv32_error *err)
{
	ref_layer *ly = &m->layers[layer];
	ref_pool p = {0};
	dsv32_tensor parts[16];
	dsv32_status rc = DSV32_OK;
	int64_t sh[3] = {B, S, m->base.cfg.dim};
	for (int r = 0; r < m->W && rc == DSV32_OK; r++) {
		dsv32_tensor *part = ref_pool_alloc(m, &p, m->act, 3, sh, err);
		if (!part) {
			rc = err ? err->code : DSV32_E_NOMEM;
			break;
		}
		rc = ref_mlp_apply(m, &ly->rk[r].w1, &ly->rk[r].w3, &ly->rk[r].w2, x, part, err);
		parts[r] = *part;
	}
	if (rc == DSV32_OK)
		rc = ref_all_reduce(m, out, parts, err);
	ref_pool_free(m, &p);
	return rc;
}
