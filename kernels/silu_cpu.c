/* silu_cpu.c: CPU body of the SiLU-gated products (silu.h). */
#include "kernels/silu.h"

void dsv32_silu_mul_cpu(void *h, dsv32_dtype ht, const void *a, dsv32_dtype at, const void *b,
			dsv32_dtype bt, int64_t n, bool hf)
{
#pragma omp parallel for schedule(static)
	for (int64_t i = 0; i < n; i++) {
		float s = dsv32_silu_elem(dsv32_act_load(a, at, i));
		if (hf)
			s = dsv32_act_round(ht, s);
		dsv32_act_store(h, ht, i, dsv32_fmul_rn(s, dsv32_act_load(b, bt, i)));
	}
}
