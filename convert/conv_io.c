/* conv_io.c: output sink with a bounded buffer, page release of mapped inputs, the atomic output
 * directory, *token* file copies, the safetensors library's tensor order and SHA-256. */
#include "convert/conv_internal.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/fsutil.h"

/* ---- sink ---- */

dsv32_status conv_sink_init(conv_sink *s, dsv32_error *err)
{
	memset(s, 0, sizeof *s);
	s->cap = CONV_BUF_BYTES;
	s->buf = malloc(s->cap);
	if (!s->buf)
		return DSV32_FAIL(err, DSV32_E_NOMEM, "output buffer of %zu bytes", s->cap);
	return DSV32_OK;
}

void conv_sink_free(conv_sink *s)
{
	free(s->buf);
	s->buf = NULL;
}

void conv_progress_add(conv_sink *s, uint64_t n)
{
	if (!s->done)
		return;
	*s->done += n;
	if (s->progress)
		s->progress(s->progress_user, *s->done, s->total);
}

dsv32_status conv_sink_flush(conv_sink *s, dsv32_error *err)
{
	if (s->len) {
		DSV32_TRY(dsv32_st_writer_write(s->w, s->buf, s->len, err));
		conv_progress_add(s, s->len);
		s->len = 0;
	}
	return DSV32_OK;
}

/* Pieces of at least this size go straight from their source (usually the read-only mapping of
 * an input file) to write(2): one kernel copy into the output's page cache. Smaller pieces are
 * gathered in the buffer first (a user-space copy) so that a strided slice (rows of a dim-1
 * split, 256 bytes each for an fp8 o_proj at W = 8) costs one large write rather than thousands
 * of small ones. Measured on this machine (2.7 GB, warm page cache -> tmpfs): gathering 2 MB
 * expert tensors through the buffer cost 2.4 s of CPU, writing them straight 1.7 s, the same as
 * sendfile(2) (bench/bench_convert.c; docs/convert.md). */
#define CONV_DIRECT_MIN ((size_t)64 << 10)

dsv32_status conv_sink_put(conv_sink *s, const void *p, size_t n, dsv32_error *err)
{
	const uint8_t *src = p;
	if (n >= CONV_DIRECT_MIN || n >= s->cap / 2) {
		DSV32_TRY(conv_sink_flush(s, err));
		while (n) {
			size_t k = n < CONV_CHUNK_BYTES ? n : CONV_CHUNK_BYTES;
			DSV32_TRY(dsv32_st_writer_write(s->w, src, k, err));
			conv_progress_add(s, k);
			src += k;
			n -= k;
		}
		return DSV32_OK;
	}
	if (s->len + n > s->cap)
		DSV32_TRY(conv_sink_flush(s, err));
	/* src is usually a mapped input: a fault is an input cut short (conv_guard.c) */
	if (!conv_read_mapped(s->buf + s->len, src, n))
		return DSV32_FAIL(err, DSV32_E_IO, "bus error reading a mapped input");
	s->len += n;
	return DSV32_OK;
}

static void advise(const void *p, size_t n, int advice)
{
	long page = sysconf(_SC_PAGESIZE); /* no cached static: verify calls this on several threads */
	if (page <= 0)
		page = 4096;
	if (!p || !n)
		return;
	uintptr_t a = (uintptr_t)p & ~(uintptr_t)(page - 1);
	uintptr_t b = ((uintptr_t)p + n + (uintptr_t)page - 1) & ~(uintptr_t)(page - 1);
	(void)madvise((void *)a, b - a, advice);
}

void conv_release(const void *p, size_t n)
{
	advise(p, n, MADV_DONTNEED);
}

void conv_willneed(const void *p, size_t n)
{
	advise(p, n, MADV_WILLNEED);
}

/* ---- output directory ---- */

dsv32_status conv_outdir_begin(conv_outdir *d, const char *out, bool force,
			       const char *const *inputs, size_t n_inputs, dsv32_error *err)
{
	if (n_inputs > INT_MAX)
		return DSV32_FAIL(err, DSV32_E_USAGE, "%zu inputs: too many", n_inputs);
	return dsv32_dirswap_begin(d, out, force, inputs, (int)n_inputs, err);
}

dsv32_status conv_outdir_commit(conv_outdir *d, dsv32_error *err)
{
	return dsv32_dirswap_commit(d, err);
}

void conv_outdir_abort(conv_outdir *d)
{
	dsv32_dirswap_abort(d);
}

dsv32_status conv_copy_token_files(const char *dir, const char *dst_dir, dsv32_error *err)
{
	DIR *dp = opendir(dir);
	if (!dp)
		return DSV32_FAIL_SYS(err, DSV32_E_IO, errno, "%s: cannot list: %s", dir,
				      strerror(errno));
	dsv32_status rc = DSV32_OK;
	struct dirent *de;
	while (rc == DSV32_OK && (de = readdir(dp))) {
		char src[4096], dst[4096];
		struct stat st;
		if (!strstr(de->d_name, "token") || !dsv32_path_join(src, sizeof src, dir, de->d_name) ||
		    stat(src, &st) != 0 || !S_ISREG(st.st_mode))
			continue;
		if (!dsv32_path_join(dst, sizeof dst, dst_dir, de->d_name)) {
			rc = DSV32_FAIL(err, DSV32_E_USAGE, "%s: path too long", de->d_name);
			break;
		}
		char *buf = NULL;
		size_t len = 0;
		rc = dsv32_read_file(src, (size_t)1 << 32, &buf, &len, err);
		if (rc == DSV32_OK)
			rc = dsv32_write_file_atomic(dst, buf, len, err);
		free(buf);
	}
	closedir(dp);
	return rc;
}

/* ---- tensor order ---- */

/* Position in the Rust safetensors `Dtype` enum, whose order `save_file` sorts by (descending):
 * BOOL < U8 < I8 < F8_E5M2 < F8_E4M3 < I16 < U16 < F16 < BF16 < I32 < U32 < F32 < F64 < I64 < U64. */
int conv_dtype_rank(dsv32_dtype t)
{
	switch (t) {
	case DSV32_BOOL: return 0;
	case DSV32_U8: return 1;
	case DSV32_I8: return 2;
	case DSV32_F8_E5M2: return 3;
	case DSV32_F8_E4M3: return 4;
	case DSV32_I16: return 5;
	case DSV32_U16: return 6;
	case DSV32_F16: return 7;
	case DSV32_BF16: return 8;
	case DSV32_I32: return 9;
	case DSV32_U32: return 10;
	case DSV32_F32: return 11;
	case DSV32_F64: return 12;
	case DSV32_I64: return 13;
	case DSV32_U64: return 14;
	default: return -1;
	}
}

int conv_cmp_st_order(dsv32_dtype da, const char *na, dsv32_dtype db, const char *nb)
{
	int ra = conv_dtype_rank(da), rb = conv_dtype_rank(db);
	if (ra != rb)
		return ra > rb ? -1 : 1;
	return strcmp(na, nb);
}

/* ---- SHA-256 ---- */

dsv32_status dsv32_sha256_hex(const void *data, size_t n, char hex[65], dsv32_error *err)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;
	if (!EVP_Digest(data, n, md, &len, EVP_sha256(), NULL) || len != 32)
		return DSV32_FAIL(err, DSV32_E_INTERNAL, "SHA-256 (OpenSSL EVP) failed");
	for (unsigned i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	return DSV32_OK;
}

static int cmp_entry_name(const void *a, const void *b)
{
	const dsv32_st_entry *x = *(const dsv32_st_entry *const *)a;
	const dsv32_st_entry *y = *(const dsv32_st_entry *const *)b;
	return strcmp(x->name, y->name);
}

bool conv_hash_tensor(EVP_MD_CTX *md, const char *name, dsv32_dtype dtype, int ndim,
		      const int64_t *shape, const void *data, size_t nbytes)
{
	char dims[256];
	size_t n = 0;
	dims[0] = '\0';
	for (int d = 0; d < ndim && n < sizeof dims; d++)
		n += (size_t)snprintf(dims + n, sizeof dims - n, "%s%lld", d ? "," : "",
				      (long long)shape[d]);
	const char *dt = dsv32_dtype_name(dtype);
	return EVP_DigestUpdate(md, name, strlen(name) + 1) &&
	       EVP_DigestUpdate(md, dt, strlen(dt) + 1) &&
	       EVP_DigestUpdate(md, dims, strlen(dims) + 1) && EVP_DigestUpdate(md, data, nbytes);
}

static bool hash_entry(EVP_MD_CTX *md, const dsv32_st_file *f, const dsv32_st_entry *e)
{
	return conv_hash_tensor(md, e->name, e->dtype, e->ndim, e->shape, dsv32_st_data(f, e),
				(size_t)(e->end - e->begin));
}

dsv32_status dsv32_ckpt_content_sha256(const dsv32_ckpt *c, char hex[65], dsv32_error *err)
{
	size_t n = dsv32_ckpt_count(c);
	const dsv32_st_entry **es = malloc((n + 1) * sizeof *es);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	bool ok = es && md && EVP_DigestInit_ex(md, EVP_sha256(), NULL);
	for (size_t i = 0; ok && i < n; i++)
		es[i] = dsv32_ckpt_entry_at(c, i, NULL);
	if (ok)
		qsort(es, n, sizeof *es, cmp_entry_name);
	for (size_t i = 0; ok && i < n; i++) {
		const dsv32_st_file *f = NULL;
		dsv32_ckpt_find(c, es[i]->name, &f);
		ok = f && hash_entry(md, f, es[i]);
	}
	unsigned char out[EVP_MAX_MD_SIZE];
	unsigned int len = 0;
	ok = ok && EVP_DigestFinal_ex(md, out, &len) && len == 32;
	EVP_MD_CTX_free(md);
	free(es);
	if (!ok)
		return DSV32_FAIL(err, DSV32_E_INTERNAL, "content SHA-256 (OpenSSL EVP) failed");
	for (unsigned i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", out[i]);
	return DSV32_OK;
}
