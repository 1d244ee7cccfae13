/* cmd_run.c: `dsv32-parity run`: greedy generation with one layout, driven as the reference's
 * generate.py drives the model (docs/spec/ref_layout.md Part D): one prefill call at start_pos 0 over
 * the prompt, then one decode call per new token; stop at eos (or max-new-tokens). Prints the
 * generated ids comma-separated as the last line; --json prints instead one JSON document (and
 * nothing else on stdout): a logits summary (max, argmax per batch row) for every step and the
 * generated ids.
 *
 * Layouts come from a table: `ref` (ref/ref_model.h: reference shards of any W or an HF dir)
 * and `hf` (hf_layout/hf_model.h: an HF dir, through the common forward of core/model.h).
 * An open or forward that fails without filling the error still prints a message naming the
 * layout, the checkpoint and the status (never "error: ok").
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "cli/cli_models.h"
#include "cli/cli_outputs.h"
#include "core/fsutil.h"
#include "core/tokens.h"
#include "core/model.h"
#include "hf_layout/hf_model.h"
#include "kernels/backend.h"
#include "kernels/host_info.h"
#include "ref/ref_model.h"

typedef dsv32_status (*open_fn)(dsv32_model **, const char *, const char *,
				const dsv32_model_opts *, dsv32_error *);

typedef struct {
	const char *name;
	open_fn open;
} layout_entry;

static const char *USAGE =
	"usage: dsv32-parity run --layout ref|hf --checkpoint DIR [--config FILE] [--mp W]\n"
	"                        --tokens 5,17,42[;ROW2...]|@FILE [--max-new-tokens N] [--eos ID]\n"
	"                        [--device cpu|cuda] [--profile bf16|fp32] [--json [FILE|-]] [--force]\n"
	"                        [--experts grouped_mm|eager] [--eager-dequant]   (hf only)\n"
	"                        [--layers N] [--gemm fixed|host] [--ties index|torch-cpu]\n"
	"                        [--exp libm|torch-cpu]\n"
	"                        [--comm inproc|mpi|nccl] [--comm-timeout S]   (ref only)\n"
	"  Greedy generation: prefill of the prompt at start_pos 0, then one decode call per new\n"
	"  token, stopping at eos (default: the config's eos_token_id). The last line of the output\n"
	"  is the generated ids, comma-separated. DIR holds reference shards model{r}-mp{W}.safetensors\n"
	"  (+ the reference config) or an HF checkpoint (sliced per rank in memory).\n"
	"  --layers N: open only the first N decoder layers (0 = all), then the final norm and head\n"
	"  as usual: a truncated model, whose logits (and so the generated ids) are not the model's.\n"
	"  --eager-dequant (hf, CPU): dequantize fp8 weights to bf16 at load, as transformers does;\n"
	"  by default they stay fp8 in the mapping and each matrix is dequantized right before its\n"
	"  GEMM (same values, half the memory of the bf16 weights; CUDA is always eager).\n"
	"  --gemm fixed|host: the CPU GEMM engine. fixed: same bits on every CPU (default); host:\n"
	"  oneDNN/OpenBLAS as PyTorch on this CPU, to match a torch run recorded on this machine.\n"
	"  --ties index|torch-cpu: the top-k tie rule of the indexer and the router: index (CUDA's,\n"
	"  default) or torch-cpu (torch.topk on a CPU, as transformers runs there; docs/topk-ties.md).\n"
	"  --exp libm|torch-cpu (CPU): the exp of the router's sigmoid and the MLPs' silu: libm\n"
	"  (default) or torch-cpu (torch's CPU kernels: Sleef's expf_u10 in the vector body, libm in\n"
	"  the tails, with OpenMP's thread count as torch's; docs/exp-torch.md).\n"
	"  --json states the engine and this host's fingerprint (gemm_engine, host_numerics_key,\n"
	"  host_fingerprint) and the generated ids; alone or with '-' it goes to stdout (then only\n"
	"  the JSON is there), with FILE to that file (stdout keeps the ids line; --force replaces\n"
	"  an existing FILE).\n"
	"  --mp W: the ref layout reads W from the model{r}-mp{W} file names; a different --mp is an\n"
	"  error (on an HF directory --mp W slices it into W ranks in memory).\n"
	"  --comm inproc|mpi|nccl: where the ref layout's tensor-parallel ranks run: in this process\n"
	"  (inproc, default), or one rank per process under `mpirun -np W` (mpi, CPU) or per GPU\n"
	"  (nccl); each rank opens only its own shard, rank 0 prints and writes, the results are\n"
	"  bit-identical to inproc (docs/distributed.md). --comm-timeout S (default 60): a rank\n"
	"  that does not answer a collective within S seconds ends the job with an error naming it.\n";

/* s as a JSON string literal (the fingerprint holds a CPU model name: quote what needs it). */
static void print_json_string(FILE *js, const char *s)
{
	fputc('"', js);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fprintf(js, "\\%c", c);
		else if (c < 0x20)
			fprintf(js, "\\u%04x", c);
		else
			fputc(c, js);
	}
	fputc('"', js);
}

/* generate.py's output for one row: the new tokens, cut at the first eos (kept out). */
static void print_row(const int64_t *gen, int64_t n, int64_t eos, bool last)
{
	int64_t n_out = n;
	for (int64_t i = 0; i < n; i++)
		if (gen[i] == eos) {
			n_out = i;
			break;
		}
	for (int64_t i = 0; i < n_out; i++)
		printf("%s%lld", i ? "," : "", (long long)gen[i]);
	printf(last ? "\n" : ";");
}

/* With --json stdout holds one JSON document and nothing else (json.load must read it), so the
 * generated ids, the plain mode's last line, close the document as "generated": one list per
 * row, cut at eos as in the plain line. */
/* Where the time went (issue 19): load (open), prefill (the first forward) and the decode
 * steps, with their tokens, and the process's peak RSS. */
typedef struct {
	double load_s, prefill_s, decode_s;
	int64_t prefill_tokens, decode_tokens, decode_steps;
} run_timing;

static double peak_rss_mb(void)
{
	struct rusage ru;
	return getrusage(RUSAGE_SELF, &ru) == 0 ? (double)ru.ru_maxrss / 1024.0 : 0.0;
}

static double per_s(int64_t n, double s)
{
	return s > 0 ? (double)n / s : 0.0;
}

static void print_json_timing(FILE *js, const run_timing *tm)
{
	fprintf(js, ",\n  \"timing\": {\"load_s\": %.6f, \"prefill_s\": %.6f, \"decode_s\": %.6f, "
		"\"prefill_tokens\": %lld, \"decode_tokens\": %lld, \"prefill_tok_s\": %.3f, "
		"\"decode_tok_s\": %.3f, \"peak_rss_mb\": %.1f}",
		tm->load_s, tm->prefill_s, tm->decode_s, (long long)tm->prefill_tokens,
		(long long)tm->decode_tokens, per_s(tm->prefill_tokens, tm->prefill_s),
		per_s(tm->decode_tokens, tm->decode_s), peak_rss_mb());
}

/* One line on stderr, as llama.cpp prints its timings. */
static void print_timing_line(const run_timing *tm)
{
	fprintf(stderr, "dsv32-parity run: load %.2f s; prefill %lld tokens in %.3f s (%.1f tok/s); "
		"decode %lld steps, %lld tokens in %.3f s (%.1f tok/s); peak RSS %.0f MB\n",
		tm->load_s, (long long)tm->prefill_tokens, tm->prefill_s,
		per_s(tm->prefill_tokens, tm->prefill_s), (long long)tm->decode_steps,
		(long long)tm->decode_tokens, tm->decode_s, per_s(tm->decode_tokens, tm->decode_s),
		peak_rss_mb());
}

static void print_json_generated(FILE *js, const int64_t *gen, int64_t B, int64_t max_new, int64_t n,
				 int64_t eos)
{
	fprintf(js, "\n  ],\n  \"generated\": [");
	for (int64_t b = 0; b < B; b++) {
		const int64_t *g = gen + b * max_new;
		fprintf(js, "%s[", b ? ", " : "");
		for (int64_t i = 0; i < n && g[i] != eos; i++)
			fprintf(js, "%s%lld", i ? ", " : "", (long long)g[i]);
		fprintf(js, "]");
	}
	fprintf(js, "]");
}

/* Non-finite logits (NaN/Inf weights, an overflow) make every argmax meaningless, yet the run
 * completes and prints ids. Each such step is named on stderr (the first NONFINITE_LISTED of
 * them; then a count), and a summary closes the run. The exit code stays 0: `run` generates,
 * it does not check (compare is the check and exits 1 on non-finite values); a script that
 * needs to know greps stderr or uses compare (docs/robustness.md "Inputs"). */
#define NONFINITE_LISTED 8

typedef struct {
	int64_t steps_bad, values_bad; /* steps with non-finite logits; values over all steps */
} nonfinite_tally;

static int64_t count_nonfinite(const float *v, int64_t n)
{
	int64_t k = 0;
	for (int64_t i = 0; i < n; i++)
		k += !isfinite(v[i]);
	return k;
}

static void note_nonfinite(nonfinite_tally *t, int64_t step, const float *logits, int64_t n)
{
	int64_t k = count_nonfinite(logits, n);
	if (k == 0)
		return;
	if (t->steps_bad < NONFINITE_LISTED)
		fprintf(stderr, "dsv32-parity run: warning: step %lld: the logits hold %lld "
			"non-finite values (NaN/Inf) of %lld; the generated ids are meaningless\n",
			(long long)step, (long long)k, (long long)n);
	t->steps_bad++;
	t->values_bad += k;
}

static void summarize_nonfinite(const nonfinite_tally *t, int64_t steps)
{
	if (t->steps_bad == 0)
		return;
	fprintf(stderr, "dsv32-parity run: warning: %lld of %lld steps had non-finite logits "
		"(%lld values in all)%s; the generated ids are meaningless (exit code 0: run does not "
		"check; use compare)\n", (long long)t->steps_bad, (long long)steps,
		(long long)t->values_bad, t->steps_bad > NONFINITE_LISTED ? ", not all listed" : "");
}

/* Greedy generation as generate.py drives it with equal-length prompts: one prefill of every row
 * at start_pos 0, then one decode call per new token for the whole batch; a row is finished at
 * its eos; stop when every row is. */
static dsv32_status generate(dsv32_model *m, const dsv32_tokens *t, int64_t max_new, int64_t eos,
			     FILE *js, bool ids_line, const char *layout,
			     const dsv32_model_opts *o, run_timing *tm, dsv32_error *err)
{
	int64_t B = t->rows, L = t->cols, n_gen = 0, P = 0, S = L;
	int64_t *gen = calloc((size_t)(B * max_new), sizeof *gen);
	int64_t *cur = malloc((size_t)(B * L) * sizeof *cur);
	bool *done = calloc((size_t)B, sizeof *done);
	if (!gen || !cur || !done) {
		free(gen);
		free(cur);
		free(done);
		return DSV32_FAIL(err, DSV32_E_NOMEM, "generation buffers for %lld rows", (long long)B);
	}
	memcpy(cur, t->ids, (size_t)(B * L) * sizeof *cur);
	if (js) {
		dsv32_host_fingerprint f;
		char key[256], line[1024];
		dsv32_host_fingerprint_get(&f, o->gemm_engine);
		dsv32_host_numerics_key(&f, key, sizeof key);
		dsv32_host_fingerprint_line(&f, line, sizeof line);
		fprintf(js, "{\n  \"layout\": \"%s\",\n  \"world_size\": %d,\n  \"profile\": \"%s\",\n"
		       "  \"gemm_engine\": \"%s\",\n  \"host_numerics_key\": ", layout, o->world_size,
		       o->profile == DSV32_PROFILE_FP32 ? "fp32" : "bf16", f.engine);
		print_json_string(js, key);
		fprintf(js, ",\n  \"host_fingerprint\": ");
		print_json_string(js, line);
		fprintf(js, ",\n  \"batch\": %lld,\n  \"prompt_len\": %lld,\n  \"steps\": [", (long long)B,
		       (long long)L);
	}
	dsv32_status rc = DSV32_OK;
	bool all_done = false;
	nonfinite_tally bad = {0};
	while (n_gen < max_new && !all_done) {
		dsv32_tensor logits;
		double t0 = dsv32_cli_now_s();
		rc = m->vt->forward(m, cur, B, S, P, &logits, err);
		if (rc != DSV32_OK)
			break;
		double dt = dsv32_cli_now_s() - t0;
		if (n_gen == 0) {
			tm->prefill_s += dt;
			tm->prefill_tokens += B * S;
		} else {
			tm->decode_s += dt;
			tm->decode_tokens += B;
			tm->decode_steps++;
		}
		int64_t V = logits.shape[1];
		if (js || ids_line) /* not on the silent ranks of a distributed run */
			note_nonfinite(&bad, n_gen, (const float *)logits.data, B * V);
		all_done = true;
		for (int64_t b = 0; b < B; b++) {
			const float *lv = (const float *)logits.data + b * V;
			int64_t next = dsv32_argmax_f32(lv, V);
			gen[b * max_new + n_gen] = next;
			cur[b] = next;
			if (js)
				fprintf(js, "%s\n    {\"step\": %lld, \"row\": %lld, \"start_pos\": %lld, "
				       "\"seqlen\": %lld, \"logits_max\": %.9g, \"argmax\": %lld}",
				       n_gen || b ? "," : "", (long long)n_gen, (long long)b, (long long)P,
				       (long long)S, (double)lv[next], (long long)next);
			done[b] = done[b] || next == eos;
			all_done = all_done && done[b];
		}
		dsv32_tensor_free(&logits);
		n_gen++;
		P += S;
		S = 1;
	}
	if (rc == DSV32_OK && js) {
		print_json_generated(js, gen, B, max_new, n_gen, eos);
		print_json_timing(js, tm);
		fprintf(js, "\n}");
	}
	for (int64_t b = 0; rc == DSV32_OK && ids_line && b < B; b++)
		print_row(gen + b * max_new, n_gen, eos, b == B - 1);
	if (rc == DSV32_OK && (js || ids_line))
		summarize_nonfinite(&bad, n_gen);
	free(gen);
	free(cur);
	free(done);
	return rc;
}

/* generate() with the --json [FILE|-] convention: "-" streams the document to stdout (and
 * nothing else there); a FILE gets it whole (built in memory, written atomically), and stdout
 * keeps the ids line. */
static dsv32_status generate_to(dsv32_model *m, const dsv32_tokens *t, int64_t max_new,
				int64_t eos, const char *json, const char *layout,
				const dsv32_model_opts *o, run_timing *tm, dsv32_error *err)
{
	if (!dsv32_cli_out_file(json)) {
		dsv32_status rc = generate(m, t, max_new, eos, json ? stdout : NULL, !json, layout, o,
					   tm, err);
		if (rc == DSV32_OK && json)
			printf("\n");
		return rc;
	}
	char *text = NULL;
	size_t len = 0;
	FILE *js = open_memstream(&text, &len);
	if (!js)
		return DSV32_FAIL(err, DSV32_E_NOMEM, "--json %s: no memory for the document", json);
	dsv32_status rc = generate(m, t, max_new, eos, js, true, layout, o, tm, err);
	fputc('\n', js);
	fclose(js);
	if (rc == DSV32_OK)
		rc = dsv32_write_file_atomic(json, text, len, err);
	free(text);
	return rc;
}

/* Check and lock a --json FILE before the model is opened (a refused output costs nothing). */
static int claim_json(dsv32_cli_outputs *c, const char *json, const char *ckpt,
		      const char *config, const char *tokens)
{
	char buf[4096];
	const char *names[] = {"--json"}, *outs[] = {dsv32_cli_out_file(json)};
	const char *inputs[] = {dsv32_cli_ckpt_input(ckpt, buf, sizeof buf), config,
				dsv32_cli_tokens_input(tokens)};
	return dsv32_cli_outputs_claim(c, "run", names, outs, 1, inputs, 3);
}

static const char *const RUN_OPTS[] = {"help", "json", "force", "eager-dequant", "layout", "checkpoint",
				       "config", "mp", "tokens", "max-new-tokens", "eos", "layers",
				       "gemm", "device", "experts", "profile", "comm", "comm-timeout", "ties",
				       "exp"};
#define N_RUN_OPTS ((int)(sizeof RUN_OPTS / sizeof RUN_OPTS[0]))

int dsv32_cmd_run(int argc, char **argv)
{
	const char *layout = "ref", *ckpt = NULL, *config = NULL, *tokens_s = NULL;
	long long max_new = 16, eos = -2;
	const char *json = NULL; /* --json [FILE|-] */
	bool force = false;
	int mp = 0;              /* 0: not given, read from the shard names */
	const char *comm_kind = NULL, *comm_timeout = NULL; /* --comm, --comm-timeout */
	dsv32_model_opts o;
	dsv32_model_opts_default(&o);
	o.logits_view = true; /* each step's logits are read before the next: no copy per step */
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strncmp(a, "--", 2) && !dsv32_args_is_known(a, RUN_OPTS, N_RUN_OPTS)) {
			return dsv32_args_unknown("run", a, RUN_OPTS, N_RUN_OPTS);
		} else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			fputs(USAGE, stdout);
			return DSV32_EXIT_OK;
		} else if (!strcmp(a, "--json")) {
			json = dsv32_args_output_value(argc, argv, &i);
			continue;
		} else if (!strcmp(a, "--force")) {
			force = true;
			continue;
		} else if (!strcmp(a, "--eager-dequant")) {
			o.eager_dequant = true;
			continue;
		}
		if (!v)
			return dsv32_cli_usage_error("run", "%s needs a value", a);
		i++;
		if (!strcmp(a, "--layout"))
			layout = v;
		else if (!strcmp(a, "--checkpoint"))
			ckpt = v;
		else if (!strcmp(a, "--config"))
			config = v;
		else if (!strcmp(a, "--mp"))
			mp = atoi(v) > 0 ? atoi(v) : -1;
		else if (!strcmp(a, "--tokens"))
			tokens_s = v;
		else if (!strcmp(a, "--comm"))
			comm_kind = v;
		else if (!strcmp(a, "--comm-timeout"))
			comm_timeout = v;
		else if (!strcmp(a, "--max-new-tokens"))
			max_new = atoll(v);
		else if (!strcmp(a, "--eos"))
			eos = atoll(v);
		else if (!strcmp(a, "--layers")) {
			char *end;
			errno = 0;
			long long n = strtoll(v, &end, 10);
			if (!*v || *end || errno || n < 0)
				return dsv32_cli_usage_error("run", "--layers %s: expected a non-negative "
							     "integer (0 = all layers)", v);
			o.layers = n > INT_MAX ? INT_MAX : (int)n; /* above the count: all */
		}
		else if (!strcmp(a, "--ties")) {
			if (!strcmp(v, "index") || !strcmp(v, "torch-cpu"))
				o.ties = v[0] == 't';
			else
				return dsv32_cli_usage_error("run", "--ties %s: expected index (CUDA's rule) "
							     "or torch-cpu (torch.topk on a CPU)", v);
		} else if (!strcmp(a, "--exp")) {
			if (!strcmp(v, "libm") || !strcmp(v, "torch-cpu"))
				o.exp_rule = v[0] == 't'; /* dsv32_exp_rule: 1 = torch-cpu */
			else
				return dsv32_cli_usage_error("run", "--exp %s: expected libm (expf) or "
							     "torch-cpu (torch's CPU kernels)", v);
		} else if (!strcmp(a, "--gemm")) {
			if (!strcmp(v, "fixed"))
				o.gemm_engine = DSV32_GEMM_FIXED;
			else if (!strcmp(v, "host"))
				o.gemm_engine = DSV32_GEMM_HOST;
			else
				return dsv32_cli_usage_error("run", "--gemm %s: expected fixed (same bits on "
							     "every CPU) or host (oneDNN/OpenBLAS)", v);
		} else if (!strcmp(a, "--device")) {
			if (!strcmp(v, "cpu"))
				o.device = DSV32_DEV_CPU;
			else if (!strcmp(v, "cuda"))
				o.device = DSV32_DEV_CUDA;
			else
				return dsv32_cli_usage_error("run", "--device %s: expected cpu or cuda", v);
		} else if (!strcmp(a, "--experts")) {
			if (!strcmp(v, "grouped_mm"))
				o.experts = DSV32_EXPERTS_GROUPED_MM;
			else if (!strcmp(v, "eager"))
				o.experts = DSV32_EXPERTS_EAGER;
			else
				return dsv32_cli_usage_error("run", "--experts %s: expected grouped_mm or "
							     "eager", v);
		} else if (!strcmp(a, "--profile")) {
			if (!strcmp(v, "bf16"))
				o.profile = DSV32_PROFILE_BF16;
			else if (!strcmp(v, "fp32"))
				o.profile = DSV32_PROFILE_FP32;
			else
				return dsv32_cli_usage_error("run", "--profile %s: expected bf16 or fp32", v);
		} else {
			return dsv32_cli_usage_error("run", "unknown option %s", a);
		}
	}
	if (!ckpt || !tokens_s)
		return dsv32_cli_usage_error("run", "--checkpoint and --tokens are required");
	if (mp < 0 || max_new < 1)
		return dsv32_cli_usage_error("run", "--mp and --max-new-tokens must be >= 1");
	const layout_entry layouts[] = {{"ref", dsv32_ref_open}, {"hf", dsv32_hf_open}};
	open_fn open = NULL;
	bool known = false;
	for (size_t i = 0; i < sizeof layouts / sizeof layouts[0]; i++)
		if (!strcmp(layout, layouts[i].name)) {
			known = true;
			open = layouts[i].open;
		}
	if (!known)
		return dsv32_cli_usage_error("run", "--layout %s: expected ref or hf", layout);
	if (!open) {
		fprintf(stderr, "dsv32-parity run: error: layout %s is not available in this build\n",
			layout);
		return DSV32_EXIT_USAGE;
	}
	dsv32_error err = {0};
	dsv32_comm *comm = NULL;
	if (dsv32_cli_comm_open(comm_kind, comm_timeout, &comm, &err) != DSV32_OK)
		return dsv32_cli_fail("run", &err);
	if (comm && strcmp(layout, "ref"))
		return dsv32_cli_comm_finish("run", comm, DSV32_EXIT_USAGE,
					     &(dsv32_error){.code = DSV32_E_USAGE,
							    .what = "--comm mpi|nccl: the ref layout only"});
	bool leader = dsv32_cli_comm_is_leader(comm);
	if (leader && o.gemm_engine == DSV32_GEMM_HOST)
		dsv32_cli_note_host_blas();
	dsv32_cli_outputs claimed = {.force = force};
	int crc = leader ? claim_json(&claimed, json, ckpt, config, tokens_s) : 0;
	if (comm && dsv32_comm_agree(comm, crc ? DSV32_E_USAGE : DSV32_OK, "outputs", &err) != DSV32_OK)
		return dsv32_cli_comm_finish("run", comm, crc ? crc : DSV32_EXIT_USAGE,
					     crc ? NULL : &err); /* rank 0 printed the refusal */
	if (crc)
		return crc;
	dsv32_model *m = NULL;
	dsv32_status rc = DSV32_OK;
	if (!strcmp(layout, "ref"))
		rc = dsv32_cli_shards_world(ckpt, mp, &o.world_size, &err);
	else if (mp > 0)
		o.world_size = mp;
	run_timing tm = {0};
	double t_open = dsv32_cli_now_s();
	if (rc == DSV32_OK && comm)
		rc = dsv32_ref_open_comm(&m, ckpt, config, &o, comm, &err);
	else if (rc == DSV32_OK)
		rc = open(&m, ckpt, config, &o, &err);
	else if (comm) /* the others wait in the open's agreement */
		rc = dsv32_comm_agree(comm, rc, "open", &err);
	tm.load_s = dsv32_cli_now_s() - t_open;
	if (rc == DSV32_OK && !m)
		rc = DSV32_E_INTERNAL;
	if (rc != DSV32_OK) {
		if (err.code == DSV32_OK || !err.what[0])
			DSV32_FAIL(&err, rc == DSV32_OK ? DSV32_E_INTERNAL : rc,
				   "opening %s with layout %s failed (%s) without a message", ckpt,
				   layout, dsv32_status_str(rc));
		dsv32_cli_outputs_release(&claimed);
		return dsv32_cli_comm_finish("run", comm, DSV32_EXIT_USAGE, &err);
	}
	if (eos == -2)
		eos = m->cfg.eos_token_id;
	int64_t total = dsv32_cli_layer_count(ckpt, config);
	if (leader && o.layers > 0 && total > 0 && o.layers < total)
		fprintf(stderr, "dsv32-parity run: note: the first %d of %lld decoder layers only "
			"(--layers): the logits are not the model's\n", o.layers, (long long)total);
	dsv32_tokens toks = {0};
	rc = dsv32_tokens_load(&toks, tokens_s, m->cfg.vocab_size, &err);
	if (rc == DSV32_OK && leader)
		rc = generate_to(m, &toks, max_new, eos, json, layout, &o, &tm, &err);
	else if (rc == DSV32_OK) /* the other ranks compute alike and print nothing */
		rc = generate(m, &toks, max_new, eos, NULL, false, layout, &o, &tm, &err);
	if (rc == DSV32_OK && leader)
		print_timing_line(&tm);
	dsv32_tokens_free(&toks);
	m->vt->close(m);
	dsv32_cli_outputs_release(&claimed);
	if (rc != DSV32_OK && (err.code == DSV32_OK || !err.what[0]))
		DSV32_FAIL(&err, rc, "forward of layout %s failed (%s) without a message", layout,
			   dsv32_status_str(rc));
	if (rc != DSV32_OK)
		return dsv32_cli_comm_finish("run", comm, DSV32_EXIT_USAGE, &err);
	return dsv32_cli_comm_finish("run", comm, DSV32_EXIT_OK, NULL);
}
