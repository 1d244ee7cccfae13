/* elementwise.h: casts, adds, scalar multiply, embedding gather and column-block copies
 * (docs/spec/ref_layout.md §A.7, §A.8 scale multiply and mask add; docs/spec/hf_layout.md §4.2), plus the
 * host+device arithmetic helpers every k2 op family (rmsnorm, layernorm, rope, hadamard,
 * softmax, silu) shares.
 *
 * Conventions for every op here and in the k2 families:
 *   * tensors are contiguous row-major and live on be->device; "rows" = numel / last dim;
 *   * activations are BF16 or F32. The OUTPUT dtype decides the rounding: a BF16 output is
 *     rounded RNE to bf16 at the documented point, an F32 output is not rounded (the models'
 *     fp32 profile). Inputs are widened to fp32 exactly.
 *   * fp32 arithmetic is IEEE, one rounding per operation, no FMA contraction: host code is
 *     built as ISO C11 (-ffp-contract=off by default); device code uses the _rn intrinsics
 *     below, because nvcc would contract a*b+c into an FMA.
 *
 * dsv32_cast(be, y, x, err)
 *   x any float dtype (F32, BF16, F16, F8_E4M3, F8_E5M2; F64 on the CPU only), y any float
 *   dtype, same numel. Semantics of dsv32_convert (core/dtype.h): RNE, e4m3 saturates.
 *   CPU: F64 -> narrow other than F32 is DSV32_E_UNSUPPORTED (would double-round).
 *   CUDA: F64 on either side is DSV32_E_UNSUPPORTED.
 *
 * dsv32_add(be, y, a, b, err)            y = round_y( f32(a) + f32(b) ), same numel
 * dsv32_add_bcast(be, y, a, b, mid, inner, err)
 *   a, y [outer, mid, inner] (any shape with this numel), b [b_outer, inner] with
 *   outer % b_outer == 0: y[o,m,k] = round_y( f32(a[o,m,k]) + f32(b[o % b_outer, k]) ).
 *   E.g. scores [B,S,H,T] + mask [B,S,T] broadcast over heads: mid = H, inner = T.
 *   The reference's bf16 `scores += index_mask[:, :, None, :]` and HF's bf16 `+ mask`.
 *   -inf + finite = -inf, -inf + inf = NaN (IEEE, as PyTorch).
 *   y may alias a (in place); y must not alias b unless y == a == b.
 *
 * dsv32_scale(be, y, x, c, err)          y = round_y( f32(x) · c ), c an fp32 scalar.
 *   The reference's `scores.mul_(softmax_scale)` and HF's `· scaling` (torch >= 2 keeps the
 *   Python scalar as fp32 and rounds once; golden README patch P2). y may alias x.
 *
 * dsv32_embedding(be, y, table, ids, err)
 *   table [V, D] BF16 or F32, ids I64 [N] (any shape, N = numel) on be->device,
 *   y [N..., D] BF16 or F32: y[n, :] = round_y(table[ids[n], :]) (a plain copy when dtypes
 *   agree). An id outside [0, V) is DSV32_E_USAGE naming the position and the id; nothing is
 *   written in that case. (CUDA: the ids are checked on the host after a download.)
 *
 * dsv32_copy_cols(be, y, x, x_off, y_off, n, err)
 *   x [rows, Dx], y [rows, Dy] (leading dims flattened, same rows), BF16 or F32:
 *   y[r, y_off + j] = round_y(x[r, x_off + j]) for j < n. Other columns of y are untouched.
 *   Slice out:  y [rows, n],  y_off = 0.   Put back: x [rows, n], x_off = 0.
 *   y and x must not share storage (DSV32_E_USAGE).
 * dsv32_concat_cols(be, y, a, b, err)    y [rows, Da + Db] = [a | b] (two copy_cols calls).
 *
 * Errors: DSV32_E_SHAPE, DSV32_E_DTYPE, DSV32_E_USAGE (device or aliasing), DSV32_E_UNSUPPORTED.
 */
#ifndef DSV32_ELEMENTWISE_H
#define DSV32_ELEMENTWISE_H

#include "kernels/backend.h"

/* ---- shared fp32 arithmetic: one IEEE rounding per op, never contracted ---- */
DSV32_HD static inline float dsv32_fmul_rn(float a, float b)
{
#ifdef __CUDA_ARCH__
	return __fmul_rn(a, b);
#else
	return a * b;
#endif
}

DSV32_HD static inline float dsv32_fadd_rn(float a, float b)
{
#ifdef __CUDA_ARCH__
	return __fadd_rn(a, b);
#else
	return a + b;
#endif
}

DSV32_HD static inline float dsv32_fsub_rn(float a, float b)
{
#ifdef __CUDA_ARCH__
	return __fsub_rn(a, b);
#else
	return a - b;
#endif
}

DSV32_HD static inline float dsv32_fdiv_rn(float a, float b)
{
#ifdef __CUDA_ARCH__
	return __fdiv_rn(a, b);
#else
	return a / b;
#endif
}

DSV32_HD static inline float dsv32_fsqrt_rn(float a)
{
#ifdef __CUDA_ARCH__
	return __fsqrt_rn(a);
#else
	return sqrtf(a);
#endif
}

/* Load element i of a BF16 or F32 buffer as f32 (exact). */
DSV32_HD static inline float dsv32_act_load(const void *p, dsv32_dtype t, int64_t i)
{
	if (t == DSV32_BF16)
		return dsv32_bf16_to_f32(((const dsv32_bf16 *)p)[i]);
	return ((const float *)p)[i];
}

/* Store v at element i: RNE to bf16 for a BF16 buffer, unchanged for F32. */
DSV32_HD static inline void dsv32_act_store(void *p, dsv32_dtype t, int64_t i, float v)
{
	if (t == DSV32_BF16)
		((dsv32_bf16 *)p)[i] = dsv32_f32_to_bf16(v);
	else
		((float *)p)[i] = v;
}

/* The rounding point of an output of dtype t, as a value: bf16(v) for BF16, v for F32. */
DSV32_HD static inline float dsv32_act_round(dsv32_dtype t, float v)
{
	return t == DSV32_BF16 ? dsv32_round_bf16(v) : v;
}

/* ---- ops ---- */
dsv32_status dsv32_cast(dsv32_backend *be, dsv32_tensor *y, const dsv32_tensor *x,
			dsv32_error *err);
dsv32_status dsv32_add(dsv32_backend *be, dsv32_tensor *y, const dsv32_tensor *a,
		       const dsv32_tensor *b, dsv32_error *err);
dsv32_status dsv32_add_bcast(dsv32_backend *be, dsv32_tensor *y, const dsv32_tensor *a,
			     const dsv32_tensor *b, int64_t mid, int64_t inner, dsv32_error *err);
dsv32_status dsv32_scale(dsv32_backend *be, dsv32_tensor *y, const dsv32_tensor *x, float c,
			 dsv32_error *err);
dsv32_status dsv32_embedding(dsv32_backend *be, dsv32_tensor *y, const dsv32_tensor *table,
			     const dsv32_tensor *ids, dsv32_error *err);
dsv32_status dsv32_copy_cols(dsv32_backend *be, dsv32_tensor *y, const dsv32_tensor *x,
			     int64_t x_off, int64_t y_off, int64_t n, dsv32_error *err);
dsv32_status dsv32_concat_cols(dsv32_backend *be, dsv32_tensor *y, const dsv32_tensor *a,
			       const dsv32_tensor *b, dsv32_error *err);

/* ---- argument checks shared by the k2 families (kernels/elementwise.c) ---- */
/* t->device == be->device, else DSV32_E_USAGE naming `name`. */
dsv32_status dsv32_ew_check_device(const dsv32_backend *be, const dsv32_tensor *t,
				   const char *op, const char *name, dsv32_error *err);
/* t is BF16 or F32 on be's device with ndim >= 1, else DSV32_E_DTYPE / _USAGE / _SHAPE. */
dsv32_status dsv32_ew_check_act(const dsv32_backend *be, const dsv32_tensor *t, const char *op,
				const char *name, dsv32_error *err);
/* Last dim of t (0 if ndim == 0) and rows = numel / last dim. */
int64_t dsv32_ew_last_dim(const dsv32_tensor *t);
int64_t dsv32_ew_rows(const dsv32_tensor *t);
/* Same numel, else DSV32_E_SHAPE "op: name shape [..], expected [..]" */
dsv32_status dsv32_ew_check_same_shape(const dsv32_tensor *t, const dsv32_tensor *ref,
				       const char *op, const char *name, const char *ref_name,
				       dsv32_error *err);
/* True if the byte ranges of the two tensors overlap (and both are non-empty). */
bool dsv32_ew_overlap(const dsv32_tensor *a, const dsv32_tensor *b);

#endif
