/* hadamard_cpu.c: CPU body of the Hadamard transform (hadamard.h); one row per iteration. */
#include "kernels/hadamard.h"

void dsv32_hadamard_cpu(void *y, dsv32_dtype yt, const void *x, dsv32_dtype xt, int64_t rows,
			int64_t d, float scale)
{
#pragma omp parallel for schedule(static)
	for (int64_t r = 0; r < rows; r++) {
		float v[DSV32_HADAMARD_MAX_DIM];
		for (int64_t j = 0; j < d; j++)
			v[j] = dsv32_act_load(x, xt, r * d + j);
		dsv32_hadamard_row(v, d);
		for (int64_t j = 0; j < d; j++)
			dsv32_act_store(y, yt, r * d + j, dsv32_fmul_rn(v[j], scale));
	}
}
