/* host_info.c: the host fingerprint (host_info.h). */
#include "kernels/host_info.h"

#include <cblas.h>
#include <omp.h>
#include <oneapi/dnnl/dnnl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "kernels/backend.h"
#include "kernels/gemm.h"

/* /proc/cpuinfo's first "model name" value, or "" */
static void cpu_model(char *out, size_t len)
{
	out[0] = '\0';
	FILE *f = fopen("/proc/cpuinfo", "r");
	if (!f)
		return;
	char line[512];
	while (fgets(line, sizeof line, f)) {
		const char *c = strchr(line, ':');
		if (strncmp(line, "model name", 10) != 0 || !c)
			continue;
		c++;
		while (*c == ' ' || *c == '\t')
			c++;
		snprintf(out, len, "%.*s", (int)strcspn(c, "\n"), c);
		break;
	}
	fclose(f);
}

static void isa_flags(char *out, size_t len)
{
	out[0] = '\0';
#if defined(__x86_64__) && defined(__GNUC__)
	static const char *const names[] = {"fma", "avx2", "avx512f", "avx512bf16", "amx-bf16"};
	static const char *const shown[] = {"fma", "avx2", "avx512f", "avx512_bf16", "amx_bf16"};
	bool has[5] = {__builtin_cpu_supports("fma"), __builtin_cpu_supports("avx2"),
		       __builtin_cpu_supports("avx512f"), __builtin_cpu_supports("avx512bf16"),
		       __builtin_cpu_supports("amx-bf16")};
	(void)names;
	size_t n = 0;
	for (int i = 0; i < 5 && n < len; i++)
		if (has[i])
			n += (size_t)snprintf(out + n, len - n, "%s%s", n ? " " : "", shown[i]);
#else
	snprintf(out, len, "non-x86");
#endif
}

void dsv32_host_fingerprint_get(dsv32_host_fingerprint *f, int engine)
{
	memset(f, 0, sizeof *f);
	snprintf(f->engine, sizeof f->engine, "%s", dsv32_gemm_engine_name(engine));
	snprintf(f->fixed_body, sizeof f->fixed_body, "%s", dsv32_gemm_fixed_body());
	cpu_model(f->cpu_model, sizeof f->cpu_model);
	isa_flags(f->isa, sizeof f->isa);
	snprintf(f->onednn_impl, sizeof f->onednn_impl, "%s", dsv32_gemm_bf16_impl());
	const char *core = openblas_get_corename();
	snprintf(f->openblas_core, sizeof f->openblas_core, "%s", core ? core : "");
	const dnnl_version_t *v = dnnl_version();
	const char *cfg = openblas_get_config();
	snprintf(f->versions, sizeof f->versions, "oneDNN %d.%d.%d, OpenBLAS %s", v ? v->major : 0,
		 v ? v->minor : 0, v ? v->patch : 0, cfg ? cfg : "?");
	f->threads = omp_get_max_threads();
}

void dsv32_host_numerics_key(const dsv32_host_fingerprint *f, char *out, size_t len)
{
	if (strcmp(f->engine, "host") != 0)
		snprintf(out, len, "fixed");
	else
		snprintf(out, len, "host:%s|%s", f->onednn_impl, f->openblas_core);
}

bool dsv32_host_blas_slow_note_for(const char *core, bool avx2, bool avx512f, bool avx512bf16,
				   char *out, size_t len)
{
	/* OpenBLAS's families below AVX2 (DYNAMIC_ARCH's x86-64 list) */
	static const char *const pre_avx2[] = {"Prescott", "Core2", "Penryn", "Dunnington",
					       "Nehalem", "Atom", "Sandybridge"};
	bool old = false;
	for (size_t i = 0; core && i < sizeof pre_avx2 / sizeof pre_avx2[0]; i++)
		old |= strcasecmp(core, pre_avx2[i]) == 0;
	if (!old || !avx2)
		return false;
	const char *fit = avx512bf16 ? "Cooperlake" : avx512f ? "SkylakeX" : "Haswell";
	snprintf(out, len,
		 "note: OpenBLAS runs its %s kernels on this CPU (a model it does not know), so the "
		 "host engine's F32 GEMMs run several times slower than the CPU allows; "
		 "OPENBLAS_CORETYPE=%s picks kernels this CPU runs (and changes the host engine's "
		 "numerics key)", core, fit);
	return true;
}

bool dsv32_host_blas_slow_note(char *out, size_t len)
{
#if defined(__x86_64__) && defined(__GNUC__)
	return dsv32_host_blas_slow_note_for(openblas_get_corename(),
					     __builtin_cpu_supports("avx2"),
					     __builtin_cpu_supports("avx512f"),
					     __builtin_cpu_supports("avx512bf16"), out, len);
#else
	(void)out;
	(void)len;
	return false;
#endif
}

void dsv32_host_fingerprint_line(const dsv32_host_fingerprint *f, char *out, size_t len)
{
	snprintf(out, len, "engine %s (%s); %s; isa %s; onednn %s; openblas %s; %d threads; %s",
		 f->engine, strcmp(f->engine, "host") ? f->fixed_body : "oneDNN/OpenBLAS",
		 f->cpu_model[0] ? f->cpu_model : "unknown CPU", f->isa[0] ? f->isa : "-",
		 f->onednn_impl, f->openblas_core, f->threads, f->versions);
}
