"""Checks for the exercises of notebooks/02_data_and_embeddings.ipynb.

Each is an `Exercise` (see `course_lib.checks._core`): fixed cases for the classic
mistakes, then seeded random inputs; it prints one line and returns a callable that
falls back to the reference when the exercise is unfinished or wrong.

Introduced in notebooks/02_data_and_embeddings.ipynb.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from ._core import Case, CheckResult, Exercise, as_number, describe

__all__ = [
    "check_make_xy",
    "check_count_leaks",
    "check_one_hot_embedding",
    "check_cosine_similarity",
]


# ----------------------------------------------------------------- references

def reference_make_xy(ids: torch.Tensor, start: int, seq_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs and targets of the window of seq_len + 1 ids that begins at `start`."""
    window = ids[start : start + seq_len + 1]
    return window[:-1], window[1:]


def reference_count_leaks(train_lines: list[str], val_lines: list[str]) -> int:
    """How many validation lines (counting repeats) also occur, exactly, in training."""
    seen = set(train_lines)
    return sum(1 for line in val_lines if line in seen)


def reference_one_hot_embedding(ids: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """An embedding lookup written as one-hot rows times the matrix: (B, T) ids -> (B, T, C)."""
    return F.one_hot(ids, num_classes=weight.shape[0]).to(weight.dtype) @ weight


def reference_cosine_similarity(p: torch.Tensor) -> torch.Tensor:
    """(T, C) vectors -> (T, T) matrix of cosine similarities."""
    q = p / p.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    return q @ q.T


# ----------------------------------------------------------------- inputs

def _xy_inputs(rng: random.Random) -> tuple[Any, ...]:
    n = rng.randint(8, 40)
    ids = torch.randint(0, 50, (n,))
    seq_len = rng.randint(1, n - 1)
    start = rng.randint(0, n - seq_len - 1)
    return ids, start, seq_len


_WORDS = "the cat sat on a mat sea boat rain fell dog ran home bread warm".split()


def _line(rng: random.Random) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(rng.randint(2, 5)))


def _leak_inputs(rng: random.Random) -> tuple[Any, ...]:
    train = [_line(rng) for _ in range(rng.randint(5, 30))]
    val = [_line(rng) for _ in range(rng.randint(3, 10))]
    val += [rng.choice(train) for _ in range(rng.randint(1, 4))]  # a few true leaks
    val.append(val[0])  # a repeated validation line counts twice
    rng.shuffle(val)
    return train, val


def _embedding_inputs(rng: random.Random) -> tuple[Any, ...]:
    vocab, dim = rng.randint(3, 20), rng.randint(2, 8)
    ids = torch.randint(0, vocab, (rng.randint(1, 3), rng.randint(1, 6)))
    return ids, torch.randn(vocab, dim)


def _cosine_inputs(rng: random.Random) -> tuple[Any, ...]:
    return (torch.randn(rng.randint(2, 12), rng.randint(2, 16)) * rng.uniform(0.1, 10.0),)


# ----------------------------------------------------------------- contracts

def _pair_of_tensors(got: Any) -> str | None:
    if not (isinstance(got, (tuple, list)) and len(got) == 2):
        return f"your result is {describe(got, 80)}; return a pair (x, y) of tensors"
    return None


def _count(got: Any) -> str | None:
    value = as_number(got)
    if value is None or float(value) != int(value):
        return f"your result is {describe(got, 80)}; return a whole number, the count"
    return None


# ----------------------------------------------------------------- exercises

MAKE_XY = Exercise(
    name="make_xy",
    reference=reference_make_xy,
    make_inputs=_xy_inputs,
    hints=(
        "the model reads x and is scored on predicting y, the token that comes next: "
        "y is x shifted by one position",
        "cut one window of seq_len plus one ids that begins at start; x is that window without "
        "its last id, y the same window without its first. Both have length seq_len",
    ),
    cases=(
        Case("ids that are not their own positions", (torch.tensor([5, 3, 8, 1, 9, 2]), 1, 3)),
        Case("the window reaches the last id", (torch.arange(10, 20), 0, 9)),
        Case("a window of one token", (torch.tensor([4, 7, 1]), 1, 1)),
    ),
    contract=_pair_of_tensors,
)

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
        Case("a repeated validation line counts each time", (["a b", "c d"], ["a b", "a b", "x y"])),
        Case("a line repeated in training counts once per validation line", (["a b", "a b"], ["a b"])),
        Case("part of a training line is not a leak", (["the cat sat"], ["the cat", "cat sat"])),
        Case("no validation lines", (["a b"], [])),
    ),
    contract=_count,
)

ONE_HOT_EMBEDDING = Exercise(
    name="one_hot_embedding",
    reference=reference_one_hot_embedding,
    make_inputs=_embedding_inputs,
    hints=(
        "a one-hot row picks exactly one row of the weight matrix when multiplied by it; "
        "the row has one slot per vocabulary entry",
        "turn every id into a one-hot vector as long as the vocabulary (the number of rows of the weight, "
        "not the largest id you happen to see), make it floating point, and multiply by the weight: "
        "batch by time by vocabulary times vocabulary by channels",
    ),
    cases=(
        Case("the largest id is not in the batch: the one-hot width is the vocabulary size",
             (torch.tensor([[0, 1, 1]]), torch.arange(12.0).reshape(4, 3))),
        Case("a single token", (torch.tensor([[2]]), torch.arange(6.0).reshape(3, 2))),
        Case("two rows of ids", (torch.tensor([[3, 0], [1, 3]]), torch.linspace(-1, 1, 8).reshape(4, 2))),
    ),
    noun="embedding",
)

COSINE_SIMILARITY = Exercise(
    name="cosine_similarity",
    reference=reference_cosine_similarity,
    make_inputs=_cosine_inputs,
    hints=(
        "cosine similarity compares directions only: two vectors pointing the same way score 1 "
        "whatever their lengths",
        "scale every row (each vector, not each column) to length one, then take the dot product of "
        "every row with every row; the result is T by T with ones on the diagonal",
    ),
    cases=(
        Case("rows of very different lengths", (torch.tensor([[1.0, 2.0, 2.0], [10.0, 20.0, 20.0]]),)),
        Case("a vector and its opposite", (torch.tensor([[3.0, -4.0], [-3.0, 4.0], [4.0, 3.0]]),)),
        Case("more rows than columns (normalise rows, not columns)",
             (torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 5.0], [-2.0, 1.0]]),)),
    ),
    noun="similarity matrix",
)


# ----------------------------------------------------------------- checks

def check_make_xy(fn: Callable[..., Any], *, quiet: bool = False) -> CheckResult:
    """Exercise: ``make_xy(ids, start, seq_len) -> (x, y)``, y is x shifted by one token.

    Introduced in notebooks/02_data_and_embeddings.ipynb.
    """
    return MAKE_XY.check(fn, quiet=quiet)


def check_count_leaks(fn: Callable[..., Any], *, quiet: bool = False) -> CheckResult:
    """Exercise: ``count_leaks(train_lines, val_lines) -> int`` exact validation lines found in training.

    Introduced in notebooks/02_data_and_embeddings.ipynb.
    """
    return COUNT_LEAKS.check(fn, quiet=quiet)


def check_one_hot_embedding(fn: Callable[..., Any], *, quiet: bool = False) -> CheckResult:
    """Exercise: ``one_hot_embedding(ids, weight)`` equals ``weight[ids]`` via one-hot @ matrix.

    Introduced in notebooks/02_data_and_embeddings.ipynb.
    """
    return ONE_HOT_EMBEDDING.check(fn, quiet=quiet)


def check_cosine_similarity(fn: Callable[..., Any], *, quiet: bool = False) -> CheckResult:
    """Exercise: ``cosine_similarity(p)`` for (T, C) rows -> (T, T) matrix.

    Introduced in notebooks/02_data_and_embeddings.ipynb.
    """
    return COSINE_SIMILARITY.check(fn, quiet=quiet)
