/* fuzz_util.h: helpers shared by the libFuzzer targets in tests/fuzz/ (not part of the library).
 *
 * Each target feeds the raw input to one parser, then, when the parser accepts it, walks the
 * result the way the CLI would, so out-of-bounds reads in accessors show up under ASan. A parser
 * that rejects an input must leave a non-empty message in its dsv32_error: fuzz_check_err aborts
 * otherwise (an error with no context is a finding too). */
#ifndef DSV32_FUZZ_UTIL_H
#define DSV32_FUZZ_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

/* A NUL-terminated copy of the input (the JSON and token parsers take C strings). The input is
 * cut at its first NUL, as a C string reader of the file would see it. */
static inline char *fuzz_cstr(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	if (!s)
		abort();
	memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

/* The error contract: a failing call names a status other than OK and says something. */
static inline void fuzz_check_err(dsv32_status rc, const dsv32_error *err, const char *what)
{
	if (rc == DSV32_OK)
		return;
	if (err->code != rc || err->what[0] == '\0' ||
	    memchr(err->what, '\0', sizeof err->what) == NULL) {
		fprintf(stderr, "%s: status %d returned with error code %d and message \"%.80s\"\n",
			what, (int)rc, (int)err->code, err->what);
		abort();
	}
}

#endif
