/* cli_outputs.h: the file outputs of one command, checked and locked before any work starts
 * (core/outpath.h; docs/robustness.md "Outputs: what is guaranteed").
 *
 * dsv32_cli_outputs_claim(o, cmd, names, outs, n_outs, inputs, n_inputs)
 *   names    the option of each output ("--json"), for messages
 *   outs     the paths; NULL entries are skipped (an option not given, or "-" where the
 *            caller writes it to stdout; elsewhere "-" is a file name like any other)
 *   inputs   what the command reads (NULL entries skipped)
 * Each output goes through dsv32_out_check(DSV32_OUT_FILE, and DSV32_OUT_REPLACE when o->force:
 * an existing output file is refused without --force); two outputs naming one file are
 * refused; then every output's lock is taken. Returns 0, or the exit code (2) after printing
 * the error; on failure nothing is held. Release once the command has written (or failed).
 */
#ifndef DSV32_CLI_OUTPUTS_H
#define DSV32_CLI_OUTPUTS_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/outpath.h"

#define DSV32_CLI_MAX_OUTPUTS 4

/* Each claimed output's "<out>.tmp.<pid>" (the name every writer uses) is registered as a
 * temporary (outpath.h) until release, so an interrupt removes a half-written file. */
typedef struct {
	bool force; /* set before claiming: existing output files may be replaced (--force) */
	dsv32_out_lock locks[DSV32_CLI_MAX_OUTPUTS];
	char tmps[DSV32_CLI_MAX_OUTPUTS][PATH_MAX + 48];
	int n;
} dsv32_cli_outputs;

int dsv32_cli_outputs_claim(dsv32_cli_outputs *o, const char *cmd, const char *const *names,
			    const char *const *outs, int n_outs, const char *const *inputs,
			    int n_inputs);
void dsv32_cli_outputs_release(dsv32_cli_outputs *o);

/* The directory a checkpoint argument stands for (a checkpoint may be named by a file in it:
 * its index or single .safetensors), into buf; the whole directory is an input. */
const char *dsv32_cli_ckpt_input(const char *ckpt, char *buf, size_t len);
/* The file behind "@FILE" token arguments and "taps:FILE" sides; NULL when s names no file. */
const char *dsv32_cli_tokens_input(const char *s);
const char *dsv32_cli_side_input(const char *side);

/* The `--json [FILE|-]` convention (args.h DSV32_ARG_OUTPUT): NULL when dest is "-" (stdout,
 * nothing to claim), else dest; for the outs list given to dsv32_cli_outputs_claim. */
const char *dsv32_cli_out_file(const char *dest);
/* Write text (plus a newline) to dest: NULL or "-" stdout, else the file, atomically
 * (core/fsutil.h). Returns 0, or 2 after printing the error. */
int dsv32_cli_write_output(const char *cmd, const char *dest, const char *text);

/* Name on stderr an unfinished "<out>.tmp.<pid>" left by an interrupted run (the run goes on;
 * an "<out>.old.<pid>" stops it with an error instead: core/dirswap.h). */
void dsv32_cli_note_leftover(const char *cmd, const char *out);

#endif
