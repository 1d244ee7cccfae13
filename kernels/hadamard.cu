/* hadamard.cu: CUDA body of the Hadamard transform (hadamard.h): one block per row, the row in
 * shared memory, one butterfly stage per step (strides 1, 2, ..., d/2) with the same (a + b,
 * a − b) per pair as the CPU, so the result is bit-identical to the CPU body. */
#include <cuda_runtime.h>

#include "kernels/cuda_common.cuh"
extern "C" {
#include "kernels/hadamard_impl.h"
}

__global__ static void hadamard_kernel(void *y, dsv32_dtype yt, const void *x, dsv32_dtype xt,
				       int64_t d, float scale)
{
	extern __shared__ float v[];
	int64_t base = (int64_t)blockIdx.x * d;
	for (int64_t j = threadIdx.x; j < d; j += blockDim.x)
		v[j] = dsv32_act_load(x, xt, base + j);
	__syncthreads();
	for (int64_t h = 1; h < d; h <<= 1) {
		for (int64_t p = threadIdx.x; p < d / 2; p += blockDim.x) {
			int64_t j = (p / h) * 2 * h + p % h; /* p-th index with bit h clear */
			float a = v[j], b = v[j + h];
			v[j] = __fadd_rn(a, b);
			v[j + h] = __fsub_rn(a, b);
		}
		__syncthreads();
	}
	for (int64_t j = threadIdx.x; j < d; j += blockDim.x)
		dsv32_act_store(y, yt, base + j, __fmul_rn(v[j], scale));
}

extern "C" dsv32_status dsv32_hadamard_cuda(dsv32_backend *be, void *y, dsv32_dtype yt,
					    const void *x, dsv32_dtype xt, int64_t rows, int64_t d,
					    float scale, dsv32_error *err)
{
	if (rows > 2147483647)
		return DSV32_FAIL(err, DSV32_E_UNSUPPORTED, "hadamard: %lld rows", (long long)rows);
	int threads = d / 2 < 256 ? (int)(d / 2 < 1 ? 1 : d / 2) : 256;
	hadamard_kernel<<<(unsigned)rows, threads, (size_t)d * sizeof(float),
			  DSV32_CUDA_STREAM(be)>>>(y, yt, x, xt, d, scale);
	return DSV32_CUDA_LAUNCHED("hadamard", err);
}
