/* backend.cu: CUDA context of a backend: stream, cuBLAS (opened here) and its handle, device memory. */
#include <cublas_v2.h>
#include <cuda_runtime.h>

extern "C" {
#include "kernels/backend_impl.h"
#include "kernels/cuda_ctx.h"
}

extern "C" bool dsv32_backend_cuda_available(void)
{
	int n = 0;
	return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
}

extern "C" dsv32_status dsv32_backend_cuda_init(dsv32_backend *be, dsv32_error *err)
{
	if (!dsv32_backend_cuda_available())
		return DSV32_FAIL(err, DSV32_E_UNSUPPORTED, "no CUDA device is visible");
	dsv32_cuda_ctx *c = (dsv32_cuda_ctx *)calloc(1, sizeof *c);
	if (!c)
		return DSV32_FAIL(err, DSV32_E_NOMEM, "allocating the CUDA context");
	cudaError_t ce = cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking);
	if (ce != cudaSuccess) {
		free(c);
		return DSV32_FAIL_SYS(err, DSV32_E_CUDA, (int)ce, "cudaStreamCreate: %s",
				      cudaGetErrorString(ce));
	}
	dsv32_status st = dsv32_cublas_open(&c->blas, err);
	if (st != DSV32_OK) {
		cudaStreamDestroy(c->stream);
		free(c);
		return st;
	}
	cublasStatus_t bs = c->blas.create(&c->cublas);
	if (bs == CUBLAS_STATUS_SUCCESS)
		bs = c->blas.set_stream(c->cublas, c->stream);
	if (bs == CUBLAS_STATUS_SUCCESS) /* fp32 GEMMs must not use TF32 */
		bs = c->blas.set_math_mode(c->cublas, CUBLAS_PEDANTIC_MATH);
	if (bs != CUBLAS_STATUS_SUCCESS) {
		if (c->cublas)
			c->blas.destroy(c->cublas);
		dsv32_cublas_close(&c->blas);
		cudaStreamDestroy(c->stream);
		free(c);
		return DSV32_FAIL_SYS(err, DSV32_E_CUDA, (int)bs, "cuBLAS init: status %d", (int)bs);
	}
	be->cuda = c;
	return DSV32_OK;
}

extern "C" void dsv32_backend_cuda_fini(dsv32_backend *be)
{
	dsv32_cuda_ctx *c = (dsv32_cuda_ctx *)be->cuda;
	if (!c)
		return;
	cudaStreamSynchronize(c->stream);
	if (c->workspace)
		cudaFree(c->workspace);
	c->blas.destroy(c->cublas);
	dsv32_cublas_close(&c->blas);
	cudaStreamDestroy(c->stream);
	free(c);
	be->cuda = NULL;
}

extern "C" dsv32_status dsv32_backend_cuda_alloc(dsv32_backend *be, void **p, size_t nbytes,
						 dsv32_error *err)
{
	dsv32_cuda_ctx *c = (dsv32_cuda_ctx *)be->cuda;
	cudaError_t ce = cudaMallocAsync(p, nbytes ? nbytes : 1, c->stream);
	if (ce == cudaSuccess)
		ce = cudaMemsetAsync(*p, 0, nbytes, c->stream);
	if (ce != cudaSuccess)
		return DSV32_FAIL_SYS(err, DSV32_E_CUDA, (int)ce, "cudaMalloc(%zu): %s", nbytes,
				      cudaGetErrorString(ce));
	return DSV32_OK;
}

extern "C" void dsv32_backend_cuda_free(dsv32_backend *be, void *p)
{
	dsv32_cuda_ctx *c = (dsv32_cuda_ctx *)be->cuda;
	cudaFreeAsync(p, c->stream);
}

extern "C" dsv32_status dsv32_backend_cuda_copy(dsv32_backend *be, void *dst, const void *src,
						size_t nbytes, bool to_device, dsv32_error *err)
{
	dsv32_cuda_ctx *c = (dsv32_cuda_ctx *)be->cuda;
	cudaError_t ce = cudaMemcpyAsync(dst, src, nbytes,
					 to_device ? cudaMemcpyHostToDevice : cudaMemcpyDeviceToHost,
					 c->stream);
	if (ce == cudaSuccess && !to_device)
		ce = cudaStreamSynchronize(c->stream);
	if (ce != cudaSuccess)
		return DSV32_FAIL_SYS(err, DSV32_E_CUDA, (int)ce, "cudaMemcpy(%zu): %s", nbytes,
				      cudaGetErrorString(ce));
	return DSV32_OK;
}

extern "C" dsv32_status dsv32_backend_cuda_sync(dsv32_backend *be, dsv32_error *err)
{
	dsv32_cuda_ctx *c = (dsv32_cuda_ctx *)be->cuda;
	cudaError_t ce = cudaStreamSynchronize(c->stream);
	if (ce != cudaSuccess)
		return DSV32_FAIL_SYS(err, DSV32_E_CUDA, (int)ce, "CUDA: %s", cudaGetErrorString(ce));
	return DSV32_OK;
}
