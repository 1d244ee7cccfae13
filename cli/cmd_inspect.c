/* cmd_inspect.c: `dsv32-parity inspect PATH`: list a checkpoint's tensors (name, dtype, shape,
 * bytes, totals) and, when a config.json in HF form lies beside it, check key coverage against
 * the expected tensor list of that config (core/hf_names.h). A directory of reference shards
 * (model{r}-mp{W}.safetensors) is listed as the dense HF checkpoint they make (convert.h "shard
 * source": the shards are joined and checked as the converter does), with each tensor's split,
 * and its coverage is checked against the shards' own config.
 * Exit 0: listed, coverage complete (or not checked); 1: missing / unexpected / mismatched
 * tensors; 2: unreadable input. */
#include <cjson/cJSON.h>
#include <libgen.h>
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
#include "core/hf_names.h"
#include "core/safetensors.h"

#define TEXT_LIST_MAX 20
/* Tensor names and paths come from the input: the text listing prints them through the
 * terminal sanitizer (core/error.h; ESC, newlines, C1 as \xNN). JSON output is escaped by
 * cJSON. A name longer than the buffer is cut (real tensor names are under 100 bytes). */
#define SAFE_NAME_MAX 4096
#define SAFE(buf, s) dsv32_sanitize_term((buf), sizeof(buf), (s))

typedef dsv32_hf_tensor want; /* an expected tensor (core/hf_names.h) */

/* One listed tensor; names and paths are borrowed from the open checkpoint or shard source. */
typedef struct {
	const char *name;
	dsv32_dtype dtype;
	int ndim;
	int64_t shape[DSV32_MAX_DIMS];
	uint64_t bytes;
	const char *file;  /* a checkpoint's file path; NULL for shards */
	const char *split; /* shards: none | dim0 | dim1 | expert */
	const char *ref;   /* shards: the reference name */
} row;

typedef struct {
	row *rows;        /* in listing order */
	const row **by_name;
	size_t n, n_files;
	int world;        /* > 0: a shards directory of this world size */
} listing;

typedef struct {
	bool checked;        /* a HF config was found and used */
	const char *skipped; /* why coverage was not checked, or NULL */
	char config_path[4096];
	bool fp8;
	size_t expected, ignored_mtp;
	cJSON *missing, *unexpected, *mismatched; /* arrays, also used for the text output */
} coverage;

static int cmp_want(const void *a, const void *b)
{
	return strcmp(((const want *)a)->name, ((const want *)b)->name);
}

static int cmp_row_ptr(const void *a, const void *b)
{
	return strcmp((*(const row *const *)a)->name, (*(const row *const *)b)->name);
}

static const row *listing_find(const listing *l, const char *name)
{
	row key = {.name = name};
	const row *kp = &key;
	const row **hit = bsearch(&kp, l->by_name, l->n, sizeof *l->by_name, cmp_row_ptr);
	return hit ? *hit : NULL;
}

static void listing_free(listing *l)
{
	free(l->rows);
	free(l->by_name);
	*l = (listing){0};
}

static dsv32_status listing_alloc(listing *l, size_t n, dsv32_error *err)
{
	l->rows = calloc(n + 1, sizeof *l->rows);
	l->by_name = calloc(n + 1, sizeof *l->by_name);
	l->n = n;
	if (!l->rows || !l->by_name) {
		listing_free(l);
		return DSV32_FAIL(err, DSV32_E_NOMEM, "inspect: a listing of %zu tensors", n);
	}
	return DSV32_OK;
}

static void listing_index(listing *l)
{
	for (size_t i = 0; i < l->n; i++)
		l->by_name[i] = &l->rows[i];
	qsort(l->by_name, l->n, sizeof *l->by_name, cmp_row_ptr);
}

static dsv32_status list_ckpt(listing *l, const dsv32_ckpt *ck, dsv32_error *err)
{
	DSV32_TRY(listing_alloc(l, dsv32_ckpt_count(ck), err));
	for (size_t i = 0; i < l->n; i++) {
		const dsv32_st_file *f;
		const dsv32_st_entry *e = dsv32_ckpt_entry_at(ck, i, &f);
		row *r = &l->rows[i];
		*r = (row){.name = e->name, .dtype = e->dtype, .ndim = e->ndim,
			   .bytes = e->end - e->begin, .file = dsv32_st_path(f)};
		memcpy(r->shape, e->shape, sizeof r->shape);
	}
	l->n_files = dsv32_ckpt_file_count(ck);
	listing_index(l);
	return DSV32_OK;
}

static dsv32_status list_shards(listing *l, const dsv32_shard_source *src, dsv32_error *err)
{
	DSV32_TRY(listing_alloc(l, dsv32_shard_source_count(src), err));
	for (size_t i = 0; i < l->n; i++) {
		row *r = &l->rows[i];
		r->name = dsv32_shard_source_name_at(src, i);
		dsv32_shard_source_find(src, r->name, &r->dtype, &r->ndim, r->shape);
		dsv32_tensor v = dsv32_tensor_view(NULL, r->dtype, r->ndim, r->shape);
		r->bytes = dsv32_tensor_nbytes(&v);
		r->split = dsv32_shard_source_split_at(src, i);
		r->ref = dsv32_shard_source_ref_name_at(src, i);
	}
	l->world = dsv32_shard_source_world(src);
	l->n_files = (size_t)l->world;
	listing_index(l);
	return DSV32_OK;
}

static bool shape_eq(const want *w, const row *e)
{
	if (w->ndim != e->ndim)
		return false;
	for (int i = 0; i < w->ndim; i++)
		if (w->shape[i] != e->shape[i])
			return false;
	return true;
}

/* RMSNorm weights may be BF16 instead of F32 (docs/spec/checkpoints.md, open point). */
static bool dtype_ok(const want *w, dsv32_dtype found)
{
	return found == w->dtype || (w->kind == DSV32_HF_NORM && found == DSV32_BF16);
}

static void find_config(const char *path, char *out, size_t len)
{
	if (dsv32_path_is_dir(path)) {
		dsv32_path_join(out, len, path, "config.json");
		return;
	}
	char tmp[4096];
	snprintf(tmp, sizeof tmp, "%s", path);
	dsv32_path_join(out, len, dirname(tmp), "config.json");
}

/* The directory entry exists, even as a FIFO or a dangling or looping symlink: reading it then
 * says what is wrong instead of "no config.json". */
static bool path_entry_exists(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0;
}

static void note_mismatch(coverage *cv, const want *w, const row *e)
{
	char ws[96], fs[96];
	cJSON *m = cJSON_CreateObject();
	cJSON_AddStringToObject(m, "name", w->name);
	cJSON_AddStringToObject(m, "expected_dtype", dsv32_dtype_name(w->dtype));
	cJSON_AddStringToObject(m, "found_dtype", dsv32_dtype_name(e->dtype));
	cJSON_AddStringToObject(m, "expected_shape", dsv32_shape_str(ws, sizeof ws, w->ndim,
								     w->shape));
	cJSON_AddStringToObject(m, "found_shape", dsv32_shape_str(fs, sizeof fs, e->ndim,
								  e->shape));
	cJSON_AddItemToArray(cv->mismatched, m);
}

/* Compare the listing with the expected tensors of HF config c. */
static dsv32_status compare_expected(const listing *l, const dsv32_config *c, coverage *cv,
				     dsv32_error *err)
{
	cv->checked = true;
	cv->fp8 = c->dtype == DSV32_WDTYPE_FP8;
	dsv32_hf_tensor_list wl;
	dsv32_status st = dsv32_hf_expected_list(c, cv->fp8, &wl, err);
	if (st == DSV32_OK) {
		qsort(wl.v, wl.n, sizeof *wl.v, cmp_want);
		cv->expected = wl.n;
		for (size_t i = 0; i < wl.n; i++) {
			const row *e = listing_find(l, wl.v[i].name);
			if (!e)
				cJSON_AddItemToArray(cv->missing, cJSON_CreateString(wl.v[i].name));
			else if (!dtype_ok(&wl.v[i], e->dtype) || !shape_eq(&wl.v[i], e))
				note_mismatch(cv, &wl.v[i], e);
		}
		for (size_t i = 0; i < l->n; i++) {
			want key = {.name = l->rows[i].name};
			if (bsearch(&key, wl.v, wl.n, sizeof *wl.v, cmp_want))
				continue;
			if (dsv32_hf_is_mtp_name(c, key.name))
				cv->ignored_mtp++;
			else
				cJSON_AddItemToArray(cv->unexpected, cJSON_CreateString(key.name));
		}
	}
	dsv32_hf_tensor_list_free(&wl);
	return st;
}

/* Coverage of a checkpoint against the HF config beside it. */
static dsv32_status check_coverage(const listing *l, const char *path, coverage *cv,
				   dsv32_error *err)
{
	find_config(path, cv->config_path, sizeof cv->config_path);
	if (!path_entry_exists(cv->config_path)) {
		cv->skipped = "no config.json beside the checkpoint";
		return DSV32_OK;
	}
	dsv32_config c;
	bool is_hf;
	DSV32_TRY(dsv32_config_load(&c, cv->config_path, &is_hf, err));
	if (!is_hf) {
		cv->skipped = "config.json is in the reference form (HF names not expected)";
		return DSV32_OK;
	}
	/* an invalid config's expected list is meaningless (hidden_size 0 read as a coverage
	 * mismatch, rms_norm_eps -1 as OK): the check the models run at open, with the HF key */
	DSV32_TRY(dsv32_config_validate_file(&c, true, 0, cv->config_path, err));
	return compare_expected(l, &c, cv, err);
}

/* Coverage of shards against their own (reference) config, read as the HF config.json
 * `convert ref-to-hf` would write (the shard source validated it against W at open). */
static dsv32_status check_shard_coverage(const listing *l, const dsv32_shard_source *src,
					 const char *config_used, coverage *cv, dsv32_error *err)
{
	snprintf(cv->config_path, sizeof cv->config_path, "%s", config_used);
	dsv32_config c;
	DSV32_TRY(dsv32_shard_source_hf_config(src, &c, err));
	return compare_expected(l, &c, cv, err);
}

static bool coverage_ok(const coverage *cv)
{
	return cJSON_GetArraySize(cv->missing) == 0 && cJSON_GetArraySize(cv->unexpected) == 0 &&
	       cJSON_GetArraySize(cv->mismatched) == 0;
}
static void print_list(const char *what, const cJSON *arr)
{
	int n = cJSON_GetArraySize(arr), i = 0;
	char name[SAFE_NAME_MAX];
	const cJSON *it;
	cJSON_ArrayForEach(it, arr)
	{
		if (i++ == TEXT_LIST_MAX) {
			printf("  ... and %d more %s\n", n - TEXT_LIST_MAX, what);
			break;
		}
		if (cJSON_IsString(it)) {
			printf("  %s: %s\n", what, SAFE(name, it->valuestring));
		} else {
			printf("  %s: %s: %s %s, expected %s %s\n", what,
			       SAFE(name, cJSON_GetObjectItem(it, "name")->valuestring),
			       cJSON_GetObjectItem(it, "found_dtype")->valuestring,
			       cJSON_GetObjectItem(it, "found_shape")->valuestring,
			       cJSON_GetObjectItem(it, "expected_dtype")->valuestring,
			       cJSON_GetObjectItem(it, "expected_shape")->valuestring);
		}
	}
}

static void print_rows(const listing *l)
{
	char sh[96], name[SAFE_NAME_MAX];
	printf("%-64s %-8s %-16s %14s%s\n", "name", "dtype", "shape", "bytes",
	       l->world ? "  split" : "");
	for (size_t i = 0; i < l->n; i++) {
		const row *e = &l->rows[i];
		printf("%-64s %-8s %-16s %14llu", SAFE(name, e->name), dsv32_dtype_name(e->dtype),
		       dsv32_shape_str(sh, sizeof sh, e->ndim, e->shape),
		       (unsigned long long)e->bytes);
		if (l->world)
			printf("  %s", e->split);
		putchar('\n');
	}
}

static void print_text(const listing *l, const char *path, const coverage *cv, const char *hash)
{
	uint64_t total = 0;
	char name[SAFE_NAME_MAX];
	if (l->world)
		printf("reference shards %s (mp%d): the dense HF checkpoint they make (HF names; "
		       "split: how the ranks hold each tensor)\n", SAFE(name, path), l->world);
	print_rows(l);
	for (size_t i = 0; i < l->n; i++)
		total += l->rows[i].bytes;
	printf("total: %zu tensors, %llu bytes in %zu %s\n", l->n, (unsigned long long)total,
	       l->n_files, l->world ? "shard file(s)" : "file(s)");
	if (hash)
		printf("content sha256: %s (tensors in name order; metadata excluded%s)\n", hash,
		       l->world ? "; equal to inspect --hash of `convert ref-to-hf --dtype keep`" : "");
	if (!cv->checked) {
		printf("coverage: not checked (%s)\n", cv->skipped);
		return;
	}
	printf("coverage against %s (%s): %zu expected, %d missing, %d unexpected, %d mismatched",
	       SAFE(name, cv->config_path), cv->fp8 ? "fp8" : "bf16", cv->expected,
	       cJSON_GetArraySize(cv->missing), cJSON_GetArraySize(cv->unexpected),
	       cJSON_GetArraySize(cv->mismatched));
	if (cv->ignored_mtp)
		printf(", %zu MTP tensors ignored", cv->ignored_mtp);
	printf(": %s\n", coverage_ok(cv) ? "OK" : "MISMATCH");
	print_list("missing", cv->missing);
	print_list("unexpected", cv->unexpected);
	print_list("mismatch", cv->mismatched);
}

static cJSON *row_json(const row *e)
{
	cJSON *t = cJSON_CreateObject();
	cJSON_AddStringToObject(t, "name", e->name);
	cJSON_AddStringToObject(t, "dtype", dsv32_dtype_name(e->dtype));
	cJSON *s = cJSON_AddArrayToObject(t, "shape");
	for (int d = 0; d < e->ndim; d++)
		cJSON_AddItemToArray(s, cJSON_CreateNumber((double)e->shape[d]));
	cJSON_AddNumberToObject(t, "bytes", (double)e->bytes);
	if (e->file) {
		char tmp[4096];
		snprintf(tmp, sizeof tmp, "%s", e->file);
		cJSON_AddStringToObject(t, "file", basename(tmp));
	} else {
		cJSON_AddStringToObject(t, "split", e->split);
		cJSON_AddStringToObject(t, "reference_name", e->ref);
	}
	return t;
}

static void coverage_json(cJSON *o, coverage *cv)
{
	cJSON *c = cJSON_AddObjectToObject(o, "coverage");
	cJSON_AddBoolToObject(c, "checked", cv->checked);
	if (!cv->checked) {
		cJSON_AddStringToObject(c, "skipped", cv->skipped);
		return;
	}
	cJSON_AddStringToObject(c, "config", cv->config_path);
	cJSON_AddBoolToObject(c, "fp8", cv->fp8);
	cJSON_AddNumberToObject(c, "expected", (double)cv->expected);
	cJSON_AddNumberToObject(c, "ignored_mtp", (double)cv->ignored_mtp);
	cJSON_AddBoolToObject(c, "ok", coverage_ok(cv));
	cJSON_AddItemToObject(c, "missing", cv->missing);
	cJSON_AddItemToObject(c, "unexpected", cv->unexpected);
	cJSON_AddItemToObject(c, "mismatched", cv->mismatched);
	cv->missing = cv->unexpected = cv->mismatched = NULL; /* owned by o now */
}

static int print_json(const listing *l, const char *path, coverage *cv, const char *hash,
		      const char *dest)
{
	uint64_t total = 0;
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "path", path);
	cJSON_AddNumberToObject(o, "files", (double)l->n_files);
	if (l->world) {
		cJSON *sh = cJSON_AddObjectToObject(o, "shards");
		cJSON_AddNumberToObject(sh, "world_size", l->world);
		cJSON_AddStringToObject(sh, "listed_as", "the dense HF checkpoint (HF names)");
	}
	cJSON *arr = cJSON_AddArrayToObject(o, "tensors");
	for (size_t i = 0; i < l->n; i++) {
		cJSON_AddItemToArray(arr, row_json(&l->rows[i]));
		total += l->rows[i].bytes;
	}
	cJSON_AddNumberToObject(o, "total_tensors", (double)l->n);
	cJSON_AddNumberToObject(o, "total_bytes", (double)total);
	if (hash)
		cJSON_AddStringToObject(o, "content_sha256", hash);
	coverage_json(o, cv);
	char *text = cJSON_Print(o);
	cJSON_Delete(o);
	if (!text)
		return DSV32_EXIT_USAGE;
	int rc = dsv32_cli_write_output("inspect", dest, text);
	free(text);
	return rc;
}

typedef struct {
	const char *path, *config, *json;
	bool no_cov, hash, force;
} inspect_args;

/* Fill l (and open what it borrows from) and check coverage. */
static dsv32_status inspect_open(const inspect_args *a, dsv32_ckpt **ck, dsv32_shard_source **src,
				 listing *l, coverage *cv, dsv32_error *err)
{
	if (dsv32_cli_is_shards_dir(a->path)) {
		char cfg[4096];
		if (a->config)
			snprintf(cfg, sizeof cfg, "%s", a->config);
		else
			find_config(a->path, cfg, sizeof cfg);
		DSV32_TRY(dsv32_shard_source_open(src, &a->path, 1, a->config, err));
		DSV32_TRY(list_shards(l, *src, err));
		return a->no_cov ? DSV32_OK : check_shard_coverage(l, *src, cfg, cv, err);
	}
	if (a->config)
		return DSV32_FAIL(err, DSV32_E_USAGE, "--config is for a directory of reference "
				  "shards (model{r}-mp{W}.safetensors); %s holds none", a->path);
	DSV32_TRY(dsv32_ckpt_open(ck, a->path, err));
	DSV32_TRY(list_ckpt(l, *ck, err));
	return a->no_cov ? DSV32_OK : check_coverage(l, a->path, cv, err);
}

static dsv32_status content_hash(const dsv32_ckpt *ck, const dsv32_shard_source *src,
				 char hex[65], dsv32_error *err)
{
	return src ? dsv32_shard_source_content_sha256(src, hex, err)
		   : dsv32_ckpt_content_sha256(ck, hex, err);
}

static int inspect_run(const inspect_args *a)
{
	dsv32_error err = {0};
	dsv32_ckpt *ck = NULL;
	dsv32_shard_source *src = NULL;
	listing l = {0};
	coverage cv = {.missing = cJSON_CreateArray(), .unexpected = cJSON_CreateArray(),
		       .mismatched = cJSON_CreateArray(), .skipped = "--no-coverage"};
	char hex[65];
	int rc = DSV32_EXIT_OK;
	if (inspect_open(a, &ck, &src, &l, &cv, &err) != DSV32_OK ||
	    (a->hash && content_hash(ck, src, hex, &err) != DSV32_OK)) {
		rc = dsv32_cli_fail("inspect", &err);
		goto out;
	}
	bool ok = !cv.checked || coverage_ok(&cv);
	if (a->json)
		rc = print_json(&l, a->path, &cv, a->hash ? hex : NULL, a->json);
	if (!a->json || dsv32_cli_out_file(a->json)) /* with --json / -, stdout holds only JSON */
		print_text(&l, a->path, &cv, a->hash ? hex : NULL);
	if (rc == DSV32_EXIT_OK && !ok)
		rc = DSV32_EXIT_CHECK_FAILED;
out:
	cJSON_Delete(cv.missing);
	cJSON_Delete(cv.unexpected);
	cJSON_Delete(cv.mismatched);
	listing_free(&l);
	if (ck)
		dsv32_ckpt_close(ck);
	dsv32_shard_source_close(src);
	return rc;
}

int dsv32_cmd_inspect(int argc, char **argv)
{
	inspect_args a = {0};
	const dsv32_arg_opt opts[] = {
		{"json", DSV32_ARG_OUTPUT, &a.json, "FILE",
		 "one JSON document to FILE (atomically), or alone / '-': to stdout instead of\n"
		 "  the table (after PATH: `inspect PATH --json FILE`; before it use --json=FILE)",
		 false},
		{"force", DSV32_ARG_FLAG, &a.force, NULL, "replace --json FILE if it exists", false},
		{"no-coverage", DSV32_ARG_FLAG, &a.no_cov, NULL,
		 "only list tensors; skip the config.json coverage check", false},
		{"hash", DSV32_ARG_FLAG, &a.hash, NULL,
		 "also print the content SHA-256 (every tensor's name, dtype, shape and bytes in name\n"
		 "  order; metadata excluded): equal for equal numbers on any machine (reads every byte)",
		 false},
		{"config", DSV32_ARG_STRING, &a.config, "FILE",
		 "shards only: the reference config (default: config.json in the shards directory)",
		 false},
	};
	const dsv32_arg_spec spec = {
		"inspect", "PATH [--json [FILE|-]] [--hash] [--config FILE]",
		"List the tensors of a checkpoint (a directory, sharded or not, or one .safetensors\n"
		"file): name, dtype, shape, bytes and totals. With an HF config.json beside it, check\n"
		"that it holds exactly the tensors that config expects (names, dtypes, shapes).\n"
		"A directory of reference shards (model{r}-mp{W}.safetensors) is joined and checked as\n"
		"the converter does and listed as the dense HF checkpoint it makes, with each tensor's\n"
		"split; coverage is checked against the shards' own config.",
		opts, (int)(sizeof opts / sizeof opts[0]), 1, 1};
	const char *pos[1];
	int npos;
	int rc = dsv32_args_parse(&spec, argc, argv, pos, &npos);
	if (rc == DSV32_ARGS_HELP)
		return DSV32_EXIT_OK;
	if (rc)
		return rc;
	a.path = pos[0];
	const char *names[] = {"--json"}, *outs[] = {dsv32_cli_out_file(a.json)};
	char inbuf[4096];
	const char *inputs[] = {dsv32_cli_ckpt_input(a.path, inbuf, sizeof inbuf), a.config};
	dsv32_cli_outputs claimed = {.force = a.force};
	if ((rc = dsv32_cli_outputs_claim(&claimed, "inspect", names, outs, 1, inputs, 2)))
		return rc;
	rc = inspect_run(&a);
	dsv32_cli_outputs_release(&claimed);
	return rc;
}
