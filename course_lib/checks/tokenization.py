"""Checks for notebooks/01_tokenization.ipynb: count pairs, apply one merge, encode with a merge table.

Each compares the learner's function with the reference in `course_lib.tokenizer`
(`count_pairs`, `apply_merge`, `encode_with_merges`) on seeded random inputs.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

from ..tokenizer import apply_merge, count_pairs, encode_with_merges
from ._core import CheckResult, check_function

__all__ = ["check_apply_merge", "check_count_pairs", "check_encode_with_merges"]


def _random_ids(rng: random.Random, alphabet: int = 4, max_len: int = 14) -> list[int]:
    # few distinct ids, so pairs repeat and overlap ("1 1 1")
    return [rng.randrange(alphabet) for _ in range(rng.randint(0, max_len))]


def check_count_pairs(fn: Callable[[Sequence[int]], dict[tuple[int, int], int]],
                      quiet: bool = False) -> CheckResult:
    """Check `fn(ids)`: a dict from each adjacent pair of `ids` to how often it occurs.

    Introduced in notebooks/01_tokenization.ipynb.
    """

    def make(rng: random.Random) -> tuple[list[int]]:
        return (_random_ids(rng),)

    return check_function(
        fn, count_pairs, make, name="count_pairs", trials=8,
        hint="walk over zip(ids, ids[1:]) and add 1 to counts[pair] (start missing pairs at 0); "
             "an empty or one-element list has no pairs",
        quiet=quiet,
    )


def check_apply_merge(fn: Callable[[Sequence[int], tuple[int, int], int], list[int]],
                      quiet: bool = False) -> CheckResult:
    """Check `fn(ids, pair, new_id)`: every occurrence of `pair`, left to right, becomes `new_id`.

    Introduced in notebooks/01_tokenization.ipynb.
    """

    def make(rng: random.Random) -> tuple[list[int], tuple[int, int], int]:
        ids = _random_ids(rng, alphabet=3)
        if len(ids) >= 2 and rng.random() < 0.8:  # usually a pair that is present
            i = rng.randrange(len(ids) - 1)
            pair = (ids[i], ids[i + 1])
        else:
            pair = (rng.randrange(3), rng.randrange(3))
        return ids, pair, 256 + rng.randrange(10)

    return check_function(
        fn, apply_merge, make, name="apply_merge", trials=10,
        hint="build a new list: at position i, if ids[i], ids[i+1] equal the pair, append new_id "
             "and jump 2; else append ids[i] and step 1 (so [1, 1, 1] with (1, 1) gives [new, 1])",
        quiet=quiet,
    )


def _random_merges(rng: random.Random, ids: list[int], n: int) -> dict[tuple[int, int], int]:
    """A small merge table learned from `ids` the slow way (most frequent pair first)."""
    merges: dict[tuple[int, int], int] = {}
    work = list(ids)
    for k in range(n):
        counts = count_pairs(work)
        if not counts:
            break
        pair = max(counts, key=lambda p: (counts[p], rng.random()))
        merges[pair] = 256 + k
        work = apply_merge(work, pair, 256 + k)
    return merges


def check_encode_with_merges(fn: Callable[[Sequence[int], dict[tuple[int, int], int]], list[int]],
                             quiet: bool = False) -> CheckResult:
    """Check `fn(ids, merges)`: apply a merge table, always the earliest-learned present pair first.

    Introduced in notebooks/01_tokenization.ipynb.
    """

    def make(rng: random.Random) -> tuple[list[int], dict[tuple[int, int], int]]:
        chunks = [rng.choice([b"ab", b"ba", b"abc", b"c", b" ab", b"aab"]) for _ in range(30)]
        train = [b for chunk in chunks for b in chunk]
        merges = _random_merges(rng, train, rng.randint(1, 6))
        text = bytes(rng.choice(b"abc ") for _ in range(rng.randint(0, 16)))
        return list(text), merges

    return check_function(
        fn, encode_with_merges, make, name="encode_with_merges", trials=8,
        hint="loop: among the pairs present in ids, pick the one that comes first in `merges` "
             "(its rank is its position in the dict); stop when none is in `merges`; "
             "otherwise apply_merge it and repeat",
        quiet=quiet,
    )
