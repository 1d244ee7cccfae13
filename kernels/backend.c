/* backend.c: backend creation, host-side memory and the op-support answers; CUDA parts live in
 * backend.cu. */
#include "kernels/backend_impl.h"

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
	free(be);
}

dsv32_status dsv32_backend_alloc(dsv32_backend *be, dsv32_tensor *t, dsv32_dtype dtype, int ndim,
				 const int64_t *shape, dsv32_error *err)
{
	if (be->device == DSV32_DEV_CPU)
		return dsv32_tensor_alloc(t, dtype, ndim, shape, err);
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
	(void)be;
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
