#!/usr/bin/env python3
"""py_test_safetensors_interop.py: our safetensors reader/writer against Python's library.

1. Python writes files (raw-byte tensors of every dtype incl. BF16 and F8, a numpy file with
   known values, a sharded checkpoint with model.safetensors.index.json, and listed.safetensors
   with every other dtype the library knows: F4, F6_*, FNUZ and C64 must be listed, refused
   as values; F8_E8M0 read).
2. `test_safetensors --interop-read DIR` (from $DSV32_BUILD_DIR) checks them; then
   `--interop-write DIR` writes c_same.safetensors (py.safetensors' tensors, order and metadata:
   must be byte-identical) and c_own.safetensors (our own order, two metadata keys).
3. Python loads our files and checks names, dtypes, shapes, bytes and metadata.
Exit 77 (skip) when numpy / safetensors / the test binary are missing.
"""
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import safetensors
    import safetensors.numpy as stnp
    from safetensors import deserialize, safe_open, serialize_file
except ImportError as e:  # optional test
    print(f"skip: {e}")
    sys.exit(77)

# Same list as SET in tests/test_safetensors.c: name, dtype, shape.
SET = [
    ("a.f32", "F32", [3, 5]),
    ("b.bf16", "BF16", [4, 3]),
    ("c.f8_e4m3", "F8_E4M3", [8, 16]),
    ("d.f8_e5m2", "F8_E5M2", [7]),
    ("e.i64.scalar", "I64", []),
    ("f.u8.empty", "U8", [0, 4]),
    ("g.f16", "F16", [9]),
    ("h.bool", "BOOL", [3]),
    ("i.i32", "I32", [2, 2, 2]),
    ("j.f64", "F64", [1, 2, 1, 1, 1, 1]),
    ("k.i8", "I8", [5]),
    ("l.u16", "U16", [3]),
    ("m.i16", "I16", [2]),
    ("n.u32", "U32", [2]),
    ("o.u64", "U64", [1]),
    ("p.f32.zero", "F32", [2, 0, 3]),
    ("q.f8_e8m0", "F8_E8M0", [2, 3]),
]
ITEMSIZE = {"F32": 4, "BF16": 2, "F8_E4M3": 1, "F8_E5M2": 1, "I64": 8, "U8": 1, "F16": 2,
            "BOOL": 1, "I32": 4, "F64": 8, "I8": 1, "U16": 2, "I16": 2, "U32": 4, "U64": 8,
            "F8_E8M0": 1}
LIBNAME = {"F32": "float32", "BF16": "bfloat16", "F8_E4M3": "float8_e4m3fn",
           "F8_E5M2": "float8_e5m2", "I64": "int64", "U8": "uint8", "F16": "float16",
           "BOOL": "bool", "I32": "int32", "F64": "float64", "I8": "int8", "U16": "uint16",
           "I16": "int16", "U32": "uint32", "U64": "uint64", "F8_E8M0": "float8_e8m0fnu"}
# Dtypes the library knows that we list but cannot read (plus F8_E8M0, which we read):
# name, dtype, shape, bytes. F4 / F6_* pack (n * bits / 8 bytes); written by hand, since the
# library's serializer takes no F6 tensors.
LISTED = [
    ("a.e8m0", "F8_E8M0", [3], 3, "readable"),
    ("b.f4", "F4", [2, 3], 3, "refused"),
    ("c.f6a", "F6_E2M3", [4], 3, "refused"),
    ("d.f6b", "F6_E3M2", [2, 4], 6, "refused"),
    ("e.e4fnuz", "F8_E4M3FNUZ", [1], 1, "refused"),
    ("f.e5fnuz", "F8_E5M2FNUZ", [1], 1, "refused"),
    ("g.c64", "C64", [1], 8, "refused"),
]


def nbytes(dt, shape):
    n = 1
    for d in shape:
        n *= d
    return n * ITEMSIZE[dt]


def pattern(t, dt, shape):
    b = bytes(((k * 131 + t * 17 + 1) & 0xFF) for k in range(nbytes(dt, shape)))
    return bytes(x & 1 for x in b) if dt == "BOOL" else b


KEEP = []  # buffers that must outlive serialize_file (TensorSpec holds raw pointers)


def spec(dt, shape, data):
    if hasattr(safetensors, "TensorSpec"):
        arr = np.frombuffer(data, dtype=np.uint8).copy() if data else np.zeros(1, np.uint8)
        KEEP.append(arr)
        return safetensors.TensorSpec(dtype=LIBNAME[dt], shape=list(shape),
                                      data_ptr=arr.ctypes.data, data_len=len(data))
    return {"dtype": LIBNAME[dt], "shape": list(shape), "data": data}


def write_set(path, indices, metadata):
    tensors = {SET[i][0]: spec(SET[i][1], SET[i][2], pattern(i, SET[i][1], SET[i][2]))
               for i in indices}
    serialize_file(tensors, path, metadata=metadata)


def write_listed(path):
    header, at = {}, 0
    for name, dt, shape, n, _ in LISTED:
        header[name] = {"dtype": dt, "shape": shape, "data_offsets": [at, at + n]}
        at += n
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    raw = struct.pack("<Q", len(text)) + text + bytes(range(at))
    got = dict(deserialize(raw))  # the library itself accepts the file
    check(sorted(got) == sorted(x[0] for x in LISTED), f"listed: library reads {sorted(got)}")
    with open(path, "wb") as f:
        f.write(raw)


def check_listed(stdout):
    lines = [ln.split() for ln in stdout.splitlines() if ln.startswith("listed ")]
    want = [["listed", name, dt, str(n), verdict] for name, dt, _, n, verdict in LISTED]
    check(lines == want, f"listed.safetensors: got {lines}")


FAILS = []


def check(cond, what):
    if not cond:
        FAILS.append(what)
        print("FAIL:", what)


def main():
    build = os.environ.get("DSV32_BUILD_DIR")
    exe = os.path.join(build, "test_safetensors") if build else None
    if not exe or not os.access(exe, os.X_OK):
        print(f"skip: test binary not found ({exe})")
        return 77
    tmp = tempfile.mkdtemp(prefix="dsv32_st_interop_")
    try:
        return run(exe, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(exe, tmp):
    # 1. files written by Python
    py = os.path.join(tmp, "py.safetensors")
    write_set(py, range(len(SET)), {"format": "pt"})
    stnp.save_file({"x": (np.arange(12, dtype=np.float32) * 0.5 - 1.0).reshape(3, 4),
                    "y": np.arange(-3, 3, dtype=np.int64),
                    "z": np.array([0.5, -2.0, 65504.0], dtype=np.float16)},
                   os.path.join(tmp, "np.safetensors"))
    shard_dir = os.path.join(tmp, "sharded")
    os.mkdir(shard_dir)
    weight_map = {}
    for s, idx in enumerate([range(0, len(SET), 2), range(1, len(SET), 2)]):
        fname = f"model-{s + 1:05d}-of-00002.safetensors"
        write_set(os.path.join(shard_dir, fname), idx, {"format": "pt"})
        weight_map.update({SET[i][0]: fname for i in idx})
    with open(os.path.join(shard_dir, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": sum(nbytes(d, s) for _, d, s in SET)},
                   "weight_map": weight_map}, f, indent=2)

    write_listed(os.path.join(tmp, "listed.safetensors"))

    # 2. our reader, then our writer
    for mode in ("--interop-read", "--interop-write"):
        r = subprocess.run([exe, mode, tmp], capture_output=True, text=True, timeout=120)
        sys.stdout.write(r.stdout)
        sys.stderr.write(r.stderr)
        check(r.returncode == 0, f"{mode} exited {r.returncode}")
        if r.returncode != 0:
            return 1
        if mode == "--interop-read":
            check_listed(r.stdout)

    # 3. Python reads our files
    with open(py, "rb") as f:
        py_bytes = f.read()
    with open(os.path.join(tmp, "c_same.safetensors"), "rb") as f:
        check(f.read() == py_bytes, "c_same.safetensors differs from Python's bytes")

    own = os.path.join(tmp, "c_own.safetensors")
    with open(own, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    check(n % 8 == 0, f"header length {n} not a multiple of 8")
    header_text = raw[8:8 + n].decode("utf-8")
    check(header_text.rstrip(" ").endswith("}") and header_text.startswith("{"),
          "header is not a space-padded JSON object")
    header = json.loads(header_text)
    at = 0
    for name, dt, shape in SET:  # declaration order, contiguous
        e = header.get(name)
        check(e is not None and e["data_offsets"] == [at, at + nbytes(dt, shape)],
              f"{name}: offsets {e and e['data_offsets']}")
        at += nbytes(dt, shape)
    check(len(raw) == 8 + n + at, "file size")

    got = dict(deserialize(raw))
    check(sorted(got) == sorted(s[0] for s in SET), f"names {sorted(got)}")
    for i, (name, dt, shape) in enumerate(SET):
        t = got.get(name)
        if t is None:
            continue
        check(t["dtype"] == dt, f"{name}: dtype {t['dtype']}")
        check(list(t["shape"]) == shape, f"{name}: shape {t['shape']}")
        check(bytes(t["data"]) == pattern(i, dt, shape), f"{name}: bytes differ")

    with safe_open(own, framework="numpy") as f:
        check(f.metadata() == {"format": "pt", "writer": 'dsv32 "st"\n\u00e9'},
              f"metadata {f.metadata()}")
        a = f.get_tensor("a.f32")
        want = np.frombuffer(pattern(0, "F32", [3, 5]), dtype="<f4").reshape(3, 5)
        check(a.dtype == np.float32 and a.tobytes() == want.tobytes(), "a.f32 values")
        e = f.get_tensor("e.i64.scalar")
        check(e.shape == () and int(e) == int.from_bytes(pattern(4, "I64", []), "little",
                                                         signed=True), "e.i64.scalar value")
    if FAILS:
        return 1
    print(f"interop OK (safetensors {safetensors.__version__}, numpy {np.__version__})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
