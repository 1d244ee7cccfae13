/* tapstore.c: an insertion-ordered map from tap name to an owned host tensor. */
#include "compare/tapstore.h"

#include <stdlib.h>
#include <string.h>

void dsv32_tapstore_init(dsv32_tapstore *s)
{
	memset(s, 0, sizeof *s);
}

void dsv32_tapstore_clear(dsv32_tapstore *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free(s->e[i].name);
		dsv32_tensor_free(&s->e[i].t);
	}
	s->n = 0;
	s->bytes = 0;
}

void dsv32_tapstore_free(dsv32_tapstore *s)
{
	dsv32_tapstore_clear(s);
	free(s->e);
	memset(s, 0, sizeof *s);
}

dsv32_tap_entry *dsv32_tapstore_get(dsv32_tapstore *s, const char *name)
{
	/* taps of one step number a few hundred at most per layer set: linear from the end finds
	 * the usual "just produced" lookups first */
	for (size_t i = s->n; i-- > 0;)
		if (strcmp(s->e[i].name, name) == 0)
			return &s->e[i];
	return NULL;
}

void dsv32_tapstore_drop(dsv32_tapstore *s, const char *name)
{
	dsv32_tap_entry *e = dsv32_tapstore_get(s, name);
	if (!e)
		return;
	s->bytes -= dsv32_tensor_nbytes(&e->t);
	dsv32_tensor_free(&e->t);
	free(e->name);
	size_t i = (size_t)(e - s->e);
	memmove(e, e + 1, (s->n - i - 1) * sizeof *e);
	s->n--;
}

dsv32_status dsv32_tapstore_put(dsv32_tapstore *s, const char *name, const dsv32_tensor *t,
				dsv32_error *err)
{
	if (t->device != DSV32_DEV_CPU)
		return DSV32_FAIL(err, DSV32_E_INTERNAL, "tap %s: not a host tensor", name);
	dsv32_tensor copy;
	DSV32_TRY(dsv32_tensor_alloc(&copy, t->dtype, t->ndim, t->shape, err));
	memcpy(copy.data, t->data, dsv32_tensor_nbytes(t));
	dsv32_tap_entry *old = dsv32_tapstore_get(s, name);
	if (old) {
		s->bytes -= dsv32_tensor_nbytes(&old->t);
		dsv32_tensor_free(&old->t);
		old->t = copy;
		old->used = false;
		s->bytes += dsv32_tensor_nbytes(&copy);
		return DSV32_OK;
	}
	if (s->n == s->cap) {
		size_t nc = s->cap ? s->cap * 2 : 128;
		dsv32_tap_entry *ne = realloc(s->e, nc * sizeof *ne);
		if (!ne) {
			dsv32_tensor_free(&copy);
			return DSV32_FAIL(err, DSV32_E_NOMEM, "tap store: %zu entries", nc);
		}
		s->e = ne;
		s->cap = nc;
	}
	char *nm = strdup(name);
	if (!nm) {
		dsv32_tensor_free(&copy);
		return DSV32_FAIL(err, DSV32_E_NOMEM, "tap store: name %s", name);
	}
	s->e[s->n++] = (dsv32_tap_entry){nm, copy, false};
	s->bytes += dsv32_tensor_nbytes(&copy);
	return DSV32_OK;
}
