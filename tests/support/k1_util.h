/* k1_util.h: helpers of the GEMM / fp8 tests (k1): a seeded RNG, host tensors, mirroring host
 * tensors onto a backend and back, and bf16 ulp arithmetic in double. Header-only. */
#ifndef DSV32_K1_UTIL_H
#define DSV32_K1_UTIL_H

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/dtype.h"
#include "core/tensor.h"
#include "kernels/backend.h"

typedef struct {
	uint64_t s;
} k1_rng;

static inline double k1_uniform(k1_rng *r) /* [0, 1) */
{
	r->s ^= r->s << 13;
	r->s ^= r->s >> 7;
	r->s ^= r->s << 17;
	return (double)(r->s >> 11) * 0x1p-53;
}

static inline int k1_int(k1_rng *r, int lo, int hi) /* [lo, hi] */
{
	return lo + (int)(k1_uniform(r) * (hi - lo + 1));
}

/* A host tensor; aborts the test process on failure (tests only). */
static inline dsv32_tensor k1_host(dsv32_dtype t, int ndim, ...)
{
	int64_t shape[DSV32_MAX_DIMS];
	va_list ap;
	va_start(ap, ndim);
	for (int i = 0; i < ndim; i++)
		shape[i] = va_arg(ap, int64_t);
	va_end(ap);
	dsv32_tensor x;
	if (dsv32_tensor_alloc(&x, t, ndim, shape, NULL) != DSV32_OK)
		abort();
	return x;
}

/* Store v into element i of a float tensor (RNE for narrow types). */
static inline void k1_set(dsv32_tensor *x, int64_t i, double v)
{
	float f = (float)v;
	switch (x->dtype) {
	case DSV32_F32: ((float *)x->data)[i] = f; break;
	case DSV32_BF16: ((uint16_t *)x->data)[i] = dsv32_f32_to_bf16(f); break;
	case DSV32_F8_E4M3: ((uint8_t *)x->data)[i] = dsv32_f32_to_e4m3(f); break;
	default: abort();
	}
}

static inline double k1_get(const dsv32_tensor *x, int64_t i)
{
	return dsv32_load_f64(x->data, x->dtype, (size_t)i);
}

/* A copy of host tensor h on be's device. */
static inline dsv32_tensor k1_dev(dsv32_backend *be, const dsv32_tensor *h)
{
	dsv32_tensor d;
	if (dsv32_backend_alloc(be, &d, h->dtype, h->ndim, h->shape, NULL) != DSV32_OK)
		abort();
	if (dsv32_backend_upload(be, d.data, h->data, dsv32_tensor_nbytes(h), NULL) != DSV32_OK)
		abort();
	return d;
}

/* Download d into host tensor h (same shape and dtype) and free d. */
static inline void k1_back(dsv32_backend *be, dsv32_tensor *h, dsv32_tensor *d)
{
	if (dsv32_backend_sync(be, NULL) != DSV32_OK ||
	    dsv32_backend_download(be, h->data, d->data, dsv32_tensor_nbytes(h), NULL) != DSV32_OK)
		abort();
	dsv32_backend_free(be, d);
}

/* The spacing of bf16 values at |v| (the subnormal quantum 2^-133 below 2^-126). */
static inline double k1_bf16_ulp(double v)
{
	v = fabs(v);
	if (v < 0x1p-126)
		return 0x1p-133;
	int e;
	frexp(v, &e); /* v in [2^(e-1), 2^e) */
	return ldexp(1.0, e - 1 - 7);
}

/* Round a double to the nearest bf16 value, ties to even, in double arithmetic (no overflow
 * handling: callers keep values far below the bf16 max). */
static inline double k1_round_bf16(double v)
{
	if (v == 0.0)
		return v;
	double q = k1_bf16_ulp(v);
	double r = nearbyint(v / q) * q; /* default rounding mode: ties to even */
	/* rounding up across a power of two lands on the next binade exactly: fine */
	return r;
}

#endif
