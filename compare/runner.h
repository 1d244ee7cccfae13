/* runner.h: run two sides (live models or recorded taps) on the same tokens and reduce every
 * tap to metrics as it arrives (docs/architecture.md "Metrics, budgets, reports"; issues 7 and 8).
 *
 * Sides: "LAYOUT[:device][:profile][:mp=W][:experts=eager]" for a live model (LAYOUT ref|hf,
 * device cpu|cuda, profile bf16|fp32), or "taps:FILE" for a recording (docs/tap-format.md).
 * A ref side with comm=mpi|nccl runs on real ranks: the caller records it on every rank of the
 * job and passes rank 0's recording in as a TAPS side with mem set (cli/cmd_compare.c).
 *
 * Steps: with two live sides, step 0 is the prompt at start_pos 0 and steps 1..N are single
 * tokens chosen greedily (argmax per row) from side a's logits, fed to both sides. With a
 * recording, the steps, tokens and positions are the recording's.
 *
 * Propagate mode: both sides run end to end; side a's taps of the current step are held in
 * memory (one step of one side), side b's are compared the moment they are emitted and dropped.
 * Local (teacher-forced) mode: the driver side (a, unless a is live and b is a recording) runs
 * or is read, and every layer i of the live side runs on the driver's input to that layer
 * ("embed" for i = 0, "layers.{i-1}.out" after) through the model's layer_forward, so each
 * layer's injected drift is measured alone. Each mode runs as its own pass with fresh caches,
 * so a layer's caches always hold that mode's own history. Metrics keep a vs b order (a is the
 * reference of relative errors) whichever side drives.
 *
 * Decision forcing (teacher-forced only, on unless keep_decisions): where a row of the live
 * side's indexer or expert selection differs as a set from the driver's, the live side uses the
 * driver's ids for that layer and step (core/model.h "Decisions"; sink.h dsv32_sink_decide) and
 * computes everything else itself, so the dense taps after it measure arithmetic only. The
 * selection tap's set metrics still show the unforced difference, and every forced row is
 * listed in the result (result.h dsv32_forced_row) with its flip class and margin. The
 * propagate pass never forces.
 */
#ifndef DSV32_RUNNER_H
#define DSV32_RUNNER_H

#include "compare/budget.h"
#include "compare/result.h"
#include "compare/tapstore.h"
#include "core/model.h"

typedef enum { DSV32_SIDE_MODEL = 0, DSV32_SIDE_TAPS } dsv32_side_kind;

typedef struct {
	dsv32_side_kind kind;
	char layout[16];       /* "ref" | "hf" (models) */
	dsv32_model_opts opts; /* models */
	char path[4096];       /* taps */
	char label[128];       /* canonical text, e.g. "ref:cpu:bf16:mp=1" */
	dsv32_plant plant;     /* the plant=L token (test-only); opts.plant points here when set */
	char ties_from[32];    /* why opts.ties is what it is: "default", "side option" or
				* "recording" (dsv32_side_adopt_recording_rules) */
	char exp_from[32];     /* the same for opts.exp_rule */
	char comm[8];          /* comm=mpi|nccl: "mpi" | "nccl", the ref side runs on real ranks,
				* one per process (docs/distributed.md); "" in this process */
	dsv32_tapstore *mem;   /* kind TAPS only: a recording in the caller's memory, read in
				* place of a file (a comm= side recorded on its ranks, replayed on
				* rank 0: cli/cmd_compare.c); NULL: path */
} dsv32_side_spec;

dsv32_status dsv32_side_parse(const char *text, dsv32_side_spec *out, dsv32_error *err);

/* A live CPU side compared against a recording follows the recording's CPU rules unless its
 * text names them (issue 17; docs/topk-ties.md "Using it", docs/exp-torch.md): the top-k tie
 * rule (the recording's "ties" metadata, else torch-cpu for a recording made on a CPU, "device"
 * cpu, where torch.topk breaks ties its own way) and the exp rule ("exp" torch-cpu). Relabels
 * the side; returns a mask of what it changed: bit 0 ties, bit 1 exp. */
unsigned dsv32_side_adopt_recording_rules(dsv32_side_spec *live, const char *recording);

/* The tie rule a recording states: its "ties" metadata, else "torch-cpu" when its "device" is
 * cpu, else "" (unknown: e.g. a recording that predates the key). */
void dsv32_recording_ties(const char *recording, char *out, size_t len);

/* Opens a live model of a layout on a checkpoint (supplied by the caller, e.g. the CLI, so
 * compare/ depends on the model interface only). */
typedef dsv32_status (*dsv32_model_open_fn)(const char *layout, const char *checkpoint,
					    const dsv32_model_opts *opts, dsv32_model **out,
					    dsv32_error *err);

/* Where a run is, for a progress line: pass (0-based, of n_passes), step, and the last decoder
 * layer the compared side finished in it (-1: the step has just begun). */
typedef struct {
	const char *pass; /* "propagate" | "teacher-forced" */
	int pass_index, n_passes;
	int step, n_steps;
	int layer, n_layers;
	bool layer_major; /* the pass runs layer by layer: each layer over every step (step is
			   * then the step within the layer being run) */
} dsv32_cmp_progress;

typedef struct {
	const char *checkpoint;
	dsv32_model_open_fn open;
	const int64_t *prompt; /* [batch, prompt_len], used when no side is a recording */
	int64_t batch, prompt_len;
	int decode_steps;
	bool propagate, local;  /* which passes to run (at least one) */
	bool keep_decisions;    /* teacher-forced: let the live side keep its own decisions
				 * (--force-decisions off); false (default): force them */
	const dsv32_budget *budget; /* NULL: only NaN/Inf fail */
	/* optional: every tap of each side, stored as "step{s}.{tap}" (propagate pass) */
	dsv32_tapstore *dump_a, *dump_b;
	/* optional: called as each step begins and as each decoder layer of the compared side
	 * finishes */
	void (*progress)(void *user, const dsv32_cmp_progress *p);
	void *progress_user;
	/* optional: the decode steps' tokens [batch, decode_steps] row-major (row b's token of
	 * decode step k at b * decode_steps + k) instead of greedy choices from side a's logits */
	const int64_t *decode;
	/* loop order (issue 19): DSV32_ORDER_AUTO takes layer-major (core/model.h "Layer-major":
	 * each layer runs every step, then is released) where every step's tokens are known before
	 * the run (a recording, given decode tokens, or no decode step) and every live side can
	 * run it, else step-major; LAYER where that does not hold is DSV32_E_USAGE naming why.
	 * The results are the same bits in the same order; provenance "order" says which ran. */
	int order;
} dsv32_cmp_config;

enum { DSV32_ORDER_AUTO = 0, DSV32_ORDER_LAYER, DSV32_ORDER_STEP };

dsv32_status dsv32_cmp_run(const dsv32_cmp_config *cfg, const dsv32_side_spec *a,
			   const dsv32_side_spec *b, dsv32_cmp_result *out, dsv32_error *err);

#endif
