/* hadamard.h: the Walsh-Hadamard transform of `rotate_activation` (docs/spec/ref_layout.md §A.6; the
 * golden data's CPU stand-in, golden/ref_tiny/README.md).
 *
 * dsv32_hadamard(be, y, x, err)
 *   x, y [rows, d] BF16 or F32, d a power of two (<= 4096). Per row, in fp32:
 *     v = f32(x row)
 *     for h = 1, 2, 4, ..., d/2: for each pair (j, j + h) with j & h == 0:
 *         (v[j], v[j+h]) = (v[j] + v[j+h], v[j] − v[j+h])      (fp32, one rounding each)
 *     y = round_y( v · fp32(d^-0.5) )                         (scale: fp32(pow(d, −0.5)))
 *   i.e. y = round(x · H_d · d^-0.5) with H the Sylvester-ordered ±1 matrix (scipy.linalg
 *   .hadamard), with this exact butterfly order. y may alias x.
 * NaN:    a NaN output is NaN at the same position; its sign and payload are unspecified (not
 *         part of the contract, docs/numerics.md "NaN"; the CPU AVX2 and scalar paths and the
 *         CUDA body may return different NaNs). Every non-NaN output is as stated above.
 * Errors: DSV32_E_SHAPE (d not a power of two), DSV32_E_DTYPE, DSV32_E_USAGE, _UNSUPPORTED.
 */
#ifndef DSV32_HADAMARD_H
#define DSV32_HADAMARD_H

#include "kernels/elementwise.h"

#define DSV32_HADAMARD_MAX_DIM 4096

/* fp32(d^-0.5) as Python's `d ** -0.5` gives it, rounded to fp32. */
static inline float dsv32_hadamard_scale(int64_t d)
{
	return (float)pow((double)d, -0.5);
}

dsv32_status dsv32_hadamard(dsv32_backend *be, dsv32_tensor *y, const dsv32_tensor *x,
			    dsv32_error *err);

#endif
