#!/usr/bin/env python3
"""The weights fingerprint of recordings (issue 16): `dump` writes weights_fingerprint_sha256,
and fixtures/record_transformers.py computes the same value in Python (its own code, checked
here against the C one on a fixture), so `compare` can tie a recording to its checkpoint and
accept one of the built-in model without --checkpoint. Needs only the standard library and the
CLI; exits 77 (skipped) without the CLI."""
import json
import os
import struct
import subprocess
import sys
import tempfile

cli = os.environ.get("DSV32_CLI")
src = os.environ.get("DSV32_SOURCE_DIR", os.path.join(os.path.dirname(__file__), ".."))
if not cli or not os.access(cli, os.X_OK):
    print("DSV32_CLI not set: skipped")
    sys.exit(77)
sys.path.insert(0, os.path.join(src, "fixtures"))
import record_transformers  # noqa: E402  (imports torch only when it records)

failed = []


def check(cond, what):
    if not cond:
        failed.append(what)
        print("FAIL:", what)


def metadata(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        return json.loads(f.read(n)).get("__metadata__", {})


def run(*args):
    return subprocess.run([cli] + list(args), capture_output=True, text=True)


with tempfile.TemporaryDirectory(prefix="dsv32_wfp_") as d:
    ck, rec = os.path.join(d, "tiny"), os.path.join(d, "rec.safetensors")
    check(run("fixture", "--preset", "tiny", "--out", ck).returncode == 0, "fixture")
    r = run("dump", "--layout", "hf", "--checkpoint", ck, "--tokens", "5,17,42",
            "--decode-steps", "1", "--out", rec)
    check(r.returncode == 0, "dump: %s" % r.stderr)
    fp = metadata(rec).get("weights_fingerprint_sha256")
    check(fp is not None and len(fp) == 64, "dump states weights_fingerprint_sha256")
    check(fp == record_transformers.weights_fingerprint(ck),
          "the recorder's fingerprint equals the C one (%s)" % fp)
    check(fp == record_transformers.weights_fingerprint(
        os.path.join(ck, "model.safetensors")), "a one-file checkpoint named by its file")
    # the built-in model's recording needs no --checkpoint now
    r = run("compare", "--a", "ref", "--b", "taps:" + rec, "--quiet")
    check(r.returncode == 0, "compare without --checkpoint: %d %s" % (r.returncode, r.stderr))
    # other weights, same config: refused, the fingerprint named
    other = os.path.join(d, "other")
    check(run("fixture", "--preset", "tiny", "--seed", "7", "--out", other).returncode == 0,
          "fixture --seed 7")
    r = run("compare", "--checkpoint", other, "--a", "ref", "--b", "taps:" + rec, "--quiet")
    check(r.returncode == 2 and "fingerprint" in (r.stdout + r.stderr),
          "a recording of other weights is refused: %d %s" % (r.returncode, r.stderr))

if failed:
    print("%d check(s) failed" % len(failed))
    sys.exit(1)
print("ok")
