/* tapcmp.h: how one tap of side a is compared with the same tap of side b, by its class in the
 * tap grammar (core/taps.h): dense activations element-wise, masked scores with their mask,
 * index sets per row (over the picks the recorded scores leave visible), routing weights as a
 * routing matrix over the experts each side chose, logits at the last position. The runner
 * (runner.c) decides which taps meet; this decides what their meeting measures. */
#ifndef DSV32_TAPCMP_H
#define DSV32_TAPCMP_H

#include "compare/result.h"
#include "compare/tapstore.h"

/* The companion taps of this step a comparison may look up: the selection scores of an index
 * set (in held, whichever side is held) and each side's expert ids of its routing weights. */
typedef struct {
	dsv32_tapstore *held;           /* the held side's taps of this step */
	dsv32_tapstore *sets_a, *sets_b; /* each side's index-set taps of this step (may be NULL) */
} dsv32_tapcmp_peers;

/* An index set by its dtype (I64/I32): what makes a recording's extra tap a set. */
bool dsv32_tapcmp_is_set(const dsv32_tensor *t);

/* The result header of tap `name` at (step, mode): names, layer, dtypes, b's shape. */
void dsv32_tapcmp_header(dsv32_tap_result *r, const char *name, int step, dsv32_drift_mode mode,
			 const dsv32_tensor *a, const dsv32_tensor *b);

/* Fill r's family and metrics for a (side a) against b (side b); false when the pair is not
 * comparable (dtypes, shapes) or memory ran out. why then says what did not match. */
bool dsv32_tapcmp(dsv32_tap_result *r, const dsv32_tapcmp_peers *peers, const char *name,
		  const dsv32_tensor *a, const dsv32_tensor *b, char *why, size_t why_len);

#endif
