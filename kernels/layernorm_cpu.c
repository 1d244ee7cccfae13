/* layernorm_cpu.c: CPU body of LayerNorm (layernorm.h): mean and population variance per row
 * by PyTorch CPU's vectorised Welford cascade (reduce.h dsv32_moments_torch_fn), then the
 * PyTorch CPU affine form; OpenMP over rows. */
#include "kernels/layernorm_impl.h"
#include "kernels/cpu_parallel.h"

typedef struct {
	const void *x;
	dsv32_dtype xt;
	int64_t base;
} ln_ctx;

static float load_x(const void *ctx, int64_t j)
{
	const ln_ctx *c = ctx;
	return dsv32_act_load(c->x, c->xt, c->base + j);
}

void dsv32_layernorm_cpu(const dsv32_layernorm_args *a)
{
	int kvec = a->xt == DSV32_BF16 ? 2 * a->lanes : a->lanes;
	int form = a->torch_major < 2 ? DSV32_LN_FORM_T1
		   : a->xt == DSV32_BF16 ? DSV32_LN_FORM_T2_BF16 : DSV32_LN_FORM_T2_F32;
#pragma omp parallel for schedule(static) if (dsv32_par_worth((double)a->rows * (double)a->dim))
	for (int64_t r = 0; r < a->rows; r++) {
		int64_t base = r * a->dim;
		ln_ctx c = {a->x, a->xt, base};
		float mean, var;
		dsv32_moments_torch_fn(load_x, &c, a->dim, kvec, a->lanes, a->torch_major >= 2,
				       &mean, &var);
		float rstd = dsv32_layernorm_rstd(var, a->eps);
		float shift = -dsv32_fmul_rn(rstd, mean);
		for (int64_t j = 0; j < a->dim; j++) {
			float v = dsv32_layernorm_elem_form(form, dsv32_act_load(a->x, a->xt, base + j),
							    mean, rstd, shift,
							    dsv32_act_load(a->w, a->wt, j),
							    dsv32_act_load(a->b, a->wt, j));
			dsv32_act_store(a->y, a->yt, base + j, v);
		}
	}
}
