/* taps.c: emitting named tensors to the caller's tap sink (DESIGN.md "Taps", core/model.h) and
 * the scratch-tensor helpers of the ref model. A tap is a host copy of a device tensor viewed in
 * canonical shape; emitting never changes numerics. */
#include <stdarg.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>

#include "ref/ref_internal.h"

bool ref_taps_on(const ref_model *m)
{
	return m->base.taps.on_tap != NULL;
}

dsv32_status ref_tap(ref_model *m, const dsv32_tensor *t, int ndim, const int64_t *shape,
		     dsv32_error *err, const char *fmt, ...)
{
	if (!ref_taps_on(m))
		return DSV32_OK;
	char name[160];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(name, sizeof name, fmt, ap);
	va_end(ap);
	dsv32_tensor v = dsv32_tensor_view(NULL, t->dtype, ndim ? ndim : t->ndim,
					   ndim ? shape : t->shape);
	if (dsv32_tensor_numel(&v) != dsv32_tensor_numel(t))
		return DSV32_FAIL(err, DSV32_E_INTERNAL, "tap %s: view of %lld elements over %lld", name,
				  (long long)dsv32_tensor_numel(&v), (long long)dsv32_tensor_numel(t));
	size_t nb = dsv32_tensor_nbytes(&v);
	if (t->dtype == DSV32_F8_E4M3) { /* canonical form of fp8 codes: their F32 values */
		size_t n = (size_t)dsv32_tensor_numel(&v);
		uint8_t *codes = malloc(n ? n : 1);
		float *vals = malloc((n ? n : 1) * sizeof(float));
		dsv32_status rc = codes && vals ? DSV32_OK
						: DSV32_FAIL(err, DSV32_E_NOMEM, "tap %s", name);
		if (rc == DSV32_OK)
			rc = dsv32_backend_download(m->be, codes, t->data, n, err);
		if (rc == DSV32_OK) {
			dsv32_convert(vals, DSV32_F32, codes, DSV32_F8_E4M3, n);
			v.dtype = DSV32_F32;
			v.data = vals;
			rc = m->base.taps.on_tap(m->base.taps.user, name, &v, err);
		}
		free(codes);
		free(vals);
		return rc;
	}
	if (t->device == DSV32_DEV_CPU) {
		v.data = t->data;
		return m->base.taps.on_tap(m->base.taps.user, name, &v, err);
	}
	void *host = malloc(nb ? nb : 1);
	if (!host)
		return DSV32_FAIL(err, DSV32_E_NOMEM, "tap %s: %zu bytes", name, nb);
	dsv32_status rc = dsv32_backend_download(m->be, host, t->data, nb, err);
	if (rc == DSV32_OK) {
		v.data = host;
		rc = m->base.taps.on_tap(m->base.taps.user, name, &v, err);
	}
	free(host);
	return rc;
}

dsv32_status ref_alloc(ref_model *m, dsv32_tensor *t, dsv32_dtype dt, int ndim,
		       const int64_t *shape, dsv32_error *err)
{
	return dsv32_backend_alloc(m->be, t, dt, ndim, shape, err);
}

void ref_free(ref_model *m, dsv32_tensor *t)
{
	if (t->data) /* dsv32_backend_free leaves borrowed tensors alone */
		dsv32_backend_free(m->be, t);
	*t = (dsv32_tensor){0};
}

dsv32_tensor *ref_pool_alloc(ref_model *m, ref_pool *p, dsv32_dtype dt, int ndim,
			     const int64_t *shape, dsv32_error *err)
{
	if (p->n == REF_POOL_MAX) {
		DSV32_FAIL(err, DSV32_E_INTERNAL, "ref scratch pool full (%d tensors)", REF_POOL_MAX);
		return NULL;
	}
	dsv32_tensor *t = &p->t[p->n];
	if (ref_alloc(m, t, dt, ndim, shape, err) != DSV32_OK)
		return NULL;
	p->n++;
	return t;
}

void ref_pool_free(ref_model *m, ref_pool *p)
{
	for (int i = 0; i < p->n; i++)
		ref_free(m, &p->t[i]);
	p->n = 0;
}

dsv32_tensor ref_view(const dsv32_tensor *t, int64_t off, int ndim, const int64_t *shape)
{
	dsv32_tensor v = dsv32_tensor_view((char *)t->data + (size_t)off * dsv32_dtype_size(t->dtype),
					   t->dtype, ndim, shape);
	v.device = t->device;
	return v;
}

dsv32_status ref_tap_cache(ref_model *m, const dsv32_tensor *cache, int64_t B, int64_t S,
			   int64_t P, dsv32_error *err, const char *fmt, ...)
{
	if (!ref_taps_on(m))
		return DSV32_OK;
	char name[160];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(name, sizeof name, fmt, ap);
	va_end(ap);
	int64_t maxS = cache->shape[1], d = cache->shape[2];
	size_t es = dsv32_dtype_size(cache->dtype), row = (size_t)(S * d) * es;
	int64_t shape[3] = {B, S, d};
	dsv32_tensor h = dsv32_tensor_view(NULL, cache->dtype, 3, shape);
	h.data = malloc(row * (size_t)B + 1);
	float *f = NULL;
	dsv32_status rc = h.data ? DSV32_OK : DSV32_FAIL(err, DSV32_E_NOMEM, "tap %s", name);
	for (int64_t b = 0; b < B && rc == DSV32_OK; b++)
		rc = dsv32_backend_download(m->be, (char *)h.data + (size_t)b * row,
					    (const char *)cache->data + (size_t)((b * maxS + P) * d) * es,
					    row, err);
	if (rc == DSV32_OK && cache->dtype == DSV32_F8_E4M3) {
		size_t n = (size_t)(B * S * d);
		f = malloc(n * sizeof(float) + 1);
		if (!f) {
			rc = DSV32_FAIL(err, DSV32_E_NOMEM, "tap %s", name);
		} else {
			dsv32_convert(f, DSV32_F32, h.data, DSV32_F8_E4M3, n);
			free(h.data);
			h.data = f;
			h.dtype = DSV32_F32;
		}
	}
	if (rc == DSV32_OK)
		rc = m->base.taps.on_tap(m->base.taps.user, name, &h, err);
	free(h.data);
	return rc;
}
