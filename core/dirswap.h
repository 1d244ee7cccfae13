/* dirswap.h: write an output directory whole or not at all, replacing an old one by renames
 * (issue 14; docs/robustness.md "Outputs: what is guaranteed").
 *
 *   dsv32_dirswap d;
 *   dsv32_dirswap_begin(&d, out, force, inputs, n, err);   write the tree under d.tmp
 *   dsv32_dirswap_commit(&d, err)  on success,  dsv32_dirswap_abort(&d)  on any failure
 *
 * begin: dsv32_out_check(out, inputs, DSV32_OUT_DIR); creates out's parent; takes the output
 *   lock (outpath.h); refuses, naming it, a leftover "<out>.old.<pid>" of an interrupted run
 *   (it may be the only complete copy of the previous output: the user moves it back or
 *   removes it); refuses an existing out unless force; creates d.tmp = "<out>.tmp.<pid>"
 *   exclusively (so it is ours; ".<n>" is appended if a leftover holds that name). A leftover
 *   "<out>.tmp.<pid>" (an unfinished tree, never used again) does not stop the run: callers
 *   name it (dsv32_dirswap_leftover). Leftovers are never removed. Nothing is touched on a
 *   refusal. On failure nothing is held and abort is not needed (calling it is harmless).
 * commit: renames an existing out to "<out>.old.<pid>", d.tmp to out (no-replace), then removes
 *   the old tree; releases the lock. A crash between any two steps leaves out (old or new)
 *   complete, or out missing and "<out>.old.<pid>" complete beside the complete new tree; the
 *   next begin names what is left. If a rename fails the old tree is moved back.
 * abort: removes d.tmp (created by begin, so ours) and releases the lock. Idempotent.
 * Interrupts: d.tmp is in the registry of temporaries (outpath.h) from begin to commit/abort,
 *   so the CLI's SIGINT/SIGTERM handler removes it.
 * The only trees ever removed recursively are d.tmp and the old output this call renamed aside.
 */
#ifndef DSV32_DIRSWAP_H
#define DSV32_DIRSWAP_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/error.h"
#include "core/outpath.h"

typedef struct {
	char out[PATH_MAX];       /* as given, trailing '/' removed */
	char tmp[PATH_MAX + 32];  /* "<out>.tmp.<pid>": write the new tree here */
	bool force;
	bool made_tmp;            /* tmp was created by begin and not yet renamed */
	dsv32_out_lock lock;
} dsv32_dirswap;

dsv32_status dsv32_dirswap_begin(dsv32_dirswap *d, const char *out, bool force,
				 const char *const *inputs, int n_inputs, dsv32_error *err);
dsv32_status dsv32_dirswap_commit(dsv32_dirswap *d, dsv32_error *err);
void dsv32_dirswap_abort(dsv32_dirswap *d);

/* What an interrupted run left beside out: the path of an "<out>.old.<pid>" (returns 'o'), else
 * of an "<out>.tmp.<pid>[.<n>]" ('t'), into path (len bytes); 0 when there is none. */
int dsv32_dirswap_leftover(const char *out, char *path, size_t len);

#endif
