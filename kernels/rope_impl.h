/* rope_impl.h: the internals of rope.h, shared by its dispatcher and its CPU/CUDA bodies:
 * argument bundles, per-element math, the CPU/CUDA body declarations (arguments checked).
 * Private to kernels/ (and the tests and benches that call a body directly); everyone else
 * includes kernels/rope.h, which holds the API and its precision contract.
 * The CUDA declarations are visible in every build: see DSV32_CUDA_BODY in backend_impl.h. */
#ifndef DSV32_ROPE_IMPL_H
#define DSV32_ROPE_IMPL_H

#include "kernels/backend_impl.h"
#include "kernels/rope.h"

/* Reference complex rotation of (re, im) by (c, s): fp32, PyTorch CPU complex multiply order. */
DSV32_HD static inline void dsv32_rope_ref_pair(float re, float im, float c, float s,
						float *out_re, float *out_im)
{
	*out_re = dsv32_fsub_rn(dsv32_fmul_rn(re, c), dsv32_fmul_rn(im, s));
	*out_im = dsv32_fadd_rn(dsv32_fmul_rn(re, s), dsv32_fmul_rn(im, c));
}

/* HF element: round(round(x·c) + round(rot·s)); rb: round to bf16 (BF16 output). */
DSV32_HD static inline float dsv32_rope_hf_elem(float x, float rot, float c, float s, bool rb)
{
	float a = dsv32_fmul_rn(x, c);
	float b = dsv32_fmul_rn(rot, s);
	if (rb) {
		a = dsv32_round_bf16(a);
		b = dsv32_round_bf16(b);
	}
	return dsv32_fadd_rn(a, b); /* the caller's store rounds the sum */
}

typedef enum { DSV32_ROPE_REF = 0, DSV32_ROPE_HF, DSV32_ROPE_PERMUTE } dsv32_rope_mode;
typedef struct {
	dsv32_rope_mode mode;
	void *y; dsv32_dtype yt;
	const void *x; dsv32_dtype xt;
	int64_t B, S, H, D, off, rd;
	const float *freqs; int64_t pos0;       /* REF: [T, rd/2, 2] */
	bool interleaved;                       /* REF */
	const void *cos, *sin; dsv32_dtype ct;  /* HF: [cB, S, rd], cB = 1 or B */
	int64_t cB;
	bool inverse;                           /* PERMUTE */
} dsv32_rope_args;
/* Channel indices of pair i: (re, im). */
DSV32_HD static inline void dsv32_rope_pair_idx(bool interleaved, int64_t i, int64_t half, int64_t *re, int64_t *im)
{
	*re = interleaved ? 2 * i : i;
	*im = interleaved ? 2 * i + 1 : i + half;
}

/* One (b, s, h) row whose rope channels start at element base (of x and y). The row is read
 * into a local buffer first, so y may be x. */
DSV32_HD static inline void dsv32_rope_row(const dsv32_rope_args *a, int64_t b, int64_t s,
					   int64_t base)
{
	float v[DSV32_ROPE_MAX_DIM];
	int64_t rd = a->rd, half = rd / 2;
	for (int64_t j = 0; j < rd; j++)
		v[j] = dsv32_act_load(a->x, a->xt, base + j);
	if (a->mode == DSV32_ROPE_REF) {
		const float *f = a->freqs + (a->pos0 + s) * rd; /* [half][2] */
		for (int64_t i = 0; i < half; i++) {
			int64_t ire, iim;
			float ore, oim;
			dsv32_rope_pair_idx(a->interleaved, i, half, &ire, &iim);
			dsv32_rope_ref_pair(v[ire], v[iim], f[2 * i], f[2 * i + 1], &ore, &oim);
			dsv32_act_store(a->y, a->yt, base + ire, ore);
			dsv32_act_store(a->y, a->yt, base + iim, oim);
		}
	} else if (a->mode == DSV32_ROPE_HF) {
		int64_t cb = a->cB == 1 ? 0 : b, crow = (cb * a->S + s) * rd;
		bool rb = a->yt == DSV32_BF16;
		for (int64_t j = 0; j < rd; j++) {
			float rot = j < half ? -v[j + half] : v[j - half];
			float c = dsv32_act_load(a->cos, a->ct, crow + j);
			float sn = dsv32_act_load(a->sin, a->ct, crow + j);
			dsv32_act_store(a->y, a->yt, base + j, dsv32_rope_hf_elem(v[j], rot, c, sn, rb));
		}
	} else {
		for (int64_t j = 0; j < half; j++) {
			if (!a->inverse) {
				dsv32_act_store(a->y, a->yt, base + j, v[2 * j]);
				dsv32_act_store(a->y, a->yt, base + half + j, v[2 * j + 1]);
			} else {
				dsv32_act_store(a->y, a->yt, base + 2 * j, v[j]);
				dsv32_act_store(a->y, a->yt, base + 2 * j + 1, v[half + j]);
			}
		}
	}
}

void dsv32_rope_cpu(const dsv32_rope_args *a);
dsv32_status dsv32_rope_cuda(dsv32_backend *be, const dsv32_rope_args *a, dsv32_error *err);

#endif
