/* conv_util.c: converter test helpers (conv_util.h). */
#include "tests/support/conv_util.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "convert/convert.h"
#include "core/fsutil.h"
#include "core/safetensors.h"
#include "tests/support/test_common.h"

const char *conv_golden_dir(void)
{
	static char buf[4096];
	const char *src = getenv("DSV32_SOURCE_DIR");
#ifdef DSV32_SOURCE_DIR
	if (!src)
		src = DSV32_SOURCE_DIR;
#endif
	snprintf(buf, sizeof buf, "%s/fixtures/golden/ref_tiny", src ? src : ".");
	return buf;
}

bool conv_mkdtemp(char *buf, size_t len)
{
	const char *t = getenv("TMPDIR");
	snprintf(buf, len, "%s/dsv32-conv-XXXXXX", t && *t ? t : "/tmp");
	return mkdtemp(buf) != NULL;
}

void conv_rm_rf(const char *path)
{
	const char *t = getenv("TMPDIR");
	if (!strncmp(path, "/tmp/", 5) || (t && *t && !strncmp(path, t, strlen(t))))
		(void)dsv32_remove_tree(path, NULL);
}

bool conv_copy_file(const char *src, const char *dst)
{
	char *buf = NULL;
	size_t n = 0;
	if (dsv32_read_file(src, (size_t)1 << 32, &buf, &n, NULL) != DSV32_OK)
		return false;
	FILE *f = fopen(dst, "wb");
	bool ok = f && fwrite(buf, 1, n, f) == n;
	if (f)
		ok &= fclose(f) == 0;
	free(buf);
	return ok;
}

bool conv_flip_byte(const char *path, uint64_t off)
{
	FILE *f = fopen(path, "r+b");
	if (!f)
		return false;
	int c = -1;
	bool ok = fseek(f, (long)off, SEEK_SET) == 0 && (c = fgetc(f)) != EOF &&
		  fseek(f, (long)off, SEEK_SET) == 0 && fputc(c ^ 1, f) != EOF;
	return fclose(f) == 0 && ok;
}

uint64_t conv_tensor_file_offset(const char *path, const char *tensor)
{
	dsv32_st_file *f;
	uint64_t off = 0;
	unsigned char h[8];
	if (dsv32_st_open(&f, path, NULL) != DSV32_OK)
		return 0;
	const dsv32_st_entry *e = dsv32_st_find(f, tensor);
	FILE *fp = fopen(path, "rb");
	if (e && fp && fread(h, 1, 8, fp) == 8) {
		uint64_t n = 0;
		for (int i = 7; i >= 0; i--)
			n = n << 8 | h[i];
		off = 8 + n + e->begin;
	}
	if (fp)
		fclose(fp);
	dsv32_st_close(f);
	return off;
}

bool conv_dir_has_prefix(const char *dir, const char *prefix)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	bool found = false;
	if (!d)
		return false;
	while (!found && (de = readdir(d)))
		found = !strncmp(de->d_name, prefix, strlen(prefix));
	closedir(d);
	return found;
}

int conv_run_cli(char *out, size_t len, const char *args_fmt, ...)
{
	const char *cli = getenv("DSV32_CLI");
	if (!cli || !*cli || access(cli, X_OK) != 0)
		return -77; /* no CLI built (yet): the CLI parts of a test are skipped */
	char args[8192], cmd[9000];
	va_list ap;
	va_start(ap, args_fmt);
	vsnprintf(args, sizeof args, args_fmt, ap);
	va_end(ap);
	snprintf(cmd, sizeof cmd, "'%s' %s 2>&1", cli, args);
	return tc_run_capture(cmd, out, len);
}

static bool shape_equal(const cJSON *shape, const dsv32_st_entry *e)
{
	if (cJSON_GetArraySize(shape) != e->ndim)
		return false;
	for (int i = 0; i < e->ndim; i++)
		if ((int64_t)cJSON_GetArrayItem(shape, i)->valuedouble != e->shape[i])
			return false;
	return true;
}

int conv_check_manifest(const char *manifest, const char *dir, bool *whole_files_equal,
			char *msg, size_t msglen)
{
	char *text = NULL;
	size_t n;
	int bad = 0;
	*whole_files_equal = true;
	msg[0] = '\0';
#define PROBLEM(...) do { if (!bad++) snprintf(msg, msglen, __VA_ARGS__); } while (0)
	if (dsv32_read_file(manifest, 1 << 26, &text, &n, NULL) != DSV32_OK) {
		snprintf(msg, msglen, "%s: unreadable", manifest);
		return 1;
	}
	cJSON *root = cJSON_Parse(text);
	free(text);
	cJSON *file;
	cJSON_ArrayForEach(file, root) {
		char path[4096];
		dsv32_path_join(path, sizeof path, dir, file->string);
		char *bytes = NULL;
		size_t nb = 0;
		if (dsv32_read_file(path, (size_t)1 << 32, &bytes, &nb, NULL) != DSV32_OK) {
			PROBLEM("%s: missing", path);
			continue;
		}
		char hex[65];
		dsv32_sha256_hex(bytes, nb, hex, NULL);
		free(bytes);
		if (strcmp(hex, cJSON_GetObjectItem(file, "sha256")->valuestring))
			*whole_files_equal = false;
		dsv32_st_file *f;
		if (dsv32_st_open(&f, path, NULL) != DSV32_OK) {
			PROBLEM("%s: not a safetensors file", path);
			continue;
		}
		cJSON *tensors = cJSON_GetObjectItem(file, "tensors"), *t;
		if ((size_t)cJSON_GetArraySize(tensors) != dsv32_st_count(f))
			PROBLEM("%s: %zu tensors, manifest lists %d", path, dsv32_st_count(f),
				cJSON_GetArraySize(tensors));
		cJSON_ArrayForEach(t, tensors) {
			const dsv32_st_entry *e = dsv32_st_find(f, t->string);
			if (!e) {
				PROBLEM("%s: %s missing", path, t->string);
				continue;
			}
			dsv32_sha256_hex(dsv32_st_data(f, e), e->end - e->begin, hex, NULL);
			if (strcmp(dsv32_dtype_name(e->dtype), cJSON_GetObjectItem(t, "dtype")->valuestring))
				PROBLEM("%s: %s dtype %s", path, t->string, dsv32_dtype_name(e->dtype));
			else if (!shape_equal(cJSON_GetObjectItem(t, "shape"), e))
				PROBLEM("%s: %s shape differs", path, t->string);
			else if (strcmp(hex, cJSON_GetObjectItem(t, "sha256")->valuestring))
				PROBLEM("%s: %s sha256 %s differs from the manifest", path, t->string, hex);
		}
		dsv32_st_close(f);
	}
	cJSON_Delete(root);
#undef PROBLEM
	return bad;
}

int conv_compare_ckpts(const char *a, const char *b, char *msg, size_t msglen)
{
	dsv32_ckpt *ca = NULL, *cb = NULL;
	int bad = 0;
	msg[0] = '\0';
	if (dsv32_ckpt_open(&ca, a, NULL) != DSV32_OK || dsv32_ckpt_open(&cb, b, NULL) != DSV32_OK) {
		snprintf(msg, msglen, "cannot open %s or %s", a, b);
		dsv32_ckpt_close(ca);
		return 1;
	}
	if (dsv32_ckpt_count(ca) != dsv32_ckpt_count(cb)) {
		snprintf(msg, msglen, "%zu tensors vs %zu", dsv32_ckpt_count(ca), dsv32_ckpt_count(cb));
		bad++;
	}
	for (size_t i = 0; i < dsv32_ckpt_count(ca); i++) {
		const dsv32_st_file *fa, *fb;
		const dsv32_st_entry *ea = dsv32_ckpt_entry_at(ca, i, &fa);
		const dsv32_st_entry *eb = dsv32_ckpt_find(cb, ea->name, &fb);
		bool same = eb && ea->dtype == eb->dtype && ea->ndim == eb->ndim &&
			    ea->end - ea->begin == eb->end - eb->begin &&
			    !memcmp(ea->shape, eb->shape, sizeof(int64_t) * (size_t)ea->ndim) &&
			    !memcmp(dsv32_st_data(fa, ea), dsv32_st_data(fb, eb), ea->end - ea->begin);
		if (!same && !bad++)
			snprintf(msg, msglen, "%s: %s", ea->name, eb ? "differs" : "missing in second");
	}
	dsv32_ckpt_close(ca);
	dsv32_ckpt_close(cb);
	return bad;
}
