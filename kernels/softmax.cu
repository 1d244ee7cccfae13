/* softmax.cu: CUDA body of softmax (softmax.h): one block per row; shared-memory max and fp32
 * sum reductions (order differs from the CPU; not part of the contract); device expf. */
#include <cuda_runtime.h>

#include "kernels/cuda_common.cuh"
extern "C" {
#include "kernels/softmax_impl.h"
}

#define SM_THREADS 256

__global__ static void softmax_kernel(void *y, dsv32_dtype yt, const void *x, dsv32_dtype xt,
				      int64_t T)
{
	__shared__ float sh[SM_THREADS];
	int64_t base = (int64_t)blockIdx.x * T;
	float m = -INFINITY;
	for (int64_t t = threadIdx.x; t < T; t += blockDim.x)
		m = dsv32_softmax_max(m, dsv32_act_load(x, xt, base + t));
	sh[threadIdx.x] = m;
	__syncthreads();
	for (int s = blockDim.x / 2; s > 0; s >>= 1) {
		if ((int)threadIdx.x < s)
			sh[threadIdx.x] = dsv32_softmax_max(sh[threadIdx.x], sh[threadIdx.x + s]);
		__syncthreads();
	}
	m = sh[0];
	__syncthreads();
	float sum = 0.0f;
	for (int64_t t = threadIdx.x; t < T; t += blockDim.x)
		sum = dsv32_fadd_rn(sum, dsv32_softmax_exp(dsv32_act_load(x, xt, base + t), m));
	sh[threadIdx.x] = sum;
	__syncthreads();
	for (int s = blockDim.x / 2; s > 0; s >>= 1) {
		if ((int)threadIdx.x < s)
			sh[threadIdx.x] = __fadd_rn(sh[threadIdx.x], sh[threadIdx.x + s]);
		__syncthreads();
	}
	float inv = dsv32_fdiv_rn(1.0f, sh[0]);
	for (int64_t t = threadIdx.x; t < T; t += blockDim.x) {
		float e = dsv32_softmax_exp(dsv32_act_load(x, xt, base + t), m);
		dsv32_act_store(y, yt, base + t, dsv32_fmul_rn(e, inv));
	}
}

extern "C" dsv32_status dsv32_softmax_cuda(dsv32_backend *be, void *y, dsv32_dtype yt,
					   const void *x, dsv32_dtype xt, int64_t rows, int64_t T,
					   dsv32_error *err)
{
	if (rows > 2147483647)
		return DSV32_FAIL(err, DSV32_E_UNSUPPORTED, "softmax: %lld rows", (long long)rows);
	softmax_kernel<<<(unsigned)rows, SM_THREADS, 0, DSV32_CUDA_STREAM(be)>>>(y, yt, x, xt, T);
	return DSV32_CUDA_LAUNCHED("softmax", err);
}
