/* silu.cu: CUDA body of the SiLU-gated products (silu.h): a grid-stride loop over elements. */
#include <cuda_runtime.h>

#include "kernels/cuda_common.cuh"
extern "C" {
#include "kernels/silu_impl.h"
}

__global__ static void silu_mul_kernel(void *h, dsv32_dtype ht, const void *a, dsv32_dtype at,
				       const void *b, dsv32_dtype bt, int64_t n, bool hf)
{
	for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
	     i += (int64_t)gridDim.x * blockDim.x) {
		float s = dsv32_silu_elem(dsv32_act_load(a, at, i));
		if (hf)
			s = dsv32_act_round(ht, s);
		dsv32_act_store(h, ht, i, dsv32_fmul_rn(s, dsv32_act_load(b, bt, i)));
	}
}

extern "C" dsv32_status dsv32_silu_mul_cuda(dsv32_backend *be, void *h, dsv32_dtype ht,
					    const void *a, dsv32_dtype at, const void *b,
					    dsv32_dtype bt, int64_t n, bool hf, dsv32_error *err)
{
	int64_t blocks = (n + 255) / 256;
	if (blocks > 65535 * 8)
		blocks = 65535 * 8;
	silu_mul_kernel<<<(unsigned)blocks, 256, 0, DSV32_CUDA_STREAM(be)>>>(h, ht, a, at, b, bt, n,
									 hf);
	return DSV32_CUDA_LAUNCHED("silu_mul", err);
}
