/* combine_cpu.c: CPU bodies of combine.h (OpenMP over independent elements; the per-element
 * math of combine.h, fp32 without contraction: ISO C11). */
#include "kernels/combine_impl.h"
#include "kernels/cpu_parallel.h"
#include "kernels/elementwise.h"

void dsv32_mul_bcast_cpu(const dsv32_mul_bcast_args *a)
{
	int nd = a->ndim;
#pragma omp parallel for schedule(static) if (dsv32_par_worth((double)a->n * a->ndim))
	for (int64_t i = 0; i < a->n; i++) {
		int64_t r = i, ia = 0, ib = 0;
		for (int k = nd - 1; k >= 0; k--) {
			int64_t c = r % a->shape[k];
			r /= a->shape[k];
			ia += c * a->sa[k];
			ib += c * a->sb[k];
		}
		float p = dsv32_act_load(a->a, a->at, ia) * dsv32_act_load(a->b, a->bt, ib);
		dsv32_act_store(a->y, a->yt, i, p);
	}
}

void dsv32_index_combine_cpu(const dsv32_index_combine_args *a)
{
	bool bf = a->yt == DSV32_BF16;
	/* rows are distinct: every (i, d) touches its own output element */
#pragma omp parallel for schedule(static) if (dsv32_par_worth((double)a->n * (double)a->D))
	for (int64_t i = 0; i < a->n; i++) {
		int64_t o = a->rows[i] * a->D, s = i * a->D;
		float w = a->w[i];
		for (int64_t d = 0; d < a->D; d++) {
			float x = dsv32_act_load(a->x, a->xt, s + d);
			if (a->kind == DSV32_COMBINE_REF) {
				float *y = a->y;
				y[o + d] = dsv32_combine_ref_elem(y[o + d], x, w);
			} else {
				float v = dsv32_act_load(a->y, a->yt, o + d);
				dsv32_act_store(a->y, a->yt, o + d,
						dsv32_combine_hf_eager_elem(v, x, w, bf));
			}
		}
	}
}

void dsv32_slot_combine_cpu(const dsv32_slot_combine_args *a)
{
	int64_t K = a->K, D = a->D;
#pragma omp parallel for schedule(static) if (dsv32_par_worth((double)a->T * (double)D * (double)K))
	for (int64_t t = 0; t < a->T; t++) {
		for (int64_t d = 0; d < D; d++) {
			float s = 0.0f;
			for (int64_t k = 0; k < K; k++) {
				int64_t r = a->src ? a->src[t * K + k] : t * K + k;
				float p = dsv32_act_load(a->x, a->xt, r * D + d) * a->w[t * K + k];
				s = k ? s + p : p;
			}
			dsv32_act_store(a->out, a->ot, t * D + d, s);
		}
	}
}
