/* test_layers_limit.c: opts.layers / --layers (a prefix of the model) on the golden tiny
 * checkpoint (fixtures/golden/ref_tiny: 3 layers, 1 dense + 2 MoE):
 *   - hf and ref opened with layers = 2 emit exactly the taps embed, layers.0.*, layers.1.*,
 *     final_norm, logits; every layer tap is bit-identical to the full model's (same weights,
 *     same inputs), in prefill and in a decode step;
 *   - the truncated hf model's final norm runs on layers.1.out: checked against a double
 *     oracle of HF's RMSNorm (fp32 normalise, bf16, times the weight, bf16) on that tap, <= 1
 *     bf16 ulp, while the same oracle on the full model's layers.2.out is far from it;
 *   - layers = 0 and layers above the count are the whole model (bit-identical logits);
 *     layers < 0 is DSV32_E_USAGE; layer_forward of a layer >= N is DSV32_E_USAGE;
 *   - CLI: compare --layers 2 exits 0, its JSON names only layers 0-1 and records
 *     provenance.layers "2 of 3" (Markdown says "Truncated model"); run/compare/dump with a
 *     negative --layers exit 2 naming the option. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/safetensors.h"
#include "hf_layout/hf_model.h"
#include "ref/ref_model.h"
#include "tests/support/hf_golden_util.h"
#include "tests/support/test_common.h"

#define HF_DIR DSV32_SOURCE_DIR "/fixtures/golden/ref_tiny/hf"
#define REF_DIR HF_DIR /* the ref layout reads the HF checkpoint through the name map */
#define B 2
#define S 6

static const int64_t PROMPT[B * S] = {5, 17, 42, 7, 300, 901, 11, 250, 33, 470, 2, 618};

typedef enum { LAY_HF, LAY_REF } layout_kind;

static dsv32_model *open_model(layout_kind k, int layers, dsv32_status want)
{
	dsv32_model_opts o;
	dsv32_model_opts_default(&o);
	o.max_batch_size = B;
	o.max_seq_len = 16;
	o.layers = layers;
	dsv32_error err = {0};
	dsv32_model *m = NULL;
	dsv32_status rc = k == LAY_HF ? dsv32_hf_open_dir(&m, HF_DIR, &o, &err)
				      : dsv32_ref_open(&m, REF_DIR, NULL, &o, &err);
	if (rc != want)
		fail_msg("open (layers %d): %s, want %s: %s", layers, dsv32_status_str(rc),
			 dsv32_status_str(want), err.what);
	return m;
}

/* Prefill, then one greedy decode step (token chosen from row logits of the FULL model, passed
 * in, so both models see the same inputs). taps[0] prefill, taps[1] decode. */
static void run_two_steps(dsv32_model *m, const int64_t *next, hf_tapset taps[2], float *logits0)
{
	dsv32_error err = {0};
	dsv32_tensor lg = {0};
	m->taps = (dsv32_tap_sink){hf_tapset_on_tap, &taps[0]};
	if (m->vt->forward(m, PROMPT, B, S, 0, &lg, &err) != DSV32_OK)
		fail_msg("prefill: %s", err.what);
	if (logits0)
		memcpy(logits0, lg.data, dsv32_tensor_nbytes(&lg));
	dsv32_tensor_free(&lg);
	m->taps = (dsv32_tap_sink){hf_tapset_on_tap, &taps[1]};
	if (m->vt->forward(m, next, B, 1, S, &lg, &err) != DSV32_OK)
		fail_msg("decode: %s", err.what);
	dsv32_tensor_free(&lg);
	m->taps = (dsv32_tap_sink){0};
}

static void assert_same_bits(const char *what, const dsv32_tensor *a, const dsv32_tensor *b)
{
	if (!a || !b)
		fail_msg("%s: missing on one side", what);
	if (a->dtype != b->dtype || !dsv32_tensor_same_shape(a, b))
		fail_msg("%s: dtype/shape differ", what);
	if (memcmp(a->data, b->data, dsv32_tensor_nbytes(a)) != 0)
		fail_msg("%s: not bit-identical", what);
}

static int tap_layer(const char *name)
{
	int L = -1;
	if (sscanf(name, "layers.%d.", &L) != 1)
		return -1;
	return L;
}

static void check_prefix(layout_kind k)
{
	dsv32_model *full = open_model(k, 0, DSV32_OK), *cut = open_model(k, 2, DSV32_OK);
	assert_int_equal(full->cfg.n_layers, 3);
	assert_int_equal(cut->cfg.n_layers, 2);
	hf_tapset tf[2] = {{0}}, tc[2] = {{0}};
	const int64_t V = full->cfg.vocab_size;
	float *lg = malloc(sizeof(float) * (size_t)(B * V));
	assert_non_null(lg);
	int64_t next[B] = {1, 2};
	/* the decode token: greedy from the full model's prefill logits */
	dsv32_tensor l0 = {0};
	dsv32_error err = {0};
	assert_int_equal(full->vt->forward(full, PROMPT, B, S, 0, &l0, &err), DSV32_OK);
	for (int b = 0; b < B; b++)
		next[b] = tc_argmax_f32((const float *)l0.data + b * V, V);
	dsv32_tensor_free(&l0);
	full->vt->reset(full);
	run_two_steps(full, next, tf, NULL);
	run_two_steps(cut, next, tc, lg);
	for (int st = 0; st < 2; st++) {
		int n_layer_taps = 0;
		for (int i = 0; i < tc[st].n; i++) {
			const char *nm = tc[st].name[i];
			int L = tap_layer(nm);
			if (L >= 2)
				fail_msg("step %d: truncated model emitted %s", st, nm);
			if (L >= 0 || !strcmp(nm, "embed")) {
				char what[160];
				snprintf(what, sizeof what, "step %d %s", st, nm);
				assert_same_bits(what, hf_tapset_get(&tf[st], nm), &tc[st].t[i]);
				n_layer_taps += L >= 0;
			}
		}
		assert_true(n_layer_taps > 10);
		/* every layer 0-1 tap of the full model is there too */
		for (int i = 0; i < tf[st].n; i++) {
			int L = tap_layer(tf[st].name[i]);
			if (L >= 0 && L < 2 && !hf_tapset_get(&tc[st], tf[st].name[i]))
				fail_msg("step %d: %s missing from the truncated model", st, tf[st].name[i]);
		}
		assert_non_null(hf_tapset_get(&tf[st], "layers.2.out"));
		assert_non_null(hf_tapset_get(&tc[st], "final_norm"));
		assert_non_null(hf_tapset_get(&tc[st], "logits"));
	}
	/* a layer the truncated model does not have */
	if (cut->vt->layer_forward) {
		dsv32_layer_input in = {.hidden = hf_tapset_get(&tc[0], "layers.1.out")};
		dsv32_tensor out = {0};
		cut->vt->reset(cut);
		assert_int_equal(cut->vt->layer_forward(cut, 2, &in, 0, &out, &err), DSV32_E_USAGE);
	}
	for (int st = 0; st < 2; st++) {
		hf_tapset_clear(&tf[st]);
		hf_tapset_clear(&tc[st]);
	}
	free(lg);
	full->vt->close(full);
	cut->vt->close(cut);
}

static void test_hf_prefix_is_bit_identical(void **state)
{
	(void)state;
	check_prefix(LAY_HF);
}

static void test_ref_prefix_is_bit_identical(void **state)
{
	(void)state;
	check_prefix(LAY_REF);
}

/* HF RMSNorm in double: x fp32 -> x * rsqrt(mean(x^2) + eps) -> bf16 -> * w -> bf16 */
static double bf16_rne(double v)
{
	float f = (float)v;
	uint32_t u;
	memcpy(&u, &f, 4);
	u = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
	memcpy(&f, &u, 4);
	return f;
}

static double bf16_at(const dsv32_tensor *t, int64_t i)
{
	uint16_t h = ((const uint16_t *)t->data)[i];
	uint32_t u = (uint32_t)h << 16;
	float f;
	memcpy(&f, &u, 4);
	return f;
}

/* max bf16 ulp distance between the oracle norm of x and y (rows of D) */
static double norm_ulps(const dsv32_tensor *x, const dsv32_tensor *y, const float *w, int64_t D,
			double eps)
{
	int64_t rows = dsv32_tensor_numel(x) / D;
	double worst = 0;
	for (int64_t r = 0; r < rows; r++) {
		double ss = 0;
		for (int64_t j = 0; j < D; j++)
			ss += bf16_at(x, r * D + j) * bf16_at(x, r * D + j);
		double inv = 1.0 / sqrt(ss / (double)D + eps);
		for (int64_t j = 0; j < D; j++) {
			double want = bf16_rne((double)w[j] * bf16_rne(bf16_at(x, r * D + j) * inv));
			double got = bf16_at(y, r * D + j);
			double ulp = ldexp(1.0, ilogb(want == 0 ? 1e-30 : want) - 7);
			double d = fabs(got - want) / ulp;
			if (d > worst)
				worst = d;
		}
	}
	return worst;
}

static void test_hf_final_norm_runs_on_last_kept_layer(void **state)
{
	(void)state;
	dsv32_model *full = open_model(LAY_HF, 0, DSV32_OK), *cut = open_model(LAY_HF, 2, DSV32_OK);
	hf_tapset tf[2] = {{0}}, tc[2] = {{0}};
	int64_t next[B] = {3, 4};
	run_two_steps(full, next, tf, NULL);
	run_two_steps(cut, next, tc, NULL);
	dsv32_ckpt *ck = NULL;
	dsv32_tensor w = {0};
	assert_int_equal(dsv32_ckpt_open(&ck, HF_DIR, NULL), DSV32_OK);
	assert_int_equal(dsv32_ckpt_tensor(ck, "model.norm.weight", &w, NULL), DSV32_OK);
	int64_t D = cut->cfg.dim;
	float *wf = malloc(sizeof(float) * (size_t)D);
	assert_non_null(wf);
	assert_true(dsv32_convert(wf, DSV32_F32, w.data, w.dtype, (size_t)D));
	double eps = cut->cfg.rms_norm_eps;
	for (int st = 0; st < 2; st++) {
		const dsv32_tensor *y = hf_tapset_get(&tc[st], "final_norm");
		const dsv32_tensor *x1 = hf_tapset_get(&tc[st], "layers.1.out");
		const dsv32_tensor *x2 = hf_tapset_get(&tf[st], "layers.2.out");
		assert_non_null(y);
		assert_non_null(x1);
		assert_non_null(x2);
		assert_int_equal(y->dtype, DSV32_BF16);
		/* fp32 sum of squares vs the double oracle: at most 1 ulp */
		assert_true(norm_ulps(x1, y, wf, D, eps) <= 1.0);
		/* and not the full model's last layer */
		assert_true(norm_ulps(x2, y, wf, D, eps) > 8.0);
	}
	free(wf);
	dsv32_ckpt_close(ck);
	for (int st = 0; st < 2; st++) {
		hf_tapset_clear(&tf[st]);
		hf_tapset_clear(&tc[st]);
	}
	full->vt->close(full);
	cut->vt->close(cut);
}

static void test_zero_and_above_count_mean_all(void **state)
{
	(void)state;
	for (int k = 0; k < 2; k++) {
		dsv32_model *a = open_model((layout_kind)k, 0, DSV32_OK);
		dsv32_model *b = open_model((layout_kind)k, 61, DSV32_OK);
		assert_int_equal(a->cfg.n_layers, 3);
		assert_int_equal(b->cfg.n_layers, 3);
		dsv32_tensor la = {0}, lb = {0};
		dsv32_error err = {0};
		assert_int_equal(a->vt->forward(a, PROMPT, B, S, 0, &la, &err), DSV32_OK);
		assert_int_equal(b->vt->forward(b, PROMPT, B, S, 0, &lb, &err), DSV32_OK);
		assert_same_bits("logits", &la, &lb);
		dsv32_tensor_free(&la);
		dsv32_tensor_free(&lb);
		a->vt->close(a);
		b->vt->close(b);
	}
}

static void test_negative_is_usage_error(void **state)
{
	(void)state;
	assert_null(open_model(LAY_HF, -1, DSV32_E_USAGE));
	assert_null(open_model(LAY_REF, -2, DSV32_E_USAGE));
}

/* ---- CLI ---- */

static char tmp[64];
static const char *cli;

static void test_cli_compare_layers(void **state)
{
	(void)state;
	TC_NEED_CLI(cli);
	char args[1024], out[1 << 16], js[128], md[128];
	snprintf(js, sizeof js, "%s/cut.json", tmp);
	snprintf(md, sizeof md, "%s/cut.md", tmp);
	snprintf(args, sizeof args,
		 "compare --checkpoint %s --a ref --b hf --layers 2 --batch 1 --prompt-len 6 "
		 "--decode-steps 1 --quiet --json %s --markdown %s",
		 HF_DIR, js, md);
	int rc = tc_run_cli(cli, args, out, sizeof out);
	if (rc != 0)
		fail_msg("compare --layers 2 exited %d: %s", rc, out);
	cJSON *rep = tc_load_json(js);
	assert_non_null(rep);
	const cJSON *prov = cJSON_GetObjectItemCaseSensitive(rep, "provenance");
	const cJSON *lay = cJSON_GetObjectItemCaseSensitive(prov, "layers");
	assert_true(cJSON_IsString(lay));
	assert_string_equal(lay->valuestring, "2 of 3");
	const cJSON *taps = cJSON_GetObjectItemCaseSensitive(rep, "taps"), *t;
	int seen[3] = {0};
	cJSON_ArrayForEach(t, taps) {
		const cJSON *L = cJSON_GetObjectItemCaseSensitive(t, "layer");
		assert_true(cJSON_IsNumber(L));
		assert_true(L->valueint < 2);
		if (L->valueint >= 0)
			seen[L->valueint]++;
	}
	assert_true(seen[0] > 0 && seen[1] > 0);
	assert_int_equal(seen[2], 0);
	cJSON_Delete(rep);
	char cmd[256];
	snprintf(cmd, sizeof cmd, "grep -c 'Truncated model' %s", md);
	assert_int_equal(tc_run_capture(cmd, out, sizeof out), 0);
}

static void test_cli_negative_layers_exit_2(void **state)
{
	(void)state;
	TC_NEED_CLI(cli);
	char args[1024], out[8192];
	const char *cmds[] = {
		"compare --checkpoint " HF_DIR " --layers -1 --quiet",
		"run --layout hf --checkpoint " HF_DIR " --tokens 5,17 --layers -1",
		"dump --layout hf --checkpoint " HF_DIR " --tokens 5,17 --out /dev/null --layers -1",
		"run --layout ref --checkpoint " HF_DIR " --tokens 5,17 --layers x",
	};
	for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
		snprintf(args, sizeof args, "%s", cmds[i]);
		assert_int_equal(tc_run_cli(cli, args, out, sizeof out), 2);
		if (!strstr(out, "--layers"))
			fail_msg("%s: message does not name --layers: %s", cmds[i], out);
	}
}

static void test_cli_run_layers_note(void **state)
{
	(void)state;
	TC_NEED_CLI(cli);
	char out[8192];
	assert_int_equal(tc_run_cli(cli, "run --layout hf --checkpoint " HF_DIR
				    " --tokens 5,17,42 --max-new-tokens 2 --layers 1", out, sizeof out), 0);
	assert_non_null(strstr(out, "first 1 of 3 decoder layers"));
}

static int group_setup(void **state)
{
	(void)state;
	const char *c = getenv("DSV32_CLI");
	cli = c && access(c, X_OK) == 0 ? c : NULL;
	snprintf(tmp, sizeof tmp, "/tmp/dsv32_layers_XXXXXX");
	return mkdtemp(tmp) ? 0 : -1;
}

static int group_teardown(void **state)
{
	(void)state;
	return tc_remove_dir(tmp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hf_prefix_is_bit_identical),
		cmocka_unit_test(test_ref_prefix_is_bit_identical),
		cmocka_unit_test(test_hf_final_norm_runs_on_last_kept_layer),
		cmocka_unit_test(test_zero_and_above_count_mean_all),
		cmocka_unit_test(test_negative_is_usage_error),
		cmocka_unit_test(test_cli_compare_layers),
		cmocka_unit_test(test_cli_negative_layers_exit_2),
		cmocka_unit_test(test_cli_run_layers_note),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
