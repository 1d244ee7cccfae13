/* backend.c: backend creation, host-side memory and the op-support answers; CUDA parts live in
 * backend.cu. */
#include "kernels/backend_impl.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char *const op_names[DSV32_OP_COUNT] = {
	[DSV32_OP_ELEMENTWISE] = "elementwise", [DSV32_OP_COMBINE] = "combine",
	[DSV32_OP_RMSNORM] = "rmsnorm",         [DSV32_OP_LAYERNORM] = "layernorm",
	[DSV32_OP_ROPE] = "rope",               [DSV32_OP_HADAMARD] = "hadamard",
	[DSV32_OP_SOFTMAX] = "softmax",         [DSV32_OP_SILU] = "silu",
	[DSV32_OP_GEMM] = "gemm",               [DSV32_OP_FP8] = "fp8",
	[DSV32_OP_TOPK] = "topk",               [DSV32_OP_ROUTER] = "router",
	[DSV32_OP_INDEXER] = "indexer",         [DSV32_OP_ATTENTION] = "attention",
};

const char *dsv32_op_name(dsv32_op op)
{
	return (unsigned)op < DSV32_OP_COUNT ? op_names[op] : "?";
}

const char *dsv32_device_name(dsv32_device device)
{
	switch (device) {
	case DSV32_DEV_CPU: return "cpu";
	case DSV32_DEV_CUDA: return "cuda";
	default: return "?";
	}
}

/* Every family has a CPU body and, in a CUDA build, a CUDA body (kernels/<family>.cu); this is
 * the condition DSV32_CUDA_BODY dispatches on. */
bool dsv32_op_supported(const dsv32_backend *be, dsv32_op op)
{
	if ((unsigned)op >= DSV32_OP_COUNT)
		return false;
	if (be->device == DSV32_DEV_CPU)
		return true;
#ifdef DSV32_HAVE_CUDA
	return be->device == DSV32_DEV_CUDA;
#else
	return false;
#endif
}

dsv32_status dsv32_op_unsupported(const dsv32_backend *be, const char *op, dsv32_error *err)
{
	return DSV32_FAIL(err, DSV32_E_UNSUPPORTED, "%s: no body for device %s (%d) in this build",
			  op, dsv32_device_name(be->device), (int)be->device);
}

bool dsv32_cuda_available(void)
{
#ifdef DSV32_HAVE_CUDA
	return dsv32_backend_cuda_available();
#else
	return false;
#endif
}

/* ---- the host block cache (backend.h) ---- */

typedef struct {
	void *p;
	size_t cap;
} cached_block;

typedef struct {
	cached_block b[DSV32_HOST_CACHE_BLOCKS];
	int n;
	size_t bytes;
} host_cache;

/* The size class of a request: the next power of two, at least 64 bytes; 0 when none fits. */
static size_t size_class(size_t bytes)
{
	size_t c = 64;
	while (c < bytes) {
		if (c > SIZE_MAX / 2)
			return 0;
		c *= 2;
	}
	return c;
}

/* A block of class cap from the cache (most recently freed first), else a new one; *fresh
 * says which (a new block from calloc is already zero). */
static void *cache_take(dsv32_backend *be, size_t cap, bool zero, bool *fresh)
{
	host_cache *c = be->host_cache;
	for (int i = c ? c->n - 1 : -1; i >= 0; i--) {
		if (c->b[i].cap != cap)
			continue;
		void *p = c->b[i].p;
		c->b[i] = c->b[--c->n];
		c->bytes -= cap;
		*fresh = false;
		return p;
	}
	*fresh = true;
	return zero ? calloc(1, cap) : aligned_alloc(64, cap);
}

static void cache_give(dsv32_backend *be, void *p, size_t cap)
{
	host_cache *c = be->host_cache;
	if (!c && cap <= DSV32_HOST_CACHE_BYTES / 4)
		c = be->host_cache = calloc(1, sizeof *c);
	if (!c || c->n == DSV32_HOST_CACHE_BLOCKS || cap > DSV32_HOST_CACHE_BYTES / 4 ||
	    c->bytes + cap > DSV32_HOST_CACHE_BYTES) {
		free(p);
		return;
	}
	c->b[c->n++] = (cached_block){p, cap};
	c->bytes += cap;
}

static void cache_destroy(dsv32_backend *be)
{
	host_cache *c = be->host_cache;
	for (int i = 0; c && i < c->n; i++)
		free(c->b[i].p);
	free(c);
	be->host_cache = NULL;
}

void *dsv32_backend_host_get(dsv32_backend *be, size_t bytes)
{
	size_t cap = size_class(bytes);
	bool fresh;
	return cap ? cache_take(be, cap, false, &fresh) : NULL;
}

void dsv32_backend_host_put(dsv32_backend *be, void *p, size_t bytes)
{
	if (p)
		cache_give(be, p, size_class(bytes));
}

/* dsv32_backend_alloc on the CPU: a zero-filled block of the request's class. */
static dsv32_status host_tensor_alloc(dsv32_backend *be, dsv32_tensor *t, dsv32_dtype dtype,
				      int ndim, const int64_t *shape, dsv32_error *err)
{
	size_t bytes;
	DSV32_TRY(dsv32_shape_bytes(&bytes, dtype, ndim, shape, err));
	size_t cap = size_class(bytes);
	bool fresh = true;
	void *p = cap ? cache_take(be, cap, true, &fresh) : NULL;
	if (!p) {
		char s[128];
		return DSV32_FAIL(err, DSV32_E_NOMEM, "allocating %zu bytes for shape %s", bytes,
				  dsv32_shape_str(s, sizeof s, ndim, shape));
	}
	if (!fresh)
		memset(p, 0, bytes);
	*t = dsv32_tensor_view(p, dtype, ndim, shape);
	t->owned = true;
	t->cap = cap;
	return DSV32_OK;
}

dsv32_status dsv32_backend_create(dsv32_backend **out, dsv32_device device, dsv32_error *err)
{
	*out = NULL;
	dsv32_backend *be = calloc(1, sizeof *be);
	if (!be)
		return DSV32_FAIL(err, DSV32_E_NOMEM, "allocating a backend");
	be->device = device;
	if (device == DSV32_DEV_CUDA) {
#ifdef DSV32_HAVE_CUDA
		dsv32_status rc = dsv32_backend_cuda_init(be, err);
		if (rc != DSV32_OK) {
			free(be);
			return rc;
		}
#else
		free(be);
		return DSV32_FAIL(err, DSV32_E_UNSUPPORTED, "this build has no CUDA support");
#endif
	} else if (device != DSV32_DEV_CPU) {
		free(be);
		return DSV32_FAIL(err, DSV32_E_USAGE, "unknown device %d", (int)device);
	}
	*out = be;
	return DSV32_OK;
}

void dsv32_backend_destroy(dsv32_backend *be)
{
	if (!be)
		return;
#ifdef DSV32_HAVE_CUDA
	if (be->device == DSV32_DEV_CUDA)
		dsv32_backend_cuda_fini(be);
#endif
	cache_destroy(be);
	free(be);
}

dsv32_status dsv32_backend_alloc(dsv32_backend *be, dsv32_tensor *t, dsv32_dtype dtype, int ndim,
				 const int64_t *shape, dsv32_error *err)
{
	if (be->device == DSV32_DEV_CPU)
		return host_tensor_alloc(be, t, dtype, ndim, shape, err);
#ifdef DSV32_HAVE_CUDA
	if (be->device != DSV32_DEV_CUDA)
		return dsv32_op_unsupported(be, "backend_alloc", err);
	dsv32_tensor host = dsv32_tensor_view(NULL, dtype, ndim, shape);
	int64_t n = dsv32_tensor_numel(&host);
	if (n < 0)
		return DSV32_FAIL(err, DSV32_E_SHAPE, "cannot allocate a tensor of this shape");
	void *p = NULL;
	DSV32_TRY(dsv32_backend_cuda_alloc(be, &p, dsv32_tensor_nbytes(&host), err));
	*t = host;
	t->data = p;
	t->owned = true;
	t->device = DSV32_DEV_CUDA;
	return DSV32_OK;
#else
	(void)t; (void)dtype; (void)ndim; (void)shape;
	return dsv32_op_unsupported(be, "backend_alloc", err);
#endif
}

void dsv32_backend_free(dsv32_backend *be, dsv32_tensor *t)
{
#ifdef DSV32_HAVE_CUDA
	if (t->device == DSV32_DEV_CUDA) {
		if (t->owned)
			dsv32_backend_cuda_free(be, t->data);
		*t = (dsv32_tensor){0};
		return;
	}
#endif
	if (t->owned && t->cap && t->device == DSV32_DEV_CPU) {
		cache_give(be, t->data, t->cap);
		*t = (dsv32_tensor){0};
		return;
	}
	dsv32_tensor_free(t);
}

dsv32_status dsv32_backend_upload(dsv32_backend *be, void *dst_dev, const void *src_host,
				  size_t nbytes, dsv32_error *err)
{
	if (be->device == DSV32_DEV_CPU) {
		memmove(dst_dev, src_host, nbytes);
		return DSV32_OK;
	}
	return DSV32_CUDA_BODY(be, "backend_upload", err,
			       dsv32_backend_cuda_copy(be, dst_dev, src_host, nbytes, true, err));
}

dsv32_status dsv32_backend_download(dsv32_backend *be, void *dst_host, const void *src_dev,
				    size_t nbytes, dsv32_error *err)
{
	if (be->device == DSV32_DEV_CPU) {
		memmove(dst_host, src_dev, nbytes);
		return DSV32_OK;
	}
	return DSV32_CUDA_BODY(be, "backend_download", err,
			       dsv32_backend_cuda_copy(be, dst_host, src_dev, nbytes, false, err));
}

dsv32_status dsv32_backend_sync(dsv32_backend *be, dsv32_error *err)
{
#ifdef DSV32_HAVE_CUDA
	if (be->device == DSV32_DEV_CUDA)
		return dsv32_backend_cuda_sync(be, err);
#endif
	(void)be;
	(void)err;
	return DSV32_OK;
}
