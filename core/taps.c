/* taps.c: lookups over the tap table of taps.h. */
#include "core/taps.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
	const char *name;
	dsv32_tap_class kind;
} tap_def;

#define DSV32_TAP_DEF_(id, name, kind) {name, DSV32_TAPC_##kind},
static const tap_def layer_taps[DSV32_LTAP_COUNT] = {DSV32_LAYER_TAPS(DSV32_TAP_DEF_)};
static const tap_def model_taps[DSV32_MTAP_COUNT] = {DSV32_MODEL_TAPS(DSV32_TAP_DEF_)};
#undef DSV32_TAP_DEF_

const char *dsv32_layer_tap_op(dsv32_layer_tap t)
{
	return (unsigned)t < DSV32_LTAP_COUNT ? layer_taps[t].name : "?";
}

const char *dsv32_model_tap_name(dsv32_model_tap t)
{
	return (unsigned)t < DSV32_MTAP_COUNT ? model_taps[t].name : "?";
}

const char *dsv32_layer_tap_name(char *buf, size_t len, int layer, dsv32_layer_tap t)
{
	snprintf(buf, len, "layers.%d.%s", layer, dsv32_layer_tap_op(t));
	return buf;
}

void dsv32_tap_split_name(const char *name, int *layer, char *op, size_t op_len)
{
	*layer = -1;
	if (strncmp(name, "layers.", 7) == 0) {
		char *end;
		long l = strtol(name + 7, &end, 10);
		if (end != name + 7 && *end == '.') {
			*layer = (int)l;
			snprintf(op, op_len, "%s", end + 1);
			return;
		}
	}
	snprintf(op, op_len, "%s", name);
}

int dsv32_layer_tap_find(const char *op)
{
	for (int i = 0; i < DSV32_LTAP_COUNT; i++)
		if (!strcmp(op, layer_taps[i].name))
			return i;
	return -1;
}

int dsv32_layer_op_rank(const char *op)
{
	int i = dsv32_layer_tap_find(op);
	if (i == DSV32_LTAP_OUT)
		return DSV32_LTAP_COUNT;
	return i >= 0 ? i : DSV32_LTAP_OUT;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);
	return n >= k && strcmp(s + n - k, suffix) == 0;
}

dsv32_tap_class dsv32_tap_class_of(const char *name)
{
	int layer;
	char op[128];
	dsv32_tap_split_name(name, &layer, op, sizeof op);
	if (layer < 0) {
		for (int i = 0; i < DSV32_MTAP_COUNT; i++)
			if (!strcmp(op, model_taps[i].name))
				return model_taps[i].kind;
	} else {
		int i = dsv32_layer_tap_find(op);
		if (i >= 0)
			return layer_taps[i].kind;
	}
	return ends_with(name, ".scores") ? DSV32_TAPC_MASKED_SCORES : DSV32_TAPC_DENSE;
}

bool dsv32_tap_is_input(const char *name)
{
	return dsv32_tap_class_of(name) == DSV32_TAPC_INPUT;
}

#define DSV32_SEL_DEF_(set, scores, unused) {DSV32_LTAP_##set, DSV32_LTAP_##scores, unused},
static const struct {
	dsv32_layer_tap set, scores;
	bool masked_unused;
} selections[] = {DSV32_SELECTION_TAPS(DSV32_SEL_DEF_)};
#undef DSV32_SEL_DEF_

int dsv32_layer_tap_scores_of(dsv32_layer_tap set)
{
	for (size_t i = 0; i < sizeof selections / sizeof selections[0]; i++)
		if (selections[i].set == set)
			return (int)selections[i].scores;
	return -1;
}

int dsv32_layer_tap_selection_of(dsv32_layer_tap scores)
{
	for (size_t i = 0; i < sizeof selections / sizeof selections[0]; i++)
		if (selections[i].scores == scores)
			return (int)selections[i].set;
	return -1;
}

#define DSV32_STAGE_DEF_(set, groups) {DSV32_LTAP_##set, DSV32_LTAP_##groups},
static const struct {
	dsv32_layer_tap set, groups;
} stages[] = {DSV32_GROUP_STAGES(DSV32_STAGE_DEF_)};
#undef DSV32_STAGE_DEF_

int dsv32_layer_tap_group_scores_of(dsv32_layer_tap set)
{
	for (size_t i = 0; i < sizeof stages / sizeof stages[0]; i++)
		if (stages[i].set == set)
			return (int)stages[i].groups;
	return -1;
}

int dsv32_layer_tap_group_selection_of(dsv32_layer_tap t)
{
	for (size_t i = 0; i < sizeof stages / sizeof stages[0]; i++)
		if (stages[i].groups == t)
			return (int)stages[i].set;
	return -1;
}

bool dsv32_layer_tap_masked_picks_unused(dsv32_layer_tap set)
{
	for (size_t i = 0; i < sizeof selections / sizeof selections[0]; i++)
		if (selections[i].set == set)
			return selections[i].masked_unused;
	return true;
}
