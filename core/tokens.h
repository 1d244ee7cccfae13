/* tokens.h: token-id lists from the command line or a file.
 *
 * Text form: ids separated by commas and/or blanks; rows (batch entries) separated by ';' or a
 * newline; '#' starts a comment to the end of the line. "@PATH" reads a file (at most 64 MiB),
 * in one of the forms every command (and fixtures/record_transformers.py) accepts:
 *   - the text form;
 *   - JSON: {"prompt": [[ids], ...]} or {"prompt": [ids]} (one row), or a bare [[...]] / [...]
 *     (a file whose first non-blank byte is '{' or '[');
 *   - a recording (PATH ends in .safetensors): its step0.input_ids (I64 [B, S]), the prompt the
 *     recorded run was given (docs/tap-format.md). Every row must have the same length. Ids are decimal, 0 <= id < 2^62,
 * checked against vocab_size when it is > 0. Errors name the row, the column and the text. */
#ifndef DSV32_TOKENS_H
#define DSV32_TOKENS_H

#include <stdint.h>

#include "core/error.h"

typedef struct {
	int64_t *ids; /* [rows, cols] row-major, malloc'd */
	int64_t rows, cols;
} dsv32_tokens;

dsv32_status dsv32_tokens_parse(dsv32_tokens *t, const char *text, int64_t vocab_size,
				dsv32_error *err);
/* text or "@path" */
dsv32_status dsv32_tokens_load(dsv32_tokens *t, const char *arg, int64_t vocab_size,
			       dsv32_error *err);
/* Seeded random ids in [2, vocab) (core/rng.h stream "prompt"). */
dsv32_status dsv32_tokens_random(dsv32_tokens *t, int64_t rows, int64_t cols, int64_t vocab_size,
				 uint64_t seed, dsv32_error *err);
void dsv32_tokens_free(dsv32_tokens *t);

#endif
