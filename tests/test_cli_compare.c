/* test_cli_compare.c: `dsv32-parity compare` end to end on the built-in tiny model and on the
 * golden recording: identical sides have zero drift, a planted bug is found at its layer and
 * tap, ref vs hf drift is nonzero, finite and reported for every tap of every layer and step,
 * every report states each side's GEMM engine and host fingerprint, bad input exits 2, --dump
 * works in every mode, and meaningless comparisons exit 2 naming the difference. */
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

#include "compare/provenance.h"
#include "compare/tapfile.h"
#include "core/fsutil.h"
#include "core/safetensors.h"
#include "tests/support/test_common.h"

static char dir[64];
static const char *cli;

static int setup(void **state)
{
	(void)state;
	static const char *const fx[] = {"tiny", "", NULL};
	return tc_cli_fixture_dir(&cli, "cmp", dir, sizeof dir, fx);
}

static int teardown(void **state)
{
	(void)state;
	return tc_remove_dir(dir);
}

#define NEED_CLI() TC_NEED_CLI(cli)

static const cJSON *first_div(const cJSON *rep)
{
	return cJSON_GetObjectItemCaseSensitive(rep, "first_divergence");
}

static void test_identical_sides_report_zero_drift(void **state)
{
	(void)state;
	NEED_CLI();
	char args[1024], out[1 << 16], path[128];
	snprintf(path, sizeof path, "%s/same.json", dir);
	snprintf(args, sizeof args,
		 "compare --checkpoint %s/tiny --a ref --b ref --decode-steps 2 --quiet --json %s", dir,
		 path);
	assert_int_equal(tc_run_cli(cli, args, out, sizeof out), 0);
	cJSON *rep = tc_load_json(path);
	assert_non_null(rep);
	const cJSON *t;
	int n = 0;
	cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(rep, "taps")) {
		const cJSON *m = cJSON_GetObjectItemCaseSensitive(t, "metrics");
		if (m)
			assert_true(cJSON_GetObjectItemCaseSensitive(m, "max_abs")->valuedouble == 0.0);
		n++;
	}
	assert_true(n > 100);
	assert_true(cJSON_IsNull(first_div(rep)));
	cJSON_Delete(rep);
}

static void test_planted_bug_names_its_layer_and_tap(void **state)
{
	(void)state;
	NEED_CLI();
	char args[1024], out[1 << 16], path[128], budget[128];
	snprintf(budget, sizeof budget, "%s/zero.json", dir);
	const char *zero = "{\"rules\":[{\"pattern\":\"*\",\"max\":{\"max_abs\":0}}]}";
	assert_int_equal(dsv32_write_file_atomic(budget, zero, strlen(zero), NULL), DSV32_OK);
	snprintf(path, sizeof path, "%s/plant.json", dir);
	snprintf(args, sizeof args,
		 "compare --checkpoint %s/tiny --a ref --b ref:plant=1 --decode-steps 1 --quiet "
		 "--budget %s --json %s", dir, budget, path);
	assert_int_equal(tc_run_cli(cli, args, out, sizeof out), 1);
	cJSON *rep = tc_load_json(path);
	assert_non_null(rep);
	const cJSON *fd = first_div(rep);
	assert_true(cJSON_IsObject(fd));
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(fd, "name")->valuestring,
			    "layers.1.attn_norm");
	/* teacher-forced: layer 1's local drift equals its propagated drift (layer 0 identical) */
	double prop = -1, local = -2;
	const cJSON *t;
	cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(rep, "taps")) {
		if (strcmp(cJSON_GetObjectItemCaseSensitive(t, "name")->valuestring, "layers.1.attn_norm") ||
		    cJSON_GetObjectItemCaseSensitive(t, "step")->valueint != 0)
			continue;
		double v = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(t, "metrics"),
							    "rel_l2")->valuedouble;
		if (!strcmp(cJSON_GetObjectItemCaseSensitive(t, "mode")->valuestring, "local"))
			local = v;
		else
			prop = v;
	}
	assert_true(prop > 0);
	assert_true(prop == local);
	cJSON_Delete(rep);
}

static void test_ref_vs_hf_reports_every_tap_of_every_layer_and_step(void **state)
{
	(void)state;
	NEED_CLI();
	char args[1024], out[1 << 16], path[128];
	snprintf(path, sizeof path, "%s/refhf.json", dir);
	snprintf(args, sizeof args, "compare --checkpoint %s/tiny --decode-steps 2 --quiet --json %s",
		 dir, path);
	int rc = tc_run_cli(cli, args, out, sizeof out);
	assert_true(rc == 0 || rc == 1);
	cJSON *rep = tc_load_json(path);
	assert_non_null(rep);
	static const char *ops[] = {"attn_norm", "attn.q_latent", "attn.kv_latent", "attn.q_rope",
				    "attn.k_rope", "indexer.topk", "attn.out", "ffn_norm", "ffn.out",
				    "out"};
	int found[3][3][10] = {{{0}}};
	double total = 0;
	const cJSON *t;
	cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(rep, "taps")) {
		if (strcmp(cJSON_GetObjectItemCaseSensitive(t, "mode")->valuestring, "propagate"))
			continue;
		int layer = cJSON_GetObjectItemCaseSensitive(t, "layer")->valueint;
		int step = cJSON_GetObjectItemCaseSensitive(t, "step")->valueint;
		const char *op = cJSON_GetObjectItemCaseSensitive(t, "op")->valuestring;
		const cJSON *m = cJSON_GetObjectItemCaseSensitive(t, "metrics");
		if (m) {
			const cJSON *rel = cJSON_GetObjectItemCaseSensitive(m, "rel_l2");
			assert_true(cJSON_IsNumber(rel)); /* finite */
			total += rel->valuedouble;
		}
		for (int i = 0; i < 10; i++)
			if (layer >= 0 && layer < 3 && step < 3 && !strcmp(op, ops[i]))
				found[step][layer][i] = 1;
	}
	for (int s = 0; s < 3; s++)
		for (int l = 0; l < 3; l++)
			for (int i = 0; i < 10; i++) {
				if (!found[s][l][i])
					fail_msg("step %d layer %d: no %s tap compared", s, l, ops[i]);
			}
	assert_true(total > 0); /* the layouts do differ */
	cJSON_Delete(rep);
}

static const char *jstr(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	if (!cJSON_IsString(v))
		fail_msg("field %s missing or not a string", k);
	return v->valuestring;
}

/* provenance.sides[i] of a live side: engine, numerics key and the host fields, whatever the
 * CPU (values are not pinned, only their presence and the engine's key form). */
static void check_live_side(const cJSON *side, const char *name, const char *engine)
{
	assert_string_equal(jstr(side, "side"), name);
	assert_string_equal(jstr(side, "source"), "live");
	assert_string_equal(jstr(side, "engine"), engine);
	const char *key = jstr(side, "numerics_key");
	if (!strcmp(engine, "fixed"))
		assert_string_equal(key, "fixed");
	else
		assert_true(!strncmp(key, "host:", 5) && strchr(key, '|'));
	(void)jstr(side, "cpu_model"); /* may be "" where /proc/cpuinfo names no model */
	(void)jstr(side, "isa");
	assert_true(strlen(jstr(side, "onednn_impl")) > 0);
	(void)jstr(side, "openblas_core");
	assert_non_null(strstr(jstr(side, "versions"), "oneDNN"));
	assert_string_equal(jstr(side, "ties"), "index"); /* no recording to adopt a rule from */
	assert_string_equal(jstr(side, "ties_from"), "default");
	assert_string_equal(jstr(side, "exp"), "libm");
	assert_string_equal(jstr(side, "exp_from"), "default");
	assert_true(strlen(jstr(side, "fingerprint")) > 0);
	const cJSON *th = cJSON_GetObjectItemCaseSensitive(side, "threads");
	assert_true(cJSON_IsNumber(th) && th->valuedouble >= 1);
}

static const cJSON *sides_of(const cJSON *rep)
{
	const cJSON *s = cJSON_GetObjectItemCaseSensitive(
		cJSON_GetObjectItemCaseSensitive(rep, "provenance"), "sides");
	assert_true(cJSON_IsArray(s));
	assert_int_equal(cJSON_GetArraySize(s), 2);
	return s;
}

static void test_golden_recording_side_replays_its_tokens(void **state)
{
	(void)state;
	NEED_CLI();
	const char *src = getenv("DSV32_SOURCE_DIR");
	char args[2048], out[1 << 16], path[128];
	snprintf(path, sizeof path, "%s/golden.json", dir);
	snprintf(args, sizeof args,
		 "compare --checkpoint %s/fixtures/golden/ref_tiny/hf --a taps:%s/fixtures/golden/ref_tiny/golden_mp1_short.safetensors "
		 "--b ref --mode teacher-forced --quiet --json %s", src, src, path);
	int rc = tc_run_cli(cli, args, out, sizeof out);
	assert_true(rc == 0 || rc == 1);
	cJSON *rep = tc_load_json(path);
	assert_non_null(rep);
	int steps_seen = 0;
	const cJSON *t;
	cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(rep, "taps")) {
		if (!strcmp(cJSON_GetObjectItemCaseSensitive(t, "name")->valuestring, "layers.2.out")) {
			steps_seen++;
			/* the ref layout reproduces DeepSeek's layer outputs teacher-forced */
			const cJSON *m = cJSON_GetObjectItemCaseSensitive(t, "metrics");
			assert_true(cJSON_GetObjectItemCaseSensitive(m, "rel_l2")->valuedouble < 0.02);
		}
	}
	assert_int_equal(steps_seen, 5);
	/* the recording side states what its metadata says about its producer's host */
	const cJSON *rec = cJSON_GetArrayItem(sides_of(rep), 0);
	assert_string_equal(jstr(rec, "source"), "recording");
	if (!strcmp(jstr(rec, "engine"), "unknown"))
		assert_string_equal(jstr(rec, "fingerprint"), "unknown (recording has no fingerprint)");
	else
		assert_true(strlen(jstr(rec, "numerics_key")) > 0);
	check_live_side(cJSON_GetArrayItem(sides_of(rep), 1), "b", "fixed");
	cJSON_Delete(rep);
}

/* Each side's engine and numerics key in the JSON, a Host line per side in Markdown and HTML;
 * --gemm is the default of the live sides that do not name gemm= themselves. */
static void test_report_states_engine_and_host_per_side(void **state)
{
	(void)state;
	NEED_CLI();
	char args[1024], out[1 << 16], path[128], md[128], html[128];
	snprintf(path, sizeof path, "%s/engines.json", dir);
	snprintf(md, sizeof md, "%s/engines.md", dir);
	snprintf(html, sizeof html, "%s/engines.html", dir);
	snprintf(args, sizeof args,
		 "compare --checkpoint %s/tiny --a ref --b hf:gemm=host --decode-steps 1 --mode propagate "
		 "--quiet --json %s --markdown %s --html %s", dir, path, md, html);
	int rc = tc_run_cli(cli, args, out, sizeof out);
	assert_true(rc == 0 || rc == 1);
	cJSON *rep = tc_load_json(path);
	assert_non_null(rep);
	const cJSON *sides = sides_of(rep);
	check_live_side(cJSON_GetArrayItem(sides, 0), "a", "fixed");
	check_live_side(cJSON_GetArrayItem(sides, 1), "b", "host");
	assert_string_equal(jstr(rep, "side_b"), "hf:cpu:bf16:gemm=host");
	cJSON_Delete(rep);
	char *text = NULL;
	size_t len;
	assert_int_equal(dsv32_read_file(md, 1u << 24, &text, &len, NULL), DSV32_OK);
	assert_non_null(strstr(text, "**Host a** (live, engine `fixed`, numerics key `fixed`, "
				     "ties `index` from default, exp `libm` from default)"));
	assert_non_null(strstr(text, "**Host b** (live, engine `host`, numerics key `host:"));
	free(text);
	assert_int_equal(dsv32_read_file(html, 1u << 26, &text, &len, NULL), DSV32_OK);
	assert_non_null(strstr(text, "<b>Host a</b> (live, engine <code>fixed</code>"));
	assert_non_null(strstr(text, "<b>Host b</b> (live, engine <code>host</code>"));
	free(text);
	/* --gemm host applies to a (no gemm=), not to b (gemm=fixed) */
	snprintf(args, sizeof args,
		 "compare --checkpoint %s/tiny --a ref --b hf:gemm=fixed --gemm host --decode-steps 1 "
		 "--mode propagate --quiet --force --json %s", dir, path);
	rc = tc_run_cli(cli, args, out, sizeof out);
	assert_true(rc == 0 || rc == 1);
	rep = tc_load_json(path);
	assert_non_null(rep);
	sides = sides_of(rep);
	check_live_side(cJSON_GetArrayItem(sides, 0), "a", "host");
	check_live_side(cJSON_GetArrayItem(sides, 1), "b", "fixed");
	assert_string_equal(jstr(rep, "side_a"), "ref:cpu:bf16:mp=1:gemm=host");
	assert_string_equal(jstr(rep, "side_b"), "hf:cpu:bf16");
	cJSON_Delete(rep);
	snprintf(args, sizeof args, "compare --checkpoint %s/tiny --gemm bogus --quiet", dir);
	assert_int_equal(tc_run_cli(cli, args, out, sizeof out), 2);
	assert_non_null(strstr(out, "--gemm: 'bogus' is not one of fixed|host"));
}

static void test_bad_input_exits_2_with_a_message(void **state)
{
	(void)state;
	NEED_CLI();
	char args[1024], out[1 << 16];
	snprintf(args, sizeof args, "compare --checkpoint %s/tiny --tokens 1,2,5000 --quiet", dir);
	assert_int_equal(tc_run_cli(cli, args, out, sizeof out), 2);
	assert_non_null(strstr(out, "5000 is outside the vocabulary"));
	assert_int_equal(tc_run_cli(cli, "compare --a vllm --quiet", out, sizeof out), 2);
	assert_non_null(strstr(out, "vllm"));
	snprintf(args, sizeof args, "compare --checkpoint %s/missing --quiet", dir);
	assert_int_equal(tc_run_cli(cli, args, out, sizeof out), 2);
	assert_non_null(strstr(out, "missing"));
}

/* A tap of a dump: in the store read back from HDF5, or in the safetensors file. */
static bool dump_has(const char *path, const dsv32_tapstore *h5, const char *name)
{
	if (h5)
		return dsv32_tapstore_get((dsv32_tapstore *)h5, name) != NULL;
	dsv32_st_file *f = NULL;
	assert_int_equal(dsv32_st_open(&f, path, NULL), DSV32_OK);
	bool found = dsv32_st_find(f, name) != NULL;
	dsv32_st_close(f);
	return found;
}

/* compare --dump in every mode and both formats: a/ and b/ per step as docs/tap-format.md says,
 * read back by our readers, with each side's engine keys. In teacher-forced mode side b (live)
 * holds its teacher-forced layer taps, side a (the driver) all of its taps. */
static void test_dump_works_in_every_mode_and_format(void **state)
{
	(void)state;
	NEED_CLI();
	const char *modes[] = {"propagate", "teacher-forced", "both"}, *exts[] = {"h5", "safetensors"};
	for (int m = 0; m < 3; m++)
		for (int e = 0; e < 2; e++) {
			char args[1024], out[1 << 16], path[128], v[64];
			snprintf(path, sizeof path, "%s/dump-%s.%s", dir, modes[m], exts[e]);
			snprintf(args, sizeof args,
				 "compare --checkpoint %s/tiny --mode %s --batch 1 --prompt-len 4 "
				 "--decode-steps 1 --quiet --dump %s", dir, modes[m], path);
			int rc = tc_run_cli(cli, args, out, sizeof out);
			if (rc != 0 && rc != 1)
				fail_msg("%s: exit %d: %s", args, rc, out);
			dsv32_tapstore st;
			dsv32_tapstore_init(&st);
			bool h5 = e == 0;
			if (h5)
				assert_int_equal(dsv32_tapfile_read_h5(&st, path, NULL), DSV32_OK);
			assert_true(dump_has(path, h5 ? &st : NULL, "a/step0.embed"));
			assert_true(dump_has(path, h5 ? &st : NULL, "a/step1.layers.0.attn.out"));
			assert_true(dump_has(path, h5 ? &st : NULL, "b/step1.layers.1.out"));
			assert_true(dump_has(path, h5 ? &st : NULL, "b/step0.layers.0.moe.experts") ||
				    dump_has(path, h5 ? &st : NULL, "b/step0.layers.1.moe.experts"));
			/* the live side of a teacher-forced run runs decoder layers only */
			assert_true(dump_has(path, h5 ? &st : NULL, "b/step0.logits") == (m != 1));
			assert_true(dsv32_recording_meta(path, "gemm_engine_a", v, sizeof v));
			assert_string_equal(v, "fixed");
			assert_true(dsv32_recording_meta(path, "host_numerics_key_b", v, sizeof v));
			dsv32_tapstore_free(&st);
		}
}

/* Comparisons that mean nothing exit 2 with the difference named, and leave no report. */
static void test_meaningless_comparisons_exit_2(void **state)
{
	(void)state;
	NEED_CLI();
	char args[1024], out[1 << 16], rep[128];
	const char *recs[][3] = {{"r1", "5,17,42", "1"}, {"r2", "5,17,43", "1"},
				 {"r3", "5,17,42;5,17,42", "1"}, {"r4", "5,17,42", "2"}};
	for (int i = 0; i < 4; i++) {
		snprintf(args, sizeof args, "dump --layout ref --checkpoint %s/tiny --tokens '%s' "
			 "--decode-steps %s --out %s/%s.safetensors", dir, recs[i][1], recs[i][2], dir,
			 recs[i][0]);
		assert_int_equal(tc_run_cli(cli, args, out, sizeof out), 0);
	}
	snprintf(rep, sizeof rep, "%s/meaningless.json", dir);
	const char *cases[][2] = {
		{"--a taps:%s/r1.safetensors --b taps:%s/r2.safetensors", "step 0 input_ids differ"},
		{"--a taps:%s/r1.safetensors --b taps:%s/r3.safetensors", "batch 1 (a) vs 2 (b)"},
		{"--a taps:%s/r1.safetensors --b taps:%s/r4.safetensors", "2 steps (a) vs 3 (b)"},
		{"--a taps:%s/r1.safetensors --b ref --tokens 1,2", "--tokens: a recording"},
		{"--a taps:%s/r1.safetensors --b ref --decode-steps 2", "--decode-steps: a recording"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char sides[512];
		snprintf(sides, sizeof sides, cases[i][0], dir, dir);
		snprintf(args, sizeof args, "compare --checkpoint %s/tiny %s --mode propagate --quiet "
			 "--json %s", dir, sides, rep);
		assert_int_equal(tc_run_cli(cli, args, out, sizeof out), 2);
		if (!strstr(out, cases[i][1]))
			fail_msg("%s: output lacks \"%s\": %s", args, cases[i][1], out);
		assert_int_equal(access(rep, F_OK), -1);
	}
	/* without --checkpoint, a recording must prove it is of the built-in model (dump states
	 * the weights fingerprint: a recording of other weights is refused) */
	snprintf(args, sizeof args, "fixture --preset tiny --seed 7 --out %s/other >/dev/null && "
		 "%s dump --layout ref --checkpoint %s/other --tokens 5,17 --out %s/other.safetensors",
		 dir, cli, dir, dir);
	assert_int_equal(tc_run_cli(cli, args, out, sizeof out), 0);
	snprintf(args, sizeof args, "compare --a taps:%s/other.safetensors --b ref --quiet --json %s",
		 dir, rep);
	assert_int_equal(tc_run_cli(cli, args, out, sizeof out), 2);
	assert_non_null(strstr(out, "pass --checkpoint DIR"));
	assert_int_equal(access(rep, F_OK), -1);
	/* a budget that covers no tap */
	char budget[128];
	snprintf(budget, sizeof budget, "%s/empty-budget.json", dir);
	FILE *f = fopen(budget, "w");
	assert_non_null(f);
	fputs("{\"rules\":[]}", f);
	fclose(f);
	snprintf(args, sizeof args, "compare --checkpoint %s/tiny --budget %s --decode-steps 0 "
		 "--quiet --json %s", dir, budget, rep);
	assert_int_equal(tc_run_cli(cli, args, out, sizeof out), 2);
	assert_non_null(strstr(out, "the budget covers no tap embed"));
	assert_int_equal(access(rep, F_OK), -1);
	/* the same recording twice is fine */
	snprintf(args, sizeof args, "compare --a taps:%s/r1.safetensors --b taps:%s/r1.safetensors "
		 "--mode propagate --quiet", dir, dir);
	assert_int_equal(tc_run_cli(cli, args, out, sizeof out), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_identical_sides_report_zero_drift),
		cmocka_unit_test(test_planted_bug_names_its_layer_and_tap),
		cmocka_unit_test(test_ref_vs_hf_reports_every_tap_of_every_layer_and_step),
		cmocka_unit_test(test_golden_recording_side_replays_its_tokens),
		cmocka_unit_test(test_report_states_engine_and_host_per_side),
		cmocka_unit_test(test_bad_input_exits_2_with_a_message),
		cmocka_unit_test(test_dump_works_in_every_mode_and_format),
		cmocka_unit_test(test_meaningless_comparisons_exit_2),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
