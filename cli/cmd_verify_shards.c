/* cmd_verify_shards.c: `dsv32-parity verify-shards --shards FILES|DIR... --dense DIR`: prove a
 * set of reference shards and a dense HF checkpoint hold the same model (convert/convert.h).
 * Prints a short summary on stdout; --json FILE (or its older spelling --report FILE) writes the
 * JSON report to a file, --json alone or --json - prints it on stdout instead of the summary. Exit 0 identical, 1 any difference (tensor bytes, missing / extra
 * keys, replicated tensors differing between ranks, shapes or dtypes, experts misplaced),
 * 2 the check could not run (usage, a rank file missing, two files claiming one rank, file
 * names of different world sizes, unreadable input). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "cli/cli_outputs.h"
#include "convert/convert.h"
#include "core/fsutil.h"

static const char *usage_text =
	"usage: dsv32-parity verify-shards --shards FILES|DIR... --dense DIR [--config FILE]\n"
	"                                  [--json [FILE|-]] [--force] [--allow-unknown] [--mp W]\n"
	"Reassembles every tensor from the model{r}-mp{W}.safetensors shards and compares it byte\n"
	"for byte with the dense HF checkpoint; lists missing and extra keys, replicated tensors\n"
	"that differ on a rank, dtype and shape differences. The JSON report holds the SHA-256 of\n"
	"every tensor's data bytes. --config defaults to <dense>/config.json (for the layer count\n"
	"and the number of routed experts). --mp W: the world size the shards must have.\n"
	"--json FILE writes the JSON report (atomically; --report FILE is the same); --json alone\n"
	"or --json - prints it on stdout, which then holds only the JSON. --force replaces an\n"
	"existing report file.\n"
	"exit codes: 0 identical, 1 a difference was found, 2 usage or input error\n";

static int verify(const char **shards, size_t n_shards, const char *dense, const char *config,
		  const char *const *reports, const char *json, bool allow_unknown, int world);

static const char *const VERIFY_OPTS[] = {"help", "json", "force", "allow-unknown", "shards", "dense",
					  "config", "report", "mp"};
#define N_VERIFY_OPTS ((int)(sizeof VERIFY_OPTS / sizeof VERIFY_OPTS[0]))

int dsv32_cmd_verify_shards(int argc, char **argv)
{
	const char *cmd = "verify-shards";
	const char **shards = calloc((size_t)argc + 1, sizeof *shards);
	size_t n_shards = 0;
	const char *dense = NULL, *config = NULL, *report = NULL;
	const char *json = NULL; /* "-": stdout; else a file, as --report */
	bool allow_unknown = false, force = false;
	int world = 0;
	if (!shards)
		return dsv32_cli_usage_error(cmd, "out of memory");
	for (int i = 1; i < argc; i++) {
		const char *o = argv[i];
		if (!strncmp(o, "--", 2) && !dsv32_args_is_known(o, VERIFY_OPTS, N_VERIFY_OPTS)) {
			free(shards);
			return dsv32_args_unknown(cmd, o, VERIFY_OPTS, N_VERIFY_OPTS);
		} else if (!strcmp(o, "--help") || !strcmp(o, "-h")) {
			fputs(usage_text, stdout);
			free(shards);
			return DSV32_EXIT_OK;
		} else if (!strcmp(o, "--json")) {
			json = dsv32_args_output_value(argc, argv, &i);
		} else if (!strcmp(o, "--force")) {
			force = true;
		} else if (!strcmp(o, "--allow-unknown")) {
			allow_unknown = true;
		} else if (!strcmp(o, "--shards")) {
			while (i + 1 < argc && strncmp(argv[i + 1], "--", 2))
				shards[n_shards++] = argv[++i];
		} else if (i + 1 < argc && !strcmp(o, "--dense")) {
			dense = argv[++i];
		} else if (i + 1 < argc && !strcmp(o, "--config")) {
			config = argv[++i];
		} else if (i + 1 < argc && !strcmp(o, "--report")) {
			report = argv[++i];
		} else if (i + 1 < argc && !strcmp(o, "--mp")) {
			char *end;
			long w = strtol(argv[++i], &end, 10);
			if (*end || w < 1 || w > DSV32_MAX_WORLD_SIZE) {
				free(shards);
				return dsv32_cli_usage_error(cmd, "--mp: '%s', expected a world size from 1 to %d",
							     argv[i], DSV32_MAX_WORLD_SIZE);
			}
			world = (int)w;
		} else {
			free(shards);
			return dsv32_cli_usage_error(cmd, "unknown argument or missing value: '%s'", o);
		}
	}
	if (!n_shards || !dense) {
		free(shards);
		return dsv32_cli_usage_error(cmd, "needs --shards FILES|DIR... and --dense DIR");
	}
	/* --report must not land on a shard, the dense checkpoint or the config; shards has room
	 * for two more entries (argc + 1 slots, at most argc - 2 shards) */
	shards[n_shards] = dense;
	shards[n_shards + 1] = config;
	const char *names[] = {"--report", "--json"};
	const char *reports[] = {report, dsv32_cli_out_file(json)};
	dsv32_cli_outputs claimed = {.force = force};
	int crc = dsv32_cli_outputs_claim(&claimed, cmd, names, reports, 2, shards,
					  (int)n_shards + 2);
	if (crc) {
		free(shards);
		return crc;
	}
	crc = verify(shards, n_shards, dense, config, reports, json, allow_unknown, world);
	dsv32_cli_outputs_release(&claimed);
	free(shards);
	return crc;
}

/* Run the check and print (and write) its report. Returns the exit code. */
static int verify(const char **shards, size_t n_shards, const char *dense, const char *config,
		  const char *const *reports, const char *json, bool allow_unknown, int world)
{
	const char *cmd = "verify-shards";
	dsv32_verify_opts o = {shards, n_shards, dense, config, allow_unknown, NULL, NULL, world};
	if ((!json || dsv32_cli_out_file(json)) && dsv32_cli_stderr_is_tty())
		o.progress = dsv32_cli_conv_progress;
	dsv32_verify_result res;
	dsv32_error err = {0};
	dsv32_status st = dsv32_verify_shards(&o, &res, &err);
	dsv32_cli_conv_progress_end(NULL);
	if (st != DSV32_OK && !res.report_json)
		return dsv32_cli_fail(cmd, &err); /* the check could not run */
	for (int i = 0; i < 2; i++) {
		int wrc = reports[i] ? dsv32_cli_write_output(cmd, reports[i], res.report_json) : 0;
		if (wrc) {
			dsv32_verify_result_free(&res);
			return wrc;
		}
	}
	if (json && !dsv32_cli_out_file(json))
		printf("%s\n", res.report_json); /* stdout holds only the JSON */
	else
		fputs(res.summary, stdout);
	dsv32_verify_result_free(&res);
	if (st != DSV32_OK)
		return dsv32_cli_fail(cmd, &err);
	return DSV32_EXIT_OK;
}
