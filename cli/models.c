/* models.c: how the CLI opens a live model of a layout (the one place that knows both layouts,
 * so compare/ only sees core/model.h). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_models.h"
#include "core/config.h"
#include "convert/namemap.h"
#include "core/fsutil.h"
#include "hf_layout/hf_model.h"
#include "kernels/host_info.h"
#include "ref/ref_model.h"

bool dsv32_cli_checkpoint_config(const char *checkpoint, const char *config_path,
				 dsv32_config *c, bool *is_hf)
{
	char p[4096];
	bool hf = false;
	if (config_path)
		snprintf(p, sizeof p, "%s", config_path);
	else if (!checkpoint || !dsv32_path_join(p, sizeof p, checkpoint, "config.json"))
		return false;
	if (!dsv32_path_exists(p) || dsv32_config_load(c, p, &hf, NULL) != DSV32_OK)
		return false;
	if (is_hf)
		*is_hf = hf;
	return true;
}

/* HF checkpoints have a config.json in HF form; reference shard directories hold model0-mpW. */
bool dsv32_cli_is_hf_checkpoint(const char *dir)
{
	dsv32_config c;
	bool is_hf = false;
	return dsv32_cli_checkpoint_config(dir, NULL, &c, &is_hf) && is_hf;
}

/* The hf layout on reference shards: read in place through the shard source (the converter's
 * name map and piece walk, in memory, tensor by tensor; no temporary files), with the reference
 * config.json of the shard directory. */
static dsv32_status open_hf_from_shards(const char *shards, const char *config,
					const dsv32_model_opts *opts, dsv32_model **out,
					dsv32_error *err)
{
	dsv32_status rc = dsv32_hf_open_shards(out, shards, config, opts, err);
	if (rc != DSV32_OK)
		dsv32_error_prefix(err, "hf layout on reference shards %s", shards);
	return rc;
}

bool dsv32_cli_is_shards_dir(const char *path)
{
	static const char *const hf_files[] = {"model.safetensors", "model.safetensors.index.json"};
	if (!dsv32_path_is_dir(path))
		return false;
	for (int i = 0; i < 2; i++) {
		char p[4096];
		if (!dsv32_path_join(p, sizeof p, path, hf_files[i]) || dsv32_path_exists(p))
			return false;
	}
	DIR *d = opendir(path);
	if (!d)
		return false;
	bool found = false;
	int rank, world;
	for (struct dirent *e; !found && (e = readdir(d));)
		found = dsv32_shard_file_parse(e->d_name, &rank, &world);
	closedir(d);
	return found;
}

dsv32_status dsv32_cli_shards_world(const char *checkpoint, int given, int *world,
				    dsv32_error *err)
{
	int found = 0, rank, w;
	char first[256] = "";
	*world = given > 0 ? given : 1;
	DIR *dir = checkpoint ? opendir(checkpoint) : NULL;
	if (!dir)
		return DSV32_OK; /* a file or missing: the open names the problem */
	struct dirent *e;
	dsv32_status rc = DSV32_OK;
	while (rc == DSV32_OK && (e = readdir(dir))) {
		if (!dsv32_shard_file_parse(e->d_name, &rank, &w))
			continue;
		if (found && w != found)
			rc = DSV32_FAIL(err, DSV32_E_USAGE, "%s: shard files of two world sizes (%s, %s)",
					checkpoint, first, e->d_name);
		found = w;
		snprintf(first, sizeof first, "%s", e->d_name);
	}
	closedir(dir);
	if (rc != DSV32_OK || !found)
		return rc;
	if (given > 0 && given != found)
		return DSV32_FAIL(err, DSV32_E_USAGE, "--mp %d, but %s holds shards of mp%d (%s): drop "
				  "--mp, the world size is read from the file names", given, checkpoint,
				  found, first);
	*world = found;
	return DSV32_OK;
}

int64_t dsv32_cli_layer_count(const char *checkpoint, const char *config_path)
{
	dsv32_config c;
	return dsv32_cli_checkpoint_config(checkpoint, config_path, &c, NULL) ? c.n_layers : 0;
}

void dsv32_cli_layers_text(char *buf, size_t len, int layers, int64_t total)
{
	if (total <= 0)
		snprintf(buf, len, "%d", layers);
	else
		snprintf(buf, len, "%lld of %lld",
			 (long long)(layers > 0 && layers < total ? layers : total), (long long)total);
}

void dsv32_cli_note_host_blas(void)
{
	char note[512];
	if (dsv32_host_blas_slow_note(note, sizeof note))
		fprintf(stderr, "%s\n", note);
}

dsv32_status dsv32_cli_open_model(const char *layout, const char *checkpoint,
				  const dsv32_model_opts *opts, dsv32_model **out, dsv32_error *err)
{
	return dsv32_cli_open_model_cfg(layout, checkpoint, NULL, opts, out, err);
}

dsv32_status dsv32_cli_open_model_cfg(const char *layout, const char *checkpoint,
				      const char *config, const dsv32_model_opts *opts,
				      dsv32_model **out, dsv32_error *err)
{
	return dsv32_cli_open_model_comm(layout, checkpoint, config, opts, NULL, out, err);
}

dsv32_status dsv32_cli_open_model_comm(const char *layout, const char *checkpoint,
				       const char *config, const dsv32_model_opts *opts,
				       dsv32_comm *comm, dsv32_model **out, dsv32_error *err)
{
	if (!strcmp(layout, "ref")) {
		dsv32_model_opts o = *opts;
		dsv32_status rc = dsv32_cli_shards_world(checkpoint, opts->world_size > 1
								 ? opts->world_size : 0,
							 &o.world_size, err);
		if (rc == DSV32_OK && dsv32_comm_is_distributed(comm) && o.world_size == 1 &&
		    comm->size > 1 && !dsv32_cli_is_shards_dir(checkpoint))
			o.world_size = comm->size; /* an HF directory: one slice per process */
		if (rc != DSV32_OK) /* every rank still takes part in the open's agreement */
			return dsv32_comm_agree(comm, rc, "open", err);
		return dsv32_ref_open_comm(out, checkpoint, config, &o, comm, err);
	}
	if (dsv32_comm_is_distributed(comm))
		return DSV32_FAIL(err, DSV32_E_USAGE, "--comm %s: real ranks are for the ref layout "
				  "only (layout %s)", dsv32_comm_kind_name(comm->kind), layout);
	if (!strcmp(layout, "hf")) {
		if (!dsv32_cli_is_hf_checkpoint(checkpoint))
			return open_hf_from_shards(checkpoint, config, opts, out, err);
		return dsv32_hf_open(out, checkpoint, config, opts, err);
	}
	return DSV32_FAIL(err, DSV32_E_USAGE, "unknown layout '%s' (expected ref or hf)", layout);
}

dsv32_status dsv32_cli_comm_open(const char *kind, const char *timeout, dsv32_comm **out,
				 dsv32_error *err)
{
	dsv32_comm_kind k = DSV32_COMM_INPROC;
	double t = 60;
	*out = NULL;
	if (kind && !dsv32_comm_kind_parse(kind, &k))
		return DSV32_FAIL(err, DSV32_E_USAGE, "--comm %s: expected inproc, mpi or nccl", kind);
	if (timeout) {
		char *end;
		t = strtod(timeout, &end);
		if (!*timeout || *end || !(t > 0) || t > 1e6)
			return DSV32_FAIL(err, DSV32_E_USAGE, "--comm-timeout %s: expected seconds > 0",
					  timeout);
	}
	if (k == DSV32_COMM_INPROC)
		return DSV32_OK;
	DSV32_TRY(dsv32_comm_open(out, k, t, err));
	dsv32_comm_set_fault(*out, getenv("DSV32_COMM_FAULT")); /* tests only (comm.h) */
	return DSV32_OK;
}

bool dsv32_cli_comm_is_leader(const dsv32_comm *c)
{
	return !dsv32_comm_is_distributed(c) || c->rank == 0;
}

int dsv32_cli_comm_finish(const char *cmd, dsv32_comm *c, int code, const dsv32_error *err)
{
	if (code && err) /* dsv32_cli_fail's mapping, also on ranks that do not print */
		code = err->code == DSV32_E_MISMATCH ? DSV32_EXIT_CHECK_FAILED : DSV32_EXIT_USAGE;
	if (code == 0 || !dsv32_comm_is_distributed(c)) {
		if (err && code)
			code = dsv32_cli_fail(cmd, err);
		dsv32_comm_close(c);
		return code;
	}
	if (c->failed_together) { /* every rank holds this error: rank 0 says it, all end */
		if (err && c->rank == 0)
			code = dsv32_cli_fail(cmd, err);
		dsv32_comm_close(c);
		return code;
	}
	if (err) {
		dsv32_error e = *err;
		if (strncmp(e.what, "rank ", 5) != 0)
			dsv32_error_prefix(&e, "rank %d of %d", c->rank, c->size);
		code = dsv32_cli_fail(cmd, &e);
	}
	fprintf(stderr, "dsv32-parity %s: rank %d of %d ends the job (%s)\n", cmd, c->rank,
		c->size, dsv32_comm_kind_name(c->kind));
	dsv32_comm_abort(c, code);
	return code; /* nccl: the communicator is aborted; the launcher ends the others */
}
