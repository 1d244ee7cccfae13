/* hdf5.c: tap dumps as HDF5 for h5py users: one group per step ("step0", ...), one dataset per
 * tap named by its canonical name. Float taps (BF16, F16, F8, F32) are stored as F32 (an exact
 * widening), integer taps as I64; attributes "dtype" (the original dtype name) and "shape" keep
 * what the model produced. Root attributes hold the metadata pairs. Written to a temporary name
 * and renamed on success. */
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "compare/tapfile.h"

static herr_t put_str_attr(hid_t obj, const char *key, const char *value)
{
	hid_t type = H5Tcopy(H5T_C_S1);
	H5Tset_size(type, strlen(value) + 1);
	hid_t space = H5Screate(H5S_SCALAR);
	hid_t a = H5Acreate2(obj, key, type, space, H5P_DEFAULT, H5P_DEFAULT);
	herr_t rc = a < 0 ? -1 : H5Awrite(a, type, value);
	if (a >= 0)
		H5Aclose(a);
	H5Sclose(space);
	H5Tclose(type);
	return rc;
}

static herr_t put_shape_attr(hid_t obj, const dsv32_tensor *t)
{
	hsize_t n = (hsize_t)(t->ndim ? t->ndim : 1);
	long long shape[DSV32_MAX_DIMS] = {0};
	for (int i = 0; i < t->ndim; i++)
		shape[i] = t->shape[i];
	hid_t space = H5Screate_simple(1, &n, NULL);
	hid_t a = H5Acreate2(obj, "shape", H5T_NATIVE_LLONG, space, H5P_DEFAULT, H5P_DEFAULT);
	herr_t rc = a < 0 ? -1 : H5Awrite(a, H5T_NATIVE_LLONG, shape);
	if (a >= 0)
		H5Aclose(a);
	H5Sclose(space);
	return rc;
}

static hid_t open_step_group(hid_t file, int step)
{
	char g[32];
	snprintf(g, sizeof g, "step%d", step);
	if (H5Lexists(file, g, H5P_DEFAULT) > 0)
		return H5Gopen2(file, g, H5P_DEFAULT);
	return H5Gcreate2(file, g, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
}

/* Write one tap; widened copies are made here so the store keeps its dtypes. */
static dsv32_status write_tap(hid_t file, const char *full, const dsv32_tensor *t,
			      const char *path, dsv32_error *err)
{
	int step;
	char *end;
	if (strncmp(full, "step", 4) != 0 || (step = (int)strtol(full + 4, &end, 10), *end != '.'))
		return DSV32_FAIL(err, DSV32_E_INTERNAL, "%s: tap name %s is not step{s}.{tap}", path, full);
	int64_t n = dsv32_tensor_numel(t);
	bool is_float = dsv32_dtype_is_float(t->dtype);
	void *buf = malloc((size_t)(n ? n : 1) * (is_float ? 4 : 8));
	if (!buf)
		return DSV32_FAIL(err, DSV32_E_NOMEM, "%s: %s", path, full);
	for (int64_t i = 0; i < n; i++) {
		double v = dsv32_load_f64(t->data, t->dtype, (size_t)i);
		if (is_float)
			((float *)buf)[i] = (float)v;
		else
			((int64_t *)buf)[i] = t->dtype == DSV32_I64 ? ((const int64_t *)t->data)[i] : (int64_t)v;
	}
	hsize_t dims[DSV32_MAX_DIMS];
	for (int i = 0; i < t->ndim; i++)
		dims[i] = (hsize_t)t->shape[i];
	hid_t g = open_step_group(file, step);
	hid_t space = t->ndim ? H5Screate_simple(t->ndim, dims, NULL) : H5Screate(H5S_SCALAR);
	hid_t mt = is_float ? H5T_NATIVE_FLOAT : H5T_NATIVE_INT64;
	hid_t ds = H5Dcreate2(g, end + 1, is_float ? H5T_IEEE_F32LE : H5T_STD_I64LE, space,
			      H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
	herr_t rc = ds < 0 ? -1 : H5Dwrite(ds, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
	if (rc >= 0)
		rc = put_str_attr(ds, "dtype", dsv32_dtype_name(t->dtype));
	if (rc >= 0)
		rc = put_shape_attr(ds, t);
	if (ds >= 0)
		H5Dclose(ds);
	H5Sclose(space);
	H5Gclose(g);
	free(buf);
	if (rc < 0)
		return DSV32_FAIL(err, DSV32_E_IO, "%s: writing dataset %s failed", path, full);
	return DSV32_OK;
}

dsv32_status dsv32_tapfile_write_h5(const dsv32_tapstore *store, const char *path,
				    const char *const *keys, const char *const *values, int n_meta,
				    dsv32_error *err)
{
	char tmp[4096];
	snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
	H5Eset_auto2(H5E_DEFAULT, NULL, NULL); /* errors come back as statuses, not stderr noise */
	hid_t file = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
	if (file < 0)
		return DSV32_FAIL(err, DSV32_E_IO, "%s: cannot create HDF5 file", tmp);
	dsv32_status rc = DSV32_OK;
	for (int i = 0; i < n_meta && rc == DSV32_OK; i++)
		if (put_str_attr(file, keys[i], values[i]) < 0)
			rc = DSV32_FAIL(err, DSV32_E_IO, "%s: attribute %s", tmp, keys[i]);
	for (size_t i = 0; i < store->n && rc == DSV32_OK; i++)
		rc = write_tap(file, store->e[i].name, &store->e[i].t, tmp, err);
	if (H5Fclose(file) < 0 && rc == DSV32_OK)
		rc = DSV32_FAIL(err, DSV32_E_IO, "%s: closing HDF5 file", tmp);
	if (rc == DSV32_OK && rename(tmp, path) != 0)
		rc = DSV32_FAIL(err, DSV32_E_IO, "%s: rename to %s failed", tmp, path);
	if (rc != DSV32_OK)
		unlink(tmp);
	return rc;
}
