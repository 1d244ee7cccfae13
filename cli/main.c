/* main.c: the dsv32-parity command: global options and subcommand dispatch. */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "core/outpath.h"


typedef struct {
	const char *name;
	dsv32_cmd_fn fn;
	const char *summary;
} command;

static void commands_fill(command *c, int *n)
{
	int i = 0;
	c[i++] = (command){"fixture", dsv32_cmd_fixture, "write a preset checkpoint (tiny, small, real-width)"};
	c[i++] = (command){"inspect", dsv32_cmd_inspect, "list a checkpoint's tensors and check key coverage"};
	c[i++] = (command){"convert", dsv32_cmd_convert, "convert reference TP shards <-> a dense HF checkpoint"};
	c[i++] = (command){"verify-shards", dsv32_cmd_verify_shards, "prove shards and a dense checkpoint hold the same model"};
	c[i++] = (command){"run", dsv32_cmd_run, "greedy generation with one layout"};
	c[i++] = (command){"compare", dsv32_cmd_compare, "run two implementations and report drift per layer and op"};
	c[i++] = (command){"dump", dsv32_cmd_dump, "record a layout's taps to a file"};
	c[i++] = (command){"report", dsv32_cmd_report, "check or render stored drift reports"};
	c[i++] = (command){"attribute", dsv32_cmd_attribute, "put a number on each numerics difference between ref and hf"};
	*n = i;
}

static void print_help(FILE *out)
{
	command cmds[16];
	int n;
	commands_fill(cmds, &n);
	fprintf(out,
		"dsv32-parity %s: numerical parity toolkit for DeepSeek V3.2\n\n"
		"usage: dsv32-parity <command> [options]\n"
		"       dsv32-parity <command> --help\n"
		"       dsv32-parity --version\n\ncommands:\n",
		DSV32_VERSION);
	for (int i = 0; i < n; i++)
		fprintf(out, "  %-14s %s%s\n", cmds[i].name, cmds[i].summary,
			cmds[i].fn ? "" : " (not in this build)");
	fprintf(out, "\nexit codes: 0 success, 1 check failed, 2 usage or input error\n");
}

/* Messages carry names from input files and the command line: sanitized (core/error.h) so that
 * an ESC or a newline in a tensor name or a path cannot drive the terminal or forge a line. */
int dsv32_cli_fail(const char *cmd, const dsv32_error *err)
{
	char safe[4 * sizeof err->what];
	dsv32_sanitize_term(safe, sizeof safe,
			    err->what[0] ? err->what : dsv32_status_str(err->code));
	fprintf(stderr, "dsv32-parity %s: error: %s\n", cmd, safe);
	return err->code == DSV32_E_MISMATCH ? DSV32_EXIT_CHECK_FAILED : DSV32_EXIT_USAGE;
}

int dsv32_cli_usage_error(const char *cmd, const char *fmt, ...)
{
	char raw[1024], safe[4 * sizeof raw];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(raw, sizeof raw, fmt, ap);
	va_end(ap);
	fprintf(stderr, "dsv32-parity %s: %s\n(see 'dsv32-parity %s --help')\n", cmd,
		dsv32_sanitize_term(safe, sizeof safe, raw), cmd);
	return DSV32_EXIT_USAGE;
}

double dsv32_cli_now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

bool dsv32_cli_stderr_is_tty(void)
{
	return isatty(STDERR_FILENO) != 0;
}

/* An unknown command names the nearest one (a typo is the usual cause), else lists them all. */
static void unknown_command(const char *word, const command *cmds, int n)
{
	const char *names[16];
	for (int i = 0; i < n; i++)
		names[i] = cmds[i].name;
	const char *near = dsv32_args_nearest(word, names, n);
	char safe[512];
	dsv32_sanitize_term(safe, sizeof safe, word);
	if (near) {
		fprintf(stderr, "dsv32-parity: unknown command '%s' (did you mean '%s'?)\n", safe, near);
		return;
	}
	fprintf(stderr, "dsv32-parity: unknown command '%s'\n", safe);
	print_help(stderr);
}

/* SIGINT/SIGTERM: remove this run's temporaries (outpath.h registry), then die of the signal
 * as before, so the shell still sees 130/143. */
static void on_interrupt(int sig)
{
	dsv32_tmp_remove_all();
	signal(sig, SIG_DFL);
	raise(sig);
}

static void install_interrupt_cleanup(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_interrupt;
	sigemptyset(&sa.sa_mask);
	sigaddset(&sa.sa_mask, SIGINT);
	sigaddset(&sa.sa_mask, SIGTERM);
	int sigs[] = {SIGINT, SIGTERM};
	for (int i = 0; i < 2; i++) {
		struct sigaction old;
		/* an ignored signal stays ignored (a background job of a script, nohup) */
		if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler == SIG_IGN)
			continue;
		(void)sigaction(sigs[i], &sa, NULL);
	}
}

int main(int argc, char **argv)
{
	install_interrupt_cleanup();

	if (argc < 2) {
		print_help(stderr);
		return DSV32_EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		print_help(stdout);
		return DSV32_EXIT_OK;
	}
	if (!strcmp(argv[1], "--version")) {
		printf("dsv32-parity %s\n", DSV32_VERSION);
		return DSV32_EXIT_OK;
	}
	command cmds[16];
	int n;
	commands_fill(cmds, &n);
	for (int i = 0; i < n; i++) {
		if (strcmp(argv[1], cmds[i].name) != 0)
			continue;
		if (!cmds[i].fn) {
			fprintf(stderr, "dsv32-parity: '%s' is not available in this build yet\n",
				cmds[i].name);
			return DSV32_EXIT_USAGE;
		}
		return cmds[i].fn(argc - 1, argv + 1);
	}
	unknown_command(argv[1], cmds, n);
	return DSV32_EXIT_USAGE;
}
