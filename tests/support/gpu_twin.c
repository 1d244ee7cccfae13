/* gpu_twin.c: the device side of GPU twin tests (gpu_twin.h). */
#include "tests/support/gpu_twin.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tests/support/test_common.h"

#ifndef DSV32_GPU_TWIN_DRY_RUN
#define DSV32_GPU_TWIN_DRY_RUN 0
#endif

dsv32_backend *gt_dev_backend_or_null(void)
{
#if DSV32_GPU_TWIN_DRY_RUN
	dsv32_backend *be = NULL;
	dsv32_error err = {0};
	if (dsv32_backend_create(&be, DSV32_DEV_CPU, &err) != DSV32_OK)
		fail_msg("gpu_twin dry run: no CPU backend: %s", err.what);
	return be;
#else
	return tc_cuda_backend_or_null();
#endif
}

dsv32_tensor gt_to_dev(dsv32_backend *dev, const dsv32_tensor *h)
{
	dsv32_tensor d;
	dsv32_error err = {0};
	if (dsv32_backend_alloc(dev, &d, h->dtype, h->ndim, h->shape, &err) != DSV32_OK)
		fail_msg("gt_to_dev: alloc: %s", err.what);
	size_t nb = dsv32_tensor_nbytes(h);
	if (nb && dsv32_backend_upload(dev, d.data, h->data, nb, &err) != DSV32_OK)
		fail_msg("gt_to_dev: upload of %zu bytes: %s", nb, err.what);
	return d;
}

#if DSV32_GPU_TWIN_DRY_RUN
/* Change element n/2 so that any comparison (bitwise or ulps with a small budget) sees it. */
static void perturb(dsv32_tensor *h)
{
	static long count = -1;
	const char *env = getenv("DSV32_GPU_TWIN_PERTURB");
	count++;
	if (!env || atol(env) != count || dsv32_tensor_numel(h) < 1)
		return;
	size_t i = (size_t)(dsv32_tensor_numel(h) / 2), es = dsv32_dtype_size(h->dtype);
	unsigned char *p = (unsigned char *)h->data + i * es;
	if (h->dtype == DSV32_F32)
		p[2] ^= 0x40; /* mantissa msb (little endian) */
	else if (h->dtype == DSV32_BF16)
		p[0] ^= 0x40; /* mantissa msb */
	else
		p[0] ^= 0x01; /* integers, bools: off by one */
	fprintf(stderr, "gpu_twin dry run: perturbed download %ld (%s, element %zu)\n", count,
		dsv32_dtype_name(h->dtype), i);
}
#endif

dsv32_tensor gt_from_dev(dsv32_backend *dev, const dsv32_tensor *d)
{
	dsv32_tensor h;
	dsv32_error err = {0};
	if (dsv32_tensor_alloc(&h, d->dtype, d->ndim, d->shape, &err) != DSV32_OK)
		fail_msg("gt_from_dev: host alloc: %s", err.what);
	size_t nb = dsv32_tensor_nbytes(d);
	if (dsv32_backend_sync(dev, &err) != DSV32_OK ||
	    (nb && dsv32_backend_download(dev, h.data, d->data, nb, &err) != DSV32_OK))
		fail_msg("gt_from_dev: %s", err.what);
#if DSV32_GPU_TWIN_DRY_RUN
	perturb(&h);
#endif
	return h;
}

void gt_free(dsv32_backend *dev, dsv32_tensor *d)
{
	if (d->data)
		dsv32_backend_free(dev, d);
}

static unsigned long long elem_bits(const unsigned char *p, size_t es)
{
	unsigned long long v = 0;
	memcpy(&v, p, es < sizeof v ? es : sizeof v); /* little endian: low bytes first */
	return v;
}

void gt_assert_bits_equal(const char *what, const dsv32_tensor *got, const dsv32_tensor *want)
{
	if (got->dtype != want->dtype || dsv32_tensor_numel(got) != dsv32_tensor_numel(want))
		fail_msg("%s: got %s x %lld, want %s x %lld", what, dsv32_dtype_name(got->dtype),
			 (long long)dsv32_tensor_numel(got), dsv32_dtype_name(want->dtype),
			 (long long)dsv32_tensor_numel(want));
	size_t es = dsv32_dtype_size(got->dtype);
	int64_t n = dsv32_tensor_numel(got), bad = 0, first = -1;
	const unsigned char *g = got->data, *w = want->data;
	for (int64_t i = 0; i < n; i++) {
		if (!memcmp(g + i * es, w + i * es, es))
			continue;
		if (first < 0)
			first = i;
		if (bad++ < 8)
			print_error("%s: element %lld: got %.9g (0x%llx), want %.9g (0x%llx) [%s]\n",
				    what, (long long)i, dsv32_load_f64(g, got->dtype, (size_t)i),
				    elem_bits(g + i * es, es), dsv32_load_f64(w, want->dtype, (size_t)i),
				    elem_bits(w + i * es, es), dsv32_dtype_name(got->dtype));
	}
	if (bad)
		fail_msg("%s: %lld of %lld elements differ bitwise (first at %lld)", what,
			 (long long)bad, (long long)n, (long long)first);
}
