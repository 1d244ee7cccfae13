/* convert.h: reference TP shards <-> dense HF checkpoint, and bit-exact verification of one
 * against the other (docs/spec/checkpoints.md §5-§9; issue 6).
 *
 * dsv32_convert_hf_to_ref  HF checkpoint dir -> model{r}-mp{W}.safetensors laid out as DeepSeek's
 *                          convert.py does (same names, slices, dtypes; each file's tensors in
 *                          the safetensors library's order: dtype, then name), the reference
 *                          config JSON as config.json, and every *token* file copied.
 * dsv32_convert_ref_to_hf  shards -> HF names, split tensors concatenated along their split dim,
 *                          experts from their owner rank, replicated tensors taken once after a
 *                          byte comparison across ranks; files of at most max_shard_bytes with
 *                          model.safetensors.index.json; config.json from the reference config.
 *                          dtype KEEP copies bytes; BF16 dequantizes each F8_E4M3 weight with its
 *                          scale, W = bf16(f32(w8) * s[r/128][c/128]) (exact when s is a power of
 *                          two and the product is a normal bf16), drops the scales, keeps F32.
 * dsv32_verify_shards      every tensor reassembled from the shards equals the dense one byte for
 *                          byte; missing / extra keys listed; replicated tensors identical on
 *                          every rank; dtypes and world size consistent. JSON report with the
 *                          SHA-256 of each tensor's data bytes (OpenSSL EVP).
 *
 * Streaming: sources are mmap'd and read once in order; pages are released after use
 * (madvise), output goes through a bounded buffer, so memory stays near the largest tensor
 * (BF16 dequantization holds one fp8 weight) plus buffers, never the checkpoint size.
 * Atomic: output is built in "<out>.tmp.<pid>" and renamed at the end; an existing <out> is
 * refused unless force; a failure removes the temporary directory; inputs are never written.
 *
 * Errors name the file, tensor and rank: DSV32_E_NOTFOUND (a rank file missing, a tensor
 * unknown to the name map), DSV32_E_FORMAT (two files claiming one rank, world sizes that
 * disagree between file names), DSV32_E_SHAPE (a split dim not divisible by W, shapes that
 * disagree between ranks), DSV32_E_MISMATCH (replicated bytes differ, an expert on the wrong
 * rank, verification differences), DSV32_E_USAGE (bad options, output exists).
 */
#ifndef DSV32_CONVERT_H
#define DSV32_CONVERT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/config.h"
#include "core/error.h"
#include "core/safetensors.h"
#include "core/tensor.h"

/* Called as bytes are processed; total is fixed for a run. */
typedef void (*dsv32_progress_fn)(void *user, uint64_t done, uint64_t total);

typedef struct {
	dsv32_progress_fn progress; /* may be NULL */
	void *progress_user;
	bool force;         /* replace an existing output directory */
	bool allow_unknown; /* skip (and list) tensors the name map does not know */
} dsv32_conv_common;

typedef struct {
	const char *checkpoint; /* HF checkpoint directory (or one .safetensors file) */
	const char *config;     /* HF config.json or reference JSON; NULL: <checkpoint>/config.json */
	int world;              /* model-parallel size W */
	const char *out;        /* output directory */
	dsv32_conv_common common;
} dsv32_hf_to_ref_opts;

typedef enum { DSV32_OUT_KEEP = 0, DSV32_OUT_BF16 } dsv32_out_dtype;

typedef struct {
	const char *const *shards; /* shard files and/or directories holding them */
	size_t n_shards;
	const char *config;        /* reference config JSON (or HF config.json) */
	const char *out;
	dsv32_out_dtype dtype;
	uint64_t max_shard_bytes;  /* 0: 5 GB (5e9 bytes) */
	dsv32_conv_common common;
	int world;                 /* expected world size; 0: whatever the file names say */
} dsv32_ref_to_hf_opts;

typedef struct {
	uint64_t tensors;   /* tensors written (over all files) */
	uint64_t bytes;     /* tensor data bytes written */
	int files;          /* safetensors files written */
	int world;          /* world size of the shards (read or written) */
	uint64_t dropped;   /* HF tensors of MTP layers dropped (hf-to-ref) */
	size_t n_skipped;   /* unknown tensors skipped (allow_unknown) */
	char **skipped;
} dsv32_conv_result;

void dsv32_conv_result_free(dsv32_conv_result *r);

dsv32_status dsv32_convert_hf_to_ref(const dsv32_hf_to_ref_opts *o, dsv32_conv_result *res,
				     dsv32_error *err);
dsv32_status dsv32_convert_ref_to_hf(const dsv32_ref_to_hf_opts *o, dsv32_conv_result *res,
				     dsv32_error *err);

typedef struct {
	const char *const *shards;
	size_t n_shards;
	const char *dense;   /* dense HF checkpoint dir */
	const char *config;  /* optional; NULL: <dense>/config.json when it exists */
	bool allow_unknown;  /* unknown dense/shard tensors are listed but not failures */
	dsv32_progress_fn progress;
	void *progress_user;
	int world;           /* expected world size; 0: whatever the file names say */
} dsv32_verify_opts;

typedef struct {
	bool ok;
	int world;
	uint64_t tensors, identical, mismatched, missing, extra, dropped, unknown;
	char *report_json; /* the full report (malloc'd) */
	char *summary;     /* a short human summary, several lines (malloc'd) */
} dsv32_verify_result;

void dsv32_verify_result_free(dsv32_verify_result *r);

/* Returns DSV32_OK when shards and dense hold the same model; DSV32_E_MISMATCH (with the
 * report filled, err naming the first difference) when they do not; another status when the
 * check could not run (a rank file missing, unreadable input), with no report. */
dsv32_status dsv32_verify_shards(const dsv32_verify_opts *o, dsv32_verify_result *res,
				 dsv32_error *err);

/* SHA-256 of a byte range as 64 lowercase hex digits + NUL into hex[65]. */
dsv32_status dsv32_sha256_hex(const void *data, size_t n, char hex[65], dsv32_error *err);
/* SHA-256 of a checkpoint's content (inspect --hash): every tensor in name order as its name,
 * NUL, dtype name, NUL, shape "d0,d1,..", NUL, then its bytes. The files' metadata (which
 * states the host that wrote a recording) and the tensors' layout in the files are left out, so
 * two recordings of the same numbers hash the same on any machine. */
dsv32_status dsv32_ckpt_content_sha256(const dsv32_ckpt *c, char hex[65], dsv32_error *err);

/* ---- shard source: a model reads its tensors straight from reference shards ----
 * The hf layout on model{r}-mp{W}.safetensors without a dense copy (hf_layout/hf_model.h
 * dsv32_hf_open_shards): the rank files are opened and checked as dsv32_convert_ref_to_hf opens
 * them (ranks, world size, shapes and dtypes between ranks, expert placement by the config's
 * n_routed_experts; unknown tensor names are errors), and each tensor is handed out by HF name
 * as exactly the bytes `convert ref-to-hf --dtype keep` writes for it (same piece walk,
 * conv_tensor_pieces), in memory, one tensor at a time.
 *
 * Precision contract: bytes are copied, never converted: dtype and values are the shards'.
 * Replicated tensors are taken from rank 0 WITHOUT the converter's byte comparison across ranks
 * (that reads every rank's copy of every replicated tensor); `dsv32-parity verify-shards` (or
 * the converter) is the check that the ranks agree.
 *
 * open     shards: files and/or directories (as dsv32_ref_to_hf_opts.shards); config: the
 *          reference config JSON (or an HF config.json); NULL: config.json in the shard
 *          directory (the first input, or the directory of the first file). The config is
 *          validated against the world size (dsv32_config_validate). Errors as the converter's:
 *          a missing rank file (DSV32_E_NOTFOUND naming the expected file), mixed world sizes,
 *          a split dim or expert count W does not divide, shapes that disagree between ranks.
 * tensor   *out is a borrowed, read-only view of one rank's mapping (owned false) when the
 *          tensor lives whole in one file: W = 1, a replicated tensor (rank 0's copy), a routed
 *          expert (its owner rank); an owned host tensor (owned true, free with
 *          dsv32_tensor_free) reassembled from the pieces of a tensor split along dim 0 or 1.
 *          Views stay valid until close. DSV32_E_NOTFOUND naming the HF and reference name
 *          when no rank file holds the tensor.
 * find     whether hf_name is there, with its full (dense) dtype / ndim / shape (each
 *          pointer may be NULL); reads no data.
 * hf_config  the config as the HF config.json `convert ref-to-hf` writes from these shards
 *          (has_quant / dtype fp8 when some tensor is F8_E4M3 / F8_E5M2), read back.
 */
typedef struct dsv32_shard_source dsv32_shard_source;

dsv32_status dsv32_shard_source_open(dsv32_shard_source **out, const char *const *shards,
				     size_t n_shards, const char *config, dsv32_error *err);
void dsv32_shard_source_close(dsv32_shard_source *src); /* NULL: no-op */
dsv32_status dsv32_shard_source_tensor(const dsv32_shard_source *src, const char *hf_name,
				       dsv32_tensor *out, dsv32_error *err);
bool dsv32_shard_source_find(const dsv32_shard_source *src, const char *hf_name,
			     dsv32_dtype *dtype, int *ndim, int64_t shape[DSV32_MAX_DIMS]);
dsv32_status dsv32_shard_source_hf_config(const dsv32_shard_source *src, dsv32_config *c,
					  dsv32_error *err);
int dsv32_shard_source_world(const dsv32_shard_source *src);
/* Layer-major runs: dsv32_st_release_prefix over every rank file (ref_prefix in the reference
 * names, e.g. "layers.3."). */
void dsv32_shard_source_release_prefix(const dsv32_shard_source *src, const char *ref_prefix);
/* The tensors in HF name order, as ref-to-hf writes them (inspect lists them): count, the HF
 * name of the i-th, and the reference name and split ("none", "dim0", "dim1", "expert") behind
 * it. */
size_t dsv32_shard_source_count(const dsv32_shard_source *src);
const char *dsv32_shard_source_name_at(const dsv32_shard_source *src, size_t i);
const char *dsv32_shard_source_ref_name_at(const dsv32_shard_source *src, size_t i);
const char *dsv32_shard_source_split_at(const dsv32_shard_source *src, size_t i);
/* The content SHA-256 (dsv32_ckpt_content_sha256's definition) of the dense checkpoint these
 * shards make: equal to `inspect --hash` of what `convert ref-to-hf --dtype keep` writes from
 * them. Reads every byte; at most one reassembled tensor is held at a time. */
dsv32_status dsv32_shard_source_content_sha256(const dsv32_shard_source *src, char hex[65],
					       dsv32_error *err);
/* "reference shards <dir> (mp<W>)", for messages. */
const char *dsv32_shard_source_label(const dsv32_shard_source *src);

#endif
