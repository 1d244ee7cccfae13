/* cmd_convert.c: `dsv32-parity convert ref-to-hf|hf-to-ref`: reference TP shards <-> a dense HF
 * checkpoint (convert/convert.h). Progress bar (bytes, rate) on a terminal; `--json` prints one
 * parseable JSON object on stdout and nothing else. Exit 0 done, 1 a check failed (replicated
 * tensors differ between ranks, an expert on the wrong rank), 2 usage or input error. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "cli/cli_models.h"
#include "cli/cli_outputs.h"
#include "convert/convert.h"
#include "core/config.h"
#include "core/fsutil.h"
#include "core/outpath.h"

/* ---- progress bar (cli.h), shared with verify-shards and fixture (one bar per process) ---- */
static struct {
	double start, last;
	bool drawn;
} bar_state;

/* Redrawn at most 10 times a second on stderr: "[#####.....]  1.20 / 5.00 GB  24%  812 MB/s". */
void dsv32_cli_conv_progress(void *user, uint64_t done, uint64_t total)
{
	(void)user;
	__typeof__(bar_state) *b = &bar_state;
	double t = dsv32_cli_now_s();
	if (b->start == 0)
		b->start = t;
	if (done < total && t - b->last < 0.1)
		return;
	b->last = t;
	double frac = total ? (double)done / (double)total : 1.0;
	char bar[31];
	int fill = (int)(frac * 30);
	for (int i = 0; i < 30; i++)
		bar[i] = i < fill ? '#' : '.';
	bar[30] = '\0';
	double rate = t > b->start ? (double)done / (t - b->start) : 0;
	fprintf(stderr, "\r[%s] %7.2f / %.2f GB %3d%% %7.0f MB/s", bar, done / 1e9, total / 1e9,
		(int)(frac * 100), rate / 1e6);
	fflush(stderr);
	b->drawn = true;
}

void dsv32_cli_conv_progress_end(void *user)
{
	(void)user;
	__typeof__(bar_state) *b = &bar_state;
	if (b->drawn)
		fprintf(stderr, "\n");
	b->drawn = false;
}

/* ---- options ---- */
typedef struct {
	const char **shards;
	size_t n_shards;
	const char *config, *out, *checkpoint, *dtype;
	uint64_t mp, max_shard;
	const char *json; /* NULL, "-" (stdout) or a file: the --json [FILE|-] convention */
	char config_buf[4096];
	bool force, allow_unknown, help;
} conv_args;

static const char *usage_text =
	"usage: dsv32-parity convert ref-to-hf --shards FILES|DIR... [--config REF_CONFIG.json] --out DIR\n"
	"                                      [--dtype keep|bf16] [--max-shard-size 5GB] [--mp W]\n"
	"       dsv32-parity convert hf-to-ref --checkpoint DIR --mp W --out DIR [--config FILE]\n"
	"common options: --force (replace an existing --out and --json FILE), --json [FILE|-] (one JSON object to\n"
	"  FILE; alone or '-': on stdout, which then holds only it), --allow-unknown (skip and list\n"
	"  tensors the name map does not know)\n"
	"ref-to-hf: --config defaults to the config.json beside the shards.\n"
	"ref-to-hf merges model{r}-mp{W}.safetensors into an HF checkpoint (model-XXXXX-of-YYYYY.\n"
	"  safetensors + model.safetensors.index.json + config.json); --dtype bf16 dequantizes fp8\n"
	"  weights with their block scales. hf-to-ref writes the shards as DeepSeek's convert.py,\n"
	"  the reference config JSON (config.json) and copies *token* files.\n"
	"exit codes: 0 done, 1 a check failed, 2 usage or input error\n";

/* Every option of both directions (each direction then refuses the other's: see main). */
static const char *const CONVERT_OPTS[] = {"help", "force", "json", "allow-unknown", "shards",
					   "config", "out", "checkpoint", "dtype", "mp",
					   "max-shard-size"};
#define N_CONVERT_OPTS ((int)(sizeof CONVERT_OPTS / sizeof CONVERT_OPTS[0]))

/* Parse argv[2..]; --shards takes every following argument up to the next option. */
static int parse(conv_args *a, int argc, char **argv, const char *cmd)
{
	memset(a, 0, sizeof *a);
	a->shards = calloc((size_t)argc + 2, sizeof *a->shards);
	if (!a->shards)
		return dsv32_cli_usage_error(cmd, "out of memory");
	for (int i = 2; i < argc; i++) {
		const char *o = argv[i];
		bool has_val = i + 1 < argc;
		const char *val = has_val ? argv[i + 1] : NULL;
		if (!strncmp(o, "--", 2) && !dsv32_args_is_known(o, CONVERT_OPTS, N_CONVERT_OPTS)) {
			return dsv32_args_unknown(cmd, o, CONVERT_OPTS, N_CONVERT_OPTS);
		} else if (!strcmp(o, "--help") || !strcmp(o, "-h")) {
			a->help = true;
		} else if (!strcmp(o, "--force")) {
			a->force = true;
		} else if (!strcmp(o, "--json")) {
			a->json = dsv32_args_output_value(argc, argv, &i);
		} else if (!strcmp(o, "--allow-unknown")) {
			a->allow_unknown = true;
		} else if (!strcmp(o, "--shards")) {
			while (i + 1 < argc && strncmp(argv[i + 1], "--", 2))
				a->shards[a->n_shards++] = argv[++i];
			if (!a->n_shards)
				return dsv32_cli_usage_error(cmd, "--shards: needs files or a directory");
		} else if (!has_val && !strncmp(o, "--", 2)) {
			return dsv32_cli_usage_error(cmd, "%s: needs a value", o);
		} else if (!strcmp(o, "--config")) {
			a->config = argv[++i];
		} else if (!strcmp(o, "--out")) {
			a->out = argv[++i];
		} else if (!strcmp(o, "--checkpoint")) {
			a->checkpoint = argv[++i];
		} else if (!strcmp(o, "--dtype")) {
			a->dtype = argv[++i];
			if (strcmp(val, "keep") && strcmp(val, "bf16"))
				return dsv32_cli_usage_error(cmd, "--dtype: '%s', expected keep or bf16", val);
		} else if (!strcmp(o, "--mp")) {
			char *end;
			a->mp = strtoull(argv[++i], &end, 10);
			if (*end || a->mp == 0 || a->mp > DSV32_MAX_WORLD_SIZE)
				return dsv32_cli_usage_error(cmd, "--mp: '%s', expected a world size from 1 to %d",
							     val, DSV32_MAX_WORLD_SIZE);
		} else if (!strcmp(o, "--max-shard-size")) {
			if (!dsv32_args_parse_size(argv[++i], &a->max_shard) || a->max_shard == 0)
				return dsv32_cli_usage_error(cmd, "--max-shard-size: '%s' is not a size (e.g. 5GB)",
							     val);
		} else {
			return dsv32_cli_usage_error(cmd, "unknown argument '%s'", o);
		}
	}
	return 0;
}

static int print_json(const char *dest, const char *dir, const dsv32_conv_result *r,
		      const dsv32_error *err, const char *out, double secs)
{
	cJSON *j = cJSON_CreateObject();
	cJSON_AddBoolToObject(j, "ok", err == NULL);
	cJSON_AddStringToObject(j, "command", dir);
	cJSON_AddStringToObject(j, "out", out ? out : "");
	if (err) {
		cJSON_AddStringToObject(j, "error", err->what);
		cJSON_AddStringToObject(j, "status", dsv32_status_str(err->code));
	} else {
		cJSON_AddNumberToObject(j, "world_size", r->world);
		cJSON_AddNumberToObject(j, "files", r->files);
		cJSON_AddNumberToObject(j, "tensors", (double)r->tensors);
		cJSON_AddNumberToObject(j, "bytes", (double)r->bytes);
		cJSON_AddNumberToObject(j, "dropped_mtp", (double)r->dropped);
		cJSON_AddNumberToObject(j, "seconds", secs);
		cJSON *sk = cJSON_AddArrayToObject(j, "skipped_unknown");
		for (size_t i = 0; i < r->n_skipped; i++)
			cJSON_AddItemToArray(sk, cJSON_CreateString(r->skipped[i]));
	}
	char *s = cJSON_PrintUnformatted(j);
	int rc = s ? dsv32_cli_write_output("convert", dest, s) : DSV32_EXIT_USAGE;
	free(s);
	cJSON_Delete(j);
	return rc;
}

/* An option of the other direction would be silently ignored: name it instead. */
static const char *other_direction_option(const conv_args *a, bool to_hf)
{
	if (to_hf)
		return a->checkpoint ? "--checkpoint" : NULL;
	return a->n_shards ? "--shards" : a->dtype ? "--dtype" : a->max_shard ? "--max-shard-size"
									      : NULL;
}

/* ref-to-hf without --config: the reference config.json beside the shards (hf-to-ref writes
 * one there), so a directory written by hf-to-ref converts back with no extra option. */
static void default_config(conv_args *a)
{
	if (a->config || !a->n_shards)
		return;
	struct stat st;
	char dir[4096];
	if (stat(a->shards[0], &st) == 0 && S_ISDIR(st.st_mode))
		snprintf(dir, sizeof dir, "%s", a->shards[0]);
	else
		dsv32_cli_ckpt_input(a->shards[0], dir, sizeof dir);
	if (dsv32_path_join(a->config_buf, sizeof a->config_buf, dir, "config.json") &&
	    dsv32_path_exists(a->config_buf))
		a->config = a->config_buf;
}

/* Refuse a bad --out or --json FILE before any input is read (the converter checks again and
 * takes the lock when it creates the directory: core/dirswap.h). a->shards has argc + 2 slots,
 * so room for the extra inputs. *json_ok: the --json file may take the error report (false when
 * it is the refused output: an existing file without --force is never written). */
static dsv32_status check_out(conv_args *a, bool to_hf, bool *json_ok, dsv32_error *err)
{
	char ckbuf[PATH_MAX];
	size_t n = a->n_shards;
	const char **in = a->shards;
	in[n++] = a->config;
	if (!to_hf)
		in[n++] = dsv32_cli_ckpt_input(a->checkpoint, ckbuf, sizeof ckbuf);
	in[n] = a->out; /* a --json file inside the new tree would vanish with the swap */
	dsv32_status st = DSV32_OK;
	if (dsv32_cli_out_file(a->json))
		st = dsv32_out_check(a->json, in, (int)n + 1,
				     DSV32_OUT_FILE | (a->force ? DSV32_OUT_REPLACE : 0u), err);
	*json_ok = st == DSV32_OK;
	if (st == DSV32_OK)
		st = dsv32_out_check(a->out, in, (int)n, DSV32_OUT_DIR, err);
	n++;
	for (size_t i = a->n_shards; i < n; i++)
		in[i] = NULL;
	return st;
}

int dsv32_cmd_convert(int argc, char **argv)
{
	const char *cmd = "convert";
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		fputs(usage_text, argc < 2 ? stderr : stdout);
		return argc < 2 ? DSV32_EXIT_USAGE : DSV32_EXIT_OK;
	}
	const char *dir = argv[1];
	bool to_hf = !strcmp(dir, "ref-to-hf");
	if (!to_hf && strcmp(dir, "hf-to-ref"))
		return dsv32_cli_usage_error(cmd, "'%s': expected ref-to-hf or hf-to-ref", dir);
	conv_args a;
	int rc = parse(&a, argc, argv, cmd);
	if (rc || a.help) {
		if (a.help)
			fputs(usage_text, stdout);
		free(a.shards);
		return rc;
	}
	const char *stray = other_direction_option(&a, to_hf);
	if (stray) {
		free(a.shards);
		return dsv32_cli_usage_error(cmd, "%s is an option of %s, not of %s", stray,
					     to_hf ? "hf-to-ref" : "ref-to-hf", dir);
	}
	dsv32_error err = {0};
	bool json_ok = true;
	if (a.out && check_out(&a, to_hf, &json_ok, &err) != DSV32_OK) {
		free(a.shards);
		if (a.json && json_ok)
			print_json(a.json, dir, NULL, &err, a.out, 0);
		return dsv32_cli_fail(cmd, &err);
	}
	dsv32_cli_note_leftover(cmd, a.out);
	dsv32_conv_common common = {NULL, NULL, a.force, a.allow_unknown};
	if ((!a.json || dsv32_cli_out_file(a.json)) && dsv32_cli_stderr_is_tty())
		common.progress = dsv32_cli_conv_progress;
	dsv32_conv_result res = {0};
	dsv32_status st;
	double t0 = dsv32_cli_now_s();
	if (to_hf) {
		default_config(&a);
		if (!a.n_shards || !a.config || !a.out) {
			free(a.shards);
			return dsv32_cli_usage_error(cmd, "ref-to-hf needs --shards, --out and --config "
						     "(none given, no config.json beside the shards)");
		}
		dsv32_ref_to_hf_opts o = {(const char *const *)a.shards, a.n_shards, a.config, a.out,
					  a.dtype && !strcmp(a.dtype, "bf16") ? DSV32_OUT_BF16
									      : DSV32_OUT_KEEP,
					  a.max_shard, common, (int)a.mp};
		st = dsv32_convert_ref_to_hf(&o, &res, &err);
	} else {
		if (!a.checkpoint || !a.mp || !a.out) {
			free(a.shards);
			return dsv32_cli_usage_error(cmd, "hf-to-ref needs --checkpoint, --mp and --out");
		}
		if (dsv32_cli_is_shards_dir(a.checkpoint)) {
			free(a.shards);
			return dsv32_cli_usage_error(
				cmd, "%s holds reference shards (model{r}-mp{W}.safetensors), not an HF "
				"checkpoint: to reshard, merge them first (convert ref-to-hf --shards %s "
				"--out HF_DIR), then convert hf-to-ref --checkpoint HF_DIR --mp %d",
				a.checkpoint, a.checkpoint, (int)a.mp);
		}
		dsv32_hf_to_ref_opts o = {a.checkpoint, a.config, (int)a.mp, a.out, common};
		st = dsv32_convert_hf_to_ref(&o, &res, &err);
	}
	dsv32_cli_conv_progress_end(NULL);
	double secs = dsv32_cli_now_s() - t0;
	free(a.shards);
	int jrc = a.json ? print_json(a.json, dir, &res, st == DSV32_OK ? NULL : &err, a.out, secs)
			 : 0;
	if (st != DSV32_OK) {
		dsv32_conv_result_free(&res); /* a failed run may have listed skipped tensors */
		return dsv32_cli_fail(cmd, &err);
	}
	if (jrc) {
		dsv32_conv_result_free(&res);
		return jrc;
	}
	if (!a.json || dsv32_cli_out_file(a.json)) {
		printf("%s: wrote %llu tensors (%.3f GB) in %d file%s to %s in %.1f s (%.0f MB/s)\n", dir,
		       (unsigned long long)res.tensors, res.bytes / 1e9, res.files,
		       res.files == 1 ? "" : "s", a.out, secs, secs > 0 ? res.bytes / 1e6 / secs : 0.0);
		if (res.dropped)
			printf("  dropped %llu tensors of MTP layers (not part of the reference model)\n",
			       (unsigned long long)res.dropped);
		for (size_t i = 0; i < res.n_skipped; i++)
			printf("  skipped unknown tensor %s\n", res.skipped[i]);
	}
	dsv32_conv_result_free(&res);
	return DSV32_EXIT_OK;
}
