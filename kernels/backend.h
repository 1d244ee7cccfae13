/* backend.h: the backend context every op takes (docs/architecture.md "The op layer").
 *
 * A model picks a backend once. Ops dispatch on be->device to their CPU or CUDA body; a body
 * the backend lacks returns DSV32_E_UNSUPPORTED, never a silent fallback. Tensors given to an
 * op live on the op's device (t->device == be->device), checked in the dispatchers.
 * The CUDA side (stream, cuBLAS/cuBLASLt handles, workspace) hides behind `cuda`; without a
 * device, dsv32_backend_create(DSV32_DEV_CUDA) fails with DSV32_E_UNSUPPORTED and a message.
 *
 * Header rule of kernels/: X.h is an op family's public API and its precision contract; X_impl.h
 * holds what its dispatcher (X.c) and bodies (X_cpu.c, X.cu) share: argument bundles, per-element
 * math, body declarations. Only kernels/, tests/ and bench/ include an _impl.h
 * (tests/sh_test_impl_headers.sh checks it).
 */
#ifndef DSV32_BACKEND_H
#define DSV32_BACKEND_H

#include "core/tensor.h"
#include "kernels/test_hooks.h"

typedef struct dsv32_backend {
	dsv32_device device;
	int n_threads;        /* CPU: OpenMP threads (0 = library default) */
	void *cuda;           /* CUDA: opaque context (stream, cublas handle, workspace) */
	void *dnnl;           /* CPU: opaque oneDNN engine/stream and primitive cache */
	const dsv32_test_hooks *test_hooks; /* tests only: NULL in every real run (test_hooks.h) */
	/* The CPU reduction order to reproduce where an op follows PyTorch's (kernels/reduce.h):
	 * torch_lanes 8 (AVX2) or 16 (AVX-512) vector lanes, torch_major 1 or 2 (torch 1.13 / 2.x
	 * kernel forms). 0 = the defaults of reduce.h. Set by the models from dsv32_model_opts. */
	int torch_lanes;
	int torch_major;
	/* Which GEMM engine the CPU bodies use (kernels/gemm.h "Engines"): DSV32_GEMM_FIXED (0, the
	 * default: our own kernels, one summation order, the same bits on every CPU) or
	 * DSV32_GEMM_HOST (oneDNN / OpenBLAS, whose order follows this CPU, as PyTorch's does). */
	int gemm_engine;
	/* Host blocks freed through this backend, kept for its next allocations (backend.c), so
	 * that a decode step allocates nothing once its sizes have been seen (issue 19). A backend
	 * is used by one thread at a time. */
	void *host_cache;
} dsv32_backend;

enum { DSV32_GEMM_FIXED = 0, DSV32_GEMM_HOST = 1 };

/* The op families, for dsv32_op_supported. Each family is one kernels/<family>.h. */
typedef enum {
	DSV32_OP_ELEMENTWISE = 0, /* cast, add, add_bcast, scale, embedding, copy/concat cols */
	DSV32_OP_COMBINE,         /* mul_bcast, moe_combine_* */
	DSV32_OP_RMSNORM,
	DSV32_OP_LAYERNORM,
	DSV32_OP_ROPE,            /* rope_ref, rope_hf, permute_deinterleave */
	DSV32_OP_HADAMARD,
	DSV32_OP_SOFTMAX,
	DSV32_OP_SILU,            /* silu_mul_ref, silu_mul_hf */
	DSV32_OP_GEMM,
	DSV32_OP_FP8,             /* act_quant, fp8_roundtrip, weight_dequant, fp8_gemm, linear_fp8 */
	DSV32_OP_TOPK,
	DSV32_OP_ROUTER,
	DSV32_OP_INDEXER,
	DSV32_OP_ATTENTION,
	DSV32_OP_COUNT /* append only, above this line */
} dsv32_op;

/* "rmsnorm", "gemm", ...; "?" for a value out of range. */
const char *dsv32_op_name(dsv32_op op);
/* "cpu", "cuda"; "?" for a value out of range. */
const char *dsv32_device_name(dsv32_device device);

/* Whether this build has a body of the op family for be's device (like ggml's supports_op).
 * true: the family's ops run on be (some still refuse particular dtypes or sizes with
 * DSV32_E_UNSUPPORTED, as their headers say); false: each of them returns DSV32_E_UNSUPPORTED
 * with a message naming the op and the device, and never a silent fallback. */
bool dsv32_op_supported(const dsv32_backend *be, dsv32_op op);

/* True if this build has CUDA and at least one device is visible. */
bool dsv32_cuda_available(void);

dsv32_status dsv32_backend_create(dsv32_backend **out, dsv32_device device, dsv32_error *err);
void dsv32_backend_destroy(dsv32_backend *be);

/* Allocate a zero-filled tensor on the backend's device. On the CPU the storage comes from the
 * backend's block cache: blocks are sized in powers of two (at least 64 bytes), and
 * dsv32_backend_free keeps up to DSV32_HOST_CACHE_BLOCKS of them, DSV32_HOST_CACHE_BYTES in all,
 * for the next requests of their size class (a block above a quarter of that is freed at once).
 * So a step that repeats the previous step's shapes takes its tensors from the cache; tensors
 * that grow with the sequence change size class only at powers of two. */
dsv32_status dsv32_backend_alloc(dsv32_backend *be, dsv32_tensor *t, dsv32_dtype dtype, int ndim,
				 const int64_t *shape, dsv32_error *err);
void dsv32_backend_free(dsv32_backend *be, dsv32_tensor *t);
/* Host scratch (index tables, host copies) from the same cache: at least `bytes` bytes, aligned
 * as malloc's, contents undefined; NULL when out of memory. Give it back with the same `bytes`
 * (dsv32_backend_host_put(be, NULL, n) does nothing). */
void *dsv32_backend_host_get(dsv32_backend *be, size_t bytes);
void dsv32_backend_host_put(dsv32_backend *be, void *p, size_t bytes);

#define DSV32_HOST_CACHE_BLOCKS 256
#define DSV32_HOST_CACHE_BYTES ((size_t)64 << 20)
/* Copy nbytes between host and the backend's device (plain memcpy on CPU). */
dsv32_status dsv32_backend_upload(dsv32_backend *be, void *dst_dev, const void *src_host,
				  size_t nbytes, dsv32_error *err);
dsv32_status dsv32_backend_download(dsv32_backend *be, void *dst_host, const void *src_dev,
				    size_t nbytes, dsv32_error *err);
dsv32_status dsv32_backend_sync(dsv32_backend *be, dsv32_error *err);

#endif
