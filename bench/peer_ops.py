#!/usr/bin/env python3
"""peer_ops.py: the peer of bench_ops.c: the same ops in PyTorch CPU, on the same shapes.

usage: peer_ops.py [--threads N] [--min-time S] [--cpu-time] [--rows R] OP [OP ...]
prints one line per op: "peer OP R SECONDS" (best of several runs after a warm-up), then one
"note ..." line naming the library. Without torch, numpy (float32, no bf16/fp8 dtypes) stands in
for the ops it can express and the note says so; ops it cannot express print nothing.
Exit 77 when neither is installed.

Each expression is the torch form of our op's contract (kernels/*.h), bf16 tensors where ours
are BF16, e.g. the reference's `einsum` attention and `F.rms_norm(x.float(), ...).to(bf16)`.
"""
import os
import sys
import time

HID = 7168


def parse(argv):
    opt = {"threads": 1, "min_time": 1.0, "cpu_time": False, "rows": 16, "ops": []}
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--threads":
            opt["threads"], i = int(argv[i + 1]), i + 2
        elif a == "--min-time":
            opt["min_time"], i = float(argv[i + 1]), i + 2
        elif a == "--rows":
            opt["rows"], i = int(argv[i + 1]), i + 2
        elif a == "--cpu-time":
            opt["cpu_time"], i = True, i + 1
        else:
            opt["ops"].append(a)
            i += 1
    return opt


def best(fn, min_time, clock):
    fn()  # warm-up
    b, spent, runs = float("inf"), 0.0, 0
    while spent < min_time or runs < 3:
        t0 = clock()
        fn()
        dt = clock() - t0
        b, spent, runs = min(b, dt), spent + dt, runs + 1
    return b


def torch_ops(torch, R):
    """op name -> zero-argument callable running the op once (inputs built here)."""
    F = torch.nn.functional
    bf, f32 = torch.bfloat16, torch.float32
    g = torch.Generator().manual_seed(0)

    def u(*shape, scale=1.0, dtype=bf):
        return ((torch.rand(*shape, generator=g) * 2 - 1) * scale).to(dtype)

    ops = {}
    x = u(R, HID, scale=3.0)
    res = u(R, HID, scale=3.0)
    w = u(HID, dtype=f32)
    rms = getattr(F, "rms_norm", None)

    def norm(v):
        if rms is not None:
            return rms(v, (HID,), w, 1e-6)
        return v * torch.rsqrt(v.pow(2).mean(-1, keepdim=True) + 1e-6) * w

    ops["rmsnorm"] = lambda: norm(x.float()).to(bf)

    def rmsnorm_add():
        r = x.float() + res.float()
        return norm(r).to(bf), r.to(bf)

    ops["rmsnorm_add"] = rmsnorm_add
    xr = u(1, R, 128, 64, scale=2.0)
    ang = torch.outer(torch.arange(R, dtype=f32), 10000.0 ** (-torch.arange(32, dtype=f32) / 32))
    fc = torch.polar(torch.ones_like(ang), ang)

    def rope():
        c = torch.view_as_complex(xr.float().view(1, R, 128, 32, 2))
        return torch.view_as_real(c * fc.view(1, R, 1, 32)).flatten(3).to(bf)

    ops["rope"] = rope
    xh = u(R * 64, 128, scale=2.0)
    hm = torch.ones(1, 1)
    while hm.shape[0] < 128:
        hm = torch.cat([torch.cat([hm, hm], 1), torch.cat([hm, -hm], 1)], 0)
    ops["hadamard"] = lambda: (F.linear(xh.float(), hm) * 128 ** -0.5).to(bf)
    for T in (2048, 4096):
        xs_ = u(R * 16, T, scale=8.0)
        ops[f"softmax{T}"] = (lambda v: lambda: torch.softmax(v, -1, dtype=f32).to(bf))(xs_)
    a, b = u(R, 18432, scale=4.0), u(R, 18432, scale=4.0)
    ops["silu_mul"] = lambda: (F.silu(a.float()) * b.float()).to(bf)
    e4m3 = getattr(torch, "float8_e4m3fn", None)
    if e4m3 is not None:
        def act_quant():
            xb = x.float().view(R, HID // 128, 128)
            s = xb.abs().amax(-1, keepdim=True).clamp(min=1e-4) * (1.0 / 448)
            return (xb / s).clamp(-448, 448).to(e4m3).view(R, HID), s.squeeze(-1)

        ops["act_quant"] = act_quant
        N = 1536
        x8 = u(R, HID, scale=448.0, dtype=f32).to(e4m3)
        w8 = u(N, HID, scale=448.0, dtype=f32).to(e4m3)
        xsc = u(R, HID // 128, scale=0.01, dtype=f32)
        wsc = u(N // 128, HID // 128, scale=0.01, dtype=f32)

        def fp8_gemm():  # dequantize with the block scales, fp32 GEMM, one rounding
            xd = (x8.float().view(R, HID // 128, 128) * xsc[..., None]).view(R, HID)
            wd = (w8.float().view(N // 128, 128, HID // 128, 128) *
                  wsc[:, None, :, None]).view(N, HID)
            return (xd @ wd.T).to(bf)

        ops["fp8_gemm"] = fp8_gemm
    H, S = 16, R
    q, k, v = u(1, S, H, 192), u(1, S, H, 192), u(1, S, H, 128)
    mask = torch.full((S, S), float("-inf")).triu_(1)

    def attn_prefill():  # inference/model.py MLA prefill core
        sc = torch.einsum("bshd,bthd->bsht", q, k) * 0.0721
        sc = sc + mask.unsqueeze(1)
        p = sc.softmax(dim=-1, dtype=f32).type_as(q)
        return torch.einsum("bsht,bthd->bshd", p, v)

    ops["attn_prefill"] = attn_prefill
    B, Hd, T, C, Rd, D = max(R // 16, 1), 128, 2048, 512, 64, 128
    qn, qp = u(B, 1, Hd, D), u(B, 1, Hd, Rd)
    wkv = u(Hd, 2 * D, C, scale=0.05)
    kv, pe = u(B, T, C), u(B, T, Rd)

    def attn_decode():  # inference/model.py MLA absorbed decode
        qa = torch.einsum("bshd,hdc->bshc", qn, wkv[:, :D])
        sc = (torch.einsum("bshc,btc->bsht", qa, kv) +
              torch.einsum("bshr,btr->bsht", qp, pe)) * 0.0721
        p = sc.softmax(dim=-1, dtype=f32).type_as(qn)
        ol = torch.einsum("bsht,btc->bshc", p, kv)
        return torch.einsum("bshc,hdc->bshd", ol, wkv[:, -D:])

    ops["attn_decode"] = attn_decode
    logits = u(R, 256, scale=4.0, dtype=f32)
    bias = u(256, scale=0.01, dtype=f32)

    def router():  # inference/model.py Gate after the gate GEMM
        s = logits.sigmoid()
        orig = s
        s = s + bias
        gs = s.view(R, 8, -1).topk(2, dim=-1)[0].sum(dim=-1)
        gi = gs.topk(4, dim=-1)[1]
        m = s.new_ones(R, 8, dtype=torch.bool).scatter_(1, gi, False)
        s = s.view(R, 8, -1).masked_fill(m.unsqueeze(-1), float("-inf")).flatten(1)
        idx = torch.topk(s, 8, dim=-1)[1]
        wt = orig.gather(1, idx)
        wt = wt / wt.sum(dim=-1, keepdim=True)
        return wt * 2.5, idx

    ops["router"] = router
    return ops


def numpy_ops(np, R):
    """float32 stand-ins (numpy has no bf16/fp8): the same arithmetic, no roundings."""
    rng = np.random.default_rng(0)

    def u(*shape, scale=1.0):
        return (rng.random(shape, dtype=np.float32) * 2 - 1) * np.float32(scale)

    ops = {}
    x, res, w = u(R, HID, scale=3.0), u(R, HID, scale=3.0), u(HID)

    def norm(v):
        return v / np.sqrt((v * v).mean(-1, keepdims=True) + np.float32(1e-6)) * w

    ops["rmsnorm"] = lambda: norm(x)
    ops["rmsnorm_add"] = lambda: norm(x + res)
    xh = u(R * 64, 128)
    hm = np.ones((1, 1), np.float32)
    while hm.shape[0] < 128:
        hm = np.block([[hm, hm], [hm, -hm]])
    ops["hadamard"] = lambda: (xh @ hm) * np.float32(128 ** -0.5)
    for T in (2048, 4096):
        xs_ = u(R * 16, T, scale=8.0)

        def sm(v=xs_):
            e = np.exp(v - v.max(-1, keepdims=True))
            return e / e.sum(-1, keepdims=True)

        ops[f"softmax{T}"] = sm
    a, b = u(R, 18432), u(R, 18432)
    ops["silu_mul"] = lambda: a / (1 + np.exp(-a)) * b
    xf, wf = u(R, HID), u(1536, HID)
    ops["fp8_gemm"] = lambda: xf @ wf.T
    return ops


def main(argv):
    opt = parse(argv)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(opt["threads"])  # before numpy/torch load their pools
    clock = time.process_time if opt["cpu_time"] else time.perf_counter
    try:
        import torch
        torch.set_num_threads(opt["threads"])
        ops, note = torch_ops(torch, opt["rows"]), (
            f"torch {torch.__version__} CPU, {torch.get_num_threads()} threads")
    except ImportError:
        try:
            import numpy as np
        except ImportError:
            return 77
        ops, note = numpy_ops(np, opt["rows"]), (
            f"torch missing: numpy {np.__version__} float32 stand-ins (no bf16/fp8 roundings)")
    for name in opt["ops"]:
        if name in ops:
            t = best(ops[name], opt["min_time"], clock)
            print(f"peer {name} {opt['rows']} {t:.6e}", flush=True)
    print(f"note {note}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
