/* ref_golden.h: helpers of the ref-layout golden tests: a tap store (copies of every tensor a
 * model emits), golden files, tokens.json, and per-tap drift metrics (max bf16 ULP distance,
 * relative L2, exact equality, index-set equality with a tie-tolerant re-scoring). */
#ifndef DSV32_TESTS_REF_GOLDEN_H
#define DSV32_TESTS_REF_GOLDEN_H

#include <stdbool.h>
#include <stdint.h>

#include "core/model.h"
#include "core/safetensors.h"

/* ---- tap store ---- */
typedef struct {
	char *name;
	dsv32_tensor t; /* owned host copy */
} ref_tap_entry;

typedef struct {
	ref_tap_entry *e;
	int n, cap;
	char prefix[32]; /* prepended to every stored name, e.g. "step3." */
} ref_tap_store;

void ref_store_sink(ref_tap_store *s, dsv32_tap_sink *sink);
void ref_store_clear(ref_tap_store *s);
const dsv32_tensor *ref_store_get(const ref_tap_store *s, const char *name);

/* ---- tokens.json ---- */
typedef struct {
	int64_t B, prompt_len, n_new;
	int64_t *prompt;    /* [B, prompt_len] */
	int64_t *generated; /* [B, n_new] */
	int n_steps;
	int64_t start_pos[16], seqlen[16];
} ref_tokens;

bool ref_tokens_load(ref_tokens *t, const char *path);
void ref_tokens_free(ref_tokens *t);

/* ---- metrics ---- */
typedef struct {
	int64_t n;          /* elements compared */
	int64_t n_diff;     /* elements not bit-identical */
	int64_t max_ulp;    /* max bf16 ULP distance (float taps; F32 values measured on the bf16
			       grid: |ord(bf16(a)) - ord(bf16(b))|, plus 1 if the f32 bits differ but
			       their bf16 roundings agree) */
	int64_t max_ulp_f32; /* max fp32 ULP distance (float taps) */
	double max_abs;
	double rel_l2;
	int64_t rows, rows_diff, rows_diff_untied; /* index taps: rows whose sets differ; of those,
						      not explained by equal scores */
	bool shape_ok;
} ref_metric;

/* Compare got against want (same dtype family). For I64 index taps, scores (F32 [.., n], the
 * golden indexer.scores) may be given for the tie-tolerant check; sets are compared per row
 * (last dim) as sets. as_sequence: compare I64 element-wise instead (expert ids in gate
 * order). */
ref_metric ref_compare(const dsv32_tensor *got, const dsv32_tensor *want,
		       const dsv32_tensor *scores, bool as_sequence);

/* The fixture directory (DSV32_SOURCE_DIR/fixtures/golden/ref_tiny) into out. */
void ref_golden_dir(char *out, size_t len);

#endif
