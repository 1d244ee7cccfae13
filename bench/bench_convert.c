/* bench_convert.c: throughput and peak memory of the converters (issue 6, "Performance").
 *
 * Writes a synthetic fp8 HF checkpoint of a few GB (DeepSeek V3.2 names, shapes and dtypes for a
 * widened config via core/hf_names.h; random bytes, since conversion copies bytes) under DIR
 * (a disk), warms it into the page cache with one untimed `cat`, then, --reps times, times on
 * the same files in the same run:
 *   cat HF files > /dev/null            the read peer of the issue (reads only)
 *   cat HF files > OUT/copy.bin         a plain copy into OUT: reads AND writes, as we do
 *   convert hf-to-ref --mp W  -> OUT/ref   (child process: wall, CPU time, peak RSS)
 *   convert ref-to-hf         -> OUT/back  (child process; OUT/back removed afterwards)
 *   verify-shards  OUT/ref vs DIR/hf       (child process)
 * OUT defaults to /dev/shm (tmpfs, RAM-backed) so the disk's write bandwidth is not what is
 * measured. Each step's best (minimum) wall time over the reps is reported, as GB/s and as a
 * ratio to both peers (ratio = peer time / step time; 1.0 = as fast as the peer), with the
 * peak RSS of each child against the largest tensor. The last line is one JSON object.
 * --cold drops DIR's files from the page cache (fdatasync + POSIX_FADV_DONTNEED) before every
 * step instead, so the steps that read DIR (both cat peers, hf-to-ref, verify's dense side) read
 * from the disk as a real checkpoint that does not fit in RAM is read. For ref-to-hf and
 * verify, the shards written by the first hf-to-ref are copied (untimed) to DIR/ref on the disk
 * and read from there, dropped from the cache before each step like the source.
 * Usage: bench_convert [--dir DIR] [--out-dir OUT] [--mp W] [--layers N] [--reps R] [--keep]
 *                      [--cold]
 * (defaults /tmp/dsv32-bench-convert, /dev/shm/dsv32-bench-convert, W 8, 6 layers = 2.71 GB,
 * 3 reps; both directories are removed at the end unless --keep). Needs the checkpoint's size
 * on DIR and twice it on OUT.
 */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "convert/convert.h"
#include "core/config.h"
#include "core/fsutil.h"
#include "core/hf_names.h"
#include "core/safetensors.h"

#define FILE_BYTES 1000000000ull /* source checkpoint files of at most 1 GB */

typedef struct {
	char *name;
	dsv32_dtype dtype;
	int ndim;
	int64_t shape[2];
	uint64_t nbytes;
} spec;

typedef struct {
	spec *v;
	size_t n, cap;
	uint64_t total, largest;
} spec_list;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static dsv32_status add_spec(const dsv32_hf_tensor *t, void *user, dsv32_error *err)
{
	spec_list *l = user;
	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 1024;
		l->v = realloc(l->v, l->cap * sizeof *l->v);
		if (!l->v)
			return DSV32_FAIL(err, DSV32_E_NOMEM, "spec list");
	}
	spec *s = &l->v[l->n++];
	s->name = strdup(t->name);
	s->dtype = t->dtype;
	s->ndim = t->ndim;
	s->shape[0] = t->shape[0];
	s->shape[1] = t->ndim > 1 ? t->shape[1] : 1;
	s->nbytes = (uint64_t)dsv32_shape_numel(t->ndim, t->shape) * dsv32_dtype_size(t->dtype);
	l->total += s->nbytes;
	if (s->nbytes > l->largest)
		l->largest = s->nbytes;
	return DSV32_OK;
}

/* The tiny preset widened: hidden 2048, vocab 65536, 64 experts; with 8 layers (the default)
 * ~3.56 GB in fp8, each further MoE layer ~0.42 GB. */
static char *bench_config_json(int layers)
{
	static const char *text =
		"{\"architectures\":[\"DeepseekV32ForCausalLM\"],\"model_type\":\"deepseek_v32\","
		"\"vocab_size\":65536,\"hidden_size\":2048,\"intermediate_size\":8192,"
		"\"moe_intermediate_size\":1024,\"num_hidden_layers\":8,\"num_attention_heads\":16,"
		"\"num_key_value_heads\":16,\"n_shared_experts\":1,\"n_routed_experts\":64,"
		"\"routed_scaling_factor\":2.5,\"kv_lora_rank\":512,\"q_lora_rank\":768,"
		"\"qk_rope_head_dim\":64,\"qk_nope_head_dim\":128,\"v_head_dim\":128,\"n_group\":8,"
		"\"topk_group\":4,\"num_experts_per_tok\":8,\"first_k_dense_replace\":1,"
		"\"norm_topk_prob\":true,\"hidden_act\":\"silu\",\"max_position_embeddings\":4096,"
		"\"rms_norm_eps\":1e-06,\"rope_theta\":10000.0,\"rope_scaling\":{\"type\":\"yarn\","
		"\"factor\":40,\"original_max_position_embeddings\":4096,\"beta_fast\":32,"
		"\"beta_slow\":1,\"mscale\":1.0,\"mscale_all_dim\":1.0},\"index_n_heads\":16,"
		"\"index_head_dim\":128,\"index_topk\":256,\"scoring_func\":\"sigmoid\","
		"\"topk_method\":\"noaux_tc\",\"num_nextn_predict_layers\":0,\"torch_dtype\":\"bfloat16\","
		"\"bos_token_id\":0,\"eos_token_id\":1,\"quantization_config\":{\"activation_scheme\":"
		"\"dynamic\",\"fmt\":\"e4m3\",\"quant_method\":\"fp8\",\"scale_fmt\":\"ue8m0\","
		"\"weight_block_size\":[128,128]}}";
	cJSON *c = cJSON_Parse(text);
	cJSON_ReplaceItemInObject(c, "num_hidden_layers", cJSON_CreateNumber(layers));
	char *s = cJSON_PrintUnformatted(c);
	cJSON_Delete(c);
	return s;
}

static void fill_random(uint8_t *p, size_t n, uint64_t *state)
{
	uint64_t x = *state;
	for (size_t i = 0; i + 8 <= n; i += 8) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		memcpy(p + i, &x, 8);
	}
	*state = x;
}

/* Write the checkpoint: files of <= FILE_BYTES, index, config.json. */
static int write_source(const char *dir, const char *config_json, spec_list *l)
{
	dsv32_error err = {0};
	size_t bufn = (size_t)64 << 20;
	uint8_t *buf = malloc(bufn);
	uint64_t seed = 0x9E3779B97F4A7C15ull;
	fill_random(buf, bufn, &seed);
	int nfiles = 0;
	uint64_t cur = 0;
	int *file_of = calloc(l->n, sizeof *file_of);
	for (size_t i = 0; i < l->n; i++) {
		if (cur && cur + l->v[i].nbytes > FILE_BYTES) {
			nfiles++;
			cur = 0;
		}
		file_of[i] = nfiles;
		cur += l->v[i].nbytes;
	}
	nfiles++;
	cJSON *idx = cJSON_CreateObject(), *map;
	cJSON_AddNumberToObject(cJSON_AddObjectToObject(idx, "metadata"), "total_size",
				(double)l->total);
	map = cJSON_AddObjectToObject(idx, "weight_map");
	size_t i = 0;
	for (int f = 0; f < nfiles; f++) {
		char name[64], path[4200];
		snprintf(name, sizeof name, "model-%05d-of-%05d.safetensors", f + 1, nfiles);
		dsv32_path_join(path, sizeof path, dir, name);
		dsv32_st_writer *w;
		if (dsv32_st_writer_open(&w, path, &err))
			goto out_fail;
		size_t j;
		for (j = i; j < l->n && file_of[j] == f; j++) {
			if (dsv32_st_writer_declare(w, l->v[j].name, l->v[j].dtype, l->v[j].ndim,
						    l->v[j].shape, &err))
				goto out_fail;
			cJSON_AddStringToObject(map, l->v[j].name, name);
		}
		for (j = i; j < l->n && file_of[j] == f; j++) {
			uint64_t left = l->v[j].nbytes;
			while (left) {
				size_t k = left < bufn ? (size_t)left : bufn;
				size_t off = (size_t)((j * 4099) % (bufn / 2)) & ~(size_t)7;
				if (k > bufn - off)
					off = 0;
				if (dsv32_st_writer_write(w, buf + off, k, &err))
					goto out_fail;
				left -= k;
			}
		}
		if (dsv32_st_writer_commit(w, &err))
			goto out_fail;
		i = j;
	}
	char path[4200], *text = cJSON_Print(idx);
	dsv32_path_join(path, sizeof path, dir, "model.safetensors.index.json");
	dsv32_write_file_atomic(path, text, strlen(text), NULL);
	free(text);
	dsv32_path_join(path, sizeof path, dir, "config.json");
	dsv32_write_file_atomic(path, config_json, strlen(config_json), NULL);
	cJSON_Delete(idx);
	free(file_of);
	free(buf);
	return nfiles;
out_fail:
	fprintf(stderr, "bench_convert: writing the source: %s\n", err.what);
	exit(2);
}

typedef struct {
	double secs;
	double cpu; /* user + sys seconds of the child */
	long maxrss_kb;
	int status;
} run_stat;

static double tv_s(struct timeval t)
{
	return t.tv_sec + t.tv_usec * 1e-6;
}

typedef enum { JOB_TO_REF, JOB_TO_HF, JOB_VERIFY } job;

static int run_job(job j, const char *src, const char *ref, const char *back, int W)
{
	dsv32_error err = {0};
	dsv32_conv_result r;
	dsv32_status rc;
	const char *in[1] = {ref};
	if (j == JOB_TO_REF) {
		dsv32_hf_to_ref_opts o = {src, NULL, W, ref, {0}};
		rc = dsv32_convert_hf_to_ref(&o, &r, &err);
	} else if (j == JOB_TO_HF) {
		char cfg[4200];
		dsv32_path_join(cfg, sizeof cfg, ref, "config.json");
		dsv32_ref_to_hf_opts o = {in, 1, cfg, back, DSV32_OUT_KEEP, 0, {0}, 0};
		rc = dsv32_convert_ref_to_hf(&o, &r, &err);
	} else {
		dsv32_verify_opts o = {in, 1, src, NULL, false, NULL, NULL, 0};
		dsv32_verify_result v;
		rc = dsv32_verify_shards(&o, &v, &err);
		if (rc == DSV32_OK)
			dsv32_verify_result_free(&v);
	}
	if (rc != DSV32_OK)
		fprintf(stderr, "bench_convert: %s\n", err.what);
	return rc == DSV32_OK ? 0 : 1;
}

/* Run a job in a child process: wall time, CPU time and the child's own peak RSS. */
static run_stat in_child(job j, const char *src, const char *ref, const char *back, int W)
{
	run_stat s = {0};
	fflush(NULL);
	double t0 = now_s();
	pid_t pid = fork();
	if (pid == 0)
		_exit(run_job(j, src, ref, back, W));
	struct rusage ru;
	int st = 0;
	wait4(pid, &st, 0, &ru);
	s.secs = now_s() - t0;
	s.cpu = tv_s(ru.ru_utime) + tv_s(ru.ru_stime);
	s.maxrss_kb = ru.ru_maxrss;
	s.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
	return s;
}

/* A shell command as a run_stat: wall and user + sys seconds of all its processes. */
static run_stat time_shell(const char *cmd)
{
	struct rusage a, b;
	run_stat s = {0};
	fflush(NULL);
	getrusage(RUSAGE_CHILDREN, &a);
	double t0 = now_s();
	s.status = system(cmd) != 0;
	s.secs = now_s() - t0;
	getrusage(RUSAGE_CHILDREN, &b);
	s.cpu = tv_s(b.ru_utime) + tv_s(b.ru_stime) - tv_s(a.ru_utime) - tv_s(a.ru_stime);
	if (s.status)
		fprintf(stderr, "bench_convert: '%s' failed\n", cmd);
	return s;
}

/* Keep the best (fastest) wall time and its CPU time; the largest RSS; any failure. */
static void keep_best(run_stat *best, const run_stat *s, int rep)
{
	long rss = best->maxrss_kb > s->maxrss_kb ? best->maxrss_kb : s->maxrss_kb;
	int status = best->status | s->status;
	if (rep == 0 || s->secs < best->secs)
		*best = *s;
	best->maxrss_kb = rss;
	best->status = status;
}

/* Evict every file of dir from the page cache: written back first (dirty pages cannot be
 * dropped), then POSIX_FADV_DONTNEED. A VM's host may still cache the disk image below us. */
static void drop_cache(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	while (d && (de = readdir(d))) {
		char path[4400];
		if (de->d_name[0] == '.' || !dsv32_path_join(path, sizeof path, dir, de->d_name))
			continue;
		int fd = open(path, O_RDONLY);
		if (fd < 0)
			continue;
		(void)fdatasync(fd);
		(void)posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
		close(fd);
	}
	if (d)
		closedir(d);
}

enum { S_CAT, S_COPY, S_TO_REF, S_TO_HF, S_VERIFY, N_STEPS };

int main(int argc, char **argv)
{
	const char *dir = "/tmp/dsv32-bench-convert", *out = "/dev/shm/dsv32-bench-convert";
	int W = 8, layers = 6, reps = 3;
	bool keep = false, cold = false;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--dir") && i + 1 < argc)
			dir = argv[++i];
		else if ((!strcmp(argv[i], "--out-dir") || !strcmp(argv[i], "--ref-dir")) && i + 1 < argc)
			out = argv[++i];
		else if (!strcmp(argv[i], "--mp") && i + 1 < argc)
			W = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--layers") && i + 1 < argc)
			layers = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
			reps = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--keep"))
			keep = true;
		else if (!strcmp(argv[i], "--cold"))
			cold = true;
		else {
			fprintf(stderr, "usage: bench_convert [--dir DIR] [--out-dir OUT] [--mp W] "
				"[--layers N] [--reps R] [--keep] [--cold]\n");
			return 2;
		}
	}
	if (reps < 1)
		reps = 1;
	char src[4200], ref[4200], back[4200], copy[4200], cmd[16384], disk_ref[4200];
	snprintf(src, sizeof src, "%s/hf", dir);
	snprintf(disk_ref, sizeof disk_ref, "%s/ref", dir);
	snprintf(ref, sizeof ref, "%s/ref", out);
	snprintf(back, sizeof back, "%s/back", out);
	snprintf(copy, sizeof copy, "%s/copy.bin", out);
	if (dsv32_path_exists(dir))
		dsv32_remove_tree(dir, NULL);
	if (dsv32_path_exists(out))
		dsv32_remove_tree(out, NULL);
	if (dsv32_mkdirs(src, NULL) || dsv32_mkdirs(out, NULL)) {
		fprintf(stderr, "bench_convert: cannot create %s or %s\n", src, out);
		return 2;
	}

	char *json = bench_config_json(layers < 2 ? 2 : layers);
	dsv32_config c;
	dsv32_error err = {0};
	spec_list l = {0};
	if (dsv32_config_from_hf_json(&c, json, "bench config", &err) ||
	    dsv32_hf_expected_tensors(&c, true, add_spec, &l, &err)) {
		fprintf(stderr, "bench_convert: %s\n", err.what);
		return 2;
	}
	double t0 = now_s();
	int nfiles = write_source(src, json, &l);
	double t_gen = now_s() - t0;
	double gb = l.total / 1e9;
	printf("source: %zu tensors, %.3f GB in %d files under %s (written in %.1f s), largest "
	       "tensor %.1f MB; output under %s; W = %d; best of %d; source page cache %s\n",
	       l.n, gb, nfiles, src, t_gen, l.largest / 1e6, out, W, reps,
	       cold ? "dropped before every step (--cold)" : "warm");

	snprintf(cmd, sizeof cmd, "cat %s/*.safetensors > /dev/null", src);
	if (!cold)
		(void)time_shell(cmd); /* warm the page cache once */
	run_stat best[N_STEPS];
	memset(best, 0, sizeof best);
	for (int rep = 0; rep < reps; rep++) {
		run_stat s[N_STEPS];
#define COLD() (cold ? drop_cache(src), drop_cache(disk_ref) : (void)0)
		COLD();
		snprintf(cmd, sizeof cmd, "cat %s/*.safetensors > /dev/null", src);
		s[S_CAT] = time_shell(cmd);
		COLD();
		snprintf(cmd, sizeof cmd, "cat %s/*.safetensors > %s", src, copy);
		s[S_COPY] = time_shell(cmd);
		unlink(copy);
		if (dsv32_path_exists(ref))
			dsv32_remove_tree(ref, NULL);
		COLD();
		s[S_TO_REF] = in_child(JOB_TO_REF, src, ref, back, W);
		const char *shards = cold ? disk_ref : ref;
		if (cold && rep == 0) {
			snprintf(cmd, sizeof cmd, "cp -r %s %s && sync", ref, disk_ref);
			(void)time_shell(cmd);
		}
		COLD();
		s[S_TO_HF] = in_child(JOB_TO_HF, src, shards, back, W);
		if (dsv32_path_exists(back))
			dsv32_remove_tree(back, NULL);
		COLD();
		s[S_VERIFY] = in_child(JOB_VERIFY, src, shards, back, W);
#undef COLD
		for (int i = 0; i < N_STEPS; i++)
			keep_best(&best[i], &s[i], rep);
		printf("rep %d wall s: cat>null %.2f, cat>copy %.2f, hf-to-ref %.2f, ref-to-hf %.2f, "
		       "verify %.2f\n", rep + 1, s[S_CAT].secs, s[S_COPY].secs, s[S_TO_REF].secs,
		       s[S_TO_HF].secs, s[S_VERIFY].secs);
	}

	static const char *names[N_STEPS] = {"cat > /dev/null (read peer)", "cat > OUT/copy.bin (copy peer)",
					     "convert hf-to-ref", "convert ref-to-hf", "verify-shards"};
	static const char *keys[N_STEPS] = {"cat_null", "cat_copy", "hf_to_ref", "ref_to_hf", "verify"};
	const run_stat *cat = &best[S_CAT], *cp = &best[S_COPY];
	printf("\n(best wall seconds of %d; cpu: user+sys seconds of that run; vs X = X's time / this "
	       "step's time)\n", reps);
	printf("%-34s %7s %6s %8s %8s %7s %8s %7s\n", "step", "wall", "GB/s", "vs null", "vs copy",
	       "cpu", "RSS MB", "RSS/lt");
	for (int i = 0; i < N_STEPS; i++) {
		const run_stat *s = &best[i];
		char label[64];
		if (i >= S_TO_REF)
			snprintf(label, sizeof label, "%s mp%d", names[i], W);
		else
			snprintf(label, sizeof label, "%s", names[i]);
		printf("%-34s %7.2f %6.2f %8.2f %8.2f %7.2f", label, s->secs, gb / s->secs,
		       cat->secs / s->secs, cp->secs / s->secs, s->cpu);
		if (i >= S_TO_REF)
			printf(" %8.0f %7.2f%s", s->maxrss_kb / 1024.0, s->maxrss_kb * 1024.0 / l.largest,
			       s->status ? "  FAILED" : "");
		printf("\n");
	}
	printf("\ntargets: >= 0.70 of cat > /dev/null; peak RSS < 3x the largest tensor (%.0f MB)\n",
	       l.largest / 1e6);
	printf("{\"bench\":\"convert\",\"bytes\":%llu,\"largest_tensor\":%llu,\"mp\":%d,\"reps\":%d,"
	       "\"out_dir\":\"%s\",\"cold\":%s", (unsigned long long)l.total,
	       (unsigned long long)l.largest, W, reps, out, cold ? "true" : "false");
	for (int i = 0; i < N_STEPS; i++)
		printf(",\"%s\":{\"wall_s\":%.3f,\"cpu_s\":%.3f,\"vs_cat_null\":%.3f,\"vs_cat_copy\":%.3f,"
		       "\"peak_rss_bytes\":%lld,\"ok\":%s}", keys[i], best[i].secs, best[i].cpu,
		       cat->secs / best[i].secs, cp->secs / best[i].secs,
		       (long long)best[i].maxrss_kb * 1024, best[i].status ? "false" : "true");
	printf("}\n");
	for (size_t i = 0; i < l.n; i++)
		free(l.v[i].name);
	free(l.v);
	free(json);
	if (!keep) {
		dsv32_remove_tree(dir, NULL);
		dsv32_remove_tree(out, NULL);
	}
	int failed = 0;
	for (int i = 0; i < N_STEPS; i++)
		failed |= best[i].status;
	return failed;
}
