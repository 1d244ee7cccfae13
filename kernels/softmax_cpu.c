/* softmax_cpu.c: CPU body of softmax (softmax.h): per row max, exp, sum, reciprocal multiply.
 * The exponentials are recomputed in the last pass (bit-identical), so y may alias x. */
#include "kernels/softmax.h"

void dsv32_softmax_cpu(void *y, dsv32_dtype yt, const void *x, dsv32_dtype xt, int64_t rows,
		       int64_t T)
{
#pragma omp parallel for schedule(static)
	for (int64_t r = 0; r < rows; r++) {
		int64_t base = r * T;
		float m = -INFINITY, s = 0.0f;
		for (int64_t t = 0; t < T; t++)
			m = dsv32_softmax_max(m, dsv32_act_load(x, xt, base + t));
		for (int64_t t = 0; t < T; t++)
			s = dsv32_fadd_rn(s, dsv32_softmax_exp(dsv32_act_load(x, xt, base + t), m));
		float inv = dsv32_fdiv_rn(1.0f, s);
		for (int64_t t = 0; t < T; t++) {
			float e = dsv32_softmax_exp(dsv32_act_load(x, xt, base + t), m);
			dsv32_act_store(y, yt, base + t, dsv32_fmul_rn(e, inv));
		}
	}
}
