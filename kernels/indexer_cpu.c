/* indexer_cpu.c: CPU bodies of dsv32_fp8_index / dsv32_index_scores_hf (indexer.h). With AVX2
 * (kernels/scores_simd.h) the vector bodies of indexer_avx2.c run (same operations, same bits);
 * otherwise, and as the tests' oracle, the scalar bodies below: the shared per-element math of
 * indexer_impl.h, OpenMP over (b, i, t). The fp8 scalar body decodes e4m3 through a 256-entry
 * table (dsv32_e4m3_table: the bits of dsv32_e4m3_to_f32 without its ldexpf). */
#include "kernels/indexer_impl.h"
#include "kernels/cpu_parallel.h"
#include "kernels/scores_simd.h"

/* dsv32_fp8_index_elem with the e4m3 values read from lut (the same values, the same ops). */
static float fp8_index_elem_lut(const dsv32_idx_fp8_args *a, const float *lut, int64_t b,
				int64_t i, int64_t t)
{
	const dsv32_f8 *kr = a->k8 + (b * a->Tc + t) * a->D;
	const float *w = a->w + (b * a->S + i) * a->H;
	float acc = 0.0f;
	for (int64_t h = 0; h < a->H; h++) {
		const dsv32_f8 *qr = a->q8 + ((b * a->S + i) * a->H + h) * a->D;
		float dot = 0.0f;
		for (int64_t d = 0; d < a->D; d++)
			dot = dsv32_fadd_rn(dot, dsv32_fmul_rn(lut[qr[d]], lut[kr[d]]));
		acc = dsv32_fadd_rn(acc, dsv32_fp8_index_head(dot, w[h]));
	}
	float o = dsv32_fmul_rn(a->k_s[b * a->Tcs + t], acc);
	if (a->mask.data)
		o = dsv32_fadd_rn(o, dsv32_idx_mask_at(&a->mask, b, i, t, a->T));
	return o;
}

void dsv32_fp8_index_cpu_scalar(const dsv32_idx_fp8_args *a)
{
	float lut[256];
	dsv32_e4m3_table(lut);
	const int64_t n = a->B * a->S * a->T;
#pragma omp parallel for schedule(static) if (dsv32_par_worth((double)n * (double)(a->H * a->D)))
	for (int64_t e = 0; e < n; e++) {
		int64_t t = e % a->T, bi = e / a->T;
		a->out[e] = fp8_index_elem_lut(a, lut, bi / a->S, bi % a->S, t);
	}
}

void dsv32_index_scores_hf_cpu_scalar(const dsv32_idx_hf_args *a)
{
	const int64_t n = a->B * a->S * a->T;
#pragma omp parallel for schedule(static) if (dsv32_par_worth((double)n * (double)(a->H * a->D)))
	for (int64_t e = 0; e < n; e++) {
		int64_t t = e % a->T, bi = e / a->T;
		a->out[e] = dsv32_index_hf_elem(a, bi / a->S, bi % a->S, t);
	}
}

dsv32_status dsv32_fp8_index_cpu(const dsv32_idx_fp8_args *a, dsv32_error *err)
{
	(void)err;
	if (dsv32_scores_vec_enabled() && a->D <= DSV32_IDX_VEC_DMAX)
		dsv32_fp8_index_avx2(a);
	else
		dsv32_fp8_index_cpu_scalar(a);
	return DSV32_OK;
}

dsv32_status dsv32_index_scores_hf_cpu(const dsv32_idx_hf_args *a, dsv32_error *err)
{
	(void)err;
	if (dsv32_scores_vec_enabled() && a->D <= DSV32_IDX_VEC_DMAX)
		dsv32_index_scores_hf_avx2(a);
	else
		dsv32_index_scores_hf_cpu_scalar(a);
	return DSV32_OK;
}
