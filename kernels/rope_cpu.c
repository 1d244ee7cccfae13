/* rope_cpu.c: CPU body of RoPE and the de-interleave permutation (rope.h). One (b, s, h) row of
 * rd rope channels per iteration (dsv32_rope_row in rope.h, shared with the CUDA body). */
#include "kernels/rope.h"

void dsv32_rope_cpu(const dsv32_rope_args *a)
{
	int64_t nrows = a->B * a->S * a->H;
#pragma omp parallel for schedule(static)
	for (int64_t r = 0; r < nrows; r++) {
		int64_t b = r / (a->S * a->H), s = (r / a->H) % a->S;
		dsv32_rope_row(a, b, s, r * a->D + a->off);
	}
}
