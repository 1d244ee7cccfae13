/* softmax.h: softmax over the last dim (docs/spec/ref_layout.md §A.8 "p = softmax(scores)", Part E.5;
 * docs/spec/hf_layout.md §4.2 `softmax(w, dtype=float32).to(bf16)`).
 *
 * dsv32_softmax(be, y, x, err)
 *   x, y [rows, T] BF16 or F32 (any ndim; masks already added to x). Per row, in fp32, as
 *   PyTorch CPU's _vec_softmax_lastdim (the bf16 variant widens to an fp32 buffer first):
 *     m   = max_t x[t]                 (NaN propagates: a row holding NaN gives all NaN)
 *     e_t = expf(x[t] − m)             (fp32 subtract, then exp)
 *     s   = Σ e_t                      (fp32; summation order not part of the contract)
 *     y_t = round_y( e_t · (1.0f / s) )  (a reciprocal multiply, not a divide, as PyTorch)
 *   One rounding at the end when y is BF16. HF's softmax(dtype=float32).to(bf16) is the same
 *   op with a BF16 y (fp32 input of bf16 values, one cast).
 *   exp: host glibc expf (correctly rounded in nearly all cases), device expf (<= 2 ulp);
 *   the host AVX2 body computes glibc's expf in 8 lanes (kernels/expf_avx2.h: the same bits,
 *   used only where a self-check accepts the running libm, else the scalar expf);
 *   PyTorch CPU uses Sleef expf u10 (<= 1 ulp): e_t may differ by an fp32 ulp from torch.
 *   Rows that are all −inf: m = −inf, x − m = NaN, so the row is NaN, as PyTorch gives.
 *   Rows masked with finfo(bf16).min (HF) stay finite: an all-min row is uniform 1/T.
 *   y may alias x.
 * Errors: DSV32_E_SHAPE, DSV32_E_DTYPE, DSV32_E_USAGE, DSV32_E_UNSUPPORTED.
 */
#ifndef DSV32_SOFTMAX_H
#define DSV32_SOFTMAX_H

#include "kernels/elementwise.h"

dsv32_status dsv32_softmax(dsv32_backend *be, dsv32_tensor *y, const dsv32_tensor *x,
			   dsv32_error *err);

#endif
