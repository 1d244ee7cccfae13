/* yarn.h: YaRN rotary frequency tables and the mscale² softmax scale, reference
 * (`precompute_freqs_cis`, docs/spec/ref_layout.md §A.4, §A.8) and HF (`_compute_yarn_parameters`
 * and the per-forward cos/sin, docs/spec/hf_layout.md §3.1-3.2, §4.2). Tables are computed on the host
 * and uploaded to the backend's device.
 *
 * Parameters (dsv32_yarn_params, filled from a config by dsv32_yarn_params_from_config):
 *   dim = qk_rope_head_dim (64), base = rope_theta, factor = rope_factor, L0 = original_seq_len,
 *   beta_fast, beta_slow, mscale, mscale_all_dim, max_seq_len (reference), truncate (HF v5,
 *   default true), attention_factor (HF, only when has_attention_factor).
 *
 * dsv32_yarn_ref_freqs(p, freqs[dim/2])
 *   freqs[i] = 1.0f / fp32(pow(base, e_i)), e_i = fp32(2i) / fp32(dim), the power taken in
 *   double and rounded to fp32 (the spec's table; torch's fp32 pow may differ by 1 ulp).
 *   If max_seq_len > L0 (the reference's condition): fcd(r) = dim·ln(L0/(r·2π))/(2·ln base)
 *   in double; low = max(floor(fcd(beta_fast)), 0), high = min(ceil(fcd(beta_slow)), dim−1);
 *   ramp[i] = clamp((fp32(i) − low) / fp32(high − low), 0, 1) (high − low = 0.001 if equal),
 *   smooth = 1 − ramp, freqs = (freqs / fp32(factor))·(1 − smooth) + freqs·smooth, each op fp32.
 * dsv32_yarn_ref_table_host(p, tab[max_seq_len · dim/2 · 2])
 *   tab[t][i] = (cosf(θ), sinf(θ)), θ = fp32(t) · freqs[i] rounded to fp32 (torch.outer, then
 *   torch.polar with magnitude 1: no mscale on cos/sin). glibc cosf/sinf are correctly rounded
 *   in nearly every case (< 1 ulp); torch's vectorised (Sleef u10) or CUDA cosf/sinf may differ
 *   from them by 1 fp32 ulp on some angles.
 * dsv32_yarn_ref_table(be, out, p, err): allocates out = F32 [max_seq_len, dim/2, 2] on be's
 *   device and fills it (the freqs layout dsv32_rope_ref takes).
 * dsv32_softmax_scale_ref(qk_head_dim, p) = qk_head_dim^-0.5 · m · m (double, left to right),
 *   m = 0.1·mscale·ln(factor) + 1, applied iff max_seq_len > L0; else qk_head_dim^-0.5.
 *   Callers round it to fp32 when they multiply (192, 671B: 0.1352337788608801 → 0.13523377).
 *
 * dsv32_yarn_hf_inv_freq(p, inv_freq[dim/2], &attention_factor)
 *   pos[i] = fp32(pow(base, e_i)) (e_i as above), f_extra = 1.0f / pos, f_inter =
 *   1.0f / fp32(fp32(factor) · pos) (the product rounded first); low/high as above, floored /
 *   ceiled only if truncate; ramp in fp32 with fp32(low), fp32(high − low);
 *   ext = 1 − ramp; inv_freq = f_inter·(1 − ext) + f_extra·ext (fp32 ops).
 *   Unconditional (HF applies YaRN whenever rope type is yarn).
 *   attention_factor = p->attention_factor if given, else if mscale and mscale_all_dim are
 *   both nonzero get_mscale(factor, mscale)/get_mscale(factor, mscale_all_dim), else
 *   get_mscale(factor, 1); get_mscale(s, m) = 1 if s <= 1 else 0.1·m·ln(s) + 1 (double).
 * dsv32_yarn_hf_cos_sin(be, cos, sin, inv_freq, attention_factor, positions, B, S, err)
 *   positions: host int64 [B·S] (position_ids); cos, sin [B, S, dim] BF16 or F32, allocated by
 *   the caller on be's device. θ = fp32(pos) · inv_freq[i] (the K = 1 fp32 matmul: one
 *   rounding); emb = cat(θ, θ); cos = round_out( fp32(cosf(emb)) · fp32(attention_factor) ),
 *   the same for sin (BF16 out: fp32 value rounded once to bf16).
 * dsv32_softmax_scale_hf(qk_head_dim, p) = qk_head_dim^-0.5 · m · m with
 *   m = get_mscale(factor, mscale_all_dim) when the rope is yarn and mscale_all_dim != 0, else
 *   qk_head_dim^-0.5 (double; PyTorch multiplies by fp32(scaling)).
 */
#ifndef DSV32_YARN_H
#define DSV32_YARN_H

#include "core/config.h"
#include "kernels/backend.h"
#include "kernels/elementwise.h"

typedef struct {
	int dim;                 /* rope dims, even (64) */
	double base;             /* rope_theta (10000) */
	double factor;           /* rope_factor (40) */
	int64_t original_seq_len; /* L0 (4096) */
	double beta_fast, beta_slow; /* 32, 1 */
	double mscale, mscale_all_dim; /* 1, 1 */
	int64_t max_seq_len;     /* reference table length (16384) */
	bool truncate;           /* HF v5 rope_parameters.truncate (true) */
	bool yarn;               /* HF: rope type is yarn */
	bool has_attention_factor;
	double attention_factor;
} dsv32_yarn_params;

void dsv32_yarn_params_from_config(dsv32_yarn_params *p, const dsv32_config *c);

void dsv32_yarn_ref_freqs(const dsv32_yarn_params *p, float *freqs);
void dsv32_yarn_ref_table_host(const dsv32_yarn_params *p, float *tab);
dsv32_status dsv32_yarn_ref_table(dsv32_backend *be, dsv32_tensor *out, const dsv32_yarn_params *p,
				  dsv32_error *err);
double dsv32_softmax_scale_ref(int64_t qk_head_dim, const dsv32_yarn_params *p);

void dsv32_yarn_hf_inv_freq(const dsv32_yarn_params *p, float *inv_freq, double *attention_factor);
dsv32_status dsv32_yarn_hf_cos_sin(dsv32_backend *be, dsv32_tensor *cos, dsv32_tensor *sin,
				   const float *inv_freq, double attention_factor,
				   const int64_t *positions, int64_t B, int64_t S, dsv32_error *err);
double dsv32_softmax_scale_hf(int64_t qk_head_dim, const dsv32_yarn_params *p);

#endif
