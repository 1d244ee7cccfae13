/* side.c: parsing side specifications ("ref:cuda:fp32:mp=2", "taps:FILE").
 * The world size is spelled mp=W, as --mp W and the shard names model{r}-mp{W}: one spelling
 * per concept (issue 16); tp=W is refused with that hint. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compare/provenance.h"
#include "compare/runner.h"
#include "core/knobs.h"
#include "kernels/backend.h"
#include "kernels/exp_torch.h"

/* knob=NAME[,NAME...]: numerics knobs of core/knobs.h, by name. On a ref side each takes one
 * difference over from hf (apply_ref); on an hf side each takes one over from ref (apply_hf,
 * opts.knobs_to_ref). A knob that is not yet a switch in the side's direction is refused. */
static dsv32_status parse_knobs(dsv32_side_spec *s, const char *list, const char *text,
				dsv32_error *err)
{
	bool hf = !strcmp(s->layout, "hf");
	char buf[256], *save = NULL;
	snprintf(buf, sizeof buf, "%s", list);
	for (char *name = strtok_r(buf, ",", &save); name; name = strtok_r(NULL, ",", &save)) {
		const dsv32_knob *k = dsv32_knob_find(name);
		if (!k)
			return DSV32_FAIL(err, DSV32_E_USAGE,
					  "side '%s': unknown knob '%s' (dsv32-parity attribute "
					  "--list-knobs)", text, name);
		if (hf ? !dsv32_knob_implemented_hf(k) : !dsv32_knob_implemented(k))
			return DSV32_FAIL(err, DSV32_E_USAGE, "side '%s': knob '%s' is not yet a switch%s",
					  text, name, hf ? " of the hf layout (toward ref)" : "");
		if (hf)
			k->apply_hf(&s->opts);
		else
			k->apply_ref(&s->opts);
	}
	return DSV32_OK;
}

static dsv32_status parse_token(dsv32_side_spec *s, const char *tok, const char *text,
				dsv32_error *err)
{
	dsv32_model_opts *o = &s->opts;
	if (!strcmp(tok, "cpu")) o->device = DSV32_DEV_CPU;
	else if (!strcmp(tok, "cuda") || !strcmp(tok, "gpu")) o->device = DSV32_DEV_CUDA;
	else if (!strcmp(tok, "bf16")) o->profile = DSV32_PROFILE_BF16;
	else if (!strcmp(tok, "fp32")) o->profile = DSV32_PROFILE_FP32;
	else if (!strncmp(tok, "mp=", 3)) {
		char *end;
		long w = strtol(tok + 3, &end, 10);
		if (*end || w < 1 || w > 64)
			return DSV32_FAIL(err, DSV32_E_USAGE, "side '%s': mp=%s, expected 1..64", text,
					  tok + 3);
		o->world_size = (int)w;
	} else if (!strncmp(tok, "tp=", 3)) {
		return DSV32_FAIL(err, DSV32_E_USAGE,
				  "side '%s': the world size is spelled mp=%s (as --mp and the shard "
				  "names model{r}-mp{W})",
				  text, tok + 3);
	} else if (!strncmp(tok, "knob=", 5)) {
		return parse_knobs(s, tok + 5, text, err);
	} else if (!strncmp(tok, "plant=", 6)) {
		/* test-only (the dogfood gate): the planted rounding bug of kernels/test_hooks.h in
		 * one layer; the spec must outlive the model's open, which copies it */
		char *end;
		long l = strtol(tok + 6, &end, 10);
		if (*end || l < 0 || l > 1000)
			return DSV32_FAIL(err, DSV32_E_USAGE, "side '%s': plant=%s, expected a layer",
					  text, tok + 6);
		s->plant = (dsv32_plant){1u << DSV32_TEST_FLAG_RMSNORM_NO_FINAL_ROUND, (int)l};
		o->plant = &s->plant;
	} else if (!strcmp(tok, "lanes=8") || !strcmp(tok, "lanes=16")) {
		o->torch_lanes = atoi(tok + 6);
	} else if (!strcmp(tok, "torch=1") || !strcmp(tok, "torch=2")) {
		o->torch_major = atoi(tok + 6);
	} else if (!strcmp(tok, "gemm=fixed") || !strcmp(tok, "gemm=host")) {
		o->gemm_engine = tok[5] == 'h' ? DSV32_GEMM_HOST : DSV32_GEMM_FIXED;
	} else if (!strcmp(tok, "ties=index") || !strcmp(tok, "ties=torch-cpu")) {
		o->ties = tok[5] == 't'; /* dsv32_tie_rule: 1 = torch-cpu */
		snprintf(s->ties_from, sizeof s->ties_from, "side option");
	} else if (!strcmp(tok, "exp=libm") || !strcmp(tok, "exp=torch-cpu")) {
		o->exp_rule = tok[4] == 't'; /* dsv32_exp_rule: 1 = torch-cpu */
		snprintf(s->exp_from, sizeof s->exp_from, "side option");
	} else if (!strcmp(tok, "experts=eager")) o->experts = DSV32_EXPERTS_EAGER;
	else if (!strcmp(tok, "experts=grouped_mm")) o->experts = DSV32_EXPERTS_GROUPED_MM;
	else if (!strcmp(tok, "no-fp8-indexer")) o->no_fp8_indexer = true;
	else if (!strcmp(tok, "no-fp8-kv")) o->no_fp8_kv = true;
	else if (!strcmp(tok, "force-yarn")) o->force_yarn = true;
	else if (!strcmp(tok, "comm=inproc")) s->comm[0] = '\0'; /* the default: this process */
	else if (!strcmp(tok, "comm=mpi") || !strcmp(tok, "comm=nccl"))
		/* real ranks, one per process: every rank records the side, rank 0 compares it
		 * (cli/cmd_compare.c; docs/distributed.md) */
		snprintf(s->comm, sizeof s->comm, "%s", tok + 5);
	else
		return DSV32_FAIL(err, DSV32_E_USAGE,
				  "side '%s': unknown option '%s' (expected cpu|cuda, bf16|fp32, mp=W, comm=inproc|mpi|nccl, "
				  "gemm=fixed|host, ties=index|torch-cpu, exp=libm|torch-cpu, experts=eager|grouped_mm, no-fp8-indexer, no-fp8-kv, force-yarn, lanes=8|16, torch=1|2, knob=NAME, plant=L)",
				  text, tok);
	return DSV32_OK;
}

static void label_add(dsv32_side_spec *s, bool on, const char *text)
{
	size_t n = strlen(s->label);
	if (on && n + 1 < sizeof s->label)
		snprintf(s->label + n, sizeof s->label - n, ":%s", text);
}

static const char *num(char *buf, size_t len, const char *key, int v)
{
	snprintf(buf, len, "%s=%d", key, v);
	return buf;
}

/* The knobs that are bits of opts.knobs (ref) or opts.knobs_to_ref (hf); the others set the
 * option fields named above. */
static void label_knobs(dsv32_side_spec *s)
{
	bool hf = !strcmp(s->layout, "hf");
	size_t nk;
	const dsv32_knob *k = dsv32_knob_table(&nk);
	for (size_t i = 0; i < nk; i++) {
		dsv32_model_opts probe = {0};
		char t[64];
		snprintf(t, sizeof t, "knob=%s", k[i].name);
		if (hf && k[i].apply_hf) {
			k[i].apply_hf(&probe);
			uint32_t b = probe.knobs_to_ref;
			label_add(s, b && (s->opts.knobs_to_ref & b) == b, t);
		} else if (!hf && k[i].apply_ref && !k[i].side_token) {
			k[i].apply_ref(&probe);
			label_add(s, probe.knobs && (s->opts.knobs & probe.knobs) == probe.knobs, t);
		}
	}
}

/* Every option that changes numerics is in the label, so two different sides never share one;
 * defaults stay implicit but for the ref world size. */
static void make_label(dsv32_side_spec *s)
{
	const dsv32_model_opts *o = &s->opts;
	bool ref = !strcmp(s->layout, "ref");
	char b[32];
	snprintf(s->label, sizeof s->label, "%s:%s:%s", s->layout,
		 o->device == DSV32_DEV_CUDA ? "cuda" : "cpu",
		 o->profile == DSV32_PROFILE_FP32 ? "fp32" : "bf16");
	label_add(s, ref, num(b, sizeof b, "mp", o->world_size));
	if (s->comm[0]) { /* where the ranks ran, not what they compute: report check ignores it */
		char c[16];
		snprintf(c, sizeof c, "comm=%s", s->comm);
		label_add(s, true, c);
	}
	label_add(s, !ref && o->experts == DSV32_EXPERTS_EAGER, "experts=eager");
	label_add(s, o->gemm_engine == DSV32_GEMM_HOST, "gemm=host");
	label_add(s, o->ties == 1, "ties=torch-cpu");
	label_add(s, o->exp_rule == 1, "exp=torch-cpu");
	label_add(s, o->no_fp8_indexer, "no-fp8-indexer");
	label_add(s, o->no_fp8_kv, "no-fp8-kv");
	label_add(s, o->force_yarn, "force-yarn");
	label_add(s, o->torch_lanes != 0, num(b, sizeof b, "lanes", o->torch_lanes));
	label_add(s, o->torch_major != 0, num(b, sizeof b, "torch", o->torch_major));
	label_knobs(s);
	label_add(s, o->plant != NULL, num(b, sizeof b, "plant", o->plant ? o->plant->layer : 0));
}

dsv32_status dsv32_side_parse(const char *text, dsv32_side_spec *out, dsv32_error *err)
{
	memset(out, 0, sizeof *out);
	dsv32_model_opts_default(&out->opts);
	snprintf(out->ties_from, sizeof out->ties_from, "default");
	snprintf(out->exp_from, sizeof out->exp_from, "default");
	if (!strncmp(text, "taps:", 5)) {
		if (!text[5] || strlen(text + 5) >= sizeof out->path)
			return DSV32_FAIL(err, DSV32_E_USAGE, "side '%s': taps:FILE needs a file", text);
		out->kind = DSV32_SIDE_TAPS;
		snprintf(out->path, sizeof out->path, "%s", text + 5);
		snprintf(out->label, sizeof out->label, "taps:%s", text + 5);
		return DSV32_OK;
	}
	char buf[256];
	if (strlen(text) >= sizeof buf)
		return DSV32_FAIL(err, DSV32_E_USAGE, "side '%.40s...': too long", text);
	snprintf(buf, sizeof buf, "%s", text);
	char *save = NULL, *tok = strtok_r(buf, ":", &save);
	if (!tok || (strcmp(tok, "ref") != 0 && strcmp(tok, "hf") != 0))
		return DSV32_FAIL(err, DSV32_E_USAGE,
				  "side '%s': expected ref|hf[:options] or taps:FILE", text);
	out->kind = DSV32_SIDE_MODEL;
	snprintf(out->layout, sizeof out->layout, "%s", tok);
	while ((tok = strtok_r(NULL, ":", &save)))
		DSV32_TRY(parse_token(out, tok, text, err));
	if (!strcmp(out->layout, "hf") && out->comm[0])
		return DSV32_FAIL(err, DSV32_E_USAGE, "side '%s': comm=%s applies to the ref layout "
				  "only (real tensor-parallel ranks)", text, out->comm);
	if (!strcmp(out->layout, "hf") && out->opts.world_size != 1)
		return DSV32_FAIL(err, DSV32_E_USAGE, "side '%s': mp=W applies to the ref layout only",
				  text);
	make_label(out);
	return DSV32_OK;
}

void dsv32_recording_ties(const char *recording, char *out, size_t len)
{
	char device[16] = "";
	out[0] = '\0';
	if (dsv32_recording_meta(recording, "ties", out, len) && out[0])
		return;
	out[0] = '\0';
	if (dsv32_recording_meta(recording, "device", device, sizeof device) &&
	    !strcmp(device, "cpu"))
		snprintf(out, len, "torch-cpu");
}

/* The threads and capability of the torch run a recording made (its exp_threads and
 * exp_capability), so the vector-body / tail split is the recording's, not this host's. */
static void adopt_exp_run(dsv32_side_spec *live, const char *recording)
{
	char v[32];
	dsv32_torch_cap cap;
	if (dsv32_recording_meta(recording, "exp_threads", v, sizeof v) && atoi(v) > 0)
		live->opts.exp_threads = atoi(v);
	if (dsv32_recording_meta(recording, "exp_capability", v, sizeof v) &&
	    dsv32_torch_cap_from_name(v, &cap))
		live->opts.exp_cap = 1 + (int)cap;
}

unsigned dsv32_side_adopt_recording_rules(dsv32_side_spec *live, const char *recording)
{
	/* both are CPU rules: torch on CUDA breaks ties by index and has its own exp */
	if (live->kind != DSV32_SIDE_MODEL || live->opts.device != DSV32_DEV_CPU)
		return 0;
	unsigned changed = 0;
	char rule[16];
	dsv32_recording_ties(recording, rule, sizeof rule);
	if (!strcmp(live->ties_from, "default") && !strcmp(rule, "torch-cpu")) {
		live->opts.ties = 1; /* dsv32_tie_rule: torch-cpu */
		snprintf(live->ties_from, sizeof live->ties_from, "recording");
		changed |= 1u;
	}
	if (!strcmp(live->exp_from, "default") &&
	    dsv32_recording_meta(recording, "exp", rule, sizeof rule) && !strcmp(rule, "torch-cpu")) {
		live->opts.exp_rule = 1; /* dsv32_exp_rule: torch-cpu */
		snprintf(live->exp_from, sizeof live->exp_from, "recording");
		adopt_exp_run(live, recording);
		changed |= 2u;
	}
	if (changed)
		make_label(live);
	return changed;
}
