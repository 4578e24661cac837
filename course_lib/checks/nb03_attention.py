"""Checks for notebooks/03_attention.ipynb: the two pieces the learner writes, then the exercises.

The pieces: ``attention(q, k, v, dropout=None)`` (scaled dot-product attention with the causal
mask; `check_causal_attention`) and the ``forward`` of GPT-2's ``CausalSelfAttention``
(split the heads, attend, merge them; `check_causal_self_attention`, a `ModuleExercise`). The
references here are what the notebook's collapsed reference cells show. The exercises at the
end: `check_running_mean`, `check_sliding_window_mask`, `check_multihead_attention`.

Introduced in notebooks/03_attention.ipynb.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable

import torch
from torch import nn

from ._core import Build, Case, CheckResult, Exercise, Mistake, ModuleExercise

__all__ = [
    "check_causal_attention",
    "check_causal_self_attention",
    "check_running_mean",
    "check_sliding_window_mask",
    "check_multihead_attention",
]

NEG_INF = float("-inf")


def _randn(*shape: int, scale: float = 1.0) -> torch.Tensor:
    return torch.randn(*shape) * scale  # the check seeds torch before each case


# --------------------------------------------------------------------- piece 1: attention
def attention(q, k, v, dropout=None):
    """Causal scaled dot-product attention: q, k, v (B, nh, T, hs) -> (B, nh, T, hs).

    Each query scores every key (q·k / √hs), the future keys are hidden (score −∞), a softmax
    over the keys turns each row of scores into weights that sum to one, `dropout` (a module,
    or None) drops some weights while training, and the output averages the values.
    """
    T, hs = q.size(-2), q.size(-1)
    scores = q @ k.transpose(-2, -1) / math.sqrt(hs)                        # (B, nh, T, T)
    future = torch.ones(T, T, dtype=torch.bool, device=q.device).triu(1)    # (T, T): True above the diagonal
    weights = scores.masked_fill(future, float("-inf")).softmax(dim=-1)     # (B, nh, T, T), rows sum to 1
    if dropout is not None:
        weights = dropout(weights)
    return weights @ v                                                      # (B, nh, T, hs)


def _attention_variant(scale: str = "hs", fill: float = NEG_INF, dim: int = -1, hide: str = "future",
                       drop: str = "weights") -> Callable[..., torch.Tensor]:
    """A known-wrong attention: the scale, the fill value, the softmax axis, what is hidden, where dropout goes."""

    def wrong(q, k, v, dropout=None):
        T, hs = q.size(-2), q.size(-1)
        scores = q @ k.transpose(-2, -1)
        if scale != "none":
            scores = scores / math.sqrt(hs if scale == "hs" else T)
        ones = torch.ones(T, T, dtype=torch.bool)
        hidden = ones.triu(1) if hide == "future" else ones.tril(-1)
        weights = scores.masked_fill(hidden, fill).softmax(dim=dim)
        if dropout is not None and drop == "weights":
            weights = dropout(weights)
        out = weights @ v
        return dropout(out) if dropout is not None and drop == "output" else out

    return wrong


_ATTENTION_MISTAKES = (
    Mistake("scores scaled by the square root of T instead of the head size", _attention_variant(scale="T")),
    Mistake("scores not scaled at all", _attention_variant(scale="none")),
    Mistake("hidden scores set to zero instead of minus infinity (a zero score still gets weight)",
            _attention_variant(fill=0.0)),
    Mistake("the softmax taken over the queries instead of over the keys", _attention_variant(dim=-2)),
    Mistake("the past hidden instead of the future", _attention_variant(hide="past")),
    Mistake("dropout applied to the output instead of to the weights", _attention_variant(drop="output")),
)


def _qkv(rng: random.Random) -> tuple:
    B, nh, T, hs = rng.randint(1, 3), rng.randint(1, 4), rng.randint(1, 10), rng.choice([4, 8, 16])
    q, k, v = (torch.randn(B, nh, T, hs) * rng.choice([1.0, 3.0]) for _ in range(3))
    if rng.random() < 0.3:
        return q, k, v, nn.Dropout(rng.choice([0.1, 0.5])).train(rng.random() < 0.7)
    return q, k, v


CAUSAL_ATTENTION = Exercise(
    name="causal_attention",
    reference=attention,
    make_inputs=_qkv,
    hints=(
        "each query scores every key, the scores are scaled, the future is hidden, and the weights "
        "that come out of a softmax average the values; dropout, when given, acts on the weights",
        "scale the scores by one over the square root of the head size (the last dimension, not T); "
        "hidden future scores must become minus infinity (zero is still a score), the softmax runs over "
        "the keys, the last dimension, and dropout comes between the softmax and the average",
    ),
    cases=(
        Case("head size 16, three positions, scores far from zero",
             lambda: (_randn(1, 1, 3, 16, scale=2), _randn(1, 1, 3, 16, scale=2), _randn(1, 1, 3, 16))),
        Case("every score negative", lambda: (torch.ones(1, 2, 4, 4), -_randn(1, 2, 4, 4).abs() - 1,
                                              _randn(1, 2, 4, 4))),
        Case("a single position, a batch of two", lambda: (_randn(2, 1, 1, 8), _randn(2, 1, 1, 8),
                                                           _randn(2, 1, 1, 8))),
        Case("four heads, six positions, dropout 0.5 in training mode",
             lambda: (_randn(1, 4, 6, 4), _randn(1, 4, 6, 4), _randn(1, 4, 6, 4), nn.Dropout(0.5).train())),
        Case("dropout 0.5 in eval mode", lambda: (_randn(2, 2, 5, 4), _randn(2, 2, 5, 4), _randn(2, 2, 5, 4),
                                                  nn.Dropout(0.5).eval())),
    ),
    mistakes=_ATTENTION_MISTAKES,
    noun="output",
)


def check_causal_attention(fn: Callable[..., torch.Tensor], quiet: bool = False) -> CheckResult:
    """`fn(q, k, v, dropout=None)` with (B, nh, T, hs) inputs: softmax(q kᵀ / √hs, future hidden), dropout, then v."""
    return CAUSAL_ATTENTION.check(fn, quiet=quiet)


# --------------------------------------------------------------------- piece 2: the module
class CausalSelfAttention(nn.Module):
    """GPT-2's multi-head causal self-attention, with GPT-2's parameter names and dropout."""

    def __init__(self, n_embd, n_head, dropout=0.0):
        super().__init__()
        assert n_embd % n_head == 0, "each head gets n_embd // n_head channels"
        self.n_head = n_head
        self.n_embd = n_embd
        self.c_attn = nn.Linear(n_embd, 3 * n_embd)     # queries, keys, values of every head in one matmul
        self.c_proj = nn.Linear(n_embd, n_embd)         # mixes the heads
        self.attn_dropout = nn.Dropout(dropout)
        self.resid_dropout = nn.Dropout(dropout)

    def forward(self, x):
        B, T, C = x.shape                                                   # (B, T, C)
        hs = C // self.n_head                                               # head size
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)                  # each (B, T, C)
        q = q.view(B, T, self.n_head, hs).transpose(1, 2)                   # (B, nh, T, hs)
        k = k.view(B, T, self.n_head, hs).transpose(1, 2)                   # (B, nh, T, hs)
        v = v.view(B, T, self.n_head, hs).transpose(1, 2)                   # (B, nh, T, hs)
        y = attention(q, k, v, self.attn_dropout)                           # (B, nh, T, hs)
        y = y.transpose(1, 2).contiguous().view(B, T, C)                    # (B, T, C): heads side by side
        return self.resid_dropout(self.c_proj(y))                           # (B, T, C)


class _HeadsByPlainView(CausalSelfAttention):
    def forward(self, x):
        B, T, C = x.shape
        q, k, v = (t.reshape(B, self.n_head, T, C // self.n_head) for t in self.c_attn(x).split(C, dim=2))
        y = attention(q, k, v, self.attn_dropout).transpose(1, 2).reshape(B, T, C)
        return self.resid_dropout(self.c_proj(y))


class _MergedWithoutTranspose(CausalSelfAttention):
    def forward(self, x):
        B, T, C = x.shape
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
                   for t in self.c_attn(x).split(C, dim=2))
        y = attention(q, k, v, self.attn_dropout).reshape(B, T, C)
        return self.resid_dropout(self.c_proj(y))


class _NoProjection(CausalSelfAttention):
    def forward(self, x):
        B, T, C = x.shape
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
                   for t in self.c_attn(x).split(C, dim=2))
        return self.resid_dropout(attention(q, k, v, self.attn_dropout).transpose(1, 2).reshape(B, T, C))


def _attention_inputs(rng: random.Random) -> tuple:
    n_head = rng.choice([1, 2, 3, 4])
    C = n_head * rng.choice([2, 4, 8])
    build = Build({"n_embd": C, "n_head": n_head, "dropout": rng.choice([0.0, 0.0, 0.1, 0.5])},
                  training=rng.random() < 0.3)
    return build, torch.randn(rng.randint(1, 3), rng.randint(1, 9), C)


def _build(n_embd: int, n_head: int, dropout: float = 0.0, training: bool = False) -> Build:
    return Build({"n_embd": n_embd, "n_head": n_head, "dropout": dropout}, training)


CAUSAL_SELF_ATTENTION = ModuleExercise(
    name="causal_self_attention",
    reference=CausalSelfAttention,
    make_inputs=_attention_inputs,
    hints=(
        "three steps: make every head's queries, keys and values and give the heads an axis of their "
        "own, attend in every head at once, then lay the heads side by side again and mix them",
        "split the channels into heads times head size while batch and time stay where they are, and "
        "only then swap the time and head axes; merging undoes exactly that, in the reverse order. "
        "Your attention from above takes the attention dropout; the output dropout comes after the "
        "final projection",
    ),
    cases=(
        Case("two heads, five positions, a batch of two", lambda: (_build(8, 2), _randn(2, 5, 8))),
        Case("a single position", lambda: (_build(8, 4), _randn(3, 1, 8))),
        Case("one head", lambda: (_build(6, 1), _randn(1, 4, 6))),
        Case("four heads, more heads than positions", lambda: (_build(16, 4), _randn(1, 3, 16))),
        Case("dropout 0.5, in eval mode", lambda: (_build(8, 2, 0.5), _randn(2, 4, 8))),
        Case("dropout 0.5, in training mode", lambda: (_build(8, 2, 0.5, training=True), _randn(2, 4, 8))),
    ),
    mistakes=(
        Mistake("heads split by a plain reshape to (B, nh, T, hs), which mixes positions and heads",
                _HeadsByPlainView),
        Mistake("heads merged without first putting the time axis back before the head axis",
                _MergedWithoutTranspose),
        Mistake("the final projection c_proj left out", _NoProjection),
    ),
    given=("attention",),
    noun="output",
)


def check_causal_self_attention(cls: type[nn.Module], quiet: bool = False) -> CheckResult:
    """`cls` is a `CausalSelfAttention` class: built from (n_embd, n_head, dropout), given the reference's
    weights by name, it maps (B, T, C) to (B, T, C) like GPT-2's attention, in training and eval mode."""
    return CAUSAL_SELF_ATTENTION.check(cls, quiet=quiet)


# --------------------------------------------------------------------- exercise 1: the running mean
def _ref_running_mean(x: torch.Tensor) -> torch.Tensor:
    """(B, T, C) -> (B, T, C): position t holds the mean of positions 0 .. t, with no loop and no (T, T) matrix."""
    T = x.size(1)
    counts = torch.arange(1, T + 1, dtype=x.dtype, device=x.device).view(1, T, 1)  # 1, 2, ..., T
    return x.cumsum(dim=1) / counts


RUNNING_MEAN = Exercise(
    name="running_mean",
    reference=_ref_running_mean,
    make_inputs=lambda rng: (torch.randn(rng.randint(1, 3), rng.randint(1, 12), rng.choice([1, 4, 8])),),
    hints=(
        "position t averages itself and everything before it: a sum that grows along time, divided "
        "by how many positions it holds",
        "a cumulative sum along the time dimension (the middle one) gives every prefix sum at once; "
        "position t holds t plus one terms, so divide each prefix sum by its own count, not by T",
    ),
    cases=(
        Case("one channel, three positions", (torch.tensor([[[2.0], [4.0], [9.0]]]),)),
        Case("five positions, three channels, a batch of two", lambda: (_randn(2, 5, 3),)),
        Case("a single position", lambda: (_randn(1, 1, 4),)),
    ),
    mistakes=(
        Mistake("every prefix sum divided by T instead of by its own count", lambda x: x.cumsum(1) / x.size(1)),
        Mistake("the average taken along the channels instead of along time",
                lambda x: x.cumsum(-1) / torch.arange(1, x.size(-1) + 1, dtype=x.dtype)),
    ),
    noun="average",
)


def check_running_mean(fn: Callable[[torch.Tensor], torch.Tensor], quiet: bool = False) -> CheckResult:
    """`fn(x)` with x (B, T, C) returns the average of the past: out[:, t] = x[:, :t+1].mean(1)."""
    return RUNNING_MEAN.check(fn, quiet=quiet)


# --------------------------------------------------------------------- exercise 2: a sliding window
def _ref_sliding_window_mask(T: int, window: int) -> torch.Tensor:
    """(T, T) bool: query i may look at key j when j <= i and i - j < window (itself and window - 1 before)."""
    i = torch.arange(T).view(T, 1)  # queries down the rows
    j = torch.arange(T).view(1, T)  # keys along the columns
    return (j <= i) & (i - j < window)


SLIDING_WINDOW_MASK = Exercise(
    name="sliding_window_mask",
    reference=_ref_sliding_window_mask,
    make_inputs=lambda rng: (rng.randint(1, 12), rng.randint(1, 14)),
    hints=(
        "start from the causal mask (a query sees itself and the past) and take away the keys that are "
        "too far back: a query sees exactly window keys when there are that many, itself included",
        "compare the query index with the key index: the key may not come after the query, and their "
        "distance must be smaller than the window (a window of one sees only itself). The result is a "
        "band of True values on and just below the diagonal",
    ),
    cases=(
        Case("window 1", (5, 1)),
        Case("window 3, six positions", (6, 3)),
        Case("a window as long as the sequence", (4, 4)),
        Case("a window longer than the sequence", (3, 10)),
        Case("a single position", (1, 2)),
    ),
    mistakes=(
        Mistake("one key too many: a query sees window keys before itself, plus itself",
                lambda T, w: _ref_sliding_window_mask(T, w + 1)),
        Mistake("a band on both sides of the diagonal: the future is visible",
                lambda T, w: (torch.arange(T).view(T, 1) - torch.arange(T).view(1, T)).abs() < w),
    ),
    noun="mask",
)


def check_sliding_window_mask(fn: Callable[[int, int], torch.Tensor], quiet: bool = False) -> CheckResult:
    """`fn(T, window)` returns the (T, T) bool mask of causal attention restricted to the last `window` keys."""
    return SLIDING_WINDOW_MASK.check(fn, quiet=quiet)


# --------------------------------------------------------------------- exercise 3: all heads in one product
def _ref_multihead_attention(x: torch.Tensor, w_q: torch.Tensor, w_k: torch.Tensor,
                             w_v: torch.Tensor) -> torch.Tensor:
    """x (B, T, C), each w (nh, C, hs): every head's causal attention, heads side by side (B, T, nh*hs).

    Written with a loop over heads, the plainest way; the exercise asks for one batched matmul.
    """
    outputs = []
    for h in range(w_q.size(0)):
        q, k, v = x @ w_q[h], x @ w_k[h], x @ w_v[h]  # each (B, T, hs)
        outputs.append(attention(q, k, v))  # (B, T, hs)
    return torch.cat(outputs, dim=-1)  # (B, T, nh * hs): head h in channels h*hs .. (h+1)*hs - 1


def _mha_variant(scale_by_width: bool = False, heads_last: bool = False) -> Callable[..., torch.Tensor]:
    def wrong(x, w_q, w_k, w_v):
        q, k, v = (x.unsqueeze(1) @ w for w in (w_q, w_k, w_v))  # (B, nh, T, hs)
        T, hs = q.size(-2), q.size(-1)
        scale = math.sqrt(x.size(-1) if scale_by_width else hs)
        scores = (q @ k.transpose(-2, -1) / scale).masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), NEG_INF)
        y = scores.softmax(-1) @ v  # (B, nh, T, hs)
        return y.permute(0, 2, 3, 1).flatten(2) if heads_last else y.transpose(1, 2).flatten(2)

    return wrong


def _mha_inputs(rng: random.Random) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    B, T, C = rng.randint(1, 3), rng.randint(1, 8), rng.choice([4, 8, 12])
    nh, hs = rng.choice([1, 2, 3, 4]), rng.choice([2, 4, 8])
    return (torch.randn(B, T, C),) + tuple(torch.randn(nh, C, hs) / math.sqrt(C) for _ in range(3))


MULTIHEAD_ATTENTION = Exercise(
    name="multihead_attention",
    reference=_ref_multihead_attention,
    make_inputs=_mha_inputs,
    hints=(
        "every head is the causal attention you wrote above, run on its own projections; the heads "
        "are independent, so a batch dimension for them lets one product compute all of them",
        "give the input a head dimension of size one so that it broadcasts against the stacked "
        "weights; scale by the head size of the weights, not by the input width; at the end put the "
        "time axis back before the head axis and lay the heads side by side, head zero first",
    ),
    cases=(
        Case("one head of size 2 on an input of width 12",
             lambda: (_randn(1, 4, 12, scale=2), _randn(1, 12, 2), _randn(1, 12, 2), _randn(1, 12, 2))),
        Case("two heads of size 3, a batch of two",
             lambda: (_randn(2, 5, 4), _randn(2, 4, 3), _randn(2, 4, 3), _randn(2, 4, 3))),
        Case("a single position, three heads",
             lambda: (_randn(1, 1, 4), _randn(3, 4, 2), _randn(3, 4, 2), _randn(3, 4, 2))),
    ),
    mistakes=(
        Mistake("scores scaled by the input width instead of the head size", _mha_variant(scale_by_width=True)),
        Mistake("the heads' channels interleaved (the head axis put last) instead of side by side",
                _mha_variant(heads_last=True)),
    ),
    noun="output",
)


def check_multihead_attention(
    fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor], quiet: bool = False
) -> CheckResult:
    """`fn(x, w_q, w_k, w_v)`: x (B, T, C), each w (nh, C, hs); all heads' causal attention, (B, T, nh*hs).
    """
    return MULTIHEAD_ATTENTION.check(fn, quiet=quiet)
