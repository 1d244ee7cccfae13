/* conv_util.h: helpers for the converter tests: temporary directories, file copies and byte
 * flips, running the CLI, and checking shard files against a golden manifest.json
 * (fixtures/golden/ref_tiny/{hf,mp1,mp2,mp4}/manifest.json: per file bytes and SHA-256, per
 * tensor dtype, shape and SHA-256 of the data bytes). */
#ifndef DSV32_TESTS_CONV_UTIL_H
#define DSV32_TESTS_CONV_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* <source dir>/fixtures/golden/ref_tiny (DSV32_SOURCE_DIR from the environment or the build). */
const char *conv_golden_dir(void);
/* A fresh directory under $TMPDIR or /tmp ("/tmp/dsv32-conv-XXXXXX") into buf; false on failure. */
bool conv_mkdtemp(char *buf, size_t len);
/* rm -rf (only paths under /tmp or $TMPDIR). */
void conv_rm_rf(const char *path);
bool conv_copy_file(const char *src, const char *dst);
/* XOR one byte at file offset off with 0x01. */
bool conv_flip_byte(const char *path, uint64_t off);
/* The file offset of a tensor's first data byte (8 + header length + begin), or 0. */
uint64_t conv_tensor_file_offset(const char *path, const char *tensor);
/* Whether any entry of dir begins with prefix. */
bool conv_dir_has_prefix(const char *dir, const char *prefix);

/* Run the CLI ($DSV32_CLI) with args; stdout+stderr captured into out (NUL-terminated).
 * Returns the exit code, or -77 when $DSV32_CLI is not set or not an executable. */
int conv_run_cli(char *out, size_t len, const char *args_fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Check every file of a manifest: each listed tensor of <file> in dir has the manifest's dtype,
 * shape and data SHA-256, and the file holds no other tensor. *whole_files_equal reports whether
 * every file's SHA-256 also equals the manifest's. Returns the number of problems (0 = all
 * good); the first is described in msg. */
int conv_check_manifest(const char *manifest, const char *dir, bool *whole_files_equal,
			char *msg, size_t msglen);

/* Compare two checkpoints tensor by tensor (names, dtypes, shapes, bytes). Returns the number
 * of differences; the first is described in msg. */
int conv_compare_ckpts(const char *a, const char *b, char *msg, size_t msglen);

#endif
