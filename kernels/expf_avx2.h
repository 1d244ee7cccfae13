/* expf_avx2.h: glibc's expf in 8 lanes, bit for bit, host code only.
 *
 * The host CPU bodies of softmax and silu_mul name glibc's expf in their precision contracts
 * (kernels/softmax.h, kernels/silu.h). glibc >= 2.27 computes expf with one fixed algorithm
 * (sysdeps/ieee754/flt-32/e_expf.c, from ARM's optimized-routines): in double precision
 *   z = x·(32/ln2),  k = round(z) via the shift 0x1.8p52/32,  r = z − k,
 *   s = 2^(k/32) = T[k mod 32] with k div 32 added to its exponent bits,
 *   y = (C0·r + C1)·r² + (C2·r + 1),  result = (float)(y·s)   (one double→float rounding),
 * plus the special inputs (NaN, ±inf, overflow above 0x1.62e42ep6, underflow below
 * -0x1.9d1d9ep6). On x86-64 an ifunc picks __expf_fma on CPUs with FMA: the same expressions
 * with z + shift, z − k, C0·r + C1, C2·r + 1 and the y update fused. dsv32_expf8 computes that
 * FMA variant in 2 × 4 double lanes (the same double operations, fused in the same places, the
 * same constants and table), so it returns the bits of __expf_fma for every non-NaN input; an
 * exhaustive run over all 2^32 inputs against glibc 2.36 (Debian 12) found no difference
 * (docs/perf.md "glibc expf in 8 lanes"). Lanes below -0x1.9fe368p6 (and −inf) give +0 as glibc;
 * NaN, +inf, overflow and the may-underflow window [-0x1.9fe368p6, -0x1.9d1d9ep6) are handed to
 * the scalar expf itself. errno is not set by the vector lanes (glibc sets ERANGE on underflow);
 * no caller reads errno.
 *
 * dsv32_expf_inplace(v, n)
 *   v[i] = expf(v[i]) for i < n, bit-identical to the running libm's expf for every non-NaN
 *   input (glibc 2.36: for NaN too, payload included). Uses the 8-lane body only when the CPU
 *   has AVX2 and FMA and the guard (dsv32_expf8_selfcheck against libm's expf, run once at
 *   first use and cached) passed; otherwise it calls expf once per element. Any thread.
 * dsv32_expf8_usable()
 *   Whether dsv32_expf_inplace uses the 8-lane body (runs the guard on first call).
 * dsv32_expf8_selfcheck(ref)
 *   Compares the 8-lane body with ref on DSV32_EXPF8_SPOTS fixed inputs: the special inputs and
 *   thresholds, the two inputs where glibc's FMA and non-FMA variants round differently (a libm
 *   without the FMA variant fails), 32 inputs where glibc's expf is not correctly rounded (a
 *   correctly rounded expf fails), and pseudo-random values in every binade from 2^-30 to 2^6
 *   of both signs. Returns true when every non-NaN input gives the same bits and NaN gives
 *   NaN; false also when the CPU lacks AVX2 or FMA. Does not cache; the test passes wrong refs
 *   to see the guard refuse.
 * dsv32_expf8_raw(y, x)
 *   The 8-lane body on exactly 8 elements, no guard (tests and the exhaustive harness; the
 *   caller checks dsv32_expf8_cpu_ok() first).
 */
#ifndef DSV32_EXPF_AVX2_H
#define DSV32_EXPF_AVX2_H

#include <stdbool.h>
#include <stdint.h>

#define DSV32_EXPF8_SPOTS 512

void dsv32_expf_inplace(float *v, int64_t n);
bool dsv32_expf8_usable(void);
bool dsv32_expf8_selfcheck(float (*ref)(float));
bool dsv32_expf8_cpu_ok(void);
void dsv32_expf8_raw(float *y, const float *x);

#endif
