/* cli_models.h: opening live models by layout name (cli/models.c). */
#ifndef DSV32_CLI_MODELS_H
#define DSV32_CLI_MODELS_H

#include <stdbool.h>

#include "core/config.h"
#include "core/model.h"
#include "ref/comm.h"

/* Open a live model of layout "ref" or "hf". config: NULL for the checkpoint's own. The ref
 * layout's world size is read from the shard file names (dsv32_cli_shards_world; a
 * opts->world_size of 1 counts as not given, as it is the default of --mp and :mp=). */
dsv32_status dsv32_cli_open_model_cfg(const char *layout, const char *checkpoint,
				      const char *config, const dsv32_model_opts *opts,
				      dsv32_model **out, dsv32_error *err);
dsv32_status dsv32_cli_open_model(const char *layout, const char *checkpoint,
				  const dsv32_model_opts *opts, dsv32_model **out, dsv32_error *err);
/* dsv32_cli_open_model_cfg with real tensor-parallel ranks: comm NULL (or inproc) = in-process;
 * else the ref layout runs as rank comm->rank (ref/ref_model.h dsv32_ref_open_comm); the hf
 * layout refuses a distributed comm (DSV32_E_USAGE). */
dsv32_status dsv32_cli_open_model_comm(const char *layout, const char *checkpoint,
				       const char *config, const dsv32_model_opts *opts,
				       dsv32_comm *comm, dsv32_model **out, dsv32_error *err);
/* --comm inproc|mpi|nccl and --comm-timeout S (run, dump): *out NULL for inproc (kind NULL);
 * timeout NULL = 60 s. DSV32_E_USAGE for a bad value; the backend's failure otherwise (an mpi
 * build without MPI: DSV32_E_UNSUPPORTED "built without MPI"). */
dsv32_status dsv32_cli_comm_open(const char *kind, const char *timeout, dsv32_comm **out,
				 dsv32_error *err);
/* On stderr, the host engine's note when OpenBLAS runs kernels far below this CPU
 * (kernels/host_info.h dsv32_host_blas_slow_note); for commands a live side of which uses the
 * host engine. */
void dsv32_cli_note_host_blas(void);
/* Whether this process prints and writes the command's outputs: in-process, or rank 0. */
bool dsv32_cli_comm_is_leader(const dsv32_comm *c);
/* The end of a command that opened c: code 0 closes it (every rank does). A failure (err: its
 * message, NULL when already printed) is printed by rank 0 when every rank knows it (an
 * agreement failed), else by the failing rank with its rank named, and then the whole job is
 * ended (dsv32_comm_abort), so no rank waits for it. Returns the exit code. */
int dsv32_cli_comm_finish(const char *cmd, dsv32_comm *c, int code, const dsv32_error *err);

/* The checkpoint's config (config_path NULL: <checkpoint>/config.json, HF or reference form);
 * false when it cannot be read. *is_hf (may be NULL) tells which form it was. */
bool dsv32_cli_checkpoint_config(const char *checkpoint, const char *config_path,
				 dsv32_config *c, bool *is_hf);
bool dsv32_cli_is_hf_checkpoint(const char *dir);
/* A directory of reference shards: model{r}-mp{W}.safetensors files and no HF checkpoint (no
 * model.safetensors, no index). */
bool dsv32_cli_is_shards_dir(const char *path);
/* The ref layout's world size for a checkpoint (model_opts.world_size): the W of its
 * model{r}-mp{W}.safetensors files. given: the --mp value, or 0 when the option was absent.
 * No shard files (an HF directory, which the ref layout slices in memory): given, or 1.
 * Errors (DSV32_E_USAGE): --mp differs from the files' W; files of two world sizes. */
dsv32_status dsv32_cli_shards_world(const char *checkpoint, int given, int *world,
				    dsv32_error *err);
/* Decoder layers of the checkpoint's model (config_path NULL: <checkpoint>/config.json, HF or
 * reference form); 0 when the config cannot be read. */
int64_t dsv32_cli_layer_count(const char *checkpoint, const char *config_path);
/* "N of TOTAL" for a --layers limit (TOTAL unknown: "N"; N = 0 or >= TOTAL: "TOTAL of TOTAL"),
 * the text reports record. */
void dsv32_cli_layers_text(char *buf, size_t len, int layers, int64_t total);

#endif
