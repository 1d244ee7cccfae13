/* cli_order.h: the loop order of a run (issue 19): step-major (each step runs every layer) or
 * layer-major (each layer runs every step, then is released: core/model.h "Layer-major"), and
 * the given decode tokens that make layer-major possible in dump and compare. */
#ifndef DSV32_CLI_ORDER_H
#define DSV32_CLI_ORDER_H

#include <stdbool.h>
#include <stddef.h>

#include "core/error.h"
#include "core/tokens.h"

/* --decode-tokens ARG: the tokens of the decode steps, one row per batch row, one column per
 * step ("7,9;3,4": row 0 decodes 7 then 9), or @FILE in the forms of core/tokens.h, or
 * @REC.safetensors: a recording's step{1..N}.input_ids (its decoded tokens). *steps receives the
 * column count. Checked against vocab (> 0) and batch (the prompt's rows). */
dsv32_status dsv32_cli_decode_tokens(const char *arg, int64_t vocab, int64_t batch,
				     dsv32_tokens *out, dsv32_error *err);

/* --order auto|layer|step. auto: layer when the run's tokens are all known before it starts
 * (`known`) and every live model can run layer-major (`capable`), else step. layer where it
 * cannot apply: DSV32_E_USAGE naming why (`why_not`, what makes it inapplicable). *layer is the
 * choice; why (len bytes) says in words why that order was taken. */
dsv32_status dsv32_cli_order_pick(const char *order, bool known, bool capable,
				  const char *why_not, bool *layer, char *why, size_t len,
				  dsv32_error *err);

#endif
