/* tapstore.h: taps kept in memory by name (one step of one side at a time, or every step of a
 * recording being dumped). Each entry owns a host copy of the tensor. Lookup is by exact name;
 * the store keeps insertion order so reports list taps in the order the model produced them. */
#ifndef DSV32_TAPSTORE_H
#define DSV32_TAPSTORE_H

#include <stddef.h>

#include "core/error.h"
#include "core/tensor.h"

typedef struct {
	char *name;
	dsv32_tensor t; /* owned host copy */
	bool used;      /* set by consumers that matched this tap */
} dsv32_tap_entry;

typedef struct {
	dsv32_tap_entry *e;
	size_t n, cap;
	size_t bytes; /* total tensor bytes held */
} dsv32_tapstore;

void dsv32_tapstore_init(dsv32_tapstore *s);
void dsv32_tapstore_clear(dsv32_tapstore *s); /* frees every entry, keeps the store usable */
void dsv32_tapstore_free(dsv32_tapstore *s);
/* Copy t under name (replacing an entry of the same name). */
dsv32_status dsv32_tapstore_put(dsv32_tapstore *s, const char *name, const dsv32_tensor *t,
				dsv32_error *err);
dsv32_tap_entry *dsv32_tapstore_get(dsv32_tapstore *s, const char *name);
/* Free the entry of that name, if any (the others keep their order). */
void dsv32_tapstore_drop(dsv32_tapstore *s, const char *name);

#endif
