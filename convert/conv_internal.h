/* conv_internal.h: pieces shared by the converters and the verifier (not a public API):
 * bounded-buffer output sink, page release of mapped sources, guarded reads of mapped inputs
 * that may shrink, the checkpoint checked against its config, atomic output directory, the set
 * of rank files joined into one table of tensors, and the safetensors library's tensor order. */
#ifndef DSV32_CONV_INTERNAL_H
#define DSV32_CONV_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "convert/convert.h"
#include "convert/namemap.h"
#include "core/dirswap.h"
#include "core/safetensors.h"

/* ---- output sink: bytes -> a safetensors writer through a bounded buffer ---- */
typedef struct {
	dsv32_st_writer *w;
	uint8_t *buf;
	size_t cap, len;
	uint64_t *done; /* shared progress counter */
	uint64_t total;
	dsv32_progress_fn progress;
	void *progress_user;
} conv_sink;

#define CONV_BUF_BYTES ((size_t)8 << 20)   /* sink buffer */
#define CONV_CHUNK_BYTES ((size_t)64 << 20) /* direct writes and page releases */

dsv32_status conv_sink_init(conv_sink *s, dsv32_error *err);
void conv_sink_free(conv_sink *s);
/* Append bytes: small pieces are buffered, large ones written straight from the source. */
dsv32_status conv_sink_put(conv_sink *s, const void *p, size_t n, dsv32_error *err);
dsv32_status conv_sink_flush(conv_sink *s, dsv32_error *err);
void conv_progress_add(conv_sink *s, uint64_t n);

/* Drop the pages of a read-only mapped range from this process (they stay in the page cache). */
void conv_release(const void *p, size_t n);
/* Ask the kernel to read a mapped range ahead (MADV_WILLNEED); a hint only. */
void conv_willneed(const void *p, size_t n);

/* ---- inputs that change while mapped (conv_guard.c) ----
 * A mapped input truncated by someone else during a run faults on the next read past its new
 * end. conv_read_mapped / conv_diff_mapped are memcpy / memcmp from a mapping that return false
 * instead of dying of SIGBUS (a sigsetjmp guard; the handler is installed from
 * conv_inputs_init to conv_inputs_free). A converter records its mapped inputs, calls
 * conv_inputs_explain on any failure and conv_inputs_check before committing: both give
 * DSV32_E_IO "PATH: file changed size while being read" when an input's size is not the one
 * recorded (or it held the faulting address). */
typedef struct {
	char *path;
	int64_t size;           /* st_size when recorded */
	const uint8_t *lo, *hi; /* the mapped bytes of its tensors */
} conv_input;

typedef struct {
	conv_input *v;
	size_t n;
	int64_t truncate_after; /* test hook (conv_inputs_tensor_done); -1: off */
	uint64_t tensors_done;
} conv_inputs;

void conv_inputs_init(conv_inputs *in);
void conv_inputs_free(conv_inputs *in);
dsv32_status conv_inputs_add(conv_inputs *in, const dsv32_st_file *f, dsv32_error *err);
dsv32_status conv_inputs_check(const conv_inputs *in, dsv32_error *err);
/* rc unchanged unless an input changed; then that error instead (rc == OK stays OK). */
dsv32_status conv_inputs_explain(const conv_inputs *in, dsv32_status rc, dsv32_error *err);
/* Test-only: with DSV32_TEST_TRUNCATE_INPUTS_AFTER=N in the environment, the N-th call cuts
 * every recorded input to half its size (tests/hostile/writers.rows); otherwise nothing. */
void conv_inputs_tensor_done(conv_inputs *in);
bool conv_read_mapped(void *dst, const void *src, size_t n);
/* *first: the first differing byte offset, n when the ranges are equal. */
bool conv_diff_mapped(const void *a, const void *b, size_t n, size_t *first);

/* ---- the checkpoint against its config, before anything is written (validate.c) ----
 * conv_validate_config: the sizes the model code builds tensors from, within range: every
 *   tensor dimension formed as a product of config fields (n_heads*qk_head_dim, ...) <= 2^31-1
 *   (the head widths the kernels take are dsv32_config_validate's, core/config.h).
 *   DSV32_E_FORMAT "LABEL: n_heads*qk_head_dim: ... exceeds ..." naming the product.
 * conv_validate_tensors: every tensor of the config's expected list (core/hf_names.h, the list
 *   `inspect` checks coverage with; fp8 scales when the checkpoint holds fp8 weights) present
 *   with the expected shape, looked up by HF name through find. DSV32_E_NOTFOUND "LABEL: 3 of
 *   154 tensors the config expects are missing: lm_head.weight (reference name head.weight),
 *   ..."; DSV32_E_SHAPE "LABEL: NAME (reference name REF): shape [..], the config expects
 *   [..]". Extra tensors are the converters' business (unknown names, MTP layers). */
typedef bool (*conv_find_fn)(const void *src, const char *hf, int *ndim, const int64_t **shape);
dsv32_status conv_validate_config(const dsv32_config *c, const char *label, dsv32_error *err);
dsv32_status conv_validate_tensors(const dsv32_config *c, bool fp8, conv_find_fn find,
				   const void *src, const char *label, dsv32_error *err);

/* ---- atomic output directory (core/dirswap.h: checked against the inputs, locked, built
 * under d.tmp, swapped in by renames) ---- */
typedef dsv32_dirswap conv_outdir;

/* dsv32_dirswap_begin: refuses an out that equals, lies inside or contains an input, ".", "..",
 * "/" or the current directory, a leftover of an interrupted run, an existing out unless force,
 * and a concurrent writer of the same out. */
dsv32_status conv_outdir_begin(conv_outdir *d, const char *out, bool force,
			       const char *const *inputs, size_t n_inputs, dsv32_error *err);
dsv32_status conv_outdir_commit(conv_outdir *d, dsv32_error *err);
void conv_outdir_abort(conv_outdir *d);
/* Copy every regular file of dir whose name contains "token" into dst_dir. */
dsv32_status conv_copy_token_files(const char *dir, const char *dst_dir, dsv32_error *err);

/* ---- tensor order of the safetensors library: dtype (descending rank), then name ---- */
int conv_dtype_rank(dsv32_dtype t);
int conv_cmp_st_order(dsv32_dtype da, const char *na, dsv32_dtype db, const char *nb);

/* ---- rank files joined by tensor ---- */
typedef struct {
	const dsv32_st_file *f; /* NULL where the rank does not hold it */
	const dsv32_st_entry *e;
} conv_part;

typedef struct {
	const char *ref;          /* reference name (owned by the entry in its file) */
	char hf[DSV32_NAME_MAX];  /* HF name */
	dsv32_name_info info;
	dsv32_dtype dtype;
	int ndim;
	int64_t full[DSV32_MAX_DIMS]; /* full (dense) shape */
	uint64_t nbytes;              /* full size */
	conv_part *parts;             /* [world] */
} conv_tensor;

typedef struct {
	int world;
	int64_t n_experts;
	dsv32_st_file **files; /* [world], by rank */
	char **paths;          /* [world] */
	conv_tensor *t;        /* sorted by reference name */
	size_t n;
	char **unknown; /* names skipped (allow_unknown) */
	size_t n_unknown;
	char dir[4096]; /* directory of rank 0's file (for *token* files) */
} conv_shardset;

/* Open the rank files named by inputs (files or directories), check ranks and world size,
 * join the tensors and check them: every non-expert tensor on every rank with the same dtype
 * and (local) shape, every routed expert once, on its owner rank, none missing.
 * expect_world > 0: the file names must say that world size. n_experts <= 0: infer it as the
 * largest expert index + 1. */
dsv32_status conv_shardset_open(conv_shardset *s, const char *const *inputs, size_t n_inputs,
				int expect_world, int64_t n_experts, bool allow_unknown,
				dsv32_error *err);
void conv_shardset_close(conv_shardset *s);
/* The world size the first shard file name (in name order) of inputs says, without opening
 * any file (conv_shardset_open checks that all agree). */
dsv32_status conv_shard_world(const char *const *inputs, size_t n_inputs, int *world,
			      dsv32_error *err);

/* Hand each piece of the full tensor t, in row-major order of the full tensor, to fn.
 * Replicated tensors come from rank 0; expert tensors from their owner. */
typedef dsv32_status (*conv_piece_fn)(void *user, const void *p, size_t n, int rank,
				      uint64_t full_off, dsv32_error *err);
dsv32_status conv_tensor_pieces(const conv_tensor *t, int world, conv_piece_fn fn, void *user,
				dsv32_error *err);
/* The HF config.json text ref-to-hf writes for reference config c (malloc'ed; NULL when out of
 * memory): has_quant and the weight dtype follow whether any tensor is fp8. */
char *conv_hf_config_json(dsv32_config c, bool any_fp8);
/* Reassemble t into buf (t->nbytes, the full tensor in row-major order). */
dsv32_status conv_tensor_gather(const conv_tensor *t, int world, void *buf, dsv32_error *err);
/* For a replicated tensor: the first rank whose bytes differ from rank 0, or -1; *off gets
 * the first differing byte offset. -2: a read of the mappings faulted (an input cut short). */
int conv_replica_diff(const conv_tensor *t, int world, uint64_t *off);
/* Feed one tensor to a SHA-256 context as dsv32_ckpt_content_sha256 defines it: name, dtype
 * name, shape "d0,d1,.." (each NUL-terminated), then its bytes. False when OpenSSL fails. */
bool conv_hash_tensor(EVP_MD_CTX *md, const char *name, dsv32_dtype dtype, int ndim,
		      const int64_t *shape, const void *data, size_t nbytes);
/* Release the mapped pages of every part of t. */
void conv_tensor_release(const conv_tensor *t, int world);

#endif
