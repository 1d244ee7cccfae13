/* models.c: how the CLI opens a live model of a layout (the one place that knows both layouts,
 * so compare/ only sees core/model.h). */
#include <stdio.h>
#include <string.h>

#include "cli/cli_models.h"
#include "core/config.h"
#include "core/fsutil.h"
#include "hf_layout/hf_model.h"
#include "ref/ref_model.h"

/* HF checkpoints have a config.json in HF form; reference shard directories hold model0-mpW. */
bool dsv32_cli_is_hf_checkpoint(const char *dir)
{
	char p[4096];
	dsv32_config c;
	bool is_hf = false;
	if (!dsv32_path_join(p, sizeof p, dir, "config.json") || !dsv32_path_exists(p))
		return false;
	return dsv32_config_load(&c, p, &is_hf, NULL) == DSV32_OK && is_hf;
}

dsv32_status dsv32_cli_open_model(const char *layout, const char *checkpoint,
				  const dsv32_model_opts *opts, dsv32_model **out, dsv32_error *err)
{
	if (!strcmp(layout, "ref"))
		return dsv32_ref_open(out, checkpoint, NULL, opts, err);
	if (!strcmp(layout, "hf")) {
		if (!dsv32_cli_is_hf_checkpoint(checkpoint))
			return DSV32_FAIL(err, DSV32_E_USAGE,
					  "%s: the hf layout reads HF checkpoints (config.json in HF form); "
					  "convert reference shards first: dsv32-parity convert ref-to-hf",
					  checkpoint);
		return dsv32_hf_open(out, checkpoint, NULL, opts, err);
	}
	return DSV32_FAIL(err, DSV32_E_USAGE, "unknown layout '%s' (expected ref or hf)", layout);
}
