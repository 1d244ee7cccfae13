/* topk.cu: CUDA body of dsv32_topk: one block per row; radix select of the k-th key in shared
 * memory, collection (ties in increasing index order), rank placement (topk.h). */
#include <cub/block/block_scan.cuh>
#include <cublas_v2.h>
#include <cuda_runtime.h>

extern "C" {
#include "kernels/cuda_common.cuh"
#include "kernels/topk_impl.h"
}

#define TOPK_THREADS 256
#define TOPK_CUDA_MAX_K 4096

__device__ static float topk_load(const void *x, dsv32_dtype t, int64_t i)
{
	return t == DSV32_BF16 ? dsv32_bf16_to_f32(((const dsv32_bf16 *)x)[i]) : ((const float *)x)[i];
}

__global__ static void topk_kernel(void *idx, dsv32_dtype idx_t, void *val, dsv32_dtype val_t,
				   const void *x, dsv32_dtype x_t, const int64_t *lens, int64_t n,
				   int64_t k)
{
	typedef cub::BlockScan<int, TOPK_THREADS> Scan;
	__shared__ typename Scan::TempStorage scan_tmp;
	__shared__ int hist[256];
	__shared__ uint32_t s_prefix;
	__shared__ int s_remaining, s_gt, s_eq_base;
	extern __shared__ unsigned char smem[];
	uint32_t *ckey = (uint32_t *)smem;
	int *cidx = (int *)(ckey + k);

	const int64_t r = blockIdx.x;
	const int64_t base = r * n;
	int64_t L = lens ? lens[r] : n;
	L = L < 0 ? 0 : (L > n ? n : L);
	const int kk = (int)(k < L ? k : L);
	const int tid = threadIdx.x;

	if (tid == 0) {
		s_prefix = 0;
		s_remaining = kk;
		s_gt = 0;
		s_eq_base = 0;
	}
	__syncthreads();
	uint32_t mask = 0;
	for (int shift = 24; shift >= 0 && kk > 0; shift -= 8) {
		hist[tid] = 0; /* TOPK_THREADS == 256 */
		__syncthreads();
		uint32_t prefix = s_prefix;
		for (int64_t i = tid; i < L; i += TOPK_THREADS) {
			uint32_t key = dsv32_topk_key(topk_load(x, x_t, base + i));
			if ((key & mask) == prefix)
				atomicAdd(&hist[(key >> shift) & 255u], 1);
		}
		__syncthreads();
		if (tid == 0) {
			int rem = s_remaining, bsel = 0;
			for (int b = 255; b >= 0; b--) {
				if (hist[b] >= rem) {
					bsel = b;
					break;
				}
				rem -= hist[b];
			}
			s_remaining = rem;
			s_prefix = prefix | ((uint32_t)bsel << shift);
		}
		mask |= 255u << shift;
		__syncthreads();
	}
	const uint32_t kth = s_prefix;
	const int need_eq = s_remaining;  /* equal keys to take */
	const int n_gt = kk - need_eq;    /* keys strictly above the k-th */
	/* collect: greater keys in any order into [0, n_gt), equal keys by increasing index */
	for (int64_t c0 = 0; c0 < L && kk > 0; c0 += TOPK_THREADS) {
		int64_t i = c0 + tid;
		uint32_t key = i < L ? dsv32_topk_key(topk_load(x, x_t, base + i)) : 0;
		int is_eq = i < L && key == kth;
		if (i < L && key > kth) {
			int pos = atomicAdd(&s_gt, 1);
			ckey[pos] = key;
			cidx[pos] = (int)i;
		}
		int rank, total;
		Scan(scan_tmp).ExclusiveSum(is_eq, rank, total);
		int eb = s_eq_base;
		if (is_eq && eb + rank < need_eq) {
			ckey[n_gt + eb + rank] = key;
			cidx[n_gt + eb + rank] = (int)i;
		}
		__syncthreads();
		if (tid == 0)
			s_eq_base = eb + total;
		__syncthreads();
	}
	/* rank placement by (key desc, index asc) */
	for (int a = tid; a < (int)k; a += TOPK_THREADS) {
		int64_t id = -1;
		int slot = a;
		if (a < kk) {
			uint32_t ka = ckey[a];
			int ia = cidx[a], rank = 0;
			for (int b = 0; b < kk; b++)
				rank += ckey[b] > ka || (ckey[b] == ka && cidx[b] < ia);
			slot = rank;
			id = ia;
		}
		int64_t o = r * k + slot;
		if (idx_t == DSV32_I64)
			((int64_t *)idx)[o] = id;
		else
			((int32_t *)idx)[o] = (int32_t)id;
		if (!val)
			continue;
		if (id < 0) {
			if (val_t == DSV32_BF16)
				((dsv32_bf16 *)val)[o] = 0xff80u;
			else
				((float *)val)[o] = -INFINITY;
		} else if (val_t == DSV32_BF16) {
			((dsv32_bf16 *)val)[o] = ((const dsv32_bf16 *)x)[base + id];
		} else {
			((float *)val)[o] = topk_load(x, x_t, base + id);
		}
	}
}

extern "C" dsv32_status dsv32_topk_cuda(dsv32_backend *be, void *idx, dsv32_dtype idx_t, void *val,
					dsv32_dtype val_t, const void *x, dsv32_dtype x_t,
					const int64_t *lens, int64_t rows, int64_t n, int64_t k,
					dsv32_error *err)
{
	if (k > TOPK_CUDA_MAX_K)
		return DSV32_FAIL(err, DSV32_E_UNSUPPORTED, "topk (CUDA): k = %lld, at most %d",
				  (long long)k, TOPK_CUDA_MAX_K);
	if (rows > INT32_MAX)
		return DSV32_FAIL(err, DSV32_E_UNSUPPORTED, "topk (CUDA): %lld rows", (long long)rows);
	size_t sh = (size_t)k * (sizeof(uint32_t) + sizeof(int));
	topk_kernel<<<(unsigned)rows, TOPK_THREADS, sh, DSV32_CUDA_STREAM(be)>>>(
		idx, idx_t, val, val_t, x, x_t, lens, n, k);
	return DSV32_CUDA_LAST_ERROR("topk kernel launch", err);
}
