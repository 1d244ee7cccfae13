/* attr_util.h: what the attribution tests (test_attribute*.c) share: opening either layout for
 * compare/runner.h, reading a result's taps, and grabbing one tap of a forward. Test support
 * only. */
#ifndef DSV32_TESTS_ATTR_UTIL_H
#define DSV32_TESTS_ATTR_UTIL_H

#include <stdbool.h>

#include "compare/result.h"
#include "core/config.h"
#include "core/model.h"

/* dsv32_cmp_config.open: "ref" opens the ref layout, anything else hf. */
dsv32_status attr_open_model(const char *layout, const char *ckpt, const dsv32_model_opts *o,
			     dsv32_model **out, dsv32_error *err);
/* A set whose rows are not all equal, or a dense tap with a differing element. */
bool attr_tap_differs(const dsv32_tap_result *t);
/* The tap (step, mode, name) of r, or NULL. */
const dsv32_tap_result *attr_find_tap(const dsv32_cmp_result *r, int step, dsv32_drift_mode mode,
				      const char *name);
/* Prints every tap of r that differs (with its mode and size of difference), their count, and
 * the taps that were not compared with why. */
void attr_print_diffs(const dsv32_cmp_result *r);

/* One comparison on a fresh checkpoint: writes `preset` with weights wd to a temporary
 * directory, runs side_a against side_b (both with max_seq_len max_seq; 0 = the config's) on
 * B x S random tokens from `seed` (ids below 1024) with decode_steps and the passes asked for,
 * leaves the result in r (initialised here; the caller frees it) and removes the directory.
 * Any failure fails the running cmocka test. */
typedef struct {
	const char *preset;
	dsv32_weight_dtype wd;
	const char *side_a, *side_b;
	int64_t B, S, max_seq;
	uint64_t seed;
	int decode_steps;
	bool propagate, local;
} attr_run;
void attr_run_preset(const attr_run *run, dsv32_cmp_result *r);

/* A tap sink that keeps the first tap called `name` as f32 on the host (v NULL until then;
 * the caller frees v). */
typedef struct {
	const char *name;
	float *v;
	int64_t n;
} attr_tap_grab;
dsv32_status attr_grab_tap(void *user, const char *name, const dsv32_tensor *t,
			   dsv32_error *err);

#endif
