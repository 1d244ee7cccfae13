/* st_writer.c: streaming, atomic safetensors writer (docs/spec/checkpoints.md §1). Tensors are
 * declared first; the header (compact JSON, space-padded to a multiple of 8, as the Python
 * library writes it) goes out with the first data. Output lives in "<path>.tmp.<pid>" until
 * commit renames it; any failure removes the temporary.
 *
 * Where the file system takes O_DIRECT and is a disk's (ext4, xfs, ...; not tmpfs), the bytes go
 * through stages of STAGE_BYTES aligned to DIO_ALIGN, and full stages reach the file through a
 * second, O_DIRECT descriptor as whole-block writes that bypass the page cache, made by a
 * writer thread (core/bgwrite.h) while the next stage fills: the kernel's copy of every byte
 * into the cache (single-threaded, most of a fixture's system time) and the writeback that
 * commit's fsync waited for become one memcpy here (docs/perf.md "Onto a disk"). The part
 * stages before a hole and at commit go through the page cache. Where O_DIRECT is refused, or
 * DSV32_NO_DIRECT_IO=1, writes go straight to the file as before. The bytes on disk are the
 * same either way. */
#include "core/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <linux/magic.h>

#include "core/bgwrite.h"
#include "core/fsutil.h"
#include "core/safetensors_internal.h"

typedef struct {
	char *name;
	dsv32_dtype dtype;
	int ndim;
	int64_t shape[DSV32_MAX_DIMS];
	uint64_t nbytes;
} wtensor;

#define DIO_ALIGN 4096u         /* offsets, lengths and addresses of O_DIRECT writes */
#define STAGE_BYTES (4u << 20) /* one O_DIRECT write */
#define NSTAGES 4              /* one filling, up to three queued for the writer thread */

struct dsv32_st_writer {
	char *path;
	char *tmp;
	int fd;          /* -1 once closed */
	bool tmp_exists; /* the temporary is ours to remove */
	bool failed;     /* a call failed: nothing more is written, commit fails */
	bool header_done;
	wtensor *t;
	size_t n, cap;
	char **mkey, **mval;
	size_t n_meta, cap_meta;
	uint64_t total;   /* declared data bytes */
	uint64_t written; /* data bytes written so far */
	bool hole_at_end; /* the last data was skipped: commit extends the file to its size */
	int dfd;                        /* the temporary opened O_DIRECT (-1: plain writes at the
					 * fd's offset, no stages) */
	uint64_t stage_off;             /* file offset of the stage's first byte (DIO_ALIGN) */
	size_t stage_len;               /* bytes staged */
	unsigned char *stages[NSTAGES]; /* in rotation with the writer thread */
	int cur;                        /* the stage filling: stages[cur] */
	dsv32_bgwrite *bg;              /* the writer thread (NULL: writes here) */
	bool bg_tried;                  /* started (or failed to) at the first full stage */
};

typedef struct {
	char *p;
	size_t len, cap;
	bool oom;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *p = realloc(b->p, cap);
		if (!p) {
			b->oom = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void sb_str(sbuf *b, const char *s)
{
	sb_put(b, s, strlen(s));
}

/* A JSON string literal, escaped as serde_json does (", \, and control characters). */
static void sb_json_str(sbuf *b, const char *s)
{
	sb_put(b, "\"", 1);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		char esc[8];
		const char *e = c == '"' ? "\\\"" : c == '\\' ? "\\\\" : c == '\n' ? "\\n"
			      : c == '\r' ? "\\r" : c == '\t' ? "\\t" : c == '\b' ? "\\b"
			      : c == '\f' ? "\\f" : NULL;
		if (!e && c < 0x20) {
			snprintf(esc, sizeof esc, "\\u%04x", c);
			e = esc;
		}
		if (e)
			sb_str(b, e);
		else
			sb_put(b, (const char *)&c, 1);
	}
	sb_put(b, "\"", 1);
}

static void sb_u64(sbuf *b, uint64_t v)
{
	char tmp[24];
	snprintf(tmp, sizeof tmp, "%llu", (unsigned long long)v);
	sb_str(b, tmp);
}

/* Close and remove the temporary; the writer only accepts commit/abort afterwards. */
static void discard(dsv32_st_writer *w)
{
	dsv32_bgwrite_stop(w->bg);
	w->bg = NULL;
	if (w->dfd >= 0)
		close(w->dfd);
	w->dfd = -1;
	if (w->fd >= 0)
		close(w->fd);
	w->fd = -1;
	if (w->tmp_exists)
		unlink(w->tmp);
	w->tmp_exists = false;
	w->failed = true;
}

static void writer_free(dsv32_st_writer *w)
{
	for (size_t i = 0; i < w->n; i++)
		free(w->t[i].name);
	for (size_t i = 0; i < w->n_meta; i++) {
		free(w->mkey[i]);
		free(w->mval[i]);
	}
	free(w->t);
	free(w->mkey);
	free(w->mval);
	free(w->tmp);
	free(w->path);
	dsv32_bgwrite_stop(w->bg);
	if (w->dfd >= 0)
		close(w->dfd);
	for (int i = 0; i < NSTAGES; i++)
		free(w->stages[i]);
	free(w);
}

/* Whether the temporary lives in memory (tmpfs): there O_DIRECT is the same copy into pages
 * plus ours, and plain writes were faster (docs/perf.md "Onto a disk"). */
static bool in_memory(int fd)
{
	struct statfs sf;
	return fstatfs(fd, &sf) == 0 && sf.f_type == TMPFS_MAGIC;
}

/* A second descriptor of the temporary with O_DIRECT, and a stage for it, where the file
 * system allows it and is not in memory. Whole stages go out through it; the pieces before a
 * hole and the rest at commit go through the plain one (w->fd, the page cache), so that a
 * checkpoint of many holes does not wait on the device once per hole. */
static void direct_try(dsv32_st_writer *w)
{
	const char *off = getenv("DSV32_NO_DIRECT_IO");
	void *p = NULL;
	if ((off && off[0] == '1') || in_memory(w->fd) ||
	    posix_memalign(&p, DIO_ALIGN, STAGE_BYTES) != 0)
		return;
	w->dfd = open(w->tmp, O_WRONLY | O_DIRECT | O_CLOEXEC);
	if (w->dfd < 0) {
		free(p);
		return;
	}
	w->stages[0] = p;
}

/* The writer thread and the other stages, once, at the first write-out of a stage; without
 * them (no memory, no thread) stages are written out here. */
static void bg_try(dsv32_st_writer *w)
{
	w->bg_tried = true;
	for (int i = 1; i < NSTAGES; i++) {
		void *p = NULL;
		if (posix_memalign(&p, DIO_ALIGN, STAGE_BYTES) != 0)
			return;
		w->stages[i] = p;
	}
	dsv32_bgwrite_start(&w->bg, w->dfd, NSTAGES);
}

/* The stage filling. */
static inline unsigned char *stage(const dsv32_st_writer *w)
{
	return w->stages[w->cur];
}

/* Write stage[0 .. len) out at its offset (len a multiple of DIO_ALIGN): queued for the
 * writer thread, which takes it while the next stage fills, or written here. */
static int stage_flush(dsv32_st_writer *w, size_t len)
{
	if (!w->bg_tried)
		bg_try(w);
	if (!w->bg)
		return dsv32_write_direct(w->dfd, stage(w), len, w->stage_off);
	int e = dsv32_bgwrite_send(w->bg, stage(w), len, w->stage_off);
	if (!e) /* free again: bgwrite_send returns with at most NSTAGES - 1 writes pending */
		w->cur = (w->cur + 1) % NSTAGES;
	return e;
}

/* Write stage[0 .. len) at its offset through the page cache (w->fd). */
static int stage_flush_cached(dsv32_st_writer *w, size_t len)
{
	return dsv32_write_full(w->fd, stage(w), len, (int64_t)w->stage_off);
}

/* A full stage out, and the stage restarted after it. */
static int stage_next(dsv32_st_writer *w)
{
	int e = stage_flush(w, STAGE_BYTES);
	if (!e) {
		w->stage_off += STAGE_BYTES;
		w->stage_len = 0;
	}
	return e;
}

/* n bytes into the stage, written out whenever it fills: from p, or zeros where p is NULL. */
static int stage_in(dsv32_st_writer *w, const char *p, uint64_t n)
{
	while (n > 0) {
		size_t k = STAGE_BYTES - w->stage_len < n ? STAGE_BYTES - w->stage_len : (size_t)n;
		if (p) {
			memcpy(stage(w) + w->stage_len, p, k);
			p += k;
		} else {
			memset(stage(w) + w->stage_len, 0, k);
		}
		w->stage_len += k;
		n -= k;
		int e = w->stage_len == STAGE_BYTES ? stage_next(w) : 0;
		if (e)
			return e;
	}
	return 0;
}

/* The next n bytes of the file. */
static int out_put(dsv32_st_writer *w, const void *data, size_t n)
{
	return w->dfd >= 0 ? stage_in(w, data, n) : dsv32_write_full(w->fd, data, n, -1);
}

/* n bytes of zeros, a hole over the whole blocks they cover: the stage is zero-filled up to
 * the first such block and written (through the page cache), and restarts at the last one's
 * end with the zeros after it; a skip within a block or two is staged zeros. */
static int out_skip(dsv32_st_writer *w, uint64_t n)
{
	if (w->dfd < 0) {
		if (n > (uint64_t)INT64_MAX)
			return EOVERFLOW;
		return lseek(w->fd, (off_t)n, SEEK_CUR) < 0 ? errno : 0;
	}
	uint64_t pos = w->stage_off + w->stage_len, end = pos + n;
	uint64_t hole0 = (pos + DIO_ALIGN - 1) & ~(uint64_t)(DIO_ALIGN - 1);
	uint64_t hole1 = end & ~(uint64_t)(DIO_ALIGN - 1);
	if (hole1 <= hole0)
		return stage_in(w, NULL, n);
	size_t whole = (size_t)(hole0 - w->stage_off); /* <= STAGE_BYTES: stage_off is aligned */
	memset(stage(w) + w->stage_len, 0, whole - w->stage_len);
	int e = whole ? stage_flush_cached(w, whole) : 0;
	if (e)
		return e;
	w->stage_off = hole1;
	w->stage_len = (size_t)(end - hole1);
	memset(stage(w), 0, w->stage_len);
	return 0;
}

/* Before commit's fsync: the writer thread's queue drained, the staged rest through the page
 * cache, and the file's size. */
static int out_finish(dsv32_st_writer *w)
{
	if (w->dfd < 0) {
		if (!w->hole_at_end) /* a seek past the end does not grow the file: set its size */
			return 0;
		off_t end = lseek(w->fd, 0, SEEK_CUR);
		return end < 0 || ftruncate(w->fd, end) != 0 ? errno : 0;
	}
	int e = w->bg ? dsv32_bgwrite_drain(w->bg) : 0;
	dsv32_bgwrite_stop(w->bg);
	w->bg = NULL;
	if (!e && w->stage_len)
		e = stage_flush_cached(w, w->stage_len);
	if (!e && ftruncate(w->fd, (off_t)(w->stage_off + w->stage_len)) != 0)
		e = errno;
	return e;
}

dsv32_status dsv32_st_writer_open(dsv32_st_writer **out, const char *path, dsv32_error *err)
{
	*out = NULL;
	dsv32_st_writer *w = calloc(1, sizeof *w);
	if (w)
		w->dfd = -1;
	size_t len = strlen(path) + 32;
	if (!w || !(w->path = strdup(path)) || !(w->tmp = malloc(len))) {
		if (w)
			free(w->path);
		free(w);
		return DSV32_FAIL(err, DSV32_E_NOMEM, "%s: allocating a writer", path);
	}
	snprintf(w->tmp, len, "%s.tmp.%ld", path, (long)getpid());
	w->fd = open(w->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (w->fd < 0) {
		int e = errno;
		DSV32_FAIL_SYS(err, e == ENOENT ? DSV32_E_NOTFOUND : DSV32_E_IO, e,
			       "%s: cannot create: %s", w->tmp, strerror(e));
		writer_free(w);
		return err ? err->code : DSV32_E_IO;
	}
	w->tmp_exists = true;
	direct_try(w);
	*out = w;
	return DSV32_OK;
}

/* Declarations are only accepted before the first write and on a healthy writer. */
static dsv32_status check_declarable(const dsv32_st_writer *w, const char *what, dsv32_error *err)
{
	if (w->failed)
		return DSV32_FAIL(err, DSV32_E_USAGE, "%s: %s after a failure", w->path, what);
	if (w->header_done)
		return DSV32_FAIL(err, DSV32_E_USAGE, "%s: %s after data was written", w->path,
				  what);
	return DSV32_OK;
}

static bool is_utf8(const char *s)
{
	return dsv32_st_utf8_valid((const unsigned char *)s, strlen(s), NULL);
}

dsv32_status dsv32_st_writer_meta(dsv32_st_writer *w, const char *key, const char *value,
				  dsv32_error *err)
{
	DSV32_TRY(check_declarable(w, "metadata", err));
	if (!is_utf8(key) || !is_utf8(value))
		return DSV32_FAIL(err, DSV32_E_USAGE, "%s: metadata \"%s\" is not valid UTF-8",
				  w->path, key);
	for (size_t i = 0; i < w->n_meta; i++) /* few keys: linear is fine */
		if (strcmp(w->mkey[i], key) == 0)
			return DSV32_FAIL(err, DSV32_E_USAGE, "%s: metadata key \"%s\" set twice",
					  w->path, key);
	if (w->n_meta == w->cap_meta) {
		size_t cap = w->cap_meta ? 2 * w->cap_meta : 4;
		char **k = realloc(w->mkey, cap * sizeof *k);
		if (k)
			w->mkey = k;
		char **v = k ? realloc(w->mval, cap * sizeof *v) : NULL;
		if (v)
			w->mval = v;
		if (!k || !v)
			return DSV32_FAIL(err, DSV32_E_NOMEM, "%s: metadata", w->path);
		w->cap_meta = cap;
	}
	char *k = strdup(key), *v = strdup(value);
	if (!k || !v) {
		free(k);
		free(v);
		return DSV32_FAIL(err, DSV32_E_NOMEM, "%s: metadata", w->path);
	}
	w->mkey[w->n_meta] = k;
	w->mval[w->n_meta++] = v;
	return DSV32_OK;
}

/* Bytes of a tensor: numel * bits / 8, as the reader (and the Python library) checks it. The
 * sub-byte types (F4, F6_*) must fill whole bytes. false on a bad shape or overflow. */
static bool tensor_bytes(dsv32_dtype dtype, int ndim, const int64_t *shape, uint64_t *out)
{
	int64_t numel = dsv32_shape_numel(ndim, shape);
	uint64_t bits = dsv32_dtype_bits(dtype);
	if (numel < 0 || (uint64_t)numel > UINT64_MAX / bits || (uint64_t)numel * bits % 8 != 0)
		return false;
	*out = (uint64_t)numel * bits / 8;
	return true;
}

dsv32_status dsv32_st_writer_declare(dsv32_st_writer *w, const char *name, dsv32_dtype dtype,
				     int ndim, const int64_t *shape, dsv32_error *err)
{
	char sb[160];
	DSV32_TRY(check_declarable(w, "declare", err));
	if (!name[0] || strcmp(name, "__metadata__") == 0 || !is_utf8(name))
		return DSV32_FAIL(err, DSV32_E_USAGE, "%s: invalid tensor name \"%s\"", w->path,
				  name);
	if ((unsigned)dtype >= DSV32_DTYPE_COUNT)
		return DSV32_FAIL(err, DSV32_E_DTYPE, "%s: tensor \"%s\": unknown dtype %d", w->path,
				  name, (int)dtype);
	if (ndim < 0 || ndim > DSV32_MAX_DIMS)
		return DSV32_FAIL(err, DSV32_E_SHAPE, "%s: tensor \"%s\": %d dims, expected 0..%d",
				  w->path, name, ndim, DSV32_MAX_DIMS);
	uint64_t nbytes;
	if (!tensor_bytes(dtype, ndim, shape, &nbytes) || nbytes > UINT64_MAX - w->total)
		return DSV32_FAIL(err, DSV32_E_SHAPE, "%s: tensor \"%s\": bad shape %s for %s%s",
				  w->path, name, dsv32_shape_str(sb, sizeof sb, ndim, shape),
				  dsv32_dtype_name(dtype),
				  dsv32_dtype_size(dtype) ? "" : " (not a whole number of bytes)");
	if (w->n == w->cap) {
		size_t cap = w->cap ? 2 * w->cap : 16;
		wtensor *t = realloc(w->t, cap * sizeof *t);
		if (!t)
			return DSV32_FAIL(err, DSV32_E_NOMEM, "%s: declaring %zu tensors", w->path,
					  cap);
		w->t = t;
		w->cap = cap;
	}
	wtensor *t = &w->t[w->n];
	*t = (wtensor){.name = strdup(name), .dtype = dtype, .ndim = ndim,
		       .nbytes = nbytes};
	if (!t->name)
		return DSV32_FAIL(err, DSV32_E_NOMEM, "%s: tensor name", w->path);
	for (int d = 0; d < ndim; d++)
		t->shape[d] = shape[d];
	w->total += t->nbytes;
	w->n++;
	return DSV32_OK;
}

static int cmp_wtensor_name(const void *pa, const void *pb)
{
	return strcmp((*(const wtensor *const *)pa)->name, (*(const wtensor *const *)pb)->name);
}

/* Refuse duplicate names (sorted check, so declare stays O(1) for 100k tensors). */
static dsv32_status check_unique(const dsv32_st_writer *w, dsv32_error *err)
{
	const wtensor **by = malloc((w->n ? w->n : 1) * sizeof *by);
	if (!by)
		return DSV32_FAIL(err, DSV32_E_NOMEM, "%s: checking names", w->path);
	for (size_t i = 0; i < w->n; i++)
		by[i] = &w->t[i];
	qsort(by, w->n, sizeof *by, cmp_wtensor_name);
	dsv32_status rc = DSV32_OK;
	for (size_t i = 1; i < w->n && rc == DSV32_OK; i++)
		if (strcmp(by[i - 1]->name, by[i]->name) == 0)
			rc = DSV32_FAIL(err, DSV32_E_USAGE, "%s: tensor \"%s\" declared twice",
					w->path, by[i]->name);
	free(by);
	return rc;
}

/* Build and write the 8-byte length and the padded header. */
static dsv32_status emit_header(dsv32_st_writer *w, dsv32_error *err)
{
	DSV32_TRY(check_unique(w, err));
	sbuf b = {0};
	sb_str(&b, "{");
	if (w->n_meta) {
		sb_str(&b, "\"__metadata__\":{");
		for (size_t i = 0; i < w->n_meta; i++) {
			if (i)
				sb_str(&b, ",");
			sb_json_str(&b, w->mkey[i]);
			sb_str(&b, ":");
			sb_json_str(&b, w->mval[i]);
		}
		sb_str(&b, w->n ? "}," : "}");
	}
	uint64_t at = 0;
	for (size_t i = 0; i < w->n; i++) {
		const wtensor *t = &w->t[i];
		if (i)
			sb_str(&b, ",");
		sb_json_str(&b, t->name);
		sb_str(&b, ":{\"dtype\":\"");
		sb_str(&b, dsv32_dtype_name(t->dtype));
		sb_str(&b, "\",\"shape\":[");
		for (int d = 0; d < t->ndim; d++) {
			if (d)
				sb_str(&b, ",");
			sb_u64(&b, (uint64_t)t->shape[d]);
		}
		sb_str(&b, "],\"data_offsets\":[");
		sb_u64(&b, at);
		sb_str(&b, ",");
		sb_u64(&b, at + t->nbytes);
		sb_str(&b, "]}");
		at += t->nbytes;
	}
	sb_str(&b, "}");
	while (b.len % 8)
		sb_str(&b, " ");
	dsv32_status rc = DSV32_OK;
	if (b.oom) {
		rc = DSV32_FAIL(err, DSV32_E_NOMEM, "%s: building the header", w->path);
	} else if (b.len > DSV32_ST_MAX_HEADER) {
		rc = DSV32_FAIL(err, DSV32_E_USAGE, "%s: header of %zu bytes exceeds the cap %u",
				w->path, b.len, DSV32_ST_MAX_HEADER);
	} else {
		unsigned char len8[8];
		for (int i = 0; i < 8; i++)
			len8[i] = (unsigned char)((uint64_t)b.len >> (8 * i));
		int e = out_put(w, len8, 8);
		if (!e)
			e = out_put(w, b.p, b.len);
		if (e)
			rc = DSV32_FAIL_SYS(err, DSV32_E_IO, e, "%s: writing the header: %s", w->tmp,
					    strerror(e));
	}
	free(b.p);
	if (rc == DSV32_OK)
		w->header_done = true;
	return rc;
}

dsv32_status dsv32_st_writer_write(dsv32_st_writer *w, const void *data, size_t nbytes,
				   dsv32_error *err)
{
	if (w->failed)
		return DSV32_FAIL(err, DSV32_E_USAGE, "%s: write after a failure", w->path);
	dsv32_status rc = DSV32_OK;
	if (!w->header_done && (rc = emit_header(w, err)) != DSV32_OK)
		goto out_discard;
	if (nbytes > w->total - w->written) {
		rc = DSV32_FAIL(err, DSV32_E_USAGE, "%s: writing %zu bytes at data offset %llu runs "
				"past the %llu declared bytes", w->path, nbytes,
				(unsigned long long)w->written, (unsigned long long)w->total);
		goto out_discard;
	}
	int e = out_put(w, data, nbytes);
	if (e) {
		rc = DSV32_FAIL_SYS(err, DSV32_E_IO, e, "%s: write failed: %s", w->tmp, strerror(e));
		goto out_discard;
	}
	w->written += nbytes;
	if (nbytes)
		w->hole_at_end = false;
	return DSV32_OK;

out_discard:
	discard(w);
	return rc;
}

dsv32_status dsv32_st_writer_skip(dsv32_st_writer *w, uint64_t nbytes, dsv32_error *err)
{
	if (w->failed)
		return DSV32_FAIL(err, DSV32_E_USAGE, "%s: skip after a failure", w->path);
	dsv32_status rc = DSV32_OK;
	if (!w->header_done && (rc = emit_header(w, err)) != DSV32_OK)
		goto out_discard;
	if (nbytes > w->total - w->written) {
		rc = DSV32_FAIL(err, DSV32_E_USAGE, "%s: skipping %llu bytes at data offset %llu "
				"runs past the %llu declared bytes", w->path,
				(unsigned long long)nbytes, (unsigned long long)w->written,
				(unsigned long long)w->total);
		goto out_discard;
	}
	if (nbytes == 0)
		return DSV32_OK;
	int e = out_skip(w, nbytes);
	if (e) {
		rc = DSV32_FAIL_SYS(err, DSV32_E_IO, e, "%s: seeking past %llu bytes: %s", w->tmp,
				    (unsigned long long)nbytes, strerror(e));
		goto out_discard;
	}
	w->written += nbytes;
	w->hole_at_end = true;
	return DSV32_OK;

out_discard:
	discard(w);
	return rc;
}

dsv32_status dsv32_st_writer_commit(dsv32_st_writer *w, dsv32_error *err)
{
	dsv32_status rc = DSV32_OK;
	int e;
	if (w->failed) {
		rc = DSV32_FAIL(err, DSV32_E_USAGE, "%s: commit after a failure; nothing written",
				w->path);
		goto out_discard;
	}
	if (!w->header_done && (rc = emit_header(w, err)) != DSV32_OK)
		goto out_discard;
	if (w->written != w->total) {
		rc = DSV32_FAIL(err, DSV32_E_USAGE, "%s: %llu data bytes written, %llu declared",
				w->path, (unsigned long long)w->written,
				(unsigned long long)w->total);
		goto out_discard;
	}
	if ((e = out_finish(w)) != 0) {
		rc = DSV32_FAIL_SYS(err, DSV32_E_IO, e, "%s: writing the last bytes: %s", w->tmp,
				    strerror(e));
		goto out_discard;
	}
	e = fsync(w->fd) != 0 ? errno : 0;
	if (close(w->fd) != 0 && !e)
		e = errno;
	w->fd = -1;
	if (e) {
		rc = DSV32_FAIL_SYS(err, DSV32_E_IO, e, "%s: flushing failed: %s", w->tmp,
				    strerror(e));
		goto out_discard;
	}
	w->fd = -1;
	if (rename(w->tmp, w->path) != 0) {
		e = errno;
		rc = DSV32_FAIL_SYS(err, DSV32_E_IO, e, "%s: rename from %s failed: %s", w->path,
				    w->tmp, strerror(e));
		goto out_discard;
	}
	w->tmp_exists = false;
	writer_free(w);
	return DSV32_OK;

out_discard:
	discard(w);
	writer_free(w);
	return rc;
}

void dsv32_st_writer_abort(dsv32_st_writer *w)
{
	if (!w)
		return;
	discard(w);
	writer_free(w);
}
