/* cli_models.h: opening live models by layout name (cli/models.c). */
#ifndef DSV32_CLI_MODELS_H
#define DSV32_CLI_MODELS_H

#include <stdbool.h>

#include "core/config.h"
#include "core/model.h"

dsv32_status dsv32_cli_open_model(const char *layout, const char *checkpoint,
				  const dsv32_model_opts *opts, dsv32_model **out, dsv32_error *err);
/* The checkpoint's config (config_path NULL: <checkpoint>/config.json, HF or reference form);
 * false when it cannot be read. *is_hf (may be NULL) tells which form it was. */
bool dsv32_cli_checkpoint_config(const char *checkpoint, const char *config_path,
				 dsv32_config *c, bool *is_hf);
bool dsv32_cli_is_hf_checkpoint(const char *dir);
/* Decoder layers of the checkpoint's model (config_path NULL: <checkpoint>/config.json, HF or
 * reference form); 0 when the config cannot be read. */
int64_t dsv32_cli_layer_count(const char *checkpoint, const char *config_path);
/* "N of TOTAL" for a --layers limit (TOTAL unknown: "N"; N = 0 or >= TOTAL: "TOTAL of TOTAL"),
 * the text reports record. */
void dsv32_cli_layers_text(char *buf, size_t len, int layers, int64_t total);

#endif
