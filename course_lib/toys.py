"""The small models notebook 08 trains once and caches: a 2-layer GPT that grows an induction
head, and a character-level GPT that grows a previous-token head.

`train_induction_model` trains a 2-layer GPT on random sequences repeated twice (an
induction head appears after about 1,000 steps); `train_char_model` trains a tiny
character-level GPT on text, where a previous-token head appears. Both can record a
training history (loss and a head score every few steps: the phase change), scored with
`interp`'s plain score functions; `viz.heads.plot_history` draws it.

`cached_induction_model` and `cached_char_model` load them in a second, in any mode: the course
ships both with their default settings (`InductionSpec`, `CharSpec`; the character model on Tiny
Shakespeare) in ``course_lib/assets/toys/``, trained by ``scripts/train_toys.py`` with this code.
Other settings or another corpus train once (one CPU thread, seeded) into a cache
(`runtime.trained_cache_dir()`, one folder per setting and corpus, written atomically by
`io.build_once`), then load from it. Fast mode thus shows the real heads.

Introduced in notebooks/08_attention_visualization.ipynb.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from . import runtime
from .errors import CourseInputError
from .interp import attention_maps, induction_score, previous_token_score, repeated_tokens
from .io import build_once, settings_key
from .model import GPT, GPTConfig
from .tokenizer import CharTokenizer
from .train import cosine_schedule

__all__ = [
    "train_induction_model",
    "train_char_model",
    "InductionSpec",
    "CharSpec",
    "INDUCTION",
    "CHAR",
    "CACHE_THREADS",
    "WARMUP_STEPS",
    "cached_induction_model",
    "cached_char_model",
]

History = dict[str, list[Any]]
"""What a trainer records: {"step": [...], "loss": [...], "<score>": [...]}, one entry per record."""


# --------------------------------------------------------------------------- what each model is
@dataclass(frozen=True)
class InductionSpec:
    """How `train_induction_model` trains: the model's shape, the copy task, the optimizer. Part of
    the cache key. The model's context must hold the task: n_positions >= 2 * period.
    """

    steps: int = 1000
    model: GPTConfig = field(default_factory=lambda: GPTConfig(vocab_size=512, n_positions=48, n_layer=2,
                                                                n_head=4, n_embd=64))
    period: int = 24  # the longest copy: each step draws one from period // 2 .. period
    batch_size: int = 32
    lr: float = 1e-3
    seed: int = 1
    record_every: int = 25


@dataclass(frozen=True)
class CharSpec:
    """How `train_char_model` trains. Part of the cache key, with the text. The model's context
    (n_positions) is the block of characters it reads; its vocabulary is the text's characters.
    """

    steps: int = 800
    model: GPTConfig = field(default_factory=lambda: GPTConfig(vocab_size=1, n_positions=64, n_layer=2,
                                                                n_head=4, n_embd=64))  # vocab_size: the text's
    batch_size: int = 32
    lr: float = 3e-3
    seed: int = 0
    record_every: int = 25


INDUCTION = InductionSpec()
"""The induction model of notebook 08: 1,000 steps, seed 1 (induction heads in layer 1)."""

CHAR = CharSpec()
"""The character model of notebook 08: 800 steps, seed 0 (a previous-token head in layer 0)."""

WARMUP_STEPS = 50
"""Both models warm up for 50 steps, then train at a constant rate."""


# --------------------------------------------------------------------------- tiny models that grow known heads
# Each trains in its own loop, not the Trainer's: its batches are made afresh at each step (a new copy
# length, masked labels; random windows), and the plain AdamW that found the seeds that grow the heads stays.
def _tiny_gpt(config: GPTConfig, seed: int) -> tuple[GPT, torch.optim.Optimizer]:
    torch.manual_seed(seed)
    model = GPT(config)
    return model, torch.optim.AdamW(model.parameters(), lr=1.0, weight_decay=0.0)  # lr: set at each step


def _train(model: GPT, opt: torch.optim.Optimizer, spec: InductionSpec | CharSpec,
           batch: Callable[[], tuple[torch.Tensor, torch.Tensor]], scores: Callable[[], dict[str, float]],
           history: History | None) -> tuple[float, float]:
    """`spec.steps` steps on ``batch()`` = (x, labels) at the warm-up-then-constant rate (`train.cosine_schedule`
    with min_lr = lr), ``scores()`` recorded in `history` every `record_every` steps; (last loss, seconds)."""
    losses: list[float] = []

    def record(step: int) -> None:
        if history is not None:
            _record(history, step, losses, **scores())

    model.train()
    start = time.monotonic()
    loss = float("nan")
    record(0)
    for step in range(spec.steps):
        x, labels = batch()
        for g in opt.param_groups:
            g["lr"] = cosine_schedule(step, max_lr=spec.lr, min_lr=spec.lr, warmup_steps=WARMUP_STEPS,
                                      total_steps=spec.steps)
        out = model(x, labels=labels).loss
        opt.zero_grad(set_to_none=True)
        out.backward()
        opt.step()
        loss = out.item()
        losses.append(loss)
        if (step + 1) % spec.record_every == 0 or step + 1 == spec.steps:
            record(step + 1)
    model.eval()
    return loss, time.monotonic() - start


def _best(scores: torch.Tensor, layers: slice) -> float:
    """The highest score among the heads of `layers` (scores: (L, H))."""
    part = scores[layers]
    return float(part.max()) if part.numel() else float("nan")


def _record(history: History | None, step: int, losses: list[float], **scores: float) -> None:
    if history is None:
        return
    history.setdefault("step", []).append(step)
    history.setdefault("loss", []).append(round(sum(losses) / len(losses), 4) if losses else None)  # step 0: none yet
    for name, value in scores.items():
        history.setdefault(name, []).append(round(value, 4))
    losses.clear()


def train_induction_model(spec: InductionSpec | None = None, *, verbose: bool = True,
                          history: History | None = None, **changes: Any) -> GPT:
    """Train a tiny GPT on random sequences repeated twice; an induction head appears.

    `spec` (default `INDUCTION`) with `changes` to its fields (``steps=300, seed=0``). Each step
    draws a copy length from ``period // 2 .. period``; the loss counts only the second copy (the
    first is random and cannot be predicted). The clean way to get it right is to find the earlier
    occurrence of the current token and copy what came after it: an induction head (layer 1) fed by
    a previous-token head (layer 0). The loss sits near chance for a few hundred steps, then drops
    suddenly when the two heads form together (the "phase change" of Olsson et al., 2022).

    The defaults grow that circuit in about 1,000 steps (under a minute on 2 CPU cores):
    with seed 1 every layer-1 head attends about 0.9 to the token after the earlier copy.
    It is a real experiment, not a certainty: across seeds 0-2, two grew induction heads
    within 1,500 steps, and one learned to copy as well through a different, diffuse
    pattern; a large vocabulary (few repeated tokens by chance) and lr 1e-3 matter (at
    vocab 64 only one seed in three formed one; at lr 3e-3 none learned at all).

    Given a dict as `history`, it records there, at step 0 and every `record_every` steps:
    ``step``, ``loss`` (the mean training loss since the last record), ``induction`` (the
    best layer-1+ head's score) and ``previous_token`` (the best layer-0 head's), both on
    a fixed random sequence of period ``min(20, period)`` repeated twice.
    """
    spec = dataclasses.replace(spec or INDUCTION, **changes)
    if spec.period < 4:
        raise CourseInputError(f"train_induction_model: period must be at least 4, got {spec.period}")
    if spec.model.n_positions < 2 * spec.period:
        raise CourseInputError(f"train_induction_model: the model's n_positions={spec.model.n_positions} cannot "
                               f"hold two copies of period {spec.period}; use at least {2 * spec.period}")
    model, opt = _tiny_gpt(spec.model, spec.seed)
    V = spec.model.vocab_size
    gen = torch.Generator().manual_seed(spec.seed + 1)
    probe_period = min(20, spec.period)
    probe = repeated_tokens(V, probe_period, seed=0)[0]  # fixed: the same sequence every record

    def batch() -> tuple[torch.Tensor, torch.Tensor]:
        # A new period every step: with a fixed one, a layer-0 head could find "the token after
        # the earlier copy" by position alone, with no induction circuit.
        p = int(torch.randint(spec.period // 2, spec.period + 1, (1,), generator=gen))
        x = repeated_tokens(V, p, batch=spec.batch_size, generator=gen)  # (B, 2p)
        labels = x.clone()
        labels[:, : p + 1] = -100  # only the predictable second copy counts
        return x, labels

    def scores() -> dict[str, float]:
        att = attention_maps(model, probe)  # (L, H, T, T); leaves the model in training mode
        return {"induction": _best(induction_score(att, probe_period), slice(1, None)),
                "previous_token": _best(previous_token_score(att), slice(0, 1))}

    loss, seconds = _train(model, opt, spec, batch, scores, history)
    if verbose:
        print(f"induction task: {spec.steps} steps in {seconds:.1f} s, "
              f"loss on the second copy {loss:.3f} (chance {math.log(V):.2f})")
    return model


def train_char_model(text: str, spec: CharSpec | None = None, *, verbose: bool = True,
                     history: History | None = None, **changes: Any) -> tuple[GPT, CharTokenizer]:
    """Train a tiny character-level GPT on `text` briefly; returns (model, `CharTokenizer`).

    `spec` (default `CHAR`) with `changes` to its fields. Reading characters, a model soon learns
    to look one step back: a previous-token head. Given a dict as `history`, it records ``step``,
    ``loss`` and ``previous_token`` (the best head's score on the text's first block) every
    `record_every` steps.
    """
    spec = dataclasses.replace(spec or CHAR, **changes)
    block_size = spec.model.n_positions
    vocab = CharTokenizer.train(text)
    data = torch.tensor(vocab.encode(text), dtype=torch.long)
    if data.numel() <= block_size + 1:
        raise CourseInputError(
            f"train_char_model: the text has {data.numel()} characters; need more than {block_size + 1}")
    model, opt = _tiny_gpt(dataclasses.replace(spec.model, vocab_size=len(vocab)), spec.seed)
    gen = torch.Generator().manual_seed(spec.seed + 1)
    probe = data[:block_size]

    def batch() -> tuple[torch.Tensor, torch.Tensor]:
        ix = torch.randint(0, data.numel() - block_size, (spec.batch_size,), generator=gen)
        x = torch.stack([data[i: i + block_size] for i in ix.tolist()])  # (B, T)
        return x, x

    def scores() -> dict[str, float]:
        return {"previous_token": _best(previous_token_score(attention_maps(model, probe)), slice(None))}

    loss, seconds = _train(model, opt, spec, batch, scores, history)
    if verbose:
        print(f"character model: {spec.steps} steps in {seconds:.1f} s, "
              f"loss {loss:.3f} (chance {math.log(len(vocab)):.2f})")
    return model, vocab


# --------------------------------------------------------------------------- trained once, cached, reused
CACHE_THREADS = 1
"""CPU threads the cached models train with: fixed, so every machine trains the same model
(and one, because models this small gain little from a second thread on a busy CPU)."""

_INFO = "heads.json"
SHIPPED = Path(__file__).resolve().parent / "assets" / "toys"
"""The models with the default settings, shipped with the course (one folder per setting, as cached)."""


def _folder(name: str) -> Path:
    """The shipped folder `name` when the course has it, else the cache's (trained there once)."""
    shipped = SHIPPED / name
    return shipped if (shipped / _INFO).is_file() else runtime.trained_cache_dir() / name


def _train_and_save(kind: str, spec: InductionSpec | CharSpec,
                    train: Callable[[History], GPT | tuple[GPT, dict[str, Any]]],
                    out: Path, final: Path, verbose: bool) -> dict[str, Any]:
    """Run ``train(history)`` on `CACHE_THREADS` threads; save the model and heads.json to `out`."""
    history: History = {}
    wall, cpu = time.perf_counter(), time.process_time()
    with runtime.torch_threads(CACHE_THREADS):
        result = train(history)
    model, extra = (result if isinstance(result, tuple) else (result, {}))
    model.save_pretrained(out)
    info = {"kind": kind, "spec": dataclasses.asdict(spec), "history": history,
            "train_seconds": round(time.perf_counter() - wall, 3), "cpu_seconds": round(time.process_time() - cpu, 3),
            "threads": CACHE_THREADS, "torch": torch.__version__, **extra}
    (out / _INFO).write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")  # written last: the marker
    if verbose:
        print(f"{kind} model: trained once in {info['train_seconds']:.0f} s (CPU {info['cpu_seconds']:.0f} s, "
              f"{CACHE_THREADS} thread); cached at {final}")
    return info


def _load(folder: Path, verbose: bool, what: str) -> GPT:
    model = GPT.from_pretrained(folder).eval()
    info = json.loads((folder / _INFO).read_text(encoding="utf-8"))
    model.history = info["history"]  # type: ignore[attr-defined]
    model.cache_info = info  # type: ignore[attr-defined]
    model.source = str(folder)  # type: ignore[attr-defined]
    if verbose:
        print(f"{what}: {info['spec']['steps']} steps, trained once ({info['train_seconds']:.0f} s) and "
              f"loaded from {folder}")
    return model


def cached_induction_model(spec: InductionSpec | None = None, *, verbose: bool = True) -> GPT:
    """`train_induction_model` with `spec`'s settings (default `INDUCTION`), trained once and cached.

    The default settings load the shipped model (`SHIPPED`); other settings train once (on one
    CPU thread, about 30 s of CPU time) into ``runtime.trained_cache_dir() / "induction-<hash of
    the settings>"``, and later calls, in any mode and any process, load it. ``model.history``
    holds what was recorded while it trained (step, loss, induction, previous_token): the phase change.
    """
    spec = spec or INDUCTION
    folder = _folder(f"induction-{settings_key(spec)}")
    trained = []

    def build(tmp: Path) -> None:
        trained.append(_train_and_save("induction", spec, lambda history: train_induction_model(
            spec, verbose=verbose, history=history), tmp, folder, verbose))

    build_once(folder, build, marker=_INFO)
    return _load(folder, verbose and not trained, "induction model")


def cached_char_model(text: str, spec: CharSpec | None = None, *,
                      verbose: bool = True) -> tuple[GPT, CharTokenizer]:
    """`train_char_model` on `text` with `spec`'s settings (default `CHAR`), trained once and cached.

    Returns (model, `CharTokenizer`). The default settings on Tiny Shakespeare load the shipped
    model (`SHIPPED`); otherwise cached in ``runtime.trained_cache_dir() / "char-<hash of the
    settings and text>"``: another corpus or setting trains another model, once.
    ``model.history`` holds the recorded (step, loss, previous_token).
    """
    spec = spec or CHAR
    folder = _folder(f"char-{settings_key(spec, text)}")

    def train(history: History) -> tuple[GPT, dict[str, Any]]:
        model, vocab = train_char_model(text, spec, verbose=verbose, history=history)
        return model, {"chars": vocab.itos, "text_chars": len(text)}

    trained = []
    build_once(folder, lambda tmp: trained.append(_train_and_save("character", spec, train, tmp, folder, verbose)),
               marker=_INFO)
    model = _load(folder, verbose and not trained, "character model")
    return model, CharTokenizer(model.cache_info["chars"])
