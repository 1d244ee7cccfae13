/* layernorm.h: LayerNorm with weight and bias over the last dim (docs/spec/ref_layout.md §A.3, the
 * indexer's k_norm; docs/spec/hf_layout.md §9 step 2).
 *
 * dsv32_layernorm(be, y, x, w, b, eps, err)
 *   x, y [rows, dim] BF16 or F32 (y's dtype decides the rounding); w, b [dim] F32 (reference:
 *   `F.layer_norm(x.float(), ..., fp32 w, fp32 b).type_as(x)`) or BF16 (HF: F.layer_norm on bf16
 *   input with bf16 weight/bias). Both go through the same PyTorch CPU kernel arithmetic, which
 *   widens everything to fp32 and rounds once at the end, so one op serves both layouts:
 *     mean, var (population): CPU: PyTorch CPU's vectorised Welford cascade with L lanes
 *       (reduce.h dsv32_moments_torch_fn; L = dsv32_torch_lanes(be)); CUDA: two passes
 *     rstd  = 1.0f / sqrtf(max(var, 0) + fp32(eps))
 *     scale = rstd;  shift = -(rstd · mean)
 *     y = round_y( (x · scale + shift) · w + b )  (each op rounded to fp32, no FMA): torch 1.13;
 *     with dsv32_torch_major(be) == 2 the torch 2.x forms: fp32 x: fma((x - mean)·rstd, w, b);
 *     bf16 x: fma(fma(x, scale, shift), w, b) (and fused Welford updates; docs/numerics.md)
 *   (max(var, 0) keeps a NaN var, as std::max does.)
 * Note: PyTorch CUDA computes (x - mean) · rstd · w + b instead; we follow the CPU kernel (the
 * golden data's and the HF CPU run's).
 * y may alias x. Errors: DSV32_E_SHAPE, DSV32_E_DTYPE, DSV32_E_USAGE, DSV32_E_UNSUPPORTED.
 */
#ifndef DSV32_LAYERNORM_H
#define DSV32_LAYERNORM_H

#include <math.h>

#include "kernels/elementwise.h"
#include "kernels/reduce.h"

dsv32_status dsv32_layernorm(dsv32_backend *be, dsv32_tensor *y, const dsv32_tensor *x,
			     const dsv32_tensor *w, const dsv32_tensor *b, double eps,
			     dsv32_error *err);

#endif
