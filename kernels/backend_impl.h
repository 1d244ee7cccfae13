/* backend_impl.h: the internals of backend.h: the CUDA half of a backend (defined in backend.cu,
 * called by backend.c) and the dispatch helpers every op dispatcher uses. Private to kernels/
 * (and tests/, bench/), like every X_impl.h (rule in backend.h). */
#ifndef DSV32_BACKEND_IMPL_H
#define DSV32_BACKEND_IMPL_H

#include "kernels/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

/* backend.cu; only called where this build has CUDA (DSV32_HAVE_CUDA). */
bool dsv32_backend_cuda_available(void);
dsv32_status dsv32_backend_cuda_init(dsv32_backend *be, dsv32_error *err);
void dsv32_backend_cuda_fini(dsv32_backend *be);
dsv32_status dsv32_backend_cuda_alloc(dsv32_backend *be, void **p, size_t nbytes, dsv32_error *err);
void dsv32_backend_cuda_free(dsv32_backend *be, void *p);
dsv32_status dsv32_backend_cuda_copy(dsv32_backend *be, void *dst, const void *src, size_t nbytes,
				     bool to_device, dsv32_error *err);
dsv32_status dsv32_backend_cuda_sync(dsv32_backend *be, dsv32_error *err);

/* The answer of a dispatcher whose op has no body on be's device: DSV32_E_UNSUPPORTED with
 * "<op>: no body for device <device> in this build" (<op> the entry point's name). */
dsv32_status dsv32_op_unsupported(const dsv32_backend *be, const char *op, dsv32_error *err);

#ifdef __cplusplus
}
#endif

/* What a dispatcher returns once it knows the device is not the CPU: the CUDA body `call` where
 * be is a CUDA backend of a CUDA build, else dsv32_op_unsupported. The same condition as
 * dsv32_op_supported, so its answers stay true. In a CPU-only build the call is still
 * type-checked against its declaration (the _impl.h headers declare the CUDA bodies in every
 * build) but never evaluated nor linked: it sits inside sizeof. */
#ifdef DSV32_HAVE_CUDA
#define DSV32_CUDA_BODY(be, op, err, call)                                                         \
	((be)->device == DSV32_DEV_CUDA ? (call) : dsv32_op_unsupported((be), (op), (err)))
#else
#define DSV32_CUDA_BODY(be, op, err, call)                                                         \
	((void)sizeof(call), dsv32_op_unsupported((be), (op), (err)))
#endif

#endif
