/* fuzz_config.h: the body shared by the two config fuzz targets (fuzz_config_hf.c,
 * fuzz_config_ref.c). An accepted config is validated at world sizes 0, 1, 2, 4, 8 and 3 (the
 * arithmetic of the TP rules runs on hostile values), then written back in both forms; each
 * written form must parse again, and a validated config must still validate after the trip
 * through its own form. */
#ifndef DSV32_FUZZ_CONFIG_H
#define DSV32_FUZZ_CONFIG_H

#include "core/config.h"
#include "tests/fuzz/fuzz_util.h"

typedef dsv32_status (*fuzz_cfg_reader)(dsv32_config *, const char *, const char *,
					dsv32_error *);

static inline void fuzz_config_body(const uint8_t *data, size_t size, fuzz_cfg_reader read,
				    fuzz_cfg_reader read_back, char *(*write_back)(const dsv32_config *))
{
	char *text = fuzz_cstr(data, size);
	dsv32_config c;
	dsv32_error err = {0};
	dsv32_status rc = read(&c, text, "fuzz/config.json", &err);
	fuzz_check_err(rc, &err, "config reader");
	free(text);
	if (rc != DSV32_OK)
		return;
	static const int worlds[] = {0, 1, 2, 3, 4, 8};
	bool valid0 = false;
	for (size_t i = 0; i < sizeof worlds / sizeof worlds[0]; i++) {
		dsv32_status v = dsv32_config_validate(&c, worlds[i], &err);
		fuzz_check_err(v, &err, "dsv32_config_validate");
		if (i == 0)
			valid0 = v == DSV32_OK;
	}
	char *hf = dsv32_config_to_hf_json(&c);
	char *ref = dsv32_config_to_ref_json(&c);
	if (!hf || !ref)
		abort();
	dsv32_config back;
	if (dsv32_config_from_hf_json(&back, hf, "hf-back", &err) != DSV32_OK && valid0) {
		fprintf(stderr, "written HF form does not parse back: %s\n", err.what);
		abort();
	}
	if (dsv32_config_from_ref_json(&back, ref, "ref-back", &err) != DSV32_OK && valid0) {
		fprintf(stderr, "written reference form does not parse back: %s\n", err.what);
		abort();
	}
	char *own = write_back(&c);
	if (!own)
		abort();
	if (valid0 && (read_back(&back, own, "own-back", &err) != DSV32_OK ||
		       dsv32_config_validate(&back, 0, &err) != DSV32_OK)) {
		fprintf(stderr, "valid config fails after writing its own form back: %s\n",
			err.what);
		abort();
	}
	free(own);
	free(hf);
	free(ref);
}

#endif
