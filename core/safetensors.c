/* safetensors.c: zero-copy safetensors reader (mmap or caller buffer) with the validation of
 * docs/spec/checkpoints.md §1.5, and sharded checkpoints (model.safetensors.index.json, §2.1/§5).
 * Messages carry the Python library's rule names: "<file>: InvalidOffset: tensor "x": ...". */
#include "core/safetensors.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/fsutil.h"
#include "core/safetensors_internal.h"

struct dsv32_st_file {
	char *label;               /* path, or the caller's label for open_mem */
	const uint8_t *base;       /* whole file */
	size_t size;
	bool mapped;               /* base is our mmap */
	const uint8_t *data;       /* data section: base + 8 + N */
	uint64_t data_size;
	dsv32_st_entry *entries;   /* file-offset order */
	size_t n;
	const dsv32_st_entry **by_name; /* name order, for bsearch */
	const char **meta_key;     /* sorted by key */
	const char **meta_val;
	size_t n_meta;
	char *strings;             /* arena holding every name, key and value */
};

#define ST_FAIL(err, label, ...) st_fail((err), __FILE__, __LINE__, (label), __VA_ARGS__)

static dsv32_status st_fail(dsv32_error *err, const char *file, int line, const char *label,
			    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static dsv32_status st_fail(dsv32_error *err, const char *file, int line, const char *label,
			    const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	return dsv32_error_set(err, DSV32_E_FORMAT, 0, file, line, "%s: %s", label, msg);
}

/* ---- header checks that cJSON cannot do ---- */

/* Walk the (already parsed) header text: reject raw control characters and \u0000 inside
 * strings, and every number literal that is not a plain non-negative integer ("1.0", "1e3",
 * "-1", "01"), which cJSON would silently turn into an integer. The message names the
 * top-level key (the tensor) the literal belongs to. */
static dsv32_status scan_literals(const char *h, size_t n, const char *label, dsv32_error *err)
{
	int depth = 0;
	const char *key = "";
	int key_len = 0;
	size_t i = 0;
	while (i < n) {
		char c = h[i];
		if (c == '"') {
			size_t start = ++i;
			while (i < n && h[i] != '"') {
				if (h[i] == '\\') {
					if (n - i > 5 && memcmp(h + i + 1, "u0000", 5) == 0)
						return ST_FAIL(err, label,
							       "InvalidHeaderDeserialization: \\u0000 in "
							       "a string at header byte %zu", i);
					i += 2;
					continue;
				}
				if ((unsigned char)h[i] < 0x20)
					return ST_FAIL(err, label,
						       "InvalidHeaderDeserialization: control character "
						       "0x%02x in a string at header byte %zu",
						       (unsigned char)h[i], i);
				i++;
			}
			size_t end = i++;
			if (depth == 1) {
				size_t j = i;
				while (j < n && (h[j] == ' ' || h[j] == '\t' || h[j] == '\n' ||
						 h[j] == '\r'))
					j++;
				if (j < n && h[j] == ':') {
					key = h + start;
					key_len = (int)(end - start > 200 ? 200 : end - start);
				}
			}
			continue;
		}
		if (c == '{' || c == '[') {
			depth++;
		} else if (c == '}' || c == ']') {
			depth--;
		} else if (c == '-' || (c >= '0' && c <= '9')) {
			size_t j = i;
			bool plain = true;
			while (j < n && strchr("0123456789+-.eE", h[j]) && h[j] != '\0') {
				if (h[j] < '0' || h[j] > '9')
					plain = false;
				j++;
			}
			if (!plain || (h[i] == '0' && j - i > 1))
				return ST_FAIL(err, label,
					       "InvalidHeaderDeserialization: tensor \"%.*s\": number %.*s "
					       "is not a non-negative integer", key_len, key,
					       (int)(j - i > 40 ? 40 : j - i), h + i);
			i = j;
			continue;
		}
		i++;
	}
	return DSV32_OK;
}

/* A JSON number that is a non-negative integer exactly representable (scan_literals already
 * rejected fractions and signs; this catches huge values). */
static bool json_uint(const cJSON *item, uint64_t *out)
{
	if (!cJSON_IsNumber(item))
		return false;
	double v = item->valuedouble;
	if (!(v >= 0.0) || v > DSV32_ST_MAX_JSON_INT || v != (double)(uint64_t)v)
		return false;
	*out = (uint64_t)v;
	return true;
}

/* Check one tensor entry and fill e (its name still points into the cJSON tree). */
static dsv32_status parse_entry(const cJSON *item, dsv32_st_entry *e, const char *label,
				dsv32_error *err)
{
	const char *name = item->string;
	const cJSON *dt = NULL, *shape = NULL, *offs = NULL;
	if (!cJSON_IsObject(item))
		return ST_FAIL(err, label, "InvalidHeaderDeserialization: tensor \"%s\": entry is "
			       "not an object", name);
	for (const cJSON *f = item->child; f; f = f->next) {
		const cJSON **slot = strcmp(f->string, "dtype") == 0	     ? &dt
				     : strcmp(f->string, "shape") == 0	     ? &shape
				     : strcmp(f->string, "data_offsets") == 0 ? &offs
									       : NULL;
		if (!slot)
			continue; /* unknown fields are ignored, as by the Python library */
		if (*slot)
			return ST_FAIL(err, label, "InvalidHeaderDeserialization: tensor \"%s\": "
				       "duplicate field \"%s\"", name, f->string);
		*slot = f;
	}
	const char *missing = !dt ? "dtype" : !shape ? "shape" : !offs ? "data_offsets" : NULL;
	if (missing)
		return ST_FAIL(err, label, "InvalidHeaderDeserialization: tensor \"%s\": missing "
			       "field \"%s\"", name, missing);
	if (!cJSON_IsString(dt))
		return ST_FAIL(err, label, "InvalidHeaderDeserialization: tensor \"%s\": dtype is "
			       "not a string", name);
	if (!dsv32_dtype_from_name(dt->valuestring, &e->dtype))
		return ST_FAIL(err, label, "InvalidHeaderDeserialization: tensor \"%s\": unknown "
			       "dtype \"%.40s\"", name, dt->valuestring);
	if (!cJSON_IsArray(shape))
		return ST_FAIL(err, label, "InvalidHeaderDeserialization: tensor \"%s\": shape is "
			       "not an array", name);
	int ndim = cJSON_GetArraySize(shape);
	if (ndim > DSV32_MAX_DIMS)
		return ST_FAIL(err, label, "TensorInvalidInfo: tensor \"%s\": %d dims, at most %d "
			       "supported", name, ndim, DSV32_MAX_DIMS);
	e->ndim = ndim;
	uint64_t numel = 1;
	bool overflow = false;
	int d = 0;
	for (const cJSON *s = shape->child; s; s = s->next, d++) {
		uint64_t v;
		if (!json_uint(s, &v))
			return ST_FAIL(err, label, "InvalidHeaderDeserialization: tensor \"%s\": "
				       "shape[%d] is not a non-negative integer below 2^53", name, d);
		e->shape[d] = (int64_t)v;
		if (v != 0 && numel > UINT64_MAX / v)
			overflow = true;
		numel = overflow ? 0 : numel * v;
	}
	for (d = 0; d < ndim; d++) /* a zero dim makes the product 0 whatever came before */
		if (e->shape[d] == 0)
			numel = 0, overflow = false;
	uint64_t bits = dsv32_dtype_bits(e->dtype);
	if (overflow || numel > UINT64_MAX / bits || numel > (uint64_t)INT64_MAX)
		return ST_FAIL(err, label, "ValidationOverflow: tensor \"%s\": shape product x "
			       "itemsize overflows", name);
	if (numel * bits % 8 != 0) /* F4 / F6_* pack; a tensor must end on a byte boundary */
		return ST_FAIL(err, label, "MisalignedSlice: tensor \"%s\": %llu elements of %s "
			       "are %llu bits, not whole bytes", name, (unsigned long long)numel,
			       dsv32_dtype_name(e->dtype), (unsigned long long)(numel * bits));
	uint64_t bytes = numel * bits / 8;
	uint64_t be[2];
	if (!cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2 || !json_uint(offs->child, &be[0]) ||
	    !json_uint(offs->child->next, &be[1]))
		return ST_FAIL(err, label, "InvalidHeaderDeserialization: tensor \"%s\": "
			       "data_offsets is not [BEGIN, END] of non-negative integers", name);
	e->begin = be[0];
	e->end = be[1];
	if (e->begin > e->end)
		return ST_FAIL(err, label, "InvalidOffset: tensor \"%s\": data_offsets [%llu, %llu] "
			       "begin > end", name, (unsigned long long)e->begin,
			       (unsigned long long)e->end);
	if (e->end - e->begin != bytes) {
		char sbuf[160];
		return ST_FAIL(err, label, "TensorInvalidInfo: tensor \"%s\": shape %s of %s needs "
			       "%llu bytes, data_offsets [%llu, %llu] hold %llu", name,
			       dsv32_shape_str(sbuf, sizeof sbuf, e->ndim, e->shape),
			       dsv32_dtype_name(e->dtype), (unsigned long long)bytes,
			       (unsigned long long)e->begin, (unsigned long long)e->end,
			       (unsigned long long)(e->end - e->begin));
	}
	return DSV32_OK;
}

static int cmp_offset(const void *pa, const void *pb)
{
	const dsv32_st_entry *a = pa, *b = pb;
	if (a->begin != b->begin)
		return a->begin < b->begin ? -1 : 1;
	if (a->end != b->end)
		return a->end < b->end ? -1 : 1;
	return strcmp(a->name, b->name);
}

static int cmp_entry_ptr_name(const void *pa, const void *pb)
{
	const dsv32_st_entry *a = *(const dsv32_st_entry *const *)pa;
	const dsv32_st_entry *b = *(const dsv32_st_entry *const *)pb;
	return strcmp(a->name, b->name);
}

static int cmp_str_ptr(const void *pa, const void *pb)
{
	return strcmp(*(const char *const *)pa, *(const char *const *)pb);
}

static int cmp_item_key(const void *pa, const void *pb)
{
	return strcmp((*(const cJSON *const *)pa)->string, (*(const cJSON *const *)pb)->string);
}

/* Copy s into the arena at *pos; returns the copy. */
static const char *arena_put(char *arena, size_t *pos, const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = arena + *pos;
	memcpy(p, s, n);
	*pos += n;
	return p;
}

/* Validate __metadata__ and keep its pairs, sorted by key (pointers into the cJSON tree). */
static dsv32_status parse_metadata(dsv32_st_file *f, const cJSON *meta, dsv32_error *err)
{
	if (!cJSON_IsObject(meta))
		return ST_FAIL(err, f->label, "InvalidHeaderDeserialization: __metadata__ is not an "
			       "object");
	size_t n = (size_t)cJSON_GetArraySize(meta);
	f->meta_key = calloc(n ? n : 1, sizeof *f->meta_key);
	f->meta_val = calloc(n ? n : 1, sizeof *f->meta_val);
	const cJSON **items = calloc(n ? n : 1, sizeof *items);
	if (!f->meta_key || !f->meta_val || !items) {
		free(items);
		return DSV32_FAIL(err, DSV32_E_NOMEM, "%s: allocating metadata", f->label);
	}
	size_t i = 0;
	for (const cJSON *m = meta->child; m; m = m->next) {
		if (!cJSON_IsString(m)) {
			free(items);
			return ST_FAIL(err, f->label, "InvalidHeaderDeserialization: __metadata__ "
				       "value of \"%s\" is not a string", m->string);
		}
		items[i++] = m;
	}
	qsort(items, n, sizeof *items, cmp_item_key);
	for (i = 0; i < n; i++) {
		f->meta_key[i] = items[i]->string;
		f->meta_val[i] = items[i]->valuestring;
		if (i > 0 && strcmp(f->meta_key[i - 1], f->meta_key[i]) == 0) {
			free(items);
			return ST_FAIL(err, f->label, "InvalidHeaderDeserialization: duplicate "
				       "__metadata__ key \"%s\"", f->meta_key[i]);
		}
	}
	f->n_meta = n;
	free(items);
	return DSV32_OK;
}

/* Move every name, key and value into one arena so the cJSON tree can go. */
static dsv32_status copy_strings(dsv32_st_file *f, dsv32_error *err)
{
	size_t total = 1;
	for (size_t i = 0; i < f->n; i++)
		total += strlen(f->entries[i].name) + 1;
	for (size_t i = 0; i < f->n_meta; i++)
		total += strlen(f->meta_key[i]) + strlen(f->meta_val[i]) + 2;
	f->strings = malloc(total);
	if (!f->strings)
		return DSV32_FAIL(err, DSV32_E_NOMEM, "%s: allocating %zu bytes of names", f->label,
				  total);
	size_t pos = 0;
	for (size_t i = 0; i < f->n; i++)
		f->entries[i].name = arena_put(f->strings, &pos, f->entries[i].name);
	for (size_t i = 0; i < f->n_meta; i++) {
		f->meta_key[i] = arena_put(f->strings, &pos, f->meta_key[i]);
		f->meta_val[i] = arena_put(f->strings, &pos, f->meta_val[i]);
	}
	return DSV32_OK;
}

/* The tensors, sorted by offset, must tile the data section exactly (rules 7 and 8). The
 * order of the checks follows the Python library: contiguity first (InvalidOffset), then the
 * coverage of the whole data section (MetadataIncompleteBuffer), which also catches offsets
 * past the end of the file. */
static dsv32_status check_layout(dsv32_st_file *f, dsv32_error *err)
{
	uint64_t at = 0;
	for (size_t i = 0; i < f->n; i++) {
		const dsv32_st_entry *e = &f->entries[i];
		if (e->begin != at)
			return ST_FAIL(err, f->label, "InvalidOffset: tensor \"%s\": begins at %llu, "
				       "expected %llu (%s the previous tensor)", e->name,
				       (unsigned long long)e->begin, (unsigned long long)at,
				       e->begin < at ? "overlaps" : "gap after");
		at = e->end;
	}
	if (at != f->data_size)
		return ST_FAIL(err, f->label, "MetadataIncompleteBuffer: tensors cover %llu bytes, "
			       "the data section has %llu%s%s%s", (unsigned long long)at,
			       (unsigned long long)f->data_size,
			       at > f->data_size ? " (tensor \"" : "",
			       at > f->data_size ? f->entries[f->n - 1].name : "",
			       at > f->data_size ? "\" runs past the end of the file)" : "");
	return DSV32_OK;
}

static dsv32_status parse_tensors(dsv32_st_file *f, const cJSON *root, dsv32_error *err)
{
	const cJSON *meta = NULL;
	size_t n = 0;
	for (const cJSON *it = root->child; it; it = it->next) {
		if (strcmp(it->string, "__metadata__") != 0) {
			n++;
		} else if (meta) {
			return ST_FAIL(err, f->label, "InvalidHeaderDeserialization: duplicate key "
				       "\"__metadata__\"");
		} else {
			meta = it;
		}
	}
	f->entries = calloc(n ? n : 1, sizeof *f->entries);
	f->by_name = calloc(n ? n : 1, sizeof *f->by_name);
	if (!f->entries || !f->by_name)
		return DSV32_FAIL(err, DSV32_E_NOMEM, "%s: allocating %zu entries", f->label, n);
	size_t i = 0;
	for (const cJSON *it = root->child; it; it = it->next) {
		if (it == meta)
			continue;
		f->entries[i].name = it->string;
		DSV32_TRY(parse_entry(it, &f->entries[i], f->label, err));
		i++;
	}
	f->n = n;
	if (meta)
		DSV32_TRY(parse_metadata(f, meta, err));
	/* duplicates first: a repeated name would otherwise surface as an overlap */
	for (i = 0; i < n; i++)
		f->by_name[i] = &f->entries[i];
	qsort(f->by_name, n, sizeof *f->by_name, cmp_entry_ptr_name);
	for (i = 1; i < n; i++)
		if (strcmp(f->by_name[i - 1]->name, f->by_name[i]->name) == 0)
			return ST_FAIL(err, f->label, "InvalidHeaderDeserialization: duplicate "
				       "tensor name \"%s\"", f->by_name[i]->name);
	qsort(f->entries, n, sizeof *f->entries, cmp_offset);
	DSV32_TRY(check_layout(f, err));
	DSV32_TRY(copy_strings(f, err));
	for (i = 0; i < n; i++) /* entries moved: rebuild the name index */
		f->by_name[i] = &f->entries[i];
	qsort(f->by_name, n, sizeof *f->by_name, cmp_entry_ptr_name);
	return DSV32_OK;
}

/* Validate f->base[0..size) and build the entry tables (rules 1-8 of §1.5). */
static dsv32_status parse_file(dsv32_st_file *f, dsv32_error *err)
{
	if (f->size < 8)
		return ST_FAIL(err, f->label, "HeaderTooSmall: file is %zu bytes, expected at least "
			       "8", f->size);
	uint64_t N = 0;
	for (int i = 7; i >= 0; i--)
		N = (N << 8) | f->base[i];
	if (N > DSV32_ST_MAX_HEADER)
		return ST_FAIL(err, f->label, "HeaderTooLarge: header length %llu exceeds the cap %u",
			       (unsigned long long)N, DSV32_ST_MAX_HEADER);
	if (N < 8)
		return ST_FAIL(err, f->label, "HeaderTooSmall: header length %llu, expected at "
			       "least 8", (unsigned long long)N);
	if (N > f->size - 8)
		return ST_FAIL(err, f->label, "InvalidHeaderLength: header length %llu runs past "
			       "the file size %zu", (unsigned long long)N, f->size);
	const char *h = (const char *)f->base + 8;
	size_t bad;
	if (!dsv32_st_utf8_valid((const unsigned char *)h, (size_t)N, &bad))
		return ST_FAIL(err, f->label, "InvalidHeader: header is not valid UTF-8 (byte %zu)",
			       bad);
	if (h[0] != '{')
		return ST_FAIL(err, f->label, "InvalidHeaderStart: header begins with 0x%02x, "
			       "expected '{'", (unsigned char)h[0]);
	const char *end = NULL;
	cJSON *root = cJSON_ParseWithLengthOpts(h, (size_t)N, &end, 0);
	if (!root) {
		size_t at = end && end >= h && end <= h + N ? (size_t)(end - h) : 0;
		return ST_FAIL(err, f->label, "InvalidHeaderDeserialization: JSON syntax error near "
			       "header byte %zu", at);
	}
	dsv32_status rc;
	if (!cJSON_IsObject(root)) {
		rc = ST_FAIL(err, f->label, "InvalidHeaderDeserialization: header is not a JSON "
			     "object");
		goto out_free_json;
	}
	for (const char *p = end; p < h + N; p++)
		if (*p != ' ') {
			rc = ST_FAIL(err, f->label, "InvalidHeaderDeserialization: byte 0x%02x after "
				     "the JSON object at header byte %zu (only spaces may pad it)",
				     (unsigned char)*p, (size_t)(p - h));
			goto out_free_json;
		}
	rc = scan_literals(h, (size_t)(end - h), f->label, err);
	if (rc != DSV32_OK)
		goto out_free_json;
	f->data = f->base + 8 + N;
	f->data_size = f->size - 8 - N;
	rc = parse_tensors(f, root, err);
out_free_json:
	cJSON_Delete(root);
	return rc;
}

static dsv32_st_file *file_new(const char *label, dsv32_error *err)
{
	dsv32_st_file *f = calloc(1, sizeof *f);
	if (f)
		f->label = strdup(label ? label : "(memory)");
	if (!f || !f->label) {
		free(f);
		DSV32_FAIL(err, DSV32_E_NOMEM, "%s: allocating a file handle", label);
		return NULL;
	}
	return f;
}

dsv32_status dsv32_st_open_mem(dsv32_st_file **out, const void *buf, size_t len, const char *label,
			       dsv32_error *err)
{
	*out = NULL;
	dsv32_st_file *f = file_new(label, err);
	if (!f)
		return DSV32_E_NOMEM;
	f->base = buf;
	f->size = buf ? len : 0;
	dsv32_status rc = parse_file(f, err);
	if (rc != DSV32_OK) {
		dsv32_st_close(f);
		return rc;
	}
	*out = f;
	return DSV32_OK;
}

dsv32_status dsv32_st_open(dsv32_st_file **out, const char *path, dsv32_error *err)
{
	*out = NULL;
	/* O_NONBLOCK: opening a FIFO (or a device) named *.safetensors must not block forever;
	 * the S_ISREG check below then refuses it */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		int e = errno;
		return DSV32_FAIL_SYS(err, e == ENOENT ? DSV32_E_NOTFOUND : DSV32_E_IO, e,
				      "%s: cannot open: %s", path, strerror(e));
	}
	struct stat st;
	dsv32_status rc;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		rc = DSV32_FAIL(err, DSV32_E_IO, "%s: not a regular file", path);
		goto out_close;
	}
	dsv32_st_file *f = file_new(path, err);
	if (!f) {
		rc = DSV32_E_NOMEM;
		goto out_close;
	}
	f->size = (size_t)st.st_size;
	if (f->size > 0) {
		void *p = mmap(NULL, f->size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (p == MAP_FAILED) {
			int e = errno;
			dsv32_st_close(f);
			rc = DSV32_FAIL_SYS(err, DSV32_E_IO, e, "%s: mmap of %lld bytes failed: %s",
					    path, (long long)st.st_size, strerror(e));
			goto out_close;
		}
		f->base = p;
		f->mapped = true;
	}
	rc = parse_file(f, err);
	if (rc != DSV32_OK)
		dsv32_st_close(f);
	else
		*out = f;
out_close:
	close(fd);
	return rc;
}

void dsv32_st_close(dsv32_st_file *f)
{
	if (!f)
		return;
	if (f->mapped)
		munmap((void *)f->base, f->size);
	free(f->entries);
	free(f->by_name);
	free(f->meta_key);
	free(f->meta_val);
	free(f->strings);
	free(f->label);
	free(f);
}

const char *dsv32_st_path(const dsv32_st_file *f)
{
	return f->label;
}

size_t dsv32_st_count(const dsv32_st_file *f)
{
	return f->n;
}

const dsv32_st_entry *dsv32_st_entry_at(const dsv32_st_file *f, size_t i)
{
	return i < f->n ? &f->entries[i] : NULL;
}

const dsv32_st_entry *dsv32_st_find(const dsv32_st_file *f, const char *name)
{
	dsv32_st_entry key = {.name = name};
	const dsv32_st_entry *kp = &key;
	const dsv32_st_entry **hit =
		bsearch(&kp, f->by_name, f->n, sizeof *f->by_name, cmp_entry_ptr_name);
	return hit ? *hit : NULL;
}

const void *dsv32_st_data(const dsv32_st_file *f, const dsv32_st_entry *e)
{
	return f->data + e->begin;
}

/* madvise wants page-aligned ranges: widened outward, so a neighbour's page may go too (it
 * faults in again on its next read: harmless on a read-only file mapping). */
static void drop_range(const dsv32_st_file *f, uint64_t begin, uint64_t end)
{
	uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE);
	uintptr_t lo = (uintptr_t)(f->data + begin) & ~(pg - 1);
	uintptr_t hi = ((uintptr_t)(f->data + end) + pg - 1) & ~(pg - 1);
	uintptr_t top = ((uintptr_t)(f->base + f->size) + pg - 1) & ~(pg - 1);
	if (hi > top)
		hi = top;
	if (hi > lo)
		(void)madvise((void *)lo, hi - lo, MADV_DONTNEED); /* advice: a failure costs RSS only */
}

uint64_t dsv32_st_release_prefix(const dsv32_st_file *f, const char *prefix)
{
	if (!f || !f->mapped)
		return 0;
	size_t k = strlen(prefix);
	uint64_t total = 0, rb = 0, re = 0; /* the run of matched bytes being gathered */
	for (size_t i = 0; i < f->n; i++) { /* file-offset order: adjacent matches join one call */
		const dsv32_st_entry *e = &f->entries[i];
		if (strncmp(e->name, prefix, k) != 0)
			continue;
		total += e->end - e->begin;
		if (re != rb && e->begin != re) {
			drop_range(f, rb, re);
			rb = re = 0;
		}
		if (re == rb)
			rb = e->begin;
		re = e->end;
	}
	if (re != rb)
		drop_range(f, rb, re);
	return total;
}

dsv32_status dsv32_st_tensor(const dsv32_st_file *f, const char *name, dsv32_tensor *out,
			     dsv32_error *err)
{
	const dsv32_st_entry *e = dsv32_st_find(f, name);
	if (!e)
		return DSV32_FAIL(err, DSV32_E_NOTFOUND, "%s: tensor \"%s\" not found", f->label,
				  name);
	/* listed-only dtypes (F4, F6_*, ...): a view would promise values no code here can read */
	if (!dsv32_dtype_is_readable(e->dtype))
		return DSV32_FAIL(err, DSV32_E_DTYPE, "%s: tensor \"%s\": dtype %s is not "
				  "supported (the file lists it; its values cannot be read)", f->label,
				  name, dsv32_dtype_name(e->dtype));
	/* read-only mapping: the view is const in spirit; writing through it faults */
	*out = dsv32_tensor_view((void *)(uintptr_t)dsv32_st_data(f, e), e->dtype, e->ndim,
				 e->shape);
	return DSV32_OK;
}

const char *dsv32_st_metadata(const dsv32_st_file *f, const char *key)
{
	if (f->n_meta == 0)
		return NULL;
	const char **hit = bsearch(&key, f->meta_key, f->n_meta, sizeof *f->meta_key, cmp_str_ptr);
	return hit ? f->meta_val[hit - f->meta_key] : NULL;
}

size_t dsv32_st_metadata_count(const dsv32_st_file *f)
{
	return f->n_meta;
}

void dsv32_st_metadata_at(const dsv32_st_file *f, size_t i, const char **key, const char **value)
{
	*key = i < f->n_meta ? f->meta_key[i] : NULL;
	*value = i < f->n_meta ? f->meta_val[i] : NULL;
}
