/* cuda_ctx.h: what a CUDA backend holds (only .cu files include this). */
#ifndef DSV32_CUDA_CTX_H
#define DSV32_CUDA_CTX_H
#ifdef __CUDACC__
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "kernels/cublas_api.h"

typedef struct {
	cudaStream_t stream;
	dsv32_cublas_api blas; /* cuBLAS, opened with the backend (cublas_api.h) */
	cublasHandle_t cublas;
	void *workspace;
	size_t workspace_bytes;
} dsv32_cuda_ctx;

#define DSV32_CUDA_STREAM(be) (((dsv32_cuda_ctx *)(be)->cuda)->stream)
#endif
#endif
