"""What does each attention head do? Head-role scores, and two tiny models that grow known heads.

The scores follow the circuits literature:

- **previous token**: how much each query attends to the token just before it
  (Elhage et al., "A Mathematical Framework for Transformer Circuits", 2021,
  https://transformer-circuits.pub/2021/framework/index.html).
- **first token / attention sink**: how much each query parks its attention on position 0
  (Xiao et al., "Efficient Streaming Language Models with Attention Sinks", 2023,
  https://arxiv.org/abs/2309.17453).
- **induction**: on a random sequence repeated twice, how much a token in the second copy
  attends to the token that *followed* its earlier occurrence (Olsson et al., "In-context
  Learning and Induction Heads", 2022, https://arxiv.org/abs/2209.11895).
- **entropy**: how spread out each row of attention is, in nats (0 = one token only).

Every score is a plain function of attention tensors of shape ``(..., T, T)`` (rows are
queries, columns keys; causal, each row sums to 1), so tests and exercises call them
directly. `attention_maps` gets those tensors from the course `GPT` or from a
`transformers` GPT-2 (eager attention).

`train_induction_model` trains a 2-layer GPT on random sequences repeated twice (an
induction head appears after about 1,000 steps); `train_char_model` trains a tiny
character-level GPT on text, where a previous-token head appears. Both can record a
training history (loss and a head score every few steps: the phase change).

`cached_induction_model` and `cached_char_model` train them once with their full settings
(`InductionSpec`, `CharSpec`; one CPU thread, seeded) and cache them beside the demo model
(`runtime.trained_cache_dir()`, one folder per setting and corpus, written atomically by
`io.build_once`); every later call, in any mode, loads them in a second. Fast mode thus shows
the real heads. `plot_history` draws a recorded history.

Introduced in notebooks/08_attention_visualization.ipynb.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from .. import runtime
from ..errors import CourseInputError
from ..io import build_once, settings_key

__all__ = [
    "attention_maps",
    "previous_token_score",
    "first_token_score",
    "induction_score",
    "attention_entropy",
    "repeated_random_tokens",
    "HeadRole",
    "ROLE_NAMES",
    "head_roles",
    "head_roles_from_attentions",
    "top_heads",
    "train_induction_model",
    "train_char_model",
    "InductionSpec",
    "CharSpec",
    "INDUCTION",
    "CHAR",
    "cached_induction_model",
    "cached_char_model",
    "plot_history",
]

ROLE_NAMES = ("previous_token", "first_token", "induction", "entropy")


# --------------------------------------------------------------------------- attention out of a model
def _is_hf(model: Any) -> bool:
    return hasattr(model, "config") and hasattr(model.config, "model_type")


def _ensure_eager(model: Any) -> None:
    """`transformers` returns no attention weights under sdpa/flash: switch the model to eager."""
    impl = getattr(model.config, "_attn_implementation", None)
    if impl in (None, "eager"):
        return
    if hasattr(model, "set_attn_implementation"):  # transformers >= 4.48
        model.set_attn_implementation("eager")
    else:  # older 4.4x read it from the config at forward time
        model.config._attn_implementation = "eager"


@torch.no_grad()
def attention_maps(model: Any, input_ids: torch.Tensor | list[int]) -> torch.Tensor:
    """All attention weights of `model` on one sequence: a float32 CPU tensor (L, H, T, T).

    Works for the course `GPT` (``output_attentions=True``) and for a `transformers`
    GPT-2 style model (switched to eager attention when needed: `transformers` 5 returns
    no weights under sdpa).

    Introduced in notebooks/08_attention_visualization.ipynb.
    """
    ids = torch.as_tensor(input_ids, dtype=torch.long)
    if ids.dim() == 1:
        ids = ids[None]  # (1, T)
    if ids.dim() != 2 or ids.size(0) != 1:
        raise CourseInputError(f"attention_maps: give one sequence of token ids, got shape {tuple(ids.shape)}")
    if ids.numel() == 0:
        raise CourseInputError("attention_maps: the sequence is empty; give at least one token")
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        if _is_hf(model):
            _ensure_eager(model)
        out = model(ids.to(device), output_attentions=True)
    finally:
        model.train(was_training)
    atts = out.attentions if hasattr(out, "attentions") else out[-1]
    if atts is None or any(a is None for a in atts):
        raise CourseInputError(
            "the model returned no attention weights; load it with attn_implementation='eager' "
            "(transformers returns none under sdpa or flash attention)"
        )
    return torch.stack([a[0].float().cpu() for a in atts])  # (L, H, T, T)


# --------------------------------------------------------------------------- scores (plain functions)
def _check_square(att: torch.Tensor, name: str) -> None:
    if att.dim() < 2 or att.size(-1) != att.size(-2):
        raise CourseInputError(f"{name}: expected attention of shape (..., T, T), got {tuple(att.shape)}")


def previous_token_score(att: torch.Tensor) -> torch.Tensor:
    """Mean attention from each query i >= 1 to key i - 1: shape ``att.shape[:-2]``.

    Introduced in notebooks/08_attention_visualization.ipynb.
    """
    _check_square(att, "previous_token_score")
    if att.size(-1) < 2:
        return torch.zeros(att.shape[:-2])
    return att.float().diagonal(offset=-1, dim1=-2, dim2=-1).mean(-1)  # (...,)


def first_token_score(att: torch.Tensor) -> torch.Tensor:
    """Mean attention from each query i >= 1 to key 0 (the "attention sink").

    Introduced in notebooks/08_attention_visualization.ipynb.
    """
    _check_square(att, "first_token_score")
    if att.size(-1) < 2:
        return torch.zeros(att.shape[:-2])
    return att.float()[..., 1:, 0].mean(-1)  # (...,)


def induction_score(att: torch.Tensor, period: int) -> torch.Tensor:
    """On a sequence whose second part repeats the first `period` tokens: mean attention
    from query t (t >= period) to key t - period + 1, the token after the earlier copy.

    Introduced in notebooks/08_attention_visualization.ipynb.
    """
    _check_square(att, "induction_score")
    T = att.size(-1)
    if not 1 <= period < T - 1:
        raise CourseInputError(f"induction_score: period must be in 1 .. {T - 2} for {T} tokens, got {period}")
    # query t looks at key t - period + 1: the diagonal at offset -(period - 1), rows t >= period
    diag = att.float().diagonal(offset=-(period - 1), dim1=-2, dim2=-1)  # rows period-1 .. T-1
    return diag[..., 1:].mean(-1)  # (...,)


def attention_entropy(att: torch.Tensor) -> torch.Tensor:
    """Mean entropy (nats) of the attention rows; 0 when each query looks at one key.

    Introduced in notebooks/08_attention_visualization.ipynb.
    """
    _check_square(att, "attention_entropy")
    p = att.float()
    ent = -(p * torch.log(p.clamp_min(1e-12))).sum(-1)  # (..., T)
    return ent.mean(-1)


def repeated_random_tokens(
    vocab_size: int, period: int, batch: int = 1, seed: int | None = 0, generator: torch.Generator | None = None
) -> torch.Tensor:
    """(batch, 2 * period) ids: `period` random tokens, then the same tokens again.

    Introduced in notebooks/08_attention_visualization.ipynb.
    """
    if vocab_size < 2 or period < 2:
        raise CourseInputError(f"repeated_random_tokens: need vocab_size >= 2 and period >= 2, got {vocab_size}, {period}")
    if generator is None:
        generator = torch.Generator().manual_seed(0 if seed is None else seed)
    first = torch.randint(0, vocab_size, (batch, period), generator=generator)
    return torch.cat([first, first], dim=1)


# --------------------------------------------------------------------------- the role table
@dataclass
class HeadRole:
    """The role scores of one head. Introduced in notebooks/08_attention_visualization.ipynb."""

    layer: int
    head: int
    previous_token: float
    first_token: float
    induction: float
    entropy: float

    @property
    def name(self) -> str:
        return f"L{self.layer}H{self.head}"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def head_roles_from_attentions(att: torch.Tensor, induction_att: torch.Tensor | None = None,
                               period: int | None = None) -> list[HeadRole]:
    """Role scores for every head from attention maps (L, H, T, T).

    `att` (on text) gives previous-token, first-token and entropy scores;
    `induction_att` (L, H, 2p, 2p), on a random sequence of `period` p repeated twice,
    gives the induction score (NaN when not given).

    Introduced in notebooks/08_attention_visualization.ipynb.
    """
    if att.dim() != 4:
        raise CourseInputError(f"head_roles: expected attention of shape (L, H, T, T), got {tuple(att.shape)}")
    prev, first, ent = previous_token_score(att), first_token_score(att), attention_entropy(att)  # (L, H)
    if induction_att is not None:
        if period is None:
            period = induction_att.size(-1) // 2
        ind = induction_score(induction_att, period)
    else:
        ind = torch.full(prev.shape, float("nan"))
    L, H = prev.shape
    return [
        HeadRole(i, h, float(prev[i, h]), float(first[i, h]), float(ind[i, h]), float(ent[i, h]))
        for i in range(L) for h in range(H)
    ]


def _vocab_size(model: Any) -> int:
    cfg = model.config
    return int(cfg.vocab_size)


def head_roles(model: Any, input_ids: torch.Tensor | list[int] | None = None, *,
               period: int = 32, seed: int = 0, vocab_low: int | None = None) -> list[HeadRole]:
    """Score every head of `model`: previous-token, first-token (sink), induction, entropy.

    Previous-token, first-token and entropy are measured on `input_ids` (your text);
    when none is given, on the repeated random sequence too. The induction score is
    measured on `period` random tokens repeated twice (ids drawn from
    ``vocab_low .. vocab_size - 1``; default the whole vocabulary).

    Introduced in notebooks/08_attention_visualization.ipynb.
    """
    V = _vocab_size(model)
    n_pos = int(getattr(model.config, "n_positions", 1024))
    period = min(period, n_pos // 2)
    low = 0 if vocab_low is None else vocab_low
    if not 0 <= low < V - 1:
        raise CourseInputError(f"head_roles: vocab_low must be in 0 .. {V - 2}, got {vocab_low}")
    rep = repeated_random_tokens(V - low, period, seed=seed) + low  # (1, 2p)
    rep_att = attention_maps(model, rep[0])
    text_att = rep_att if input_ids is None else attention_maps(model, input_ids)
    return head_roles_from_attentions(text_att, rep_att, period)


def top_heads(roles: list[HeadRole], by: str = "induction", k: int = 3) -> list[HeadRole]:
    """The `k` heads with the highest score `by` (lowest, for "entropy").

    Introduced in notebooks/08_attention_visualization.ipynb.
    """
    if by not in ROLE_NAMES:
        raise CourseInputError(f"top_heads: by={by!r} is not one of {', '.join(ROLE_NAMES)}")
    key = (lambda r: getattr(r, by)) if by == "entropy" else (lambda r: -getattr(r, by))
    return sorted((r for r in roles if not math.isnan(getattr(r, by))), key=key)[:k]


# --------------------------------------------------------------------------- tiny models that grow known heads
def _tiny_gpt(vocab_size: int, n_positions: int, n_layer: int, n_head: int, n_embd: int, seed: int) -> Any:
    from ..model import GPT, GPTConfig

    torch.manual_seed(seed)
    return GPT(GPTConfig(vocab_size=vocab_size, n_positions=n_positions, n_layer=n_layer,
                         n_head=n_head, n_embd=n_embd))


def _best(scores: torch.Tensor, layers: slice) -> float:
    """The highest score among the heads of `layers` (scores: (L, H))."""
    part = scores[layers]
    return float(part.max()) if part.numel() else float("nan")


def _record(history: dict[str, list[Any]] | None, step: int, losses: list[float], **scores: float) -> None:
    if history is None:
        return
    history.setdefault("step", []).append(step)
    history.setdefault("loss", []).append(round(sum(losses) / len(losses), 4) if losses else None)  # step 0: none yet
    for name, value in scores.items():
        history.setdefault(name, []).append(round(value, 4))
    losses.clear()


def train_induction_model(steps: int = 1000, *, vocab_size: int = 512, period: int = 24, batch_size: int = 32,
                          n_layer: int = 2, n_head: int = 4, n_embd: int = 64, lr: float = 1e-3,
                          seed: int = 1, verbose: bool = True, history: dict[str, list[float]] | None = None,
                          record_every: int = 25) -> Any:
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

    Introduced in notebooks/08_attention_visualization.ipynb.
    """
    if period < 4:
        raise CourseInputError(f"train_induction_model: period must be at least 4, got {period}")
    model = _tiny_gpt(vocab_size, 2 * period, n_layer, n_head, n_embd, seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    gen = torch.Generator().manual_seed(seed + 1)
    probe_period = min(20, period)
    probe = repeated_random_tokens(vocab_size, probe_period, seed=0)[0]  # fixed: the same sequence every record
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
        x = repeated_random_tokens(vocab_size, p, batch=batch_size, generator=gen)  # (B, 2p)
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
                     seed: int = 0, verbose: bool = True, history: dict[str, list[float]] | None = None,
                     record_every: int = 25) -> tuple[Any, Any]:
    """Train a tiny character-level GPT on `text` briefly; returns (model, `CharTokenizer`).

    Reading characters, a model soon learns to look one step back: a previous-token head.
    Given a dict as `history`, it records ``step``, ``loss`` and ``previous_token`` (the best
    head's score on the text's first `block_size` characters) every `record_every` steps.

    Introduced in notebooks/08_attention_visualization.ipynb.
    """
    from ..tokenizer import CharTokenizer

    vocab = CharTokenizer.train(text)
    data = torch.tensor(vocab.encode(text), dtype=torch.long)
    if data.numel() <= block_size + 1:
        raise CourseInputError(f"train_char_model: the text has {data.numel()} characters; need more than {block_size + 1}")
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

    Introduced in notebooks/08_attention_visualization.ipynb.
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

    Introduced in notebooks/08_attention_visualization.ipynb.
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


def _train_and_save(kind: str, spec: Any, train: Any, out: Path, final: Path, verbose: bool) -> dict[str, Any]:
    """Run ``train(history)`` on `CACHE_THREADS` threads; save the model and heads.json to `out`."""
    history: dict[str, list[float]] = {}
    wall, cpu = time.perf_counter(), time.process_time()
    with runtime.torch_threads(CACHE_THREADS):
        result = train(history)
    model, extra = (result if isinstance(result, tuple) else (result, {}))
    model.save_pretrained(out)
    info = {"kind": kind, "spec": dataclasses.asdict(spec), "history": history,
            "train_seconds": round(time.perf_counter() - wall, 1), "cpu_seconds": round(time.process_time() - cpu, 1),
            "threads": CACHE_THREADS, "torch": torch.__version__, **extra}
    (out / _INFO).write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")  # written last: the marker
    if verbose:
        print(f"{kind} model: trained once in {info['train_seconds']:.0f} s (CPU {info['cpu_seconds']:.0f} s, "
              f"{CACHE_THREADS} thread); cached at {final}")
    return info


def _load(folder: Path, verbose: bool, what: str) -> Any:
    from ..model import GPT

    model = GPT.from_pretrained(folder).eval()
    info = json.loads((folder / _INFO).read_text(encoding="utf-8"))
    model.history = info["history"]  # type: ignore[attr-defined]
    model.cache_info = info  # type: ignore[attr-defined]
    model.source = str(folder)  # type: ignore[attr-defined]
    if verbose:
        print(f"{what}: {info['spec']['steps']} steps, trained once ({info['train_seconds']:.0f} s) and "
              f"loaded from {folder}")
    return model


def cached_induction_model(spec: InductionSpec | None = None, *, verbose: bool = True) -> Any:
    """`train_induction_model` with `spec`'s settings (default `INDUCTION`), trained once and cached.

    The first call trains it (on one CPU thread, about 30 s of CPU time) into
    ``runtime.trained_cache_dir() / "induction-<hash of the settings>"``; later calls, in
    any mode and any process, load it. ``model.history`` holds what was recorded while it
    trained (step, loss, induction, previous_token): the phase change.

    Introduced in notebooks/08_attention_visualization.ipynb.
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


def cached_char_model(text: str, spec: CharSpec | None = None, *, verbose: bool = True) -> tuple[Any, Any]:
    """`train_char_model` on `text` with `spec`'s settings (default `CHAR`), trained once and cached.

    Returns (model, `CharTokenizer`). Cached in ``runtime.trained_cache_dir() /
    "char-<hash of the settings and text>"``: another corpus or setting trains another model.
    ``model.history`` holds the recorded (step, loss, previous_token).

    Introduced in notebooks/08_attention_visualization.ipynb.
    """
    from ..tokenizer import CharTokenizer

    spec = spec or CHAR
    folder = runtime.trained_cache_dir() / f"char-{settings_key(spec, text)}"
    settings = {k: v for k, v in dataclasses.asdict(spec).items() if k != "record_every"}

    def train(history: dict[str, list[float]]) -> tuple[Any, dict[str, Any]]:
        model, vocab = train_char_model(text, **settings, verbose=verbose, history=history,
                                        record_every=spec.record_every)
        return model, {"chars": vocab.itos, "text_chars": len(text)}

    trained = []
    build_once(folder, lambda tmp: trained.append(_train_and_save("character", spec, train, tmp, folder, verbose)),
               marker=_INFO)
    model = _load(folder, verbose and not trained, "character model")
    return model, CharTokenizer(model.cache_info["chars"])


def plot_history(history: dict[str, list[float]], score: str | Sequence[str] = "induction", *,
                 title: str | None = None) -> Any:
    """Loss and one or more head scores against training step, from a recorded history:
    a matplotlib Figure (made without pyplot: a notebook shows it as the cell's value).

    With the induction model's history this is the phase change of Olsson et al. (2022):
    the loss leaves chance and the induction score rises at the same steps; with
    ``("induction", "previous_token")`` the previous-token head that feeds it rises too.

    Introduced in notebooks/08_attention_visualization.ipynb.
    """
    from matplotlib.figure import Figure

    scores = [score] if isinstance(score, str) else list(score)
    missing = [s for s in scores if s not in history]
    if missing or "loss" not in history or not scores:
        raise CourseInputError(f"plot_history: the history has {', '.join(history)}; no {missing[0] if missing else 'score'!r} to plot")
    steps = history["step"]
    fig = Figure(figsize=(7, 3.2))
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(steps[1:], history["loss"][1:], color="tab:blue", label="training loss")  # step 0 has no loss yet
    ax.set_xlabel("training step")
    ax.set_ylabel("loss", color="tab:blue")
    ax2 = ax.twinx()
    for name, color in zip(scores, ("tab:red", "tab:orange", "tab:green", "tab:purple")):
        ax2.plot(steps, history[name], color=color, label="best " + name.replace("_", "-") + " score")
    ax2.set_ylabel("best head score" if len(scores) > 1 else f"best {scores[0].replace('_', '-')} score",
                   color="tab:red")
    ax2.set_ylim(0, 1)
    ax2.grid(False)
    ax.set_title(title or f"loss and {', '.join(s.replace('_', '-') for s in scores)} score while training")
    lines = ax.get_lines() + ax2.get_lines()
    ax2.legend(lines, [line.get_label() for line in lines], loc="center left", frameon=False)  # empty before a change
    fig.tight_layout()
    return fig
