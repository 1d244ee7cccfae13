/* rope.h: rotary embedding, reference (fp32 complex rotation, one rounding; reference_layout.md
 * §A.5) and HF (bf16 rotate_half arithmetic; hf_layout.md §3.2-3.5), and the de-interleave
 * permutation HF applies to the MLA rope channels.
 *
 * Layout for all three ops: x and y are [B, S, H, D] (ndim 4) or [B, S, D] (ndim 3, H = 1),
 * BF16 or F32, same shape. The rope channels of each (b, s, h) row are the rd columns
 * [off, off + rd) of that row (rd = 64 in the models; e.g. an MLA q head [.., 192] has off = 128,
 * an indexer head [.., 128] off = 0, wkv_a's output [B, S, 576] off = 512 with H = 1).
 * Only those columns of y are written; other columns of y are left untouched. y may be x
 * (in place) and otherwise must not overlap it.
 *
 * dsv32_rope_ref(be, y, x, freqs, pos0, off, interleaved, err)
 *   freqs F32 [T, rd/2, 2]: (cos θ, sin θ) of table row t (kernels/yarn.h builds it); row
 *   s of the call uses table row pos0 + s (the reference's freqs_cis[start_pos : start_pos+S],
 *   shared by every batch row). Requires pos0 + S <= T.
 *   Pairs: interleaved (MLA)  (x[2i], x[2i+1]);  half-split (indexer) (x[i], x[i + rd/2]).
 *     re' = re·c − im·s,  im' = re·s + im·c   in fp32 (each product and the sum/difference
 *     rounded to fp32, as PyTorch CPU's complex64 multiply: (a+bi)(c+di) = (ac−bd) + (ad+bc)i),
 *     then one rounding to y's dtype.
 * dsv32_rope_hf(be, y, x, cos, sin, off, err)
 *   cos, sin [S, rd] or [B, S, rd], BF16 or F32 (HF: bf16, cos[j] = cos[j + rd/2]).
 *   Half-split pairs on the channels as given (for MLA, apply dsv32_permute_deinterleave
 *   first). With rot = rotate_half(x) = [−x2, x1]:
 *     out = round( round(x·cos) + round(rot·sin) )
 *   where round is bf16 RNE when y is BF16 (PyTorch bf16 elementwise ops: each computed in fp32
 *   and rounded: bf16(x·cos), bf16(rot·sin), bf16(sum)), and none when y is F32.
 * dsv32_permute_deinterleave(be, y, x, off, rd, inverse, err)
 *   P = [0, 2, ..., rd−2, 1, 3, ..., rd−1]: forward y[j] = x[P[j]] (y[j] = x[2j],
 *   y[rd/2 + j] = x[2j + 1]); inverse y[P[j]] = x[j] (back to the reference order, for taps).
 *   On the rd columns at off, values copied (rounded to y's dtype if it differs). In place ok.
 *
 * NaN:    a NaN output is NaN at the same position; its sign and payload are unspecified (not
 *         part of the contract, docs/numerics.md "NaN"; the CPU AVX2 and scalar paths and the
 *         CUDA body may return different NaNs). Every non-NaN output is as stated above.
 * rd must be even and <= 256 (DSV32_ROPE_MAX_DIM). Errors: DSV32_E_SHAPE, DSV32_E_DTYPE,
 * DSV32_E_USAGE, DSV32_E_UNSUPPORTED.
 */
#ifndef DSV32_ROPE_H
#define DSV32_ROPE_H

#include "kernels/elementwise.h"

#define DSV32_ROPE_MAX_DIM 256

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

dsv32_status dsv32_rope_ref(dsv32_backend *be, dsv32_tensor *y, const dsv32_tensor *x,
			    const dsv32_tensor *freqs, int64_t pos0, int64_t off, bool interleaved,
			    dsv32_error *err);
dsv32_status dsv32_rope_hf(dsv32_backend *be, dsv32_tensor *y, const dsv32_tensor *x,
			   const dsv32_tensor *cos, const dsv32_tensor *sin, int64_t off,
			   dsv32_error *err);
dsv32_status dsv32_permute_deinterleave(dsv32_backend *be, dsv32_tensor *y, const dsv32_tensor *x,
					int64_t off, int64_t rd, bool inverse, dsv32_error *err);

/* ---- internal: bodies behind the dispatchers (arguments already checked) ---- */
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
#ifdef DSV32_HAVE_CUDA
dsv32_status dsv32_rope_cuda(dsv32_backend *be, const dsv32_rope_args *a, dsv32_error *err);
#endif

#endif
