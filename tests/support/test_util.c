/* test_util.c: the helpers the op tests share (test_util.h). */
#include "tests/support/test_util.h"

#define TU_STAR 0x2545F4914F6CDD1Dull /* 2685821657736338717 */

tu_rng tu_rng_seed(uint64_t seed)
{
	tu_rng r = {seed * 0x9E3779B97F4A7C15ull + 0x1234567ull, TU_RNG_SEEDED};
	if (!r.s)
		r.s = 1;
	return r;
}

tu_rng tu_rng_xorshift64(uint64_t state)
{
	tu_rng r = {state, TU_RNG_XORSHIFT64};
	return r;
}

tu_rng tu_rng_xorshift64star(uint64_t state)
{
	tu_rng r = {state, TU_RNG_XORSHIFT64STAR};
	return r;
}

static uint64_t next(tu_rng *r)
{
	uint64_t x = r->s;
	switch (r->kind) {
	case TU_RNG_XORSHIFT64STAR:
		x ^= x >> 12;
		x ^= x << 25;
		x ^= x >> 27;
		r->s = x;
		return x * TU_STAR;
	case TU_RNG_XORSHIFT64:
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		r->s = x;
		return x;
	case TU_RNG_SEEDED:
	default:
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		r->s = x;
		return x * TU_STAR;
	}
}

uint64_t tu_u64(tu_rng *r)
{
	return next(r);
}

double tu_uniform(tu_rng *r)
{
	return (double)(next(r) >> 11) * 0x1p-53;
}

int tu_int(tu_rng *r, int lo, int hi)
{
	return lo + (int)(tu_uniform(r) * (hi - lo + 1));
}

double tu_normal(tu_rng *r)
{
	double u = tu_uniform(r), v = tu_uniform(r);
	if (u < 1e-300)
		u = 1e-300;
	return sqrt(-2.0 * log(u)) * cos(2.0 * M_PI * v);
}

dsv32_tensor tu_host(dsv32_dtype t, int ndim, const int64_t *shape)
{
	dsv32_tensor x;
	dsv32_error err = {0};
	if (dsv32_tensor_alloc(&x, t, ndim, shape, &err) != DSV32_OK)
		fail_msg("tu_host: %s", err.what);
	return x;
}

dsv32_tensor tu_hostv(dsv32_dtype t, int ndim, ...)
{
	int64_t shape[DSV32_MAX_DIMS] = {0};
	if (ndim < 0 || ndim > DSV32_MAX_DIMS)
		fail_msg("tu_hostv: ndim %d", ndim);
	va_list ap;
	va_start(ap, ndim);
	for (int i = 0; i < ndim; i++)
		shape[i] = va_arg(ap, int64_t);
	va_end(ap);
	return tu_host(t, ndim, shape);
}

double tu_get(const dsv32_tensor *t, int64_t i)
{
	return dsv32_load_f64(t->data, t->dtype, (size_t)i);
}

static void set_int_or_wide(dsv32_tensor *t, int64_t i, double v, const char *who)
{
	switch (t->dtype) {
	case DSV32_F32: ((float *)t->data)[i] = (float)v; break;
	case DSV32_F64: ((double *)t->data)[i] = v; break;
	case DSV32_I64: ((int64_t *)t->data)[i] = (int64_t)v; break;
	case DSV32_I32: ((int32_t *)t->data)[i] = (int32_t)v; break;
	case DSV32_U8: ((uint8_t *)t->data)[i] = (uint8_t)v; break;
	case DSV32_BF16: ((dsv32_bf16 *)t->data)[i] = dsv32_f32_to_bf16((float)v); break;
	case DSV32_F8_E4M3: ((dsv32_f8 *)t->data)[i] = dsv32_f32_to_e4m3((float)v); break;
	default: fail_msg("%s: dtype %s", who, dsv32_dtype_name(t->dtype));
	}
}

void tu_set(dsv32_tensor *t, int64_t i, double v)
{
	if (t->dtype == DSV32_BF16) {
		float f = (float)tu_bf16_rne(v); /* exact: a bf16 value is an f32 value */
		uint32_t u;
		memcpy(&u, &f, 4);
		((uint16_t *)t->data)[i] = (uint16_t)(u >> 16);
		return;
	}
	set_int_or_wide(t, i, v, "tu_set");
}

void tu_set_f32(dsv32_tensor *t, int64_t i, double v)
{
	set_int_or_wide(t, i, v, "tu_set_f32");
}

void tu_fill_normal(dsv32_tensor *t, tu_rng *r, double scale)
{
	int64_t n = dsv32_tensor_numel(t);
	for (int64_t i = 0; i < n; i++)
		tu_set(t, i, scale * tu_normal(r));
}

dsv32_tensor tu_to_dev(dsv32_backend *be, const dsv32_tensor *h)
{
	dsv32_tensor d;
	dsv32_error err = {0};
	if (dsv32_backend_alloc(be, &d, h->dtype, h->ndim, h->shape, &err) != DSV32_OK ||
	    dsv32_backend_upload(be, d.data, h->data, dsv32_tensor_nbytes(h), &err) != DSV32_OK)
		fail_msg("tu_to_dev: %s", err.what);
	return d;
}

void tu_download(dsv32_backend *be, dsv32_tensor *h, const dsv32_tensor *d)
{
	dsv32_error err = {0};
	if (dsv32_backend_sync(be, &err) != DSV32_OK ||
	    dsv32_backend_download(be, h->data, d->data, dsv32_tensor_nbytes(h), &err) != DSV32_OK)
		fail_msg("tu_download: %s", err.what);
}

dsv32_tensor tu_from_dev(dsv32_backend *be, const dsv32_tensor *d)
{
	dsv32_tensor h = tu_host(d->dtype, d->ndim, d->shape);
	tu_download(be, &h, d);
	return h;
}

void tu_back(dsv32_backend *be, dsv32_tensor *h, dsv32_tensor *d)
{
	tu_download(be, h, d);
	dsv32_backend_free(be, d);
}

double tu_bf16_spacing(double v)
{
	v = fabs(v);
	if (v < 0x1p-126)
		return 0x1p-133;
	int e;
	frexp(v, &e); /* v in [2^(e-1), 2^e) */
	return ldexp(1.0, e - 1 - 7);
}

double tu_bf16_rne(double v)
{
	if (isnan(v) || isinf(v) || v == 0.0)
		return v;
	double q = tu_bf16_spacing(v);
	double r = nearbyint(v / q) * q; /* default rounding mode: ties to even */
	if (fabs(r) >= 3.3961775292304019e38) /* 2^128 - 2^119 (half a bf16 ulp above max) */
		r = copysign(INFINITY, v);
	return r;
}

static int64_t ordered(dsv32_dtype t, double v)
{
	float f = (float)v;
	uint32_t u;
	memcpy(&u, &f, 4);
	int64_t m = t == DSV32_BF16 ? (int64_t)((u >> 16) & 0x7fff) : (int64_t)(u & 0x7fffffff);
	return (u >> 31) ? -m : m;
}

int64_t tu_ulps(dsv32_dtype t, double a, double b)
{
	if (isnan(a) && isnan(b))
		return 0;
	if (isnan(a) || isnan(b))
		return INT64_MAX / 4;
	int64_t d = ordered(t, a) - ordered(t, b);
	return d < 0 ? -d : d;
}

int64_t tu_bf16_ulps(float a, float b)
{
	int32_t x = (int32_t)dsv32_f32_to_bf16(a), y = (int32_t)dsv32_f32_to_bf16(b);
	x = x & 0x8000 ? -(x & 0x7fff) : x;
	y = y & 0x8000 ? -(y & 0x7fff) : y;
	return x > y ? x - y : y - x;
}

static int64_t check(const char *what, const dsv32_tensor *got, const dsv32_tensor *want_t,
		     const double *want_d, int64_t budget)
{
	int64_t n = dsv32_tensor_numel(got), worst = 0, bad = 0;
	for (int64_t i = 0; i < n; i++) {
		double g = tu_get(got, i), w = want_t ? tu_get(want_t, i) : want_d[i];
		int64_t d = tu_ulps(got->dtype, g, w);
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

int64_t tu_check_ulps(const char *what, const dsv32_tensor *got, const dsv32_tensor *want,
		      int64_t budget)
{
	assert_int_equal(dsv32_tensor_numel(got), dsv32_tensor_numel(want));
	return check(what, got, want, NULL, budget);
}

int64_t tu_check_ulps_d(const char *what, const dsv32_tensor *got, const double *want,
			int64_t budget)
{
	return check(what, got, NULL, want, budget);
}
