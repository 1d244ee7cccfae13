/* k2_util.c: test helpers of the k2 op families (k2_util.h). */
#include "tests/support/k2_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void k2_rng_seed(k2_rng *r, uint64_t seed)
{
	r->s = seed * 0x9E3779B97F4A7C15ull + 0x1234567ull;
	if (!r->s)
		r->s = 1;
}

static uint64_t next(k2_rng *r)
{
	uint64_t x = r->s;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	r->s = x;
	return x * 0x2545F4914F6CDD1Dull;
}

double k2_uniform(k2_rng *r)
{
	return (double)(next(r) >> 11) * (1.0 / 9007199254740992.0);
}

double k2_normal(k2_rng *r)
{
	double u = k2_uniform(r), v = k2_uniform(r);
	if (u < 1e-300)
		u = 1e-300;
	return sqrt(-2.0 * log(u)) * cos(2.0 * M_PI * v);
}

double k2_bf16_rne(double v)
{
	if (isnan(v) || isinf(v) || v == 0.0)
		return v;
	int e;
	frexp(v, &e);          /* |v| in [2^(e-1), 2^e) */
	if (e - 1 < -126)
		e = -125;      /* subnormal range: fixed quantum 2^-133 */
	double q = ldexp(1.0, e - 1 - 7);
	double r = nearbyint(v / q) * q; /* default rounding mode: ties to even */
	if (fabs(r) >= 3.3961775292304019e38) /* 2^128 - 2^119 (half a bf16 ulp above max) */
		r = copysign(INFINITY, v);
	return r;
}

static int64_t ordered(dsv32_dtype t, double v)
{
	if (t == DSV32_BF16) {
		float f = (float)v;
		uint32_t u;
		memcpy(&u, &f, 4);
		int64_t m = (int64_t)((u >> 16) & 0x7fff);
		return (u >> 31) ? -m : m;
	}
	float f = (float)v;
	uint32_t u;
	memcpy(&u, &f, 4);
	int64_t m = (int64_t)(u & 0x7fffffff);
	return (u >> 31) ? -m : m;
}

int64_t k2_ulps(dsv32_dtype t, double a, double b)
{
	if (isnan(a) && isnan(b))
		return 0;
	if (isnan(a) || isnan(b))
		return INT64_MAX / 4;
	int64_t d = ordered(t, a) - ordered(t, b);
	return d < 0 ? -d : d;
}

dsv32_tensor k2_host(dsv32_dtype t, int ndim, const int64_t *shape)
{
	dsv32_tensor x;
	dsv32_error err = {0};
	if (dsv32_tensor_alloc(&x, t, ndim, shape, &err) != DSV32_OK)
		fail_msg("k2_host: %s", err.what);
	return x;
}

double k2_get(const dsv32_tensor *t, int64_t i)
{
	return dsv32_load_f64(t->data, t->dtype, (size_t)i);
}

void k2_set(dsv32_tensor *t, int64_t i, double v)
{
	if (t->dtype == DSV32_BF16) {
		float f = (float)k2_bf16_rne(v);
		uint32_t u;
		memcpy(&u, &f, 4);
		((uint16_t *)t->data)[i] = (uint16_t)(u >> 16);
	} else if (t->dtype == DSV32_F32) {
		((float *)t->data)[i] = (float)v;
	} else if (t->dtype == DSV32_F64) {
		((double *)t->data)[i] = v;
	} else if (t->dtype == DSV32_I64) {
		((int64_t *)t->data)[i] = (int64_t)v;
	} else {
		fail_msg("k2_set: dtype %s", dsv32_dtype_name(t->dtype));
	}
}

void k2_fill_normal(dsv32_tensor *t, k2_rng *r, double scale)
{
	int64_t n = dsv32_tensor_numel(t);
	for (int64_t i = 0; i < n; i++)
		k2_set(t, i, scale * k2_normal(r));
}

dsv32_tensor k2_to_dev(dsv32_backend *be, const dsv32_tensor *h)
{
	dsv32_tensor d;
	dsv32_error err = {0};
	if (dsv32_backend_alloc(be, &d, h->dtype, h->ndim, h->shape, &err) != DSV32_OK ||
	    dsv32_backend_upload(be, d.data, h->data, dsv32_tensor_nbytes(h), &err) != DSV32_OK)
		fail_msg("k2_to_dev: %s", err.what);
	return d;
}

dsv32_tensor k2_from_dev(dsv32_backend *be, const dsv32_tensor *d)
{
	dsv32_tensor h = k2_host(d->dtype, d->ndim, d->shape);
	dsv32_error err = {0};
	if (dsv32_backend_sync(be, &err) != DSV32_OK ||
	    dsv32_backend_download(be, h.data, d->data, dsv32_tensor_nbytes(d), &err) != DSV32_OK)
		fail_msg("k2_from_dev: %s", err.what);
	return h;
}

static int64_t check(const char *what, const dsv32_tensor *got, const dsv32_tensor *want_t,
		     const double *want_d, int64_t budget)
{
	int64_t n = dsv32_tensor_numel(got), worst = 0, bad = 0;
	for (int64_t i = 0; i < n; i++) {
		double g = k2_get(got, i), w = want_t ? k2_get(want_t, i) : want_d[i];
		int64_t d = k2_ulps(got->dtype, g, w);
		if (d > worst)
			worst = d;
		if (d > budget && bad++ < 8)
			print_error("%s: element %lld: got %.9g, want %.9g (%lld ulps of %s, budget %lld)\n",
				    what, (long long)i, g, w, (long long)d,
				    dsv32_dtype_name(got->dtype), (long long)budget);
	}
	if (bad)
		fail_msg("%s: %lld of %lld elements over %lld ulps (worst %lld)", what,
			 (long long)bad, (long long)n, (long long)budget, (long long)worst);
	return worst;
}

int64_t k2_check_ulps(const char *what, const dsv32_tensor *got, const dsv32_tensor *want,
		      int64_t budget)
{
	assert_int_equal(dsv32_tensor_numel(got), dsv32_tensor_numel(want));
	return check(what, got, want, NULL, budget);
}

int64_t k2_check_ulps_d(const char *what, const dsv32_tensor *got, const double *want,
			int64_t budget)
{
	return check(what, got, NULL, want, budget);
}
