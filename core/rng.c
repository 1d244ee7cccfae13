/* rng.c: SplitMix64 and the distributions fixtures draw from (see rng.h for the exact rules). */
#include "core/rng.h"

#include <math.h>
#include <string.h>

void dsv32_rng_seed(dsv32_rng *r, uint64_t seed)
{
	r->state = seed;
}

uint64_t dsv32_fnv1a64(const void *data, uint64_t len, uint64_t h)
{
	const unsigned char *p = data;
	for (uint64_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

void dsv32_rng_seed_named(dsv32_rng *r, uint64_t seed, const char *name)
{
	uint64_t h = dsv32_fnv1a64(name, strlen(name), DSV32_FNV1A64_INIT);
	r->state = seed ^ h;
	(void)dsv32_rng_u64(r); /* decorrelate nearby seeds */
}

uint64_t dsv32_rng_u64(dsv32_rng *r)
{
	return dsv32_rng_u64_at(r->state += DSV32_RNG_GAMMA, 0);
}

float dsv32_rng_uniform(dsv32_rng *r)
{
	return (float)(dsv32_rng_u64(r) >> 40) * 0x1.0p-24f;
}

int64_t dsv32_rng_range(dsv32_rng *r, int64_t lo, int64_t hi)
{
	uint64_t span = (uint64_t)hi - (uint64_t)lo + 1u; /* no signed overflow */
	if (span == 0)
		return (int64_t)dsv32_rng_u64(r);
	uint64_t limit = UINT64_MAX - UINT64_MAX % span;
	uint64_t v;
	do {
		v = dsv32_rng_u64(r);
	} while (v >= limit);
	return lo + (int64_t)(v % span);
}

double dsv32_rng_normal(dsv32_rng *r)
{
	uint64_t a = dsv32_rng_u64(r);
	return dsv32_normal_libm(a, dsv32_rng_u64(r));
}

/* u1 in (0, 1]: 53 random bits, never zero so log is finite */
static double box_muller_u1(uint64_t a)
{
	return ((double)(a >> 11) + 1.0) * 0x1.0p-53;
}

static double box_muller_angle(uint64_t b)
{
	return 6.283185307179586 * ((double)(b >> 11) * 0x1.0p-53);
}

double dsv32_normal_libm(uint64_t a, uint64_t b)
{
	return sqrt(-2.0 * log(box_muller_u1(a))) * cos(box_muller_angle(b));
}
