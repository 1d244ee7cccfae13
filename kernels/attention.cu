/* attention.cu: CUDA bodies of the attention cores and mask builders (attention.h). Simple
 * kernels running the shared per-element math of attention_impl.h; scores, probabilities and
 * intermediates live in a temporary fp32 buffer (cudaMallocAsync on the backend's stream).
 * The softmax of a row runs in one thread in the CPU's order (sums in the same order); the
 * bodies differ only through expf (glibc vs CUDA). Correctness over speed. */
#include <cublas_v2.h>
#include <cuda_runtime.h>

extern "C" {
#include "kernels/attention_impl.h"
#include "kernels/cuda_common.cuh"
}

#define ATT_THREADS 128

/* At least one block: a launch with 0 blocks is an error (T == 0 in prefill, C == 0 in
 * decode reach here); every kernel checks its element range. */
static unsigned blocks_for(int64_t n)
{
	int64_t b = (n + ATT_THREADS - 1) / ATT_THREADS;
	return (unsigned)(b < 1 ? 1 : b);
}

/* ---- prefill ---- */
__global__ static void prefill_scores(dsv32_attn_prefill_args a, float *ws)
{
	int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
	if (e >= a.B * a.S * a.H * a.T)
		return;
	int64_t row = e / a.T, t = e % a.T;
	int64_t h = row % a.H, bs = row / a.H, s = bs % a.S, b = bs / a.S;
	ws[row * a.T + t] = dsv32_attn_prefill_score(&a, b, s, h, t);
}

__global__ static void softmax_rows(float *ws, int64_t rows, int64_t n, bool r)
{
	int64_t row = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
	if (row < rows)
		dsv32_attn_softmax_row(ws + row * n, n, r);
}

__global__ static void prefill_pv(dsv32_attn_prefill_args a, const float *ws)
{
	int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
	if (e >= a.B * a.S * a.H * a.Dv)
		return;
	int64_t row = e / a.Dv, d = e % a.Dv;
	int64_t h = row % a.H, bs = row / a.H, b = bs / a.S;
	const float *p = ws + row * a.T;
	float acc = 0.0f;
	for (int64_t t = 0; t < a.T; t++)
		acc = dsv32_fadd_rn(acc, dsv32_fmul_rn(p[t], dsv32_attn_ld(a.v, a.v_t,
						dsv32_attn_kv_row(&a, b, t, h) * a.Dv + d)));
	dsv32_attn_st(a.o, a.o_t, row * a.Dv + d, acc);
}

static dsv32_status ws_alloc(float **p, size_t n, cudaStream_t st, dsv32_error *err)
{
	cudaError_t ce = cudaMallocAsync((void **)p, (n ? n : 1) * sizeof(float), st);
	if (ce != cudaSuccess)
		return DSV32_FAIL_SYS(err, DSV32_E_CUDA, (int)ce, "attention workspace of %zu floats: %s",
				      n, cudaGetErrorString(ce));
	return DSV32_OK;
}

extern "C" dsv32_status dsv32_attn_prefill_cuda(dsv32_backend *be, const dsv32_attn_prefill_args *a,
						dsv32_error *err)
{
	cudaStream_t st = DSV32_CUDA_STREAM(be);
	const int64_t rows = a->B * a->S * a->H;
	float *ws;
	DSV32_TRY(ws_alloc(&ws, (size_t)(rows * a->T), st, err));
	prefill_scores<<<blocks_for(rows * a->T), ATT_THREADS, 0, st>>>(*a, ws);
	softmax_rows<<<blocks_for(rows), ATT_THREADS, 0, st>>>(ws, rows, a->T, a->o_t == DSV32_BF16);
	prefill_pv<<<blocks_for(rows * a->Dv), ATT_THREADS, 0, st>>>(*a, ws);
	dsv32_status rc = DSV32_CUDA_LAST_ERROR("attn_prefill kernels", err);
	cudaFreeAsync(ws, st);
	return rc;
}

/* ---- decode (absorbed) ---- */
__global__ static void dec_qa(dsv32_attn_decode_args a, float *qa)
{
	int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x, row = e / a.C, c = e % a.C;
	if (e < a.B * a.H * a.C)
		qa[row * a.C + c] = dsv32_attn_dec_qa(&a, row / a.H, row % a.H, c);
}

__global__ static void dec_scores(dsv32_attn_decode_args a, const float *qa, float *p)
{
	int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x, row = e / a.T, t = e % a.T;
	if (e < a.B * a.H * a.T)
		p[row * a.T + t] = dsv32_attn_dec_score(&a, qa + row * a.C, row / a.H, row % a.H, t);
}

__global__ static void dec_ol(dsv32_attn_decode_args a, const float *p, float *ol)
{
	int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x, row = e / a.C, c = e % a.C;
	if (e < a.B * a.H * a.C)
		ol[row * a.C + c] = dsv32_attn_dec_ol(&a, p + row * a.T, row / a.H, c);
}

__global__ static void dec_out(dsv32_attn_decode_args a, const float *ol)
{
	int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x, row = e / a.Dv, d = e % a.Dv;
	if (e < a.B * a.H * a.Dv)
		dsv32_attn_st(a.o, a.o_t, row * a.Dv + d, dsv32_attn_dec_out(&a, ol + row * a.C, row % a.H, d));
}

extern "C" dsv32_status dsv32_attn_decode_cuda(dsv32_backend *be, const dsv32_attn_decode_args *a,
					       dsv32_error *err)
{
	cudaStream_t st = DSV32_CUDA_STREAM(be);
	const int64_t rows = a->B * a->H;
	float *ws;
	DSV32_TRY(ws_alloc(&ws, (size_t)(rows * (2 * a->C + a->T)), st, err));
	float *qa = ws, *ol = ws + rows * a->C, *p = ol + rows * a->C;
	dec_qa<<<blocks_for(rows * a->C), ATT_THREADS, 0, st>>>(*a, qa);
	dec_scores<<<blocks_for(rows * a->T), ATT_THREADS, 0, st>>>(*a, qa, p);
	softmax_rows<<<blocks_for(rows), ATT_THREADS, 0, st>>>(p, rows, a->T, a->o_t == DSV32_BF16);
	dec_ol<<<blocks_for(rows * a->C), ATT_THREADS, 0, st>>>(*a, p, ol);
	dec_out<<<blocks_for(rows * a->Dv), ATT_THREADS, 0, st>>>(*a, ol);
	dsv32_status rc = DSV32_CUDA_LAST_ERROR("attn_decode kernels", err);
	cudaFreeAsync(ws, st);
	return rc;
}

/* ---- masks ---- */
__global__ static void mask_fill(dsv32_attn_mask_args a)
{
	int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
	if (e >= a.B * a.S * a.T)
		return;
	int64_t t = e % a.T, bs = e / a.T, s = bs % a.S, b = bs / a.S;
	float v = dsv32_attn_mask_off(&a);
	if (!a.idx && dsv32_attn_mask_visible(&a, b, s, t))
		v = 0.0f;
	dsv32_attn_st(a.mask, a.mask_t, e, v);
}

__global__ static void mask_scatter(dsv32_attn_mask_args a)
{
	int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
	if (e >= a.B * a.S * a.K)
		return;
	int64_t row = e / a.K, b = row / a.S, s = row % a.S;
	int64_t t = dsv32_attn_idx_at(&a, e);
	if (t >= 0 && t < a.T && dsv32_attn_mask_visible(&a, b, s, t))
		dsv32_attn_st(a.mask, a.mask_t, row * a.T + t, 0.0f);
}

extern "C" dsv32_status dsv32_attn_mask_cuda(dsv32_backend *be, const dsv32_attn_mask_args *a,
					     dsv32_error *err)
{
	cudaStream_t st = DSV32_CUDA_STREAM(be);
	mask_fill<<<blocks_for(a->B * a->S * a->T), ATT_THREADS, 0, st>>>(*a);
	if (a->idx && a->K > 0)
		mask_scatter<<<blocks_for(a->B * a->S * a->K), ATT_THREADS, 0, st>>>(*a);
	return DSV32_CUDA_LAST_ERROR("attention mask kernels", err);
}
