/* validate.c: a converter's input checked against its config before anything is written
 * (issue 14): a converter used to write output that contradicted its config (no lm_head, 16-byte
 * shards of unrelated tensors, head products no kernel holds) and exit 0, leaving the failure
 * to a later `run`. The expected tensors are core/hf_names.h's list, the one `inspect` checks
 * coverage with, so the two never disagree on what a checkpoint must hold. */
#include "convert/conv_internal.h"

#include <stdio.h>
#include <string.h>

#include "core/hf_names.h"

#define MAX_DIM INT64_C(2147483647) /* tensor dims and kernel sizes are int in the ops */
#define MISSING_LISTED 3            /* missing names quoted in the message */

typedef struct {
	const char *name;
	int64_t v;
	int64_t max;
	const char *why;
} limit;

dsv32_status conv_validate_config(const dsv32_config *c, const char *label, dsv32_error *err)
{
	/* every field is <= 2^31-1 (dsv32_config_validate), so products of two fit in int64 */
	int64_t H = c->n_heads, qk = dsv32_config_qk_head_dim(c);
	const limit l[] = {
		{"n_heads*qk_head_dim", H * qk, MAX_DIM, "q_b_proj rows"},
		{"n_heads*(qk_nope_head_dim+v_head_dim)", H * (c->qk_nope_head_dim + c->v_head_dim),
		 MAX_DIM, "kv_b_proj rows"},
		{"n_heads*v_head_dim", H * c->v_head_dim, MAX_DIM, "o_proj columns"},
		{"kv_lora_rank+qk_rope_head_dim", c->kv_lora_rank + c->qk_rope_head_dim, MAX_DIM,
		 "kv_a_proj_with_mqa rows"},
		{"index_n_heads*index_head_dim", c->index_n_heads * c->index_head_dim, MAX_DIM,
		 "indexer.wq_b rows"},
		{"moe_inter_dim*n_shared_experts", c->moe_inter_dim * c->n_shared_experts, MAX_DIM,
		 "shared expert width"},
	};
	for (size_t i = 0; i < sizeof l / sizeof l[0]; i++)
		if (l[i].v > l[i].max)
			return DSV32_FAIL(err, DSV32_E_FORMAT, "%s: %s: %lld exceeds %lld (%s)", label,
					  l[i].name, (long long)l[i].v, (long long)l[i].max,
					  l[i].why);
	return DSV32_OK;
}

typedef struct {
	conv_find_fn find;
	const void *src;
	const char *label;
	size_t expected, missing;
	char listed[MISSING_LISTED * (2 * DSV32_NAME_MAX + 24)]; /* the first missing names */
} check_ctx;

/* "NAME (reference name REF)", as the model loaders name a tensor. */
static void both_names(char *out, size_t len, const char *hf)
{
	char ref[DSV32_NAME_MAX];
	if (dsv32_name_hf_to_ref(hf, 0, ref, sizeof ref, NULL, NULL) == DSV32_OK)
		snprintf(out, len, "%s (reference name %s)", hf, ref);
	else
		snprintf(out, len, "%s", hf);
}

static bool same_shape(const dsv32_hf_tensor *t, int ndim, const int64_t *shape)
{
	if (ndim != t->ndim)
		return false;
	for (int i = 0; i < ndim; i++)
		if (shape[i] != t->shape[i])
			return false;
	return true;
}

static dsv32_status check_one(const dsv32_hf_tensor *t, void *user, dsv32_error *err)
{
	check_ctx *c = user;
	char names[2 * DSV32_NAME_MAX + 24], got[96], want[96];
	int ndim = 0;
	const int64_t *shape = NULL;
	c->expected++;
	both_names(names, sizeof names, t->name);
	if (!c->find(c->src, t->name, &ndim, &shape)) {
		if (c->missing++ < MISSING_LISTED) {
			size_t n = strlen(c->listed);
			snprintf(c->listed + n, sizeof c->listed - n, "%s%s", n ? ", " : "", names);
		}
		return DSV32_OK;
	}
	if (!same_shape(t, ndim, shape))
		return DSV32_FAIL(err, DSV32_E_SHAPE, "%s: %s: shape %s, the config expects %s",
				  c->label, names, dsv32_shape_str(got, sizeof got, ndim, shape),
				  dsv32_shape_str(want, sizeof want, t->ndim, t->shape));
	return DSV32_OK;
}

dsv32_status conv_validate_tensors(const dsv32_config *c, bool fp8, conv_find_fn find,
				   const void *src, const char *label, dsv32_error *err)
{
	check_ctx ctx = {.find = find, .src = src, .label = label};
	DSV32_TRY(dsv32_hf_expected_tensors(c, fp8, check_one, &ctx, err));
	if (ctx.missing)
		return DSV32_FAIL(err, DSV32_E_NOTFOUND,
				  "%s: %zu of %zu tensors the config expects are missing: %s%s", label,
				  ctx.missing, ctx.expected, ctx.listed,
				  ctx.missing > MISSING_LISTED ? ", ..." : "");
	return DSV32_OK;
}
