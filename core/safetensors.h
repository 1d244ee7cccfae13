/* safetensors.h: zero-copy reader (mmap) and streaming, atomic writer of the safetensors format
 * (docs/spec/checkpoints.md §1), plus sharded checkpoints through model.safetensors.index.json.
 *
 * Reader limits (enforced, each violation is DSV32_E_FORMAT with the format's rule name in the
 * message, e.g. "InvalidOffset: layers.0.attn.wo.weight"):
 *   header length  8 <= N <= DSV32_ST_MAX_HEADER (100 MB, the Python library's cap) and
 *                  8 + N <= file size
 *   header         valid UTF-8 JSON object; each entry {dtype, shape, data_offsets}; optional
 *                  "__metadata__" is a map of string to string
 *   dtype          a dtype name of the Python library (core/dtype.h: all of them open; F4,
 *                  F6_*, FNUZ and C64 are listed only, dsv32_st_tensor refuses them with
 *                  DSV32_E_DTYPE); packed F4 / F6_* tensors fill whole bytes (MisalignedSlice)
 *   shape          at most DSV32_MAX_DIMS dims, each >= 0; product x itemsize without overflow
 *                  equals end - begin
 *   offsets        begin <= end <= data size; entries do not overlap
 */
#ifndef DSV32_SAFETENSORS_H
#define DSV32_SAFETENSORS_H

#include "core/tensor.h"

#define DSV32_ST_MAX_HEADER (100u * 1000u * 1000u)

typedef struct {
	const char *name;
	dsv32_dtype dtype;
	int ndim;
	int64_t shape[DSV32_MAX_DIMS];
	uint64_t begin, end; /* byte offsets relative to the start of the data section */
} dsv32_st_entry;

typedef struct dsv32_st_file dsv32_st_file; /* one mmap'd file */

dsv32_status dsv32_st_open(dsv32_st_file **out, const char *path, dsv32_error *err);
/* Parse from a caller-owned buffer (no mmap; used by tests and fuzzers). The buffer must
 * outlive the handle. */
dsv32_status dsv32_st_open_mem(dsv32_st_file **out, const void *buf, size_t len, const char *label,
			       dsv32_error *err);
void dsv32_st_close(dsv32_st_file *f);

const char *dsv32_st_path(const dsv32_st_file *f);
size_t dsv32_st_count(const dsv32_st_file *f);
/* Entries in file-offset order. */
const dsv32_st_entry *dsv32_st_entry_at(const dsv32_st_file *f, size_t i);
const dsv32_st_entry *dsv32_st_find(const dsv32_st_file *f, const char *name);
/* Pointer to an entry's bytes inside the mapping. */
const void *dsv32_st_data(const dsv32_st_file *f, const dsv32_st_entry *e);
/* A borrowed tensor view of a named tensor; DSV32_E_NOTFOUND if absent. */
dsv32_status dsv32_st_tensor(const dsv32_st_file *f, const char *name, dsv32_tensor *out,
			     dsv32_error *err);
/* __metadata__ lookup; NULL if absent. */
const char *dsv32_st_metadata(const dsv32_st_file *f, const char *key);
size_t dsv32_st_metadata_count(const dsv32_st_file *f);
void dsv32_st_metadata_at(const dsv32_st_file *f, size_t i, const char **key, const char **value);

/* ---- a checkpoint: one file, or several joined by model.safetensors.index.json ---- */
typedef struct dsv32_ckpt dsv32_ckpt;

/* path is a directory (reads model.safetensors.index.json if present, else every *.safetensors
 * in it, sorted by name) or a single .safetensors file. A tensor name present in two files is
 * an error, as is an index entry naming a file that does not hold the tensor. */
dsv32_status dsv32_ckpt_open(dsv32_ckpt **out, const char *path, dsv32_error *err);
void dsv32_ckpt_close(dsv32_ckpt *c);
size_t dsv32_ckpt_count(const dsv32_ckpt *c);
/* Entries sorted by name; *file receives the file holding it. */
const dsv32_st_entry *dsv32_ckpt_entry_at(const dsv32_ckpt *c, size_t i, const dsv32_st_file **file);
const dsv32_st_entry *dsv32_ckpt_find(const dsv32_ckpt *c, const char *name,
				      const dsv32_st_file **file);
dsv32_status dsv32_ckpt_tensor(const dsv32_ckpt *c, const char *name, dsv32_tensor *out,
			       dsv32_error *err);
size_t dsv32_ckpt_file_count(const dsv32_ckpt *c);
const dsv32_st_file *dsv32_ckpt_file_at(const dsv32_ckpt *c, size_t i);

/* Layer-major runs (core/model.h "Layer-major"): drop from this process the resident pages of
 * every tensor whose name starts with prefix (e.g. "model.layers.3."), with
 * madvise(MADV_DONTNEED) on the read-only mapping, widened to whole pages. Why: a borrowed
 * weight costs RSS only for the pages touched, and those stay mapped until dropped; a later read
 * faults them in again from the file (the same bytes), so this never changes a value. Returns
 * the bytes of the tensors matched; a buffer of dsv32_st_open_mem is left alone. */
uint64_t dsv32_st_release_prefix(const dsv32_st_file *f, const char *prefix);
uint64_t dsv32_ckpt_release_prefix(const dsv32_ckpt *c, const char *prefix);

/* ---- streaming writer ----
 * Declare every tensor (name, dtype, shape) and any metadata first, then write the data of each
 * tensor in declaration order (in one or several chunks), then commit. Output goes to
 * "<path>.tmp.<pid>" and is renamed to path on commit; abort (or any failure) removes it.
 * The header is compact JSON padded with spaces to a multiple of 8 bytes, as the Python
 * library writes it. Memory use is the header plus nothing per tensor, and where the file
 * system takes O_DIRECT (a disk's; not tmpfs) a 4 MiB stage, 16 MiB and a writer thread once
 * more than one stage is written: bytes reach the file in whole aligned blocks past the page
 * cache (DSV32_NO_DIRECT_IO=1 turns it off), and an I/O error such as a full disk may surface
 * in a later write or in commit, naming the temporary, never after commit. */
typedef struct dsv32_st_writer dsv32_st_writer;

dsv32_status dsv32_st_writer_open(dsv32_st_writer **out, const char *path, dsv32_error *err);
dsv32_status dsv32_st_writer_meta(dsv32_st_writer *w, const char *key, const char *value,
				  dsv32_error *err);
dsv32_status dsv32_st_writer_declare(dsv32_st_writer *w, const char *name, dsv32_dtype dtype,
				     int ndim, const int64_t *shape, dsv32_error *err);
/* Append bytes to the data section; the first call writes the header. The bytes must follow
 * the declaration order; the total must equal the declared sizes at commit. */
dsv32_status dsv32_st_writer_write(dsv32_st_writer *w, const void *data, size_t nbytes,
				   dsv32_error *err);
/* Append nbytes zero bytes without writing them: the whole blocks they cover are left unwritten,
 * so on a filesystem with sparse files they become a hole (no disk blocks). The finished file is byte
 * for byte the one dsv32_st_writer_write of nbytes zeros gives. Same ordering rules as write. */
dsv32_status dsv32_st_writer_skip(dsv32_st_writer *w, uint64_t nbytes, dsv32_error *err);
dsv32_status dsv32_st_writer_commit(dsv32_st_writer *w, dsv32_error *err); /* frees w */
void dsv32_st_writer_abort(dsv32_st_writer *w);                              /* frees w */

#endif
