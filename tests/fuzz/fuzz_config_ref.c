/* fuzz_config_ref.c: libFuzzer target for the reference config reader
 * (dsv32_config_from_ref_json, core/config.h), with validation and write-back (fuzz_config.h). */
#include "tests/fuzz/fuzz_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_config_body(data, size, dsv32_config_from_ref_json, dsv32_config_from_ref_json,
			 dsv32_config_to_ref_json);
	return 0;
}
