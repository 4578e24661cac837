"""Training throughput through the Trainer: the course GPT against transformers' GPT2LMHeadModel.

Both models get the same configuration and the same initial weights (`GPT.to_hf`), and go
through the same `course_lib.train.Trainer` with the same `TrainConfig` (AdamW, schedule,
clipping, the same batches). They take turns, a few steps each, round after round in one
process, so machine noise hits them alike; the first round is a warm-up and is not counted.
Reported: the median tokens/s of each, and the median over rounds of the per-round ratio
course / transformers (the issue asks for at least 1.1 against the default attention).

    python benchmarks/bench_train.py            # vocab 8000, 4 layers x 256, seq 128, batch 8
    python benchmarks/bench_train.py --quick    # a tiny run that only proves the script works
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from course_lib.model import GPT, GPTConfig  # noqa: E402
from course_lib.train import Callback, TrainConfig, Trainer  # noqa: E402


class StopEvery(Callback):
    """Stop `fit` after every `n` steps, so the next round can call `fit` again."""

    def __init__(self, n: int) -> None:
        self.n = n

    def on_step_end(self, trainer: Trainer, logs: dict) -> None:
        if logs["step"] % self.n == 0:
            trainer.should_stop = True


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes, 2 rounds of 2 steps")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--steps", type=int, default=8, help="optimizer steps per model per round")
    ap.add_argument("--device", default=None)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.quick:
        cfg = GPTConfig(vocab_size=100, n_positions=16, n_embd=32, n_layer=1, n_head=2)
        seq_len, batch, rounds, steps = 16, 2, 2, 2
    else:
        cfg = GPTConfig(vocab_size=8000, n_positions=128, n_embd=256, n_layer=4, n_head=4)
        seq_len, batch, rounds, steps = 128, 8, args.rounds, args.steps
    torch.manual_seed(0)
    course = GPT(cfg)
    models = {
        "course": course,
        "hf-default": course.to_hf(attn_implementation=None),
        "hf-eager": course.to_hf(attn_implementation="eager"),
    }
    ids = torch.randint(cfg.vocab_size, (seq_len * batch * steps * (rounds + 1) + 1,))
    config = TrainConfig(batch_size=batch, seq_len=seq_len, max_steps=steps * rounds, warmup_steps=2,
                         eval_interval=0, sample_prompt=None, progress=False, device=args.device)
    trainers = {name: Trainer(m, ids, None, config, callbacks=[StopEvery(steps)]) for name, m in models.items()}
    hf_attn = models["hf-default"].config._attn_implementation
    first = trainers["course"]
    print(f"{first.plan()['parameters']:,} parameters, vocab {cfg.vocab_size}, {cfg.n_layer} layers x {cfg.n_embd}, "
          f"seq {seq_len}, batch {batch}; {first.device}, {first.precision}, torch threads {torch.get_num_threads()}; "
          f"hf-default attention = {hf_attn}")
    rates: dict[str, list[float]] = {name: [] for name in models}
    names = list(models)
    for r in range(rounds):
        order = names if r % 2 == 0 else names[::-1]
        for name in order:
            t0 = time.perf_counter()
            trainers[name].fit()
            dt = time.perf_counter() - t0
            if r > 0 or rounds == 1:  # round 0 warms up
                rates[name].append(steps * first.tokens_per_step / dt)
    for name in names:
        print(f"  {name:10s} {statistics.median(rates[name]):>10,.0f} tokens/s (median of {len(rates[name])} rounds)")
    for ref in ("hf-default", "hf-eager"):
        ratio = statistics.median(a / b for a, b in zip(rates["course"], rates[ref]))
        print(f"course / {ref}: {ratio:.2f}x" + ("  (target >= 1.1)" if ref == "hf-default" else ""))
    same = [round(h["loss"], 4) for h in trainers["course"].history[:3]]
    print(f"same losses on the same batches (first steps): course {same}, "
          f"hf-default {[round(h['loss'], 4) for h in trainers['hf-default'].history[:3]]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
