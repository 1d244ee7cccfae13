/* bench_fixture.c: speed of the fixture generator (issue 19 item 5) against the machine's own
 * write path, in one run.
 *
 * Per round, in turn (so all three see the same machine load):
 *   draw    the values of every tensor of the preset (dsv32_draw_stream_bf16, parallel pieces as
 *           the generator runs them) into one reused buffer: the generator without the file
 *   fixture dsv32_fixture_write of the preset into OUT/fixture (written, fsync'd, renamed)
 *   zeros   the same number of bytes of zeros, written in the generator's band size into
 *           OUT/zeros.bin and fsync'd: what the file system alone costs (the dd peer)
 *   zeros, O_DIRECT  the same, in 8 MiB O_DIRECT writes, as `dd oflag=direct bs=8M` (rounded
 *           up to 4 KiB; n/a where the file system refuses O_DIRECT): the disk's own speed,
 *           which the checkpoint writer's O_DIRECT stages aim at (core/st_writer.c)
 * and prints each one's best wall time, GB/s (of the checkpoint's bytes; draw: of the bf16
 * values) and the user and system CPU seconds of that best run, then the ratio fixture / zeros
 * (1.0: the generator adds nothing to the time of writing the bytes). The files go to a new
 * directory OUT/dsv32-bench-fixture.XXXXXX (mkdtemp), removed at the end with all it holds;
 * nothing else in OUT is touched. OUT defaults to /dev/shm (tmpfs: memory, no disk). The last
 * line is one JSON object.
 * Usage: bench_fixture [--preset P] [--dtype bf16|fp8] [--out-dir OUT] [--rounds R]
 * (defaults real-width, bf16, /dev/shm, 3). Needs the checkpoint's size on OUT (real-width:
 * 6.8 GB).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/config.h"
#include "core/fsutil.h"
#include "core/hf_names.h"
#include "core/tensor.h"
#include "fixtures/draw.h"
#include "fixtures/generator.h"
#include "fixtures/presets.h"

#define CHUNK ((size_t)128 * 7168 * 2) /* one band of a 7168-wide bf16 matrix */
#define PIECE 4096

typedef struct {
	const char *preset, *out_dir;
	dsv32_weight_dtype dtype;
	int rounds;
} opts;

typedef struct {
	double wall, user, sys; /* of the best (lowest wall) run; wall < 0: none yet */
} best_run;

enum { STEP_DRAW, STEP_FIXTURE, STEP_ZEROS, STEP_ZEROS_DIRECT, N_STEPS };
#define DCHUNK ((size_t)8 << 20) /* one O_DIRECT write of the zeros_direct step */

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* user and system CPU seconds of this process so far */
static void cpu_s(double *user, double *sys)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	*user = (double)ru.ru_utime.tv_sec + 1e-6 * (double)ru.ru_utime.tv_usec;
	*sys = (double)ru.ru_stime.tv_sec + 1e-6 * (double)ru.ru_stime.tv_usec;
}

static int usage(const char *msg)
{
	fprintf(stderr, "bench_fixture: %s\nusage: bench_fixture [--preset P] [--dtype bf16|fp8] "
		"[--out-dir OUT] [--rounds R]\n", msg);
	return 2;
}

/* 0: run; 1: --help shown; 2: bad usage */
static int parse(int argc, char **argv, opts *o)
{
	*o = (opts){"real-width", "/dev/shm", DSV32_WDTYPE_BF16, 3};
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--help") == 0) {
			usage("times the fixture generator against writing zeros (bench/README.md)");
			return 1;
		}
		if (!v)
			return usage("an option is missing its value");
		i++;
		if (strcmp(a, "--preset") == 0)
			o->preset = v;
		else if (strcmp(a, "--out-dir") == 0)
			o->out_dir = v;
		else if (strcmp(a, "--rounds") == 0 && atoi(v) > 0)
			o->rounds = atoi(v);
		else if (strcmp(a, "--dtype") == 0 && strcmp(v, "bf16") == 0)
			o->dtype = DSV32_WDTYPE_BF16;
		else if (strcmp(a, "--dtype") == 0 && strcmp(v, "fp8") == 0)
			o->dtype = DSV32_WDTYPE_FP8;
		else
			return usage("unknown option or bad value");
	}
	return 0;
}

/* Drawn values (every element but the fp8 scale grids) and bytes of the preset's checkpoint. */
static int sizes(const opts *o, uint64_t *values, uint64_t *bytes)
{
	dsv32_config c;
	dsv32_error e = {0};
	const char *json = dsv32_preset_find(o->preset);
	dsv32_hf_tensor_list l;
	if (!json || dsv32_config_from_hf_json(&c, json, o->preset, &e) != DSV32_OK ||
	    dsv32_fixture_tensor_list(&c, o->dtype == DSV32_WDTYPE_FP8, &l, &e) != DSV32_OK) {
		fprintf(stderr, "bench_fixture: preset %s: %s\n", o->preset,
			json ? e.what : "unknown preset");
		return -1;
	}
	*values = *bytes = 0;
	for (size_t i = 0; i < l.n; i++) {
		uint64_t n = (uint64_t)dsv32_shape_numel(l.v[i].ndim, l.v[i].shape);
		*bytes += n * dsv32_dtype_size(l.v[i].dtype);
		if (l.v[i].kind != DSV32_HF_SCALE)
			*values += n;
	}
	dsv32_hf_tensor_list_free(&l);
	return 0;
}

static double time_draw(uint64_t values, uint16_t *buf)
{
	dsv32_draw_affine f = {0.011811113609868567, 0.0}; /* a 7168-wide matrix */
	double t0 = now_s();
	for (uint64_t done = 0; done < values;) {
		size_t n = values - done < CHUNK / 2 ? (size_t)(values - done) : CHUNK / 2;
		size_t pieces = (n + PIECE - 1) / PIECE;
#pragma omp parallel for schedule(dynamic, 1)
		for (size_t p = 0; p < pieces; p++) {
			size_t i0 = p * PIECE;
			dsv32_draw_stream_bf16(done, i0, n - i0 < PIECE ? n - i0 : PIECE, f, buf + i0);
		}
		done += n;
	}
	return now_s() - t0;
}

static double time_fixture(const opts *o)
{
	char dir[1024];
	snprintf(dir, sizeof dir, "%s/fixture", o->out_dir);
	dsv32_error e = {0};
	double t0 = now_s();
	dsv32_status st = dsv32_fixture_write(o->preset, o->dtype, 0, dir, 0, true, &e);
	double t = now_s() - t0;
	if (st != DSV32_OK)
		fprintf(stderr, "bench_fixture: %s\n", e.what);
	(void)dsv32_remove_tree(dir, &e);
	return st == DSV32_OK ? t : -1.0;
}

static double time_zeros(const opts *o, uint64_t bytes, const void *zeros)
{
	char path[1024];
	snprintf(path, sizeof path, "%s/zeros.bin", o->out_dir);
	double t0 = now_s();
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	bool ok = fd >= 0;
	for (uint64_t done = 0; ok && done < bytes;) {
		size_t n = bytes - done < CHUNK ? (size_t)(bytes - done) : CHUNK;
		ssize_t w = write(fd, zeros, n);
		ok = w > 0;
		done += ok ? (uint64_t)w : 0;
	}
	ok = ok && fsync(fd) == 0;
	int e = errno;
	if (fd >= 0)
		close(fd);
	double t = now_s() - t0;
	if (!ok)
		fprintf(stderr, "bench_fixture: %s: %s\n", path, strerror(e));
	unlink(path);
	return ok ? t : -1.0;
}

/* Zeros as `dd oflag=direct bs=8M` does (then fsync): -1 where O_DIRECT is refused. */
static double time_zeros_direct(const opts *o, uint64_t bytes)
{
	char path[1024];
	snprintf(path, sizeof path, "%s/zeros-direct.bin", o->out_dir);
	void *z = NULL;
	if (posix_memalign(&z, 4096, DCHUNK) != 0)
		return -1.0;
	memset(z, 0, DCHUNK);
	uint64_t total = (bytes + 4095) & ~(uint64_t)4095;
	double t0 = now_s();
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_DIRECT, 0644);
	bool ok = fd >= 0;
	for (uint64_t done = 0; ok && done < total;) {
		size_t n = total - done < DCHUNK ? (size_t)(total - done) : DCHUNK;
		ssize_t w = write(fd, z, n);
		ok = w == (ssize_t)n;
		done += n;
	}
	ok = ok && fsync(fd) == 0;
	double t = now_s() - t0;
	if (fd >= 0)
		close(fd);
	unlink(path);
	free(z);
	return ok ? t : -1.0;
}

static void run_step(int step, const opts *o, uint64_t values, uint64_t bytes, uint16_t *buf,
		     const void *zeros, best_run *best)
{
	double u0, s0, u1, s1, t;
	cpu_s(&u0, &s0);
	if (step == STEP_DRAW)
		t = time_draw(values, buf);
	else if (step == STEP_FIXTURE)
		t = time_fixture(o);
	else if (step == STEP_ZEROS)
		t = time_zeros(o, bytes, zeros);
	else
		t = time_zeros_direct(o, bytes);
	cpu_s(&u1, &s1);
	if (t >= 0 && (best->wall < 0 || t < best->wall))
		*best = (best_run){t, u1 - u0, s1 - s0};
}

static void report(const opts *o, uint64_t values, uint64_t bytes, const best_run *best)
{
	double gb = (double)bytes / 1e9, drawn_gb = 2.0 * (double)values / 1e9;
	static const char *const names[N_STEPS] = {"draw (values only, bf16)", "fixture",
						   "zeros, same bytes",
						   "zeros, O_DIRECT (dd oflag=direct)"};
	printf("bench_fixture: preset %s (%s), %.2f GB, %llu values, draw body %s, best of %d, "
	       "out %s\n\n", o->preset, o->dtype == DSV32_WDTYPE_FP8 ? "fp8" : "bf16", gb,
	       (unsigned long long)values, dsv32_draw_body(), o->rounds, o->out_dir);
	printf("| step | best wall (s) | GB/s | its user CPU (s) | its system CPU (s) |\n"
	       "|---|---|---|---|---|\n");
	for (int s = 0; s < N_STEPS; s++) {
		if (best[s].wall < 0) {
			printf("| %s | n/a | n/a | | |\n", names[s]);
			continue;
		}
		printf("| %s | %.3f | %.2f | %.2f | %.2f |\n", names[s], best[s].wall,
		       (s == STEP_DRAW ? drawn_gb : gb) / best[s].wall, best[s].user, best[s].sys);
	}
	printf("\nfixture / zeros = %.2f (time)", best[STEP_FIXTURE].wall / best[STEP_ZEROS].wall);
	if (best[STEP_ZEROS_DIRECT].wall > 0)
		printf("; fixture / zeros O_DIRECT = %.2f",
		       best[STEP_FIXTURE].wall / best[STEP_ZEROS_DIRECT].wall);
	printf("\n");
	printf("{\"bench\":\"fixture\",\"preset\":\"%s\",\"bytes\":%llu,\"values\":%llu,"
	       "\"draw_s\":%.4f,\"fixture_s\":%.4f,\"zeros_s\":%.4f,\"draw_gb_s\":%.3f,"
	       "\"fixture_gb_s\":%.3f,\"zeros_gb_s\":%.3f,\"zeros_direct_gb_s\":%.3f}\n",
	       o->preset, (unsigned long long)bytes, (unsigned long long)values,
	       best[STEP_DRAW].wall, best[STEP_FIXTURE].wall, best[STEP_ZEROS].wall,
	       drawn_gb / best[STEP_DRAW].wall, gb / best[STEP_FIXTURE].wall,
	       gb / best[STEP_ZEROS].wall,
	       best[STEP_ZEROS_DIRECT].wall > 0 ? gb / best[STEP_ZEROS_DIRECT].wall : 0.0);
}

int main(int argc, char **argv)
{
	opts o;
	int rc = parse(argc, argv, &o);
	if (rc)
		return rc == 1 ? 0 : rc;
	uint64_t values, bytes;
	if (sizes(&o, &values, &bytes) != 0)
		return 2;
	char work[768];
	snprintf(work, sizeof work, "%s/dsv32-bench-fixture.XXXXXX", o.out_dir);
	if (!mkdtemp(work)) {
		fprintf(stderr, "bench_fixture: %s: %s\n", work, strerror(errno));
		return 1;
	}
	const char *parent = o.out_dir;
	o.out_dir = work;
	uint16_t *buf = malloc(CHUNK);
	void *zeros = calloc(1, CHUNK);
	best_run best[N_STEPS] = {{-1, 0, 0}, {-1, 0, 0}, {-1, 0, 0}, {-1, 0, 0}};
	for (int r = 0; buf && zeros && r < o.rounds; r++) {
		fprintf(stderr, "bench_fixture: round %d/%d\n", r + 1, o.rounds);
		for (int s = 0; s < N_STEPS; s++)
			run_step(s, &o, values, bytes, buf, zeros, &best[s]);
	}
	dsv32_error e = {0};
	(void)dsv32_remove_tree(work, &e);
	o.out_dir = parent;
	free(buf);
	free(zeros);
	if (best[STEP_DRAW].wall < 0 || best[STEP_FIXTURE].wall < 0 || best[STEP_ZEROS].wall < 0) {
		fprintf(stderr, "bench_fixture: a step failed (or out of memory)\n");
		return 1;
	}
	report(&o, values, bytes, best);
	return 0;
}
