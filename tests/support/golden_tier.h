/* golden_tier.h: which tier of a golden test runs here (docs/budgets.md "Golden tiers").
 *
 * A golden file is bound to the machine that recorded it; our side of a golden test is bound to
 * its numerics key (kernels/host_info.h): "fixed" for the fixed GEMM engine on every machine,
 * "host:<oneDNN impl>|<OpenBLAS core>" for the host engine. Each golden test has
 *   - exact tiers: tight budgets measured under one numerics key (a list of fnmatch patterns);
 *     the one whose pattern matches the live key runs, else the exact tier is reported as
 *     skipped with the golden's recording fingerprint and the live one;
 *   - the portable tier: budgets measured as the spread between the legitimate summation
 *     orders (fixed, oneDNN AMX / AVX512_CORE_BF16 / AVX2, OpenBLAS native / Haswell) with
 *     margin; it always runs.
 */
#ifndef DSV32_TESTS_GOLDEN_TIER_H
#define DSV32_TESTS_GOLDEN_TIER_H

#include <stdbool.h>
#include <stddef.h>

/* The exact tier i of n whose patterns (NULL-terminated, up to 4) match the live key, or -1.
 * Prints the golden's recording fingerprint (FINGERPRINT.json "recorded_on" in golden_dir),
 * the live fingerprint and which tiers run and why, once per label. */
typedef struct {
	const char *name;         /* "fixed", "host-avx2-haswell", ... */
	const char *patterns[4];
} tc_exact_tier;

int tc_golden_tier(const char *label, const char *golden_dir, const tc_exact_tier *tiers,
		   int n);

#endif
