/* model_runs.h: run two models through the same greedy steps with every tap kept and fail the
 * running cmocka test unless both runs are bit-identical (taps by name, dtype, shape and bytes;
 * logits likewise). For identities such as lazy vs eager weights or shards vs dense checkpoint.
 * Test support only. */
#ifndef DSV32_TESTS_MODEL_RUNS_H
#define DSV32_TESTS_MODEL_RUNS_H

#include <stdint.h>

#include "core/model.h"

/* prompt [B, S] row-major; steps = 1 prefill + (steps - 1) greedy decode steps, the decode
 * tokens taken from each model's own logits (the same on both sides iff the logits are).
 * label_a / label_b name the two runs in failure messages. */
void mr_assert_runs_identical(dsv32_model *a, const char *label_a, dsv32_model *b,
			      const char *label_b, const int64_t *prompt, int64_t B, int64_t S,
			      int steps);

#endif
