/* safetensors_internal.h: helpers shared by the safetensors reader and writer only. */
#ifndef DSV32_SAFETENSORS_INTERNAL_H
#define DSV32_SAFETENSORS_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Largest integer a JSON number may hold here: cJSON stores numbers as doubles, exact below
 * 2^53. Larger shape dims or offsets are rejected (no real file comes near). */
#define DSV32_ST_MAX_JSON_INT 9007199254740992.0

/* True if s[0..n) is well-formed UTF-8 (no overlongs, no surrogates, <= U+10FFFF). On failure
 * *bad receives the offset of the first bad byte. */
static inline bool dsv32_st_utf8_valid(const unsigned char *s, size_t n, size_t *bad)
{
	size_t i = 0;
	while (i < n) {
		unsigned c = s[i];
		size_t k;
		unsigned lo = 0x80, hi = 0xbf;
		if (c < 0x80) {
			i++;
			continue;
		} else if (c >= 0xc2 && c <= 0xdf) {
			k = 1;
		} else if (c >= 0xe0 && c <= 0xef) {
			k = 2;
			if (c == 0xe0)
				lo = 0xa0;
			else if (c == 0xed)
				hi = 0x9f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			k = 3;
			if (c == 0xf0)
				lo = 0x90;
			else if (c == 0xf4)
				hi = 0x8f;
		} else {
			goto fail;
		}
		if (n - i <= k)
			goto fail;
		for (size_t j = 1; j <= k; j++) {
			unsigned d = s[i + j];
			if (d < (j == 1 ? lo : 0x80) || d > (j == 1 ? hi : 0xbf))
				goto fail;
		}
		i += k + 1;
	}
	return true;
fail:
	if (bad)
		*bad = i;
	return false;
}

#endif
