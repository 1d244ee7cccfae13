/* silu.h: the SiLU-gated product of the FFNs (docs/spec/ref_layout.md §A.10, Part E.13; docs/spec/hf_layout.md
 * §5 "down(silu(gate(x)) * up(x))").
 *
 * silu(x) = x / (1 + expf(−x)) in fp32: PyTorch CPU's formula (fp32 negate, exp, add 1, divide;
 * a bf16 input is widened to fp32 and the result rounded once).
 *
 * dsv32_silu_mul_ref(be, h, a, b, err)    reference: h = round_h( silu(f32 a) · f32 b )
 *   (`(F.silu(w1(x).float()) * w3(x).float()).type_as(x)`): one rounding.
 * dsv32_silu_mul_hf(be, h, a, b, err)     HF: s = round_h(silu(f32 a)); h = round_h( s · f32 b )
 *   (bf16 silu, then a bf16 × bf16 multiply computed in fp32 and rounded): two roundings when
 *   h is BF16, none when F32.
 * a, b, h [rows, n] BF16 or F32, same numel; h may alias a or b.
 * exp: glibc expf on the host, expf on the device, Sleef u10 in PyTorch: silu may differ from
 * torch by an fp32 ulp before the bf16 rounding. The host AVX2 body computes glibc's expf in 8
 * lanes (kernels/expf_avx2.h: the same bits, used only where a self-check accepts the running
 * libm, else the scalar expf).
 * CUDA body vs CPU body (the same code but expf, a few fp32 ulps apart): ref form, BF16 h:
 * <= 1 bf16 ulp (one rounding of values a few fp32 ulps apart); HF form, BF16 h: <= 2 bf16
 * ulps (bf16(silu) can flip by one ulp u_s; |b| * u_s < 2 ulps of s*b, and rounding both
 * products keeps the difference <= 2 ulps); F32 h: a few fp32 ulps (the expf difference
 * carried through one add, one divide and one multiply).
 * NaN:    a NaN output is NaN at the same position; its sign and payload are unspecified (not
 *         part of the contract, docs/numerics.md "NaN"; the CPU AVX2 and scalar paths and the
 *         CUDA body may return different NaNs). Every non-NaN output is as stated above.
 *
 * dsv32_silu_mul_ref_rule / dsv32_silu_mul_hf_rule(be, h, a, b, xo, err)
 *   the same products with silu's exp by rule xo (kernels/exp_torch.h; NULL or libm: exactly
 *   the functions above). torch-cpu (CPU only; DSV32_E_UNSUPPORTED on CUDA, where torch uses
 *   CUDA's expf) computes silu as torch's CPU kernel on the tensor upstream passes it
 *   (dsv32_silu_torch_cpu: Sleef's expf_u10 in the vector body, expf in the scalar tail, by
 *   position, thread chunk and row xo->inner):
 *     ref: upstream's F.silu(w1(x).float()): the fp32 kernel on f32(a), contiguous (inner 0);
 *          s unrounded, h = round_h(s · f32 b).
 *     hf:  F.silu(gate) in a's dtype (the layouts' act dtype: a, h same dtype, else
 *          DSV32_E_DTYPE): s = round_a(silu); h = round_h(s · f32 b). The routed experts'
 *          gate is gate_up.chunk(2, -1)[0]: inner = I.
 *   For BF16 a the hf rule changes nothing: of the 65536 bf16 inputs, 122 fp32 silu values
 *   differ between Sleef's and glibc's exp and none rounds to a different bf16
 *   (fixtures/exp_torch/, checked exhaustively). It matters for F32 activations and ref.
 *   Extra errors: DSV32_E_USAGE (threads < 1, inner not dividing n), DSV32_E_NOMEM.
 * Errors: DSV32_E_SHAPE, DSV32_E_DTYPE, DSV32_E_USAGE, DSV32_E_UNSUPPORTED.
 */
#ifndef DSV32_SILU_H
#define DSV32_SILU_H

#include "kernels/elementwise.h"
#include "kernels/exp_torch.h"

DSV32_HD static inline float dsv32_silu_elem(float x)
{
	return dsv32_fdiv_rn(x, dsv32_fadd_rn(1.0f, expf(-x)));
}

dsv32_status dsv32_silu_mul_ref(dsv32_backend *be, dsv32_tensor *h, const dsv32_tensor *a,
				const dsv32_tensor *b, dsv32_error *err);
dsv32_status dsv32_silu_mul_hf(dsv32_backend *be, dsv32_tensor *h, const dsv32_tensor *a,
			       const dsv32_tensor *b, dsv32_error *err);
dsv32_status dsv32_silu_mul_ref_rule(dsv32_backend *be, dsv32_tensor *h, const dsv32_tensor *a,
				     const dsv32_tensor *b, const dsv32_exp_opts *xo,
				     dsv32_error *err);
dsv32_status dsv32_silu_mul_hf_rule(dsv32_backend *be, dsv32_tensor *h, const dsv32_tensor *a,
				    const dsv32_tensor *b, const dsv32_exp_opts *xo,
				    dsv32_error *err);

#endif
