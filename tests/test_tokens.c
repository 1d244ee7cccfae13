/* test_tokens.c: token-id lists from text and files, and their errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/tokens.h"

static void test_rows_and_separators(void **state)
{
	(void)state;
	dsv32_tokens t;
	assert_int_equal(dsv32_tokens_parse(&t, "5,17, 42 ; 1 2 3\n", 100, NULL), DSV32_OK);
	assert_int_equal(t.rows, 2);
	assert_int_equal(t.cols, 3);
	int64_t want[6] = {5, 17, 42, 1, 2, 3};
	assert_memory_equal(t.ids, want, sizeof want);
	dsv32_tokens_free(&t);
	assert_int_equal(dsv32_tokens_parse(&t, "# a comment\n7,8\n\n9,10 # tail\n", 0, NULL), DSV32_OK);
	assert_int_equal(t.rows, 2);
	assert_int_equal(t.ids[3], 10);
	dsv32_tokens_free(&t);
}

static void test_errors_name_row_and_value(void **state)
{
	(void)state;
	dsv32_tokens t;
	dsv32_error err = {0};
	assert_int_equal(dsv32_tokens_parse(&t, "1,2;3", 0, &err), DSV32_E_USAGE);
	assert_non_null(strstr(err.what, "row 1 has 1 ids, row 0 has 2"));
	assert_int_equal(dsv32_tokens_parse(&t, "1,2,1024", 1024, &err), DSV32_E_USAGE);
	assert_non_null(strstr(err.what, "1024 is outside the vocabulary [0, 1024)"));
	assert_int_equal(dsv32_tokens_parse(&t, "1,-2", 0, &err), DSV32_E_USAGE);
	assert_non_null(strstr(err.what, "unexpected '-'"));
	assert_int_equal(dsv32_tokens_parse(&t, "99999999999999999999999", 0, &err), DSV32_E_USAGE);
	assert_non_null(strstr(err.what, "too large"));
	assert_int_equal(dsv32_tokens_parse(&t, " ; # nothing\n", 0, &err), DSV32_E_USAGE);
	assert_non_null(strstr(err.what, "no token ids"));
}

static void test_file_form_and_missing_file(void **state)
{
	(void)state;
	char path[] = "/tmp/dsv32_tokens_XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "3 4 5\n6 7 8\n", 12), 12);
	close(fd);
	char arg[64];
	snprintf(arg, sizeof arg, "@%s", path);
	dsv32_tokens t;
	assert_int_equal(dsv32_tokens_load(&t, arg, 0, NULL), DSV32_OK);
	assert_int_equal(t.rows, 2);
	assert_int_equal(t.ids[5], 8);
	dsv32_tokens_free(&t);
	unlink(path);
	dsv32_error err = {0};
	assert_int_not_equal(dsv32_tokens_load(&t, arg, 0, &err), DSV32_OK);
	assert_non_null(strstr(err.what, path));
}

/* Write body to a temporary file; arg gets "@path". */
static void tmp_token_file(char *path, char *arg, size_t len, const char *body)
{
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, body, strlen(body)), (ssize_t)strlen(body));
	close(fd);
	snprintf(arg, len, "@%s", path);
}

/* The recorder's JSON forms ({"prompt": rows}, one bare row, bare rows) read as the text form. */
static void test_json_token_files_match_the_text_form(void **state)
{
	(void)state;
	static const struct {
		const char *body;
		int64_t rows, cols, last;
	} cases[] = {{"{\"prompt\": [[5, 17, 42], [1, 2, 3]]}", 2, 3, 3},
		     {"  {\"prompt\": [5, 17, 42]}\n", 1, 3, 42},
		     {"[[7, 8]]", 1, 2, 8},
		     {"[9]", 1, 1, 9}};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char path[] = "/tmp/dsv32_tokens_XXXXXX", arg[64];
		tmp_token_file(path, arg, sizeof arg, cases[i].body);
		dsv32_tokens t;
		assert_int_equal(dsv32_tokens_load(&t, arg, 0, NULL), DSV32_OK);
		assert_int_equal(t.rows, cases[i].rows);
		assert_int_equal(t.cols, cases[i].cols);
		assert_int_equal(t.ids[t.rows * t.cols - 1], cases[i].last);
		dsv32_tokens_free(&t);
		unlink(path);
	}
}

/* Non-ids, ragged rows and ids over the vocabulary are refused with the file named. */
static void test_json_token_files_are_checked(void **state)
{
	(void)state;
	static const char *bad[] = {"{\"prompt\": [5, \"x\"]}", "{\"prompt\": [[1, 2], [3]]}",
				    "{\"prompt\": [1.5]}", "{\"ids\": [1]}", "[-1]",
				    "{\"prompt\": [[100]]}", "{\"prompt\": []}", "[1, 2"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char path[] = "/tmp/dsv32_tokens_XXXXXX", arg[64];
		tmp_token_file(path, arg, sizeof arg, bad[i]);
		dsv32_tokens t;
		dsv32_error err = {0};
		assert_int_not_equal(dsv32_tokens_load(&t, arg, 50, &err), DSV32_OK);
		assert_non_null(strstr(err.what, path));
		unlink(path);
	}
}

static void test_random_tokens_are_reproducible(void **state)
{
	(void)state;
	dsv32_tokens a, b;
	assert_int_equal(dsv32_tokens_random(&a, 2, 24, 1024, 7, NULL), DSV32_OK);
	assert_int_equal(dsv32_tokens_random(&b, 2, 24, 1024, 7, NULL), DSV32_OK);
	assert_memory_equal(a.ids, b.ids, 48 * sizeof(int64_t));
	for (int i = 0; i < 48; i++)
		assert_true(a.ids[i] >= 2 && a.ids[i] < 1024);
	dsv32_tokens_free(&b);
	assert_int_equal(dsv32_tokens_random(&b, 2, 24, 1024, 8, NULL), DSV32_OK);
	assert_memory_not_equal(a.ids, b.ids, 48 * sizeof(int64_t));
	dsv32_tokens_free(&a);
	dsv32_tokens_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rows_and_separators),
		cmocka_unit_test(test_errors_name_row_and_value),
		cmocka_unit_test(test_file_form_and_missing_file),
		cmocka_unit_test(test_json_token_files_match_the_text_form),
		cmocka_unit_test(test_json_token_files_are_checked),
		cmocka_unit_test(test_random_tokens_are_reproducible),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
