/* test_golden_compare.c: issue 8 acceptance against DeepSeek's own recording
 * (fixtures/golden/ref_tiny, made with the upstream inference/model.py; see its README).
 *
 * Through the CLI (env DSV32_CLI), reports parsed with cJSON:
 *  - `compare --a taps:golden_mp1 --b ref --mode teacher-forced` on the HF checkpoint (name map),
 *    golden_mp2 against `ref:mp=2` on the HF checkpoint and on mp2 shards written by
 *    `convert hf-to-ref --mp 2`, golden_mp1_short against `ref`: every recorded tap is reported
 *    or skipped for an expected reason; per tap kind, max bf16 ULP and relative L2 are at most
 *    the pinned measurements below; index and expert sets identical apart from the README's
 *    tie cases;
 *  - propagate mode against golden_mp1 (the live side runs end to end on the recorded tokens):
 *    pinned figures, greedy top-1 agreement at every step;
 *  - greedy tokens of `run` (per prompt row, batch 1) and of `dump` (batch 2) equal tokens.json,
 *    tokens_mp2.json and tokens_mp1_short.json;
 *  - a planted rounding bug (`ref:plant=1`) under a budget whose limits are the pinned values
 *    fails first at layers.1.attn_norm of step 0, and the unplanted run passes that budget.
 *
 * The pins are measurements ("measured <= pinned", values rounded up to 3 digits), not
 * tolerances: re-measure after an intended numerical change of the ref layout and say why.
 * Each pin has three tiers (docs/budgets.md "Golden tiers"): exact for the fixed GEMM engine
 * (measured 2026-12-06, the same on every machine), exact for the host engine on an AVX2 CPU
 * with OpenBLAS Haswell kernels (measured 2026-11-28 on the AMD machine; reproduced under
 * DNNL_MAX_CPU_ISA=AVX2 OPENBLAS_CORETYPE=Haswell), and portable (the spread of five summation
 * orders with margin), which always runs. The figures do not depend on the OpenMP thread count.
 * The greedy-token tests run `run` and `dump` with the default fixed engine on every machine. */
#include <cjson/cJSON.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "compare/tapfile.h"
#include "core/fsutil.h"
#include "tests/support/golden_tier.h"
#include "tests/support/test_common.h"

static char dir[64];
static const char *cli;
static char src[2048];
static bool have_shards;

/* ---- pinned measurements, 2026-11-28 ------------------------------------------------------- */

/* Tiers (tests/support/golden_tier.h): the exact tiers of the numerics keys these figures were
 * measured under, then the portable tier (the spread of five summation orders, with margin:
 * docs/budgets.md "Golden tiers"). */
enum { TIER_FIXED, TIER_HOST_AVX2, TIER_PORTABLE, N_TIERS };
static const tc_exact_tier GC_TIERS[] = {
	{"fixed", {"fixed", NULL}},
	{"host-avx2-haswell",
	 {"host:fixed-blocked*|Haswell", "host:fixed-blocked*|Zen", "host:avx2-blocked*|Haswell",
	  "host:avx2-blocked*|Zen"}},
};
static const char *const TIER_NAME[N_TIERS] = {"exact (fixed)", "exact (host-avx2-haswell)",
					       "portable"};

typedef struct {
	const char *op; /* tap kind: the name after "layers.{i}." (or the whole name) */
	double ulp_max[N_TIERS], rel_l2[N_TIERS];
} pin;

/* teacher-forced, golden_mp1 vs ref on the HF checkpoint. Layers 1-2 reproduce DeepSeek's taps
 * bit-exactly except the fp32 index scores and MoE weights; layer 0 carries a few-ulp drift
 * from attn.out on (one fp8 step in 3 of 12288 indexer key codes). */
static const pin pins_mp1[] = {
	{"attn_norm", {0, 0, 0}, {0, 0, 0}},
	{"attn.q_latent", {0, 0, 2}, {0, 0, 3.75e-05}},
	{"attn.kv_latent", {0, 0, 0}, {0, 0, 0}},
	{"attn.k_rope", {0, 0, 0}, {0, 0, 0}},
	{"indexer.k_fp8", {96, 96, 120}, {0.000232, 0.000232, 0.000347}},
	{"indexer.k_scale", {0, 0, 0}, {0, 0, 0}},
	{"indexer.scores", {1, 1, 62}, {0.000495, 0.000495, 0.00278}},
	{"attn.q_rope", {1, 1, 80}, {4.48e-06, 4.48e-06, 0.000117}},
	{"attn.out", {5, 5, 212}, {6.27e-05, 6.27e-05, 0.000702}},
	{"attn_residual", {4, 4, 20}, {3.01e-05, 3e-05, 0.00035}},
	{"ffn_norm", {3, 3, 12}, {7.56e-05, 7.55e-05, 0.000354}},
	{"ffn.out", {69, 69, 304}, {0.000359, 0.000358, 0.00121}},
	{"out", {64, 64, 160}, {0.000258, 0.000257, 0.000803}},
	{"moe.weights", {0, 0, 0}, {1.3e-07, 5.58e-08, 0.000111}},
};
/* teacher-forced, golden_mp2 vs ref:mp=2 (HF checkpoint sliced per rank, or converted shards:
 * the same figures) */
static const pin pins_mp2[] = {
	{"attn_norm", {0, 0, 0}, {0, 0, 0}},
	{"attn.q_latent", {0, 0, 2}, {0, 0, 3.72e-05}},
	{"attn.kv_latent", {0, 0, 0}, {0, 0, 0}},
	{"attn.k_rope", {1, 1, 2}, {2.16e-06, 2.16e-06, 3.23e-06}},
	{"indexer.k_fp8", {96, 96, 120}, {0.000232, 0.000232, 0.000347}},
	{"indexer.k_scale", {0, 0, 0}, {0, 0, 0}},
	{"indexer.scores", {4, 4, 5}, {0.000564, 0.000563, 0.000845}},
	{"attn.out", {16, 16, 40}, {0.000104, 0.000103, 0.000312}},
	{"attn_residual", {2, 2, 10}, {4.5e-05, 4.5e-05, 0.000158}},
	{"ffn_norm", {2, 2, 8}, {8.28e-05, 8.28e-05, 0.000152}},
	{"ffn.out", {120, 120, 150}, {0.000607, 0.000607, 0.000975}},
	{"out", {128, 128, 160}, {0.000378, 0.000377, 0.00063}},
	{"moe.weights", {0, 0, 0}, {1.01e-05, 1.01e-05, 1.5e-05}},
};
/* teacher-forced, golden_mp1_short vs ref */
static const pin pins_short[] = {
	{"attn_norm", {0, 0, 0}, {0, 0, 0}},
	{"attn.q_latent", {0, 0, 0}, {0, 0, 0}},
	{"attn.kv_latent", {0, 0, 0}, {0, 0, 0}},
	{"attn.k_rope", {1, 1, 2}, {6.13e-06, 6.13e-06, 9.18e-06}},
	{"indexer.k_fp8", {0, 0, 0}, {0, 0, 0}},
	{"indexer.k_scale", {0, 0, 0}, {0, 0, 0}},
	{"indexer.scores", {1, 1, 2}, {0.000155, 0.000155, 0.000231}},
	{"attn.q_rope", {1, 1, 2}, {1.25e-05, 1.25e-05, 1.86e-05}},
	{"attn.out", {1, 1, 2}, {3.36e-05, 3.35e-05, 5.03e-05}},
	{"attn_residual", {0, 0, 0}, {0, 0, 0}},
	{"ffn_norm", {0, 0, 0}, {0, 0, 0}},
	{"ffn.out", {14, 14, 18}, {0.00077, 0.00077, 0.00116}},
	{"out", {4, 4, 5}, {0.000785, 0.000785, 0.00118}},
	{"moe.weights", {0, 0, 0}, {1.31e-07, 4.57e-08, 1.95e-07}},
};
/* propagate, golden_mp1 vs ref: the layer-0 drift compounds over the layers and steps (the
 * README shows DeepSeek's own mp1 vs mp2 logits at rel. L2 up to 0.25) */
static const pin pins_mp1_prop[] = {
	{"embed", {0, 0, 0}, {0, 0, 0}},
	{"attn_norm", {310, 310, 388}, {0.00437, 0.00437, 0.00654}},
	{"attn.q_latent", {364, 364, 539}, {0.00512, 0.00511, 0.00767}},
	{"attn.kv_latent", {464, 464, 580}, {0.019, 0.019, 0.0284}},
	{"attn.k_rope", {269, 269, 337}, {0.00538, 0.00537, 0.00806}},
	{"indexer.k_fp8", {352, 352, 540}, {0.0287, 0.0286, 0.0429}},
	{"indexer.k_scale", {0, 0, 0}, {0, 0, 0}},
	{"indexer.scores", {366, 366, 458}, {0.036, 0.036, 0.0539}},
	{"attn.q_rope", {319, 319, 399}, {0.00581, 0.00581, 0.0087}},
	{"attn.out", {415, 415, 588}, {0.157, 0.156, 0.234}},
	{"attn_residual", {482, 482, 603}, {0.0524, 0.0523, 0.0785}},
	{"ffn_norm", {426, 426, 598}, {0.0555, 0.0554, 0.0831}},
	{"ffn.out", {422, 422, 562}, {0.0736, 0.0736, 0.111}},
	{"out", {440, 440, 578}, {0.0582, 0.0582, 0.0873}},
	{"moe.weights", {4, 27, 303}, {0.00694, 0.0217, 0.0678}},
	{"final_norm", {479, 479, 633}, {0.0601, 0.0601, 0.0902}},
	{"logits", {482, 482, 603}, {0.0603, 0.0602, 0.0903}},
};
/* propagate: worst per-step mean KL of the logits (measured 0.001886 fixed and AVX2/Haswell,
 * 1.2e-5 to 0.001883 over the other orders), index rows that differ (not ties: 2; 1 to 3), the
 * lowest per-step greedy top-1 agreement (1 in every order measured; the portable tier allows
 * one of the two rows to take another token: the step-3 near-tie of golden_mp1, golden margin
 * 0.154, flips under oneDNN AMX in free-running, test_ref_golden) */
static const double PROP_KL_MAX[N_TIERS] = {0.00189, 0.00189, 0.00283};
static const int PROP_SET_ROWS_DIFF[N_TIERS] = {2, 2, 4};
static const double PROP_TOP1_MIN[N_TIERS] = {1.0, 1.0, 0.5};

/* Tie cases of the golden README ("Top-k ties"): (step, layer, report row = b*S + s) where the
 * recorded top-k boundary falls inside a group of equal scores. */
typedef struct {
	int step, layer, row;
} tie_case;
static const tie_case ties_mp1[] = {{0, 1, 20}, {4, 2, 1}};
static const tie_case ties_mp2[] = {{0, 1, 20}, {4, 2, 1}, {2, 1, 0}};

#define NPINS(a) (int)(sizeof(a) / sizeof(a[0]))

/* ---- helpers ------------------------------------------------------------------------------ */

static const cJSON *get(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	if (!v)
		fail_msg("report: no key '%s'", k);
	return v;
}

static double num(const cJSON *o, const char *k)
{
	return get(o, k)->valuedouble;
}

static const char *str(const cJSON *o, const char *k)
{
	const cJSON *v = get(o, k);
	assert_true(cJSON_IsString(v));
	return v->valuestring;
}

static int setup(void **state)
{
	(void)state;
	cli = getenv("DSV32_CLI");
	const char *s = getenv("DSV32_SOURCE_DIR");
	snprintf(src, sizeof src, "%s", s ? s : DSV32_SOURCE_DIR);
	if (!cli || access(cli, X_OK) != 0)
		return 0;
	snprintf(dir, sizeof dir, "/tmp/dsv32_gcmp_XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	char args[4096], out[1 << 14];
	snprintf(args, sizeof args,
		 "convert hf-to-ref --checkpoint %s/fixtures/golden/ref_tiny/hf --mp 2 --out %s/mp2", src,
		 dir);
	have_shards = tc_run_cli(cli, args, out, sizeof out) == 0;
	if (!have_shards)
		fprintf(stderr, "convert failed: %s\n", out);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	return tc_remove_dir(dir);
}

#define NEED_CLI() TC_NEED_CLI(cli)

/* The tap kind of a reported name: the part after "layers.{i}.", or the name itself. */
static const char *kind_of(const char *name)
{
	if (!strncmp(name, "layers.", 7)) {
		const char *dot = strchr(name + 7, '.');
		return dot ? dot + 1 : name;
	}
	return name;
}

static bool is_tie(const tie_case *t, int nt, int step, int layer, int row)
{
	for (int i = 0; i < nt; i++)
		if (t[i].step == step && t[i].layer == layer && t[i].row == row)
			return true;
	return false;
}

static int ties_at(const tie_case *t, int nt, int step, int layer)
{
	int n = 0;
	for (int i = 0; i < nt; i++)
		n += t[i].step == step && t[i].layer == layer;
	return n;
}

typedef struct {
	const char *golden;     /* file in fixtures/golden/ref_tiny */
	const char *checkpoint; /* directory */
	const char *side;       /* live side */
	const char *mode;       /* teacher-forced | propagate */
	const pin *pins;
	int npins;
	const tie_case *ties;
	int nties;
	bool q_rope_recorded; /* golden_mp2 has no attn.q_rope (rank-local heads) */
	const char *extra;    /* extra CLI arguments or "" */
} scenario;

static cJSON *compare(const scenario *sc, const char *tag, int *rc)
{
	char args[8192], out[1 << 16], json[256];
	snprintf(json, sizeof json, "%s/%s.json", dir, tag);
	snprintf(args, sizeof args,
		 "compare --checkpoint %s --a taps:%s/fixtures/golden/ref_tiny/%s.safetensors --b %s%s "
		 "--mode %s --quiet --json %s %s",
		 sc->checkpoint, src, sc->golden, sc->side,
		 tc_gemm_engine() == DSV32_GEMM_HOST ? ":gemm=host" : "", sc->mode, json, sc->extra);
	*rc = tc_run_cli(cli, args, out, sizeof out);
	if (*rc != 0 && *rc != 1)
		fail_msg("compare exited %d: %s", *rc, out);
	cJSON *rep = tc_load_json(json);
	assert_non_null(rep);
	return rep;
}

/* Is (step, name) in the report's taps? */
static bool reported(const cJSON *rep, int step, const char *name)
{
	const cJSON *t;
	cJSON_ArrayForEach(t, get(rep, "taps")) {
		if ((int)num(t, "step") == step && !strcmp(str(t, "name"), name))
			return true;
	}
	return false;
}

static const char *skip_reason(const cJSON *rep, int step, const char *name)
{
	const cJSON *t;
	cJSON_ArrayForEach(t, get(rep, "skipped")) {
		if ((int)num(t, "step") == step && !strcmp(str(t, "name"), name))
			return str(t, "reason");
	}
	return NULL;
}

static bool teacher_forced(const scenario *sc)
{
	return !strcmp(sc->mode, "teacher-forced");
}

/* A skip the scenario expects: teacher-forced mode runs decoder layers only (embed, final_norm,
 * logits); golden_mp2 has no attn.q_rope, so the live side's is "only in b"; no recording has
 * moe.scores or moe.group_scores. */
static bool expected_skip(const scenario *sc, const char *name, const char *reason)
{
	if (teacher_forced(sc) && (!strcmp(name, "embed") || !strcmp(name, "final_norm") ||
				   !strcmp(name, "logits")))
		return strstr(reason, "teacher-forced") != NULL;
	if (!sc->q_rope_recorded && !strcmp(kind_of(name), "attn.q_rope"))
		return !strcmp(reason, "only in b");
	/* the recordings predate the router's selection-scores and group-scores taps (issue 17) */
	if (!strcmp(kind_of(name), "moe.scores") || !strcmp(kind_of(name), "moe.group_scores"))
		return !strcmp(reason, "only in b");
	return false;
}

/* Every tap of the recording is reported, or skipped for an expected reason; every skip is
 * expected. Returns the number of recorded taps checked. */
static int check_coverage(const scenario *sc, const cJSON *rep)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/fixtures/golden/ref_tiny/%s.safetensors", src, sc->golden);
	dsv32_tapfile tf;
	dsv32_error err = {0};
	if (dsv32_tapfile_open(&tf, path, &err) != DSV32_OK)
		fail_msg("%s: %s", path, err.what);
	int n = 0;
	for (int s = 0; s < tf.n_steps; s++) {
		const char *tap;
		dsv32_tensor t;
		for (size_t i = 0; dsv32_tapfile_tap_at(&tf, s, i, &tap, &t); i++) {
			if (!strcmp(tap, "input_ids") || !strcmp(tap, "start_pos") ||
			    !strcmp(tap, "position_ids"))
				continue;
			n++;
			if (reported(rep, s, tap))
				continue;
			const char *why = skip_reason(rep, s, tap);
			if (!why)
				fail_msg("%s: step %d %s neither reported nor skipped", sc->golden, s, tap);
			if (!expected_skip(sc, tap, why))
				fail_msg("%s: step %d %s skipped: %s", sc->golden, s, tap, why);
		}
	}
	int steps = tf.n_steps;
	dsv32_tapfile_close(&tf);
	assert_int_equal(steps, 5);
	const cJSON *k;
	cJSON_ArrayForEach(k, get(rep, "skipped")) {
		if (!expected_skip(sc, str(k, "name"), str(k, "reason")))
			fail_msg("%s: unexpected skip of step %d %s: %s", sc->golden, (int)num(k, "step"),
				 str(k, "name"), str(k, "reason"));
	}
	/* the canonical layer taps of every layer and step are compared (q_rope where recorded) */
	static const char *canon[] = {"attn_norm", "attn.q_latent", "attn.kv_latent", "attn.q_rope",
				      "attn.k_rope", "indexer.topk", "attn.out", "ffn_norm",
				      "moe.experts", "moe.weights", "ffn.out", "out"};
	for (int s = 0; s < 5; s++)
		for (int l = 0; l < 3; l++)
			for (size_t c = 0; c < sizeof canon / sizeof canon[0]; c++) {
				char name[64];
				if (!sc->q_rope_recorded && !strcmp(canon[c], "attn.q_rope"))
					continue;
				if (l == 0 && !strncmp(canon[c], "moe.", 4))
					continue; /* layer 0 is dense */
				snprintf(name, sizeof name, "layers.%d.%s", l, canon[c]);
				if (!reported(rep, s, name))
					fail_msg("%s: step %d %s not compared", sc->golden, s, name);
			}
	return n;
}

/* Per tap kind: worst ULP and relative L2 at most the tier's pins; index and expert sets
 * identical apart from the tie cases (teacher-forced). Prints the measured table. */
static void check_figures(const scenario *sc, const cJSON *rep, int tier)
{
	double w_ulp[32] = {0}, w_rel[32] = {0}, kl_max = 0, top1_min = 1;
	int nsets = 0, set_rows_diff = 0;
	bool check = !tc_golden_measuring();
	const cJSON *t;
	cJSON_ArrayForEach(t, get(rep, "taps")) {
		const char *name = str(t, "name");
		const char *kind = str(t, "kind");
		int step = (int)num(t, "step");
		if (!strcmp(kind, "set")) {
			const cJSON *st = get(t, "set");
			int rows = (int)num(st, "rows"), eq = (int)num(st, "rows_equal");
			int tie_eq = (int)num(st, "rows_tie_equal");
			int layer = (int)num(t, "layer");
			nsets++;
			assert_true(rows > 0);
			if (eq == rows)
				continue;
			set_rows_diff += rows - eq;
			if (!teacher_forced(sc))
				continue; /* propagate: counted and pinned below */
			/* only index-set rows at a README tie case may differ, and only among ties */
			if (check && (strcmp(kind_of(name), "indexer.topk") ||
				      rows - eq > ties_at(sc->ties, sc->nties, step, layer) ||
				      !is_tie(sc->ties, sc->nties, step, layer,
					      (int)num(st, "first_diff_row")) ||
				      tie_eq != rows))
				fail_msg("%s: step %d %s: %d of %d rows differ (first row %d), %d tie-equal",
					 sc->golden, step, name, rows - eq, rows,
					 (int)num(st, "first_diff_row"), tie_eq);
			continue;
		}
		if (!strcmp(kind, "logits")) {
			const cJSON *lg = get(t, "logits");
			kl_max = fmax(kl_max, num(lg, "kl"));
			top1_min = fmin(top1_min, num(lg, "top1_agree"));
		}
		const cJSON *m = cJSON_GetObjectItemCaseSensitive(t, "metrics");
		if (!m)
			continue;
		const char *op = kind_of(name);
		int pi = -1;
		for (int i = 0; i < sc->npins; i++)
			if (!strcmp(sc->pins[i].op, op))
				pi = i;
		if (pi < 0)
			fail_msg("%s: tap kind %s has no pinned figure (new tap? measure and pin it)",
				 sc->golden, op);
		double ulp = num(m, "ulp_max"), rel = num(m, "rel_l2");
		w_ulp[pi] = fmax(w_ulp[pi], ulp);
		w_rel[pi] = fmax(w_rel[pi], rel);
		if (check && (ulp > sc->pins[pi].ulp_max[tier] || rel > sc->pins[pi].rel_l2[tier]))
			fail_msg("%s (%s, %s tier): step %d %s: ulp_max %g rel_l2 %.4g > pinned %g / %.4g",
				 sc->golden, sc->mode, TIER_NAME[tier], step, name, ulp, rel,
				 sc->pins[pi].ulp_max[tier], sc->pins[pi].rel_l2[tier]);
	}
	assert_int_equal(nsets, 5 * (3 + 2)); /* indexer.topk x 3 layers + moe.experts x 2 */
	printf("  %s vs %s (%s), %s tier: kind ulp_max rel_l2 (measured / pinned)\n", sc->golden,
	       sc->side, sc->mode, TIER_NAME[tier]);
	for (int i = 0; i < sc->npins; i++)
		printf("    %-16s %5g / %-5g %.3g / %.3g\n", sc->pins[i].op, w_ulp[i],
		       sc->pins[i].ulp_max[tier], w_rel[i], sc->pins[i].rel_l2[tier]);
	printf("    set rows differing: %d\n", set_rows_diff);
	if (teacher_forced(sc))
		return;
	printf("    logits: max KL %.4g (<= %.4g), min top-1 agreement %g (>= %g)\n", kl_max,
	       PROP_KL_MAX[tier], top1_min, PROP_TOP1_MIN[tier]);
	if (!check)
		return;
	assert_true(kl_max <= PROP_KL_MAX[tier]);
	assert_true(top1_min >= PROP_TOP1_MIN[tier]);
	if (set_rows_diff > PROP_SET_ROWS_DIFF[tier])
		fail_msg("%s propagate: %d set rows differ > pinned %d", sc->golden, set_rows_diff,
			 PROP_SET_ROWS_DIFF[tier]);
}

/* The exact tier of the live numerics key, if any, then the portable tier. */
static void check_tiers(const scenario *sc, const cJSON *rep)
{
	char label[256], gdir[2300];
	snprintf(label, sizeof label, "%s vs %s (%s)", sc->golden, sc->side, sc->mode);
	snprintf(gdir, sizeof gdir, "%s/fixtures/golden/ref_tiny", src);
	int t = tc_golden_tier(label, gdir, GC_TIERS, TIER_PORTABLE);
	if (t >= 0)
		check_figures(sc, rep, t);
	check_figures(sc, rep, TIER_PORTABLE);
}

static void check_scenario(const scenario *sc, const char *tag)
{
	int rc;
	cJSON *rep = compare(sc, tag, &rc);
	printf("  %s: compare exit %d, verdict %s\n", sc->golden, rc, str(rep, "verdict"));
	if (!tc_golden_measuring()) {
		assert_int_equal(rc, 0); /* within the shipped budget */
		assert_string_equal(str(rep, "verdict"), "pass");
	}
	int n = check_coverage(sc, rep);
	assert_true(n > 100);
	check_tiers(sc, rep);
	cJSON_Delete(rep);
}

static void ckpt_hf(char *buf, size_t len)
{
	snprintf(buf, len, "%s/fixtures/golden/ref_tiny/hf", src);
}

/* ---- tests -------------------------------------------------------------------------------- */

static void test_mp1_teacher_forced_on_hf_checkpoint(void **state)
{
	(void)state;
	NEED_CLI();
	char ck[4096];
	ckpt_hf(ck, sizeof ck);
	scenario sc = {"golden_mp1", ck, "ref", "teacher-forced", pins_mp1, NPINS(pins_mp1),
		       ties_mp1, NPINS(ties_mp1), true, ""};
	check_scenario(&sc, "mp1");
}

static void test_mp2_teacher_forced_tp2_on_hf_checkpoint(void **state)
{
	(void)state;
	NEED_CLI();
	char ck[4096];
	ckpt_hf(ck, sizeof ck);
	scenario sc = {"golden_mp2", ck, "ref:mp=2", "teacher-forced", pins_mp2, NPINS(pins_mp2),
		       ties_mp2, NPINS(ties_mp2), false, ""};
	check_scenario(&sc, "mp2");
}

static void test_mp2_teacher_forced_tp2_on_converted_shards(void **state)
{
	(void)state;
	NEED_CLI();
	assert_true(have_shards);
	char ck[4096];
	snprintf(ck, sizeof ck, "%s/mp2", dir);
	scenario sc = {"golden_mp2", ck, "ref:mp=2", "teacher-forced", pins_mp2, NPINS(pins_mp2),
		       ties_mp2, NPINS(ties_mp2), false, ""};
	check_scenario(&sc, "mp2_shards");
}

static void test_short_teacher_forced(void **state)
{
	(void)state;
	NEED_CLI();
	char ck[4096];
	ckpt_hf(ck, sizeof ck);
	scenario sc = {"golden_mp1_short", ck, "ref", "teacher-forced", pins_short,
		       NPINS(pins_short), NULL, 0, true, ""};
	check_scenario(&sc, "short");
}

static void test_mp1_propagate(void **state)
{
	(void)state;
	NEED_CLI();
	char ck[4096];
	ckpt_hf(ck, sizeof ck);
	scenario sc = {"golden_mp1", ck, "ref", "propagate", pins_mp1_prop, NPINS(pins_mp1_prop),
		       ties_mp1, NPINS(ties_mp1), true, ""};
	int rc;
	cJSON *rep = compare(&sc, "mp1_prop", &rc);
	printf("  %s propagate: compare exit %d\n", sc.golden, rc);
	if (!tc_golden_measuring())
		assert_int_equal(rc, 0);
	const cJSON *sk; /* every tap compared, but the recording's missing router scores */
	cJSON_ArrayForEach(sk, get(rep, "skipped"))
		assert_true(expected_skip(&sc, str(sk, "name"), str(sk, "reason")));
	assert_true(check_coverage(&sc, rep) > 100);
	check_tiers(&sc, rep);
	/* embed and logits of every step compared */
	for (int s = 0; s < 5; s++) {
		assert_true(reported(rep, s, "embed"));
		assert_true(reported(rep, s, "logits"));
		assert_true(reported(rep, s, "final_norm"));
	}
	cJSON_Delete(rep);
}

/* ---- greedy tokens -------------------------------------------------------------------------- */

typedef struct {
	int64_t prompt[2][64], gen[2][8];
	int rows, len, ngen;
} golden_tokens;

static void load_tokens(const char *file, golden_tokens *g)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/fixtures/golden/ref_tiny/%s", src, file);
	cJSON *j = tc_load_json(path);
	assert_non_null(j);
	const cJSON *p = get(j, "prompt"), *gn = get(j, "generated");
	g->rows = cJSON_GetArraySize(p);
	assert_int_equal(g->rows, 2);
	for (int r = 0; r < 2; r++) {
		const cJSON *row = cJSON_GetArrayItem(p, r), *grow = cJSON_GetArrayItem(gn, r);
		g->len = cJSON_GetArraySize(row);
		g->ngen = cJSON_GetArraySize(grow);
		assert_true(g->len <= 64 && g->ngen <= 8);
		for (int i = 0; i < g->len; i++)
			g->prompt[r][i] = (int64_t)cJSON_GetArrayItem(row, i)->valuedouble;
		for (int i = 0; i < g->ngen; i++)
			g->gen[r][i] = (int64_t)cJSON_GetArrayItem(grow, i)->valuedouble;
	}
	cJSON_Delete(j);
}

static void row_text(const golden_tokens *g, int r, char *buf, size_t len)
{
	size_t off = 0;
	for (int i = 0; i < g->len; i++)
		off += (size_t)snprintf(buf + off, len - off, "%s%lld", i ? "," : "",
					(long long)g->prompt[r][i]);
}

/* `run` (batch 1, one prompt row at a time): the last output line is the generated ids. */
static void check_run(const char *tokens_file, const char *ckpt, int mp)
{
	golden_tokens g;
	load_tokens(tokens_file, &g);
	for (int r = 0; r < g.rows; r++) {
		char ids[1024], args[8192], out[1 << 16], want[256];
		row_text(&g, r, ids, sizeof ids);
		snprintf(args, sizeof args, "run --layout ref --checkpoint %s --mp %d --tokens %s "
			 "--max-new-tokens %d", ckpt, mp, ids, g.ngen);
		int rc = tc_run_cli(cli, args, out, sizeof out);
		if (rc != 0)
			fail_msg("run exited %d: %s", rc, out);
		size_t off = 0;
		for (int i = 0; i < g.ngen; i++)
			off += (size_t)snprintf(want + off, sizeof want - off, "%s%lld", i ? "," : "",
						(long long)g.gen[r][i]);
		/* last non-empty line */
		size_t n = strlen(out);
		while (n && (out[n - 1] == '\n' || out[n - 1] == ' '))
			out[--n] = '\0';
		const char *last = strrchr(out, '\n');
		last = last ? last + 1 : out;
		if (strcmp(last, want))
			fail_msg("%s row %d (mp %d): run generated %s, DeepSeek's reference %s",
				 tokens_file, r, mp, last, want);
	}
}

/* `dump --layout ref` with both rows (batch 2, as the golden runs): the tokens fed to steps
 * 1..4 and the argmax of the last step's logits are the generated ids. */
static void check_dump(const char *tokens_file, const char *ckpt, int mp, const char *tag)
{
	golden_tokens g;
	load_tokens(tokens_file, &g);
	char ids[2048], r1[1024], args[8192], out[1 << 16], path[256];
	row_text(&g, 0, ids, sizeof ids);
	row_text(&g, 1, r1, sizeof r1);
	strcat(ids, ";");
	strcat(ids, r1);
	snprintf(path, sizeof path, "%s/%s.safetensors", dir, tag);
	snprintf(args, sizeof args, "dump --layout ref --checkpoint %s --mp %d --tokens \"%s\" "
		 "--decode-steps %d --out %s", ckpt, mp, ids, g.ngen - 1, path);
	int rc = tc_run_cli(cli, args, out, sizeof out);
	if (rc != 0)
		fail_msg("dump exited %d: %s", rc, out);
	dsv32_tapfile tf;
	dsv32_error err = {0};
	if (dsv32_tapfile_open(&tf, path, &err) != DSV32_OK)
		fail_msg("%s: %s", path, err.what);
	assert_int_equal(tf.n_steps, g.ngen);
	for (int s = 1; s <= g.ngen; s++) {
		int64_t got[2];
		if (s < g.ngen) {
			dsv32_tensor t;
			assert_int_equal(dsv32_tapfile_get(&tf, s, "input_ids", &t, &err), DSV32_OK);
			assert_int_equal(t.dtype, DSV32_I64);
			for (int r = 0; r < 2; r++)
				got[r] = ((const int64_t *)t.data)[r];
		} else {
			dsv32_tensor t;
			assert_int_equal(dsv32_tapfile_get(&tf, s - 1, "logits", &t, &err), DSV32_OK);
			assert_int_equal(t.dtype, DSV32_F32);
			assert_int_equal(t.ndim, 2); /* reference: [B, V] of the last position */
			int64_t V = t.shape[1];
			for (int r = 0; r < 2; r++) {
				const float *row = (const float *)t.data + r * V;
				int64_t best = 0;
				for (int64_t v = 1; v < V; v++)
					if (row[v] > row[best])
						best = v;
				got[r] = best;
			}
		}
		for (int r = 0; r < 2; r++)
			if (got[r] != g.gen[r][s - 1])
				fail_msg("%s row %d token %d (mp %d, batch 2): dump %lld, DeepSeek %lld",
					 tokens_file, r, s - 1, mp, (long long)got[r],
					 (long long)g.gen[r][s - 1]);
	}
	dsv32_tapfile_close(&tf);
}

static void test_greedy_tokens_short(void **state)
{
	(void)state;
	NEED_CLI();
	char ck[4096];
	ckpt_hf(ck, sizeof ck);
	check_run("tokens_mp1_short.json", ck, 1);
	check_dump("tokens_mp1_short.json", ck, 1, "dump_short");
}

static void test_greedy_tokens_main(void **state)
{
	(void)state;
	NEED_CLI();
	char ck[4096];
	ckpt_hf(ck, sizeof ck);
	/* 2026-11-28: all five tokens of both rows equal tokens.json, batch 1 and batch 2. (Row 0
	 * step 3 is the sensitive one: 902 here and in DeepSeek's run, 705 in transformers' run of
	 * the same checkpoint, fixtures/hf_golden; an earlier RMSNorm summation order gave 705.) */
	check_run("tokens.json", ck, 1);
	check_dump("tokens.json", ck, 1, "dump_main");
}

static void test_greedy_tokens_mp2(void **state)
{
	(void)state;
	NEED_CLI();
	assert_true(have_shards);
	char ck[4096];
	snprintf(ck, sizeof ck, "%s/mp2", dir);
	check_run("tokens_mp2.json", ck, 2);
	check_dump("tokens_mp2.json", ck, 2, "dump_mp2");
}

/* ---- planted change ----------------------------------------------------------------------- */

/* A budget whose limit for every layer tap kind is its pinned mp1 figure of the tier (attn_norm:
 * 0 in every tier). */
static void write_pinned_budget(const char *path, int tier)
{
	char buf[1 << 14];
	size_t off = 0;
	off += (size_t)snprintf(buf + off, sizeof buf - off,
				"{\"schema\":\"dsv32-parity-budget/1\",\"rules\":[");
	for (int i = 0; i < NPINS(pins_mp1); i++)
		off += (size_t)snprintf(buf + off, sizeof buf - off,
					"{\"pattern\":\"layers.*.%s\",\"mode\":\"local\",\"max\":"
					"{\"rel_l2\":%.17g,\"ulp_max\":%.17g}},",
					pins_mp1[i].op, pins_mp1[i].rel_l2[tier],
					pins_mp1[i].ulp_max[tier]);
	off += (size_t)snprintf(buf + off, sizeof buf - off,
				"{\"pattern\":\"layers.*.indexer.topk\",\"mode\":\"local\",\"min\":"
				"{\"rows_tie_equal_frac\":1}},"
				"{\"pattern\":\"layers.*.moe.experts\",\"mode\":\"local\",\"min\":"
				"{\"jaccard\":1}}]}");
	assert_int_equal(dsv32_write_file_atomic(path, buf, off, NULL), DSV32_OK);
}

static void test_planted_change_fails_at_its_layer_and_tap(void **state)
{
	(void)state;
	NEED_CLI();
	char ck[4096], budget[256], extra[512];
	ckpt_hf(ck, sizeof ck);
	snprintf(budget, sizeof budget, "%s/pinned_budget.json", dir);
	char gdir[2300];
	snprintf(gdir, sizeof gdir, "%s/fixtures/golden/ref_tiny", src);
	int tier = tc_golden_tier("planted change under the pinned budget", gdir, GC_TIERS,
				  TIER_PORTABLE);
	write_pinned_budget(budget, tier >= 0 ? tier : TIER_PORTABLE);
	snprintf(extra, sizeof extra, "--budget %s", budget);
	scenario clean = {"golden_mp1", ck, "ref", "teacher-forced", pins_mp1, NPINS(pins_mp1),
			  ties_mp1, NPINS(ties_mp1), true, extra};
	int rc;
	cJSON *rep = compare(&clean, "pinned_clean", &rc);
	assert_int_equal(rc, 0); /* the unplanted ref meets its own pins */
	assert_true(cJSON_IsNull(get(rep, "first_divergence")));
	cJSON_Delete(rep);

	scenario planted = clean;
	planted.side = "ref:plant=1";
	rep = compare(&planted, "pinned_planted", &rc);
	assert_int_equal(rc, 1);
	assert_string_equal(str(rep, "verdict"), "fail");
	const cJSON *fd = get(rep, "first_divergence");
	assert_true(cJSON_IsObject(fd));
	assert_string_equal(str(fd, "name"), "layers.1.attn_norm");
	assert_int_equal((int)num(fd, "step"), 0);
	assert_string_equal(str(fd, "mode"), "local");
	/* nothing before layer 1 is over budget: layer 0 is untouched */
	const cJSON *t;
	cJSON_ArrayForEach(t, get(rep, "taps")) {
		if ((int)num(t, "layer") == 0)
			assert_false(cJSON_IsTrue(get(t, "over_budget")));
	}
	cJSON_Delete(rep);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mp1_teacher_forced_on_hf_checkpoint),
		cmocka_unit_test(test_mp2_teacher_forced_tp2_on_hf_checkpoint),
		cmocka_unit_test(test_mp2_teacher_forced_tp2_on_converted_shards),
		cmocka_unit_test(test_short_teacher_forced),
		cmocka_unit_test(test_mp1_propagate),
		cmocka_unit_test(test_greedy_tokens_short),
		cmocka_unit_test(test_greedy_tokens_main),
		cmocka_unit_test(test_greedy_tokens_mp2),
		cmocka_unit_test(test_planted_change_fails_at_its_layer_and_tap),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
