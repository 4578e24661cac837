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

from ._core import Case, CheckResult, Exercise, Mistake, as_number, describe

__all__ = [
    "check_count_windows",
    "check_make_windows",
    "check_split_documents",
    "check_cosine_similarity",
]


# ----------------------------------------------------------------- references

def reference_count_windows(n_tokens: int, seq_len: int, stride: int) -> int:
    """How many windows of seq_len + 1 tokens, one every `stride` tokens, fit in n_tokens."""
    return max(0, (n_tokens - seq_len - 1) // stride + 1)


def reference_make_windows(ids: torch.Tensor, seq_len: int, stride: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Every window of seq_len + 1 ids, one every `stride` ids: x and y of shape (n_windows, seq_len)."""
    windows = ids.unfold(0, seq_len + 1, stride)  # (n_windows, seq_len + 1)
    return windows[:, :-1], windows[:, 1:]


def reference_split_documents(ids: list[int], eot_id: int) -> list[list[int]]:
    """The documents of a stream in which each document ends with `eot_id` (the last one may not)."""
    docs: list[list[int]] = []
    current: list[int] = []
    for i in ids:
        if i == eot_id:
            docs.append(current)
            current = []
        else:
            current.append(i)
    if current:  # an unfinished last document
        docs.append(current)
    return docs


def reference_cosine_similarity(p: torch.Tensor) -> torch.Tensor:
    """(T, C) vectors -> (T, T) matrix of cosine similarities."""
    q = p / p.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    return q @ q.T


# ----------------------------------------------------------------- inputs

def _count_windows_inputs(rng: random.Random) -> tuple[Any, ...]:
    seq_len = rng.randint(1, 256)
    return rng.randint(1, 5000), seq_len, rng.choice([seq_len, rng.randint(1, seq_len), rng.randint(1, 400)])


def _windows_inputs(rng: random.Random) -> tuple[Any, ...]:
    seq_len = rng.randint(1, 12)
    n = rng.randint(seq_len + 1, 60)
    stride = rng.choice([seq_len, rng.randint(1, seq_len), rng.randint(1, 20)])
    return torch.randint(0, 100, (n,)), seq_len, stride


def _documents_inputs(rng: random.Random) -> tuple[Any, ...]:
    eot = rng.randint(0, 30)
    ordinary = [i for i in range(31) if i != eot]
    ids: list[int] = []
    for _ in range(rng.randint(1, 6)):
        ids += [rng.choice(ordinary) for _ in range(rng.choice([0, rng.randint(1, 8)]))]
        ids.append(eot)
    if rng.random() < 0.5:  # a stream cut in the middle of a document
        ids += [rng.choice(ordinary) for _ in range(rng.randint(1, 5))]
    return ids, eot


def _cosine_inputs(rng: random.Random) -> tuple[Any, ...]:
    return (torch.randn(rng.randint(2, 12), rng.randint(2, 16)) * rng.uniform(0.1, 10.0),)


# ----------------------------------------------------------------- contracts

def _pair_of_tensors(got: Any) -> str | None:
    if not (isinstance(got, (tuple, list)) and len(got) == 2):
        return f"your result is {describe(got, 80)}; return a pair (x, y) of tensors"
    return None


def _list_of_lists(got: Any) -> str | None:
    if not isinstance(got, list) or not all(isinstance(d, list) for d in got):
        return f"your result is {describe(got, 80)}; return a list of documents, each a list of ids"
    return None


def _count(got: Any) -> str | None:
    value = as_number(got)
    if value is None or float(value) != int(value):
        return f"your result is {describe(got, 80)}; return a whole number, the count"
    return None


# ----------------------------------------------------------------- exercises

COUNT_WINDOWS = Exercise(
    name="count_windows",
    reference=reference_count_windows,
    make_inputs=_count_windows_inputs,
    hints=(
        "a window holds one token more than seq_len, because its last token is only a target; "
        "windows start at zero and then every stride tokens",
        "find the last start at which a whole window still fits inside the tokens, then count the starts "
        "from zero up to it in steps of stride; when not even one window fits, the answer is zero",
    ),
    cases=(
        Case("twice seq_len tokens, stride seq_len", (16, 8, 8)),
        Case("tokens that end in the middle of a window", (20, 6, 4)),
        Case("seq_len plus one tokens", (7, 6, 3)),
        Case("fewer tokens than seq_len", (4, 6, 1)),
        Case("a stride longer than the window", (100, 8, 20)),
    ),
    contract=_count,
    noun="count",
    mistakes=(Mistake("windows of seq_len tokens, where a window needs seq_len plus one (its last is only a target)",
                      lambda n, t, s: max(0, (n - t) // s + 1)),),
)

MAKE_WINDOWS = Exercise(
    name="make_windows",
    reference=reference_make_windows,
    make_inputs=_windows_inputs,
    hints=(
        "window number i starts at i times stride and holds seq_len plus one ids; x drops its last id, "
        "y its first, so y is x shifted by one",
        "stack every window that fits completely into one tensor with a row per window, then cut the "
        "inputs and the targets from it; a window that would run past the end is left out",
    ),
    cases=(
        Case("a stride shorter than seq_len", (torch.arange(10, 22), 4, 2)),
        Case("a stride equal to seq_len, with ids left over at the end",
             (torch.tensor([7, 3, 9, 1, 4, 8, 2, 6]), 3, 3)),
        Case("a stride longer than the window", (torch.arange(30, 50), 3, 7)),
        Case("exactly seq_len plus one ids", (torch.tensor([5, 0, 5, 1]), 3, 1)),
    ),
    contract=_pair_of_tensors,
    noun="windows",
)

SPLIT_DOCUMENTS = Exercise(
    name="split_documents",
    reference=reference_split_documents,
    make_inputs=_documents_inputs,
    hints=(
        "the end-of-text token closes a document: it belongs to no document itself, and the ids between "
        "two of them are one document",
        "walk through the ids collecting the current document; at every end-of-text token put it on the "
        "list, even when it is empty, and start a new one. Ids left over at the end, with no end-of-text "
        "after them, are an unfinished document and count too; nothing left over is no document",
    ),
    cases=(
        Case("two documents, each closed by its end-of-text", ([4, 5, 9, 6, 9], 9)),
        Case("two end-of-text tokens in a row", ([1, 0, 0, 2, 0], 0)),
        Case("ids after the last end-of-text", ([3, 50256, 7, 8], 50256)),
        Case("no end-of-text at all", ([1, 2, 3], 7)),
        Case("an empty stream", ([], 7)),
    ),
    contract=_list_of_lists,
    noun="documents",
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
        Case("more rows than columns",
             (torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 5.0], [-2.0, 1.0]]),)),
    ),
    noun="similarity matrix",
)


# ----------------------------------------------------------------- checks

def check_count_windows(fn: Callable[..., Any], *, quiet: bool = False) -> CheckResult:
    """Exercise: ``count_windows(n_tokens, seq_len, stride) -> int`` windows of seq_len + 1 that fit.
    """
    return COUNT_WINDOWS.check(fn, quiet=quiet)


def check_make_windows(fn: Callable[..., Any], *, quiet: bool = False) -> CheckResult:
    """Exercise: ``make_windows(ids, seq_len, stride) -> (x, y)``, each (n_windows, seq_len)."""
    return MAKE_WINDOWS.check(fn, quiet=quiet)


def check_split_documents(fn: Callable[..., Any], *, quiet: bool = False) -> CheckResult:
    """Exercise: ``split_documents(ids, eot_id) -> list of documents`` (lists of ids, no end-of-text).
    """
    return SPLIT_DOCUMENTS.check(fn, quiet=quiet)


def check_cosine_similarity(fn: Callable[..., Any], *, quiet: bool = False) -> CheckResult:
    """Exercise: ``cosine_similarity(p)`` for (T, C) rows -> (T, T) matrix."""
    return COSINE_SIMILARITY.check(fn, quiet=quiet)
