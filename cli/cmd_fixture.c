/* cmd_fixture.c: `dsv32-parity fixture`: write a preset's deterministic random-weight HF
 * checkpoint (fixtures/generator.h). */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "cli/cli_outputs.h"
#include "core/infile.h"
#include "fixtures/generator.h"

/* --json [FILE|-]: what was written, for scripts (stdout then holds only this). */
typedef struct {
	const char *out, *kind, *label, *dtype;
	uint64_t seed, bytes; /* bytes: the files' apparent size */
	double seconds;
	bool sparse;
} fixture_written;

static int write_json(const char *dest, const fixture_written *fw)
{
	cJSON *j = cJSON_CreateObject();
	cJSON_AddBoolToObject(j, "ok", true);
	cJSON_AddStringToObject(j, "out", fw->out);
	cJSON_AddStringToObject(j, fw->kind, fw->label); /* "preset": NAME or "config": FILE */
	cJSON_AddStringToObject(j, "dtype", fw->dtype);
	cJSON_AddNumberToObject(j, "seed", (double)fw->seed);
	cJSON_AddBoolToObject(j, "sparse", fw->sparse);
	cJSON_AddNumberToObject(j, "bytes", (double)fw->bytes);
	cJSON_AddNumberToObject(j, "seconds", fw->seconds);
	char *s = cJSON_PrintUnformatted(j);
	int rc = s ? dsv32_cli_write_output("fixture", dest, s) : DSV32_EXIT_USAGE;
	free(s);
	cJSON_Delete(j);
	return rc;
}

/* The fixture of preset_or_json (a preset name or config JSON text); kind ("preset" or
 * "config") and label (the name or the file) name it in messages and in --json. */
static int write_fixture(const char *preset_or_json, const char *kind, const char *label,
			 const char *dtype,
			 uint64_t seed, uint64_t shard, bool sparse, bool force, const char *out,
			 const char *json)
{
	dsv32_error err = {0};
	dsv32_weight_dtype dt = strcmp(dtype, "fp8") == 0 ? DSV32_WDTYPE_FP8 : DSV32_WDTYPE_BF16;
	dsv32_fixture_opts fo = {.sparse = sparse};
	const char *jfile = dsv32_cli_out_file(json); /* never inside the tree being swapped in */
	if (jfile && dsv32_out_check(jfile, &out, 1,
				     DSV32_OUT_FILE | (force ? DSV32_OUT_REPLACE : 0u),
				     &err) != DSV32_OK)
		return dsv32_cli_fail("fixture", &err);
	dsv32_cli_note_leftover("fixture", out);
	if ((!json || jfile) && dsv32_cli_stderr_is_tty())
		fo.progress = dsv32_cli_conv_progress; /* stderr is a terminal: a progress bar */
	double t0 = dsv32_cli_now_s();
	dsv32_status st = dsv32_fixture_write_opts(preset_or_json, dt, seed, out, shard, force, &fo,
						   &err);
	fixture_written fw = {out, kind, label, dtype, seed, 0, dsv32_cli_now_s() - t0, sparse};
	dsv32_cli_conv_progress_end(NULL);
	uint64_t alloc;
	int nf;
	if (st != DSV32_OK ||
	    dsv32_fixture_disk_usage(out, &fw.bytes, &alloc, &nf, &err) != DSV32_OK)
		return dsv32_cli_fail("fixture", &err);
	fprintf(stderr, "dsv32-parity fixture: wrote %s (%s %s, %s, seed %llu%s): %.2f GB in %.2f s "
		"(%.2f GB/s)\n", out, kind, label, dtype, (unsigned long long)seed,
		sparse ? ", sparse" : "", (double)fw.bytes / 1e9, fw.seconds,
		fw.seconds > 0 ? (double)fw.bytes / 1e9 / fw.seconds : 0.0);
	if (json && write_json(json, &fw))
		return DSV32_EXIT_USAGE;
	if (sparse)
		fprintf(stderr, "dsv32-parity fixture: %d files, apparent size %.3f GB, allocated "
			"%.3f MB on disk\n", nf, (double)fw.bytes / 1e9, (double)alloc / 1e6);
	return DSV32_EXIT_OK;
}

int dsv32_cmd_fixture(int argc, char **argv)
{
	const char *preset = NULL, *config = NULL, *dtype = "bf16", *out = NULL, *json = NULL;
	uint64_t seed = 0, shard = 0;
	bool force = false, sparse = false;
	const dsv32_arg_opt opts[] = {
		{"preset", DSV32_ARG_STRING, &preset, "tiny|small|real-width|v3.2",
		 "model preset (this or --config)", false},
		{"config", DSV32_ARG_STRING, &config, "FILE",
		 "an HF config.json of any shape instead of a preset (e.g. a preset's config with "
		 "n_shared_experts 4, so fp8 weights split 4 ways)", false},
		{"dtype", DSV32_ARG_CHOICE, &dtype, "bf16|fp8",
		 "matrix dtype: bf16, or fp8 e4m3 with 128x128 pow2 block scales (default bf16)",
		 false},
		{"seed", DSV32_ARG_U64, &seed, "N", "weight seed (default 0)", false},
		{"max-shard-size", DSV32_ARG_SIZE, &shard, "SIZE",
		 "split into files of at most SIZE (e.g. 5GB, 500MB) with an index; default one file",
		 false},
		{"sparse", DSV32_ARG_FLAG, &sparse, NULL,
		 "leave every tensor of >= 1 MiB as a hole (reads as zeros; real file sizes, "
		 "tiny disk use): the full-size rehearsal, docs/real-checkpoint.md", false},
		{"force", DSV32_ARG_FLAG, &force, NULL, "replace DIR (and a --json FILE) if it exists", false},
		{"out", DSV32_ARG_STRING, &out, "DIR", "output directory (written atomically)", true},
		{"json", DSV32_ARG_OUTPUT, &json, "FILE",
		 "a JSON summary to FILE, or alone / '-': to stdout (which then holds only it)", false},
	};
	const dsv32_arg_spec spec = {
		"fixture", "--preset NAME | --config FILE --out DIR [options]",
		"Write a deterministic random-weight DeepSeek V3.2 checkpoint in HF layout\n"
		"(config.json + model.safetensors) for a built-in preset or a given config.\n"
		"Same options, same bytes.",
		opts, (int)(sizeof opts / sizeof opts[0]), 0, 0};
	const char *pos[1];
	int npos;
	int rc = dsv32_args_parse(&spec, argc, argv, pos, &npos);
	if (rc == DSV32_ARGS_HELP)
		return DSV32_EXIT_OK;
	if (rc)
		return rc;
	if (!preset == !config)
		return dsv32_cli_usage_error("fixture", "give one of --preset NAME or --config FILE");
	if (preset && preset[0] == '{')
		return dsv32_cli_usage_error("fixture", "--preset: expected a preset name");
	dsv32_error err = {0};
	char *config_text = NULL; /* read before anything is written: it may lie inside --out */
	size_t config_len;
	if (config && dsv32_infile_read(config, DSV32_INFILE_CONFIG, &config_text, &config_len,
					&err) != DSV32_OK)
		return dsv32_cli_fail("fixture", &err);
	rc = write_fixture(preset ? preset : config_text, preset ? "preset" : "config",
			   preset ? preset : config, dtype, seed, shard, sparse, force, out, json);
	free(config_text);
	return rc;
}
