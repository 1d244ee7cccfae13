/* fp8.cu: CUDA bodies of the fp8 family (fp8.h): act_quant / round trip with one warp per
 * 128-block, weight_dequant element-wise, and a tiled fp8 GEMM with the spec's block structure
 * (fp32 in-block sums, scale, fp32 accumulation over K blocks in order, one final rounding). */
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "kernels/cuda_common.cuh" /* C++ headers of CUDA: outside extern "C" */
extern "C" {
#include "kernels/fp8_impl.h"
}

#define BLK DSV32_FP8_BLOCK

/* ---- CUDA kernels ---- */

__device__ static inline float load_act(const void *x, int bf16, long long i)
{
	return bf16 ? dsv32_bf16_to_f32(((const uint16_t *)x)[i]) : ((const float *)x)[i];
}

/* One warp per 128-block. mode 0: write codes y8 and scales s; mode 1: write the dequantized
 * round trip into y (dtype yt_bf16 ? bf16 : f32). Each lane holds 4 values. */
__global__ void quant_kernel(dsv32_f8 *y8, float *s, void *y, int y_bf16, const void *x,
			     int x_bf16, long long nblk, int ue8m0, int mode)
{
	long long b = (blockIdx.x * (long long)blockDim.x + threadIdx.x) / 32;
	int lane = threadIdx.x & 31;
	if (b >= nblk)
		return;
	float v[4], amax = 0.0f;
	for (int i = 0; i < 4; i++) {
		v[i] = load_act(x, x_bf16, b * BLK + i * 32 + lane);
		float a = fabsf(v[i]);
		amax = a > amax ? a : amax; /* NaN never wins */
	}
	for (int off = 16; off > 0; off >>= 1) {
		float o = __shfl_xor_sync(0xffffffffu, amax, off);
		amax = o > amax ? o : amax;
	}
	float sc = dsv32_fp8_scale_elem(amax, ue8m0 != 0);
	for (int i = 0; i < 4; i++) {
		long long j = b * BLK + i * 32 + lane;
		dsv32_f8 q = dsv32_fp8_quant_elem(v[i], sc);
		if (mode == 0) {
			y8[j] = q;
		} else {
			float r = __fmul_rn(dsv32_e4m3_to_f32(q), sc);
			if (y_bf16)
				((uint16_t *)y)[j] = dsv32_f32_to_bf16(r);
			else
				((float *)y)[j] = r;
		}
	}
	if (mode == 0 && lane == 0)
		s[b] = sc;
}

__global__ void dequant_kernel(void *w, int w_bf16, const dsv32_f8 *w8, const float *scale,
			       long long N, long long K)
{
	long long sk = (K + BLK - 1) / BLK;
	for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < N * K;
	     i += (long long)gridDim.x * blockDim.x) {
		long long n = i / K, k = i % K;
		float r = __fmul_rn(dsv32_e4m3_to_f32(w8[i]), scale[(n / BLK) * sk + k / BLK]);
		if (w_bf16)
			((uint16_t *)w)[i] = dsv32_f32_to_bf16(r);
		else
			((float *)w)[i] = r;
	}
}

#define TM 32
#define TN 32
/* 256 threads as 16 x 16; each thread owns 2 rows x 2 columns of a 32 x 32 output tile. */
__global__ void fp8_gemm_kernel(void *y, int y_bf16, const dsv32_f8 *x8, const float *xs,
				const dsv32_f8 *w8, const float *ws, long long M, long long N,
				long long K)
{
	__shared__ float As[TM][BLK + 1];
	__shared__ float Bs[TN][BLK + 1];
	long long m0 = (long long)blockIdx.y * TM, n0 = (long long)blockIdx.x * TN;
	int tr = threadIdx.x / 16, tc = threadIdx.x % 16;
	long long nkb = (K + BLK - 1) / BLK;
	float acc[2][2] = {{0.0f, 0.0f}, {0.0f, 0.0f}};
	for (long long kb = 0; kb < nkb; kb++) {
		long long k0 = kb * BLK;
		int kw = (int)(K - k0 < BLK ? K - k0 : BLK);
		for (int i = threadIdx.x; i < TM * BLK; i += blockDim.x) {
			int r = i / BLK, k = i % BLK;
			long long m = m0 + r;
			As[r][k] = (m < M && k < kw) ? dsv32_e4m3_to_f32(x8[m * K + k0 + k]) : 0.0f;
		}
		for (int i = threadIdx.x; i < TN * BLK; i += blockDim.x) {
			int r = i / BLK, k = i % BLK;
			long long n = n0 + r;
			Bs[r][k] = (n < N && k < kw) ? dsv32_e4m3_to_f32(w8[n * K + k0 + k]) : 0.0f;
		}
		__syncthreads();
		for (int a = 0; a < 2; a++) {
			long long m = m0 + tr + 16 * a;
			for (int bcol = 0; bcol < 2; bcol++) {
				long long n = n0 + tc + 16 * bcol;
				float p = 0.0f; /* products of e4m3 values are exact in fp32 */
				for (int k = 0; k < kw; k++)
					p = fmaf(As[tr + 16 * a][k], Bs[tc + 16 * bcol][k], p);
				if (m < M && n < N) {
					float sc = __fmul_rn(xs[m * nkb + kb], ws[(n / BLK) * nkb + kb]);
					acc[a][bcol] = __fadd_rn(acc[a][bcol], __fmul_rn(p, sc));
				}
			}
		}
		__syncthreads();
	}
	for (int a = 0; a < 2; a++)
		for (int bcol = 0; bcol < 2; bcol++) {
			long long m = m0 + tr + 16 * a, n = n0 + tc + 16 * bcol;
			if (m >= M || n >= N)
				continue;
			if (y_bf16)
				((uint16_t *)y)[m * N + n] = dsv32_f32_to_bf16(acc[a][bcol]);
			else
				((float *)y)[m * N + n] = acc[a][bcol];
		}
}

/* ---- launchers ---- */

static int grid_for(long long threads)
{
	long long g = (threads + 255) / 256;
	return (int)(g < 1 ? 1 : (g > 2147483647LL ? 2147483647LL : g));
}

extern "C" dsv32_status dsv32_act_quant_cuda(dsv32_backend *be, dsv32_f8 *y8, float *s,
					     const void *x, dsv32_dtype xt, int64_t rows, int64_t K,
					     bool ue8m0, dsv32_error *err)
{
	long long nblk = (long long)rows * (K / BLK);
	quant_kernel<<<grid_for(nblk * 32), 256, 0, DSV32_CUDA_STREAM(be)>>>(
		y8, s, NULL, 0, x, xt == DSV32_BF16, nblk, ue8m0, 0);
	return DSV32_CUDA_LAST_ERROR("act_quant kernel", err);
}

extern "C" dsv32_status dsv32_fp8_roundtrip_cuda(dsv32_backend *be, void *y, dsv32_dtype yt,
						 const void *x, dsv32_dtype xt, int64_t rows,
						 int64_t K, bool ue8m0, dsv32_error *err)
{
	long long nblk = (long long)rows * (K / BLK);
	quant_kernel<<<grid_for(nblk * 32), 256, 0, DSV32_CUDA_STREAM(be)>>>(
		NULL, NULL, y, yt == DSV32_BF16, x, xt == DSV32_BF16, nblk, ue8m0, 1);
	return DSV32_CUDA_LAST_ERROR("fp8_roundtrip kernel", err);
}

extern "C" dsv32_status dsv32_weight_dequant_cuda(dsv32_backend *be, void *w, dsv32_dtype wt,
						  const dsv32_f8 *w8, const float *scale,
						  int64_t N, int64_t K, dsv32_error *err)
{
	long long n = (long long)N * K;
	int g = grid_for(n);
	dequant_kernel<<<g > 65535 ? 65535 : g, 256, 0, DSV32_CUDA_STREAM(be)>>>(
		w, wt == DSV32_BF16, w8, scale, N, K);
	return DSV32_CUDA_LAST_ERROR("weight_dequant kernel", err);
}

extern "C" dsv32_status dsv32_fp8_gemm_cuda(dsv32_backend *be, void *y, dsv32_dtype yt,
					    const dsv32_f8 *x8, const float *xs,
					    const dsv32_f8 *w8, const float *ws, int64_t M,
					    int64_t N, int64_t K, dsv32_error *err)
{
	long long gy = (M + TM - 1) / TM, gx = (N + TN - 1) / TN;
	if (gy > 65535 || gx > 2147483647LL)
		return DSV32_FAIL(err, DSV32_E_UNSUPPORTED, "fp8_gemm (cuda): M %lld too large",
				  (long long)M);
	dim3 grid((unsigned)gx, (unsigned)gy);
	fp8_gemm_kernel<<<grid, 256, 0, DSV32_CUDA_STREAM(be)>>>(y, yt == DSV32_BF16, x8, xs, w8,
								  ws, M, N, K);
	return DSV32_CUDA_LAST_ERROR("fp8_gemm kernel", err);
}
