/* tensor.c: allocation, views and shape helpers for dsv32_tensor. */
#include "core/tensor.h"

#include <stdio.h>
#include <stdlib.h>

int64_t dsv32_shape_numel(int ndim, const int64_t *shape)
{
	int64_t n = 1;
	for (int i = 0; i < ndim; i++) {
		if (shape[i] < 0)
			return -1;
		if (shape[i] != 0 && n > INT64_MAX / shape[i])
			return -1;
		n *= shape[i];
	}
	return n;
}

int64_t dsv32_tensor_numel(const dsv32_tensor *t)
{
	return dsv32_shape_numel(t->ndim, t->shape);
}

size_t dsv32_tensor_nbytes(const dsv32_tensor *t)
{
	int64_t n = dsv32_tensor_numel(t);
	return n < 0 ? 0 : (size_t)n * dsv32_dtype_size(t->dtype);
}

dsv32_status dsv32_shape_bytes(size_t *bytes, dsv32_dtype dtype, int ndim, const int64_t *shape,
			       dsv32_error *err)
{
	char buf[128];
	*bytes = 0;
	if (ndim < 0 || ndim > DSV32_MAX_DIMS)
		return DSV32_FAIL(err, DSV32_E_SHAPE, "tensor rank %d, expected 0..%d", ndim,
				  DSV32_MAX_DIMS);
	int64_t n = dsv32_shape_numel(ndim, shape);
	size_t isz = dsv32_dtype_size(dtype);
	if (n < 0 || isz == 0 || (uint64_t)n > SIZE_MAX / isz)
		return DSV32_FAIL(err, DSV32_E_SHAPE, "cannot allocate shape %s of %s",
				  dsv32_shape_str(buf, sizeof buf, ndim, shape),
				  dsv32_dtype_name(dtype));
	*bytes = (size_t)n * isz;
	return DSV32_OK;
}

dsv32_status dsv32_tensor_alloc(dsv32_tensor *t, dsv32_dtype dtype, int ndim, const int64_t *shape,
				dsv32_error *err)
{
	char buf[128];
	size_t bytes;
	*t = (dsv32_tensor){0};
	DSV32_TRY(dsv32_shape_bytes(&bytes, dtype, ndim, shape, err));
	void *p = calloc(bytes ? bytes : 1, 1);
	if (!p)
		return DSV32_FAIL(err, DSV32_E_NOMEM, "allocating %zu bytes for shape %s", bytes,
				  dsv32_shape_str(buf, sizeof buf, ndim, shape));
	*t = dsv32_tensor_view(p, dtype, ndim, shape);
	t->owned = true;
	return DSV32_OK;
}

dsv32_tensor dsv32_tensor_view(void *data, dsv32_dtype dtype, int ndim, const int64_t *shape)
{
	dsv32_tensor t = {0};
	t.dtype = dtype;
	t.ndim = ndim < 0 ? 0 : (ndim > DSV32_MAX_DIMS ? DSV32_MAX_DIMS : ndim);
	for (int i = 0; i < t.ndim; i++)
		t.shape[i] = shape[i];
	t.data = data;
	t.owned = false;
	t.device = DSV32_DEV_CPU;
	return t;
}

void dsv32_tensor_free(dsv32_tensor *t)
{
	if (t->owned && t->device == DSV32_DEV_CPU)
		free(t->data);
	*t = (dsv32_tensor){0};
}

bool dsv32_tensor_same_shape(const dsv32_tensor *a, const dsv32_tensor *b)
{
	if (a->ndim != b->ndim)
		return false;
	for (int i = 0; i < a->ndim; i++)
		if (a->shape[i] != b->shape[i])
			return false;
	return true;
}

char *dsv32_shape_str(char *buf, size_t len, int ndim, const int64_t *shape)
{
	size_t off = 0;
	if (len == 0)
		return buf;
	buf[0] = '\0';
	off += (size_t)snprintf(buf + off, len - off, "[");
	for (int i = 0; i < ndim && off < len; i++)
		off += (size_t)snprintf(buf + off, len - off, i ? ", %lld" : "%lld",
					(long long)shape[i]);
	if (off < len)
		snprintf(buf + off, len - off, "]");
	return buf;
}

int64_t dsv32_argmax_f32(const float *v, int64_t n)
{
	int64_t best = 0;
	for (int64_t i = 1; i < n; i++)
		if (v[i] > v[best])
			best = i;
	return best;
}
