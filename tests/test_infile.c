/* test_infile.c: the input-file helper (core/infile.h) and what goes through it: a FIFO, a
 * socket, a directory or a device is refused at once as every kind of input (config, index,
 * tokens, budget, report, recordings, fingerprinted shards); size caps per kind; duplicate JSON
 * keys; the terminal sanitizer every error message passes (core/error.h). A FIFO that blocked
 * would hang the test: alarm() turns that into a failure. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "compare/budget.h"
#include "compare/provenance.h"
#include "compare/tapfile.h"
#include "core/config.h"
#include "core/fsutil.h"
#include "core/infile.h"
#include "core/safetensors.h"
#include "core/tokens.h"
#include "reports/report.h"
#include "tests/support/test_common.h"

#define HANG_LIMIT_S 20 /* a blocked open would wait forever; every check here is instant */

static void join(char *out, const char *a, const char *b)
{
	assert_true(dsv32_path_join(out, 4096, a, b));
}

static void put(const char *path, const char *text)
{
	assert_int_equal(dsv32_write_file_atomic(path, text, strlen(text), NULL), DSV32_OK);
}

static void assert_msg(const dsv32_error *err, const char *needle)
{
	if (!strstr(err->what, needle))
		fail_msg("message '%s' lacks '%s'", err->what, needle);
}

/* A FIFO with no writer, as each kind of input: refused with E_IO naming the file. */
static void test_fifo_is_refused_as_every_input(void **state)
{
	const char *tmp = *state;
	char fifo[4096], dir[4096], index[4096], arg[4200];
	join(fifo, tmp, "in.json");
	assert_int_equal(mkfifo(fifo, 0600), 0);
	alarm(HANG_LIMIT_S);
	dsv32_error err = {0};
	char *text = NULL;
	assert_int_equal(dsv32_infile_read(fifo, DSV32_INFILE_CONFIG, &text, NULL, &err), DSV32_E_IO);
	assert_null(text);
	assert_msg(&err, "in.json: not a regular file (fifo)");
	dsv32_config c;
	assert_int_equal(dsv32_config_load(&c, fifo, NULL, &err), DSV32_E_IO);
	assert_msg(&err, "in.json: not a regular file (fifo)");
	dsv32_tokens t;
	snprintf(arg, sizeof arg, "@%s", fifo);
	assert_int_equal(dsv32_tokens_load(&t, arg, 0, &err), DSV32_E_IO);
	assert_null(t.ids);
	dsv32_budget b;
	assert_int_equal(dsv32_budget_load(&b, fifo, &err), DSV32_E_IO);
	dsv32_cmp_result r;
	assert_int_equal(dsv32_report_read_json(&r, fifo, &err), DSV32_E_IO);
	assert_int_equal(dsv32_read_file(fifo, 1024, &text, NULL, &err), DSV32_E_IO);
	join(dir, tmp, "ck");
	join(index, dir, "model.safetensors.index.json");
	assert_int_equal(dsv32_mkdirs(dir, NULL), DSV32_OK);
	assert_int_equal(mkfifo(index, 0600), 0);
	dsv32_ckpt *ck = NULL;
	assert_int_equal(dsv32_ckpt_open(&ck, dir, &err), DSV32_E_IO);
	assert_null(ck);
	assert_msg(&err, "model.safetensors.index.json: not a regular file (fifo)");
	alarm(0);
}

/* Recordings are opened by name by HDF5, and the checkpoint fingerprint reads every
 * *.safetensors of a directory (an index may list fewer): both check first. */
static void test_fifo_recording_and_unlisted_shard_are_refused(void **state)
{
	const char *tmp = *state;
	char h5[4096], dir[4096], shard[4096];
	join(h5, tmp, "rec.h5");
	assert_int_equal(mkfifo(h5, 0600), 0);
	join(dir, tmp, "ck");
	join(shard, dir, "junk.safetensors");
	assert_int_equal(dsv32_mkdirs(dir, NULL), DSV32_OK);
	assert_int_equal(mkfifo(shard, 0600), 0);
	alarm(HANG_LIMIT_S);
	dsv32_error err = {0};
	dsv32_tapfile tf;
	assert_int_equal(dsv32_tapfile_open(&tf, h5, &err), DSV32_E_IO);
	assert_msg(&err, "rec.h5: not a regular file (fifo)");
	char hex[65];
	assert_int_equal(dsv32_checkpoint_fingerprint(dir, hex, &err), DSV32_E_IO);
	assert_msg(&err, "junk.safetensors: not a regular file (fifo)");
	char value[64];
	assert_false(dsv32_recording_meta(h5, "anything", value, sizeof value));
	alarm(0);
}

static void test_directory_socket_and_device_are_refused(void **state)
{
	const char *tmp = *state;
	char dir[4096], sock[4096];
	join(dir, tmp, "config.json");
	assert_int_equal(mkdir(dir, 0700), 0);
	dsv32_error err = {0};
	char *text = NULL;
	assert_int_equal(dsv32_infile_read(dir, DSV32_INFILE_CONFIG, &text, NULL, &err), DSV32_E_IO);
	assert_msg(&err, "config.json: not a regular file (directory)");
	assert_int_equal(dsv32_infile_read("/dev/null", DSV32_INFILE_TOKENS, &text, NULL, &err),
			 DSV32_E_IO);
	assert_msg(&err, "/dev/null: not a regular file (character device)");

	join(sock, tmp, "s");
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	if (strlen(sock) >= sizeof a.sun_path) {
		close(fd);
		return; /* a temp dir this deep cannot hold a socket; the rest was checked */
	}
	memcpy(a.sun_path, sock, strlen(sock) + 1);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
	assert_int_equal(dsv32_infile_check(sock, &err), DSV32_E_IO);
	assert_msg(&err, "/s: not a regular file (socket)");
	close(fd);
}

static void test_missing_file_and_symlink_loop_say_so(void **state)
{
	const char *tmp = *state;
	char a[4096], b[4096];
	join(a, tmp, "a");
	join(b, tmp, "b");
	assert_int_equal(symlink("b", a), 0);
	assert_int_equal(symlink("a", b), 0);
	dsv32_error err = {0};
	char *text = NULL;
	assert_int_equal(dsv32_infile_read(a, DSV32_INFILE_CONFIG, &text, NULL, &err), DSV32_E_IO);
	assert_msg(&err, "/a: cannot open: symlink loop");
	join(a, tmp, "absent.json");
	assert_int_equal(dsv32_infile_read(a, DSV32_INFILE_CONFIG, &text, NULL, &err),
			 DSV32_E_NOTFOUND);
	assert_msg(&err, "absent.json: cannot open: No such file or directory");
}

/* An index that is a symlink loop is an error about the index, not a fallback to a directory
 * scan that reports "no index". */
static void test_index_symlink_loop_is_named(void **state)
{
	const char *tmp = *state;
	char index[4096], loop[4096];
	join(index, tmp, "model.safetensors.index.json");
	join(loop, tmp, "loop");
	assert_int_equal(symlink("loop", index), 0);
	assert_int_equal(symlink("model.safetensors.index.json", loop), 0);
	dsv32_ckpt *ck = NULL;
	dsv32_error err = {0};
	assert_int_equal(dsv32_ckpt_open(&ck, tmp, &err), DSV32_E_IO);
	assert_msg(&err, "model.safetensors.index.json: cannot open: symlink loop");
	char self[4096];
	join(self, tmp, "self");
	assert_int_equal(symlink("self", self), 0);
	assert_int_equal(dsv32_ckpt_open(&ck, self, &err), DSV32_E_IO);
	assert_msg(&err, "self: symlink loop");
}

/* The cap is checked against the size before anything is read; errors name file, size, cap
 * and kind. A file of exactly the cap is fine. */
static void test_size_caps_are_stated_per_kind(void **state)
{
	const char *tmp = *state;
	char path[4096];
	join(path, tmp, "big.json");
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	size_t cap = dsv32_infile_limit(DSV32_INFILE_CONFIG);
	assert_int_equal(cap, (size_t)16 << 20);
	assert_int_equal(ftruncate(fd, (off_t)cap + 1), 0); /* sparse: nothing is written */
	close(fd);
	dsv32_error err = {0};
	char *text = NULL;
	assert_int_equal(dsv32_infile_read(path, DSV32_INFILE_CONFIG, &text, NULL, &err), DSV32_E_IO);
	assert_msg(&err, "big.json: 16777217 bytes, over the limit of 16 MiB (config file)");
	assert_null(text);
	assert_int_equal(truncate(path, 10), 0);
	size_t len = 0;
	assert_int_equal(dsv32_infile_read_capped(path, 10, "test file", &text, &len, &err),
			 DSV32_OK);
	assert_int_equal(len, 10);
	assert_int_equal(text[10], '\0');
	free(text);
	assert_int_equal(dsv32_infile_read_capped(path, 9, "test file", &text, &len, &err),
			 DSV32_E_IO);
	assert_msg(&err, "big.json: 10 bytes, over the limit of 9 bytes (test file)");
	assert_int_equal(dsv32_infile_limit(DSV32_INFILE_INDEX), (size_t)256 << 20);
	assert_int_equal(dsv32_infile_limit(DSV32_INFILE_TOKENS), (size_t)64 << 20);
	assert_int_equal(dsv32_infile_limit(DSV32_INFILE_BUDGET), (size_t)16 << 20);
	assert_int_equal(dsv32_infile_limit(DSV32_INFILE_REPORT), (size_t)256 << 20);
	assert_string_equal(dsv32_infile_kind_name(DSV32_INFILE_INDEX), "index file");
}

/* A regular file comes back open, in blocking mode, with its fstat. */
static void test_open_returns_a_blocking_fd_of_a_regular_file(void **state)
{
	const char *tmp = *state;
	char path[4096];
	join(path, tmp, "x");
	put(path, "abc");
	int fd = -1;
	struct stat st;
	assert_int_equal(dsv32_infile_open(path, &fd, &st, NULL), DSV32_OK);
	assert_true(fd >= 0);
	assert_int_equal(st.st_size, 3);
	assert_int_equal(fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
	close(fd);
}

static dsv32_status unique(const char *json, dsv32_error *err)
{
	cJSON *root = cJSON_Parse(json);
	assert_non_null(root);
	dsv32_status st = dsv32_json_check_unique_keys(root, "f.json", err);
	cJSON_Delete(root);
	return st;
}

static void test_duplicate_json_keys_are_found_anywhere(void **state)
{
	(void)state;
	dsv32_error err = {0};
	assert_int_equal(unique("{\"a\": 1, \"b\": {\"a\": 2}, \"c\": [{\"a\": 3}, {\"a\": 4}]}",
				&err),
			 DSV32_OK); /* the same key in different objects is fine */
	assert_int_equal(unique("{\"a\": 1, \"a\": 2}", &err), DSV32_E_FORMAT);
	assert_msg(&err, "f.json: duplicate key \"a\" at the top level (ambiguous: Python's json "
			 "keeps the last value, cJSON the first)");
	assert_int_equal(unique("{\"x\": {\"y\": [0, {\"k\": 1, \"k\": 1}]}}", &err),
			 DSV32_E_FORMAT);
	assert_msg(&err, "duplicate key \"k\" in x.y[1]");
	/* a large object (sorted, not pairwise), the repeat far apart */
	char big[4096];
	size_t n = (size_t)snprintf(big, sizeof big, "{\"weight_map\": {");
	for (int i = 0; i < 100; i++)
		n += (size_t)snprintf(big + n, sizeof big - n, "\"t%d\": \"s\", ", i);
	snprintf(big + n, sizeof big - n, "\"t3\": \"s\"}}");
	assert_int_equal(unique(big, &err), DSV32_E_FORMAT);
	assert_msg(&err, "duplicate key \"t3\" in weight_map");
	big[n - 2] = '}'; /* drop the repeat: "..., "t99": "s"}}" */
	big[n - 1] = '}';
	big[n] = '\0';
	assert_int_equal(unique(big, &err), DSV32_OK);
	/* a key with an ESC is named sanitized */
	assert_int_equal(unique("{\"\\u001b[2J\": 1, \"\\u001b[2J\": 2}", &err), DSV32_E_FORMAT);
	assert_msg(&err, "duplicate key \"\\x1b[2J\"");
}

/* Every JSON reader refuses duplicate keys: budget, report, index. */
static void test_json_readers_refuse_duplicate_keys(void **state)
{
	const char *tmp = *state;
	dsv32_error err = {0};
	dsv32_budget b;
	assert_int_equal(dsv32_budget_parse(&b, "{\"rules\": [], \"rules\": [{\"pattern\": \"*\"}]}",
					    "b.json", &err),
			 DSV32_E_FORMAT);
	assert_msg(&err, "b.json: duplicate key \"rules\"");
	dsv32_cmp_result r;
	assert_int_equal(dsv32_report_parse_json(&r, "{\"schema_version\": 1, \"taps\": [{\"name\": "
						 "\"x\", \"name\": \"y\"}]}", "r.json", &err),
			 DSV32_E_FORMAT);
	assert_msg(&err, "r.json: duplicate key \"name\" in taps[0]");
	char index[4096];
	join(index, tmp, "model.safetensors.index.json");
	put(index, "{\"weight_map\": {\"a\": \"s1.safetensors\", \"a\": \"s2.safetensors\"}}");
	dsv32_ckpt *ck = NULL;
	assert_int_equal(dsv32_ckpt_open(&ck, tmp, &err), DSV32_E_FORMAT);
	assert_msg(&err, "model.safetensors.index.json: duplicate key \"a\" in weight_map");
}

static void assert_sanitized(const char *in, const char *want)
{
	char out[256];
	dsv32_sanitize_term(out, sizeof out, in);
	if (strcmp(out, want) != 0)
		fail_msg("sanitize: got '%s', expected '%s'", out, want);
}

static void test_sanitize_escapes_controls_and_keeps_text(void **state)
{
	(void)state;
	assert_sanitized("plain.name-0/x", "plain.name-0/x");
	assert_sanitized("a\x1b[31mb", "a\\x1b[31mb");
	assert_sanitized("l1\nl2\rl3\tl4", "l1\\x0al2\\x0dl3\\x09l4");
	assert_sanitized("del\x7f", "del\\x7f");
	assert_sanitized("c1\xc2\x9b" "2J", "c1\\xc2\\x9b2J");   /* U+009B CSI */
	assert_sanitized("lone\x9b", "lone\\x9b");               /* not UTF-8 */
	assert_sanitized("bad\xff\xc3", "bad\\xff\\xc3");        /* invalid, truncated */
	assert_sanitized("over\xc0\xaf", "over\\xc0\\xaf");      /* overlong '/' */
	assert_sanitized("sur\xed\xa0\x80", "sur\\xed\\xa0\\x80"); /* a surrogate */
	assert_sanitized("caf\xc3\xa9 \xe6\x97\xa5 \xf0\x9f\x98\x80", "caf\xc3\xa9 \xe6\x97\xa5 "
			 "\xf0\x9f\x98\x80"); /* é, a CJK character and an emoji stay */
	assert_sanitized("nbsp\xc2\xa0", "nbsp\xc2\xa0");        /* U+00A0 is printable */
	char small[7];
	dsv32_sanitize_term(small, sizeof small, "ab\x1b" "cd");
	assert_string_equal(small, "ab\\x1b"); /* an escape fits whole or not at all */
	dsv32_sanitize_term(small, 6, "ab\x1b" "cd");
	assert_string_equal(small, "ab");
}

/* Every stored message is sanitized: the CLI prints what through one printer, but reports,
 * JSON errors and tests read it too. */
static void test_error_messages_are_sanitized_when_stored(void **state)
{
	(void)state;
	dsv32_error err = {0};
	assert_int_equal(DSV32_FAIL(&err, DSV32_E_FORMAT, "tensor \"%s\": bad", "x\x1b]0;t\x07"),
			 DSV32_E_FORMAT);
	assert_string_equal(err.what, "tensor \"x\\x1b]0;t\\x07\": bad");
	dsv32_error_prefix(&err, "%s", "dir\nname");
	assert_string_equal(err.what, "dir\\x0aname: tensor \"x\\x1b]0;t\\x07\": bad");
}

int main(void)
{
#define TD(f) cmocka_unit_test_setup_teardown(f, tc_setup_tmpdir, tc_teardown_tmpdir)
	const struct CMUnitTest tests[] = {
		TD(test_fifo_is_refused_as_every_input),
		TD(test_fifo_recording_and_unlisted_shard_are_refused),
		TD(test_directory_socket_and_device_are_refused),
		TD(test_missing_file_and_symlink_loop_say_so),
		TD(test_index_symlink_loop_is_named),
		TD(test_size_caps_are_stated_per_kind),
		TD(test_open_returns_a_blocking_fd_of_a_regular_file),
		cmocka_unit_test(test_duplicate_json_keys_are_found_anywhere),
		TD(test_json_readers_refuse_duplicate_keys),
		cmocka_unit_test(test_sanitize_escapes_controls_and_keeps_text),
		cmocka_unit_test(test_error_messages_are_sanitized_when_stored),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
