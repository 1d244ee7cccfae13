/* shardset.c: a set of reference rank files model{r}-mp{W}.safetensors opened together and
 * joined by tensor name, with the checks of docs/spec/checkpoints.md §8 (ranks, world size, shapes
 * between ranks, expert placement), and the piecewise walk that reassembles a full tensor. */
#include "convert/conv_internal.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fsutil.h"

typedef struct {
	char *path;
	char real[PATH_MAX];
	int rank, world;
} shard_path;

typedef struct {
	const char *ref;
	int rank;
	const dsv32_st_entry *e;
} item;

static const char *base_name(const char *p)
{
	const char *s = strrchr(p, '/');
	return s ? s + 1 : p;
}

static int cmp_shard_path(const void *a, const void *b)
{
	const shard_path *x = a, *y = b;
	return strcmp(x->path, y->path);
}

static dsv32_status add_path(shard_path **v, size_t *n, size_t *cap, const char *path,
			     dsv32_error *err)
{
	if (*n == *cap) {
		size_t nc = *cap ? 2 * *cap : 16;
		shard_path *nv = realloc(*v, nc * sizeof *nv);
		if (!nv)
			return DSV32_FAIL(err, DSV32_E_NOMEM, "shard list");
		*v = nv;
		*cap = nc;
	}
	shard_path *s = &(*v)[(*n)];
	memset(s, 0, sizeof *s);
	if (!(s->path = strdup(path)))
		return DSV32_FAIL(err, DSV32_E_NOMEM, "shard list");
	(*n)++;
	if (!realpath(path, s->real))
		return DSV32_FAIL_SYS(err, DSV32_E_NOTFOUND, errno, "%s: %s", path, strerror(errno));
	if (!dsv32_shard_file_parse(base_name(path), &s->rank, &s->world))
		return DSV32_FAIL(err, DSV32_E_FORMAT,
				  "%s: not a reference shard file name (model{rank}-mp{world}.safetensors)",
				  path);
	return DSV32_OK;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);
	return n >= k && !strcmp(s + n - k, suffix);
}

static dsv32_status collect_paths(shard_path **v, size_t *n, const char *const *inputs,
				  size_t n_inputs, dsv32_error *err)
{
	size_t cap = 0;
	if (n_inputs == 0)
		return DSV32_FAIL(err, DSV32_E_USAGE, "no shard files given (--shards)");
	for (size_t i = 0; i < n_inputs; i++) {
		if (!dsv32_path_is_dir(inputs[i])) {
			DSV32_TRY(add_path(v, n, &cap, inputs[i], err));
			continue;
		}
		DIR *dp = opendir(inputs[i]);
		if (!dp)
			return DSV32_FAIL_SYS(err, DSV32_E_IO, errno, "%s: cannot list: %s", inputs[i],
					      strerror(errno));
		size_t before = *n;
		struct dirent *de;
		dsv32_status rc = DSV32_OK;
		while (rc == DSV32_OK && (de = readdir(dp))) {
			char p[4096];
			if (!ends_with(de->d_name, ".safetensors"))
				continue;
			if (!dsv32_path_join(p, sizeof p, inputs[i], de->d_name))
				rc = DSV32_FAIL(err, DSV32_E_USAGE, "%s: path too long", de->d_name);
			else
				rc = add_path(v, n, &cap, p, err);
		}
		closedir(dp);
		DSV32_TRY(rc);
		if (*n == before)
			return DSV32_FAIL(err, DSV32_E_NOTFOUND,
					  "%s: no model{rank}-mp{world}.safetensors files in it", inputs[i]);
	}
	qsort(*v, *n, sizeof **v, cmp_shard_path);
	return DSV32_OK;
}

/* Ranks 0..W-1 each exactly once, one world size throughout; duplicates of one real path
 * (a file given twice) are dropped. Fills s->paths[rank]. */
static dsv32_status assign_ranks(conv_shardset *s, shard_path *v, size_t n, dsv32_error *err)
{
	int W = v[0].world;
	for (size_t i = 1; i < n; i++)
		if (v[i].world != W)
			return DSV32_FAIL(err, DSV32_E_FORMAT,
					  "world size mismatch: %s is from mp%d but %s is from mp%d",
					  v[i].path, v[i].world, v[0].path, W);
	s->world = W;
	s->paths = calloc((size_t)W, sizeof *s->paths);
	s->files = calloc((size_t)W, sizeof *s->files);
	if (!s->paths || !s->files)
		return DSV32_FAIL(err, DSV32_E_NOMEM, "shard table");
	const shard_path **by_rank = calloc((size_t)W, sizeof *by_rank);
	if (!by_rank)
		return DSV32_FAIL(err, DSV32_E_NOMEM, "shard table");
	dsv32_status rc = DSV32_OK;
	for (size_t i = 0; i < n && rc == DSV32_OK; i++) {
		const shard_path *o = by_rank[v[i].rank];
		if (o && !strcmp(o->real, v[i].real))
			continue;
		if (o)
			rc = DSV32_FAIL(err, DSV32_E_FORMAT, "two files claim rank %d of mp%d: %s and %s",
					v[i].rank, W, o->path, v[i].path);
		by_rank[v[i].rank] = &v[i];
	}
	for (int r = 0; r < W && rc == DSV32_OK; r++) {
		if (!by_rank[r]) {
			char want[64];
			dsv32_shard_file_name(want, sizeof want, r, W);
			rc = DSV32_FAIL(err, DSV32_E_NOTFOUND,
					"rank %d of mp%d missing: no %s among the shards (found %s, ...)", r,
					W, want, v[0].path);
		} else if (!(s->paths[r] = strdup(by_rank[r]->path))) {
			rc = DSV32_FAIL(err, DSV32_E_NOMEM, "shard table");
		}
	}
	free(by_rank);
	return rc;
}

static int cmp_item(const void *a, const void *b)
{
	const item *x = a, *y = b;
	int c = strcmp(x->ref, y->ref);
	return c ? c : x->rank - y->rank;
}

static dsv32_status note_unknown(conv_shardset *s, const char *name, dsv32_error *err)
{
	for (size_t i = 0; i < s->n_unknown; i++)
		if (!strcmp(s->unknown[i], name))
			return DSV32_OK;
	char **nv = realloc(s->unknown, (s->n_unknown + 1) * sizeof *nv);
	if (!nv)
		return DSV32_FAIL(err, DSV32_E_NOMEM, "unknown list");
	s->unknown = nv;
	if (!(s->unknown[s->n_unknown] = strdup(name)))
		return DSV32_FAIL(err, DSV32_E_NOMEM, "unknown list");
	s->n_unknown++;
	return DSV32_OK;
}

/* Every (rank, tensor) of every file, the unknown ones skipped or fatal. */
static dsv32_status gather_items(conv_shardset *s, bool allow_unknown, item **out, size_t *nout,
				 dsv32_error *err)
{
	size_t total = 0, k = 0;
	for (int r = 0; r < s->world; r++)
		total += dsv32_st_count(s->files[r]);
	item *v = malloc((total ? total : 1) * sizeof *v);
	if (!v)
		return DSV32_FAIL(err, DSV32_E_NOMEM, "tensor table of %zu entries", total);
	for (int r = 0; r < s->world; r++) {
		for (size_t i = 0; i < dsv32_st_count(s->files[r]); i++) {
			const dsv32_st_entry *e = dsv32_st_entry_at(s->files[r], i);
			char hf[DSV32_NAME_MAX];
			dsv32_status rc = dsv32_name_ref_to_hf(e->name, hf, sizeof hf, NULL, err);
			if (rc == DSV32_E_NOTFOUND && allow_unknown) {
				if ((rc = note_unknown(s, e->name, err)) == DSV32_OK)
					continue;
			}
			if (rc != DSV32_OK) {
				free(v);
				return dsv32_error_prefix(err, "%s (rank %d)", s->paths[r], r);
			}
			v[k++] = (item){e->name, r, e};
		}
	}
	qsort(v, k, sizeof *v, cmp_item);
	*out = v;
	*nout = k;
	return DSV32_OK;
}

static void shape_text(char *buf, size_t len, const dsv32_st_entry *e)
{
	dsv32_shape_str(buf, len, e->ndim, e->shape);
}

/* Check one non-expert tensor: on every rank, same dtype and local shape. */
static dsv32_status check_spread(const conv_shardset *s, conv_tensor *t, dsv32_error *err)
{
	const conv_part *p0 = &t->parts[0];
	for (int r = 0; r < s->world; r++) {
		const conv_part *p = &t->parts[r];
		if (!p->e)
			return DSV32_FAIL(err, DSV32_E_MISMATCH, "%s: missing on rank %d (%s); it is %s",
					  t->ref, r, s->paths[r],
					  t->info.split == DSV32_SPLIT_NONE ? "replicated on every rank"
									    : "split across every rank");
		if (!p0->e) {
			p0 = p;
			continue;
		}
		char a[96], b[96];
		if (p->e->dtype != p0->e->dtype)
			return DSV32_FAIL(err, DSV32_E_DTYPE, "%s: dtype %s on rank %d (%s) but %s on rank 0 (%s)",
					  t->ref, dsv32_dtype_name(p->e->dtype), r, s->paths[r],
					  dsv32_dtype_name(p0->e->dtype), s->paths[0]);
		bool same = p->e->ndim == p0->e->ndim;
		for (int d = 0; same && d < p->e->ndim; d++)
			same = p->e->shape[d] == p0->e->shape[d];
		if (!same) {
			shape_text(a, sizeof a, p->e);
			shape_text(b, sizeof b, p0->e);
			return DSV32_FAIL(err, DSV32_E_SHAPE,
					  "%s: shape %s on rank %d (%s) but %s on rank 0 (%s)%s", t->ref, a,
					  r, s->paths[r], b, s->paths[0],
					  t->info.split == DSV32_SPLIT_NONE ? ""
									    : " (a shard from another world size?)");
		}
	}
	t->dtype = p0->e->dtype;
	t->ndim = p0->e->ndim;
	return dsv32_full_shape(t->full, t->ref, t->info.split, t->ndim, p0->e->shape, s->world, err);
}

static dsv32_status check_expert(const conv_shardset *s, conv_tensor *t, dsv32_error *err)
{
	int owner = dsv32_expert_owner(t->info.expert, s->n_experts, s->world);
	int held = -1;
	for (int r = 0; r < s->world; r++) {
		if (!t->parts[r].e)
			continue;
		if (held >= 0)
			return DSV32_FAIL(err, DSV32_E_MISMATCH,
					  "%s: routed expert held by rank %d (%s) and rank %d (%s); it "
					  "belongs to one rank", t->ref, held, s->paths[held], r, s->paths[r]);
		held = r;
	}
	if (owner < 0)
		return DSV32_FAIL(err, DSV32_E_SHAPE,
				  "%s: expert %lld with %lld routed experts at world size %d: experts "
				  "must divide evenly across ranks", t->ref, (long long)t->info.expert,
				  (long long)s->n_experts, s->world);
	if (held != owner)
		return DSV32_FAIL(err, DSV32_E_MISMATCH,
				  "%s: on rank %d (%s), but expert %lld of %lld belongs to rank %d at "
				  "world size %d (a shard from another world size?)", t->ref, held,
				  s->paths[held], (long long)t->info.expert, (long long)s->n_experts, owner,
				  s->world);
	const dsv32_st_entry *e = t->parts[held].e;
	t->dtype = e->dtype;
	t->ndim = e->ndim;
	memcpy(t->full, e->shape, sizeof t->full);
	return DSV32_OK;
}

static int cmp_tensor_ref(const void *a, const void *b)
{
	return strcmp(((const conv_tensor *)a)->ref, ((const conv_tensor *)b)->ref);
}

/* Every expert 0..E-1 of each (layer, projection) that appears at all is present. */
static dsv32_status check_experts_complete(const conv_shardset *s, dsv32_error *err)
{
	for (size_t i = 0; i < s->n; i++) {
		const conv_tensor *t = &s->t[i];
		if (t->info.split != DSV32_SPLIT_EXPERT || t->info.expert != 0)
			continue;
		/* t is expert 0 of its group: look up the others by name. */
		const char *tail = strstr(t->ref, ".experts.0.");
		if (!tail)
			continue;
		tail += strlen(".experts.0.");
		for (int64_t x = 1; x < s->n_experts; x++) {
			char name[DSV32_NAME_MAX];
			snprintf(name, sizeof name, "layers.%lld.ffn.experts.%lld.%s",
				 (long long)t->info.layer, (long long)x, tail);
			conv_tensor key = {.ref = name};
			if (!bsearch(&key, s->t, s->n, sizeof *s->t, cmp_tensor_ref)) {
				int owner = dsv32_expert_owner(x, s->n_experts, s->world);
				return DSV32_FAIL(err, DSV32_E_MISMATCH, "%s: missing; it belongs on rank %d (%s)",
						  name, owner, owner >= 0 ? s->paths[owner] : "?");
			}
		}
	}
	/* and an expert group without its expert 0 */
	for (size_t i = 0; i < s->n; i++) {
		const conv_tensor *t = &s->t[i];
		if (t->info.split != DSV32_SPLIT_EXPERT || t->info.expert == 0)
			continue;
		const char *tail = strchr(strstr(t->ref, ".experts.") + 9, '.') + 1;
		char name[DSV32_NAME_MAX];
		snprintf(name, sizeof name, "layers.%lld.ffn.experts.0.%s", (long long)t->info.layer,
			 tail);
		conv_tensor key = {.ref = name};
		if (!bsearch(&key, s->t, s->n, sizeof *s->t, cmp_tensor_ref))
			return DSV32_FAIL(err, DSV32_E_MISMATCH, "%s: missing; it belongs on rank 0 (%s)",
					  name, s->paths[0]);
	}
	return DSV32_OK;
}

static dsv32_status build_table(conv_shardset *s, item *v, size_t nv, dsv32_error *err)
{
	size_t groups = 0;
	for (size_t i = 0; i < nv; i++)
		groups += (i == 0 || strcmp(v[i].ref, v[i - 1].ref));
	s->t = calloc(groups ? groups : 1, sizeof *s->t);
	if (!s->t)
		return DSV32_FAIL(err, DSV32_E_NOMEM, "tensor table");
	int64_t max_expert = -1;
	for (size_t i = 0; i < nv; i++) {
		if (i == 0 || strcmp(v[i].ref, v[i - 1].ref)) {
			conv_tensor *t = &s->t[s->n++];
			t->ref = v[i].ref;
			DSV32_TRY(dsv32_name_ref_to_hf(t->ref, t->hf, sizeof t->hf, &t->info, err));
			if (!(t->parts = calloc((size_t)s->world, sizeof *t->parts)))
				return DSV32_FAIL(err, DSV32_E_NOMEM, "tensor table");
			if (t->info.expert > max_expert)
				max_expert = t->info.expert;
		}
		conv_tensor *t = &s->t[s->n - 1];
		t->parts[v[i].rank] = (conv_part){s->files[v[i].rank], v[i].e};
	}
	if (s->n_experts <= 0)
		s->n_experts = max_expert + 1;
	for (size_t i = 0; i < s->n; i++) {
		conv_tensor *t = &s->t[i];
		DSV32_TRY(t->info.split == DSV32_SPLIT_EXPERT ? check_expert(s, t, err)
							      : check_spread(s, t, err));
		int64_t numel = dsv32_shape_numel(t->ndim, t->full);
		t->nbytes = (uint64_t)numel * dsv32_dtype_size(t->dtype);
	}
	return check_experts_complete(s, err);
}

dsv32_status conv_shardset_open(conv_shardset *s, const char *const *inputs, size_t n_inputs,
				int expect_world, int64_t n_experts, bool allow_unknown,
				dsv32_error *err)
{
	shard_path *v = NULL;
	size_t n = 0;
	item *items = NULL;
	size_t ni = 0;
	memset(s, 0, sizeof *s);
	s->n_experts = n_experts;
	dsv32_status rc = collect_paths(&v, &n, inputs, n_inputs, err);
	if (rc == DSV32_OK && expect_world > 0 && v[0].world != expect_world)
		rc = DSV32_FAIL(err, DSV32_E_FORMAT,
				"world size %d expected (--mp) but the shard files are from mp%d (%s)",
				expect_world, v[0].world, v[0].path);
	if (rc == DSV32_OK)
		rc = assign_ranks(s, v, n, err);
	for (int r = 0; rc == DSV32_OK && r < s->world; r++)
		rc = dsv32_st_open(&s->files[r], s->paths[r], err);
	if (rc == DSV32_OK) {
		const char *slash = strrchr(s->paths[0], '/');
		if (slash)
			snprintf(s->dir, sizeof s->dir, "%.*s", (int)(slash - s->paths[0]), s->paths[0]);
		else
			snprintf(s->dir, sizeof s->dir, ".");
		rc = gather_items(s, allow_unknown, &items, &ni, err);
	}
	if (rc == DSV32_OK)
		rc = build_table(s, items, ni, err);
	free(items);
	for (size_t i = 0; i < n; i++)
		free(v[i].path);
	free(v);
	if (rc != DSV32_OK)
		conv_shardset_close(s);
	return rc;
}

dsv32_status conv_shard_world(const char *const *inputs, size_t n_inputs, int *world,
			      dsv32_error *err)
{
	shard_path *v = NULL;
	size_t n = 0;
	dsv32_status rc = collect_paths(&v, &n, inputs, n_inputs, err);
	if (rc == DSV32_OK)
		*world = v[0].world;
	for (size_t i = 0; i < n; i++)
		free(v[i].path);
	free(v);
	return rc;
}

void conv_shardset_close(conv_shardset *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->t[i].parts);
	free(s->t);
	for (int r = 0; r < s->world; r++) {
		if (s->files)
			dsv32_st_close(s->files[r]);
		if (s->paths)
			free(s->paths[r]);
	}
	free(s->files);
	free(s->paths);
	for (size_t i = 0; i < s->n_unknown; i++)
		free(s->unknown[i]);
	free(s->unknown);
	memset(s, 0, sizeof *s);
}

/* Hand [p, p+n) to fn in chunks; release each chunk afterwards when release is set. */
static dsv32_status chunked(conv_piece_fn fn, void *user, const uint8_t *p, uint64_t n, int rank,
			    uint64_t full_off, bool release, dsv32_error *err)
{
	while (n) {
		size_t k = n < CONV_CHUNK_BYTES ? (size_t)n : CONV_CHUNK_BYTES;
		DSV32_TRY(fn(user, p, k, rank, full_off, err));
		if (release)
			conv_release(p, k);
		p += k;
		n -= k;
		full_off += k;
	}
	return DSV32_OK;
}

dsv32_status conv_tensor_pieces(const conv_tensor *t, int world, conv_piece_fn fn, void *user,
				dsv32_error *err)
{
	for (int r = 0; r < world; r++)
		if (t->parts[r].e)
			conv_willneed(dsv32_st_data(t->parts[r].f, t->parts[r].e),
				      t->parts[r].e->end - t->parts[r].e->begin);
	if (t->info.split == DSV32_SPLIT_NONE || t->info.split == DSV32_SPLIT_EXPERT) {
		for (int r = 0; r < world; r++) {
			const conv_part *p = &t->parts[r];
			if (p->e)
				return chunked(fn, user, dsv32_st_data(p->f, p->e), t->nbytes, r, 0, true,
					       err);
		}
		return DSV32_FAIL(err, DSV32_E_INTERNAL, "%s: no rank holds it", t->ref);
	}
	dsv32_slice sl[1];
	DSV32_TRY(dsv32_slice_for_rank(sl, t->ref, t->info.split, t->dtype, t->ndim, t->full, 0,
				       world, err));
	bool one_run = sl->runs == 1;
	for (uint64_t i = 0; i < sl->runs; i++) {
		for (int r = 0; r < world; r++) {
			const uint8_t *base = dsv32_st_data(t->parts[r].f, t->parts[r].e);
			DSV32_TRY(chunked(fn, user, base + i * sl->run_bytes, sl->run_bytes, r,
					  (uint64_t)r * sl->run_bytes + i * sl->stride, one_run, err));
		}
	}
	if (!one_run)
		conv_tensor_release(t, world);
	return DSV32_OK;
}

static dsv32_status gather_piece(void *user, const void *p, size_t n, int rank, uint64_t off,
				 dsv32_error *err)
{
	if (!conv_read_mapped((uint8_t *)user + off, p, n)) /* an input cut short: conv_guard.c */
		return DSV32_FAIL(err, DSV32_E_IO, "bus error reading the mapped rank %d input", rank);
	return DSV32_OK;
}

dsv32_status conv_tensor_gather(const conv_tensor *t, int world, void *buf, dsv32_error *err)
{
	return conv_tensor_pieces(t, world, gather_piece, buf, err);
}

int conv_replica_diff(const conv_tensor *t, int world, uint64_t *off)
{
	const uint8_t *a = dsv32_st_data(t->parts[0].f, t->parts[0].e);
	for (int r = 1; r < world; r++) {
		const uint8_t *b = dsv32_st_data(t->parts[r].f, t->parts[r].e);
		for (uint64_t o = 0; o < t->nbytes; o += CONV_CHUNK_BYTES) {
			size_t k = t->nbytes - o < CONV_CHUNK_BYTES ? (size_t)(t->nbytes - o)
								    : CONV_CHUNK_BYTES;
			size_t j;
			if (!conv_diff_mapped(a + o, b + o, k, &j))
				return -2;
			if (j < k) {
				*off = o + j;
				return r;
			}
			conv_release(b + o, k);
		}
	}
	return -1;
}

void conv_tensor_release(const conv_tensor *t, int world)
{
	for (int r = 0; r < world; r++)
		if (t->parts[r].e)
			conv_release(dsv32_st_data(t->parts[r].f, t->parts[r].e),
				     t->parts[r].e->end - t->parts[r].e->begin);
}
