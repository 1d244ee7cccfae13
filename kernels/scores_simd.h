/* scores_simd.h: shared pieces of the vector CPU bodies of the index scores (indexer_avx2.c) and
 * the attention cores (attention_avx2.c), host code only.
 *
 * The vector bodies do the scalar bodies' IEEE fp32 operations, one rounding each, in the same
 * order per output; the lanes run across independent outputs (keys t, query rows, heads or
 * output columns), never across a sum. target("avx2") without "fma" and -ffp-contract=off: no
 * multiply-add is fused. AVX2 and AVX-512 CPUs run the same code, so the bits cannot depend on
 * the CPU; CPUs without AVX2 (or DSV32_CPU_NO_AVX2=1 in the environment) run the scalar bodies
 * (dsv32_<op>_cpu_scalar), which stay the oracle of tests/test_vec_scores.c.
 *
 *   dsv32_scores_vec_enabled()   AVX2 present and DSV32_CPU_NO_AVX2 unset (read once)
 *   dsv32_scores_scratch(slot, n) a grow-only buffer of n floats (64-byte aligned) owned by the
 *                                calling thread and reused by its later calls (no allocation per
 *                                decode step once it is large enough); NULL when out of memory.
 *                                Two slots (0: inside a parallel region, 1: the caller's buffers
 *                                shared by the region) per thread and translation unit: slots
 *                                4 and 5 of kernels/cpu_scratch.h; never freed before exit.
 *   (dsv32_e4m3_table, the decode table of the fp8 scores, is in core/dtype.h)
 */
#ifndef DSV32_SCORES_SIMD_H
#define DSV32_SCORES_SIMD_H

#include "kernels/cpu_scratch.h"
#include "kernels/elementwise_cpu_avx2.h"

#include <stdlib.h>

static inline float *dsv32_scores_scratch(int slot, size_t n)
{
	return (float *)dsv32_cpu_scratch(DSV32_SCRATCH_SCORES + slot, n * sizeof(float));
}

#ifdef DSV32_CPU_AVX2
static inline bool dsv32_scores_vec_enabled(void)
{
	static int on = -1; /* benign: every thread computes the same value */
	int v = __atomic_load_n(&on, __ATOMIC_RELAXED);
	if (v < 0) {
		const char *e = getenv("DSV32_CPU_NO_AVX2");
		v = dsv32_cpu_has_avx2() && !(e && *e && *e != '0');
		__atomic_store_n(&on, v, __ATOMIC_RELAXED);
	}
	return v != 0;
}
#else
static inline bool dsv32_scores_vec_enabled(void)
{
	return false;
}
#endif

#endif
