"""Training-step throughput of the course GPT against transformers' GPT2LMHeadModel.

One training step = forward with labels, backward, AdamW step, zero_grad. The course
model and `GPT2LMHeadModel` (its default attention implementation, and eager) get the
same configuration, the same weights, the same batch and the same optimizer settings,
and take turns round after round in one process, so machine noise hits them alike.
The report is the median over rounds of the per-round ratio course / transformers, by
wall clock and (on the CPU) by the process's CPU time, which a busy shared machine
disturbs less.

Also measured: activation memory with and without gradient checkpointing. On CUDA this
is `torch.cuda.max_memory_allocated` over a step; on the CPU, where PyTorch keeps no
allocator statistics, it is the bytes of the distinct tensors autograd keeps for the
backward pass (counted through `torch.autograd.graph.saved_tensors_hooks`), plus, with
checkpointing, the block inputs that checkpointing keeps instead.

    python benchmarks/bench_model.py            # the issue's configuration, ~5-10 min on 2 cores
    python benchmarks/bench_model.py --quick    # a tiny run that only proves the script works
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from course_lib.model import GPT, GPTConfig  # noqa: E402


def make_models(cfg: GPTConfig, device: torch.device) -> dict[str, torch.nn.Module]:
    torch.manual_seed(0)
    course = GPT(cfg).to(device).train()
    models: dict[str, torch.nn.Module] = {"course": course}
    models["hf-default"] = course.to_hf(attn_implementation=None).to(device).train()
    models["hf-eager"] = course.to_hf(attn_implementation="eager").to(device).train()
    return models


def train_step_fn(model: torch.nn.Module, x: torch.Tensor) -> Callable[[], float]:
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.1)

    def step() -> float:
        loss = model(input_ids=x, labels=x, use_cache=False).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.item()

    return step


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def throughput(
    args: argparse.Namespace, cfg: GPTConfig, device: torch.device
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Tokens per wall-clock second and per CPU second (all threads), per model per round."""
    models = make_models(cfg, device)
    g = torch.Generator().manual_seed(1)
    x = torch.randint(0, cfg.vocab_size, (args.batch, args.seq), generator=g).to(device)
    steps = {name: train_step_fn(m, x) for name, m in models.items()}
    tokens = args.batch * args.seq
    for step in steps.values():  # warm-up: allocator, kernels, optimizer state
        for _ in range(args.warmup):
            step()
    rates: dict[str, list[float]] = {name: [] for name in steps}
    cpu_rates: dict[str, list[float]] = {name: [] for name in steps}
    order = list(steps)
    for r in range(args.rounds):
        # rotate who goes first, so no model always runs right after the same one
        for name in order[r % len(order):] + order[: r % len(order)]:
            sync(device)
            t0, c0 = time.perf_counter(), time.process_time()
            for _ in range(args.steps):
                steps[name]()
            sync(device)
            rates[name].append(tokens * args.steps / (time.perf_counter() - t0))
            cpu_rates[name].append(tokens * args.steps / (time.process_time() - c0))
        line = "  ".join(f"{n} {rates[n][-1]:8,.0f}" for n in order)
        print(f"round {r + 1:2d}/{args.rounds}: tokens/s  {line}", flush=True)
    return rates, cpu_rates


def set_checkpointing(model: torch.nn.Module, on: bool) -> None:
    # transformers 5 renamed the switch (the old name warns); 4.x only has the old one
    verb = "enable" if on else "disable"
    for prefix in ("activation_checkpointing_", "gradient_checkpointing_"):
        fn = getattr(model, prefix + verb, None)
        if fn is not None:
            fn()
            return


def saved_bytes(model: torch.nn.Module, x: torch.Tensor, checkpointing: bool) -> int:
    """Bytes of the distinct storages kept alive for backward after one forward pass."""
    set_checkpointing(model, checkpointing)
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    storages: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        s = t.untyped_storage()
        if s.data_ptr() not in params:  # weights are not activations
            storages[s.data_ptr()] = s.nbytes()
        return t

    captured: list[torch.Tensor] = []
    handles = []
    if checkpointing:  # checkpointing keeps each block's input to recompute from it
        blocks = model.transformer.h
        handles = [b.register_forward_pre_hook(lambda m, a, kw=None: captured.append(a[0] if a else None))
                   for b in blocks]
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = model(input_ids=x, labels=x, use_cache=False)
    for h in handles:
        h.remove()
    for t in captured:
        if t is not None:
            storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
    out.loss.backward()
    model.zero_grad(set_to_none=True)
    set_checkpointing(model, False)
    return sum(storages.values())


def cuda_peak(model: torch.nn.Module, x: torch.Tensor, checkpointing: bool, device: torch.device) -> int:
    set_checkpointing(model, checkpointing)
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    base = torch.cuda.memory_allocated(device)
    model(input_ids=x, labels=x, use_cache=False).loss.backward()
    torch.cuda.synchronize(device)
    peak = torch.cuda.max_memory_allocated(device) - base
    model.zero_grad(set_to_none=True)
    set_checkpointing(model, False)
    return peak


def memory(args: argparse.Namespace, cfg: GPTConfig, device: torch.device) -> dict[str, dict[bool, int]]:
    models = make_models(cfg, device)
    x = torch.randint(0, cfg.vocab_size, (args.batch, args.seq), generator=torch.Generator().manual_seed(2)).to(device)
    out: dict[str, dict[bool, int]] = {}
    for name, m in models.items():
        if name == "hf-eager":
            continue
        out[name] = {}
        for ckpt in (False, True):
            if device.type == "cuda":
                out[name][ckpt] = cuda_peak(m, x, ckpt, device)
            else:
                out[name][ckpt] = saved_bytes(m, x, ckpt)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="tiny config, a few steps: proves the script runs")
    p.add_argument("--rounds", type=int, default=None, help="alternating rounds (default 15, quick 2)")
    p.add_argument("--steps", type=int, default=None, help="training steps per model per round (default 2)")
    p.add_argument("--warmup", type=int, default=None, help="warm-up steps per model (default 2)")
    p.add_argument("--device", default="cpu", help="cpu (the issue's setting), cuda or mps")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if args.quick:
        cfg = GPTConfig(vocab_size=300, n_positions=32, n_embd=32, n_layer=2, n_head=4)
        args.batch, args.seq = 2, 32
        args.rounds = args.rounds or 2
        args.steps = args.steps or 1
        args.warmup = args.warmup if args.warmup is not None else 1
    else:
        cfg = GPTConfig(vocab_size=8000, n_positions=256, n_embd=256, n_layer=4, n_head=4)
        args.batch, args.seq = 16, 256
        args.rounds = args.rounds or 15
        args.steps = args.steps or 2
        args.warmup = args.warmup if args.warmup is not None else 2

    import transformers

    print(f"torch {torch.__version__}, transformers {transformers.__version__}, device {device}, "
          f"threads {torch.get_num_threads()}, cpus {os.cpu_count()}")
    print(f"config: {cfg.to_dict()}  batch {args.batch} x {args.seq}")
    print(f"{args.rounds} rounds x {args.steps} steps per model, after {args.warmup} warm-up steps")
    rates, cpu_rates = throughput(args, cfg, device)
    clocks = [("wall-clock", rates)] + ([("CPU-time", cpu_rates)] if device.type == "cpu" else [])
    for clock, r in clocks:
        med = {n: statistics.median(v) for n, v in r.items()}
        print(f"\n[{clock}] median tokens/s: " + ", ".join(f"{n} {v:,.0f}" for n, v in med.items()))
        for ref in ("hf-default", "hf-eager"):
            ratios = [c / h for c, h in zip(r["course"], r[ref])]
            print(f"[{clock}] ratio course / {ref}: median {statistics.median(ratios):.3f}x "
                  f"(min {min(ratios):.3f}, max {max(ratios):.3f} over {len(ratios)} rounds)")

    mem = memory(args, cfg, device)
    what = "peak CUDA memory over a step" if device.type == "cuda" else "activations saved for backward"
    print(f"\nmemory ({what}):")
    for name, d in mem.items():
        print(f"  {name:10s} no checkpointing {d[False] / 2**20:8.1f} MiB | checkpointing "
              f"{d[True] / 2**20:8.1f} MiB | ratio {d[True] / d[False]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
