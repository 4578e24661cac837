"""Checks for notebooks/A1_command_line.ipynb: counting validation lines that leaked from training.

Introduced in notebooks/A1_command_line.ipynb.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from ._core import Case, CheckResult, Exercise, Mistake, as_number, describe

__all__ = ["check_count_leaks"]


def reference_count_leaks(train_lines: list[str], val_lines: list[str]) -> int:
    """How many validation lines (counting repeats) also occur, exactly, in training."""
    seen = set(train_lines)
    return sum(1 for line in val_lines if line in seen)


_WORDS = "the cat sat on a mat sea boat rain fell dog ran home bread warm".split()


def _line(rng: random.Random) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(rng.randint(2, 5)))


def _near_copy(rng: random.Random, line: str) -> str:
    """A line that differs from `line` only in capitals or in spaces at an end: no leak."""
    return rng.choice([line.capitalize(), line.upper(), line + " ", " " + line])


def _leak_inputs(rng: random.Random) -> tuple[Any, ...]:
    train = [_line(rng) for _ in range(rng.randint(5, 30))]
    val = [_line(rng) for _ in range(rng.randint(3, 10))]
    val += [rng.choice(train) for _ in range(rng.randint(1, 4))]  # a few true leaks
    val += [_near_copy(rng, rng.choice(train)) for _ in range(rng.randint(0, 2))]  # near copies, not leaks
    val.append(val[0])  # a repeated validation line counts twice
    rng.shuffle(val)
    return train, val


def _count(got: Any) -> str | None:
    value = as_number(got)
    if value is None or float(value) != int(value):
        return f"your result is {describe(got, 80)}; return a whole number, the count"
    return None


def _parts_count(train_lines: list[str], val_lines: list[str]) -> int:
    return sum(any(line in t for t in train_lines) for line in val_lines)


def _normalised_count(train_lines: list[str], val_lines: list[str]) -> int:
    seen = {t.strip().lower() for t in train_lines}
    return sum(line.strip().lower() in seen for line in val_lines)


COUNT_LEAKS = Exercise(
    name="count_leaks",
    reference=reference_count_leaks,
    make_inputs=_leak_inputs,
    hints=(
        "a leak is a validation line that also appears, exactly, among the training lines; "
        "count validation lines, not distinct texts",
        "make the training lines quick to look up, then go through every validation line and count "
        "those found; a line repeated in validation counts every time, a part of a line is no match",
    ),
    cases=(
        Case("a validation line repeated", (["a b", "c d"], ["a b", "a b", "x y"])),
        Case("a line repeated in training", (["a b", "a b"], ["a b"])),
        Case("validation lines that are parts of a training line", (["the cat sat"], ["the cat", "cat sat"])),
        Case("lines that differ only in capitals or in spaces at their ends",
             (["The cat sat", "a dog ", "  rain"], ["the cat sat", "a dog", "rain", "The cat sat", "  rain"])),
        Case("no validation lines", (["a b"], [])),
    ),
    contract=_count,
    mistakes=(
        Mistake("counting validation lines that are part of a training line; a leak is a whole line", _parts_count),
        Mistake("changing the lines (spaces stripped or capitals lowered) before comparing; the task counts "
                "lines that are exactly equal", _normalised_count),
    ),
)


def check_count_leaks(fn: Callable[..., Any], *, quiet: bool = False) -> CheckResult:
    """Exercise: ``count_leaks(train_lines, val_lines) -> int`` exact validation lines found in training.
    """
    return COUNT_LEAKS.check(fn, quiet=quiet)
