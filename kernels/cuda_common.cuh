/* cuda_common.cuh: launch helpers shared by the CUDA bodies (included only by the kernels/ .cu
 * files): the grid size of a grid-stride loop, the launch-error check every launcher ends with,
 * and the shared-memory fp32 block sum of the row-per-block norms. */
#ifndef DSV32_CUDA_COMMON_CUH
#define DSV32_CUDA_COMMON_CUH
#ifdef __CUDACC__
#include <cuda_runtime.h>

#include "kernels/cuda_ctx.h"
extern "C" {
#include "core/error.h"
}

/* Blocks for a grid-stride loop over n elements with `threads` threads a block:
 * ceil(n / threads), at least 1, at most 65535 * 8 (the loop covers the rest). */
static inline int dsv32_cuda_blocks(int64_t n, int threads)
{
	int64_t b = (n + threads - 1) / threads;
	return (int)(b < 65535 * 8 ? (b < 1 ? 1 : b) : 65535 * 8);
}

/* The status of the last launch: DSV32_OK, or DSV32_E_CUDA with the CUDA error (its code in
 * err->sys). The message is "<what>: <CUDA error string>"; DSV32_CUDA_LAUNCHED says
 * "<op>: kernel launch: <CUDA error string>". file/line are the caller's (macros below). */
static inline dsv32_status dsv32_cuda_last_error_at(const char *what, const char *sep,
						    dsv32_error *err, const char *file, int line)
{
	cudaError_t e = cudaGetLastError();
	if (e != cudaSuccess)
		return dsv32_error_set(err, DSV32_E_CUDA, (int)e, file, line, "%s%s%s", what, sep,
				       cudaGetErrorString(e));
	return DSV32_OK;
}
#define DSV32_CUDA_LAST_ERROR(what, err) \
	dsv32_cuda_last_error_at((what), ": ", (err), __FILE__, __LINE__)
#define DSV32_CUDA_LAUNCHED(op, err) \
	dsv32_cuda_last_error_at((op), ": kernel launch: ", (err), __FILE__, __LINE__)

/* Sum of v over the block, in fp32 with round-to-nearest adds, by a shared-memory tree
 * (pairs at stride blockDim/2, /4, ..., 1): every thread gets the same result. sh holds
 * blockDim.x floats; blockDim.x is a power of two. Contains __syncthreads: call from every
 * thread of the block. */
__device__ static inline float dsv32_block_sum_f32(float v, float *sh)
{
	sh[threadIdx.x] = v;
	__syncthreads();
	for (int s = blockDim.x / 2; s > 0; s >>= 1) {
		if ((int)threadIdx.x < s)
			sh[threadIdx.x] = __fadd_rn(sh[threadIdx.x], sh[threadIdx.x + s]);
		__syncthreads();
	}
	float r = sh[0];
	__syncthreads();
	return r;
}

#endif
#endif
