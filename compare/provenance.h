/* provenance.h: what a report records about where its numbers came from. */
#ifndef DSV32_PROVENANCE_H
#define DSV32_PROVENANCE_H

#include "compare/result.h"
#include "core/error.h"

/* SHA-256 (hex) that identifies a checkpoint without reading hundreds of GB: over every
 * *.safetensors file of the directory (sorted by name; or the one file), their names, sizes and
 * complete headers (which hold every tensor's name, dtype, shape and offsets). Two checkpoints
 * with the same fingerprint differ at most in tensor bytes; `verify-shards` hashes those. */
dsv32_status dsv32_checkpoint_fingerprint(const char *path, char hex[65], dsv32_error *err);

/* tool version, build (compiler, CUDA on/off), UTC date */
void dsv32_prov_add_build(dsv32_cmp_result *r);

#endif
