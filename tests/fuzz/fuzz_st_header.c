/* fuzz_st_header.c: libFuzzer target for the safetensors reader (core/safetensors.h).
 * Input: a whole safetensors file (8-byte length, JSON header, data). Accepted files are walked
 * through every accessor and every tensor's bytes are read, so a validation gap that lets an
 * entry point outside the buffer is an ASan report. */
#include <stdint.h>

#include "core/safetensors.h"
#include "tests/fuzz/fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* a private copy of exactly size bytes: ASan catches reads one past the end */
	uint8_t *buf = malloc(size ? size : 1);
	if (!buf)
		abort();
	memcpy(buf, data, size);
	dsv32_st_file *f = NULL;
	dsv32_error err = {0};
	dsv32_status rc = dsv32_st_open_mem(&f, buf, size, "fuzz.safetensors", &err);
	fuzz_check_err(rc, &err, "dsv32_st_open_mem");
	if (rc == DSV32_OK) {
		volatile uint8_t sink = 0;
		for (size_t i = 0; i < dsv32_st_count(f); i++) {
			const dsv32_st_entry *e = dsv32_st_entry_at(f, i);
			if (dsv32_st_find(f, e->name) != e)
				abort(); /* the name index must find every entry */
			dsv32_tensor t;
			dsv32_status trc = dsv32_st_tensor(f, e->name, &t, &err);
			/* a listed-only dtype (F4, F6_*, ...) is in the listing, never a view */
			if (!dsv32_dtype_is_readable(e->dtype)) {
				if (trc != DSV32_E_DTYPE)
					abort();
			} else if (trc != DSV32_OK || dsv32_tensor_nbytes(&t) != e->end - e->begin) {
				abort();
			}
			const uint8_t *p = dsv32_st_data(f, e);
			for (uint64_t k = 0; k < e->end - e->begin; k++)
				sink ^= p[k];
		}
		for (size_t i = 0; i < dsv32_st_metadata_count(f); i++) {
			const char *k, *v;
			dsv32_st_metadata_at(f, i, &k, &v);
			if (dsv32_st_metadata(f, k) != v)
				abort();
		}
		(void)sink;
		dsv32_st_close(f);
	} else if (f) {
		abort(); /* a failed open must not hand out a handle */
	}
	free(buf);
	return 0;
}
