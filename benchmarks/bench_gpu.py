"""GPU training throughput and MFU: the course GPT against transformers' GPT2LMHeadModel, in one run.

    python benchmarks/bench_gpu.py                 # GPT-2 124M, seq 1024, bf16 (fp16 on a T4)
    python benchmarks/bench_gpu.py --compile       # both models through torch.compile
    python benchmarks/bench_gpu.py --quick         # a tiny config on the CPU (what CI runs)

Both models start from the same weights (the course model converted with `GPT.to_hf`,
transformers with its SDPA attention), train with the same fused AdamW, the same
autocast and the same loss; the models alternate in rounds and the median step time of
each is reported, with tokens/s, MFU (`course_lib.scaling`) and the course/transformers
ratio. Then greedy generation tokens/s with a KV cache: `course_lib.generate.generate`
against `GPT2LMHeadModel.generate`. With no GPU it runs a tiny config on the CPU.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from course_lib import runtime, scaling  # noqa: E402
from course_lib.model import GPT, GPTConfig  # noqa: E402


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _train_steps(model: torch.nn.Module, opt: torch.optim.Optimizer, scaler: Any, x: torch.Tensor,
                 device: torch.device, dtype: torch.dtype | None, n: int) -> tuple[list[float], list[float]]:
    times, losses = [], []
    for _ in range(n):
        _sync(device)
        t0 = time.perf_counter()
        with scaling.autocast(device, dtype):
            logits = model(x).logits  # (B, T, V)
        loss = F.cross_entropy(logits[:, :-1].float().reshape(-1, logits.size(-1)), x[:, 1:].reshape(-1))
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        else:
            loss.backward()
            opt.step()
        opt.zero_grad(set_to_none=True)
        _sync(device)
        times.append(time.perf_counter() - t0)
        losses.append(loss.item())
    return times, losses


def run(args: argparse.Namespace) -> dict[str, Any]:
    device = torch.device("cuda" if torch.cuda.is_available() and not args.quick else "cpu")
    quick = args.quick or device.type == "cpu"
    if quick:
        cfg = GPTConfig(vocab_size=512, n_positions=64, n_embd=64, n_layer=2, n_head=4)
        batch, seq, steps, warmup, rounds, gen_tokens = 4, 64, args.steps or 2, 1, 1, 8
    else:
        cfg = GPTConfig.preset("gpt2")
        batch, seq, steps, warmup, rounds, gen_tokens = args.batch, args.seq, args.steps or 10, 3, 3, 128
    precision = scaling.choose_precision(device)
    scaling.enable_tf32(device)
    fused = scaling.fused_adamw_available(device) and device.type == "cuda"
    peak = scaling.peak_flops(device, precision.dtype)
    fpt = scaling.flops_per_token(cfg, seq)

    runtime.seed_everything(0)
    course = GPT(cfg).to(device)
    hf = course.to_hf(attn_implementation="sdpa").to(device)
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, cfg.vocab_size, (batch, seq), generator=g).to(device)

    models = {"course": course, "transformers": hf}
    state = {}
    for name, model in models.items():
        model.train()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4, **({"fused": True} if fused else {}))
        runner = scaling.compile_model(model, enabled=args.compile, device=device, quiet=False)
        state[name] = {"model": runner, "opt": opt, "scaler": precision.grad_scaler(device),
                       "times": [], "losses": []}
    # the first step of each starts from the same weights: the losses must agree
    for s in state.values():
        _, losses = _train_steps(s["model"], s["opt"], s["scaler"], x, device, precision.dtype, warmup)
        s["first_loss"] = losses[0]
    for _ in range(rounds):
        for s in state.values():
            t, losses = _train_steps(s["model"], s["opt"], s["scaler"], x, device, precision.dtype, steps)
            s["times"] += t
            s["losses"] += losses

    result: dict[str, Any] = {
        "device": runtime.device_name(device), "precision": precision.name, "compile": args.compile,
        "fused_adamw": fused, "config": cfg.to_dict(), "batch": batch, "seq_len": seq,
        "flops_per_token": fpt, "peak_flops": peak, "train": {}, "generate": {},
    }
    for name, s in state.items():
        step = statistics.median(s["times"])
        tps = batch * seq / step
        result["train"][name] = {"step_s": step, "tokens_per_s": tps, "mfu": scaling.mfu(tps, fpt, peak),
                                 "first_loss": s["first_loss"], "last_loss": s["losses"][-1]}
    train = result["train"]
    train["ratio"] = train["course"]["tokens_per_s"] / train["transformers"]["tokens_per_s"]
    if device.type == "cuda":
        result["peak_memory_gib"] = torch.cuda.max_memory_allocated(device) / 2**30

    # generation: greedy, KV cache, batch 1, the same prompt
    from course_lib.generate import generate

    prompt = x[:1, : min(16, seq // 2)]
    new = min(gen_tokens, cfg.n_positions - prompt.size(1))
    for m in models.values():
        m.eval()
    outs = {}
    for name, fn in (
        ("course", lambda: generate(course, prompt, new)),
        ("transformers", lambda: hf.generate(prompt, max_new_tokens=new, min_new_tokens=new, do_sample=False,
                                             attention_mask=torch.ones_like(prompt), pad_token_id=0)),
    ):
        with torch.no_grad(), scaling.autocast(device, precision.dtype):
            fn()  # warm-up
            times = []
            for _ in range(rounds):
                _sync(device)
                t0 = time.perf_counter()
                outs[name] = fn()
                _sync(device)
                times.append(time.perf_counter() - t0)
        result["generate"][name] = {"tokens_per_s": new / statistics.median(times)}
    gen = result["generate"]
    gen["ratio"] = gen["course"]["tokens_per_s"] / gen["transformers"]["tokens_per_s"]
    result["generate"]["same_tokens"] = bool(torch.equal(outs["course"].cpu(), outs["transformers"].cpu()))
    result["generate"]["new_tokens"] = new
    return result


def report(r: dict[str, Any]) -> str:
    t, g = r["train"], r["generate"]

    def mfu(v: float | None) -> str:
        return "n/a" if v is None else f"{v:.1%}"

    lines = [
        f"{r['device']} | {r['precision']} | compile={r['compile']} | fused AdamW={r['fused_adamw']} | "
        f"batch {r['batch']} x {r['seq_len']} | {r['flops_per_token'] / 1e9:.3f} GFLOPs/token",
        "| measure | course | transformers | ratio |",
        "|---|---|---|---|",
        f"| train tokens/s | {t['course']['tokens_per_s']:,.0f} | {t['transformers']['tokens_per_s']:,.0f} "
        f"| {t['ratio']:.2f}x |",
        f"| MFU | {mfu(t['course']['mfu'])} | {mfu(t['transformers']['mfu'])} | |",
        f"| first-step loss (same weights) | {t['course']['first_loss']:.4f} "
        f"| {t['transformers']['first_loss']:.4f} | |",
        f"| greedy generation tokens/s (KV cache) | {g['course']['tokens_per_s']:,.0f} | "
        f"{g['transformers']['tokens_per_s']:,.0f} | {g['ratio']:.2f}x |",
        f"same generated tokens: {g['same_tokens']}",
    ]
    if "peak_memory_gib" in r:
        lines.append(f"peak GPU memory: {r['peak_memory_gib']:.1f} GiB")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="tiny config on the CPU (always so without a GPU)")
    p.add_argument("--compile", action="store_true", help="run both models through torch.compile")
    p.add_argument("--batch", type=int, default=8, help="sequences per step on the GPU (default 8)")
    p.add_argument("--seq", type=int, default=1024, help="sequence length on the GPU (default 1024)")
    p.add_argument("--steps", type=int, default=None, help="timed steps per round")
    p.add_argument("--json", type=Path, default=None, help="also write the results to this JSON file")
    args = p.parse_args(argv)
    result = run(args)
    print(report(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1, default=str) + "\n", encoding="utf-8")
    return result


if __name__ == "__main__":
    main()
