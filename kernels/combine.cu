/* combine.cu: CUDA bodies of combine.h: grid-stride loops over independent output elements,
 * the per-element math of combine.h with _rn intrinsics (no FMA contraction). */
#include <cuda_runtime.h>

#include "kernels/cuda_common.cuh"
extern "C" {
#include "kernels/combine_impl.h"
#include "kernels/elementwise.h"
}

#define CB_THREADS 256

__global__ static void mul_bcast_kernel(dsv32_mul_bcast_args a)
{
	for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < a.n;
	     i += (int64_t)gridDim.x * blockDim.x) {
		int64_t r = i, ia = 0, ib = 0;
		for (int k = a.ndim - 1; k >= 0; k--) {
			int64_t c = r % a.shape[k];
			r /= a.shape[k];
			ia += c * a.sa[k];
			ib += c * a.sb[k];
		}
		dsv32_act_store(a.y, a.yt, i,
				__fmul_rn(dsv32_act_load(a.a, a.at, ia), dsv32_act_load(a.b, a.bt, ib)));
	}
}

__global__ static void index_combine_kernel(dsv32_index_combine_args a)
{
	int64_t n = a.n * a.D;
	bool bf = a.yt == DSV32_BF16;
	for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
	     i += (int64_t)gridDim.x * blockDim.x) {
		int64_t r = i / a.D, d = i % a.D, o = a.rows[r] * a.D + d;
		float x = dsv32_act_load(a.x, a.xt, i), w = a.w[r];
		if (a.kind == DSV32_COMBINE_REF) {
			float *y = (float *)a.y;
			y[o] = dsv32_combine_ref_elem(y[o], x, w);
		} else {
			float v = dsv32_act_load(a.y, a.yt, o);
			dsv32_act_store(a.y, a.yt, o, dsv32_combine_hf_eager_elem(v, x, w, bf));
		}
	}
}

__global__ static void slot_combine_kernel(dsv32_slot_combine_args a)
{
	int64_t n = a.T * a.D;
	for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
	     i += (int64_t)gridDim.x * blockDim.x) {
		int64_t t = i / a.D, d = i % a.D;
		float s = 0.0f;
		for (int64_t k = 0; k < a.K; k++) {
			int64_t r = a.src ? a.src[t * a.K + k] : t * a.K + k;
			float p = __fmul_rn(dsv32_act_load(a.x, a.xt, r * a.D + d), a.w[t * a.K + k]);
			s = k ? __fadd_rn(s, p) : p;
		}
		dsv32_act_store(a.out, a.ot, i, s);
	}
}

extern "C" dsv32_status dsv32_mul_bcast_cuda(dsv32_backend *be, const dsv32_mul_bcast_args *a,
					     dsv32_error *err)
{
	mul_bcast_kernel<<<dsv32_cuda_blocks(a->n, CB_THREADS), CB_THREADS, 0,
			   DSV32_CUDA_STREAM(be)>>>(*a);
	return DSV32_CUDA_LAUNCHED("mul_bcast", err);
}

extern "C" dsv32_status dsv32_index_combine_cuda(dsv32_backend *be,
						 const dsv32_index_combine_args *a,
						 dsv32_error *err)
{
	index_combine_kernel<<<dsv32_cuda_blocks(a->n * a->D, CB_THREADS), CB_THREADS, 0,
			       DSV32_CUDA_STREAM(be)>>>(*a);
	return DSV32_CUDA_LAUNCHED(
		a->kind == DSV32_COMBINE_REF ? "moe_combine_ref" : "moe_combine_hf_eager", err);
}

extern "C" dsv32_status dsv32_slot_combine_cuda(dsv32_backend *be,
						const dsv32_slot_combine_args *a, dsv32_error *err)
{
	slot_combine_kernel<<<dsv32_cuda_blocks(a->T * a->D, CB_THREADS), CB_THREADS, 0,
			      DSV32_CUDA_STREAM(be)>>>(*a);
	return DSV32_CUDA_LAUNCHED("moe_combine_hf_grouped", err);
}
