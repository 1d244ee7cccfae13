/* provenance.c: checkpoint fingerprints and build facts for reports. */
#include "compare/provenance.h"

#include <dirent.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core/fsutil.h"

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Hash name, size and the 8 + N header bytes of one safetensors file. */
static dsv32_status hash_header(EVP_MD_CTX *md, const char *path, const char *name,
				dsv32_error *err)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return DSV32_FAIL(err, DSV32_E_IO, "%s: cannot open", path);
	struct stat st;
	unsigned char len8[8];
	dsv32_status rc = DSV32_OK;
	if (fstat(fileno(f), &st) != 0 || fread(len8, 1, 8, f) != 8) {
		rc = DSV32_FAIL(err, DSV32_E_FORMAT, "%s: not a safetensors file", path);
		goto out_close;
	}
	uint64_t n = 0;
	for (int i = 7; i >= 0; i--)
		n = (n << 8) | len8[i];
	if (n > 100000000u || 8 + n > (uint64_t)st.st_size) {
		rc = DSV32_FAIL(err, DSV32_E_FORMAT, "%s: header length %llu out of range", path,
				(unsigned long long)n);
		goto out_close;
	}
	char *hdr = malloc(n ? n : 1);
	if (!hdr || fread(hdr, 1, n, f) != n) {
		free(hdr);
		rc = DSV32_FAIL(err, DSV32_E_IO, "%s: reading the header", path);
		goto out_close;
	}
	char meta[64];
	snprintf(meta, sizeof meta, "%lld\n", (long long)st.st_size);
	EVP_DigestUpdate(md, name, strlen(name) + 1);
	EVP_DigestUpdate(md, meta, strlen(meta));
	EVP_DigestUpdate(md, hdr, n);
	free(hdr);
out_close:
	fclose(f);
	return rc;
}

static dsv32_status list_files(const char *dir, char ***names, size_t *n, dsv32_error *err)
{
	DIR *d = opendir(dir);
	if (!d)
		return DSV32_FAIL(err, DSV32_E_IO, "%s: cannot open directory", dir);
	size_t cap = 0;
	*names = NULL;
	*n = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		size_t l = strlen(e->d_name);
		if (l < 12 || strcmp(e->d_name + l - 12, ".safetensors") != 0)
			continue;
		if (*n == cap) {
			cap = cap ? cap * 2 : 16;
			char **p = realloc(*names, cap * sizeof *p);
			if (!p)
				break;
			*names = p;
		}
		(*names)[(*n)++] = strdup(e->d_name);
	}
	closedir(d);
	qsort(*names, *n, sizeof **names, cmp_str);
	return DSV32_OK;
}

dsv32_status dsv32_checkpoint_fingerprint(const char *path, char hex[65], dsv32_error *err)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	if (!md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(md);
		return DSV32_FAIL(err, DSV32_E_INTERNAL, "SHA-256 unavailable");
	}
	dsv32_status rc = DSV32_OK;
	if (!dsv32_path_is_dir(path)) {
		const char *base = strrchr(path, '/');
		rc = hash_header(md, path, base ? base + 1 : path, err);
	} else {
		char **names = NULL;
		size_t n = 0;
		rc = list_files(path, &names, &n, err);
		if (rc == DSV32_OK && n == 0)
			rc = DSV32_FAIL(err, DSV32_E_NOTFOUND, "%s: no .safetensors files", path);
		for (size_t i = 0; i < n; i++) {
			char p[4096];
			if (rc == DSV32_OK && dsv32_path_join(p, sizeof p, path, names[i]))
				rc = hash_header(md, p, names[i], err);
			free(names[i]);
		}
		free(names);
	}
	unsigned char dig[32];
	unsigned int dl = 0;
	EVP_DigestFinal_ex(md, dig, &dl);
	EVP_MD_CTX_free(md);
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", dig[i]);
	return rc;
}

void dsv32_prov_add_build(dsv32_cmp_result *r)
{
	char buf[128];
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
	dsv32_cmp_result_prov(r, "date", buf);
	dsv32_cmp_result_prov(r, "tool_version", DSV32_VERSION);
#ifdef DSV32_HAVE_CUDA
	const char *cuda = "cuda on";
#else
	const char *cuda = "cuda off";
#endif
	snprintf(buf, sizeof buf, "gcc %d.%d, %s", __GNUC__, __GNUC_MINOR__, cuda);
	dsv32_cmp_result_prov(r, "build", buf);
}
