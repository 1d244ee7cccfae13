/* namemap.c: HF <-> reference tensor names, split dims, expert owners and rank slices
 * (docs/spec/checkpoints.md §6.2-§6.4, §8). One table of module patterns serves both directions;
 * '#' in a pattern stands for a decimal index (layer, then expert). */
#include "convert/namemap.h"

#include <stdio.h>
#include <string.h>

enum {
	P_W = 1,  /* weight <-> weight */
	P_S = 2,  /* weight_scale_inv <-> scale */
	P_B = 4,  /* bias <-> bias */
	P_EB = 8, /* e_score_correction_bias <-> bias (the MoE gate) */
};

typedef struct {
	const char *hf;  /* HF module pattern */
	const char *ref; /* reference module pattern */
	dsv32_split split;
	unsigned params;
} module_rule;

#define LIN (P_W | P_S)

static const module_rule rules[] = {
	{"model.embed_tokens", "embed", DSV32_SPLIT_DIM0, P_W},
	{"model.norm", "norm", DSV32_SPLIT_NONE, P_W},
	{"lm_head", "head", DSV32_SPLIT_DIM0, LIN},
	{"model.layers.#.input_layernorm", "layers.#.attn_norm", DSV32_SPLIT_NONE, P_W},
	{"model.layers.#.post_attention_layernorm", "layers.#.ffn_norm", DSV32_SPLIT_NONE, P_W},
	{"model.layers.#.self_attn.q_proj", "layers.#.attn.wq", DSV32_SPLIT_DIM0, LIN},
	{"model.layers.#.self_attn.q_a_proj", "layers.#.attn.wq_a", DSV32_SPLIT_NONE, LIN},
	{"model.layers.#.self_attn.q_a_layernorm", "layers.#.attn.q_norm", DSV32_SPLIT_NONE, P_W},
	{"model.layers.#.self_attn.q_b_proj", "layers.#.attn.wq_b", DSV32_SPLIT_DIM0, LIN},
	{"model.layers.#.self_attn.kv_a_proj_with_mqa", "layers.#.attn.wkv_a", DSV32_SPLIT_NONE, LIN},
	{"model.layers.#.self_attn.kv_a_layernorm", "layers.#.attn.kv_norm", DSV32_SPLIT_NONE, P_W},
	{"model.layers.#.self_attn.kv_b_proj", "layers.#.attn.wkv_b", DSV32_SPLIT_DIM0, LIN},
	{"model.layers.#.self_attn.o_proj", "layers.#.attn.wo", DSV32_SPLIT_DIM1, LIN},
	{"model.layers.#.self_attn.indexer.wq_b", "layers.#.attn.indexer.wq_b", DSV32_SPLIT_NONE, LIN},
	{"model.layers.#.self_attn.indexer.wk", "layers.#.attn.indexer.wk", DSV32_SPLIT_NONE, LIN},
	{"model.layers.#.self_attn.indexer.k_norm", "layers.#.attn.indexer.k_norm", DSV32_SPLIT_NONE,
	 P_W | P_B},
	{"model.layers.#.self_attn.indexer.weights_proj", "layers.#.attn.indexer.weights_proj",
	 DSV32_SPLIT_NONE, LIN},
	{"model.layers.#.mlp.gate_proj", "layers.#.ffn.w1", DSV32_SPLIT_DIM0, LIN},
	{"model.layers.#.mlp.up_proj", "layers.#.ffn.w3", DSV32_SPLIT_DIM0, LIN},
	{"model.layers.#.mlp.down_proj", "layers.#.ffn.w2", DSV32_SPLIT_DIM1, LIN},
	{"model.layers.#.mlp.gate", "layers.#.ffn.gate", DSV32_SPLIT_NONE, LIN | P_EB},
	{"model.layers.#.mlp.shared_experts.gate_proj", "layers.#.ffn.shared_experts.w1",
	 DSV32_SPLIT_DIM0, LIN},
	{"model.layers.#.mlp.shared_experts.up_proj", "layers.#.ffn.shared_experts.w3",
	 DSV32_SPLIT_DIM0, LIN},
	{"model.layers.#.mlp.shared_experts.down_proj", "layers.#.ffn.shared_experts.w2",
	 DSV32_SPLIT_DIM1, LIN},
	{"model.layers.#.mlp.experts.#.gate_proj", "layers.#.ffn.experts.#.w1", DSV32_SPLIT_EXPERT,
	 LIN},
	{"model.layers.#.mlp.experts.#.up_proj", "layers.#.ffn.experts.#.w3", DSV32_SPLIT_EXPERT, LIN},
	{"model.layers.#.mlp.experts.#.down_proj", "layers.#.ffn.experts.#.w2", DSV32_SPLIT_EXPERT,
	 LIN},
};

typedef struct {
	unsigned bit;
	const char *hf, *ref;
} param_rule;

static const param_rule params[] = {
	{P_W, "weight", "weight"},
	{P_S, "weight_scale_inv", "scale"},
	{P_B, "bias", "bias"},
	{P_EB, "e_score_correction_bias", "bias"},
};

const char *dsv32_split_name(dsv32_split s)
{
	static const char *names[] = {"none", "dim0", "dim1", "expert"};
	return (unsigned)s < DSV32_SPLIT_COUNT ? names[s] : "?";
}

/* Parse a decimal index without sign or leading zeros (so the map stays one-to-one). Returns
 * the number of characters used, 0 if none. */
static size_t parse_index(const char *s, size_t n, int64_t *v)
{
	size_t i = 0;
	int64_t x = 0;
	while (i < n && s[i] >= '0' && s[i] <= '9' && i < 18)
		x = x * 10 + (s[i++] - '0');
	if (i == 0 || (i > 1 && s[0] == '0') || (i < n && s[i] >= '0' && s[i] <= '9'))
		return 0;
	*v = x;
	return i;
}

/* Whether module (n bytes) matches pattern; fills up to two '#' indices in order. */
static bool pattern_match(const char *pat, const char *mod, size_t n, int64_t idx[2], int *nidx)
{
	size_t i = 0;
	*nidx = 0;
	for (; *pat; pat++) {
		if (*pat == '#') {
			size_t used = parse_index(mod + i, n - i, &idx[*nidx < 2 ? *nidx : 1]);
			if (!used || *nidx >= 2)
				return false;
			(*nidx)++;
			i += used;
		} else {
			if (i >= n || mod[i] != *pat)
				return false;
			i++;
		}
	}
	return i == n;
}

/* Write pattern with '#' replaced by the indices, then "." and param, into out. */
static bool pattern_render(char *out, size_t len, const char *pat, const int64_t idx[2],
			   const char *param)
{
	size_t o = 0;
	int k = 0;
	for (; *pat; pat++) {
		int w;
		if (*pat == '#')
			w = snprintf(out + o, len - o, "%lld", (long long)idx[k++]);
		else
			w = snprintf(out + o, len - o, "%c", *pat);
		if (w < 0 || (size_t)w >= len - o)
			return false;
		o += (size_t)w;
	}
	int w = snprintf(out + o, len - o, ".%s", param);
	return w >= 0 && (size_t)w < len - o;
}

static void info_fill(dsv32_name_info *info, const module_rule *r, const int64_t idx[2], int nidx)
{
	if (!info)
		return;
	info->split = r->split;
	info->layer = nidx >= 1 ? idx[0] : -1;
	info->expert = (r->split == DSV32_SPLIT_EXPERT && nidx >= 2) ? idx[1] : -1;
	info->dropped = false;
}

/* Shared lookup: from one side's name to the other's. to_ref selects the direction. */
static dsv32_status map_name(const char *name, bool to_ref, char *out, size_t len,
			     dsv32_name_info *info, dsv32_error *err)
{
	const char *dot = strrchr(name, '.');
	if (!dot || dot == name || !dot[1])
		goto out_unknown;
	size_t n = (size_t)(dot - name);
	const char *param = dot + 1;
	for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++) {
		const module_rule *r = &rules[i];
		int64_t idx[2] = {-1, -1};
		int nidx;
		if (!pattern_match(to_ref ? r->hf : r->ref, name, n, idx, &nidx))
			continue;
		for (size_t j = 0; j < sizeof params / sizeof params[0]; j++) {
			const param_rule *p = &params[j];
			if (!(r->params & p->bit) || strcmp(param, to_ref ? p->hf : p->ref))
				continue;
			if (!pattern_render(out, len, to_ref ? r->ref : r->hf, idx,
					    to_ref ? p->ref : p->hf))
				return DSV32_FAIL(err, DSV32_E_USAGE,
						  "%s: mapped name does not fit in %zu bytes", name, len);
			info_fill(info, r, idx, nidx);
			return DSV32_OK;
		}
		break; /* module known, parameter not */
	}
out_unknown:
	return DSV32_FAIL(err, DSV32_E_NOTFOUND, "%s: not a tensor name the %s map knows", name,
			  to_ref ? "HF->reference" : "reference->HF");
}

dsv32_status dsv32_name_hf_to_ref(const char *hf, int64_t n_layers, char *out, size_t len,
				  dsv32_name_info *info, dsv32_error *err)
{
	static const char prefix[] = "model.layers.";
	if (!hf || !out || len == 0)
		return DSV32_FAIL(err, DSV32_E_USAGE, "dsv32_name_hf_to_ref: NULL argument");
	out[0] = '\0';
	if (n_layers > 0 && !strncmp(hf, prefix, sizeof prefix - 1)) {
		const char *s = hf + sizeof prefix - 1;
		int64_t L;
		size_t used = parse_index(s, strlen(s), &L);
		if (used && s[used] == '.' && L >= n_layers) {
			if (info)
				*info = (dsv32_name_info){DSV32_SPLIT_NONE, L, -1, true};
			return DSV32_OK;
		}
	}
	return map_name(hf, true, out, len, info, err);
}

dsv32_status dsv32_name_ref_to_hf(const char *ref, char *out, size_t len, dsv32_name_info *info,
				  dsv32_error *err)
{
	if (!ref || !out || len == 0)
		return DSV32_FAIL(err, DSV32_E_USAGE, "dsv32_name_ref_to_hf: NULL argument");
	out[0] = '\0';
	return map_name(ref, false, out, len, info, err);
}

int dsv32_expert_owner(int64_t expert, int64_t n_experts, int world)
{
	if (world <= 0 || n_experts <= 0 || n_experts % world || expert < 0 || expert >= n_experts)
		return -1;
	return (int)(expert / (n_experts / world));
}

bool dsv32_rank_holds(const dsv32_name_info *info, int rank, int world, int64_t n_experts)
{
	if (info->split != DSV32_SPLIT_EXPERT)
		return rank >= 0 && rank < world;
	return dsv32_expert_owner(info->expert, n_experts, world) == rank;
}

static int split_dim(dsv32_split split)
{
	return split == DSV32_SPLIT_DIM0 ? 0 : split == DSV32_SPLIT_DIM1 ? 1 : -1;
}

dsv32_status dsv32_slice_for_rank(dsv32_slice *s, const char *name, dsv32_split split,
				  dsv32_dtype dtype, int ndim, const int64_t *shape, int rank,
				  int world, dsv32_error *err)
{
	if (world <= 0 || rank < 0 || rank >= world)
		return DSV32_FAIL(err, DSV32_E_USAGE, "%s: rank %d outside world size %d", name, rank,
				  world);
	if (ndim < 0 || ndim > DSV32_MAX_DIMS)
		return DSV32_FAIL(err, DSV32_E_SHAPE, "%s: %d dims", name, ndim);
	int d = split_dim(split);
	if (d >= ndim)
		return DSV32_FAIL(err, DSV32_E_SHAPE, "%s: split along dim %d but the tensor has %d dim%s",
				  name, d, ndim, ndim == 1 ? "" : "s");
	s->ndim = ndim;
	uint64_t outer = 1, inner = dsv32_dtype_size(dtype);
	for (int i = 0; i < ndim; i++) {
		s->shape[i] = shape[i];
		if (d >= 0 && i < d)
			outer *= (uint64_t)shape[i];
		else if (i != d)
			inner *= (uint64_t)shape[i];
	}
	if (d < 0) {
		s->runs = 1;
		s->run_bytes = inner;
		s->offset = 0;
		s->stride = inner;
		s->nbytes = inner;
		return DSV32_OK;
	}
	int64_t n = shape[d];
	if (n % world)
		return DSV32_FAIL(err, DSV32_E_SHAPE,
				  "%s: dim %d of size %lld does not divide by world size %d", name, d,
				  (long long)n, world);
	int64_t local = n / world;
	s->shape[d] = local;
	s->runs = outer;
	s->run_bytes = (uint64_t)local * inner;
	s->offset = (uint64_t)rank * (uint64_t)local * inner;
	s->stride = (uint64_t)n * inner;
	s->nbytes = s->runs * s->run_bytes;
	return DSV32_OK;
}

dsv32_status dsv32_full_shape(int64_t *full, const char *name, dsv32_split split, int ndim,
			      const int64_t *local, int world, dsv32_error *err)
{
	int d = split_dim(split);
	if (d >= ndim)
		return DSV32_FAIL(err, DSV32_E_SHAPE, "%s: split along dim %d but the tensor has %d dim%s",
				  name, d, ndim, ndim == 1 ? "" : "s");
	for (int i = 0; i < ndim; i++)
		full[i] = i == d ? local[i] * world : local[i];
	return DSV32_OK;
}

bool dsv32_shard_file_name(char *out, size_t len, int rank, int world)
{
	int n = snprintf(out, len, "model%d-mp%d.safetensors", rank, world);
	return n >= 0 && (size_t)n < len;
}

bool dsv32_shard_file_parse(const char *base, int *rank, int *world)
{
	static const char ext[] = ".safetensors";
	int64_t r, w;
	size_t n = strlen(base), used;
	if (strncmp(base, "model", 5))
		return false;
	base += 5;
	n -= 5;
	if (!(used = parse_index(base, n, &r)) || strncmp(base + used, "-mp", 3))
		return false;
	base += used + 3;
	n -= used + 3;
	if (!(used = parse_index(base, n, &w)) || strcmp(base + used, ext))
		return false;
	if (w <= 0 || r >= w || w > 1 << 20)
		return false;
	*rank = (int)r;
	*world = (int)w;
	return true;
}
