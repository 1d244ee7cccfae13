/* models.c: how the CLI opens a live model of a layout (the one place that knows both layouts,
 * so compare/ only sees core/model.h). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_models.h"
#include "core/config.h"
#include "convert/namemap.h"
#include "core/fsutil.h"
#include "hf_layout/hf_model.h"
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

dsv32_status dsv32_cli_open_model(const char *layout, const char *checkpoint,
				  const dsv32_model_opts *opts, dsv32_model **out, dsv32_error *err)
{
	return dsv32_cli_open_model_cfg(layout, checkpoint, NULL, opts, out, err);
}

dsv32_status dsv32_cli_open_model_cfg(const char *layout, const char *checkpoint,
				      const char *config, const dsv32_model_opts *opts,
				      dsv32_model **out, dsv32_error *err)
{
	if (!strcmp(layout, "ref")) {
		dsv32_model_opts o = *opts;
		DSV32_TRY(dsv32_cli_shards_world(checkpoint, opts->world_size > 1 ? opts->world_size
										 : 0,
						 &o.world_size, err));
		return dsv32_ref_open(out, checkpoint, config, &o, err);
	}
	if (!strcmp(layout, "hf")) {
		if (!dsv32_cli_is_hf_checkpoint(checkpoint))
			return open_hf_from_shards(checkpoint, config, opts, out, err);
		return dsv32_hf_open(out, checkpoint, config, opts, err);
	}
	return DSV32_FAIL(err, DSV32_E_USAGE, "unknown layout '%s' (expected ref or hf)", layout);
}
