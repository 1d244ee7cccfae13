/* plan.c: the step plan of a comparison run (see plan.h). */
#include "compare/plan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/taps.h"

static const char *input_ids(void)
{
	return dsv32_model_tap_name(DSV32_MTAP_INPUT_IDS);
}

void dsv32_plan_free(dsv32_step_plan *p)
{
	for (int s = 0; s < p->n_steps && p->tokens; s++)
		free(p->tokens[s]);
	free(p->tokens);
	free(p->seqlen);
	free(p->start_pos);
	memset(p, 0, sizeof *p);
}

static dsv32_status plan_alloc(dsv32_step_plan *p, int n, dsv32_error *err)
{
	p->n_steps = n;
	p->seqlen = calloc((size_t)n, sizeof *p->seqlen);
	p->start_pos = calloc((size_t)n, sizeof *p->start_pos);
	p->tokens = calloc((size_t)n, sizeof *p->tokens);
	if (!p->seqlen || !p->start_pos || !p->tokens) {
		dsv32_plan_free(p);
		return DSV32_FAIL(err, DSV32_E_NOMEM, "step plan of %d steps", n);
	}
	return DSV32_OK;
}

static dsv32_status plan_from_recording(dsv32_step_plan *p, const dsv32_tapfile *tf, dsv32_error *err)
{
	DSV32_TRY(plan_alloc(p, tf->n_steps, err));
	p->batch = tf->batch;
	for (int s = 0; s < tf->n_steps; s++) {
		dsv32_tensor ids;
		DSV32_TRY(dsv32_tapfile_get(tf, s, input_ids(), &ids, err));
		p->seqlen[s] = ids.shape[1];
		int64_t sp = s < 64 ? tf->start_pos[s] : -1;
		if (sp < 0) /* positions not recorded: consecutive calls from 0 */
			sp = s == 0 ? 0 : p->start_pos[s - 1] + p->seqlen[s - 1];
		p->start_pos[s] = sp;
		p->tokens[s] = malloc(dsv32_tensor_nbytes(&ids));
		if (!p->tokens[s])
			return DSV32_FAIL(err, DSV32_E_NOMEM, "tokens of step %d", s);
		memcpy(p->tokens[s], ids.data, dsv32_tensor_nbytes(&ids));
	}
	return DSV32_OK;
}

static dsv32_status plan_live(dsv32_step_plan *p, const int64_t *prompt, int64_t batch,
			      int64_t prompt_len, int decode_steps, dsv32_error *err)
{
	if (!prompt || batch < 1 || prompt_len < 1)
		return DSV32_FAIL(err, DSV32_E_USAGE, "no prompt tokens to run");
	DSV32_TRY(plan_alloc(p, 1 + (decode_steps > 0 ? decode_steps : 0), err));
	p->batch = batch;
	for (int s = 0; s < p->n_steps; s++) {
		p->seqlen[s] = s == 0 ? prompt_len : 1;
		p->start_pos[s] = s == 0 ? 0 : prompt_len + s - 1;
	}
	size_t n = (size_t)(batch * prompt_len);
	p->tokens[0] = malloc(n * sizeof(int64_t));
	if (!p->tokens[0])
		return DSV32_FAIL(err, DSV32_E_NOMEM, "prompt tokens");
	memcpy(p->tokens[0], prompt, n * sizeof(int64_t));
	return DSV32_OK;
}

dsv32_status dsv32_plan_choose_next(dsv32_step_plan *p, int step, const dsv32_tensor *logits,
				    dsv32_error *err)
{
	if (step + 1 >= p->n_steps || p->tokens[step + 1])
		return DSV32_OK;
	if (logits->dtype != DSV32_F32 || logits->ndim != 2 || logits->shape[0] != p->batch)
		return DSV32_FAIL(err, DSV32_E_INTERNAL, "logits of step %d: expected F32 [%lld, V]",
				  step, (long long)p->batch);
	int64_t V = logits->shape[1];
	p->tokens[step + 1] = malloc((size_t)p->batch * sizeof(int64_t));
	if (!p->tokens[step + 1])
		return DSV32_FAIL(err, DSV32_E_NOMEM, "tokens of step %d", step + 1);
	for (int64_t b = 0; b < p->batch; b++) {
		p->tokens[step + 1][b] = dsv32_argmax_f32((const float *)logits->data + b * V, V);
	}
	return DSV32_OK;
}

/* Two recordings are comparable only when they ran the same calls on the same tokens: the
 * batch, the number of steps and every step's input_ids must agree. */
static dsv32_status recordings_agree(const dsv32_tapfile *x, const dsv32_tapfile *y,
				     dsv32_error *err)
{
	if (x->batch != y->batch)
		return DSV32_FAIL(err, DSV32_E_USAGE, "not comparable: batch %lld (a) vs %lld (b)",
				  (long long)x->batch, (long long)y->batch);
	if (x->n_steps != y->n_steps)
		return DSV32_FAIL(err, DSV32_E_USAGE, "not comparable: %d steps (a) vs %d (b)",
				  x->n_steps, y->n_steps);
	for (int s = 0; s < x->n_steps; s++) {
		dsv32_tensor ia, ib;
		DSV32_TRY(dsv32_tapfile_get(x, s, input_ids(), &ia, err));
		DSV32_TRY(dsv32_tapfile_get(y, s, input_ids(), &ib, err));
		if (ia.shape[1] != ib.shape[1] ||
		    memcmp(ia.data, ib.data, dsv32_tensor_nbytes(&ia)) != 0)
			return DSV32_FAIL(err, DSV32_E_USAGE,
					  "not comparable: step %d input_ids differ between a and b "
					  "(different prompts or decoded tokens)", s);
	}
	return DSV32_OK;
}

dsv32_status dsv32_plan_make(dsv32_step_plan *p, const dsv32_tapfile *ta, const dsv32_tapfile *tb,
			     const int64_t *prompt, int64_t batch, int64_t prompt_len,
			     int decode_steps, dsv32_error *err)
{
	memset(p, 0, sizeof *p);
	if (ta && tb)
		DSV32_TRY(recordings_agree(ta, tb, err));
	if (ta || tb)
		return plan_from_recording(p, ta ? ta : tb, err);
	return plan_live(p, prompt, batch, prompt_len, decode_steps, err);
}

void dsv32_plan_prov_recorded(dsv32_cmp_result *out, const dsv32_step_plan *p)
{
	char buf[512];
	size_t off = 0;
	int64_t cols = p->seqlen[0], n = p->batch * cols;
	for (int64_t i = 0; i < n && off + 24 < sizeof buf; i++)
		off += (size_t)snprintf(buf + off, sizeof buf - off, "%s%lld",
					i == 0 ? "" : (i % cols == 0 ? ";" : ","),
					(long long)p->tokens[0][i]);
	dsv32_cmp_result_prov(out, "tokens", buf);
	snprintf(buf, sizeof buf, "%d", p->n_steps - 1);
	dsv32_cmp_result_prov(out, "decode_steps", buf);
}

dsv32_status dsv32_plan_set_decode(dsv32_step_plan *p, const int64_t *decode, dsv32_error *err)
{
	int n = p->n_steps - 1;
	for (int s = 1; s <= n; s++) {
		free(p->tokens[s]);
		p->tokens[s] = malloc((size_t)p->batch * sizeof(int64_t));
		if (!p->tokens[s])
			return DSV32_FAIL(err, DSV32_E_NOMEM, "tokens of step %d", s);
		for (int64_t b = 0; b < p->batch; b++)
			p->tokens[s][b] = decode[b * n + s - 1];
	}
	return DSV32_OK;
}
