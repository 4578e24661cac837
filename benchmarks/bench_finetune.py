"""Full fine-tuning against LoRA, each with gradient checkpointing off and on.

The task (the same as notebooks/09_fine_tuning.ipynb): a small byte-level GPT is
pre-trained briefly on the first half of a corpus (Tiny Shakespeare when available,
else the offline corpus), then adapted to a new *style*: the second half of the corpus
with every word spelled backwards ("tsriF neziitC"). The four runs start from the same
pre-trained weights and see the same batches, through the course Trainer:

    full FT         every weight trains
    full FT + GC    the same, with gradient checkpointing (same losses, less memory)
    LoRA            rank-r adapters on the targets only (apply_lora), everything else frozen
    LoRA + GC

For each: trainable parameters, memory of one training step (peak above what was
allocated before the step: `torch.cuda.max_memory_allocated` on CUDA, the profiler's
CPU allocation record on the CPU; and the activations saved for backward), the median
time per optimizer step, the final training loss and the validation loss on the new
style. The reference points are the pre-trained model's validation loss on the new
style before any adaptation, and peft: the LoRA runs' adapters are loaded into
`peft.PeftModel` on `GPT.to_hf()` and must give the same validation loss.

    python benchmarks/bench_finetune.py            # a few minutes on 2 CPU cores
    python benchmarks/bench_finetune.py --quick    # seconds; only proves the script works
    python benchmarks/bench_finetune.py --device cuda --json results.json
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import statistics
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from course_lib import lora, memory, runtime  # noqa: E402
from course_lib.model import GPT, GPTConfig  # noqa: E402
from course_lib.train import TrainConfig, Trainer  # noqa: E402


def reverse_words(text: str) -> str:
    """The new style: every run of letters spelled backwards."""
    return re.sub(r"[A-Za-z]+", lambda m: m.group()[::-1], text)


def byte_ids(text: str) -> torch.Tensor:
    return torch.tensor(list(text.encode("utf-8")), dtype=torch.long)


def make_task(corpus: str, max_chars: int | None) -> dict[str, torch.Tensor]:
    from course_lib.data import load_corpus

    text = load_corpus(corpus, verbose=False)
    if max_chars:
        text = text[:max_chars]
    half = len(text) // 2
    a, b = text[:half], reverse_words(text[half:])
    cut_a, cut_b = int(len(a) * 0.9), int(len(b) * 0.9)
    return {"pre_train": byte_ids(a[:cut_a]), "pre_val": byte_ids(a[cut_a:]),
            "ft_train": byte_ids(b[:cut_b]), "ft_val": byte_ids(b[cut_b:])}


def train(model: GPT, train_ids, val_ids, cfg: TrainConfig) -> tuple[Trainer, dict]:
    trainer = Trainer(model, train_ids, val_ids, cfg)
    summary = trainer.fit()
    return trainer, summary


def step_seconds(trainer: Trainer) -> float:
    """Median seconds per optimizer step (the first step, with its warm-up, left out)."""
    times = [trainer.tokens_per_step / h["tokens_per_s"] for h in trainer.history if h.get("tokens_per_s")]
    return statistics.median(times[1:] if len(times) > 2 else times)


@torch.no_grad()
def val_loss(model, ids: torch.Tensor, seq_len: int, batches: int, device) -> float:
    model.eval()
    n = (len(ids) - 1) // seq_len
    starts = torch.arange(min(n, batches * 8)) * seq_len
    x = torch.stack([ids[s:s + seq_len] for s in starts]).to(device)
    out = model(input_ids=x, labels=x)
    return float(out.loss)


def run(args: argparse.Namespace) -> dict:
    device = runtime.pick_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    runtime.seed_everything(0)
    task = make_task(args.corpus, args.max_chars)
    cfg = GPTConfig(vocab_size=256, n_positions=args.seq_len, n_embd=args.n_embd,
                    n_layer=args.n_layer, n_head=args.n_head)
    base_cfg = TrainConfig(batch_size=args.batch_size, seq_len=args.seq_len, lr=args.lr, min_lr=args.lr / 10,
                           warmup_steps=max(1, args.pretrain_steps // 10), max_steps=args.pretrain_steps,
                           eval_interval=0, eval_batches=4, sample_prompt=None, progress=False,
                           device=str(device), precision="fp32", seed=0)
    base = GPT(cfg)
    train(base, task["pre_train"], task["pre_val"], base_cfg)
    base = base.to(device)
    before = val_loss(base, task["ft_val"].to(device), args.seq_len, 4, device)
    pre_val_a = val_loss(base, task["pre_val"].to(device), args.seq_len, 4, device)

    x_mem = task["ft_train"][: args.batch_size * args.seq_len].view(args.batch_size, args.seq_len).to(device)
    rows = []
    for method in ("full", "lora"):
        for gc in (False, True):
            model = copy.deepcopy(base)
            runtime.seed_everything(1)  # the same adapter initialisation with GC off and on
            lr = args.lr / 3 if method == "full" else args.lora_lr
            if method == "lora":
                lora.apply_lora(model, tuple(args.targets.split(",")), r=args.r, alpha=args.alpha)
            if gc:
                model.gradient_checkpointing_enable()
            report = lora.trainable_parameters(model)
            mem = memory.step_memory(model, x_mem)
            ft_cfg = base_cfg.replace(lr=lr, min_lr=lr / 10, max_steps=args.ft_steps,
                                      warmup_steps=max(1, args.ft_steps // 10))
            trainer, summary = train(model, task["ft_train"], task["ft_val"], ft_cfg)
            row = {
                "method": method, "checkpointing": gc, "trainable": report.trainable, "total": report.total,
                "peak_bytes": mem.peak_bytes, "saved_bytes": mem.saved_bytes, "memory_method": mem.method,
                "s_per_step": step_seconds(trainer), "final_train_loss": summary["train_loss"],
                "val_loss": val_loss(model, task["ft_val"].to(device), args.seq_len, 4, device),
                "losses": [h["loss"] for h in trainer.history],
            }
            if method == "lora":
                row["peft_val_loss"] = peft_val_loss(base, model, task["ft_val"].to(device), args, device)
            rows.append(row)
            print(f"  {method:4s} GC={'on ' if gc else 'off'} {summary['train_loss']:.3f} "
                  f"{row['s_per_step'] * 1e3:.0f} ms/step", file=sys.stderr)
    return {"device": f"{device} ({runtime.device_name(device)})", "threads": torch.get_num_threads(),
            "model": cfg.to_dict(), "args": vars(args), "val_loss_before": before,
            "pretrain_val_loss": pre_val_a, "rows": rows}


def peft_val_loss(base: GPT, tuned: GPT, ids: torch.Tensor, args, device) -> float | None:
    """The tuned adapters, saved and loaded by peft onto the transformers export of `base`."""
    try:
        from peft import PeftModel
    except ImportError:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        lora.save_lora(tuned, Path(tmp) / "adapter")
        pm = PeftModel.from_pretrained(base.to_hf().to(device), Path(tmp) / "adapter")
        return val_loss(pm, ids, args.seq_len, 4, device)


def table(result: dict) -> str:
    lines = [
        "| method | grad. checkpointing | trainable params | peak step memory | saved for backward "
        "| time / step | final train loss | val loss (new style) |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["rows"]:
        peak = "n/a" if r["peak_bytes"] is None else f"{r['peak_bytes'] / 2**20:.2f} MiB"
        lines.append(
            f"| {'full FT' if r['method'] == 'full' else 'LoRA'} | {'on' if r['checkpointing'] else 'off'} "
            f"| {r['trainable']:,} ({100 * r['trainable'] / r['total']:.2f}%) | {peak} "
            f"| {r['saved_bytes'] / 2**20:.2f} MiB | {r['s_per_step'] * 1e3:.0f} ms "
            f"| {r['final_train_loss']:.3f} | {r['val_loss']:.3f} |")
    return "\n".join(lines)


def summary_lines(result: dict) -> list[str]:
    rows = {(r["method"], r["checkpointing"]): r for r in result["rows"]}
    out = [f"device: {result['device']}, {result['threads']} torch threads; model {result['model']}",
           f"pre-trained model: val loss {result['pretrain_val_loss']:.3f} on its own corpus, "
           f"{result['val_loss_before']:.3f} on the new style before adaptation"]
    for m in ("full", "lora"):
        off, on = rows[(m, False)], rows[(m, True)]
        same = max(abs(a - b) for a, b in zip(off["losses"], on["losses"]))
        if off["peak_bytes"] and on["peak_bytes"]:
            out.append(f"{m}: checkpointing peak memory x{on['peak_bytes'] / off['peak_bytes']:.2f}, "
                       f"time x{on['s_per_step'] / off['s_per_step']:.2f}, "
                       f"largest loss difference on/off {same:.1e}")
    full, lo = rows[("full", False)], rows[("lora", False)]
    out.append(f"LoRA / full: trainable x{lo['trainable'] / full['trainable']:.4f}, "
               f"time x{lo['s_per_step'] / full['s_per_step']:.2f}")
    if lo.get("peft_val_loss") is not None:
        out.append(f"peft check: val loss ours {lo['val_loss']:.6f}, peft {lo['peft_val_loss']:.6f}")
    return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a tiny run that only proves the script works")
    p.add_argument("--device", default=None, help="cpu, cuda or mps (default: the best here)")
    p.add_argument("--corpus", default="default", help="default, offline, shakespeare or a text file")
    p.add_argument("--max_chars", type=int, default=400_000)
    p.add_argument("--n_layer", type=int, default=4)
    p.add_argument("--n_head", type=int, default=4)
    p.add_argument("--n_embd", type=int, default=96)
    p.add_argument("--seq_len", type=int, default=96)
    p.add_argument("--batch_size", type=int, default=16)
    p.add_argument("--pretrain_steps", type=int, default=200)
    p.add_argument("--ft_steps", type=int, default=50)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--lora_lr", type=float, default=5e-3)
    p.add_argument("--targets", default="c_attn,c_proj,c_fc")
    p.add_argument("--r", type=int, default=8)
    p.add_argument("--alpha", type=float, default=16)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = p.parse_args(argv)
    if args.quick:
        args.max_chars = 20_000
        args.n_layer, args.n_head, args.n_embd, args.seq_len, args.batch_size = 2, 2, 32, 32, 4
        args.pretrain_steps, args.ft_steps = 4, 3
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    threads = torch.get_num_threads()
    try:
        result = run(args)
    finally:
        torch.set_num_threads(threads)  # leave a calling process (the test) as it was
    print(table(result))
    print()
    for line in summary_lines(result):
        print(line)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result


if __name__ == "__main__":
    main()
