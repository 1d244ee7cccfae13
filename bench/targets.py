#!/usr/bin/env python3
"""targets.py: issue 19's speed and scale targets, measured in one run on this machine.

Runs, one after the other (nothing else should run meanwhile), each bench's own table on
stderr as it ends:
  fixture   bench_fixture --preset real-width onto a disk (default: the build directory's
            file system): the fixture generator at least 1 GB/s; then the same into tmpfs
            (/dev/shm), reported beside the file system's own speed, not a target
            (bench/README.md "targets.py" says why)
  gemm      bench_gemm, 1 thread, CPU time: the fp8 GEMM at least 0.8x the fixed engine's
            bf16 GEMM on every real-width shape (M = 16 and 128)
  forward   bench_forward --preset small,real-width (ref, hf and transformers' peer, same
            checkpoint, tokens and threads): every prefill and decode step of both layouts
            at most 1.0x transformers' time; ref within 1.25x of our hf (prefill and decode)
  rss       ctest sh_test_layer_major_rss: real width with 2 and 8 layers, peak RSS not
            growing with the layer count (layer-major)
  rehearse  scripts/rehearse-671b.sh: the sparse 671B fixture, all 61 layers compared
            layer-major, peak RSS within 1.5x of the 4-layer compare's, times printed
and prints the machine (CPU model, AMX or not, cores), the build's commit, a Markdown table
(target, measured, limit, verdict) and one JSON line. Exit 0: every target met; 1: one or more
missed or failed to run; 2: usage error.

Python's standard library only (the peer needs the torch venv: scripts/py-venv.sh --torch;
bench_forward finds it). Takes 10-20 minutes on 2 cores, most of it the 61-layer rehearsal
(--skip rehearse leaves it out). bench/README.md "targets.py" shows a run.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# the fixture first: after bench_forward's files fill the page cache, writing 6.8 GB into tmpfs
# ran 0.98 GB/s against 1.38 alone on the same machine (the VM's memory pressure, not ours).
# The target is measured onto a disk, as issue 19 item 5 says ("fixtures at disk speed"): a
# file in tmpfs is fresh memory, and on a VM that hands freed memory back to its host
# (page_reporting) the kernel's copy into it alone ran 0.76-1.45 GB/s (bench_fixture's zeros
# step; bench/README.md "targets.py"), below or at the target whatever the generator does.
STEPS = ("fixture", "gemm", "forward", "rss", "rehearse")


def machine():
    model, flags = "unknown CPU", set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, val = line.partition(":")
                key = key.strip()
                if key == "model name" and model == "unknown CPU":
                    model = val.strip()
                elif key == "flags" and not flags:
                    flags = set(val.split())
    except OSError:
        pass
    isa = "AMX" if "amx_tile" in flags else "AVX-512 BF16" if "avx512_bf16" in flags else \
        "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "baseline x86-64"
    git = ["git", "-C", ROOT]
    commit = subprocess.run(git + ["rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip() or "unknown"
    if subprocess.run(git + ["status", "--porcelain", "--untracked-files=no"],
                      capture_output=True, text=True).stdout.strip():
        commit += "+changes"
    return {"cpu": model, "widest_isa": isa, "amx": "amx_tile" in flags,
            "cores": os.cpu_count(), "commit": commit,
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}


def run(cmd, env=None):
    """Runs cmd (its stderr passes through as progress), then shows its stdout on stderr;
    returns (rc, stdout)."""
    print("== " + " ".join(cmd), file=sys.stderr, flush=True)
    e = dict(os.environ, **(env or {}))
    p = subprocess.run(cmd, env=e, stdout=subprocess.PIPE, stderr=None, text=True)
    sys.stderr.write(p.stdout)
    sys.stderr.flush()
    return p.returncode, p.stdout


def last_json(out, bench):
    for line in reversed(out.splitlines()):
        if line.startswith("{"):
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if obj.get("bench") == bench:
                return obj
    return None


class Table:
    def __init__(self):
        self.rows = []

    def add(self, target, measured, limit, ok, note=""):
        """ok: True met, False missed, None not measured (counts as missed), "info" not a
        target (reported only)."""
        verdict = {True: "met", False: "MISSED", None: "NOT MEASURED", "info": "info"}[ok]
        self.rows.append({"target": target, "measured": measured, "limit": limit,
                          "verdict": verdict, "note": note})

    def all_met(self):
        return bool(self.rows) and all(r["verdict"] in ("met", "info") for r in self.rows)


def fmt(x):
    return "n/a" if x is None else f"{x:.2f}"


def forward(args, t):
    rc, out = run([os.path.join(args.build, "bench_forward"), "--preset", "small,real-width",
                   "--threads", str(args.threads), "--rounds", str(args.rounds),
                   "--work", args.work, "--gemm", args.gemm])
    j = last_json(out, "forward")
    if rc != 0 or not j:
        t.add("bench_forward", f"exit {rc}", "runs", None, "no JSON line")
        return
    for p in j["presets"]:
        peer = p.get("transformers", {})
        versions = p.get("peer_versions", "")
        for phase, key in (("prefill", "prefill_s"), ("decode step", "decode_step_s")):
            for lay in ("ref", "hf"):
                ours = p.get(lay, {}).get(key)
                theirs = peer.get(key)
                r = ours / theirs if ours and theirs else None
                t.add(f"{p['preset']} {phase}: {lay} / transformers", fmt(r), "<= 1.00",
                      None if r is None else r <= 1.0,
                      f"gemm {args.gemm}; " +
                      (versions if theirs else peer.get("why", "peer absent")))
            a, b = p.get("ref", {}).get(key), p.get("hf", {}).get(key)
            r = a / b if a and b else None
            t.add(f"{p['preset']} {phase}: ref / hf", fmt(r), "<= 1.25",
                  None if r is None else r <= 1.25)


def gemm(args, t):
    env = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    rc, out = run([os.path.join(args.build, "bench_gemm"), "--no-peer", "--cpu-time",
                   "--min-time", "0.3", "--rounds", str(args.rounds)], env=env)
    j = last_json(out, "gemm")
    if rc != 0 or not j:
        t.add("bench_gemm", f"exit {rc}", "runs", None, "no JSON line")
        return
    for s in j["shapes"]:
        r = s["fp8"] / s["fixed_bf16"] if s["fixed_bf16"] > 0 and s["fp8"] > 0 else None
        t.add(f"fp8 / fixed bf16 GEMM, {s['shape']} M = {s['M']}", fmt(r), ">= 0.80",
              None if r is None else r >= 0.8, f"{j['fixed_body']} body, 1 thread, CPU time")


def fs_type(path):
    """The file system type of the mount holding path (/proc/mounts), or "unknown"."""
    path, best, kind = os.path.realpath(path), "", "unknown"
    try:
        with open("/proc/mounts") as f:
            for line in f:
                parts = line.split()
                if len(parts) < 3:
                    continue
                mnt = parts[1].replace("\\040", " ")
                inside = path == mnt or path.startswith(mnt.rstrip("/") + "/")
                if inside and len(mnt) >= len(best):
                    best, kind = mnt, parts[2]
    except OSError:
        pass
    return kind


def bench_fixture(args, out_dir):
    """bench_fixture into out_dir: (its JSON line or None, a note naming where and exit)."""
    rc, out = run([os.path.join(args.build, "bench_fixture"), "--preset", "real-width",
                   "--rounds", str(args.rounds), "--out-dir", out_dir])
    j = last_json(out, "fixture")
    note = f"into {out_dir} ({fs_type(out_dir)})"
    if not j or rc != 0:
        return None, note + f"; exit {rc}" + ("" if j else ", no JSON")
    return j, note


def fixture(args, t):
    j, note = bench_fixture(args, args.fixture_dir)
    gbs = j.get("fixture_gb_s") if j else None
    if j and j.get("zeros_direct_gb_s"):
        note += f"; O_DIRECT zeros (the disk alone) {j['zeros_direct_gb_s']:.2f} GB/s"
    t.add("fixture --preset real-width onto a disk (GB/s)", fmt(gbs), ">= 1.00",
          None if gbs is None else gbs >= 1.0, note)
    if args.fixture_dir == "/dev/shm" or not os.path.isdir("/dev/shm"):
        return
    j, note = bench_fixture(args, "/dev/shm")
    gbs = j.get("fixture_gb_s") if j else None
    if j:
        note += f"; zeros (the file system alone) {j['zeros_gb_s']:.2f} GB/s"
    t.add("fixture --preset real-width into tmpfs (GB/s), for reference", fmt(gbs), "none",
          "info", note)


def rss(args, t):
    rc, out = run(["ctest", "--test-dir", args.build, "-R", "^sh_test_layer_major_rss$",
                   "--output-on-failure"])
    skipped = re.search(r"\(Skipped\)|Not Run", out) is not None
    passed = rc == 0 and not skipped and "0 tests failed out of 1" in out
    t.add("real width, 2 vs 8 layers: peak RSS not growing (layer-major)",
          "skipped" if skipped else "passed" if passed else f"exit {rc}", "ctest passes",
          None if skipped or "out of 1" not in out else passed)


def rehearse(args, t):
    rc, out = run([os.path.join(ROOT, "scripts", "rehearse-671b.sh")])
    rows = {}
    for m in re.finditer(r"^\| (\S+)\s+\|\s+(\d+) \|\s+([\d.]+) \|\s+([\d.]+) \|$", out, re.M):
        rows[m.group(1)] = (int(m.group(2)), float(m.group(3)), float(m.group(4)))
    c4, c61 = rows.get("compare"), rows.get("compare-61")
    ratio = c61[2] / c4[2] if c4 and c61 and c4[2] > 0 else None
    note = f"61 layers: {c61[1]:.1f} s, {c61[2]:.2f} GiB" if c61 else "no compare-61 row"
    t.add("rehearse-671b: 61-layer compare, peak RSS / 4-layer's", fmt(ratio), "<= 1.50",
          None if ratio is None else (ratio <= 1.5 and rc == 0), note + f"; script exit {rc}")


def print_table(m, t):
    print(f"\nIssue 19 targets on {m['cpu']} ({m['widest_isa']}, {m['cores']} cores), "
          f"build {m['commit']}, {m['date']}\n")
    print("| target | measured | limit | verdict | note |")
    print("|---|---|---|---|---|")
    for r in t.rows:
        print(f"| {r['target']} | {r['measured']} | {r['limit']} | {r['verdict']} | {r['note']} |")
    print()
    print(json.dumps({"bench": "targets", "machine": m, "rows": t.rows, "all_met": t.all_met()}))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n".join(__doc__.split("\n")[2:]))
    ap.add_argument("--build", default=os.environ.get("DSV32_BUILD_DIR",
                                                      os.path.join(ROOT, "build")),
                    help="build directory (default build/ or $DSV32_BUILD_DIR)")
    ap.add_argument("--work", default="/tmp/dsv32-bench-forward",
                    help="bench_forward's fixture directory, reused (default %(default)s)")
    ap.add_argument("--fixture-dir", default=None,
                    help="the disk bench_fixture's target run writes onto (default the build "
                    "directory; it needs 6.8 GB free); a tmpfs run follows unless this is "
                    "/dev/shm")
    ap.add_argument("--threads", type=int, default=2, help="bench_forward threads (default 2)")
    ap.add_argument("--gemm", choices=("fixed", "host"), default="fixed",
                    help="bench_forward's CPU GEMM engine (default fixed: the same bits on "
                    "every CPU; host: oneDNN/OpenBLAS as torch, e.g. AMX tiles)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds of each bench (default 3)")
    ap.add_argument("--skip", default="", help="comma-separated steps to leave out: "
                    + ",".join(STEPS))
    args = ap.parse_args()
    skip = {s for s in args.skip.split(",") if s}
    if skip - set(STEPS) or args.rounds < 1 or args.threads < 1:
        ap.error(f"--skip takes {','.join(STEPS)}; --rounds and --threads at least 1")
    for b in ("bench_forward", "bench_gemm", "bench_fixture"):
        if not os.access(os.path.join(args.build, b), os.X_OK):
            ap.error(f"{os.path.join(args.build, b)} is not built "
                     "(cmake --build build --target " + b + ")")
    args.fixture_dir = args.fixture_dir or args.build
    m, t = machine(), Table()
    for name in STEPS:
        if name not in skip:
            globals()[name](args, t)
    print_table(m, t)
    return 0 if t.all_met() else 1


if __name__ == "__main__":
    sys.exit(main())
