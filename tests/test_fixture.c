/* test_fixture.c: the deterministic weight generator (fixtures/generator.h), the expected HF
 * tensor list (core/hf_names.h) and the embedded presets (fixtures/presets.h). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/config.h"
#include "core/fsutil.h"
#include "core/hf_names.h"
#include "core/rng.h"
#include "core/safetensors.h"
#include "fixtures/generator.h"
#include "fixtures/presets.h"
#include "tests/support/test_common.h"

typedef struct {
	char root[256];
	char bf16[300], bf16_again[300], fp8[300], seed1[300], sharded[300];
} dirs;

static int setup(void **state)
{
	dirs *d = calloc(1, sizeof *d);
	snprintf(d->root, sizeof d->root, "/tmp/dsv32_test_fixture.XXXXXX");
	if (!mkdtemp(d->root))
		return -1;
	snprintf(d->bf16, sizeof d->bf16, "%s/bf16", d->root);
	snprintf(d->bf16_again, sizeof d->bf16_again, "%s/bf16_again", d->root);
	snprintf(d->fp8, sizeof d->fp8, "%s/fp8", d->root);
	snprintf(d->seed1, sizeof d->seed1, "%s/seed1", d->root);
	snprintf(d->sharded, sizeof d->sharded, "%s/sharded", d->root);
	dsv32_error err = {0};
	if (dsv32_fixture_write("tiny", DSV32_WDTYPE_BF16, 0, d->bf16, 0, false, &err) ||
	    dsv32_fixture_write("tiny", DSV32_WDTYPE_BF16, 0, d->bf16_again, 0, false, &err) ||
	    dsv32_fixture_write("tiny", DSV32_WDTYPE_FP8, 0, d->fp8, 0, false, &err) ||
	    dsv32_fixture_write("tiny", DSV32_WDTYPE_BF16, 1, d->seed1, 0, false, &err) ||
	    dsv32_fixture_write("tiny", DSV32_WDTYPE_BF16, 0, d->sharded, 2000000, false, &err)) {
		fprintf(stderr, "fixture: %s\n", err.what);
		return -1;
	}
	*state = d;
	return 0;
}

static int teardown(void **state)
{
	dirs *d = *state;
	if (d)
		dsv32_remove_tree(d->root, NULL);
	free(d);
	return 0;
}

static char *slurp(const char *dir, const char *name, size_t *len)
{
	char path[512];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	char *buf = NULL;
	if (dsv32_read_file(path, (size_t)1 << 30, &buf, len, NULL) != DSV32_OK)
		fail_msg("cannot read %s", path);
	return buf;
}

static bool same_file(const char *a, const char *b, const char *name)
{
	size_t la, lb;
	char *x = slurp(a, name, &la), *y = slurp(b, name, &lb);
	bool same = la == lb && memcmp(x, y, la) == 0;
	free(x);
	free(y);
	return same;
}

static void test_same_seed_gives_identical_bytes(void **state)
{
	dirs *d = *state;
	assert_true(same_file(d->bf16, d->bf16_again, "model.safetensors"));
	assert_true(same_file(d->bf16, d->bf16_again, "config.json"));
	assert_false(same_file(d->bf16, d->seed1, "model.safetensors"));
	assert_true(same_file(d->bf16, d->seed1, "config.json"));
	/* no temporary directory is left beside the outputs */
	char tmp[400];
	snprintf(tmp, sizeof tmp, "%s.tmp.%ld", d->bf16, (long)getpid());
	assert_false(dsv32_path_exists(tmp));
}

static float load_f32(const dsv32_tensor *t, int64_t i)
{
	const unsigned char *p = t->data;
	if (t->dtype == DSV32_F32) {
		float v;
		memcpy(&v, p + 4 * i, 4);
		return v;
	}
	if (t->dtype == DSV32_BF16) {
		uint16_t h;
		memcpy(&h, p + 2 * i, 2);
		return dsv32_bf16_to_f32(h);
	}
	return dsv32_e4m3_to_f32(p[i]);
}

/* Context for walking the expected list against two checkpoints. */
typedef struct {
	dsv32_ckpt *bf16, *fp8;
	int64_t matrices, scales;
} pair;

static dsv32_status check_fp8_tensor(const dsv32_hf_tensor *t, void *user, dsv32_error *err)
{
	(void)err;
	pair *p = user;
	dsv32_tensor q, w;
	char base[300];
	if (t->kind == DSV32_HF_SCALE)
		return DSV32_OK;
	assert_int_equal(dsv32_ckpt_tensor(p->fp8, t->name, &q, NULL), DSV32_OK);
	assert_int_equal(dsv32_ckpt_tensor(p->bf16, t->name, &w, NULL), DSV32_OK);
	int64_t n = dsv32_tensor_numel(&q);
	if (t->dtype != DSV32_F8_E4M3) { /* not quantized: the same bytes in both */
		assert_int_equal(q.dtype, w.dtype);
		assert_memory_equal(q.data, w.data, dsv32_tensor_nbytes(&q));
		return DSV32_OK;
	}
	snprintf(base, sizeof base, "%.*s.weight_scale_inv",
		 (int)(strlen(t->name) - strlen(".weight")), t->name);
	dsv32_tensor s;
	assert_int_equal(dsv32_ckpt_tensor(p->fp8, base, &s, NULL), DSV32_OK);
	int64_t out = t->shape[0], in = t->shape[1], nbj = (in + 127) / 128;
	assert_int_equal(s.shape[0], (out + 127) / 128);
	assert_int_equal(s.shape[1], nbj);
	for (int64_t b = 0; b < dsv32_tensor_numel(&s); b++) { /* powers of two */
		int e;
		float sc = load_f32(&s, b);
		assert_true(sc > 0 && frexpf(sc, &e) == 0.5f);
	}
	for (int64_t i = 0; i < n; i++) {
		int64_t r = i / in, c = i % in;
		float sc = load_f32(&s, (r / 128) * nbj + c / 128);
		double deq = (double)load_f32(&q, i) * sc, ref = load_f32(&w, i);
		/* e4m3 RNE: half an ulp, 2^-4 relative for normals, s*2^-10 absolute below */
		double tol = fmax(fabs(ref) * 0x1p-4, (double)sc * 0x1p-10);
		if (fabs(deq - ref) > tol)
			fail_msg("%s[%lld]: dequantized %g, bf16 %g, scale %g", t->name, (long long)i,
				 deq, ref, sc);
	}
	p->matrices++;
	return DSV32_OK;
}

static void test_fp8_dequantizes_close_to_bf16(void **state)
{
	dirs *d = *state;
	pair p = {0};
	dsv32_config c;
	assert_int_equal(dsv32_ckpt_open(&p.bf16, d->bf16, NULL), DSV32_OK);
	assert_int_equal(dsv32_ckpt_open(&p.fp8, d->fp8, NULL), DSV32_OK);
	assert_int_equal(dsv32_fixture_config(&c, "tiny", NULL), DSV32_OK);
	assert_int_equal(dsv32_hf_expected_tensors(&c, true, check_fp8_tensor, &p, NULL), DSV32_OK);
	assert_true(p.matrices > 100);
	dsv32_ckpt_close(p.bf16);
	dsv32_ckpt_close(p.fp8);
	/* the fp8 checkpoint's config carries quantization_config */
	char path[400];
	bool is_hf;
	snprintf(path, sizeof path, "%s/config.json", d->fp8);
	assert_int_equal(dsv32_config_load(&c, path, &is_hf, NULL), DSV32_OK);
	assert_true(is_hf && c.dtype == DSV32_WDTYPE_FP8 && c.has_quant && c.scale_fmt_ue8m0);
}

typedef struct {
	dsv32_ckpt *ck;
	size_t seen;
} cover;

static dsv32_status check_present(const dsv32_hf_tensor *t, void *user, dsv32_error *err)
{
	(void)err;
	cover *cv = user;
	const dsv32_st_entry *e = dsv32_ckpt_find(cv->ck, t->name, NULL);
	if (!e)
		fail_msg("%s: missing", t->name);
	if (e->dtype != t->dtype || e->ndim != t->ndim || e->shape[0] != t->shape[0] ||
	    (t->ndim == 2 && e->shape[1] != t->shape[1]))
		fail_msg("%s: %s [%lld, %lld], expected %s [%lld, %lld]", t->name,
			 dsv32_dtype_name(e->dtype), (long long)e->shape[0],
			 (long long)(e->ndim > 1 ? e->shape[1] : 0), dsv32_dtype_name(t->dtype),
			 (long long)t->shape[0], (long long)(t->ndim > 1 ? t->shape[1] : 0));
	cv->seen++;
	return DSV32_OK;
}

static void assert_exact_coverage(const char *path, const dsv32_config *c, bool fp8)
{
	cover cv = {0};
	assert_int_equal(dsv32_ckpt_open(&cv.ck, path, NULL), DSV32_OK);
	assert_int_equal(dsv32_hf_expected_tensors(c, fp8, check_present, &cv, NULL), DSV32_OK);
	assert_int_equal(cv.seen, dsv32_ckpt_count(cv.ck)); /* nothing unexpected */
	assert_int_equal((int64_t)cv.seen, dsv32_hf_expected_count(c, fp8));
	dsv32_ckpt_close(cv.ck);
}

static void test_generated_checkpoints_have_exact_coverage(void **state)
{
	dirs *d = *state;
	dsv32_config c;
	assert_int_equal(dsv32_fixture_config(&c, "tiny", NULL), DSV32_OK);
	assert_exact_coverage(d->bf16, &c, false);
	assert_exact_coverage(d->fp8, &c, true);
	assert_exact_coverage(d->sharded, &c, false);
	/* 3 global + 3 layers x 14 attention + dense 3 + 2 x (2 + 16 x 3 + 3) = 154 */
	assert_int_equal(dsv32_hf_expected_count(&c, false), 154);
	/* fp8 adds one scale per quantized matrix: 7 per layer, 3 dense, 51 per MoE layer */
	assert_int_equal(dsv32_hf_expected_count(&c, true), 154 + 21 + 3 + 2 * 51);
}

static void test_sharded_checkpoint_has_same_tensors(void **state)
{
	dirs *d = *state;
	dsv32_ckpt *a, *b;
	assert_int_equal(dsv32_ckpt_open(&a, d->bf16, NULL), DSV32_OK);
	assert_int_equal(dsv32_ckpt_open(&b, d->sharded, NULL), DSV32_OK);
	assert_true(dsv32_ckpt_file_count(b) >= 5); /* ~10 MB in files of <= 2 MB */
	assert_int_equal(dsv32_ckpt_file_count(a), 1);
	assert_int_equal(dsv32_ckpt_count(a), dsv32_ckpt_count(b));
	for (size_t i = 0; i < dsv32_ckpt_count(a); i++) {
		const dsv32_st_entry *e = dsv32_ckpt_entry_at(a, i, NULL);
		dsv32_tensor x, y;
		assert_int_equal(dsv32_ckpt_tensor(a, e->name, &x, NULL), DSV32_OK);
		assert_int_equal(dsv32_ckpt_tensor(b, e->name, &y, NULL), DSV32_OK);
		assert_int_equal(dsv32_tensor_nbytes(&x), dsv32_tensor_nbytes(&y));
		assert_memory_equal(x.data, y.data, dsv32_tensor_nbytes(&x));
	}
	dsv32_ckpt_close(a);
	dsv32_ckpt_close(b);
	char path[400];
	snprintf(path, sizeof path, "%s/model.safetensors.index.json", d->sharded);
	assert_true(dsv32_path_exists(path));
}

static void test_value_distributions(void **state)
{
	dirs *d = *state;
	dsv32_ckpt *ck;
	assert_int_equal(dsv32_ckpt_open(&ck, d->bf16, NULL), DSV32_OK);
	static const struct {
		const char *name;
		double mean, sd;
	} want[] = {
		{"model.embed_tokens.weight", 0.0, 1.0},
		{"lm_head.weight", 0.0, 0.0625},                       /* 1/sqrt(256) */
		{"model.layers.1.mlp.experts.3.down_proj.weight", 0.0, 0.08838834764831845},
		{"model.layers.0.input_layernorm.weight", 1.0, 0.05},
		{"model.layers.2.self_attn.indexer.k_norm.bias", 0.0, 0.05},
		{"model.layers.0.self_attn.o_proj.weight", 0.0, 0.08838834764831845}, /* in 128 */
	};
	for (size_t k = 0; k < sizeof want / sizeof want[0]; k++) {
		dsv32_tensor t;
		assert_int_equal(dsv32_ckpt_tensor(ck, want[k].name, &t, NULL), DSV32_OK);
		int64_t n = dsv32_tensor_numel(&t);
		double s1 = 0, s2 = 0;
		for (int64_t i = 0; i < n; i++) {
			double v = load_f32(&t, i);
			assert_true(dsv32_round_bf16((float)v) == (float)v); /* bf16-representable */
			s1 += v;
			s2 += v * v;
		}
		double mean = s1 / n, sd = sqrt(s2 / n - mean * mean);
		double se = want[k].sd / sqrt((double)n);
		if (fabs(mean - want[k].mean) > 5 * se + 1e-3 * want[k].sd ||
		    fabs(sd / want[k].sd - 1) > 5 * sqrt(2.0 / n) + 0.01)
			fail_msg("%s: mean %g sd %g, expected %g, %g", want[k].name, mean, sd,
				 want[k].mean, want[k].sd);
	}
	dsv32_ckpt_close(ck);
}

/* The values are the header's formula drawn in stream order (dsv32_rng_normal one after the
 * other), though the generator draws each band in parallel from the counter-based stream. */
static void test_values_are_the_sequential_stream(void **state)
{
	dirs *d = *state;
	dsv32_ckpt *ck;
	assert_int_equal(dsv32_ckpt_open(&ck, d->bf16, NULL), DSV32_OK);
	static const struct {
		const char *name;
		double scale, shift;
	} want[] = {
		{"model.layers.1.mlp.experts.3.down_proj.weight", 0.08838834764831845, 0}, /* 1/sqrt(128) */
		{"model.embed_tokens.weight", 1.0, 0},
		{"model.layers.0.input_layernorm.weight", 0.05, 1.0},
	};
	for (size_t k = 0; k < sizeof want / sizeof want[0]; k++) {
		dsv32_tensor t;
		assert_int_equal(dsv32_ckpt_tensor(ck, want[k].name, &t, NULL), DSV32_OK);
		dsv32_rng r;
		dsv32_rng_seed_named(&r, 0, want[k].name);
		for (int64_t i = 0; i < dsv32_tensor_numel(&t); i++) {
			double n = dsv32_rng_normal(&r);
			float v = want[k].shift ? (float)(want[k].shift + want[k].scale * n)
						: (float)(n * want[k].scale);
			if (dsv32_round_bf16(v) != (float)load_f32(&t, i))
				fail_msg("%s[%lld]: %g, the stream gives %g", want[k].name, (long long)i,
					 load_f32(&t, i), dsv32_round_bf16(v));
		}
	}
	dsv32_ckpt_close(ck);
}

typedef struct {
	int calls;
	uint64_t last, total;
	bool went_back;
} progress_log;

static void log_progress(void *user, uint64_t done, uint64_t total)
{
	progress_log *pl = user;
	pl->went_back |= done < pl->last || (pl->calls && total != pl->total);
	pl->calls++;
	pl->last = done;
	pl->total = total;
}

/* The progress hook sees the bytes grow to the total of tensor data, which is the file's size
 * less its header; the bytes are those of a write without the hook. */
static void test_progress_reaches_the_tensor_bytes(void **state)
{
	dirs *d = *state;
	for (int dt = 0; dt < 2; dt++) {
		char out[320];
		snprintf(out, sizeof out, "%s/progress%d", d->root, dt);
		progress_log pl = {0};
		dsv32_fixture_opts o = {.progress = log_progress, .progress_user = &pl};
		dsv32_error err = {0};
		dsv32_weight_dtype wd = dt ? DSV32_WDTYPE_FP8 : DSV32_WDTYPE_BF16;
		assert_int_equal(dsv32_fixture_write_opts("tiny", wd, 0, out, 0, false, &o, &err),
				 DSV32_OK);
		assert_true(pl.calls > 1);
		assert_false(pl.went_back);
		assert_true(pl.last == pl.total);
		size_t len;
		char *file = slurp(out, "model.safetensors", &len);
		uint64_t header;
		memcpy(&header, file, sizeof header); /* little-endian length of the JSON header */
		assert_true(pl.total == len - 8 - header);
		free(file);
		assert_true(same_file(out, dt ? d->fp8 : d->bf16, "model.safetensors"));
	}
}

static void test_pow2_scale_known_answers(void **state)
{
	(void)state;
	assert_true(dsv32_fixture_pow2_scale(448.0f) == 1.0f);
	assert_true(dsv32_fixture_pow2_scale(nextafterf(448.0f, 1000.0f)) == 2.0f);
	assert_true(dsv32_fixture_pow2_scale(224.0f) == 0.5f);
	assert_true(dsv32_fixture_pow2_scale(225.0f) == 1.0f);
	assert_true(dsv32_fixture_pow2_scale(1.0f) == 0x1p-8f);
	assert_true(dsv32_fixture_pow2_scale(0.0f) == 0x1p-22f); /* amax floored at 1e-4 */
	assert_true(dsv32_fixture_pow2_scale(1e6f) == 4096.0f);
}

static void test_refuses_existing_dir_unless_forced(void **state)
{
	dirs *d = *state;
	dsv32_error err = {0};
	assert_int_equal(dsv32_fixture_write("tiny", DSV32_WDTYPE_BF16, 0, d->seed1, 0, false, &err),
			 DSV32_E_USAGE);
	assert_non_null(strstr(err.what, "already exists"));
	assert_int_equal(dsv32_fixture_write("tiny", DSV32_WDTYPE_BF16, 0, d->seed1, 0, true, &err),
			 DSV32_OK);
	assert_true(same_file(d->bf16, d->seed1, "model.safetensors")); /* replaced by seed 0 */
	assert_int_equal(dsv32_fixture_write("huge", DSV32_WDTYPE_BF16, 0, d->seed1, 0, true, &err),
			 DSV32_E_NOTFOUND);
	assert_non_null(strstr(err.what, "huge"));
	/* a config given as JSON text works the same as the preset */
	char out[400];
	snprintf(out, sizeof out, "%s/from_json", d->root);
	assert_int_equal(dsv32_fixture_write(dsv32_preset_find("tiny"), DSV32_WDTYPE_BF16, 0, out, 0,
					     false, &err),
			 DSV32_OK);
	assert_true(same_file(d->bf16, out, "model.safetensors"));
}

static void test_presets_embedded_equal_json_files(void **state)
{
	(void)state;
	const char *src = getenv("DSV32_SOURCE_DIR");
	if (!src)
		src = DSV32_SOURCE_DIR;
	for (size_t i = 0; i < dsv32_preset_count(); i++) {
		char path[512], *text = NULL;
		size_t len;
		snprintf(path, sizeof path, "%s/fixtures/presets/%s.json", src, dsv32_preset_name(i));
		if (dsv32_read_file(path, 1 << 20, &text, &len, NULL) != DSV32_OK)
			fail_msg("cannot read %s", path);
		if (strcmp(text, dsv32_preset_find(dsv32_preset_name(i))) != 0)
			fail_msg("%s differs from fixtures/presets.c: run "
				 "fixtures/presets/embed_presets.py",
				 path);
		free(text);
	}
	char *golden = NULL, gp[600];
	size_t len;
	if (tc_golden_path(gp, sizeof gp, "hf/config.json") &&
	    dsv32_read_file(gp, 1 << 20, &golden, &len, NULL) == DSV32_OK) {
		assert_string_equal(golden, dsv32_preset_find("tiny"));
		free(golden);
	}
}

static void test_expected_list_matches_golden_checkpoint(void **state)
{
	(void)state;
	char cfg[600], st[600];
	if (!tc_golden_path(cfg, sizeof cfg, "hf/config.json") ||
	    !tc_golden_path(st, sizeof st, "hf/model.safetensors"))
		skip();
	dsv32_config c;
	bool is_hf;
	assert_int_equal(dsv32_config_load(&c, cfg, &is_hf, NULL), DSV32_OK);
	assert_true(is_hf);
	assert_int_equal(dsv32_hf_expected_count(&c, false), 154);
	assert_exact_coverage(st, &c, false);
}

static void test_mtp_names(void **state)
{
	(void)state;
	dsv32_config c;
	assert_int_equal(dsv32_fixture_config(&c, "tiny", NULL), DSV32_OK);
	c.num_nextn_predict_layers = 1;
	assert_true(dsv32_hf_is_mtp_name(&c, "model.layers.3.enorm.weight"));
	assert_false(dsv32_hf_is_mtp_name(&c, "model.layers.2.input_layernorm.weight"));
	assert_false(dsv32_hf_is_mtp_name(&c, "model.layers.4.enorm.weight"));
	assert_false(dsv32_hf_is_mtp_name(&c, "lm_head.weight"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_same_seed_gives_identical_bytes),
		cmocka_unit_test(test_fp8_dequantizes_close_to_bf16),
		cmocka_unit_test(test_generated_checkpoints_have_exact_coverage),
		cmocka_unit_test(test_sharded_checkpoint_has_same_tensors),
		cmocka_unit_test(test_value_distributions),
		cmocka_unit_test(test_values_are_the_sequential_stream),
		cmocka_unit_test(test_progress_reaches_the_tensor_bytes),
		cmocka_unit_test(test_pow2_scale_known_answers),
		cmocka_unit_test(test_refuses_existing_dir_unless_forced),
		cmocka_unit_test(test_presets_embedded_equal_json_files),
		cmocka_unit_test(test_expected_list_matches_golden_checkpoint),
		cmocka_unit_test(test_mtp_names),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
