/* topk_torch.h: top-k with a selectable tie rule: `index` (CUDA's rule, kernels/topk.h) or
 * `torch-cpu` (ATen's CPU torch.topk, reproduced exactly, indices and slot order) (issue #17
 * item 4; docs/topk-ties.md).
 *
 * Tie rules (dsv32_tie_rule; names "index" and "torch-cpu"):
 *   index      dsv32_topk's rule: keys strictly above the k-th, then equal keys by increasing
 *              index; output sorted by key descending, equal keys by increasing index. `sorted`
 *              is ignored (the output is always sorted; the set is what torch.topk on CUDA
 *              selects). -0 < +0 and NaN largest, as in topk.h.
 *   torch-cpu  what torch.topk(x, k, dim=-1, largest=True, sorted=s) returns on a CPU tensor,
 *              i.e. ATen's topk_impl_loop (ATen/native/TopKImpl.h) compiled against libstdc++:
 *     comparator  before(a, b) = (isnan(a) && !isnan(b)) || a > b, in fp32 (BF16 inputs are
 *                 widened to fp32, ATen's accscalar_t). So every NaN ranks above +inf and all
 *                 NaNs are equivalent; -0.0 and +0.0 are EQUIVALENT (unlike `index`).
 *     path        the row is copied into (value, index) pairs in index order, then
 *                 if k*64 <= n:  std::partial_sort(first, first+k, last)
 *                                (heap select + sort_heap: the output is sorted either way)
 *                 else:          std::nth_element(first, first+k-1, last)   (introselect)
 *                                and, if sorted, std::sort(first, first+k-1) (introsort; the
 *                                k-th slot is left where nth_element put it)
 *                 and the first k pairs are the output, in that slot order. The libstdc++
 *                 algorithms (GCC's stl_algo.h / stl_heap.h, long stable; torch 2.15 used GCC 13:
 *                 median-of-three pivot moved to the front, unguarded Hoare partition,
 *                 introsort threshold 16, introselect threshold 3, depth limit 2*floor(log2 n),
 *                 heap fallbacks, final insertion sort) are re-implemented step for step in
 *                 topk_torch.c, since their exact element moves decide the order of ties.
 *     verified    bit-identical indices and values against torch 2.15.0+cu132 (Linux x86_64
 *                 wheel built with GCC 13.3), 1 and 2 threads, on the 3520 committed cases of
 *                 fixtures/topk_ties/ (tests/test_topk_torch.c); the thread count does not matter
 *                 (ATen never splits a row). Holds for torch builds on libstdc++ (Linux); macOS
 *                 (libc++) and Windows (MSVC STL) wheels use other algorithms: not reproduced.
 *   Neither rule is ever a silent fallback for the other.
 *
 * dsv32_topk_rule(be, idx_out, val_out, x, k, rule, sorted, err)
 *   x        F32|BF16 [..., n]   rows = every leading dim flattened; n <= 2^31-1
 *   idx_out  I64|I32  [..., k]   out: same leading dims as x; positions in 0..n-1
 *   val_out  NULL, or F32 or x's dtype [..., k]: out, x at the selected positions. torch-cpu
 *            with a BF16 val_out writes NaN as 0x7FC0 (c10::BFloat16's conversion of the
 *            fp32 accumulator value, as torch does); otherwise exact copies.
 *   k        1 <= k <= n (DSV32_E_USAGE otherwise)
 *   rule     `index` calls dsv32_topk (every backend); `torch-cpu` is CPU only: on a CUDA
 *            backend DSV32_E_UNSUPPORTED (on CUDA, torch follows the `index` rule: topk.h).
 *   No arithmetic. Aliasing of outputs with x or with each other is DSV32_E_USAGE.
 *   Cost: O(n log n) per row at worst (introselect/introsort with heap fallbacks), O(n) memory
 *   per thread; OpenMP over rows.
 *
 * dsv32_topk_torch_cpu_row(x, n, k, sorted, idx_out, val_out, scratch)
 *   the torch-cpu rule on one fp32 row x[0..n) (1 <= k <= n <= 2^31-1, trusted): idx_out[0..k)
 *   and, unless NULL, val_out[0..k) (= x[idx], exact). scratch: at least
 *   dsv32_topk_torch_cpu_scratch_bytes(n) bytes, aligned for uint32_t; overwritten.
 *
 * Errors: DSV32_E_DTYPE, DSV32_E_SHAPE, DSV32_E_USAGE, DSV32_E_UNSUPPORTED, DSV32_E_NOMEM,
 *         DSV32_E_CUDA (index rule on CUDA).
 */
#ifndef DSV32_TOPK_TORCH_H
#define DSV32_TOPK_TORCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels/topk.h"

typedef enum {
	DSV32_TIES_INDEX = 0,  /* "index": CUDA's rule, kernels/topk.h */
	DSV32_TIES_TORCH_CPU,  /* "torch-cpu": ATen's CPU torch.topk */
	DSV32_TIES_COUNT
} dsv32_tie_rule;

/* "index", "torch-cpu"; "?" for a value out of range. */
const char *dsv32_tie_rule_name(dsv32_tie_rule rule);
/* The rule named name (exactly as dsv32_tie_rule_name writes it); false if none. */
bool dsv32_tie_rule_from_name(const char *name, dsv32_tie_rule *out);

size_t dsv32_topk_torch_cpu_scratch_bytes(int64_t n);

void dsv32_topk_torch_cpu_row(const float *x, int64_t n, int64_t k, bool sorted,
			      int64_t *idx_out, float *val_out, void *scratch);

dsv32_status dsv32_topk_rule(dsv32_backend *be, dsv32_tensor *idx_out, dsv32_tensor *val_out,
			     const dsv32_tensor *x, int64_t k, dsv32_tie_rule rule, bool sorted,
			     dsv32_error *err);

#endif
