/* k3_util.c: test helpers for the k3 op tests (see k3_util.h). */
#include "tests/support/k3_util.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <cmocka.h>

double k3_uniform(k3_rng *r)
{
	r->s ^= r->s >> 12;
	r->s ^= r->s << 25;
	r->s ^= r->s >> 27;
	return (double)((r->s * 2685821657736338717ull) >> 11) / 9007199254740992.0;
}

int k3_randint(k3_rng *r, int lo, int hi)
{
	return lo + (int)(k3_uniform(r) * (hi - lo + 1));
}

dsv32_tensor k3_host(dsv32_dtype t, int ndim, const int64_t *shape)
{
	dsv32_tensor x;
	dsv32_error e;
	assert_int_equal(dsv32_tensor_alloc(&x, t, ndim, shape, &e), DSV32_OK);
	return x;
}

double k3_get(const dsv32_tensor *t, int64_t i)
{
	switch (t->dtype) {
	case DSV32_I64: return (double)((const int64_t *)t->data)[i];
	case DSV32_I32: return (double)((const int32_t *)t->data)[i];
	default: return dsv32_load_f64(t->data, t->dtype, (size_t)i);
	}
}

void k3_set(dsv32_tensor *t, int64_t i, double v)
{
	switch (t->dtype) {
	case DSV32_I64: ((int64_t *)t->data)[i] = (int64_t)v; break;
	case DSV32_I32: ((int32_t *)t->data)[i] = (int32_t)v; break;
	case DSV32_U8: ((uint8_t *)t->data)[i] = (uint8_t)v; break;
	case DSV32_F32: ((float *)t->data)[i] = (float)v; break;
	case DSV32_BF16: ((dsv32_bf16 *)t->data)[i] = dsv32_f32_to_bf16((float)v); break;
	case DSV32_F8_E4M3: ((dsv32_f8 *)t->data)[i] = dsv32_f32_to_e4m3((float)v); break;
	default: fail_msg("k3_set: dtype %s", dsv32_dtype_name(t->dtype));
	}
}

int64_t k3_bf16_ulps(float a, float b)
{
	int32_t x = (int32_t)dsv32_f32_to_bf16(a), y = (int32_t)dsv32_f32_to_bf16(b);
	x = x & 0x8000 ? -(x & 0x7fff) : x;
	y = y & 0x8000 ? -(y & 0x7fff) : y;
	return x > y ? x - y : y - x;
}

dsv32_tensor k3_to_dev(dsv32_backend *be, const dsv32_tensor *h)
{
	dsv32_tensor d;
	dsv32_error e;
	assert_int_equal(dsv32_backend_alloc(be, &d, h->dtype, h->ndim, h->shape, &e), DSV32_OK);
	assert_int_equal(dsv32_backend_upload(be, d.data, h->data, dsv32_tensor_nbytes(h), &e),
			 DSV32_OK);
	return d;
}

void k3_from_dev(dsv32_backend *be, dsv32_tensor *h, const dsv32_tensor *d)
{
	dsv32_error e;
	assert_int_equal(dsv32_backend_sync(be, &e), DSV32_OK);
	assert_int_equal(dsv32_backend_download(be, h->data, d->data, dsv32_tensor_nbytes(h), &e),
			 DSV32_OK);
}
