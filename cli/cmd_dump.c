/* cmd_dump.c: `dsv32-parity dump`: record a layout's taps (prefill + greedy decode steps) in the
 * tap format (docs/tap-format.md), for comparison with other implementations' recordings. */
#include <cjson/cJSON.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "cli/cli_outputs.h"
#include "cli/cli_models.h"
#include "cli/cli_order.h"
#include "compare/provenance.h"
#include "compare/record.h"
#include "compare/runner.h"
#include "compare/tapfile.h"
#include "core/config.h"
#include "core/fsutil.h"
#include "core/tokens.h"
#include "kernels/backend.h"
#include "kernels/exp_torch.h"
#include "ref/ref_model.h"

typedef struct {
	const char *layout, *ckpt, *tokens, *out, *device, *profile, *gemm, *ties, *exp;
	uint64_t steps, mp, layers;
	const char *decode; /* --decode-tokens (NULL: greedy) */
	const char *order;  /* --order auto|layer|step */
	bool steps_given;   /* --decode-steps was given (checked against --decode-tokens) */
	bool eager_dequant;
	const char *config; /* NULL: the checkpoint's own */
	const char *json;   /* --json [FILE|-]: a summary of what was written */
	dsv32_comm *comm;   /* --comm mpi|nccl: real ranks (NULL: in-process) */
} dump_args;

static int write_json(const dump_args *a, int world, const char *layers, int steps,
		      bool layer_major)
{
	cJSON *j = cJSON_CreateObject();
	cJSON_AddBoolToObject(j, "ok", true);
	cJSON_AddStringToObject(j, "out", a->out);
	cJSON_AddStringToObject(j, "layout", a->layout);
	cJSON_AddNumberToObject(j, "world_size", world);
	cJSON_AddNumberToObject(j, "decode_steps", steps);
	cJSON_AddStringToObject(j, "layers", layers);
	cJSON_AddStringToObject(j, "order", layer_major ? "layer" : "step");
	char *s = cJSON_PrintUnformatted(j);
	int rc = s ? dsv32_cli_write_output("dump", a->json, s) : DSV32_EXIT_USAGE;
	free(s);
	cJSON_Delete(j);
	return rc;
}

/* The decode tokens (--decode-tokens) and the loop order (--order), then the recording. */
static dsv32_status dump_run(const dump_args *a, dsv32_model *m, const dsv32_tokens *toks,
			     dsv32_tapstore *store, bool *layer_major, int *steps, dsv32_error *err)
{
	dsv32_tokens dec = {0};
	dsv32_record_req q = {toks->ids, toks->rows, toks->cols, (int)a->steps, NULL, false};
	if (a->decode) {
		DSV32_TRY(dsv32_cli_decode_tokens(a->decode, m->cfg.vocab_size, toks->rows, &dec, err));
		if (a->steps_given && (int64_t)a->steps != dec.cols) {
			int64_t c = dec.cols;
			dsv32_tokens_free(&dec);
			return DSV32_FAIL(err, DSV32_E_USAGE, "--decode-steps %llu, but --decode-tokens "
					  "gives %lld step(s)", (unsigned long long)a->steps, (long long)c);
		}
		q.decode_steps = (int)dec.cols;
		q.decode = dec.ids;
	}
	bool known = q.decode || q.decode_steps == 0, capable = dsv32_model_has_layer_major(m);
	char why_not[256], why[96];
	snprintf(why_not, sizeof why_not, "%s", !capable ? "this layout has no layer-major execution"
		 : "the decode tokens are chosen from each step's logits (greedy), so a step's tokens "
		   "are known only after every layer ran the step before: give them (--decode-tokens)");
	dsv32_status rc = dsv32_cli_order_pick(a->order, known, capable, why_not, layer_major, why,
					       sizeof why, err);
	q.layer_major = *layer_major;
	*steps = q.decode_steps;
	if (rc == DSV32_OK)
		rc = dsv32_record_run_req(m, &q, store, NULL, err);
	dsv32_tokens_free(&dec);
	return rc;
}

/* Open the model, record and write a->out. Returns the exit code. */
static int dump_record(const dump_args *a)
{
	const char *layout = a->layout, *ckpt = a->ckpt, *out = a->out;
	uint64_t mp = a->mp;
	dsv32_error err = {0};
	dsv32_model_opts o;
	dsv32_model_opts_default(&o);
	o.device = strcmp(a->device, "cuda") ? DSV32_DEV_CPU : DSV32_DEV_CUDA;
	o.profile = strcmp(a->profile, "fp32") ? DSV32_PROFILE_BF16 : DSV32_PROFILE_FP32;
	o.world_size = (int)mp;
	o.layers = a->layers > INT_MAX ? INT_MAX : (int)a->layers; /* above the count: all */
	o.eager_dequant = a->eager_dequant;
	o.gemm_engine = strcmp(a->gemm, "host") ? DSV32_GEMM_FIXED : DSV32_GEMM_HOST;
	o.ties = !strcmp(a->ties, "torch-cpu"); /* dsv32_tie_rule */
	o.exp_rule = !strcmp(a->exp, "torch-cpu"); /* dsv32_exp_rule */
	dsv32_model *m = NULL;
	/* the ref layout's W comes from the shard names; the metadata records the one used */
	bool leader = dsv32_cli_comm_is_leader(a->comm);
	if (leader && o.gemm_engine == DSV32_GEMM_HOST)
		dsv32_cli_note_host_blas();
	dsv32_status orc = DSV32_OK;
	if (!strcmp(layout, "ref"))
		orc = dsv32_cli_shards_world(ckpt, mp > 1 ? (int)mp : 0, &o.world_size, &err);
	if (orc == DSV32_OK)
		orc = dsv32_cli_open_model_comm(layout, ckpt, a->config, &o, a->comm, &m, &err);
	else /* the other ranks wait in the open's agreement */
		orc = dsv32_comm_agree(a->comm, orc, "open", &err);
	if (orc != DSV32_OK)
		return dsv32_cli_comm_finish("dump", a->comm, DSV32_EXIT_USAGE, &err);
	if (!strcmp(layout, "ref"))
		o.world_size = dsv32_ref_world_size(m);
	mp = (uint64_t)o.world_size;
	dsv32_tokens toks;
	dsv32_tapstore store;
	dsv32_tapstore_init(&store);
	bool layer_major = false;
	int steps = (int)a->steps; /* --decode-tokens: its column count */
	dsv32_status rc = dsv32_tokens_load(&toks, a->tokens, m->cfg.vocab_size, &err);
	if (rc == DSV32_OK) {
		rc = dump_run(a, m, &toks, leader ? &store : NULL, &layer_major, &steps, &err);
		dsv32_tokens_free(&toks);
	}
	char *cfg = strcmp(layout, "ref") ? dsv32_config_to_hf_json(&m->cfg) : dsv32_config_to_ref_json(&m->cfg);
	char ws[16];
	snprintf(ws, sizeof ws, "%d", (int)mp);
	char lt[64];
	dsv32_cli_layers_text(lt, sizeof lt, o.layers, dsv32_cli_layer_count(ckpt, a->config));
	dsv32_side_host host; /* the engine and host that produced these numbers */
	dsv32_side_host_live(&host, o.gemm_engine);
	const char *keys[13] = {"producer", "layout", "config", "world_size",
				DSV32_META_GEMM_ENGINE, DSV32_META_NUMERICS_KEY, DSV32_META_FINGERPRINT,
				"ties", "exp"};
	const char *vals[13] = {"dsv32-parity dump " DSV32_VERSION, layout, cfg ? cfg : "{}", ws,
				host.engine, host.numerics_key, host.line, a->ties, a->exp};
	int n_meta = 9;
	char xt[16];
	if (o.exp_rule == DSV32_EXP_TORCH_CPU) { /* the threads and capability it assumed */
		dsv32_exp_opts xo = dsv32_exp_opts_torch_cpu_host();
		snprintf(xt, sizeof xt, "%d", xo.threads);
		keys[n_meta] = "exp_threads";
		vals[n_meta++] = xt;
		keys[n_meta] = "exp_capability";
		vals[n_meta++] = dsv32_torch_cap_name(xo.cap);
	}
	/* the weights' identity, so `compare` can check a recording against --checkpoint (and
	 * accept it without one when it is the built-in model's) */
	char weights_fp[65];
	if (leader && dsv32_checkpoint_fingerprint(ckpt, weights_fp, NULL) == DSV32_OK) {
		keys[n_meta] = DSV32_META_WEIGHTS_FP;
		vals[n_meta++] = weights_fp;
	}
	if (o.layers > 0) { /* "layers" only for a --layers run */
		keys[n_meta] = "layers";
		vals[n_meta++] = lt;
	}
	size_t n = strlen(out);
	bool h5 = n > 3 && !strcmp(out + n - 3, ".h5");
	if (rc == DSV32_OK && leader) /* real ranks: rank 0 writes, the others write nothing */
		rc = h5 ? dsv32_tapfile_write_h5(&store, out, keys, vals, n_meta, &err)
			: dsv32_tapfile_write(&store, out, keys, vals, n_meta, &err);
	free(cfg);
	dsv32_tapstore_free(&store);
	m->vt->close(m);
	if (rc != DSV32_OK)
		return dsv32_cli_comm_finish("dump", a->comm, DSV32_EXIT_USAGE, &err);
	int code = DSV32_EXIT_OK;
	if (leader) {
		fprintf(stderr, "dump: wrote %s\n", out);
		if (a->json)
			code = write_json(a, (int)mp, lt, steps, layer_major);
	}
	return dsv32_cli_comm_finish("dump", a->comm, code, NULL);
}

int dsv32_cmd_dump(int argc, char **argv)
{
	const char *layout = "ref", *ckpt = NULL, *tokens = NULL, *out = NULL, *device = "cpu",
		   *profile = "bf16", *gemm = "fixed", *config = NULL, *json = NULL, *ties = "index",
		   *exp = "libm";
	uint64_t steps = UINT64_MAX, mp = 1, layers = 0;
	const char *decode = NULL, *order = "auto";
	bool eager_dequant = false, force = false;
	const char *comm_kind = "inproc", *comm_timeout = NULL;
	const dsv32_arg_opt opts[] = {
		{"layout", DSV32_ARG_CHOICE, &layout, "ref|hf", "which layout runs (default ref)", false},
		{"checkpoint", DSV32_ARG_STRING, &ckpt, "DIR", "checkpoint directory", true},
		{"tokens", DSV32_ARG_STRING, &tokens, "IDS", "prompt ids '5,17,42;1,2,3' or @FILE", true},
		{"decode-steps", DSV32_ARG_U64, &steps, "N", "greedy decode steps after the prefill (default " DSV32_DEFAULT_DECODE_STEPS_TEXT ")", false},
		{"decode-tokens", DSV32_ARG_STRING, &decode, "IDS", "the decode steps' tokens instead of greedy ones: one row per prompt row, one id per step ('7,9;3,4'), @FILE, or @REC.safetensors (a recording's decoded ids); sets --decode-steps", false},
		{"order", DSV32_ARG_CHOICE, &order, "auto|layer|step", "loop order. layer: each layer runs every step and is then released, so one layer's weights are resident (needs every step's tokens: --decode-tokens or --decode-steps 0); step: each step runs every layer; auto (default): layer where it applies. The recording is the same bits; --json states the order", false},
		{"out", DSV32_ARG_STRING, &out, "FILE", "output: .safetensors (tap format) or .h5", true},
		{"force", DSV32_ARG_FLAG, &force, NULL, "replace --out / --json FILE if it exists", false},
		{"device", DSV32_ARG_CHOICE, &device, "cpu|cuda", "device (default cpu)", false},
		{"profile", DSV32_ARG_CHOICE, &profile, "bf16|fp32", "precision profile (default bf16)", false},
		{"mp", DSV32_ARG_U64, &mp, "W", "ref: tensor-parallel ranks (default: W of the model{r}-mp{W} files, else 1; a different W is an error)", false},
		{"json", DSV32_ARG_OUTPUT, &json, "FILE", "a JSON summary to FILE, or alone / '-': to stdout (which then holds only it)", false},
		{"config", DSV32_ARG_STRING, &config, "FILE", "model config (HF or reference form; default: the checkpoint's config.json)", false},
		{"layers", DSV32_ARG_U64, &layers, "N", "run only the first N decoder layers (truncated model; 0 = all)", false},
		{"eager-dequant", DSV32_ARG_FLAG, &eager_dequant, NULL, "hf on CPU: dequantize fp8 weights at load (default: lazily, per GEMM)", false},
		{"comm", DSV32_ARG_CHOICE, &comm_kind, "inproc|mpi|nccl", "ref: where the tensor-parallel ranks run: in this process (default), one per process under mpirun -np W (mpi), one per GPU (nccl); rank 0 writes, the recording is the same (docs/distributed.md)", false},
		{"comm-timeout", DSV32_ARG_STRING, &comm_timeout, "S", "seconds a rank may keep a collective waiting before the job ends with an error naming it (default 60)", false},
		{"gemm", DSV32_ARG_CHOICE, &gemm, "fixed|host", "CPU GEMM engine. fixed: same bits on every CPU (default); host: oneDNN/OpenBLAS as PyTorch on this CPU, to match a torch run recorded on this machine", false},
		{"ties", DSV32_ARG_CHOICE, &ties, "index|torch-cpu", "top-k tie rule of the indexer and router: index (CUDA's, default) or torch-cpu (torch.topk on a CPU, as transformers there; docs/topk-ties.md)", false},
		{"exp", DSV32_ARG_CHOICE, &exp, "libm|torch-cpu", "exp of the router's sigmoid and the MLPs' silu (CPU): libm (default) or torch-cpu (torch's CPU kernels, OpenMP's thread count as torch's; metadata exp, exp_threads, exp_capability; docs/exp-torch.md)", false},
	};
	dsv32_arg_spec spec = {"dump", "--layout ref|hf --checkpoint DIR --tokens IDS --out FILE [options]",
			       "Runs a prefill and N greedy decode steps and writes every tap as step{s}.{tap}\n"
			       "(docs/tap-format.md), with step{s}.input_ids and step{s}.start_pos.\n"
			       "With --layers N only the first N decoder layers run (then the final norm and\n"
			       "head): the recording is a truncated model's, its logits are not the model's;\n"
			       "the metadata key \"layers\" says \"N of TOTAL\". The metadata also states the GEMM\n"
			       "engine and this host (keys gemm_engine, host_numerics_key, host_fingerprint).",
			       opts, (int)(sizeof opts / sizeof opts[0]), 0, 0};
	const char *pos[2];
	int npos;
	int prc = dsv32_args_parse(&spec, argc, argv, pos, &npos);
	if (prc != DSV32_ARGS_OK)
		return prc == DSV32_ARGS_HELP ? DSV32_EXIT_OK : DSV32_EXIT_USAGE;
	dsv32_error cerr = {0};
	dsv32_comm *comm = NULL;
	if (dsv32_cli_comm_open(comm_kind, comm_timeout, &comm, &cerr) != DSV32_OK)
		return dsv32_cli_fail("dump", &cerr);
	bool leader = dsv32_cli_comm_is_leader(comm);
	/* checked and locked before the model is opened: a refused --out costs nothing */
	char ckbuf[PATH_MAX];
	const char *inputs[] = {dsv32_cli_ckpt_input(ckpt, ckbuf, sizeof ckbuf),
				dsv32_cli_tokens_input(tokens), config};
	const char *names[] = {"--out", "--json"}, *outs[] = {out, dsv32_cli_out_file(json)};
	dsv32_cli_outputs claimed = {.force = force};
	int rc = leader ? dsv32_cli_outputs_claim(&claimed, "dump", names, outs, 2, inputs, 3) : 0;
	if (comm && dsv32_comm_agree(comm, rc ? DSV32_E_USAGE : DSV32_OK, "outputs", &cerr) != DSV32_OK)
		return dsv32_cli_comm_finish("dump", comm, rc ? rc : DSV32_EXIT_USAGE,
					     rc ? NULL : &cerr); /* rank 0 printed the refusal */
	if (rc)
		return rc;
	bool steps_given = steps != UINT64_MAX;
	if (!steps_given)
		steps = DSV32_DEFAULT_DECODE_STEPS;
	dump_args a = {layout, ckpt, tokens, out, device, profile, gemm, ties, exp, steps, mp, layers,
		       decode, order, steps_given, eager_dequant, config, json, comm};
	rc = dump_record(&a);
	dsv32_cli_outputs_release(&claimed);
	return rc;
}
