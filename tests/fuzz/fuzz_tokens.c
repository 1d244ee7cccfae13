/* fuzz_tokens.c: libFuzzer target for token-id lists (dsv32_tokens_parse, core/tokens.h).
 * The first input byte picks the vocabulary size (0 = unchecked, else 1..255 or 2^k); the rest
 * is the text. An accepted list must be rows x cols ids, each inside [0, vocab). */
#include <stdint.h>

#include "core/tokens.h"
#include "tests/fuzz/fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	int64_t vocab = data[0] < 192 ? data[0] : INT64_C(1) << (data[0] - 192) % 63;
	char *text = fuzz_cstr(data + 1, size - 1);
	dsv32_tokens t;
	dsv32_error err = {0};
	dsv32_status rc = dsv32_tokens_parse(&t, text, vocab, &err);
	fuzz_check_err(rc, &err, "dsv32_tokens_parse");
	free(text);
	if (rc != DSV32_OK) {
		if (t.ids)
			abort();
		return 0;
	}
	if (t.rows < 1 || t.cols < 1)
		abort();
	for (int64_t i = 0; i < t.rows * t.cols; i++)
		if (t.ids[i] < 0 || (vocab > 0 && t.ids[i] >= vocab))
			abort();
	dsv32_tokens_free(&t);
	return 0;
}
