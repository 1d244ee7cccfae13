/* cmd_inspect.c: `dsv32-parity inspect PATH`: list a checkpoint's tensors (name, dtype, shape,
 * bytes, totals) and, when a config.json in HF form lies beside it, check key coverage against
 * the expected tensor list of that config (core/hf_names.h). Exit 0: listed, coverage complete
 * (or not checked); 1: missing / unexpected / mismatched tensors; 2: unreadable input. */
#include <cjson/cJSON.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/args.h"
#include "cli/cli.h"
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

static bool shape_eq(const want *w, const dsv32_st_entry *e)
{
	if (w->ndim != e->ndim)
		return false;
	for (int i = 0; i < w->ndim; i++)
		if (w->shape[i] != e->shape[i])
			return false;
	return true;
}

/* RMSNorm weights may be BF16 instead of F32 (checkpoints.md §2.6, open point). */
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

static void note_mismatch(coverage *cv, const want *w, const dsv32_st_entry *e)
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

/* Compare the checkpoint with the expected list of the config beside it. */
static dsv32_status check_coverage(const dsv32_ckpt *ck, const char *path, coverage *cv,
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
	cv->checked = true;
	cv->fp8 = c.dtype == DSV32_WDTYPE_FP8;
	dsv32_hf_tensor_list l;
	dsv32_status st = dsv32_hf_expected_list(&c, cv->fp8, &l, err);
	if (st == DSV32_OK) {
		qsort(l.v, l.n, sizeof *l.v, cmp_want);
		cv->expected = l.n;
		for (size_t i = 0; i < l.n; i++) {
			const dsv32_st_entry *e = dsv32_ckpt_find(ck, l.v[i].name, NULL);
			if (!e)
				cJSON_AddItemToArray(cv->missing, cJSON_CreateString(l.v[i].name));
			else if (!dtype_ok(&l.v[i], e->dtype) || !shape_eq(&l.v[i], e))
				note_mismatch(cv, &l.v[i], e);
		}
		for (size_t i = 0; i < dsv32_ckpt_count(ck); i++) {
			const dsv32_st_entry *e = dsv32_ckpt_entry_at(ck, i, NULL);
			want key = {.name = e->name};
			if (bsearch(&key, l.v, l.n, sizeof *l.v, cmp_want))
				continue;
			if (dsv32_hf_is_mtp_name(&c, e->name))
				cv->ignored_mtp++;
			else
				cJSON_AddItemToArray(cv->unexpected, cJSON_CreateString(e->name));
		}
	}
	dsv32_hf_tensor_list_free(&l);
	return st;
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

static void print_text(const dsv32_ckpt *ck, const coverage *cv, const char *hash)
{
	uint64_t total = 0;
	char sh[96], name[SAFE_NAME_MAX];
	printf("%-64s %-8s %-16s %14s\n", "name", "dtype", "shape", "bytes");
	for (size_t i = 0; i < dsv32_ckpt_count(ck); i++) {
		const dsv32_st_entry *e = dsv32_ckpt_entry_at(ck, i, NULL);
		printf("%-64s %-8s %-16s %14llu\n", SAFE(name, e->name), dsv32_dtype_name(e->dtype),
		       dsv32_shape_str(sh, sizeof sh, e->ndim, e->shape),
		       (unsigned long long)(e->end - e->begin));
		total += e->end - e->begin;
	}
	printf("total: %zu tensors, %llu bytes in %zu file(s)\n", dsv32_ckpt_count(ck),
	       (unsigned long long)total, dsv32_ckpt_file_count(ck));
	if (hash)
		printf("content sha256: %s (tensors in name order; metadata excluded)\n", hash);
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

static int print_json(const dsv32_ckpt *ck, const char *path, coverage *cv, const char *hash,
		      const char *dest)
{
	uint64_t total = 0;
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "path", path);
	cJSON_AddNumberToObject(o, "files", (double)dsv32_ckpt_file_count(ck));
	cJSON *arr = cJSON_AddArrayToObject(o, "tensors");
	for (size_t i = 0; i < dsv32_ckpt_count(ck); i++) {
		const dsv32_st_file *f;
		const dsv32_st_entry *e = dsv32_ckpt_entry_at(ck, i, &f);
		cJSON *t = cJSON_CreateObject();
		cJSON_AddStringToObject(t, "name", e->name);
		cJSON_AddStringToObject(t, "dtype", dsv32_dtype_name(e->dtype));
		cJSON *s = cJSON_AddArrayToObject(t, "shape");
		for (int d = 0; d < e->ndim; d++)
			cJSON_AddItemToArray(s, cJSON_CreateNumber((double)e->shape[d]));
		cJSON_AddNumberToObject(t, "bytes", (double)(e->end - e->begin));
		char tmp[4096];
		snprintf(tmp, sizeof tmp, "%s", dsv32_st_path(f));
		cJSON_AddStringToObject(t, "file", basename(tmp));
		cJSON_AddItemToArray(arr, t);
		total += e->end - e->begin;
	}
	cJSON_AddNumberToObject(o, "total_tensors", (double)dsv32_ckpt_count(ck));
	cJSON_AddNumberToObject(o, "total_bytes", (double)total);
	if (hash)
		cJSON_AddStringToObject(o, "content_sha256", hash);
	cJSON *c = cJSON_AddObjectToObject(o, "coverage");
	cJSON_AddBoolToObject(c, "checked", cv->checked);
	if (!cv->checked) {
		cJSON_AddStringToObject(c, "skipped", cv->skipped);
	} else {
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
	char *text = cJSON_Print(o);
	cJSON_Delete(o);
	if (!text)
		return DSV32_EXIT_USAGE;
	int rc = dsv32_cli_write_output("inspect", dest, text);
	free(text);
	return rc;
}

int dsv32_cmd_inspect(int argc, char **argv)
{
	bool no_cov = false, hash = false;
	const char *json = NULL;
	const dsv32_arg_opt opts[] = {
		{"json", DSV32_ARG_OUTPUT, &json, "FILE",
		 "one JSON document to FILE (atomically), or alone / '-': to stdout instead of\n"
		 "  the table (after PATH: `inspect PATH --json FILE`; before it use --json=FILE)",
		 false},
		{"no-coverage", DSV32_ARG_FLAG, &no_cov, NULL,
		 "only list tensors; skip the config.json coverage check", false},
		{"hash", DSV32_ARG_FLAG, &hash, NULL,
		 "also print the content SHA-256 (every tensor's name, dtype, shape and bytes in name\n"
		 "  order; metadata excluded): equal for equal numbers on any machine (reads every byte)",
		 false},
	};
	const dsv32_arg_spec spec = {
		"inspect", "PATH [--json [FILE|-]] [--hash]",
		"List the tensors of a checkpoint (a directory, sharded or not, or one .safetensors\n"
		"file): name, dtype, shape, bytes and totals. With an HF config.json beside it, check\n"
		"that it holds exactly the tensors that config expects (names, dtypes, shapes).",
		opts, (int)(sizeof opts / sizeof opts[0]), 1, 1};
	const char *pos[1];
	int npos;
	int rc = dsv32_args_parse(&spec, argc, argv, pos, &npos);
	if (rc == DSV32_ARGS_HELP)
		return DSV32_EXIT_OK;
	if (rc)
		return rc;
	dsv32_error err = {0};
	dsv32_ckpt *ck;
	const char *names[] = {"--json"}, *outs[] = {dsv32_cli_out_file(json)};
	char inbuf[4096];
	const char *inputs[] = {dsv32_cli_ckpt_input(pos[0], inbuf, sizeof inbuf)};
	dsv32_cli_outputs claimed;
	if ((rc = dsv32_cli_outputs_claim(&claimed, "inspect", names, outs, 1, inputs, 1)))
		return rc;
	if (dsv32_ckpt_open(&ck, pos[0], &err) != DSV32_OK) {
		dsv32_cli_outputs_release(&claimed);
		return dsv32_cli_fail("inspect", &err);
	}
	coverage cv = {.missing = cJSON_CreateArray(), .unexpected = cJSON_CreateArray(),
		       .mismatched = cJSON_CreateArray()};
	if (no_cov)
		cv.skipped = "--no-coverage";
	else if (check_coverage(ck, pos[0], &cv, &err) != DSV32_OK) {
		rc = dsv32_cli_fail("inspect", &err);
		goto out_free;
	}
	bool ok = !cv.checked || coverage_ok(&cv);
	char hex[65];
	if (hash && dsv32_ckpt_content_sha256(ck, hex, &err) != DSV32_OK) {
		rc = dsv32_cli_fail("inspect", &err);
		goto out_free;
	}
	if (json)
		rc = print_json(ck, pos[0], &cv, hash ? hex : NULL, json);
	if (!json || dsv32_cli_out_file(json)) /* with --json / -, stdout holds only the JSON */
		print_text(ck, &cv, hash ? hex : NULL);
	if (rc == DSV32_EXIT_OK && !ok)
		rc = DSV32_EXIT_CHECK_FAILED;
out_free:
	cJSON_Delete(cv.missing);
	cJSON_Delete(cv.unexpected);
	cJSON_Delete(cv.mismatched);
	dsv32_ckpt_close(ck);
	dsv32_cli_outputs_release(&claimed);
	return rc;
}
