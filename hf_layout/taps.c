/* taps.c: canonical forms of HF tensors whose layout differs from DESIGN.md's taps. The MLA rope
 * channels stay in HF's half-split (de-interleaved) order inside the model; the q_rope / k_rope
 * taps put them back in the reference's interleaved order (inverse permutation). Only called
 * when a tap sink is set; the model's tensors are never modified. */
#include "hf_layout/hf_internal.h"
#include "kernels/rope.h"

dsv32_status hf_tap_rope(hf_model *m, const char *name, const dsv32_tensor *x, int64_t off,
			 dsv32_error *err)
{
	int64_t R = m->base.cfg.qk_rope_head_dim;
	int nd = x->ndim;
	int64_t shape[4] = {x->shape[0], x->shape[1], nd == 4 ? x->shape[2] : R, R};
	int64_t rows = dsv32_tensor_numel(x) / x->shape[nd - 1];
	dsv32_tensor r = {0}, p = {0};
	dsv32_status rc = hf_alloc(m, &r, x->dtype, nd, shape, err);
	if (rc == DSV32_OK)
		rc = hf_alloc(m, &p, x->dtype, nd, shape, err);
	if (rc == DSV32_OK) {
		dsv32_tensor r2 = hf_view(&r, 0, 2, HF_SHAPE(rows, R));
		dsv32_tensor x2 = hf_view(x, 0, 2, HF_SHAPE(rows, x->shape[nd - 1]));
		rc = dsv32_copy_cols(m->be, &r2, &x2, off, 0, R, err);
	}
	if (rc == DSV32_OK)
		rc = dsv32_permute_deinterleave(m->be, &p, &r, 0, R, true, err);
	if (rc == DSV32_OK)
		rc = hf_tap(m, name, &p, err);
	hf_free(m, &r);
	hf_free(m, &p);
	return rc;
}
