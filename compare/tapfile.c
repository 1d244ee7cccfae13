/* tapfile.c: reading and writing recorded taps in the safetensors tap format. */
#include "compare/tapfile.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/infile.h"

void dsv32_tapfile_name(char *buf, size_t len, int step, const char *tap)
{
	snprintf(buf, len, "step%d.%s", step, tap);
}

/* Parse "step{s}.{rest}"; false if the name is not of that form. */
static bool split_step(const char *name, int *step, const char **rest)
{
	if (strncmp(name, "step", 4) != 0)
		return false;
	char *end;
	/* canonical decimal only ("step0", never "step00", "step+1", "step 1"): the name must be
	 * the one dsv32_tapfile_name builds, or dsv32_tapfile_get would not find it */
	if (name[4] < '0' || name[4] > '9' || (name[4] == '0' && name[5] != '.'))
		return false;
	long s = strtol(name + 4, &end, 10);
	if (end == name + 4 || *end != '.' || s < 0 || s >= DSV32_TAPFILE_MAX_STEPS)
		return false;
	*step = (int)s;
	*rest = end + 1;
	return true;
}

static dsv32_status read_step_info(dsv32_tapfile *tf, int s, const char *path, dsv32_error *err)
{
	dsv32_tensor ids, sp;
	if (dsv32_tapfile_get(tf, s, "input_ids", &ids, NULL) != DSV32_OK)
		return DSV32_FAIL(err, DSV32_E_FORMAT, "%s: step %d has no input_ids", path, s);
	if (ids.dtype != DSV32_I64 || ids.ndim != 2)
		return DSV32_FAIL(err, DSV32_E_FORMAT, "%s: step%d.input_ids must be I64 [B,S]", path, s);
	if (s == 0)
		tf->batch = ids.shape[0];
	else if (ids.shape[0] != tf->batch)
		return DSV32_FAIL(err, DSV32_E_FORMAT, "%s: step%d.input_ids has %lld rows, step0 %lld",
				  path, s, (long long)ids.shape[0], (long long)tf->batch);
	if (s >= 64)
		return DSV32_OK;
	tf->seqlen[s] = ids.shape[1];
	tf->start_pos[s] = -1;
	/* memcpy: a file whose header length is not a multiple of 8 leaves the data unaligned */
	if (dsv32_tapfile_get(tf, s, "start_pos", &sp, NULL) == DSV32_OK && sp.dtype == DSV32_I64 &&
	    dsv32_tensor_numel(&sp) >= 1)
		memcpy(&tf->start_pos[s], sp.data, sizeof tf->start_pos[s]);
	else if (dsv32_tapfile_get(tf, s, "position_ids", &sp, NULL) == DSV32_OK &&
		 sp.dtype == DSV32_I64 && dsv32_tensor_numel(&sp) >= 1)
		memcpy(&tf->start_pos[s], sp.data, sizeof tf->start_pos[s]);
	return DSV32_OK;
}

bool dsv32_tapfile_is_h5_path(const char *path)
{
	size_t n = strlen(path);
	return (n > 3 && !strcmp(path + n - 3, ".h5")) || (n > 5 && !strcmp(path + n - 5, ".hdf5"));
}

/* Name of the i-th tensor of the recording, in file order. */
static const char *entry_name(const dsv32_tapfile *tf, size_t i)
{
	if (tf->mem)
		return i < tf->mem->n ? tf->mem->e[i].name : NULL;
	return i < dsv32_st_count(tf->f) ? dsv32_st_entry_at(tf->f, i)->name : NULL;
}

/* Whether every tensor's data starts at a multiple of its element size: safetensors does not
 * promise it (a producer may put an I64 after an odd count of F32), and the comparisons read
 * the data as arrays of their type. */
static bool all_aligned(const dsv32_st_file *f)
{
	for (size_t i = 0; i < dsv32_st_count(f); i++) {
		const dsv32_st_entry *e = dsv32_st_entry_at(f, i);
		size_t es = dsv32_dtype_size(e->dtype);
		if (es > 1 && (uintptr_t)dsv32_st_data(f, e) % es != 0)
			return false;
	}
	return true;
}

/* A recording with unaligned tensors is read into memory (aligned copies, file order). */
static dsv32_status copy_to_memory(dsv32_tapfile *tf, const char *path, dsv32_error *err)
{
	tf->mem = malloc(sizeof *tf->mem);
	if (!tf->mem)
		return DSV32_FAIL(err, DSV32_E_NOMEM, "%s", path);
	dsv32_tapstore_init(tf->mem);
	dsv32_status rc = DSV32_OK;
	for (size_t i = 0; i < dsv32_st_count(tf->f) && rc == DSV32_OK; i++) {
		const dsv32_st_entry *e = dsv32_st_entry_at(tf->f, i);
		dsv32_tensor t;
		if (!dsv32_dtype_is_readable(e->dtype))
			continue; /* listed only: no tap of it can be compared either way */
		rc = dsv32_st_tensor(tf->f, e->name, &t, err);
		if (rc == DSV32_OK)
			rc = dsv32_tapstore_put(tf->mem, e->name, &t, err);
	}
	dsv32_st_close(tf->f);
	tf->f = NULL;
	return rc;
}

static dsv32_status open_source(dsv32_tapfile *tf, const char *path, dsv32_error *err)
{
	if (!dsv32_tapfile_is_h5_path(path)) {
		DSV32_TRY(dsv32_st_open(&tf->f, path, err));
		return all_aligned(tf->f) ? DSV32_OK : copy_to_memory(tf, path, err);
	}
	/* HDF5 opens by name and would block on a FIFO: refuse anything but a regular file first */
	DSV32_TRY(dsv32_infile_check(path, err));
	tf->mem = malloc(sizeof *tf->mem);
	if (!tf->mem)
		return DSV32_FAIL(err, DSV32_E_NOMEM, "%s", path);
	dsv32_tapstore_init(tf->mem);
	return dsv32_tapfile_read_h5(tf->mem, path, err);
}

/* The steps of an opened source: their count, batch, lengths and positions. */
static dsv32_status index_steps(dsv32_tapfile *tf, const char *path, dsv32_error *err)
{
	dsv32_status rc = DSV32_OK;
	int max_step = -1;
	const char *name;
	for (size_t i = 0; (name = entry_name(tf, i)); i++) {
		int s;
		const char *rest;
		if (split_step(name, &s, &rest) && s > max_step)
			max_step = s;
	}
	if (max_step < 0)
		return DSV32_FAIL(err, DSV32_E_FORMAT,
				  "%s: no tensor named step{s}.{tap}: not a tap recording", path);
	tf->n_steps = max_step + 1;
	for (int s = 0; s < tf->n_steps && rc == DSV32_OK; s++)
		rc = read_step_info(tf, s, path, err);
	return rc;
}

dsv32_status dsv32_tapfile_open(dsv32_tapfile *tf, const char *path, dsv32_error *err)
{
	memset(tf, 0, sizeof *tf);
	dsv32_status rc = open_source(tf, path, err);
	if (rc == DSV32_OK)
		rc = index_steps(tf, path, err);
	if (rc != DSV32_OK)
		dsv32_tapfile_close(tf);
	return rc;
}

dsv32_status dsv32_tapfile_open_store(dsv32_tapfile *tf, dsv32_tapstore *store, const char *name,
				      dsv32_error *err)
{
	memset(tf, 0, sizeof *tf);
	tf->mem = store;
	tf->mem_borrowed = true;
	dsv32_status rc = index_steps(tf, name, err);
	if (rc != DSV32_OK)
		dsv32_tapfile_close(tf);
	return rc;
}

void dsv32_tapfile_close(dsv32_tapfile *tf)
{
	if (tf->f)
		dsv32_st_close(tf->f);
	if (tf->mem && !tf->mem_borrowed) {
		dsv32_tapstore_free(tf->mem);
		free(tf->mem);
	}
	memset(tf, 0, sizeof *tf);
}

dsv32_status dsv32_tapfile_get(const dsv32_tapfile *tf, int step, const char *tap,
			       dsv32_tensor *out, dsv32_error *err)
{
	char name[160];
	dsv32_tapfile_name(name, sizeof name, step, tap);
	if (!tf->mem)
		return dsv32_st_tensor(tf->f, name, out, err);
	dsv32_tap_entry *e = dsv32_tapstore_get(tf->mem, name);
	if (!e)
		return DSV32_FAIL(err, DSV32_E_NOTFOUND, "tensor %s not found", name);
	*out = e->t;
	out->owned = false;
	return DSV32_OK;
}

bool dsv32_tapfile_tap_at(const dsv32_tapfile *tf, int step, size_t i, const char **tap,
			  dsv32_tensor *out)
{
	size_t seen = 0;
	const char *name;
	for (size_t k = 0; (name = entry_name(tf, k)); k++) {
		int s;
		const char *rest;
		if (!split_step(name, &s, &rest) || s != step)
			continue;
		if (seen++ != i)
			continue;
		*tap = rest;
		return dsv32_tapfile_get(tf, step, rest, out, NULL) == DSV32_OK;
	}
	return false;
}

dsv32_status dsv32_tapfile_write(const dsv32_tapstore *store, const char *path,
				 const char *const *keys, const char *const *values, int n_meta,
				 dsv32_error *err)
{
	dsv32_st_writer *w;
	DSV32_TRY(dsv32_st_writer_open(&w, path, err));
	dsv32_status rc = DSV32_OK;
	for (int i = 0; i < n_meta && rc == DSV32_OK; i++)
		rc = dsv32_st_writer_meta(w, keys[i], values[i], err);
	for (size_t i = 0; i < store->n && rc == DSV32_OK; i++) {
		const dsv32_tensor *t = &store->e[i].t;
		rc = dsv32_st_writer_declare(w, store->e[i].name, t->dtype, t->ndim, t->shape, err);
	}
	for (size_t i = 0; i < store->n && rc == DSV32_OK; i++) {
		const dsv32_tensor *t = &store->e[i].t;
		rc = dsv32_st_writer_write(w, t->data, dsv32_tensor_nbytes(t), err);
	}
	if (rc != DSV32_OK) {
		dsv32_st_writer_abort(w);
		return rc;
	}
	return dsv32_st_writer_commit(w, err);
}
