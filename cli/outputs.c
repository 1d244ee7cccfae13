/* outputs.c: check and lock a command's file outputs before it starts (cli_outputs.h). */
#include "cli/cli_outputs.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/dirswap.h"
#include "core/fsutil.h"

const char *dsv32_cli_ckpt_input(const char *ckpt, char *buf, size_t len)
{
	struct stat st;
	if (!ckpt || stat(ckpt, &st) != 0 || S_ISDIR(st.st_mode))
		return ckpt;
	const char *slash = strrchr(ckpt, '/');
	if (!slash)
		snprintf(buf, len, ".");
	else
		snprintf(buf, len, "%.*s", slash == ckpt ? 1 : (int)(slash - ckpt), ckpt);
	return buf;
}

const char *dsv32_cli_tokens_input(const char *s)
{
	return s && s[0] == '@' && s[1] ? s + 1 : NULL;
}

const char *dsv32_cli_side_input(const char *side)
{
	return side && !strncmp(side, "taps:", 5) && side[5] ? side + 5 : NULL;
}

/* NULL: the option was not given, or names stdout (the caller maps "-" where it accepts it). */
static bool is_file_out(const char *p)
{
	return p != NULL;
}

/* Refuse two options naming one file: the second write would silently replace the first. */
static int check_distinct(const char *cmd, const char *const *names, const char *const *outs,
			  int n_outs)
{
	for (int i = 0; i < n_outs; i++)
		for (int j = i + 1; j < n_outs; j++)
			if (is_file_out(outs[i]) && is_file_out(outs[j]) &&
			    dsv32_out_overlaps(outs[i], outs[j]))
				return dsv32_cli_usage_error(cmd, "%s %s and %s %s name the same file",
							     names[i], outs[i], names[j], outs[j]);
	return 0;
}

int dsv32_cli_outputs_claim(dsv32_cli_outputs *o, const char *cmd, const char *const *names,
			    const char *const *outs, int n_outs, const char *const *inputs,
			    int n_inputs)
{
	dsv32_error err = {0};
	o->n = 0;
	if (n_outs > DSV32_CLI_MAX_OUTPUTS) {
		DSV32_FAIL(&err, DSV32_E_INTERNAL, "%d outputs: at most %d", n_outs,
			   DSV32_CLI_MAX_OUTPUTS);
		return dsv32_cli_fail(cmd, &err);
	}
	for (int i = 0; i < n_outs; i++)
		if (is_file_out(outs[i]) &&
		    dsv32_out_check(outs[i], inputs, n_inputs,
				    DSV32_OUT_FILE | (o->force ? DSV32_OUT_REPLACE : 0u), &err) != DSV32_OK)
			return dsv32_cli_fail(cmd, &err);
	int rc = check_distinct(cmd, names, outs, n_outs);
	if (rc)
		return rc;
	for (int i = 0; i < n_outs; i++) {
		if (!is_file_out(outs[i]))
			continue;
		if (dsv32_out_lock_take(&o->locks[o->n], outs[i], &err) != DSV32_OK) {
			dsv32_cli_outputs_release(o);
			return dsv32_cli_fail(cmd, &err);
		}
		snprintf(o->tmps[o->n], sizeof o->tmps[o->n], "%s.tmp.%ld", outs[i], (long)getpid());
		if (!dsv32_tmp_register(o->tmps[o->n], false))
			o->tmps[o->n][0] = '\0';
		o->n++;
	}
	return 0;
}

void dsv32_cli_outputs_release(dsv32_cli_outputs *o)
{
	for (int i = 0; i < o->n; i++) {
		if (o->tmps[i][0])
			dsv32_tmp_forget(o->tmps[i]);
		dsv32_out_lock_release(&o->locks[i]);
	}
	o->n = 0;
}

const char *dsv32_cli_out_file(const char *dest)
{
	return dest && strcmp(dest, "-") != 0 ? dest : NULL;
}

int dsv32_cli_write_output(const char *cmd, const char *dest, const char *text)
{
	if (!dsv32_cli_out_file(dest)) {
		printf("%s\n", text);
		return fflush(stdout) == 0 ? 0 : DSV32_EXIT_USAGE;
	}
	dsv32_error err = {0};
	size_t n = strlen(text);
	char *buf = malloc(n + 2);
	if (!buf) {
		DSV32_FAIL(&err, DSV32_E_NOMEM, "%s: %zu bytes", dest, n + 2);
		return dsv32_cli_fail(cmd, &err);
	}
	memcpy(buf, text, n);
	buf[n] = '\n';
	buf[n + 1] = '\0';
	dsv32_status st = dsv32_write_file_atomic(dest, buf, n + 1, &err);
	free(buf);
	return st == DSV32_OK ? 0 : dsv32_cli_fail(cmd, &err);
}

void dsv32_cli_note_leftover(const char *cmd, const char *out)
{
	char p[PATH_MAX + 256];
	if (out && dsv32_dirswap_leftover(out, p, sizeof p) == 't')
		fprintf(stderr, "dsv32-parity %s: note: found leftover %s from an interrupted run "
			"(an unfinished output, never used); remove it\n", cmd, p);
}
