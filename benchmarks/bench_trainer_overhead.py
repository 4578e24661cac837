"""What the course `Trainer` costs per step, against a bare loop of the same model and optimizer.

The bare loop is the shortest honest training loop: draw a batch of random windows
(nanoGPT's ``get_batch``), set the learning rate, forward, cross-entropy, backward, clip the
gradient norm to 1.0, the same AdamW (`course_lib.train.make_optimizer`: decay groups, fused
where it works), ``zero_grad``, and read the loss once (``loss.item()``, as any loop that logs
does). The Trainer does the same and also its bookkeeping: the seeded epoch permutation and
collation, the step timer, the stop flag, callbacks, the progress line. No evaluation and no
sample in either. Both train the same initial weights; they take turns, `--steps` steps
each, round after round in one process (the first round is a warm-up), and the report gives
the median ms/step of each and the Trainer's overhead in per cent, by wall clock and by this
process's CPU time (the steadier figure on a shared machine).

Two sizes: nanoGPT's CPU Shakespeare-char model (4 layers x 128, batch 12 x 64, vocab 65; goal
overhead <= 3 %) and the original project's (4 layers x 256, batch 16 x 256, vocab 8,000; goal
<= 1 %).

    python benchmarks/bench_trainer_overhead.py            # both sizes
    python benchmarks/bench_trainer_overhead.py --quick    # tiny: proves the script runs
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from course_lib.data import TokenDataset  # noqa: E402
from course_lib.model import GPT, GPTConfig  # noqa: E402
from course_lib.train import Callback, TrainConfig, Trainer, cosine_schedule, make_optimizer  # noqa: E402

SIZES = {  # name: (model config, batch, seq_len, goal in %)
    "nanoGPT Shakespeare-char (4 x 128, 12 x 64)": (
        GPTConfig(vocab_size=65, n_positions=64, n_embd=128, n_layer=4, n_head=4, dropout=0.0), 12, 64, 3.0),
    "original project (4 x 256, 16 x 256)": (
        GPTConfig(vocab_size=8000, n_positions=256, n_embd=256, n_layer=4, n_head=4, dropout=0.0), 16, 256, 1.0),
}


class StopEvery(Callback):
    """Stop `fit` after every `n` steps, so the bare loop can take its turn."""

    def __init__(self, n: int) -> None:
        self.n = n

    def on_step_end(self, trainer: Trainer, logs: dict) -> None:
        if logs["step"] % self.n == 0:
            trainer.should_stop = True


def bare_loop(model: GPT, opt: torch.optim.Optimizer, data: torch.Tensor, config: TrainConfig,
              start: int, steps: int, gen: torch.Generator) -> None:
    """`steps` plain training steps: the loop the Trainer is measured against."""
    B, T = config.batch_size, config.seq_len
    for step in range(start, start + steps):
        ix = torch.randint(len(data) - T, (B,), generator=gen)
        x = torch.stack([data[i : i + T] for i in ix])  # (B, T)
        y = torch.stack([data[i + 1 : i + 1 + T] for i in ix])  # (B, T)
        lr = cosine_schedule(step, max_lr=config.lr, min_lr=config.min_lr, warmup_steps=config.warmup_steps,
                             total_steps=config.max_steps)
        for group in opt.param_groups:
            group["lr"] = lr
        logits = model(x).logits  # (B, T, V)
        loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
        loss.item()


def measure(name: str, cfg: GPTConfig, batch: int, seq_len: int, rounds: int, steps: int) -> dict:
    torch.manual_seed(0)
    data = torch.randint(cfg.vocab_size, (200_000,))
    config = TrainConfig(batch_size=batch, seq_len=seq_len, max_steps=rounds * steps + 1, lr=1e-3, min_lr=1e-4,
                         warmup_steps=10, grad_clip=1.0, eval_interval=10**9, sample_prompt=None, device="cpu",
                         precision="fp32", progress=False, seed=0)
    model = GPT(cfg)
    bare_model = copy.deepcopy(model)
    trainer = Trainer(model, TokenDataset(data.numpy(), seq_len, stride=1), None, config,
                      callbacks=[StopEvery(steps)])
    opt = make_optimizer(bare_model, config)
    gen = torch.Generator().manual_seed(0)
    times: dict[str, list[tuple[float, float]]] = {"Trainer": [], "bare loop": []}
    done = 0
    for r in range(rounds):
        order = ("Trainer", "bare loop") if r % 2 == 0 else ("bare loop", "Trainer")
        for who in order:
            w, c = time.perf_counter(), time.process_time()
            if who == "Trainer":
                trainer.should_stop = False
                trainer.fit()
            else:
                bare_loop(bare_model, opt, data, config, done, steps, gen)
            if r > 0:  # the first round warms up both
                times[who].append(((time.perf_counter() - w) / steps * 1000, (time.process_time() - c) / steps * 1000))
        done += steps
    med = {who: (statistics.median(t[0] for t in ts), statistics.median(t[1] for t in ts)) for who, ts in times.items()}
    over_wall = (med["Trainer"][0] / med["bare loop"][0] - 1) * 100
    over_cpu = (med["Trainer"][1] / med["bare loop"][1] - 1) * 100
    return {"size": name, "trainer_ms": med["Trainer"], "bare_ms": med["bare loop"],
            "overhead_wall_pct": over_wall, "overhead_cpu_pct": over_cpu}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--steps", type=int, default=20, help="steps per turn")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    sizes = SIZES
    if args.quick:
        sizes = {"tiny": (GPTConfig(vocab_size=50, n_positions=16, n_embd=32, n_layer=1, n_head=2), 2, 16, 3.0)}
        args.rounds, args.steps = 2, 2
    print(f"torch {torch.__version__}, torch threads {torch.get_num_threads()}, load average "
          f"{os.getloadavg()[0]:.2f}; {args.rounds} rounds of {args.steps} steps each, first round not counted")
    print("\n| size | Trainer ms/step (wall, CPU) | bare loop ms/step (wall, CPU) "
          "| overhead wall | overhead CPU | goal |")
    print("|---|---|---|---|---|---|")
    for name, (cfg, batch, seq_len, goal) in sizes.items():
        r = measure(name, cfg, batch, seq_len, args.rounds, args.steps)
        print(f"| {name} | {r['trainer_ms'][0]:.1f}, {r['trainer_ms'][1]:.1f} | {r['bare_ms'][0]:.1f}, "
              f"{r['bare_ms'][1]:.1f} | {r['overhead_wall_pct']:+.1f} % | {r['overhead_cpu_pct']:+.1f} % | "
              f"<= {goal:.0f} % |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
