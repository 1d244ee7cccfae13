/* error.c: status strings, the one place that fills a dsv32_error, and the terminal
 * sanitizer every stored message goes through. */
#include "core/error.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static const char *const status_names[DSV32_STATUS_COUNT] = {
	[DSV32_OK] = "ok",
	[DSV32_E_IO] = "I/O error",
	[DSV32_E_FORMAT] = "malformed input",
	[DSV32_E_SHAPE] = "shape mismatch",
	[DSV32_E_DTYPE] = "dtype mismatch",
	[DSV32_E_UNSUPPORTED] = "unsupported",
	[DSV32_E_NOMEM] = "out of memory",
	[DSV32_E_CUDA] = "CUDA error",
	[DSV32_E_INTERNAL] = "internal error",
	[DSV32_E_USAGE] = "usage error",
	[DSV32_E_MISMATCH] = "check failed",
	[DSV32_E_NOTFOUND] = "not found",
};

const char *dsv32_status_str(dsv32_status code)
{
	if ((unsigned)code >= DSV32_STATUS_COUNT)
		return "unknown status";
	return status_names[code];
}

/* Length of the valid UTF-8 sequence at p (2..4), or 0 if p does not start one. Overlong forms
 * and surrogates are invalid (RFC 3629). */
static size_t utf8_len(const unsigned char *p)
{
	unsigned char b = p[0];
	size_t n = b >= 0xc2 && b <= 0xdf ? 2 : b >= 0xe0 && b <= 0xef ? 3
		 : b >= 0xf0 && b <= 0xf4 ? 4 : 0;
	unsigned char lo = b == 0xe0 ? 0xa0 : b == 0xf0 ? 0x90 : 0x80;
	unsigned char hi = b == 0xed ? 0x9f : b == 0xf4 ? 0x8f : 0xbf;
	if (n == 0 || p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	return n;
}

/* A byte or sequence the terminal would act on instead of print: C0, DEL, C1 (U+0080..U+009F
 * is 0xc2 0x80..0x9f in UTF-8). */
static bool is_control(const unsigned char *p, size_t n)
{
	if (n == 1)
		return p[0] < 0x20 || p[0] == 0x7f;
	return n == 2 && p[0] == 0xc2 && p[1] <= 0x9f;
}

char *dsv32_sanitize_term(char *out, size_t len, const char *in)
{
	const unsigned char *p = (const unsigned char *)in;
	size_t o = 0;
	if (len == 0)
		return out;
	while (*p) {
		size_t n = *p < 0x80 ? 1 : utf8_len(p);
		bool esc = n == 0 || is_control(p, n);
		size_t k = n ? n : 1; /* input bytes consumed */
		size_t need = esc ? 4 * k : k;
		if (o + need >= len)
			break;
		for (size_t i = 0; i < k; i++) {
			if (esc)
				snprintf(out + o + 4 * i, 5, "\\x%02x", p[i]);
			else
				out[o + i] = (char)p[i];
		}
		o += need;
		p += k;
	}
	out[o] = '\0';
	return out;
}

dsv32_status dsv32_error_set(dsv32_error *err, dsv32_status code, int sys, const char *file,
			     int line, const char *fmt, ...)
{
	if (!err)
		return code;
	err->code = code;
	err->sys = sys;
	err->file = file;
	err->line = line;
	char raw[sizeof err->what];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(raw, sizeof raw, fmt, ap);
	va_end(ap);
	dsv32_sanitize_term(err->what, sizeof err->what, raw);
	return code;
}

dsv32_status dsv32_error_prefix(dsv32_error *err, const char *fmt, ...)
{
	if (!err)
		return DSV32_E_INTERNAL;
	char raw[256], prefix[256], old[sizeof err->what];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(raw, sizeof raw, fmt, ap);
	va_end(ap);
	dsv32_sanitize_term(prefix, sizeof prefix, raw);
	memcpy(old, err->what, sizeof old);
	size_t n = strlen(prefix);
	if (n > sizeof err->what - 3)
		n = sizeof err->what - 3;
	memcpy(err->what, prefix, n);
	memcpy(err->what + n, ": ", 2);
	size_t room = sizeof err->what - n - 3;
	size_t m = strlen(old);
	if (m > room)
		m = room;
	memcpy(err->what + n + 2, old, m);
	err->what[n + 2 + m] = '\0';
	return err->code;
}
