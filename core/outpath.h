/* outpath.h: the one gate every output path goes through, and the lock beside an output
 * (issue 14; docs/robustness.md "Outputs: what is guaranteed").
 *
 * dsv32_out_check(out, inputs, n_inputs, flags, err)
 *   out      the output as the user named it (file, or with DSV32_OUT_DIR a directory)
 *   inputs   paths the command reads (checkpoint dirs, configs, token files, budgets, reports,
 *            recordings); NULL entries are skipped
 *   flags    DSV32_OUT_FILE (| DSV32_OUT_REPLACE) or DSV32_OUT_DIR
 * Resolution: a path is compared as the kernel will walk it when the write happens: realpath of
 *   its deepest existing prefix, then the missing components lexically ("." skipped, ".." drops
 *   one). Each path is compared twice: with its last symbolic link followed, and as named (a
 *   rename replaces the link, not its target). An output is refused when either form equals,
 *   lies inside or contains either form of an input.
 * Refuses (DSV32_E_USAGE, a message naming both paths; nothing on disk is touched):
 *   - an output that overlaps an input as above
 *   - a last component "." or ".." (e.g. `--out .`, `--out ..`, `/.`)
 *   - DSV32_OUT_FILE without DSV32_OUT_REPLACE: an existing regular file ("pass --force")
 *   - an existing output of the wrong kind: a symbolic link, or for a file anything but a regular
 *     file (a directory, /dev/stdout, a FIFO: every writer writes "<out>.tmp.<pid>" and renames
 *     it over out, which would replace the device node or link), for a directory a non-directory
 *   - DSV32_OUT_DIR: a directory that resolves to "/", the current directory or one of its parents
 * Errors: DSV32_E_USAGE as above; DSV32_E_IO when a path cannot be resolved (cwd gone, too long).
 *
 * dsv32_out_lock_take(lk, out, err) / dsv32_out_lock_release(lk)
 *   flock(LOCK_EX | LOCK_NB) on ".<name>.lock" in out's (resolved) parent, so two spellings of
 *   one output share a lock. A second writer fails at once: DSV32_E_IO, "another dsv32-parity is
 *   writing OUT (lock PATH)". The parent must exist. Release unlinks the lock file while still
 *   holding it; a taker that opened the old file sees, after its flock, that the path names
 *   another inode (or none) and retries, so the unlink cannot let two writers in. A process
 *   killed while holding it leaves the file behind, unlocked: harmless, the next taker reuses it.
 */
#ifndef DSV32_OUTPATH_H
#define DSV32_OUTPATH_H

#include <limits.h>
#include <stdbool.h>

#include "core/error.h"

enum {
	DSV32_OUT_FILE = 0u,         /* a regular file written as "<out>.tmp.<pid>", then renamed */
	DSV32_OUT_DIR = 1u << 0,     /* a directory built under a temporary name, then swapped in */
	DSV32_OUT_REPLACE = 1u << 1, /* FILE: an existing regular file may be replaced (--force) */
};

dsv32_status dsv32_out_check(const char *out, const char *const *inputs, int n_inputs,
			     unsigned flags, dsv32_error *err);

/* Whether a and b overlap (one equals or lies inside the other) by the rules above; true when
 * either cannot be resolved (the caller then refuses, which is the safe side). */
bool dsv32_out_overlaps(const char *a, const char *b);

typedef struct {
	int fd;                   /* -1: not held */
	char path[PATH_MAX + 16]; /* the lock file */
} dsv32_out_lock;

#define DSV32_OUT_LOCK_INIT {-1, ""}

dsv32_status dsv32_out_lock_take(dsv32_out_lock *lk, const char *out, dsv32_error *err);
/* Idempotent; a lock never taken (fd -1) is a no-op. */
void dsv32_out_lock_release(dsv32_out_lock *lk);

/* Temporaries to remove when the process is interrupted (SIGINT/SIGTERM): a fixed table the
 * CLI's signal handler walks. A path is registered right after our code created it (or, for a
 * file temporary, once its name "<out>.tmp.<pid>" is known: the pid makes it ours), and
 * forgotten once it was renamed or removed. The library never installs a handler.
 * register: false when the table is full or the path too long (the temporary is then only
 *   named by the next run, as before). forget: by the same string; a no-op when absent.
 * remove: async-signal-safe; unlinks each file and removes each directory tree (through a
 *   forked `rm -rf`, since readdir is not signal-safe), then empties the table. */
bool dsv32_tmp_register(const char *path, bool is_dir);
void dsv32_tmp_forget(const char *path);
void dsv32_tmp_remove_all(void);

#endif
