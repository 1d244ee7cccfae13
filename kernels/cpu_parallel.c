/* cpu_parallel.c: the fork threshold of the CPU bodies (cpu_parallel.h). */
#include "kernels/cpu_parallel.h"

#include <stdlib.h>

bool dsv32_par_worth(double work)
{
	const char *s = getenv("DSV32_PAR_MIN_WORK");
	char *end = NULL;
	double min = s && *s ? strtod(s, &end) : DSV32_PAR_MIN_WORK;
	if (s && *s && (*end != '\0' || !(min >= 0.0)))
		min = DSV32_PAR_MIN_WORK; /* not a number: the default, never a silent 0 */
	return work >= min;
}
