/* tp.c: the collectives of the in-process tensor-parallel ranks (docs/spec/ref_layout.md §C.4,
 * §C.6, §C.8, §C.9). The reference's NCCL reductions choose their own summation order; here the
 * ranks are summed in rank order, left to right, in fp32 (for W = 2 every order gives the same
 * bits). A later issue puts real multi-process collectives behind the same two calls. */
#include "kernels/elementwise.h"
#include "ref/ref_internal.h"

dsv32_status ref_all_reduce(ref_model *m, dsv32_tensor *out, const dsv32_tensor *parts,
			    dsv32_error *err)
{
	if (m->W == 1) /* no reduction: the partial is the result (one rounding to out's dtype) */
		return dsv32_cast(m->be, out, &parts[0], err);
	lc_pool p = {.be = m->be};
	dsv32_status rc = DSV32_OK;
	dsv32_tensor *acc;
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
	int64_t n = parts[0].shape[parts[0].ndim - 1];
	for (int r = 0; r < m->W; r++)
		DSV32_TRY(dsv32_copy_cols(m->be, out, &parts[r], 0, r * n, n, err));
	return DSV32_OK;
}
