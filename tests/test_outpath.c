/* test_outpath.c: the output gate, the output lock and the directory swap (core/outpath.h,
 * core/dirswap.h; issue 14 items 1, 2, 5, 8). Every test runs in a fresh temporary directory
 * (the current directory during the test) and checks that a refusal touched nothing. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/dirswap.h"
#include "core/fsutil.h"
#include "core/outpath.h"
#include "tests/support/test_common.h"

static char start_cwd[PATH_MAX];

/* tmpdir fixture, entered: relative paths in the tests are inside it. The layout:
 *   ck/config.json   an input checkpoint      p/in/   an input inside p
 *   link -> ck       cfg.lnk -> ck/config.json */
static int setup(void **state)
{
	if (tc_setup_tmpdir(state) != 0 || !getcwd(start_cwd, sizeof start_cwd) ||
	    chdir(*state) != 0)
		return -1;
	FILE *f;
	if (mkdir("ck", 0755) || mkdir("p", 0755) || mkdir("p/in", 0755) ||
	    !(f = fopen("ck/config.json", "w")))
		return -1;
	fputs("{}\n", f);
	fclose(f);
	return symlink("ck", "link") || symlink("ck/config.json", "cfg.lnk") ? -1 : 0;
}

static int teardown(void **state)
{
	if (chdir(start_cwd) != 0)
		return -1;
	return tc_teardown_tmpdir(state);
}

static const char *const CK[] = {"ck"};

static void refused(const char *out, const char *const *in, int n, unsigned flags,
		    const char *needle)
{
	dsv32_error err = {0};
	size_t before = tc_count_dir_entries(".");
	dsv32_status st = dsv32_out_check(out, in, n, flags, &err);
	if (st != DSV32_E_USAGE || !strstr(err.what, needle))
		fail_msg("%s: status %d, message '%s' (expected '%s')", out, st, err.what, needle);
	assert_int_equal(tc_count_dir_entries("."), before);
}

static void accepted(const char *out, const char *const *in, int n, unsigned flags)
{
	dsv32_error err = {0};
	if (dsv32_out_check(out, in, n, flags, &err) != DSV32_OK)
		fail_msg("%s: refused: %s", out, err.what);
}

static void test_equal_inside_containing(void **state)
{
	(void)state;
	refused("ck", CK, 1, DSV32_OUT_DIR, "overlaps the input ck");
	refused("ck/", CK, 1, DSV32_OUT_DIR, "overlaps the input");
	refused("ck/config.json", CK, 1, DSV32_OUT_FILE, "overlaps the input");
	const char *cfg[] = {"ck/config.json"};
	refused("ck/config.json", cfg, 1, DSV32_OUT_FILE, "overlaps the input ck/config.json");
	refused("ck", cfg, 1, DSV32_OUT_DIR, "overlaps");      /* contains the input */
	const char *in[] = {"p/in"};
	refused("p", in, 1, DSV32_OUT_DIR, "overlaps the input p/in");
	accepted("ck2", CK, 1, DSV32_OUT_DIR);                 /* a name sharing a prefix */
	accepted("p/out", in, 1, DSV32_OUT_DIR);               /* a sibling */
	const char *none[] = {NULL, ""};
	accepted("new", none, 2, DSV32_OUT_DIR);
}

static void test_not_yet_existing_paths_under_an_input(void **state)
{
	(void)state;
	refused("ck/sub", CK, 1, DSV32_OUT_DIR, "overlaps");
	refused("ck/a/b/c", CK, 1, DSV32_OUT_DIR, "overlaps");
	refused("ck/new.h5", CK, 1, DSV32_OUT_FILE, "overlaps");
	refused("missing/../ck/x", CK, 1, DSV32_OUT_DIR, "overlaps");
	refused("ck/a/../../ck/b", CK, 1, DSV32_OUT_DIR, "overlaps");
	accepted("ck/../other/x", CK, 1, DSV32_OUT_DIR);
	const char *missing[] = {"gone/in"}; /* an input not there yet resolves the same way */
	refused("gone", missing, 1, DSV32_OUT_DIR, "overlaps");
}

static void test_relative_and_absolute_spellings_agree(void **state)
{
	char abs[PATH_MAX + 8];
	snprintf(abs, sizeof abs, "%s/ck", (const char *)*state);
	const char *in_abs[] = {abs}, *in_dot[] = {"./ck/"};
	refused("ck/x", in_abs, 1, DSV32_OUT_DIR, "overlaps");
	refused("ck//x", in_dot, 1, DSV32_OUT_DIR, "overlaps");
	refused(abs, in_dot, 1, DSV32_OUT_DIR, "overlaps");
	assert_true(dsv32_out_overlaps("ck", "./ck"));
	assert_true(dsv32_out_overlaps(abs, "ck/x"));
	assert_false(dsv32_out_overlaps("ck", "p"));
}

static void test_dot_dotdot_root_and_cwd_are_refused_as_dirs(void **state)
{
	(void)state;
	assert_int_equal(mkdir("p/in/deep", 0755), 0);
	assert_int_equal(chdir("p/in/deep"), 0);
	refused(".", NULL, 0, DSV32_OUT_DIR, "'.' and '..'");
	refused("..", NULL, 0, DSV32_OUT_DIR, "'.' and '..'");
	refused("./", NULL, 0, DSV32_OUT_DIR, "'.' and '..'");
	refused("x/.", NULL, 0, DSV32_OUT_DIR, "'.' and '..'");
	refused("/.", NULL, 0, DSV32_OUT_DIR, "'.' and '..'");
	refused("/", NULL, 0, DSV32_OUT_DIR, "the filesystem root");
	refused("//", NULL, 0, DSV32_OUT_DIR, "the filesystem root");
	refused("../deep", NULL, 0, DSV32_OUT_DIR, "the current directory");
	refused("../../in", NULL, 0, DSV32_OUT_DIR, "a parent of the current directory");
	refused("../../../p", NULL, 0, DSV32_OUT_DIR, "a parent of the current directory");
	char cwd[PATH_MAX];
	assert_non_null(getcwd(cwd, sizeof cwd));
	refused(cwd, NULL, 0, DSV32_OUT_DIR, "the current directory");
	accepted("../sibling", NULL, 0, DSV32_OUT_DIR);
	assert_int_equal(chdir("../../.."), 0);
}

static void test_symlinks_are_resolved(void **state)
{
	(void)state;
	refused("link/x", CK, 1, DSV32_OUT_DIR, "overlaps");     /* through a linked parent */
	refused("link", CK, 1, DSV32_OUT_DIR, "overlaps");       /* the link to the input */
	refused("cfg.lnk", CK, 1, DSV32_OUT_FILE, "overlaps");   /* a link to a file inside */
	const char *via_link[] = {"link"};
	refused("ck/x", via_link, 1, DSV32_OUT_DIR, "overlaps"); /* an input named by a link */
	/* a link leaf that points elsewhere is still refused: the rename would replace the link */
	assert_int_equal(symlink("p", "plink"), 0);
	refused("plink", CK, 1, DSV32_OUT_DIR, "symbolic link");
	assert_int_equal(symlink("nowhere", "dangling"), 0);
	refused("dangling", CK, 1, DSV32_OUT_FILE, "symbolic link");
}

static void test_existing_outputs_of_the_wrong_kind(void **state)
{
	(void)state;
	refused("p", NULL, 0, DSV32_OUT_FILE, "a directory");
	refused("ck/config.json", NULL, 0, DSV32_OUT_DIR, "a regular file");
	refused("/dev/null", NULL, 0, DSV32_OUT_FILE, "a character device");
	refused("/dev/stdout", NULL, 0, DSV32_OUT_FILE, "'-' for stdout");
	assert_int_equal(mkfifo("fifo", 0644), 0);
	refused("fifo", NULL, 0, DSV32_OUT_FILE, "a FIFO");
	/* an existing regular file is replaced only when asked to (--force) */
	refused("ck/config.json", NULL, 0, DSV32_OUT_FILE, "pass --force to replace it");
	accepted("ck/config.json", NULL, 0, DSV32_OUT_FILE | DSV32_OUT_REPLACE);
	accepted("p", NULL, 0, DSV32_OUT_DIR);
}

static void test_lock_is_exclusive_across_spellings(void **state)
{
	dsv32_out_lock a = DSV32_OUT_LOCK_INIT, b = DSV32_OUT_LOCK_INIT;
	dsv32_error err = {0};
	assert_int_equal(dsv32_out_lock_take(&a, "out", &err), DSV32_OK);
	assert_true(dsv32_path_exists(".out.lock"));
	char abs[PATH_MAX + 8];
	snprintf(abs, sizeof abs, "%s/./out", (const char *)*state);
	const char *spellings[] = {"out", "./out", "p/../out", abs};
	for (int i = 0; i < 4; i++) {
		assert_int_equal(dsv32_out_lock_take(&b, spellings[i], &err), DSV32_E_IO);
		assert_non_null(strstr(err.what, "another dsv32-parity is writing"));
		assert_non_null(strstr(err.what, ".out.lock"));
		assert_int_equal(b.fd, -1);
	}
	assert_int_equal(dsv32_out_lock_take(&b, "other", &err), DSV32_OK); /* another output */
	dsv32_out_lock_release(&b);
	dsv32_out_lock_release(&a);
	dsv32_out_lock_release(&a); /* idempotent */
	assert_false(dsv32_path_exists(".out.lock"));
	assert_false(dsv32_path_exists(".other.lock"));
	assert_int_equal(dsv32_out_lock_take(&b, "./out", &err), DSV32_OK);
	dsv32_out_lock_release(&b);
	assert_int_equal(dsv32_out_lock_take(&b, "nodir/out", &err), DSV32_E_IO); /* no parent */
}

/* A lock file left by a killed holder (present, unlocked) is taken over and removed. */
static void test_stale_lock_file_is_reused(void **state)
{
	(void)state;
	FILE *f = fopen(".out.lock", "w");
	assert_non_null(f);
	fclose(f);
	dsv32_out_lock a = DSV32_OUT_LOCK_INIT;
	dsv32_error err = {0};
	assert_int_equal(dsv32_out_lock_take(&a, "out", &err), DSV32_OK);
	dsv32_out_lock_release(&a);
	assert_false(dsv32_path_exists(".out.lock"));
}

static void write_probe(const char *dir, const char *text)
{
	char p[2 * PATH_MAX];
	snprintf(p, sizeof p, "%s/probe", dir);
	dsv32_error err = {0};
	assert_int_equal(dsv32_write_file_atomic(p, text, strlen(text), &err), DSV32_OK);
}

static void assert_probe(const char *dir, const char *text)
{
	char p[PATH_MAX + 16], *got = NULL;
	snprintf(p, sizeof p, "%s/probe", dir);
	dsv32_error err = {0};
	assert_int_equal(dsv32_read_file(p, 64, &got, NULL, &err), DSV32_OK);
	assert_string_equal(got, text);
	free(got);
}

static void test_dirswap_creates_and_replaces_whole(void **state)
{
	(void)state;
	dsv32_dirswap d;
	dsv32_error err = {0};
	assert_int_equal(dsv32_dirswap_begin(&d, "sub/out/", false, CK, 1, &err), DSV32_OK);
	assert_true(dsv32_path_is_dir(d.tmp));
	assert_true(dsv32_path_exists("sub/.out.lock"));
	write_probe(d.tmp, "one");
	assert_int_equal(dsv32_dirswap_commit(&d, &err), DSV32_OK);
	assert_probe("sub/out", "one");
	assert_int_equal(tc_count_dir_entries("sub"), 1); /* no tmp, old or lock left */
	assert_int_equal(dsv32_dirswap_begin(&d, "sub/out", false, CK, 1, &err), DSV32_E_USAGE);
	assert_non_null(strstr(err.what, "already exists"));
	assert_int_equal(tc_count_dir_entries("sub"), 1);
	assert_int_equal(dsv32_dirswap_begin(&d, "sub/out", true, CK, 1, &err), DSV32_OK);
	write_probe(d.tmp, "two");
	assert_probe("sub/out", "one"); /* the old tree stays until the swap */
	assert_int_equal(dsv32_dirswap_commit(&d, &err), DSV32_OK);
	assert_probe("sub/out", "two");
	assert_int_equal(tc_count_dir_entries("sub"), 1);
}

static void test_dirswap_abort_and_concurrent_writer(void **state)
{
	(void)state;
	dsv32_dirswap a, b;
	dsv32_error err = {0};
	assert_int_equal(dsv32_dirswap_begin(&a, "out", false, NULL, 0, &err), DSV32_OK);
	assert_int_equal(dsv32_dirswap_begin(&b, "./out", true, NULL, 0, &err), DSV32_E_IO);
	assert_non_null(strstr(err.what, "another dsv32-parity is writing"));
	dsv32_dirswap_abort(&b); /* harmless after a failed begin */
	assert_true(dsv32_path_is_dir(a.tmp));
	dsv32_dirswap_abort(&a);
	dsv32_dirswap_abort(&a);
	assert_false(dsv32_path_exists(a.tmp));
	assert_false(dsv32_path_exists("out"));
	assert_false(dsv32_path_exists(".out.lock"));
}

/* An unfinished "<out>.tmp.<pid>" is named (dsv32_dirswap_leftover) and never removed, but does
 * not stop the run; an "<out>.old.<pid>" stops it, touching nothing. */
static void test_dirswap_leftovers(void **state)
{
	(void)state;
	dsv32_dirswap d;
	dsv32_error err = {0};
	char path[PATH_MAX + 256];
	assert_int_equal(mkdir("out", 0755), 0);
	write_probe("out", "old");
	assert_int_equal(dsv32_dirswap_leftover("out", path, sizeof path), 0);
	assert_int_equal(mkdir("out.tmp.4242", 0755), 0);
	assert_int_equal(dsv32_dirswap_leftover("out", path, sizeof path), 't');
	assert_string_equal(path, "out.tmp.4242");
	assert_int_equal(dsv32_dirswap_begin(&d, "out", true, NULL, 0, &err), DSV32_OK);
	dsv32_dirswap_abort(&d);
	assert_true(dsv32_path_is_dir("out.tmp.4242"));
	assert_int_equal(mkdir("out.old.17", 0755), 0);
	assert_int_equal(mkdir("out.old.x", 0755), 0); /* not a pid: not ours */
	char abs[PATH_MAX + 8];
	snprintf(abs, sizeof abs, "%s/out", (const char *)*state);
	assert_int_equal(dsv32_dirswap_leftover(abs, path, sizeof path), 'o');
	assert_non_null(strstr(path, "/out.old.17"));
	assert_true(path[0] == '/');
	size_t before = tc_count_dir_entries(".");
	assert_int_equal(dsv32_dirswap_begin(&d, "out", true, NULL, 0, &err), DSV32_E_USAGE);
	assert_non_null(strstr(err.what, "found leftover out.old.17"));
	assert_non_null(strstr(err.what, "move it back or remove it"));
	assert_int_equal(tc_count_dir_entries("."), before);
	assert_probe("out", "old");
	assert_int_equal(dsv32_remove_tree("out.old.17", &err), DSV32_OK);
}

/* A leftover holding this run's own temporary name (pids repeat) is stepped around. */
static void test_dirswap_tmp_name_taken_by_a_leftover(void **state)
{
	(void)state;
	dsv32_dirswap d;
	dsv32_error err = {0};
	char mine[64];
	snprintf(mine, sizeof mine, "out.tmp.%ld", (long)getpid());
	assert_int_equal(mkdir(mine, 0755), 0);
	write_probe(mine, "leftover");
	assert_int_equal(dsv32_dirswap_begin(&d, "out", false, NULL, 0, &err), DSV32_OK);
	assert_non_null(strstr(d.tmp, ".1"));
	write_probe(d.tmp, "new");
	assert_int_equal(dsv32_dirswap_commit(&d, &err), DSV32_OK);
	assert_probe("out", "new");
	assert_probe(mine, "leftover");
}

static void test_dirswap_refuses_unsafe_outputs_first(void **state)
{
	(void)state;
	dsv32_dirswap d;
	dsv32_error err = {0};
	size_t before = tc_count_dir_entries(".");
	assert_int_equal(dsv32_dirswap_begin(&d, ".", true, NULL, 0, &err), DSV32_E_USAGE);
	assert_int_equal(dsv32_dirswap_begin(&d, "ck/sub", true, CK, 1, &err), DSV32_E_USAGE);
	assert_int_equal(dsv32_dirswap_begin(&d, "link", true, NULL, 0, &err), DSV32_E_USAGE);
	assert_int_equal(dsv32_dirswap_begin(&d, "", true, NULL, 0, &err), DSV32_E_USAGE);
	assert_int_equal(tc_count_dir_entries("."), before);
	assert_false(dsv32_path_exists("ck/sub"));
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_equal_inside_containing),
		T(test_not_yet_existing_paths_under_an_input),
		T(test_relative_and_absolute_spellings_agree),
		T(test_dot_dotdot_root_and_cwd_are_refused_as_dirs),
		T(test_symlinks_are_resolved),
		T(test_existing_outputs_of_the_wrong_kind),
		T(test_lock_is_exclusive_across_spellings),
		T(test_stale_lock_file_is_reused),
		T(test_dirswap_creates_and_replaces_whole),
		T(test_dirswap_abort_and_concurrent_writer),
		T(test_dirswap_leftovers),
		T(test_dirswap_tmp_name_taken_by_a_leftover),
		T(test_dirswap_refuses_unsafe_outputs_first),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
