/* test_util.h: the helpers the op tests share: seeded random streams, host tensors with element
 * access, host <-> device mirrors for the GPU twins, and bf16 / f32 ulp arithmetic written in
 * double, independently of core/dtype.h's conversions. Tests only: on failure these fail the
 * running cmocka test (fail_msg) instead of returning an error. Backends: test_common.h. */
#ifndef DSV32_TESTS_TEST_UTIL_H
#define DSV32_TESTS_TEST_UTIL_H

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/dtype.h"
#include "core/tensor.h"
#include "kernels/backend.h"
#include "tests/support/test_common.h"

/* ---- random streams -------------------------------------------------------------------------
 * Three generators, each kept bit for bit because tests pin inputs (and some expectations) to
 * their streams. All give 53-bit uniforms in [0, 1) from the top bits of a 64-bit output. */
typedef enum {
	TU_RNG_SEEDED = 0,   /* tu_rng_seed: state = seed * golden ratio + 0x1234567 (never 0);
			      * xorshift 13/7/17, output multiplied by 0x2545F4914F6CDD1D */
	TU_RNG_XORSHIFT64,   /* tu_rng_xorshift64: the state as given; xorshift 13/7/17, the
			      * state itself is the output */
	TU_RNG_XORSHIFT64STAR /* tu_rng_xorshift64star: the state as given; xorshift 12/25/27,
			       * output multiplied by 0x2545F4914F6CDD1D (Vigna's xorshift64*) */
} tu_rng_kind;

typedef struct {
	uint64_t s;
	tu_rng_kind kind;
} tu_rng;

tu_rng tu_rng_seed(uint64_t seed);
tu_rng tu_rng_xorshift64(uint64_t state);
tu_rng tu_rng_xorshift64star(uint64_t state);

uint64_t tu_u64(tu_rng *r);              /* the generator's next 64-bit output */
double tu_uniform(tu_rng *r);            /* [0, 1) */
int tu_int(tu_rng *r, int lo, int hi);   /* [lo, hi], lo + floor(u * (hi - lo + 1)) */
double tu_normal(tu_rng *r);             /* Box-Muller from two uniforms (cos branch) */

/* ---- host tensors --------------------------------------------------------------------------- */

dsv32_tensor tu_host(dsv32_dtype t, int ndim, const int64_t *shape);
/* The same with the shape as ndim int64_t arguments: tu_hostv(DSV32_F32, 2, (int64_t)m, k). */
dsv32_tensor tu_hostv(dsv32_dtype t, int ndim, ...);

/* Element i as a double (any dtype core/dtype.h loads, integers included). */
double tu_get(const dsv32_tensor *t, int64_t i);
/* Store v into element i, rounding the double once: RNE to bf16 (tu_bf16_rne); f32 by C's
 * conversion; f64 exactly; integers truncated. Other narrow floats go through f32. */
void tu_set(dsv32_tensor *t, int64_t i, double v);
/* Store v as an f32 computation would: (float)v first, then RNE to the narrow dtype with
 * core/dtype.h's conversions (bf16, e4m3); integers truncated. Differs from tu_set only where
 * the f32 rounding lands on a bf16 tie (double rounding). */
void tu_set_f32(dsv32_tensor *t, int64_t i, double v);
/* Every element = scale * tu_normal(r), stored with tu_set, in index order. */
void tu_fill_normal(dsv32_tensor *t, tu_rng *r, double scale);

/* ---- device mirrors (GPU twins) -------------------------------------------------------------- */

/* A copy of host tensor h on be's device. */
dsv32_tensor tu_to_dev(dsv32_backend *be, const dsv32_tensor *h);
/* A new host tensor holding device tensor d (after a sync). */
dsv32_tensor tu_from_dev(dsv32_backend *be, const dsv32_tensor *d);
/* Sync, then copy device tensor d into host tensor h (same shape and dtype). */
void tu_download(dsv32_backend *be, dsv32_tensor *h, const dsv32_tensor *d);
/* tu_download, then free d on the device. */
void tu_back(dsv32_backend *be, dsv32_tensor *h, dsv32_tensor *d);

/* ---- ulps ------------------------------------------------------------------------------------ */

/* The spacing of bf16 values at |v|: 2^(e-8) for |v| in [2^(e-1), 2^e); the subnormal quantum
 * 2^-133 below 2^-126. */
double tu_bf16_spacing(double v);
/* RNE of a double to the bf16 grid (8 significant bits, subnormals below 2^-126, overflow to
 * inf at 2^128 - 2^119 and above), in double: frexp/ldexp/nearbyint. NaN, inf, 0 unchanged. */
double tu_bf16_rne(double v);
/* Distance in representable steps between a and b in dtype t (BF16: of the truncated f32 bits,
 * so give it bf16-representable values; anything else: of the f32 bits); 0 when both are NaN,
 * INT64_MAX / 4 when exactly one is. */
int64_t tu_ulps(dsv32_dtype t, double a, double b);
/* Distance in bf16 steps after rounding a and b to bf16 (RNE, core/dtype.h). */
int64_t tu_bf16_ulps(float a, float b);

/* Check every element of got against want (same numel) with a budget in ulps of got's dtype
 * (tu_ulps): prints the first 8 failures with index, both values and the distance, and fails
 * the test if any element is over. Returns the largest distance seen. */
int64_t tu_check_ulps(const char *what, const dsv32_tensor *got, const dsv32_tensor *want,
		      int64_t budget);
/* The same against doubles already rounded as the contract says. */
int64_t tu_check_ulps_d(const char *what, const dsv32_tensor *got, const double *want,
			int64_t budget);

#endif
