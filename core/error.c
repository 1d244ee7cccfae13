/* error.c: status strings and the one place that fills a dsv32_error. */
#include "core/error.h"

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

dsv32_status dsv32_error_set(dsv32_error *err, dsv32_status code, int sys, const char *file,
			     int line, const char *fmt, ...)
{
	if (!err)
		return code;
	err->code = code;
	err->sys = sys;
	err->file = file;
	err->line = line;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err->what, sizeof err->what, fmt, ap);
	va_end(ap);
	return code;
}

dsv32_status dsv32_error_prefix(dsv32_error *err, const char *fmt, ...)
{
	if (!err)
		return DSV32_E_INTERNAL;
	char prefix[256], old[sizeof err->what];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof prefix, fmt, ap);
	va_end(ap);
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
