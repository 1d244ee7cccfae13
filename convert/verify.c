/* verify.c: prove that reference shards and a dense HF checkpoint hold the same model: each
 * tensor reassembled from the shards is byte-identical to the dense one, no key is missing or
 * extra, replicated tensors are identical on every rank, dtypes and world size agree. Writes a
 * JSON report with the SHA-256 of every tensor's data bytes (OpenSSL EVP). Tensors are hashed
 * on all OpenMP threads (OMP_NUM_THREADS); the report does not depend on their number. */
#include "convert/conv_internal.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <omp.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/fsutil.h"

#define VERIFY_SCHEMA "dsv32-verify-shards/1"

typedef struct {
	const dsv32_st_file *f;
	const dsv32_st_entry *e;
	char ref[DSV32_NAME_MAX];
} dense_tensor;

static int cmp_dense(const void *a, const void *b)
{
	return strcmp(((const dense_tensor *)a)->ref, ((const dense_tensor *)b)->ref);
}

typedef struct {
	dsv32_verify_result *res;
	cJSON *root, *tensors, *missing, *extra, *unknown, *problems;
	const dsv32_verify_opts *o;
	uint64_t done, total;
} verify_ctx;

static void problem(verify_ctx *v, dsv32_error *err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Record a failure: listed in the report; the first one becomes err's message. */
static void problem(verify_ctx *v, dsv32_error *err, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (cJSON_GetArraySize(v->problems) == 0)
		DSV32_FAIL(err, DSV32_E_MISMATCH, "%s", msg);
	cJSON_AddItemToArray(v->problems, cJSON_CreateString(msg));
	v->res->ok = false;
}

static void hex32(char out[65], const unsigned char *md)
{
	for (int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* What checking one dense/shard pair found. Computed in parallel (several tensors hashed at
 * once: SHA-256 is the bottleneck of verify-shards), reported afterwards in join order so the
 * report and the first error do not depend on the thread count. */
typedef struct {
	size_t di, sj;
	bool shape_ok;
	char sha[65], dense_sha[65];
	bool differs; /* reassembled bytes differ from the dense ones (at rank / off) */
	int rank;
	uint64_t off;
	int n_bad_rank; /* replicated: ranks > 0 whose copy differs (first bad_max listed) */
	int bad_rank[8];
	uint64_t bad_off[8];
	bool rank0_differs;
} pair_result;

typedef struct {
	EVP_MD_CTX *md;
	const uint8_t *dense;
	bool keep_dense; /* replicated: the other ranks are compared against it afterwards */
	pair_result *r;
	verify_ctx *v;
	bool report_progress; /* only one thread calls the progress callback */
} piece_ctx;

static void add_done(verify_ctx *v, uint64_t n, bool report)
{
	uint64_t done = __atomic_add_fetch(&v->done, n, __ATOMIC_RELAXED);
	if (report && v->o->progress)
		v->o->progress(v->o->progress_user, done, v->total);
}

static dsv32_status check_piece(void *user, const void *p, size_t n, int rank, uint64_t off,
				dsv32_error *err)
{
	piece_ctx *c = user;
	(void)err;
	EVP_DigestUpdate(c->md, p, n);
	if (!c->r->differs && memcmp(p, c->dense + off, n)) {
		const uint8_t *a = p, *b = c->dense + off;
		size_t j = 0;
		while (a[j] == b[j])
			j++;
		c->r->differs = true;
		c->r->rank = rank;
		c->r->off = off + j;
	}
	if (n >= ((size_t)1 << 20) && !c->keep_dense)
		conv_release(c->dense + off, n); /* large pieces: keep memory near one chunk */
	add_done(c->v, n, c->report_progress);
	return DSV32_OK;
}

static cJSON *shape_json(int ndim, const int64_t *shape)
{
	cJSON *a = cJSON_CreateArray();
	for (int i = 0; i < ndim; i++)
		cJSON_AddItemToArray(a, cJSON_CreateNumber((double)shape[i]));
	return a;
}

/* Replicated: every other rank against the dense bytes too. */
static void check_replicas(const conv_shardset *s, const conv_tensor *t, const uint8_t *dense,
			   pair_result *r)
{
	for (int k = 1; t->info.split == DSV32_SPLIT_NONE && k < s->world; k++) {
		const uint8_t *p = dsv32_st_data(t->parts[k].f, t->parts[k].e);
		if (memcmp(p, dense, t->nbytes)) {
			size_t j = 0;
			while (p[j] == dense[j])
				j++;
			if (r->n_bad_rank < (int)(sizeof r->bad_rank / sizeof r->bad_rank[0])) {
				r->bad_rank[r->n_bad_rank] = k;
				r->bad_off[r->n_bad_rank] = j;
			}
			r->n_bad_rank++;
		}
		conv_release(p, t->nbytes);
	}
}

/* Hash and compare one pair (no report output; safe to run on several threads at once). */
static dsv32_status check_pair(verify_ctx *v, const conv_shardset *s, const conv_tensor *t,
			       const dense_tensor *d, pair_result *r, bool report_progress,
			       dsv32_error *err)
{
	r->shape_ok = d->e->ndim == t->ndim && d->e->dtype == t->dtype;
	for (int i = 0; r->shape_ok && i < t->ndim; i++)
		r->shape_ok = d->e->shape[i] == t->full[i];
	if (!r->shape_ok) {
		add_done(v, t->nbytes, report_progress);
		return DSV32_OK;
	}
	const uint8_t *dense = dsv32_st_data(d->f, d->e);
	conv_willneed(dense, t->nbytes);
	piece_ctx c = {EVP_MD_CTX_new(), dense, t->info.split == DSV32_SPLIT_NONE, r, v,
		       report_progress};
	unsigned char md[32];
	unsigned int mdlen = 0;
	if (!c.md || !EVP_DigestInit_ex(c.md, EVP_sha256(), NULL)) {
		EVP_MD_CTX_free(c.md);
		return DSV32_FAIL(err, DSV32_E_INTERNAL, "SHA-256 (OpenSSL EVP) failed");
	}
	r->rank = -1;
	dsv32_status rc = conv_tensor_pieces(t, s->world, check_piece, &c, err);
	EVP_DigestFinal_ex(c.md, md, &mdlen);
	EVP_MD_CTX_free(c.md);
	if (rc != DSV32_OK)
		return rc;
	hex32(r->sha, md);
	r->rank0_differs = r->differs;
	check_replicas(s, t, dense, r);
	if (r->differs || r->n_bad_rank)
		rc = dsv32_sha256_hex(dense, t->nbytes, r->dense_sha, err);
	conv_release(dense, t->nbytes);
	return rc;
}

/* Report one checked pair: its report entry, problems and counts. */
static void report_pair(verify_ctx *v, const conv_shardset *s, const conv_tensor *t,
			const dense_tensor *d, const pair_result *r, dsv32_error *err)
{
	cJSON *j = cJSON_CreateObject();
	cJSON_AddStringToObject(j, "name", t->hf);
	cJSON_AddStringToObject(j, "ref", t->ref);
	cJSON_AddStringToObject(j, "split", dsv32_split_name(t->info.split));
	cJSON_AddStringToObject(j, "dtype", dsv32_dtype_name(t->dtype));
	cJSON_AddItemToObject(j, "shape", shape_json(t->ndim, t->full));
	cJSON_AddItemToArray(v->tensors, j);
	if (!r->shape_ok) {
		char a[96], b[96];
		dsv32_shape_str(a, sizeof a, t->ndim, t->full);
		dsv32_shape_str(b, sizeof b, d->e->ndim, d->e->shape);
		cJSON_AddStringToObject(j, "status", "mismatch");
		problem(v, err, "%s: shards hold %s %s (reassembled), dense holds %s %s", t->hf,
			dsv32_dtype_name(t->dtype), a, dsv32_dtype_name(d->e->dtype), b);
		v->res->mismatched++;
		return;
	}
	cJSON_AddStringToObject(j, "sha256", r->sha);
	if (r->differs)
		problem(v, err, "%s: byte %llu differs from the dense checkpoint (rank %d, %s)", t->hf,
			(unsigned long long)r->off, r->rank, s->paths[r->rank]);
	int listed = r->n_bad_rank < 8 ? r->n_bad_rank : 8;
	for (int k = 0; k < listed; k++)
		problem(v, err, "%s: replicated tensor differs on rank %d (%s) at byte %llu (rank 0: %s)",
			t->hf, r->bad_rank[k], s->paths[r->bad_rank[k]],
			(unsigned long long)r->bad_off[k],
			r->rank0_differs ? "differs too" : "matches the dense one");
	if (r->n_bad_rank > listed)
		problem(v, err, "%s: replicated tensor differs on %d more ranks", t->hf,
			r->n_bad_rank - listed);
	bool bad = r->differs || r->n_bad_rank;
	if (bad)
		cJSON_AddStringToObject(j, "dense_sha256", r->dense_sha);
	cJSON_AddStringToObject(j, "status", bad ? "mismatch" : "identical");
	if (bad)
		v->res->mismatched++;
	else
		v->res->identical++;
}

/* Check every pair on all threads (largest work first would not change the result, only the
 * balance; join order keeps the memory pattern of the sequential version). */
static dsv32_status check_pairs(verify_ctx *v, const conv_shardset *s, const dense_tensor *d,
				pair_result *pr, size_t np, dsv32_error *err)
{
	dsv32_status rc = DSV32_OK;
#pragma omp parallel
	{
		bool report = omp_get_thread_num() == 0; /* the master takes iterations too */
#pragma omp for schedule(dynamic, 1)
		for (size_t k = 0; k < np; k++) {
			dsv32_status mine;
#pragma omp atomic read
			mine = rc;
			if (mine != DSV32_OK)
				continue;
			dsv32_error e = {0};
			mine = check_pair(v, s, &s->t[pr[k].sj], &d[pr[k].di], &pr[k], report, &e);
			if (mine != DSV32_OK) {
#pragma omp critical(verify_error)
				if (rc == DSV32_OK) {
					rc = mine;
					if (err)
						*err = e;
				}
			}
		}
	}
	return rc;
}

static char *summary_text(const verify_ctx *v)
{
	const dsv32_verify_result *r = v->res;
	char buf[2048];
	int n = snprintf(buf, sizeof buf,
			 "verify-shards: %s\n  world size %d, %llu tensors: %llu identical, %llu "
			 "mismatched, %llu missing from the shards, %llu extra in the shards, %llu "
			 "unknown, %llu MTP tensors not compared\n",
			 r->ok ? "OK, the shards and the dense checkpoint hold the same model"
			       : "FAILED",
			 r->world, (unsigned long long)r->tensors, (unsigned long long)r->identical,
			 (unsigned long long)r->mismatched, (unsigned long long)r->missing,
			 (unsigned long long)r->extra, (unsigned long long)r->unknown,
			 (unsigned long long)r->dropped);
	int np = cJSON_GetArraySize(v->problems);
	for (int i = 0; i < np && i < 10 && n > 0 && (size_t)n < sizeof buf; i++)
		n += snprintf(buf + n, sizeof buf - (size_t)n, "  - %s\n",
			      cJSON_GetArrayItem(v->problems, i)->valuestring);
	if (np > 10 && n > 0 && (size_t)n < sizeof buf)
		snprintf(buf + n, sizeof buf - (size_t)n, "  ... %d more (--json or --report FILE lists them all)\n", np - 10);
	return strdup(buf);
}

static dsv32_status load_config(const dsv32_verify_opts *o, int64_t *n_layers, int64_t *n_experts,
				dsv32_error *err)
{
	char path[4200];
	dsv32_config c;
	bool is_hf;
	*n_layers = 0;
	*n_experts = 0;
	if (o->config)
		snprintf(path, sizeof path, "%s", o->config);
	else if (!dsv32_path_join(path, sizeof path, o->dense, "config.json") ||
		 !dsv32_path_exists(path))
		return DSV32_OK;
	DSV32_TRY(dsv32_config_load(&c, path, &is_hf, err));
	*n_layers = c.n_layers;
	*n_experts = c.n_routed_experts;
	return DSV32_OK;
}

/* Map the dense tensors: dropped MTP ones counted, unknown ones listed. */
static dsv32_status map_dense(verify_ctx *v, const dsv32_ckpt *ck, int64_t n_layers,
			      dense_tensor **out, size_t *nout, dsv32_error *err)
{
	size_t n = dsv32_ckpt_count(ck), k = 0;
	dense_tensor *d = calloc(n ? n : 1, sizeof *d);
	if (!d)
		return DSV32_FAIL(err, DSV32_E_NOMEM, "dense tensor table");
	for (size_t i = 0; i < n; i++) {
		dsv32_name_info info;
		d[k].e = dsv32_ckpt_entry_at(ck, i, &d[k].f);
		dsv32_status rc = dsv32_name_hf_to_ref(d[k].e->name, n_layers, d[k].ref,
						       sizeof d[k].ref, &info, NULL);
		if (rc == DSV32_OK && info.dropped) {
			v->res->dropped++;
		} else if (rc == DSV32_OK) {
			k++;
		} else {
			v->res->unknown++;
			cJSON_AddItemToArray(v->unknown, cJSON_CreateString(d[k].e->name));
			if (!v->o->allow_unknown)
				problem(v, err, "%s: dense tensor unknown to the name map (%s)",
					d[k].e->name, dsv32_st_path(d[k].f));
		}
	}
	qsort(d, k, sizeof *d, cmp_dense);
	*out = d;
	*nout = k;
	return DSV32_OK;
}

/* Join dense and shard tensors by reference name: missing and extra ones reported, pairs
 * checked (in parallel) and then reported in join order. */
static dsv32_status join_and_check(verify_ctx *v, const conv_shardset *s, const dense_tensor *d,
				   size_t nd, dsv32_error *err)
{
	for (size_t i = 0; i < nd; i++)
		v->total += d[i].e->end - d[i].e->begin;
	pair_result *pr = calloc(nd ? nd : 1, sizeof *pr);
	if (!pr)
		return DSV32_FAIL(err, DSV32_E_NOMEM, "verify table of %zu tensors", nd);
	size_t np = 0;
	for (size_t i = 0, j = 0; i < nd && j < s->n;) {
		int c = strcmp(d[i].ref, s->t[j].ref);
		if (c == 0)
			pr[np++] = (pair_result){.di = i, .sj = j};
		i += c <= 0;
		j += c >= 0;
	}
	dsv32_status rc = check_pairs(v, s, d, pr, np, err);
	size_t i = 0, j = 0, k = 0;
	while (rc == DSV32_OK && (i < nd || j < s->n)) {
		int c = i == nd ? 1 : j == s->n ? -1 : strcmp(d[i].ref, s->t[j].ref);
		if (c < 0) {
			v->res->missing++;
			cJSON_AddItemToArray(v->missing, cJSON_CreateString(d[i].e->name));
			problem(v, err, "%s: in the dense checkpoint, missing from the shards (as %s)",
				d[i].e->name, d[i].ref);
			add_done(v, d[i].e->end - d[i].e->begin, true);
			i++;
		} else if (c > 0) {
			v->res->extra++;
			cJSON_AddItemToArray(v->extra, cJSON_CreateString(s->t[j].ref));
			problem(v, err, "%s: in the shards, missing from the dense checkpoint (as %s)",
				s->t[j].ref, s->t[j].hf);
			j++;
		} else {
			v->res->tensors++;
			report_pair(v, s, &s->t[j], &d[i], &pr[k++], err);
			i++;
			j++;
		}
	}
	free(pr);
	return rc;
}

static void finish_report(verify_ctx *v, const conv_shardset *s)
{
	dsv32_verify_result *r = v->res;
	cJSON_AddBoolToObject(v->root, "ok", r->ok);
	cJSON_AddNumberToObject(v->root, "world_size", r->world);
	cJSON_AddStringToObject(v->root, "dense", v->o->dense);
	cJSON *sh = cJSON_AddArrayToObject(v->root, "shards");
	for (int k = 0; s && k < s->world; k++)
		cJSON_AddItemToArray(sh, cJSON_CreateString(s->paths[k]));
	cJSON *cnt = cJSON_AddObjectToObject(v->root, "counts");
	cJSON_AddNumberToObject(cnt, "tensors", (double)r->tensors);
	cJSON_AddNumberToObject(cnt, "identical", (double)r->identical);
	cJSON_AddNumberToObject(cnt, "mismatched", (double)r->mismatched);
	cJSON_AddNumberToObject(cnt, "missing_in_shards", (double)r->missing);
	cJSON_AddNumberToObject(cnt, "extra_in_shards", (double)r->extra);
	cJSON_AddNumberToObject(cnt, "unknown", (double)r->unknown);
	cJSON_AddNumberToObject(cnt, "dropped_mtp", (double)r->dropped);
	cJSON_AddItemToObject(v->root, "problems", v->problems);
	cJSON_AddItemToObject(v->root, "missing_in_shards", v->missing);
	cJSON_AddItemToObject(v->root, "extra_in_shards", v->extra);
	cJSON_AddItemToObject(v->root, "unknown", v->unknown);
	cJSON_AddItemToObject(v->root, "tensors", v->tensors);
	r->summary = summary_text(v);
	r->report_json = cJSON_Print(v->root);
	cJSON_Delete(v->root);
}

/* --dense pointed at reference shards (the two options swapped, or the wrong directory) would
 * otherwise run and report every tensor as a problem: refuse it as an input error instead. */
static dsv32_status check_dense_is_hf(const char *dense, dsv32_error *err)
{
	DIR *dir = opendir(dense);
	if (!dir)
		return DSV32_OK; /* a file, or unreadable: dsv32_ckpt_open names the problem */
	struct dirent *e;
	int rank, world;
	while ((e = readdir(dir)))
		if (dsv32_shard_file_parse(e->d_name, &rank, &world))
			break;
	dsv32_status rc = DSV32_OK;
	if (e)
		rc = DSV32_FAIL(err, DSV32_E_USAGE,
				"--dense %s: not an HF checkpoint (it holds reference shards such as "
				"%s; pass those to --shards and the dense HF checkpoint to --dense)",
				dense, e->d_name);
	closedir(dir);
	return rc;
}

dsv32_status dsv32_verify_shards(const dsv32_verify_opts *o, dsv32_verify_result *res,
				 dsv32_error *err)
{
	int64_t n_layers, n_experts;
	dsv32_ckpt *ck = NULL;
	conv_shardset s;
	dense_tensor *d = NULL;
	size_t nd = 0;
	memset(res, 0, sizeof *res);
	if (!o->dense)
		return DSV32_FAIL(err, DSV32_E_USAGE, "need --dense <HF checkpoint dir>");
	DSV32_TRY(check_dense_is_hf(o->dense, err));
	DSV32_TRY(load_config(o, &n_layers, &n_experts, err));
	DSV32_TRY(dsv32_ckpt_open(&ck, o->dense, err));
	verify_ctx v = {res, cJSON_CreateObject(), cJSON_CreateArray(), cJSON_CreateArray(),
			cJSON_CreateArray(), cJSON_CreateArray(), cJSON_CreateArray(), o, 0, 0};
	cJSON_AddStringToObject(v.root, "schema", VERIFY_SCHEMA);
	cJSON_AddStringToObject(v.root, "hash", "sha256 of each tensor's data bytes (OpenSSL EVP)");
	res->ok = true;
	dsv32_status rc = conv_shardset_open(&s, o->shards, o->n_shards, o->world, n_experts,
					     o->allow_unknown, err);
	if (rc == DSV32_E_SHAPE || rc == DSV32_E_DTYPE || rc == DSV32_E_MISMATCH) {
		/* The shards contradict each other: a verification failure, reported as such. */
		problem(&v, NULL, "%s", err ? err->what : "inconsistent shards");
		if (err)
			err->code = DSV32_E_MISMATCH;
		finish_report(&v, NULL);
		dsv32_ckpt_close(ck);
		return DSV32_E_MISMATCH;
	}
	if (rc != DSV32_OK) {
		cJSON_Delete(v.root);
		cJSON_Delete(v.tensors);
		cJSON_Delete(v.missing);
		cJSON_Delete(v.extra);
		cJSON_Delete(v.unknown);
		cJSON_Delete(v.problems);
		dsv32_ckpt_close(ck);
		memset(res, 0, sizeof *res);
		return rc;
	}
	res->world = s.world;
	for (size_t k = 0; k < s.n_unknown; k++) {
		res->unknown++;
		cJSON_AddItemToArray(v.unknown, cJSON_CreateString(s.unknown[k]));
	}
	rc = map_dense(&v, ck, n_layers, &d, &nd, err);
	if (rc == DSV32_OK)
		rc = join_and_check(&v, &s, d, nd, err);
	finish_report(&v, &s);
	free(d);
	conv_shardset_close(&s);
	dsv32_ckpt_close(ck);
	if (rc != DSV32_OK) {
		dsv32_verify_result_free(res);
		return rc;
	}
	if (!res->ok) {
		uint64_t bad = res->mismatched + res->missing + res->extra +
			       (o->allow_unknown ? 0 : res->unknown);
		dsv32_error_prefix(err, "%llu problem%s; first", (unsigned long long)bad,
				   bad == 1 ? "" : "s");
		return DSV32_E_MISMATCH;
	}
	return DSV32_OK;
}

void dsv32_verify_result_free(dsv32_verify_result *r)
{
	free(r->report_json);
	free(r->summary);
	memset(r, 0, sizeof *r);
}
