/* norm.h: the RMSNorm forms of both layouts, in one place so that either layout can take over
 * the other's (core/knobs.h norm-fusion, norm-weight-dtype; issue 18, both directions).
 *
 * lc_rmsnorm: the norm of x alone, the weight applied in fp32 (dsv32_rmsnorm, one rounding:
 *   the reference) or to the bf16-rounded normalised value (dsv32_rmsnorm_hf, two roundings:
 *   DeepseekV32RMSNorm), by hf_weight.
 * lc_norm_add: the residual add and the norm after it, res_out = the stream after the add (may
 *   alias res):
 *     fused, !hf_weight   dsv32_rmsnorm_add: the norm of the unrounded fp32 x + res, res_out its
 *                         rounding (the reference's fused form, §A.2)
 *     fused, hf_weight    the same fp32 sum normalised by dsv32_rmsnorm_hf, res_out its rounding
 *     !fused              res_out = x + res in the activation dtype (dsv32_add, HF's
 *                         `residual + hidden`), then lc_rmsnorm of res_out
 * fp32 addition commutes, so which operand is the branch does not change a bit. */
#ifndef DSV32_LC_NORM_H
#define DSV32_LC_NORM_H

#include <stdbool.h>

#include "kernels/backend.h"

dsv32_status lc_rmsnorm(dsv32_backend *be, dsv32_tensor *y, const dsv32_tensor *x,
			const dsv32_tensor *w, double eps, bool hf_weight, dsv32_error *err);
dsv32_status lc_norm_add(dsv32_backend *be, dsv32_tensor *y, dsv32_tensor *res_out,
			 const dsv32_tensor *x, const dsv32_tensor *res, const dsv32_tensor *w,
			 double eps, bool fused, bool hf_weight, dsv32_error *err);

#endif
