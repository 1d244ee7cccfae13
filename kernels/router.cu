/* router.cu: CUDA bodies of dsv32_router, dsv32_router_weights_at and
 * dsv32_router_scores(_groups): one thread per token runs the router.h row math with its
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

__global__ static void weights_at_kernel(float *w, const int64_t *idx, const float *logits,
					 const float *bias, int64_t T, int E, dsv32_router_params p,
					 float *scratch)
{
	int64_t t = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
	if (t >= T)
		return;
	float *sc = scratch + t * (int64_t)(2 * E);
	dsv32_router_row_probs(sc, sc + E, logits + t * (int64_t)E, bias, E, &p);
	dsv32_router_row_mix(w + t * p.topk, idx + t * p.topk, sc, E, &p); /* bad ids: NaN */
}

__global__ static void scores_kernel(float *scores, float *groups, const float *logits,
				     const float *bias, int64_t T, int E, dsv32_router_params p,
				     float *scratch)
{
	int64_t t = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
	if (t >= T)
		return;
	float *sc = scratch + t * (int64_t)(E + p.n_groups), *b = scores + t * (int64_t)E;
	dsv32_router_row_probs(sc, b, logits + t * (int64_t)E, bias, E, &p);
	dsv32_router_row_group_mask(b, sc + E, E, bias != NULL, &p);
	if (groups && p.n_groups > 1) /* the mask leaves the group scores at sc + E */
		for (int q = 0; q < p.n_groups; q++)
			groups[t * p.n_groups + q] = sc[E + q];
}

/* A float scratch of n per token, freed after the launch is queued. */
static dsv32_status scratch_alloc(cudaStream_t st, float **out, size_t per, int64_t T,
				  const char *op, dsv32_error *err)
{
	cudaError_t ce = cudaMallocAsync((void **)out, per * sizeof(float) * (size_t)T + 8, st);
	if (ce != cudaSuccess)
		return DSV32_FAIL_SYS(err, DSV32_E_CUDA, (int)ce, "%s: scratch of %zu bytes: %s", op,
				      per * sizeof(float) * (size_t)T, cudaGetErrorString(ce));
	return DSV32_OK;
}

static dsv32_status launched(cudaStream_t st, float *scratch, const char *op, dsv32_error *err)
{
	cudaError_t ce = cudaGetLastError();
	cudaFreeAsync(scratch, st);
	if (ce != cudaSuccess)
		return DSV32_FAIL_SYS(err, DSV32_E_CUDA, (int)ce, "%s kernel launch: %s", op,
				      cudaGetErrorString(ce));
	return DSV32_OK;
}

extern "C" dsv32_status dsv32_router_weights_at_cuda(dsv32_backend *be, float *w, const int64_t *idx,
						     const float *logits, const float *bias,
						     int64_t T, int E, const dsv32_router_params *p,
						     dsv32_error *err)
{
	cudaStream_t st = DSV32_CUDA_STREAM(be);
	float *scratch = NULL;
	DSV32_TRY(scratch_alloc(st, &scratch, (size_t)(2 * E), T, "router_weights_at", err));
	unsigned blocks = (unsigned)((T + 127) / 128);
	weights_at_kernel<<<blocks, 128, 0, st>>>(w, idx, logits, bias, T, E, *p, scratch);
	return launched(st, scratch, "router_weights_at", err);
}

extern "C" dsv32_status dsv32_router_scores_cuda(dsv32_backend *be, float *scores, float *groups,
						 const float *logits, const float *bias, int64_t T,
						 int E, const dsv32_router_params *p,
						 dsv32_error *err)
{
	cudaStream_t st = DSV32_CUDA_STREAM(be);
	float *scratch = NULL;
	DSV32_TRY(scratch_alloc(st, &scratch, (size_t)(E + p->n_groups), T, "router_scores", err));
	unsigned blocks = (unsigned)((T + 127) / 128);
	scores_kernel<<<blocks, 128, 0, st>>>(scores, groups, logits, bias, T, E, *p, scratch);
	return launched(st, scratch, "router_scores", err);
}
