/* bench_forward.c: whole-model speed of both layouts against transformers on the same CPU
 * (issue 19 item 2; bench/README.md "bench_forward").
 *
 * For each preset (default small, then real-width) it writes the fixture once under --work
 * (reused afterwards), draws one prompt (seed 1), and per round runs, each in its own child
 * process so load time and peak RSS are its own:
 *   ref   dsv32_ref_open + one prefill [B, S] + D greedy decode steps
 *   hf    the same with dsv32_hf_open
 *   peer  bench/peer_forward.py: transformers' DeepseekV32ForCausalLM on the same checkpoint,
 *         tokens and thread count (absent, with the reason, when torch/transformers do not import)
 * Every child is timed after load (prefill; decode as the mean of the D steps), and its peak RSS
 * comes from wait4. Times are the best over --rounds rounds (the versions interleave within a
 * round, so all see the same machine load); the ratios ours / peer are taken between numbers of
 * the same run. Output: a Markdown table on stdout, then one JSON line.
 * Usage: bench_forward [--preset small,real-width] [--work DIR] [--threads T] [--rounds R]
 *                      [--dtype bf16|fp8] [--gemm fixed|host] [--batch B --prompt-len S
 *                      --decode-steps D] [--python PY] [--no-peer] [--layouts ref,hf]
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <omp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/config.h"
#include "core/tensor.h"
#include "core/tokens.h"
#include "fixtures/generator.h"
#include "hf_layout/hf_model.h"
#include "kernels/gemm.h"
#include "kernels/host_info.h"
#include "ref/ref_model.h"

enum { V_REF, V_HF, V_PEER, V_COUNT };
static const char *const version_names[V_COUNT] = {"ref", "hf", "transformers"};

typedef struct {
	bool ok;
	double load_s, prefill_s, decode_s; /* decode_s: mean of one step */
	double rss_mb;
	char why[320];
} timing;

typedef struct {
	const char *presets, *work, *python, *layouts;
	int threads, rounds, batch, prompt_len, decode_steps, gemm_engine;
	dsv32_weight_dtype dtype;
	bool no_peer;
} bench_opts;

typedef struct {
	char name[32], ckpt[512], tokens_text[16384];
	int64_t B, S, D;
	dsv32_tokens tok;
	timing best[V_COUNT];
	char peer_versions[128];
} preset_run;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The work per preset: the table (small 4 x 128, real-width 2 x 64), unless given. */
static void preset_shape(const bench_opts *o, const char *preset, preset_run *p)
{
	bool small = strcmp(preset, "real-width") != 0;
	p->B = o->batch > 0 ? o->batch : small ? 4 : 2;
	p->S = o->prompt_len > 0 ? o->prompt_len : small ? 128 : 64;
	p->D = o->decode_steps >= 0 ? o->decode_steps : small ? 4 : 2;
}

static int ensure_fixture(const bench_opts *o, preset_run *p, dsv32_error *err)
{
	char cfg[600];
	int n = snprintf(p->ckpt, sizeof p->ckpt, "%s/%s-%s", o->work, p->name,
			 o->dtype == DSV32_WDTYPE_FP8 ? "fp8" : "bf16");
	if (n < 0 || (size_t)n >= sizeof p->ckpt)
		return DSV32_FAIL(err, DSV32_E_USAGE, "--work %s: path too long", o->work), -1;
	n = snprintf(cfg, sizeof cfg, "%s/config.json", p->ckpt);
	struct stat st;
	if (n > 0 && (size_t)n < sizeof cfg && stat(cfg, &st) == 0)
		return 0;
	mkdir(o->work, 0755);
	fprintf(stderr, "bench_forward: writing the %s fixture to %s (once)\n", p->name, p->ckpt);
	/* in a child: the generator's OpenMP pool must not exist in this process, whose later
	 * forked children (in_child) would wait forever on its threads inside libgomp */
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		dsv32_error e = {0};
		dsv32_status rc = dsv32_fixture_write(p->name, o->dtype, 0, p->ckpt, 0, false, &e);
		if (rc != DSV32_OK)
			fprintf(stderr, "bench_forward: %s\n", e.what);
		_exit(rc == DSV32_OK ? 0 : 1);
	}
	int status = 0;
	if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
	    WEXITSTATUS(status) != 0)
		return DSV32_FAIL(err, DSV32_E_IO, "writing the %s fixture to %s failed", p->name,
				  p->ckpt), -1;
	return 0;
}

/* One of our layouts, timed inside this (child) process. */
static void time_ours(const bench_opts *o, const preset_run *p, int version, timing *t)
{
	dsv32_error err = {0};
	dsv32_model *m = NULL;
	dsv32_model_opts mo;
	dsv32_model_opts_default(&mo);
	mo.max_batch_size = p->B;
	mo.max_seq_len = p->S + p->D + 1;
	mo.gemm_engine = o->gemm_engine;
	mo.logits_view = true; /* as `run` does */
	omp_set_num_threads(o->threads);
	double t0 = now_s();
	dsv32_status rc = version == V_REF ? dsv32_ref_open(&m, p->ckpt, NULL, &mo, &err)
					   : dsv32_hf_open(&m, p->ckpt, NULL, &mo, &err);
	double t1 = now_s(), t2 = t1, t3 = t1;
	int64_t *next = calloc((size_t)p->B, sizeof *next);
	dsv32_tensor logits = {0};
	if (rc == DSV32_OK && next)
		rc = m->vt->forward(m, p->tok.ids, p->B, p->S, 0, &logits, &err);
	t2 = now_s();
	for (int64_t s = 0; rc == DSV32_OK && s < p->D; s++) {
		int64_t V = logits.shape[1];
		for (int64_t b = 0; b < p->B; b++)
			next[b] = dsv32_argmax_f32((const float *)logits.data + b * V, V);
		dsv32_tensor_free(&logits);
		rc = m->vt->forward(m, next, p->B, 1, p->S + s, &logits, &err);
	}
	t3 = now_s();
	dsv32_tensor_free(&logits);
	free(next);
	if (m)
		m->vt->close(m);
	t->ok = rc == DSV32_OK;
	if (!t->ok && snprintf(t->why, sizeof t->why, "%s", err.what[0] ? err.what : "no memory") < 0)
		t->why[0] = '\0';
	t->load_s = t1 - t0;
	t->prefill_s = t2 - t1;
	t->decode_s = p->D > 0 ? (t3 - t2) / (double)p->D : 0;
}

/* Run fn in a child; its timing comes back through a pipe, its peak RSS from wait4. */
static void in_child(const bench_opts *o, const preset_run *p, int version, timing *t)
{
	int fd[2];
	memset(t, 0, sizeof *t);
	if (pipe(fd) != 0) {
		snprintf(t->why, sizeof t->why, "pipe: %s", strerror(errno));
		return;
	}
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		close(fd[0]);
		timing r = {0};
		time_ours(o, p, version, &r);
		ssize_t n = write(fd[1], &r, sizeof r);
		_exit(n == (ssize_t)sizeof r ? 0 : 1);
	}
	close(fd[1]);
	ssize_t n = pid > 0 ? read(fd[0], t, sizeof *t) : -1;
	close(fd[0]);
	int status = 0;
	struct rusage ru = {0};
	if (pid > 0)
		wait4(pid, &status, 0, &ru);
	if (n != (ssize_t)sizeof *t) {
		memset(t, 0, sizeof *t);
		snprintf(t->why, sizeof t->why, "child died (status %d)", status);
		return;
	}
	t->rss_mb = (double)ru.ru_maxrss / 1024.0;
}

static char *read_all(int fd)
{
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap);
	ssize_t n;
	while (buf && (n = read(fd, buf + len, cap - len - 1)) > 0) {
		len += (size_t)n;
		if (cap - len < 2) {
			char *b2 = realloc(buf, cap * 2);
			if (!b2) {
				free(buf);
				return NULL;
			}
			buf = b2;
			cap *= 2;
		}
	}
	if (buf)
		buf[len] = '\0';
	return buf;
}

static void parse_peer(const char *out, int status, preset_run *p, timing *t)
{
	cJSON *j = out ? cJSON_Parse(out) : NULL;
	cJSON *ok = cJSON_GetObjectItem(j, "ok");
	if (!cJSON_IsTrue(ok)) {
		cJSON *why = cJSON_GetObjectItem(j, "why");
		snprintf(t->why, sizeof t->why, "%s",
			 cJSON_IsString(why) ? why->valuestring
			 : status    ? "peer_forward.py failed (see its stderr above)"
				     : "peer_forward.py printed no JSON");
		cJSON_Delete(j);
		return;
	}
	cJSON *dec = cJSON_GetObjectItem(j, "decode_s"), *e;
	double sum = 0;
	int n = 0;
	cJSON_ArrayForEach(e, dec)
	{
		sum += e->valuedouble;
		n++;
	}
	t->ok = true;
	t->load_s = cJSON_GetNumberValue(cJSON_GetObjectItem(j, "load_s"));
	t->prefill_s = cJSON_GetNumberValue(cJSON_GetObjectItem(j, "prefill_s"));
	t->decode_s = n ? sum / n : 0;
	snprintf(p->peer_versions, sizeof p->peer_versions, "transformers %s + torch %s",
		 cJSON_GetStringValue(cJSON_GetObjectItem(j, "transformers")),
		 cJSON_GetStringValue(cJSON_GetObjectItem(j, "torch")));
	cJSON_Delete(j);
}

static void time_peer(const bench_opts *o, preset_run *p, timing *t)
{
	char script[600], steps[24], threads[24];
	snprintf(script, sizeof script, "%s/bench/peer_forward.py", DSV32_SOURCE_DIR);
	snprintf(steps, sizeof steps, "%lld", (long long)p->D);
	snprintf(threads, sizeof threads, "%d", o->threads);
	memset(t, 0, sizeof *t);
	int fd[2];
	if (pipe(fd) != 0)
		return;
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		dup2(fd[1], 1);
		close(fd[0]);
		close(fd[1]);
		execlp(o->python, o->python, script, "--checkpoint", p->ckpt, "--tokens",
		       p->tokens_text, "--decode-steps", steps, "--threads", threads, (char *)NULL);
		printf("{\"ok\": false, \"why\": \"cannot run %s: %s\"}\n", o->python,
		       strerror(errno));
		_exit(3);
	}
	close(fd[1]);
	char *out = pid > 0 ? read_all(fd[0]) : NULL;
	close(fd[0]);
	int status = 0;
	struct rusage ru = {0};
	if (pid > 0)
		wait4(pid, &status, 0, &ru);
	parse_peer(out, status, p, t);
	free(out);
	t->rss_mb = (double)ru.ru_maxrss / 1024.0;
}

static void keep_best(timing *best, const timing *t, bool first)
{
	if (first || !best->ok) {
		*best = *t;
		return;
	}
	if (!t->ok)
		return;
	best->load_s = t->load_s < best->load_s ? t->load_s : best->load_s;
	best->prefill_s = t->prefill_s < best->prefill_s ? t->prefill_s : best->prefill_s;
	best->decode_s = t->decode_s < best->decode_s ? t->decode_s : best->decode_s;
	best->rss_mb = t->rss_mb > best->rss_mb ? t->rss_mb : best->rss_mb;
}

static bool wanted(const bench_opts *o, int v)
{
	if (v == V_PEER)
		return !o->no_peer;
	return strstr(o->layouts, version_names[v]) != NULL;
}

static void tokens_text(preset_run *p)
{
	size_t n = 0;
	for (int64_t r = 0; r < p->B; r++)
		for (int64_t c = 0; c < p->S && n + 24 < sizeof p->tokens_text; c++)
			n += (size_t)snprintf(p->tokens_text + n, sizeof p->tokens_text - n, "%lld%s",
					      (long long)p->tok.ids[r * p->S + c],
					      c + 1 < p->S ? "," : ";");
}

static int run_preset(const bench_opts *o, const char *name, preset_run *p)
{
	dsv32_error err = {0};
	dsv32_config cfg;
	memset(p, 0, sizeof *p);
	snprintf(p->name, sizeof p->name, "%s", name);
	preset_shape(o, name, p);
	if (ensure_fixture(o, p, &err) != 0 || dsv32_fixture_config(&cfg, name, &err) != DSV32_OK ||
	    dsv32_tokens_random(&p->tok, p->B, p->S, cfg.vocab_size, 1, &err) != DSV32_OK) {
		fprintf(stderr, "bench_forward: %s: %s\n", name, err.what);
		return -1;
	}
	tokens_text(p);
	for (int r = 0; r < o->rounds; r++)
		for (int v = 0; v < V_COUNT; v++) {
			if (!wanted(o, v))
				continue;
			fprintf(stderr, "bench_forward: %s round %d/%d: %s\n", name, r + 1, o->rounds,
				version_names[v]);
			timing t;
			if (v == V_PEER)
				time_peer(o, p, &t);
			else
				in_child(o, p, v, &t);
			keep_best(&p->best[v], &t, r == 0);
		}
	dsv32_tokens_free(&p->tok);
	return 0;
}

static void cell(char *buf, size_t len, const timing *t, double value, const char *fmt)
{
	if (!t->ok)
		snprintf(buf, len, "n/a");
	else
		snprintf(buf, len, fmt, value);
}

static void ratio_cell(char *buf, size_t len, const timing *a, const timing *b, double va,
		       double vb)
{
	if (!a->ok || !b->ok || vb <= 0)
		snprintf(buf, len, "n/a");
	else
		snprintf(buf, len, "%.2f", va / vb);
}

typedef struct {
	const char *what;
	int field; /* 0 load, 1 prefill, 2 decode step, 3 peak RSS */
} table_row;

static double field_of(const timing *t, int f)
{
	return f == 0 ? t->load_s : f == 1 ? t->prefill_s : f == 2 ? t->decode_s : t->rss_mb;
}

static void print_table(const preset_run *runs, int n)
{
	static const table_row rows[] = {{"load (s)", 0},
					 {"prefill (s)", 1},
					 {"decode step (ms)", 2},
					 {"peak RSS (MB)", 3}};
	printf("| preset, work | measure | ref | hf | transformers | ref/peer | hf/peer | ref/hf |\n");
	printf("|---|---|---|---|---|---|---|---|\n");
	for (int i = 0; i < n; i++) {
		const preset_run *p = &runs[i];
		for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
			char c[V_COUNT][32], q[3][32];
			double scale = rows[r].field == 2 ? 1e3 : 1.0;
			for (int v = 0; v < V_COUNT; v++)
				cell(c[v], sizeof c[v], &p->best[v], field_of(&p->best[v], rows[r].field) * scale,
				     rows[r].field == 3 ? "%.0f" : "%.3f");
			const timing *re = &p->best[V_REF], *hf = &p->best[V_HF], *pe = &p->best[V_PEER];
			int f = rows[r].field;
			ratio_cell(q[0], sizeof q[0], re, pe, field_of(re, f), field_of(pe, f));
			ratio_cell(q[1], sizeof q[1], hf, pe, field_of(hf, f), field_of(pe, f));
			ratio_cell(q[2], sizeof q[2], re, hf, field_of(re, f), field_of(hf, f));
			printf("| %s, prefill %lld x %lld, %lld decode | %s | %s | %s | %s | %s | %s | %s |\n",
			       p->name, (long long)p->B, (long long)p->S, (long long)p->D, rows[r].what,
			       c[V_REF], c[V_HF], c[V_PEER], q[0], q[1], q[2]);
		}
	}
}

static cJSON *timing_json(const timing *t, const preset_run *p)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddBoolToObject(o, "ok", t->ok);
	if (!t->ok) {
		cJSON_AddStringToObject(o, "why", t->why);
		return o;
	}
	cJSON_AddNumberToObject(o, "load_s", t->load_s);
	cJSON_AddNumberToObject(o, "prefill_s", t->prefill_s);
	cJSON_AddNumberToObject(o, "decode_step_s", t->decode_s);
	cJSON_AddNumberToObject(o, "prefill_tok_s", (double)(p->B * p->S) / t->prefill_s);
	if (t->decode_s > 0)
		cJSON_AddNumberToObject(o, "decode_tok_s", (double)p->B / t->decode_s);
	cJSON_AddNumberToObject(o, "peak_rss_mb", t->rss_mb);
	return o;
}

static void print_json(const bench_opts *o, const preset_run *runs, int n, const char *host)
{
	cJSON *root = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(root, "presets");
	cJSON_AddStringToObject(root, "bench", "forward");
	cJSON_AddStringToObject(root, "host", host);
	cJSON_AddNumberToObject(root, "threads", o->threads);
	cJSON_AddStringToObject(root, "gemm", o->gemm_engine == DSV32_GEMM_HOST ? "host" : "fixed");
	for (int i = 0; i < n; i++) {
		const preset_run *p = &runs[i];
		cJSON *e = cJSON_CreateObject();
		cJSON_AddStringToObject(e, "preset", p->name);
		cJSON_AddNumberToObject(e, "batch", (double)p->B);
		cJSON_AddNumberToObject(e, "prompt_len", (double)p->S);
		cJSON_AddNumberToObject(e, "decode_steps", (double)p->D);
		for (int v = 0; v < V_COUNT; v++)
			if (wanted(o, v))
				cJSON_AddItemToObject(e, version_names[v], timing_json(&p->best[v], p));
		if (p->peer_versions[0])
			cJSON_AddStringToObject(e, "peer_versions", p->peer_versions);
		cJSON_AddItemToArray(arr, e);
	}
	char *s = cJSON_PrintUnformatted(root);
	printf("%s\n", s ? s : "{}");
	free(s);
	cJSON_Delete(root);
}

static void default_python(bench_opts *o, char *buf, size_t len)
{
	const char *env = getenv("DSV32_PEER_PYTHON");
	snprintf(buf, len, "%s/.deps/torch-venv/bin/python3", DSV32_SOURCE_DIR);
	o->python = env && *env ? env : access(buf, X_OK) == 0 ? buf : "python3";
}

static int usage(void)
{
	fprintf(stderr,
		"usage: bench_forward [--preset small,real-width] [--work DIR] [--threads T] [--rounds R]\n"
		"                     [--dtype bf16|fp8] [--gemm fixed|host] [--batch B] [--prompt-len S]\n"
		"                     [--decode-steps D] [--python PY] [--no-peer] [--layouts ref,hf]\n"
		"The peer runs with PY (default $DSV32_PEER_PYTHON, else .deps/torch-venv made by\n"
		"scripts/torch-venv.sh, else python3). bench/README.md \"bench_forward\".\n");
	return 2;
}

static int parse_args(int argc, char **argv, bench_opts *o)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		bool takes = true;
		if (!strcmp(a, "--no-peer")) {
			o->no_peer = true;
			takes = false;
		} else if (!v) {
			return usage();
		} else if (!strcmp(a, "--preset")) {
			o->presets = v;
		} else if (!strcmp(a, "--work")) {
			o->work = v;
		} else if (!strcmp(a, "--python")) {
			o->python = v;
		} else if (!strcmp(a, "--layouts")) {
			o->layouts = v;
		} else if (!strcmp(a, "--threads")) {
			o->threads = atoi(v);
		} else if (!strcmp(a, "--rounds")) {
			o->rounds = atoi(v);
		} else if (!strcmp(a, "--batch")) {
			o->batch = atoi(v);
		} else if (!strcmp(a, "--prompt-len")) {
			o->prompt_len = atoi(v);
		} else if (!strcmp(a, "--decode-steps")) {
			o->decode_steps = atoi(v);
		} else if (!strcmp(a, "--dtype") && (!strcmp(v, "bf16") || !strcmp(v, "fp8"))) {
			o->dtype = !strcmp(v, "fp8") ? DSV32_WDTYPE_FP8 : DSV32_WDTYPE_BF16;
		} else if (!strcmp(a, "--gemm") && (!strcmp(v, "fixed") || !strcmp(v, "host"))) {
			o->gemm_engine = !strcmp(v, "host") ? DSV32_GEMM_HOST : DSV32_GEMM_FIXED;
		} else {
			return usage();
		}
		i += takes;
	}
	return o->threads >= 1 && o->rounds >= 1 ? 0 : usage();
}

int main(int argc, char **argv)
{
	char pybuf[600];
	bench_opts o = {.presets = "small,real-width", .work = "/tmp/dsv32-bench-forward",
			.layouts = "ref,hf", .threads = 2, .rounds = 2, .decode_steps = -1,
			.gemm_engine = DSV32_GEMM_FIXED};
	default_python(&o, pybuf, sizeof pybuf);
	if (parse_args(argc, argv, &o) != 0)
		return 2;
	dsv32_host_fingerprint hf;
	char host[512];
	dsv32_host_fingerprint_get(&hf, o.gemm_engine);
	snprintf(host, sizeof host, "%s, %ld cores online", hf.cpu_model, sysconf(_SC_NPROCESSORS_ONLN));
	preset_run runs[4];
	int n = 0, failed = 0;
	char list[128];
	snprintf(list, sizeof list, "%s", o.presets);
	for (char *save = NULL, *tok = strtok_r(list, ",", &save); tok && n < 4;
	     tok = strtok_r(NULL, ",", &save))
		failed |= run_preset(&o, tok, &runs[n++]) != 0;
	printf("bench_forward on %s; %d thread(s) on every side; gemm=%s; best of %d round(s)\n\n", host,
	       o.threads, o.gemm_engine == DSV32_GEMM_HOST ? "host" : "fixed", o.rounds);
	print_table(runs, n);
	for (int i = 0; i < n; i++)
		for (int v = 0; v < V_COUNT; v++)
			if (wanted(&o, v) && !runs[i].best[v].ok)
				printf("\n%s, %s: %s%s\n", runs[i].name, version_names[v],
				       v == V_PEER ? "peer absent or failed: " : "failed: ",
				       runs[i].best[v].why);
	for (int i = 0; i < n; i++)
		if (runs[i].peer_versions[0])
			printf("\npeer (%s): %s\n", runs[i].name, runs[i].peer_versions);
	printf("\n");
	print_json(&o, runs, n, host);
	return failed ? 1 : 0;
}
