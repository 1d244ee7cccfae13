/* test_hf_shards.c: the hf layout read straight from reference shards (convert.h shard source,
 * dsv32_hf_open_shards, docs/hf_layout.md "On reference shards"):
 *   - every tensor of the golden tiny HF checkpoint, fetched from its shards at W = 1, 2, 4 by
 *     HF name, has the dense checkpoint's dtype, shape and bytes; whole-on-one-rank tensors are
 *     borrowed views (everything at W = 1), split ones owned reassemblies;
 *   - hf on the shards (W = 1, 2, 4; dsv32_hf_open_shards and dsv32_hf_open's detection) gives
 *     the dense checkpoint's run bit for bit: every tap and the logits of a prefill + 2 greedy
 *     decode steps (memcmp);
 *   - the same on a generated fp8 tiny checkpoint at W = 2, lazy fp8 (the default on CPU, with
 *     as many lazy matrices as on the dense checkpoint) and eager;
 *   - errors, no crash and a message naming the file / tensor: a missing rank file, a world size
 *     that does not divide the experts, a tensor in no rank file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "convert/convert.h"
#include "convert/namemap.h"
#include "core/fsutil.h"
#include "core/safetensors.h"
#include "fixtures/generator.h"
#include "fixtures/presets.h"
#include "hf_layout/hf_model.h"
#include "tests/support/conv_util.h"
#include "tests/support/model_runs.h"
#include "tests/support/test_common.h"

#define B 2
#define S 5
#define STEPS 3 /* prefill + 2 decode steps */

static const int64_t PROMPT[B * S] = {5, 17, 42, 7, 300, 11, 250, 33, 470, 2};
static char dir[4096], golden[4096], fp8[4200];
static bool have_golden;

static void path_in(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", dir, name);
}

static dsv32_status to_ref(const char *ckpt, int W, const char *out, dsv32_error *err)
{
	dsv32_hf_to_ref_opts o = {ckpt, NULL, W, out, {0}};
	dsv32_conv_result r = {0};
	dsv32_status rc = dsv32_convert_hf_to_ref(&o, &r, err);
	dsv32_conv_result_free(&r);
	return rc;
}

static void opts_for(dsv32_model_opts *o, bool eager)
{
	dsv32_model_opts_default(o);
	o->max_batch_size = B;
	o->max_seq_len = 16;
	o->eager_dequant = eager;
}

static dsv32_model *open_dense(const char *path, bool eager)
{
	dsv32_model_opts o;
	opts_for(&o, eager);
	dsv32_error err = {0};
	dsv32_model *m = NULL;
	if (dsv32_hf_open(&m, path, NULL, &o, &err) != DSV32_OK)
		fail_msg("open %s: %s", path, err.what);
	return m;
}

static dsv32_model *open_shards(const char *path, bool eager, bool detect)
{
	dsv32_model_opts o;
	opts_for(&o, eager);
	dsv32_error err = {0};
	dsv32_model *m = NULL;
	dsv32_status rc = detect ? dsv32_hf_open(&m, path, NULL, &o, &err)
				 : dsv32_hf_open_shards(&m, path, NULL, &o, &err);
	if (rc != DSV32_OK)
		fail_msg("open shards %s: %s", path, err.what);
	return m;
}

/* Every dense tensor (MTP layers aside) through the shard source: same dtype, shape, bytes. */
static void check_source(const char *dense, const char *shards, int W)
{
	dsv32_error err = {0};
	dsv32_ckpt *ck = NULL;
	dsv32_shard_source *src = NULL;
	const char *in[1] = {shards};
	if (dsv32_ckpt_open(&ck, dense, &err) != DSV32_OK)
		fail_msg("%s: %s", dense, err.what);
	if (dsv32_shard_source_open(&src, in, 1, NULL, &err) != DSV32_OK)
		fail_msg("%s: %s", shards, err.what);
	assert_int_equal(dsv32_shard_source_world(src), W);
	dsv32_config cfg;
	if (dsv32_shard_source_hf_config(src, &cfg, &err) != DSV32_OK)
		fail_msg("%s: %s", shards, err.what);
	int64_t n_layers = cfg.n_layers;
	size_t checked = 0, owned = 0;
	for (size_t i = 0; i < dsv32_ckpt_count(ck); i++) {
		const dsv32_st_entry *e = dsv32_ckpt_entry_at(ck, i, NULL);
		char ref[DSV32_NAME_MAX];
		dsv32_name_info info;
		assert_int_equal(dsv32_name_hf_to_ref(e->name, n_layers, ref, sizeof ref, &info, &err),
				 DSV32_OK);
		if (info.dropped) {
			assert_false(dsv32_shard_source_find(src, e->name, NULL, NULL, NULL));
			continue;
		}
		dsv32_tensor d, t;
		dsv32_dtype dt;
		int nd;
		int64_t shape[DSV32_MAX_DIMS];
		assert_int_equal(dsv32_ckpt_tensor(ck, e->name, &d, &err), DSV32_OK);
		assert_true(dsv32_shard_source_find(src, e->name, &dt, &nd, shape));
		if (dsv32_shard_source_tensor(src, e->name, &t, &err) != DSV32_OK)
			fail_msg("%s: %s", e->name, err.what);
		assert_int_equal(t.dtype, d.dtype);
		assert_int_equal(dt, d.dtype);
		assert_int_equal(nd, d.ndim);
		assert_true(dsv32_tensor_same_shape(&t, &d));
		assert_memory_equal(shape, d.shape, sizeof(int64_t) * (size_t)d.ndim);
		if (memcmp(t.data, d.data, dsv32_tensor_nbytes(&d)) != 0)
			fail_msg("mp%d: %s: bytes differ from the dense checkpoint", W, e->name);
		bool whole = W == 1 || info.split == DSV32_SPLIT_NONE ||
			     info.split == DSV32_SPLIT_EXPERT;
		if (whole == t.owned)
			fail_msg("mp%d: %s: owned %d, expected %d", W, e->name, t.owned, !whole);
		owned += t.owned;
		dsv32_tensor_free(&t);
		checked++;
	}
	assert_true(checked > 100);
	if (W > 1)
		assert_true(owned > 10);
	dsv32_tensor none;
	assert_int_equal(dsv32_shard_source_tensor(src, "model.layers.0.nonexistent.weight", &none,
						   &err), DSV32_E_NOTFOUND);
	dsv32_shard_source_close(src);
	dsv32_ckpt_close(ck);
}

static void skip_without_golden(void)
{
	if (!have_golden)
		skip();
}

static void test_source_bytes(void **state)
{
	(void)state;
	skip_without_golden();
	const int Ws[] = {1, 2, 4};
	for (size_t i = 0; i < 3; i++) {
		char p[4200];
		snprintf(p, sizeof p, "%s/mp%d", dir, Ws[i]);
		check_source(golden, p, Ws[i]);
	}
}

static void check_golden_world(int W, bool detect)
{
	char p[4200], label[64];
	snprintf(p, sizeof p, "%s/mp%d", dir, W);
	snprintf(label, sizeof label, "golden mp%d%s", W, detect ? " (detected)" : "");
	dsv32_model *d = open_dense(golden, false), *s = open_shards(p, false, detect);
	assert_string_equal(s->vt->layout, "hf");
	assert_int_equal(s->cfg.n_layers, d->cfg.n_layers);
	mr_assert_runs_identical(d, "dense", s, label, PROMPT, B, S, STEPS);
	d->vt->close(d);
	s->vt->close(s);
}

static void test_golden_mp1(void **state)
{
	(void)state;
	skip_without_golden();
	check_golden_world(1, false);
}

static void test_golden_mp2(void **state)
{
	(void)state;
	skip_without_golden();
	check_golden_world(2, false);
	check_golden_world(2, true);
}

static void test_golden_mp4(void **state)
{
	(void)state;
	skip_without_golden();
	check_golden_world(4, false);
}

static void test_fp8_mp2_lazy_and_eager(void **state)
{
	(void)state;
	char p[4200];
	path_in(p, sizeof p, "fp8-mp2");
	check_source(fp8, p, 2);
	for (int eager = 0; eager < 2; eager++) {
		dsv32_model *d = open_dense(fp8, eager), *s = open_shards(p, eager, false);
		int64_t lazy = dsv32_hf_lazy_matrices(d);
		if (eager)
			assert_int_equal(lazy, 0);
		else
			assert_true(lazy > 0);
		assert_int_equal(dsv32_hf_lazy_matrices(s), lazy);
		mr_assert_runs_identical(d, "dense", s, eager ? "fp8 mp2 eager" : "fp8 mp2 lazy", PROMPT,
					 B, S, STEPS);
		d->vt->close(d);
		s->vt->close(s);
	}
}

/* Open must fail with code, out NULL, and a message containing want. */
static void expect_open_error(const char *path, dsv32_status code, const char *want)
{
	dsv32_model_opts o;
	opts_for(&o, false);
	dsv32_error err = {0};
	dsv32_model *m = (dsv32_model *)&err; /* must be reset to NULL */
	dsv32_status rc = dsv32_hf_open_shards(&m, path, NULL, &o, &err);
	if (rc == DSV32_OK)
		fail_msg("%s: opened, expected an error containing \"%s\"", path, want);
	assert_null(m);
	if (code != DSV32_OK)
		assert_int_equal(rc, code);
	if (!strstr(err.what, want))
		fail_msg("%s: error \"%s\" does not mention \"%s\"", path, err.what, want);
	print_message("expected error: %s\n", err.what);
}

static void copy_into(const char *from_dir, const char *name, const char *to_dir,
		      const char *to_name)
{
	char a[4200], b[4200];
	assert_true(dsv32_path_join(a, sizeof a, from_dir, name));
	assert_true(dsv32_path_join(b, sizeof b, to_dir, to_name));
	assert_true(conv_copy_file(a, b));
}

static void test_error_missing_rank(void **state)
{
	(void)state;
	char src[4200], bad[4200];
	path_in(src, sizeof src, "fp8-mp2");
	path_in(bad, sizeof bad, "missing-rank");
	assert_int_equal(mkdir(bad, 0755), 0);
	copy_into(src, "model0-mp2.safetensors", bad, "model0-mp2.safetensors");
	copy_into(src, "config.json", bad, "config.json");
	expect_open_error(bad, DSV32_E_NOTFOUND, "model1-mp2.safetensors");
}

/* mp1's file as every rank of mp3: 16 routed experts do not divide by 3. */
static void test_error_world_does_not_divide(void **state)
{
	(void)state;
	char src[4200], bad[4200];
	path_in(src, sizeof src, "fp8-mp1");
	path_in(bad, sizeof bad, "mp3");
	assert_int_equal(mkdir(bad, 0755), 0);
	for (int r = 0; r < 3; r++) {
		char name[64];
		snprintf(name, sizeof name, "model%d-mp3.safetensors", r);
		copy_into(src, "model0-mp1.safetensors", bad, name);
	}
	copy_into(src, "config.json", bad, "config.json");
	expect_open_error(bad, DSV32_E_FORMAT, "not divisible by world size 3");
}

/* Rewrite a shard file without the tensor `drop`; returns how many were dropped. */
static int rewrite_without(const char *in, const char *out, const char *drop)
{
	dsv32_error err = {0};
	dsv32_st_file *f = NULL;
	dsv32_st_writer *w = NULL;
	int dropped = 0;
	if (dsv32_st_open(&f, in, &err) != DSV32_OK || dsv32_st_writer_open(&w, out, &err) != DSV32_OK)
		fail_msg("%s", err.what);
	for (size_t i = 0; i < dsv32_st_count(f); i++) {
		const dsv32_st_entry *e = dsv32_st_entry_at(f, i);
		if (!strcmp(e->name, drop)) {
			dropped++;
			continue;
		}
		assert_int_equal(dsv32_st_writer_declare(w, e->name, e->dtype, e->ndim, e->shape, &err),
				 DSV32_OK);
	}
	for (size_t i = 0; i < dsv32_st_count(f); i++) {
		const dsv32_st_entry *e = dsv32_st_entry_at(f, i);
		if (strcmp(e->name, drop))
			assert_int_equal(dsv32_st_writer_write(w, dsv32_st_data(f, e), e->end - e->begin,
							       &err), DSV32_OK);
	}
	assert_int_equal(dsv32_st_writer_commit(w, &err), DSV32_OK);
	dsv32_st_close(f);
	return dropped;
}

static void test_error_tensor_absent(void **state)
{
	(void)state;
	char src[4200], bad[4200];
	path_in(src, sizeof src, "fp8-mp2");
	path_in(bad, sizeof bad, "absent");
	assert_int_equal(mkdir(bad, 0755), 0);
	for (int r = 0; r < 2; r++) { /* wq_b is split along dim 0: on every rank */
		char a[8500], b[8500];
		snprintf(a, sizeof a, "%s/model%d-mp2.safetensors", src, r);
		snprintf(b, sizeof b, "%s/model%d-mp2.safetensors", bad, r);
		assert_int_equal(rewrite_without(a, b, "layers.1.attn.wq_b.weight"), 1);
	}
	copy_into(src, "config.json", bad, "config.json");
	expect_open_error(bad, DSV32_E_NOTFOUND, "model.layers.1.self_attn.q_b_proj.weight");
	expect_open_error(bad, DSV32_E_NOTFOUND, "layers.1.attn.wq_b.weight");
}

/* In text, replace the one occurrence of key's "key": from with to; false if not exactly one. */
static bool set_field(char **text, const char *key, const char *from, const char *to)
{
	char pat[128], rep[128];
	snprintf(pat, sizeof pat, "\"%s\": %s,", key, from);
	snprintf(rep, sizeof rep, "\"%s\": %s,", key, to);
	char *hit = strstr(*text, pat);
	if (!hit || strstr(hit + 1, pat))
		return false;
	size_t n = strlen(*text) - strlen(pat) + strlen(rep) + 1, pre = (size_t)(hit - *text);
	char *out = malloc(n);
	if (!out)
		return false;
	snprintf(out, n, "%.*s%s%s", (int)pre, *text, rep, hit + strlen(pat));
	free(*text);
	*text = out;
	return true;
}

static char *tiny_fp8_mp2_json(void)
{
	const char *tiny = dsv32_preset_find("tiny");
	char *t = tiny ? strdup(tiny) : NULL;
	if (!t || !set_field(&t, "num_attention_heads", "4", "8") ||
	    !set_field(&t, "num_key_value_heads", "4", "8") ||
	    !set_field(&t, "moe_intermediate_size", "128", "256")) {
		fprintf(stderr, "tiny preset: fields not found as expected\n");
		free(t);
		return NULL;
	}
	return t;
}

static int group_setup(void **state)
{
	(void)state;
	dsv32_error err = {0};
	if (!conv_mkdtemp(dir, sizeof dir))
		return -1;
	have_golden = tc_golden_path(golden, sizeof golden, "hf/config.json");
	if (have_golden) {
		golden[strlen(golden) - strlen("/config.json")] = '\0';
		const int Ws[] = {1, 2, 4};
		for (size_t i = 0; i < 3; i++) {
			char p[4200];
			snprintf(p, sizeof p, "%s/mp%d", dir, Ws[i]);
			if (to_ref(golden, Ws[i], p, &err) != DSV32_OK) {
				fprintf(stderr, "hf-to-ref mp%d: %s\n", Ws[i], err.what);
				return -1;
			}
		}
	}
	/* tiny with 8 heads and a 256-wide shared expert: every split fp8 weight covers whole
	 * 128-blocks at W = 2 (dsv32_config_validate) */
	char *json = tiny_fp8_mp2_json();
	if (!json)
		return -1;
	path_in(fp8, sizeof fp8, "fp8");
	dsv32_status rc = dsv32_fixture_write(json, DSV32_WDTYPE_FP8, 3, fp8, 0, false, &err);
	free(json);
	if (rc != DSV32_OK) {
		fprintf(stderr, "fixture: %s\n", err.what);
		return -1;
	}
	for (int W = 1; W <= 2; W++) {
		char p[4200];
		snprintf(p, sizeof p, "%s/fp8-mp%d", dir, W);
		if (to_ref(fp8, W, p, &err) != DSV32_OK) {
			fprintf(stderr, "hf-to-ref fp8 mp%d: %s\n", W, err.what);
			return -1;
		}
	}
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	conv_rm_rf(dir);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_source_bytes),
		cmocka_unit_test(test_golden_mp1),
		cmocka_unit_test(test_golden_mp2),
		cmocka_unit_test(test_golden_mp4),
		cmocka_unit_test(test_fp8_mp2_lazy_and_eager),
		cmocka_unit_test(test_error_missing_rank),
		cmocka_unit_test(test_error_world_does_not_divide),
		cmocka_unit_test(test_error_tensor_absent),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
