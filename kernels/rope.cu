/* rope.cu: CUDA body of RoPE and the de-interleave permutation (rope.h): one thread per
 * (b, s, h) row running the shared dsv32_rope_row, so the arithmetic equals the CPU body's. */
#include <cuda_runtime.h>

#include "kernels/cuda_common.cuh"
extern "C" {
#include "kernels/rope_impl.h"
}

__global__ static void rope_kernel(dsv32_rope_args a)
{
	int64_t nrows = a.B * a.S * a.H;
	for (int64_t r = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; r < nrows;
	     r += (int64_t)gridDim.x * blockDim.x) {
		int64_t b = r / (a.S * a.H), s = (r / a.H) % a.S;
		dsv32_rope_row(&a, b, s, r * a.D + a.off);
	}
}

extern "C" dsv32_status dsv32_rope_cuda(dsv32_backend *be, const dsv32_rope_args *a,
					dsv32_error *err)
{
	int64_t nrows = a->B * a->S * a->H, blocks = (nrows + 127) / 128;
	if (blocks > 65535 * 8)
		blocks = 65535 * 8;
	rope_kernel<<<(unsigned)blocks, 128, 0, DSV32_CUDA_STREAM(be)>>>(*a);
	return DSV32_CUDA_LAUNCHED("rope", err);
}
