"""Train the course's pretrained model: a small GPT-2 on Tiny Shakespeare, the model that ships.

    python scripts/train_course_model.py --out outputs/course_model          # train (resumes if stopped)
    python scripts/train_course_model.py --out outputs/course_model --card  # measure, write the model card
    python scripts/train_course_model.py --out outputs/course_model --side outputs/wider  # a recipe tried, for the card

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
`--side DIR` measures another recipe (a run with ``--out DIR --set ...`` and the same tokenizer copied into
DIR/tokenizer) at its best evaluation; the card lists every recipe so tried and not shipped.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import shutil
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
    # phase 1, induction warm-up: the copy task alone (random tokens written twice), low lr, no dropout or decay
    induction_lr: float = 2.5e-4
    induction_batch: int = 32
    induction_period: tuple[int, int] = (12, 24)  # each sequence: P random tokens, the same P again
    induction_max_steps: int = 2_500
    induction_stop_score: float = 0.5  # stop phase 1 once `induction_stop_heads` heads score this much
    induction_stop_heads: int = 2
    # phase 2, language: natural text with a share of repeat windows, cosine schedule
    lr: float = 1e-3
    min_lr: float = 1e-4
    warmup_steps: int = 100
    weight_decay: float = 0.1
    beta2: float = 0.99
    max_steps: int = 4_500
    eval_interval: int = 500
    eval_batches: int = 40
    checkpoint_interval: int = 250
    repeat_share: float = 0.15  # share of phase-2 windows with a random span written twice
    repeat_min: int = 8  # shortest repeated span, tokens
    repeat_max: int = 96  # longest
    # phase 3, induction refresh: the copy task again, on the language model, until the heads are back
    refresh_max_steps: int = 1_000
    refresh_from_step: int = 0  # phase 3 starts from phase 2's snapshot of this step (0: its last step)
    # phase 4, polish: natural text with a share of copy windows (both tasks every step), low constant rate
    polish_steps: int = 200
    polish_lr: float = 1e-4
    polish_copy_share: float = 0.5
    val_fraction: float = 0.1  # nanoGPT's split: the last 10 % of the characters
    threads: int = 2
    seed: int = 1337

    def model_config(self, dropout: float | None = None) -> GPTConfig:
        return GPTConfig(vocab_size=self.vocab_size, n_positions=self.seq_len, n_embd=self.n_embd,
                         n_layer=self.n_layer, n_head=self.n_head,
                         dropout=self.dropout if dropout is None else dropout)

    def induction_config(self, out_dir: Path | None) -> TrainConfig:
        """Phase 1: constant low learning rate (wide models at a high rate learn to copy by position tricks
        or not at all), no weight decay, evaluation only at the end."""
        return TrainConfig(
            batch_size=self.induction_batch, seq_len=2 * self.induction_period[1],
            max_steps=self.induction_max_steps, lr=self.induction_lr, min_lr=self.induction_lr, warmup_steps=50,
            weight_decay=0.0, beta2=self.beta2,
            eval_interval=0, eval_batches=self.eval_batches, sample_prompt="ROMEO:", sample_tokens=48,
            out_dir=None if out_dir is None else str(out_dir), checkpoint_interval=self.checkpoint_interval,
            device="cpu", precision="fp32", seed=self.seed,
        )

    def train_config(self, out_dir: Path | None, max_steps: int | None = None) -> TrainConfig:
        return TrainConfig(
            batch_size=self.batch_size, seq_len=self.seq_len, max_steps=max_steps or self.max_steps,
            lr=self.lr, min_lr=self.min_lr, warmup_steps=self.warmup_steps, weight_decay=self.weight_decay,
            beta2=self.beta2, eval_interval=self.eval_interval, eval_batches=self.eval_batches,
            sample_prompt="ROMEO:", sample_tokens=48, out_dir=None if out_dir is None else str(out_dir),
            checkpoint_interval=self.checkpoint_interval, device="cpu", precision="fp32", seed=self.seed,
        )


DRAFT = dict(n_layer=2, n_head=4, n_embd=128, dropout=0.0, induction_max_steps=0, repeat_share=0.0, lr=2e-3,
             min_lr=2e-4, max_steps=2_000, refresh_max_steps=0, polish_steps=0)
"""The draft model for speculative decoding (notebook 07): the same tokenizer and data, 2 layers x 128,
language only. `--draft` trains it."""


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

    def __init__(self, ids: np.ndarray, recipe: Recipe, repeat_share: float) -> None:
        self.ids = ids
        self.r = recipe
        T = recipe.seq_len
        if repeat_share and 2 * recipe.repeat_max > T:
            sys.exit(f"--set: repeat_max={recipe.repeat_max} written twice does not fit seq_len={T}; use "
                     f"repeat_max <= {T // 2} (and repeat_min <= repeat_max), or repeat_share=0")
        self.n_windows = (len(ids) - 1 - T - (T - 1)) // T + 1  # room for any offset in [0, T)
        if repeat_share >= 1.0:  # every window holds a repeat
            self.n_natural, self.n_repeat = 0, self.n_windows
        else:
            self.n_natural = self.n_windows
            self.n_repeat = round(self.n_windows * repeat_share / (1 - repeat_share))
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
        w = self._natural(int(torch.randint(self.n_windows, (1,), generator=g))).clone()
        T = self.r.seq_len
        P = int(torch.randint(self.r.repeat_min, self.r.repeat_max + 1, (1,), generator=g))
        start = int(torch.randint(0, T + 1 - 2 * P + 1, (1,), generator=g))
        span = torch.randint(0, self.r.vocab_size, (P,), generator=g)
        w[start : start + P] = span
        w[start + P : start + 2 * P] = span
        x, y = w[:-1], w[1:].clone()
        y[max(0, start - 1) : start + P] = -100  # targets in the first copy, and the second copy's first token
        return x, y


class CopyTask(Dataset):
    """Phase 1: sequences of P random token ids written twice (P drawn per sequence), padded with random
    ids to one length; the loss counts only the second copy, from its second token on. The only way to
    predict it is to find the earlier occurrence of the current token and copy what came after it: an
    induction head fed by a previous-token head. Item i is a pure function of (seed, i)."""

    def __init__(self, recipe: Recipe, n: int) -> None:
        self.r = recipe
        self.n = n
        self.length = 2 * recipe.induction_period[1]

    def __len__(self) -> int:
        return self.n

    def set_epoch(self, epoch: int) -> None:  # the same interface as ShakespeareWindows
        self.epoch = epoch

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        g = torch.Generator().manual_seed(self.r.seed * 7_368_787 + i)
        lo, hi = self.r.induction_period
        P = int(torch.randint(lo, hi + 1, (1,), generator=g))
        span = torch.randint(0, self.r.vocab_size, (P,), generator=g)
        pad = torch.randint(0, self.r.vocab_size, (self.length + 1 - 2 * P,), generator=g)
        w = torch.cat([span, span, pad])  # (length + 1,)
        y = w[1:].clone()
        y[:P] = -100  # the first copy and the second copy's first token cannot be predicted
        y[2 * P - 1 :] = -100  # nor the random padding
        return w[:-1], y


class CopyWindows(Dataset):
    """Phase 4: natural windows and, for a share `copy_share`, windows made of copy-task sequences end to end
    (`CopyTask`'s items, cut to `seq_len`), so that every batch trains both the language and the copying."""

    def __init__(self, ids: np.ndarray, recipe: Recipe, copy_share: float) -> None:
        self.natural = ShakespeareWindows(ids, recipe, repeat_share=0.0)
        self.n_copy = round(len(self.natural) * copy_share / (1 - copy_share))
        self.copies = CopyTask(recipe, 10**9)
        self.r = recipe

    def set_epoch(self, epoch: int) -> None:
        self.natural.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.natural) + self.n_copy

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        if i < len(self.natural):
            return self.natural[i]
        j = (i - len(self.natural)) * 8 + self.natural.epoch * 1_000_003
        xs, ys = [], []
        while sum(len(x) for x in xs) < self.r.seq_len:
            x, y = self.copies[j]
            xs.append(x)
            ys.append(y)
            j += 1
        return torch.cat(xs)[: self.r.seq_len], torch.cat(ys)[: self.r.seq_len]


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

    def __init__(self, path: Path, phase: int = 2) -> None:
        self.path = path
        self.phase_number = phase

    def phase(self, number: int) -> JsonlLog:
        """The same log, its rows marked with training phase `number`."""
        return JsonlLog(self.path, number)

    def _write(self, row: dict) -> None:
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")

    def on_step_end(self, trainer: Trainer, logs: dict) -> None:
        if logs["step"] % 10 == 0:
            self._write({"phase": self.phase_number,
                         **{k: (round(v, 5) if isinstance(v, float) else v) for k, v in logs.items()
                            if k in ("step", "loss", "lr", "grad_norm", "tokens_per_s")}})

    def on_evaluate(self, trainer: Trainer, logs: dict) -> None:
        self._write({"phase": self.phase_number, "step": logs["step"],
                     "val_loss": round(logs.get("val_loss", float("nan")), 5),
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


class InductionProbe(Callback):
    """Phase 1: every 100 steps, scores the heads on repeated random tokens; stops once enough are
    induction heads."""

    def __init__(self, recipe: Recipe, log: JsonlLog) -> None:
        self.r = recipe
        self.log = log
        self.scores: list[list[float]] = []

    def on_step_end(self, trainer: Trainer, logs: dict) -> None:
        from course_lib import interp

        if logs["step"] % 100:
            return
        model = trainer.model
        model.eval()
        scores = interp.induction_scores(model, period=20, batch=8, seed=0)  # (L, H)
        model.train()
        best = sorted((float(v) for v in scores.flatten()), reverse=True)
        self.log._write({"phase": self.log.phase_number, "step": logs["step"],
                         "induction_best": [round(v, 3) for v in best[:4]]})
        if best[self.r.induction_stop_heads - 1] >= self.r.induction_stop_score:
            trainer.should_stop = True


def _record_time(out: Path, phase: int, seconds: float, step: int, threads: int) -> None:
    times = out / "train_seconds.json"
    done = json.loads(times.read_text()) if times.is_file() else []
    done.append({"phase": phase, "seconds": round(seconds, 1), "until_step": step, "threads": threads,
                 "torch": torch.__version__, "finished": time.strftime("%Y-%m-%d %H:%M:%S")})
    times.write_text(json.dumps(done, indent=2) + "\n", encoding="utf-8")


def _fit(trainer: Trainer, run: Path) -> float:
    if (run / "train_state").is_dir():
        trainer.resume(run)
        print(f"resuming at step {trainer.step:,} of {trainer.total_steps:,}")
    else:
        print(trainer.describe_plan())
    t0 = time.time()
    trainer.fit()
    return time.time() - t0


def _copy_phase(recipe: Recipe, out: Path, phase: int, start: Path | None, most: int, max_steps: int | None,
                tok: BPETokenizer, log: JsonlLog) -> Trainer | None:
    """Phases 1 and 3: the copy task (from scratch, or from the model in `start`) in out/phase{phase}, until the
    probe sees enough induction heads or `most` steps; None when it is already done."""
    folder, done = out / f"phase{phase}", out / f"phase{phase}" / "done.json"
    if done.is_file():
        return None
    model = GPT(recipe.model_config(dropout=0.0))
    if start is not None:
        model.load_state_dict(GPT.from_pretrained(start).state_dict())
    data = CopyTask(recipe, recipe.induction_batch * most)
    cfg = recipe.induction_config(folder).replace(max_steps=min(max_steps or most, most))
    trainer = Trainer(model, data, None, cfg, tokenizer=tok,
                      callbacks=[log.phase(phase), InductionProbe(recipe, log.phase(phase))])
    seconds = _fit(trainer, folder)
    if trainer.interrupted:
        return trainer
    trainer.save_checkpoint(folder)
    _record_time(out, phase, seconds, trainer.step, recipe.threads)
    done.write_text(json.dumps({"steps": trainer.step}) + "\n", encoding="utf-8")
    return trainer


def recipe_json(recipe: Recipe) -> dict:
    """The recipe as recipe.json holds it (tuples as JSON lists), to compare with one read back."""
    return json.loads(json.dumps(dataclasses.asdict(recipe)))


def recipe_changes(before: dict, now: dict, ignore: tuple[str, ...] = ("threads",)) -> dict[str, list]:
    """{field: [before, now]} for every recipe field that differs, but those in `ignore` (shaping nothing)."""
    return {k: [before.get(k), v] for k, v in now.items() if k not in ignore and before.get(k) != v}


def _record_changes(out: Path, recipe: Recipe) -> None:
    """Write recipe.json (the recipe of this sitting); a field changed since the last sitting (``--set`` on a
    resume) is added to recipe_changes.json with the phase-2 step it took effect at, so the card can say."""
    now = recipe_json(recipe)
    path = out / "recipe.json"
    if path.is_file():
        changed = recipe_changes(json.loads(path.read_text(encoding="utf-8")), now)
        if changed:
            state = out / "run" / "train_state" / "trainer.json"
            step = json.loads(state.read_text())["step"] if state.is_file() else 0
            log = out / "recipe_changes.json"
            rows = json.loads(log.read_text(encoding="utf-8")) if log.is_file() else []
            rows.append({"phase_2_step": step, "changed": changed, "time": time.strftime("%Y-%m-%d %H:%M:%S")})
            log.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    path.write_text(json.dumps(now, indent=2) + "\n", encoding="utf-8")


def train(recipe: Recipe, out: Path, max_steps: int | None = None) -> Trainer:
    """Phase 1 in `out`/phase1, then phase 2 in `out`/run (the finished model); each resumes where it stopped."""
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(recipe.threads)
    _record_changes(out, recipe)
    tok, train_ids, val_ids, _ = prepare(recipe, out)
    val = torch.from_numpy(val_ids.astype(np.int64))
    log = JsonlLog(out / "training_log.jsonl")

    phase1 = out / "phase1"
    if recipe.induction_max_steps:
        torch.manual_seed(recipe.seed)
        trainer = _copy_phase(recipe, out, 1, None, recipe.induction_max_steps, max_steps, tok, log)
        if trainer is not None and trainer.interrupted:
            return trainer

    run = out / "run"
    torch.manual_seed(recipe.seed)
    model = GPT(recipe.model_config())
    if recipe.induction_max_steps and not (run / "train_state").is_dir():
        model.load_state_dict(GPT.from_pretrained(phase1).state_dict())
    data = ShakespeareWindows(train_ids, recipe, repeat_share=recipe.repeat_share)
    trainer = Trainer(model, data, val, recipe.train_config(run, max_steps), tokenizer=tok,
                      callbacks=[EpochSetter(data), log.phase(2), Snapshots(out / "snapshots")])
    seconds = _fit(trainer, run)
    _record_time(out, 2, seconds, trainer.step, recipe.threads)
    if trainer.interrupted or max_steps is not None and max_steps < recipe.max_steps and not recipe.polish_steps:
        return trainer

    # Phase 3: natural text wore the induction heads away; the copy task brings them back in a few hundred steps.
    phase3 = out / "phase3"
    if recipe.refresh_max_steps:
        trainer = _copy_phase(recipe, out, 3, language_model(recipe, out), recipe.refresh_max_steps, max_steps, tok,
                              log)
        if trainer is not None and trainer.interrupted:
            return trainer

    # Phase 4: the language back (the copy task alone forgets it), copy windows in every batch keep the heads.
    if recipe.polish_steps:
        polish = out / "polish"
        model = GPT(recipe.model_config(dropout=0.0))
        if not (polish / "train_state").is_dir():
            model.load_state_dict(GPT.from_pretrained(phase3 if recipe.refresh_max_steps else language_model(
                recipe, out)).state_dict())
        data = CopyWindows(train_ids, recipe, recipe.polish_copy_share)
        cfg = recipe.train_config(polish, min(max_steps or 10**9, recipe.polish_steps)).replace(
            lr=recipe.polish_lr, min_lr=recipe.polish_lr, warmup_steps=1, eval_interval=recipe.polish_steps)
        trainer = Trainer(model, data, val, cfg, tokenizer=tok, callbacks=[EpochSetter(data), log.phase(4)])
        seconds = _fit(trainer, polish)
        _record_time(out, 4, seconds, trainer.step, recipe.threads)
    return trainer


def language_model(recipe: Recipe, out: Path) -> Path:
    """Phase 2's model that phases 3 and 4 build on: its last step, or the snapshot `refresh_from_step`
    (the evaluation with the lowest validation loss, when phase 2 ran past it)."""
    return out / "snapshots" / f"step_{recipe.refresh_from_step}" if recipe.refresh_from_step else out / "run"


def final_dir(recipe: Recipe, out: Path) -> Path:
    """The folder of the finished model: the last phase the recipe has."""
    return out / "polish" if recipe.polish_steps else out / "run"


@torch.no_grad()
def val_loss_per_char(model: GPT, tok: BPETokenizer, val_ids: np.ndarray, seq_len: int,
                      batch: int = 16) -> dict[str, float]:
    """Loss over the WHOLE validation split: summed token losses / characters those tokens cover.

    Windows of `seq_len` + 1 tokens with stride `seq_len`: every token but the first is a
    target exactly once (the final partial window included).
    """
    model.eval()
    ids = torch.from_numpy(val_ids.astype(np.int64))
    windows = [ids[s : s + seq_len + 1] for s in range(0, len(ids) - 1, seq_len)]
    total, n_tok, n_char = 0.0, 0, 0
    for b in range(0, len(windows), batch):
        group = windows[b : b + batch]
        same = [w for w in group if len(w) == seq_len + 1]
        rest = [w for w in group if len(w) != seq_len + 1]  # the last, shorter window
        parts = ([torch.stack(same)] if same else []) + [w[None] for w in rest]
        for w in parts:  # (b, T + 1)
            logits = model(w[:, :-1]).logits
            total += float(F.cross_entropy(logits.flatten(0, 1), w[:, 1:].flatten(), reduction="sum"))
            n_tok += w[:, 1:].numel()
            n_char += sum(len(tok.decode(row.tolist())) for row in w[:, 1:])
    return {"loss_per_char": total / n_char, "loss_per_token": total / n_tok, "tokens": n_tok, "chars": n_char}


# --------------------------------------------------------------------------- what the model card reports
SHIPPED = ROOT / "course_lib" / "assets" / "shakespeare-gpt2"
MODEL_FILES = ("config.json", "model.safetensors", "vocab.json", "merges.txt", "tokenizer_config.json",
               "special_tokens_map.json")


@torch.no_grad()
def measure(model: GPT, tok: BPETokenizer, val_ids: np.ndarray, recipe: Recipe) -> dict:
    """Every figure of the model card, measured on `model` (eval mode, CPU)."""
    from course_lib import interp
    from course_lib.generate import DecodingSettings, generate

    model.eval()
    results: dict = {"parameters": model.num_parameters(), "vocab_size": recipe.vocab_size,
                     "context": recipe.seq_len}
    results["validation"] = val_loss_per_char(model, tok, val_ids, recipe.seq_len)
    ind = interp.induction_scores(model, period=20, batch=16, seed=0)  # (L, H)
    val = torch.from_numpy(val_ids[: 8 * recipe.seq_len].astype(np.int64)).view(8, recipe.seq_len)
    prev = interp.previous_token_scores(model, val)  # (L, H) on Shakespeare text
    results["induction_scores"] = [[round(float(v), 4) for v in row] for row in ind]
    results["previous_token_scores"] = [[round(float(v), 4) for v in row] for row in prev]
    rand = interp.previous_token_scores(model, interp.repeated_tokens(recipe.vocab_size, 20, 16, seed=0))  # (L, H)
    results["previous_token_scores_random"] = [[round(float(v), 4) for v in row] for row in rand]
    induction = [(la, h) for la, h, s in interp.ranked_heads(ind, k=ind.numel()) if s >= 0.4]
    results["induction_heads"] = [[la, h, round(float(ind[la, h]), 4)] for la, h in induction]
    results["best_previous_token_head"] = list(interp.ranked_heads(prev, k=1)[0])
    period = 20  # inside the lengths the copy task trained (induction_period); see copy_by_period for others
    ids = interp.repeated_tokens(recipe.vocab_size, period, batch=32, seed=1)
    control = interp.random_head(recipe.n_layer, recipe.n_head, exclude=induction, seed=0)
    losses = interp.ablation_losses(model, ids, period, {"induction heads": induction or [(0, 0)],
                                                         "random other head": [control]})
    results["ablation"] = {"period": period, "rows": 32, "control_head": list(control),
                           **{k: round(v, 4) for k, v in losses.items()}}
    results["copy_by_period"] = {  # loss on the repeated half, nothing ablated: how far the copying reaches
        str(p): round(interp.repeated_half_loss(model, interp.repeated_tokens(recipe.vocab_size, p, batch=16,
                                                                              seed=1), p), 4)
        for p in (12, 20, 24, 32, 48, 96) if 2 * p <= recipe.seq_len}
    prompt = tok.encode("ROMEO:")
    samples = {}
    for name, settings in {"greedy": DecodingSettings(),
                           "top_k=40, temperature 0.8, seed 0": DecodingSettings(do_sample=True, top_k=40,
                                                                                 temperature=0.8)}.items():
        out = generate(model, prompt, 120, settings, seed=0)
        samples[name] = tok.decode(out[0].tolist())
    results["samples"] = samples
    return results


def loss_curve(log: Path, figure: Path, recipe: Recipe, chars_per_token: float) -> None:
    """Training loss (smoothed) and validation loss per token, the phases one after another, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    rows = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    names = {1: "1: copy task", 2: "2: language", 3: "3: copy task again", 4: "4: both"}
    fig = Figure(figsize=(8, 4), layout="constrained")
    ax = fig.add_subplot(1, 1, 1)
    offset, top = 0, 8.0
    for phase in sorted({r.get("phase", 2) for r in rows}):
        mine = [r for r in rows if r.get("phase", 2) == phase]
        train = [(r["step"], r["loss"]) for r in mine if "loss" in r]
        val = [(r["step"], r["val_loss"]) for r in mine if "val_loss" in r]
        last = max([s for s, _ in train + val] or [0])
        if train:
            xs, ys = zip(*train)
            k = 10
            smooth = [sum(ys[max(0, i - k):i + 1]) / len(ys[max(0, i - k):i + 1]) for i in range(len(ys))]
            ax.plot([offset + x for x in xs], smooth, lw=1, label=f"phase {names.get(phase, phase)} (training)")
        if val:
            vx, vy = zip(*val)
            ax.plot([offset + x for x in vx], vy, "o", color="black", ms=4,
                    label="validation (Trainer's evaluation)" if offset == 0 or phase == 2 else None)
        if offset:
            ax.axvline(offset, color="grey", lw=0.5)
        if phase == 2 and recipe.refresh_from_step:
            ax.axvline(offset + recipe.refresh_from_step, color="black", ls="--", lw=1,
                       label=f"phases 3-4 start from phase 2's step {recipe.refresh_from_step:,}")
        offset += last
    ax.set_xlabel(f"optimizer steps, the phases one after another (phase 2 and 4: {recipe.batch_size} x "
                  f"{recipe.seq_len} tokens)")
    ax.set_ylabel("cross-entropy, nats per token")
    ax.set_ylim(0, top)
    sec = ax.secondary_yaxis("right", functions=(lambda y: y / chars_per_token, lambda y: y * chars_per_token))
    sec.set_ylabel("nats per character (validation text)")
    ax.legend(fontsize=8)
    ax.set_title(f"course model: Tiny Shakespeare, {recipe.n_layer} layers x {recipe.n_embd}")
    fig.savefig(figure, dpi=110)


def export(out: Path, source: Path, dest: Path) -> None:
    """Copy the model folder's files the course ships (weights, config, tokenizer) to `dest`."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in MODEL_FILES[:2]:
        shutil.copy2(source / name, dest / name)


def _table(scores: list[list[float]]) -> str:
    H = len(scores[0])
    lines = ["| layer | " + " | ".join(f"head {h}" for h in range(H)) + " |", "|---|" + "---|" * H]
    lines += [f"| {la} | " + " | ".join(f"{v:.2f}" for v in row) + " |" for la, row in enumerate(scores)]
    return "\n".join(lines)


def write_card(dest: Path, recipe: Recipe, results: dict) -> None:
    """The model card, README.md, from the recipe and the measured results."""
    v = results["validation"]
    ab = results["ablation"]
    heads = ", ".join(f"L{la}H{h} ({s:.2f})" for la, h, s in results["induction_heads"]) or "none"
    pl, ph, ps = results["best_previous_token_head"]
    times = results["training"]
    r = dataclasses.asdict(recipe)
    recipe_rows = "\n".join(f"| `{k}` | {val} |" for k, val in r.items())
    samples = "\n\n".join(f"*{name}*, from `ROMEO:`:\n\n```text\n{text}\n```"
                            for name, text in results["samples"].items())
    per_token = f"{v['loss_per_token']:.4f} per token; {v['tokens']:,} tokens covering {v['chars']:,} characters"
    control = f"{ab['random other head']:.3f} nats ({ab['random other head'] - ab['none']:+.3f})"
    reach = ", ".join(f"{p}: {v:.2f}" for p, v in results.get("copy_by_period", {}).items())
    draft = not recipe.induction_max_steps
    intro = (f"The draft of `shakespeare-gpt2` for speculative decoding (notebook 07): a GPT-2-architecture model "
             f"(`model_type: gpt2`) with {results['parameters']:,} parameters and the same tokenizer, trained on the "
             "same text, language only. It proposes tokens that the course model checks."
             if draft else
             f"A GPT-2-architecture model (`model_type: gpt2`) with {results['parameters']:,} parameters, trained from "
             "scratch on Tiny Shakespeare with a 2,048-token byte-level BPE tokenizer that the course trains itself. "
             "It ships with the course so that every notebook has a real, pretrained model offline: it writes text "
             "that reads like Shakespeare, it has induction heads, and it can be fine-tuned. Online, the notebooks use "
             "OpenAI's GPT-2 instead.")
    phases = "**Phases.** Natural text alone grows induction heads too slowly for a CPU budget (a 15-minute model " \
        "had none, best score 0.03; a first try of this recipe without phase 1 had none after 1,500 steps, best " \
        "0.04), and wide models at a high learning rate learn to copy by position tricks instead. So:\n\n" + \
        _phase_story(results.get("phases", {}), recipe, results.get("recipe_changes", []),
                     results.get("phase_costs", {})) if not draft else (
        f"The **draft** of the course model, for speculative decoding (notebook 07): the same tokenizer and data, "
        f"language only (natural text, AdamW lr {recipe.lr:g} with warm-up and cosine decay to {recipe.min_lr:g}, "
        f"{recipe.max_steps:,} steps), no induction phases: it only has to guess the easy tokens fast.\n")
    text = f"""---
license: mit
language: en
library_name: transformers
pipeline_tag: text-generation
tags: [gpt2, tiny-shakespeare, induction-heads, education]
---

# {dest.name}: the course's own small GPT-2

{intro}

```python
from transformers import GPT2LMHeadModel, GPT2TokenizerFast, pipeline
model = GPT2LMHeadModel.from_pretrained(FOLDER)       # FOLDER: this folder
tokenizer = GPT2TokenizerFast.from_pretrained(FOLDER)
pipeline("text-generation", model=FOLDER)("ROMEO:", max_new_tokens=40)
```

In the course: `course_lib.pretrained.load_course_model({'draft=True' if draft else ''})`, or `course generate
--model_dir {'course-draft' if draft else 'course'}`.

## Results (measured by `python scripts/train_course_model.py --card`)

| | |
|---|---|
| validation loss, whole split | **{v['loss_per_char']:.4f} nats per character** ({per_token}) |
| induction heads (score >= 0.4) | {heads} |
| best previous-token head on Shakespeare | L{pl}H{ph} ({ps:.2f}) |
| loss on the repeated half, nothing ablated | {ab['none']:.3f} nats |
| ... induction heads ablated (zeroed) | {ab['induction heads']:.3f} nats ({ab['induction heads'] - ab['none']:+.3f}) |
| ... one random other head ablated (L{ab['control_head'][0]}H{ab['control_head'][1]}) | {control} |
| loss on the repeated half by repeat length (tokens: nats) | {reach} |

The validation loss is nanoGPT's measure made comparable across tokenizers: the summed cross-entropy of every
validation token (windows of {recipe.seq_len} tokens, each token a target once) divided by the number of characters
those tokens cover. nanoGPT's character-level Shakespeare model reaches 1.47 on a GPU (1.88 with its CPU settings).
The split is nanoGPT's: the first 90 % of the characters train (and train the tokenizer), the last 10 % validate.

Induction score: on {16} rows of 20 random tokens written twice, the mean attention from each token of the second
copy to the token after its earlier occurrence (`course_lib.interp.induction_scores`). Previous-token score: mean
attention from each token to the one before it, on 8 windows of validation text. Ablation: the loss on the second
copy of 32 rows of {ab['period']} random tokens written twice (`interp.repeated_half_loss`), with the output of the
heads set to zero (`interp.ablate_heads`); a uniform guess costs ln {recipe.vocab_size:,} =
{math.log(recipe.vocab_size):.2f} nats. The copying reaches as far as the copy task taught it: repeats of
{recipe.induction_period[0]} to {recipe.induction_period[1]} tokens are copied, longer ones (32 and more) are not
(their loss stays near a uniform guess's): the heads find the earlier occurrence only within the distances they
trained on.

Induction scores, layer x head:

{_table(results['induction_scores'])}

Previous-token scores on Shakespeare, layer x head:

{_table(results['previous_token_scores'])}

## Samples

{samples}

## How it was trained

`scripts/train_course_model.py` (the recipe below, the course's own `Trainer`, resumable with the same command),
on {times['where']}, in {times['hours']:.2f} hours of training over {times['sittings']} sittings, every phase
included (the shipped model builds on {times['steps']:,} language steps of {recipe.batch_size} x {recipe.seq_len}
tokens). The log of every 10th step and every evaluation is `training_log.jsonl`; `loss_curve.png` draws it.

![loss curve](loss_curve.png)

{phases}
| setting | value |
|---|---|
{recipe_rows}

Architecture: GPT-2's (learned positions, pre-LayerNorm blocks, GELU MLP, tied embedding and head, biases), the
course's `GPT` with `GPTConfig(vocab_size={recipe.vocab_size}, n_positions={recipe.seq_len}, n_embd={recipe.n_embd},
n_layer={recipe.n_layer}, n_head={recipe.n_head})`, saved in Hugging Face's format (`GPT.save_pretrained`).
{_side_runs(results)}
## Data and license

Tiny Shakespeare (`data/tinyshakespeare.txt`, 1,115,394 bytes, from Andrej Karpathy's char-rnn; see
`data/README.md`): extracts of Shakespeare's plays, in the public domain. The weights are released under the
course's MIT license.

## Against the targets it was trained for

{_targets(results) if not draft else "The draft has no targets of its own: it only has to propose tokens fast."}

## Limits

A 1-MB corpus and {results['parameters'] / 1e6:.1f}M parameters: it knows the vocabulary, the layout (speaker names,
verse lines) and the rhythm of the plays, not their sense; it repeats itself under greedy decoding; it knows
nothing outside the plays. Its context is {recipe.seq_len} tokens (about {recipe.seq_len * v['chars'] // v['tokens']}
characters).
"""
    (dest / "README.md").write_text(text, encoding="utf-8")


def _tried(sides: list[dict], own: float | None) -> str:
    """One sentence on the recipes tried and not shipped, for the card's why-not paragraph (`own`: this model's
    phase-2 loss per character, to compare)."""
    if not sides:
        return ""
    low = min(sides, key=lambda s: s["loss_per_char"])
    than = f" against this model's phase 2's {own:.3f}" if own else ""
    rose = all(s["evaluations"][-1][1] - min(v for _, v in s["evaluations"]) >= 0.01 for s in sides)  # nats/token
    after = ", each at an evaluation after which its validation loss rose too" if rose else ""
    return (f" The other recipes tried (the table under *How it was trained*) reached {low['loss_per_char']:.3f} at "
            f"best ({_changes(low)}){than}{after}.")


def _targets(r: dict) -> str:
    """The course's targets for this model (issue 26 of its tracker), what it measures, and which it meets."""
    ab, loss, prev = r["ablation"], r["validation"]["loss_per_char"], r["best_previous_token_head"][2]
    rise, other = ab["induction heads"] - ab["none"], ab["random other head"] - ab["none"]
    rows = [("validation loss per character", "<= 1.45", f"{loss:.3f}", loss <= 1.45),
            ("induction heads scoring >= 0.4", ">= 2", str(len(r["induction_heads"])), len(r["induction_heads"]) >= 2),
            ("best previous-token head on Shakespeare", ">= 0.4", f"{prev:.2f}", prev >= 0.4),
            ("loss rise, induction heads ablated", ">= 1 nat", f"{rise:+.2f} nats", rise >= 1),
            ("loss change, a random other head ablated", "barely (< 0.2 nat)", f"{other:+.2f} nats", abs(other) < 0.2)]
    table = ["| | target | measured | met |", "|---|---|---|---|",
             *(f"| {name} | {target} | {value} | {'yes' if met else '**no**'} |" for name, target, value, met in rows)]
    why = []
    if loss > 1.45:
        tried = _tried(r.get("side_runs", []), r.get("phase_costs", {}).get("language"))
        why.append(f"phase 2's validation loss was lowest at step {r['training']['steps']:,} and rose after it while "
                   "the training loss kept falling (the evaluations above): the model began to learn the 1-MB text "
                   f"by heart.{tried} What is left to try wants a GPU's hours: a search over "
                   "the regularisation (dropout, weight decay) and the tokenizer's size.")
    if prev < 0.4:
        layer0 = r.get("previous_token_scores_random", [[0.0]])[0]
        why.append(f"The layer-0 heads share the previous-token job on random tokens (each puts {min(layer0):.2f} "
                   f"to {max(layer0):.2f} of its attention on the token before) rather than one head doing it, and "
                   "on Shakespeare they look elsewhere.")
    return "\n".join(table) + ("\n\nNot met, and why as far as measured: " + " ".join(why) if why else "")


def _phase_story(p: dict, recipe: Recipe, changes: list[dict], costs: dict) -> str:
    """The four phases in words, with what the training log measured in each, and the recipe changes
    made between sittings (recipe_changes.json)."""
    first = dataclasses.asdict(recipe)
    for row in reversed(changes):  # undo them, latest first: the recipe phase 2 started with
        first.update({k: old for k, (old, _) in row["changed"].items()})
    phase2 = ("dropout", "max_steps", "repeat_share", "lr", "min_lr", "warmup_steps", "weight_decay", "beta2",
              "batch_size", "repeat_min", "repeat_max")
    later = "".join(
        f" From step {row['phase_2_step']:,} on (a later sitting, `--set` on the resume; the cosine schedule "
        f"recomputed for the new length): " + ", ".join(f"{k} {a} -> {b}" for k, (a, b) in row["changed"].items()
                                                      if k in phase2) + "."
        for row in changes if set(row["changed"]) & set(phase2))
    vals = p.get("2", {}).get("val", [])
    evals = (" Its evaluations (validation loss per token, 40 batches): "
             + ", ".join(f"step {st:,}: {v:.3f}" for st, v in vals) + ".") if vals else ""
    cost = (f"; the two copy phases cost the language {costs['final'] - costs['language']:+.3f} nats per character "
            f"({costs['language']:.3f} -> {costs['final']:.3f})" if "final" in costs else "")
    since = (f" of step {recipe.refresh_from_step:,} (phase 2's evaluation with the lowest validation loss; it "
             "overfitted after it)" if recipe.refresh_from_step else "")
    rise = (f" (the validation loss goes from {costs['language']:.3f} to {costs['copy']:.3f} nats per character)"
            if costs else "")
    def best(phase: int) -> str:
        row = p.get(str(phase), {})
        return f"{row['steps']:,} steps, best induction scores {', '.join(f'{v:.2f}' for v in row['best'][:2])}" \
            if row.get("best") else "not run"
    return (
        f"1. **Copy task** (phase 1): sequences of {recipe.induction_period[0]} to {recipe.induction_period[1]} random "
        f"token ids written twice, the loss on the second copy only, lr {recipe.induction_lr:g} constant, no dropout "
        f"or weight decay, until two heads score {recipe.induction_stop_score}: {best(1)}.\n"
        f"2. **Language** (phase 2): natural text windows, {first['repeat_share']:.0%} of them with a span of "
        f"{recipe.repeat_min} to {recipe.repeat_max} random ids written twice, AdamW lr {recipe.lr:g} with warm-up and "
        f"cosine decay to {recipe.min_lr:g}, dropout {first['dropout']}, {first['max_steps']:,} steps.{later} It wears "
        f"the induction heads away: 500 steps in, no head scored above 0.05.{evals}\n"
        f"3. **Copy task again** (phase 3), from the language model{since}, as in phase 1: {best(3)}. The copying "
        f"comes back fast, but the language suffers{rise}.\n"
        f"4. **Both at once** (phase 4): {recipe.polish_steps} steps at a constant lr {recipe.polish_lr:g}, no "
        f"dropout, every batch {1 - recipe.polish_copy_share:.0%} natural text and {recipe.polish_copy_share:.0%} "
        f"copy-task sequences end to end: the language comes back and the heads stay (the results above){cost}.\n")


def _phases_from_log(log: Path) -> dict:
    """Per phase, the steps it ran and the last induction scores the probe logged."""
    out: dict[str, dict] = {}
    for line in log.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        entry = out.setdefault(str(row.get("phase")), {"steps": 0})
        entry["steps"] = max(entry["steps"], row.get("step", 0))
        if "induction_best" in row:
            entry["best"] = row["induction_best"]
        if "val_loss" in row:
            entry.setdefault("val", []).append([row["step"], row["val_loss"]])
    return out


# --------------------------------------------------------------------------- recipes tried and not shipped
SIDE_RUN_NOISE = ("threads", "eval_interval", "checkpoint_interval", "eval_batches", "refresh_from_step")
"""Fields a side run may change without changing what it learns: the card does not list them."""


def side_run(recipe: Recipe, out: Path, side: Path) -> dict:
    """Measure `side`, another run of this script (``--out SIDE --set ...``, the tokenizer of `out` copied into it),
    and record it in `out`/side_runs.json for the card: the fields it changed, its phase-2 evaluations, and the
    loss per character over the whole validation split at its best one (phase 2 only: a recipe is judged by its
    language before any copy phase)."""
    tok, _, val_ids, _ = prepare(recipe, out)
    for name in ("vocab.json", "merges.txt"):
        if (side / "tokenizer" / name).read_bytes() != (out / "tokenizer" / name).read_bytes():
            sys.exit(f"--side {side}: its tokenizer/{name} differs from {out}'s; copy {out / 'tokenizer'} into it "
                     "before training it, or the losses do not compare")
    theirs = json.loads((side / "recipe.json").read_text(encoding="utf-8"))
    ours = out / "recipe.json"  # the recipe of the shipped run's last sitting
    mine = json.loads(ours.read_text(encoding="utf-8")) if ours.is_file() else recipe_json(recipe)
    phase2 = _phases_from_log(side / "training_log.jsonl").get("2", {})
    if not phase2.get("val"):
        sys.exit(f"--side {side}: its phase 2 has no evaluation yet (training_log.jsonl); train it further first")
    best = min(phase2["val"], key=lambda e: e[1])[0]
    model = GPT.from_pretrained(side / "snapshots" / f"step_{best}")
    loss = val_loss_per_char(model, tok, val_ids, int(theirs["seq_len"]))["loss_per_char"]
    row = {"name": side.name, "changed": recipe_changes(mine, theirs, SIDE_RUN_NOISE),
           "parameters": model.num_parameters(), "steps_run": phase2["steps"],
           "evaluations": phase2["val"], "best_step": best, "loss_per_char": round(loss, 4)}
    path = out / "side_runs.json"
    done = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else []
    done = [r for r in done if r["name"] != row["name"]] + [row]
    path.write_text(json.dumps(done, indent=2) + "\n", encoding="utf-8")
    return row


def _changes(row: dict) -> str:
    return ", ".join(f"{k} {a} -> {b}" for k, (a, b) in row["changed"].items()) or "nothing"


def _side_runs(results: dict) -> str:
    """The card's table of the recipes tried and not shipped (side_runs.json)."""
    sides = results.get("side_runs", [])
    if not sides:
        return ""
    own = results.get("phase_costs", {}).get("language")
    against = f" This model's phase 2, at the step the copy phases started from: {own:.3f}." if own else ""
    lines = [f"| {_changes(r)} | {r['parameters'] / 1e6:.1f}M | {r['steps_run']:,} | {r['best_step']:,} "
             f"({min(v for _, v in r['evaluations']):.3f} per token) | {r['loss_per_char']:.3f} |" for r in sides]
    return ("\n**Other recipes tried, not shipped.** Each is a run of `scripts/train_course_model.py` with the same "
            "tokenizer, split and machine (`--out DIR --set ...`), phase 2 only (stopped by hand once its validation "
            "loss rose, or at the end of its schedule), measured with `--side DIR`: the loss per character over "
            f"the whole validation split at its best evaluation.{against}\n\n"
            "| changed from the recipe above | parameters | steps run | best evaluation at step | loss per character "
            "there |\n|---|---|---|---|---|\n" + "\n".join(lines) + "\n")


def card(recipe: Recipe, out: Path, dest: Path, step: int | None, where: str) -> dict:
    """Measure the trained model in `out` and write the shipped folder `dest` with its model card."""
    torch.set_num_threads(recipe.threads)
    tok, _, val_ids, _ = prepare(recipe, out)
    source = final_dir(recipe, out) if step is None else out / "snapshots" / f"step_{step}"
    model = GPT.from_pretrained(source)
    results = measure(model, tok, val_ids, recipe)
    times = json.loads((out / "train_seconds.json").read_text()) if (out / "train_seconds.json").is_file() else []
    state = json.loads((out / "run" / "train_state" / "trainer.json").read_text()) \
        if (out / "run" / "train_state" / "trainer.json").is_file() else {}
    results["phases"] = _phases_from_log(out / "training_log.jsonl")
    changes = out / "recipe_changes.json"
    results["recipe_changes"] = json.loads(changes.read_text(encoding="utf-8")) if changes.is_file() else []
    if step is None and (out / "phase3" / "model.safetensors").is_file():  # what phase 3 costs the language
        results["phase_costs"] = {
            name: round(val_loss_per_char(GPT.from_pretrained(folder), tok, val_ids, recipe.seq_len)
                        ["loss_per_char"], 4)
            for name, folder in (("language", language_model(recipe, out)), ("copy", out / "phase3"))}
        results["phase_costs"]["final"] = round(results["validation"]["loss_per_char"], 4)
    results["training"] = {"where": where, "hours": sum(t["seconds"] for t in times) / 3600,
                           "sittings": len(times),
                           "steps": step or recipe.refresh_from_step or state.get("step", recipe.max_steps),
                           "torch": torch.__version__}
    sides = out / "side_runs.json"
    results["side_runs"] = json.loads(sides.read_text(encoding="utf-8")) if sides.is_file() else []
    dest.mkdir(parents=True, exist_ok=True)
    export(out, source, dest)
    for name in MODEL_FILES[2:]:  # the tokenizer files, written by BPETokenizer.save
        shutil.copy2(out / "tokenizer" / name, dest / name)
    shutil.copy2(out / "training_log.jsonl", dest / "training_log.jsonl")
    (dest / "recipe.json").write_text(json.dumps(dataclasses.asdict(recipe), indent=2) + "\n", encoding="utf-8")
    (dest / "results.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    chars_per_token = results["validation"]["chars"] / results["validation"]["tokens"]
    loss_curve(out / "training_log.jsonl", dest / "loss_curve.png", recipe, chars_per_token)
    write_card(dest, recipe, results)
    return results


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=ROOT / "outputs" / "course_model")
    p.add_argument("--max_steps", type=int, default=None, help="stop earlier than the recipe (a test, a try)")
    p.add_argument("--draft", action="store_true", help="train the small draft model (DRAFT) instead")
    p.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE", help="change a recipe field")
    p.add_argument("--card", action="store_true", help="measure the trained model and write the model card")
    p.add_argument("--step", type=int, default=None, help="--card: report this snapshot instead of the last step")
    p.add_argument("--dest", type=Path, default=None,
                   help="--card: the folder to write (default: the shipped model's, or its draft's with --draft)")
    p.add_argument("--where", default="a 2-core x86 CPU (PyTorch, fp32)", help="--card: the machine it trained on")
    p.add_argument("--side", type=Path, default=None, metavar="DIR",
                   help="measure DIR, a run of this script with another recipe, for the card's table of recipes tried")
    args = p.parse_args(argv)
    changes = {}
    for item in args.set:
        k, _, v = item.partition("=")
        field = {f.name: f for f in dataclasses.fields(Recipe)}.get(k)
        if field is None:
            p.error(f"--set {item}: {k!r} is not a Recipe field")
        changes[k] = type(getattr(Recipe(), k))(v)
    recipe = Recipe(**{**(DRAFT if args.draft else {}), **changes})
    if args.side:
        print(json.dumps(side_run(recipe, args.out, args.side), indent=1))
        return 0
    if args.card:
        dest = args.dest or (SHIPPED.with_name(SHIPPED.name + "-draft") if args.draft else SHIPPED)
        results = card(recipe, args.out, dest, args.step, args.where)
        print(json.dumps({k: results[k] for k in ("validation", "induction_heads", "best_previous_token_head",
                                                   "ablation")}, indent=1))
        return 0
    train(recipe, args.out, args.max_steps)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
