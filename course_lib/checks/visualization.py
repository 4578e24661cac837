"""Checks for notebooks/08_attention_visualization.ipynb: head-role scores written by the learner.

Each compares the learner's function with the reference in `course_lib.viz.heads` on
random causal attention maps of random shapes.

Introduced in notebooks/08_attention_visualization.ipynb.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import torch

from ..viz.heads import attention_entropy, induction_score, previous_token_score
from ._core import CheckResult, check_function

__all__ = ["check_previous_token_score", "check_induction_score", "check_attention_entropy",
           "random_attention"]


def random_attention(rng: random.Random, T: int | None = None) -> torch.Tensor:
    """Random causal attention (L, H, T, T): each row a softmax over keys 0 .. i.

    Introduced in notebooks/08_attention_visualization.ipynb.
    """
    L, H = rng.randint(1, 3), rng.randint(1, 4)
    T = T if T is not None else rng.randint(4, 12)
    scores = torch.randn(L, H, T, T) * rng.uniform(0.5, 3.0)
    mask = torch.ones(T, T, dtype=torch.bool).tril()
    return torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)


def check_previous_token_score(fn: Callable[[torch.Tensor], torch.Tensor], quiet: bool = False) -> CheckResult:
    """`fn(att)`: mean attention from each query i >= 1 to key i - 1, one number per head.

    Introduced in notebooks/08_attention_visualization.ipynb.
    """
    return check_function(
        fn, previous_token_score, lambda rng: (random_attention(rng),), name="previous_token_score",
        hint="take att[..., i, i - 1] for i = 1 .. T-1 (torch.diagonal with offset=-1 on the last two "
             "dims) and average them; the result has shape att.shape[:-2]", quiet=quiet,
    )


def check_induction_score(fn: Callable[[torch.Tensor, int], torch.Tensor], quiet: bool = False) -> CheckResult:
    """`fn(att, period)`: mean attention from query t >= period to key t - period + 1.

    Introduced in notebooks/08_attention_visualization.ipynb.
    """

    def make(rng: random.Random) -> tuple[torch.Tensor, int]:
        period = rng.randint(2, 6)
        return random_attention(rng, T=2 * period), period

    return check_function(
        fn, induction_score, make, name="induction_score",
        hint="for t in period .. T-1, the token after the earlier copy is at t - period + 1: "
             "average att[..., t, t - period + 1]", quiet=quiet,
    )


def check_attention_entropy(fn: Callable[[torch.Tensor], torch.Tensor], quiet: bool = False) -> CheckResult:
    """`fn(att)`: the mean over queries of each row's entropy -sum p log p (nats).

    Introduced in notebooks/08_attention_visualization.ipynb.
    """
    return check_function(
        fn, attention_entropy, lambda rng: (random_attention(rng),), name="attention_entropy",
        hint="-(p * log p).sum(-1) gives each row's entropy (treat 0 * log 0 as 0, e.g. with "
             "p.clamp_min(1e-12) inside the log), then .mean(-1) over the queries", quiet=quiet,
    )
