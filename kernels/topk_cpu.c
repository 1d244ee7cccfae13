/* topk_cpu.c: CPU body of dsv32_topk: radix select of the k-th key, then a sort of the k
 * selected by (key desc, index asc) (topk.h). */
#include "kernels/topk_impl.h"
#include "kernels/cpu_scratch.h"
#include "kernels/cpu_parallel.h"

#include <stdlib.h>

static float load_f32(const void *x, dsv32_dtype t, int64_t i)
{
	return t == DSV32_BF16 ? dsv32_bf16_to_f32(((const dsv32_bf16 *)x)[i]) : ((const float *)x)[i];
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Select the kk largest of keys[0..L) into sel (as sort keys (~key << 32 | index)), sorted. */
static void select_row(const uint32_t *keys, int64_t L, int64_t kk, uint64_t *sel)
{
	uint32_t prefix = 0, mask = 0;
	int64_t remaining = kk;
	for (int shift = 24; shift >= 0; shift -= 8) {
		int64_t hist[256] = {0};
		for (int64_t i = 0; i < L; i++)
			if ((keys[i] & mask) == prefix)
				hist[(keys[i] >> shift) & 255u]++;
		int bsel = 0;
		for (int bkt = 255; bkt >= 0; bkt--) {
			if (hist[bkt] >= remaining) {
				bsel = bkt;
				break;
			}
			remaining -= hist[bkt];
		}
		prefix |= (uint32_t)bsel << shift;
		mask |= 255u << shift;
	}
	/* prefix = the kk-th largest key; take every key above it, then `remaining` equal ones
	 * in increasing index order */
	int64_t m = 0, eq = 0;
	for (int64_t i = 0; i < L; i++) {
		if (keys[i] > prefix || (keys[i] == prefix && eq++ < remaining))
			sel[m++] = ((uint64_t)(0xffffffffu - keys[i]) << 32) | (uint64_t)i;
	}
	qsort(sel, (size_t)m, sizeof *sel, cmp_u64);
}

dsv32_status dsv32_topk_cpu(void *idx, dsv32_dtype idx_t, void *val, dsv32_dtype val_t,
			    const void *x, dsv32_dtype x_t, const int64_t *lens, int64_t rows,
			    int64_t n, int64_t k, dsv32_error *err)
{
	int failed = 0;
#pragma omp parallel if (dsv32_par_worth((double)rows * (double)n)) reduction(|| : failed)
	{
		uint32_t *keys = dsv32_cpu_scratch(0, (size_t)n * sizeof *keys); /* per thread, kept */
		uint64_t *sel = dsv32_cpu_scratch(1, (size_t)k * sizeof *sel);
		if (!keys || !sel)
			failed = 1;
#pragma omp for schedule(dynamic, 4)
		for (int64_t r = 0; r < rows; r++) {
			if (!keys || !sel)
				continue;
			int64_t L = lens ? lens[r] : n;
			L = L < 0 ? 0 : (L > n ? n : L);
			int64_t kk = k < L ? k : L;
			const int64_t base = r * n;
			for (int64_t i = 0; i < L; i++)
				keys[i] = dsv32_topk_key(load_f32(x, x_t, base + i));
			if (kk > 0)
				select_row(keys, L, kk, sel);
			for (int64_t j = 0; j < k; j++) {
				int64_t id = j < kk ? (int64_t)(sel[j] & 0xffffffffu) : -1;
				if (idx_t == DSV32_I64)
					((int64_t *)idx)[r * k + j] = id;
				else
					((int32_t *)idx)[r * k + j] = (int32_t)id;
				if (!val)
					continue;
				if (id < 0) {
					if (val_t == DSV32_BF16)
						((dsv32_bf16 *)val)[r * k + j] = 0xff80u;
					else
						((float *)val)[r * k + j] = -INFINITY;
				} else if (val_t == DSV32_BF16) {
					((dsv32_bf16 *)val)[r * k + j] = ((const dsv32_bf16 *)x)[base + id];
				} else {
					((float *)val)[r * k + j] = load_f32(x, x_t, base + id);
				}
			}
		}
	}
	if (failed)
		return DSV32_FAIL(err, DSV32_E_NOMEM, "topk: allocating per-thread row buffers (n = %lld)",
				  (long long)n);
	return DSV32_OK;
}
