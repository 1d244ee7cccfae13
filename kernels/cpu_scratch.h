/* cpu_scratch.h: per-thread reusable buffers of the CPU bodies, so that a decode step allocates
 * nothing once its buffers have reached their sizes (issue 19). Private to kernels/.
 *
 *   dsv32_cpu_scratch(slot, bytes)  a 64-byte-aligned buffer of at least `bytes` bytes (contents
 *                                   undefined), owned by the calling thread: slot 0 ..
 *                                   DSV32_SCRATCH_SLOTS-1 of the including translation unit, so
 *                                   two files never share a slot. It grows to the next power of
 *                                   two, so a buffer that follows the sequence length grows
 *                                   log2(T) times, not once per token. NULL when out of memory.
 *   dsv32_cpu_scratch_done(slot)    after a call's last use of the slot: a buffer above
 *                                   DSV32_SCRATCH_KEEP bytes is freed (a long prefill leaves no
 *                                   hundreds of MB per thread behind); smaller ones stay for the
 *                                   next call. Kept buffers live until the thread exits (OpenMP
 *                                   threads: the process).
 * A function that holds a slot must not call another of its file that takes the same slot. */
#ifndef DSV32_CPU_SCRATCH_H
#define DSV32_CPU_SCRATCH_H

#include <stddef.h>
#include <stdlib.h>

#define DSV32_SCRATCH_SLOTS 6
#define DSV32_SCRATCH_SCORES 4 /* slots 4 and 5: dsv32_scores_scratch (kernels/scores_simd.h) */
#define DSV32_SCRATCH_KEEP ((size_t)16 << 20)

static _Thread_local void *dsv32_scratch_buf[DSV32_SCRATCH_SLOTS];
static _Thread_local size_t dsv32_scratch_cap[DSV32_SCRATCH_SLOTS];

static inline void *dsv32_cpu_scratch(int slot, size_t bytes)
{
	if (bytes == 0)
		bytes = 1; /* never NULL for an empty request */
	if (bytes > dsv32_scratch_cap[slot]) {
		size_t want = 64;
		while (want < bytes) {
			if (want > ((size_t)-1) / 2)
				return NULL;
			want *= 2;
		}
		void *p = aligned_alloc(64, want);
		if (!p)
			return NULL;
		free(dsv32_scratch_buf[slot]);
		dsv32_scratch_buf[slot] = p;
		dsv32_scratch_cap[slot] = want;
	}
	return dsv32_scratch_buf[slot];
}

static inline void dsv32_cpu_scratch_done(int slot)
{
	if (dsv32_scratch_cap[slot] > DSV32_SCRATCH_KEEP) {
		free(dsv32_scratch_buf[slot]);
		dsv32_scratch_buf[slot] = NULL;
		dsv32_scratch_cap[slot] = 0;
	}
}

#endif
