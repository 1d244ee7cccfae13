/* test_op_supported.c: dsv32_op_supported tells the truth (kernels/backend.h). For every op
 * family one small call of its ops runs: on the CPU every family is supported and runs; on a
 * CUDA backend (skipped without a device) a family runs iff it is reported supported; on a
 * device this build has no body for, every family is reported unsupported and its op answers
 * DSV32_E_UNSUPPORTED with a message naming the op and the device.
 * Only the public headers: the test sees what a model sees. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "kernels/attention.h"
#include "kernels/combine.h"
#include "kernels/elementwise.h"
#include "kernels/fp8.h"
#include "kernels/gemm.h"
#include "kernels/hadamard.h"
#include "kernels/indexer.h"
#include "kernels/layernorm.h"
#include "kernels/rmsnorm.h"
#include "kernels/rope.h"
#include "kernels/router.h"
#include "kernels/silu.h"
#include "kernels/softmax.h"
#include "kernels/topk.h"

/* A device value with no body in any build. */
#define NO_DEVICE ((dsv32_device)DSV32_DEVICE_COUNT)

/* Up to 8 zero-filled tensors of one call, on be's device. A stand-in backend (a device with
 * no body, or a CUDA backend of a build without CUDA: no context) cannot allocate, so its
 * tensors are host memory labelled with its device: the op must refuse them unread. */
typedef struct {
	dsv32_backend *be;
	dsv32_tensor t[8];
	int n;
} pool;

static bool stand_in(const dsv32_backend *be)
{
	return be->device != DSV32_DEV_CPU && !be->cuda;
}

static dsv32_tensor *mk(pool *p, dsv32_dtype dt, int ndim, int64_t d0, int64_t d1, int64_t d2,
			int64_t d3)
{
	int64_t shape[4] = {d0, d1, d2, d3};
	assert_true(p->n < 8);
	dsv32_tensor *t = &p->t[p->n++];
	if (stand_in(p->be)) {
		assert_int_equal(dsv32_tensor_alloc(t, dt, ndim, shape, NULL), DSV32_OK);
		t->device = p->be->device;
	} else {
		assert_int_equal(dsv32_backend_alloc(p->be, t, dt, ndim, shape, NULL), DSV32_OK);
	}
	return t;
}

static void pool_free(pool *p)
{
	for (int i = 0; i < p->n; i++) {
		if (stand_in(p->be)) {
			p->t[i].device = DSV32_DEV_CPU;
			dsv32_tensor_free(&p->t[i]);
		} else {
			dsv32_backend_free(p->be, &p->t[i]);
		}
	}
	p->n = 0;
}

/* One representative call of the family's ops; *name is the op name its errors carry. */
static dsv32_status run_family(dsv32_backend *be, dsv32_op op, const char **name,
			       dsv32_error *err)
{
	pool p = {.be = be};
	dsv32_tensor *a, *b, *c, *d, *e;
	dsv32_status rc = DSV32_E_INTERNAL;
	switch (op) {
	case DSV32_OP_ELEMENTWISE:
		*name = "add";
		a = mk(&p, DSV32_F32, 2, 2, 8, 0, 0);
		b = mk(&p, DSV32_BF16, 2, 2, 8, 0, 0);
		c = mk(&p, DSV32_F32, 2, 2, 8, 0, 0);
		rc = dsv32_add(be, c, a, b, err);
		break;
	case DSV32_OP_COMBINE:
		*name = "mul_bcast";
		a = mk(&p, DSV32_F32, 2, 2, 8, 0, 0);
		b = mk(&p, DSV32_F32, 2, 2, 1, 0, 0);
		c = mk(&p, DSV32_BF16, 2, 2, 8, 0, 0);
		rc = dsv32_mul_bcast(be, c, a, b, err);
		break;
	case DSV32_OP_RMSNORM:
		*name = "rmsnorm";
		a = mk(&p, DSV32_BF16, 2, 2, 8, 0, 0);
		b = mk(&p, DSV32_F32, 1, 8, 0, 0, 0);
		c = mk(&p, DSV32_BF16, 2, 2, 8, 0, 0);
		rc = dsv32_rmsnorm(be, c, a, b, 1e-6, err);
		break;
	case DSV32_OP_LAYERNORM:
		*name = "layernorm";
		a = mk(&p, DSV32_F32, 2, 2, 8, 0, 0);
		b = mk(&p, DSV32_F32, 1, 8, 0, 0, 0);
		c = mk(&p, DSV32_F32, 1, 8, 0, 0, 0);
		d = mk(&p, DSV32_F32, 2, 2, 8, 0, 0);
		rc = dsv32_layernorm(be, d, a, b, c, 1e-6, err);
		break;
	case DSV32_OP_ROPE:
		*name = "rope_ref";
		a = mk(&p, DSV32_F32, 4, 1, 2, 1, 8);
		b = mk(&p, DSV32_F32, 3, 2, 4, 2, 0); /* freqs [T, rd/2, 2]: rd = 8 */
		c = mk(&p, DSV32_F32, 4, 1, 2, 1, 8);
		rc = dsv32_rope_ref(be, c, a, b, 0, 0, true, err);
		break;
	case DSV32_OP_HADAMARD:
		*name = "hadamard";
		a = mk(&p, DSV32_BF16, 2, 2, 8, 0, 0);
		b = mk(&p, DSV32_BF16, 2, 2, 8, 0, 0);
		rc = dsv32_hadamard(be, b, a, err);
		break;
	case DSV32_OP_SOFTMAX:
		*name = "softmax";
		a = mk(&p, DSV32_F32, 2, 2, 8, 0, 0);
		b = mk(&p, DSV32_BF16, 2, 2, 8, 0, 0);
		rc = dsv32_softmax(be, b, a, err);
		break;
	case DSV32_OP_SILU:
		*name = "silu_mul_ref";
		a = mk(&p, DSV32_BF16, 2, 2, 8, 0, 0);
		b = mk(&p, DSV32_BF16, 2, 2, 8, 0, 0);
		c = mk(&p, DSV32_BF16, 2, 2, 8, 0, 0);
		rc = dsv32_silu_mul_ref(be, c, a, b, err);
		break;
	case DSV32_OP_GEMM:
		*name = "gemm";
		a = mk(&p, DSV32_BF16, 2, 2, 16, 0, 0);
		b = mk(&p, DSV32_BF16, 2, 4, 16, 0, 0);
		c = mk(&p, DSV32_F32, 2, 2, 4, 0, 0);
		rc = dsv32_gemm(be, c, a, b, err);
		break;
	case DSV32_OP_FP8:
		*name = "act_quant";
		a = mk(&p, DSV32_BF16, 2, 2, 128, 0, 0);
		b = mk(&p, DSV32_F8_E4M3, 2, 2, 128, 0, 0);
		c = mk(&p, DSV32_F32, 2, 2, 1, 0, 0);
		rc = dsv32_act_quant(be, b, c, a, false, err);
		break;
	case DSV32_OP_TOPK:
		*name = "topk";
		a = mk(&p, DSV32_F32, 2, 2, 8, 0, 0);
		b = mk(&p, DSV32_I64, 2, 2, 3, 0, 0);
		rc = dsv32_topk(be, b, NULL, a, 3, err);
		break;
	case DSV32_OP_ROUTER: {
		*name = "router";
		dsv32_router_params rp = {.n_groups = 1, .topk_groups = 1, .topk = 2,
					  .route_scale = 1.0f, .score_func = DSV32_SCORE_SIGMOID,
					  .mode = DSV32_ROUTER_REF};
		a = mk(&p, DSV32_F32, 2, 2, 8, 0, 0);
		b = mk(&p, DSV32_F32, 2, 2, 2, 0, 0);
		c = mk(&p, DSV32_I64, 2, 2, 2, 0, 0);
		rc = dsv32_router(be, b, c, a, NULL, &rp, err);
		break;
	}
	case DSV32_OP_INDEXER:
		*name = "index_scores_hf";
		a = mk(&p, DSV32_BF16, 4, 1, 2, 2, 8); /* q [B, S, H, D] */
		b = mk(&p, DSV32_BF16, 3, 1, 3, 8, 0); /* k [B, T, D] */
		c = mk(&p, DSV32_F32, 3, 1, 2, 2, 0);  /* w [B, S, H] */
		d = mk(&p, DSV32_F32, 3, 1, 2, 3, 0);  /* out [B, S, T] */
		rc = dsv32_index_scores_hf(be, d, a, b, c, 0.125f, NULL, err);
		break;
	case DSV32_OP_ATTENTION:
		*name = "attn_prefill";
		a = mk(&p, DSV32_BF16, 4, 1, 2, 2, 8); /* q [B, S, H, D] */
		b = mk(&p, DSV32_BF16, 4, 1, 3, 2, 8); /* k [B, T, H, D] */
		c = mk(&p, DSV32_BF16, 4, 1, 3, 2, 8); /* v */
		e = mk(&p, DSV32_BF16, 4, 1, 2, 2, 8); /* o [B, S, H, Dv] */
		rc = dsv32_attn_prefill(be, e, a, b, c, NULL, 0.125f, DSV32_ATTN_BSHD, err);
		break;
	default:
		*name = "?";
		break;
	}
	pool_free(&p);
	return rc;
}

static void names_are_distinct(void **state)
{
	(void)state;
	for (int i = 0; i < DSV32_OP_COUNT; i++) {
		assert_string_not_equal(dsv32_op_name((dsv32_op)i), "?");
		for (int j = 0; j < i; j++)
			assert_string_not_equal(dsv32_op_name((dsv32_op)i),
						dsv32_op_name((dsv32_op)j));
	}
	assert_string_equal(dsv32_op_name(DSV32_OP_COUNT), "?");
	assert_string_equal(dsv32_device_name(DSV32_DEV_CPU), "cpu");
	assert_string_equal(dsv32_device_name(DSV32_DEV_CUDA), "cuda");
	assert_string_equal(dsv32_device_name(NO_DEVICE), "?");
}

/* For every family: the answer of dsv32_op_supported is what running the op shows. */
static void check_answers(dsv32_backend *be)
{
	for (int i = 0; i < DSV32_OP_COUNT; i++) {
		dsv32_op op = (dsv32_op)i;
		const char *name = NULL;
		dsv32_error err = {0};
		dsv32_status rc = run_family(be, op, &name, &err);
		bool ok = dsv32_op_supported(be, op);
		if (ok && rc != DSV32_OK)
			fail_msg("%s on %s: supported, but %s returned %d: %s", dsv32_op_name(op),
				 dsv32_device_name(be->device), name, (int)rc, err.what);
		if (!ok) {
			assert_int_equal(rc, DSV32_E_UNSUPPORTED);
			if (!strstr(err.what, name) || !strstr(err.what, "device"))
				fail_msg("%s: message \"%s\" does not name the op and the device",
					 dsv32_op_name(op), err.what);
		}
	}
	assert_false(dsv32_op_supported(be, DSV32_OP_COUNT));
}

static void cpu_supports_every_op(void **state)
{
	(void)state;
	dsv32_backend *be = NULL;
	assert_int_equal(dsv32_backend_create(&be, DSV32_DEV_CPU, NULL), DSV32_OK);
	for (int i = 0; i < DSV32_OP_COUNT; i++)
		assert_true(dsv32_op_supported(be, (dsv32_op)i));
	check_answers(be);
	dsv32_backend_destroy(be);
}

static void cuda_answers_match(void **state)
{
	(void)state;
	if (!dsv32_cuda_available())
		skip();
	dsv32_backend *be = NULL;
	assert_int_equal(dsv32_backend_create(&be, DSV32_DEV_CUDA, NULL), DSV32_OK);
	check_answers(be);
	dsv32_backend_destroy(be);
}

/* A device no build has bodies for; and, in a build without CUDA, a CUDA backend (it cannot be
 * created, so a context-less stand-in asks). */
static void unsupported_device_is_refused(void **state)
{
	(void)state;
	dsv32_backend fake = {.device = NO_DEVICE};
	for (int i = 0; i < DSV32_OP_COUNT; i++)
		assert_false(dsv32_op_supported(&fake, (dsv32_op)i));
	check_answers(&fake);
	dsv32_error err = {0};
	assert_int_equal(dsv32_backend_create(&(dsv32_backend *){NULL}, NO_DEVICE, &err),
			 DSV32_E_USAGE);
#ifndef DSV32_HAVE_CUDA
	dsv32_backend *be = NULL;
	assert_int_equal(dsv32_backend_create(&be, DSV32_DEV_CUDA, &err), DSV32_E_UNSUPPORTED);
	dsv32_backend cuda = {.device = DSV32_DEV_CUDA};
	for (int i = 0; i < DSV32_OP_COUNT; i++)
		assert_false(dsv32_op_supported(&cuda, (dsv32_op)i));
	check_answers(&cuda);
#endif
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(names_are_distinct),
		cmocka_unit_test(cpu_supports_every_op),
		cmocka_unit_test(cuda_answers_match),
		cmocka_unit_test(unsupported_device_is_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
