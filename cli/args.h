/* args.h: a tiny option parser shared by the subcommands.
 *
 * Options are long only: `--name value`, `--name=value`, `--flag`; `--` ends options; anything
 * else is a positional argument. `--help` / `-h` print the help text built from the table.
 * Value kinds: STRING (const char *), U64 (decimal), SIZE (bytes with an optional suffix:
 * B, KB/MB/GB/TB = powers of 1000 as HF's --max-shard-size, KiB/MiB/GiB/TiB = powers of 1024),
 * FLAG (bool set true), CHOICE (a string that must be one of a '|'-separated list),
 * OUTPUT (const char *: an output with an optional value, the `--json [FILE|-]` convention:
 * alone or with "-" it is "-", stdout; `--json=FILE`, or `--json FILE` where FILE does not start
 * with '-' and every positional argument is already given, name a file).
 */
#ifndef DSV32_CLI_ARGS_H
#define DSV32_CLI_ARGS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

typedef enum { DSV32_ARG_FLAG = 0, DSV32_ARG_STRING, DSV32_ARG_U64, DSV32_ARG_SIZE,
	       DSV32_ARG_CHOICE, DSV32_ARG_OUTPUT } dsv32_arg_kind;

typedef struct {
	const char *name;     /* without the leading "--" */
	dsv32_arg_kind kind;
	void *dest;           /* bool*, const char**, uint64_t*, uint64_t*, const char** */
	const char *metavar;  /* FLAG: NULL; CHOICE: "a|b|c" (the allowed values) */
	const char *help;     /* one line */
	bool required;
} dsv32_arg_opt;

typedef struct {
	const char *cmd;          /* "fixture" */
	const char *usage;        /* "--preset NAME --out DIR [options]" */
	const char *summary;      /* a paragraph printed under the usage line */
	const dsv32_arg_opt *opts;
	int nopts;
	int min_pos, max_pos;     /* positional argument counts allowed */
} dsv32_arg_spec;

enum { DSV32_ARGS_OK = 0, DSV32_ARGS_HELP = -1 };

/* Parse argv[1..argc) (argv[0] is the subcommand). Positionals go to pos[0..*npos). Returns
 * DSV32_ARGS_OK, DSV32_ARGS_HELP (help printed to stdout: exit 0) or 2 (message printed to
 * stderr: exit 2). */
int dsv32_args_parse(const dsv32_arg_spec *spec, int argc, char **argv, const char **pos,
		     int *npos);
void dsv32_args_help(const dsv32_arg_spec *spec, FILE *out);
/* The value of an OUTPUT option that parses its own argv at argv[*i] (the option itself):
 * "-" or the next argument when it is "-" or does not start with '-' (then *i moves past it). */
const char *dsv32_args_output_value(int argc, char **argv, int *i);

/* The entry of valid[0..n) nearest to word by edit distance (insertions, deletions,
 * substitutions), or NULL when none is within max(2, strlen(word) / 3) edits: a suggestion
 * further away than that is noise. */
const char *dsv32_args_nearest(const char *word, const char *const *valid, int n);
/* "unknown option '--X' (did you mean '--Y'?)" on stderr, Y the nearest of valid (names
 * without "--"); returns 2. For the subcommands that parse their own options. */
int dsv32_args_unknown(const char *cmd, const char *opt, const char *const *valid, int n);
/* opt ("--name" or "--name=value") is one of names (without "--"). */
bool dsv32_args_is_known(const char *opt, const char *const *names, int n);
/* "5GB" -> 5000000000; false on a malformed size. */
bool dsv32_args_parse_size(const char *s, uint64_t *out);

#endif
