#!/usr/bin/env python3
"""py_test_record_transformers.py: the "two commands" story for HF users (issue 8).

1. fixtures/record_transformers.py records the real transformers DeepseekV32ForCausalLM on the
   golden checkpoint fixtures/golden/ref_tiny/hf (the ref_tiny prompt, B=2, S=24: sparse index
   attention; prefill + 2 greedy decode steps) into a temporary tap file.
2. `dsv32-parity compare --a taps:FILE --b hf:gemm=host --mode teacher-forced` and `--b ref` on it
   (the host engine for hf: the recording was just made by torch on this CPU, whose GEMMs follow
   the CPU's kernels as our host engine does; the fixed engine's order is the same on every CPU
   and so matches torch only where torch's kernels happen to share it, e.g. AVX2 without AMX).

Asserts: the recording holds every canonical tap of every layer and step with the documented
shapes and dtypes; with transformers 5.24 it is bit-identical to fixtures/hf_golden (made by an
independent script, make_golden.py) apart from the documented canonical order of index sets;
both comparisons exit 0 or 1 (never 2); every canonical layer tap of every layer and step is in
the report (not skipped), and only the expected taps are skipped; the hf layout reproduces
transformers teacher-forced to the pinned figures (measured 2026-11-28: dense taps rel_l2 <= 2.1e-4,
every index and expert row identical); against the ref layout the rope taps prove the
de-permutation (rel_l2 ~6e-3, a wrong channel order gives ~1.4) and index/expert sets are
compared. Exit 77 (skip) when torch, transformers (with deepseek_v32) or the CLI are missing.
"""
import json
import os
import subprocess
import sys
import tempfile

try:
    import torch
    import transformers
    from safetensors import safe_open
    from safetensors.torch import load_file
    from transformers.models.deepseek_v32 import modeling_deepseek_v32  # noqa: F401
except ImportError as e:  # optional test
    print(f"skip: {e}")
    sys.exit(77)

SRC = os.environ.get("DSV32_SOURCE_DIR", os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLI = os.environ.get("DSV32_CLI", "")
if not CLI or not os.access(CLI, os.X_OK):
    print("skip: DSV32_CLI not set")
    sys.exit(77)

CKPT = os.path.join(SRC, "fixtures", "golden", "ref_tiny", "hf")
TOKENS = os.path.join(SRC, "fixtures", "golden", "ref_tiny", "tokens.json")
HF_GOLDEN = os.path.join(SRC, "fixtures", "hf_golden", "golden_grouped.safetensors")
RECORDER = os.path.join(SRC, "fixtures", "record_transformers.py")
N_LAYERS, DECODE = 3, 2
MOE_LAYERS = (1, 2)
LAYER_TAPS = ["attn_norm", "attn.q_latent", "attn.kv_latent", "attn.q_rope", "attn.k_rope",
              "indexer.topk", "attn.out", "ffn_norm", "ffn.out", "out"]
MOE_TAPS = ["moe.experts", "moe.weights", "moe.scores", "moe.group_scores"]

# Pinned figures, measured 2026-11-28 (transformers 5.24.0, torch 2.15.0, CPU, 1 thread, AMD
# AVX2), and 2026-12-06 on an Intel Xeon with AMX (transformers 5.25.0, host engine: every BF16
# tap identical, indexer.scores <= 1.8e-7, moe.weights <= 6.7e-8).
# hf layout vs transformers, teacher-forced, worst over layers and steps:
HF_REL_L2_MAX = 5e-4       # measured 2.015e-4 (layers.2.ffn.out step 0: MoE fp32 slot-sum order)
HF_REL_L2_NONMOE = 1e-6    # attention taps: measured <= 1.6e-7 (indexer.scores, q_latent 1 ulp)
# ref layout vs transformers (different layouts: documented differences, docs/budgets.md):
REF_ROPE_REL_L2 = 0.012    # measured q_rope 6.1e-3, k_rope 4.8e-3
REF_NORM_REL_L2 = 0.006    # attn_norm, measured 3.5e-3


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def prompt_rows():
    with open(TOKENS) as f:
        return json.load(f)["prompt"]


def record(out):
    rows = prompt_rows()
    toks = ";".join(",".join(str(t) for t in r) for r in rows)
    cmd = [sys.executable, RECORDER, "--checkpoint", CKPT, "--tokens", toks,
           "--decode-steps", str(DECODE), "--out", out]
    p = subprocess.run(cmd, capture_output=True, text=True)
    check(p.returncode == 0, "recorder failed (%d): %s" % (p.returncode, p.stderr[-2000:]))
    return rows


def check_recording(path, rows):
    taps = load_file(path)
    meta = safe_open(path, "pt").metadata()
    for k in ("producer", "transformers", "torch", "config", "world_size", "generated"):
        check(k in meta, "metadata lacks %s" % k)
    check(json.loads(meta["config"])["model_type"] == "deepseek_v32", "config JSON in metadata")
    B, S0 = len(rows), len(rows[0])
    for s in range(DECODE + 1):
        S = S0 if s == 0 else 1
        start = 0 if s == 0 else S0 + s - 1
        ids = taps["step%d.input_ids" % s]
        check(ids.dtype == torch.int64 and tuple(ids.shape) == (B, S), "step%d.input_ids" % s)
        if s == 0:
            check(ids.tolist() == rows, "step0.input_ids is the prompt")
        pos = taps["step%d.position_ids" % s]
        check(pos[0, 0].item() == start, "step%d.position_ids starts at %d" % (s, start))
        for name in ["embed", "final_norm"]:
            check(tuple(taps["step%d.%s" % (s, name)].shape) == (B, S, 256), name)
        lg = taps["step%d.logits" % s]
        check(tuple(lg.shape) == (B, S, 1024), "logits [B,S,V]")
        if s > 0:  # greedy: this step's tokens are the argmax of the previous step's last logits
            prev = taps["step%d.logits" % (s - 1)][:, -1, :].float().argmax(-1)
            check(ids[:, 0].tolist() == prev.tolist(), "step%d tokens are greedy" % s)
        for i in range(N_LAYERS):
            names = LAYER_TAPS + (MOE_TAPS if i in MOE_LAYERS else []) + ["indexer.scores"]
            for t in names:
                check("step%d.layers.%d.%s" % (s, i, t) in taps, "missing step%d.layers.%d.%s" % (s, i, t))
            p = "step%d.layers.%d." % (s, i)
            check(tuple(taps[p + "attn.q_rope"].shape) == (B, S, 4, 64), "q_rope [B,S,H,64]")
            check(tuple(taps[p + "attn.k_rope"].shape) == (B, S, 64), "k_rope [B,S,64]")
            tk = taps[p + "indexer.topk"]
            check(tk.dtype == torch.int64 and tuple(tk.shape) == (B, S, min(16, start + S)), "indexer.topk")
            sc = taps[p + "indexer.scores"]
            check(sc.dtype == torch.float32 and tuple(sc.shape) == (B, S, start + S), "indexer.scores")
            # canonical order: scores of the selection non-increasing
            sel = sc.gather(-1, tk)
            check(bool((sel[..., :-1] >= sel[..., 1:]).all()), p + "indexer.topk sorted by score")
            if i in MOE_LAYERS:
                check(taps[p + "moe.experts"].dtype == torch.int64, "moe.experts I64")
                check(tuple(taps[p + "moe.experts"].shape) == (B, S, 4), "moe.experts [B,S,4]")
    return taps, meta


def check_against_hf_golden(taps):
    """make_golden.py (fixtures/hf_golden) recorded the same run independently with 4 decode
    steps; with the same library versions every tensor of steps 0..2 must be bit-identical,
    and the index sets equal as sets (this recorder puts them in canonical order)."""
    if transformers.__version__ != "5.24.0" or not torch.__version__.startswith("2.15."):
        print("note: transformers %s / torch %s: bit-identity with hf_golden not checked" %
              (transformers.__version__, torch.__version__))
        return
    gold = load_file(HF_GOLDEN)
    n = 0
    for k, v in taps.items():
        g = gold.get(k)
        check(g is not None, "hf_golden lacks %s" % k)
        check(g.dtype == v.dtype and g.shape == v.shape, "%s: dtype/shape vs hf_golden" % k)
        if k.endswith("indexer.topk"):
            sc = taps[k.replace("topk", "scores")]
            masked = sc <= -1e37
            for row_v, row_g, row_m in zip(v.reshape(-1, v.shape[-1]), g.reshape(-1, g.shape[-1]),
                                           masked.reshape(-1, masked.shape[-1])):
                keep_v = {int(x) for x in row_v if not row_m[x]}
                keep_g = {int(x) for x in row_g if not row_m[x]}
                check(keep_v == keep_g, "%s: unmasked selection differs from hf_golden" % k)
        elif k.endswith("moe.experts") or k.endswith("moe.weights"):
            e, ge = taps[k.rsplit(".", 1)[0] + ".experts"], gold[k.rsplit(".", 1)[0] + ".experts"]
            for r in range(e.shape[0] * e.shape[1]):
                a_row, g_row = e.reshape(-1, 4)[r].tolist(), ge.reshape(-1, 4)[r].tolist()
                check(sorted(a_row) == sorted(g_row), "%s row %d: expert set" % (k, r))
                if k.endswith("weights"):
                    wa = v.reshape(-1, 4)[r].tolist()
                    wg = g.reshape(-1, 4)[r].tolist()
                    check(dict(zip(a_row, wa)) == dict(zip(g_row, wg)), "%s row %d: weights" % (k, r))
        else:
            check(torch.equal(v, g), "%s differs from hf_golden" % k)
        n += 1
    print("recording bit-identical to hf_golden/golden_grouped (%d tensors)" % n)


def compare(tapfile, side, json_path):
    cmd = [CLI, "compare", "--checkpoint", CKPT, "--a", "taps:" + tapfile, "--b", side,
           "--mode", "teacher-forced", "--quiet", "--json", json_path]
    p = subprocess.run(cmd, capture_output=True, text=True)
    check(p.returncode in (0, 1), "compare --b %s exit %d (2 = bad input): %s" %
          (side, p.returncode, (p.stdout + p.stderr)[-2000:]))
    with open(json_path) as f:
        return json.load(f), p.returncode


def reported(rep):
    out = {}
    for t in rep["taps"]:
        check(t["mode"] == "local", "teacher-forced report has only local taps")
        out.setdefault((t["step"], t["name"]), t)
    return out


def check_every_tap_reported(rep, side, expect_only_in_b):
    got = reported(rep)
    for s in range(DECODE + 1):
        for i in range(N_LAYERS):
            for t in LAYER_TAPS + (MOE_TAPS if i in MOE_LAYERS else []):
                check((s, "layers.%d.%s" % (i, t)) in got,
                      "--b %s: step %d layers.%d.%s not compared" % (side, s, i, t))
    for sk in rep["skipped"]:
        name, reason = sk["name"], sk["reason"]
        if name in ("embed", "final_norm", "logits"):
            check("teacher-forced" in reason, "skip reason for %s: %s" % (name, reason))
            continue
        check(any(name.endswith("." + x) for x in expect_only_in_b) and reason == "only in b",
              "--b %s: unexpected skip %s (%s)" % (side, name, reason))


def worst(rep, ops=None):
    w = {}
    for t in rep["taps"]:
        m = t.get("metrics")
        if m is None or (ops and t["op"] not in ops):
            continue
        w[t["op"]] = max(w.get(t["op"], 0.0), m["rel_l2"])
    return w


def main():
    with tempfile.TemporaryDirectory(prefix="dsv32_rec_") as d:
        path = os.path.join(d, "hf_run.safetensors")
        rows = record(path)
        taps, meta = check_recording(path, rows)
        check_against_hf_golden(taps)

        # --- the hf layout against transformers: same layout, tiny drift ---
        rep, rc = compare(path, "hf:gemm=host", os.path.join(d, "hf.json"))
        check_every_tap_reported(rep, "hf", [])
        w = worst(rep)
        print("hf vs transformers, teacher-forced, worst rel_l2 per op:",
              json.dumps({k: float("%.3g" % v) for k, v in sorted(w.items())}))
        for op, v in w.items():
            lim = HF_REL_L2_MAX if op in ("ffn.out", "out", "moe.weights") else HF_REL_L2_NONMOE
            check(v <= lim, "hf: %s rel_l2 %.3g > pinned %.3g" % (op, v, lim))
        nsets = 0
        for t in rep["taps"]:
            if t["kind"] == "set":
                st = t["set"]
                check(st["rows_equal"] == st["rows"], "hf: %s step %d: %d/%d rows equal" %
                      (t["name"], t["step"], st["rows_equal"], st["rows"]))
                nsets += 1
        check(nsets == (DECODE + 1) * (N_LAYERS + len(MOE_LAYERS)), "hf: index and expert sets compared")
        check(rc == 0 and rep["verdict"] == "pass", "hf vs transformers within the shipped budget")

        # --- the ref layout against transformers: the layouts' documented differences ---
        rep, rc = compare(path, "ref", os.path.join(d, "ref.json"))
        check_every_tap_reported(rep, "ref", ["indexer.k_fp8", "indexer.k_scale"])
        w = worst(rep)
        print("ref vs transformers, teacher-forced, worst rel_l2 per op:",
              json.dumps({k: float("%.3g" % v) for k, v in sorted(w.items())}))
        check(w["attn.q_rope"] <= REF_ROPE_REL_L2, "ref: q_rope rel_l2 %.3g (channel order?)" % w["attn.q_rope"])
        check(w["attn.k_rope"] <= REF_ROPE_REL_L2, "ref: k_rope rel_l2 %.3g (channel order?)" % w["attn.k_rope"])
        check(w["attn_norm"] <= REF_NORM_REL_L2, "ref: attn_norm rel_l2 %.3g" % w["attn_norm"])
        nsets = 0
        for t in rep["taps"]:
            if t["kind"] == "set":
                check(t["set"]["rows"] > 0 and t["set"]["jaccard"] > 0.9, "ref: %s step %d jaccard %.3f" %
                      (t["name"], t["step"], t["set"]["jaccard"]))
                nsets += 1
        check(nsets == (DECODE + 1) * (N_LAYERS + len(MOE_LAYERS)), "ref: index and expert sets compared")
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
