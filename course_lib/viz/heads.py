"""What does each attention head do? Head-role scores, and the plot of a training history.

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
directly. `attention_maps` (one sequence) and `attention_batch` get those tensors from the course `GPT` or from a
`transformers` GPT-2 (eager attention).

`plot_history` draws the training history `course_lib.toys`' small models record (the
loss and a head score every few steps: the phase change); `toys` trains them with these scores.

Introduced in notebooks/08_attention_visualization.ipynb.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch

from .. import runtime
from ..errors import CourseInputError
from ..protocols import CausalLM

__all__ = [
    "attention_batch",
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
def attention_batch(model: CausalLM, ids: torch.Tensor) -> torch.Tensor:
    """Every attention weight of `model` on a batch: float32 CPU tensor (B, L, H, T, T).

    Works for the course `GPT` (``output_attentions=True``) and for a `transformers`
    GPT-2 style model (switched to eager attention when needed: `transformers` 5 returns
    no weights under sdpa).
    """
    ids = torch.as_tensor(ids, dtype=torch.long)
    if ids.dim() == 1:
        ids = ids[None]
    if _is_hf(model):
        _ensure_eager(model)
    was_training = model.training
    model.eval()
    try:
        with runtime.threads_for(model):  # a small model on the CPU: one thread (see there why)
            out = model(ids.to(next(model.parameters()).device), output_attentions=True)
    finally:
        model.train(was_training)
    atts = out.attentions if hasattr(out, "attentions") else out[-1]
    if atts is None or any(a is None for a in atts):
        raise CourseInputError(
            "the model returned no attention weights; load it with attn_implementation='eager' "
            "(transformers returns none under sdpa or flash attention)"
        )
    return torch.stack([a.float().cpu() for a in atts], dim=1)  # (B, L, H, T, T)


def attention_maps(model: CausalLM, input_ids: torch.Tensor | list[int]) -> torch.Tensor:
    """All attention weights of `model` on one sequence: a float32 CPU tensor (L, H, T, T)
    (`attention_batch` for a batch of one).
    """
    ids = torch.as_tensor(input_ids, dtype=torch.long)
    if ids.dim() == 1:
        ids = ids[None]  # (1, T)
    if ids.dim() != 2 or ids.size(0) != 1:
        raise CourseInputError(f"attention_maps: give one sequence of token ids, got shape {tuple(ids.shape)}")
    if ids.numel() == 0:
        raise CourseInputError("attention_maps: the sequence is empty; give at least one token")
    return attention_batch(model, ids)[0]  # (L, H, T, T)


# --------------------------------------------------------------------------- scores (plain functions)
def _check_square(att: torch.Tensor, name: str) -> None:
    if att.dim() < 2 or att.size(-1) != att.size(-2):
        raise CourseInputError(f"{name}: expected attention of shape (..., T, T), got {tuple(att.shape)}")


def previous_token_score(att: torch.Tensor) -> torch.Tensor:
    """Mean attention from each query i >= 1 to key i - 1: shape ``att.shape[:-2]``."""
    _check_square(att, "previous_token_score")
    if att.size(-1) < 2:
        return torch.zeros(att.shape[:-2])
    return att.float().diagonal(offset=-1, dim1=-2, dim2=-1).mean(-1)  # (...,)


def first_token_score(att: torch.Tensor) -> torch.Tensor:
    """Mean attention from each query i >= 1 to key 0 (the "attention sink").
    """
    _check_square(att, "first_token_score")
    if att.size(-1) < 2:
        return torch.zeros(att.shape[:-2])
    return att.float()[..., 1:, 0].mean(-1)  # (...,)


def induction_score(att: torch.Tensor, period: int) -> torch.Tensor:
    """On a sequence whose second part repeats the first `period` tokens: mean attention
    from query t (t >= period) to key t - period + 1, the token after the earlier copy.
    """
    _check_square(att, "induction_score")
    T = att.size(-1)
    if not 1 <= period < T - 1:
        raise CourseInputError(f"induction_score: period must be in 1 .. {T - 2} for {T} tokens, got {period}")
    # query t looks at key t - period + 1: the diagonal at offset -(period - 1), rows t >= period
    diag = att.float().diagonal(offset=-(period - 1), dim1=-2, dim2=-1)  # rows period-1 .. T-1
    return diag[..., 1:].mean(-1)  # (...,)


def attention_entropy(att: torch.Tensor) -> torch.Tensor:
    """Mean entropy (nats) of the attention rows; 0 when each query looks at one key."""
    _check_square(att, "attention_entropy")
    p = att.float()
    ent = -(p * torch.log(p.clamp_min(1e-12))).sum(-1)  # (..., T)
    return ent.mean(-1)


def repeated_random_tokens(
    vocab_size: int, period: int, batch: int = 1, seed: int | None = 0, generator: torch.Generator | None = None
) -> torch.Tensor:
    """(batch, 2 * period) ids: `period` random tokens, then the same tokens again."""
    if vocab_size < 2 or period < 2:
        raise CourseInputError(
            f"repeated_random_tokens: need vocab_size >= 2 and period >= 2, got {vocab_size}, {period}")
    if generator is None:
        generator = torch.Generator().manual_seed(0 if seed is None else seed)
    first = torch.randint(0, vocab_size, (batch, period), generator=generator)
    return torch.cat([first, first], dim=1)


# --------------------------------------------------------------------------- the role table
@dataclass
class HeadRole:
    """The role scores of one head."""

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
    """
    if by not in ROLE_NAMES:
        raise CourseInputError(f"top_heads: by={by!r} is not one of {', '.join(ROLE_NAMES)}")
    key = (lambda r: getattr(r, by)) if by == "entropy" else (lambda r: -getattr(r, by))
    return sorted((r for r in roles if not math.isnan(getattr(r, by))), key=key)[:k]


def plot_history(history: dict[str, list[float]], score: str | Sequence[str] = "induction", *,
                 title: str | None = None) -> Any:
    """Loss and one or more head scores against training step, from a recorded history:
    a matplotlib Figure (made without pyplot: a notebook shows it as the cell's value).

    With the induction model's history this is the phase change of Olsson et al. (2022):
    the loss leaves chance and the induction score rises at the same steps; with
    ``("induction", "previous_token")`` the previous-token head that feeds it rises too.
    """
    from matplotlib.figure import Figure

    scores = [score] if isinstance(score, str) else list(score)
    missing = [s for s in scores if s not in history]
    if missing or "loss" not in history or not scores:
        what = missing[0] if missing else "score"
        raise CourseInputError(f"plot_history: the history has {', '.join(history)}; no {what!r} to plot")
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
