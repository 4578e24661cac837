"""Checks for notebooks/07_decoding_strategies.ipynb: top-k, top-p and the repetition penalty.

Each compares the learner's function with the reference in `course_lib.generate`
(`top_k_filter`, `top_p_filter`, `repetition_penalty`), which the tests prove equal to
the matching `transformers` logits processors, on seeded random scores.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import torch

from ..generate import repetition_penalty, top_k_filter, top_p_filter
from ._core import CheckResult, check_function

__all__ = ["check_repetition_penalty", "check_top_k_filter", "check_top_p_filter"]


def _scores(rng: random.Random) -> torch.Tensor:
    B, V = rng.randint(1, 3), rng.randint(5, 30)
    g = torch.Generator().manual_seed(rng.randrange(2**31))
    return torch.randn(B, V, generator=g) * rng.choice([0.5, 2.0, 5.0])  # (B, V) logits


def check_top_k_filter(fn: Callable[[torch.Tensor, int], torch.Tensor], quiet: bool = False) -> CheckResult:
    """Check `fn(scores, k)`: keep the k largest scores of each row, set the others to -inf.

    Introduced in notebooks/07_decoding_strategies.ipynb.
    """

    def make(rng: random.Random) -> tuple[torch.Tensor, int]:
        scores = _scores(rng)
        return scores, rng.randint(1, scores.size(-1))

    return check_function(
        fn, lambda s, k: top_k_filter(s, k), make, name="top_k_filter", trials=8,
        hint="kth = torch.topk(scores, k).values[..., -1:] is each row's k-th best score; "
             "scores.masked_fill(scores < kth, float('-inf'))",
        quiet=quiet,
    )


def check_top_p_filter(fn: Callable[[torch.Tensor, float], torch.Tensor], quiet: bool = False) -> CheckResult:
    """Check `fn(scores, p)`: keep the most likely tokens until their mass reaches p.

    Introduced in notebooks/07_decoding_strategies.ipynb.
    """

    def make(rng: random.Random) -> tuple[torch.Tensor, float]:
        return _scores(rng), rng.choice([0.1, 0.5, 0.8, 0.9, 0.95, 1.0])

    return check_function(
        fn, lambda s, p: top_p_filter(s, p), make, name="top_p_filter", trials=8,
        hint="sort ascending, cum = softmax(sorted).cumsum(-1); remove where cum <= 1 - p, but never the "
             "last (most likely) one; scatter the mask back with the sort order and masked_fill -inf",
        quiet=quiet,
    )


def check_repetition_penalty(fn: Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor],
                             quiet: bool = False) -> CheckResult:
    """Check `fn(input_ids, scores, penalty)`: seen tokens' scores divided by penalty when
    positive, multiplied by it when negative.

    Introduced in notebooks/07_decoding_strategies.ipynb.
    """

    def make(rng: random.Random) -> tuple[torch.Tensor, torch.Tensor, float]:
        scores = _scores(rng)
        B, V = scores.shape
        T = rng.randint(1, 8)
        ids = torch.tensor([[rng.randrange(V) for _ in range(T)] for _ in range(B)])  # (B, T)
        return ids, scores, rng.choice([0.8, 1.2, 1.5, 2.0])

    return check_function(
        fn, repetition_penalty, make, name="repetition_penalty", trials=8,
        hint="seen = scores.gather(1, input_ids); seen = torch.where(seen < 0, seen * penalty, seen / penalty); "
             "return scores.scatter(1, input_ids, seen) (a token seen twice is penalized once)",
        quiet=quiet,
    )
