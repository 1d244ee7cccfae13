/* indexer.cu: CUDA bodies of dsv32_fp8_index / dsv32_index_scores_hf: one thread per output
 * element running the shared per-element math (same order as the CPU: identical bits). */
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "kernels/cuda_common.cuh"
extern "C" {
#include "kernels/indexer_impl.h"
}

__global__ static void fp8_index_kernel(dsv32_idx_fp8_args a)
{
	int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
	if (e >= a.B * a.S * a.T)
		return;
	int64_t t = e % a.T, bi = e / a.T;
	a.out[e] = dsv32_fp8_index_elem(&a, bi / a.S, bi % a.S, t);
}

__global__ static void index_hf_kernel(dsv32_idx_hf_args a)
{
	int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
	if (e >= a.B * a.S * a.T)
		return;
	int64_t t = e % a.T, bi = e / a.T;
	a.out[e] = dsv32_index_hf_elem(&a, bi / a.S, bi % a.S, t);
}

extern "C" dsv32_status dsv32_fp8_index_cuda(dsv32_backend *be, const dsv32_idx_fp8_args *a,
					     dsv32_error *err)
{
	int64_t n = a->B * a->S * a->T;
	fp8_index_kernel<<<(unsigned)((n + 255) / 256), 256, 0, DSV32_CUDA_STREAM(be)>>>(*a);
	return DSV32_CUDA_LAST_ERROR("fp8_index kernel launch", err);
}

extern "C" dsv32_status dsv32_index_scores_hf_cuda(dsv32_backend *be, const dsv32_idx_hf_args *a,
						   dsv32_error *err)
{
	int64_t n = a->B * a->S * a->T;
	index_hf_kernel<<<(unsigned)((n + 255) / 256), 256, 0, DSV32_CUDA_STREAM(be)>>>(*a);
	return DSV32_CUDA_LAST_ERROR("index_scores_hf kernel launch", err);
}
