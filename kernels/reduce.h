/* reduce.h: fp32 reductions in PyTorch CPU's summation order (docs/numerics.md).
 *
 * PyTorch CPU sums a contiguous fp32 row (`x.sum(-1)`, and `x.mean(-1)` = that sum / n) with
 * cascade_sum (aten/src/ATen/native/cpu/SumKernel.cpp, the same algorithm in torch 1.13 and
 * 2.x). With L = Vectorized<float>::size() lanes (8 = AVX2, 16 = AVX-512) and n elements:
 *
 *   n >= L  (vectorized_inner_sum): the row is nv = n / L whole vectors V_0 .. V_{nv-1}
 *     (V_v = x[v·L .. v·L + L-1], added lane-wise) and a scalar tail x[nv·L .. n-1].
 *     row_sum with ilp 4 views the vectors as nv/4 "rows" of 4 (ni = nv / 4) and runs
 *     multi_row_sum on them: four-level cascade, level step 2^p with p = max(4, CeilLog2(ni)/4):
 *       acc[0][k] += V_{4i+k} for 2^p consecutive i, then acc[1] += acc[0], acc[0] = 0, and
 *       further up (acc[j] += acc[j-1], acc[j-1] = 0) while i is a multiple of 2^(j·p);
 *       the last ni mod 2^p rows go into acc[0]; then acc[0] += acc[1]; += acc[2]; += acc[3].
 *     Then the leftover vectors V_{4·ni} .. V_{nv-1} are added to slot 0 in order, then
 *     slot0 += slot1; += slot2; += slot3 (all lane-wise).
 *     Finally s = 0; s += each tail scalar in order; s += lane 0, lane 1, ..., lane L-1.
 *   n < L   (scalar_inner_sum): the same row_sum on scalars: slots k = 0..3 get x[4i+k] for
 *     i < n/4, slot 0 gets the tail x[4·(n/4) .. n-1] in order, then slot0 + slot1 + slot2 +
 *     slot3 (for n < 16 the level cascade never triggers).
 *   The output is 0 + s (the output tensor is zero-filled and accumulated into: -0 becomes +0).
 * Every addition is one fp32 addition rounded to nearest even (no FMA, no reassociation).
 * The accumulator type is fp32 (at::acc_type<float, true>), never double.
 *
 * Which L: torch picks the kernel by CPU capability. The golden recordings of this project
 * (docs/numerics.md) were measured: see DSV32_TORCH_LANES_DEFAULT.
 *
 * Contract of dsv32_sum_f32_torch(x, n, lanes): the exact fp32 result of the algorithm above
 * (bit-identical to torch for finite inputs, NaN/inf propagate as IEEE additions do);
 * lanes must be 8 or 16 (any other value is treated as 16). n >= 0 (n = 0 gives +0).
 * dsv32_sum_torch_fn(load, ctx, n, lanes) is the same with x[i] = load(ctx, i) (called once per
 * element, in increasing i), so callers can sum values they compute on the fly (e.g. r², with
 * r a bf16 + bf16 residual add) without a buffer.
 * dsv32_mean_f32_torch(x, n, lanes) = fp32(sum / fp32(n)): torch CPU's mean_out is
 * sum_out(...).div_(n), a true fp32 division (not a multiply by 1/n).
 */
#ifndef DSV32_REDUCE_H
#define DSV32_REDUCE_H

#include <math.h>
#include <stdint.h>

#include "kernels/elementwise.h"

/* Lane count L used by the ops that reproduce torch's order (RMSNorm today). The default is
 * the one measured against the golden recordings (docs/numerics.md); the environment variable
 * backend's torch_lanes (8 or 16, set by the models from their options) decides; where it is 0,
 * DSV32_TORCH_LANES=8 or 16 may override the default for experiments. */
#ifndef DSV32_TORCH_LANES_DEFAULT
#define DSV32_TORCH_LANES_DEFAULT 16
#endif
#define DSV32_TORCH_LANES_MAX 16
int dsv32_torch_lanes(const dsv32_backend *be);
/* torch major version whose CPU kernel forms to follow where they differ (LayerNorm's affine
 * step, layernorm.h): 1 (torch 1.13, the reference golden; default) or 2 (torch 2.x, the
 * transformers golden); the backend's torch_major decides, DSV32_TORCH_MAJOR=1|2 where it is 0. */
int dsv32_torch_major(const dsv32_backend *be);

typedef float (*dsv32_reduce_load_fn)(const void *ctx, int64_t i);

/* utils::CeilLog2 of ATen: 1 for x <= 2, else floor(log2(x - 1)) + 1. */
DSV32_HD static inline int64_t dsv32_torch_ceil_log2(int64_t x)
{
	if (x <= 2)
		return 1;
	uint64_t v = (uint64_t)x - 1;
	int64_t last = -1;
	while (v) {
		v >>= 1;
		last++;
	}
	return last + 1;
}

DSV32_HD static inline float dsv32_sum_torch_fn(dsv32_reduce_load_fn load, const void *ctx,
						int64_t n, int lanes)
{
	int L = lanes == 8 ? 8 : 16;
	if (n < L) {
		/* scalar row_sum, ilp 4; n < 16 so the level cascade never fires */
		float p[4] = {0.0f, 0.0f, 0.0f, 0.0f};
		int64_t ni = n / 4, i;
		for (i = 0; i < ni; i++)
			for (int k = 0; k < 4; k++)
				p[k] = dsv32_fadd_rn(p[k], load(ctx, 4 * i + k));
		for (i = ni * 4; i < n; i++)
			p[0] = dsv32_fadd_rn(p[0], load(ctx, i));
		for (int k = 1; k < 4; k++)
			p[0] = dsv32_fadd_rn(p[0], p[k]);
		return dsv32_fadd_rn(0.0f, p[0]);
	}
	float acc[4][4][DSV32_TORCH_LANES_MAX];
	for (int j = 0; j < 4; j++)
		for (int k = 0; k < 4; k++)
			for (int l = 0; l < L; l++)
				acc[j][k][l] = 0.0f;
	int64_t nv = n / L, ni = nv / 4;
	int64_t lp = dsv32_torch_ceil_log2(ni) / 4;
	if (lp < 4)
		lp = 4;
	int64_t step = (int64_t)1 << lp, mask = step - 1, i = 0;
	while (i + step <= ni) {
		for (int64_t j = 0; j < step; j++, i++)
			for (int k = 0; k < 4; k++)
				for (int l = 0; l < L; l++)
					acc[0][k][l] = dsv32_fadd_rn(acc[0][k][l],
								     load(ctx, (4 * i + k) * L + l));
		for (int j = 1; j < 4; j++) {
			for (int k = 0; k < 4; k++)
				for (int l = 0; l < L; l++) {
					acc[j][k][l] = dsv32_fadd_rn(acc[j][k][l], acc[j - 1][k][l]);
					acc[j - 1][k][l] = 0.0f;
				}
			if ((i & (mask << (j * lp))) != 0)
				break;
		}
	}
	for (; i < ni; i++)
		for (int k = 0; k < 4; k++)
			for (int l = 0; l < L; l++)
				acc[0][k][l] = dsv32_fadd_rn(acc[0][k][l], load(ctx, (4 * i + k) * L + l));
	for (int j = 1; j < 4; j++)
		for (int k = 0; k < 4; k++)
			for (int l = 0; l < L; l++)
				acc[0][k][l] = dsv32_fadd_rn(acc[0][k][l], acc[j][k][l]);
	for (int64_t v = ni * 4; v < nv; v++)
		for (int l = 0; l < L; l++)
			acc[0][0][l] = dsv32_fadd_rn(acc[0][0][l], load(ctx, v * L + l));
	for (int k = 1; k < 4; k++)
		for (int l = 0; l < L; l++)
			acc[0][0][l] = dsv32_fadd_rn(acc[0][0][l], acc[0][k][l]);
	float s = 0.0f;
	for (int64_t t = nv * L; t < n; t++)
		s = dsv32_fadd_rn(s, load(ctx, t));
	for (int l = 0; l < L; l++)
		s = dsv32_fadd_rn(s, acc[0][0][l]);
	return dsv32_fadd_rn(0.0f, s);
}

DSV32_HD static inline float dsv32_reduce_load_f32(const void *ctx, int64_t i)
{
	return ((const float *)ctx)[i];
}

DSV32_HD static inline float dsv32_sum_f32_torch(const float *x, int64_t n, int lanes)
{
	return dsv32_sum_torch_fn(dsv32_reduce_load_f32, x, n, lanes);
}

DSV32_HD static inline float dsv32_mean_f32_torch(const float *x, int64_t n, int lanes)
{
	return dsv32_fdiv_rn(dsv32_sum_f32_torch(x, n, lanes), (float)n);
}

/* ---- LayerNorm moments: torch CPU RowwiseMoments (aten/src/ATen/native/cpu/moments_utils.h) ----
 * Welford per lane over chunks of 16 vectors, chunk results merged up a binary cascade of depth
 * CeilLog2(#chunks), then the scalar tail (Welford with m1 += delta / count), then the L lane
 * results merged into it in lane order (AddMoments). kvec is the vector width in INPUT elements:
 * L for fp32 input (one fp32 stream per vector), 2L for bf16 input (torch 2.x converts a bf16
 * vector to two fp32 vectors, each run as its own Welford stream and merged into the cascade one
 * after the other; lane results then count 2·(N / 2L) elements). Every op is one fp32 op
 * (c_j = fp32(1 / (j+1)), merge weight c = fp32(n_add) / fp32(n)), no FMA:
 *   chunk step:  d = x - m1; m1 = m1 + d·c_j; m2 = m2 + d·(x - m1)
 *   merge (AddMoments): n = m0 + n_add; c = n_add / n (0 if n = 0); d = m1_add - m1;
 *                m1 = m1 + c·d; m2 = m2 + (m2_add + ((d·d)·c)·fp32(m0)); m0 = n
 * Returns mean = m1 and var = m2 / fp32(N) (population variance).
 * fused = true: every a·b + c above is one fused multiply-add (torch 2.x's AVX2 build, compiled
 * with -mfma and GCC's default fp-contract, contracts them; measured with torch 2.15). */
#define DSV32_MOMENTS_MAX_DEPTH 64

/* a·b + c: one rounding (fused) when fused, else two. */
DSV32_HD static inline float dsv32_muladd_opt(float a, float b, float c, bool fused)
{
	return fused ? fmaf(a, b, c) : dsv32_fadd_rn(dsv32_fmul_rn(a, b), c);
}

DSV32_HD static inline void dsv32_moments_merge(int64_t n_add, float m1_add, float m2_add,
						int64_t *m0, float *m1, float *m2, bool fused)
{
	int64_t n = *m0 + n_add;
	float c = n == 0 ? 0.0f : dsv32_fdiv_rn((float)n_add, (float)n);
	float d = dsv32_fsub_rn(m1_add, *m1);
	*m1 = dsv32_muladd_opt(c, d, *m1, fused);
	float t = dsv32_muladd_opt(dsv32_fmul_rn(dsv32_fmul_rn(d, d), c), (float)*m0, m2_add, fused);
	*m2 = dsv32_fadd_rn(*m2, t);
	*m0 = n;
}

DSV32_HD static inline void dsv32_moments_torch_fn(dsv32_reduce_load_fn load, const void *ctx,
						   int64_t N, int kvec, int lanes, bool fused,
						   float *mean, float *var)
{
	int L = lanes == 8 ? 8 : 16;
	int S = kvec == 2 * L ? 2 : 1; /* fp32 streams per input vector */
	int64_t V = (int64_t)S * L;    /* input elements per vector */
	int64_t n = N / V, m = (n + 15) / 16, depth = dsv32_torch_ceil_log2(m);
	int64_t m0s[DSV32_MOMENTS_MAX_DEPTH];
	float m1s[DSV32_MOMENTS_MAX_DEPTH][DSV32_TORCH_LANES_MAX];
	float m2s[DSV32_MOMENTS_MAX_DEPTH][DSV32_TORCH_LANES_MAX];
	for (int64_t d = 0; d < depth; d++) {
		m0s[d] = 0;
		for (int l = 0; l < L; l++)
			m1s[d][l] = m2s[d][l] = 0.0f;
	}
	for (int64_t i = 0; i < m; i++) {
		int64_t cnt = n - i * 16 < 16 ? n - i * 16 : 16;
		for (int q = 0; q < S; q++) {
			for (int l = 0; l < L; l++) {
				float a1 = 0.0f, a2 = 0.0f;
				for (int64_t j = 0; j < cnt; j++) {
					float x = load(ctx, (i * 16 + j) * V + q * L + l);
					float cj = dsv32_fdiv_rn(1.0f, (float)(j + 1));
					float d = dsv32_fsub_rn(x, a1);
					a1 = dsv32_muladd_opt(d, cj, a1, fused);
					a2 = dsv32_muladd_opt(d, dsv32_fsub_rn(x, a1), a2, fused);
				}
				int64_t m0 = m0s[0];
				dsv32_moments_merge(cnt, a1, a2, &m0, &m1s[0][l], &m2s[0][l], fused);
				if (l == L - 1)
					m0s[0] = m0;
			}
		}
		int64_t mask = i + 1;
		for (int64_t j = 1; j < depth && (mask & 1) == 0; j++) {
			for (int l = 0; l < L; l++) {
				int64_t m0 = m0s[j];
				dsv32_moments_merge(m0s[j - 1], m1s[j - 1][l], m2s[j - 1][l], &m0,
						    &m1s[j][l], &m2s[j][l], fused);
				if (l == L - 1)
					m0s[j] = m0;
				m1s[j - 1][l] = m2s[j - 1][l] = 0.0f;
			}
			m0s[j - 1] = 0;
			mask >>= 1;
		}
	}
	for (int64_t d = 1; d < depth; d++)
		for (int l = 0; l < L; l++) {
			int64_t m0 = m0s[0];
			dsv32_moments_merge(m0s[d], m1s[d][l], m2s[d][l], &m0, &m1s[0][l], &m2s[0][l], fused);
			if (l == L - 1)
				m0s[0] = m0;
		}
	int64_t c0 = 0;
	float m1 = 0.0f, m2 = 0.0f;
	for (int64_t t = n * V; t < N; t++) {
		float x = load(ctx, t);
		float d = dsv32_fsub_rn(x, m1);
		c0++;
		m1 = dsv32_fadd_rn(m1, dsv32_fdiv_rn(d, (float)c0));
		m2 = dsv32_muladd_opt(d, dsv32_fsub_rn(x, m1), m2, fused);
	}
	for (int l = 0; l < L; l++)
		dsv32_moments_merge(n * S, depth > 0 ? m1s[0][l] : 0.0f,
				    depth > 0 ? m2s[0][l] : 0.0f, &c0, &m1, &m2, fused);
	*mean = m1;
	*var = dsv32_fdiv_rn(m2, (float)N);
}

#endif
