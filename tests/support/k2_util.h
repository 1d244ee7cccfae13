/* k2_util.h: test helpers of the k2 op families (norms, rope, hadamard, softmax, silu,
 * elementwise): host tensors, a seeded generator, an independent bf16 rounding in double,
 * ulp distances and device round trips (backends: test_common.h). */
#ifndef DSV32_TEST_K2_UTIL_H
#define DSV32_TEST_K2_UTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "kernels/backend.h"
#include "tests/support/test_common.h"

typedef struct {
	uint64_t s;
} k2_rng;

void k2_rng_seed(k2_rng *r, uint64_t seed);
double k2_uniform(k2_rng *r);           /* [0, 1) */
double k2_normal(k2_rng *r);

/* RNE of a double to the bf16 grid (8 significant bits, subnormals below 2^-126, overflow to
 * inf), written independently of core/dtype.h: frexp/ldexp/nearbyint in double. */
double k2_bf16_rne(double v);

/* Distance in representable steps between two values of a dtype (BF16 or F32); 0 when both
 * are NaN; a huge number when exactly one is NaN. */
int64_t k2_ulps(dsv32_dtype t, double a, double b);

/* Host tensor helpers (abort the test on failure). */
dsv32_tensor k2_host(dsv32_dtype t, int ndim, const int64_t *shape);
double k2_get(const dsv32_tensor *t, int64_t i);
void k2_set(dsv32_tensor *t, int64_t i, double v); /* RNE to t's dtype */
void k2_fill_normal(dsv32_tensor *t, k2_rng *r, double scale);

/* Device copies for the GPU twins. */
dsv32_tensor k2_to_dev(dsv32_backend *be, const dsv32_tensor *h);
dsv32_tensor k2_from_dev(dsv32_backend *be, const dsv32_tensor *d);

/* Check every element of got against want (both tensors, same numel) with a budget in ulps of
 * got's dtype; prints the first failures with index, both values and the ulp distance, and
 * fails the test if any element is over. Returns the max distance seen. */
int64_t k2_check_ulps(const char *what, const dsv32_tensor *got, const dsv32_tensor *want,
		      int64_t budget);
/* The same against an array of doubles already rounded as the contract says. */
int64_t k2_check_ulps_d(const char *what, const dsv32_tensor *got, const double *want,
			int64_t budget);

#endif
