/* gemm.cu: CUDA body of the GEMM family (gemm.h): cuBLAS strided-batched GEMMs with fp32
 * compute; bf16 x bf16 natively (CUDA_R_16BF in, CUBLAS_COMPUTE_32F), everything else as an
 * fp32 GEMM with CUBLAS_COMPUTE_32F_PEDANTIC (never TF32) on f32 operands, bf16 operands
 * widened exactly on the device, a BF16 y rounded once from an f32 temporary. */
#include <climits>
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "kernels/cuda_ctx.h" /* C++ headers of CUDA: outside extern "C" */
extern "C" {
#include "kernels/gemm_impl.h"
}

/* ---- CUDA kernels ---- */

/* dst[b][r][c] (contiguous) = f32(src[b*stride + r*ld + c]) */
__global__ void widen_kernel(float *dst, const void *src, int bf16, long long batch,
			     long long rows, long long cols, long long ld, long long stride)
{
	long long total = batch * rows * cols;
	for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total;
	     i += (long long)gridDim.x * blockDim.x) {
		long long c = i % cols, r = (i / cols) % rows, b = i / (cols * rows);
		long long j = b * stride + r * ld + c;
		dst[i] = bf16 ? dsv32_bf16_to_f32(((const uint16_t *)src)[j]) : ((const float *)src)[j];
	}
}

/* y[b*stride + m*ldy + n] = bf16(src[b][m][n]) */
__global__ void round_kernel(uint16_t *y, const float *src, long long batch, long long M,
			     long long N, long long ldy, long long stride)
{
	long long total = batch * M * N;
	for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total;
	     i += (long long)gridDim.x * blockDim.x) {
		long long n = i % N, m = (i / N) % M, b = i / (N * M);
		y[b * stride + m * ldy + n] = dsv32_f32_to_bf16(src[i]);
	}
}

/* y[b*stride + m*ldy + n] = +0 (K == 0: the empty sum; cuBLAS rejects lda/ldb of 0) */
__global__ void zero_kernel(void *y, int bf16, long long batch, long long M, long long N,
			    long long ldy, long long stride)
{
	long long total = batch * M * N;
	for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total;
	     i += (long long)gridDim.x * blockDim.x) {
		long long n = i % N, m = (i / N) % M, b = i / (N * M);
		long long j = b * stride + m * ldy + n;
		if (bf16)
			((uint16_t *)y)[j] = 0;
		else
			((float *)y)[j] = 0.0f;
	}
}

/* ---- launchers ---- */

static int grid_for(long long n)
{
	long long g = (n + 255) / 256;
	return (int)(g < 1 ? 1 : (g > 65535 ? 65535 : g));
}

static dsv32_status cuda_check(cudaError_t ce, const char *what, dsv32_error *err)
{
	if (ce != cudaSuccess)
		return DSV32_FAIL_SYS(err, DSV32_E_CUDA, (int)ce, "gemm: %s: %s", what,
				      cudaGetErrorString(ce));
	return DSV32_OK;
}

/* Widen one operand into a fresh contiguous f32 buffer; *out = NULL when it is already F32. */
static dsv32_status widen_operand(cudaStream_t st, float **out, const void *src, dsv32_dtype t,
				  long long batch, long long rows, long long cols, long long ld,
				  long long stride, dsv32_error *err)
{
	*out = NULL;
	if (t == DSV32_F32)
		return DSV32_OK;
	long long n = batch * rows * cols;
	DSV32_TRY(cuda_check(cudaMallocAsync((void **)out, (size_t)(n ? n : 1) * sizeof(float), st),
			     "cudaMallocAsync", err));
	widen_kernel<<<grid_for(n), 256, 0, st>>>(*out, src, 1, batch, rows, cols, ld, stride);
	return cuda_check(cudaGetLastError(), "widen kernel", err);
}

extern "C" dsv32_status dsv32_gemm_cuda(dsv32_backend *be, const dsv32_gemm_desc *d,
					dsv32_error *err)
{
	dsv32_cuda_ctx *c = (dsv32_cuda_ctx *)be->cuda;
	cudaStream_t st = c->stream;
	if (d->M > INT_MAX || d->N > INT_MAX || d->K > INT_MAX || d->batch > INT_MAX ||
	    d->ldx > INT_MAX || d->ldw > INT_MAX || d->ldy > INT_MAX)
		return DSV32_FAIL(err, DSV32_E_UNSUPPORTED, "gemm (cuda): sizes above INT_MAX");
	int M = (int)d->M, N = (int)d->N, K = (int)d->K, B = (int)d->batch;
	if (K == 0) { /* y = 0, as the CPU body; cuBLAS would reject the leading dims of 0 */
		long long n = (long long)B * M * N;
		zero_kernel<<<grid_for(n), 256, 0, st>>>(d->y, d->y_dtype == DSV32_BF16, B, M, N,
							 d->ldy, d->stride_y);
		return cuda_check(cudaGetLastError(), "zero kernel", err);
	}
	cublasOperation_t opw = d->trans_w ? CUBLAS_OP_T : CUBLAS_OP_N;
	float one = 1.0f, zero = 0.0f;
	cublasStatus_t bs;
	/* Row-major y = x·op(w) is column-major y^T = op(w)^T · x^T: A = w, B = x. */
	if (d->x_dtype == DSV32_BF16 && d->w_dtype == DSV32_BF16) {
		cudaDataType_t yt = d->y_dtype == DSV32_F32 ? CUDA_R_32F : CUDA_R_16BF;
		bs = c->blas.gemm_strided_batched_ex(c->cublas, opw, CUBLAS_OP_N, N, M, K, &one, d->w,
						CUDA_R_16BF, (int)d->ldw, d->stride_w, d->x,
						CUDA_R_16BF, (int)d->ldx, d->stride_x, &zero, d->y,
						yt, (int)d->ldy, d->stride_y, B, CUBLAS_COMPUTE_32F,
						CUBLAS_GEMM_DEFAULT);
		if (bs != CUBLAS_STATUS_SUCCESS)
			return DSV32_FAIL_SYS(err, DSV32_E_CUDA, (int)bs,
					      "cublasGemmStridedBatchedEx bf16 M %d N %d K %d: %d",
					      M, N, K, (int)bs);
		return DSV32_OK;
	}
	/* fp32 GEMM on f32 operands */
	float *xf = NULL, *wf = NULL, *yf = NULL;
	long long wrows = d->trans_w ? d->N : d->K, wcols = d->trans_w ? d->K : d->N;
	dsv32_status rc = widen_operand(st, &xf, d->x, d->x_dtype, B, M, K, d->ldx, d->stride_x,
					err);
	if (rc == DSV32_OK)
		rc = widen_operand(st, &wf, d->w, d->w_dtype, B, wrows, wcols, d->ldw, d->stride_w,
				   err);
	bool y_f32 = d->y_dtype == DSV32_F32;
	if (rc == DSV32_OK && !y_f32)
		rc = cuda_check(cudaMallocAsync((void **)&yf, (size_t)B * M * N * sizeof(float), st),
				"cudaMallocAsync", err);
	if (rc == DSV32_OK) {
		bs = c->blas.gemm_strided_batched_ex(
			c->cublas, opw, CUBLAS_OP_N, N, M, K, &one, wf ? wf : d->w, CUDA_R_32F,
			wf ? (int)wcols : (int)d->ldw, wf ? wrows * wcols : d->stride_w,
			xf ? xf : d->x, CUDA_R_32F, xf ? K : (int)d->ldx,
			xf ? (long long)M * K : d->stride_x, &zero, y_f32 ? d->y : (void *)yf,
			CUDA_R_32F, y_f32 ? (int)d->ldy : N, y_f32 ? d->stride_y : (long long)M * N,
			B, CUBLAS_COMPUTE_32F_PEDANTIC, CUBLAS_GEMM_DEFAULT);
		if (bs != CUBLAS_STATUS_SUCCESS)
			rc = DSV32_FAIL_SYS(err, DSV32_E_CUDA, (int)bs,
					    "cublasGemmStridedBatchedEx f32 M %d N %d K %d: %d", M,
					    N, K, (int)bs);
	}
	if (rc == DSV32_OK && !y_f32) {
		long long n = (long long)B * M * N;
		round_kernel<<<grid_for(n), 256, 0, st>>>((uint16_t *)d->y, yf, B, M, N, d->ldy,
							  d->stride_y);
		rc = cuda_check(cudaGetLastError(), "round kernel", err);
	}
	if (xf)
		cudaFreeAsync(xf, st);
	if (wf)
		cudaFreeAsync(wf, st);
	if (yf)
		cudaFreeAsync(yf, st);
	return rc;
}
