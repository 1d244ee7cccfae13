/* test_convert.c: hf-to-ref, ref-to-hf and verify-shards on the golden ref_tiny checkpoint
 * (BF16, 16 experts, 4 heads: W = 1, 2, 4; 8 does not divide the 4 heads) and on generated fp8
 * checkpoints: DeepSeek's convert.py shard manifests reproduced, byte-identical round trips,
 * and each failure of issue 6 caught with its message and exit code. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

#include "convert/convert.h"
#include "core/fsutil.h"
#include "core/safetensors.h"
#include "fixtures/generator.h"
#include "fixtures/presets.h"
#include "tests/support/conv_util.h"

static char root[4096];       /* per-run temporary directory */
static char hf_dir[4096];     /* golden HF checkpoint */
static char shards[3][4200];  /* hf-to-ref outputs for W = 1, 2, 4 */
static const int worlds[3] = {1, 2, 4};

static void path_in(char *out, size_t len, const char *a, const char *b)
{
	assert_true(dsv32_path_join(out, len, a, b));
}

static dsv32_status to_ref(const char *ckpt, int W, const char *out, dsv32_error *err)
{
	dsv32_hf_to_ref_opts o = {ckpt, NULL, W, out, {0}};
	dsv32_conv_result r;
	dsv32_status rc = dsv32_convert_hf_to_ref(&o, &r, err);
	if (rc == DSV32_OK)
		dsv32_conv_result_free(&r);
	return rc;
}

static dsv32_status to_hf(const char *const *in, size_t n, const char *config, const char *out,
			  dsv32_out_dtype dt, uint64_t max_shard, bool force, dsv32_error *err)
{
	dsv32_ref_to_hf_opts o = {in, n, config, out, dt, max_shard, {NULL, NULL, force, false}, 0};
	dsv32_conv_result r;
	dsv32_status rc = dsv32_convert_ref_to_hf(&o, &r, err);
	if (rc == DSV32_OK)
		dsv32_conv_result_free(&r);
	return rc;
}

static dsv32_status verify(const char *const *in, size_t n, const char *dense,
			   dsv32_verify_result *res, dsv32_error *err)
{
	dsv32_verify_opts o = {in, n, dense, NULL, false, NULL, NULL, 0};
	return dsv32_verify_shards(&o, res, err);
}

static int group_setup(void **state)
{
	(void)state;
	if (!conv_mkdtemp(root, sizeof root))
		return -1;
	snprintf(hf_dir, sizeof hf_dir, "%s/hf", conv_golden_dir());
	if (!dsv32_path_exists(hf_dir)) {
		fprintf(stderr, "golden checkpoint %s not found\n", hf_dir);
		return -1;
	}
	for (int i = 0; i < 3; i++) {
		dsv32_error err = {0};
		snprintf(shards[i], sizeof shards[i], "%s/mp%d", root, worlds[i]);
		if (to_ref(hf_dir, worlds[i], shards[i], &err) != DSV32_OK) {
			fprintf(stderr, "hf-to-ref W=%d: %s\n", worlds[i], err.what);
			return -1;
		}
	}
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	conv_rm_rf(root);
	return 0;
}

/* A scratch copy of the W=2 shards: dir/model0-mp2.safetensors, dir/model1-mp2.safetensors. */
static void copy_mp2(char *dir, size_t len, const char *name)
{
	snprintf(dir, len, "%s/%s", root, name);
	assert_int_equal(dsv32_mkdirs(dir, NULL), DSV32_OK);
	for (int r = 0; r < 2; r++) {
		char src[4300], dst[4300], f[64];
		snprintf(f, sizeof f, "model%d-mp2.safetensors", r);
		path_in(src, sizeof src, shards[1], f);
		path_in(dst, sizeof dst, dir, f);
		assert_true(conv_copy_file(src, dst));
	}
}

static void test_hf_to_ref_reproduces_deepseek_convert_py(void **state)
{
	(void)state;
	for (int i = 0; i < 3; i++) {
		char manifest[4300], msg[512];
		bool whole = false;
		snprintf(manifest, sizeof manifest, "%s/mp%d/manifest.json", conv_golden_dir(),
			 worlds[i]);
		int bad = conv_check_manifest(manifest, shards[i], &whole, msg, sizeof msg);
		if (bad)
			fail_msg("W=%d: %d problems, first: %s", worlds[i], bad, msg);
		/* Same header layout as convert.py's save_file: whole files are identical too. */
		assert_true(whole);
		char cfg[4300];
		path_in(cfg, sizeof cfg, shards[i], "config.json");
		assert_true(dsv32_path_exists(cfg));
	}
}

static void test_hf_to_ref_refuses_world_not_dividing_heads(void **state)
{
	(void)state;
	char out[4300];
	dsv32_error err = {0};
	snprintf(out, sizeof out, "%s/mp8", root);
	/* 4 heads, 16 experts: W = 8 splits no head evenly (and W = 3 no expert set). */
	assert_int_not_equal(to_ref(hf_dir, 8, out, &err), DSV32_OK);
	assert_non_null(strstr(err.what, "8"));
	assert_false(dsv32_path_exists(out));
	assert_false(conv_dir_has_prefix(root, "mp8.tmp."));
	assert_int_not_equal(to_ref(hf_dir, 3, out, &err), DSV32_OK);
	assert_false(dsv32_path_exists(out));
}

static void test_round_trip_is_byte_identical_and_verifies(void **state)
{
	(void)state;
	for (int i = 0; i < 3; i++) {
		char out[4300], cfg[4300], msg[512];
		dsv32_error err = {0};
		snprintf(out, sizeof out, "%s/back%d", root, worlds[i]);
		path_in(cfg, sizeof cfg, shards[i], "config.json");
		const char *in[1] = {shards[i]};
		/* 1 MB files: several files and an index. */
		if (to_hf(in, 1, cfg, out, DSV32_OUT_KEEP, 1000000, false, &err) != DSV32_OK)
			fail_msg("ref-to-hf W=%d: %s", worlds[i], err.what);
		int bad = conv_compare_ckpts(hf_dir, out, msg, sizeof msg);
		if (bad)
			fail_msg("W=%d: %d tensors differ, first %s", worlds[i], bad, msg);
		char index[4400];
		path_in(index, sizeof index, out, "model.safetensors.index.json");
		assert_true(dsv32_path_exists(index));
		assert_true(conv_dir_has_prefix(out, "model-00002-of-"));
		dsv32_verify_result res;
		assert_int_equal(verify(in, 1, hf_dir, &res, &err), DSV32_OK);
		assert_true(res.ok);
		assert_int_equal(res.tensors, 154);
		assert_int_equal(res.identical, 154);
		assert_int_equal(res.world, worlds[i]);
		assert_non_null(strstr(res.report_json, "\"sha256\""));
		dsv32_verify_result_free(&res);
		assert_int_equal(verify(in, 1, out, &res, &err), DSV32_OK);
		dsv32_verify_result_free(&res);
	}
}

static void test_verify_accepts_deepseek_own_shards(void **state)
{
	(void)state;
	char dir[4300];
	snprintf(dir, sizeof dir, "%s/../../../shared/golden/ref_tiny/mp2", conv_golden_dir());
	if (!dsv32_path_exists(dir))
		snprintf(dir, sizeof dir, "/work/shared/golden/ref_tiny/mp2");
	char f[4400];
	path_in(f, sizeof f, dir, "model1-mp2.safetensors");
	if (!dsv32_path_exists(f))
		skip(); /* DeepSeek's shard files are not provided here */
	const char *in[1] = {dir};
	dsv32_verify_result res;
	dsv32_error err = {0};
	if (verify(in, 1, hf_dir, &res, &err) != DSV32_OK)
		fail_msg("%s", err.what);
	assert_int_equal(res.identical, 154);
	dsv32_verify_result_free(&res);
}

static void test_verify_catches_flipped_byte(void **state)
{
	(void)state;
	char dir[4300], f[4400];
	copy_mp2(dir, sizeof dir, "flip");
	path_in(f, sizeof f, dir, "model1-mp2.safetensors");
	uint64_t off = conv_tensor_file_offset(f, "layers.0.attn.wo.weight");
	assert_true(off > 0);
	assert_true(conv_flip_byte(f, off + 77));
	const char *in[1] = {dir};
	dsv32_verify_result res;
	dsv32_error err = {0};
	assert_int_equal(verify(in, 1, hf_dir, &res, &err), DSV32_E_MISMATCH);
	assert_false(res.ok);
	assert_int_equal(res.mismatched, 1);
	assert_non_null(strstr(err.what, "model.layers.0.self_attn.o_proj.weight"));
	assert_non_null(strstr(err.what, "rank 1"));
	assert_non_null(strstr(res.summary, "FAILED"));
	dsv32_verify_result_free(&res);
	char out[8192];
	int code = conv_run_cli(out, sizeof out, "verify-shards --shards %s --dense %s", dir, hf_dir);
	if (code != -77) {
		assert_int_equal(code, 1);
		assert_non_null(strstr(out, "o_proj.weight"));
	}
}

static void test_replicated_tensor_differing_on_one_rank_is_named(void **state)
{
	(void)state;
	char dir[4300], f[4400], out[4400];
	copy_mp2(dir, sizeof dir, "repl");
	path_in(f, sizeof f, dir, "model1-mp2.safetensors");
	uint64_t off = conv_tensor_file_offset(f, "layers.1.ffn.gate.bias");
	assert_true(off > 0);
	assert_true(conv_flip_byte(f, off + 3));
	const char *in[1] = {dir};
	dsv32_verify_result res;
	dsv32_error err = {0};
	assert_int_equal(verify(in, 1, hf_dir, &res, &err), DSV32_E_MISMATCH);
	assert_non_null(strstr(err.what, "model.layers.1.mlp.gate.e_score_correction_bias"));
	assert_non_null(strstr(err.what, "replicated tensor differs on rank 1"));
	dsv32_verify_result_free(&res);
	/* ref-to-hf refuses to pick one copy, and leaves nothing behind. */
	char cfg[4400];
	path_in(cfg, sizeof cfg, shards[1], "config.json");
	snprintf(out, sizeof out, "%s/repl_hf", root);
	assert_int_equal(to_hf(in, 1, cfg, out, DSV32_OUT_KEEP, 0, false, &err), DSV32_E_MISMATCH);
	assert_non_null(strstr(err.what, "layers.1.ffn.gate.bias"));
	assert_non_null(strstr(err.what, "rank 1"));
	assert_false(dsv32_path_exists(out));
	assert_false(conv_dir_has_prefix(root, "repl_hf.tmp."));
}

static void test_missing_rank_is_an_input_error(void **state)
{
	(void)state;
	char dir[4300], f[4400];
	copy_mp2(dir, sizeof dir, "missing");
	path_in(f, sizeof f, dir, "model1-mp2.safetensors");
	assert_int_equal(remove(f), 0);
	const char *in[1] = {dir};
	dsv32_verify_result res;
	dsv32_error err = {0};
	assert_int_equal(verify(in, 1, hf_dir, &res, &err), DSV32_E_NOTFOUND);
	assert_non_null(strstr(err.what, "rank 1 of mp2 missing"));
	assert_non_null(strstr(err.what, "model1-mp2.safetensors"));
	char out[8192];
	int code = conv_run_cli(out, sizeof out, "verify-shards --shards %s --dense %s", dir, hf_dir);
	if (code != -77) {
		assert_int_equal(code, 2);
		assert_non_null(strstr(out, "rank 1 of mp2 missing"));
	}
}

static void test_shard_from_another_world_size_is_caught(void **state)
{
	(void)state;
	char dir[4300], f[4400], src[4400];
	dsv32_verify_result res;
	dsv32_error err = {0};
	/* (a) by its file name, next to the mp2 files */
	copy_mp2(dir, sizeof dir, "mixed");
	path_in(src, sizeof src, shards[2], "model2-mp4.safetensors");
	path_in(f, sizeof f, dir, "model2-mp4.safetensors");
	assert_true(conv_copy_file(src, f));
	const char *in[1] = {dir};
	assert_int_equal(verify(in, 1, hf_dir, &res, &err), DSV32_E_FORMAT);
	assert_non_null(strstr(err.what, "world size mismatch"));
	assert_non_null(strstr(err.what, "mp4"));
	/* (c) W given and not matching the files */
	const char *in2[1] = {shards[1]};
	dsv32_verify_opts vo = {in2, 1, hf_dir, NULL, false, NULL, NULL, 4};
	assert_int_equal(dsv32_verify_shards(&vo, &res, &err), DSV32_E_FORMAT);
	assert_non_null(strstr(err.what, "world size 4 expected"));
	vo.world = 2;
	assert_int_equal(dsv32_verify_shards(&vo, &res, &err), DSV32_OK);
	dsv32_verify_result_free(&res);
	/* (b) by its content: rank 1 of mp4 renamed as rank 1 of mp2 */
	copy_mp2(dir, sizeof dir, "renamed");
	path_in(src, sizeof src, shards[2], "model1-mp4.safetensors");
	path_in(f, sizeof f, dir, "model1-mp2.safetensors");
	assert_true(conv_copy_file(src, f));
	assert_int_equal(verify(in, 1, hf_dir, &res, &err), DSV32_E_MISMATCH);
	assert_non_null(strstr(err.what, "rank 1"));
	assert_non_null(strstr(err.what, "another world size"));
	assert_false(res.ok);
	dsv32_verify_result_free(&res);
	char out[8192];
	int code = conv_run_cli(out, sizeof out, "verify-shards --shards %s --dense %s", dir, hf_dir);
	if (code != -77)
		assert_int_equal(code, 1);
}

static void test_two_files_claiming_one_rank_are_refused(void **state)
{
	(void)state;
	char a[4300], b[4300], f0[4400], f1[4400], g0[4400];
	copy_mp2(a, sizeof a, "dupa");
	copy_mp2(b, sizeof b, "dupb");
	path_in(f0, sizeof f0, a, "model0-mp2.safetensors");
	path_in(f1, sizeof f1, a, "model1-mp2.safetensors");
	path_in(g0, sizeof g0, b, "model0-mp2.safetensors");
	const char *in[3] = {f0, f1, g0};
	dsv32_verify_result res;
	dsv32_error err = {0};
	assert_int_equal(verify(in, 3, hf_dir, &res, &err), DSV32_E_FORMAT);
	assert_non_null(strstr(err.what, "two files claim rank 0 of mp2"));
	/* The same file named twice is one file. */
	const char *same[3] = {f0, f1, f0};
	assert_int_equal(verify(same, 3, hf_dir, &res, &err), DSV32_OK);
	dsv32_verify_result_free(&res);
}

static void test_output_dir_is_atomic_and_force_replaces(void **state)
{
	(void)state;
	char out[4300], cfg[4400], probe[4400];
	dsv32_error err = {0};
	snprintf(out, sizeof out, "%s/atomic", root);
	path_in(cfg, sizeof cfg, shards[1], "config.json");
	const char *in[1] = {shards[1]};
	assert_int_equal(to_hf(in, 1, cfg, out, DSV32_OUT_KEEP, 0, false, &err), DSV32_OK);
	path_in(probe, sizeof probe, out, "model-00001-of-00001.safetensors");
	assert_true(dsv32_path_exists(probe));
	assert_int_equal(to_hf(in, 1, cfg, out, DSV32_OUT_KEEP, 0, false, &err), DSV32_E_USAGE);
	assert_non_null(strstr(err.what, "exists"));
	assert_int_equal(to_hf(in, 1, cfg, out, DSV32_OUT_KEEP, 0, true, &err), DSV32_OK);
	assert_true(dsv32_path_exists(probe));
	assert_false(conv_dir_has_prefix(root, "atomic.tmp."));
	assert_false(conv_dir_has_prefix(root, "atomic.old."));
	/* --force never deletes an input: out = the shard directory itself is refused. */
	assert_int_equal(to_hf(in, 1, cfg, shards[1], DSV32_OUT_KEEP, 0, true, &err), DSV32_E_USAGE);
	assert_non_null(strstr(err.what, "overlaps the input"));
	path_in(probe, sizeof probe, shards[1], "model0-mp2.safetensors");
	assert_true(dsv32_path_exists(probe));
}

/* Copy the safetensors file src to dst without the tensor `drop` (NULL: keep all) and with an
 * extra F32 [4] tensor `extra` (NULL: none). */
static void copy_shard_edited(const char *src, const char *dst, const char *drop,
			      const char *extra)
{
	dsv32_st_file *f;
	dsv32_st_writer *w;
	int64_t shape[1] = {4};
	float data[4] = {1, 2, 3, 4};
	assert_int_equal(dsv32_st_open(&f, src, NULL), DSV32_OK);
	assert_int_equal(dsv32_st_writer_open(&w, dst, NULL), DSV32_OK);
	for (size_t i = 0; i < dsv32_st_count(f); i++) {
		const dsv32_st_entry *e = dsv32_st_entry_at(f, i);
		if (!drop || strcmp(e->name, drop))
			assert_int_equal(dsv32_st_writer_declare(w, e->name, e->dtype, e->ndim,
								 e->shape, NULL), DSV32_OK);
	}
	if (extra)
		assert_int_equal(dsv32_st_writer_declare(w, extra, DSV32_F32, 1, shape, NULL),
				 DSV32_OK);
	for (size_t i = 0; i < dsv32_st_count(f); i++) {
		const dsv32_st_entry *e = dsv32_st_entry_at(f, i);
		if (!drop || strcmp(e->name, drop))
			assert_int_equal(dsv32_st_writer_write(w, dsv32_st_data(f, e),
							       e->end - e->begin, NULL), DSV32_OK);
	}
	if (extra)
		assert_int_equal(dsv32_st_writer_write(w, data, sizeof data, NULL), DSV32_OK);
	assert_int_equal(dsv32_st_writer_commit(w, NULL), DSV32_OK);
	dsv32_st_close(f);
}

/* A W=1 shard directory under root: shards[0]'s file edited by copy_shard_edited. */
static void edited_mp1(char *dir, size_t len, const char *name, const char *drop,
		       const char *extra)
{
	char src[4400], dst[4400];
	snprintf(dir, len, "%s/%s", root, name);
	assert_int_equal(dsv32_mkdirs(dir, NULL), DSV32_OK);
	path_in(src, sizeof src, shards[0], "model0-mp1.safetensors");
	path_in(dst, sizeof dst, dir, "model0-mp1.safetensors");
	copy_shard_edited(src, dst, drop, extra);
}

static void test_unknown_tensor_is_an_error_or_skipped_and_listed(void **state)
{
	(void)state;
	char dir[4300], out[4300], cfg[4400];
	edited_mp1(dir, sizeof dir, "unknown", NULL, "layers.0.attn.rotary.inv_freq");
	path_in(cfg, sizeof cfg, shards[0], "config.json");
	snprintf(out, sizeof out, "%s/unknown_hf", root);
	const char *in[1] = {dir};
	dsv32_ref_to_hf_opts o = {in, 1, cfg, out, DSV32_OUT_KEEP, 0, {0}, 0};
	dsv32_conv_result r;
	dsv32_error err = {0};
	assert_int_equal(dsv32_convert_ref_to_hf(&o, &r, &err), DSV32_E_NOTFOUND);
	assert_non_null(strstr(err.what, "layers.0.attn.rotary.inv_freq"));
	assert_non_null(strstr(err.what, "model0-mp1.safetensors"));
	o.common.allow_unknown = true;
	assert_int_equal(dsv32_convert_ref_to_hf(&o, &r, &err), DSV32_OK);
	assert_int_equal(r.tensors, 154);
	assert_int_equal(r.n_skipped, 1);
	assert_string_equal(r.skipped[0], "layers.0.attn.rotary.inv_freq");
	dsv32_conv_result_free(&r);
}

/* --allow-unknown skips names the map does not know; it never makes a checkpoint holding none
 * of the model's tensors convertible (issue 14: 100k unrelated tensors wrote 16-byte shards). */
static void test_allow_unknown_still_needs_every_expected_tensor(void **state)
{
	(void)state;
	char dir[4300], f[4400], out[4300], cfg[4400];
	snprintf(dir, sizeof dir, "%s/only_unknown", root);
	assert_int_equal(dsv32_mkdirs(dir, NULL), DSV32_OK);
	path_in(f, sizeof f, dir, "model0-mp1.safetensors");
	dsv32_st_writer *w;
	int64_t shape[1] = {4};
	float data[4] = {1, 2, 3, 4};
	assert_int_equal(dsv32_st_writer_open(&w, f, NULL), DSV32_OK);
	assert_int_equal(dsv32_st_writer_declare(w, "junk.a", DSV32_F32, 1, shape, NULL), DSV32_OK);
	assert_int_equal(dsv32_st_writer_declare(w, "junk.b", DSV32_F32, 1, shape, NULL), DSV32_OK);
	assert_int_equal(dsv32_st_writer_write(w, data, sizeof data, NULL), DSV32_OK);
	assert_int_equal(dsv32_st_writer_write(w, data, sizeof data, NULL), DSV32_OK);
	assert_int_equal(dsv32_st_writer_commit(w, NULL), DSV32_OK);
	path_in(cfg, sizeof cfg, shards[0], "config.json");
	snprintf(out, sizeof out, "%s/only_unknown_hf", root);
	const char *in[1] = {dir};
	dsv32_ref_to_hf_opts o = {in, 1, cfg, out, DSV32_OUT_KEEP, 0, {0}, 0};
	o.common.allow_unknown = true;
	dsv32_conv_result r;
	dsv32_error err = {0};
	assert_int_equal(dsv32_convert_ref_to_hf(&o, &r, &err), DSV32_E_NOTFOUND);
	assert_non_null(strstr(err.what, "154 of 154 tensors the config expects are missing"));
	assert_non_null(strstr(err.what, "model.embed_tokens.weight (reference name embed.weight)"));
	assert_false(dsv32_path_exists(out));
	assert_false(conv_dir_has_prefix(root, "only_unknown_hf.tmp."));
	/* hf-to-ref: the same file as an HF checkpoint */
	char hfdir[4300], hcfg[4400], hsrc[4400];
	snprintf(hfdir, sizeof hfdir, "%s/only_unknown_as_hf", root);
	assert_int_equal(dsv32_mkdirs(hfdir, NULL), DSV32_OK);
	path_in(hcfg, sizeof hcfg, hfdir, "config.json");
	path_in(hsrc, sizeof hsrc, hf_dir, "config.json");
	assert_true(conv_copy_file(hsrc, hcfg));
	path_in(hsrc, sizeof hsrc, hfdir, "model.safetensors");
	assert_true(conv_copy_file(f, hsrc));
	snprintf(out, sizeof out, "%s/only_unknown_ref", root);
	dsv32_hf_to_ref_opts ho = {hfdir, NULL, 1, out, {0}};
	ho.common.allow_unknown = true;
	assert_int_equal(dsv32_convert_hf_to_ref(&ho, &r, &err), DSV32_E_NOTFOUND);
	assert_non_null(strstr(err.what, "tensors the config expects are missing"));
	dsv32_conv_result_free(&r);
	assert_false(dsv32_path_exists(out));
}

/* A checkpoint without lm_head.weight converted both ways before issue 14 (exit 0). */
static void test_missing_expected_tensor_is_refused_both_ways(void **state)
{
	(void)state;
	char dir[4300], out[4300], cfg[4400], src[4400], dst[4400];
	dsv32_error err = {0};
	edited_mp1(dir, sizeof dir, "nohead", "head.weight", NULL);
	path_in(cfg, sizeof cfg, shards[0], "config.json");
	snprintf(out, sizeof out, "%s/nohead_hf", root);
	const char *in[1] = {dir};
	assert_int_equal(to_hf(in, 1, cfg, out, DSV32_OUT_KEEP, 0, false, &err), DSV32_E_NOTFOUND);
	assert_non_null(strstr(err.what, "1 of 154 tensors the config expects are missing: "
					 "lm_head.weight (reference name head.weight)"));
	assert_false(dsv32_path_exists(out));
	snprintf(dir, sizeof dir, "%s/nohead_as_hf", root);
	assert_int_equal(dsv32_mkdirs(dir, NULL), DSV32_OK);
	path_in(src, sizeof src, hf_dir, "config.json");
	path_in(dst, sizeof dst, dir, "config.json");
	assert_true(conv_copy_file(src, dst));
	path_in(src, sizeof src, hf_dir, "model.safetensors");
	path_in(dst, sizeof dst, dir, "model.safetensors");
	copy_shard_edited(src, dst, "lm_head.weight", NULL);
	snprintf(out, sizeof out, "%s/nohead_ref", root);
	assert_int_equal(to_ref(dir, 1, out, &err), DSV32_E_NOTFOUND);
	assert_non_null(strstr(err.what, "lm_head.weight (reference name head.weight)"));
	assert_false(dsv32_path_exists(out));
	char cli[8192];
	int code = conv_run_cli(cli, sizeof cli, "convert hf-to-ref --checkpoint %s --mp 1 --out %s",
				dir, out);
	if (code != -77) {
		assert_int_equal(code, 2);
		assert_non_null(strstr(cli, "lm_head.weight"));
	}
}

/* The golden HF config with key (and key2 unless NULL) set to value, written to root/name. */
static void edited_hf_config(char *path, size_t len, const char *name, const char *key,
			     const char *key2, double value)
{
	char src[4400], *text = NULL;
	size_t n = 0;
	path_in(src, sizeof src, hf_dir, "config.json");
	assert_int_equal(dsv32_read_file(src, 1 << 20, &text, &n, NULL), DSV32_OK);
	cJSON *c = cJSON_Parse(text);
	free(text);
	assert_non_null(c);
	cJSON_ReplaceItemInObject(c, key, cJSON_CreateNumber(value));
	if (key2)
		cJSON_ReplaceItemInObject(c, key2, cJSON_CreateNumber(value));
	text = cJSON_Print(c);
	cJSON_Delete(c);
	snprintf(path, len, "%s/%s", root, name);
	assert_int_equal(dsv32_write_file_atomic(path, text, strlen(text), NULL), DSV32_OK);
	free(text);
}

/* Shapes and sizes that contradict the config are refused before anything is written, the
 * message naming the tensor or the config key. */
static void test_checkpoint_contradicting_config_is_refused(void **state)
{
	(void)state;
	char cfg[4300], out[4300];
	dsv32_error err = {0};
	snprintf(out, sizeof out, "%s/contra_ref", root);
	dsv32_hf_to_ref_opts o = {hf_dir, cfg, 1, out, {0}};
	dsv32_conv_result r;
	edited_hf_config(cfg, sizeof cfg, "vocab2048.json", "vocab_size", NULL, 2048);
	assert_int_equal(dsv32_convert_hf_to_ref(&o, &r, &err), DSV32_E_SHAPE);
	assert_non_null(strstr(err.what, "model.embed_tokens.weight (reference name embed.weight): "
					 "shape [1024, 256], the config expects [2048, 256]"));
	edited_hf_config(cfg, sizeof cfg, "ihd8192.json", "index_head_dim", NULL, 8192);
	assert_int_equal(dsv32_convert_hf_to_ref(&o, &r, &err), DSV32_E_FORMAT);
	assert_non_null(strstr(err.what, "index_head_dim: 8192 exceeds 4096"));
	/* 2^25 heads of 96: every field fits int32, the q_b_proj rows do not */
	edited_hf_config(cfg, sizeof cfg, "heads.json", "num_attention_heads", "num_key_value_heads",
			 1 << 25);
	assert_int_equal(dsv32_convert_hf_to_ref(&o, &r, &err), DSV32_E_FORMAT);
	assert_non_null(strstr(err.what, "n_heads*qk_head_dim: 3221225472 exceeds 2147483647"));
	assert_false(dsv32_path_exists(out));
	assert_false(conv_dir_has_prefix(root, "contra_ref.tmp."));
}

/* The tiny preset widened so that every fp8 scale grid splits at W = 2 (head dims 64 + 64,
 * MoE width 256, 8 experts); tiny itself has single-block scales that only W = 1 keeps whole. */
static char *tiny_fp8_w2_config(void)
{
	cJSON *c = cJSON_Parse(dsv32_preset_find("tiny"));
	assert_non_null(c);
	cJSON_ReplaceItemInObject(c, "qk_nope_head_dim", cJSON_CreateNumber(64));
	cJSON_ReplaceItemInObject(c, "v_head_dim", cJSON_CreateNumber(64));
	cJSON_ReplaceItemInObject(c, "moe_intermediate_size", cJSON_CreateNumber(256));
	cJSON_ReplaceItemInObject(c, "n_routed_experts", cJSON_CreateNumber(8));
	char *text = cJSON_PrintUnformatted(c);
	cJSON_Delete(c);
	return text;
}

/* fp8: weights and weight_scale_inv split together, round trip and verify. */
static void fp8_round_trip(const char *preset, const char *label, int W, char *gen, char *ref,
			   char *cfg, size_t len)
{
	char back[4300], msg[512];
	dsv32_error err = {0};
	snprintf(gen, len, "%s/fp8_%s", root, label);
	snprintf(ref, len, "%s/fp8_%s_mp%d", root, label, W);
	snprintf(back, sizeof back, "%s/fp8_%s_back%d", root, label, W);
	if (dsv32_fixture_write(preset, DSV32_WDTYPE_FP8, 7, gen, 0, false, &err) != DSV32_OK)
		fail_msg("fixture %s: %s", label, err.what);
	if (to_ref(gen, W, ref, &err) != DSV32_OK)
		fail_msg("fp8 %s hf-to-ref W=%d: %s", label, W, err.what);
	char f[4400];
	snprintf(f, sizeof f, "%s/model%d-mp%d.safetensors", ref, W - 1, W);
	dsv32_st_file *sf;
	assert_int_equal(dsv32_st_open(&sf, f, NULL), DSV32_OK);
	const dsv32_st_entry *e = dsv32_st_find(sf, "layers.0.attn.wo.scale");
	const dsv32_st_entry *wo = dsv32_st_find(sf, "layers.0.attn.wo.weight");
	assert_non_null(e);
	assert_non_null(wo);
	assert_int_equal(e->dtype, DSV32_F32);
	assert_int_equal(wo->dtype, DSV32_F8_E4M3);
	assert_int_equal(e->shape[1], (wo->shape[1] + 127) / 128); /* split with its weight */
	dsv32_st_close(sf);
	snprintf(cfg, len, "%s/config.json", ref);
	const char *in[1] = {ref};
	if (to_hf(in, 1, cfg, back, DSV32_OUT_KEEP, 0, false, &err) != DSV32_OK)
		fail_msg("fp8 %s ref-to-hf W=%d: %s", label, W, err.what);
	int bad = conv_compare_ckpts(gen, back, msg, sizeof msg);
	if (bad)
		fail_msg("fp8 %s W=%d: %d differ, first %s", label, W, bad, msg);
	dsv32_verify_result res;
	if (verify(in, 1, gen, &res, &err) != DSV32_OK)
		fail_msg("fp8 %s verify W=%d: %s", label, W, err.what);
	dsv32_verify_result_free(&res);
}

/* bf16 dequantization checked against an independent decode of the generator's file. */
static void test_fp8_round_trip_and_bf16_dequantization(void **state)
{
	(void)state;
	char gen[4300], ref[4300], deq[4300], cfg[4400];
	dsv32_error err = {0};
	fp8_round_trip("tiny", "tiny", 1, gen, ref, cfg, sizeof gen);
	char *wide = tiny_fp8_w2_config();
	fp8_round_trip(wide, "wide", 2, gen, ref, cfg, sizeof gen);
	free(wide);
	/* --dtype bf16 from the W=2 shards. */
	snprintf(deq, sizeof deq, "%s/fp8_bf16", root);
	const char *in[1] = {ref};
	if (to_hf(in, 1, cfg, deq, DSV32_OUT_BF16, 0, false, &err) != DSV32_OK)
		fail_msg("bf16 ref-to-hf: %s", err.what);
	dsv32_ckpt *g, *d;
	assert_int_equal(dsv32_ckpt_open(&g, gen, NULL), DSV32_OK);
	assert_int_equal(dsv32_ckpt_open(&d, deq, NULL), DSV32_OK);
	size_t n_fp8 = 0;
	for (size_t i = 0; i < dsv32_ckpt_count(g); i++) {
		const dsv32_st_file *gf, *df;
		const dsv32_st_entry *ge = dsv32_ckpt_entry_at(g, i, &gf);
		const dsv32_st_entry *de = dsv32_ckpt_find(d, ge->name, &df);
		if (strstr(ge->name, "weight_scale_inv")) {
			assert_null(de); /* scales are folded into their weights */
			continue;
		}
		assert_non_null(de);
		if (ge->dtype != DSV32_F8_E4M3) {
			assert_int_equal(de->dtype, ge->dtype); /* F32 stays F32, BF16 stays BF16 */
			assert_memory_equal(dsv32_st_data(gf, ge), dsv32_st_data(df, de), ge->end - ge->begin);
			continue;
		}
		n_fp8++;
		char sname[256];
		snprintf(sname, sizeof sname, "%.*s_scale_inv", (int)strlen(ge->name), ge->name);
		const dsv32_st_file *sf;
		const dsv32_st_entry *se = dsv32_ckpt_find(g, sname, &sf);
		assert_non_null(se);
		assert_int_equal(de->dtype, DSV32_BF16);
		const uint8_t *w8 = dsv32_st_data(gf, ge);
		const uint8_t *sb = dsv32_st_data(sf, se);
		const uint8_t *ob = dsv32_st_data(df, de);
		int64_t R = ge->shape[0], C = ge->shape[1], SC = se->shape[1];
		for (int64_t r = 0; r < R; r++) {
			for (int64_t c = 0; c < C; c++) {
				/* oracle: decode e4m3 by its definition, in double */
				uint8_t b = w8[r * C + c];
				int s = b >> 7, ex = (b >> 3) & 15, m = b & 7;
				double v = ex ? ldexp(1.0 + m / 8.0, ex - 7) : ldexp(m / 8.0, -6);
				if (s)
					v = -v;
				float sc;
				memcpy(&sc, sb + 4 * ((r / 128) * SC + c / 128), 4);
				double want = v * sc; /* exact: power-of-two scale, 4 significant bits */
				uint16_t got;
				memcpy(&got, ob + 2 * (r * C + c), 2);
				uint32_t bits = (uint32_t)got << 16;
				float gf32;
				memcpy(&gf32, &bits, 4);
				if ((double)gf32 != want)
					fail_msg("%s[%lld,%lld]: %g, expected %g", ge->name, (long long)r,
						 (long long)c, (double)gf32, want);
			}
		}
	}
	assert_true(n_fp8 > 10);
	dsv32_ckpt_close(g);
	dsv32_ckpt_close(d);
}

static void test_cli_json_output_is_parseable(void **state)
{
	(void)state;
	char out[8192], dir[4300];
	snprintf(dir, sizeof dir, "%s/cli_mp4", root);
	int code = conv_run_cli(out, sizeof out, "convert hf-to-ref --checkpoint %s --mp 4 --out %s --json",
				hf_dir, dir);
	if (code == -77)
		skip();
	assert_int_equal(code, 0);
	assert_true(out[0] == '{');
	assert_non_null(strstr(out, "\"ok\":true"));
	assert_non_null(strstr(out, "\"tensors\":328"));
	code = conv_run_cli(out, sizeof out, "convert hf-to-ref --checkpoint %s --mp 4 --out %s --json",
			    hf_dir, dir);
	assert_int_equal(code, 2);
	assert_non_null(strstr(out, "\"ok\":false"));
	code = conv_run_cli(out, sizeof out, "convert sideways");
	assert_int_equal(code, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hf_to_ref_reproduces_deepseek_convert_py),
		cmocka_unit_test(test_hf_to_ref_refuses_world_not_dividing_heads),
		cmocka_unit_test(test_round_trip_is_byte_identical_and_verifies),
		cmocka_unit_test(test_verify_accepts_deepseek_own_shards),
		cmocka_unit_test(test_verify_catches_flipped_byte),
		cmocka_unit_test(test_replicated_tensor_differing_on_one_rank_is_named),
		cmocka_unit_test(test_missing_rank_is_an_input_error),
		cmocka_unit_test(test_shard_from_another_world_size_is_caught),
		cmocka_unit_test(test_two_files_claiming_one_rank_are_refused),
		cmocka_unit_test(test_output_dir_is_atomic_and_force_replaces),
		cmocka_unit_test(test_unknown_tensor_is_an_error_or_skipped_and_listed),
		cmocka_unit_test(test_allow_unknown_still_needs_every_expected_tensor),
		cmocka_unit_test(test_missing_expected_tensor_is_refused_both_ways),
		cmocka_unit_test(test_checkpoint_contradicting_config_is_refused),
		cmocka_unit_test(test_fp8_round_trip_and_bf16_dequantization),
		cmocka_unit_test(test_cli_json_output_is_parseable),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
