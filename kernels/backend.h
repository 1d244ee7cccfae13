/* backend.h: the backend context every op takes (DESIGN.md "The op layer").
 *
 * A model picks a backend once. Ops dispatch on be->device to their CPU or CUDA body; a body
 * the backend lacks returns DSV32_E_UNSUPPORTED, never a silent fallback. Tensors given to an
 * op live on the op's device (t->device == be->device), checked in the dispatchers.
 * The CUDA side (stream, cuBLAS/cuBLASLt handles, workspace) hides behind `cuda`; without a
 * device, dsv32_backend_create(DSV32_DEV_CUDA) fails with DSV32_E_UNSUPPORTED and a message.
 */
#ifndef DSV32_BACKEND_H
#define DSV32_BACKEND_H

#include "core/tensor.h"

typedef struct dsv32_backend {
	dsv32_device device;
	int n_threads;        /* CPU: OpenMP threads (0 = library default) */
	void *cuda;           /* CUDA: opaque context (stream, cublas handle, workspace) */
	void *dnnl;           /* CPU: opaque oneDNN engine/stream and primitive cache */
	bool test_flags[8];   /* test-only switches (planted bugs); all false in real runs */
	/* The CPU reduction order to reproduce where an op follows PyTorch's (kernels/reduce.h):
	 * torch_lanes 8 (AVX2) or 16 (AVX-512) vector lanes, torch_major 1 or 2 (torch 1.13 / 2.x
	 * kernel forms). 0 = the defaults of reduce.h. Set by the models from dsv32_model_opts. */
	int torch_lanes;
	int torch_major;
	/* Which GEMM engine the CPU bodies use (kernels/gemm.h "Engines"): DSV32_GEMM_FIXED (0, the
	 * default: our own kernels, one summation order, the same bits on every CPU) or
	 * DSV32_GEMM_HOST (oneDNN / OpenBLAS, whose order follows this CPU, as PyTorch's does). */
	int gemm_engine;
} dsv32_backend;

enum { DSV32_GEMM_FIXED = 0, DSV32_GEMM_HOST = 1 };

/* Test-only switches: each perturbs one op's rounding so tests can check that the harness
 * finds it. Index into test_flags. */
enum { DSV32_TEST_FLAG_RMSNORM_NO_FINAL_ROUND = 0, DSV32_TEST_FLAG_COUNT = 8 };

/* True if this build has CUDA and at least one device is visible. */
bool dsv32_cuda_available(void);

dsv32_status dsv32_backend_create(dsv32_backend **out, dsv32_device device, dsv32_error *err);
void dsv32_backend_destroy(dsv32_backend *be);

/* Allocate a zero-filled tensor on the backend's device. */
dsv32_status dsv32_backend_alloc(dsv32_backend *be, dsv32_tensor *t, dsv32_dtype dtype, int ndim,
				 const int64_t *shape, dsv32_error *err);
void dsv32_backend_free(dsv32_backend *be, dsv32_tensor *t);
/* Copy nbytes between host and the backend's device (plain memcpy on CPU). */
dsv32_status dsv32_backend_upload(dsv32_backend *be, void *dst_dev, const void *src_host,
				  size_t nbytes, dsv32_error *err);
dsv32_status dsv32_backend_download(dsv32_backend *be, void *dst_host, const void *src_dev,
				    size_t nbytes, dsv32_error *err);
dsv32_status dsv32_backend_sync(dsv32_backend *be, dsv32_error *err);

#endif
