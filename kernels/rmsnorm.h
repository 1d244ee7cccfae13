/* rmsnorm.h: RMSNorm, plain and fused with the residual add (docs/spec/ref_layout.md §A.2, Part E.2),
 * and the HF form with two roundings (docs/spec/hf_layout.md §5).
 *
 * Shapes: x, res, y, res_out [rows, dim] (any ndim, last dim = dim), activations BF16 or F32
 * (the output dtype decides the rounding, elementwise.h). w [dim].
 *
 * Normalisation, exactly as PyTorch CPU computes `x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True)
 * + eps)` in fp32 (mean = sum / dim on CPU; rsqrt = 1 / sqrt, both correctly rounded):
 *   ss   = Σ r²  in fp32 (squares rounded to fp32), CPU: summed in PyTorch CPU's cascade order
 *          with L lanes (reduce.h dsv32_sum_torch_fn; L = dsv32_torch_lanes(be): 16 = AVX-512
 *          default, 8 = AVX2), bit-exact to torch's x.pow(2).mean(-1) (docs/numerics.md).
 *          CUDA: a block reduction (another order, not part of the contract)
 *   ms   = ss / fp32(dim)
 *   inv  = 1.0f / sqrtf(ms + fp32(eps))
 *   xn   = r · inv                          (fp32)
 *
 * dsv32_rmsnorm(be, y, x, w, eps, err)                       reference, no residual
 *   w F32. r = f32(x); y = round_y( w · xn ): the weight multiply in fp32, one rounding.
 * dsv32_rmsnorm_add(be, y, res_out, x, res, w, eps, err)     reference, fused add + norm
 *   w F32. r = f32(x) + f32(res) (one fp32 add); y = round_y( w · xn ) computed from the
 *   UNROUNDED r; res_out = round_res_out(r). res_out may alias res (or x), must not alias y.
 *   With an F32 res_out and F32 inputs this is the fp32 profile.
 * dsv32_rmsnorm_hf(be, y, x, w, eps, err)                    HF DeepseekV32RMSNorm
 *   w BF16 or F32. r = f32(x); h = round_y(xn) (HF's hidden.to(input_dtype): the input dtype
 *   equals y's dtype in the models); y = round_y( f32(w) · h ).
 *   BF16 y: two roundings (bf16(xn), then bf16(w·h), the bf16×bf16 multiply PyTorch does in
 *   fp32 and rounds). F32 y: none.
 *
 * Not: the reference forms never round before the weight multiply.
 * Planted bug (tests only): with be->test_hooks->rmsnorm_no_final_round set (test_hooks.h),
 *   dsv32_rmsnorm and dsv32_rmsnorm_add round xn to bf16 BEFORE the weight multiply (an
 *   HF-style double rounding inside the reference norm), so a harness must flag drift at every
 *   norm tap. res_out is unaffected. The HF form ignores the flag.
 * NaN:    a NaN output is NaN at the same position; its sign and payload are unspecified (not
 *         part of the contract, docs/numerics.md "NaN"; the CPU AVX2 and scalar paths and the
 *         CUDA body may return different NaNs). Every non-NaN output is as stated above.
 * Errors: DSV32_E_SHAPE, DSV32_E_DTYPE, DSV32_E_USAGE (device, aliasing),
 *         DSV32_E_UNSUPPORTED if the backend lacks it.
 */
#ifndef DSV32_RMSNORM_H
#define DSV32_RMSNORM_H

#include "kernels/elementwise.h"
#include "kernels/reduce.h"

dsv32_status dsv32_rmsnorm(dsv32_backend *be, dsv32_tensor *y, const dsv32_tensor *x,
			   const dsv32_tensor *w, double eps, dsv32_error *err);
dsv32_status dsv32_rmsnorm_add(dsv32_backend *be, dsv32_tensor *y, dsv32_tensor *res_out,
			       const dsv32_tensor *x, const dsv32_tensor *res, const dsv32_tensor *w,
			       double eps, dsv32_error *err);
dsv32_status dsv32_rmsnorm_hf(dsv32_backend *be, dsv32_tensor *y, const dsv32_tensor *x,
			      const dsv32_tensor *w, double eps, dsv32_error *err);

#endif
