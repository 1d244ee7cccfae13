/* fuzz_config_hf.c: libFuzzer target for the HF config.json reader
 * (dsv32_config_from_hf_json, core/config.h), with validation and write-back (fuzz_config.h). */
#include "tests/fuzz/fuzz_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_config_body(data, size, dsv32_config_from_hf_json, dsv32_config_from_hf_json,
			 dsv32_config_to_hf_json);
	return 0;
}
