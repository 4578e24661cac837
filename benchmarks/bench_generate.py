"""Decoding speed: course `generate` (with and without the KV cache) against transformers.

Same weights (the course GPT and `GPT.to_hf()`), same prompt, greedy decoding, CPU.
Contestants take turns round after round in one process, so machine noise hits them
alike; the report is the median tokens/s by wall clock and by this process's CPU time,
and the median of the per-round ratios course / transformers. Each round also checks
that every contestant produced the same ids.

    python benchmarks/bench_generate.py            # 4 layers, n_embd 256, vocab 8000, 16 + 256 tokens
    python benchmarks/bench_generate.py --quick    # a tiny run that only proves the script works
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from course_lib.generate import generate  # noqa: E402
from course_lib.model import GPT, GPTConfig  # noqa: E402


def contestants(model: GPT, prompt: torch.Tensor, new: int) -> dict[str, Callable[[], torch.Tensor]]:
    hf_sdpa = model.to_hf(attn_implementation="sdpa").eval()
    hf_eager = model.to_hf(attn_implementation="eager").eval()

    def hf(m, use_cache: bool) -> Callable[[], torch.Tensor]:
        def run() -> torch.Tensor:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return m.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=new,
                                  min_new_tokens=new, do_sample=False, use_cache=use_cache, pad_token_id=0)
        return run

    return {
        "course, KV cache": lambda: generate(model, prompt, new),
        "course, no cache": lambda: generate(model, prompt, new, use_cache=False),
        "transformers (sdpa), cache": hf(hf_sdpa, True),
        "transformers (eager), cache": hf(hf_eager, True),
        "transformers (sdpa), no cache": hf(hf_sdpa, False),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes, one round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.quick:
        cfg = GPTConfig(vocab_size=500, n_positions=64, n_embd=32, n_layer=2, n_head=2)
        prompt_len, new, rounds = 8, 16, 1
    else:
        cfg = GPTConfig(vocab_size=8000, n_positions=512, n_embd=256, n_layer=4, n_head=8)
        prompt_len, new, rounds = 16, 256, args.rounds
    torch.manual_seed(0)
    model = GPT(cfg).eval()
    prompt = torch.randint(0, cfg.vocab_size, (1, prompt_len), generator=torch.Generator().manual_seed(1))
    runs = contestants(model, prompt, new)
    for fn in runs.values():  # warm up
        fn()
    wall: dict[str, list[float]] = {k: [] for k in runs}
    cpu: dict[str, list[float]] = {k: [] for k in runs}
    for r in range(rounds):
        names = list(runs) if r % 2 == 0 else list(reversed(runs))  # alternate the order
        outs = {}
        for name in names:
            t0, c0 = time.perf_counter(), time.process_time()
            outs[name] = runs[name]()
            wall[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
        ref = outs["transformers (sdpa), cache"]
        for name, out in outs.items():
            assert out.shape == (1, prompt_len + new) and torch.equal(out, ref), f"{name} gave other ids"
    import transformers

    print(f"transformers {transformers.__version__}, torch {torch.__version__}, Python {sys.version.split()[0]}, "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"config: {cfg.n_layer} layers, n_embd {cfg.n_embd}, vocab {cfg.vocab_size}; prompt {prompt_len}, "
          f"{new} new tokens; greedy; {rounds} rounds; torch threads {torch.get_num_threads()}; ids identical")
    base = "transformers (sdpa), cache"
    print(f"{'contestant':32s} {'tok/s wall':>10s} {'tok/s CPU':>10s} {'x hf (wall)':>11s} {'x hf (CPU)':>10s}")
    for name in runs:
        ratio_w = statistics.median(b / a for a, b in zip(wall[name], wall[base]))
        ratio_c = statistics.median(b / a for a, b in zip(cpu[name], cpu[base]))
        print(f"{name:32s} {new / statistics.median(wall[name]):10.1f} {new / statistics.median(cpu[name]):10.1f} "
              f"{ratio_w:10.2f}x {ratio_c:9.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
