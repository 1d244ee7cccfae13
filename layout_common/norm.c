/* norm.c: the RMSNorm forms of both layouts (norm.h). */
#include "layout_common/norm.h"

#include "kernels/elementwise.h"
#include "kernels/rmsnorm.h"
#include "layout_common/scratch.h"

dsv32_status lc_rmsnorm(dsv32_backend *be, dsv32_tensor *y, const dsv32_tensor *x,
			const dsv32_tensor *w, double eps, bool hf_weight, dsv32_error *err)
{
	if (hf_weight)
		return dsv32_rmsnorm_hf(be, y, x, w, eps, err);
	return dsv32_rmsnorm(be, y, x, w, eps, err);
}

dsv32_status lc_norm_add(dsv32_backend *be, dsv32_tensor *y, dsv32_tensor *res_out,
			 const dsv32_tensor *x, const dsv32_tensor *res, const dsv32_tensor *w,
			 double eps, bool fused, bool hf_weight, dsv32_error *err)
{
	if (fused && !hf_weight)
		return dsv32_rmsnorm_add(be, y, res_out, x, res, w, eps, err);
	if (!fused) { /* dsv32_add lets y alias its first operand only; the sum commutes */
		bool res_first = res_out->data != x->data;
		DSV32_TRY(dsv32_add(be, res_out, res_first ? res : x, res_first ? x : res, err));
		return lc_rmsnorm(be, y, res_out, w, eps, hf_weight, err);
	}
	/* the fp32 sum kept unrounded for the norm, rounded once for the stream */
	lc_pool p = {.be = be};
	dsv32_status rc = DSV32_OK;
	dsv32_tensor *r;
	LC_POOL_AS(r, DSV32_F32, x->ndim, x->shape);
	LC_CK(dsv32_add(be, r, x, res, err));
	LC_CK(dsv32_rmsnorm_hf(be, y, r, w, eps, err));
	LC_CK(dsv32_cast(be, res_out, r, err));
out:
	lc_pool_free(&p);
	return rc;
}
