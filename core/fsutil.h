/* fsutil.h: small file-system helpers shared by writers: atomic whole-file writes, temporary
 * directories renamed into place, and existence checks. */
#ifndef DSV32_FSUTIL_H
#define DSV32_FSUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

bool dsv32_path_exists(const char *path);
/* All len bytes of buf to fd, at file offset off (pwrite), or at the fd's own offset where off
 * is -1; retries short writes and EINTR. 0 or an errno. */
int dsv32_write_full(int fd, const void *buf, size_t len, int64_t off);
bool dsv32_path_is_dir(const char *path);
/* Write buf to "<path>.tmp.<pid>", fsync, rename to path. */
dsv32_status dsv32_write_file_atomic(const char *path, const void *buf, size_t len,
				     dsv32_error *err);
/* Read a whole (small) file into a NUL-terminated malloc'd buffer. max caps its size. Goes
 * through core/infile.h (regular files only, non-blocking open); inputs of a known kind use
 * dsv32_infile_read and its stated per-kind limit. */
dsv32_status dsv32_read_file(const char *path, size_t max, char **out, size_t *len,
			     dsv32_error *err);
/* mkdir -p */
dsv32_status dsv32_mkdirs(const char *path, dsv32_error *err);
/* rm -rf of a directory we created. Refuses (E_USAGE, nothing touched) "", ".", "..", a path
 * ending in "." or "..", the file-system root, the current directory and its ancestors; a
 * symbolic link is unlinked, never followed. */
dsv32_status dsv32_remove_tree(const char *path, dsv32_error *err);
/* Join a and b with '/', into out (len bytes); false if truncated. */
bool dsv32_path_join(char *out, size_t len, const char *a, const char *b);
/* The last path component (after any trailing slashes) is "." or "..". */
bool dsv32_path_names_dot_entry(const char *path);

#endif
