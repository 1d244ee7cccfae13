/* gemm.h: dense GEMMs with fp32 accumulation (docs/spec/ref_layout.md §A.1, docs/spec/hf_layout.md F.linear,
 * attention QK^T and P·V).
 *
 * Notation: rows = M (every leading dim of x flattened), K = reduction, N = output features.
 *
 * dsv32_gemm(be, y, x, w, err)            "NT", torch F.linear layout
 *   x  BF16|F32 [..., K]     activations; leading dims flattened to M rows
 *   w  BF16|F32 [N, K]       weight, (out, in)
 *   y  BF16|F32 [..., N]     out: same leading dims as x; must not alias x or w
 * dsv32_gemm_nn(be, y, x, w, err)         "NN", e.g. P·V
 *   x [..., K], w [K, N], y [..., N]
 * dsv32_gemm_batched(be, y, x, w, err)    x [Bt.., M, K], w [Bt.., N, K], y [Bt.., M, N]
 * dsv32_gemm_nn_batched(be, y, x, w, err) x [Bt.., M, K], w [Bt.., K, N], y [Bt.., M, N]
 *   (batched: ndim >= 3, the same leading batch dims on x, w and y; no broadcasting)
 * dsv32_gemm_run(be, desc, err)           strided batch on raw pointers (dsv32_gemm_desc)
 *
 * Math:   y[m,n] = Σ_k x[m,k] · w[n,k]        (NN: w[k,n])
 * Accum:  fp32, in the order of the backend's engine (be->gemm_engine):
 * Engines: fixed (DSV32_GEMM_FIXED, the default): one documented summation order, written in
 *              gemm_fixed.c's header (x and w widened to f32 exactly; per output 8 lane sums by
 *              FMA over k = l mod 8 in chunks of DSV32_GEMM_FIXED_KC, a fixed tree per chunk,
 *              chunks added in order). Same bits on every CPU, thread count and body (avx512bf16,
 *              avx512, avx2, scalar), for every dtype pair, "NT", "NN" and batched. Subnormals
 *              kept. An add of the order may take its operands swapped (the same value), so
 *              where two NaNs meet which payload survives is not fixed (as in C).
 *         host (DSV32_GEMM_HOST): oneDNN / OpenBLAS, whose blocking, split-K and vector width
 *              follow this CPU, as PyTorch's CPU GEMMs do; the engine for matching a torch run
 *              recorded on the same machine. Two hosts may differ by the fp32 rounding of the
 *              sum, which after the bf16 rounding is at most 1 bf16 ulp almost always.
 * Rounds: one RNE rounding of the fp32 result to bf16 iff y is BF16; an F32 y is not rounded.
 *         Mixed inputs (F32,BF16)/(BF16,F32): the bf16 operand is widened to f32 (exact) and the
 *         product runs as an fp32 GEMM; same rounding rule for y.
 * Bodies: CPU fixed: gemm_fixed.c / gemm_fixed_avx512.c: avx512bf16 on AMD CPUs with
 *              AVX512-BF16 (the avx512 body whose bf16 and fp8 GEMMs take two FMA steps per
 *              VDPBF16PS where no value or sum is subnormal; DSV32_GEMM_AVX512BF16=0/1 turns it
 *              off / on), avx512 when the CPU has AVX-512F (and F16C), avx2 with AVX2+FMA+F16C,
 *              else scalar fmaf; the same bits on each (DSV32_GEMM_NO_AVX512=1,
 *              DSV32_GEMM_NO_AVX2=1 force the lower bodies). dsv32_gemm_fixed_body() names it.
 *         CPU host (BF16,BF16): on a CPU with AVX512-BF16 and no AMX, our own VDPBF16PS kernel
 *              in the order of torch's oneDNN there (gemm_dpbf16.c: one accumulator from +0,
 *              k pairs in increasing order; DSV32_HOST_BF16=onednn uses oneDNN instead;
 *              DSV32_HOST_BF16_ROW=lanes runs one-row GEMMs in torch 2.15's single-row order,
 *              the default being torch 1.13's, which DeepSeek's recording was made with).
 *              Otherwise oneDNN matmul (C API, primitives cached by shape/strides/dtypes
 *              in a process-wide cache owned by gemm_dnnl.c) when oneDNN has a native bf16
 *              kernel on this CPU (AVX512-BF16 / AMX). Those kernels use vdpbf16ps/tdpbf16ps,
 *              which per the Intel SDM treat bf16 subnormal inputs as zero (DAZ) and flush
 *              subnormal results (FTZ) regardless of MXCSR: on that path a subnormal bf16 input
 *              (|v| < 2^-126) counts as 0. Where oneDNN has no bf16 matmul (dnnl_unimplemented,
 *              e.g. AVX2-only CPUs; a "ref" implementation counts as none): a bf16 w in "NT"
 *              layout on an AVX2+FMA CPU takes the fixed engine's avx2 body; otherwise the bf16
 *              operands are widened to f32 (panels of w that stay in cache) and OpenBLAS
 *              cblas_sgemm runs. dsv32_gemm_bf16_impl() names the path taken.
 *              (F32,F32) and F32 w: OpenBLAS cblas_sgemm (subnormals kept).
 *         CUDA (either engine; the fixed order is a CPU property) (BF16,BF16):
 *              cublasGemmStridedBatchedEx, CUDA_R_16BF inputs, CUBLAS_COMPUTE_32F,
 *              bf16 or f32 output; the backend's handle is in CUBLAS_PEDANTIC_MATH mode, so no
 *              reduced-precision (bf16) split-K reduction.
 *              F32 and mixed: f32 operands (bf16 widened on device),
 *              CUBLAS_COMPUTE_32F_PEDANTIC (never TF32); a BF16 y of an fp32 GEMM is rounded
 *              once by a small kernel from an f32 temporary.
 * Errors: DSV32_E_DTYPE (dtype not listed), DSV32_E_SHAPE (K/N/batch mismatch), DSV32_E_USAGE
 *         (tensor not on be->device, y aliases an input), DSV32_E_UNSUPPORTED (backend lacks a
 *         body), DSV32_E_NOMEM, DSV32_E_CUDA, DSV32_E_INTERNAL (oneDNN/OpenBLAS failure).
 */
#ifndef DSV32_GEMM_H
#define DSV32_GEMM_H

#include "kernels/backend.h"

#define DSV32_GEMM_FIXED_KC 1024 /* the fixed engine's K chunk for GEMMs (fp8_gemm: 128) */

dsv32_status dsv32_gemm(dsv32_backend *be, dsv32_tensor *y, const dsv32_tensor *x,
			const dsv32_tensor *w, dsv32_error *err);
dsv32_status dsv32_gemm_nn(dsv32_backend *be, dsv32_tensor *y, const dsv32_tensor *x,
			   const dsv32_tensor *w, dsv32_error *err);
dsv32_status dsv32_gemm_batched(dsv32_backend *be, dsv32_tensor *y, const dsv32_tensor *x,
				const dsv32_tensor *w, dsv32_error *err);
dsv32_status dsv32_gemm_nn_batched(dsv32_backend *be, dsv32_tensor *y, const dsv32_tensor *x,
				   const dsv32_tensor *w, dsv32_error *err);

/* A strided-batch GEMM on raw pointers, for operands that are slices of larger tensors (e.g.
 * per-head q [S, H, D] as x with ldx = H·D and stride_x = D). All leading dimensions and batch
 * strides are in ELEMENTS. Row-major:
 *   x_b = x + b·stride_x, element (m,k) at x_b[m·ldx + k]                         [M, K]
 *   w_b = w + b·stride_w, element (n,k) at w_b[n·ldw + k] if trans_w ("NT", w [N, K])
 *                         element (k,n) at w_b[k·ldw + n] otherwise ("NN", w [K, N])
 *   y_b = y + b·stride_y, element (m,n) at y_b[m·ldy + n]                         [M, N]
 * Same dtypes, contract and bodies as dsv32_gemm. Pointers are on be->device. Output rows of
 * different batches must not overlap, and y must not overlap x or w (not checked: the caller
 * owns the pointers). ld* must be >= the row length (K or N). */
typedef struct {
	int64_t batch, M, N, K;
	bool trans_w;
	dsv32_dtype x_dtype, w_dtype, y_dtype;
	const void *x;
	int64_t ldx, stride_x;
	const void *w;
	int64_t ldw, stride_w;
	void *y;
	int64_t ldy, stride_y;
} dsv32_gemm_desc;

dsv32_status dsv32_gemm_run(dsv32_backend *be, const dsv32_gemm_desc *d, dsv32_error *err);

/* Which CPU body a (BF16,BF16) "NT" GEMM of the host engine takes on this machine:
 * "dsv32:dpbf16-seq" (AVX512-BF16 without AMX: gemm_dpbf16.c, torch's oneDNN order there;
 * "dsv32:dpbf16-seq-row16" with DSV32_HOST_BF16_ROW=lanes),
 * "onednn:<impl>", or "fixed-blocked (...why oneDNN is not used...)" / "sgemm-widened (...)".
 * Never NULL. */
const char *dsv32_gemm_bf16_impl(void);
/* "fixed" or "host" for a be->gemm_engine value. */
const char *dsv32_gemm_engine_name(int engine);
/* The fixed engine's body on this machine: "avx512bf16", "avx512" (DSV32_GEMM_AVX512BF16=0),
 * "avx2" (DSV32_GEMM_NO_AVX512=1) or "scalar" (DSV32_GEMM_NO_AVX2=1); the same bits on each. */
const char *dsv32_gemm_fixed_body(void);

#endif
