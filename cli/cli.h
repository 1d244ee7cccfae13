/* cli.h: shared pieces of the dsv32-parity command: subcommand entry points, exit codes and the
 * one place a dsv32_error becomes a message on stderr. Only cli/ may exit. */
#ifndef DSV32_CLI_H
#define DSV32_CLI_H

#include <stdbool.h>
#include <stdint.h>

#include "core/error.h"

enum { DSV32_EXIT_OK = 0, DSV32_EXIT_CHECK_FAILED = 1, DSV32_EXIT_USAGE = 2 };

/* Greedy decode steps after the prefill when --decode-steps is not given: one default for
 * dump, compare and fixtures/record_transformers.py, so their runs line up. */
#define DSV32_DEFAULT_DECODE_STEPS 3
#define DSV32_DEFAULT_DECODE_STEPS_TEXT "3"

/* Each subcommand: argv[0] is the subcommand name. Returns an exit code. A subcommand whose
 * room is not built yet is a NULL weak symbol and is reported as unavailable. */
typedef int (*dsv32_cmd_fn)(int argc, char **argv);

int dsv32_cmd_fixture(int argc, char **argv) __attribute__((weak));
int dsv32_cmd_inspect(int argc, char **argv) __attribute__((weak));
int dsv32_cmd_convert(int argc, char **argv) __attribute__((weak));
int dsv32_cmd_verify_shards(int argc, char **argv) __attribute__((weak));
int dsv32_cmd_run(int argc, char **argv) __attribute__((weak));
int dsv32_cmd_compare(int argc, char **argv) __attribute__((weak));
int dsv32_cmd_dump(int argc, char **argv) __attribute__((weak));
int dsv32_cmd_report(int argc, char **argv) __attribute__((weak));
int dsv32_cmd_attribute(int argc, char **argv) __attribute__((weak));

/* Print "dsv32-parity <cmd>: error: <what>" and return the exit code for err->code
 * (usage/format/not-found/io -> 2, mismatch -> 1, others -> 2). */
int dsv32_cli_fail(const char *cmd, const dsv32_error *err);
/* Print a usage error and return 2. */
int dsv32_cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* True when stderr is a terminal (progress bars are drawn only then). */
bool dsv32_cli_stderr_is_tty(void);
/* Seconds on the monotonic clock (for the timings the commands report). */
double dsv32_cli_now_s(void);
/* The byte progress bar on stderr of convert, verify-shards and fixture (cmd_convert.c): redrawn
 * at most 10 times a second; _end ends its line. One bar per process. */
void dsv32_cli_conv_progress(void *user, uint64_t done, uint64_t total);
void dsv32_cli_conv_progress_end(void *user);

#endif
