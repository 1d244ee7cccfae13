/* cmd_run.c: `dsv32-parity run`: greedy generation with one layout, driven as the reference's
 * generate.py drives the model (reference_layout.md Part D): one prefill call at start_pos 0 over
 * the prompt, then one decode call per new token; stop at eos (or max-new-tokens). Prints the
 * generated ids comma-separated as the last line; --json prints a structured result with a
 * logits summary (max, argmax per batch row) for every step.
 *
 * Layouts come from a table: `ref` (ref/ref_model.h: reference shards of any W or an HF dir)
 * and `hf` (hf_layout/hf_model.h: an HF dir, through the common forward of core/model.h).
 * An open or forward that fails without filling the error still prints a message naming the
 * layout, the checkpoint and the status (never "error: ok").
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/model.h"
#include "hf_layout/hf_model.h"
#include "ref/ref_model.h"

typedef dsv32_status (*open_fn)(dsv32_model **, const char *, const char *,
				const dsv32_model_opts *, dsv32_error *);

typedef struct {
	const char *name;
	open_fn open;
} layout_entry;

static const char *USAGE =
	"usage: dsv32-parity run --layout ref|hf --checkpoint DIR [--config FILE] [--mp W]\n"
	"                        --tokens 5,17,42 [--max-new-tokens N] [--eos ID]\n"
	"                        [--device cpu|cuda] [--profile bf16|fp32] [--json]\n"
	"                        [--experts grouped_mm|eager]   (hf only)\n"
	"  Greedy generation: prefill of the prompt at start_pos 0, then one decode call per new\n"
	"  token, stopping at eos (default: the config's eos_token_id). The last line of the output\n"
	"  is the generated ids, comma-separated. DIR holds reference shards model{r}-mp{W}.safetensors\n"
	"  (+ the reference config) or an HF checkpoint (sliced per rank in memory).\n";

static bool parse_ids(const char *s, int64_t **out, int64_t *n)
{
	int64_t cap = 16, k = 0;
	int64_t *v = malloc((size_t)cap * sizeof *v);
	if (!v)
		return false;
	const char *p = s;
	while (*p) {
		char *end;
		errno = 0;
		long long x = strtoll(p, &end, 10);
		if (end == p || errno || x < 0) {
			free(v);
			return false;
		}
		if (k == cap) {
			int64_t *w = realloc(v, (size_t)(cap *= 2) * sizeof *v);
			if (!w) {
				free(v);
				return false;
			}
			v = w;
		}
		v[k++] = x;
		p = end;
		if (*p == ',')
			p++;
		else if (*p) {
			free(v);
			return false;
		}
	}
	*out = v;
	*n = k;
	return k > 0;
}

static int64_t argmax(const float *v, int64_t n)
{
	int64_t b = 0;
	for (int64_t i = 1; i < n; i++)
		if (v[i] > v[b])
			b = i;
	return b;
}

int dsv32_cmd_run(int argc, char **argv)
{
	const char *layout = "ref", *ckpt = NULL, *config = NULL, *tokens_s = NULL;
	long long max_new = 16, eos = -2;
	bool json = false;
	dsv32_model_opts o;
	dsv32_model_opts_default(&o);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			fputs(USAGE, stdout);
			return DSV32_EXIT_OK;
		} else if (!strcmp(a, "--json")) {
			json = true;
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
			o.world_size = atoi(v);
		else if (!strcmp(a, "--tokens"))
			tokens_s = v;
		else if (!strcmp(a, "--max-new-tokens"))
			max_new = atoll(v);
		else if (!strcmp(a, "--eos"))
			eos = atoll(v);
		else if (!strcmp(a, "--device")) {
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
	if (o.world_size < 1 || max_new < 1)
		return dsv32_cli_usage_error("run", "--mp and --max-new-tokens must be >= 1");
	/* dsv32_hf_open without arguments is the 5-argument function (hf_model.h's macro only
	 * rewrites calls) */
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
	int64_t *prompt = NULL, L = 0;
	if (!parse_ids(tokens_s, &prompt, &L))
		return dsv32_cli_usage_error("run", "--tokens %s: expected ids like 5,17,42", tokens_s);

	dsv32_error err = {0};
	dsv32_model *m = NULL;
	dsv32_status rc = open(&m, ckpt, config, &o, &err);
	if (rc == DSV32_OK && !m)
		rc = DSV32_E_INTERNAL;
	if (rc != DSV32_OK) {
		if (err.code == DSV32_OK || !err.what[0])
			DSV32_FAIL(&err, rc == DSV32_OK ? DSV32_E_INTERNAL : rc,
				   "opening %s with layout %s failed (%s) without a message", ckpt,
				   layout, dsv32_status_str(rc));
		free(prompt);
		return dsv32_cli_fail("run", &err);
	}
	if (eos == -2)
		eos = m->cfg.eos_token_id;
	int64_t *gen = calloc((size_t)max_new, sizeof *gen), n_gen = 0;
	int64_t P = 0, S = L, *cur = prompt;
	if (json)
		printf("{\n  \"layout\": \"%s\",\n  \"world_size\": %d,\n  \"profile\": \"%s\",\n"
		       "  \"prompt_len\": %lld,\n  \"steps\": [", layout, o.world_size,
		       o.profile == DSV32_PROFILE_FP32 ? "fp32" : "bf16", (long long)L);
	while (gen && n_gen < max_new) {
		dsv32_tensor logits;
		rc = m->vt->forward(m, cur, 1, S, P, &logits, &err);
		if (rc != DSV32_OK)
			break;
		int64_t V = logits.shape[1];
		const float *lv = logits.data;
		int64_t next = argmax(lv, V);
		if (json)
			printf("%s\n    {\"step\": %lld, \"start_pos\": %lld, \"seqlen\": %lld, "
			       "\"logits_max\": %.9g, \"argmax\": %lld}",
			       n_gen ? "," : "", (long long)n_gen, (long long)P, (long long)S,
			       (double)lv[next], (long long)next);
		dsv32_tensor_free(&logits);
		gen[n_gen++] = next;
		P += S;
		S = 1;
		cur = &gen[n_gen - 1];
		if (next == eos)
			break;
	}
	if (rc == DSV32_OK && json) {
		printf("\n  ],\n  \"generated\": [");
		for (int64_t i = 0; i < n_gen; i++)
			printf("%s%lld", i ? ", " : "", (long long)gen[i]);
		printf("]\n}\n");
	}
	if (rc == DSV32_OK) {
		/* generate.py's output: the new tokens, cut at the first eos (kept out) */
		int64_t n_out = n_gen;
		for (int64_t i = 0; i < n_gen; i++)
			if (gen[i] == eos) {
				n_out = i;
				break;
			}
		for (int64_t i = 0; i < n_out; i++)
			printf("%s%lld", i ? "," : "", (long long)gen[i]);
		printf("\n");
	}
	m->vt->close(m);
	free(gen);
	free(prompt);
	if (rc != DSV32_OK && (err.code == DSV32_OK || !err.what[0]))
		DSV32_FAIL(&err, rc, "forward of layout %s failed (%s) without a message", layout,
			   dsv32_status_str(rc));
	if (rc != DSV32_OK)
		return dsv32_cli_fail("run", &err);
	return DSV32_EXIT_OK;
}
