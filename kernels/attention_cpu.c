/* attention_cpu.c: CPU bodies of the attention cores and mask builders (attention.h): the
 * shared per-element math of attention_impl.h, OpenMP over (b, s, h) rows. With AVX2
 * (kernels/scores_simd.h) prefill runs the vector body of attention_avx2.c (same operations,
 * same bits); the scalar bodies here stay the portable path and the tests' oracle. Row buffers
 * of both come from a per-thread grow-only scratch (no allocation per decode step). */
#include "kernels/attention_impl.h"
#include "kernels/cpu_parallel.h"
#include "kernels/scores_simd.h"


dsv32_status dsv32_attn_prefill_cpu(const dsv32_attn_prefill_args *a, dsv32_error *err)
{
	if (!dsv32_scores_vec_enabled() || a->Dqk > DSV32_ATTN_VEC_DMAX)
		return dsv32_attn_prefill_cpu_scalar(a, err);
	if (dsv32_attn_prefill_avx2(a))
		return DSV32_FAIL(err, DSV32_E_NOMEM, "attn_prefill: row buffers (T = %lld)", (long long)a->T);
	return DSV32_OK;
}

dsv32_status dsv32_attn_prefill_cpu_scalar(const dsv32_attn_prefill_args *a, dsv32_error *err)
{
	const int64_t rows = a->B * a->S * a->H;
	const bool r = a->o_t == DSV32_BF16;
	int failed = 0;
#pragma omp parallel if (dsv32_par_worth((double)rows * (double)a->T * (double)(a->Dqk + a->Dv))) reduction(|| : failed)
	{
		float *p = dsv32_scores_scratch(0, (size_t)(a->T + a->Dv)); /* per thread, reused */
		float *acc = p ? p + a->T : NULL;
		if (!p)
			failed = 1;
#pragma omp for schedule(dynamic, 1)
		for (int64_t row = 0; row < rows; row++) {
			if (!p || !acc)
				continue;
			int64_t h = row % a->H, bs = row / a->H, s = bs % a->S, b = bs / a->S;
			for (int64_t t = 0; t < a->T; t++)
				p[t] = dsv32_attn_prefill_score(a, b, s, h, t);
			dsv32_attn_softmax_row(p, a->T, r);
			for (int64_t d = 0; d < a->Dv; d++)
				acc[d] = 0.0f;
			for (int64_t t = 0; t < a->T; t++) { /* per d: t in order */
				const int64_t vo = dsv32_attn_kv_row(a, b, t, h) * a->Dv;
				for (int64_t d = 0; d < a->Dv; d++)
					acc[d] = dsv32_fadd_rn(acc[d], dsv32_fmul_rn(p[t], dsv32_attn_ld(a->v, a->v_t, vo + d)));
			}
			for (int64_t d = 0; d < a->Dv; d++)
				dsv32_attn_st(a->o, a->o_t, row * a->Dv + d, acc[d]);
		}
	}
	if (failed)
		return DSV32_FAIL(err, DSV32_E_NOMEM, "attn_prefill: row buffers (T = %lld)", (long long)a->T);
	return DSV32_OK;
}

dsv32_status dsv32_attn_decode_cpu(const dsv32_attn_decode_args *a, dsv32_error *err)
{
	if (!dsv32_scores_vec_enabled() || a->C > DSV32_ATTN_VEC_DMAX || a->R > DSV32_ATTN_VEC_DMAX)
		return dsv32_attn_decode_cpu_scalar(a, err);
	if (dsv32_attn_decode_avx2(a))
		return DSV32_FAIL(err, DSV32_E_NOMEM, "attn_decode_absorbed: row buffers");
	return DSV32_OK;
}

dsv32_status dsv32_attn_decode_cpu_scalar(const dsv32_attn_decode_args *a, dsv32_error *err)
{
	const int64_t rows = a->B * a->H;
	const bool r = a->o_t == DSV32_BF16;
	int failed = 0;
#pragma omp parallel if (dsv32_par_worth((double)rows * (double)a->T * (double)(a->C + a->R))) reduction(|| : failed)
	{
		float *qa = dsv32_scores_scratch(0, (size_t)(2 * a->C + a->T)); /* per thread, reused */
		if (!qa)
			failed = 1;
#pragma omp for schedule(dynamic, 1)
		for (int64_t row = 0; row < rows; row++) {
			if (!qa)
				continue;
			float *ol = qa + a->C, *p = ol + a->C;
			int64_t b = row / a->H, h = row % a->H;
			for (int64_t c = 0; c < a->C; c++)
				qa[c] = dsv32_attn_dec_qa(a, b, h, c);
			for (int64_t t = 0; t < a->T; t++)
				p[t] = dsv32_attn_dec_score(a, qa, b, h, t);
			dsv32_attn_softmax_row(p, a->T, r);
			for (int64_t c = 0; c < a->C; c++)
				ol[c] = dsv32_attn_dec_ol(a, p, b, c);
			for (int64_t d = 0; d < a->Dv; d++)
				dsv32_attn_st(a->o, a->o_t, row * a->Dv + d, dsv32_attn_dec_out(a, ol, h, d));
		}
	}
	if (failed)
		return DSV32_FAIL(err, DSV32_E_NOMEM, "attn_decode_absorbed: row buffers");
	return DSV32_OK;
}

dsv32_status dsv32_attn_mask_cpu(const dsv32_attn_mask_args *a, dsv32_error *err)
{
	(void)err;
	const float off = dsv32_attn_mask_off(a);
	const int64_t rows = a->B * a->S;
#pragma omp parallel for schedule(static) if (dsv32_par_worth((double)rows * (double)(a->T + a->K)))
	for (int64_t row = 0; row < rows; row++) {
		int64_t b = row / a->S, s = row % a->S, base = row * a->T;
		if (!a->idx) { /* HF without index selection */
			for (int64_t t = 0; t < a->T; t++)
				dsv32_attn_st(a->mask, a->mask_t, base + t,
					      dsv32_attn_mask_visible(a, b, s, t) ? 0.0f : off);
			continue;
		}
		for (int64_t t = 0; t < a->T; t++)
			dsv32_attn_st(a->mask, a->mask_t, base + t, off);
		for (int64_t j = 0; j < a->K; j++) {
			int64_t t = dsv32_attn_idx_at(a, row * a->K + j);
			if (t >= 0 && t < a->T && dsv32_attn_mask_visible(a, b, s, t))
				dsv32_attn_st(a->mask, a->mask_t, base + t, 0.0f);
		}
	}
	return DSV32_OK;
}
