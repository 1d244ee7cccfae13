#!/usr/bin/env python3
"""`compare --dump` read back by the reference Python readers (issue 16): h5py for the HDF5 form
(groups a/step{s} and b/step{s}, one dataset per tap, a "dtype" attribute, the engine keys as
root attributes suffixed _a/_b) and safetensors for the tap-format form (tensors named
"a/step{s}.{tap}", the same keys in __metadata__), in every mode. Exits 77 (skipped) when
h5py, safetensors or numpy are missing, or without the CLI."""
import os
import subprocess
import sys
import tempfile

try:
    import h5py
    import numpy  # noqa: F401  (safetensors.numpy needs it)
    from safetensors import safe_open
except ImportError as e:
    print("h5py / safetensors / numpy not installed (%s): skipped" % e)
    sys.exit(77)

cli = os.environ.get("DSV32_CLI")
if not cli or not os.access(cli, os.X_OK):
    print("DSV32_CLI not set: skipped")
    sys.exit(77)

KEYS = ["gemm_engine_a", "host_numerics_key_a", "host_fingerprint_a",
        "gemm_engine_b", "host_numerics_key_b", "host_fingerprint_b"]
failed = []


def check(cond, what):
    if not cond:
        failed.append(what)
        print("FAIL:", what)


def check_h5(path, mode):
    with h5py.File(path, "r") as f:
        check("a" in f and "b" in f, "%s: groups a/ and b/" % path)
        check("step0/embed" in f["a"], "%s: a/step0/embed" % path)
        check("step1/layers.1.out" in f["b"], "%s: b/step1/layers.1.out" % path)
        check(("step0/logits" in f["b"]) == (mode != "teacher-forced"), "%s: b logits" % path)
        d = f["a/step0/embed"]
        check(d.dtype.kind == "f" and d.attrs["dtype"] in ("BF16", b"BF16", "F32", b"F32"),
              "%s: embed is a float dataset with its dtype" % path)
        for k in KEYS:
            check(k in f.attrs, "%s: root attribute %s" % (path, k))


def check_st(path, mode):
    with safe_open(path, framework="numpy") as f:
        names = set(f.keys())
        meta = f.metadata() or {}
    check("a/step0.embed" in names, "%s: a/step0.embed" % path)
    check("b/step1.layers.1.out" in names, "%s: b/step1.layers.1.out" % path)
    check(("b/step0.logits" in names) == (mode != "teacher-forced"), "%s: b logits" % path)
    for k in KEYS:
        check(k in meta, "%s: metadata %s" % (path, k))


with tempfile.TemporaryDirectory() as d:
    ckpt = os.path.join(d, "tiny")
    subprocess.run([cli, "fixture", "--preset", "tiny", "--out", ckpt], check=True,
                   capture_output=True)
    for mode in ("propagate", "teacher-forced", "both"):
        for ext, fn in (("h5", check_h5), ("safetensors", check_st)):
            out = os.path.join(d, "dump-%s.%s" % (mode, ext))
            r = subprocess.run([cli, "compare", "--checkpoint", ckpt, "--mode", mode,
                                "--batch", "1", "--prompt-len", "4", "--decode-steps", "1",
                                "--quiet", "--dump", out], capture_output=True, text=True)
            check(r.returncode in (0, 1), "%s: exit %d: %s" % (out, r.returncode, r.stderr))
            if os.path.exists(out):
                fn(out, mode)
            else:
                check(False, "%s not written" % out)

print("%d failure(s)" % len(failed))
sys.exit(1 if failed else 0)
