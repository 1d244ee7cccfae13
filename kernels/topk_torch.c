/* topk_torch.c: top-k with a tie rule (topk_torch.h): the `torch-cpu` rule re-implements ATen's
 * CPU topk_impl_loop and the libstdc++ algorithms it compiles to, move for move, because the
 * order of equal keys in the output is decided by exactly which elements those algorithms
 * swap. Written from the algorithms' description (docs/topk-ties.md), not from their source. */
#include "kernels/topk_torch.h"
#include "kernels/cpu_parallel.h"

/* core/model.h stores the rule as an int (core/ does not include kernels/) */
_Static_assert(DSV32_TIES_INDEX == 0 && DSV32_TIES_TORCH_CPU == 1, "dsv32_model_opts.ties");

#include <stdlib.h>
#include <string.h>

/* One (value, index) pair of ATen's queue. The value is kept as an order key: before(a, b) is
 * exactly ATen's comparator (NaN above everything, all NaNs equivalent, -0 == +0). */
typedef struct {
	uint32_t key;
	uint32_t idx;
} elem;

static uint32_t torch_key(float v)
{
	if (v != v)
		return 0xffffffffu;
	if (v == 0.0f)
		return 0x80000000u; /* -0 and +0: one key (ATen compares with >) */
	return dsv32_topk_key(v);
}

static inline bool before(elem a, elem b)
{
	return a.key > b.key;
}

static inline void swap_at(elem *a, int64_t i, int64_t j)
{
	elem t = a[i];
	a[i] = a[j];
	a[j] = t;
}

/* floor(log2(n)) for n >= 1 (libstdc++'s __lg). */
static int64_t lg2(int64_t n)
{
	return 63 - __builtin_clzll((unsigned long long)n);
}

/* ---- heaps: a max-heap under `before` (no child is before its parent, so the root is the
 * element that comes LAST in output order: heap select keeps the k first ones) ------------- */

/* Move v up from hole towards top while its parent is before v. */
static void push_heap(elem *a, int64_t hole, int64_t top, elem v)
{
	int64_t parent = (hole - 1) / 2;
	while (hole > top && before(a[parent], v)) {
		a[hole] = a[parent];
		hole = parent;
		parent = (hole - 1) / 2;
	}
	a[hole] = v;
}

/* Sift the hole at `hole` down to a leaf, always taking the larger child (the right one unless
 * the right is before the left), then push v back up: libstdc++'s __adjust_heap. */
static void adjust_heap(elem *a, int64_t hole, int64_t len, elem v)
{
	const int64_t top = hole;
	int64_t child = hole;
	while (child < (len - 1) / 2) {
		child = 2 * (child + 1);
		if (before(a[child], a[child - 1]))
			child--;
		a[hole] = a[child];
		hole = child;
	}
	if ((len & 1) == 0 && child == (len - 2) / 2) {
		child = 2 * (child + 1);
		a[hole] = a[child - 1];
		hole = child - 1;
	}
	push_heap(a, hole, top, v);
}

static void make_heap(elem *a, int64_t len)
{
	if (len < 2)
		return;
	for (int64_t parent = (len - 2) / 2;; parent--) {
		adjust_heap(a, parent, len, a[parent]);
		if (parent == 0)
			return;
	}
}

/* The root goes to a[result]; the element that was at a[result] re-enters the heap a[0..len). */
static void pop_heap(elem *a, int64_t len, int64_t result)
{
	elem v = a[result];
	a[result] = a[0];
	adjust_heap(a, 0, len, v);
}

/* Keep in a[0..mid) the mid elements first in order (as a heap): __heap_select. */
static void heap_select(elem *a, int64_t mid, int64_t len)
{
	make_heap(a, mid);
	for (int64_t i = mid; i < len; i++)
		if (before(a[i], a[0]))
			pop_heap(a, mid, i);
}

static void sort_heap(elem *a, int64_t len)
{
	while (len > 1) {
		len--;
		pop_heap(a, len, len);
	}
}

/* std::partial_sort(a, a + mid, a + len). */
static void partial_sort(elem *a, int64_t mid, int64_t len)
{
	heap_select(a, mid, len);
	sort_heap(a, mid);
}

/* ---- insertion sorts (stable: an element never passes an equal one) ------------------------- */

static void unguarded_linear_insert(elem *a, int64_t i)
{
	elem v = a[i];
	while (before(v, a[i - 1])) {
		a[i] = a[i - 1];
		i--;
	}
	a[i] = v;
}

static void insertion_sort(elem *a, int64_t lo, int64_t hi)
{
	if (lo == hi)
		return;
	for (int64_t i = lo + 1; i < hi; i++) {
		if (before(a[i], a[lo])) {
			elem v = a[i];
			memmove(a + lo + 1, a + lo, (size_t)(i - lo) * sizeof *a);
			a[lo] = v;
		} else {
			unguarded_linear_insert(a, i);
		}
	}
}

enum { SORT_THRESHOLD = 16 }; /* libstdc++'s _S_threshold */

static void final_insertion_sort(elem *a, int64_t lo, int64_t hi)
{
	if (hi - lo > SORT_THRESHOLD) {
		insertion_sort(a, lo, lo + SORT_THRESHOLD);
		for (int64_t i = lo + SORT_THRESHOLD; i < hi; i++)
			unguarded_linear_insert(a, i);
	} else {
		insertion_sort(a, lo, hi);
	}
}

/* ---- partitioning --------------------------------------------------------------------------- */

/* Swap into a[res] the median of a[x], a[y], a[z] (__move_median_to_first). */
static void move_median_to_first(elem *a, int64_t res, int64_t x, int64_t y, int64_t z)
{
	int64_t m;
	if (before(a[x], a[y])) {
		if (before(a[y], a[z]))
			m = y;
		else if (before(a[x], a[z]))
			m = z;
		else
			m = x;
	} else if (before(a[x], a[z])) {
		m = x;
	} else if (before(a[y], a[z])) {
		m = z;
	} else {
		m = y;
	}
	swap_at(a, res, m);
}

/* Hoare partition of a[lo..hi) around a[pivot] (outside the range) without bounds checks: the
 * pivot itself stops both scans (__unguarded_partition). Returns the cut. */
static int64_t unguarded_partition(elem *a, int64_t lo, int64_t hi, int64_t pivot)
{
	for (;;) {
		while (before(a[lo], a[pivot]))
			lo++;
		hi--;
		while (before(a[pivot], a[hi]))
			hi--;
		if (!(lo < hi))
			return lo;
		swap_at(a, lo, hi);
		lo++;
	}
}

/* Median of (second, middle, last) becomes the pivot at a[lo]; partition a[lo+1..hi). */
static int64_t partition_pivot(elem *a, int64_t lo, int64_t hi)
{
	int64_t mid = lo + (hi - lo) / 2;
	move_median_to_first(a, lo, lo + 1, mid, hi - 1);
	return unguarded_partition(a, lo + 1, hi, lo);
}

/* ---- std::sort, std::nth_element ------------------------------------------------------------ */

static void introsort_loop(elem *a, int64_t lo, int64_t hi, int64_t depth)
{
	while (hi - lo > SORT_THRESHOLD) {
		if (depth == 0) {
			partial_sort(a + lo, hi - lo, hi - lo); /* heapsort */
			return;
		}
		depth--;
		int64_t cut = partition_pivot(a, lo, hi);
		introsort_loop(a, cut, hi, depth);
		hi = cut;
	}
}

static void std_sort(elem *a, int64_t len)
{
	if (len == 0)
		return;
	introsort_loop(a, 0, len, 2 * lg2(len));
	final_insertion_sort(a, 0, len);
}

static void std_nth_element(elem *a, int64_t nth, int64_t len)
{
	if (len == 0 || nth == len)
		return;
	int64_t lo = 0, hi = len, depth = 2 * lg2(len);
	while (hi - lo > 3) {
		if (depth == 0) {
			heap_select(a + lo, nth + 1 - lo, hi - lo);
			swap_at(a, lo, nth);
			return;
		}
		depth--;
		int64_t cut = partition_pivot(a, lo, hi);
		if (cut <= nth)
			lo = cut;
		else
			hi = cut;
	}
	insertion_sort(a, lo, hi);
}

/* ---- the row: ATen's topk_impl_loop, largest=True ------------------------------------------ */

size_t dsv32_topk_torch_cpu_scratch_bytes(int64_t n)
{
	return (size_t)(n > 0 ? n : 0) * sizeof(elem);
}

void dsv32_topk_torch_cpu_row(const float *x, int64_t n, int64_t k, bool sorted,
			      int64_t *idx_out, float *val_out, void *scratch)
{
	elem *q = scratch;
	for (int64_t j = 0; j < n; j++)
		q[j] = (elem){torch_key(x[j]), (uint32_t)j};
	if (k * 64 <= n) {
		partial_sort(q, k, n);
	} else {
		std_nth_element(q, k - 1, n);
		if (sorted)
			std_sort(q, k - 1);
	}
	for (int64_t j = 0; j < k; j++) {
		idx_out[j] = q[j].idx;
		if (val_out)
			val_out[j] = x[q[j].idx];
	}
}

/* ---- names ---------------------------------------------------------------------------------- */

static const char *const RULE_NAMES[DSV32_TIES_COUNT] = {"index", "torch-cpu"};

const char *dsv32_tie_rule_name(dsv32_tie_rule rule)
{
	return (unsigned)rule < DSV32_TIES_COUNT ? RULE_NAMES[rule] : "?";
}

bool dsv32_tie_rule_from_name(const char *name, dsv32_tie_rule *out)
{
	for (int r = 0; name && r < DSV32_TIES_COUNT; r++) {
		if (strcmp(name, RULE_NAMES[r]) == 0) {
			*out = (dsv32_tie_rule)r;
			return true;
		}
	}
	return false;
}

/* ---- tensors -------------------------------------------------------------------------------- */

static dsv32_status check_out(const dsv32_tensor *o, const dsv32_tensor *x, int64_t k,
			      const char *name, dsv32_error *err)
{
	char a[128], b[128];
	bool ok = o->ndim == x->ndim && o->shape[o->ndim - 1] == k;
	for (int i = 0; ok && i < x->ndim - 1; i++)
		ok = o->shape[i] == x->shape[i];
	if (!ok)
		return DSV32_FAIL(err, DSV32_E_SHAPE,
				  "topk(torch-cpu) %s: shape %s, expected x's %s with last dim %lld",
				  name, dsv32_shape_str(a, sizeof a, o->ndim, o->shape),
				  dsv32_shape_str(b, sizeof b, x->ndim, x->shape), (long long)k);
	return DSV32_OK;
}

static dsv32_status check_args(const dsv32_tensor *idx_out, const dsv32_tensor *val_out,
			       const dsv32_tensor *x, int64_t k, dsv32_error *err)
{
	if (x->ndim < 1)
		return DSV32_FAIL(err, DSV32_E_SHAPE, "topk(torch-cpu) x: rank 0, expected [..., n]");
	if (x->dtype != DSV32_F32 && x->dtype != DSV32_BF16)
		return DSV32_FAIL(err, DSV32_E_DTYPE,
				  "topk(torch-cpu) x: dtype %s, expected F32 or BF16",
				  dsv32_dtype_name(x->dtype));
	int64_t n = x->shape[x->ndim - 1];
	if (k < 1 || k > n)
		return DSV32_FAIL(err, DSV32_E_USAGE, "topk(torch-cpu): k = %lld, expected 1..n = %lld",
				  (long long)k, (long long)n);
	if (n > INT32_MAX)
		return DSV32_FAIL(err, DSV32_E_SHAPE,
				  "topk(torch-cpu) x: row length %lld exceeds 2^31-1", (long long)n);
	if (idx_out->dtype != DSV32_I64 && idx_out->dtype != DSV32_I32)
		return DSV32_FAIL(err, DSV32_E_DTYPE,
				  "topk(torch-cpu) idx_out: dtype %s, expected I64 or I32",
				  dsv32_dtype_name(idx_out->dtype));
	DSV32_TRY(check_out(idx_out, x, k, "idx_out", err));
	if (idx_out->data == x->data)
		return DSV32_FAIL(err, DSV32_E_USAGE, "topk(torch-cpu) idx_out aliases x");
	if (val_out) {
		if (val_out->dtype != DSV32_F32 && val_out->dtype != x->dtype)
			return DSV32_FAIL(err, DSV32_E_DTYPE,
					  "topk(torch-cpu) val_out: dtype %s, expected F32 or x's %s",
					  dsv32_dtype_name(val_out->dtype), dsv32_dtype_name(x->dtype));
		DSV32_TRY(check_out(val_out, x, k, "val_out", err));
		if (val_out->data == idx_out->data || val_out->data == x->data)
			return DSV32_FAIL(err, DSV32_E_USAGE,
					  "topk(torch-cpu) val_out aliases idx_out or x");
	}
	if (x->device != DSV32_DEV_CPU || idx_out->device != DSV32_DEV_CPU ||
	    (val_out && val_out->device != DSV32_DEV_CPU))
		return DSV32_FAIL(err, DSV32_E_USAGE, "topk(torch-cpu): a tensor is not on the CPU");
	return DSV32_OK;
}

/* One row through the scratch buffers: widen BF16, select, store in the output dtypes. */
static void torch_row(const dsv32_tensor *x, int64_t r, int64_t n, int64_t k, bool sorted,
		      dsv32_tensor *idx_out, dsv32_tensor *val_out, float *xf, int64_t *ib,
		      float *vb, void *scratch)
{
	const float *row = (const float *)x->data + r * n;
	if (x->dtype == DSV32_BF16) {
		const dsv32_bf16 *xb = (const dsv32_bf16 *)x->data + r * n;
		for (int64_t j = 0; j < n; j++)
			xf[j] = dsv32_bf16_to_f32(xb[j]);
		row = xf;
	}
	dsv32_topk_torch_cpu_row(row, n, k, sorted, ib, vb, scratch);
	for (int64_t j = 0; j < k; j++) {
		if (idx_out->dtype == DSV32_I64)
			((int64_t *)idx_out->data)[r * k + j] = ib[j];
		else
			((int32_t *)idx_out->data)[r * k + j] = (int32_t)ib[j];
		if (!val_out)
			continue;
		if (val_out->dtype == DSV32_F32)
			((float *)val_out->data)[r * k + j] = vb[j];
		else /* BF16: exact, NaN -> 0x7FC0 as c10::BFloat16(float) writes it */
			((dsv32_bf16 *)val_out->data)[r * k + j] =
				vb[j] != vb[j] ? (dsv32_bf16)0x7fc0u : dsv32_f32_to_bf16(vb[j]);
	}
}

static dsv32_status topk_torch_cpu(dsv32_tensor *idx_out, dsv32_tensor *val_out,
				   const dsv32_tensor *x, int64_t k, bool sorted, dsv32_error *err)
{
	DSV32_TRY(check_args(idx_out, val_out, x, k, err));
	int64_t n = x->shape[x->ndim - 1];
	int64_t rows = dsv32_tensor_numel(x) / n;
	int failed = 0;
#pragma omp parallel if (rows > 1 && dsv32_par_worth((double)rows * (double)n * 4)) reduction(|| : failed)
	{
		void *scratch = malloc(dsv32_topk_torch_cpu_scratch_bytes(n));
		float *xf = malloc((size_t)n * sizeof *xf);
		int64_t *ib = malloc((size_t)k * sizeof *ib);
		float *vb = malloc((size_t)k * sizeof *vb);
		bool ok = scratch && xf && ib && vb;
		if (!ok)
			failed = 1;
#pragma omp for schedule(dynamic, 1)
		for (int64_t r = 0; r < rows; r++)
			if (ok)
				torch_row(x, r, n, k, sorted, idx_out, val_out, xf, ib, vb, scratch);
		free(scratch);
		free(xf);
		free(ib);
		free(vb);
	}
	if (failed)
		return DSV32_FAIL(err, DSV32_E_NOMEM, "topk(torch-cpu): %lld bytes of scratch per thread",
				  (long long)(dsv32_topk_torch_cpu_scratch_bytes(n) + (size_t)n * 4 +
					      (size_t)k * 12));
	return DSV32_OK;
}

dsv32_status dsv32_topk_rule(dsv32_backend *be, dsv32_tensor *idx_out, dsv32_tensor *val_out,
			     const dsv32_tensor *x, int64_t k, dsv32_tie_rule rule, bool sorted,
			     dsv32_error *err)
{
	switch (rule) {
	case DSV32_TIES_INDEX:
		return dsv32_topk(be, idx_out, val_out, x, k, err);
	case DSV32_TIES_TORCH_CPU:
		if (be->device != DSV32_DEV_CPU)
			return DSV32_FAIL(err, DSV32_E_UNSUPPORTED,
					  "topk ties=torch-cpu: backend %s, expected cpu (the rule "
					  "reproduces torch.topk on CPU tensors; use ties=index on CUDA)",
					  dsv32_device_name(be->device));
		return topk_torch_cpu(idx_out, val_out, x, k, sorted, err);
	default:
		return DSV32_FAIL(err, DSV32_E_USAGE, "topk: tie rule %d, expected 0..%d", (int)rule,
				  DSV32_TIES_COUNT - 1);
	}
}
