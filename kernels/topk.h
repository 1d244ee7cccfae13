/* topk.h: row-wise top-k with a pinned tie rule (docs/spec/ref_layout.md §A.9 step 11, §A.11;
 * golden README "Top-k ties", patch P5), plus small fp32 helpers shared by the k3 ops
 * (topk, router, indexer, attention).
 *
 * dsv32_topk(be, idx_out, val_out, x, k, err)
 *   x        F32|BF16 [..., n]   rows = every leading dim flattened
 *   idx_out  I64|I32  [..., k]   out: same leading dims as x; positions in 0..n-1
 *   val_out  NULL, or F32 or x's dtype [..., k]: out, the selected values (exact copies)
 *   k        1 <= k <= n (DSV32_E_USAGE otherwise)
 * Order:  values are ordered like CUDA's radix select (dsv32_topk_key): -inf < finite < +inf <
 *         NaN (every NaN equal, whatever its sign or payload), and -0.0 < +0.0.
 * Ties:   (the CUDA rule, P5) the keys strictly above the k-th largest key are taken, then the
 *         keys equal to the k-th in increasing index order until k are taken. Output sorted by
 *         key descending, equal keys in increasing index order. Equivalently: the first k of
 *         the stable sort by (key desc, index asc). Identical to torch.topk(sorted=True)
 *         whenever no tie straddles the k-th position.
 * Exact:  no arithmetic; CPU and CUDA give identical bits.
 * Bodies: CPU radix select (4 passes of 8 bits) + a sort of the k selected; OpenMP over rows.
 *         CUDA: one block per row, radix select in shared memory, rank placement of the k
 *         selected. CUDA limit: k <= 4096 (DSV32_E_UNSUPPORTED above).
 *
 * dsv32_topk_len(be, idx_out, val_out, x, lens, k, err)
 *   as dsv32_topk, but row r only considers positions 0..lens[r]-1 (lens I64 [rows], each in
 *   0..n). When lens[r] < k the slots past lens[r] get index -1 and value -inf.
 *
 * Errors: DSV32_E_DTYPE, DSV32_E_SHAPE, DSV32_E_USAGE (k out of range, device mismatch, val_out
 *         aliasing), DSV32_E_UNSUPPORTED, DSV32_E_CUDA.
 */
#ifndef DSV32_TOPK_H
#define DSV32_TOPK_H

#include "kernels/backend.h"
#include "kernels/elementwise.h" /* dsv32_fmul_rn / dsv32_fadd_rn: never contracted */

/* Order key of an fp32 value, as CUDA's TopKTypeConfig<float>: larger key = larger value. */
DSV32_HD static inline uint32_t dsv32_topk_key(float v)
{
	uint32_t u = dsv32_f32_bits(v);
	if (v != v)
		return 0xffffffffu;
	return u ^ ((u & 0x80000000u) ? 0xffffffffu : 0x80000000u);
}

/* A rounding point: RNE to bf16 iff r (i.e. iff the op's output dtype is BF16). */
DSV32_HD static inline float dsv32_k3_round(float x, bool r)
{
	return r ? dsv32_round_bf16(x) : x;
}

dsv32_status dsv32_topk(dsv32_backend *be, dsv32_tensor *idx_out, dsv32_tensor *val_out,
			const dsv32_tensor *x, int64_t k, dsv32_error *err);

dsv32_status dsv32_topk_len(dsv32_backend *be, dsv32_tensor *idx_out, dsv32_tensor *val_out,
			    const dsv32_tensor *x, const dsv32_tensor *lens, int64_t k,
			    dsv32_error *err);

#endif
