/* cmd_attribute.c: `dsv32-parity attribute`: put a number on each numerics difference between
 * the ref and hf layouts (issue 18; compare/attribute.h, core/knobs.h, docs/attribution.md). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "cli/cli_models.h"
#include "cli/cli_outputs.h"
#include "compare/attribute.h"
#include "core/fsutil.h"
#include "core/outpath.h"
#include "core/tokens.h"
#include "fixtures/generator.h"

typedef struct {
	const char *checkpoint, *tokens, *mode, *json, *markdown, *html, *direction;
	uint64_t prompt_len, seed, batch, decode_steps;
	bool list_knobs, force, quiet;
	char tmpdir[64];
	char ckpt_buf[128];
} attr_args;

static const char *summary =
	"Runs ref, hf, and ref with each numerics knob flipped toward hf alone (core/knobs.h), on\n"
	"the same weights and tokens, and reports per knob the drift it adds at each layer\n"
	"(teacher-forced) and at the logits (propagated), the decision rows it flips, and a\n"
	"cumulative path of the knobs flipped one after another toward hf. The first table has one\n"
	"line per row of the HF port's status table. Knobs that are not yet switches are listed\n"
	"as such (--list-knobs) and reported as not measured. Without --checkpoint the built-in\n"
	"tiny model is used. --html draws, for every layer and the logits, one bar per knob: the\n"
	"drift that knob alone adds there, in the first table's order. --direction hf-to-ref runs\n"
	"the other way: hf, and hf with each knob flipped toward ref alone (the knobs that are\n"
	"switches of the hf layout), the path toward ref ending compared with ref.\n"
	"Exit: 0 done, 2 bad input.";

static int parse(attr_args *o, int argc, char **argv)
{
	memset(o, 0, sizeof *o);
	o->mode = "both";
	o->direction = "ref-to-hf";
	o->prompt_len = 24;
	o->seed = 1;
	o->batch = 2;
	o->decode_steps = DSV32_DEFAULT_DECODE_STEPS;
	const dsv32_arg_opt opts[] = {
		{"checkpoint", DSV32_ARG_STRING, &o->checkpoint, "DIR", "HF or reference checkpoint (default: built-in tiny)", false},
		{"tokens", DSV32_ARG_STRING, &o->tokens, "IDS", "prompt ids '5,17,42;1,2,3' (rows by ';') or @FILE", false},
		{"prompt-len", DSV32_ARG_U64, &o->prompt_len, "N", "random prompt length (default 24)", false},
		{"seed", DSV32_ARG_U64, &o->seed, "S", "random prompt seed (default 1)", false},
		{"batch", DSV32_ARG_U64, &o->batch, "B", "random prompt rows (default 2)", false},
		{"decode-steps", DSV32_ARG_U64, &o->decode_steps, "N", "greedy decode steps after the prefill (default " DSV32_DEFAULT_DECODE_STEPS_TEXT ")", false},
		{"mode", DSV32_ARG_CHOICE, &o->mode, "propagate|teacher-forced|both", "which passes (default both)", false},
		{"direction", DSV32_ARG_CHOICE, &o->direction, "ref-to-hf|hf-to-ref", "which layout the knobs are flipped on, toward the other (default ref-to-hf)", false},
		{"list-knobs", DSV32_ARG_FLAG, &o->list_knobs, NULL, "print every knob with its sentence, status-table row and whether it is a switch in each direction, then exit", false},
		{"json", DSV32_ARG_OUTPUT, &o->json, "FILE", "write the JSON result (alone or '-': stdout, which then holds only it)", false},
		{"markdown", DSV32_ARG_OUTPUT, &o->markdown, "FILE", "write the Markdown tables (alone or '-': stdout only)", false},
		{"html", DSV32_ARG_OUTPUT, &o->html, "FILE", "write the HTML page: the tables and a bar chart per layer (alone or '-': stdout only)", false},
		{"quiet", DSV32_ARG_FLAG, &o->quiet, NULL, "no progress, no tables on stdout", false},
		{"force", DSV32_ARG_FLAG, &o->force, NULL, "replace existing --json / --markdown / --html files", false},
	};
	dsv32_arg_spec spec = {"attribute", "[--checkpoint DIR] [options]", summary, opts,
			       (int)(sizeof opts / sizeof opts[0]), 0, 0};
	const char *pos[2];
	int npos = 0;
	return dsv32_args_parse(&spec, argc, argv, pos, &npos);
}

static void list_knobs(FILE *out)
{
	size_t n;
	const dsv32_knob *k = dsv32_knob_table(&n);
	for (size_t i = 0; i < n; i++) {
		fprintf(out, "%-22s %-32s %s\n    ref %s", k[i].name, k[i].row,
			dsv32_knob_implemented(&k[i]) ? "switch" : "not yet a switch", k[i].summary);
		if (k[i].side_token)
			fprintf(out, " (side option %s)", k[i].side_token);
		fprintf(out, "\n    hf  %s (toward ref: --direction hf-to-ref, side hf:knob=%s)\n",
			dsv32_knob_implemented_hf(&k[i]) ? "switch" : "not yet a switch", k[i].name);
	}
}

static void on_progress(void *user, int run, int n_runs, const char *what)
{
	if (!*(bool *)user)
		fprintf(stderr, "attribute: run %d/%d: %s\n", run + 1, n_runs, what);
}

static dsv32_status checkpoint_of(attr_args *o, dsv32_error *err)
{
	if (o->checkpoint)
		return DSV32_OK;
	snprintf(o->tmpdir, sizeof o->tmpdir, "/tmp/dsv32-attribute-XXXXXX");
	if (!mkdtemp(o->tmpdir))
		return DSV32_FAIL(err, DSV32_E_IO, "cannot create a temporary directory");
	dsv32_tmp_register(o->tmpdir, true);
	snprintf(o->ckpt_buf, sizeof o->ckpt_buf, "%s/tiny", o->tmpdir);
	o->checkpoint = o->ckpt_buf;
	return dsv32_fixture_write("tiny", DSV32_WDTYPE_BF16, 0, o->checkpoint, 0, false, err);
}

static dsv32_status prompt_tokens(const attr_args *o, dsv32_tokens *t, dsv32_error *err)
{
	char p[4096];
	dsv32_config c;
	bool is_hf;
	if (!dsv32_path_join(p, sizeof p, o->checkpoint, "config.json"))
		return DSV32_FAIL(err, DSV32_E_USAGE, "%s: path too long", o->checkpoint);
	DSV32_TRY(dsv32_config_load(&c, p, &is_hf, err));
	if (o->tokens)
		return dsv32_tokens_load(t, o->tokens, c.vocab_size, err);
	return dsv32_tokens_random(t, (int64_t)o->batch, (int64_t)o->prompt_len, c.vocab_size,
				   o->seed, err);
}

static void provenance(dsv32_cmp_result *prov, const attr_args *o, const dsv32_tokens *t)
{
	char buf[64];
	dsv32_cmp_result_prov(prov, "tool", "dsv32-parity " DSV32_VERSION);
	dsv32_cmp_result_prov(prov, "checkpoint", o->tmpdir[0] ? "built-in tiny" : o->checkpoint);
	dsv32_cmp_result_prov(prov, "mode", o->mode);
	snprintf(buf, sizeof buf, "%lld x %lld", (long long)t->rows, (long long)t->cols);
	dsv32_cmp_result_prov(prov, "prompt", buf);
	snprintf(buf, sizeof buf, "%llu", (unsigned long long)o->decode_steps);
	dsv32_cmp_result_prov(prov, "decode_steps", buf);
	if (strcmp(o->direction, "ref-to-hf") != 0) /* the default stays implicit, as before */
		dsv32_cmp_result_prov(prov, "direction", o->direction);
}

static bool to_stdout(const char *dest)
{
	return dest && !strcmp(dest, "-");
}

/* Every document is rendered before any is written, and each file is written atomically
 * (cli_outputs.h), so a run that fails leaves no output at all, and never a half-written one. */
static int write_outputs(const attr_args *o, const dsv32_attribution *a, const dsv32_tokens *t)
{
	dsv32_cmp_result prov;
	dsv32_cmp_result_init(&prov);
	provenance(&prov, o, t);
	char *js = dsv32_attr_json(a, &prov), *md = dsv32_attr_markdown(a);
	char *html = o->html ? dsv32_attr_html(a, &prov) : NULL;
	dsv32_cmp_result_free(&prov);
	int rc = js && md && (html || !o->html) ? 0 : DSV32_EXIT_USAGE;
	if (rc != 0)
		fprintf(stderr, "attribute: out of memory rendering the outputs\n");
	if (rc == 0 && o->json)
		rc = dsv32_cli_write_output("attribute", o->json, js);
	if (rc == 0 && o->markdown)
		rc = dsv32_cli_write_output("attribute", o->markdown, md);
	if (rc == 0 && o->html)
		rc = dsv32_cli_write_output("attribute", o->html, html);
	bool stdout_doc = to_stdout(o->json) || to_stdout(o->markdown) || to_stdout(o->html);
	if (rc == 0 && !o->quiet && !stdout_doc)
		fputs(md, stdout);
	free(js);
	free(md);
	free(html);
	return rc;
}

static int attribute_main(attr_args *o)
{
	dsv32_error err = {0};
	dsv32_tokens toks = {0};
	dsv32_side_spec ref, hf;
	dsv32_attribution *a = calloc(1, sizeof *a);
	dsv32_status rc = a ? DSV32_OK : DSV32_FAIL(&err, DSV32_E_NOMEM, "attribution");
	if (rc == DSV32_OK)
		rc = checkpoint_of(o, &err);
	if (rc == DSV32_OK)
		rc = prompt_tokens(o, &toks, &err);
	if (rc == DSV32_OK)
		rc = dsv32_side_parse("ref", &ref, &err);
	if (rc == DSV32_OK)
		rc = dsv32_side_parse("hf", &hf, &err);
	dsv32_cmp_config cfg = {.checkpoint = o->checkpoint, .open = dsv32_cli_open_model,
				.prompt = toks.ids, .batch = toks.rows, .prompt_len = toks.cols,
				.decode_steps = (int)o->decode_steps,
				.propagate = strcmp(o->mode, "teacher-forced") != 0,
				.local = strcmp(o->mode, "propagate") != 0};
	dsv32_attr_direction dir = DSV32_ATTR_REF_TO_HF;
	if (rc == DSV32_OK && !dsv32_attr_direction_from_name(o->direction, &dir))
		rc = DSV32_FAIL(&err, DSV32_E_USAGE, "--direction %s", o->direction);
	if (rc == DSV32_OK)
		rc = dsv32_attribute_dir(&cfg, &ref, &hf, dir, on_progress, &o->quiet, a, &err);
	int code = rc == DSV32_OK ? write_outputs(o, a, &toks) : dsv32_cli_fail("attribute", &err);
	if (o->tmpdir[0]) {
		dsv32_remove_tree(o->tmpdir, NULL);
		dsv32_tmp_forget(o->tmpdir);
	}
	dsv32_tokens_free(&toks);
	free(a);
	return code;
}

int dsv32_cmd_attribute(int argc, char **argv)
{
	attr_args o;
	int prc = parse(&o, argc, argv);
	if (prc == DSV32_ARGS_HELP)
		return DSV32_EXIT_OK;
	if (prc != DSV32_ARGS_OK)
		return DSV32_EXIT_USAGE;
	if (o.list_knobs) {
		list_knobs(stdout);
		return DSV32_EXIT_OK;
	}
	if (to_stdout(o.json) + to_stdout(o.markdown) + to_stdout(o.html) > 1)
		return dsv32_cli_usage_error("attribute", "--json, --markdown and --html: only one of "
					     "them can go to stdout");
	char ckbuf[PATH_MAX];
	const char *inputs[] = {dsv32_cli_ckpt_input(o.checkpoint, ckbuf, sizeof ckbuf),
				dsv32_cli_tokens_input(o.tokens)};
	const char *names[] = {"--json", "--markdown", "--html"};
	const char *outs[] = {o.json ? dsv32_cli_out_file(o.json) : NULL,
			      o.markdown ? dsv32_cli_out_file(o.markdown) : NULL,
			      o.html ? dsv32_cli_out_file(o.html) : NULL};
	dsv32_cli_outputs claimed = {.force = o.force};
	if ((prc = dsv32_cli_outputs_claim(&claimed, "attribute", names, outs, 3, inputs, 2)) != 0)
		return prc;
	int code = attribute_main(&o);
	dsv32_cli_outputs_release(&claimed);
	return code;
}
