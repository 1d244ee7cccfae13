/* fp8.h: block-scaled fp8 e4m3 ops of the reference (docs/spec/ref_layout.md Part B; the CPU
 * stand-ins of golden/ref_tiny/README.md). Block size 128 everywhere.
 *
 * dsv32_act_quant(be, y8, s, x, ue8m0, err)                                     §B.2.1
 *   x   BF16|F32 [..., K]        K % 128 == 0 (the reference asserts it)
 *   y8  F8_E4M3  [..., K]        out: codes
 *   s   F32      [..., K/128]    out: one scale per row per 128-block
 *   Math:   amax = max_j |x_j| (fp32, exact); amax = max(amax, fp32(1e-4))
 *           s = amax · fp32(1/448)          (a multiply by the fp32 constant 0.00223214296,
 *                                            as kernel.py: fp8_max_inv = 1/448, not amax/448)
 *           ue8m0: s = 2^e, e = (biased exponent of s − 127) + (1 if any mantissa bit set)
 *                  (= 2^ceil(log2 s) on the fp32 bits; s is always normal since amax >= 1e-4,
 *                  so an all-zero block gets 2^-22)
 *           y_j = e4m3( clamp(fp32(x_j) / s, −448, 448) ), IEEE fp32 division, RNE, saturating
 *   Rounds: the fp32 multiply for s; the fp32 division; the e4m3 RNE. Nothing else.
 *   NaN:    not specified upstream; ours ignores NaN in amax and maps a NaN x_j to the e4m3 NaN.
 *
 * dsv32_fp8_roundtrip(be, y, x, ue8m0, err)       MLA latent round trip §B.6
 *   x BF16|F32 [..., K], y BF16|F32 [..., K] (may alias x: same tensor, in place)
 *   y_j = e4m3(x_j / s) · s (fp32 multiply), rounded RNE to bf16 iff y is BF16. With ue8m0
 *   scales the multiply is exact.
 *
 * dsv32_weight_dequant(be, w, w8, scale, err)                                   §B.5
 *   w8 F8_E4M3 [N, K]; scale F32 [ceil(N/128), ceil(K/128)]; w BF16|F32 [N, K] out
 *   w[n,k] = fp32(w8[n,k]) · scale[n/128, k/128] (fp32 multiply), RNE to bf16 iff w is BF16.
 *   Exact when the scales are powers of two (and the product stays normal). Where a NaN code
 *   meets a NaN scale, which of the two NaNs comes out is not fixed (as in C's multiply).
 *   CPU (fp8_dequant_cpu.c): the formula itself (AVX2 without AVX-512BW) or a 256-entry table
 *   per 128x128 block whose entries it computes; the same bits.
 *
 * dsv32_dequant_gemm(be, y, x, w8, scale, scratch, err)       (hf layout, lazy fp8 matrices)
 *   x BF16|F32 [..., K]; w8, scale as weight_dequant's; y BF16|F32 [..., N]
 *   y = dsv32_gemm(x, W) with W = weight_dequant(w8, scale) in BF16: the bits of those two
 *   calls, on every backend and engine. CPU, fixed engine: W is never written whole; 128-row
 *   groups of it are made a few rows at a time in a cache-sized buffer and multiplied there
 *   (the fixed engine's outputs do not depend on how the columns are split into calls);
 *   on its avx2 and scalar bodies only up to 32 rows of x. Elsewhere (host engine, CUDA, the
 *   avx2 body's larger x): W goes into scratch (BF16, on be's device, at least N·K elements;
 *   may be NULL on the CPU under the fixed engine), then one dsv32_gemm.
 *
 * dsv32_fp8_gemm(be, y, x8, xs, w8, ws, err)                                    §B.2.2
 *   x8 F8_E4M3 [..., K]; xs F32 [..., ceil(K/128)]; w8 F8_E4M3 [N, K];
 *   ws F32 [ceil(N/128), ceil(K/128)]; y BF16|F32 [..., N]
 *   y[m,n] = Σ_{kb=0,1,2..} P[m,n,kb] · (xs[m,kb] · ws[n/128,kb])
 *     P[m,n,kb] = Σ_{k in block kb} x8[m,k]·w8[n,k] in fp32 (each product of two e4m3 values is
 *     exact in fp32; the order of the in-block fp32 sum is not part of the contract: TileLang's
 *     MMA order is unspecified, docs/spec/ref_layout.md §G). The scale product is one fp32 multiply,
 *     P times it one fp32 multiply (never fused: nvcc may contract the reference's
 *     `acc += P * s` into an FMA; identical whenever the scales are powers of two), and the
 *     scaled block results are added in fp32 into an
 *     accumulator starting at +0, in increasing kb order (defined by the spec). One RNE rounding
 *     to bf16 at the end iff y is BF16. A last partial K block (K % 128 != 0) is a short block.
 *
 * dsv32_linear_fp8(be, y, x, w8, ws, ue8m0, err)                                §B.3
 *   = act_quant(x, ue8m0) then fp8_gemm: the reference linear() for an fp8 weight.
 *   x BF16|F32 [..., K] (K % 128 == 0), y BF16|F32 [..., N]. Temporaries are allocated on
 *   be's device per call.
 *
 * Bodies: CPU: OpenMP loops; fp8_gemm runs the fixed GEMM engine (gemm_fixed.c) with one chunk
 *         per 128-block: e4m3 widened to f32 exactly, the in-block sum in the fixed 8-lane
 *         order, the same bits on every CPU (avx2 or scalar body) and for either gemm engine.
 *         CUDA: own kernels (one warp per 128-block for act_quant; a tiled fp8_gemm with the
 *         same block structure).
 * Errors: DSV32_E_DTYPE, DSV32_E_SHAPE, DSV32_E_USAGE (wrong device / bad aliasing),
 *         DSV32_E_UNSUPPORTED, DSV32_E_NOMEM, DSV32_E_CUDA, DSV32_E_INTERNAL.
 */
#ifndef DSV32_FP8_H
#define DSV32_FP8_H

#include "kernels/backend.h"

#define DSV32_FP8_BLOCK 128
/* fp32(1/448) = 0x3b124925 = 0.00223214296 (docs/spec/ref_layout.md §B.8) */
#define DSV32_FP8_INV_MAX 0.0022321429569274187f
#define DSV32_FP8_AMAX_MIN 1e-4f

/* One element: e4m3(clamp(x / s, -448, 448)); NaN passes through to the e4m3 NaN. */
DSV32_HD static inline dsv32_f8 dsv32_fp8_quant_elem(float x, float s)
{
	float q = x / s;
	if (q > DSV32_E4M3_MAX)
		q = DSV32_E4M3_MAX;
	if (q < -DSV32_E4M3_MAX)
		q = -DSV32_E4M3_MAX;
	return dsv32_f32_to_e4m3(q);
}

dsv32_status dsv32_act_quant(dsv32_backend *be, dsv32_tensor *y8, dsv32_tensor *s,
			     const dsv32_tensor *x, bool ue8m0, dsv32_error *err);
dsv32_status dsv32_fp8_roundtrip(dsv32_backend *be, dsv32_tensor *y, const dsv32_tensor *x,
				 bool ue8m0, dsv32_error *err);
dsv32_status dsv32_weight_dequant(dsv32_backend *be, dsv32_tensor *w, const dsv32_tensor *w8,
				  const dsv32_tensor *scale, dsv32_error *err);
dsv32_status dsv32_dequant_gemm(dsv32_backend *be, dsv32_tensor *y, const dsv32_tensor *x,
				const dsv32_tensor *w8, const dsv32_tensor *scale,
				const dsv32_tensor *scratch, dsv32_error *err);
dsv32_status dsv32_fp8_gemm(dsv32_backend *be, dsv32_tensor *y, const dsv32_tensor *x8,
			    const dsv32_tensor *xs, const dsv32_tensor *w8, const dsv32_tensor *ws,
			    dsv32_error *err);
dsv32_status dsv32_linear_fp8(dsv32_backend *be, dsv32_tensor *y, const dsv32_tensor *x,
			      const dsv32_tensor *w8, const dsv32_tensor *ws, bool ue8m0,
			      dsv32_error *err);

#endif
