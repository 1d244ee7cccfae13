/* layernorm_cpu.c: CPU body of LayerNorm (layernorm.h): two-pass fp32 mean and population
 * variance per row, then the PyTorch CPU affine form; OpenMP over rows. */
#include "kernels/layernorm.h"

void dsv32_layernorm_cpu(const dsv32_layernorm_args *a)
{
#pragma omp parallel for schedule(static)
	for (int64_t r = 0; r < a->rows; r++) {
		int64_t base = r * a->dim;
		float s = 0.0f, q = 0.0f;
		for (int64_t j = 0; j < a->dim; j++)
			s = dsv32_fadd_rn(s, dsv32_act_load(a->x, a->xt, base + j));
		float mean = dsv32_fdiv_rn(s, (float)a->dim);
		for (int64_t j = 0; j < a->dim; j++) {
			float d = dsv32_fsub_rn(dsv32_act_load(a->x, a->xt, base + j), mean);
			q = dsv32_fadd_rn(q, dsv32_fmul_rn(d, d));
		}
		float rstd = dsv32_layernorm_rstd(dsv32_fdiv_rn(q, (float)a->dim), a->eps);
		float shift = -dsv32_fmul_rn(rstd, mean);
		for (int64_t j = 0; j < a->dim; j++) {
			float v = dsv32_layernorm_elem(dsv32_act_load(a->x, a->xt, base + j), rstd, shift,
						       dsv32_act_load(a->w, a->wt, j),
						       dsv32_act_load(a->b, a->wt, j));
			dsv32_act_store(a->y, a->yt, base + j, v);
		}
	}
}
