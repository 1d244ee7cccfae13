/* silu_cpu.c: CPU body of the SiLU-gated products (silu.h).
 *
 * With AVX2 the elements run in blocks (block_avx2): the loads, widening, negation, 1 + e, the
 * true division x / (1 + e), the optional bf16 rounding of s, the multiply by b and the stores
 * in 8 lanes; e = glibc expf(−x) through dsv32_expf_inplace (kernels/expf_avx2.h): glibc's expf
 * in 8 lanes, the same bits as the scalar call the portable loop makes, where the guard accepted
 * the running libm (otherwise expf once per element). The same fp32 ops on the same operands,
 * no FMA in the fp32 ops, so every non-NaN output is bit-identical to the portable loop; a NaN
 * output is NaN at the same position (sign and payload unspecified, docs/numerics.md "NaN").
 * h may alias a or b: each block's inputs are read before its outputs are written. */
#include "kernels/silu_impl.h"
#include "kernels/cpu_parallel.h"
#include "kernels/elementwise_cpu_avx2.h"
#include "kernels/expf_avx2.h"

#include <stdlib.h>

#define SILU_BLOCK 256 /* elements per block: the expf buffer stays on the stack */

#ifdef DSV32_CPU_AVX2
DSV32_AVX2_FN static void block_avx2(void *h, dsv32_dtype ht, const void *a, dsv32_dtype at,
				     const void *b, dsv32_dtype bt, int64_t i0, int64_t n,
				     bool hf)
{
	float e[SILU_BLOCK];
	const __m256 sign = _mm256_set1_ps(-0.0f), one = _mm256_set1_ps(1.0f);
	int64_t n8 = n & ~(int64_t)7, j;
	for (j = 0; j < n8; j += 8)
		_mm256_storeu_ps(e + j, _mm256_xor_ps(dsv32_ld8(a, at, i0 + j), sign));
	for (; j < n; j++)
		e[j] = -dsv32_act_load(a, at, i0 + j);
	dsv32_expf_inplace(e, n);
	for (j = 0; j < n8; j += 8) {
		__m256 x = dsv32_ld8(a, at, i0 + j);
		__m256 s = _mm256_div_ps(x, _mm256_add_ps(one, _mm256_loadu_ps(e + j)));
		if (hf && ht == DSV32_BF16)
			s = dsv32_round8(s);
		dsv32_st8(h, ht, i0 + j, _mm256_mul_ps(s, dsv32_ld8(b, bt, i0 + j)));
	}
	for (; j < n; j++) {
		float x = dsv32_act_load(a, at, i0 + j);
		float s = dsv32_fdiv_rn(x, dsv32_fadd_rn(1.0f, e[j]));
		if (hf)
			s = dsv32_act_round(ht, s);
		dsv32_act_store(h, ht, i0 + j, dsv32_fmul_rn(s, dsv32_act_load(b, bt, i0 + j)));
	}
}
#endif

void dsv32_silu_mul_cpu_portable(void *h, dsv32_dtype ht, const void *a, dsv32_dtype at,
				 const void *b, dsv32_dtype bt, int64_t n, bool hf)
{
#pragma omp parallel for schedule(static) if (dsv32_par_worth((double)n))
	for (int64_t i = 0; i < n; i++) {
		float s = dsv32_silu_elem(dsv32_act_load(a, at, i));
		if (hf)
			s = dsv32_act_round(ht, s);
		dsv32_act_store(h, ht, i, dsv32_fmul_rn(s, dsv32_act_load(b, bt, i)));
	}
}

void dsv32_silu_mul_cpu(void *h, dsv32_dtype ht, const void *a, dsv32_dtype at, const void *b,
			dsv32_dtype bt, int64_t n, bool hf)
{
#ifdef DSV32_CPU_AVX2
	if (dsv32_cpu_has_avx2()) {
		int64_t nb = (n + SILU_BLOCK - 1) / SILU_BLOCK;
#pragma omp parallel for schedule(static) if (dsv32_par_worth((double)n))
		for (int64_t k = 0; k < nb; k++) {
			int64_t i0 = k * SILU_BLOCK;
			int64_t m = n - i0 < SILU_BLOCK ? n - i0 : SILU_BLOCK;
			block_avx2(h, ht, a, at, b, bt, i0, m, hf);
		}
		return;
	}
#endif
	dsv32_silu_mul_cpu_portable(h, ht, a, at, b, bt, n, hf);
}

/* exp=torch-cpu: s = torch's silu kernel on the tensor upstream passes it (silu.h "_rule"),
 * then the product as above; one fp32 buffer of n. */
dsv32_status dsv32_silu_mul_cpu_torch(void *h, dsv32_dtype ht, const void *a, dsv32_dtype at,
				      const void *b, dsv32_dtype bt, int64_t n, bool hf,
				      const dsv32_exp_opts *xo, dsv32_error *err)
{
	float *s = malloc((size_t)n * sizeof *s);
	if (!s)
		return DSV32_FAIL(err, DSV32_E_NOMEM, "silu_mul: %lld floats for exp=torch-cpu",
				  (long long)n);
	int64_t inner = xo->inner > 0 ? xo->inner : n;
	if (hf) { /* F.silu(gate) in gate's dtype: the kernel of a's dtype, rounded to it */
		dsv32_silu_torch_cpu(s, DSV32_F32, a, at, n, inner, xo->threads, xo->cap);
	} else { /* F.silu(w1(x).float()): the fp32 kernel on the widened copy */
#pragma omp parallel for schedule(static) if (dsv32_par_worth((double)n))
		for (int64_t i = 0; i < n; i++)
			s[i] = dsv32_act_load(a, at, i);
		dsv32_silu_torch_cpu(s, DSV32_F32, s, DSV32_F32, n, inner, xo->threads, xo->cap);
	}
#pragma omp parallel for schedule(static) if (dsv32_par_worth((double)n))
	for (int64_t i = 0; i < n; i++) {
		float si = hf ? dsv32_act_round(at, s[i]) : s[i];
		dsv32_act_store(h, ht, i, dsv32_fmul_rn(si, dsv32_act_load(b, bt, i)));
	}
	free(s);
	return DSV32_OK;
}
