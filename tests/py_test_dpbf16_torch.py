#!/usr/bin/env python3
"""py_test_dpbf16_torch: the host engine's bf16 GEMM on CPUs with AVX512-BF16 and no AMX
(kernels/gemm_dpbf16.c) against torch's bf16 linear on the same machine, bit for bit.

torch runs it there as oneDNN's brg_matmul:avx512_core_bf16; our body claims its order (K in
chunks of 1024 values, k pairs in order through VDPBF16PS, chunk sums in order). Random bf16
x [M, K] and w [N, K] at DeepSeek V3.2 widths (K up to 18432), 1 and 2 torch threads, through
`test_gemm_dpbf16 --emit`. Exit 77 (skip) without torch/numpy, without the binary, or where the
body does not run (no AVX512-BF16, or AMX); 1 on any differing output.
"""
import os
import subprocess
import sys
import tempfile

from py_support import need, test_binary

np, torch = need("numpy", "torch")
exe = test_binary("test_gemm_dpbf16")

# M, K, N, torch threads: the tiny model's, then real-width shapes (K > 1024 crosses chunks);
# M <= 4 runs the body whose lanes cross columns of w (the decode GEMMs). M = 1 runs with
# DSV32_HOST_BF16_ROW=lanes, torch 2.15's single-row order (docs/topk-ties.md "Without AMX");
# the default one-row order is torch 1.13's (DeepSeek's recording), ~1 output in 2,000 off here
CASES = [(120, 512, 256, 1), (3, 7168, 512, 1), (16, 7168, 256, 2), (64, 7168, 128, 2),
         (128, 7168, 256, 1), (120, 3072, 200, 1), (32, 16384, 64, 2), (100, 18432, 64, 1),
         (128, 2048, 1536, 2), (7, 1025, 33, 1), (2, 7168, 1536, 2), (4, 2048, 7168, 1),
         (2, 16384, 200, 1), (1, 7168, 2048, 1), (1, 2048, 7168, 2), (1, 18432, 512, 1),
         (1, 1025, 300, 2), (1, 130, 129280, 2)]
bad = 0
with tempfile.TemporaryDirectory() as d:
    xf, wf, yf = (os.path.join(d, n) for n in ("x.bin", "w.bin", "y.bin"))
    for seed, (m, k, n, threads) in enumerate(CASES):
        torch.set_num_threads(threads)
        torch.manual_seed(seed)
        x = torch.randn(m, k).bfloat16()
        w = (torch.randn(n, k) * 0.02).bfloat16()
        want = torch.nn.functional.linear(x, w).view(torch.int16).numpy()
        x.view(torch.int16).numpy().tofile(xf)
        w.view(torch.int16).numpy().tofile(wf)
        r = subprocess.run([exe, "--emit", str(m), str(k), str(n), xf, wf, yf],
                           env=dict(os.environ, OMP_NUM_THREADS=str(threads),
                                    DSV32_HOST_BF16_ROW="lanes" if m == 1 else ""))
        if r.returncode == 77:
            print("skip: the dpbf16 body does not run on this CPU")
            sys.exit(77)
        if r.returncode != 0:
            print("test_gemm_dpbf16 --emit failed: exit %d" % r.returncode)
            sys.exit(1)
        got = np.fromfile(yf, dtype=np.int16).reshape(m, n)
        diff = int((got != want).sum())
        bad += diff
        print("M %4d K %5d N %4d, %d thread(s): %d of %d outputs differ from torch %s"
              % (m, k, n, threads, diff, m * n, torch.__version__))
sys.exit(1 if bad else 0)
