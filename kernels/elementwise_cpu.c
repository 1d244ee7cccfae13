/* elementwise_cpu.c: CPU bodies of the elementwise ops (elementwise.h); OpenMP loops. */
#include "kernels/elementwise_impl.h"
#include "kernels/cpu_parallel.h"
#include "kernels/elementwise_cpu_avx2.h"

#include <string.h>

#define CHUNK 65536

void dsv32_cast_cpu(const dsv32_ew_args *a)
{
	size_t ys = dsv32_dtype_size(a->yt), xs = dsv32_dtype_size(a->at);
	int64_t nchunks = (a->n + CHUNK - 1) / CHUNK;
#pragma omp parallel for schedule(static) if (dsv32_par_worth((double)a->n))
	for (int64_t c = 0; c < nchunks; c++) {
		int64_t i0 = c * CHUNK, m = a->n - i0 < CHUNK ? a->n - i0 : CHUNK;
		dsv32_convert((char *)a->y + i0 * ys, a->yt, (const char *)a->a + i0 * xs, a->at,
			      (size_t)m);
	}
}

/* y[i0 + k] = a[i0 + k] + b[j0 + k] for k < len: one fp32 add, one rounding to y's dtype; 8
 * at a time where the CPU has AVX2 (the same operations, elementwise_cpu_avx2.h). */
#ifdef DSV32_CPU_AVX2
DSV32_AVX2_FN static int64_t add_run_avx2(const dsv32_ew_args *a, int64_t i0, int64_t j0,
					  int64_t len)
{
	int64_t k = 0;
	for (; k + 8 <= len; k += 8)
		dsv32_st8(a->y, a->yt, i0 + k,
			  _mm256_add_ps(dsv32_ld8(a->a, a->at, i0 + k), dsv32_ld8(a->b, a->bt, j0 + k)));
	return k;
}
#endif

static void add_run(const dsv32_ew_args *a, int64_t i0, int64_t j0, int64_t len, bool vec)
{
	int64_t k = 0;
#ifdef DSV32_CPU_AVX2
	if (vec)
		k = add_run_avx2(a, i0, j0, len);
#else
	(void)vec;
#endif
	for (; k < len; k++) {
		float v = dsv32_fadd_rn(dsv32_act_load(a->a, a->at, i0 + k),
					dsv32_act_load(a->b, a->bt, j0 + k));
		dsv32_act_store(a->y, a->yt, i0 + k, v);
	}
}

/* Runs of inner elements share one b row (b index (o % b_outer)·inner + k for element
 * (o·mid + m)·inner + k), in pieces of up to CHUNK so that a plain add splits across threads. */
void dsv32_add_cpu(const dsv32_ew_args *a)
{
	if (a->n <= 0 || a->inner <= 0)
		return;
	int64_t pieces = (a->inner + CHUNK - 1) / CHUNK, runs = a->n / a->inner;
#ifdef DSV32_CPU_AVX2
	bool vec = dsv32_cpu_has_avx2();
#else
	bool vec = false;
#endif
#pragma omp parallel for schedule(static) if (dsv32_par_worth((double)a->n))
	for (int64_t t = 0; t < runs * pieces; t++) {
		int64_t r = t / pieces, k0 = (t % pieces) * CHUNK;
		int64_t len = a->inner - k0 < CHUNK ? a->inner - k0 : CHUNK;
		int64_t o = r / a->mid;
		add_run(a, r * a->inner + k0, (o % a->b_outer) * a->inner + k0, len, vec);
	}
}

void dsv32_scale_cpu(const dsv32_ew_args *a)
{
#pragma omp parallel for schedule(static) if (dsv32_par_worth((double)a->n))
	for (int64_t i = 0; i < a->n; i++)
		dsv32_act_store(a->y, a->yt, i, dsv32_fmul_rn(dsv32_act_load(a->a, a->at, i), a->c));
}

void dsv32_copy_cols_cpu(const dsv32_copy_cols_args *a)
{
#pragma omp parallel for schedule(static) if (dsv32_par_worth((double)a->rows * (double)a->n))
	for (int64_t r = 0; r < a->rows; r++) {
		if (a->yt == a->xt) {
			size_t es = dsv32_dtype_size(a->yt);
			memcpy((char *)a->y + (r * a->dy + a->y_off) * es,
			       (const char *)a->x + (r * a->dx + a->x_off) * es, (size_t)a->n * es);
			continue;
		}
		for (int64_t j = 0; j < a->n; j++)
			dsv32_act_store(a->y, a->yt, r * a->dy + a->y_off + j,
					dsv32_act_load(a->x, a->xt, r * a->dx + a->x_off + j));
	}
}

void dsv32_embedding_cpu(void *y, dsv32_dtype yt, const void *table, dsv32_dtype tt,
			 const int64_t *ids, int64_t N, int64_t D)
{
#pragma omp parallel for schedule(static) if (dsv32_par_worth((double)N * (double)D))
	for (int64_t i = 0; i < N; i++) {
		if (yt == tt) {
			size_t es = dsv32_dtype_size(yt);
			memcpy((char *)y + i * D * es, (const char *)table + ids[i] * D * es,
			       (size_t)D * es);
			continue;
		}
		for (int64_t j = 0; j < D; j++)
			dsv32_act_store(y, yt, i * D + j, dsv32_act_load(table, tt, ids[i] * D + j));
	}
}
