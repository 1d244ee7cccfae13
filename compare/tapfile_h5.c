/* tapfile_h5.c: tap dumps as HDF5 for h5py users (the HDF5 form of compare/tapfile.h): one
 * group per step ("step0", ...), one dataset per tap named by its canonical name. Float taps
 * (BF16, F16, F8, F32) are stored as F32 (an exact widening), integer taps as I64; attributes
 * "dtype" (the original dtype name) and "shape" keep what the model produced. Root attributes
 * hold the metadata pairs. Built in memory, then written to a temporary name and renamed on
 * success (see "the file image" below). */
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compare/tapfile.h"
#include "core/fsutil.h"

/* Release an HDF5 id exactly once: ids < 0 (a failed create) are not ids. */
static void close_id(hid_t id, herr_t (*close)(hid_t))
{
	if (id >= 0)
		close(id);
}

static herr_t put_str_attr(hid_t obj, const char *key, const char *value)
{
	hid_t type = H5Tcopy(H5T_C_S1);
	herr_t rc = type < 0 ? -1 : H5Tset_size(type, strlen(value) + 1);
	hid_t space = rc < 0 ? -1 : H5Screate(H5S_SCALAR);
	hid_t a = space < 0 ? -1 : H5Acreate2(obj, key, type, space, H5P_DEFAULT, H5P_DEFAULT);
	rc = a < 0 ? -1 : H5Awrite(a, type, value);
	close_id(a, H5Aclose);
	close_id(space, H5Sclose);
	close_id(type, H5Tclose);
	return rc;
}

static herr_t put_shape_attr(hid_t obj, const dsv32_tensor *t)
{
	hsize_t n = (hsize_t)(t->ndim ? t->ndim : 1);
	long long shape[DSV32_MAX_DIMS] = {0};
	for (int i = 0; i < t->ndim; i++)
		shape[i] = t->shape[i];
	hid_t space = H5Screate_simple(1, &n, NULL);
	hid_t a = space < 0 ? -1
			    : H5Acreate2(obj, "shape", H5T_NATIVE_LLONG, space, H5P_DEFAULT, H5P_DEFAULT);
	herr_t rc = a < 0 ? -1 : H5Awrite(a, H5T_NATIVE_LLONG, shape);
	close_id(a, H5Aclose);
	close_id(space, H5Sclose);
	return rc;
}

static hid_t open_group(hid_t parent, const char *g)
{
	if (H5Lexists(parent, g, H5P_DEFAULT) > 0)
		return H5Gopen2(parent, g, H5P_DEFAULT);
	return H5Gcreate2(parent, g, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
}

/* The group "step{step}", under the side's group ("a" / "b") when side is not NULL. */
static hid_t open_step_group(hid_t file, const char *side, int step)
{
	char g[32];
	snprintf(g, sizeof g, "step%d", step);
	if (!side)
		return open_group(file, g);
	hid_t sg = open_group(file, side);
	hid_t r = sg < 0 ? -1 : open_group(sg, g);
	close_id(sg, H5Gclose);
	return r;
}

/* Split "[a/|b/]step{s}.{tap}": *side "a", "b" or NULL, *step, *tap. False if not of that form. */
static bool split_full(const char *full, char side[2], int *step, const char **tap)
{
	side[0] = '\0';
	if ((full[0] == 'a' || full[0] == 'b') && full[1] == '/') {
		side[0] = full[0];
		side[1] = '\0';
		full += 2;
	}
	char *end;
	if (strncmp(full, "step", 4) != 0 || full[4] < '0' || full[4] > '9')
		return false;
	long s = strtol(full + 4, &end, 10);
	if (*end != '.' || s < 0 || s >= DSV32_TAPFILE_MAX_STEPS || !end[1])
		return false;
	*step = (int)s;
	*tap = end + 1;
	return true;
}

/* The tap's values widened to F32 (float taps) or I64 (integer taps), malloc'ed. */
static void *widen(const dsv32_tensor *t, bool is_float)
{
	int64_t n = dsv32_tensor_numel(t);
	void *buf = malloc((size_t)(n ? n : 1) * (is_float ? 4 : 8));
	for (int64_t i = 0; buf && i < n; i++) {
		double v = dsv32_load_f64(t->data, t->dtype, (size_t)i);
		if (is_float)
			((float *)buf)[i] = (float)v;
		else
			((int64_t *)buf)[i] = t->dtype == DSV32_I64 ? ((const int64_t *)t->data)[i] : (int64_t)v;
	}
	return buf;
}

/* One dataset with its attributes under group g; every id made here is closed here, once. */
static herr_t put_dataset(hid_t g, const char *name, const dsv32_tensor *t, bool is_float,
			  const void *buf)
{
	hsize_t dims[DSV32_MAX_DIMS];
	for (int i = 0; i < t->ndim; i++)
		dims[i] = (hsize_t)t->shape[i];
	hid_t space = t->ndim ? H5Screate_simple(t->ndim, dims, NULL) : H5Screate(H5S_SCALAR);
	hid_t ds = space < 0 ? -1
			     : H5Dcreate2(g, name, is_float ? H5T_IEEE_F32LE : H5T_STD_I64LE, space,
					  H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
	herr_t rc = ds < 0 ? -1
			   : H5Dwrite(ds, is_float ? H5T_NATIVE_FLOAT : H5T_NATIVE_INT64, H5S_ALL,
				      H5S_ALL, H5P_DEFAULT, buf);
	if (rc >= 0)
		rc = put_str_attr(ds, "dtype", dsv32_dtype_name(t->dtype));
	if (rc >= 0)
		rc = put_shape_attr(ds, t);
	close_id(ds, H5Dclose);
	close_id(space, H5Sclose);
	return rc;
}

/* Write one tap; widened copies are made here so the store keeps its dtypes. */
static dsv32_status write_tap(hid_t file, const char *full, const dsv32_tensor *t,
			      const char *path, dsv32_error *err)
{
	int step;
	char side[2];
	const char *tap;
	if (!split_full(full, side, &step, &tap))
		return DSV32_FAIL(err, DSV32_E_INTERNAL, "%s: tap name %s is not [a/|b/]step{s}.{tap}",
				  path, full);
	bool is_float = dsv32_dtype_is_float(t->dtype);
	void *buf = widen(t, is_float);
	if (!buf)
		return DSV32_FAIL(err, DSV32_E_NOMEM, "%s: %s", path, full);
	hid_t g = open_step_group(file, side[0] ? side : NULL, step);
	herr_t rc = g < 0 ? -1 : put_dataset(g, tap, t, is_float, buf);
	close_id(g, H5Gclose);
	free(buf);
	if (rc < 0)
		return DSV32_FAIL(err, DSV32_E_IO, "%s: writing dataset %s failed", path, full);
	return DSV32_OK;
}

/* ---- the file image ----
 * The file is built in memory by HDF5's core driver (no backing store) and written out by
 * dsv32_write_file_atomic, so HDF5 itself never does disk I/O. The reason: HDF5 1.10 cannot
 * recover from a failed H5Fclose (a full disk while it flushes): the file stays half-open and
 * H5_term_library crashes closing it again at exit (issue 14, SIGSEGV). A full disk is now an
 * ordinary write error of ours, and the temporary is removed. The file image callbacks let us
 * keep the driver's buffer at close instead of copying it (H5Fget_file_image would double the
 * memory of a large dump). */
typedef struct {
	void *mem;   /* the driver's current buffer; ours once the file is closed */
	size_t size; /* its allocated size */
} h5_image;

static void *img_malloc(size_t size, H5FD_file_image_op_t op, void *user)
{
	(void)op;
	h5_image *m = user;
	void *p = malloc(size ? size : 1);
	if (p) {
		m->mem = p;
		m->size = size;
	}
	return p;
}

static void *img_realloc(void *ptr, size_t size, H5FD_file_image_op_t op, void *user)
{
	(void)op;
	h5_image *m = user;
	void *p = realloc(ptr, size ? size : 1);
	if (p) {
		m->mem = p;
		m->size = size;
	}
	return p;
}

static void *img_memcpy(void *dst, const void *src, size_t n, H5FD_file_image_op_t op,
			void *user)
{
	(void)op;
	(void)user;
	return memcpy(dst, src, n);
}

/* At file close the driver hands its buffer back: keep it (the caller writes and frees it). */
static herr_t img_free(void *ptr, H5FD_file_image_op_t op, void *user)
{
	h5_image *m = user;
	if (ptr && ptr == m->mem && op == H5FD_FILE_IMAGE_OP_FILE_CLOSE)
		return 0;
	if (ptr == m->mem)
		m->mem = NULL;
	free(ptr);
	return 0;
}

/* The callbacks share one h5_image; HDF5 copies property lists, and every copy points at it. */
static void *img_udata_copy(void *user)
{
	return user;
}

static herr_t img_udata_free(void *user)
{
	(void)user;
	return 0;
}

/* A file access property list for an in-memory file whose buffer ends up in *m. */
static hid_t image_fapl(h5_image *m)
{
	H5FD_file_image_callbacks_t cb = {img_malloc, img_memcpy,     img_realloc, img_free,
					  img_udata_copy, img_udata_free, m};
	hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
	if (fapl >= 0 && (H5Pset_fapl_core(fapl, (size_t)4 << 20, 0) < 0 ||
			  H5Pset_file_image_callbacks(fapl, &cb) < 0)) {
		H5Pclose(fapl);
		return -1;
	}
	return fapl;
}

/* Metadata attributes and one dataset per tap into the open file. */
static dsv32_status fill_file(hid_t file, const dsv32_tapstore *store, const char *path,
			      const char *const *keys, const char *const *values, int n_meta,
			      dsv32_error *err)
{
	dsv32_status rc = DSV32_OK;
	for (int i = 0; i < n_meta && rc == DSV32_OK; i++)
		if (put_str_attr(file, keys[i], values[i]) < 0)
			rc = DSV32_FAIL(err, DSV32_E_IO, "%s: attribute %s", path, keys[i]);
	for (size_t i = 0; i < store->n && rc == DSV32_OK; i++)
		rc = write_tap(file, store->e[i].name, &store->e[i].t, path, err);
	return rc;
}

/* Build the file in memory: on success *m holds the image and *len its size in bytes. */
static dsv32_status build_image(const dsv32_tapstore *store, const char *path,
				const char *const *keys, const char *const *values, int n_meta,
				h5_image *m, size_t *len, dsv32_error *err)
{
	hid_t fapl = image_fapl(m);
	hid_t file = fapl < 0 ? -1 : H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
	close_id(fapl, H5Pclose);
	if (file < 0)
		return DSV32_FAIL(err, DSV32_E_IO, "%s: cannot create the HDF5 file in memory", path);
	dsv32_status rc = fill_file(file, store, path, keys, values, n_meta, err);
	ssize_t n = -1;
	if (rc == DSV32_OK && H5Fflush(file, H5F_SCOPE_GLOBAL) >= 0)
		n = H5Fget_file_image(file, NULL, 0); /* the size only: no copy */
	if (rc == DSV32_OK && n < 0)
		rc = DSV32_FAIL(err, DSV32_E_IO, "%s: flushing the HDF5 file failed", path);
	/* closed once, whatever happened; in memory this does no I/O that could fail */
	if (H5Fclose(file) < 0 && rc == DSV32_OK)
		rc = DSV32_FAIL(err, DSV32_E_IO, "%s: closing the HDF5 file failed", path);
	if (rc == DSV32_OK && (!m->mem || (size_t)n > m->size))
		rc = DSV32_FAIL(err, DSV32_E_INTERNAL, "%s: HDF5 image of %zd bytes not kept", path,
				n);
	*len = (size_t)n;
	return rc;
}

dsv32_status dsv32_tapfile_write_h5(const dsv32_tapstore *store, const char *path,
				    const char *const *keys, const char *const *values, int n_meta,
				    dsv32_error *err)
{
	h5_image m = {0};
	size_t len = 0;
	H5Eset_auto2(H5E_DEFAULT, NULL, NULL); /* errors come back as statuses, not stderr noise */
	dsv32_status rc = build_image(store, path, keys, values, n_meta, &m, &len, err);
	if (rc == DSV32_OK)
		rc = dsv32_write_file_atomic(path, m.mem, len, err);
	free(m.mem);
	return rc;
}

/* ---- reading an HDF5 tap dump back (taps:FILE.h5) ---- */

typedef struct {
	dsv32_tapstore *out;
	const char *path;
	const char *side; /* "a/" or "b/" inside a comparison dump's side group, else "" */
	int step;
	dsv32_status rc;
	dsv32_error *err;
} h5_read_ctx;

static dsv32_dtype attr_dtype(hid_t ds, bool is_int)
{
	dsv32_dtype t = is_int ? DSV32_I64 : DSV32_F32;
	if (H5Aexists(ds, "dtype") <= 0)
		return t;
	hid_t a = H5Aopen(ds, "dtype", H5P_DEFAULT);
	hid_t ty = H5Aget_type(a);
	char name[32] = {0};
	if (H5Tget_class(ty) == H5T_STRING && H5Tget_size(ty) < sizeof name)
		H5Aread(a, ty, name);
	dsv32_dtype parsed;
	if (dsv32_dtype_from_name(name, &parsed) && dsv32_dtype_is_float(parsed) != is_int)
		t = parsed;
	H5Tclose(ty);
	H5Aclose(a);
	return t;
}

/* One dataset: read as F32 or I64, then narrowed back (exactly) to the recorded dtype. */
static dsv32_status read_dataset(h5_read_ctx *c, hid_t g, const char *name)
{
	hid_t ds = H5Dopen2(g, name, H5P_DEFAULT);
	if (ds < 0)
		return DSV32_FAIL(c->err, DSV32_E_FORMAT, "%s: step%d/%s: not a dataset", c->path,
				  c->step, name);
	hid_t sp = H5Dget_space(ds), ty = H5Dget_type(ds);
	int nd = H5Sget_simple_extent_ndims(sp);
	bool is_int = H5Tget_class(ty) == H5T_INTEGER;
	dsv32_status rc = DSV32_OK;
	hsize_t dims[DSV32_MAX_DIMS];
	int64_t shape[DSV32_MAX_DIMS];
	if (nd < 0 || nd > DSV32_MAX_DIMS) {
		rc = DSV32_FAIL(c->err, DSV32_E_FORMAT, "%s: step%d/%s: %d dims, at most %d", c->path,
				c->step, name, nd, DSV32_MAX_DIMS);
		goto out_close;
	}
	H5Sget_simple_extent_dims(sp, dims, NULL);
	for (int i = 0; i < nd; i++)
		shape[i] = (int64_t)dims[i];
	dsv32_tensor wide, t;
	rc = dsv32_tensor_alloc(&wide, is_int ? DSV32_I64 : DSV32_F32, nd, shape, c->err);
	if (rc != DSV32_OK)
		goto out_close;
	if (H5Dread(ds, is_int ? H5T_NATIVE_INT64 : H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT,
		    wide.data) < 0) {
		rc = DSV32_FAIL(c->err, DSV32_E_FORMAT, "%s: step%d/%s: unreadable", c->path, c->step,
				name);
		dsv32_tensor_free(&wide);
		goto out_close;
	}
	dsv32_dtype want = attr_dtype(ds, is_int);
	t = wide;
	if (!is_int && want != DSV32_F32) {
		rc = dsv32_tensor_alloc(&t, want, nd, shape, c->err);
		if (rc == DSV32_OK)
			dsv32_convert(t.data, want, wide.data, DSV32_F32, (size_t)dsv32_tensor_numel(&wide));
		dsv32_tensor_free(&wide);
	}
	if (rc == DSV32_OK) {
		char full[192], tail[190];
		dsv32_tapfile_name(tail, sizeof tail, c->step, name);
		snprintf(full, sizeof full, "%s%s", c->side, tail);
		rc = dsv32_tapstore_put(c->out, full, &t, c->err);
		dsv32_tensor_free(&t);
	}
out_close:
	H5Tclose(ty);
	H5Sclose(sp);
	H5Dclose(ds);
	return rc;
}

static herr_t on_dataset(hid_t g, const char *name, const H5L_info_t *info, void *user)
{
	(void)info;
	h5_read_ctx *c = user;
	c->rc = read_dataset(c, g, name);
	return c->rc == DSV32_OK ? 0 : -1;
}

static herr_t on_step_group(hid_t file, const char *name, const H5L_info_t *info, void *user)
{
	(void)info;
	h5_read_ctx *c = user;
	char *end;
	if (strncmp(name, "step", 4) != 0)
		return 0; /* other groups (a compare dump's a/ and b/ are read by on_side_group) */
	long s = strtol(name + 4, &end, 10);
	if (*end || end == name + 4 || s < 0 || s >= DSV32_TAPFILE_MAX_STEPS)
		return 0;
	c->step = (int)s;
	hid_t g = H5Gopen2(file, name, H5P_DEFAULT);
	if (g < 0)
		return 0;
	hsize_t idx = 0;
	herr_t r = H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, &idx, on_dataset, c);
	H5Gclose(g);
	return r < 0 ? -1 : 0;
}

/* A comparison dump's side group a/ or b/: its step groups, names prefixed "a/" or "b/". */
static herr_t on_side_group(hid_t file, const char *name, const H5L_info_t *info, void *user)
{
	(void)info;
	h5_read_ctx *c = user;
	if (strcmp(name, "a") != 0 && strcmp(name, "b") != 0)
		return 0;
	hid_t g = H5Gopen2(file, name, H5P_DEFAULT);
	if (g < 0)
		return 0;
	c->side = name[0] == 'a' ? "a/" : "b/";
	hsize_t idx = 0;
	herr_t r = H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, &idx, on_step_group, c);
	c->side = "";
	H5Gclose(g);
	return r < 0 ? -1 : 0;
}

dsv32_status dsv32_tapfile_read_h5(dsv32_tapstore *out, const char *path, dsv32_error *err)
{
	H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
	if (H5Fis_hdf5(path) <= 0)
		return DSV32_FAIL(err, DSV32_E_FORMAT, "%s: not an HDF5 file", path);
	hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
	if (f < 0)
		return DSV32_FAIL(err, DSV32_E_IO, "%s: cannot open", path);
	h5_read_ctx c = {.out = out, .path = path, .side = "", .err = err};
	hsize_t idx = 0;
	H5Literate(f, H5_INDEX_NAME, H5_ITER_INC, &idx, on_step_group, &c);
	idx = 0;
	if (c.rc == DSV32_OK)
		H5Literate(f, H5_INDEX_NAME, H5_ITER_INC, &idx, on_side_group, &c);
	H5Fclose(f);
	return c.rc;
}
