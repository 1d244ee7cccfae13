/* indexer_impl.h: the internals of indexer.h, shared by its dispatcher and its CPU/CUDA bodies:
 * argument bundles, per-element math, the CPU/CUDA body declarations (arguments checked).
 * Private to kernels/ (and the tests and benches that call a body directly); everyone else
 * includes kernels/indexer.h, which holds the API and its precision contract.
 * The CUDA declarations are visible in every build: see DSV32_CUDA_BODY in backend_impl.h. */
#ifndef DSV32_INDEXER_IMPL_H
#define DSV32_INDEXER_IMPL_H

#include "kernels/backend_impl.h"
#include "kernels/indexer.h"

/* Optional additive mask, element (b,s,t) at data[b*batch_stride + s*T + t]. */
typedef struct {
	const void *data; /* NULL: no mask */
	dsv32_dtype dtype;
	int64_t batch_stride;
} dsv32_idx_mask;

DSV32_HD static inline float dsv32_idx_mask_at(const dsv32_idx_mask *m, int64_t b, int64_t s,
					       int64_t t, int64_t T)
{
	int64_t i = b * m->batch_stride + s * T + t;
	return m->dtype == DSV32_BF16 ? dsv32_bf16_to_f32(((const dsv32_bf16 *)m->data)[i])
				      : ((const float *)m->data)[i];
}

typedef struct {
	float *out;
	const dsv32_f8 *q8;
	const float *w;
	const dsv32_f8 *k8;
	const float *k_s;
	dsv32_idx_mask mask;
	int64_t B, S, T, H, D;
	int64_t Tc;  /* k8 rows per batch (cache stride) */
	int64_t Tcs; /* k_s rows per batch */
} dsv32_idx_fp8_args;

typedef struct {
	float *out;
	const void *q;
	dsv32_dtype q_t;
	const void *k;
	dsv32_dtype k_t;
	const float *w;
	float scale;
	dsv32_idx_mask mask;
	int64_t B, S, T, H, D;
	int64_t Tc;
} dsv32_idx_hf_args;

/* One output element of each op, shared by the bodies (all loops in order, no FMA). */
DSV32_HD static inline float dsv32_fp8_index_elem(const dsv32_idx_fp8_args *a, int64_t b,
						  int64_t i, int64_t t)
{
	const dsv32_f8 *kr = a->k8 + (b * a->Tc + t) * a->D;
	const float *w = a->w + (b * a->S + i) * a->H;
	float acc = 0.0f;
	for (int64_t h = 0; h < a->H; h++) {
		const dsv32_f8 *qr = a->q8 + ((b * a->S + i) * a->H + h) * a->D;
		float dot = 0.0f;
		for (int64_t d = 0; d < a->D; d++) /* products of e4m3 values are exact */
			dot = dsv32_fadd_rn(dot, dsv32_fmul_rn(dsv32_e4m3_to_f32(qr[d]),
							     dsv32_e4m3_to_f32(kr[d])));
		acc = dsv32_fadd_rn(acc, dsv32_fp8_index_head(dot, w[h]));
	}
	float o = dsv32_fmul_rn(a->k_s[b * a->Tcs + t], acc);
	if (a->mask.data)
		o = dsv32_fadd_rn(o, dsv32_idx_mask_at(&a->mask, b, i, t, a->T));
	return o;
}

DSV32_HD static inline float dsv32_idx_load(const void *p, dsv32_dtype t, int64_t i)
{
	return t == DSV32_BF16 ? dsv32_bf16_to_f32(((const dsv32_bf16 *)p)[i]) : ((const float *)p)[i];
}

DSV32_HD static inline float dsv32_index_hf_elem(const dsv32_idx_hf_args *a, int64_t b, int64_t i,
						 int64_t t)
{
	const int64_t kb = (b * a->Tc + t) * a->D;
	const float *w = a->w + (b * a->S + i) * a->H;
	float acc = 0.0f;
	for (int64_t h = 0; h < a->H; h++) {
		const int64_t qb = ((b * a->S + i) * a->H + h) * a->D;
		float dot = 0.0f;
		for (int64_t d = 0; d < a->D; d++)
			dot = dsv32_fadd_rn(dot, dsv32_fmul_rn(dsv32_idx_load(a->q, a->q_t, qb + d),
							     dsv32_idx_load(a->k, a->k_t, kb + d)));
		acc = dsv32_fadd_rn(acc, dsv32_fmul_rn(w[h], dsv32_index_hf_head(dot, a->scale)));
	}
	if (a->mask.data)
		acc = dsv32_fadd_rn(acc, dsv32_idx_mask_at(&a->mask, b, i, t, a->T));
	return acc;
}

dsv32_status dsv32_fp8_index_cpu(const dsv32_idx_fp8_args *a, dsv32_error *err);
dsv32_status dsv32_index_scores_hf_cpu(const dsv32_idx_hf_args *a, dsv32_error *err);

/* The CPU bodies behind dsv32_*_cpu (indexer_cpu.c, indexer_avx2.c): the scalar oracle loops and
 * the AVX2 bodies (same bits; call the latter only where dsv32_scores_vec_enabled() and
 * D <= DSV32_IDX_VEC_DMAX). */
#define DSV32_IDX_VEC_DMAX 512
void dsv32_fp8_index_cpu_scalar(const dsv32_idx_fp8_args *a);
void dsv32_index_scores_hf_cpu_scalar(const dsv32_idx_hf_args *a);
void dsv32_fp8_index_avx2(const dsv32_idx_fp8_args *a);
void dsv32_index_scores_hf_avx2(const dsv32_idx_hf_args *a);
dsv32_status dsv32_fp8_index_cuda(dsv32_backend *be, const dsv32_idx_fp8_args *a,
				  dsv32_error *err);
dsv32_status dsv32_index_scores_hf_cuda(dsv32_backend *be, const dsv32_idx_hf_args *a,
					dsv32_error *err);

#endif
