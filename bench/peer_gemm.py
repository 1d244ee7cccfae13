#!/usr/bin/env python3
"""peer_gemm.py: the peer of bench_gemm.c: numpy float32 matmul y = x @ w.T at given shapes.

usage: peer_gemm.py [--min-time S] [--cpu-time] M K N [M K N ...]
(--cpu-time: time with time.process_time(), as bench_gemm --cpu-time)
prints one line per shape: "peer M K N GFLOP/s" (best of several runs after a warm-up).
Exit 77 when numpy is missing (the bench then prints no ratio)."""
import sys
import time

try:
    import numpy as np
except ImportError:
    sys.exit(77)


def bench(M, K, N, min_time=0.3, clock=time.perf_counter):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((M, K), dtype=np.float32)
    w = rng.standard_normal((N, K), dtype=np.float32)
    y = x @ w.T  # warm-up
    best, spent, runs = float("inf"), 0.0, 0
    while spent < min_time or runs < 3:
        t0 = clock()
        y = x @ w.T
        dt = clock() - t0
        best, spent, runs = min(best, dt), spent + dt, runs + 1
    assert y.shape == (M, N)
    return 2.0 * M * N * K / best / 1e9


def main(argv):
    min_time, clock = 1.0, time.perf_counter
    while argv[:1] in (["--min-time"], ["--cpu-time"]):
        if argv[0] == "--cpu-time":
            clock, argv = time.process_time, argv[1:]
        else:
            min_time, argv = float(argv[1]), argv[2:]
    if len(argv) % 3 != 0 or not argv:
        print(__doc__, file=sys.stderr)
        return 2
    for i in range(0, len(argv), 3):
        M, K, N = (int(v) for v in argv[i:i + 3])
        print(f"peer {M} {K} {N} {bench(M, K, N, min_time, clock):.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
