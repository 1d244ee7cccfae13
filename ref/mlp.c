/* mlp.c: the SiLU-gated MLP (docs/spec/ref_layout.md §A.10, Part E item 13): the dense FFN of the
 * first n_dense_layers (column-parallel w1/w3, row-parallel w2 with its all_reduce, §C.4) and
 * the body shared by the routed and shared experts. */
#include "core/knobs.h"
#include "kernels/silu.h"
#include "layout_common/route.h"
#include "ref/ref_internal.h"

dsv32_status ref_mlp_apply(ref_model *m, const ref_lin *w1, const ref_lin *w3, const ref_lin *w2,
			   const dsv32_tensor *x, dsv32_tensor *out, dsv32_error *err)
{
	int64_t rows = dsv32_tensor_numel(x) / x->shape[x->ndim - 1], inter = w1->w.shape[0];
	lc_pool p = {.be = m->be};
	dsv32_status rc = DSV32_OK;
	dsv32_tensor *a, *b;
	LC_POOL(a, m->act, 2, rows, inter);
	LC_POOL(b, m->act, 2, rows, inter);
	dsv32_tensor x2 = lc_view(x, 0, 2, LC_SHAPE(rows, x->shape[x->ndim - 1]));
	dsv32_tensor o2 = lc_view(out, 0, 2, LC_SHAPE(rows, out->shape[out->ndim - 1]));
	LC_CK(ref_linear(m, a, &x2, w1, err));
	LC_CK(ref_linear(m, b, &x2, w3, err));
	dsv32_exp_opts xb; /* exp=torch-cpu: the expert's input x[idx] is contiguous */
	const dsv32_exp_opts *xo = lc_exp_opts(&m->base, 0, &xb);
	if (dsv32_knob_on(&m->base.opts, DSV32_KNOB_SILU_GATING)) /* HF's two roundings */
		LC_CK(dsv32_silu_mul_hf_rule(m->be, a, a, b, xo, err));
	else /* bf16( silu(fp32 w1x) · fp32 w3x ) */
		LC_CK(dsv32_silu_mul_ref_rule(m->be, a, a, b, xo, err));
	LC_CK(ref_linear(m, &o2, a, w2, err));
out:
	lc_pool_free(&p);
	return rc;
}

dsv32_status ref_mlp_forward(ref_model *m, int layer, const dsv32_tensor *x, int64_t B, int64_t S,
			     dsv32_tensor *out, dsv32_error *err)
{
	ref_layer *ly = &m->layers[layer];
	lc_pool p = {.be = m->be};
	dsv32_tensor parts[DSV32_MAX_WORLD_SIZE];
	dsv32_status rc = DSV32_OK;
	for (int r = 0; r < m->W; r++) {
		dsv32_tensor *part;
		if (!ref_rank_is_local(m, r)) { /* real ranks: that rank's partial arrives in the reduce */
			parts[r] = (dsv32_tensor){0};
			continue;
		}
		LC_POOL(part, m->act, 3, B, S, m->base.cfg.dim);
		LC_CK(ref_mlp_apply(m, &ly->rk[r].w1, &ly->rk[r].w3, &ly->rk[r].w2, x, part, err));
		parts[r] = *part;
	}
	LC_CK(ref_all_reduce(m, out, parts, err));
out:
	lc_pool_free(&p);
	return rc;
}
