#!/usr/bin/env python3
"""peer_forward.py: the transformers peer of bench_forward (bench/README.md "bench_forward").

Loads DeepseekV32ForCausalLM from an HF checkpoint directory (bf16, attn_implementation "eager",
CPU), runs one prefill of the given prompt rows and N greedy decode steps with a DynamicCache
under torch.inference_mode(), and prints ONE JSON line on stdout:

  {"ok": true, "torch": "...", "transformers": "...", "threads": T,
   "load_s": ..., "prefill_s": ..., "decode_s": [per step ...], "ids": [[generated ids per row]]}

or {"ok": false, "why": "..."} with exit status 3 when torch or transformers cannot be imported
(bench_forward then reports the peer as absent, with the reason). Peak RSS is measured by the
caller (wait4 on this process), so this script does not report it.
"""
import argparse
import json
import sys
import time


def absent(why):
    print(json.dumps({"ok": False, "why": why}))
    sys.exit(3)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--tokens", required=True, help="rows separated by ';', ids by ','")
    ap.add_argument("--decode-steps", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    try:
        import torch
        import transformers
        from transformers import DeepseekV32ForCausalLM
    except Exception as e:  # noqa: BLE001 - any import failure means "no peer"
        absent(f"cannot import torch/transformers: {e}")
    torch.set_num_threads(max(1, a.threads))
    rows = [[int(x) for x in r.split(",")] for r in a.tokens.split(";") if r]
    t0 = time.perf_counter()
    model = DeepseekV32ForCausalLM.from_pretrained(
        a.checkpoint, dtype=torch.bfloat16, attn_implementation="eager").eval()
    t1 = time.perf_counter()
    ids = torch.tensor(rows, dtype=torch.long)
    steps, gen = [], []
    with torch.inference_mode():
        out = model(input_ids=ids, use_cache=True)
        nxt = out.logits[:, -1, :].float().argmax(-1)
        t2 = time.perf_counter()
        cache = out.past_key_values
        pos = ids.shape[1]
        for _ in range(a.decode_steps):
            gen.append(nxt.tolist())
            s0 = time.perf_counter()
            out = model(input_ids=nxt[:, None], past_key_values=cache, use_cache=True,
                        cache_position=torch.tensor([pos]))
            nxt = out.logits[:, -1, :].float().argmax(-1)
            cache = out.past_key_values
            pos += 1
            steps.append(time.perf_counter() - s0)
    print(json.dumps({"ok": True, "torch": torch.__version__,
                      "transformers": transformers.__version__, "threads": torch.get_num_threads(),
                      "load_s": t1 - t0, "prefill_s": t2 - t1, "decode_s": steps,
                      "ids": [list(r) for r in zip(*gen)] if gen else []}))


if __name__ == "__main__":
    main()
