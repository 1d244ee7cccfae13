/* provenance.c: checkpoint fingerprints and build facts for reports. */
#include "compare/provenance.h"

#include <dirent.h>
#include <hdf5.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/config.h"
#include "core/fsutil.h"
#include "core/infile.h"
#include "core/safetensors.h"
#include "kernels/host_info.h"

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Hash name, size and the 8 + N header bytes of one safetensors file. */
static dsv32_status hash_header(EVP_MD_CTX *md, const char *path, const char *name,
				dsv32_error *err)
{
	int fd;
	struct stat st;
	/* the directory may hold a FIFO or a directory named *.safetensors that no index lists */
	DSV32_TRY(dsv32_infile_open(path, &fd, &st, err));
	FILE *f = fdopen(fd, "rb");
	if (!f) {
		close(fd);
		return DSV32_FAIL(err, DSV32_E_NOMEM, "%s: cannot open a stream", path);
	}
	unsigned char len8[8];
	dsv32_status rc = DSV32_OK;
	if (fread(len8, 1, 8, f) != 8) {
		rc = DSV32_FAIL(err, DSV32_E_FORMAT, "%s: not a safetensors file", path);
		goto out_close;
	}
	uint64_t n = 0;
	for (int i = 7; i >= 0; i--)
		n = (n << 8) | len8[i];
	if (n > 100000000u || 8 + n > (uint64_t)st.st_size) {
		rc = DSV32_FAIL(err, DSV32_E_FORMAT, "%s: header length %llu out of range", path,
				(unsigned long long)n);
		goto out_close;
	}
	char *hdr = malloc(n ? n : 1);
	if (!hdr || fread(hdr, 1, n, f) != n) {
		free(hdr);
		rc = DSV32_FAIL(err, DSV32_E_IO, "%s: reading the header", path);
		goto out_close;
	}
	char meta[64];
	snprintf(meta, sizeof meta, "%lld\n", (long long)st.st_size);
	EVP_DigestUpdate(md, name, strlen(name) + 1);
	EVP_DigestUpdate(md, meta, strlen(meta));
	EVP_DigestUpdate(md, hdr, n);
	free(hdr);
out_close:
	fclose(f);
	return rc;
}

static dsv32_status list_files(const char *dir, char ***names, size_t *n, dsv32_error *err)
{
	DIR *d = opendir(dir);
	if (!d)
		return DSV32_FAIL(err, DSV32_E_IO, "%s: cannot open directory", dir);
	size_t cap = 0;
	*names = NULL;
	*n = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		size_t l = strlen(e->d_name);
		if (l < 12 || strcmp(e->d_name + l - 12, ".safetensors") != 0)
			continue;
		if (*n == cap) {
			cap = cap ? cap * 2 : 16;
			char **p = realloc(*names, cap * sizeof *p);
			if (!p)
				break;
			*names = p;
		}
		(*names)[(*n)++] = strdup(e->d_name);
	}
	closedir(d);
	qsort(*names, *n, sizeof **names, cmp_str);
	return DSV32_OK;
}

dsv32_status dsv32_checkpoint_fingerprint(const char *path, char hex[65], dsv32_error *err)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	if (!md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(md);
		return DSV32_FAIL(err, DSV32_E_INTERNAL, "SHA-256 unavailable");
	}
	dsv32_status rc = DSV32_OK;
	if (!dsv32_path_is_dir(path)) {
		const char *base = strrchr(path, '/');
		rc = hash_header(md, path, base ? base + 1 : path, err);
	} else {
		char **names = NULL;
		size_t n = 0;
		rc = list_files(path, &names, &n, err);
		if (rc == DSV32_OK && n == 0)
			rc = DSV32_FAIL(err, DSV32_E_NOTFOUND, "%s: no .safetensors files", path);
		for (size_t i = 0; i < n; i++) {
			char p[4096];
			if (rc == DSV32_OK && dsv32_path_join(p, sizeof p, path, names[i]))
				rc = hash_header(md, p, names[i], err);
			free(names[i]);
		}
		free(names);
	}
	unsigned char dig[32];
	unsigned int dl = 0;
	EVP_DigestFinal_ex(md, dig, &dl);
	EVP_MD_CTX_free(md);
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", dig[i]);
	return rc;
}

void dsv32_prov_add_build(dsv32_cmp_result *r)
{
	char buf[128];
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
	dsv32_cmp_result_prov(r, "date", buf);
	dsv32_cmp_result_prov(r, "tool_version", DSV32_VERSION);
#ifdef DSV32_HAVE_CUDA
	const char *cuda = "cuda on";
#else
	const char *cuda = "cuda off";
#endif
	snprintf(buf, sizeof buf, "gcc %d.%d, %s", __GNUC__, __GNUC_MINOR__, cuda);
	dsv32_cmp_result_prov(r, "build", buf);
}

void dsv32_side_host_live(dsv32_side_host *h, int engine)
{
	dsv32_host_fingerprint f;
	dsv32_host_fingerprint_get(&f, engine);
	memset(h, 0, sizeof *h);
	h->present = true;
	snprintf(h->engine, sizeof h->engine, "%s", f.engine);
	dsv32_host_numerics_key(&f, h->numerics_key, sizeof h->numerics_key);
	snprintf(h->cpu_model, sizeof h->cpu_model, "%s", f.cpu_model);
	snprintf(h->isa, sizeof h->isa, "%s", f.isa);
	snprintf(h->onednn_impl, sizeof h->onednn_impl, "%s", f.onednn_impl);
	snprintf(h->openblas_core, sizeof h->openblas_core, "%s", f.openblas_core);
	snprintf(h->versions, sizeof h->versions, "%s", f.versions);
	h->threads = f.threads;
	dsv32_host_fingerprint_line(&f, h->line, sizeof h->line);
}

/* A root string attribute of an HDF5 file: fixed-length (our writer) or variable-length (h5py's
 * default for str). */
static bool h5_root_attr(const char *path, const char *key, char *out, size_t len)
{
	H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
	/* HDF5 opens by name and would block on a FIFO */
	if (dsv32_infile_check(path, NULL) != DSV32_OK || H5Fis_hdf5(path) <= 0)
		return false;
	hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
	if (f < 0)
		return false;
	bool ok = false;
	if (H5Aexists(f, key) > 0) {
		hid_t a = H5Aopen(f, key, H5P_DEFAULT);
		hid_t ty = a >= 0 ? H5Aget_type(a) : -1;
		if (ty >= 0 && H5Tget_class(ty) == H5T_STRING) {
			if (H5Tis_variable_str(ty) > 0) {
				char *v = NULL;
				hid_t mem = H5Tcopy(H5T_C_S1);
				H5Tset_size(mem, H5T_VARIABLE);
				H5Tset_cset(mem, H5Tget_cset(ty));
				if (H5Aread(a, mem, &v) >= 0 && v) {
					snprintf(out, len, "%s", v);
					ok = true;
				}
				if (v)
					H5free_memory(v);
				H5Tclose(mem);
			} else {
				size_t n = H5Tget_size(ty);
				char *v = n < (1u << 20) ? calloc(n + 1, 1) : NULL;
				if (v && H5Aread(a, ty, v) >= 0) {
					snprintf(out, len, "%s", v);
					ok = true;
				}
				free(v);
			}
		}
		if (ty >= 0)
			H5Tclose(ty);
		if (a >= 0)
			H5Aclose(a);
	}
	H5Fclose(f);
	return ok;
}

bool dsv32_recording_meta(const char *path, const char *key, char *out, size_t len)
{
	size_t n = strlen(path);
	if ((n > 3 && !strcmp(path + n - 3, ".h5")) || (n > 5 && !strcmp(path + n - 5, ".hdf5")))
		return h5_root_attr(path, key, out, len);
	dsv32_st_file *f = NULL;
	if (dsv32_st_open(&f, path, NULL) != DSV32_OK)
		return false;
	const char *v = dsv32_st_metadata(f, key);
	if (v)
		snprintf(out, len, "%s", v);
	dsv32_st_close(f);
	return v != NULL;
}

void dsv32_side_host_recorded(dsv32_side_host *h, const char *path)
{
	memset(h, 0, sizeof *h);
	h->present = true;
	h->recorded = true;
	if (!dsv32_recording_meta(path, DSV32_META_FINGERPRINT, h->line, sizeof h->line) ||
	    !h->line[0]) {
		snprintf(h->engine, sizeof h->engine, "unknown");
		snprintf(h->numerics_key, sizeof h->numerics_key, "unknown");
		snprintf(h->line, sizeof h->line, "unknown (recording has no fingerprint)");
		return;
	}
	if (!dsv32_recording_meta(path, DSV32_META_GEMM_ENGINE, h->engine, sizeof h->engine) ||
	    !h->engine[0])
		snprintf(h->engine, sizeof h->engine, "unknown");
	if (!dsv32_recording_meta(path, DSV32_META_NUMERICS_KEY, h->numerics_key,
				  sizeof h->numerics_key) || !h->numerics_key[0])
		snprintf(h->numerics_key, sizeof h->numerics_key, "unknown");
}

void dsv32_prov_add_side_host(dsv32_cmp_result *r, int side, const dsv32_side_spec *s)
{
	dsv32_side_host *h = &r->host[side ? 1 : 0];
	if (s->kind == DSV32_SIDE_TAPS) {
		dsv32_side_host_recorded(h, s->path);
		char rule[16] = "";
		bool named = dsv32_recording_meta(s->path, "ties", rule, sizeof rule) && rule[0];
		dsv32_recording_ties(s->path, h->ties, sizeof h->ties);
		snprintf(h->ties_from, sizeof h->ties_from, "%s",
			 named ? "metadata" : h->ties[0] ? "device" : "");
		if (dsv32_recording_meta(s->path, "exp", h->exp, sizeof h->exp) && h->exp[0])
			snprintf(h->exp_from, sizeof h->exp_from, "metadata");
		else
			h->exp[0] = '\0';
		return;
	}
	dsv32_side_host_live(h, s->opts.gemm_engine);
	snprintf(h->ties, sizeof h->ties, "%s", s->opts.ties == 1 ? "torch-cpu" : "index");
	snprintf(h->ties_from, sizeof h->ties_from, "%s", s->ties_from);
	snprintf(h->exp, sizeof h->exp, "%s", s->opts.exp_rule == 1 ? "torch-cpu" : "libm");
	snprintf(h->exp_from, sizeof h->exp_from, "%s", s->exp_from);
}

/* ---- is a comparison meaningful? ---- */

#define META_CONFIG_MAX (1 << 20)

/* The model config a recording states in its "config" metadata (HF or reference form, told
 * apart as dsv32_config_load does); false when it states none or it does not parse. */
static bool recording_config(const char *path, dsv32_config *c)
{
	char *text = malloc(META_CONFIG_MAX);
	bool ok = text && dsv32_recording_meta(path, "config", text, META_CONFIG_MAX) && text[0];
	if (ok) {
		bool hf = strstr(text, "\"hidden_size\"") || strstr(text, "\"model_type\"");
		ok = (hf ? dsv32_config_from_hf_json(c, text, path, NULL)
			 : dsv32_config_from_ref_json(c, text, path, NULL)) == DSV32_OK;
	}
	free(text);
	return ok;
}

/* The first field that makes two configs different models, as "name X vs Y"; false if none.
 * Only shape-defining fields: a serialization detail (a key one form lacks) is no difference. */
static bool config_diff(const dsv32_config *x, const dsv32_config *y, char *why, size_t len)
{
	const struct {
		const char *name;
		int64_t a, b;
	} f[] = {
		{"vocab_size", x->vocab_size, y->vocab_size}, {"dim", x->dim, y->dim},
		{"n_layers", x->n_layers, y->n_layers}, {"n_dense_layers", x->n_dense_layers, y->n_dense_layers},
		{"n_heads", x->n_heads, y->n_heads}, {"inter_dim", x->inter_dim, y->inter_dim},
		{"moe_inter_dim", x->moe_inter_dim, y->moe_inter_dim},
		{"n_routed_experts", x->n_routed_experts, y->n_routed_experts},
		{"n_activated_experts", x->n_activated_experts, y->n_activated_experts},
		{"q_lora_rank", x->q_lora_rank, y->q_lora_rank},
		{"kv_lora_rank", x->kv_lora_rank, y->kv_lora_rank},
		{"index_topk", x->index_topk, y->index_topk},
	};
	for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
		if (f[i].a != f[i].b) {
			snprintf(why, len, "%s %lld vs %lld", f[i].name, (long long)f[i].a,
				 (long long)f[i].b);
			return true;
		}
	return false;
}

dsv32_status dsv32_recording_check_model(const char *rec, const char *checkpoint,
					 const char *ckpt_label, bool require_identity,
					 dsv32_error *err)
{
	dsv32_config rc_cfg, ck_cfg;
	char p[4096], why[128], fp[128], hex[65];
	bool is_hf;
	dsv32_config_defaults(&rc_cfg);
	bool has_fp = dsv32_recording_meta(rec, DSV32_META_WEIGHTS_FP, fp, sizeof fp) && fp[0];
	if (require_identity && !has_fp) /* same config, other weights would still be noise */
		return DSV32_FAIL(err, DSV32_E_USAGE,
				  "%s does not state its weights fingerprint (%s), so it cannot be "
				  "shown to be of %s: pass --checkpoint DIR of the recorded model", rec,
				  DSV32_META_WEIGHTS_FP, ckpt_label);
	if (!recording_config(rec, &rc_cfg)) {
		if (!require_identity)
			return DSV32_OK; /* nothing to check against: the user named the model */
		return DSV32_FAIL(err, DSV32_E_USAGE,
				  "%s states no model config, so it cannot be checked against %s: "
				  "pass --checkpoint DIR of the recorded model", rec, ckpt_label);
	}
	if (!dsv32_path_join(p, sizeof p, checkpoint, "config.json"))
		return DSV32_FAIL(err, DSV32_E_USAGE, "%s: path too long", checkpoint);
	DSV32_TRY(dsv32_config_load(&ck_cfg, p, &is_hf, err));
	if (config_diff(&rc_cfg, &ck_cfg, why, sizeof why))
		return DSV32_FAIL(err, DSV32_E_USAGE,
				  "not comparable: %s was recorded with another model than %s (config "
				  "%s)%s", rec, ckpt_label, why,
				  require_identity ? ": pass --checkpoint DIR of the recorded model" : "");
	if (has_fp && dsv32_checkpoint_fingerprint(checkpoint, hex, NULL) == DSV32_OK &&
	    strcmp(fp, hex) != 0)
		return DSV32_FAIL(err, DSV32_E_USAGE,
				  "not comparable: %s was recorded with other weights than %s "
				  "(weights fingerprint %.16s... vs %.16s...)%s", rec, ckpt_label, fp, hex,
				  require_identity ? ": pass --checkpoint DIR of the recorded model" : "");
	return DSV32_OK;
}

dsv32_status dsv32_recordings_check_pair(const char *a, const char *b, dsv32_error *err)
{
	dsv32_config ca, cb;
	char why[128], fa[128], fb[128];
	dsv32_config_defaults(&ca);
	dsv32_config_defaults(&cb);
	if (recording_config(a, &ca) && recording_config(b, &cb) &&
	    config_diff(&ca, &cb, why, sizeof why))
		return DSV32_FAIL(err, DSV32_E_USAGE,
				  "not comparable: the recordings are of different models (config %s, "
				  "a vs b)", why);
	if (dsv32_recording_meta(a, DSV32_META_WEIGHTS_FP, fa, sizeof fa) && fa[0] &&
	    dsv32_recording_meta(b, DSV32_META_WEIGHTS_FP, fb, sizeof fb) && fb[0] &&
	    strcmp(fa, fb) != 0)
		return DSV32_FAIL(err, DSV32_E_USAGE,
				  "not comparable: the recordings are of different weights "
				  "(weights fingerprint %.16s... vs %.16s...)", fa, fb);
	return DSV32_OK;
}
