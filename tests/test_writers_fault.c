/* test_writers_fault.c: writers and converters when the disk fills or an input shrinks (issue
 * 14). Each writer (HDF5 tap dump, safetensors tap dump, dsv32_write_file_atomic behind the
 * JSON/Markdown/HTML reports, the converters) runs in a forked child against a full disk and
 * must return an I/O error naming the file, leave nothing at the output, and let the child
 * exit normally: before the fix a failed H5Fclose left the file half-open and HDF5 crashed
 * closing it again in H5_term_library at exit (SIGSEGV). Two kinds of full disk: a file-size
 * limit (RLIMIT_FSIZE with SIGXFSZ ignored: EFBIG; runs everywhere) and, as root, a 1 MiB tmpfs
 * mounted by the test and filled up (ENOSPC; skipped with the reason otherwise). Then the
 * converters on an input truncated while they read it: an error, not SIGBUS. */
#include <hdf5.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "compare/tapfile.h"
#include "convert/convert.h"
#include "core/fsutil.h"
#include "fixtures/generator.h"
#include "tests/support/conv_util.h"

static char root[4096]; /* per-run scratch directory */

/* ---- a store of 1 MiB of taps: 64 of 16 KiB, so that a dump fills the disk part way through
 * (as the issue's `dump` did) rather than at its first write ---- */

#define STORE_BYTES ((size_t)1 << 20)

static void make_store(dsv32_tapstore *s)
{
	int64_t shape[2] = {16, 256};
	dsv32_tensor t;
	dsv32_tapstore_init(s);
	assert_int_equal(dsv32_tensor_alloc(&t, DSV32_F32, 2, shape, NULL), DSV32_OK);
	for (int64_t i = 0; i < 16 * 256; i++)
		((float *)t.data)[i] = (float)i * 0.25f;
	for (int i = 0; i < 64; i++) {
		char name[64];
		snprintf(name, sizeof name, "step%d.layers.%d.x", i % 2, i);
		assert_int_equal(dsv32_tapstore_put(s, name, &t, NULL), DSV32_OK);
	}
	dsv32_tensor_free(&t);
}

/* ---- the writers, each run in a child: 0 when it failed as it must ---- */

typedef enum { W_H5, W_TAPS_ST, W_ATOMIC, W_HF_TO_REF, W_COUNT } writer;
static const char *const writer_name[W_COUNT] = {"hdf5 tap dump", "safetensors tap dump",
						 "dsv32_write_file_atomic", "convert hf-to-ref"};

/* Run writer w with its output under dir; *out gets the output path. */
static dsv32_status run_writer(writer w, const char *dir, char *out, size_t len,
			       dsv32_error *err)
{
	static const char *const leaf[W_COUNT] = {"d.h5", "d.safetensors", "r.json", "ref"};
	const char *keys[1] = {"format"}, *vals[1] = {"dsv32-taps"};
	snprintf(out, len, "%s/%s", dir, leaf[w]);
	dsv32_tapstore s;
	dsv32_status rc;
	if (w == W_HF_TO_REF) {
		char hf[4300];
		snprintf(hf, sizeof hf, "%s/hf", conv_golden_dir());
		dsv32_hf_to_ref_opts o = {hf, NULL, 1, out, {0}};
		dsv32_conv_result r;
		rc = dsv32_convert_hf_to_ref(&o, &r, err);
		if (rc == DSV32_OK)
			dsv32_conv_result_free(&r);
		return rc;
	}
	if (w == W_ATOMIC) { /* the JSON/Markdown/HTML reports' writer */
		char *buf = calloc(1, STORE_BYTES);
		assert_non_null(buf);
		rc = dsv32_write_file_atomic(out, buf, STORE_BYTES, err);
		free(buf);
		return rc;
	}
	make_store(&s);
	if (w == W_H5)
		rc = dsv32_tapfile_write_h5(&s, out, keys, vals, 1, err);
	else
		rc = dsv32_tapfile_write(&s, out, keys, vals, 1, err);
	dsv32_tapstore_free(&s);
	return rc;
}

/* In the child: the writer fails with E_IO naming its output, and no HDF5 id is left open for
 * the library's exit handler. The exit status says which check failed (0: all held). */
static int child_body(writer w, const char *dir, rlim_t fsize)
{
	char out[4300];
	dsv32_error err = {0};
	/* cmocka's handlers would catch a crash and run the rest of the suite in this child */
	const int crash[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
	for (size_t i = 0; i < sizeof crash / sizeof crash[0]; i++)
		signal(crash[i], SIG_DFL);
	if (fsize) {
		struct rlimit rl = {fsize, fsize};
		signal(SIGXFSZ, SIG_IGN); /* a write past the limit is then EFBIG, as ENOSPC */
		if (setrlimit(RLIMIT_FSIZE, &rl) != 0)
			return 10;
	}
	dsv32_status rc = run_writer(w, dir, out, sizeof out, &err);
	if (rc != DSV32_E_IO) {
		fprintf(stderr, "%s: status %d, expected E_IO: %s\n", writer_name[w], rc, err.what);
		return 11;
	}
	if (!strstr(err.what, out)) {
		fprintf(stderr, "%s: message does not name %s: %s\n", writer_name[w], out, err.what);
		return 12;
	}
	if (H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL) != 0)
		return 13;
	return 0; /* exit() runs HDF5's atexit handler: a half-open file would crash it here */
}

/* Fork, run the writer, and check the child exited 0 and dir holds `keep` entries only. */
static void expect_clean_failure(writer w, const char *dir, rlim_t fsize, size_t keep)
{
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		exit(child_body(w, dir, fsize));
	int st = 0;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	if (WIFSIGNALED(st))
		fail_msg("%s on a full disk: killed by signal %d", writer_name[w], WTERMSIG(st));
	if (WEXITSTATUS(st) != 0)
		fail_msg("%s on a full disk: check %d failed", writer_name[w], WEXITSTATUS(st));
	char cmd[4400], buf[64] = {0};
	snprintf(cmd, sizeof cmd, "ls -A '%s' | wc -l", dir);
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	assert_non_null(fgets(buf, sizeof buf, p));
	pclose(p);
	if ((size_t)atoi(buf) != keep) {
		snprintf(cmd, sizeof cmd, "ls -lA '%s' >&2", dir);
		assert_int_equal(system(cmd), 0);
		fail_msg("%s: %d entries left in %s, expected %zu", writer_name[w], atoi(buf), dir,
			 keep);
	}
}

static void test_writers_on_a_file_size_limit_fail_cleanly(void **state)
{
	(void)state;
	char dir[4200];
	snprintf(dir, sizeof dir, "%s/fsize", root);
	assert_int_equal(dsv32_mkdirs(dir, NULL), DSV32_OK);
	for (int w = 0; w < W_COUNT; w++)
		expect_clean_failure((writer)w, dir, 256 << 10, 0);
}

/* A 1 MiB tmpfs at dir with all but 32 KiB taken by a filler file; false when it cannot be
 * mounted (not root, no CAP_SYS_ADMIN), with the reason in why. */
static bool mount_full_tmpfs(const char *dir, char *why, size_t len)
{
	if (mount("tmpfs", dir, "tmpfs", 0, "size=1m,mode=0755") != 0) {
		snprintf(why, len, "cannot mount a tmpfs (%s; the tmpfs case needs root)",
			 strerror(errno));
		return false;
	}
	char filler[4300];
	snprintf(filler, sizeof filler, "%s/filler", dir);
	int fd = open(filler, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	static char zeros[32 << 10];
	for (int i = 0; fd >= 0 && i < 31; i++)
		if (write(fd, zeros, sizeof zeros) != (ssize_t)sizeof zeros)
			break;
	if (fd >= 0)
		close(fd);
	return true;
}

static void test_writers_on_a_full_tmpfs_fail_cleanly(void **state)
{
	(void)state;
	char dir[4200], why[256];
	snprintf(dir, sizeof dir, "%s/full", root);
	assert_int_equal(dsv32_mkdirs(dir, NULL), DSV32_OK);
	if (!mount_full_tmpfs(dir, why, sizeof why)) {
		printf("skipped: %s\n", why);
		skip();
	}
	for (int w = 0; w < W_COUNT; w++)
		expect_clean_failure((writer)w, dir, 0, 1); /* only the filler stays */
	assert_int_equal(umount2(dir, MNT_DETACH), 0);
}

/* ---- inputs cut short while a converter reads them ---- */

typedef struct {
	const char *victim; /* truncated to half its size at the first progress report */
	bool done;
} cutter;

static void cut_on_progress(void *user, uint64_t done, uint64_t total)
{
	(void)done;
	(void)total;
	cutter *c = user;
	if (c->done)
		return;
	c->done = true;
	FILE *f = fopen(c->victim, "rb");
	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	long size = ftell(f);
	fclose(f);
	assert_int_equal(truncate(c->victim, size / 2), 0);
}

static void expect_changed_size(dsv32_status rc, const dsv32_error *err, const char *victim,
				const char *out)
{
	assert_int_equal(rc, DSV32_E_IO);
	static const char tail[] = ": file changed size while being read";
	const char *at = strstr(err->what, victim);
	if (!at || strncmp(at + strlen(victim), tail, strlen(tail)) != 0)
		fail_msg("message '%s' lacks '%s%s'", err->what, victim, tail);
	assert_false(dsv32_path_exists(out));
}

static void test_input_shrinking_during_hf_to_ref_is_an_error(void **state)
{
	(void)state;
	char dir[4200], src[4400], dst[4400], out[4300];
	snprintf(dir, sizeof dir, "%s/shrink_hf", root);
	assert_int_equal(dsv32_mkdirs(dir, NULL), DSV32_OK);
	const char *files[2] = {"config.json", "model.safetensors"};
	for (int i = 0; i < 2; i++) {
		snprintf(src, sizeof src, "%s/hf/%s", conv_golden_dir(), files[i]);
		snprintf(dst, sizeof dst, "%s/%s", dir, files[i]);
		assert_true(conv_copy_file(src, dst));
	}
	cutter c = {dst, false};
	snprintf(out, sizeof out, "%s/shrink_ref", root);
	dsv32_hf_to_ref_opts o = {dir, NULL, 2, out, {cut_on_progress, &c, false, false}};
	dsv32_conv_result r;
	dsv32_error err = {0};
	expect_changed_size(dsv32_convert_hf_to_ref(&o, &r, &err), &err, dst, out);
	assert_true(c.done);
	assert_false(conv_dir_has_prefix(root, "shrink_ref.tmp."));
}

/* The case of the issue: `convert ref-to-hf --dtype bf16` reads whole fp8 weights with memcpy
 * from the mapping, where a cut shard raised SIGBUS. */
static void test_shard_shrinking_during_bf16_ref_to_hf_is_an_error(void **state)
{
	(void)state;
	char gen[4200], ref[4200], shard[4400], cfg[4400], out[4300];
	dsv32_error err = {0};
	snprintf(gen, sizeof gen, "%s/fp8", root);
	snprintf(ref, sizeof ref, "%s/fp8_mp1", root);
	assert_int_equal(dsv32_fixture_write("tiny", DSV32_WDTYPE_FP8, 3, gen, 0, false, &err),
			 DSV32_OK);
	dsv32_hf_to_ref_opts ho = {gen, NULL, 1, ref, {0}};
	dsv32_conv_result r;
	assert_int_equal(dsv32_convert_hf_to_ref(&ho, &r, &err), DSV32_OK);
	dsv32_conv_result_free(&r);
	snprintf(shard, sizeof shard, "%s/model0-mp1.safetensors", ref);
	snprintf(cfg, sizeof cfg, "%s/config.json", ref);
	snprintf(out, sizeof out, "%s/fp8_bf16", root);
	cutter c = {shard, false};
	const char *in[1] = {ref};
	dsv32_ref_to_hf_opts o = {in, 1, cfg, out, DSV32_OUT_BF16, 0,
				  {cut_on_progress, &c, false, false}, 0};
	expect_changed_size(dsv32_convert_ref_to_hf(&o, &r, &err), &err, shard, out);
	assert_true(c.done);
	assert_false(conv_dir_has_prefix(root, "fp8_bf16.tmp."));
}

static int group_setup(void **state)
{
	(void)state;
	return conv_mkdtemp(root, sizeof root) ? 0 : -1;
}

static int group_teardown(void **state)
{
	(void)state;
	char full[4200];
	snprintf(full, sizeof full, "%s/full", root);
	(void)umount2(full, MNT_DETACH); /* a failed test may leave it mounted */
	conv_rm_rf(root);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_writers_on_a_file_size_limit_fail_cleanly),
		cmocka_unit_test(test_writers_on_a_full_tmpfs_fail_cleanly),
		cmocka_unit_test(test_input_shrinking_during_hf_to_ref_is_an_error),
		cmocka_unit_test(test_shard_shrinking_during_bf16_ref_to_hf_is_an_error),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
