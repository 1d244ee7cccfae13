/* ref_to_hf.c: reference shards -> dense HF checkpoint (docs/spec/checkpoints.md §6.4): HF names,
 * split tensors concatenated in rank order along their split dim, experts from their owner,
 * replicated tensors once after a byte comparison across ranks; files of at most
 * max_shard_bytes with model.safetensors.index.json; config.json from the reference config.
 * With DSV32_OUT_BF16 each fp8 weight is dequantized with its block scale (§2.7). */
#include "convert/conv_internal.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/fsutil.h"

#define DEFAULT_MAX_SHARD 5000000000ull

typedef struct {
	const conv_tensor *t;
	const conv_tensor *scale; /* dequantization: the weight's scale, else NULL */
	dsv32_dtype dtype;        /* output dtype */
	uint64_t nbytes;          /* output size */
	int file;                 /* output file index */
} out_tensor;

static bool is_fp8(dsv32_dtype t)
{
	return t == DSV32_F8_E4M3 || t == DSV32_F8_E5M2;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);
	return n >= k && !strcmp(s + n - k, suffix);
}

static const conv_tensor *find_ref(const conv_shardset *s, const char *ref)
{
	size_t lo = 0, hi = s->n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(s->t[mid].ref, ref);
		if (!c)
			return &s->t[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* The weight a ".scale" tensor belongs to, if that weight is fp8. */
static const conv_tensor *scale_owner(const conv_shardset *s, const conv_tensor *t)
{
	char w[DSV32_NAME_MAX];
	size_t n = strlen(t->ref);
	if (!ends_with(t->ref, ".scale") || n + 2 > sizeof w)
		return NULL;
	snprintf(w, sizeof w, "%.*sweight", (int)(n - 5), t->ref);
	const conv_tensor *o = find_ref(s, w);
	return o && is_fp8(o->dtype) ? o : NULL;
}

/* Natural order of HF names (digit runs compared as numbers): embed, layers 0, 1, ..., norm. */
static int cmp_natural(const char *a, const char *b)
{
	while (*a && *b) {
		if (*a >= '0' && *a <= '9' && *b >= '0' && *b <= '9') {
			unsigned long long x = strtoull(a, (char **)&a, 10);
			unsigned long long y = strtoull(b, (char **)&b, 10);
			if (x != y)
				return x < y ? -1 : 1;
			continue;
		}
		if (*a != *b)
			return (unsigned char)*a < (unsigned char)*b ? -1 : 1;
		a++;
		b++;
	}
	return (unsigned char)*a - (unsigned char)*b;
}

static int cmp_out_natural(const void *a, const void *b)
{
	return cmp_natural(((const out_tensor *)a)->t->hf, ((const out_tensor *)b)->t->hf);
}

static int cmp_out_file_order(const void *a, const void *b)
{
	const out_tensor *x = a, *y = b;
	if (x->file != y->file)
		return x->file - y->file;
	return conv_cmp_st_order(x->dtype, x->t->hf, y->dtype, y->t->hf);
}

/* The output list: dtypes, scales paired for dequantization, files assigned. */
static dsv32_status plan_outputs(const conv_shardset *s, const dsv32_ref_to_hf_opts *o,
				 out_tensor **out, size_t *nout, int *nfiles, dsv32_error *err)
{
	out_tensor *v = calloc(s->n ? s->n : 1, sizeof *v);
	size_t k = 0;
	if (!v)
		return DSV32_FAIL(err, DSV32_E_NOMEM, "output table");
	for (size_t i = 0; i < s->n; i++) {
		const conv_tensor *t = &s->t[i];
		out_tensor *ot = &v[k];
		*ot = (out_tensor){.t = t, .dtype = t->dtype, .nbytes = t->nbytes};
		if (o->dtype == DSV32_OUT_BF16 && scale_owner(s, t))
			continue; /* folded into its weight */
		if (o->dtype == DSV32_OUT_BF16 && is_fp8(t->dtype)) {
			char sn[DSV32_NAME_MAX];
			size_t n = strlen(t->ref);
			if (!ends_with(t->ref, ".weight") || t->ndim != 2) {
				free(v);
				return DSV32_FAIL(err, DSV32_E_UNSUPPORTED,
						  "%s: %s tensor that is not a 2-D weight cannot be dequantized",
						  t->ref, dsv32_dtype_name(t->dtype));
			}
			snprintf(sn, sizeof sn, "%.*sscale", (int)(n - 6), t->ref);
			ot->scale = find_ref(s, sn);
			int64_t want0 = (t->full[0] + 127) / 128, want1 = (t->full[1] + 127) / 128;
			if (!ot->scale || ot->scale->dtype != DSV32_F32 || ot->scale->ndim != 2 ||
			    ot->scale->full[0] != want0 || ot->scale->full[1] != want1) {
				free(v);
				return DSV32_FAIL(err, DSV32_E_NOTFOUND,
						  "%s: fp8 weight needs %s as F32 [%lld, %lld] to dequantize",
						  t->ref, sn, (long long)want0, (long long)want1);
			}
			ot->dtype = DSV32_BF16;
			ot->nbytes = t->nbytes * 2 / dsv32_dtype_size(t->dtype);
		}
		k++;
	}
	qsort(v, k, sizeof *v, cmp_out_natural);
	uint64_t max = o->max_shard_bytes ? o->max_shard_bytes : DEFAULT_MAX_SHARD, cur = 0;
	int file = 0;
	for (size_t i = 0; i < k; i++) {
		if (cur > 0 && cur + v[i].nbytes > max) {
			file++;
			cur = 0;
		}
		v[i].file = file;
		cur += v[i].nbytes;
	}
	qsort(v, k, sizeof *v, cmp_out_file_order);
	*out = v;
	*nout = k;
	*nfiles = k ? file + 1 : 1;
	return DSV32_OK;
}

static dsv32_status sink_piece(void *user, const void *p, size_t n, int rank, uint64_t off,
			       dsv32_error *err)
{
	(void)rank;
	(void)off;
	return conv_sink_put(user, p, n, err);
}

/* Reassemble t into a new buffer of t->nbytes. */
static dsv32_status gather(const conv_tensor *t, int world, uint8_t **out, dsv32_error *err)
{
	uint8_t *buf = malloc(t->nbytes ? t->nbytes : 1);
	if (!buf)
		return DSV32_FAIL(err, DSV32_E_NOMEM, "%s: %llu bytes", t->ref,
				  (unsigned long long)t->nbytes);
	dsv32_status rc = conv_tensor_gather(t, world, buf, err);
	if (rc != DSV32_OK) {
		free(buf);
		return rc;
	}
	*out = buf;
	return DSV32_OK;
}

/* W[r, c] = bf16(f32(w8[r, c]) * s[r/128, c/128]), written in row blocks through the sink. */
static dsv32_status write_dequant(conv_sink *sink, const out_tensor *ot, int world,
				  dsv32_error *err)
{
	uint8_t *w8 = NULL, *sb = NULL;
	const conv_tensor *t = ot->t;
	DSV32_TRY(gather(t, world, &w8, err));
	dsv32_status rc = gather(ot->scale, world, &sb, err);
	int64_t R = t->full[0], C = t->full[1], SC = ot->scale->full[1];
	int64_t rows = (int64_t)(CONV_BUF_BYTES / 2 / (size_t)(C > 0 ? 2 * C : 1));
	dsv32_bf16 *row = NULL;
	if (rows < 1)
		rows = 1;
	if (rc == DSV32_OK && !(row = malloc((size_t)(rows * C > 0 ? rows * C : 1) * 2)))
		rc = DSV32_FAIL(err, DSV32_E_NOMEM, "%s: dequantization buffer", t->ref);
	for (int64_t r0 = 0; rc == DSV32_OK && r0 < R; r0 += rows) {
		int64_t nr = R - r0 < rows ? R - r0 : rows;
		for (int64_t r = 0; r < nr; r++) {
			const uint8_t *src = w8 + (r0 + r) * C;
			const float *srow = (const float *)(void *)sb + ((r0 + r) / 128) * SC;
			for (int64_t c = 0; c < C; c++) {
				float x = t->dtype == DSV32_F8_E4M3 ? dsv32_e4m3_to_f32(src[c])
								    : dsv32_e5m2_to_f32(src[c]);
				float s;
				memcpy(&s, &srow[c / 128], 4);
				row[r * C + c] = dsv32_f32_to_bf16(x * s);
			}
		}
		rc = conv_sink_put(sink, row, (size_t)(nr * C) * 2, err);
	}
	free(row);
	free(sb);
	free(w8);
	return rc;
}

static dsv32_status write_tensor(conv_sink *sink, const conv_shardset *s, const out_tensor *ot,
				 dsv32_error *err)
{
	const conv_tensor *t = ot->t;
	if (t->info.split == DSV32_SPLIT_NONE && s->world > 1) {
		uint64_t off = 0;
		int r = conv_replica_diff(t, s->world, &off);
		if (r == -2)
			return DSV32_FAIL(err, DSV32_E_IO, "%s: bus error reading a mapped input", t->ref);
		if (r >= 0)
			return DSV32_FAIL(err, DSV32_E_MISMATCH,
					  "%s: replicated tensor differs between ranks: byte %llu of rank "
					  "%d (%s) differs from rank 0 (%s)", t->ref,
					  (unsigned long long)off, r, s->paths[r], s->paths[0]);
	}
	if (ot->scale)
		DSV32_TRY(write_dequant(sink, ot, s->world, err));
	else
		DSV32_TRY(conv_tensor_pieces(t, s->world, sink_piece, sink, err));
	return conv_sink_flush(sink, err);
}

static void file_name(char *out, size_t len, int i, int n)
{
	snprintf(out, len, "model-%05d-of-%05d.safetensors", i + 1, n);
}

static dsv32_status write_files(conv_sink *sink, const conv_shardset *s, conv_inputs *in,
				const out_tensor *v, size_t n, int nfiles, const char *dir,
				dsv32_error *err)
{
	size_t i = 0;
	for (int f = 0; f < nfiles; f++) {
		char name[64], path[4200];
		file_name(name, sizeof name, f, nfiles);
		dsv32_path_join(path, sizeof path, dir, name);
		DSV32_TRY(dsv32_st_writer_open(&sink->w, path, err));
		dsv32_status rc = dsv32_st_writer_meta(sink->w, "format", "pt", err);
		size_t j;
		for (j = i; rc == DSV32_OK && j < n && v[j].file == f; j++)
			rc = dsv32_st_writer_declare(sink->w, v[j].t->hf, v[j].dtype, v[j].t->ndim,
						     v[j].t->full, err);
		for (j = i; rc == DSV32_OK && j < n && v[j].file == f; j++) {
			rc = write_tensor(sink, s, &v[j], err);
			conv_inputs_tensor_done(in);
		}
		if (rc != DSV32_OK) {
			dsv32_st_writer_abort(sink->w);
			sink->w = NULL;
			return rc;
		}
		i = j;
		rc = dsv32_st_writer_commit(sink->w, err);
		sink->w = NULL;
		DSV32_TRY(rc);
	}
	return DSV32_OK;
}

static dsv32_status write_index(const out_tensor *v, size_t n, int nfiles, uint64_t total,
				const char *dir, dsv32_error *err)
{
	cJSON *root = cJSON_CreateObject(), *meta = cJSON_AddObjectToObject(root, "metadata");
	cJSON_AddNumberToObject(meta, "total_size", (double)total);
	cJSON *map = cJSON_AddObjectToObject(root, "weight_map");
	const out_tensor **sorted = malloc((n ? n : 1) * sizeof *sorted);
	if (!root || !meta || !map || !sorted) {
		cJSON_Delete(root);
		free(sorted);
		return DSV32_FAIL(err, DSV32_E_NOMEM, "model.safetensors.index.json");
	}
	for (size_t i = 0; i < n; i++)
		sorted[i] = &v[i];
	for (size_t i = 1; i < n; i++) /* insertion sort by natural name order; n is modest */
		for (size_t j = i; j > 0 && cmp_natural(sorted[j - 1]->t->hf, sorted[j]->t->hf) > 0; j--) {
			const out_tensor *x = sorted[j];
			sorted[j] = sorted[j - 1];
			sorted[j - 1] = x;
		}
	for (size_t i = 0; i < n; i++) {
		char name[64];
		file_name(name, sizeof name, sorted[i]->file, nfiles);
		cJSON_AddStringToObject(map, sorted[i]->t->hf, name);
	}
	free(sorted);
	char *text = cJSON_Print(root), path[4200];
	cJSON_Delete(root);
	if (!text)
		return DSV32_FAIL(err, DSV32_E_NOMEM, "model.safetensors.index.json");
	dsv32_path_join(path, sizeof path, dir, "model.safetensors.index.json");
	dsv32_status rc = dsv32_write_file_atomic(path, text, strlen(text), err);
	free(text);
	return rc;
}

char *conv_hf_config_json(dsv32_config c, bool any_fp8)
{
	c.has_quant = any_fp8;
	c.dtype = any_fp8 ? DSV32_WDTYPE_FP8 : DSV32_WDTYPE_BF16;
	return dsv32_config_to_hf_json(&c);
}

static dsv32_status write_hf_config(dsv32_config c, bool any_fp8, const char *dir,
				    dsv32_error *err)
{
	char path[4200];
	char *json = conv_hf_config_json(c, any_fp8);
	if (!json)
		return DSV32_FAIL(err, DSV32_E_NOMEM, "config.json");
	dsv32_path_join(path, sizeof path, dir, "config.json");
	dsv32_status rc = dsv32_write_file_atomic(path, json, strlen(json), err);
	free(json);
	return rc;
}

static bool shardset_find(const void *src, const char *hf, int *ndim, const int64_t **shape)
{
	char ref[DSV32_NAME_MAX];
	if (dsv32_name_hf_to_ref(hf, 0, ref, sizeof ref, NULL, NULL) != DSV32_OK)
		return false;
	const conv_tensor *t = find_ref(src, ref);
	if (t) {
		*ndim = t->ndim;
		*shape = t->full;
	}
	return t != NULL;
}

/* The shards hold what the config says, before any output exists; the rank files are then
 * watched for size changes while they are read. */
static dsv32_status check_source(const conv_shardset *s, const dsv32_config *c, conv_inputs *in,
				 dsv32_error *err)
{
	bool fp8 = false;
	for (size_t i = 0; i < s->n; i++)
		fp8 |= is_fp8(s->t[i].dtype);
	DSV32_TRY(conv_validate_tensors(c, fp8, shardset_find, s, s->dir, err));
	for (int r = 0; r < s->world; r++)
		DSV32_TRY(conv_inputs_add(in, s->files[r], err));
	return DSV32_OK;
}

/* Write every file of the plan into dir, then the index, config and *token* files. */
static dsv32_status write_output(conv_sink *sink, const conv_shardset *s, conv_inputs *in,
				 const out_tensor *v, size_t n, int nfiles, dsv32_config c,
				 const char *dir, dsv32_error *err)
{
	bool any_fp8 = false;
	for (size_t i = 0; i < n; i++)
		any_fp8 |= is_fp8(v[i].dtype);
	dsv32_status rc = write_files(sink, s, in, v, n, nfiles, dir, err);
	/* a shard cut after its pages were read faulted nothing: its size tells */
	if (rc == DSV32_OK)
		rc = conv_inputs_check(in, err);
	rc = conv_inputs_explain(in, rc, err);
	if (rc == DSV32_OK)
		rc = write_index(v, n, nfiles, sink->total, dir, err);
	if (rc == DSV32_OK)
		rc = write_hf_config(c, any_fp8, dir, err);
	if (rc == DSV32_OK)
		rc = conv_copy_token_files(s->dir, dir, err);
	return rc;
}

/* Hand the names skipped by allow_unknown to the result (best effort: a list, not data). */
static void copy_skipped(const conv_shardset *s, dsv32_conv_result *res)
{
	for (size_t i = 0; i < s->n_unknown; i++) {
		char **nv = realloc(res->skipped, (res->n_skipped + 1) * sizeof *nv);
		if (!nv)
			return;
		res->skipped = nv;
		if (!(nv[res->n_skipped] = strdup(s->unknown[i])))
			return;
		res->n_skipped++;
	}
}

/* Output directory, sink and writing; the output exists only when this returns DSV32_OK. */
static dsv32_status convert_to(const dsv32_ref_to_hf_opts *o, const conv_shardset *s,
			       conv_inputs *in, const out_tensor *v, size_t n, int nfiles,
			       dsv32_config c, uint64_t *done, dsv32_error *err)
{
	conv_outdir od;
	conv_sink sink;
	const char **inputs = calloc(o->n_shards + 1, sizeof *inputs);
	if (!inputs)
		return DSV32_FAIL(err, DSV32_E_NOMEM, "input list");
	for (size_t i = 0; i < o->n_shards; i++)
		inputs[i] = o->shards[i];
	inputs[o->n_shards] = o->config;
	dsv32_status rc = conv_outdir_begin(&od, o->out, o->common.force, inputs, o->n_shards + 1,
					    err);
	free(inputs);
	DSV32_TRY(rc);
	if ((rc = conv_sink_init(&sink, err)) != DSV32_OK)
		goto out_abort;
	sink.done = done;
	sink.progress = o->common.progress;
	sink.progress_user = o->common.progress_user;
	for (size_t i = 0; i < n; i++)
		sink.total += v[i].nbytes;
	rc = write_output(&sink, s, in, v, n, nfiles, c, od.tmp, err);
	conv_sink_free(&sink);
	if (rc == DSV32_OK)
		rc = conv_outdir_commit(&od, err);
out_abort:
	if (rc != DSV32_OK)
		conv_outdir_abort(&od);
	return rc;
}

dsv32_status dsv32_convert_ref_to_hf(const dsv32_ref_to_hf_opts *o, dsv32_conv_result *res,
				     dsv32_error *err)
{
	dsv32_config c;
	bool is_hf;
	conv_shardset s;
	conv_inputs in;
	out_tensor *v = NULL;
	size_t n = 0;
	int nfiles = 0;
	uint64_t done = 0;
	memset(res, 0, sizeof *res);
	if (!o->config)
		return DSV32_FAIL(err, DSV32_E_USAGE, "need --config <reference config json>");
	DSV32_TRY(dsv32_config_load(&c, o->config, &is_hf, err));
	DSV32_TRY(conv_validate_config(&c, o->config, err));
	DSV32_TRY(conv_shardset_open(&s, o->shards, o->n_shards, o->world, c.n_routed_experts,
				     o->common.allow_unknown, err));
	conv_inputs_init(&in);
	dsv32_status rc = dsv32_config_validate_file(&c, is_hf, s.world, o->config, err);
	if (rc == DSV32_OK)
		rc = check_source(&s, &c, &in, err);
	if (rc == DSV32_OK)
		rc = plan_outputs(&s, o, &v, &n, &nfiles, err);
	if (rc == DSV32_OK)
		rc = convert_to(o, &s, &in, v, n, nfiles, c, &done, err);
	if (rc == DSV32_OK) {
		res->tensors = n;
		res->bytes = done;
		res->files = nfiles;
		res->world = s.world;
		copy_skipped(&s, res);
	}
	conv_inputs_free(&in);
	free(v);
	conv_shardset_close(&s);
	return rc;
}
