/* layernorm.cu: CUDA body of LayerNorm (layernorm.h): one block per row, two shared-memory fp32
 * reductions (mean, then population variance), then the PyTorch CPU affine form the CPU body
 * uses (DSV32_LN_FORM_* chosen from a.torch_major and x's dtype, as layernorm_cpu.c). */
#include <cuda_runtime.h>

#include "kernels/cuda_common.cuh"
extern "C" {
#include "kernels/layernorm_impl.h"
}

#define LN_THREADS 256

__global__ static void layernorm_kernel(dsv32_layernorm_args a)
{
	__shared__ float sh[LN_THREADS];
	int64_t base = (int64_t)blockIdx.x * a.dim;
	float s = 0.0f, q = 0.0f;
	for (int64_t j = threadIdx.x; j < a.dim; j += blockDim.x)
		s = dsv32_fadd_rn(s, dsv32_act_load(a.x, a.xt, base + j));
	float mean = dsv32_fdiv_rn(dsv32_block_sum_f32(s, sh), (float)a.dim);
	for (int64_t j = threadIdx.x; j < a.dim; j += blockDim.x) {
		float d = dsv32_fsub_rn(dsv32_act_load(a.x, a.xt, base + j), mean);
		q = dsv32_fadd_rn(q, dsv32_fmul_rn(d, d));
	}
	float var = dsv32_fdiv_rn(dsv32_block_sum_f32(q, sh), (float)a.dim);
	float rstd = dsv32_layernorm_rstd(var, a.eps);
	float shift = -dsv32_fmul_rn(rstd, mean);
	const int form = a.torch_major < 2 ? DSV32_LN_FORM_T1
			 : a.xt == DSV32_BF16 ? DSV32_LN_FORM_T2_BF16 : DSV32_LN_FORM_T2_F32;
	for (int64_t j = threadIdx.x; j < a.dim; j += blockDim.x) {
		float v = dsv32_layernorm_elem_form(form, dsv32_act_load(a.x, a.xt, base + j), mean,
						    rstd, shift, dsv32_act_load(a.w, a.wt, j),
						    dsv32_act_load(a.b, a.wt, j));
		dsv32_act_store(a.y, a.yt, base + j, v);
	}
}

extern "C" dsv32_status dsv32_layernorm_cuda(dsv32_backend *be, const dsv32_layernorm_args *a,
					     dsv32_error *err)
{
	if (a->rows > 2147483647)
		return DSV32_FAIL(err, DSV32_E_UNSUPPORTED, "layernorm: %lld rows", (long long)a->rows);
	layernorm_kernel<<<(unsigned)a->rows, LN_THREADS, 0, DSV32_CUDA_STREAM(be)>>>(*a);
	return DSV32_CUDA_LAUNCHED("layernorm", err);
}
