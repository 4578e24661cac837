"""Checks for the exercises of notebooks/02_data_and_embeddings.ipynb.

Each compares the learner's function with a reference on seeded random inputs (see
`course_lib.checks._core.check_function`), prints one line and returns a callable that
falls back to the reference when the exercise is unfinished or wrong.

Introduced in notebooks/02_data_and_embeddings.ipynb.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from ._core import CheckResult, check_function

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


# ----------------------------------------------------------------- checks

def check_make_xy(fn: Callable[..., Any], *, quiet: bool = False) -> CheckResult:
    """Exercise: ``make_xy(ids, start, seq_len) -> (x, y)``, y is x shifted by one token.

    Introduced in notebooks/02_data_and_embeddings.ipynb.
    """
    return check_function(
        fn, reference_make_xy, _xy_inputs, name="make_xy",
        hint="take the window ids[start : start + seq_len + 1]; x is all but its last id, "
             "y all but its first. Both have length seq_len.",
        quiet=quiet,
    )


def check_count_leaks(fn: Callable[..., Any], *, quiet: bool = False) -> CheckResult:
    """Exercise: ``count_leaks(train_lines, val_lines) -> int`` exact validation lines found in training.

    Introduced in notebooks/02_data_and_embeddings.ipynb.
    """
    return check_function(
        fn, reference_count_leaks, _leak_inputs, name="count_leaks",
        hint="put the training lines in a set, then count the validation lines (each one, "
             "repeats included) that are in it.",
        quiet=quiet,
    )


def check_one_hot_embedding(fn: Callable[..., Any], *, quiet: bool = False) -> CheckResult:
    """Exercise: ``one_hot_embedding(ids, weight)`` equals ``weight[ids]`` via one-hot @ matrix.

    Introduced in notebooks/02_data_and_embeddings.ipynb.
    """
    return check_function(
        fn, reference_one_hot_embedding, _embedding_inputs, name="one_hot_embedding",
        hint="F.one_hot(ids, num_classes=weight.shape[0]) gives (B, T, V) integers; make them "
             "floats (.to(weight.dtype)) and multiply by weight (V, C) to get (B, T, C).",
        quiet=quiet,
    )


def check_cosine_similarity(fn: Callable[..., Any], *, quiet: bool = False) -> CheckResult:
    """Exercise: ``cosine_similarity(p)`` for (T, C) rows -> (T, T) matrix.

    Introduced in notebooks/02_data_and_embeddings.ipynb.
    """
    return check_function(
        fn, reference_cosine_similarity, _cosine_inputs, name="cosine_similarity",
        hint="divide each row by its length (p.norm(dim=-1, keepdim=True)), then multiply the "
             "result by its own transpose.",
        quiet=quiet,
    )
