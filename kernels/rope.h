/* rope.h: rotary embedding, reference (fp32 complex rotation, one rounding; docs/spec/ref_layout.md
 * §A.5) and HF (bf16 rotate_half arithmetic; docs/spec/hf_layout.md §3.2-3.5), and the de-interleave
 * permutation HF applies to the MLA rope channels.
 *
 * Layout for all three ops: x and y are [B, S, H, D] (ndim 4) or [B, S, D] (ndim 3, H = 1),
 * BF16 or F32, same shape. The rope channels of each (b, s, h) row are the rd columns
 * [off, off + rd) of that row (rd = 64 in the models; e.g. an MLA q head [.., 192] has off = 128,
 * an indexer head [.., 128] off = 0, wkv_a's output [B, S, 576] off = 512 with H = 1).
 * Only those columns of y are written; other columns of y are left untouched. y may be x
 * (in place) and otherwise must not overlap it.
 *
 * dsv32_rope_ref(be, y, x, freqs, pos0, off, interleaved, err)
 *   freqs F32 [T, rd/2, 2]: (cos θ, sin θ) of table row t (kernels/yarn.h builds it); row
 *   s of the call uses table row pos0 + s (the reference's freqs_cis[start_pos : start_pos+S],
 *   shared by every batch row). Requires pos0 + S <= T.
 *   Pairs: interleaved (MLA)  (x[2i], x[2i+1]);  half-split (indexer) (x[i], x[i + rd/2]).
 *     re' = re·c − im·s,  im' = re·s + im·c   in fp32 (each product and the sum/difference
 *     rounded to fp32, as PyTorch CPU's complex64 multiply: (a+bi)(c+di) = (ac−bd) + (ad+bc)i),
 *     then one rounding to y's dtype.
 * dsv32_rope_hf(be, y, x, cos, sin, off, err)
 *   cos, sin [S, rd] or [B, S, rd], BF16 or F32 (HF: bf16, cos[j] = cos[j + rd/2]).
 *   Half-split pairs on the channels as given (for MLA, apply dsv32_permute_deinterleave
 *   first). With rot = rotate_half(x) = [−x2, x1]:
 *     out = round( round(x·cos) + round(rot·sin) )
 *   where round is bf16 RNE when y is BF16 (PyTorch bf16 elementwise ops: each computed in fp32
 *   and rounded: bf16(x·cos), bf16(rot·sin), bf16(sum)), and none when y is F32.
 * dsv32_permute_deinterleave(be, y, x, off, rd, inverse, err)
 *   P = [0, 2, ..., rd−2, 1, 3, ..., rd−1]: forward y[j] = x[P[j]] (y[j] = x[2j],
 *   y[rd/2 + j] = x[2j + 1]); inverse y[P[j]] = x[j] (back to the reference order, for taps).
 *   On the rd columns at off, values copied (rounded to y's dtype if it differs). In place ok.
 *
 * NaN:    a NaN output is NaN at the same position; its sign and payload are unspecified (not
 *         part of the contract, docs/numerics.md "NaN"; the CPU AVX2 and scalar paths and the
 *         CUDA body may return different NaNs). Every non-NaN output is as stated above.
 * rd must be even and <= 256 (DSV32_ROPE_MAX_DIM). Errors: DSV32_E_SHAPE, DSV32_E_DTYPE,
 * DSV32_E_USAGE, DSV32_E_UNSUPPORTED.
 */
#ifndef DSV32_ROPE_H
#define DSV32_ROPE_H

#include "kernels/elementwise.h"

#define DSV32_ROPE_MAX_DIM 256

dsv32_status dsv32_rope_ref(dsv32_backend *be, dsv32_tensor *y, const dsv32_tensor *x,
			    const dsv32_tensor *freqs, int64_t pos0, int64_t off, bool interleaved,
			    dsv32_error *err);
dsv32_status dsv32_rope_hf(dsv32_backend *be, dsv32_tensor *y, const dsv32_tensor *x,
			   const dsv32_tensor *cos, const dsv32_tensor *sin, int64_t off,
			   dsv32_error *err);
dsv32_status dsv32_permute_deinterleave(dsv32_backend *be, dsv32_tensor *y, const dsv32_tensor *x,
					int64_t off, int64_t rd, bool inverse, dsv32_error *err);

#endif
