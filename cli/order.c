/* order.c: the loop order of dump and compare and their --decode-tokens (cli_order.h). */
#include "cli/cli_order.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compare/tapfile.h"
#include "core/taps.h"

/* A recording's decoded tokens: step{1..N}.input_ids, each [B, 1], as columns of out. */
static dsv32_status from_recording(const char *path, dsv32_tokens *out, dsv32_error *err)
{
	dsv32_tapfile tf;
	DSV32_TRY(dsv32_tapfile_open(&tf, path, err));
	dsv32_status rc = DSV32_OK;
	int64_t B = tf.batch, N = tf.n_steps - 1;
	out->rows = B;
	out->cols = N;
	out->ids = malloc((size_t)(B * (N > 0 ? N : 1)) * sizeof(int64_t));
	if (!out->ids)
		rc = DSV32_FAIL(err, DSV32_E_NOMEM, "%s: decode tokens", path);
	for (int s = 1; rc == DSV32_OK && s <= N; s++) {
		dsv32_tensor ids;
		rc = dsv32_tapfile_get(&tf, s, dsv32_model_tap_name(DSV32_MTAP_INPUT_IDS), &ids, err);
		if (rc == DSV32_OK && (ids.ndim != 2 || ids.shape[0] != B || ids.shape[1] != 1))
			rc = DSV32_FAIL(err, DSV32_E_FORMAT, "%s: step%d.input_ids is not [%lld, 1]: "
					"not a decode step", path, s, (long long)B);
		for (int64_t b = 0; rc == DSV32_OK && b < B; b++)
			out->ids[b * N + s - 1] = ((const int64_t *)ids.data)[b];
	}
	dsv32_tapfile_close(&tf);
	if (rc != DSV32_OK)
		dsv32_tokens_free(out);
	return rc;
}

dsv32_status dsv32_cli_decode_tokens(const char *arg, int64_t vocab, int64_t batch,
				     dsv32_tokens *out, dsv32_error *err)
{
	static const char ext[] = ".safetensors";
	size_t n = strlen(arg), k = sizeof ext - 1;
	*out = (dsv32_tokens){0};
	if (arg[0] == '@' && n > k && !strcmp(arg + n - k, ext))
		DSV32_TRY(from_recording(arg + 1, out, err));
	else
		DSV32_TRY(dsv32_tokens_load(out, arg, vocab, err));
	for (int64_t i = 0; vocab > 0 && i < out->rows * out->cols; i++)
		if (out->ids[i] < 0 || out->ids[i] >= vocab) {
			dsv32_tokens_free(out);
			return DSV32_FAIL(err, DSV32_E_USAGE, "--decode-tokens: id %lld outside the "
					  "vocabulary [0, %lld)", (long long)out->ids[i], (long long)vocab);
		}
	if (out->rows != batch) {
		int64_t r = out->rows;
		dsv32_tokens_free(out);
		return DSV32_FAIL(err, DSV32_E_USAGE, "--decode-tokens: %lld row(s), but the prompt "
				  "has %lld (one row of decode tokens per prompt row)", (long long)r,
				  (long long)batch);
	}
	return DSV32_OK;
}

dsv32_status dsv32_cli_order_pick(const char *order, bool known, bool capable,
				  const char *why_not, bool *layer, char *why, size_t len,
				  dsv32_error *err)
{
	bool ok = known && capable;
	if (!strcmp(order, "layer") && !ok)
		return DSV32_FAIL(err, DSV32_E_USAGE, "--order layer: %s", why_not);
	*layer = !strcmp(order, "layer") || (!strcmp(order, "auto") && ok);
	if (*layer)
		snprintf(why, len, "%s", !strcmp(order, "layer") ? "--order layer"
								 : "auto: every step's tokens known");
	else if (!strcmp(order, "step"))
		snprintf(why, len, "--order step");
	else
		snprintf(why, len, "auto: %s", why_not);
	return DSV32_OK;
}
