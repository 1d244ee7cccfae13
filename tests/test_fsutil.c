/* test_fsutil.c: atomic writes, bounded reads, mkdir -p, rm -rf and path joins (fsutil.h). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/fsutil.h"
#include "tests/support/test_common.h"

static void join(char *out, const char *a, const char *b)
{
	assert_true(dsv32_path_join(out, 4096, a, b));
}

static void test_path_join_inserts_one_slash(void **state)
{
	(void)state;
	char out[32];
	assert_true(dsv32_path_join(out, sizeof out, "a/b", "c.json"));
	assert_string_equal(out, "a/b/c.json");
	assert_true(dsv32_path_join(out, sizeof out, "a/b/", "c"));
	assert_string_equal(out, "a/b/c");
	assert_true(dsv32_path_join(out, sizeof out, "", "c"));
	assert_string_equal(out, "c");
	char small[6];
	assert_false(dsv32_path_join(small, sizeof small, "abc", "def")); /* "abc/def" is 7 */
	assert_int_equal(strlen(small), 5);                               /* truncated, terminated */
	assert_true(dsv32_path_join(small, sizeof small, "ab", "de"));   /* exactly fits */
	assert_string_equal(small, "ab/de");
}

static void test_atomic_write_then_read_back(void **state)
{
	char path[4096];
	join(path, *state, "f.json");
	dsv32_error err = {0};
	const char body[] = "{\"k\": [1, 2, 3]}\n\0tail"; /* embedded NUL survives */
	assert_int_equal(dsv32_write_file_atomic(path, body, sizeof body - 1, &err), DSV32_OK);
	assert_int_equal(tc_count_dir_entries(*state), 1); /* no temporary left */
	char *got;
	size_t len;
	assert_int_equal(dsv32_read_file(path, 1024, &got, &len, &err), DSV32_OK);
	assert_int_equal(len, sizeof body - 1);
	assert_memory_equal(got, body, len);
	assert_int_equal(got[len], '\0');
	free(got);
	/* overwrite replaces the whole content */
	assert_int_equal(dsv32_write_file_atomic(path, "xy", 2, &err), DSV32_OK);
	assert_int_equal(dsv32_read_file(path, 1024, &got, NULL, &err), DSV32_OK);
	assert_string_equal(got, "xy");
	free(got);
	assert_int_equal(tc_count_dir_entries(*state), 1);
}

static void test_atomic_write_into_missing_dir_fails_cleanly(void **state)
{
	char path[4096];
	join(path, *state, "nodir/f.json");
	dsv32_error err = {0};
	assert_int_equal(dsv32_write_file_atomic(path, "x", 1, &err), DSV32_E_IO);
	assert_non_null(strstr(err.what, "nodir"));
	assert_int_equal(tc_count_dir_entries(*state), 0);
}

static void test_read_file_enforces_the_size_cap(void **state)
{
	char path[4096];
	join(path, *state, "big");
	char buf[10000];
	memset(buf, 'a', sizeof buf);
	assert_int_equal(dsv32_write_file_atomic(path, buf, sizeof buf, NULL), DSV32_OK);
	char *got = (char *)(uintptr_t)1;
	size_t len = 77;
	dsv32_error err = {0};
	assert_int_equal(dsv32_read_file(path, 9999, &got, &len, &err), DSV32_E_IO);
	assert_null(got);
	assert_non_null(strstr(err.what, "limit of 9999 bytes"));
	assert_int_equal(dsv32_read_file(path, 10000, &got, &len, &err), DSV32_OK);
	assert_int_equal(len, 10000);
	assert_memory_equal(got, buf, len);
	free(got);
	join(path, *state, "absent");
	assert_int_equal(dsv32_read_file(path, 10, &got, &len, &err), DSV32_E_NOTFOUND);
	join(path, *state, "empty");
	assert_int_equal(dsv32_write_file_atomic(path, "", 0, NULL), DSV32_OK);
	assert_int_equal(dsv32_read_file(path, 0, &got, &len, &err), DSV32_OK);
	assert_int_equal(len, 0);
	assert_string_equal(got, "");
	free(got);
}

static void test_exists_and_is_dir(void **state)
{
	char path[4096];
	join(path, *state, "file");
	assert_false(dsv32_path_exists(path));
	assert_int_equal(dsv32_write_file_atomic(path, "1", 1, NULL), DSV32_OK);
	assert_true(dsv32_path_exists(path));
	assert_false(dsv32_path_is_dir(path));
	assert_true(dsv32_path_is_dir(*state));
	assert_true(dsv32_path_exists(*state));
}

static void test_mkdirs_creates_nested_dirs_and_is_idempotent(void **state)
{
	char path[4096];
	join(path, *state, "a/b//c/");
	dsv32_error err = {0};
	assert_int_equal(dsv32_mkdirs(path, &err), DSV32_OK);
	join(path, *state, "a/b/c");
	assert_true(dsv32_path_is_dir(path));
	assert_int_equal(dsv32_mkdirs(path, &err), DSV32_OK);
	/* through a regular file it fails */
	join(path, *state, "a/f");
	assert_int_equal(dsv32_write_file_atomic(path, "x", 1, NULL), DSV32_OK);
	join(path, *state, "a/f/g");
	assert_int_equal(dsv32_mkdirs(path, &err), DSV32_E_IO);
	assert_non_null(strstr(err.what, "a/f"));
	assert_int_equal(dsv32_mkdirs("", &err), DSV32_E_USAGE);
}

static void test_remove_tree_removes_everything_without_following_links(void **state)
{
	char tree[4096], path[4096], outside[4096], keep[4096];
	join(tree, *state, "tree");
	join(path, tree, "x/y/z");
	assert_int_equal(dsv32_mkdirs(path, NULL), DSV32_OK);
	join(path, tree, "x/y/z/f");
	assert_int_equal(dsv32_write_file_atomic(path, "1", 1, NULL), DSV32_OK);
	join(path, tree, "top");
	assert_int_equal(dsv32_write_file_atomic(path, "2", 1, NULL), DSV32_OK);
	join(outside, *state, "outside");
	assert_int_equal(dsv32_mkdirs(outside, NULL), DSV32_OK);
	join(keep, outside, "keep");
	assert_int_equal(dsv32_write_file_atomic(keep, "3", 1, NULL), DSV32_OK);
	join(path, tree, "x/link");
	assert_int_equal(symlink(outside, path), 0);

	dsv32_error err = {0};
	assert_int_equal(dsv32_remove_tree(tree, &err), DSV32_OK);
	assert_false(dsv32_path_exists(tree));
	assert_true(dsv32_path_exists(keep)); /* the link was removed, not followed */
	assert_int_equal(dsv32_remove_tree(tree, &err), DSV32_OK); /* already gone: fine */
}

static void test_remove_tree_refuses_root_and_empty(void **state)
{
	(void)state;
	dsv32_error err = {0};
	assert_int_equal(dsv32_remove_tree("/", &err), DSV32_E_USAGE);
	assert_non_null(strstr(err.what, "refusing"));
	assert_int_equal(dsv32_remove_tree("//", &err), DSV32_E_USAGE);
	assert_int_equal(dsv32_remove_tree("", &err), DSV32_E_USAGE);
	assert_int_equal(dsv32_remove_tree(NULL, &err), DSV32_E_USAGE);
}

/* Issue 14: `fixture --out . --force` emptied the directory it ran in. Whatever a caller builds,
 * ".", "..", a path ending in one of them, the current directory and its ancestors are refused,
 * and nothing is touched. */
static void test_remove_tree_refuses_cwd_and_its_ancestors(void **state)
{
	const char *tmp = *state;
	char here[4096], sub[4096], keep[4096], old_cwd[4096];
	join(here, tmp, "s");
	join(sub, here, "x");
	join(keep, sub, "k");
	assert_int_equal(dsv32_mkdirs(sub, NULL), DSV32_OK);
	assert_int_equal(dsv32_write_file_atomic(keep, "k", 1, NULL), DSV32_OK);
	assert_non_null(getcwd(old_cwd, sizeof old_cwd));
	assert_int_equal(chdir(sub), 0);
	const char *refused[] = {".", "..", "./", "../", "../..", "x/..", "/.", sub, here, tmp,
				 "../x", "../../s"};
	for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
		dsv32_error err = {0};
		dsv32_status st = dsv32_remove_tree(refused[i], &err);
		if (st != DSV32_E_USAGE)
			fail_msg("remove_tree(\"%s\") gave %d, expected a refusal", refused[i], st);
		assert_non_null(strstr(err.what, "refusing"));
	}
	assert_true(dsv32_path_exists("k")); /* nothing was touched */
	assert_int_equal(chdir(old_cwd), 0);
	assert_true(dsv32_path_exists(keep));
}

/* A symbolic link to the current directory is only a link: removing it is fine and leaves the
 * directory alone. */
static void test_remove_tree_unlinks_a_link_to_cwd(void **state)
{
	const char *tmp = *state;
	char link[4096], old_cwd[4096];
	join(link, tmp, "here");
	assert_non_null(getcwd(old_cwd, sizeof old_cwd));
	assert_int_equal(chdir(tmp), 0);
	assert_int_equal(symlink(".", "here"), 0);
	assert_int_equal(dsv32_remove_tree("here", NULL), DSV32_OK);
	assert_false(dsv32_path_exists(link));
	assert_int_equal(chdir(old_cwd), 0);
	assert_true(dsv32_path_is_dir(tmp));
}

int main(void)
{
#define TD(f) cmocka_unit_test_setup_teardown(f, tc_setup_tmpdir, tc_teardown_tmpdir)
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_path_join_inserts_one_slash),
		TD(test_atomic_write_then_read_back),
		TD(test_atomic_write_into_missing_dir_fails_cleanly),
		TD(test_read_file_enforces_the_size_cap),
		TD(test_exists_and_is_dir),
		TD(test_mkdirs_creates_nested_dirs_and_is_idempotent),
		TD(test_remove_tree_removes_everything_without_following_links),
		cmocka_unit_test(test_remove_tree_refuses_root_and_empty),
		TD(test_remove_tree_refuses_cwd_and_its_ancestors),
		TD(test_remove_tree_unlinks_a_link_to_cwd),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
