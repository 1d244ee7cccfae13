/* test_tapfile.c: reading the golden recording as a tap file, and the dump round trip
 * (safetensors and HDF5). */
#include <hdf5.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "compare/tapfile.h"
#include "core/fsutil.h"
#include "core/safetensors.h"

static const char *golden(char *buf, size_t len, const char *name)
{
	const char *src = getenv("DSV32_SOURCE_DIR");
	snprintf(buf, len, "%s/fixtures/golden/ref_tiny/%s", src ? src : DSV32_SOURCE_DIR, name);
	return buf;
}

static void test_golden_recording_reads_as_tap_file(void **state)
{
	(void)state;
	char path[512];
	dsv32_tapfile tf;
	dsv32_error err = {0};
	assert_int_equal(dsv32_tapfile_open(&tf, golden(path, sizeof path, "golden_mp1.safetensors"), &err),
			 DSV32_OK);
	assert_int_equal(tf.n_steps, 5);
	assert_int_equal(tf.batch, 2);
	assert_int_equal(tf.seqlen[0], 24);
	assert_int_equal(tf.start_pos[0], 0);
	for (int s = 1; s < 5; s++) {
		assert_int_equal(tf.seqlen[s], 1);
		assert_int_equal(tf.start_pos[s], 23 + s);
	}
	dsv32_tensor t;
	assert_int_equal(dsv32_tapfile_get(&tf, 0, "layers.1.attn.q_rope", &t, &err), DSV32_OK);
	assert_int_equal(t.dtype, DSV32_BF16);
	assert_int_equal(t.ndim, 4);
	assert_int_equal(t.shape[3], 64);
	assert_int_equal(dsv32_tapfile_get(&tf, 0, "logits", &t, &err), DSV32_OK);
	assert_int_equal(t.dtype, DSV32_F32);
	assert_int_equal(dsv32_tapfile_get(&tf, 2, "no.such.tap", &t, &err), DSV32_E_NOTFOUND);
	size_t n = 0;
	const char *tap;
	while (dsv32_tapfile_tap_at(&tf, 3, n, &tap, &t))
		n++;
	assert_true(n > 40); /* every tap of 3 layers plus embed/final_norm/logits */
	dsv32_tapfile_close(&tf);
}

/* A producer may lay an I64 tap out after an odd count of F32 values: the reader hands out
 * aligned data all the same (the comparisons read it as int64_t[]), with the values intact. */
static void test_unaligned_tensors_are_read_aligned(void **state)
{
	(void)state;
	char path[] = "/tmp/dsv32_unaligned_XXXXXX.safetensors";
	int fd = mkstemps(path, 12);
	assert_true(fd >= 0);
	close(fd);
	const float one[1] = {1.5f};
	const int64_t ids[3] = {5, 17, -42};
	int64_t s1[1] = {1}, s3[2] = {1, 3};
	dsv32_st_writer *w;
	assert_int_equal(dsv32_st_writer_open(&w, path, NULL), DSV32_OK);
	assert_int_equal(dsv32_st_writer_declare(w, "step0.odd", DSV32_F32, 1, s1, NULL), DSV32_OK);
	assert_int_equal(dsv32_st_writer_declare(w, "step0.input_ids", DSV32_I64, 2, s3, NULL),
			 DSV32_OK);
	assert_int_equal(dsv32_st_writer_write(w, one, sizeof one, NULL), DSV32_OK);
	assert_int_equal(dsv32_st_writer_write(w, ids, sizeof ids, NULL), DSV32_OK);
	assert_int_equal(dsv32_st_writer_commit(w, NULL), DSV32_OK);
	dsv32_tapfile tf;
	dsv32_error err = {0};
	assert_int_equal(dsv32_tapfile_open(&tf, path, &err), DSV32_OK);
	dsv32_tensor t;
	assert_int_equal(dsv32_tapfile_get(&tf, 0, "input_ids", &t, &err), DSV32_OK);
	assert_int_equal((uintptr_t)t.data % sizeof(int64_t), 0);
	assert_memory_equal(t.data, ids, sizeof ids);
	assert_int_equal(dsv32_tapfile_get(&tf, 0, "odd", &t, &err), DSV32_OK);
	assert_memory_equal(t.data, one, sizeof one);
	dsv32_tapfile_close(&tf);
	unlink(path);
}

/* Dropping an entry frees it, keeps the others in order and their byte count right. */
static void test_tapstore_drop(void **state)
{
	(void)state;
	const float v[4] = {1, 2, 3, 4};
	int64_t shape[1] = {4};
	dsv32_tensor t = dsv32_tensor_view((void *)v, DSV32_F32, 1, shape);
	dsv32_tapstore s;
	dsv32_tapstore_init(&s);
	const char *names[3] = {"a", "b", "c"};
	for (int i = 0; i < 3; i++)
		assert_int_equal(dsv32_tapstore_put(&s, names[i], &t, NULL), DSV32_OK);
	dsv32_tapstore_drop(&s, "b");
	dsv32_tapstore_drop(&s, "not there");
	assert_int_equal(s.n, 2);
	assert_string_equal(s.e[0].name, "a");
	assert_string_equal(s.e[1].name, "c");
	assert_int_equal(s.bytes, 2 * sizeof v);
	assert_null(dsv32_tapstore_get(&s, "b"));
	assert_memory_equal(dsv32_tapstore_get(&s, "c")->t.data, v, sizeof v);
	dsv32_tapstore_free(&s);
}

static void test_non_recording_is_rejected(void **state)
{
	(void)state;
	char path[512];
	dsv32_tapfile tf;
	dsv32_error err = {0};
	assert_int_equal(dsv32_tapfile_open(&tf, golden(path, sizeof path, "hf/model.safetensors"), &err),
			 DSV32_E_FORMAT);
	assert_non_null(strstr(err.what, "not a tap recording"));
}

static void test_dump_round_trip_safetensors_and_hdf5(void **state)
{
	(void)state;
	char dir[] = "/tmp/dsv32_tapfile_XXXXXX";
	assert_non_null(mkdtemp(dir));
	dsv32_tapstore s;
	dsv32_tapstore_init(&s);
	int64_t ids[6] = {5, 17, 42, 7, 8, 9}, shp_ids[2] = {2, 3}, sp[1] = {0}, one = 1;
	uint16_t h[6];
	for (int i = 0; i < 6; i++)
		h[i] = dsv32_f32_to_bf16(0.5f * (float)i - 1.0f);
	int64_t shp_h[3] = {2, 3, 1};
	dsv32_tensor t_ids = dsv32_tensor_view(ids, DSV32_I64, 2, shp_ids);
	dsv32_tensor t_sp = dsv32_tensor_view(sp, DSV32_I64, 1, &one);
	dsv32_tensor t_h = dsv32_tensor_view(h, DSV32_BF16, 3, shp_h);
	assert_int_equal(dsv32_tapstore_put(&s, "step0.input_ids", &t_ids, NULL), DSV32_OK);
	assert_int_equal(dsv32_tapstore_put(&s, "step0.start_pos", &t_sp, NULL), DSV32_OK);
	assert_int_equal(dsv32_tapstore_put(&s, "step0.embed", &t_h, NULL), DSV32_OK);
	const char *keys[] = {"producer"}, *vals[] = {"test_tapfile"};
	char p1[256], p2[256];
	snprintf(p1, sizeof p1, "%s/taps.safetensors", dir);
	snprintf(p2, sizeof p2, "%s/taps.h5", dir);
	assert_int_equal(dsv32_tapfile_write(&s, p1, keys, vals, 1, NULL), DSV32_OK);
	assert_int_equal(dsv32_tapfile_write_h5(&s, p2, keys, vals, 1, NULL), DSV32_OK);
	dsv32_tapfile tf;
	assert_int_equal(dsv32_tapfile_open(&tf, p1, NULL), DSV32_OK);
	assert_int_equal(tf.n_steps, 1);
	assert_int_equal(tf.seqlen[0], 3);
	dsv32_tensor back;
	assert_int_equal(dsv32_tapfile_get(&tf, 0, "embed", &back, NULL), DSV32_OK);
	assert_memory_equal(back.data, h, sizeof h);
	assert_string_equal(dsv32_st_metadata(tf.f, "producer"), "test_tapfile");
	dsv32_tapfile_close(&tf);
	/* HDF5: the bf16 tap comes back as exact F32 values with its dtype attribute */
	hid_t f = H5Fopen(p2, H5F_ACC_RDONLY, H5P_DEFAULT);
	assert_true(f >= 0);
	hid_t ds = H5Dopen2(f, "step0/embed", H5P_DEFAULT);
	assert_true(ds >= 0);
	float vals_f[6];
	assert_true(H5Dread(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, vals_f) >= 0);
	for (int i = 0; i < 6; i++)
		assert_true(vals_f[i] == dsv32_bf16_to_f32(h[i]));
	H5Dclose(ds);
	H5Fclose(f);
	/* and it reads back as a recording, with the recorded dtype restored exactly */
	assert_int_equal(dsv32_tapfile_open(&tf, p2, NULL), DSV32_OK);
	assert_int_equal(tf.n_steps, 1);
	assert_int_equal(tf.seqlen[0], 3);
	assert_int_equal(tf.start_pos[0], 0);
	assert_int_equal(dsv32_tapfile_get(&tf, 0, "embed", &back, NULL), DSV32_OK);
	assert_int_equal(back.dtype, DSV32_BF16);
	assert_memory_equal(back.data, h, sizeof h);
	dsv32_tapfile_close(&tf);
	dsv32_tapstore_free(&s);
	assert_int_equal(dsv32_remove_tree(dir, NULL), DSV32_OK);
}

/* A comparison's dump (names "a/step{s}.{tap}", "b/...") in both forms: HDF5 nests the side
 * groups (a/step0/embed) and reads them back under the same names; a name of neither form is
 * refused (nothing is left on disk). */
static void test_side_prefixed_dump_round_trip(void **state)
{
	(void)state;
	char dir[] = "/tmp/dsv32_tf_side_XXXXXX", h5[64], st[64];
	assert_non_null(mkdtemp(dir));
	snprintf(h5, sizeof h5, "%s/d.h5", dir);
	snprintf(st, sizeof st, "%s/d.safetensors", dir);
	dsv32_tapstore s;
	dsv32_tapstore_init(&s);
	int64_t shape[2] = {2, 3};
	dsv32_tensor t;
	assert_int_equal(dsv32_tensor_alloc(&t, DSV32_BF16, 2, shape, NULL), DSV32_OK);
	memset(t.data, 0x3f, dsv32_tensor_nbytes(&t));
	const char *names[] = {"a/step0.embed", "b/step0.embed", "b/step2.layers.1.out"};
	for (int i = 0; i < 3; i++)
		assert_int_equal(dsv32_tapstore_put(&s, names[i], &t, NULL), DSV32_OK);
	assert_int_equal(dsv32_tapfile_write_h5(&s, h5, NULL, NULL, 0, NULL), DSV32_OK);
	assert_int_equal(dsv32_tapfile_write(&s, st, NULL, NULL, 0, NULL), DSV32_OK);
	dsv32_tapstore back;
	dsv32_tapstore_init(&back);
	assert_int_equal(dsv32_tapfile_read_h5(&back, h5, NULL), DSV32_OK);
	assert_int_equal(back.n, 3);
	for (int i = 0; i < 3; i++) {
		dsv32_tap_entry *e = dsv32_tapstore_get(&back, names[i]);
		assert_non_null(e);
		assert_int_equal(e->t.dtype, DSV32_BF16);
		assert_memory_equal(e->t.data, t.data, dsv32_tensor_nbytes(&t));
	}
	dsv32_tapstore_free(&back);
	dsv32_st_file *f = NULL;
	assert_int_equal(dsv32_st_open(&f, st, NULL), DSV32_OK);
	assert_non_null(dsv32_st_find(f, "b/step2.layers.1.out"));
	dsv32_st_close(f);
	char bad[64];
	snprintf(bad, sizeof bad, "%s/bad.h5", dir);
	assert_int_equal(dsv32_tapstore_put(&s, "c/step0.embed", &t, NULL), DSV32_OK);
	dsv32_error err = {0};
	assert_int_equal(dsv32_tapfile_write_h5(&s, bad, NULL, NULL, 0, &err), DSV32_E_INTERNAL);
	assert_non_null(strstr(err.what, "c/step0.embed"));
	assert_int_equal(access(bad, F_OK), -1);
	dsv32_tensor_free(&t);
	dsv32_tapstore_free(&s);
	unlink(h5);
	unlink(st);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_golden_recording_reads_as_tap_file),
		cmocka_unit_test(test_non_recording_is_rejected),
		cmocka_unit_test(test_unaligned_tensors_are_read_aligned),
		cmocka_unit_test(test_tapstore_drop),
		cmocka_unit_test(test_dump_round_trip_safetensors_and_hdf5),
		cmocka_unit_test(test_side_prefixed_dump_round_trip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
