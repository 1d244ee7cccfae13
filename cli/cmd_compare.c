/* cmd_compare.c: `dsv32-parity compare`: run two implementations (or recordings) on the same
 * weights and tokens and report drift per layer and per op (issues 7 and 8). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "cli/cli_outputs.h"
#include "cli/cli_models.h"
#include "cli/cli_order.h"
#include "compare/budget.h"
#include "compare/provenance.h"
#include "compare/record.h"
#include "compare/runner.h"
#include "compare/tapfile.h"
#include "core/config.h"
#include "core/fsutil.h"
#include "core/infile.h"
#include "core/outpath.h"
#include "core/tokens.h"
#include "fixtures/generator.h"
#include "kernels/backend.h"
#include "ref/ref_model.h"
#include "reports/report.h"


/* --decode-steps not given (DSV32_DEFAULT_DECODE_STEPS is applied after parsing) */
#define DECODE_STEPS_UNSET UINT64_MAX

typedef struct {
	const char *checkpoint, *a, *b, *tokens, *mode, *budget, *json, *markdown, *html, *dump;
	const char *gemm;         /* --gemm: default engine of live sides without gemm= (NULL: fixed) */
	const char *force_decisions; /* --force-decisions on|off (NULL: on) */
	const char *budget_label; /* what the report names as the budget applied */
	const char *comm_timeout; /* --comm-timeout: side a on real ranks (NULL: 60 s) */
	const char *decode_tokens; /* --decode-tokens (NULL: greedy from side a's logits) */
	const char *order;        /* --order auto|layer|step */
	uint64_t prompt_len, seed, batch, decode_steps, layers;
	bool noise_floor, quiet, verbose, eager_dequant, force;
	bool stdout_doc; /* --json - / --markdown -: stdout holds that document only */
	bool decode_steps_given; /* a recording fixes the steps: then an explicit one is refused */
	char tmpdir[64]; /* the built-in model, when no checkpoint is given */
	char a_ranks[320]; /* side a on real ranks: its text with the job's world size (mp=W) */
} compare_args;

/* Side a on real ranks (comm=mpi|nccl): its recording, made on every rank of the job, kept by
 * rank 0 and compared there as a recording that the report names with side a's label. */
typedef struct {
	dsv32_tapstore taps;      /* rank 0: every tap of every step (other ranks: empty) */
	dsv32_side_timing timing; /* rank 0's open and forwards */
	double wall_s;            /* the recording, from the communicator's open to its close */
	int world;                /* the ranks (processes) it ran on */
	char kind[8];             /* "mpi" | "nccl" */
} ranks_rec;

static const char *summary =
	"Runs side a and side b on the same weights and tokens, reduces every tap to drift metrics\n"
	"and checks them against a budget. Sides: LAYOUT[:cpu|cuda][:bf16|fp32][:mp=W]\n"
	"[:experts=eager][:gemm=fixed|host] with LAYOUT ref|hf, or taps:FILE for a recording\n"
	"(docs/tap-format.md). gemm= picks the CPU GEMM engine: fixed (default) gives the same bits\n"
	"on every CPU; host uses oneDNN/OpenBLAS as PyTorch does on this CPU, to match a torch run\n"
	"recorded on this machine. --gemm sets it for the live sides that do not name gemm=. The\n"
	"reports record each side's engine and host fingerprint (a recording's, from its metadata).\n"
	"Without --checkpoint the built-in tiny model is generated in a temporary directory; a\n"
	"recording is compared with it only if it states that model's config and weights\n"
	"fingerprint (weights_fingerprint_sha256), else --checkpoint is required. A recording\n"
	"fixes the tokens and steps (--tokens and --decode-steps are refused with one).\n"
	"--layers N opens both live sides with their first N decoder layers only (then the final\n"
	"norm and head as usual): a parity check of a model prefix, e.g. the first 4 layers of the\n"
	"671B checkpoint on a workstation. final_norm and logits are then those of the truncated\n"
	"model, not the model's. The report records the limit (provenance \"layers\": \"4 of 61\").\n"
	"Side a may run on real tensor-parallel ranks, one per process: `mpirun -np W dsv32-parity\n"
	"compare --a ref:mp=W:comm=mpi --b SIDE`; every rank runs side a, rank 0 compares it with\n"
	"side b and prints and writes alone (docs/distributed.md).\n"
	"Exit: 0 every tap within budget, 1 a tap over budget or non-finite values, 2 bad input.";

static int parse(compare_args *o, int argc, char **argv)
{
	memset(o, 0, sizeof *o);
	o->a = "ref";
	o->b = "hf";
	o->mode = "both";
	o->prompt_len = 24;
	o->seed = 1;
	o->batch = 2;
	o->decode_steps = DECODE_STEPS_UNSET;
	o->layers = 0;
	o->order = "auto";
	const dsv32_arg_opt opts[] = {
		{"checkpoint", DSV32_ARG_STRING, &o->checkpoint, "DIR", "HF or reference checkpoint (default: built-in tiny)", false},
		{"a", DSV32_ARG_STRING, &o->a, "SIDE", "side a (default ref)", false},
		{"b", DSV32_ARG_STRING, &o->b, "SIDE", "side b (default hf)", false},
		{"tokens", DSV32_ARG_STRING, &o->tokens, "IDS", "prompt ids '5,17,42;1,2,3' (rows by ';') or @FILE", false},
		{"prompt-len", DSV32_ARG_U64, &o->prompt_len, "N", "random prompt length (default 24)", false},
		{"seed", DSV32_ARG_U64, &o->seed, "S", "random prompt seed (default 1)", false},
		{"batch", DSV32_ARG_U64, &o->batch, "B", "random prompt rows (default 2)", false},
		{"decode-steps", DSV32_ARG_U64, &o->decode_steps, "N", "greedy decode steps after the prefill (default " DSV32_DEFAULT_DECODE_STEPS_TEXT ")", false},
		{"decode-tokens", DSV32_ARG_STRING, &o->decode_tokens, "IDS", "the decode steps' tokens instead of greedy ones from side a's logits: one row per prompt row, one id per step ('7,9;3,4'), @FILE, or @REC.safetensors (a recording's decoded ids); sets --decode-steps and lets every pass run layer-major", false},
		{"order", DSV32_ARG_CHOICE, &o->order, "auto|layer|step", "loop order. layer: each layer runs every step and is then released, so one layer's weights are resident (needs every step's tokens before the run: a recording, --decode-tokens or --decode-steps 0; the teacher-forced pass after a propagate one has them); step: each step runs every layer; auto (default): layer where it applies. Same results either way; the report's provenance \"order\" says which ran and why", false},
		{"mode", DSV32_ARG_CHOICE, &o->mode, "propagate|teacher-forced|both", "drift mode (default both)", false},
		{"noise-floor", DSV32_ARG_FLAG, &o->noise_floor, NULL, "also run each side in fp32 and report drift / own noise", false},
		{"budget", DSV32_ARG_STRING, &o->budget, "FILE", "budget JSON (default: the shipped budget for the checkpoint's bf16 or fp8 weights)", false},
		{"json", DSV32_ARG_OUTPUT, &o->json, "FILE", "write the JSON report (alone or '-': stdout, which then holds only it)", false},
		{"markdown", DSV32_ARG_OUTPUT, &o->markdown, "FILE", "write the Markdown summary (alone or '-': stdout only)", false},
		{"html", DSV32_ARG_OUTPUT, &o->html, "FILE", "write the HTML report (alone or '-': stdout only)", false},
		{"dump", DSV32_ARG_STRING, &o->dump, "FILE.h5", "keep every tap of both sides (HDF5: a/stepN, b/stepN)", false},
		{"layers", DSV32_ARG_U64, &o->layers, "N", "run only the first N decoder layers (truncated model; 0 = all)", false},
		{"eager-dequant", DSV32_ARG_FLAG, &o->eager_dequant, NULL, "hf on CPU: dequantize fp8 weights at load (default: lazily, per GEMM)", false},
		{"gemm", DSV32_ARG_CHOICE, &o->gemm, "fixed|host", "GEMM engine of live sides without gemm= (fixed: same bits on every CPU, default; host: oneDNN/OpenBLAS as PyTorch on this CPU)", false},
		{"comm-timeout", DSV32_ARG_STRING, &o->comm_timeout, "S", "side a with comm=mpi|nccl: seconds a rank may keep a collective waiting before the job ends with an error naming it (default 60)", false},
		{"force-decisions", DSV32_ARG_CHOICE, &o->force_decisions, "on|off", "teacher-forced: where a row's indexer or expert selection differs, the live side uses the other side's, so later taps measure arithmetic only; every forced row is reported (default on)", false},
		{"quiet", DSV32_ARG_FLAG, &o->quiet, NULL, "only the verdict line (no summary, no progress)", false},
		{"verbose", DSV32_ARG_FLAG, &o->verbose, NULL, "every tap in a table instead of the summary", false},
		{"force", DSV32_ARG_FLAG, &o->force, NULL, "replace existing --json / --markdown / --html / --dump files", false},
	};
	dsv32_arg_spec spec = {"compare", "[--checkpoint DIR] [--a SIDE] [--b SIDE] [options]",
			       summary, opts, (int)(sizeof opts / sizeof opts[0]), 0, 0};
	const char *pos[4];
	int npos = 0;
	int rc = dsv32_args_parse(&spec, argc, argv, pos, &npos);
	if (o->layers > INT_MAX) /* above the model's count: all layers */
		o->layers = INT_MAX;
	o->decode_steps_given = o->decode_steps != DECODE_STEPS_UNSET;
	if (!o->decode_steps_given)
		o->decode_steps = DSV32_DEFAULT_DECODE_STEPS;
	return rc;
}

/* The progress line on stderr (a terminal only): pass, step, layer, and the time left from
 * the pace so far. */
typedef struct {
	double t0;
	bool drawn;
} progress_line;

static void on_progress(void *user, const dsv32_cmp_progress *p)
{
	progress_line *pl = user;
	double in_step = p->n_layers > 0 ? (double)(p->layer + 1) / p->n_layers : 0.0;
	double in_pass = (p->step + in_step) / (p->n_steps ? p->n_steps : 1);
	if (p->layer_major && p->n_layers > 0) /* layers done over every step, then this layer's steps */
		in_pass = ((double)(p->layer + 1) + (double)p->step / (p->n_steps ? p->n_steps : 1)) /
			  p->n_layers;
	double done = ((double)p->pass_index + in_pass) / (p->n_passes ? p->n_passes : 1);
	double t = dsv32_cli_now_s() - pl->t0;
	char eta[32] = "";
	if (done > 0.02 && t > 1.0)
		snprintf(eta, sizeof eta, ", ~%.0f s left", t / done * (1.0 - done));
	fprintf(stderr, "\r\033[K[compare] %s %d/%d: step %d/%d", p->pass, p->pass_index + 1,
		p->n_passes, p->step + 1, p->n_steps);
	if (p->layer >= 0 && p->n_layers > 0)
		fprintf(stderr, ", layer %d/%d", p->layer + 1, p->n_layers);
	fprintf(stderr, "%s", eta);
	pl->drawn = true;
}

static void progress_done(progress_line *pl)
{
	if (pl->drawn)
		fprintf(stderr, "\r\033[K");
	pl->drawn = false;
}

static dsv32_status make_builtin(compare_args *o, dsv32_error *err)
{
	snprintf(o->tmpdir, sizeof o->tmpdir, "/tmp/dsv32-compare-XXXXXX");
	if (!mkdtemp(o->tmpdir))
		return DSV32_FAIL(err, DSV32_E_IO, "cannot create a temporary directory");
	dsv32_tmp_register(o->tmpdir, true); /* removed on SIGINT/SIGTERM too (core/outpath.h) */
	static char path[128];
	snprintf(path, sizeof path, "%s/tiny", o->tmpdir);
	o->checkpoint = path;
	return dsv32_fixture_write("tiny", DSV32_WDTYPE_BF16, 0, path, 0, false, err);
}

static dsv32_status vocab_of(const char *ckpt, int64_t *vocab, dsv32_error *err)
{
	char p[4096];
	dsv32_config c;
	bool is_hf;
	if (!dsv32_path_join(p, sizeof p, ckpt, "config.json"))
		return DSV32_FAIL(err, DSV32_E_USAGE, "%s: path too long", ckpt);
	DSV32_TRY(dsv32_config_load(&c, p, &is_hf, err));
	*vocab = c.vocab_size;
	return DSV32_OK;
}

static dsv32_status prompt_tokens(const compare_args *o, dsv32_tokens *t, dsv32_error *err)
{
	int64_t vocab = 0;
	if (o->checkpoint)
		DSV32_TRY(vocab_of(o->checkpoint, &vocab, err));
	if (o->tokens)
		return dsv32_tokens_load(t, o->tokens, vocab, err);
	return dsv32_tokens_random(t, (int64_t)o->batch, (int64_t)o->prompt_len, vocab, o->seed, err);
}

static void add_provenance(dsv32_cmp_result *r, const compare_args *o, const dsv32_tokens *t,
			   const dsv32_side_spec *a, const dsv32_side_spec *b)
{
	char buf[512];
	dsv32_prov_add_build(r);
	dsv32_prov_add_side_host(r, 0, a);
	dsv32_prov_add_side_host(r, 1, b);
	if (o->checkpoint) {
		dsv32_cmp_result_prov(r, "checkpoint", o->tmpdir[0] ? "built-in tiny (seed 0)" : o->checkpoint);
		char hex[65];
		if (dsv32_checkpoint_fingerprint(o->checkpoint, hex, NULL) == DSV32_OK)
			dsv32_cmp_result_prov(r, "weights_fingerprint_sha256", hex);
		char p[4096];
		char *cfg = NULL;
		size_t len;
		if (dsv32_path_join(p, sizeof p, o->checkpoint, "config.json") &&
		    dsv32_read_file(p, 1 << 20, &cfg, &len, NULL) == DSV32_OK) {
			dsv32_cmp_result_prov(r, "config", cfg);
			free(cfg);
		}
	}
	if (t->ids) {
		size_t off = 0;
		for (int64_t i = 0; i < t->rows * t->cols && off + 24 < sizeof buf; i++)
			off += (size_t)snprintf(buf + off, sizeof buf - off, "%s%lld",
						i == 0 ? "" : (i % t->cols == 0 ? ";" : ","), (long long)t->ids[i]);
		dsv32_cmp_result_prov(r, "tokens", buf);
	}
	/* with a recording, the runner stated the recording's tokens and steps */
	if (a->kind != DSV32_SIDE_TAPS && b->kind != DSV32_SIDE_TAPS) {
		snprintf(buf, sizeof buf, "%llu", (unsigned long long)o->seed);
		dsv32_cmp_result_prov(r, "seed", o->tokens ? "(tokens given)" : buf);
		snprintf(buf, sizeof buf, "%llu", (unsigned long long)o->decode_steps);
		dsv32_cmp_result_prov(r, "decode_steps", buf);
	}
	dsv32_cmp_result_prov(r, "budget", o->budget_label);
	if (o->layers > 0 && o->checkpoint) { /* a truncated model: "4 of 61" */
		dsv32_cli_layers_text(buf, sizeof buf, (int)o->layers,
				      dsv32_cli_layer_count(o->checkpoint, NULL));
		dsv32_cmp_result_prov(r, "layers", buf);
	}
}

/* fp32 twin of a live side, for the noise floor */
static bool fp32_twin(const dsv32_side_spec *s, dsv32_side_spec *twin)
{
	if (s->kind != DSV32_SIDE_MODEL)
		return false;
	*twin = *s;
	twin->opts.profile = DSV32_PROFILE_FP32;
	snprintf(twin->label, sizeof twin->label, "%.100s (fp32 profile)", s->label);
	return true;
}

static dsv32_status noise_floor(dsv32_cmp_config cfg, const dsv32_side_spec *a,
				const dsv32_side_spec *b, dsv32_cmp_result *r, dsv32_error *err)
{
	dsv32_side_spec ta, tb;
	dsv32_cmp_result fa, fb;
	dsv32_cmp_result_init(&fa);
	dsv32_cmp_result_init(&fb);
	cfg.budget = NULL;
	cfg.dump_a = cfg.dump_b = NULL; /* same modes as the main run: local floors are each
					 * layer's own rounding noise */
	dsv32_status rc = DSV32_OK;
	if (fp32_twin(a, &ta))
		rc = dsv32_cmp_run(&cfg, a, &ta, &fa, err);
	if (rc == DSV32_OK && fp32_twin(b, &tb))
		rc = dsv32_cmp_run(&cfg, b, &tb, &fb, err);
	if (rc == DSV32_OK)
		dsv32_cmp_apply_noise_floor(r, &fa, &fb);
	dsv32_cmp_result_free(&fa);
	dsv32_cmp_result_free(&fb);
	return rc;
}

static dsv32_status write_outputs(const compare_args *o, const dsv32_cmp_result *r,
				  dsv32_tapstore *da, dsv32_tapstore *db, dsv32_error *err)
{
	if (o->json && !strcmp(o->json, "-")) {
		char *text = dsv32_report_json_string(r);
		if (!text)
			return DSV32_FAIL(err, DSV32_E_NOMEM, "serializing the report");
		printf("%s\n", text);
		free(text);
	} else if (o->json) {
		DSV32_TRY(dsv32_report_write_json(r, o->json, err));
	}
	if (o->markdown && !strcmp(o->markdown, "-"))
		dsv32_report_markdown(r, stdout);
	else if (o->markdown)
		DSV32_TRY(dsv32_report_write_markdown(r, o->markdown, err));
	if (o->html && !strcmp(o->html, "-"))
		dsv32_report_html(r, stdout);
	else if (o->html)
		DSV32_TRY(dsv32_report_write_html(r, o->html, err));
	if (o->dump) {
		/* both sides in one store: "a/step0.embed", "b/step0.embed" (HDF5: groups a/step0) */
		dsv32_tapstore all;
		dsv32_tapstore_init(&all);
		dsv32_status rc = DSV32_OK;
		for (int side = 0; side < 2 && rc == DSV32_OK; side++) {
			dsv32_tapstore *s = side ? db : da;
			for (size_t i = 0; i < s->n && rc == DSV32_OK; i++) {
				char name[256];
				snprintf(name, sizeof name, "%c/%s", side ? 'b' : 'a', s->e[i].name);
				rc = dsv32_tapstore_put(&all, name, &s->e[i].t, err);
			}
		}
		/* each side's engine and host (docs/tap-format.md "Engine and host"), suffixed _a / _b */
		const char *keys[] = {"producer", "side_a", "side_b",
				      DSV32_META_GEMM_ENGINE "_a", DSV32_META_NUMERICS_KEY "_a",
				      DSV32_META_FINGERPRINT "_a", DSV32_META_GEMM_ENGINE "_b",
				      DSV32_META_NUMERICS_KEY "_b", DSV32_META_FINGERPRINT "_b"};
		const char *vals[] = {"dsv32-parity compare " DSV32_VERSION, r->side_a, r->side_b,
				      r->host[0].engine, r->host[0].numerics_key, r->host[0].line,
				      r->host[1].engine, r->host[1].numerics_key, r->host[1].line};
		int n_meta = (int)(sizeof keys / sizeof keys[0]);
		if (rc == DSV32_OK)
			rc = dsv32_tapfile_is_h5_path(o->dump)
				     ? dsv32_tapfile_write_h5(&all, o->dump, keys, vals, n_meta, err)
				     : dsv32_tapfile_write(&all, o->dump, keys, vals, n_meta, err);
		dsv32_tapstore_free(&all);
		return rc;
	}
	return DSV32_OK;
}

/* Whether the checkpoint's config declares fp8 weights (HF quantization_config, or the
 * reference config's "dtype": "fp8"); false when there is no readable config. */
static bool checkpoint_is_fp8(const char *checkpoint)
{
	dsv32_config c;
	return dsv32_cli_checkpoint_config(checkpoint, NULL, &c, NULL) &&
	       (c.has_quant || c.dtype == DSV32_WDTYPE_FP8);
}

/* --budget FILE, else the shipped budget for the checkpoint's weight format. */
static dsv32_status load_budget(compare_args *o, dsv32_budget *b, dsv32_error *err)
{
	if (o->budget) {
		o->budget_label = o->budget;
		return dsv32_budget_load(b, o->budget, err);
	}
	bool fp8 = checkpoint_is_fp8(o->checkpoint);
	o->budget_label = fp8 ? "built-in, fp8 weights (docs/budgets.md)"
			      : "built-in, bf16 weights (docs/budgets.md)";
	char *json = dsv32_default_budget_json(fp8);
	if (!json)
		return DSV32_FAIL(err, DSV32_E_NOMEM, "built-in budget");
	dsv32_status rc = dsv32_budget_parse(b, json, o->budget_label, err);
	free(json);
	return rc;
}

/* Parse a side; --gemm ENGINE applies to a live side that does not name gemm= itself (appended
 * to its text, so the label says it as the side's own option would). */
static dsv32_status parse_side(const char *text, const char *gemm, dsv32_side_spec *s,
			       dsv32_error *err)
{
	char buf[320];
	bool named = !strncmp(text, "gemm=", 5) || strstr(text, ":gemm=");
	if (gemm && strncmp(text, "taps:", 5) != 0 && !named &&
	    (size_t)snprintf(buf, sizeof buf, "%s:gemm=%s", text, gemm) < sizeof buf)
		text = buf;
	return dsv32_side_parse(text, s, err);
}

/* A recording fixes tokens and steps; a recording of another model than the live side's (or
 * the other recording's) compares nothing meaningful. Refused before any model runs. */
static dsv32_status check_recordings(const compare_args *o, const dsv32_side_spec *a,
				     const dsv32_side_spec *b, dsv32_error *err)
{
	const dsv32_side_spec *rec[2] = {a, b};
	bool live = a->kind == DSV32_SIDE_MODEL || b->kind == DSV32_SIDE_MODEL;
	for (int i = 0; i < 2; i++) /* an unreadable recording is the first thing to say */
		if (rec[i]->kind == DSV32_SIDE_TAPS)
			DSV32_TRY(dsv32_infile_check(rec[i]->path, err));
	if (o->tokens)
		return DSV32_FAIL(err, DSV32_E_USAGE, "--tokens: a recording (taps:) fixes the "
				  "tokens; the live side is fed the recording's");
	if (o->decode_steps_given)
		return DSV32_FAIL(err, DSV32_E_USAGE, "--decode-steps: a recording (taps:) fixes "
				  "the steps; the live side runs the recording's");
	if (a->kind == DSV32_SIDE_TAPS && b->kind == DSV32_SIDE_TAPS)
		DSV32_TRY(dsv32_recordings_check_pair(a->path, b->path, err));
	for (int i = 0; i < 2 && o->checkpoint; i++) {
		if (rec[i]->kind != DSV32_SIDE_TAPS)
			continue;
		bool builtin = o->tmpdir[0] != '\0';
		dsv32_status rc = dsv32_recording_check_model(
			rec[i]->path, o->checkpoint,
			builtin ? "the built-in tiny model (no --checkpoint)" : o->checkpoint,
			builtin && live, err);
		if (rc != DSV32_OK)
			return dsv32_error_prefix(err, "side %c", i ? 'b' : 'a');
	}
	return DSV32_OK;
}

/* A live side against a CPU recording follows torch's CPU tie order and exp unless told
 * otherwise (dsv32_side_adopt_recording_rules); said on stderr, and in every report's Host line. */
static void adopt_rules(const compare_args *o, dsv32_side_spec *a, dsv32_side_spec *b)
{
	dsv32_side_spec *live = a->kind == DSV32_SIDE_MODEL ? a : b;
	const dsv32_side_spec *rec = a->kind == DSV32_SIDE_TAPS ? a : b;
	if (live->kind != DSV32_SIDE_MODEL || rec->kind != DSV32_SIDE_TAPS)
		return;
	unsigned changed = dsv32_side_adopt_recording_rules(live, rec->path);
	if (changed && !o->quiet)
		fprintf(stderr, "side %c: %s%s%s, as the recording (made on a CPU; name %s on the side "
			"to keep our default)\n", live == a ? 'a' : 'b',
			changed & 1u ? "ties=torch-cpu" : "", changed == 3u ? " and " : "",
			changed & 2u ? "exp=torch-cpu" : "",
			changed == 3u ? "ties=index / exp=libm" : changed & 1u ? "ties=index" : "exp=libm");
}

/* The report's note on a side a that ran on real ranks, and that side's own time. */
static void note_ranks(dsv32_cmp_result *r, const ranks_rec *rec)
{
	char buf[160];
	snprintf(buf, sizeof buf, "%d %s processes (comm=%s): every rank ran side a, rank 0 "
		 "compared its taps", rec->world, strcmp(rec->kind, "mpi") ? "NCCL" : "MPI",
		 rec->kind);
	dsv32_cmp_result_prov(r, "side_a_ranks", buf);
	r->timing[0] = rec->timing;
	r->wall_s += rec->wall_s;
}

/* --decode-tokens: refused with a recording (it fixes the tokens), checked against the prompt
 * and --decode-steps, which it sets. dec stays empty without it. */
static dsv32_status decode_tokens(compare_args *o, const dsv32_tokens *toks, dsv32_tokens *dec,
				  dsv32_error *err)
{
	if (!o->decode_tokens)
		return DSV32_OK;
	if (!toks->ids)
		return DSV32_FAIL(err, DSV32_E_USAGE, "--decode-tokens: a recording (taps:) fixes the "
				  "tokens; the live side is fed the recording's");
	int64_t vocab = 0;
	if (o->checkpoint)
		DSV32_TRY(vocab_of(o->checkpoint, &vocab, err));
	DSV32_TRY(dsv32_cli_decode_tokens(o->decode_tokens, vocab, toks->rows, dec, err));
	if (o->decode_steps_given && (int64_t)o->decode_steps != dec->cols) {
		int64_t c = dec->cols;
		dsv32_tokens_free(dec);
		return DSV32_FAIL(err, DSV32_E_USAGE, "--decode-steps %llu, but --decode-tokens gives "
				  "%lld step(s)", (unsigned long long)o->decode_steps, (long long)c);
	}
	o->decode_steps = (uint64_t)dec->cols;
	return DSV32_OK;
}

/* ids [rows, cols] as "5,17;1,2" under key (the form of "tokens"). */
static void prov_ids(dsv32_cmp_result *r, const char *key, const dsv32_tokens *t)
{
	char buf[512];
	size_t off = 0;
	buf[0] = '\0';
	for (int64_t i = 0; i < t->rows * t->cols && off + 24 < sizeof buf; i++)
		off += (size_t)snprintf(buf + off, sizeof buf - off, "%s%lld",
					i == 0 ? "" : (i % t->cols == 0 ? ";" : ","), (long long)t->ids[i]);
	dsv32_cmp_result_prov(r, key, buf);
}

/* rec: side a's recording on real ranks (rank 0 only), or NULL for a side a in this process. */
static dsv32_status run(compare_args *o, ranks_rec *rec, dsv32_cmp_result *r, dsv32_error *err)
{
	dsv32_side_spec a, b;
	DSV32_TRY(parse_side(rec ? o->a_ranks : o->a, o->gemm, &a, err));
	DSV32_TRY(parse_side(o->b, o->gemm, &b, err));
	if (!o->quiet && ((a.kind != DSV32_SIDE_TAPS && a.opts.gemm_engine == DSV32_GEMM_HOST) ||
			  (b.kind != DSV32_SIDE_TAPS && b.opts.gemm_engine == DSV32_GEMM_HOST)))
		dsv32_cli_note_host_blas();
	if (o->layers > 0 && (a.kind == DSV32_SIDE_TAPS || b.kind == DSV32_SIDE_TAPS))
		return DSV32_FAIL(err, DSV32_E_USAGE,
				  "--layers %llu: both sides must be live models (a recording holds "
				  "the full model's taps, so its final_norm and logits are not "
				  "comparable with a truncated model's)", (unsigned long long)o->layers);
	a.opts.layers = b.opts.layers = (int)o->layers;
	a.opts.eager_dequant = b.opts.eager_dequant = o->eager_dequant;
	bool live = a.kind == DSV32_SIDE_MODEL || b.kind == DSV32_SIDE_MODEL;
	if (live && !o->checkpoint)
		DSV32_TRY(make_builtin(o, err));
	dsv32_tokens toks = {0}, dec = {0};
	bool recording = a.kind == DSV32_SIDE_TAPS || b.kind == DSV32_SIDE_TAPS;
	if (recording) {
		DSV32_TRY(check_recordings(o, &a, &b, err));
		adopt_rules(o, &a, &b);
	}
	else
		DSV32_TRY(prompt_tokens(o, &toks, err));
	dsv32_status rc = decode_tokens(o, &toks, &dec, err);
	if (rc != DSV32_OK) {
		dsv32_tokens_free(&toks);
		return rc;
	}
	dsv32_budget budget;
	rc = load_budget(o, &budget, err);
	if (rc != DSV32_OK)
		goto out_tokens;
	dsv32_tapstore da, db;
	dsv32_tapstore_init(&da);
	dsv32_tapstore_init(&db);
	progress_line pl = {dsv32_cli_now_s(), false};
	dsv32_cmp_config cfg = {
		.checkpoint = o->checkpoint, .open = dsv32_cli_open_model, .prompt = toks.ids,
		.batch = toks.rows, .prompt_len = toks.cols, .decode_steps = (int)o->decode_steps,
		.propagate = strcmp(o->mode, "teacher-forced") != 0,
		.local = strcmp(o->mode, "propagate") != 0, .budget = &budget,
		.keep_decisions = o->force_decisions && !strcmp(o->force_decisions, "off"),
		.dump_a = o->dump ? &da : NULL, .dump_b = o->dump ? &db : NULL,
		.progress = (!o->quiet && dsv32_cli_stderr_is_tty()) ? on_progress : NULL,
		.progress_user = &pl, .decode = dec.ids,
		.order = !strcmp(o->order, "layer") ? DSV32_ORDER_LAYER
			 : !strcmp(o->order, "step") ? DSV32_ORDER_STEP : DSV32_ORDER_AUTO};
	dsv32_side_spec ra = a; /* side a on real ranks: its recording, under its own label */
	if (rec) {
		ra.kind = DSV32_SIDE_TAPS;
		ra.mem = &rec->taps;
	}
	rc = dsv32_cmp_run(&cfg, rec ? &ra : &a, &b, r, err);
	if (rc == DSV32_OK && rec)
		note_ranks(r, rec);
	if (rc == DSV32_OK && o->noise_floor)
		rc = noise_floor(cfg, &a, &b, r, err);
	progress_done(&pl);
	if (rc == DSV32_OK) {
		add_provenance(r, o, &toks, &a, &b);
		if (dec.ids)
			prov_ids(r, "decode_tokens", &dec);
		rc = write_outputs(o, r, &da, &db, err);
	}
	dsv32_tapstore_free(&da);
	dsv32_tapstore_free(&db);
	dsv32_budget_free(&budget);
out_tokens:
	dsv32_tokens_free(&toks);
	dsv32_tokens_free(&dec);
	return rc;
}

/* The built-in model's temporary directory, if this process made one. */
static void remove_builtin(compare_args *o)
{
	if (o->tmpdir[0]) {
		dsv32_remove_tree(o->tmpdir, NULL);
		dsv32_tmp_forget(o->tmpdir);
		o->tmpdir[0] = '\0';
	}
}

/* Run the comparison, print the table, return the exit code. rec: as run's. */
static int compare_main(compare_args *o, ranks_rec *rec)
{
	dsv32_cmp_result r;
	dsv32_cmp_result_init(&r);
	dsv32_error err = {0};
	dsv32_status rc = run(o, rec, &r, &err);
	remove_builtin(o);
	if (rc != DSV32_OK) {
		dsv32_cmp_result_free(&r);
		return dsv32_cli_fail("compare", &err);
	}
	/* stdout holding a JSON or Markdown document gets nothing else: the verdict goes to stderr */
	if (o->stdout_doc)
		dsv32_report_verdict(&r, stderr);
	else if (o->quiet)
		dsv32_report_verdict(&r, stdout);
	else if (o->verbose)
		dsv32_report_table(&r, stdout);
	else
		dsv32_report_console(&r, stdout);
	if (r.nonfinite)
		fprintf(stderr, "dsv32-parity compare: non-finite values first appear at %s\n",
			r.nonfinite_tap);
	int code = dsv32_cmp_result_passed(&r) ? DSV32_EXIT_OK : DSV32_EXIT_CHECK_FAILED;
	dsv32_cmp_result_free(&r);
	return code;
}

/* Check the outputs against every input and each other, and lock them, before the (long) run.
 * "-" for --json / --markdown is stdout: at most one of them, and the table is then left out. */
static int claim_outputs(compare_args *o, dsv32_cli_outputs *claimed)
{
	bool json_out = o->json && !strcmp(o->json, "-");
	bool md_out = o->markdown && !strcmp(o->markdown, "-");
	bool html_out = o->html && !strcmp(o->html, "-");
	if (json_out + md_out + html_out > 1)
		return dsv32_cli_usage_error("compare", "--json, --markdown and --html: only one of "
					     "them can go to stdout ('-' or the option alone)");
	if (json_out || md_out || html_out)
		o->quiet = o->stdout_doc = true;
	char ckbuf[PATH_MAX];
	const char *inputs[] = {dsv32_cli_ckpt_input(o->checkpoint, ckbuf, sizeof ckbuf),
				dsv32_cli_tokens_input(o->tokens), o->budget,
				dsv32_cli_side_input(o->a), dsv32_cli_side_input(o->b)};
	const char *names[] = {"--json", "--markdown", "--html", "--dump"};
	const char *outs[] = {json_out ? NULL : o->json, md_out ? NULL : o->markdown,
			      html_out ? NULL : o->html, o->dump};
	return dsv32_cli_outputs_claim(claimed, "compare", names, outs, 4, inputs, 5);
}

/* ---- side a on real ranks (comm=mpi|nccl; docs/distributed.md) ---- */

/* Side a's comm= into kind ("" when it runs in this process). What a side on real ranks cannot
 * do is refused here, before any rank starts, with the route that works. Returns an exit code;
 * a side that does not parse is left to run(), which says why. */
static int sides_ranks(const compare_args *o, char *kind, size_t len)
{
	dsv32_side_spec a, b;
	kind[0] = '\0';
	bool a_ok = dsv32_side_parse(o->a, &a, NULL) == DSV32_OK;
	bool b_ok = dsv32_side_parse(o->b, &b, NULL) == DSV32_OK;
	if (b_ok && b.comm[0])
		return dsv32_cli_usage_error(
			"compare", "--b %s: comm=%s runs as side a only: side b is fed side a's tokens "
			"and, teacher-forced, its layer inputs and decisions, which real ranks cannot "
			"take from this process. Swap the sides (--a %s --b %s; relative errors are "
			"then taken against it), or record it with `mpirun -np W dsv32-parity dump "
			"--comm %s` and compare the file (taps:FILE)", o->b, b.comm, o->b, o->a, b.comm);
	if (!a_ok || !a.comm[0])
		return 0;
	if (b_ok && b.kind == DSV32_SIDE_TAPS)
		return dsv32_cli_usage_error(
			"compare", "--a %s --b %s: side a on real ranks is compared from its recording, "
			"so both sides would be recordings: record side a with `mpirun -np W "
			"dsv32-parity dump --comm %s` and compare the two files, or give a live side b",
			o->a, o->b, a.comm);
	if (o->noise_floor)
		return dsv32_cli_usage_error(
			"compare", "--noise-floor reruns each live side in fp32 in this process; side a "
			"runs on real ranks (comm=%s): leave comm= out (the in-process ref:mp=W gives the "
			"same bits)", a.comm);
	snprintf(kind, len, "%s", a.comm);
	return 0;
}

/* Every rank: open its shard of side a and record side a as `dump --comm` does (prefill and
 * the greedy decode steps, the same tokens on every rank); rank 0 keeps the taps in rec. */
static dsv32_status record_ranks(compare_args *o, dsv32_comm *comm, ranks_rec *rec,
				 dsv32_error *err)
{
	dsv32_side_spec a;
	dsv32_tokens toks = {0};
	dsv32_model *m = NULL;
	dsv32_status rc = parse_side(o->a, o->gemm, &a, err);
	a.opts.layers = (int)o->layers;
	a.opts.eager_dequant = o->eager_dequant;
	if (rc == DSV32_OK && !o->checkpoint) /* every rank makes its own copy */
		rc = make_builtin(o, err);
	if (rc == DSV32_OK)
		rc = prompt_tokens(o, &toks, err);
	double t0 = dsv32_cli_now_s();
	if (rc == DSV32_OK)
		rc = dsv32_cli_open_model_comm(a.layout, o->checkpoint, NULL, &a.opts, comm, &m, err);
	else /* the other ranks wait in the open's agreement */
		rc = dsv32_comm_agree(comm, rc, "open", err);
	rec->timing.load_s = dsv32_cli_now_s() - t0;
	dsv32_tokens dec = {0};
	if (rc == DSV32_OK) {
		rec->world = dsv32_ref_world_size(m);
		rc = decode_tokens(o, &toks, &dec, err);
		/* given tokens: the ranks run layer-major too unless told not to */
		dsv32_record_req q = {toks.ids, toks.rows, toks.cols, (int)o->decode_steps, dec.ids,
				      dec.ids && strcmp(o->order, "step") != 0};
		if (rc == DSV32_OK)
			rc = dsv32_record_run_req(m, &q, dsv32_cli_comm_is_leader(comm) ? &rec->taps
										 : NULL,
						  &rec->timing, err);
		m->vt->close(m);
	}
	dsv32_tokens_free(&toks);
	dsv32_tokens_free(&dec);
	/* the report names the world size the ranks ran (mp=W), even where the side left it to
	 * the job (an HF checkpoint sliced one part per process) */
	if (rc == DSV32_OK &&
	    (size_t)snprintf(o->a_ranks, sizeof o->a_ranks, "%s:mp=%d", o->a, rec->world) >=
		    sizeof o->a_ranks)
		rc = DSV32_FAIL(err, DSV32_E_USAGE, "side '%.40s...': too long", o->a);
	return rc;
}

/* compare with side a on real ranks: every rank records side a; then the job ends on every
 * rank but 0 (exit 0, nothing printed or written) and rank 0 compares the recording with side
 * b alone, so side b's run is not bounded by --comm-timeout and holds no rank. A failure on any
 * rank while side a runs ends the job, bounded and named, before anything is written. */
static int compare_ranks(compare_args *o, const char *kind)
{
	dsv32_error err = {0};
	dsv32_comm *comm = NULL;
	double t0 = dsv32_cli_now_s();
	if (dsv32_cli_comm_open(kind, o->comm_timeout, &comm, &err) != DSV32_OK)
		return dsv32_cli_fail("compare", &err);
	bool leader = dsv32_cli_comm_is_leader(comm);
	dsv32_cli_outputs claimed = {.force = o->force};
	int code = leader ? claim_outputs(o, &claimed) : 0;
	if (dsv32_comm_agree(comm, code ? DSV32_E_USAGE : DSV32_OK, "outputs", &err) != DSV32_OK)
		return dsv32_cli_comm_finish("compare", comm, code ? code : DSV32_EXIT_USAGE,
					     code ? NULL : &err); /* rank 0 printed the refusal */
	ranks_rec rec = {0};
	dsv32_tapstore_init(&rec.taps);
	snprintf(rec.kind, sizeof rec.kind, "%s", kind);
	dsv32_status rc = record_ranks(o, comm, &rec, &err);
	if (rc != DSV32_OK || !leader)
		remove_builtin(o);
	if (rc != DSV32_OK) {
		dsv32_tapstore_free(&rec.taps);
		dsv32_cli_outputs_release(&claimed);
		return dsv32_cli_comm_finish("compare", comm, DSV32_EXIT_USAGE, &err);
	}
	dsv32_cli_comm_finish("compare", comm, DSV32_EXIT_OK, NULL); /* every rank closes */
	rec.wall_s = dsv32_cli_now_s() - t0;
	if (leader)
		code = compare_main(o, &rec);
	dsv32_tapstore_free(&rec.taps);
	dsv32_cli_outputs_release(&claimed);
	return code;
}

int dsv32_cmd_compare(int argc, char **argv)
{
	compare_args o;
	int prc = parse(&o, argc, argv);
	if (prc == DSV32_ARGS_HELP)
		return DSV32_EXIT_OK;
	if (prc != DSV32_ARGS_OK)
		return DSV32_EXIT_USAGE;
	char kind[8];
	if ((prc = sides_ranks(&o, kind, sizeof kind)) != 0)
		return prc;
	if (kind[0])
		return compare_ranks(&o, kind);
	dsv32_cli_outputs claimed = {.force = o.force};
	if ((prc = claim_outputs(&o, &claimed)) != 0)
		return prc;
	int code = compare_main(&o, NULL);
	dsv32_cli_outputs_release(&claimed);
	return code;
}
