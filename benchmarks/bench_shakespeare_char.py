"""Quality on a budget: nanoGPT's CPU Shakespeare-char run, done with the course Trainer.

nanoGPT's README trains a character-level model on a CPU with ``config/train_shakespeare_char.py``
and ``--device=cpu --compile=False --eval_iters=20 --block_size=64 --batch_size=12 --n_layer=4
--n_head=4 --n_embd=128 --max_iters=2000 --lr_decay_iters=2000 --dropout=0.0``: lr 1e-3, 100
warm-up iterations, cosine decay to 1e-4, AdamW betas (0.9, 0.99), weight decay 0.1 (2-D
weights), gradient clip 1.0; data split first 90% train, last 10% validation. On the course's
2-core machine that reached validation loss 1.886 in 3 min 18 s. The course must reach at
most 1.89 in no more wall time.

This script trains the course GPT with that configuration through `course_lib.train.Trainer`:
training windows start at any offset (like nanoGPT's random ``get_batch``, here a seeded
shuffle of all offsets), evaluation every 250 steps on a fixed set of 20 validation batches
(like ``--eval_iters=20``), and at the end the loss over the whole validation split
(non-overlapping windows of 64). It reports the wall time of the training run (evaluations
included), timed from the start of the interpreter like ``time python train.py``. The extra
pass over the whole validation split, which nanoGPT does not make, is not in that time.
The goal is judged on the whole-split loss, the steadier number: 20 batches of 12 windows of
64 characters are 15,360 of the split's 111,540 characters, a sample. ``--seeds N`` repeats
the run with N seeds and judges the mean.

    python benchmarks/bench_shakespeare_char.py            # one run (~3.5 min on 2 quiet cores)
    python benchmarks/bench_shakespeare_char.py --seeds 3  # three seeds, mean and spread
    python benchmarks/bench_shakespeare_char.py --arch nanogpt  # nanoGPT's bias=False + exact GELU, same loop
    python benchmarks/bench_shakespeare_char.py --quick    # 10 steps, proves the script works
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

T_START = time.perf_counter()

import torch  # noqa: E402
from torch import nn  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from course_lib.data import TokenDataset  # noqa: E402
from course_lib.model import GPT, GPTConfig  # noqa: E402
from course_lib.train import TrainConfig, Trainer  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "tinyshakespeare.txt"
NANOGPT_VAL_LOSS = 1.886
NANOGPT_SECONDS = 198.0
TARGET = 1.89


def as_nanogpt_architecture(model: GPT) -> GPT:
    """Turn the course GPT into nanoGPT's default architecture, in place, for comparison.

    nanoGPT's ``train.py`` defaults to ``bias=False`` (no biases in the linear layers and
    LayerNorms) and its MLP uses the exact (erf) GELU; GPT-2, and so the course model,
    has biases and the tanh GELU. Same initialisation otherwise. Not a GPT-2 any more:
    this variant only separates "architecture" from "implementation" in the comparison.
    """
    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.LayerNorm)) and module.bias is not None:
            module.register_parameter("bias", None)
    for block in model.transformer.h:
        block.mlp.act = nn.GELU()
    return model


def run_once(args: argparse.Namespace, text: str, seed: int, t_start: float) -> dict[str, float]:
    """Train once with `seed`; returns losses and times (seconds since `t_start`)."""
    chars = sorted(set(text))  # the character vocabulary (65 for the full file)
    stoi = {c: i for i, c in enumerate(chars)}
    ids = torch.tensor([stoi[c] for c in text], dtype=torch.int16)
    n = int(0.9 * len(ids))
    train_ids, val_ids = ids[:n].numpy(), ids[n:].numpy()  # first 90% / last 10%, as nanoGPT

    block = 64
    iters = 10 if args.quick else args.iters
    torch.manual_seed(seed)
    model = GPT(GPTConfig(vocab_size=len(chars), n_positions=block, n_embd=128, n_layer=4, n_head=4, dropout=0.0))
    if args.arch == "nanogpt":
        as_nanogpt_architecture(model)
    config = TrainConfig(
        batch_size=12, seq_len=block, grad_accum_steps=1, max_steps=iters,
        lr=1e-3, min_lr=1e-4, warmup_steps=3 if args.quick else 100,
        weight_decay=0.1, beta1=0.9, beta2=0.99, grad_clip=1.0,
        eval_interval=5 if args.quick else 250, eval_batches=2 if args.quick else 20, sample_prompt=None,
        device=args.device, precision="fp32", seed=seed, progress=args.progress,
    )
    train = TokenDataset(train_ids, block, stride=1)  # every offset, like nanoGPT's random windows
    val = TokenDataset(val_ids, block, stride=1)
    trainer = Trainer(model, train, val, config)
    print(f"seed {seed}: course GPT ({args.arch} architecture), {trainer.plan()['parameters']:,} parameters, vocab {len(chars)}, "
          f"{len(train_ids):,} train / {len(val_ids):,} val characters, {iters} steps, "
          f"torch threads {torch.get_num_threads()}", flush=True)
    t0 = time.perf_counter()
    summary = trainer.fit()
    t_end = time.perf_counter()
    trainer.val_data = TokenDataset(val_ids, block)  # non-overlapping windows: every character once
    full_val = trainer.evaluate(max_batches=None)
    for e in trainer.eval_history:
        print(f"  step {e['step']:>5}: val loss {e['val_loss']:.4f} ({config.eval_batches} batches)")
    result = {
        "seed": seed, "val20": summary["val_loss"], "val_full": full_val["val_loss"],
        "train_s": t_end - t0, "run_s": t_end - t_start, "ms_per_step": (t_end - t0) / iters * 1000,
    }
    print(f"seed {seed}: val loss {result['val_full']:.4f} on the whole validation split "
          f"({len(trainer.val_data):,} windows), {result['val20']:.4f} on the {config.eval_batches} fixed batches; "
          f"training {result['train_s']:.1f} s ({result['ms_per_step']:.0f} ms/step, evaluations included), "
          f"start to end of training {result['run_s']:.1f} s", flush=True)
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(DEFAULT_DATA), help="tinyshakespeare.txt")
    ap.add_argument("--iters", type=int, default=2000)
    ap.add_argument("--quick", action="store_true", help="10 steps on a slice; proves the script runs")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--seed", type=int, default=1337, help="the first seed (nanoGPT's is 1337)")
    ap.add_argument("--seeds", type=int, default=1, help="runs with seeds seed, seed+1, ...; reports the mean")
    ap.add_argument("--arch", choices=("gpt2", "nanogpt"), default="gpt2",
                    help="gpt2: the course model (default); nanogpt: the same model with nanoGPT's bias=False "
                         "and exact GELU, to compare architectures")
    ap.add_argument("--progress", action="store_true", help="show the progress bar")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    path = Path(args.data)
    if not path.is_file():
        print(f"Tiny Shakespeare not found at {path}; pass --data", file=sys.stderr)
        return 2
    text = path.read_text(encoding="utf-8")
    if args.quick:
        text = text[:20_000]
    results = []
    for k in range(args.seeds):
        # the first run's clock starts with the interpreter (imports included), like `time python train.py`
        t_start = T_START if k == 0 else time.perf_counter()
        results.append(run_once(args, text, args.seed + k, t_start))
    if args.quick:
        return 0
    full = [r["val_full"] for r in results]
    mean_full = statistics.fmean(full)
    spread = f" (std {statistics.stdev(full):.4f}, min {min(full):.4f}, max {max(full):.4f})" if len(full) > 1 else ""
    run_s = statistics.median(r["run_s"] for r in results)
    print(f"\n{len(results)} run(s): mean val loss on the whole validation split {mean_full:.4f}{spread}; "
          f"median start-to-end-of-training time {run_s:.1f} s "
          f"({statistics.median(r['ms_per_step'] for r in results):.0f} ms/step)")
    print(f"nanoGPT reference: val loss {NANOGPT_VAL_LOSS} in {NANOGPT_SECONDS:.0f} s on the same 2-core machine")
    print(f"quality {'MET' if mean_full <= TARGET else 'NOT MET'} (mean whole-split val loss <= {TARGET}); time "
          f"{'MET' if run_s <= NANOGPT_SECONDS else 'NOT MET'} (<= {NANOGPT_SECONDS:.0f} s; only meaningful on a "
          f"quiet machine); time ratio nanoGPT / course = {NANOGPT_SECONDS / run_s:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
