/* indexer_cpu.c: CPU bodies of dsv32_fp8_index / dsv32_index_scores_hf: the shared per-element
 * math (indexer_impl.h), OpenMP over (b, i, t). */
#include "kernels/indexer_impl.h"

dsv32_status dsv32_fp8_index_cpu(const dsv32_idx_fp8_args *a, dsv32_error *err)
{
	(void)err;
	const int64_t n = a->B * a->S * a->T;
#pragma omp parallel for schedule(static)
	for (int64_t e = 0; e < n; e++) {
		int64_t t = e % a->T, bi = e / a->T;
		a->out[e] = dsv32_fp8_index_elem(a, bi / a->S, bi % a->S, t);
	}
	return DSV32_OK;
}

dsv32_status dsv32_index_scores_hf_cpu(const dsv32_idx_hf_args *a, dsv32_error *err)
{
	(void)err;
	const int64_t n = a->B * a->S * a->T;
#pragma omp parallel for schedule(static)
	for (int64_t e = 0; e < n; e++) {
		int64_t t = e % a->T, bi = e / a->T;
		a->out[e] = dsv32_index_hf_elem(a, bi / a->S, bi % a->S, t);
	}
	return DSV32_OK;
}
