/* test_fixture_sparse.c: sparse checkpoints (fixture --sparse, dsv32_st_writer_skip) and the
 * full-size v3.2 preset: the sparse files equal the files with the zeros written, byte for byte;
 * the v3.2 preset is the published 671B config and validates at W = 1..16; its tensor list has
 * the real count (computed here from the architecture); a sparse full-size write is fast and
 * takes almost no disk. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/config.h"
#include "core/fsutil.h"
#include "core/hf_names.h"
#include "core/safetensors.h"
#include "fixtures/generator.h"
#include "fixtures/presets.h"
#include "tests/support/test_common.h"

static char root[256];

static int setup(void **state)
{
	(void)state;
	snprintf(root, sizeof root, "/tmp/dsv32_test_fixture_sparse.XXXXXX");
	return mkdtemp(root) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	dsv32_remove_tree(root, NULL);
	return 0;
}

static unsigned char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		fail_msg("%s: cannot open", path);
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	unsigned char *p = malloc((size_t)n + 1);
	assert_non_null(p);
	assert_int_equal(fread(p, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return p;
}

static void assert_same_file(const char *a, const char *b)
{
	size_t na, nb;
	unsigned char *pa = slurp(a, &na), *pb = slurp(b, &nb);
	if (na != nb || memcmp(pa, pb, na) != 0)
		fail_msg("%s (%zu bytes) differs from %s (%zu bytes)", a, na, b, nb);
	free(pa);
	free(pb);
}

static bool all_zero(const void *p, size_t n)
{
	const unsigned char *b = p;
	for (size_t i = 0; i < n; i++)
		if (b[i])
			return false;
	return true;
}

/* ---- dsv32_st_writer_skip ---- */
static void write_pattern(const char *path, bool use_skip, uint64_t skip_bytes)
{
	dsv32_error err = {0};
	dsv32_st_writer *w;
	const int64_t s_small[1] = {3}, s_big[1] = {(int64_t)skip_bytes / 4};
	assert_int_equal(dsv32_st_writer_open(&w, path, &err), DSV32_OK);
	assert_int_equal(dsv32_st_writer_declare(w, "a", DSV32_F32, 1, s_small, &err), DSV32_OK);
	assert_int_equal(dsv32_st_writer_declare(w, "hole", DSV32_F32, 1, s_big, &err), DSV32_OK);
	assert_int_equal(dsv32_st_writer_declare(w, "b", DSV32_F32, 1, s_small, &err), DSV32_OK);
	assert_int_equal(dsv32_st_writer_declare(w, "tail", DSV32_F32, 1, s_big, &err), DSV32_OK);
	const float v[3] = {1.0f, -2.0f, 3.5f};
	unsigned char *zeros = calloc(1, skip_bytes);
	assert_non_null(zeros);
	assert_int_equal(dsv32_st_writer_write(w, v, sizeof v, &err), DSV32_OK);
	if (use_skip)
		assert_int_equal(dsv32_st_writer_skip(w, skip_bytes, &err), DSV32_OK);
	else
		assert_int_equal(dsv32_st_writer_write(w, zeros, skip_bytes, &err), DSV32_OK);
	assert_int_equal(dsv32_st_writer_write(w, v, sizeof v, &err), DSV32_OK);
	if (use_skip) /* the trailing hole: commit must extend the file over it */
		assert_int_equal(dsv32_st_writer_skip(w, skip_bytes, &err), DSV32_OK);
	else
		assert_int_equal(dsv32_st_writer_write(w, zeros, skip_bytes, &err), DSV32_OK);
	assert_int_equal(dsv32_st_writer_commit(w, &err), DSV32_OK);
	free(zeros);
}

static void test_writer_skip_equals_writing_zeros(void **state)
{
	(void)state;
	char a[300], b[300];
	snprintf(a, sizeof a, "%s/zeros.safetensors", root);
	snprintf(b, sizeof b, "%s/skip.safetensors", root);
	write_pattern(a, false, 4u << 20);
	write_pattern(b, true, 4u << 20);
	assert_same_file(a, b);
	/* the file reads back: the hole is zeros, the data after it intact */
	dsv32_error err = {0};
	dsv32_st_file *f;
	assert_int_equal(dsv32_st_open(&f, b, &err), DSV32_OK);
	const dsv32_st_entry *e = dsv32_st_find(f, "hole");
	assert_non_null(e);
	assert_true(all_zero(dsv32_st_data(f, e), e->end - e->begin));
	const float *pb = dsv32_st_data(f, dsv32_st_find(f, "b"));
	assert_true(pb[0] == 1.0f && pb[1] == -2.0f && pb[2] == 3.5f);
	dsv32_st_close(f);

	/* a skip that runs past the declared bytes fails and removes the temporary */
	dsv32_st_writer *w;
	const int64_t s[1] = {4};
	char c[300];
	snprintf(c, sizeof c, "%s/bad.safetensors", root);
	assert_int_equal(dsv32_st_writer_open(&w, c, &err), DSV32_OK);
	assert_int_equal(dsv32_st_writer_declare(w, "x", DSV32_F32, 1, s, &err), DSV32_OK);
	assert_int_equal(dsv32_st_writer_skip(w, 17, &err), DSV32_E_USAGE);
	assert_non_null(strstr(err.what, "past the 16 declared bytes"));
	assert_int_equal(dsv32_st_writer_commit(w, &err), DSV32_E_USAGE);
	assert_false(dsv32_path_exists(c));
}

/* ---- the sparse fixture on the tiny preset, with a low hole threshold ---- */
static void test_sparse_tiny_equals_dense_zeros(void **state)
{
	(void)state;
	const uint64_t thr = 16384; /* holes: every matrix of >= 16 KiB, embed and head */
	char sp[300], zr[300], dn[300], pa[600], pb[600];
	snprintf(sp, sizeof sp, "%s/tiny_sparse", root);
	snprintf(zr, sizeof zr, "%s/tiny_zeros", root);
	snprintf(dn, sizeof dn, "%s/tiny_dense", root);
	dsv32_error err = {0};
	dsv32_fixture_opts holes = {.sparse = true, .hole_bytes = thr};
	dsv32_fixture_opts zeros = {.sparse = true, .hole_bytes = thr, .holes_as_zeros = true};
	const uint64_t shard = 2000000;
	if (dsv32_fixture_write_opts("tiny", DSV32_WDTYPE_FP8, 3, sp, shard, false, &holes, &err) ==
	    DSV32_E_UNSUPPORTED)
		skip(); /* the filesystem does not do holes */
	assert_int_equal(err.code, DSV32_OK);
	assert_int_equal(
		dsv32_fixture_write_opts("tiny", DSV32_WDTYPE_FP8, 3, zr, shard, false, &zeros, &err),
		DSV32_OK);
	assert_int_equal(dsv32_fixture_write("tiny", DSV32_WDTYPE_FP8, 3, dn, shard, false, &err),
			 DSV32_OK);
	DIR *d = opendir(sp);
	assert_non_null(d);
	struct dirent *de;
	int nfiles = 0, nshards = 0;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(pa, sizeof pa, "%s/%s", sp, de->d_name);
		snprintf(pb, sizeof pb, "%s/%s", zr, de->d_name);
		assert_same_file(pa, pb);
		nfiles++;
		nshards += strstr(de->d_name, ".safetensors") && !strstr(de->d_name, ".json");
	}
	closedir(d);
	assert_true(nshards >= 2); /* a sharded write, with its index */
	assert_int_equal(nfiles, nshards + 2);
	assert_int_equal(tc_count_dir_entries(zr), tc_count_dir_entries(sp));
	/* tensor by tensor against the ordinary (dense, random) write: below the threshold the
	 * same bytes, at or above it zeros; an fp8 hole's scales are the all-zero block's 2^-22 */
	dsv32_ckpt *cs, *cd;
	assert_int_equal(dsv32_ckpt_open(&cs, sp, &err), DSV32_OK);
	assert_int_equal(dsv32_ckpt_open(&cd, dn, &err), DSV32_OK);
	assert_int_equal(dsv32_ckpt_count(cs), dsv32_ckpt_count(cd));
	size_t n_holes = 0, n_drawn = 0, n_hole_scales = 0;
	for (size_t i = 0; i < dsv32_ckpt_count(cs); i++) {
		const dsv32_st_file *fs, *fd;
		const dsv32_st_entry *es = dsv32_ckpt_entry_at(cs, i, &fs);
		const dsv32_st_entry *ed = dsv32_ckpt_find(cd, es->name, &fd);
		assert_non_null(ed);
		uint64_t nb = es->end - es->begin;
		assert_int_equal(nb, ed->end - ed->begin);
		const void *ps = dsv32_st_data(fs, es), *pd = dsv32_st_data(fd, ed);
		size_t L = strlen(es->name);
		bool is_scale = L > 16 && strcmp(es->name + L - 16, "weight_scale_inv") == 0;
		char wname[256];
		if (is_scale) {
			snprintf(wname, sizeof wname, "%.*s", (int)(L - 10), es->name); /* "...weight" */
			const dsv32_st_entry *w = dsv32_ckpt_find(cs, wname, NULL);
			assert_non_null(w);
			if (w->end - w->begin >= thr) {
				const float *sc = ps;
				for (uint64_t k = 0; k < nb / 4; k++)
					assert_true(sc[k] == 0x1p-22f);
				n_hole_scales++;
				continue;
			}
		}
		if (!is_scale && nb >= thr) {
			if (!all_zero(ps, nb))
				fail_msg("%s: a hole that is not zeros", es->name);
			n_holes++;
		} else {
			if (memcmp(ps, pd, nb) != 0)
				fail_msg("%s: %llu bytes below the threshold differ from the dense write",
					 es->name, (unsigned long long)nb);
			n_drawn++;
		}
	}
	dsv32_ckpt_close(cs);
	dsv32_ckpt_close(cd);
	assert_true(n_holes >= 20 && n_drawn >= 20 && n_hole_scales >= 10);
	/* and the holes are holes: less disk than bytes */
	uint64_t app, alloc;
	int nf;
	assert_int_equal(dsv32_fixture_disk_usage(sp, &app, &alloc, &nf, &err), DSV32_OK);
	assert_int_equal(nf, nfiles);
	uint64_t app_z, alloc_z;
	assert_int_equal(dsv32_fixture_disk_usage(zr, &app_z, &alloc_z, &nf, &err), DSV32_OK);
	assert_int_equal(app, app_z);
	assert_true(alloc < alloc_z);
}

/* ---- the v3.2 preset ---- */
typedef struct {
	int64_t count;
	uint64_t bytes;
} tally;

/* A matrix [out, in] (fp8: 1 byte per element plus its F32 scale grid; bf16: 2 bytes). */
static void mat(tally *t, int64_t out, int64_t in, bool fp8)
{
	t->count += fp8 ? 2 : 1;
	t->bytes += (uint64_t)(out * in) * (fp8 ? 1 : 2);
	if (fp8)
		t->bytes += (uint64_t)(((out + 127) / 128) * ((in + 127) / 128)) * 4;
}

static void vec(tally *t, int64_t n, int bytes_per)
{
	t->count++;
	t->bytes += (uint64_t)n * (uint64_t)bytes_per;
}

/* One decoder layer of the published architecture (docs/spec/checkpoints.md §2), written from the
 * model's structure, not from core/hf_names.c. */
static void layer(tally *t, bool moe)
{
	const int64_t D = 7168, H = 128, qr = 1536, kvr = 512, nope = 128, rope = 64, vd = 128;
	const int64_t ih = 64, id = 128, E = 256, mi = 2048, inter = 18432;
	vec(t, D, 4);                           /* input_layernorm */
	vec(t, D, 4);                           /* post_attention_layernorm */
	mat(t, qr, D, true);                    /* q_a_proj */
	vec(t, qr, 4);                          /* q_a_layernorm */
	mat(t, H * (nope + rope), qr, true);    /* q_b_proj */
	mat(t, kvr + rope, D, true);            /* kv_a_proj_with_mqa */
	vec(t, kvr, 4);                         /* kv_a_layernorm */
	mat(t, H * (nope + vd), kvr, true);     /* kv_b_proj */
	mat(t, D, H * vd, true);                /* o_proj */
	mat(t, ih * id, qr, true);              /* indexer wq_b */
	mat(t, id, D, true);                    /* indexer wk */
	vec(t, id, 4);                          /* indexer k_norm weight */
	vec(t, id, 4);                          /* indexer k_norm bias */
	mat(t, ih, D, false);                   /* indexer weights_proj (bf16) */
	if (!moe) {
		mat(t, inter, D, true);
		mat(t, inter, D, true);
		mat(t, D, inter, true);
		return;
	}
	mat(t, E, D, false); /* router gate (bf16) */
	vec(t, E, 4);        /* e_score_correction_bias */
	for (int64_t e = 0; e < E + 1; e++) { /* routed experts and the one shared expert */
		mat(t, mi, D, true);
		mat(t, mi, D, true);
		mat(t, D, mi, true);
	}
}

static void test_v32_preset_is_the_671b_config(void **state)
{
	(void)state;
	const char *json = dsv32_preset_find("v3.2");
	assert_non_null(json);
	dsv32_config c;
	dsv32_error err = {0};
	assert_int_equal(dsv32_config_from_hf_json(&c, json, "v3.2", &err), DSV32_OK);
	/* config_671B_v3.2.json / DeepSeek-V3.2-Exp config.json (docs/spec/checkpoints.md §3, §4.1) */
	assert_int_equal(c.vocab_size, 129280);
	assert_int_equal(c.dim, 7168);
	assert_int_equal(c.inter_dim, 18432);
	assert_int_equal(c.moe_inter_dim, 2048);
	assert_int_equal(c.n_layers, 61);
	assert_int_equal(c.n_dense_layers, 3);
	assert_int_equal(c.n_heads, 128);
	assert_int_equal(c.n_routed_experts, 256);
	assert_int_equal(c.n_shared_experts, 1);
	assert_int_equal(c.n_activated_experts, 8);
	assert_int_equal(c.n_expert_groups, 8);
	assert_int_equal(c.n_limited_groups, 4);
	assert_true(c.route_scale == 2.5);
	assert_int_equal(c.q_lora_rank, 1536);
	assert_int_equal(c.kv_lora_rank, 512);
	assert_int_equal(c.qk_nope_head_dim, 128);
	assert_int_equal(c.qk_rope_head_dim, 64);
	assert_int_equal(c.v_head_dim, 128);
	assert_int_equal(c.index_n_heads, 64);
	assert_int_equal(c.index_head_dim, 128);
	assert_int_equal(c.index_topk, 2048);
	assert_int_equal(c.num_nextn_predict_layers, 1);
	assert_int_equal(c.original_seq_len, 4096);
	assert_true(c.rope_factor == 40.0 && c.beta_fast == 32.0 && c.beta_slow == 1.0);
	assert_true(c.mscale == 1.0 && c.mscale_all_dim == 1.0);
	assert_int_equal(c.max_position_embeddings, 163840);
	assert_true(c.rms_norm_eps == 1e-6);
	assert_true(c.has_quant && c.dtype == DSV32_WDTYPE_FP8 && c.scale_fmt_ue8m0);
	assert_int_equal(c.quant_block[0], 128);
	assert_int_equal(c.quant_block[1], 128);
	const int ws[] = {1, 2, 4, 8, 16};
	for (size_t i = 0; i < sizeof ws / sizeof ws[0]; i++)
		if (dsv32_config_validate(&c, ws[i], &err) != DSV32_OK)
			fail_msg("v3.2 at W = %d: %s", ws[i], err.what);

	/* the tensor count and bytes, from the architecture */
	tally main = {0}, mtp = {0};
	for (int L = 0; L < 61; L++)
		layer(&main, L >= 3);
	mat(&main, 129280, 7168, false); /* embed_tokens */
	mat(&main, 129280, 7168, false); /* lm_head */
	vec(&main, 7168, 4);             /* model.norm */
	layer(&mtp, true);               /* layer 61: a full MoE layer */
	mat(&mtp, 129280, 7168, false);  /* embed_tokens */
	vec(&mtp, 7168, 4);              /* enorm */
	vec(&mtp, 7168, 4);              /* hnorm */
	mat(&mtp, 7168, 2 * 7168, false); /* eh_proj */
	vec(&mtp, 7168, 4);              /* shared_head.norm */
	mat(&mtp, 129280, 7168, false);  /* shared_head.head */
	assert_int_equal(main.count, 90854); /* docs/spec/checkpoints.md §2.10 */
	assert_int_equal(mtp.count, 1571);
	assert_int_equal(dsv32_hf_expected_count(&c, true), main.count);
	dsv32_hf_tensor_list l;
	assert_int_equal(dsv32_fixture_tensor_list(&c, true, &l, &err), DSV32_OK);
	assert_int_equal((int64_t)l.n, main.count + mtp.count);
	uint64_t bytes = 0;
	size_t n_mtp = 0;
	for (size_t i = 0; i < l.n; i++) {
		bytes += (uint64_t)dsv32_shape_numel(l.v[i].ndim, l.v[i].shape) *
			 dsv32_dtype_size(l.v[i].dtype);
		n_mtp += dsv32_hf_is_mtp_name(&c, l.v[i].name);
	}
	assert_int_equal(n_mtp, (size_t)mtp.count);
	assert_int_equal(bytes, main.bytes + mtp.bytes);
	assert_true(bytes > 680e9 && bytes < 700e9); /* "~690 GB" */
	dsv32_hf_tensor_list_free(&l);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void test_v32_sparse_write_full_size(void **state)
{
	(void)state;
	dsv32_error err = {0};
	if (dsv32_fixture_fs_keeps_holes(root, &err) != 1)
		skip();
	char out[300];
	snprintf(out, sizeof out, "%s/v32", root);
	dsv32_fixture_opts o = {.sparse = true};
	double t0 = now_s();
	assert_int_equal(dsv32_fixture_write_opts("v3.2", DSV32_WDTYPE_FP8, 0, out, 5000000000ull,
						  false, &o, &err),
			 DSV32_OK);
	double dt = now_s() - t0;
	uint64_t app, alloc;
	int nf;
	assert_int_equal(dsv32_fixture_disk_usage(out, &app, &alloc, &nf, &err), DSV32_OK);
	print_message("v3.2 sparse: %d files, %.1f GB apparent, %.1f MB allocated, %.1f s\n", nf,
		      (double)app / 1e9, (double)alloc / 1e6, dt);
	assert_true(app > 689e9);         /* the real size: tensors + headers + json */
	assert_true(alloc < app / 500);   /* < 0.2 %: holes stayed holes (measured 0.07 %) */
	assert_true(nf > 130);            /* ~5 GB shards */
	assert_true(dt < 300.0);          /* a dense write of 690 GB could not finish */
	dsv32_ckpt *ck;
	assert_int_equal(dsv32_ckpt_open(&ck, out, &err), DSV32_OK);
	assert_int_equal(dsv32_ckpt_count(ck), 92425);
	const dsv32_st_file *f;
	const dsv32_st_entry *e =
		dsv32_ckpt_find(ck, "model.layers.61.mlp.experts.255.down_proj.weight", &f);
	assert_non_null(e);
	assert_int_equal(e->shape[0], 7168);
	assert_int_equal(e->shape[1], 2048);
	assert_true(all_zero(dsv32_st_data(f, e), 4096));
	e = dsv32_ckpt_find(ck, "model.layers.60.input_layernorm.weight", &f);
	assert_non_null(e);
	assert_false(all_zero(dsv32_st_data(f, e), e->end - e->begin)); /* small: drawn */
	dsv32_ckpt_close(ck);
	dsv32_remove_tree(out, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_writer_skip_equals_writing_zeros),
		cmocka_unit_test(test_sparse_tiny_equals_dense_zeros),
		cmocka_unit_test(test_v32_preset_is_the_671b_config),
		cmocka_unit_test(test_v32_sparse_write_full_size),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
