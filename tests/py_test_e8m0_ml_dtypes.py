#!/usr/bin/env python3
"""py_test_e8m0_ml_dtypes.py: our F8_E8M0 (ue8m0) conversions against ml_dtypes' float8_e8m0fnu.

Python writes e8m0_in.safetensors (F32 "x": a sweep of f32 bit patterns, every power of two,
every tie 1.5 * 2^e and its neighbours, zeros, negatives, inf, NaN, subnormals);
`test_safetensors --e8m0 DIR` (from $DSV32_BUILD_DIR) writes e8m0_c.safetensors with "enc"
(x as F8_E8M0, through dsv32_convert and our writer) and "dec" (the 256 codes as F32). Both
must equal ml_dtypes bit for bit (the one NaN code 0xff included; "dec" NaN compared as NaN).
Exit 77 (skip) when numpy / safetensors / ml_dtypes / the test binary are missing.
"""
import os
import shutil
import subprocess
import sys
import tempfile

try:
    import ml_dtypes
    import numpy as np
    from safetensors import deserialize
    from safetensors.numpy import save_file
except ImportError as e:  # optional test
    print(f"skip: {e}")
    sys.exit(77)

E8M0 = ml_dtypes.float8_e8m0fnu


def inputs():
    """f32 values that exercise every rounding branch (as uint32 bit patterns)."""
    sweep = np.arange(0, 1 << 32, 4099, dtype=np.uint64).astype(np.uint32)
    pow2 = np.arange(-149, 128)
    ties = np.ldexp(1.5, np.arange(-149, 128)).astype(np.float32)
    near = np.concatenate([np.nextafter(ties, np.float32(0)), np.nextafter(ties, np.float32(np.inf))])
    special = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, -1.0, 1.0, 3.0, 0.75,
                        np.finfo(np.float32).max, np.finfo(np.float32).tiny], dtype=np.float32)
    vals = np.concatenate([np.ldexp(1.0, pow2).astype(np.float32), ties, near, special])
    return np.concatenate([sweep, vals.view(np.uint32)])


def main():
    build = os.environ.get("DSV32_BUILD_DIR")
    exe = os.path.join(build, "test_safetensors") if build else None
    if not exe or not os.access(exe, os.X_OK):
        print(f"skip: test binary not found ({exe})")
        return 77
    tmp = tempfile.mkdtemp(prefix="dsv32_e8m0_")
    try:
        return run(exe, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(exe, tmp):
    x = inputs().view(np.float32)
    save_file({"x": x}, os.path.join(tmp, "e8m0_in.safetensors"))
    r = subprocess.run([exe, "--e8m0", tmp], capture_output=True, text=True, timeout=300)
    sys.stdout.write(r.stdout)
    sys.stderr.write(r.stderr)
    if r.returncode != 0:
        print(f"FAIL: --e8m0 exited {r.returncode}")
        return 1
    with open(os.path.join(tmp, "e8m0_c.safetensors"), "rb") as f:
        got = dict(deserialize(f.read()))
    fails = 0
    enc = got["enc"]
    if enc["dtype"] != "F8_E8M0" or list(enc["shape"]) != [x.size]:
        print(f"FAIL: enc is {enc['dtype']} {enc['shape']}")
        return 1
    ours = np.frombuffer(bytes(enc["data"]), dtype=np.uint8)
    want = x.astype(E8M0).view(np.uint8)
    bad = np.nonzero(ours != want)[0]
    for i in bad[:10]:
        print(f"FAIL: enc x={float(x[i])!r} (0x{x.view(np.uint32)[i]:08x}): ours {ours[i]}, "
              f"ml_dtypes {want[i]}")
    fails += len(bad)
    dec = np.frombuffer(bytes(got["dec"]["data"]), dtype=np.float32)
    ref = np.arange(256, dtype=np.uint8).view(E8M0).astype(np.float32)
    same = (dec.view(np.uint32) == ref.view(np.uint32)) | (np.isnan(dec) & np.isnan(ref))
    for c in np.nonzero(~same)[0][:10]:
        print(f"FAIL: dec code {c}: ours {dec[c]!r}, ml_dtypes {ref[c]!r}")
    fails += int((~same).sum())
    if fails:
        print(f"FAIL: {fails} mismatches")
        return 1
    print(f"e8m0 OK: {x.size} encodes and 256 decodes match ml_dtypes {ml_dtypes.__version__}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
