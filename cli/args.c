/* args.c: the shared long-option parser (args.h). */
#include "cli/args.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli/cli.h"

bool dsv32_args_parse_size(const char *s, uint64_t *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (end == s || errno || !(v >= 0))
		return false;
	static const struct {
		const char *suffix;
		double mul;
	} units[] = {{"", 1},          {"B", 1},        {"KB", 1e3},   {"MB", 1e6},
		     {"GB", 1e9},      {"TB", 1e12},    {"KiB", 1024.0}, {"MiB", 1048576.0},
		     {"GiB", 1073741824.0}, {"TiB", 1099511627776.0}};
	for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
		if (strcasecmp(end, units[i].suffix) != 0)
			continue;
		double b = floor(v * units[i].mul);
		if (b >= 18446744073709551615.0)
			return false;
		*out = (uint64_t)b;
		return true;
	}
	return false;
}

/* Levenshtein distance with one rolling row; words longer than 63 bytes are never suggested. */
static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), row[64];
	if (la > 63 || lb > 63)
		return SIZE_MAX;
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t diag = row[0];
		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t up = row[j], best = diag + (a[i - 1] != b[j - 1]);
			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			diag = up;
			row[j] = best;
		}
	}
	return row[lb];
}

const char *dsv32_args_nearest(const char *word, const char *const *valid, int n)
{
	size_t limit = strlen(word) / 3 > 2 ? strlen(word) / 3 : 2, best = SIZE_MAX;
	const char *pick = NULL;
	for (int i = 0; i < n; i++) {
		size_t d = edit_distance(word, valid[i]);
		if (d <= limit && d < best) {
			best = d;
			pick = valid[i];
		}
	}
	return pick;
}

const char *dsv32_args_output_value(int argc, char **argv, int *i)
{
	const char *next = *i + 1 < argc ? argv[*i + 1] : NULL;
	if (!next || (next[0] == '-' && strcmp(next, "-") != 0))
		return "-";
	(*i)++;
	return next;
}

bool dsv32_args_is_known(const char *opt, const char *const *names, int n)
{
	const char *o = !strncmp(opt, "--", 2) ? opt + 2 : opt;
	size_t len = strcspn(o, "=");
	for (int i = 0; i < n; i++)
		if (strlen(names[i]) == len && !strncmp(o, names[i], len))
			return true;
	return false;
}

int dsv32_args_unknown(const char *cmd, const char *opt, const char *const *valid, int n)
{
	char name[128];
	const char *o = !strncmp(opt, "--", 2) ? opt + 2 : opt;
	snprintf(name, sizeof name, "%.*s", (int)strcspn(o, "="), o);
	const char *near = dsv32_args_nearest(name, valid, n);
	if (near)
		return dsv32_cli_usage_error(cmd, "unknown option '--%s' (did you mean '--%s'?)", name,
					     near);
	return dsv32_cli_usage_error(cmd, "unknown option '--%s'", name);
}

static bool choice_ok(const char *list, const char *v)
{
	size_t n = strlen(v);
	const char *p = list;
	while (p && *p) {
		const char *bar = strchr(p, '|');
		size_t len = bar ? (size_t)(bar - p) : strlen(p);
		if (len == n && strncmp(p, v, n) == 0)
			return true;
		p = bar ? bar + 1 : NULL;
	}
	return false;
}

void dsv32_args_help(const dsv32_arg_spec *spec, FILE *out)
{
	fprintf(out, "usage: dsv32-parity %s %s\n\n", spec->cmd, spec->usage);
	if (spec->summary)
		fprintf(out, "%s\n\n", spec->summary);
	fprintf(out, "options:\n");
	for (int i = 0; i < spec->nopts; i++) {
		const dsv32_arg_opt *o = &spec->opts[i];
		char left[64];
		if (o->kind == DSV32_ARG_FLAG)
			snprintf(left, sizeof left, "--%s", o->name);
		else if (o->kind == DSV32_ARG_OUTPUT)
			snprintf(left, sizeof left, "--%s [%s|-]", o->name, o->metavar ? o->metavar : "FILE");
		else
			snprintf(left, sizeof left, "--%s %s", o->name, o->metavar ? o->metavar : "X");
		fprintf(out, "  %-30s %s%s\n", left, o->help, o->required ? " (required)" : "");
	}
	fprintf(out, "  %-30s %s\n", "--help", "show this help");
	fprintf(out, "\nexit codes: 0 success, 1 check failed, 2 usage or input error\n");
}

static int set_value(const dsv32_arg_spec *spec, const dsv32_arg_opt *o, const char *v)
{
	switch (o->kind) {
	case DSV32_ARG_STRING:
	case DSV32_ARG_OUTPUT:
		*(const char **)o->dest = v;
		return 0;
	case DSV32_ARG_CHOICE:
		if (!choice_ok(o->metavar, v))
			return dsv32_cli_usage_error(spec->cmd, "--%s: '%s' is not one of %s",
						     o->name, v, o->metavar);
		*(const char **)o->dest = v;
		return 0;
	case DSV32_ARG_U64: {
		char *end;
		errno = 0;
		unsigned long long x = strtoull(v, &end, 10);
		if (!*v || *end || errno || v[0] == '-')
			return dsv32_cli_usage_error(spec->cmd, "--%s: '%s' is not a non-negative integer",
						     o->name, v);
		*(uint64_t *)o->dest = x;
		return 0;
	}
	case DSV32_ARG_SIZE:
		if (!dsv32_args_parse_size(v, (uint64_t *)o->dest))
			return dsv32_cli_usage_error(spec->cmd, "--%s: '%s' is not a size (e.g. 5GB, 500MB)",
						     o->name, v);
		return 0;
	default:
		return dsv32_cli_usage_error(spec->cmd, "--%s: takes no value", o->name);
	}
}

static const dsv32_arg_opt *find_opt(const dsv32_arg_spec *spec, const char *name, size_t len)
{
	for (int i = 0; i < spec->nopts; i++)
		if (strlen(spec->opts[i].name) == len && strncmp(spec->opts[i].name, name, len) == 0)
			return &spec->opts[i];
	return NULL;
}

static int unknown_in_spec(const dsv32_arg_spec *spec, const char *opt)
{
	const char *names[64 + 1];
	int n = 0;
	for (int i = 0; i < spec->nopts && n < 64; i++)
		names[n++] = spec->opts[i].name;
	names[n++] = "help";
	return dsv32_args_unknown(spec->cmd, opt, names, n);
}

int dsv32_args_parse(const dsv32_arg_spec *spec, int argc, char **argv, const char **pos,
		     int *npos)
{
	bool seen[64] = {false};
	bool only_pos = false;
	*npos = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!only_pos && (!strcmp(a, "--help") || !strcmp(a, "-h"))) {
			dsv32_args_help(spec, stdout);
			return DSV32_ARGS_HELP;
		}
		if (!only_pos && !strcmp(a, "--")) {
			only_pos = true;
			continue;
		}
		if (only_pos || strncmp(a, "--", 2) != 0 || a[2] == '\0') {
			if (*npos >= spec->max_pos)
				return dsv32_cli_usage_error(spec->cmd, "unexpected argument '%s'", a);
			pos[(*npos)++] = a;
			continue;
		}
		const char *name = a + 2, *eq = strchr(name, '=');
		size_t len = eq ? (size_t)(eq - name) : strlen(name);
		const dsv32_arg_opt *o = find_opt(spec, name, len);
		if (!o)
			return unknown_in_spec(spec, a);
		if (o - spec->opts < 64)
			seen[o - spec->opts] = true;
		if (o->kind == DSV32_ARG_OUTPUT && !eq) {
			*(const char **)o->dest = *npos >= spec->max_pos
							 ? dsv32_args_output_value(argc, argv, &i)
							 : "-";
			continue;
		}
		if (o->kind == DSV32_ARG_FLAG) {
			if (eq)
				return dsv32_cli_usage_error(spec->cmd, "--%s takes no value", o->name);
			*(bool *)o->dest = true;
			continue;
		}
		const char *v = eq ? eq + 1 : NULL;
		if (!v) {
			if (i + 1 >= argc)
				return dsv32_cli_usage_error(spec->cmd, "--%s needs a value", o->name);
			v = argv[++i];
		}
		int rc = set_value(spec, o, v);
		if (rc)
			return rc;
	}
	for (int i = 0; i < spec->nopts && i < 64; i++)
		if (spec->opts[i].required && !seen[i])
			return dsv32_cli_usage_error(spec->cmd, "--%s is required", spec->opts[i].name);
	if (*npos < spec->min_pos)
		return dsv32_cli_usage_error(spec->cmd, "missing argument (usage: %s %s)", spec->cmd,
					     spec->usage);
	return DSV32_ARGS_OK;
}
