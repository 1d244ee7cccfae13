/* mlp.c: DeepseekV32MLP (docs/spec/hf_layout.md §5): down(silu(gate(x)) * up(x)) with HF's two
 * roundings in the gated product (dsv32_silu_mul_hf). Used for the dense layers and the shared
 * expert, and (routed) for DeepseekV32Experts, whose silu input is gate_up.chunk(2, -1)[0]:
 * rows of I, which decides torch's vector/tail split under exp=torch-cpu (kernels/silu.h).
 * With the silu-gating knob toward ref (core/knobs.h): the reference's one rounding of the fp32
 * silu(gate) * up product (dsv32_silu_mul_ref, as ref/mlp.c).
 * x [..., dim] -> out [..., dim]. */
#include "core/knobs.h"
#include "hf_layout/hf_internal.h"
#include "kernels/silu.h"
#include "layout_common/route.h"

dsv32_status hf_mlp(hf_model *m, const hf_mat *gate, const hf_mat *up, const hf_mat *down,
		    bool routed, const dsv32_tensor *x, dsv32_tensor *out, dsv32_error *err)
{
	int64_t rows = dsv32_tensor_numel(x) / x->shape[x->ndim - 1], I = gate->w.shape[0];
	dsv32_tensor x2 = lc_view(x, 0, 2, LC_SHAPE(rows, x->shape[x->ndim - 1]));
	dsv32_tensor o2 = lc_view(out, 0, 2, LC_SHAPE(rows, out->shape[out->ndim - 1]));
	lc_pool p = {.be = m->be};
	dsv32_status rc = DSV32_OK;
	dsv32_tensor *g, *u;
	LC_POOL(g, m->act, 2, rows, I);
	LC_POOL(u, m->act, 2, rows, I);
	LC_CK(hf_linear(m, g, &x2, gate, err));
	LC_CK(hf_linear(m, u, &x2, up, err));
	dsv32_exp_opts xb;
	const dsv32_exp_opts *xo = lc_exp_opts(&m->base, routed ? I : 0, &xb);
	if (dsv32_hfknob_on(&m->base.opts, DSV32_HFKNOB_SILU_GATING)) /* ref: one rounding */
		LC_CK(dsv32_silu_mul_ref_rule(m->be, g, g, u, xo, err));
	else
		LC_CK(dsv32_silu_mul_hf_rule(m->be, g, g, u, xo, err));
	LC_CK(hf_linear(m, &o2, g, down, err));
out:
	lc_pool_free(&p);
	return rc;
}
