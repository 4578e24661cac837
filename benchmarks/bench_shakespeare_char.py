"""nanoGPT's CPU Shakespeare-char run and the course Trainer, side by side on the same machine.

nanoGPT's README trains a character-level model on a CPU with ``config/train_shakespeare_char.py``
and ``--device=cpu --compile=False --eval_iters=20 --log_interval=1 --block_size=64
--batch_size=12 --n_layer=4 --n_head=4 --n_embd=128 --max_iters=2000 --lr_decay_iters=2000
--dropout=0.0``. This script runs exactly that, from a clone of karpathy/nanoGPT that you give it
(``git clone https://github.com/karpathy/nanoGPT``), and the course `Trainer` on the same
model size (4 layers, 4 heads, 128 wide, context 64) and the same data split (characters,
first 90 % train, last 10 % validation), alternating the two over seeds (A B, then B A, ...).

Each run is a fresh process timed from start to exit, like ``time python train.py``. For both
it reports wall time, ms/step, the loss on 20 validation batches (each tool's own figure) and
the loss over the whole validation split: every non-overlapping 64-character window, computed
by the same function here, on nanoGPT's saved checkpoint and on the course model, outside the
timed run. The whole-split loss is the steadier number: 20 batches of 12 x 64 characters are
15,360 of the split's 111,540 characters. nanoGPT fixes its seed at 1337 in ``train.py``; the
script shifts it by the run's seed offset (a wrapper around ``torch.manual_seed``), nothing else.

Recipes for the course side (model size and data stay nanoGPT's):

- ``nanogpt``: nanoGPT's recipe (lr 1e-3, 100 warm-up steps, cosine to 1e-4 over 2,000 steps,
  betas (0.9, 0.99), weight decay 0.1, clip 1.0, batch 12, evaluation every 250 steps);
- ``course`` (default): the recipe `course train` and notebook 06 use for this size, see
  `RECIPES`; the goal is nanoGPT's mean whole-split loss in at most 1/1.2 of its wall time.

    python benchmarks/bench_shakespeare_char.py --nanogpt ~/nanoGPT --seeds 3
    python benchmarks/bench_shakespeare_char.py                   # the course alone (no nanoGPT path)
    python benchmarks/bench_shakespeare_char.py --recipe nanogpt  # nanoGPT's recipe in the course Trainer
    python benchmarks/bench_shakespeare_char.py --quick [--nanogpt DIR]  # 10 steps each: proves it runs

Tiny Shakespeare comes through `course_lib.data.load_corpus("shakespeare")` (a cached copy,
``COURSE_SHAKESPEARE``, or a download); ``--data FILE`` uses another text file.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import pickle
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BLOCK, N_LAYER, N_HEAD, N_EMBD = 64, 4, 4, 128  # nanoGPT's CPU configuration, kept by both sides
NANOGPT_FLAGS = [
    "config/train_shakespeare_char.py", "--device=cpu", "--compile=False", "--eval_iters=20",
    "--log_interval=1", f"--block_size={BLOCK}", "--batch_size=12", f"--n_layer={N_LAYER}",
    f"--n_head={N_HEAD}", f"--n_embd={N_EMBD}", "--max_iters=2000", "--lr_decay_iters=2000",
    "--dropout=0.0",
]


@dataclass(frozen=True)
class Recipe:
    """What the course side may choose: optimisation and evaluation, not the model or the data."""

    steps: int
    lr: float
    min_lr: float
    warmup: int
    batch_size: int
    eval_interval: int
    beta2: float = 0.99
    weight_decay: float = 0.1


RECIPES = {
    "nanogpt": Recipe(steps=2000, lr=1e-3, min_lr=1e-4, warmup=100, batch_size=12, eval_interval=250),
    "course": Recipe(steps=1500, lr=3e-3, min_lr=1e-4, warmup=100, batch_size=12, eval_interval=1500),
}


# ---------------------------------------------------------------- data, shared by both sides
def char_split(text: str) -> tuple[list[str], np.ndarray, np.ndarray]:
    """nanoGPT's ``data/shakespeare_char/prepare.py``: sorted characters, first 90 % / last 10 %."""
    chars = sorted(set(text))
    stoi = {c: i for i, c in enumerate(chars)}
    ids = np.array([stoi[c] for c in text], dtype=np.uint16)
    n = int(0.9 * len(ids))
    return chars, ids[:n], ids[n:]


@torch.no_grad()
def whole_split_loss(logits_fn, val_ids: np.ndarray, block: int = BLOCK, batch: int = 64) -> float:
    """Mean cross-entropy over every non-overlapping `block` window of the split (each character once)."""
    ids = torch.from_numpy(val_ids.astype(np.int64))
    n = (len(ids) - 1) // block
    x_all = ids[: n * block].view(n, block)  # (n, T)
    y_all = ids[1 : n * block + 1].view(n, block)  # (n, T)
    total, count = 0.0, 0
    for i in range(0, n, batch):
        x, y = x_all[i : i + batch], y_all[i : i + batch]
        logits = logits_fn(x)  # (b, T, V)
        total += F.cross_entropy(logits.flatten(0, 1).float(), y.flatten(), reduction="sum").item()
        count += y.numel()
    return total / count


# ---------------------------------------------------------------- the course side (a worker process)
def course_worker(args: argparse.Namespace) -> dict:
    """Train the course GPT with the chosen recipe; the parent times this whole process."""
    from course_lib.data import TokenDataset, load_corpus
    from course_lib.model import GPT, GPTConfig
    from course_lib.train import TrainConfig, Trainer

    text = _text(args, load_corpus)
    chars, train_ids, val_ids = char_split(text)
    r = recipe_of(args)
    steps = 10 if args.quick else r.steps
    torch.manual_seed(args.seed)
    model = GPT(GPTConfig(vocab_size=len(chars), n_positions=BLOCK, n_embd=N_EMBD, n_layer=N_LAYER,
                          n_head=N_HEAD, dropout=0.0))
    config = TrainConfig(
        batch_size=r.batch_size, seq_len=BLOCK, grad_accum_steps=1, max_steps=steps,
        lr=r.lr, min_lr=r.min_lr, warmup_steps=3 if args.quick else r.warmup,
        weight_decay=r.weight_decay, beta1=0.9, beta2=r.beta2, grad_clip=1.0,
        eval_interval=5 if args.quick else r.eval_interval, eval_batches=2 if args.quick else 20,
        sample_prompt=None, device="cpu", precision="fp32", seed=args.seed, progress=False,
    )
    trainer = Trainer(model, TokenDataset(train_ids, BLOCK, stride=1), TokenDataset(val_ids, BLOCK, stride=1), config)
    t0 = time.perf_counter()
    summary = trainer.fit()
    train_s = time.perf_counter() - t0
    result = {"tool": "course", "seed": args.seed, "recipe": args.recipe + (f" ({args.set})" if args.set else ""),
              "steps": steps,
              "val20": summary["val_loss"], "ms_per_step": train_s / steps * 1000,
              "torch_threads": torch.get_num_threads()}
    # outside the timed part: the parent stops its clock at this line
    print("TRAINED", flush=True)
    model.eval()
    result["val_full"] = whole_split_loss(lambda x: model(x).logits, val_ids)
    return result


def recipe_of(args: argparse.Namespace) -> Recipe:
    """`RECIPES[args.recipe]` with the ``--set name=value,...`` changes applied (for exploring recipes)."""
    r = RECIPES[args.recipe]
    if not args.set:
        return r
    fields = {k: type(v) for k, v in vars(r).items()}
    changes = {}
    for item in args.set.split(","):
        name, _, value = item.partition("=")
        if name not in fields:
            raise SystemExit(f"--set {item!r}: unknown recipe field; valid: {', '.join(fields)}")
        changes[name] = fields[name](float(value)) if fields[name] is int else fields[name](value)
    return Recipe(**{**vars(r), **changes})


def _text(args: argparse.Namespace, load_corpus) -> str:
    text = load_corpus(args.data, verbose=False)
    return text[:20_000] if args.quick else text


# ---------------------------------------------------------------- the nanoGPT side
SEED_WRAPPER = """\
import runpy, sys, torch
_offset = int(sys.argv.pop(1))
_seed = torch.manual_seed
torch.manual_seed = lambda s: _seed(s + _offset)  # train.py seeds 1337 + rank; shift it, nothing else
sys.argv[0] = "train.py"
runpy.run_path("train.py", run_name="__main__")
"""


def nanogpt_workdir(clone: Path, text: str, into: Path) -> Path:
    """A copy of nanoGPT's scripts with the data prepared exactly as its ``prepare.py`` would."""
    for name in ("train.py", "model.py", "configurator.py"):
        if not (clone / name).is_file():
            raise SystemExit(f"--nanogpt {clone}: no {name} there; pass the root of a karpathy/nanoGPT clone")
        shutil.copy2(clone / name, into / name)
    shutil.copytree(clone / "config", into / "config")
    chars, train_ids, val_ids = char_split(text)
    data = into / "data" / "shakespeare_char"
    data.mkdir(parents=True)
    train_ids.tofile(data / "train.bin")
    val_ids.tofile(data / "val.bin")
    with open(data / "meta.pkl", "wb") as f:
        pickle.dump({"vocab_size": len(chars), "itos": dict(enumerate(chars)),
                     "stoi": {c: i for i, c in enumerate(chars)}}, f)
    (into / "run_seeded.py").write_text(SEED_WRAPPER, encoding="utf-8")
    return into


def nanogpt_run(workdir: Path, seed: int, quick: bool, val_ids: np.ndarray) -> dict:
    out = workdir / f"out-{seed}"
    flags = NANOGPT_FLAGS + [f"--out_dir={out}"]
    if quick:
        flags = [f for f in flags if not f.startswith(("--max_iters", "--lr_decay_iters"))]
        flags += ["--max_iters=10", "--lr_decay_iters=10", "--eval_interval=5", "--eval_iters=2", "--warmup_iters=3"]
    cmd = [sys.executable, "run_seeded.py", str(seed - 1337), *flags]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise SystemExit(f"nanoGPT's train.py failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    iters = [float(m) for m in re.findall(r"^iter \d+: loss [\d.]+, time ([\d.]+)ms", proc.stdout, re.M)]
    vals = [float(m) for m in re.findall(r"val loss ([\d.]+)", proc.stdout)]
    steps = 10 if quick else 2000
    result = {"tool": "nanoGPT", "seed": seed, "steps": steps, "wall_s": wall,
              "ms_per_step": statistics.median(iters[1:]) if len(iters) > 1 else float("nan"),
              "val20": vals[-1] if vals else float("nan")}
    result["val_full"] = nanogpt_whole_split_loss(workdir, out, val_ids)
    return result


def nanogpt_whole_split_loss(workdir: Path, out: Path, val_ids: np.ndarray) -> float:
    """Load nanoGPT's checkpoint (its best validation point, as it saves) with nanoGPT's own model.py."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("nanogpt_model", workdir / "model.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # its dataclasses look themselves up there
    spec.loader.exec_module(mod)
    ckpt = torch.load(out / "ckpt.pt", map_location="cpu", weights_only=False)
    with contextlib.redirect_stdout(io.StringIO()):  # its "number of parameters" line
        model = mod.GPT(mod.GPTConfig(**ckpt["model_args"]))
    state = {k.removeprefix("_orig_mod."): v for k, v in ckpt["model"].items()}
    model.load_state_dict(state)
    model.eval()

    def logits(x: torch.Tensor) -> torch.Tensor:
        out, _ = model(x, targets=x)  # with targets, nanoGPT returns the logits of every position
        return out

    return whole_split_loss(logits, val_ids)


def course_run(args: argparse.Namespace, seed: int) -> dict:
    cmd = [sys.executable, __file__, "--_worker", "--seed", str(seed), "--recipe", args.recipe, "--data", args.data,
           "--set", args.set]
    if args.quick:
        cmd.append("--quick")
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    log = []
    for line in proc.stdout:  # the Trainer's own lines, then "TRAINED": the end of the timed run
        if line.startswith("TRAINED"):
            break
        log.append(line)
    wall = time.perf_counter() - t0
    rest, err = proc.communicate()
    if proc.returncode or not rest.strip():
        raise SystemExit(f"the course run failed (exit {proc.returncode}):\n{''.join(log)}{rest}\n{err[-3000:]}")
    result = json.loads(rest.strip().splitlines()[-1])
    result["wall_s"] = wall
    return result


# ---------------------------------------------------------------- report
def report(rows: list[dict], with_nanogpt: bool) -> None:
    print("\n| run | seed | steps | wall s (whole process) | ms/step | val loss, 20 batches | val loss, whole split |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        name = "nanoGPT `train.py`" if r["tool"] == "nanoGPT" else f"course Trainer, recipe `{r['recipe']}`"
        print(f"| {name} | {r['seed']} | {r['steps']} | {r['wall_s']:.1f} | {r['ms_per_step']:.1f} | "
              f"{r['val20']:.4f} | {r['val_full']:.4f} |")
    by = {tool: [r for r in rows if r["tool"] == tool] for tool in ("course", "nanoGPT")}
    summary = {}
    for tool, rs in by.items():
        if rs:
            summary[tool] = (statistics.fmean(r["val_full"] for r in rs), statistics.median(r["wall_s"] for r in rs))
            print(f"{tool}: mean whole-split val loss {summary[tool][0]:.4f} over {len(rs)} seed(s), "
                  f"median wall {summary[tool][1]:.1f} s")
    if not with_nanogpt:
        print("no --nanogpt path: the course alone (clone karpathy/nanoGPT and pass --nanogpt DIR for the ratios)")
        return
    (c_loss, c_wall), (n_loss, n_wall) = summary["course"], summary["nanoGPT"]
    print(f"speed: nanoGPT wall / course wall = {n_wall / c_wall:.2f}x (goal >= 1.2x); "
          f"quality: course {c_loss:.4f} vs nanoGPT {n_loss:.4f} ({'reached' if c_loss <= n_loss else 'NOT reached'})")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nanogpt", type=Path, default=None, help="root of a karpathy/nanoGPT clone")
    ap.add_argument("--data", default="shakespeare", help="a corpus for load_corpus (default: Tiny Shakespeare)")
    ap.add_argument("--recipe", choices=sorted(RECIPES), default="course")
    ap.add_argument("--set", default="", help="change recipe fields, e.g. steps=1200,lr=2e-3 (exploring)")
    ap.add_argument("--seed", type=int, default=1337, help="the first seed (nanoGPT's is 1337)")
    ap.add_argument("--seeds", type=int, default=1, help="runs with seed, seed+1, ...")
    ap.add_argument("--quick", action="store_true", help="10 steps on a slice: proves the script runs")
    ap.add_argument("--json", type=Path, default=None, help="also write the rows here")
    ap.add_argument("--_worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args._worker:
        print(json.dumps(course_worker(args)), flush=True)
        return 0
    if args.nanogpt is not None and not (args.nanogpt / "train.py").is_file():
        ap.error(f"--nanogpt {args.nanogpt}: no train.py there; pass the root of a karpathy/nanoGPT clone")
    from course_lib.data import load_corpus

    text = _text(args, load_corpus)
    _, _, val_ids = char_split(text)
    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}, "
          f"load average {os.getloadavg()[0]:.2f}; recipe {args.recipe}: {recipe_of(args)}", flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = nanogpt_workdir(args.nanogpt, text, Path(tmp)) if args.nanogpt else None
        for k in range(args.seeds):
            seed = args.seed + k
            order = ("course", "nanoGPT") if k % 2 == 0 else ("nanoGPT", "course")
            for tool in order:
                if tool == "nanoGPT" and workdir is None:
                    continue
                row = course_run(args, seed) if tool == "course" else nanogpt_run(workdir, seed, args.quick, val_ids)
                print(f"  {tool} seed {seed}: {row['wall_s']:.1f} s, whole-split val loss {row['val_full']:.4f}",
                      flush=True)
                rows.append(row)
    report(rows, workdir is not None)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
