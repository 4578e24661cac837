"""Checks for notebooks/00_welcome.ipynb: a first, tiny exercise.

Introduced in notebooks/00_welcome.ipynb.
"""

from __future__ import annotations

from collections.abc import Callable

from ._core import Case, CheckResult, Exercise, Mistake

__all__ = ["check_mean_of_squares", "mean_of_squares_reference"]


def mean_of_squares_reference(xs: list[float]) -> float:
    """The mean of the squares of `xs` (the warm-up exercise's reference)."""
    return sum(x * x for x in xs) / len(xs)


MEAN_OF_SQUARES = Exercise(
    name="mean_of_squares",
    reference=mean_of_squares_reference,
    make_inputs=lambda rng: ([rng.uniform(-5, 5) for _ in range(rng.randint(1, 10))],),
    hints=(
        "square every number first and only then average; the mean of the squares is not the square of the mean",
        "add up the squares of all the numbers and divide that sum by how many numbers there are; "
        "a negative number has a positive square",
    ),
    cases=(
        Case("two different numbers", ([3.0, 4.0],)),
        Case("a number and its opposite", ([-2.0, 2.0],)),
        Case("a single number", ([5.0],)),
        Case("numbers below one, some negative", ([0.5, -0.25, 0.1],)),
    ),
    mistakes=(
        Mistake("squaring the mean instead of averaging the squares", lambda xs: (sum(xs) / len(xs)) ** 2),
        Mistake("averaging the numbers without squaring them", lambda xs: sum(xs) / len(xs)),
    ),
)


def check_mean_of_squares(fn: Callable[[list[float]], float], quiet: bool = False) -> CheckResult:
    """Check the warm-up exercise: `fn(xs)` returns the mean of the squares of `xs`."""
    return MEAN_OF_SQUARES.check(fn, quiet=quiet)
