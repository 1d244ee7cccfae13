/* hf_to_ref.c: HF checkpoint -> reference shards model{r}-mp{W}.safetensors, laid out as
 * DeepSeek's convert.py writes them (docs/spec/checkpoints.md §6.1): reference names, MTP layers
 * dropped, dim-0/dim-1 slices, routed experts whole on rank e/(E/W), the rest replicated,
 * dtypes kept; in each file the tensors sorted by dtype then name (safetensors' save_file).
 * All W files are written in one pass over the source, which is read once. */
#include "convert/conv_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/fsutil.h"

typedef struct {
	const dsv32_st_file *f;
	const dsv32_st_entry *e;
	char ref[DSV32_NAME_MAX];
	dsv32_name_info info;
} src_tensor;

static int cmp_src(const void *a, const void *b)
{
	const src_tensor *x = a, *y = b;
	return conv_cmp_st_order(x->e->dtype, x->ref, y->e->dtype, y->ref);
}

/* Directory of a checkpoint path (itself if a directory). */
static void ckpt_dir(char *out, size_t len, const char *path)
{
	if (dsv32_path_is_dir(path)) {
		snprintf(out, len, "%s", path);
		return;
	}
	const char *slash = strrchr(path, '/');
	if (slash)
		snprintf(out, len, "%.*s", (int)(slash - path), path);
	else
		snprintf(out, len, ".");
}

static dsv32_status add_skipped(dsv32_conv_result *res, const char *name, dsv32_error *err)
{
	char **nv = realloc(res->skipped, (res->n_skipped + 1) * sizeof *nv);
	if (!nv)
		return DSV32_FAIL(err, DSV32_E_NOMEM, "skipped list");
	res->skipped = nv;
	if (!(nv[res->n_skipped] = strdup(name)))
		return DSV32_FAIL(err, DSV32_E_NOMEM, "skipped list");
	res->n_skipped++;
	return DSV32_OK;
}

/* Map every checkpoint tensor; fills *out sorted in convert.py's file order. */
static dsv32_status map_sources(const dsv32_ckpt *ck, const dsv32_config *c, bool allow_unknown,
				src_tensor **out, size_t *nout, dsv32_conv_result *res,
				dsv32_error *err)
{
	size_t n = dsv32_ckpt_count(ck), k = 0;
	src_tensor *v = calloc(n ? n : 1, sizeof *v);
	if (!v)
		return DSV32_FAIL(err, DSV32_E_NOMEM, "tensor table of %zu entries", n);
	for (size_t i = 0; i < n; i++) {
		src_tensor *s = &v[k];
		s->e = dsv32_ckpt_entry_at(ck, i, &s->f);
		dsv32_status rc = dsv32_name_hf_to_ref(s->e->name, c->n_layers, s->ref, sizeof s->ref,
						       &s->info, err);
		if (rc == DSV32_E_NOTFOUND && allow_unknown)
			rc = add_skipped(res, s->e->name, err);
		else if (rc == DSV32_OK && s->info.dropped)
			res->dropped++;
		else if (rc == DSV32_OK)
			k++;
		if (rc != DSV32_OK) {
			dsv32_error_prefix(err, "%s", dsv32_st_path(s->f));
			free(v);
			return rc;
		}
	}
	qsort(v, k, sizeof *v, cmp_src);
	*out = v;
	*nout = k;
	return DSV32_OK;
}

typedef struct {
	dsv32_st_writer **w; /* [W] */
	int world;
	conv_sink sink;
	uint64_t done;
	conv_inputs in; /* the mapped source files, watched for size changes */
} shard_out;

static dsv32_status declare_all(shard_out *so, const src_tensor *v, size_t n, int64_t n_experts,
				const char *dir, uint64_t *total, dsv32_error *err)
{
	for (int r = 0; r < so->world; r++) {
		char name[64], path[4200];
		dsv32_shard_file_name(name, sizeof name, r, so->world);
		if (!dsv32_path_join(path, sizeof path, dir, name))
			return DSV32_FAIL(err, DSV32_E_USAGE, "%s: path too long", dir);
		DSV32_TRY(dsv32_st_writer_open(&so->w[r], path, err));
	}
	*total = 0;
	for (size_t i = 0; i < n; i++) {
		const src_tensor *s = &v[i];
		for (int r = 0; r < so->world; r++) {
			if (!dsv32_rank_holds(&s->info, r, so->world, n_experts))
				continue;
			dsv32_slice sl;
			DSV32_TRY(dsv32_slice_for_rank(&sl, s->e->name, s->info.split, s->e->dtype,
						       s->e->ndim, s->e->shape, r, so->world, err));
			DSV32_TRY(dsv32_st_writer_declare(so->w[r], s->ref, s->e->dtype, sl.ndim, sl.shape,
							  err));
			*total += sl.nbytes;
		}
	}
	return DSV32_OK;
}

static dsv32_status write_all(shard_out *so, const src_tensor *v, size_t n, int64_t n_experts,
			      dsv32_error *err)
{
	for (size_t i = 0; i < n; i++) {
		const src_tensor *s = &v[i];
		const uint8_t *base = dsv32_st_data(s->f, s->e);
		conv_willneed(base, (size_t)(s->e->end - s->e->begin));
		for (int r = 0; r < so->world; r++) {
			if (!dsv32_rank_holds(&s->info, r, so->world, n_experts))
				continue;
			dsv32_slice sl;
			DSV32_TRY(dsv32_slice_for_rank(&sl, s->e->name, s->info.split, s->e->dtype,
						       s->e->ndim, s->e->shape, r, so->world, err));
			so->sink.w = so->w[r];
			for (uint64_t j = 0; j < sl.runs; j++)
				DSV32_TRY(conv_sink_put(&so->sink, base + sl.offset + j * sl.stride,
							(size_t)sl.run_bytes, err));
			DSV32_TRY(conv_sink_flush(&so->sink, err));
			if (sl.runs == 1 && s->info.split == DSV32_SPLIT_DIM0)
				conv_release(base + sl.offset, (size_t)sl.run_bytes);
		}
		conv_release(base, (size_t)(s->e->end - s->e->begin));
		conv_inputs_tensor_done(&so->in);
	}
	/* a source cut after its pages were read faulted nothing: its size tells */
	DSV32_TRY(conv_inputs_check(&so->in, err));
	for (int r = 0; r < so->world; r++) {
		dsv32_st_writer *w = so->w[r];
		so->w[r] = NULL;
		DSV32_TRY(dsv32_st_writer_commit(w, err));
	}
	return DSV32_OK;
}

static dsv32_status write_ref_config(const dsv32_config *c, const char *dir, dsv32_error *err)
{
	char path[4200];
	char *json = dsv32_config_to_ref_json(c);
	if (!json)
		return DSV32_FAIL(err, DSV32_E_NOMEM, "reference config JSON");
	dsv32_path_join(path, sizeof path, dir, "config.json");
	dsv32_status rc = dsv32_write_file_atomic(path, json, strlen(json), err);
	free(json);
	return rc;
}

static dsv32_status load_config(dsv32_config *c, const dsv32_hf_to_ref_opts *o, const char *dir,
				dsv32_error *err)
{
	char path[4200];
	bool is_hf;
	if (o->config)
		snprintf(path, sizeof path, "%s", o->config);
	else
		dsv32_path_join(path, sizeof path, dir, "config.json");
	DSV32_TRY(dsv32_config_load(c, path, &is_hf, err));
	DSV32_TRY(dsv32_config_validate_file(c, is_hf, o->world, path, err));
	DSV32_TRY(conv_validate_config(c, path, err));
	if (c->n_routed_experts % o->world)
		return DSV32_FAIL(err, DSV32_E_SHAPE, "%s: n_routed_experts %lld does not divide by --mp %d",
				  path, (long long)c->n_routed_experts, o->world);
	return DSV32_OK;
}

static bool ckpt_find(const void *src, const char *hf, int *ndim, const int64_t **shape)
{
	const dsv32_st_entry *e = dsv32_ckpt_find(src, hf, NULL);
	if (e) {
		*ndim = e->ndim;
		*shape = e->shape;
	}
	return e != NULL;
}

/* The checkpoint holds what the config says, before any output exists; its files are then
 * watched for size changes while they are read. */
static dsv32_status check_source(const dsv32_ckpt *ck, const dsv32_config *c, const char *label,
				 conv_inputs *in, dsv32_error *err)
{
	bool fp8 = false;
	for (size_t i = 0; i < dsv32_ckpt_count(ck); i++) {
		dsv32_dtype t = dsv32_ckpt_entry_at(ck, i, NULL)->dtype;
		fp8 |= t == DSV32_F8_E4M3 || t == DSV32_F8_E5M2;
	}
	DSV32_TRY(conv_validate_tensors(c, fp8, ckpt_find, ck, label, err));
	for (size_t i = 0; i < dsv32_ckpt_file_count(ck); i++)
		DSV32_TRY(conv_inputs_add(in, dsv32_ckpt_file_at(ck, i), err));
	return DSV32_OK;
}

dsv32_status dsv32_convert_hf_to_ref(const dsv32_hf_to_ref_opts *o, dsv32_conv_result *res,
				     dsv32_error *err)
{
	dsv32_config c;
	char dir[4096];
	dsv32_ckpt *ck = NULL;
	src_tensor *v = NULL;
	size_t n = 0;
	conv_outdir od;
	memset(res, 0, sizeof *res);
	if (!o->checkpoint || o->world <= 0)
		return DSV32_FAIL(err, DSV32_E_USAGE, "need --checkpoint and --mp W >= 1");
	ckpt_dir(dir, sizeof dir, o->checkpoint);
	DSV32_TRY(load_config(&c, o, dir, err));
	DSV32_TRY(dsv32_ckpt_open(&ck, o->checkpoint, err));
	shard_out so = {.world = o->world};
	conv_inputs_init(&so.in);
	dsv32_status rc = map_sources(ck, &c, o->common.allow_unknown, &v, &n, res, err);
	if (rc == DSV32_OK)
		rc = check_source(ck, &c, o->checkpoint, &so.in, err);
	if (rc != DSV32_OK)
		goto out_close_ckpt;
	const char *inputs[2] = {o->checkpoint, o->config};
	if ((rc = conv_outdir_begin(&od, o->out, o->common.force, inputs, 2, err)) != DSV32_OK)
		goto out_close_ckpt;
	so.w = calloc((size_t)o->world, sizeof *so.w);
	if (!so.w) {
		rc = DSV32_FAIL(err, DSV32_E_NOMEM, "writers");
		goto out_abort_dir;
	}
	if ((rc = conv_sink_init(&so.sink, err)) != DSV32_OK)
		goto out_abort_dir;
	so.sink.done = &so.done;
	so.sink.progress = o->common.progress;
	so.sink.progress_user = o->common.progress_user;
	rc = declare_all(&so, v, n, c.n_routed_experts, od.tmp, &so.sink.total, err);
	if (rc == DSV32_OK)
		rc = conv_inputs_explain(&so.in, write_all(&so, v, n, c.n_routed_experts, err), err);
	if (rc == DSV32_OK)
		rc = write_ref_config(&c, od.tmp, err);
	if (rc == DSV32_OK)
		rc = conv_copy_token_files(dir, od.tmp, err);
	if (rc == DSV32_OK)
		rc = conv_outdir_commit(&od, err);
	if (rc == DSV32_OK) {
		res->bytes = so.done;
		res->files = o->world;
		res->world = o->world;
		for (size_t i = 0; i < n; i++)
			for (int r = 0; r < o->world; r++)
				res->tensors += dsv32_rank_holds(&v[i].info, r, o->world, c.n_routed_experts);
	}
out_abort_dir:
	for (int r = 0; so.w && r < o->world; r++)
		if (so.w[r])
			dsv32_st_writer_abort(so.w[r]);
	free(so.w);
	conv_sink_free(&so.sink);
	if (rc != DSV32_OK)
		conv_outdir_abort(&od);
out_close_ckpt:
	conv_inputs_free(&so.in);
	free(v);
	dsv32_ckpt_close(ck);
	return rc;
}

void dsv32_conv_result_free(dsv32_conv_result *r)
{
	for (size_t i = 0; i < r->n_skipped; i++)
		free(r->skipped[i]);
	free(r->skipped);
	memset(r, 0, sizeof *r);
}
