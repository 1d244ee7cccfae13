/* rmsnorm_cpu.c: CPU body of the RMSNorm family (rmsnorm.h): one row per iteration, OpenMP over
 * rows; the sum of squares in PyTorch CPU's cascade order (reduce.h). Two passes over the
 * inputs (sum of squares, then outputs); r is recomputed in the second pass, bit-identically,
 * so no buffer is needed and in-place aliasing is safe (every output at index j is written
 * after the inputs at j are read). */
#include "kernels/rmsnorm.h"

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

static void row(const dsv32_rmsnorm_args *a, int64_t r)
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

void dsv32_rmsnorm_cpu(const dsv32_rmsnorm_args *a)
{
#pragma omp parallel for schedule(static)
	for (int64_t r = 0; r < a->rows; r++)
		row(a, r);
}
