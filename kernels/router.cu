/* router.cu: CUDA body of dsv32_router: one thread per token runs dsv32_router_row with its
 * scratch in global memory (a temporary buffer). Correctness over speed. */
#include <cublas_v2.h>
#include <cuda_runtime.h>

extern "C" {
#include "kernels/cuda_ctx.h"
#include "kernels/router_impl.h"
}

__global__ static void router_kernel(float *w, void *idx, dsv32_dtype idx_t, const float *logits,
				     const float *bias, int64_t T, int E, dsv32_router_params p,
				     float *scratch, int64_t *ib)
{
	int64_t t = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
	if (t >= T)
		return;
	const int k = p.topk;
	float *sc = scratch + t * (int64_t)(2 * E + p.n_groups);
	int64_t *ix = ib + t * k;
	dsv32_router_row(w + t * k, ix, logits + t * (int64_t)E, bias, E, &p, sc);
	for (int j = 0; j < k; j++) {
		if (idx_t == DSV32_I64)
			((int64_t *)idx)[t * k + j] = ix[j];
		else
			((int32_t *)idx)[t * k + j] = (int32_t)ix[j];
	}
}

extern "C" dsv32_status dsv32_router_cuda(dsv32_backend *be, float *w, void *idx, dsv32_dtype idx_t,
					  const float *logits, const float *bias, int64_t T, int E,
					  const dsv32_router_params *p, dsv32_error *err)
{
	cudaStream_t st = DSV32_CUDA_STREAM(be);
	size_t per = (size_t)(2 * E + p->n_groups) * sizeof(float) + (size_t)p->topk * sizeof(int64_t);
	void *tmp = NULL;
	cudaError_t ce = cudaMallocAsync(&tmp, per * (size_t)T + 8, st);
	if (ce != cudaSuccess)
		return DSV32_FAIL_SYS(err, DSV32_E_CUDA, (int)ce, "router: scratch of %zu bytes: %s",
				      per * (size_t)T, cudaGetErrorString(ce));
	float *scratch = (float *)tmp;
	int64_t *ib = (int64_t *)((char *)tmp + (size_t)(2 * E + p->n_groups) * sizeof(float) * (size_t)T);
	/* keep ib 8-byte aligned */
	size_t off = (size_t)((char *)ib - (char *)tmp);
	if (off % 8)
		ib = (int64_t *)((char *)ib + (8 - off % 8));
	unsigned blocks = (unsigned)((T + 127) / 128);
	router_kernel<<<blocks, 128, 0, st>>>(w, idx, idx_t, logits, bias, T, E, *p, scratch, ib);
	ce = cudaGetLastError();
	cudaFreeAsync(tmp, st);
	if (ce != cudaSuccess)
		return DSV32_FAIL_SYS(err, DSV32_E_CUDA, (int)ce, "router kernel launch: %s",
				      cudaGetErrorString(ce));
	return DSV32_OK;
}
