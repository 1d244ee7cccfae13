#!/usr/bin/env python3
"""Measure ref-vs-hf drift on the built-in tiny model over several seeds and print, per mode and
op, the largest relative L2 (dense taps) and the smallest Jaccard (index sets). The shipped
budget (compare/budget_default.c, docs/budgets.md) is set from this table.

usage: bench/measure_budget.py BUILD_DIR [seeds] [decode_steps] [bf16|fp8] [first_seed]
                               [--prompt-lens 4,24] [--batches 2] [--mp 1,2]
(every combination of seed, prompt length, batch and world size of the reference side is run;
the defaults are the original measurement: 24 tokens, batch 2, W = 1)
(fp8: the tiny preset written with fp8 e4m3 weights and 128x128 block scales, the form of the
real DeepSeek V3.2 checkpoint; the reference then runs its fp8 GEMMs with fp8 activations.)"""
import json
import os
import re
import subprocess
import sys
import tempfile



def int_list(flag, default):
    if flag not in sys.argv:
        return default
    i = sys.argv.index(flag)
    vals = [int(v) for v in sys.argv[i + 1].split(",")]
    del sys.argv[i:i + 2]
    return vals


lens = int_list("--prompt-lens", [24])
batches = int_list("--batches", [2])
worlds = int_list("--mp", [1])
build = sys.argv[1] if len(sys.argv) > 1 else "build"
seeds = int(sys.argv[2]) if len(sys.argv) > 2 else 6
steps = int(sys.argv[3]) if len(sys.argv) > 3 else 3
dtype = sys.argv[4] if len(sys.argv) > 4 else "bf16"
first = int(sys.argv[5]) if len(sys.argv) > 5 else 1
cli = os.path.join(build, "dsv32-parity")
worst = {}
with tempfile.TemporaryDirectory() as d:
    ckpt = os.path.join(d, "tiny")
    subprocess.run([cli, "fixture", "--preset", "tiny", "--dtype", dtype, "--out", ckpt],
                   check=True, capture_output=True)
    runs = [(s, n, b, w) for s in range(first, first + seeds) for n in lens for b in batches
            for w in worlds]
    for seed, n, b, w in runs:
        out = os.path.join(d, f"r{seed}-{n}-{b}-{w}.json")
        run = subprocess.run([cli, "compare", "--checkpoint", ckpt, "--seed", str(seed),
                              "--prompt-len", str(n), "--batch", str(b), "--a", f"ref:mp={w}",
                              "--decode-steps", str(steps), "--quiet", "--json", out],
                             capture_output=True, text=True)
        if not os.path.exists(out):  # e.g. fp8 weights the world size cannot split
            err = run.stderr.strip().splitlines()
            print(f"# seed {seed} prompt {n} batch {b} mp {w}: no report ({err[-1] if err else run.returncode})",
                  file=sys.stderr)
            continue
        for t in json.load(open(out))["taps"]:
            op = re.sub(r"^layers\.\d+\.", "layers.*.", t["name"])
            key = (t["mode"], "prefill" if t["step"] == 0 else "decode", op)
            if t["kind"] == "set":
                v = t["set"]["jaccard"]
                worst[key] = min(worst.get(key, 1.0), v)
            else:
                v = t["metrics"]["rel_l2"]
                v = float("inf") if v is None else v
                worst[key] = max(worst.get(key, 0.0), v)
for k in sorted(worst):
    print(f"{k[0]:9} {k[1]:7} {k[2]:32} {worst[k]:.4g}")
