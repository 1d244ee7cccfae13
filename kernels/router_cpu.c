/* router_cpu.c: CPU bodies of dsv32_router (dsv32_router_row per token), dsv32_router_weights_at
 * and dsv32_router_scores (the same steps, router.h), OpenMP over tokens. */
#include "kernels/router_impl.h"

#include <stdlib.h>

dsv32_status dsv32_router_cpu(float *w, void *idx, dsv32_dtype idx_t, const float *logits,
			      const float *bias, int64_t T, int E, const dsv32_router_params *p,
			      dsv32_error *err)
{
	int failed = 0;
	const int k = p->topk;
#pragma omp parallel reduction(|| : failed)
	{
		float *scratch = malloc((size_t)(2 * E + p->n_groups) * sizeof *scratch);
		int64_t *ib = malloc((size_t)k * sizeof *ib);
		if (!scratch || !ib)
			failed = 1;
#pragma omp for
		for (int64_t t = 0; t < T; t++) {
			if (!scratch || !ib)
				continue;
			dsv32_router_row(w + t * k, ib, logits + t * (int64_t)E, bias, E, p, scratch);
			for (int j = 0; j < k; j++) {
				if (idx_t == DSV32_I64)
					((int64_t *)idx)[t * k + j] = ib[j];
				else
					((int32_t *)idx)[t * k + j] = (int32_t)ib[j];
			}
		}
		free(scratch);
		free(ib);
	}
	if (failed)
		return DSV32_FAIL(err, DSV32_E_NOMEM, "router: allocating scratch for E = %d", E);
	return DSV32_OK;
}

dsv32_status dsv32_router_weights_at_cpu(float *w, const int64_t *idx, const float *logits,
					 const float *bias, int64_t T, int E,
					 const dsv32_router_params *p, dsv32_error *err)
{
	int failed = 0;
	int64_t bad = -1;
	const int k = p->topk;
#pragma omp parallel reduction(|| : failed)
	{
		float *scratch = malloc((size_t)(2 * E) * sizeof *scratch);
		if (!scratch)
			failed = 1;
#pragma omp for
		for (int64_t t = 0; t < T; t++) {
			if (!scratch)
				continue;
			dsv32_router_row_probs(scratch, scratch + E, logits + t * (int64_t)E, bias, E, p);
			if (!dsv32_router_row_mix(w + t * k, idx + t * k, scratch, E, p)) {
#pragma omp critical(router_bad)
				bad = bad < 0 || t < bad ? t : bad;
			}
		}
		free(scratch);
	}
	if (failed)
		return DSV32_FAIL(err, DSV32_E_NOMEM, "router_weights_at: allocating scratch for E = %d",
				  E);
	if (bad >= 0)
		return DSV32_FAIL(err, DSV32_E_USAGE, "router_weights_at: row %lld has an expert id "
				  "outside [0, %d)", (long long)bad, E);
	return DSV32_OK;
}

dsv32_status dsv32_router_scores_cpu(float *scores, const float *logits, const float *bias,
				     int64_t T, int E, const dsv32_router_params *p,
				     dsv32_error *err)
{
	int failed = 0;
#pragma omp parallel reduction(|| : failed)
	{
		float *scratch = malloc((size_t)(E + p->n_groups) * sizeof *scratch);
		if (!scratch)
			failed = 1;
#pragma omp for
		for (int64_t t = 0; t < T; t++) {
			if (!scratch)
				continue;
			float *b = scores + t * (int64_t)E;
			dsv32_router_row_probs(scratch, b, logits + t * (int64_t)E, bias, E, p);
			dsv32_router_row_group_mask(b, scratch + E, E, bias != NULL, p);
		}
		free(scratch);
	}
	if (failed)
		return DSV32_FAIL(err, DSV32_E_NOMEM, "router_scores: allocating scratch for E = %d", E);
	return DSV32_OK;
}
