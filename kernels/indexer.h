/* indexer.h: lightning-indexer scores (docs/spec/ref_layout.md §A.9 steps 8-10, §B.2.3, §B.4;
 * golden README "CPU stand-ins" fp8_index; docs/spec/hf_layout.md §9 steps 6-9).
 * The projections, RoPE, Hadamard, act_quant and the top-k (dsv32_topk) are separate ops.
 *
 * Caches: k8/k_s (ref) and k (HF) may be whole cache buffers [Bc, Tc, ...] with Bc >= B and
 * Tc >= T; only [:B, :T] is read, where B, S, T come from `out` [B, S, T]. So the model passes
 * its preallocated cache directly (no .contiguous() copy needed).
 * mask (optional, both ops): F32|BF16, [S, T] (broadcast over B), [B, S, T] or [B, 1, S, T];
 * added last, in fp32: out = score + f32(mask) (the bf16 mask is widened exactly).
 *
 * dsv32_fp8_index(be, out, q8, w, k8, k_s, mask, err)                       (reference)
 *   q8   F8_E4M3 [B, S, H, D]     raw e4m3 codes of the Hadamard-rotated indexer queries
 *   w    F32 [B, S, H] or [B, S, H, 1]   per-head weight (weights_proj·H^-0.5·q_s·D^-0.5)
 *   k8   F8_E4M3 [Bc, Tc, D]      key cache (e4m3 codes)
 *   k_s  F32 [Bc, Tc] or [Bc, Tc, 1]     key scales
 *   out  F32 [B, S, T]
 *   Math: out[b,i,t] = k_s[b,t] · Σ_h ReLU(Σ_d q8[b,i,h,d]·k8[b,t,d]) · w[b,i,h]  (+ mask)
 *   Accum/rounds (all fp32, no FMA): dot = fp32 sum over d = 0..D-1 in order from +0 of the
 *     products of the e4m3 values (each product is exact in fp32); r = max(dot, 0) (NaN stays
 *     NaN); acc = +0, then acc = acc + r·w[h] for h = 0..H-1 in order (product rounded, then the
 *     sum rounded) — the golden stand-in's order; out = k_s · acc (one rounding), then + mask.
 *     (The TileLang kernel uses another fp32 order for d and h: last-bit differences, §G.)
 *   CPU and CUDA use the same order: identical bits.
 *
 * dsv32_index_scores_hf(be, out, q, k, w, softmax_scale, mask, err)        (HF, no fp8)
 *   q    BF16|F32 [B, S, H, D]    post-RoPE indexer queries
 *   k    BF16|F32 [Bc, Tc, D]     indexer key cache (post-RoPE)
 *   w    F32 [B, S, H]            per-head weights = f32(weights_proj(x)) · H^-0.5 (the model
 *                                 computes it: a bf16 GEMM output widened, times 0.125)
 *   out  F32 [B, S, T]
 *   Math: sc[h,t] = ReLU( fp32(Σ_d q·k) · fp32(softmax_scale) );  out = Σ_h w[h]·sc[h,t] (+ mask)
 *   Accum/rounds: q·k in fp32 over d = 0..D-1 from +0 (bf16 products exact; torch's matmul order
 *     is not reproduced: last-bit differences); one rounding for × scale; ReLU; the head sum
 *     acc = +0, acc = acc + w·sc for h in order (torch: a [1,H]x[H,T] fp32 matmul, order not
 *     pinned). Output fp32: never rounded to bf16.
 *
 * Errors: DSV32_E_DTYPE, DSV32_E_SHAPE, DSV32_E_USAGE (device, aliasing), DSV32_E_UNSUPPORTED,
 *         DSV32_E_CUDA.
 */
#ifndef DSV32_INDEXER_H
#define DSV32_INDEXER_H

#include "kernels/topk.h"

/* Reference per-head term ReLU(dot)·w, given the fp32 dot of the e4m3 values. */
DSV32_HD static inline float dsv32_fp8_index_head(float dot, float w)
{
	float r = dot > 0.0f || dot != dot ? dot : 0.0f;
	return dsv32_fmul_rn(r, w);
}

/* HF per-head score ReLU(dot · scale). */
DSV32_HD static inline float dsv32_index_hf_head(float dot, float scale)
{
	float s = dsv32_fmul_rn(dot, scale);
	return s > 0.0f || s != s ? s : 0.0f;
}

dsv32_status dsv32_fp8_index(dsv32_backend *be, dsv32_tensor *out, const dsv32_tensor *q8,
			     const dsv32_tensor *w, const dsv32_tensor *k8, const dsv32_tensor *k_s,
			     const dsv32_tensor *mask, dsv32_error *err);

dsv32_status dsv32_index_scores_hf(dsv32_backend *be, dsv32_tensor *out, const dsv32_tensor *q,
				   const dsv32_tensor *k, const dsv32_tensor *w, float softmax_scale,
				   const dsv32_tensor *mask, dsv32_error *err);

#endif
