/* hadamard_cpu.c: CPU body of the Hadamard transform (hadamard.h); one row per iteration.
 *
 * With AVX2 and d >= 8, row_avx2 runs the butterflies of dsv32_hadamard_row in 8 lanes: the
 * strides 1, 2 and 4 inside each vector (the partner lanes brought in by a permute, a + b kept
 * in the lower lane of each pair and a − b in the upper by a blend), right after the load; the
 * strides 8 .. d/2 between vectors of the row buffer; then the scale multiply and the stores.
 * Each stage reads only the previous stage's values and computes the same fp32 a + b and a − b
 * (one rounding each, no FMA), so every non-NaN output is bit-identical to the portable loop; a
 * NaN output is NaN at the same position (sign and payload unspecified, docs/numerics.md
 * "NaN"). The row is loaded whole before any store, so y may be x. */
#include "kernels/hadamard_impl.h"
#include "kernels/cpu_parallel.h"
#include "kernels/elementwise_cpu_avx2.h"

static void row_scalar(void *y, dsv32_dtype yt, const void *x, dsv32_dtype xt, int64_t base,
		       int64_t d, float scale)
{
	float v[DSV32_HADAMARD_MAX_DIM];
	for (int64_t j = 0; j < d; j++)
		v[j] = dsv32_act_load(x, xt, base + j);
	dsv32_hadamard_row(v, d);
	for (int64_t j = 0; j < d; j++)
		dsv32_act_store(y, yt, base + j, dsv32_fmul_rn(v[j], scale));
}

#ifdef DSV32_CPU_AVX2
/* Strides 1, 2, 4 on v[0..8): lane l with (l & h) == 0 gets v[l] + v[l+h], its partner
 * v[l] − v[l+h] (the partner lane's permuted value minus its own). */
DSV32_AVX2_FN static inline __m256 butterfly8(__m256 v)
{
	__m256 p = _mm256_permute_ps(v, 0xb1);
	v = _mm256_blend_ps(_mm256_add_ps(v, p), _mm256_sub_ps(p, v), 0xaa);
	p = _mm256_permute_ps(v, 0x4e);
	v = _mm256_blend_ps(_mm256_add_ps(v, p), _mm256_sub_ps(p, v), 0xcc);
	p = _mm256_permute2f128_ps(v, v, 0x01);
	return _mm256_blend_ps(_mm256_add_ps(v, p), _mm256_sub_ps(p, v), 0xf0);
}

DSV32_AVX2_FN static void row_avx2(void *y, dsv32_dtype yt, const void *x, dsv32_dtype xt,
				   int64_t base, int64_t d, float scale)
{
	float v[DSV32_HADAMARD_MAX_DIM];
	for (int64_t j = 0; j < d; j += 8)
		_mm256_storeu_ps(v + j, butterfly8(dsv32_ld8(x, xt, base + j)));
	for (int64_t h = 8; h < d; h <<= 1)
		for (int64_t j0 = 0; j0 < d; j0 += 2 * h)
			for (int64_t j = j0; j < j0 + h; j += 8) {
				__m256 a = _mm256_loadu_ps(v + j), b = _mm256_loadu_ps(v + j + h);
				_mm256_storeu_ps(v + j, _mm256_add_ps(a, b));
				_mm256_storeu_ps(v + j + h, _mm256_sub_ps(a, b));
			}
	__m256 s = _mm256_set1_ps(scale);
	for (int64_t j = 0; j < d; j += 8)
		dsv32_st8(y, yt, base + j, _mm256_mul_ps(_mm256_loadu_ps(v + j), s));
}
#endif

void dsv32_hadamard_cpu_portable(void *y, dsv32_dtype yt, const void *x, dsv32_dtype xt,
				 int64_t rows, int64_t d, float scale)
{
#pragma omp parallel for schedule(static) if (dsv32_par_worth((double)rows * (double)d * 8))
	for (int64_t r = 0; r < rows; r++)
		row_scalar(y, yt, x, xt, r * d, d, scale);
}

void dsv32_hadamard_cpu(void *y, dsv32_dtype yt, const void *x, dsv32_dtype xt, int64_t rows,
			int64_t d, float scale)
{
#ifdef DSV32_CPU_AVX2
	if (dsv32_cpu_has_avx2() && d >= 8) {
#pragma omp parallel for schedule(static) if (dsv32_par_worth((double)rows * (double)d * 8))
		for (int64_t r = 0; r < rows; r++)
			row_avx2(y, yt, x, xt, r * d, d, scale);
		return;
	}
#endif
	dsv32_hadamard_cpu_portable(y, yt, x, xt, rows, d, scale);
}
