/* error.h: status codes and the error record every fallible call fills (docs/spec/style.md "Errors").
 *
 * Library code never exits: a function returns a dsv32_status and, when err is not NULL, fills
 * it with the code, where it was raised and a message with context ("<file or tensor>: found X,
 * expected Y"). Only cli/ turns a status into an exit code.
 */
#ifndef DSV32_ERROR_H
#define DSV32_ERROR_H

#include <stdarg.h>
#include <stddef.h>

typedef enum {
	DSV32_OK = 0,
	DSV32_E_IO,          /* open/read/write/rename/mmap failed; sys holds errno */
	DSV32_E_FORMAT,      /* a file is malformed (safetensors, JSON, config) */
	DSV32_E_SHAPE,       /* shapes disagree with what is expected */
	DSV32_E_DTYPE,       /* a dtype is not the one expected */
	DSV32_E_UNSUPPORTED, /* valid request this build or backend cannot do */
	DSV32_E_NOMEM,       /* allocation failed */
	DSV32_E_CUDA,        /* CUDA/cuBLAS/NCCL call failed; sys holds its code */
	DSV32_E_INTERNAL,    /* a bug of ours: an invariant broke */
	DSV32_E_USAGE,       /* bad argument or option given by the caller */
	DSV32_E_MISMATCH,    /* a verification found a difference (check failed) */
	DSV32_E_NOTFOUND,    /* a named file, tensor or key does not exist */
	DSV32_STATUS_COUNT   /* append only, above this line */
} dsv32_status;

typedef struct {
	dsv32_status code;
	int sys;          /* errno / cudaError_t / cublasStatus_t, 0 if none */
	const char *file; /* source file where it was raised */
	int line;
	char what[512];   /* message with context */
} dsv32_error;

const char *dsv32_status_str(dsv32_status code);

/* Fill err (if not NULL) and return code. Use through DSV32_FAIL. */
dsv32_status dsv32_error_set(dsv32_error *err, dsv32_status code, int sys, const char *file,
			     int line, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* Prefix err->what with "<ctx>: " (used when an outer layer adds context). Returns err->code. */
dsv32_status dsv32_error_prefix(dsv32_error *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Copy in to out (len > 0 bytes, always NUL-terminated) fit for a terminal: C0 controls (ESC,
 * newline, CR, tab, ...), DEL, C1 controls (U+0080..U+009F, and a lone byte 0x80..0x9F) and any
 * byte that is not part of valid UTF-8 become the four characters "\xNN"; an escape is never
 * cut in two. Names and keys read from input files reach messages through here: every message
 * dsv32_error_set and dsv32_error_prefix store is already sanitized. Returns out. */
char *dsv32_sanitize_term(char *out, size_t len, const char *in);

#define DSV32_FAIL(err, code, ...) dsv32_error_set((err), (code), 0, __FILE__, __LINE__, __VA_ARGS__)
#define DSV32_FAIL_SYS(err, code, sys, ...) \
	dsv32_error_set((err), (code), (sys), __FILE__, __LINE__, __VA_ARGS__)

/* Evaluate a status expression; return it from the enclosing function when it is not DSV32_OK. */
#define DSV32_TRY(expr)                              \
	do {                                         \
		dsv32_status dsv32_try_rc_ = (expr); \
		if (dsv32_try_rc_ != DSV32_OK)       \
			return dsv32_try_rc_;        \
	} while (0)

#endif
