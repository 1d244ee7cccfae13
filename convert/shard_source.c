/* shard_source.c: a model reads its tensors straight from reference shards (convert.h, "Shard
 * source"): the rank files are opened and joined by conv_shardset_open, looked up by HF name,
 * and each tensor is handed out as the converter would write it (ref_to_hf.c, dtype KEEP): a
 * borrowed view of one rank's mapping when the tensor lives whole there, else an owned host
 * tensor reassembled by conv_tensor_pieces, the converter's own walk. */
#include "convert/conv_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fsutil.h"

struct dsv32_shard_source {
	conv_shardset s;
	dsv32_config cfg;
	const conv_tensor **by_hf; /* [s.n], sorted by HF name */
	bool any_fp8;
	char label[4200]; /* "reference shards <dir> (mp<W>)" for messages */
};

static int cmp_by_hf(const void *a, const void *b)
{
	return strcmp((*(const conv_tensor *const *)a)->hf, (*(const conv_tensor *const *)b)->hf);
}

static const conv_tensor *lookup(const dsv32_shard_source *src, const char *hf)
{
	size_t lo = 0, hi = src->s.n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(src->by_hf[mid]->hf, hf);
		if (!c)
			return src->by_hf[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* config NULL: config.json next to the first input (a directory: inside it). */
static dsv32_status config_path(char *buf, size_t len, const char *const *shards,
				const char *config, dsv32_error *err)
{
	if (config) {
		snprintf(buf, len, "%s", config);
		return DSV32_OK;
	}
	if (dsv32_path_is_dir(shards[0])) {
		if (!dsv32_path_join(buf, len, shards[0], "config.json"))
			return DSV32_FAIL(err, DSV32_E_USAGE, "%s: path too long", shards[0]);
		return DSV32_OK;
	}
	const char *slash = strrchr(shards[0], '/');
	if (slash)
		snprintf(buf, len, "%.*s/config.json", (int)(slash - shards[0]), shards[0]);
	else
		snprintf(buf, len, "config.json");
	return DSV32_OK;
}

dsv32_status dsv32_shard_source_open(dsv32_shard_source **out, const char *const *shards,
				     size_t n_shards, const char *config, dsv32_error *err)
{
	char cpath[4200];
	bool is_hf = false;
	*out = NULL;
	if (!shards || n_shards == 0 || !shards[0])
		return DSV32_FAIL(err, DSV32_E_USAGE, "shard source: no shard files or directory given");
	dsv32_shard_source *src = calloc(1, sizeof *src);
	if (!src)
		return DSV32_FAIL(err, DSV32_E_NOMEM, "shard source");
	dsv32_status rc = config_path(cpath, sizeof cpath, shards, config, err);
	int W = 0;
	if (rc == DSV32_OK)
		rc = dsv32_config_load(&src->cfg, cpath, &is_hf, err);
	/* the config against the world size of the file names first: "n_heads: 8 not divisible
	 * by world size 3" says more than the shapes or expert placement that follow from it */
	if (rc == DSV32_OK)
		rc = conv_shard_world(shards, n_shards, &W, err);
	if (rc == DSV32_OK && (rc = dsv32_config_validate(&src->cfg, W, err)) != DSV32_OK)
		dsv32_error_prefix(err, "%s with shards of mp%d (%s)", cpath, W, shards[0]);
	if (rc == DSV32_OK) /* as the converter: experts placed by the config's count */
		rc = conv_shardset_open(&src->s, shards, n_shards, 0, src->cfg.n_routed_experts, false,
					err);
	if (rc != DSV32_OK) {
		free(src);
		return rc;
	}
	snprintf(src->label, sizeof src->label, "reference shards %s (mp%d)", src->s.dir,
		 src->s.world);
	if (rc == DSV32_OK && !(src->by_hf = malloc((src->s.n ? src->s.n : 1) * sizeof *src->by_hf)))
		rc = DSV32_FAIL(err, DSV32_E_NOMEM, "shard source: name table");
	if (rc != DSV32_OK) {
		dsv32_shard_source_close(src);
		return rc;
	}
	for (size_t i = 0; i < src->s.n; i++) {
		src->by_hf[i] = &src->s.t[i];
		src->any_fp8 |= src->s.t[i].dtype == DSV32_F8_E4M3 ||
				src->s.t[i].dtype == DSV32_F8_E5M2;
	}
	qsort(src->by_hf, src->s.n, sizeof *src->by_hf, cmp_by_hf);
	for (size_t i = 1; i < src->s.n; i++) /* the name map is one-to-one; say so if not */
		if (!strcmp(src->by_hf[i]->hf, src->by_hf[i - 1]->hf)) {
			rc = DSV32_FAIL(err, DSV32_E_FORMAT, "%s: %s and %s both map to HF name %s",
					src->label, src->by_hf[i - 1]->ref, src->by_hf[i]->ref,
					src->by_hf[i]->hf);
			dsv32_shard_source_close(src);
			return rc;
		}
	*out = src;
	return DSV32_OK;
}

void dsv32_shard_source_close(dsv32_shard_source *src)
{
	if (!src)
		return;
	free(src->by_hf);
	conv_shardset_close(&src->s);
	free(src);
}

dsv32_status dsv32_shard_source_hf_config(const dsv32_shard_source *src, dsv32_config *c,
					  dsv32_error *err)
{
	char *json = conv_hf_config_json(src->cfg, src->any_fp8);
	if (!json)
		return DSV32_FAIL(err, DSV32_E_NOMEM, "%s: HF config", src->label);
	dsv32_status rc = dsv32_config_from_hf_json(c, json, src->label, err);
	free(json);
	return rc;
}

int dsv32_shard_source_world(const dsv32_shard_source *src)
{
	return src->s.world;
}

const char *dsv32_shard_source_label(const dsv32_shard_source *src)
{
	return src->label;
}

bool dsv32_shard_source_find(const dsv32_shard_source *src, const char *hf_name,
			     dsv32_dtype *dtype, int *ndim, int64_t shape[DSV32_MAX_DIMS])
{
	const conv_tensor *t = lookup(src, hf_name);
	if (!t)
		return false;
	if (dtype)
		*dtype = t->dtype;
	if (ndim)
		*ndim = t->ndim;
	if (shape)
		memcpy(shape, t->full, sizeof t->full);
	return true;
}

dsv32_status dsv32_shard_source_tensor(const dsv32_shard_source *src, const char *hf_name,
				       dsv32_tensor *out, dsv32_error *err)
{
	memset(out, 0, sizeof *out);
	const conv_tensor *t = lookup(src, hf_name);
	if (!t) {
		char ref[DSV32_NAME_MAX];
		if (dsv32_name_hf_to_ref(hf_name, 0, ref, sizeof ref, NULL, NULL) == DSV32_OK)
			return DSV32_FAIL(err, DSV32_E_NOTFOUND,
					  "%s: tensor \"%s\" not found (reference name %s, in no rank "
					  "file)", src->label, hf_name, ref);
		return DSV32_FAIL(err, DSV32_E_NOTFOUND,
				  "%s: tensor \"%s\" not found (not a name the HF->reference map knows)",
				  src->label, hf_name);
	}
	int W = src->s.world;
	if (W == 1 || t->info.split == DSV32_SPLIT_NONE || t->info.split == DSV32_SPLIT_EXPERT) {
		/* whole on one rank: replicated -> rank 0's copy (not compared with the others),
		 * routed expert -> its owner (the only holder, checked at open) */
		for (int r = 0; r < W; r++) {
			const conv_part *p = &t->parts[r];
			if (!p->e)
				continue;
			*out = dsv32_tensor_view((void *)(uintptr_t)dsv32_st_data(p->f, p->e), t->dtype,
						 t->ndim, t->full);
			return DSV32_OK;
		}
		return DSV32_FAIL(err, DSV32_E_INTERNAL, "%s: %s (%s): no rank holds it", src->label,
				  hf_name, t->ref);
	}
	/* split along dim 0 or 1 across the ranks: the converter's walk into one host buffer */
	dsv32_tensor host;
	DSV32_TRY(dsv32_tensor_alloc(&host, t->dtype, t->ndim, t->full, err));
	dsv32_status rc = conv_tensor_gather(t, W, host.data, err);
	if (rc != DSV32_OK) {
		dsv32_tensor_free(&host);
		dsv32_error_prefix(err, "%s: %s (%s)", src->label, hf_name, t->ref);
		return rc;
	}
	*out = host;
	return DSV32_OK;
}

size_t dsv32_shard_source_count(const dsv32_shard_source *src)
{
	return src->s.n;
}

const char *dsv32_shard_source_name_at(const dsv32_shard_source *src, size_t i)
{
	return i < src->s.n ? src->by_hf[i]->hf : NULL;
}

const char *dsv32_shard_source_ref_name_at(const dsv32_shard_source *src, size_t i)
{
	return i < src->s.n ? src->by_hf[i]->ref : NULL;
}

const char *dsv32_shard_source_split_at(const dsv32_shard_source *src, size_t i)
{
	static const char *const names[DSV32_SPLIT_COUNT] = {"none", "dim0", "dim1", "expert"};
	if (i >= src->s.n || (unsigned)src->by_hf[i]->info.split >= DSV32_SPLIT_COUNT)
		return "?";
	return names[src->by_hf[i]->info.split];
}

/* One tensor of the dense equivalent into the digest. */
static dsv32_status hash_one(const dsv32_shard_source *src, EVP_MD_CTX *md, size_t i,
			     dsv32_error *err)
{
	const conv_tensor *t = src->by_hf[i];
	dsv32_tensor v;
	DSV32_TRY(dsv32_shard_source_tensor(src, t->hf, &v, err));
	bool ok = conv_hash_tensor(md, t->hf, t->dtype, t->ndim, t->full, v.data,
				   dsv32_tensor_nbytes(&v));
	dsv32_tensor_free(&v); /* a borrowed view is left alone */
	return ok ? DSV32_OK
		  : DSV32_FAIL(err, DSV32_E_INTERNAL, "content SHA-256 (OpenSSL EVP) failed");
}

dsv32_status dsv32_shard_source_content_sha256(const dsv32_shard_source *src, char hex[65],
					       dsv32_error *err)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	if (!md || !EVP_DigestInit_ex(md, EVP_sha256(), NULL)) {
		EVP_MD_CTX_free(md);
		return DSV32_FAIL(err, DSV32_E_INTERNAL, "content SHA-256 (OpenSSL EVP) failed");
	}
	dsv32_status rc = DSV32_OK;
	for (size_t i = 0; rc == DSV32_OK && i < src->s.n; i++)
		rc = hash_one(src, md, i, err);
	unsigned char out[EVP_MAX_MD_SIZE];
	unsigned int len = 0;
	if (rc == DSV32_OK && (!EVP_DigestFinal_ex(md, out, &len) || len != 32))
		rc = DSV32_FAIL(err, DSV32_E_INTERNAL, "content SHA-256 (OpenSSL EVP) failed");
	EVP_MD_CTX_free(md);
	for (unsigned k = 0; rc == DSV32_OK && k < 32; k++)
		snprintf(hex + 2 * k, 3, "%02x", out[k]);
	return rc;
}

void dsv32_shard_source_release_prefix(const dsv32_shard_source *src, const char *ref_prefix)
{
	for (int r = 0; src && r < src->s.world; r++)
		dsv32_st_release_prefix(src->s.files[r], ref_prefix);
}
