/* attr_util.c: see attr_util.h. */
#include "tests/support/attr_util.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "compare/runner.h"
#include "core/dtype.h"
#include "core/fsutil.h"
#include "core/tokens.h"
#include "fixtures/generator.h"
#include "hf_layout/hf_model.h"
#include "ref/ref_model.h"

dsv32_status attr_open_model(const char *layout, const char *ckpt, const dsv32_model_opts *o,
			     dsv32_model **out, dsv32_error *err)
{
	return !strcmp(layout, "ref") ? dsv32_ref_open(out, ckpt, NULL, o, err)
				      : dsv32_hf_open(out, ckpt, NULL, o, err);
}

bool attr_tap_differs(const dsv32_tap_result *t)
{
	if (t->family == DSV32_FAMILY_SET)
		return t->set.rows_equal != t->set.rows;
	return t->dense.n_diff > 0;
}

const dsv32_tap_result *attr_find_tap(const dsv32_cmp_result *r, int step, dsv32_drift_mode mode,
				      const char *name)
{
	for (size_t i = 0; i < r->n_taps; i++)
		if (r->taps[i].step == step && r->taps[i].mode == mode &&
		    !strcmp(r->taps[i].name, name))
			return &r->taps[i];
	return NULL;
}

void attr_print_diffs(const dsv32_cmp_result *r)
{
	size_t n_diff = 0;
	for (size_t i = 0; i < r->n_taps; i++) {
		const dsv32_tap_result *x = &r->taps[i];
		if (!attr_tap_differs(x))
			continue;
		n_diff++;
		const char *mode = x->mode == DSV32_DRIFT_LOCAL ? "teacher-forced" : "propagated";
		if (x->family == DSV32_FAMILY_SET)
			printf("  step %d %-14s %-30s rows equal %lld of %lld\n", x->step, mode, x->name,
			       (long long)x->set.rows_equal, (long long)x->set.rows);
		else
			printf("  step %d %-14s %-30s %lld of %lld differ, rel_l2 %.3g\n", x->step,
			       mode, x->name, (long long)x->dense.n_diff, (long long)x->dense.n,
			       x->dense.rel_l2);
	}
	printf("%zu of %zu taps differ\n", n_diff, r->n_taps);
	for (size_t i = 0; i < r->n_skips; i++) /* a tap one layout does not emit */
		printf("  not compared: step %d %s (%s)\n", r->skips[i].step, r->skips[i].name,
		       r->skips[i].reason);
}

dsv32_status attr_grab_tap(void *user, const char *name, const dsv32_tensor *t,
			   dsv32_error *err)
{
	(void)err;
	attr_tap_grab *g = user;
	if (g->v || strcmp(name, g->name))
		return DSV32_OK;
	g->n = dsv32_tensor_numel(t);
	g->v = malloc(sizeof(float) * (size_t)g->n);
	if (g->v)
		dsv32_convert(g->v, DSV32_F32, t->data, t->dtype, (size_t)g->n);
	return DSV32_OK;
}

void attr_run_preset(const attr_run *run, dsv32_cmp_result *r)
{
	char dir[] = "/tmp/dsv32_attr_run_XXXXXX", ck[96];
	assert_non_null(mkdtemp(dir));
	snprintf(ck, sizeof ck, "%s/%s", dir, run->preset);
	assert_int_equal(dsv32_fixture_write(run->preset, run->wd, 0, ck, 0, false, NULL), DSV32_OK);
	dsv32_tokens t = {0};
	assert_int_equal(dsv32_tokens_random(&t, run->B, run->S, 1024, run->seed, NULL), DSV32_OK);
	dsv32_cmp_config cfg = {.checkpoint = ck, .open = attr_open_model, .prompt = t.ids,
				.batch = run->B, .prompt_len = run->S,
				.decode_steps = run->decode_steps, .propagate = run->propagate,
				.local = run->local};
	dsv32_side_spec a, b;
	dsv32_error err = {0};
	assert_int_equal(dsv32_side_parse(run->side_a, &a, &err), DSV32_OK);
	assert_int_equal(dsv32_side_parse(run->side_b, &b, &err), DSV32_OK);
	a.opts.max_seq_len = b.opts.max_seq_len = run->max_seq;
	dsv32_cmp_result_init(r);
	if (dsv32_cmp_run(&cfg, &a, &b, r, &err) != DSV32_OK)
		fail_msg("%s vs %s on %s: %s", run->side_a, run->side_b, run->preset, err.what);
	dsv32_tokens_free(&t);
	assert_int_equal(dsv32_remove_tree(dir, NULL), DSV32_OK);
}
