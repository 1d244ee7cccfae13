/* rmsnorm_cpu.c: CPU body of the RMSNorm family (rmsnorm.h): one row per iteration, OpenMP over
 * rows; the sum of squares in PyTorch CPU's cascade order (reduce.h). Two passes over the
 * inputs (sum of squares, then outputs); r is recomputed in the second pass, bit-identically,
 * so no buffer is needed and in-place aliasing is safe (every output at index j is written
 * after the inputs at j are read).
 *
 * With AVX2 and dim >= L (the cascade's lane count), a row runs row_avx2: the cascade of
 * reduce.h with each of its per-lane additions done as one vector addition (L = 8: one __m256
 * per torch vector, L = 16: two), the same tail and lane-order scalar steps, and the output pass
 * in 8 lanes (same fp32 ops, no FMA). Every non-NaN output is bit-identical to row_scalar; a NaN
 * output is NaN at the same position, its sign and payload unspecified (docs/numerics.md "NaN").
 * The scalar row stays as the portable path and for dim < L. */
#include "kernels/rmsnorm_impl.h"
#include "kernels/cpu_parallel.h"
#include "kernels/elementwise_cpu_avx2.h"

static inline float load_r(const dsv32_rmsnorm_args *a, int64_t i)
{
	float v = dsv32_act_load(a->x, a->xt, i);
	if (a->mode == DSV32_RMSNORM_REF_ADD)
		v = dsv32_fadd_rn(v, dsv32_act_load(a->res, a->rest, i));
	return v;
}

typedef struct {
	const dsv32_rmsnorm_args *a;
	int64_t base;
} sq_ctx;

static float load_sq(const void *ctx, int64_t j)
{
	const sq_ctx *c = ctx;
	float v = load_r(c->a, c->base + j);
	return dsv32_fmul_rn(v, v);
}

static void row_scalar(const dsv32_rmsnorm_args *a, int64_t r)
{
	int64_t dim = a->dim, base = r * dim;
	sq_ctx c = {a, base};
	float ss = dsv32_sum_torch_fn(load_sq, &c, dim, a->lanes);
	float inv = dsv32_rmsnorm_inv(ss, (float)dim, a->eps);
	for (int64_t j = 0; j < dim; j++) {
		float r32 = load_r(a, base + j), w = dsv32_act_load(a->w, a->wt, j), v;
		if (a->mode == DSV32_RMSNORM_HF)
			v = dsv32_rmsnorm_hf_elem(r32, inv, w, a->yt == DSV32_BF16);
		else
			v = dsv32_rmsnorm_ref_elem(r32, inv, w, a->planted);
		dsv32_act_store(a->y, a->yt, base + j, v);
		if (a->mode == DSV32_RMSNORM_REF_ADD)
			dsv32_act_store(a->res_out, a->rt, base + j, r32);
	}
}

#ifdef DSV32_CPU_AVX2
DSV32_AVX2_FN static inline __m256 ld_r8(const dsv32_rmsnorm_args *a, int64_t i)
{
	__m256 v = dsv32_ld8(a->x, a->xt, i);
	if (a->mode == DSV32_RMSNORM_REF_ADD)
		v = _mm256_add_ps(v, dsv32_ld8(a->res, a->rest, i));
	return v;
}

DSV32_AVX2_FN static inline __m256 ld_sq8(const dsv32_rmsnorm_args *a, int64_t i)
{
	__m256 v = ld_r8(a, i);
	return _mm256_mul_ps(v, v);
}

/* dsv32_sum_torch_fn(load_sq) for n >= L, NV = L / 8 vectors per torch vector. acc[j][k]
 * holds slot k of cascade level j as NV __m256 (reduce.h names the steps). */
DSV32_AVX2_FN __attribute__((always_inline)) static inline float
sum_sq_avx2(const dsv32_rmsnorm_args *a, int64_t base, int64_t n, const int NV)
{
	const int L = 8 * NV;
	__m256 acc[4][4][2];
	for (int j = 0; j < 4; j++)
		for (int k = 0; k < 4; k++)
			acc[j][k][0] = acc[j][k][1] = _mm256_setzero_ps();
	int64_t nv = n / L, ni = nv / 4;
	int64_t lp = dsv32_torch_ceil_log2(ni) / 4;
	if (lp < 4)
		lp = 4;
	int64_t step = (int64_t)1 << lp, mask = step - 1, i = 0;
	while (i + step <= ni) {
		for (int64_t j = 0; j < step; j++, i++)
#pragma GCC unroll 4
			for (int k = 0; k < 4; k++)
#pragma GCC unroll 2
				for (int q = 0; q < NV; q++)
					acc[0][k][q] = _mm256_add_ps(
						acc[0][k][q], ld_sq8(a, base + (4 * i + k) * L + 8 * q));
		for (int j = 1; j < 4; j++) {
			for (int k = 0; k < 4; k++)
				for (int q = 0; q < NV; q++) {
					acc[j][k][q] = _mm256_add_ps(acc[j][k][q], acc[j - 1][k][q]);
					acc[j - 1][k][q] = _mm256_setzero_ps();
				}
			if ((i & (mask << (j * lp))) != 0)
				break;
		}
	}
	for (; i < ni; i++)
#pragma GCC unroll 4
		for (int k = 0; k < 4; k++)
#pragma GCC unroll 2
			for (int q = 0; q < NV; q++)
				acc[0][k][q] = _mm256_add_ps(acc[0][k][q],
							     ld_sq8(a, base + (4 * i + k) * L + 8 * q));
	for (int j = 1; j < 4; j++)
		for (int k = 0; k < 4; k++)
			for (int q = 0; q < NV; q++)
				acc[0][k][q] = _mm256_add_ps(acc[0][k][q], acc[j][k][q]);
	for (int64_t v = ni * 4; v < nv; v++)
		for (int q = 0; q < NV; q++)
			acc[0][0][q] = _mm256_add_ps(acc[0][0][q], ld_sq8(a, base + v * L + 8 * q));
	for (int k = 1; k < 4; k++)
		for (int q = 0; q < NV; q++)
			acc[0][0][q] = _mm256_add_ps(acc[0][0][q], acc[0][k][q]);
	float lanes[16];
	for (int q = 0; q < NV; q++)
		_mm256_storeu_ps(lanes + 8 * q, acc[0][0][q]);
	float s = 0.0f;
	for (int64_t t = nv * L; t < n; t++) {
		float v = load_r(a, base + t);
		s = dsv32_fadd_rn(s, dsv32_fmul_rn(v, v));
	}
	for (int l = 0; l < L; l++)
		s = dsv32_fadd_rn(s, lanes[l]);
	return dsv32_fadd_rn(0.0f, s);
}

DSV32_AVX2_FN static void row_avx2(const dsv32_rmsnorm_args *a, int64_t r)
{
	int64_t dim = a->dim, base = r * dim, d8 = dim & ~(int64_t)7, j;
	float ss = a->lanes == 8 ? sum_sq_avx2(a, base, dim, 1) : sum_sq_avx2(a, base, dim, 2);
	float inv = dsv32_rmsnorm_inv(ss, (float)dim, a->eps);
	__m256 vinv = _mm256_set1_ps(inv);
	bool hf = a->mode == DSV32_RMSNORM_HF;
	bool pre = hf ? a->yt == DSV32_BF16 : a->planted; /* round r · inv to bf16 first */
	for (j = 0; j < d8; j += 8) {
		__m256 r8 = ld_r8(a, base + j);
		__m256 xn = _mm256_mul_ps(r8, vinv);
		if (pre)
			xn = dsv32_round8(xn);
		dsv32_st8(a->y, a->yt, base + j, _mm256_mul_ps(dsv32_ld8(a->w, a->wt, j), xn));
		if (a->mode == DSV32_RMSNORM_REF_ADD)
			dsv32_st8(a->res_out, a->rt, base + j, r8);
	}
	for (; j < dim; j++) {
		float r32 = load_r(a, base + j), w = dsv32_act_load(a->w, a->wt, j), v;
		if (hf)
			v = dsv32_rmsnorm_hf_elem(r32, inv, w, a->yt == DSV32_BF16);
		else
			v = dsv32_rmsnorm_ref_elem(r32, inv, w, a->planted);
		dsv32_act_store(a->y, a->yt, base + j, v);
		if (a->mode == DSV32_RMSNORM_REF_ADD)
			dsv32_act_store(a->res_out, a->rt, base + j, r32);
	}
}
#endif

void dsv32_rmsnorm_cpu_portable(const dsv32_rmsnorm_args *a)
{
#pragma omp parallel for schedule(static) if (dsv32_par_worth((double)a->rows * (double)a->dim))
	for (int64_t r = 0; r < a->rows; r++)
		row_scalar(a, r);
}

void dsv32_rmsnorm_cpu(const dsv32_rmsnorm_args *a)
{
#ifdef DSV32_CPU_AVX2
	int L = a->lanes == 8 ? 8 : 16;
	if (dsv32_cpu_has_avx2() && a->dim >= L) {
#pragma omp parallel for schedule(static) if (dsv32_par_worth((double)a->rows * (double)a->dim))
		for (int64_t r = 0; r < a->rows; r++)
			row_avx2(a, r);
		return;
	}
#endif
	dsv32_rmsnorm_cpu_portable(a);
}
