/* cpu_parallel.c: the fork threshold of the CPU bodies (cpu_parallel.h). */
#include "kernels/cpu_parallel.h"

#include <stdint.h>
#include <stdlib.h>

/* DSV32_PAR_MIN_WORK or the default, read once: dsv32_par_worth runs once per op. Not a number
 * (or negative): the default, never a silent 0. */
static double min_work(void)
{
	static int64_t cached = -1; /* benign: every thread computes the same value */
	int64_t v = __atomic_load_n(&cached, __ATOMIC_RELAXED);
	if (v < 0) {
		const char *s = getenv("DSV32_PAR_MIN_WORK");
		char *end = NULL;
		double d = s && *s ? strtod(s, &end) : DSV32_PAR_MIN_WORK;
		if (s && *s && (*end != '\0' || !(d >= 0.0) || d > 0x1p62))
			d = DSV32_PAR_MIN_WORK;
		v = (int64_t)d;
		__atomic_store_n(&cached, v, __ATOMIC_RELAXED);
	}
	return (double)v;
}

bool dsv32_par_worth(double work)
{
	return work >= min_work();
}
