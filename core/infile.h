/* infile.h: the one way an input file is opened and read (docs/robustness.md "Inputs").
 *
 * Every input that is not a .safetensors mapping (configs, index files, token files, budgets,
 * reports, the side files of checkpoints and recordings) goes through dsv32_infile_open:
 *   1. open(2) with O_NONBLOCK, so a FIFO without a writer cannot block the open;
 *   2. fstat before any read: anything but a regular file is refused
 *      ("PATH: not a regular file (fifo)"), a FIFO, socket, directory or device alike;
 *   3. O_NONBLOCK cleared again (a regular file never blocks; callers may fdopen the fd).
 * Whole-file reads are capped per kind (dsv32_infile_limit): the size is checked against
 * st_size before anything is allocated and again while reading (a file may grow meanwhile).
 * Errors name the file and, for the cap, the limit and the kind.
 *
 * JSON inputs are also checked for duplicate keys (dsv32_json_check_unique_keys): cJSON keeps
 * the first value of a repeated key and Python's json the last, so accepting one would make
 * us silently disagree with the tools that wrote or read the same file.
 */
#ifndef DSV32_INFILE_H
#define DSV32_INFILE_H

#include <stddef.h>
#include <sys/stat.h>

#include "core/error.h"

struct cJSON;

typedef enum {
	DSV32_INFILE_CONFIG, /* config.json, the reference config (--config): 16 MiB */
	DSV32_INFILE_INDEX,  /* model.safetensors.index.json: 256 MiB */
	DSV32_INFILE_TOKENS, /* --tokens @FILE: 64 MiB */
	DSV32_INFILE_BUDGET, /* --budget FILE: 16 MiB */
	DSV32_INFILE_REPORT, /* report JSON (report check / render): 256 MiB */
	DSV32_INFILE_KIND_COUNT /* append only, above this line */
} dsv32_infile_kind;

/* "config file", "index file", ... ("input file" for an unknown kind). */
const char *dsv32_infile_kind_name(dsv32_infile_kind kind);
/* The byte cap of a whole-file read of this kind (0 for an unknown kind). */
size_t dsv32_infile_limit(dsv32_infile_kind kind);

/* Open path read-only as above. On success *fd is an open descriptor (close it) and *st (may be
 * NULL) its fstat. Errors: E_NOTFOUND (no such file), E_IO (cannot open, symlink loop, not a
 * regular file); *fd is -1 then. */
dsv32_status dsv32_infile_open(const char *path, int *fd, struct stat *st, dsv32_error *err);

/* dsv32_infile_open, then close: for inputs a library opens by name itself (HDF5), so that a
 * FIFO or a directory is refused before that library can block on it or misread it. */
dsv32_status dsv32_infile_check(const char *path, dsv32_error *err);

/* Read the whole file into a NUL-terminated malloc'd buffer (*out; *len, may be NULL, the
 * bytes without the NUL). More than max bytes is E_IO naming the file, `what` ("config file")
 * and the limit. On failure *out is NULL. */
dsv32_status dsv32_infile_read_capped(const char *path, size_t max, const char *what, char **out,
				      size_t *len, dsv32_error *err);
/* dsv32_infile_read_capped with the kind's limit and name. */
dsv32_status dsv32_infile_read(const char *path, dsv32_infile_kind kind, char **out, size_t *len,
			       dsv32_error *err);

/* E_FORMAT "LABEL: duplicate key "K" in WHERE ..." for the first object anywhere in the tree
 * that holds a key twice; DSV32_OK otherwise. O(n log n) per object (an index's weight_map holds
 * ~10^5 keys). */
dsv32_status dsv32_json_check_unique_keys(const struct cJSON *root, const char *label,
					  dsv32_error *err);

#endif
