/* infile.c: opening and reading input files (infile.h): non-blocking open, fstat before any
 * read, regular files only, per-kind size caps; duplicate keys in parsed JSON. */
#include "core/infile.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MIB ((size_t)1 << 20)

static const struct {
	const char *name;
	size_t limit;
} kinds[DSV32_INFILE_KIND_COUNT] = {
	[DSV32_INFILE_CONFIG] = {"config file", 16 * MIB},
	[DSV32_INFILE_INDEX] = {"index file", 256 * MIB},
	[DSV32_INFILE_TOKENS] = {"token file", 64 * MIB},
	[DSV32_INFILE_BUDGET] = {"budget file", 16 * MIB},
	[DSV32_INFILE_REPORT] = {"report file", 256 * MIB},
};

const char *dsv32_infile_kind_name(dsv32_infile_kind kind)
{
	return (unsigned)kind < DSV32_INFILE_KIND_COUNT ? kinds[kind].name : "input file";
}

size_t dsv32_infile_limit(dsv32_infile_kind kind)
{
	return (unsigned)kind < DSV32_INFILE_KIND_COUNT ? kinds[kind].limit : 0;
}

static const char *type_name(mode_t m)
{
	return S_ISFIFO(m) ? "fifo" : S_ISDIR(m) ? "directory" : S_ISSOCK(m) ? "socket"
	     : S_ISCHR(m) ? "character device" : S_ISBLK(m) ? "block device"
	     : S_ISLNK(m) ? "symbolic link" : "unknown type";
}

/* open(2) failed with e: say why, naming the file. A socket cannot be opened at all (ENXIO), so
 * stat tells what the path is before falling back to strerror. */
static dsv32_status open_failed(const char *path, int e, dsv32_error *err)
{
	struct stat st;
	if (e == ENOENT)
		return DSV32_FAIL_SYS(err, DSV32_E_NOTFOUND, e, "%s: cannot open: %s", path,
				      strerror(e));
	if (e == ELOOP)
		return DSV32_FAIL_SYS(err, DSV32_E_IO, e, "%s: cannot open: symlink loop (%s)",
				      path, strerror(e));
	if (stat(path, &st) == 0 && !S_ISREG(st.st_mode))
		return DSV32_FAIL_SYS(err, DSV32_E_IO, e, "%s: not a regular file (%s)", path,
				      type_name(st.st_mode));
	return DSV32_FAIL_SYS(err, DSV32_E_IO, e, "%s: cannot open: %s", path, strerror(e));
}

dsv32_status dsv32_infile_open(const char *path, int *fd, struct stat *st, dsv32_error *err)
{
	struct stat local;
	struct stat *s = st ? st : &local;
	*fd = -1;
	/* O_NONBLOCK: opening a FIFO for reading otherwise waits for a writer, forever */
	int f = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (f < 0)
		return open_failed(path, errno, err);
	if (fstat(f, s) != 0) {
		int e = errno;
		close(f);
		return DSV32_FAIL_SYS(err, DSV32_E_IO, e, "%s: fstat failed: %s", path,
				      strerror(e));
	}
	if (!S_ISREG(s->st_mode)) {
		close(f);
		return DSV32_FAIL(err, DSV32_E_IO, "%s: not a regular file (%s)", path,
				  type_name(s->st_mode));
	}
	int fl = fcntl(f, F_GETFL);
	if (fl >= 0)
		(void)fcntl(f, F_SETFL, fl & ~O_NONBLOCK); /* cosmetic for a regular file */
	*fd = f;
	return DSV32_OK;
}

dsv32_status dsv32_infile_check(const char *path, dsv32_error *err)
{
	int fd;
	DSV32_TRY(dsv32_infile_open(path, &fd, NULL, err));
	close(fd);
	return DSV32_OK;
}

/* "16 MiB" for whole MiB, else "N bytes". */
static const char *limit_str(char *buf, size_t len, size_t max)
{
	if (max >= MIB && max % MIB == 0)
		snprintf(buf, len, "%zu MiB", max / MIB);
	else
		snprintf(buf, len, "%zu bytes", max);
	return buf;
}

static dsv32_status too_large(const char *path, unsigned long long n, bool grew, size_t max,
			      const char *what, dsv32_error *err)
{
	char lim[48];
	limit_str(lim, sizeof lim, max);
	if (grew)
		return DSV32_FAIL(err, DSV32_E_IO, "%s: grew past the limit of %s (%s) while being "
				  "read", path, lim, what);
	return DSV32_FAIL(err, DSV32_E_IO, "%s: %llu bytes, over the limit of %s (%s)", path, n,
			  lim, what);
}

/* Read fd to its end into *out (NUL-terminated). hint: the size fstat saw. At most max + 1
 * bytes are read: enough to see that the file is over the limit. */
static dsv32_status read_all(int fd, const char *path, size_t hint, size_t max, const char *what,
			     char **out, size_t *len, dsv32_error *err)
{
	size_t hard = max < SIZE_MAX - 1 ? max + 1 : SIZE_MAX - 1;
	size_t cap = hint < 4095 ? 4096 : hint + 1; /* + 1: EOF is seen without a realloc */
	if (cap > hard)
		cap = hard;
	char *buf = malloc(cap + 1);
	if (!buf)
		return DSV32_FAIL(err, DSV32_E_NOMEM, "%s: allocating %zu bytes", path, cap + 1);
	size_t n = 0;
	for (;;) {
		if (n == cap) {
			if (cap >= hard)
				break;
			size_t ncap = cap > hard / 2 ? hard : cap * 2;
			char *nb = realloc(buf, ncap + 1);
			if (!nb) {
				free(buf);
				return DSV32_FAIL(err, DSV32_E_NOMEM, "%s: allocating %zu bytes",
						  path, ncap + 1);
			}
			buf = nb;
			cap = ncap;
		}
		ssize_t r = read(fd, buf + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;
			free(buf);
			return DSV32_FAIL_SYS(err, DSV32_E_IO, e, "%s: read failed: %s", path,
					      strerror(e));
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	if (n > max) {
		free(buf);
		return too_large(path, 0, true, max, what, err);
	}
	buf[n] = '\0';
	*out = buf;
	if (len)
		*len = n;
	return DSV32_OK;
}

dsv32_status dsv32_infile_read_capped(const char *path, size_t max, const char *what, char **out,
				      size_t *len, dsv32_error *err)
{
	*out = NULL;
	if (len)
		*len = 0;
	int fd;
	struct stat st;
	DSV32_TRY(dsv32_infile_open(path, &fd, &st, err));
	dsv32_status rc;
	if (st.st_size > 0 && (unsigned long long)st.st_size > max)
		rc = too_large(path, (unsigned long long)st.st_size, false, max, what, err);
	else
		rc = read_all(fd, path, (size_t)st.st_size, max, what, out, len, err);
	close(fd);
	return rc;
}

dsv32_status dsv32_infile_read(const char *path, dsv32_infile_kind kind, char **out, size_t *len,
			       dsv32_error *err)
{
	if ((unsigned)kind >= DSV32_INFILE_KIND_COUNT) {
		*out = NULL;
		return DSV32_FAIL(err, DSV32_E_INTERNAL, "%s: unknown input kind %d", path,
				  (int)kind);
	}
	return dsv32_infile_read_capped(path, kinds[kind].limit, kinds[kind].name, out, len, err);
}

/* ---- duplicate JSON keys ---- */

static int cmp_key(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static const char *key_of(const cJSON *c)
{
	return c->string ? c->string : "";
}

/* A key that occurs twice among the members of object o, or NULL. Small objects pairwise,
 * large ones (weight_map) sorted. *nomem on allocation failure. */
static const char *dup_key(const cJSON *o, bool *nomem)
{
	size_t n = 0;
	for (const cJSON *c = o->child; c; c = c->next)
		n++;
	if (n <= 16) {
		for (const cJSON *a = o->child; a; a = a->next)
			for (const cJSON *b = a->next; b; b = b->next)
				if (strcmp(key_of(a), key_of(b)) == 0)
					return key_of(a);
		return NULL;
	}
	const char **v = malloc(n * sizeof *v);
	if (!v) {
		*nomem = true;
		return NULL;
	}
	size_t i = 0;
	for (const cJSON *c = o->child; c; c = c->next)
		v[i++] = key_of(c);
	qsort(v, n, sizeof *v, cmp_key);
	const char *hit = NULL;
	for (i = 1; i < n && !hit; i++)
		if (strcmp(v[i - 1], v[i]) == 0)
			hit = v[i];
	free(v);
	return hit;
}

/* Check node and everything below it. where[0..used) names node ("rope_scaling",
 * "taps[3].metrics"; empty at the top); deeper names are cut at the buffer's end. */
static dsv32_status check_node(const cJSON *node, char *where, size_t cap, size_t used,
			       const char *label, dsv32_error *err)
{
	if (!cJSON_IsObject(node) && !cJSON_IsArray(node))
		return DSV32_OK;
	if (cJSON_IsObject(node)) {
		bool nomem = false;
		const char *k = dup_key(node, &nomem);
		if (nomem)
			return DSV32_FAIL(err, DSV32_E_NOMEM, "%s: checking JSON keys", label);
		if (k)
			return DSV32_FAIL(err, DSV32_E_FORMAT,
					  "%s: duplicate key \"%.100s\" %s%.200s (ambiguous: Python's "
					  "json keeps the last value, cJSON the first)", label, k,
					  used ? "in " : "at the top level", where);
	}
	size_t i = 0;
	for (const cJSON *c = node->child; c; c = c->next, i++) {
		int n = cJSON_IsArray(node) ? snprintf(where + used, cap - used, "[%zu]", i)
					    : snprintf(where + used, cap - used, "%s%s",
						       used ? "." : "", key_of(c));
		size_t u = n < 0 || (size_t)n >= cap - used ? cap - 1 : used + (size_t)n;
		DSV32_TRY(check_node(c, where, cap, u, label, err));
		where[used] = '\0';
	}
	return DSV32_OK;
}

dsv32_status dsv32_json_check_unique_keys(const cJSON *root, const char *label, dsv32_error *err)
{
	char where[256] = "";
	return root ? check_node(root, where, sizeof where, 0, label, err) : DSV32_OK;
}
