/* config.c: read and write the DeepSeek V3.2 config in its two forms (docs/spec/checkpoints.md §3-§4,
 * docs/spec/ref_layout.md §1.1, docs/spec/hf_layout.md §1) and validate it (docs/spec/ref_layout.md §C.11).
 *
 * Project decisions where the two forms do not carry the same information:
 *   max_seq_len   HF has none (a reference runtime field). Reading HF: 16384 (the ModelArgs
 *                 default) unless max_position_embeddings is smaller, then that. Reading the
 *                 reference form: max_position_embeddings = max_seq_len.
 *   scale_fmt     HF carries it only in quantization_config. Without one (bf16 weights) we take
 *                 "ue8m0", the value of every V3.2 config; the reference form keeps its own.
 *   YaRN          HF: on iff rope_scaling/rope_parameters has type "yarn". Without it,
 *                 original_seq_len = max_position_embeddings, so the reference's switch
 *                 (max_seq_len > original_seq_len) is off as well. Reading the reference form:
 *                 rope_yarn = (max_seq_len > original_seq_len).
 *   mscale_all_dim absent from an HF rope_scaling is stored as 0 ("falsy", the value HF's
 *                 attention-factor rule tests for) and not written back.
 */
#include "core/config.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/infile.h"

#define CFG_HF_SEQ_DEFAULT 16384
/* cJSON holds numbers as doubles: 2^53 + 1 reads back as 2^53, so no integer at or above 2^53
 * is known to be the one the file wrote. */
#define CFG_MAX_JSON_INT 9007199254740992.0

void dsv32_config_defaults(dsv32_config *c)
{
	memset(c, 0, sizeof *c);
	c->max_batch_size = 8;
	c->max_seq_len = 16384;
	c->dtype = DSV32_WDTYPE_BF16;
	c->scale_fmt_ue8m0 = false;
	c->vocab_size = 102400;
	c->dim = 2048;
	c->inter_dim = 10944;
	c->moe_inter_dim = 1408;
	c->n_layers = 27;
	c->n_dense_layers = 1;
	c->n_heads = 16;
	c->n_routed_experts = 64;
	c->n_shared_experts = 2;
	c->n_activated_experts = 6;
	c->n_expert_groups = 1;
	c->n_limited_groups = 1;
	c->score_func = DSV32_SCORE_SOFTMAX;
	c->route_scale = 1.0;
	c->q_lora_rank = 0;
	c->kv_lora_rank = 512;
	c->qk_nope_head_dim = 128;
	c->qk_rope_head_dim = 64;
	c->v_head_dim = 128;
	c->original_seq_len = 4096;
	c->rope_theta = 10000.0;
	c->rope_factor = 40;
	c->beta_fast = 32;
	c->beta_slow = 1;
	c->mscale = 1.0;
	c->index_n_heads = 64;
	c->index_head_dim = 128;
	c->index_topk = 2048;

	c->rms_norm_eps = 1e-6;
	c->mscale_all_dim = 1.0;
	c->has_attention_factor = false;
	c->attention_factor = 1.0;
	c->rope_yarn = true;
	c->max_position_embeddings = 16384;
	c->norm_topk_prob = true;
	c->num_nextn_predict_layers = 0;
	c->bos_token_id = 0;
	c->eos_token_id = 1;
	c->has_quant = false;
	c->quant_block[0] = 128;
	c->quant_block[1] = 128;
}

/* ---- field tables ---- */
typedef enum { F_INT, F_DBL } ftype;
typedef struct {
	const char *key;
	size_t off;
	ftype type;
	bool required; /* HF only: architecture fields have no safe default */
} field;

#define FI(k, m, r) {k, offsetof(dsv32_config, m), F_INT, r}
#define FD(k, m, r) {k, offsetof(dsv32_config, m), F_DBL, r}

static const field hf_fields[] = {
	FI("vocab_size", vocab_size, true),
	FI("hidden_size", dim, true),
	FI("intermediate_size", inter_dim, true),
	FI("moe_intermediate_size", moe_inter_dim, true),
	FI("num_hidden_layers", n_layers, true),
	FI("num_attention_heads", n_heads, true),
	FI("n_shared_experts", n_shared_experts, true),
	FI("n_routed_experts", n_routed_experts, true),
	FD("routed_scaling_factor", route_scale, true),
	FI("kv_lora_rank", kv_lora_rank, true),
	FI("q_lora_rank", q_lora_rank, true),
	FI("qk_rope_head_dim", qk_rope_head_dim, true),
	FI("qk_nope_head_dim", qk_nope_head_dim, true),
	FI("v_head_dim", v_head_dim, true),
	FI("n_group", n_expert_groups, true),
	FI("topk_group", n_limited_groups, true),
	FI("num_experts_per_tok", n_activated_experts, true),
	FI("first_k_dense_replace", n_dense_layers, true),
	FI("index_n_heads", index_n_heads, true),
	FI("index_head_dim", index_head_dim, true),
	FI("index_topk", index_topk, true),
	FI("max_position_embeddings", max_position_embeddings, false),
	FD("rms_norm_eps", rms_norm_eps, false),
	FI("num_nextn_predict_layers", num_nextn_predict_layers, false),
	FI("bos_token_id", bos_token_id, false),
	FI("eos_token_id", eos_token_id, false),
};

static const field ref_fields[] = {
	FI("max_batch_size", max_batch_size, false),
	FI("max_seq_len", max_seq_len, false),
	FI("vocab_size", vocab_size, false),
	FI("dim", dim, false),
	FI("inter_dim", inter_dim, false),
	FI("moe_inter_dim", moe_inter_dim, false),
	FI("n_layers", n_layers, false),
	FI("n_dense_layers", n_dense_layers, false),
	FI("n_heads", n_heads, false),
	FI("n_routed_experts", n_routed_experts, false),
	FI("n_shared_experts", n_shared_experts, false),
	FI("n_activated_experts", n_activated_experts, false),
	FI("n_expert_groups", n_expert_groups, false),
	FI("n_limited_groups", n_limited_groups, false),
	FD("route_scale", route_scale, false),
	FI("q_lora_rank", q_lora_rank, false),
	FI("kv_lora_rank", kv_lora_rank, false),
	FI("qk_nope_head_dim", qk_nope_head_dim, false),
	FI("qk_rope_head_dim", qk_rope_head_dim, false),
	FI("v_head_dim", v_head_dim, false),
	FI("original_seq_len", original_seq_len, false),
	FD("rope_theta", rope_theta, false),
	FD("rope_factor", rope_factor, false),
	FD("beta_fast", beta_fast, false),
	FD("beta_slow", beta_slow, false),
	FD("mscale", mscale, false),
	FI("index_n_heads", index_n_heads, false),
	FI("index_head_dim", index_head_dim, false),
	FI("index_topk", index_topk, false),
};

#define NFIELDS(t) (sizeof(t) / sizeof((t)[0]))

/* An integer-valued JSON number into *out: integral, and below 2^53 so that it is the number the
 * file wrote (the reason is stated: "not an integer" for 2^53 + 1 sent users looking for a dot). */
static dsv32_status json_int(double d, const char *label, const char *prefix, const char *key,
			     int64_t *out, dsv32_error *err)
{
	if (d != floor(d))
		return DSV32_FAIL(err, DSV32_E_FORMAT, "%s: %s%s: %g is not an integer", label,
				  prefix, key, d);
	if (fabs(d) >= CFG_MAX_JSON_INT)
		return DSV32_FAIL(err, DSV32_E_FORMAT,
				  "%s: %s%s: %.17g is not exactly representable (>= 2^53: JSON "
				  "numbers are read as doubles)", label, prefix, key, d);
	*out = (int64_t)d;
	return DSV32_OK;
}

/* Store a JSON number into an int or double field; ints must be integral and in range. */
static dsv32_status set_number(dsv32_config *c, const field *f, const cJSON *v, const char *label,
			       const char *prefix, dsv32_error *err)
{
	if (!cJSON_IsNumber(v))
		return DSV32_FAIL(err, DSV32_E_FORMAT, "%s: %s%s: expected a number", label, prefix,
				  f->key);
	double d = v->valuedouble;
	char *p = (char *)c + f->off;
	if (f->type == F_DBL) {
		if (!isfinite(d))
			return DSV32_FAIL(err, DSV32_E_FORMAT, "%s: %s%s: not finite", label, prefix,
					  f->key);
		memcpy(p, &d, sizeof d);
		return DSV32_OK;
	}
	int64_t i = 0; /* set by json_int on success; zero keeps -O3 -Wmaybe-uninitialized quiet */
	DSV32_TRY(json_int(d, label, prefix, f->key, &i, err));
	memcpy(p, &i, sizeof i);
	return DSV32_OK;
}

static dsv32_status parse_root(cJSON **root, const char *json, const char *label, dsv32_error *err)
{
	*root = cJSON_Parse(json);
	if (!*root) {
		const char *at = cJSON_GetErrorPtr();
		int line = 1, col = 1;
		for (const char *p = json; at && p < at && *p; p++, col++)
			if (*p == '\n')
				line++, col = 0;
		return DSV32_FAIL(err, DSV32_E_FORMAT, "%s: invalid JSON at line %d, column %d",
				  label, line, col);
	}
	if (!cJSON_IsObject(*root)) {
		cJSON_Delete(*root);
		*root = NULL;
		return DSV32_FAIL(err, DSV32_E_FORMAT, "%s: top level is not a JSON object", label);
	}
	dsv32_status st = dsv32_json_check_unique_keys(*root, label, err);
	if (st != DSV32_OK) {
		cJSON_Delete(*root);
		*root = NULL;
	}
	return st;
}

/* Optional double inside an object: absent or null leaves *out as is, sets *found false. */
static dsv32_status get_opt_dbl(const cJSON *obj, const char *key, double *out, bool *found,
				const char *label, const char *prefix, dsv32_error *err)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
	if (found)
		*found = false;
	if (!v || cJSON_IsNull(v))
		return DSV32_OK;
	if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
		return DSV32_FAIL(err, DSV32_E_FORMAT, "%s: %s%s: expected a finite number", label,
				  prefix, key);
	*out = v->valuedouble;
	if (found)
		*found = true;
	return DSV32_OK;
}

/* rope_scaling (v4) or rope_parameters (v5). */
static dsv32_status parse_hf_rope(dsv32_config *c, const cJSON *root, const char *label,
				  dsv32_error *err)
{
	const cJSON *rs = cJSON_GetObjectItemCaseSensitive(root, "rope_parameters");
	const char *pfx = "rope_parameters.";
	if (!rs || cJSON_IsNull(rs)) {
		rs = cJSON_GetObjectItemCaseSensitive(root, "rope_scaling");
		pfx = "rope_scaling.";
	}
	DSV32_TRY(get_opt_dbl(root, "rope_theta", &c->rope_theta, NULL, label, "", err));
	c->rope_yarn = false;
	c->has_attention_factor = false;
	if (!rs || cJSON_IsNull(rs))
		return DSV32_OK;
	if (!cJSON_IsObject(rs))
		return DSV32_FAIL(err, DSV32_E_FORMAT, "%s: %.*s: expected an object", label,
				  (int)strlen(pfx) - 1, pfx);
	DSV32_TRY(get_opt_dbl(rs, "rope_theta", &c->rope_theta, NULL, label, pfx, err));
	const cJSON *t = cJSON_GetObjectItemCaseSensitive(rs, "rope_type");
	if (!t)
		t = cJSON_GetObjectItemCaseSensitive(rs, "type");
	if (!t || !cJSON_IsString(t))
		return DSV32_FAIL(err, DSV32_E_FORMAT, "%s: %stype: missing or not a string", label,
				  pfx);
	if (strcmp(t->valuestring, "default") == 0)
		return DSV32_OK;
	if (strcmp(t->valuestring, "yarn") != 0)
		return DSV32_FAIL(err, DSV32_E_UNSUPPORTED, "%s: %stype: \"%s\", expected \"yarn\"",
				  label, pfx, t->valuestring);
	c->rope_yarn = true;
	bool found;
	DSV32_TRY(get_opt_dbl(rs, "factor", &c->rope_factor, &found, label, pfx, err));
	if (!found)
		return DSV32_FAIL(err, DSV32_E_FORMAT, "%s: %sfactor: missing", label, pfx);
	double orig = 0;
	DSV32_TRY(get_opt_dbl(rs, "original_max_position_embeddings", &orig, &found, label, pfx,
			      err));
	if (!found)
		return DSV32_FAIL(err, DSV32_E_FORMAT,
				  "%s: %soriginal_max_position_embeddings: missing", label, pfx);
	DSV32_TRY(json_int(orig, label, pfx, "original_max_position_embeddings",
			   &c->original_seq_len, err));
	DSV32_TRY(get_opt_dbl(rs, "beta_fast", &c->beta_fast, NULL, label, pfx, err));
	DSV32_TRY(get_opt_dbl(rs, "beta_slow", &c->beta_slow, NULL, label, pfx, err));
	DSV32_TRY(get_opt_dbl(rs, "mscale", &c->mscale, NULL, label, pfx, err));
	c->mscale_all_dim = 0.0; /* absent = falsy, as HF tests it */
	DSV32_TRY(get_opt_dbl(rs, "mscale_all_dim", &c->mscale_all_dim, NULL, label, pfx, err));
	DSV32_TRY(get_opt_dbl(rs, "attention_factor", &c->attention_factor,
			      &c->has_attention_factor, label, pfx, err));
	return DSV32_OK;
}

static dsv32_status parse_hf_quant(dsv32_config *c, const cJSON *root, const char *label,
				   dsv32_error *err)
{
	const cJSON *q = cJSON_GetObjectItemCaseSensitive(root, "quantization_config");
	c->has_quant = false;
	c->dtype = DSV32_WDTYPE_BF16;
	c->scale_fmt_ue8m0 = true; /* see the file comment */
	if (!q || cJSON_IsNull(q))
		return DSV32_OK;
	if (!cJSON_IsObject(q))
		return DSV32_FAIL(err, DSV32_E_FORMAT, "%s: quantization_config: expected an object",
				  label);
	const cJSON *m = cJSON_GetObjectItemCaseSensitive(q, "quant_method");
	if (!cJSON_IsString(m) || strcmp(m->valuestring, "fp8") != 0)
		return DSV32_FAIL(err, DSV32_E_UNSUPPORTED,
				  "%s: quantization_config.quant_method: %s, expected \"fp8\"", label,
				  cJSON_IsString(m) ? m->valuestring : "missing");
	const cJSON *f = cJSON_GetObjectItemCaseSensitive(q, "fmt");
	if (f && !(cJSON_IsString(f) && strcmp(f->valuestring, "e4m3") == 0))
		return DSV32_FAIL(err, DSV32_E_UNSUPPORTED,
				  "%s: quantization_config.fmt: expected \"e4m3\"", label);
	const cJSON *s = cJSON_GetObjectItemCaseSensitive(q, "scale_fmt");
	if (!s || cJSON_IsNull(s))
		c->scale_fmt_ue8m0 = false;
	else if (cJSON_IsString(s) && strcmp(s->valuestring, "ue8m0") == 0)
		c->scale_fmt_ue8m0 = true;
	else
		return DSV32_FAIL(err, DSV32_E_UNSUPPORTED,
				  "%s: quantization_config.scale_fmt: expected \"ue8m0\" or null",
				  label);
	const cJSON *b = cJSON_GetObjectItemCaseSensitive(q, "weight_block_size");
	if (b) {
		if (!cJSON_IsArray(b) || cJSON_GetArraySize(b) != 2 ||
		    !cJSON_IsNumber(cJSON_GetArrayItem(b, 0)) ||
		    !cJSON_IsNumber(cJSON_GetArrayItem(b, 1)) ||
		    !(fabs(cJSON_GetArrayItem(b, 0)->valuedouble) <= 9.0e15) ||
		    !(fabs(cJSON_GetArrayItem(b, 1)->valuedouble) <= 9.0e15))
			return DSV32_FAIL(err, DSV32_E_FORMAT,
					  "%s: quantization_config.weight_block_size: expected [int, int]",
					  label);
		c->quant_block[0] = (int64_t)cJSON_GetArrayItem(b, 0)->valuedouble;
		c->quant_block[1] = (int64_t)cJSON_GetArrayItem(b, 1)->valuedouble;
	}
	c->has_quant = true;
	c->dtype = DSV32_WDTYPE_FP8;
	return DSV32_OK;
}

static dsv32_status parse_hf(dsv32_config *c, const cJSON *root, const char *label,
			     dsv32_error *err)
{
	for (size_t i = 0; i < NFIELDS(hf_fields); i++) {
		const field *f = &hf_fields[i];
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, f->key);
		if (!v || cJSON_IsNull(v)) {
			if (f->required)
				return DSV32_FAIL(err, DSV32_E_FORMAT,
						  "%s: %s: required field missing", label, f->key);
			continue;
		}
		DSV32_TRY(set_number(c, f, v, label, "", err));
	}
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "scoring_func");
	if (v && !cJSON_IsNull(v)) {
		if (cJSON_IsString(v) && strcmp(v->valuestring, "sigmoid") == 0)
			c->score_func = DSV32_SCORE_SIGMOID;
		else if (cJSON_IsString(v) && strcmp(v->valuestring, "softmax") == 0)
			c->score_func = DSV32_SCORE_SOFTMAX;
		else
			return DSV32_FAIL(err, DSV32_E_FORMAT,
					  "%s: scoring_func: expected \"sigmoid\" or \"softmax\"", label);
	}
	v = cJSON_GetObjectItemCaseSensitive(root, "norm_topk_prob");
	if (v && !cJSON_IsNull(v)) {
		if (!cJSON_IsBool(v))
			return DSV32_FAIL(err, DSV32_E_FORMAT, "%s: norm_topk_prob: expected a bool",
					  label);
		c->norm_topk_prob = cJSON_IsTrue(v);
	}
	v = cJSON_GetObjectItemCaseSensitive(root, "num_key_value_heads");
	if (v && cJSON_IsNumber(v) && v->valuedouble != (double)c->n_heads)
		return DSV32_FAIL(err, DSV32_E_FORMAT,
				  "%s: num_key_value_heads: %g, expected num_attention_heads %lld",
				  label, v->valuedouble, (long long)c->n_heads);
	DSV32_TRY(parse_hf_rope(c, root, label, err));
	DSV32_TRY(parse_hf_quant(c, root, label, err));
	c->max_seq_len = c->max_position_embeddings < CFG_HF_SEQ_DEFAULT
				 ? c->max_position_embeddings
				 : CFG_HF_SEQ_DEFAULT;
	if (!c->rope_yarn)
		c->original_seq_len = c->max_position_embeddings;
	return DSV32_OK;
}

dsv32_status dsv32_config_from_hf_json(dsv32_config *c, const char *json, const char *label,
				       dsv32_error *err)
{
	cJSON *root;
	dsv32_config_defaults(c);
	c->score_func = DSV32_SCORE_SIGMOID; /* HF always routes with sigmoid */
	c->max_position_embeddings = 163840; /* HF default */
	DSV32_TRY(parse_root(&root, json, label, err));
	dsv32_status st = parse_hf(c, root, label, err);
	cJSON_Delete(root);
	return st;
}

static const field *find_field(const field *t, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(t[i].key, key) == 0)
			return &t[i];
	return NULL;
}

static dsv32_status parse_ref_string(dsv32_config *c, const cJSON *v, const char *label,
				     dsv32_error *err)
{
	const char *k = v->string;
	const char *s = cJSON_IsString(v) ? v->valuestring : NULL;
	if (strcmp(k, "dtype") == 0) {
		if (s && strcmp(s, "bf16") == 0)
			c->dtype = DSV32_WDTYPE_BF16;
		else if (s && strcmp(s, "fp8") == 0)
			c->dtype = DSV32_WDTYPE_FP8;
		else
			return DSV32_FAIL(err, DSV32_E_FORMAT,
					  "%s: dtype: expected \"bf16\" or \"fp8\"", label);
	} else if (strcmp(k, "scale_fmt") == 0) {
		if (cJSON_IsNull(v))
			c->scale_fmt_ue8m0 = false;
		else if (s && strcmp(s, "ue8m0") == 0)
			c->scale_fmt_ue8m0 = true;
		else
			return DSV32_FAIL(err, DSV32_E_FORMAT,
					  "%s: scale_fmt: expected \"ue8m0\" or null", label);
	} else {
		if (s && strcmp(s, "sigmoid") == 0)
			c->score_func = DSV32_SCORE_SIGMOID;
		else if (s && strcmp(s, "softmax") == 0)
			c->score_func = DSV32_SCORE_SOFTMAX;
		else
			return DSV32_FAIL(err, DSV32_E_FORMAT,
					  "%s: score_func: expected \"softmax\" or \"sigmoid\"", label);
	}
	return DSV32_OK;
}

dsv32_status dsv32_config_from_ref_json(dsv32_config *c, const char *json, const char *label,
					dsv32_error *err)
{
	cJSON *root;
	dsv32_status st = DSV32_OK;
	dsv32_config_defaults(c);
	DSV32_TRY(parse_root(&root, json, label, err));
	const cJSON *v;
	cJSON_ArrayForEach(v, root)
	{
		const field *f = find_field(ref_fields, NFIELDS(ref_fields), v->string);
		if (f)
			st = set_number(c, f, v, label, "", err);
		else if (!strcmp(v->string, "dtype") || !strcmp(v->string, "scale_fmt") ||
			 !strcmp(v->string, "score_func"))
			st = parse_ref_string(c, v, label, err);
		else /* ModelArgs(**json) raises TypeError on an unknown key */
			st = DSV32_FAIL(err, DSV32_E_FORMAT, "%s: %s: not a ModelArgs field", label,
					v->string);
		if (st != DSV32_OK)
			break;
	}
	cJSON_Delete(root);
	if (st != DSV32_OK)
		return st;
	c->has_quant = c->dtype == DSV32_WDTYPE_FP8;
	c->max_position_embeddings = c->max_seq_len;
	c->rope_yarn = dsv32_config_ref_yarn_on(c);
	return DSV32_OK;
}

dsv32_status dsv32_config_load(dsv32_config *c, const char *path, bool *is_hf, dsv32_error *err)
{
	char *text = NULL;
	DSV32_TRY(dsv32_infile_read(path, DSV32_INFILE_CONFIG, &text, NULL, err));
	cJSON *root = cJSON_Parse(text);
	bool hf = root && (cJSON_GetObjectItemCaseSensitive(root, "hidden_size") ||
			   cJSON_GetObjectItemCaseSensitive(root, "model_type"));
	cJSON_Delete(root);
	dsv32_status st = hf ? dsv32_config_from_hf_json(c, text, path, err)
			     : dsv32_config_from_ref_json(c, text, path, err);
	free(text);
	if (is_hf)
		*is_hf = hf;
	return st;
}

/* ---- writers ---- */
static void add_fields(cJSON *o, const dsv32_config *c, const field *t, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const char *p = (const char *)c + t[i].off;
		if (t[i].type == F_INT) {
			int64_t v;
			memcpy(&v, p, sizeof v);
			cJSON_AddNumberToObject(o, t[i].key, (double)v);
		} else {
			double v;
			memcpy(&v, p, sizeof v);
			cJSON_AddNumberToObject(o, t[i].key, v);
		}
	}
}

static const char *score_name(dsv32_score_func s)
{
	return s == DSV32_SCORE_SIGMOID ? "sigmoid" : "softmax";
}

char *dsv32_config_to_hf_json(const dsv32_config *c)
{
	cJSON *o = cJSON_CreateObject();
	if (!o)
		return NULL;
	cJSON *a = cJSON_AddArrayToObject(o, "architectures");
	cJSON_AddItemToArray(a, cJSON_CreateString("DeepseekV32ForCausalLM"));
	cJSON_AddStringToObject(o, "model_type", "deepseek_v32");
	add_fields(o, c, hf_fields, NFIELDS(hf_fields));
	cJSON_AddNumberToObject(o, "num_key_value_heads", (double)c->n_heads);
	cJSON_AddStringToObject(o, "scoring_func", score_name(c->score_func));
	cJSON_AddStringToObject(o, "topk_method", "noaux_tc");
	cJSON_AddBoolToObject(o, "norm_topk_prob", c->norm_topk_prob);
	cJSON_AddStringToObject(o, "hidden_act", "silu");
	cJSON_AddNumberToObject(o, "rope_theta", c->rope_theta);
	if (c->rope_yarn) {
		cJSON *r = cJSON_AddObjectToObject(o, "rope_scaling");
		cJSON_AddStringToObject(r, "type", "yarn");
		cJSON_AddNumberToObject(r, "factor", c->rope_factor);
		cJSON_AddNumberToObject(r, "original_max_position_embeddings",
					(double)c->original_seq_len);
		cJSON_AddNumberToObject(r, "beta_fast", c->beta_fast);
		cJSON_AddNumberToObject(r, "beta_slow", c->beta_slow);
		cJSON_AddNumberToObject(r, "mscale", c->mscale);
		if (c->mscale_all_dim != 0.0)
			cJSON_AddNumberToObject(r, "mscale_all_dim", c->mscale_all_dim);
		if (c->has_attention_factor)
			cJSON_AddNumberToObject(r, "attention_factor", c->attention_factor);
	}
	if (c->dtype == DSV32_WDTYPE_FP8) {
		cJSON *q = cJSON_AddObjectToObject(o, "quantization_config");
		cJSON_AddStringToObject(q, "quant_method", "fp8");
		cJSON_AddStringToObject(q, "fmt", "e4m3");
		cJSON_AddStringToObject(q, "activation_scheme", "dynamic");
		if (c->scale_fmt_ue8m0)
			cJSON_AddStringToObject(q, "scale_fmt", "ue8m0");
		else
			cJSON_AddNullToObject(q, "scale_fmt");
		cJSON *b = cJSON_AddArrayToObject(q, "weight_block_size");
		cJSON_AddItemToArray(b, cJSON_CreateNumber((double)c->quant_block[0]));
		cJSON_AddItemToArray(b, cJSON_CreateNumber((double)c->quant_block[1]));
	}
	cJSON_AddBoolToObject(o, "attention_bias", false);
	cJSON_AddNumberToObject(o, "attention_dropout", 0.0);
	cJSON_AddBoolToObject(o, "tie_word_embeddings", false);
	cJSON_AddStringToObject(o, "torch_dtype", "bfloat16");
	char *s = cJSON_Print(o);
	cJSON_Delete(o);
	return s;
}

char *dsv32_config_to_ref_json(const dsv32_config *c)
{
	cJSON *o = cJSON_CreateObject();
	if (!o)
		return NULL;
	add_fields(o, c, ref_fields, 2); /* max_batch_size, max_seq_len first, as upstream */
	cJSON_AddStringToObject(o, "dtype", c->dtype == DSV32_WDTYPE_FP8 ? "fp8" : "bf16");
	if (c->scale_fmt_ue8m0)
		cJSON_AddStringToObject(o, "scale_fmt", "ue8m0");
	else
		cJSON_AddNullToObject(o, "scale_fmt");
	cJSON_AddStringToObject(o, "score_func", score_name(c->score_func));
	add_fields(o, c, ref_fields + 2, NFIELDS(ref_fields) - 2);
	char *s = cJSON_Print(o);
	cJSON_Delete(o);
	return s;
}

/* ---- validation ---- */
static bool is_pow2(int64_t v)
{
	return v > 0 && (v & (v - 1)) == 0;
}

typedef struct {
	const char *name;
	int64_t v;
	int64_t min;
} bound;

/* Every size field is at most 2^31 - 1, so the products of two fields the checks below form
 * (n_heads * v_head_dim, n_limited_groups * experts per group, ...) cannot overflow int64. */
#define CFG_MAX_SIZE INT64_C(2147483647)

static dsv32_status check_bounds(const dsv32_config *c, dsv32_error *err)
{
	const bound b[] = {
		{"max_batch_size", c->max_batch_size, 1},
		{"max_seq_len", c->max_seq_len, 1},
		{"vocab_size", c->vocab_size, 1},
		{"dim", c->dim, 1},
		{"inter_dim", c->inter_dim, 1},
		{"moe_inter_dim", c->moe_inter_dim, 1},
		{"n_layers", c->n_layers, 1},
		{"n_dense_layers", c->n_dense_layers, 0},
		{"n_heads", c->n_heads, 1},
		{"n_routed_experts", c->n_routed_experts, 1},
		{"n_shared_experts", c->n_shared_experts, 0},
		{"n_activated_experts", c->n_activated_experts, 1},
		{"n_expert_groups", c->n_expert_groups, 1},
		{"n_limited_groups", c->n_limited_groups, 1},
		{"q_lora_rank", c->q_lora_rank, 1}, /* 0 would mean wq; V3.2 always has wq_a */
		{"kv_lora_rank", c->kv_lora_rank, 1},
		{"qk_nope_head_dim", c->qk_nope_head_dim, 1},
		{"qk_rope_head_dim", c->qk_rope_head_dim, 2},
		{"v_head_dim", c->v_head_dim, 1},
		{"original_seq_len", c->original_seq_len, 1},
		{"index_n_heads", c->index_n_heads, 1},
		{"index_head_dim", c->index_head_dim, 1},
		{"index_topk", c->index_topk, 1},
		{"max_position_embeddings", c->max_position_embeddings, 1},
		{"num_nextn_predict_layers", c->num_nextn_predict_layers, 0},
	};
	for (size_t i = 0; i < sizeof b / sizeof b[0]; i++) {
		if (b[i].v < b[i].min)
			return DSV32_FAIL(err, DSV32_E_FORMAT, "%s: %lld, must be >= %lld", b[i].name,
					  (long long)b[i].v, (long long)b[i].min);
		if (b[i].v > CFG_MAX_SIZE)
			return DSV32_FAIL(err, DSV32_E_FORMAT, "%s: %lld, must be <= %lld", b[i].name,
					  (long long)b[i].v, (long long)CFG_MAX_SIZE);
	}
	const struct {
		const char *name;
		double v;
	} pos[] = {{"rope_theta", c->rope_theta},   {"rope_factor", c->rope_factor},
		   {"beta_fast", c->beta_fast},     {"beta_slow", c->beta_slow},
		   {"route_scale", c->route_scale}, {"rms_norm_eps", c->rms_norm_eps}};
	for (size_t i = 0; i < sizeof pos / sizeof pos[0]; i++)
		if (!(pos[i].v > 0.0) || !isfinite(pos[i].v))
			return DSV32_FAIL(err, DSV32_E_FORMAT, "%s: %g, must be positive and finite",
					  pos[i].name, pos[i].v);
	return DSV32_OK;
}

static dsv32_status check_structure(const dsv32_config *c, dsv32_error *err)
{
	if (c->n_dense_layers > c->n_layers)
		return DSV32_FAIL(err, DSV32_E_FORMAT, "n_dense_layers: %lld exceeds n_layers %lld",
				  (long long)c->n_dense_layers, (long long)c->n_layers);
	if (c->n_routed_experts % c->n_expert_groups)
		return DSV32_FAIL(err, DSV32_E_FORMAT,
				  "n_routed_experts: %lld not divisible by n_expert_groups %lld",
				  (long long)c->n_routed_experts, (long long)c->n_expert_groups);
	if (c->n_limited_groups > c->n_expert_groups)
		return DSV32_FAIL(err, DSV32_E_FORMAT,
				  "n_limited_groups: %lld exceeds n_expert_groups %lld",
				  (long long)c->n_limited_groups, (long long)c->n_expert_groups);
	int64_t per_group = c->n_routed_experts / c->n_expert_groups;
	/* with the selection bias the group score is the sum of the top 2 of each group */
	if (c->n_expert_groups > 1 && c->score_func == DSV32_SCORE_SIGMOID && per_group < 2)
		return DSV32_FAIL(err, DSV32_E_FORMAT,
				  "n_expert_groups: %lld leaves %lld expert per group, the group "
				  "score needs >= 2",
				  (long long)c->n_expert_groups, (long long)per_group);
	if (c->n_activated_experts > c->n_limited_groups * per_group)
		return DSV32_FAIL(err, DSV32_E_FORMAT,
				  "n_activated_experts: %lld exceeds the %lld experts of %lld "
				  "limited groups",
				  (long long)c->n_activated_experts,
				  (long long)(c->n_limited_groups * per_group),
				  (long long)c->n_limited_groups);
	if (c->qk_rope_head_dim % 2 || c->qk_rope_head_dim > DSV32_MAX_ROPE_HEAD_DIM)
		return DSV32_FAIL(err, DSV32_E_FORMAT,
				  "qk_rope_head_dim: %lld, expected an even size up to %d (RoPE)",
				  (long long)c->qk_rope_head_dim, DSV32_MAX_ROPE_HEAD_DIM);
	if (c->index_head_dim > DSV32_MAX_INDEX_HEAD_DIM)
		return DSV32_FAIL(err, DSV32_E_FORMAT,
				  "index_head_dim: %lld exceeds %d (the Hadamard transform's limit)",
				  (long long)c->index_head_dim, DSV32_MAX_INDEX_HEAD_DIM);
	if (!is_pow2(c->index_head_dim))
		return DSV32_FAIL(err, DSV32_E_FORMAT,
				  "index_head_dim: %lld is not a power of two (Hadamard transform)",
				  (long long)c->index_head_dim);
	if (c->index_head_dim % 128)
		return DSV32_FAIL(err, DSV32_E_FORMAT,
				  "index_head_dim: %lld not divisible by the act_quant block 128",
				  (long long)c->index_head_dim);
	if (c->qk_rope_head_dim > c->index_head_dim)
		return DSV32_FAIL(err, DSV32_E_FORMAT,
				  "qk_rope_head_dim: %lld exceeds index_head_dim %lld",
				  (long long)c->qk_rope_head_dim, (long long)c->index_head_dim);
	if (c->kv_lora_rank % 128)
		return DSV32_FAIL(err, DSV32_E_FORMAT,
				  "kv_lora_rank: %lld not divisible by the act_quant block 128 "
				  "(fp8 latent round trip)",
				  (long long)c->kv_lora_rank);
	if (c->beta_fast <= c->beta_slow)
		return DSV32_FAIL(err, DSV32_E_FORMAT, "beta_fast: %g must exceed beta_slow %g",
				  c->beta_fast, c->beta_slow);
	if (c->has_quant && (c->quant_block[0] != 128 || c->quant_block[1] != 128))
		return DSV32_FAIL(err, DSV32_E_UNSUPPORTED,
				  "quantization_config.weight_block_size: [%lld, %lld], expected "
				  "[128, 128]",
				  (long long)c->quant_block[0], (long long)c->quant_block[1]);
	return DSV32_OK;
}

/* fp8: every fp8 Linear quantizes its input in 128-blocks (act_quant), so input widths are
 * multiples of 128. */
static dsv32_status check_fp8(const dsv32_config *c, dsv32_error *err)
{
	const bound in[] = {
		{"dim", c->dim, 0},
		{"q_lora_rank", c->q_lora_rank, 0},
		{"inter_dim", c->inter_dim, 0},
		{"moe_inter_dim", c->moe_inter_dim, 0},
		{"n_heads*v_head_dim", c->n_heads * c->v_head_dim, 0},
	};
	for (size_t i = 0; i < sizeof in / sizeof in[0]; i++)
		if (in[i].v % 128)
			return DSV32_FAIL(err, DSV32_E_FORMAT,
					  "%s: %lld not divisible by the fp8 block 128 (dtype fp8)",
					  in[i].name, (long long)in[i].v);
	return DSV32_OK;
}

static dsv32_status check_tp(const dsv32_config *c, int W, dsv32_error *err)
{
	int64_t shared = c->moe_inter_dim * c->n_shared_experts;
	const bound d[] = {
		{"n_heads", c->n_heads, 0},
		{"vocab_size", c->vocab_size, 0},
		{"n_routed_experts", c->n_routed_experts, 0},
		{"inter_dim", c->inter_dim, 0},
		{"moe_inter_dim*n_shared_experts", shared, 0},
	};
	for (size_t i = 0; i < sizeof d / sizeof d[0]; i++)
		if (d[i].v % W)
			return DSV32_FAIL(err, DSV32_E_FORMAT, "%s: %lld not divisible by world size %d",
					  d[i].name, (long long)d[i].v, W);
	if (c->dtype != DSV32_WDTYPE_FP8)
		return DSV32_OK;
	/* split fp8 weights carry their scales: each rank's slice must cover whole 128-blocks */
	int64_t Hl = c->n_heads / W;
	const bound s[] = {
		{"inter_dim/world_size (dense w1/w2/w3 scale split)", c->inter_dim / W, 0},
		{"moe_inter_dim*n_shared_experts/world_size (shared expert scale split)", shared / W,
		 0},
		{"n_heads/world_size*qk_head_dim (wq_b scale split)", Hl * dsv32_config_qk_head_dim(c),
		 0},
		{"n_heads/world_size*(qk_nope_head_dim+v_head_dim) (wkv_b scale split)",
		 Hl * (c->qk_nope_head_dim + c->v_head_dim), 0},
		{"n_heads/world_size*v_head_dim (wo scale split)", Hl * c->v_head_dim, 0},
	};
	for (size_t i = 0; i < sizeof s / sizeof s[0]; i++)
		if (s[i].v % 128)
			return DSV32_FAIL(err, DSV32_E_FORMAT,
					  "%s: %lld not a multiple of 128 with world size %d",
					  s[i].name, (long long)s[i].v, W);
	return DSV32_OK;
}

dsv32_status dsv32_config_validate(const dsv32_config *c, int world_size, dsv32_error *err)
{
	DSV32_TRY(check_bounds(c, err));
	DSV32_TRY(check_structure(c, err));
	if (c->dtype == DSV32_WDTYPE_FP8)
		DSV32_TRY(check_fp8(c, err));
	if (world_size < 0 || world_size > DSV32_MAX_WORLD_SIZE)
		return DSV32_FAIL(err, DSV32_E_USAGE, "world_size: %d, expected 0..%d", world_size,
				  DSV32_MAX_WORLD_SIZE);
	if (world_size > 0)
		DSV32_TRY(check_tp(c, world_size, err));
	return DSV32_OK;
}

/* The HF key of the reference field named by the n bytes at ref_key (the member both field
 * tables fill), or NULL when the HF form has no such top-level key. */
static const char *hf_key_of(const char *ref_key, size_t n)
{
	for (size_t i = 0; i < NFIELDS(ref_fields); i++) {
		if (strlen(ref_fields[i].key) != n || strncmp(ref_fields[i].key, ref_key, n) != 0)
			continue;
		for (size_t j = 0; j < NFIELDS(hf_fields); j++)
			if (hf_fields[j].off == ref_fields[i].off)
				return hf_fields[j].key;
	}
	return NULL;
}

dsv32_status dsv32_config_validate_file(const dsv32_config *c, bool is_hf, int world_size,
					const char *label, dsv32_error *err)
{
	dsv32_status st = dsv32_config_validate(c, world_size, err);
	if (st == DSV32_OK || !err)
		return st;
	size_t n = strcspn(err->what, ":");
	const char *hk = is_hf ? hf_key_of(err->what, n) : NULL;
	if (hk) {
		char rest[sizeof err->what];
		snprintf(rest, sizeof rest, "%s", err->what + n);
		snprintf(err->what, sizeof err->what, "%s%s", hk, rest);
	}
	return dsv32_error_prefix(err, "%s: invalid config", label);
}
