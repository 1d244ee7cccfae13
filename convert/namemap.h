/* namemap.h: the HF <-> reference tensor-name map, split dimensions, expert placement and the
 * rank slice of a tensor (docs/spec/checkpoints.md §6.2-§6.4, §8).
 *
 * Names.  HF names ("model.layers.3.self_attn.o_proj.weight_scale_inv", "lm_head.weight") map to
 * reference names ("layers.3.attn.wo.scale", "head.weight") and back. The map is structural: a
 * name that does not follow the grammar of §6.3 is unknown (DSV32_E_NOTFOUND), never guessed.
 * Ambiguous reference names resolve by context (§6.4): "attn.wq_b" -> "self_attn.q_b_proj" but
 * "attn.indexer.wq_b" -> "self_attn.indexer.wq_b"; "ffn.gate.bias" ->
 * "mlp.gate.e_score_correction_bias" but "indexer.k_norm.bias" stays "bias"; ".scale" <->
 * ".weight_scale_inv"; the "model." prefix is added to everything except "lm_head.weight".
 * HF layers with index >= n_layers (the MTP layer 61 of the released checkpoint) are dropped,
 * as convert.py drops "model.layers.61": the call succeeds with info->dropped set.
 *
 * Splits.  Each tensor is split along dim 0, along dim 1, replicated (none), or is a routed
 * expert (whole, on one rank). The split is a property of the module: a weight's
 * weight_scale_inv / scale shares its weight's split (so wo's scale splits along dim 1).
 *
 * Experts.  With E routed experts and world size W, expert e lives on rank e / (E / W).
 *
 * Slices.  Rank r of W holds, of a tensor split along dim d of size n, the index range
 * [r·n/W, (r+1)·n/W) of dim d; in a row-major tensor that is `runs` contiguous byte runs
 * (one per index of the dims before d) of `run_bytes` each, the first at `offset` bytes into the
 * full tensor and the next ones `stride` bytes apart. The same numbers place a rank's slice when
 * reassembling the full tensor. Replicated tensors and experts are one run covering everything.
 */
#ifndef DSV32_NAMEMAP_H
#define DSV32_NAMEMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "core/tensor.h"

typedef enum {
	DSV32_SPLIT_NONE = 0, /* replicated: every rank holds the whole tensor */
	DSV32_SPLIT_DIM0,     /* rows (output dim) split across ranks */
	DSV32_SPLIT_DIM1,     /* columns (input dim) split across ranks */
	DSV32_SPLIT_EXPERT,   /* routed expert: whole tensor, only on its owner rank */
	DSV32_SPLIT_COUNT     /* append only, above this line */
} dsv32_split;

/* "none", "dim0", "dim1", "expert". */
const char *dsv32_split_name(dsv32_split s);

/* What the map knows about one tensor name. */
typedef struct {
	dsv32_split split;
	int64_t layer;  /* decoder layer index, -1 for embed / norm / head */
	int64_t expert; /* routed expert index (split == DSV32_SPLIT_EXPERT), else -1 */
	bool dropped;   /* HF name of a layer >= n_layers (MTP): no reference counterpart */
} dsv32_name_info;

/* Longest name either direction produces, NUL included; buffers of this size never truncate
 * for names whose layer and expert indices fit in 18 digits. */
#define DSV32_NAME_MAX 256

/* HF name -> reference name.
 *   hf        HF tensor name
 *   n_layers  decoder layers of the model; HF layers >= n_layers are dropped. <= 0: drop none
 *   out       receives the reference name ("" when dropped); len bytes
 *   info      receives split / layer / expert / dropped (may be NULL)
 * Errors: DSV32_E_NOTFOUND "<hf>: not a tensor name the HF->reference map knows";
 *         DSV32_E_USAGE when out is too small. */
dsv32_status dsv32_name_hf_to_ref(const char *hf, int64_t n_layers, char *out, size_t len,
				  dsv32_name_info *info, dsv32_error *err);

/* Reference name -> HF name; info as above (dropped is always false).
 * Errors: DSV32_E_NOTFOUND for a name outside the reference grammar; DSV32_E_USAGE when out is
 * too small. */
dsv32_status dsv32_name_ref_to_hf(const char *ref, char *out, size_t len, dsv32_name_info *info,
				  dsv32_error *err);

/* Owner rank of routed expert `expert` among n_experts at world size W: expert / (n_experts/W).
 * -1 if W does not divide n_experts or expert is out of range. */
int dsv32_expert_owner(int64_t expert, int64_t n_experts, int world);

/* Whether rank r of W holds the tensor described by info (replicated and split tensors: every
 * rank; routed experts: the owner only). */
bool dsv32_rank_holds(const dsv32_name_info *info, int rank, int world, int64_t n_experts);

/* The part of a full tensor that one rank holds, in bytes of the row-major full tensor. */
typedef struct {
	int ndim;
	int64_t shape[DSV32_MAX_DIMS]; /* the rank-local shape */
	uint64_t runs;                 /* number of contiguous byte runs */
	uint64_t run_bytes;            /* bytes per run */
	uint64_t offset;               /* byte offset of the first run in the full tensor */
	uint64_t stride;               /* bytes from one run's start to the next one's */
	uint64_t nbytes;               /* runs * run_bytes: size of the local tensor */
} dsv32_slice;

/* Slice of rank `rank` of `world` for a full tensor of the given dtype and shape split as
 * `split` (NONE and EXPERT give the whole tensor). `name` is only used in messages.
 * Errors: DSV32_E_USAGE (rank/world out of range), DSV32_E_SHAPE "<name>: dim 1 of size 56 does
 * not divide by world size 3" or "<name>: split along dim 1 but the tensor has 1 dim". */
dsv32_status dsv32_slice_for_rank(dsv32_slice *s, const char *name, dsv32_split split,
				  dsv32_dtype dtype, int ndim, const int64_t *shape, int rank,
				  int world, dsv32_error *err);

/* Full shape from a rank-local shape: the split dim multiplied by W, other dims as they are.
 * Errors: DSV32_E_SHAPE when the split dim does not exist. */
dsv32_status dsv32_full_shape(int64_t *full, const char *name, dsv32_split split, int ndim,
			      const int64_t *local, int world, dsv32_error *err);

/* The reference shard file name "model{rank}-mp{world}.safetensors" into out. false if it does
 * not fit. Parse: true and rank/world filled when `base` (a file name without directory) has
 * exactly that form. */
bool dsv32_shard_file_name(char *out, size_t len, int rank, int world);
bool dsv32_shard_file_parse(const char *base, int *rank, int *world);

#endif
