/* softmax_cpu.c: CPU body of softmax (softmax.h): per row max, exp, sum, reciprocal multiply.
 * The exponentials are recomputed in the last pass (bit-identical), so y may alias x.
 *
 * With AVX2, a row whose max is finite and that holds no NaN runs row_avx2: the max, the
 * subtractions x - m, the multiplies by 1/s and the bf16 stores in 8 lanes, expf once per
 * element (glibc's, as the portable loop) into a per-thread buffer, the sum in the same
 * sequential order. The expf calls run through dsv32_expf_inplace (kernels/expf_avx2.h): glibc's
 * expf in 8 lanes, the same bits as the scalar call, where the guard accepted the running libm
 * (otherwise the scalar expf per element). No NaN can arise in such a row (x - m is finite or
 * -inf, s >= 1), and the max of NaN-free values is the same value in any order (its zero sign
 * does not reach expf(x - m)), so the outputs are bit-identical to row_scalar; other rows run
 * row_scalar. */
#include "kernels/softmax_impl.h"
#include "kernels/cpu_parallel.h"
#include "kernels/elementwise_cpu_avx2.h"
#include "kernels/expf_avx2.h"

#include <stdlib.h>

static void row_scalar(void *y, dsv32_dtype yt, const void *x, dsv32_dtype xt, int64_t base,
		       int64_t T)
{
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

#ifdef DSV32_CPU_AVX2
/* Returns false (nothing written) when the row must run row_scalar. */
DSV32_AVX2_FN static bool row_avx2(void *y, dsv32_dtype yt, const void *x, dsv32_dtype xt,
				   int64_t base, int64_t T, float *buf)
{
	int64_t T8 = T & ~(int64_t)7, t;
	__m256 vm = _mm256_set1_ps(-INFINITY), bad = _mm256_setzero_ps();
	for (t = 0; t < T8; t += 8) {
		__m256 v = dsv32_ld8(x, xt, base + t);
		bad = _mm256_or_ps(bad, dsv32_nan8(v));
		vm = _mm256_max_ps(v, vm);
	}
	if (_mm256_movemask_ps(bad))
		return false;
	float m = dsv32_hmax8(vm);
	for (; t < T; t++) {
		float v = dsv32_act_load(x, xt, base + t);
		if (v != v)
			return false;
		m = v > m ? v : m;
	}
	if (!(m > -INFINITY && m < INFINITY))
		return false;
	__m256 mm = _mm256_set1_ps(m);
	for (t = 0; t < T8; t += 8)
		_mm256_storeu_ps(buf + t, _mm256_sub_ps(dsv32_ld8(x, xt, base + t), mm));
	for (; t < T; t++)
		buf[t] = dsv32_fsub_rn(dsv32_act_load(x, xt, base + t), m);
	dsv32_expf_inplace(buf, T);
	float s = 0.0f;
	for (t = 0; t < T; t++)
		s = dsv32_fadd_rn(s, buf[t]);
	float inv = dsv32_fdiv_rn(1.0f, s);
	__m256 vi = _mm256_set1_ps(inv);
	for (t = 0; t < T8; t += 8)
		dsv32_st8(y, yt, base + t, _mm256_mul_ps(_mm256_loadu_ps(buf + t), vi));
	for (; t < T; t++)
		dsv32_act_store(y, yt, base + t, dsv32_fmul_rn(buf[t], inv));
	return true;
}
#endif

void dsv32_softmax_cpu(void *y, dsv32_dtype yt, const void *x, dsv32_dtype xt, int64_t rows,
		       int64_t T)
{
#ifdef DSV32_CPU_AVX2
	if (dsv32_cpu_has_avx2() && T >= 8) {
#pragma omp parallel if (dsv32_par_worth((double)rows * (double)T))
		{
			float *buf = malloc((size_t)T * sizeof(float)); /* NULL: scalar rows */
#pragma omp for schedule(static)
			for (int64_t r = 0; r < rows; r++)
				if (!buf || !row_avx2(y, yt, x, xt, r * T, T, buf))
					row_scalar(y, yt, x, xt, r * T, T);
			free(buf);
		}
		return;
	}
#endif
#pragma omp parallel for schedule(static) if (dsv32_par_worth((double)rows * (double)T))
	for (int64_t r = 0; r < rows; r++)
		row_scalar(y, yt, x, xt, r * T, T);
}
