/* st_ckpt.c: a checkpoint as one name space over several safetensors files: a single file, a
 * directory with model.safetensors.index.json (weight_map: tensor -> file, docs/spec/checkpoints.md
 * §2.1), or a directory of *.safetensors files read in sorted order (§5). */
#include "core/safetensors.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/fsutil.h"
#include "core/infile.h"

#define INDEX_NAME "model.safetensors.index.json"

typedef struct {
	const dsv32_st_entry *e;
	size_t file;
} ck_entry;

struct dsv32_ckpt {
	dsv32_st_file **files; /* in sorted file-name order */
	size_t nfiles;
	ck_entry *ents;        /* sorted by tensor name */
	size_t n;
};

typedef struct {
	const char *tensor;
	const char *file;
} map_pair;

static int cmp_str_ptr(const void *pa, const void *pb)
{
	return strcmp(*(const char *const *)pa, *(const char *const *)pb);
}

static int cmp_ck_entry(const void *pa, const void *pb)
{
	return strcmp(((const ck_entry *)pa)->e->name, ((const ck_entry *)pb)->e->name);
}

static int cmp_pair(const void *pa, const void *pb)
{
	return strcmp(((const map_pair *)pa)->tensor, ((const map_pair *)pb)->tensor);
}

/* Open the files dir/names[i] (or names[i] itself when dir is NULL) into c->files. */
static dsv32_status open_files(dsv32_ckpt *c, const char *dir, const char *const *names, size_t n,
			       dsv32_error *err)
{
	c->files = calloc(n ? n : 1, sizeof *c->files);
	if (!c->files)
		return DSV32_FAIL(err, DSV32_E_NOMEM, "allocating %zu file handles", n);
	for (size_t i = 0; i < n; i++) {
		char path[4096];
		if (!dsv32_path_join(path, sizeof path, dir ? dir : "", names[i]))
			return DSV32_FAIL(err, DSV32_E_USAGE, "%s/%s: path too long",
					  dir ? dir : ".", names[i]);
		DSV32_TRY(dsv32_st_open(&c->files[i], path, err));
		c->nfiles = i + 1;
	}
	return DSV32_OK;
}

/* Join every file's entries into c->ents, sorted by name; a name in two files is an error. */
static dsv32_status merge_entries(dsv32_ckpt *c, dsv32_error *err)
{
	size_t n = 0;
	for (size_t i = 0; i < c->nfiles; i++)
		n += dsv32_st_count(c->files[i]);
	c->ents = calloc(n ? n : 1, sizeof *c->ents);
	if (!c->ents)
		return DSV32_FAIL(err, DSV32_E_NOMEM, "allocating %zu checkpoint entries", n);
	size_t k = 0;
	for (size_t i = 0; i < c->nfiles; i++)
		for (size_t j = 0; j < dsv32_st_count(c->files[i]); j++)
			c->ents[k++] = (ck_entry){dsv32_st_entry_at(c->files[i], j), i};
	qsort(c->ents, n, sizeof *c->ents, cmp_ck_entry);
	c->n = n;
	for (size_t i = 1; i < n; i++)
		if (strcmp(c->ents[i - 1].e->name, c->ents[i].e->name) == 0) {
			size_t a = c->ents[i - 1].file, b = c->ents[i].file;
			return DSV32_FAIL(err, DSV32_E_FORMAT, "tensor \"%s\" is in both %s and %s",
					  c->ents[i].e->name, dsv32_st_path(c->files[a < b ? a : b]),
					  dsv32_st_path(c->files[a < b ? b : a]));
		}
	return DSV32_OK;
}

/* A weight_map file name must stay inside the checkpoint directory. */
static bool is_safe_name(const char *s)
{
	if (!*s || s[0] == '/')
		return false;
	for (const char *p = s; *p;) {
		size_t len = strcspn(p, "/");
		if (len == 2 && p[0] == '.' && p[1] == '.')
			return false;
		p += len;
		if (*p == '/')
			p++;
	}
	return true;
}

/* Every weight_map pair must match the tensor's actual file, and every tensor of the listed
 * files must be in the map. pairs is sorted by tensor name, as is c->ents; names are the
 * sorted unique file names, in the order of c->files. */
static dsv32_status check_weight_map(const dsv32_ckpt *c, const map_pair *pairs, size_t np,
				     const char *const *names, size_t nf, const char *index,
				     dsv32_error *err)
{
	size_t i = 0, j = 0;
	while (i < np || j < c->n) {
		int d = i == np ? 1 : j == c->n ? -1 : strcmp(pairs[i].tensor, c->ents[j].e->name);
		if (d < 0)
			return DSV32_FAIL(err, DSV32_E_FORMAT, "%s: weight_map names \"%s\" in %s, "
					  "which does not hold it", index, pairs[i].tensor,
					  pairs[i].file);
		if (d > 0)
			return DSV32_FAIL(err, DSV32_E_FORMAT, "%s: tensor \"%s\" of %s is missing "
					  "from weight_map", index, c->ents[j].e->name,
					  dsv32_st_path(c->files[c->ents[j].file]));
		const char *const *fk = bsearch(&pairs[i].file, names, nf, sizeof *names, cmp_str_ptr);
		if (!fk || (size_t)(fk - names) != c->ents[j].file)
			return DSV32_FAIL(err, DSV32_E_FORMAT, "%s: weight_map names \"%s\" in %s, "
					  "which does not hold it (it is in %s)", index,
					  pairs[i].tensor, pairs[i].file,
					  dsv32_st_path(c->files[c->ents[j].file]));
		i++;
		j++;
	}
	return DSV32_OK;
}

static dsv32_status open_index(dsv32_ckpt *c, const char *dir, const char *index,
			       dsv32_error *err)
{
	char *text = NULL;
	size_t len = 0;
	DSV32_TRY(dsv32_infile_read(index, DSV32_INFILE_INDEX, &text, &len, err));
	dsv32_status rc = DSV32_OK;
	map_pair *pairs = NULL;
	const char **names = NULL;
	cJSON *root = cJSON_ParseWithLength(text, len);
	const cJSON *wm = root ? cJSON_GetObjectItemCaseSensitive(root, "weight_map") : NULL;
	if (root && (rc = dsv32_json_check_unique_keys(root, index, err)) != DSV32_OK)
		goto out_free;
	if (!cJSON_IsObject(wm)) {
		rc = DSV32_FAIL(err, DSV32_E_FORMAT, "%s: %s", index,
				root ? "no \"weight_map\" object" : "not valid JSON");
		goto out_free;
	}
	size_t np = (size_t)cJSON_GetArraySize(wm), i = 0;
	pairs = calloc(np ? np : 1, sizeof *pairs);
	names = calloc(np ? np : 1, sizeof *names);
	if (!pairs || !names) {
		rc = DSV32_FAIL(err, DSV32_E_NOMEM, "%s: allocating %zu map entries", index, np);
		goto out_free;
	}
	for (const cJSON *it = wm->child; it; it = it->next, i++) {
		if (!cJSON_IsString(it) || !is_safe_name(it->valuestring)) {
			rc = DSV32_FAIL(err, DSV32_E_FORMAT, "%s: weight_map[\"%s\"] is not a file "
					"name inside the checkpoint directory", index, it->string);
			goto out_free;
		}
		pairs[i] = (map_pair){it->string, it->valuestring};
		names[i] = it->valuestring;
	}
	qsort(pairs, np, sizeof *pairs, cmp_pair); /* unique: dsv32_json_check_unique_keys */
	qsort(names, np, sizeof *names, cmp_str_ptr);
	size_t nf = 0;
	for (i = 0; i < np; i++)
		if (nf == 0 || strcmp(names[nf - 1], names[i]) != 0)
			names[nf++] = names[i];
	rc = open_files(c, dir, names, nf, err);
	if (rc != DSV32_OK) {
		dsv32_error_prefix(err, "%s", index);
		goto out_free;
	}
	rc = merge_entries(c, err);
	if (rc == DSV32_OK)
		rc = check_weight_map(c, pairs, np, names, nf, index, err);
out_free:
	free(names);
	free(pairs);
	cJSON_Delete(root);
	free(text);
	return rc;
}

static dsv32_status open_dir_scan(dsv32_ckpt *c, const char *dir, dsv32_error *err)
{
	DIR *d = opendir(dir);
	if (!d)
		return DSV32_FAIL(err, DSV32_E_IO, "%s: cannot read directory", dir);
	char **names = NULL;
	size_t n = 0, cap = 0;
	dsv32_status rc = DSV32_OK;
	const char *ext = ".safetensors";
	size_t le = strlen(ext);
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		size_t ln = strlen(de->d_name);
		if (de->d_name[0] == '.' || ln <= le || strcmp(de->d_name + ln - le, ext) != 0)
			continue;
		char path[4096];
		if (!dsv32_path_join(path, sizeof path, dir, de->d_name) || dsv32_path_is_dir(path))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			char **nn = realloc(names, cap * sizeof *names);
			if (!nn) {
				rc = DSV32_FAIL(err, DSV32_E_NOMEM, "%s: listing files", dir);
				goto out_free;
			}
			names = nn;
		}
		if (!(names[n] = strdup(de->d_name))) {
			rc = DSV32_FAIL(err, DSV32_E_NOMEM, "%s: listing files", dir);
			goto out_free;
		}
		n++;
	}
	if (n == 0) {
		rc = DSV32_FAIL(err, DSV32_E_NOTFOUND, "%s: no %s and no *.safetensors files", dir,
				INDEX_NAME);
		goto out_free;
	}
	qsort(names, n, sizeof *names, cmp_str_ptr);
	rc = open_files(c, dir, (const char *const *)names, n, err);
	if (rc == DSV32_OK)
		rc = merge_entries(c, err);
out_free:
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	closedir(d);
	return rc;
}

/* The checkpoint path resolves: "no such checkpoint" only when nothing is there; a symlink loop
 * or an unreadable parent says so. */
static dsv32_status check_ckpt_path(const char *path, dsv32_error *err)
{
	struct stat st;
	if (stat(path, &st) == 0)
		return DSV32_OK;
	int e = errno;
	if (e == ENOENT)
		return DSV32_FAIL_SYS(err, DSV32_E_NOTFOUND, e, "%s: no such checkpoint", path);
	if (e == ELOOP)
		return DSV32_FAIL_SYS(err, DSV32_E_IO, e, "%s: symlink loop (%s)", path, strerror(e));
	return DSV32_FAIL_SYS(err, DSV32_E_IO, e, "%s: cannot stat: %s", path, strerror(e));
}

/* The index is there when its directory entry is, even as a dangling or looping symlink or a
 * FIFO: opening it then says what is wrong, where a stat() test fell back to a directory scan
 * ("no index") and read the shards without the map. */
static bool index_entry_exists(const char *index)
{
	struct stat st;
	return lstat(index, &st) == 0;
}

dsv32_status dsv32_ckpt_open(dsv32_ckpt **out, const char *path, dsv32_error *err)
{
	*out = NULL;
	DSV32_TRY(check_ckpt_path(path, err));
	dsv32_ckpt *c = calloc(1, sizeof *c);
	if (!c)
		return DSV32_FAIL(err, DSV32_E_NOMEM, "%s: allocating a checkpoint", path);
	dsv32_status rc;
	char index[4096];
	if (!dsv32_path_is_dir(path)) {
		const char *one[1] = {path};
		rc = open_files(c, NULL, one, 1, err);
		if (rc == DSV32_OK)
			rc = merge_entries(c, err);
	} else if (!dsv32_path_join(index, sizeof index, path, INDEX_NAME)) {
		rc = DSV32_FAIL(err, DSV32_E_USAGE, "%s: path too long", path);
	} else if (index_entry_exists(index)) {
		rc = open_index(c, path, index, err);
	} else {
		rc = open_dir_scan(c, path, err);
	}
	if (rc != DSV32_OK) {
		dsv32_ckpt_close(c);
		return rc;
	}
	*out = c;
	return DSV32_OK;
}

void dsv32_ckpt_close(dsv32_ckpt *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->nfiles; i++)
		dsv32_st_close(c->files[i]);
	free(c->files);
	free(c->ents);
	free(c);
}

size_t dsv32_ckpt_count(const dsv32_ckpt *c)
{
	return c->n;
}

const dsv32_st_entry *dsv32_ckpt_entry_at(const dsv32_ckpt *c, size_t i, const dsv32_st_file **file)
{
	if (i >= c->n) {
		if (file)
			*file = NULL;
		return NULL;
	}
	if (file)
		*file = c->files[c->ents[i].file];
	return c->ents[i].e;
}

const dsv32_st_entry *dsv32_ckpt_find(const dsv32_ckpt *c, const char *name,
				      const dsv32_st_file **file)
{
	dsv32_st_entry ke = {.name = name};
	ck_entry key = {&ke, 0};
	const ck_entry *hit = bsearch(&key, c->ents, c->n, sizeof *c->ents, cmp_ck_entry);
	if (file)
		*file = hit ? c->files[hit->file] : NULL;
	return hit ? hit->e : NULL;
}

dsv32_status dsv32_ckpt_tensor(const dsv32_ckpt *c, const char *name, dsv32_tensor *out,
			       dsv32_error *err)
{
	const dsv32_st_file *f;
	if (!dsv32_ckpt_find(c, name, &f))
		return DSV32_FAIL(err, DSV32_E_NOTFOUND, "tensor \"%s\" not found in the checkpoint "
				  "(%zu files)", name, c->nfiles);
	return dsv32_st_tensor(f, name, out, err);
}

size_t dsv32_ckpt_file_count(const dsv32_ckpt *c)
{
	return c->nfiles;
}

const dsv32_st_file *dsv32_ckpt_file_at(const dsv32_ckpt *c, size_t i)
{
	return i < c->nfiles ? c->files[i] : NULL;
}

uint64_t dsv32_ckpt_release_prefix(const dsv32_ckpt *c, const char *prefix)
{
	uint64_t total = 0;
	for (size_t i = 0; c && i < c->nfiles; i++)
		total += dsv32_st_release_prefix(c->files[i], prefix);
	return total;
}
