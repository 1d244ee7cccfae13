/* bench_convert.c: throughput and peak memory of the converters (issue 6, "Performance").
 *
 * Writes a synthetic fp8 HF checkpoint of a few GB (DeepSeek V3.2 names, shapes and dtypes for a
 * widened config via core/hf_names.h; random bytes, since conversion copies bytes), then times
 * in this order, on the same files in the same run:
 *   cat HF files > /dev/null           the read baseline of the issue
 *   cat HF files > one file; sync      a copy baseline with the same durability as ours (fsync)
 *   convert hf-to-ref --mp W           (child process: wall time and peak RSS)
 *   convert ref-to-hf                  (child process)
 *   verify-shards                      (child process)
 * and reports each as GB/s, as a ratio to the cat baselines, and the peak RSS of each child
 * against the largest tensor.
 * Usage: bench_convert [--dir DIR] [--ref-dir DIR] [--mp W] [--layers N] [--keep]
 * (default DIR /tmp/dsv32-bench-convert, shards in DIR/ref, W 8; removed at the end unless
 * --keep). --ref-dir /dev/shm/x puts the shards on tmpfs: hf-to-ref then writes to memory,
 * which separates the converter's own cost from the disk's write bandwidth.
 */
#include <cjson/cJSON.h>
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

/* Run a job in a child process: wall time and the child's own peak RSS. */
static run_stat in_child(job j, const char *src, const char *ref, const char *back, int W)
{
	run_stat s = {0};
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

/* Wall seconds of a shell command; *cpu gets its user + sys seconds (all its processes). */
static double time_shell(const char *cmd, double *cpu)
{
	struct rusage a, b;
	getrusage(RUSAGE_CHILDREN, &a);
	double t0 = now_s();
	if (system(cmd) != 0)
		fprintf(stderr, "bench_convert: '%s' failed\n", cmd);
	double t = now_s() - t0;
	getrusage(RUSAGE_CHILDREN, &b);
	*cpu = tv_s(b.ru_utime) + tv_s(b.ru_stime) - tv_s(a.ru_utime) - tv_s(a.ru_stime);
	return t;
}

int main(int argc, char **argv)
{
	const char *dir = "/tmp/dsv32-bench-convert";
	int W = 8;
	bool keep = false;
	const char *ref_dir = NULL;
	int layers = 8;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--dir") && i + 1 < argc)
			dir = argv[++i];
		else if (!strcmp(argv[i], "--mp") && i + 1 < argc)
			W = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--layers") && i + 1 < argc)
			layers = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--ref-dir") && i + 1 < argc)
			ref_dir = argv[++i];
		else if (!strcmp(argv[i], "--keep"))
			keep = true;
		else {
			fprintf(stderr, "usage: bench_convert [--dir DIR] [--ref-dir DIR] [--mp W] [--layers N] [--keep]\n");
			return 2;
		}
	}
	char src[4200], ref[4200], back[4200], cmd[8192];
	snprintf(src, sizeof src, "%s/hf", dir);
	if (ref_dir)
		snprintf(ref, sizeof ref, "%s", ref_dir);
	else
		snprintf(ref, sizeof ref, "%s/ref", dir);
	if (dsv32_path_exists(ref))
		dsv32_remove_tree(ref, NULL);
	snprintf(back, sizeof back, "%s/back", dir);
	if (dsv32_path_exists(dir))
		dsv32_remove_tree(dir, NULL);
	dsv32_mkdirs(src, NULL);

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
	printf("source: %zu tensors, %.3f GB in %d files (written in %.1f s), largest tensor %.1f MB\n",
	       l.n, gb, nfiles, t_gen, l.largest / 1e6);

	snprintf(cmd, sizeof cmd, "cat %s/*.safetensors > /dev/null", src);
	double c_cat, c_copy;
	double t_cat = time_shell(cmd, &c_cat);
	snprintf(cmd, sizeof cmd, "cat %s/*.safetensors > %s/copy.bin && sync %s/copy.bin && rm %s/copy.bin",
		 src, dir, dir, dir);
	double t_copy = time_shell(cmd, &c_copy);
	run_stat a = in_child(JOB_TO_REF, src, ref, back, W);
	run_stat b = in_child(JOB_TO_HF, src, ref, back, W);
	run_stat v = in_child(JOB_VERIFY, src, ref, back, W);

	printf("\n(wall: elapsed seconds; cpu: user+sys seconds; ratios are baseline time / step time)\n");
	printf("%-34s %7s %6s %7s %7s %7s %8s %8s\n", "step", "wall", "GB/s", "vs cat", "vs copy",
	       "cpu", "cpu/cat", "RSS MB");
	printf("%-34s %7.2f %6.2f %7s %7s %7.2f %8s %8s\n", "cat > /dev/null (read baseline)", t_cat,
	       gb / t_cat, "1.00", "", c_cat, "1.00", "");
	printf("%-34s %7.2f %6.2f %7.2f %7s %7.2f %8.2f %8s\n", "cat > file + sync (copy baseline)",
	       t_copy, gb / t_copy, t_cat / t_copy, "1.00", c_copy, c_cat / c_copy, "");
	const char *names[3] = {"convert hf-to-ref", "convert ref-to-hf", "verify-shards"};
	run_stat *rs[3] = {&a, &b, &v};
	for (int i = 0; i < 3; i++)
		printf("%-28s mp%-3d %7.2f %6.2f %7.2f %7.2f %7.2f %8.2f %8.0f%s\n", names[i], W,
		       rs[i]->secs, gb / rs[i]->secs, t_cat / rs[i]->secs, t_copy / rs[i]->secs,
		       rs[i]->cpu, c_cat / rs[i]->cpu, rs[i]->maxrss_kb / 1024.0,
		       rs[i]->status ? "  FAILED" : "");
	printf("\npeak RSS / largest tensor (%.0f MB): hf-to-ref %.2f, ref-to-hf %.2f, verify %.2f\n",
	       l.largest / 1e6, a.maxrss_kb * 1024.0 / l.largest, b.maxrss_kb * 1024.0 / l.largest,
	       v.maxrss_kb * 1024.0 / l.largest);
	for (size_t i = 0; i < l.n; i++)
		free(l.v[i].name);
	free(l.v);
	free(json);
	if (!keep) {
		dsv32_remove_tree(dir, NULL);
		if (ref_dir)
			dsv32_remove_tree(ref, NULL);
	}
	return a.status || b.status || v.status;
}
