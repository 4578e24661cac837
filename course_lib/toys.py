"""The small models notebook 08 trains once and caches: a 2-layer GPT that grows an induction
head, and a character-level GPT that grows a previous-token head.

`train_induction_model` trains a 2-layer GPT on random sequences repeated twice (an
induction head appears after about 1,000 steps); `train_char_model` trains a tiny
character-level GPT on text, where a previous-token head appears. Both can record a
training history (loss and a head score every few steps: the phase change), scored with
`interp`'s plain score functions; `viz.heads.plot_history` draws it.

`cached_induction_model` and `cached_char_model` train them once with their full settings
(`InductionSpec`, `CharSpec`; one CPU thread, seeded) and cache them beside the demo model
(`runtime.trained_cache_dir()`, one folder per setting and corpus, written atomically by
`io.build_once`); every later call, in any mode, loads them in a second. Fast mode thus shows
the real heads.

Introduced in notebooks/08_attention_visualization.ipynb.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from . import runtime
from .errors import CourseInputError
from .interp import attention_maps, induction_score, previous_token_score, repeated_tokens
from .io import build_once, settings_key
from .model import GPT, GPTConfig
from .tokenizer import CharTokenizer

__all__ = [
    "train_induction_model",
    "train_char_model",
    "InductionSpec",
    "CharSpec",
    "INDUCTION",
    "CHAR",
    "CACHE_THREADS",
    "cached_induction_model",
    "cached_char_model",
]

History = dict[str, list[Any]]
"""What a trainer records: {"step": [...], "loss": [...], "<score>": [...]}, one entry per record."""


# --------------------------------------------------------------------------- tiny models that grow known heads
def _tiny_gpt(vocab_size: int, n_positions: int, n_layer: int, n_head: int, n_embd: int, seed: int) -> GPT:
    torch.manual_seed(seed)
    return GPT(GPTConfig(vocab_size=vocab_size, n_positions=n_positions, n_layer=n_layer,
                         n_head=n_head, n_embd=n_embd))


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


def train_induction_model(steps: int = 1000, *, vocab_size: int = 512, period: int = 24, batch_size: int = 32,
                          n_layer: int = 2, n_head: int = 4, n_embd: int = 64, lr: float = 1e-3,
                          seed: int = 1, verbose: bool = True, history: History | None = None,
                          record_every: int = 25) -> GPT:
    """Train a tiny GPT on random sequences repeated twice; an induction head appears.

    `period` is the longest copy; each step draws a period from ``period // 2 .. period``.
    The loss counts only the second copy (the first is random and cannot be predicted).
    The clean way to get it right is to find the earlier occurrence of the current token
    and copy what came after it: an induction head (layer 1) fed by a previous-token head
    (layer 0). The loss sits near chance for a few hundred steps, then drops suddenly
    when the two heads form together (the "phase change" of Olsson et al., 2022).

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
    if period < 4:
        raise CourseInputError(f"train_induction_model: period must be at least 4, got {period}")
    model = _tiny_gpt(vocab_size, 2 * period, n_layer, n_head, n_embd, seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    gen = torch.Generator().manual_seed(seed + 1)
    probe_period = min(20, period)
    probe = repeated_tokens(vocab_size, probe_period, seed=0)[0]  # fixed: the same sequence every record
    losses: list[float] = []

    def record(step: int) -> None:
        if history is not None:
            att = attention_maps(model, probe)  # (L, H, T, T); leaves the model in training mode
            _record(history, step, losses, induction=_best(induction_score(att, probe_period), slice(1, None)),
                    previous_token=_best(previous_token_score(att), slice(0, 1)))

    model.train()
    start = time.monotonic()
    loss = torch.tensor(float("nan"))
    record(0)
    for step in range(steps):
        # A new period every step: with a fixed one, a layer-0 head could find "the token after
        # the earlier copy" by position alone, with no induction circuit.
        p = int(torch.randint(period // 2, period + 1, (1,), generator=gen))
        x = repeated_tokens(vocab_size, p, batch=batch_size, generator=gen)  # (B, 2p)
        labels = x.clone()
        labels[:, : p + 1] = -100  # only the predictable second copy counts
        for g in opt.param_groups:  # short warm-up, then constant
            g["lr"] = lr * min(1.0, (step + 1) / 50)
        loss = model(x, labels=labels).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if (step + 1) % record_every == 0 or step + 1 == steps:
            record(step + 1)
    model.eval()
    if verbose:
        chance = math.log(vocab_size)
        print(f"induction task: {steps} steps in {time.monotonic() - start:.1f} s, "
              f"loss on the second copy {loss.item():.3f} (chance {chance:.2f})")
    return model


def train_char_model(text: str, steps: int = 300, *, block_size: int = 64, batch_size: int = 32,
                     n_layer: int = 2, n_head: int = 4, n_embd: int = 64, lr: float = 3e-3,
                     seed: int = 0, verbose: bool = True, history: History | None = None,
                     record_every: int = 25) -> tuple[GPT, CharTokenizer]:
    """Train a tiny character-level GPT on `text` briefly; returns (model, `CharTokenizer`).

    Reading characters, a model soon learns to look one step back: a previous-token head.
    Given a dict as `history`, it records ``step``, ``loss`` and ``previous_token`` (the best
    head's score on the text's first `block_size` characters) every `record_every` steps.
    """
    vocab = CharTokenizer.train(text)
    data = torch.tensor(vocab.encode(text), dtype=torch.long)
    if data.numel() <= block_size + 1:
        raise CourseInputError(
            f"train_char_model: the text has {data.numel()} characters; need more than {block_size + 1}")
    model = _tiny_gpt(len(vocab), block_size, n_layer, n_head, n_embd, seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    gen = torch.Generator().manual_seed(seed + 1)
    probe = data[:block_size]
    losses: list[float] = []

    def record(step: int) -> None:
        if history is not None:
            att = attention_maps(model, probe)
            _record(history, step, losses, previous_token=_best(previous_token_score(att), slice(None)))

    model.train()
    start = time.monotonic()
    loss = torch.tensor(float("nan"))
    record(0)
    for step in range(steps):
        ix = torch.randint(0, data.numel() - block_size, (batch_size,), generator=gen)
        x = torch.stack([data[i: i + block_size] for i in ix.tolist()])  # (B, T)
        for g in opt.param_groups:
            g["lr"] = lr * min(1.0, (step + 1) / 50)
        loss = model(x, labels=x).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if (step + 1) % record_every == 0 or step + 1 == steps:
            record(step + 1)
    model.eval()
    if verbose:
        print(f"character model: {steps} steps in {time.monotonic() - start:.1f} s, "
              f"loss {loss.item():.3f} (chance {math.log(len(vocab)):.2f})")
    return model, vocab


# --------------------------------------------------------------------------- trained once, cached, reused
CACHE_THREADS = 1
"""CPU threads the cached models train with: fixed, so every machine trains the same model
(and one, because models this small gain little from a second thread on a busy CPU)."""




@dataclass(frozen=True)
class InductionSpec:
    """The settings `cached_induction_model` trains with: `train_induction_model`'s, plus how
    often the history is recorded. Part of the cache key.
    """

    steps: int = 1000
    vocab_size: int = 512
    period: int = 24
    batch_size: int = 32
    n_layer: int = 2
    n_head: int = 4
    n_embd: int = 64
    lr: float = 1e-3
    seed: int = 1
    record_every: int = 25


@dataclass(frozen=True)
class CharSpec:
    """The settings `cached_char_model` trains with (`train_char_model`'s). Part of the cache key,
    with the text.
    """

    steps: int = 800
    block_size: int = 64
    batch_size: int = 32
    n_layer: int = 2
    n_head: int = 4
    n_embd: int = 64
    lr: float = 3e-3
    seed: int = 0
    record_every: int = 25


INDUCTION = InductionSpec()
"""The induction model of notebook 08: 1,000 steps, seed 1 (induction heads in layer 1)."""

CHAR = CharSpec()
"""The character model of notebook 08: 800 steps, seed 0 (a previous-token head in layer 0)."""

_INFO = "heads.json"


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

    The first call trains it (on one CPU thread, about 30 s of CPU time) into
    ``runtime.trained_cache_dir() / "induction-<hash of the settings>"``; later calls, in
    any mode and any process, load it. ``model.history`` holds what was recorded while it
    trained (step, loss, induction, previous_token): the phase change.
    """
    spec = spec or INDUCTION
    folder = runtime.trained_cache_dir() / f"induction-{settings_key(spec)}"
    settings = {k: v for k, v in dataclasses.asdict(spec).items() if k != "record_every"}

    trained = []

    def build(tmp: Path) -> None:
        trained.append(_train_and_save("induction", spec, lambda history: train_induction_model(
            **settings, verbose=verbose, history=history, record_every=spec.record_every), tmp, folder, verbose))

    build_once(folder, build, marker=_INFO)
    return _load(folder, verbose and not trained, "induction model")


def cached_char_model(text: str, spec: CharSpec | None = None, *,
                      verbose: bool = True) -> tuple[GPT, CharTokenizer]:
    """`train_char_model` on `text` with `spec`'s settings (default `CHAR`), trained once and cached.

    Returns (model, `CharTokenizer`). Cached in ``runtime.trained_cache_dir() /
    "char-<hash of the settings and text>"``: another corpus or setting trains another model.
    ``model.history`` holds the recorded (step, loss, previous_token).
    """
    spec = spec or CHAR
    folder = runtime.trained_cache_dir() / f"char-{settings_key(spec, text)}"
    settings = {k: v for k, v in dataclasses.asdict(spec).items() if k != "record_every"}

    def train(history: History) -> tuple[GPT, dict[str, Any]]:
        model, vocab = train_char_model(text, **settings, verbose=verbose, history=history,
                                        record_every=spec.record_every)
        return model, {"chars": vocab.itos, "text_chars": len(text)}

    trained = []
    build_once(folder, lambda tmp: trained.append(_train_and_save("character", spec, train, tmp, folder, verbose)),
               marker=_INFO)
    model = _load(folder, verbose and not trained, "character model")
    return model, CharTokenizer(model.cache_info["chars"])
