/* rng.h: the seedable generator behind every fixture, so weights and prompts are the same bit
 * for bit on every machine.
 *
 * Algorithm: SplitMix64 (Steele, Lea, Flood 2014). state += 0x9E3779B97F4A7C15, then the
 * output mix z = (z ^ z>>30) * 0xBF58476D1CE4E5B9; z = (z ^ z>>27) * 0x94D049BB133111EB;
 * z ^ z>>31. Uniform floats take the top 24 bits (exact in f32). Normals use Box-Muller in
 * double (log, sqrt, cos from libm, correctly rounded to within an ulp on glibc; the result is
 * rounded to f32 and, for weights, to bf16, which absorbs last-ulp libm differences except in
 * rare ties). Streams are derived per tensor from (seed, name) by hashing the name (FNV-1a 64)
 * so adding a tensor does not shift the values of the others.
 */
#ifndef DSV32_RNG_H
#define DSV32_RNG_H

#include <stdint.h>

typedef struct {
	uint64_t state;
} dsv32_rng;


void dsv32_rng_seed(dsv32_rng *r, uint64_t seed);
/* A stream for one named object: seed mixed with FNV-1a-64(name). */
void dsv32_rng_seed_named(dsv32_rng *r, uint64_t seed, const char *name);
uint64_t dsv32_rng_u64(dsv32_rng *r);
/* Uniform in [0, 1) with 24 random bits. */
float dsv32_rng_uniform(dsv32_rng *r);
/* Uniform integer in [lo, hi] (inclusive); unbiased (rejection). */
int64_t dsv32_rng_range(dsv32_rng *r, int64_t lo, int64_t hi);
/* Standard normal (Box-Muller, double): dsv32_normal_libm of the next two outputs. */
double dsv32_rng_normal(dsv32_rng *r);

#define DSV32_RNG_GAMMA 0x9E3779B97F4A7C15ull
/* SplitMix64's output mix of a state z (vector loops step z themselves: fixtures/draw_body.h). */
static inline __attribute__((always_inline)) uint64_t dsv32_rng_mix(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

/* The output of a stream whose state is s after k more steps (SplitMix64 is counter-based:
 * the k-th next output of a stream in state s is dsv32_rng_u64_at(s, k), k >= 1), so a band of
 * values can be drawn out of order, in parallel, with the values of the sequential calls. */
static inline uint64_t dsv32_rng_u64_at(uint64_t s, uint64_t k)
{
	return dsv32_rng_mix(s + k * DSV32_RNG_GAMMA);
}

/* Box-Muller from two outputs a, b: sqrt(-2 ln u1) cos(2 pi u2), u1 = ((a >> 11) + 1) 2^-53,
 * u2 = (b >> 11) 2^-53, with libm's log and cos: the value fixtures are defined by. */
double dsv32_normal_libm(uint64_t a, uint64_t b);

uint64_t dsv32_fnv1a64(const void *data, uint64_t len, uint64_t h);
#define DSV32_FNV1A64_INIT 0xcbf29ce484222325ull

#endif
