/* rmsnorm.cu: CUDA body of the RMSNorm family (rmsnorm.h): one block per row, a shared-memory
 * fp32 sum of squares (a different summation order than the CPU: not part of the contract),
 * then the per-element math of rmsnorm.h. */
#include <cuda_runtime.h>

#include "kernels/cuda_common.cuh"
extern "C" {
#include "kernels/rmsnorm_impl.h"
}

#define RMS_THREADS 256

__device__ static float load_r(const dsv32_rmsnorm_args &a, int64_t i)
{
	float v = dsv32_act_load(a.x, a.xt, i);
	if (a.mode == DSV32_RMSNORM_REF_ADD)
		v = dsv32_fadd_rn(v, dsv32_act_load(a.res, a.rest, i));
	return v;
}

__global__ static void rmsnorm_kernel(dsv32_rmsnorm_args a)
{
	__shared__ float sh[RMS_THREADS];
	int64_t base = (int64_t)blockIdx.x * a.dim;
	float ss = 0.0f;
	for (int64_t j = threadIdx.x; j < a.dim; j += blockDim.x) {
		float v = load_r(a, base + j);
		ss = dsv32_fadd_rn(ss, dsv32_fmul_rn(v, v));
	}
	ss = dsv32_block_sum_f32(ss, sh);
	float inv = dsv32_rmsnorm_inv(ss, (float)a.dim, a.eps);
	for (int64_t j = threadIdx.x; j < a.dim; j += blockDim.x) {
		float r = load_r(a, base + j), w = dsv32_act_load(a.w, a.wt, j), v;
		if (a.mode == DSV32_RMSNORM_HF)
			v = dsv32_rmsnorm_hf_elem(r, inv, w, a.yt == DSV32_BF16);
		else
			v = dsv32_rmsnorm_ref_elem(r, inv, w, a.planted);
		dsv32_act_store(a.y, a.yt, base + j, v);
		if (a.mode == DSV32_RMSNORM_REF_ADD)
			dsv32_act_store(a.res_out, a.rt, base + j, r);
	}
}

extern "C" dsv32_status dsv32_rmsnorm_cuda(dsv32_backend *be, const dsv32_rmsnorm_args *a,
					   dsv32_error *err)
{
	if (a->rows > 2147483647)
		return DSV32_FAIL(err, DSV32_E_UNSUPPORTED, "rmsnorm: %lld rows", (long long)a->rows);
	rmsnorm_kernel<<<(unsigned)a->rows, RMS_THREADS, 0, DSV32_CUDA_STREAM(be)>>>(*a);
	return DSV32_CUDA_LAUNCHED("rmsnorm", err);
}
