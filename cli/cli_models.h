/* cli_models.h: opening live models by layout name (cli/models.c). */
#ifndef DSV32_CLI_MODELS_H
#define DSV32_CLI_MODELS_H

#include <stdbool.h>

#include "core/model.h"

dsv32_status dsv32_cli_open_model(const char *layout, const char *checkpoint,
				  const dsv32_model_opts *opts, dsv32_model **out, dsv32_error *err);
bool dsv32_cli_is_hf_checkpoint(const char *dir);

#endif
