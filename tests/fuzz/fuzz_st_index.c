/* fuzz_st_index.c: libFuzzer target for sharded checkpoints (dsv32_ckpt_open with
 * model.safetensors.index.json, core/safetensors.h). The reader has no in-memory entry point for
 * the index, so the input is written as the index file of a scratch directory (on /dev/shm when
 * it exists) that also holds two tiny valid shards:
 *   s1.safetensors: "a" F32 [2], "b" BF16 [1, 2]     s2.safetensors: "c" U8 [3]
 * and a sub-directory "sub/" holding s3.safetensors ("d" I64 [1]). An accepted checkpoint is
 * walked through every accessor. */
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/safetensors.h"
#include "tests/fuzz/fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char g_dir[256];
static char g_index[320];

static void put_file(const char *name, const void *buf, size_t len)
{
	char path[400];
	snprintf(path, sizeof path, "%s/%s", g_dir, name);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(buf, 1, len, f) != len || fclose(f) != 0)
		abort();
}

/* A safetensors file from a header text (padded to 8) and data bytes. */
static void put_st(const char *name, const char *hdr, const void *bytes, size_t nbytes)
{
	size_t hn = strlen(hdr), pad = (8 - hn % 8) % 8;
	uint8_t buf[512];
	uint64_t n = hn + pad;
	for (int i = 0; i < 8; i++)
		buf[i] = (uint8_t)(n >> (8 * i));
	memcpy(buf + 8, hdr, hn);
	memset(buf + 8 + hn, ' ', pad);
	memcpy(buf + 8 + n, bytes, nbytes);
	put_file(name, buf, 8 + n + nbytes);
}

static void setup(void)
{
	const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	snprintf(g_dir, sizeof g_dir, "%s/dsv32-fuzz-index-%d", base, (int)getpid());
	mkdir(g_dir, 0700);
	char sub[300];
	snprintf(sub, sizeof sub, "%s/sub", g_dir);
	mkdir(sub, 0700);
	static const uint8_t d1[12] = {0, 0, 128, 63, 0, 0, 0, 64, 128, 63, 0, 64};
	static const uint8_t d2[3] = {1, 2, 3};
	static const uint8_t d3[8] = {7};
	put_st("s1.safetensors",
	       "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
	       "\"b\":{\"dtype\":\"BF16\",\"shape\":[1,2],\"data_offsets\":[8,12]}}",
	       d1, sizeof d1);
	put_st("s2.safetensors", "{\"c\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[0,3]}}",
	       d2, sizeof d2);
	put_st("sub/s3.safetensors",
	       "{\"d\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]}}", d3, sizeof d3);
	snprintf(g_index, sizeof g_index, "%s/model.safetensors.index.json", g_dir);
}

static void cleanup(void)
{
	const char *names[] = {"model.safetensors.index.json", "s1.safetensors", "s2.safetensors",
			       "sub/s3.safetensors"};
	char path[400];
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		snprintf(path, sizeof path, "%s/%s", g_dir, names[i]);
		unlink(path);
	}
	snprintf(path, sizeof path, "%s/sub", g_dir);
	rmdir(path);
	rmdir(g_dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!g_dir[0]) {
		setup();
		atexit(cleanup);
	}
	put_file("model.safetensors.index.json", data, size);
	dsv32_ckpt *c = NULL;
	dsv32_error err = {0};
	dsv32_status rc = dsv32_ckpt_open(&c, g_dir, &err);
	fuzz_check_err(rc, &err, "dsv32_ckpt_open");
	if (rc != DSV32_OK) {
		if (c)
			abort();
		return 0;
	}
	for (size_t i = 0; i < dsv32_ckpt_count(c); i++) {
		const dsv32_st_file *f = NULL;
		const dsv32_st_entry *e = dsv32_ckpt_entry_at(c, i, &f);
		const dsv32_st_file *g = NULL;
		if (!e || !f || dsv32_ckpt_find(c, e->name, &g) != e || g != f)
			abort();
		dsv32_tensor t;
		if (dsv32_ckpt_tensor(c, e->name, &t, &err) != DSV32_OK)
			abort();
	}
	for (size_t i = 0; i < dsv32_ckpt_file_count(c); i++)
		if (!dsv32_ckpt_file_at(c, i))
			abort();
	dsv32_ckpt_close(c);
	return 0;
}
