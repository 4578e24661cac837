"""Train the course's pretrained model: a small GPT-2 on Tiny Shakespeare, the model that ships.

    python scripts/train_course_model.py --out outputs/course_model          # train (resumes if stopped)
    python scripts/train_course_model.py --out outputs/course_model --card  # measure, write the model card

Everything that shapes the model is in `Recipe` below (one place), and the run is the course's
own `Trainer`, so it can be stopped with Ctrl-C and continued with the same command: the
Trainer resumes exactly where it stopped. The split is nanoGPT's: the first 90 % of the
characters train, the last 10 % validate; the tokenizer is trained on the training part only.

**Induction food.** A share of the training windows (`Recipe.repeat_share`) has a span of
random tokens written twice into natural text, the loss counted on the second copy only.
Natural text alone grows induction heads too slowly for a CPU budget; the repeats give the
model the pattern those heads are for. The model card says what they cost in validation loss.

`--card` measures what the model card reports (validation loss per character over the whole
split, induction and previous-token head scores, the ablation effect, samples) and writes
``README.md``, ``results.json``, ``training_log.jsonl`` and ``loss_curve.png`` beside the weights.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from course_lib.data import load_corpus  # noqa: E402
from course_lib.model import GPT, GPTConfig  # noqa: E402
from course_lib.tokenizer import BPETokenizer  # noqa: E402
from course_lib.train import Callback, TrainConfig, Trainer  # noqa: E402


@dataclass(frozen=True)
class Recipe:
    """Every setting of the course model's training run."""

    vocab_size: int = 2048
    n_layer: int = 6
    n_head: int = 8
    n_embd: int = 256
    seq_len: int = 256
    dropout: float = 0.2
    batch_size: int = 16
    lr: float = 1.5e-3
    min_lr: float = 1.5e-4
    warmup_steps: int = 200
    weight_decay: float = 0.1
    beta2: float = 0.99
    max_steps: int = 5_000
    eval_interval: int = 500
    eval_batches: int = 40
    checkpoint_interval: int = 250
    repeat_share: float = 0.15  # share of windows with a random span written twice
    repeat_min: int = 8  # shortest repeated span, tokens
    repeat_max: int = 96  # longest
    val_fraction: float = 0.1  # nanoGPT's split: the last 10 % of the characters
    threads: int = 2
    seed: int = 1337

    def model_config(self) -> GPTConfig:
        return GPTConfig(vocab_size=self.vocab_size, n_positions=self.seq_len, n_embd=self.n_embd,
                         n_layer=self.n_layer, n_head=self.n_head, dropout=self.dropout)

    def train_config(self, out_dir: Path | None, max_steps: int | None = None) -> TrainConfig:
        return TrainConfig(
            batch_size=self.batch_size, seq_len=self.seq_len, max_steps=max_steps or self.max_steps,
            lr=self.lr, min_lr=self.min_lr, warmup_steps=self.warmup_steps, weight_decay=self.weight_decay,
            beta2=self.beta2, eval_interval=self.eval_interval, eval_batches=self.eval_batches,
            sample_prompt="ROMEO:", sample_tokens=48, out_dir=None if out_dir is None else str(out_dir),
            checkpoint_interval=self.checkpoint_interval, device="cpu", precision="fp32", seed=self.seed,
        )


def split_text(text: str, val_fraction: float) -> tuple[str, str]:
    """nanoGPT's split: the first (1 - val_fraction) of the characters train, the rest validate."""
    n = int(len(text) * (1 - val_fraction))
    return text[:n], text[n:]


class ShakespeareWindows(Dataset):
    """Training windows of `seq_len` + 1 tokens: natural text, plus a share with a random span repeated.

    Natural windows start every `seq_len` tokens from an offset that changes each epoch (set
    by `set_epoch`), so the model does not see the same cuts every pass. Repeat windows are a
    natural window with `P` random token ids written at `start` and again at `start + P`; the
    targets inside the first copy are -100 (ignored by the loss: random tokens cannot be
    predicted), the second copy is predictable by looking back: what induction heads do.
    Every item is a pure function of (seed, epoch, index), so a resumed run sees the same data.
    """

    def __init__(self, ids: np.ndarray, recipe: Recipe) -> None:
        self.ids = ids
        self.r = recipe
        T = recipe.seq_len
        self.n_natural = (len(ids) - 1 - T - (T - 1)) // T + 1  # room for any offset in [0, T)
        self.n_repeat = round(self.n_natural * recipe.repeat_share / (1 - recipe.repeat_share))
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.n_natural + self.n_repeat

    def _natural(self, i: int) -> torch.Tensor:
        T = self.r.seq_len
        shift = (self.epoch * 7919 + self.r.seed) % T
        start = shift + i * T
        return torch.from_numpy(self.ids[start : start + T + 1].astype(np.int64))  # (T + 1,)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        if i < self.n_natural:
            w = self._natural(i)
            return w[:-1], w[1:]
        j = i - self.n_natural
        g = torch.Generator().manual_seed(self.r.seed * 1_000_003 + self.epoch * 10_007 + j)
        w = self._natural(int(torch.randint(self.n_natural, (1,), generator=g))).clone()
        T = self.r.seq_len
        P = int(torch.randint(self.r.repeat_min, self.r.repeat_max + 1, (1,), generator=g))
        start = int(torch.randint(0, T + 1 - 2 * P + 1, (1,), generator=g))
        span = torch.randint(0, self.r.vocab_size, (P,), generator=g)
        w[start : start + P] = span
        w[start + P : start + 2 * P] = span
        x, y = w[:-1], w[1:].clone()
        y[max(0, start - 1) : start + P] = -100  # targets in the first copy, and the second copy's first token
        return x, y


class EpochSetter(Callback):
    """Tells the dataset which epoch the next micro-batch belongs to (also after a resume)."""

    def __init__(self, dataset: ShakespeareWindows) -> None:
        self.dataset = dataset

    def _set(self, trainer: Trainer) -> None:
        self.dataset.set_epoch(trainer.micro_batches_done // trainer.steps_per_epoch_micro)

    def on_train_begin(self, trainer: Trainer) -> None:
        self._set(trainer)

    def on_step_end(self, trainer: Trainer, logs: dict) -> None:
        self._set(trainer)


class Snapshots(Callback):
    """Keeps the weights of every evaluation in `folder`/step_N (to pick the step the card reports)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def on_evaluate(self, trainer: Trainer, logs: dict) -> None:
        trainer.model.save_pretrained(self.folder / f"step_{logs['step']}")


class JsonlLog(Callback):
    """Appends every step's and evaluation's numbers to training_log.jsonl (kept across resumes)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.t0 = time.time()

    def _write(self, row: dict) -> None:
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")

    def on_step_end(self, trainer: Trainer, logs: dict) -> None:
        if logs["step"] % 10 == 0:
            self._write({k: (round(v, 5) if isinstance(v, float) else v) for k, v in logs.items()
                         if k in ("step", "loss", "lr", "grad_norm", "tokens_per_s")})

    def on_evaluate(self, trainer: Trainer, logs: dict) -> None:
        self._write({"step": logs["step"], "val_loss": round(logs.get("val_loss", float("nan")), 5),
                     "sample": logs.get("sample"), "time": time.strftime("%Y-%m-%d %H:%M:%S")})


def prepare(recipe: Recipe, work: Path) -> tuple[BPETokenizer, np.ndarray, np.ndarray, str]:
    """The tokenizer (trained on the training text only, saved in `work`) and the encoded split."""
    text = load_corpus("shakespeare", verbose=False)
    train_text, val_text = split_text(text, recipe.val_fraction)
    tok_dir = work / "tokenizer"
    if (tok_dir / "vocab.json").is_file():
        tok = BPETokenizer.load(tok_dir)
    else:
        tok = BPETokenizer.train(train_text, recipe.vocab_size)
        tok.save(tok_dir, model_max_length=recipe.seq_len)
    train_ids = np.asarray(tok.encode(train_text), dtype=np.uint16)
    val_ids = np.asarray(tok.encode(val_text), dtype=np.uint16)
    return tok, train_ids, val_ids, val_text


def train(recipe: Recipe, out: Path, max_steps: int | None = None) -> Trainer:
    """Train (or resume) in `out`/run; the finished model is `out`/run."""
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(recipe.threads)
    (out / "recipe.json").write_text(json.dumps(dataclasses.asdict(recipe), indent=2) + "\n", encoding="utf-8")
    tok, train_ids, val_ids, _ = prepare(recipe, out)
    torch.manual_seed(recipe.seed)
    model = GPT(recipe.model_config())
    data = ShakespeareWindows(train_ids, recipe)
    val = torch.from_numpy(val_ids.astype(np.int64))
    run = out / "run"
    trainer = Trainer(model, data, val, recipe.train_config(run, max_steps), tokenizer=tok,
                      callbacks=[EpochSetter(data), JsonlLog(out / "training_log.jsonl"),
                                 Snapshots(out / "snapshots")])
    if (run / "train_state").is_dir():
        trainer.resume(run)
        print(f"resuming at step {trainer.step:,} of {trainer.total_steps:,}")
    else:
        print(trainer.describe_plan())
    t0 = time.time()
    trainer.fit()
    seconds = time.time() - t0
    times = out / "train_seconds.json"
    done = json.loads(times.read_text()) if times.is_file() else []
    done.append({"seconds": round(seconds, 1), "until_step": trainer.step, "threads": recipe.threads,
                 "torch": torch.__version__, "finished": time.strftime("%Y-%m-%d %H:%M:%S")})
    times.write_text(json.dumps(done, indent=2) + "\n", encoding="utf-8")
    return trainer


@torch.no_grad()
def val_loss_per_char(model: GPT, tok: BPETokenizer, val_ids: np.ndarray, seq_len: int,
                      batch: int = 16) -> dict[str, float]:
    """Loss over the WHOLE validation split: summed token losses / characters those tokens cover.

    Windows of `seq_len` + 1 tokens with stride `seq_len`: every token but the first is a
    target exactly once (the final partial window included).
    """
    model.eval()
    ids = torch.from_numpy(val_ids.astype(np.int64))
    total, n_tok, n_char = 0.0, 0, 0
    starts = list(range(0, len(ids) - 1, seq_len))
    for b in range(0, len(starts), batch):
        for s in starts[b : b + batch]:  # one at a time: the last window is shorter
            w = ids[s : s + seq_len + 1]
            logits = model(w[None, :-1]).logits[0]
            total += float(F.cross_entropy(logits, w[1:], reduction="sum"))
            n_tok += len(w) - 1
            n_char += len(tok.decode(w[1:].tolist()))
    return {"loss_per_char": total / n_char, "loss_per_token": total / n_tok, "tokens": n_tok, "chars": n_char}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=ROOT / "outputs" / "course_model")
    p.add_argument("--max_steps", type=int, default=None, help="stop earlier than the recipe (a test, a try)")
    p.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE", help="change a recipe field")
    p.add_argument("--card", action="store_true", help="measure the trained model and write the model card")
    args = p.parse_args(argv)
    changes = {}
    for item in args.set:
        k, _, v = item.partition("=")
        field = {f.name: f for f in dataclasses.fields(Recipe)}.get(k)
        if field is None:
            p.error(f"--set {item}: {k!r} is not a Recipe field")
        changes[k] = type(getattr(Recipe(), k))(v)
    recipe = Recipe(**changes)
    if args.card:
        raise SystemExit("--card: not written yet")
    train(recipe, args.out, args.max_steps)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
