/* provenance.h: what a report records about where its numbers came from. */
#ifndef DSV32_PROVENANCE_H
#define DSV32_PROVENANCE_H

#include <stdbool.h>
#include <stddef.h>

#include "compare/result.h"
#include "compare/runner.h"
#include "core/error.h"

/* SHA-256 (hex) that identifies a checkpoint without reading hundreds of GB: over every
 * *.safetensors file of the directory (sorted by name; or the one file), their names, sizes and
 * complete headers (which hold every tensor's name, dtype, shape and offsets). Two checkpoints
 * with the same fingerprint differ at most in tensor bytes; `verify-shards` hashes those. */
dsv32_status dsv32_checkpoint_fingerprint(const char *path, char hex[65], dsv32_error *err);

/* tool version, build (compiler, CUDA on/off), UTC date */
void dsv32_prov_add_build(dsv32_cmp_result *r);

/* Recording metadata keys that state the producer's GEMM engine and host (docs/tap-format.md
 * "Engine and host"; kernels/host_info.h). */
#define DSV32_META_GEMM_ENGINE "gemm_engine"
#define DSV32_META_NUMERICS_KEY "host_numerics_key"
#define DSV32_META_FINGERPRINT "host_fingerprint"

/* The host fingerprint of this machine for GEMM engine `engine` (DSV32_GEMM_FIXED or
 * DSV32_GEMM_HOST), as a report records it for a live side. */
void dsv32_side_host_live(dsv32_side_host *h, int engine);
/* What the recording at path (safetensors __metadata__ or HDF5 root attributes) says about its
 * producer's engine and host; engine and numerics_key "unknown" and line "unknown (recording
 * has no fingerprint)" when it has no host_fingerprint. */
void dsv32_side_host_recorded(dsv32_side_host *h, const char *path);
/* r->host[side] (0 = a, 1 = b) for side s: live (its opts.gemm_engine) or recorded. */
void dsv32_prov_add_side_host(dsv32_cmp_result *r, int side, const dsv32_side_spec *s);
/* The string metadata value `key` of a recording (safetensors __metadata__, or a root string
 * attribute of a .h5 / .hdf5 file) into out; false when the file or the key is absent. */
bool dsv32_recording_meta(const char *path, const char *key, char *out, size_t len);

/* Recording metadata key with the checkpoint fingerprint (dsv32_checkpoint_fingerprint) of the
 * weights the recording was made with; optional. */
#define DSV32_META_WEIGHTS_FP "weights_fingerprint_sha256"

/* Whether a recording can be compared with a live model of checkpoint: DSV32_E_USAGE naming the
 * first differing config field when the recording's "config" metadata is another model, or
 * when its weights fingerprint (if recorded) is not the checkpoint's. A recording without a
 * config or fingerprint passes, unless require_identity (the checkpoint was not named by the
 * user, e.g. the built-in model): then both must be stated and match. */
dsv32_status dsv32_recording_check_model(const char *rec, const char *checkpoint,
					 const char *ckpt_label, bool require_identity,
					 dsv32_error *err);
/* Two recordings: DSV32_E_USAGE when both state configs and they differ, or both state weights
 * fingerprints and they differ. Tokens, batch and steps are checked by dsv32_cmp_run. */
dsv32_status dsv32_recordings_check_pair(const char *a, const char *b, dsv32_error *err);

#endif
