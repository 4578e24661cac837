"""Checks for notebooks/00_welcome.ipynb: a first, tiny exercise."""

from __future__ import annotations

import random
from collections.abc import Callable

from ._core import CheckResult, check_function

__all__ = ["check_mean_of_squares", "mean_of_squares_reference"]


def mean_of_squares_reference(xs: list[float]) -> float:
    """The mean of the squares of `xs` (the warm-up exercise's reference)."""
    return sum(x * x for x in xs) / len(xs)


def check_mean_of_squares(fn: Callable[[list[float]], float], quiet: bool = False) -> CheckResult:
    """Check the warm-up exercise: `fn(xs)` returns the mean of the squares of `xs`.

    Introduced in notebooks/00_welcome.ipynb.
    """

    def make(rng: random.Random) -> tuple[list[float]]:
        return ([rng.uniform(-5, 5) for _ in range(rng.randint(1, 10))],)

    return check_function(
        fn, mean_of_squares_reference, make, name="mean_of_squares",
        hint="square each number, add them up, divide by how many there are", quiet=quiet,
    )
