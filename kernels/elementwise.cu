/* elementwise.cu: CUDA bodies of casts, adds, scale, embedding and column copies
 * (elementwise.h); grid-stride loops over elements, the per-element math of elementwise.h. */
#include <cuda_runtime.h>

#include "kernels/cuda_common.cuh"
extern "C" {
#include "kernels/elementwise_impl.h"
}

#define EW_THREADS 256

__device__ static float load_any(const void *p, dsv32_dtype t, int64_t i)
{
	switch (t) {
	case DSV32_F32: return ((const float *)p)[i];
	case DSV32_BF16: return dsv32_bf16_to_f32(((const dsv32_bf16 *)p)[i]);
	case DSV32_F16: return dsv32_f16_to_f32(((const dsv32_f16 *)p)[i]);
	case DSV32_F8_E4M3: return dsv32_e4m3_to_f32(((const dsv32_f8 *)p)[i]);
	default: return dsv32_e5m2_to_f32(((const dsv32_f8 *)p)[i]);
	}
}

__device__ static void store_any(void *p, dsv32_dtype t, int64_t i, float v)
{
	switch (t) {
	case DSV32_F32: ((float *)p)[i] = v; break;
	case DSV32_BF16: ((dsv32_bf16 *)p)[i] = dsv32_f32_to_bf16(v); break;
	case DSV32_F16: ((dsv32_f16 *)p)[i] = dsv32_f32_to_f16(v); break;
	case DSV32_F8_E4M3: ((dsv32_f8 *)p)[i] = dsv32_f32_to_e4m3(v); break;
	default: ((dsv32_f8 *)p)[i] = dsv32_f32_to_e5m2(v); break;
	}
}

__global__ static void cast_kernel(dsv32_ew_args a)
{
	for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < a.n;
	     i += (int64_t)gridDim.x * blockDim.x)
		store_any(a.y, a.yt, i, load_any(a.a, a.at, i));
}

__global__ static void add_kernel(dsv32_ew_args a)
{
	int64_t span = a.mid * a.inner;
	for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < a.n;
	     i += (int64_t)gridDim.x * blockDim.x) {
		int64_t o = i / span, k = i % a.inner;
		int64_t j = (o % a.b_outer) * a.inner + k;
		float v = dsv32_fadd_rn(dsv32_act_load(a.a, a.at, i), dsv32_act_load(a.b, a.bt, j));
		dsv32_act_store(a.y, a.yt, i, v);
	}
}

__global__ static void scale_kernel(dsv32_ew_args a)
{
	for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < a.n;
	     i += (int64_t)gridDim.x * blockDim.x)
		dsv32_act_store(a.y, a.yt, i, dsv32_fmul_rn(dsv32_act_load(a.a, a.at, i), a.c));
}

__global__ static void copy_cols_kernel(dsv32_copy_cols_args a)
{
	int64_t n = a.rows * a.n;
	for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
	     i += (int64_t)gridDim.x * blockDim.x) {
		int64_t r = i / a.n, j = i % a.n;
		dsv32_act_store(a.y, a.yt, r * a.dy + a.y_off + j,
				dsv32_act_load(a.x, a.xt, r * a.dx + a.x_off + j));
	}
}

__global__ static void embedding_kernel(void *y, dsv32_dtype yt, const void *table,
					dsv32_dtype tt, const int64_t *ids, int64_t N, int64_t D)
{
	int64_t n = N * D;
	for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
	     i += (int64_t)gridDim.x * blockDim.x) {
		int64_t r = i / D, j = i % D;
		dsv32_act_store(y, yt, i, dsv32_act_load(table, tt, ids[r] * D + j));
	}
}

extern "C" dsv32_status dsv32_cast_cuda(dsv32_backend *be, const dsv32_ew_args *a,
					dsv32_error *err)
{
	if (a->n == 0)
		return DSV32_OK;
	cast_kernel<<<dsv32_cuda_blocks(a->n, EW_THREADS), EW_THREADS, 0,
		      DSV32_CUDA_STREAM(be)>>>(*a);
	return DSV32_CUDA_LAUNCHED("cast", err);
}

extern "C" dsv32_status dsv32_add_cuda(dsv32_backend *be, const dsv32_ew_args *a,
				       dsv32_error *err)
{
	add_kernel<<<dsv32_cuda_blocks(a->n, EW_THREADS), EW_THREADS, 0,
		     DSV32_CUDA_STREAM(be)>>>(*a);
	return DSV32_CUDA_LAUNCHED("add", err);
}

extern "C" dsv32_status dsv32_scale_cuda(dsv32_backend *be, const dsv32_ew_args *a,
					 dsv32_error *err)
{
	scale_kernel<<<dsv32_cuda_blocks(a->n, EW_THREADS), EW_THREADS, 0,
		       DSV32_CUDA_STREAM(be)>>>(*a);
	return DSV32_CUDA_LAUNCHED("scale", err);
}

extern "C" dsv32_status dsv32_copy_cols_cuda(dsv32_backend *be, const dsv32_copy_cols_args *a,
					     dsv32_error *err)
{
	copy_cols_kernel<<<dsv32_cuda_blocks(a->rows * a->n, EW_THREADS), EW_THREADS, 0,
			   DSV32_CUDA_STREAM(be)>>>(*a);
	return DSV32_CUDA_LAUNCHED("copy_cols", err);
}

extern "C" dsv32_status dsv32_embedding_cuda(dsv32_backend *be, void *y, dsv32_dtype yt,
					     const void *table, dsv32_dtype tt, const int64_t *ids,
					     int64_t N, int64_t D, dsv32_error *err)
{
	embedding_kernel<<<dsv32_cuda_blocks(N * D, EW_THREADS), EW_THREADS, 0,
			   DSV32_CUDA_STREAM(be)>>>(y, yt, table, tt, ids, N, D);
	return DSV32_CUDA_LAUNCHED("embedding", err);
}
