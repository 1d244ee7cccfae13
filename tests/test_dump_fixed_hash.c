/* test_dump_fixed_hash.c: our own outputs under the fixed GEMM engine are a property of the
 * code, not of the machine (issue 13, kernels/gemm.h "Engines").
 *
 * `dump --gemm fixed` of the tiny preset (fixture --preset tiny, seed 0), ref and hf layouts,
 * prompt 5,17,42;1,2,3 and 2 decode steps, must have the committed content SHA-256 (inspect
 * --hash: every tensor's name, dtype, shape and bytes; the metadata, which states the host, is
 * left out). It must keep that hash with oneDNN and OpenBLAS told to act as other CPUs
 * (DNNL_MAX_CPU_ISA=AVX2 with OPENBLAS_CORETYPE=Haswell, AVX512_CORE_BF16), with 1 and 2
 * threads (and 2 threads with every CPU body forking, DSV32_PAR_MIN_WORK=0), and on every body
 * of the fixed engine (scalar, avx2, avx512 and avx512bf16; gemm_fixed.c). The host engine's
 * hash is printed (it follows this CPU), and the recordings' metadata name their engine.
 * An intended numerical change of either layout changes these hashes: re-measure with
 * `ctest -R test_dump_fixed_hash -V` and say why in the commit. */
#include <cjson/cJSON.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/safetensors.h"
#include "tests/support/test_common.h"

/* measured 2026-12-06; the same on every machine. Changed by the new layers.N.moe.group_scores
 * tap (issue 17): without those 6 tensors both dumps hash to the previous values (ref 6e60b610...,
 * hf c25ee9f3...; checked by deleting them from the new dumps), so no other tensor changed. */
#define HASH_REF "b5267fa2a75b393e47b33c7e1ee8bcd3d185ac4d9e8722b3a994f695236a8f3e"
#define HASH_HF "6fd9ada3bb5bfee8f16870d6a539e1032021e345413adb2fcffcaa4593840ffc"

static char dir[64];
static const char *cli;

static int setup(void **state)
{
	(void)state;
	static const char *const fx[] = {"tiny", "", NULL};
	return tc_cli_fixture_dir(&cli, "dhash", dir, sizeof dir, fx);
}

static int teardown(void **state)
{
	(void)state;
	return dir[0] ? tc_remove_dir(dir) : 0;
}

/* dump one layout with the engine, return its content hash in hex[65] */
static void dump_hash(const char *layout, const char *engine, char hex[65])
{
	char args[1024], out[1 << 16], path[256];
	snprintf(path, sizeof path, "%s/%s-%s.safetensors", dir, layout, engine);
	snprintf(args, sizeof args, "dump --layout %s --checkpoint %s/tiny --tokens '5,17,42;1,2,3' "
		 "--decode-steps 2 --gemm %s --out %s", layout, dir, engine, path);
	int rc = tc_run_cli(cli, args, out, sizeof out);
	if (rc != 0)
		fail_msg("dump exited %d: %s", rc, out);
	dsv32_st_file *f = NULL;
	assert_int_equal(dsv32_st_open(&f, path, NULL), DSV32_OK);
	const char *eng = dsv32_st_metadata(f, "gemm_engine");
	assert_non_null(eng);
	assert_string_equal(eng, engine);
	dsv32_st_close(f);
	snprintf(args, sizeof args, "inspect --json --hash --no-coverage %s", path);
	rc = tc_run_cli(cli, args, out, sizeof out);
	if (rc != 0)
		fail_msg("inspect exited %d: %s", rc, out);
	cJSON *j = cJSON_Parse(out);
	assert_non_null(j);
	const cJSON *h = cJSON_GetObjectItemCaseSensitive(j, "content_sha256");
	assert_true(cJSON_IsString(h) && strlen(h->valuestring) == 64);
	snprintf(hex, 65, "%s", h->valuestring);
	cJSON_Delete(j);
	unlink(path);
}

typedef struct {
	const char *label;
	const char *env[3][2]; /* name, value */
} emulation;

static const emulation EMUL[] = {
	{"as found", {{NULL, NULL}}},
	{"oneDNN AVX2 + OpenBLAS Haswell", {{"DNNL_MAX_CPU_ISA", "AVX2"}, {"OPENBLAS_CORETYPE", "Haswell"}}},
	{"oneDNN AVX512_CORE_BF16", {{"DNNL_MAX_CPU_ISA", "AVX512_CORE_BF16"}}},
	{"1 thread", {{"OMP_NUM_THREADS", "1"}, {"OPENBLAS_NUM_THREADS", "1"}}},
	{"2 threads", {{"OMP_NUM_THREADS", "2"}}},
	/* tiny shapes fall below kernels/cpu_parallel.h's fork threshold: 0 makes every CPU body
	 * fork, so the parallel paths are hashed too */
	{"2 threads, every body forks", {{"OMP_NUM_THREADS", "2"}, {"DSV32_PAR_MIN_WORK", "0"}}},
	{"scalar fixed body", {{"DSV32_GEMM_NO_AVX2", "1"}}},
	{"avx2 fixed body", {{"DSV32_GEMM_NO_AVX512", "1"}}},
	{"avx512 fixed body (no VDPBF16PS)", {{"DSV32_GEMM_AVX512BF16", "0"}}},
	{"avx512bf16 fixed body where the CPU has it", {{"DSV32_GEMM_AVX512BF16", "1"}}},
};

static void check_layout(const char *layout, const char *want)
{
	for (size_t i = 0; i < sizeof EMUL / sizeof EMUL[0]; i++) {
		for (int e = 0; e < 3 && EMUL[i].env[e][0]; e++)
			setenv(EMUL[i].env[e][0], EMUL[i].env[e][1], 1);
		char hex[65];
		dump_hash(layout, "fixed", hex);
		for (int e = 0; e < 3 && EMUL[i].env[e][0]; e++)
			unsetenv(EMUL[i].env[e][0]);
		printf("# %s, gemm=fixed, %s: %s\n", layout, EMUL[i].label, hex);
		if (strcmp(hex, want) != 0)
			fail_msg("%s dump (gemm=fixed, %s): content sha256 %s, committed %s", layout,
				 EMUL[i].label, hex, want);
	}
	char hex[65];
	dump_hash(layout, "host", hex);
	printf("# %s, gemm=host (this CPU): %s (%s the fixed engine's)\n", layout, hex,
	       strcmp(hex, want) ? "differs from" : "equals");
}

static void test_ref_dump_hash_is_the_same_everywhere(void **state)
{
	(void)state;
	TC_NEED_CLI(cli);
	check_layout("ref", HASH_REF);
}

static void test_hf_dump_hash_is_the_same_everywhere(void **state)
{
	(void)state;
	TC_NEED_CLI(cli);
	check_layout("hf", HASH_HF);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ref_dump_hash_is_the_same_everywhere),
		cmocka_unit_test(test_hf_dump_hash_is_the_same_everywhere),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
