/* tapfile.h: recorded taps (docs/tap-format.md): a safetensors file whose tensors are named
 * "step{s}.{tap}" with canonical tap names, per step "step{s}.input_ids" (I64 [B,S]) and
 * "step{s}.start_pos" (I64 [1]) or "step{s}.position_ids" (I64 [B,S]); __metadata__ carries
 * "producer", "config" (JSON), "world_size" and free-form provenance.
 *
 * Reading is zero-copy (views into the mapping). Writing collects taps in a dsv32_tapstore under
 * their full names and streams them out through the atomic safetensors writer; the same content
 * can be written as HDF5 (one group per step, float taps widened exactly to F32 with the original
 * dtype and shape in attributes). */
#ifndef DSV32_TAPFILE_H
#define DSV32_TAPFILE_H

#include "compare/tapstore.h"
#include "core/safetensors.h"

#define DSV32_TAPFILE_MAX_STEPS 4096

typedef struct {
	dsv32_st_file *f;          /* a safetensors recording, or */
	dsv32_tapstore *mem;       /* an HDF5 recording read into memory (.h5 / .hdf5), or the
				    * caller's store (dsv32_tapfile_open_store) */
	bool mem_borrowed;         /* mem is the caller's: close leaves it */
	int n_steps;
	int64_t batch;            /* rows of step0.input_ids */
	int64_t seqlen[64];       /* per step (first 64 steps), from input_ids */
	int64_t start_pos[64];    /* per step; -1 if the file has neither start_pos nor position_ids */
} dsv32_tapfile;

/* A .h5 / .hdf5 path is read as the HDF5 form (groups step{s}, one dataset per tap, the
 * recorded dtype restored from the "dtype" attribute); anything else as safetensors. */
dsv32_status dsv32_tapfile_open(dsv32_tapfile *tf, const char *path, dsv32_error *err);
/* A recording held in memory (names "step{s}.{tap}", as dsv32_tapfile_open reads them), read
 * in place: store is borrowed and must outlive tf; name stands for the path in messages. */
dsv32_status dsv32_tapfile_open_store(dsv32_tapfile *tf, dsv32_tapstore *store, const char *name,
				      dsv32_error *err);
/* Read an HDF5 dump's step groups into store as "step{s}.{tap}", and a comparison dump's side
 * groups a/ and b/ as "a/step{s}.{tap}" (compare/tapfile_h5.c). */
dsv32_status dsv32_tapfile_read_h5(dsv32_tapstore *store, const char *path, dsv32_error *err);
void dsv32_tapfile_close(dsv32_tapfile *tf);
/* The recorded tensor "step{step}.{tap}", or DSV32_E_NOTFOUND. */
dsv32_status dsv32_tapfile_get(const dsv32_tapfile *tf, int step, const char *tap,
			       dsv32_tensor *out, dsv32_error *err);
/* Iterate the taps of a step: i from 0 while it returns true; *tap receives the name without
 * the "step{s}." prefix. */
bool dsv32_tapfile_tap_at(const dsv32_tapfile *tf, int step, size_t i, const char **tap,
			  dsv32_tensor *out);

/* Whether path names the HDF5 form (ends in .h5 or .hdf5). */
bool dsv32_tapfile_is_h5_path(const char *path);

/* "step{step}.{tap}" into buf. */
void dsv32_tapfile_name(char *buf, size_t len, int step, const char *tap);

/* Write every entry of store (names "step{s}.{tap}", or "{side}/step{s}.{tap}" for a
 * comparison's dump, side a or b) with the given metadata pairs (keys[i], values[i]); atomic.
 * In HDF5 a side prefix is a group holding that side's step groups (a/step0/embed). */
dsv32_status dsv32_tapfile_write(const dsv32_tapstore *store, const char *path,
				 const char *const *keys, const char *const *values, int n_meta,
				 dsv32_error *err);
dsv32_status dsv32_tapfile_write_h5(const dsv32_tapstore *store, const char *path,
				    const char *const *keys, const char *const *values, int n_meta,
				    dsv32_error *err);

#endif
