/* ref_ops_tmp.cu: CUDA bodies of ref_ops_tmp.c (TODO: move to kernels/elementwise.cu). */
#include <cuda_runtime.h>

#include "kernels/cuda_ctx.h" /* C++ headers of CUDA: outside extern "C" */
extern "C" {
#include "kernels/elementwise.h"
}

__global__ void ref_tmp_mul_kernel(void *y, dsv32_dtype yt, const void *a, dsv32_dtype at,
				   const void *b, dsv32_dtype bt, int64_t n)
{
	int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
	if (i < n)
		dsv32_act_store(y, yt, i, dsv32_fmul_rn(dsv32_act_load(a, at, i), dsv32_act_load(b, bt, i)));
}

__global__ void ref_tmp_index_add_kernel(float *y, const void *x, dsv32_dtype xt,
					 const int64_t *rows, const float *w, int64_t n, int64_t D)
{
	int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
	if (i >= n * D)
		return;
	int64_t r = i / D, d = i % D;
	float v = dsv32_fmul_rn(dsv32_act_load(x, xt, i), w[r]);
	y[rows[r] * D + d] = dsv32_fadd_rn(y[rows[r] * D + d], v);
}

static dsv32_status launch_check(dsv32_error *err, const char *what)
{
	cudaError_t e = cudaGetLastError();
	if (e != cudaSuccess)
		return DSV32_FAIL_SYS(err, DSV32_E_CUDA, (int)e, "%s: %s", what, cudaGetErrorString(e));
	return DSV32_OK;
}

extern "C" dsv32_status ref_tmp_mul_cuda(dsv32_backend *be, void *y, dsv32_dtype yt, const void *a,
					 dsv32_dtype at, const void *b, dsv32_dtype bt, int64_t n,
					 dsv32_error *err)
{
	if (n <= 0)
		return DSV32_OK;
	ref_tmp_mul_kernel<<<(unsigned)((n + 255) / 256), 256, 0, DSV32_CUDA_STREAM(be)>>>(y, yt, a, at,
										       b, bt, n);
	return launch_check(err, "ref_tmp_mul");
}

extern "C" dsv32_status ref_tmp_index_add_scaled_cuda(dsv32_backend *be, float *y, const void *x,
						      dsv32_dtype xt, const int64_t *rows,
						      const float *w, int64_t n, int64_t D,
						      dsv32_error *err)
{
	if (n <= 0 || D <= 0)
		return DSV32_OK;
	int64_t N = n * D;
	ref_tmp_index_add_kernel<<<(unsigned)((N + 255) / 256), 256, 0, DSV32_CUDA_STREAM(be)>>>(
		y, x, xt, rows, w, n, D);
	return launch_check(err, "ref_tmp_index_add_scaled");
}
