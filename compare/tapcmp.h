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

/* The name of the scores tap the selection tap set_name is made from (core/taps.h
 * DSV32_SELECTION_TAPS: "layers.1.indexer.topk" -> "layers.1.indexer.scores",
 * "layers.1.moe.experts" -> "layers.1.moe.scores"); false when set_name is no selection. */
bool dsv32_tapcmp_scores_name(char *buf, size_t len, const char *set_name);
/* The group scores tap of a two-stage selection ("layers.1.moe.experts" ->
 * "layers.1.moe.group_scores", core/taps.h DSV32_GROUP_STAGES); false when it has none. */
bool dsv32_tapcmp_group_scores_name(char *buf, size_t len, const char *set_name);
/* Whether name is the scores tap or the group scores tap of a selection. */
bool dsv32_tapcmp_is_selection_scores(const char *name);

/* How far two sides' selection scores disagree: the largest |a - b| over the positions both
 * leave unmasked (the noise of metrics.h "Decision flips"); -1 when they cannot be paired. */
double dsv32_tapcmp_score_noise(const dsv32_tensor *a, const dsv32_tensor *b);

/* The group stage of a two-stage selection (core/taps.h DSV32_GROUP_STAGES) in one step: the
 * groups each side kept are the groups its own selection scores leave unmasked; the held
 * side's group scores measure a group flip, against the group noise, the largest |g_a - g_b|.
 * A row whose sides kept different groups (an expert of a group one side dropped never
 * competed with that side's picks, and the held side's scores may mask it) is classified by
 * two margins: the group margin, the
 * largest |g[i] - g[j]| over a group i only a kept and a group j only b kept, against the
 * group noise, and the expert margin over the picks in the groups both kept, against the
 * score noise. Near-tie when each is at most twice its noise (metrics.h "Decision flips"),
 * else genuine; the row's margin is the larger of the two. */
typedef struct {
	const float *sa, *sb; /* side a's and side b's selection scores [rows, n_cols] */
	const float *g;       /* the held side's group scores [rows, n_groups] */
	int64_t n_cols, n_groups;
	double noise;         /* the group noise */
} dsv32_group_stage;

/* The group stage of selection `set_name` from the held store and each side's store (each
 * holds that side's scores; held the group scores), for rows rows; false (gs zeroed) when
 * `set_name` has no group stage or a tap is missing or does not fit. */
bool dsv32_tapcmp_group_stage(dsv32_group_stage *gs, const char *set_name, dsv32_tapstore *held,
			      dsv32_tapstore *store_a, dsv32_tapstore *store_b, int64_t rows);

/* The class of row `row` of selection tap `name` whose selections a (ka picks) and b (kb
 * picks) differ, exactly as the set metrics count it: over the picks the scores leave visible
 * (where masked picks do nothing, core/taps.h), a tie when the multisets of scores are equal,
 * else near-tie / genuine by the flip margin against noise (-1: unknown, the row stays
 * unclassified). A row whose sides kept different router groups is classified by the group
 * stage gs; without one (NULL, or no group scores) a flip to a pick whose score is masked
 * stays unclassified. scores: the held side's scores row (n_cols), NULL: unclassified.
 * *margin: the flip margin, 0 for a tie, -1 when unclassified. */
dsv32_flip_class dsv32_tapcmp_classify_row(const char *name, const int64_t *a, int64_t ka,
					   const int64_t *b, int64_t kb, const float *scores,
					   int64_t n_cols, double noise,
					   const dsv32_group_stage *gs, int64_t row,
					   double *margin);

/* The result header of tap `name` at (step, mode): names, layer, dtypes, b's shape. */
void dsv32_tapcmp_header(dsv32_tap_result *r, const char *name, int step, dsv32_drift_mode mode,
			 const dsv32_tensor *a, const dsv32_tensor *b);

/* Fill r's family and metrics for a (side a) against b (side b); false when the pair is not
 * comparable (dtypes, shapes) or memory ran out. why then says what did not match. */
bool dsv32_tapcmp(dsv32_tap_result *r, const dsv32_tapcmp_peers *peers, const char *name,
		  const dsv32_tensor *a, const dsv32_tensor *b, char *why, size_t why_len);

#endif
