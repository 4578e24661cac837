"""Checks for notebooks/08_attention_visualization.ipynb: head-role scores and a head ablation
written by the learner.

Each compares the learner's function with the reference in `course_lib.viz.heads` (the scores)
or `course_lib.interp` (`mean_ablate_head`): hand-made inputs for the classic mistakes first,
then random ones of random shapes.

Introduced in notebooks/08_attention_visualization.ipynb.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import torch

from ..interp import mean_ablate_head
from ..viz.heads import attention_entropy, induction_score, previous_token_score
from ._core import Case, CheckResult, Exercise, Mistake

__all__ = ["check_previous_token_score", "check_induction_score", "check_attention_entropy",
           "check_mean_ablate_head", "random_attention"]


def random_attention(rng: random.Random, T: int | None = None) -> torch.Tensor:
    """Random causal attention (L, H, T, T): each row a softmax over keys 0 .. i."""
    L, H = rng.randint(1, 3), rng.randint(1, 4)
    T = T if T is not None else rng.randint(4, 12)
    scores = torch.randn(L, H, T, T) * rng.uniform(0.5, 3.0)
    mask = torch.ones(T, T, dtype=torch.bool).tril()
    return torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)


def _one_hot_rows(T: int, key_of: Callable[[int], int]) -> torch.Tensor:
    """(1, 1, T, T) attention where query i looks only at key `key_of(i)`."""
    att = torch.zeros(1, 1, T, T)
    for i in range(T):
        att[0, 0, i, key_of(i)] = 1.0
    return att


def _uniform_causal(T: int) -> torch.Tensor:
    """(1, 1, T, T) attention where query i spreads evenly over keys 0 .. i."""
    mask = torch.ones(T, T).tril()
    return (mask / mask.sum(-1, keepdim=True))[None, None]


def _a_score_per_head(noun: str) -> Callable[[Any], str | None]:
    def contract(got: Any) -> str | None:
        if not isinstance(got, torch.Tensor):
            return f"your {noun} is a {type(got).__name__}; return a tensor with one number per layer and head"
        return None
    return contract


PREVIOUS_TOKEN_SCORE = Exercise(
    name="previous_token_score",
    reference=previous_token_score,
    make_inputs=lambda rng: (random_attention(rng),),
    hints=(
        "a previous-token head puts the attention of query i on key i minus one; the score is how much "
        "it does that on average, one number per layer and head",
        "take the weights just below the diagonal of each attention map (query i, key i minus one) for "
        "the queries that have a previous token, from the second on, and average them over the queries "
        "only; the result has the shape of the layer and head dimensions",
    ),
    cases=(
        Case("attention entirely on the previous token",
             lambda: (_one_hot_rows(5, lambda i: max(i - 1, 0)),)),
        Case("uniform causal attention over four positions",
             lambda: (_uniform_causal(4),)),
        Case("two tokens", lambda: (random_attention(random.Random(2), T=2),)),
        Case("several layers and heads", lambda: (random_attention(random.Random(5), T=6),)),
    ),
    mistakes=(Mistake("the sum over the previous-token weights divided by T, counting query 0 that has none",
                      lambda att: att.diagonal(offset=-1, dim1=-2, dim2=-1).sum(-1) / att.size(-1)),),
    contract=_a_score_per_head("score"),
    noun="score",
)


def check_previous_token_score(fn: Callable[[torch.Tensor], torch.Tensor], quiet: bool = False) -> CheckResult:
    """`fn(att)`: mean attention from each query i >= 1 to key i - 1, one number per head."""
    return PREVIOUS_TOKEN_SCORE.check(fn, quiet=quiet)


def _induction_inputs(rng: random.Random) -> tuple[torch.Tensor, int]:
    period = rng.randint(2, 6)
    return random_attention(rng, T=2 * period + rng.choice([0, 0, 1, 3])), period


INDUCTION_SCORE = Exercise(
    name="induction_score",
    reference=induction_score,
    make_inputs=_induction_inputs,
    hints=(
        "in a sequence that repeats itself every period tokens, an induction head looks back to the "
        "earlier copy of the current token and attends to the token that came right after it",
        "for each query t from period on, the key that matters is t minus period plus one (one after the "
        "earlier copy, not the copy itself); average those weights over the queries, one number per layer "
        "and head, for any sequence length",
    ),
    cases=(
        Case("perfect induction attention, period 3",
             lambda: (_one_hot_rows(6, lambda t: t - 3 + 1 if t >= 3 else 0), 3)),
        Case("attention on the earlier copy itself, period 3",
             lambda: (_one_hot_rows(6, lambda t: t - 3 if t >= 3 else t), 3)),
        Case("a sequence longer than two periods", lambda: (random_attention(random.Random(3), T=9), 3)),
        Case("period two", lambda: (random_attention(random.Random(4), T=4), 2)),
    ),
    mistakes=(Mistake("the weight on the earlier copy itself instead of on the token after it",
                      lambda att, period: torch.stack([att[..., t, t - period] for t in range(period, att.size(-1))],
                                                      -1).mean(-1)),),
    contract=_a_score_per_head("score"),
    noun="score",
)


def check_induction_score(fn: Callable[[torch.Tensor, int], torch.Tensor], quiet: bool = False) -> CheckResult:
    """`fn(att, period)`: mean attention from query t >= period to key t - period + 1."""
    return INDUCTION_SCORE.check(fn, quiet=quiet)


ATTENTION_ENTROPY = Exercise(
    name="attention_entropy",
    reference=attention_entropy,
    make_inputs=lambda rng: (random_attention(rng),),
    hints=(
        "the entropy of one attention row says how spread out it is: zero when the query looks at a "
        "single key, the log of the number of keys when it spreads evenly. Measure it in nats",
        "for each row, add up minus p times the natural log of p over the keys, where a zero weight "
        "contributes nothing (zero times log zero counts as zero, not as NaN); then average the rows "
        "over the queries, one number per layer and head",
    ),
    cases=(
        Case("one-hot rows",
             lambda: (_one_hot_rows(4, lambda i: i),)),
        Case("uniform causal rows", lambda: (_uniform_causal(5),)),
        Case("several layers and heads", lambda: (random_attention(random.Random(6), T=6),)),
    ),
    mistakes=(Mistake("the entropy in bits (base-two logarithm) instead of in nats (natural logarithm)",
                      lambda att: -(att * torch.log2(att.clamp_min(1e-12))).sum(-1).mean(-1)),),
    contract=_a_score_per_head("entropy"),
    noun="entropy",
)


def check_attention_entropy(fn: Callable[[torch.Tensor], torch.Tensor], quiet: bool = False) -> CheckResult:
    """`fn(att)`: the mean over queries of each row's entropy -sum p log p (nats)."""
    return ATTENTION_ENTROPY.check(fn, quiet=quiet)


def _head_outputs(B: int, T: int, n_head: int, hs: int) -> torch.Tensor:
    """(B, T, n_head * hs) where every entry differs: channel c of position t in row b is
    c + 100 t + 1000 b, so a wrong slice or a wrong mean shows at once."""
    b = torch.arange(B).view(B, 1, 1) * 1000.0
    t = torch.arange(T).view(1, T, 1) * 100.0
    c = torch.arange(n_head * hs).view(1, 1, -1).float()
    return b + t + c


def _ablation_inputs(rng: random.Random) -> tuple[torch.Tensor, int, int]:
    n_head, hs = rng.randint(1, 4), rng.randint(2, 5)
    z = torch.randn(rng.randint(1, 3), rng.randint(1, 6), n_head * hs) * rng.uniform(0.5, 3.0)
    return z, rng.randrange(n_head), n_head


def _same_shape_as_z(got: Any) -> str | None:
    if not isinstance(got, torch.Tensor):
        return f"your output is a {type(got).__name__}; return a tensor shaped like z"
    return None


def _ablate_wrong_slice(z: torch.Tensor, head: int, n_head: int) -> torch.Tensor:
    hs, out = z.size(-1) // n_head, z.clone()
    out[..., head * n_head:head * n_head + hs] = z[..., head * n_head:head * n_head + hs].mean(dim=(0, 1))
    return out


def _ablate_per_row(z: torch.Tensor, head: int, n_head: int) -> torch.Tensor:
    hs, out = z.size(-1) // n_head, z.clone()
    out[..., head * hs:(head + 1) * hs] = z[..., head * hs:(head + 1) * hs].mean(dim=1, keepdim=True)
    return out


MEAN_ABLATE_HEAD = Exercise(
    name="mean_ablate_head",
    reference=mean_ablate_head,
    make_inputs=_ablation_inputs,
    hints=(
        "before the output projection the heads sit side by side along the last axis, each owning "
        "one block of head-size channels; mean-ablating a head replaces only its block with that "
        "block's average, so the head still adds its usual contribution but says nothing about this "
        "token",
        "the head size is the number of channels divided by the number of heads, and head h starts at "
        "h times the head size. Average its block over every batch row and every position together, "
        "one value per channel, and write that into a copy; the other heads and the input stay as "
        "they were",
    ),
    cases=(
        Case("head 1 of four heads of size 2",
             lambda: (_head_outputs(1, 3, 4, 2), 1, 4)),
        Case("a batch of two, three positions, two heads of size 3",
             lambda: (_head_outputs(2, 3, 2, 3), 0, 2)),
        Case("the last of three heads",
             lambda: (_head_outputs(2, 2, 3, 2), 2, 3)),
        Case("one head", lambda: (_head_outputs(2, 4, 1, 3), 0, 1)),
    ),
    mistakes=(
        Mistake("the channels taken from head times the number of heads instead of head times the head size",
                _ablate_wrong_slice),
        Mistake("the mean taken over the positions of each sequence alone instead of over the batch and the "
                "positions together", _ablate_per_row),
    ),
    contract=_same_shape_as_z,
    noun="output",
)


def check_mean_ablate_head(fn: Callable[[torch.Tensor, int, int], torch.Tensor], quiet: bool = False) -> CheckResult:
    """`fn(z, head, n_head)`: a copy of z (B, T, C) with head `head`'s channels replaced by
    their mean over the batch and the positions.
    """
    return MEAN_ABLATE_HEAD.check(fn, quiet=quiet)
