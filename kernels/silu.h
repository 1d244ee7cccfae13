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
 * Errors: DSV32_E_SHAPE, DSV32_E_DTYPE, DSV32_E_USAGE, DSV32_E_UNSUPPORTED.
 */
#ifndef DSV32_SILU_H
#define DSV32_SILU_H

#include "kernels/elementwise.h"

DSV32_HD static inline float dsv32_silu_elem(float x)
{
	return dsv32_fdiv_rn(x, dsv32_fadd_rn(1.0f, expf(-x)));
}

dsv32_status dsv32_silu_mul_ref(dsv32_backend *be, dsv32_tensor *h, const dsv32_tensor *a,
				const dsv32_tensor *b, dsv32_error *err);
dsv32_status dsv32_silu_mul_hf(dsv32_backend *be, dsv32_tensor *h, const dsv32_tensor *a,
			       const dsv32_tensor *b, dsv32_error *err);

#endif
