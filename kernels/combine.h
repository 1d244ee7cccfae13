/* combine.h: broadcast multiply and the MoE expert-combine ops of both layouts
 * (docs/spec/ref_layout.md §A.9 `weights * q_s`, §A.12 `y[idx] += expert(x[idx]) * weights`;
 * docs/spec/hf_layout.md §6 "Expert combination": the eager bf16 index_add_ loop and the default
 * grouped_mm fp32 slot sum).
 *
 * Conventions (kernels_common.md): tensors contiguous row-major on be->device; activations BF16
 * or F32, inputs widened to fp32 exactly; the OUTPUT dtype decides the rounding (BF16: RNE at
 * the documented points, F32: none -- the models' fp32 profile). fp32 arithmetic is IEEE, one
 * rounding per operation, never contracted into an FMA (host: ISO C11; device: _rn intrinsics).
 *
 * dsv32_mul_bcast(be, y, a, b, err)
 *   a, b, y BF16|F32; a and b broadcast to y's shape by NumPy rules (shapes right-aligned, a
 *   missing or size-1 dim is repeated; every other dim must equal y's).
 *   Math:   y[i] = round_y( f32(a[ia(i)]) · f32(b[ib(i)]) )   (one fp32 product, one rounding)
 *   E.g. the reference indexer's `weights.unsqueeze(-1) * q_s`: [B,S,Hi,1] · [B,S,Hi,1];
 *   a per-row gain: y [rows, D] = a [rows, D] · b [rows, 1].
 *   y may alias a or b only when it has the same shape (in place); other overlaps are
 *   DSV32_E_USAGE.
 *
 * dsv32_moe_combine_ref(be, y, x, rows, w, err)       reference layout, fp32 index-add
 *   y    F32 [T, D] (any shape with last dim D)  accumulator, updated in place
 *   x    BF16|F32 [n, D]                         one expert's outputs (its n tokens)
 *   rows I64 [n]                                  token row of each x row, DISTINCT, in [0, T)
 *   w    F32 [n]                                  routing weight of each x row
 *   Math:   y[rows[i], d] = fp32( y[rows[i], d] + fp32( f32(x[i, d]) · w[i] ) )
 *   Rounds: the product to fp32, then the fp32 add (no FMA); no bf16 rounding anywhere.
 *   Order:  one call per expert, called in increasing expert order by the model: this is the
 *           reference's `y[idx] += expert(x[idx]) * weights[idx, top, None]` (each token appears
 *           at most once per expert, so the rows of one call are distinct; duplicates are
 *           DSV32_E_USAGE on the CPU, undefined on CUDA).
 *
 * dsv32_moe_combine_hf_eager(be, out, x, rows, w, err) HF v5 eager experts loop, index_add_
 *   out  BF16|F32 [T, D]   accumulator (starts as zeros_like(x)), updated in place
 *   x, rows, w as dsv32_moe_combine_ref (one expert per call, distinct rows, ascending order)
 *   Math:   p = round_out( f32(x[i, d]) · w[i] )          (`(y * w).to(bf16)`)
 *           out[rows[i], d] = round_out( f32(out[rows[i], d]) + p )   (bf16 index_add_)
 *   Rounds: two per contribution with a BF16 out (the product, then the sum); none with F32.
 *
 * dsv32_moe_combine_hf_grouped(be, out, x, src, w, K, err)  HF default grouped_mm slot sum
 *   out  BF16|F32 [T, D]
 *   x    BF16|F32 [n, D]   the per-(token, slot) expert outputs (e.g. sorted by expert)
 *   src  I64 [T·K] or NULL  row of x holding slot (t, k) (the un-sort); NULL: row t·K + k
 *   w    F32 [T, K]         routing weights in topk slot order
 *   K    slots per token (n_activated_experts)
 *   Math:   s = fp32(f32(x[src(t,0), d]) · w[t,0]);
 *           s = fp32( s + fp32(f32(x[src(t,k), d]) · w[t,k]) )  for k = 1 .. K-1 (slot order)
 *           out[t, d] = round_out(s)                              (one cast)
 *   Order:  left to right over the slots in topk slot order; torch's `sum(dim=1)` order is
 *           implementation-defined (docs/spec/hf_layout.md "Open point"), this is the sequential one.
 *   src entries outside [0, n) are DSV32_E_USAGE (CPU; CUDA checks on the host after a
 *   download).
 *
 * Errors: DSV32_E_SHAPE, DSV32_E_DTYPE, DSV32_E_USAGE (device, rows out of range, aliasing),
 *         DSV32_E_UNSUPPORTED (no CUDA body in this build). Nothing is written on an error found
 *         before the body runs.
 */
#ifndef DSV32_COMBINE_H
#define DSV32_COMBINE_H

#include "kernels/backend.h"

dsv32_status dsv32_mul_bcast(dsv32_backend *be, dsv32_tensor *y, const dsv32_tensor *a,
			     const dsv32_tensor *b, dsv32_error *err);
dsv32_status dsv32_moe_combine_ref(dsv32_backend *be, dsv32_tensor *y, const dsv32_tensor *x,
				   const dsv32_tensor *rows, const dsv32_tensor *w,
				   dsv32_error *err);
dsv32_status dsv32_moe_combine_hf_eager(dsv32_backend *be, dsv32_tensor *out,
					const dsv32_tensor *x, const dsv32_tensor *rows,
					const dsv32_tensor *w, dsv32_error *err);
dsv32_status dsv32_moe_combine_hf_grouped(dsv32_backend *be, dsv32_tensor *out,
					  const dsv32_tensor *x, const dsv32_tensor *src,
					  const dsv32_tensor *w, int64_t K, dsv32_error *err);

#endif
