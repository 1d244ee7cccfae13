/* cublas_api.h: the cuBLAS functions a CUDA backend calls, reached through dlopen when the
 * backend is created, never linked. Linking libcublas cost every process, even `--help` on a
 * machine without a GPU, about 70 ms and 216 MB of RSS before main (cublasLt's static
 * initialisers, measured 2026-12-07); CPU runs now never load it. */
#ifndef DSV32_CUBLAS_API_H
#define DSV32_CUBLAS_API_H
#ifdef DSV32_HAVE_CUDA
#include <cublas_api.h>

#ifdef __cplusplus
extern "C" {
#endif
#include "core/error.h" /* C linkage also where a .cu file includes this first */

/* The C prototypes of cublas_api.h (cublas_api.c checks each against the header). */
typedef cublasStatus_t (*dsv32_cublas_create_fn)(cublasHandle_t *handle);
typedef cublasStatus_t (*dsv32_cublas_destroy_fn)(cublasHandle_t handle);
typedef cublasStatus_t (*dsv32_cublas_set_stream_fn)(cublasHandle_t handle, cudaStream_t stream);
typedef cublasStatus_t (*dsv32_cublas_set_math_mode_fn)(cublasHandle_t handle, cublasMath_t mode);
typedef cublasStatus_t (*dsv32_cublas_gemm_sbex_fn)(
	cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n,
	int k, const void *alpha, const void *A, cudaDataType Atype, int lda, long long strideA,
	const void *B, cudaDataType Btype, int ldb, long long strideB, const void *beta, void *C,
	cudaDataType Ctype, int ldc, long long strideC, int batchCount,
	cublasComputeType_t computeType, cublasGemmAlgo_t algo);

typedef struct {
	void *lib; /* the dlopen handle */
	dsv32_cublas_create_fn create;
	dsv32_cublas_destroy_fn destroy;
	dsv32_cublas_set_stream_fn set_stream;
	dsv32_cublas_set_math_mode_fn set_math_mode;
	dsv32_cublas_gemm_sbex_fn gemm_strided_batched_ex;
} dsv32_cublas_api;

/* Open libcublas.so.<major of the headers built against> (the dynamic linker's search, then
 * the toolkit's library directory of the build) and resolve every function above; on failure
 * *api is left closed and err names the library and the missing symbol. */
dsv32_status dsv32_cublas_open(dsv32_cublas_api *api, dsv32_error *err);
/* Release what dsv32_cublas_open took (the library stays mapped while other handles use it). */
void dsv32_cublas_close(dsv32_cublas_api *api);

#ifdef __cplusplus
}
#endif
#endif
#endif
