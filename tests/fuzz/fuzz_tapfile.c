/* fuzz_tapfile.c: libFuzzer target for recorded tap files (dsv32_tapfile_open,
 * compare/tapfile.h). The reader takes a path, so the input is written to a scratch file (on
 * /dev/shm when it exists). An accepted recording is walked step by step through
 * dsv32_tapfile_tap_at and dsv32_tapfile_get. */
#include <stdint.h>
#include <unistd.h>

#include "compare/tapfile.h"
#include "tests/fuzz/fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char g_path[256];

static void cleanup(void)
{
	unlink(g_path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!g_path[0]) {
		const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
		snprintf(g_path, sizeof g_path, "%s/dsv32-fuzz-tap-%d.safetensors", base,
			 (int)getpid());
		atexit(cleanup);
	}
	FILE *f = fopen(g_path, "wb");
	if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0)
		abort();
	dsv32_tapfile tf;
	dsv32_error err = {0};
	dsv32_status rc = dsv32_tapfile_open(&tf, g_path, &err);
	fuzz_check_err(rc, &err, "dsv32_tapfile_open");
	if (rc != DSV32_OK)
		return 0;
	for (int s = 0; s < tf.n_steps && s < 8; s++) {
		const char *tap;
		dsv32_tensor t, u;
		for (size_t i = 0; dsv32_tapfile_tap_at(&tf, s, i, &tap, &t); i++)
			if (dsv32_tapfile_get(&tf, s, tap, &u, &err) != DSV32_OK || u.data != t.data)
				abort();
	}
	dsv32_tapfile_close(&tf);
	return 0;
}
