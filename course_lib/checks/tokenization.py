"""Checks for notebooks/01_tokenization.ipynb: count pairs, apply one merge, encode with a merge table.

Each compares the learner's function with the reference in `course_lib.tokenizer`
(`count_pairs`, `apply_merge`, `encode_with_merges`): fixed cases for the classic
mistakes first, then seeded random inputs.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..tokenizer import apply_merge, count_pairs, encode_with_merges
from ._core import Case, CheckResult, Exercise

__all__ = ["check_apply_merge", "check_count_pairs", "check_encode_with_merges"]


def _random_ids(rng: random.Random, alphabet: int = 4, max_len: int = 14) -> list[int]:
    # few distinct ids, so pairs repeat and overlap ("1 1 1")
    return [rng.randrange(alphabet) for _ in range(rng.randint(0, max_len))]


def _pair_counts_contract(got: Any) -> str | None:
    if not isinstance(got, Mapping):
        return f"your result is a {type(got).__name__}; return a dict from each pair to its count"
    bad = [k for k in got if not (isinstance(k, tuple) and len(k) == 2)]
    if bad:
        return f"the keys must be pairs (tuples of two ids); {bad[0]!r} is not"
    return None


COUNT_PAIRS = Exercise(
    name="count_pairs",
    reference=count_pairs,
    make_inputs=lambda rng: (_random_ids(rng),),
    hints=(
        "look at every two neighbours, the first with the second, the second with the third and so on; "
        "a pair seen again adds one to its count",
        "overlapping pairs all count: three equal ids in a row hold that pair twice; a list with fewer "
        "than two ids has no pairs at all, so the answer is an empty dict",
    ),
    cases=(
        Case("overlapping pairs both count", ([1, 1, 1],)),
        Case("a pair that occurs twice", ([1, 2, 1, 2],)),
        Case("an empty list has no pairs", ([],)),
        Case("one id has no pairs", ([7],)),
    ),
    contract=_pair_counts_contract,
)


def check_count_pairs(fn: Callable[[Sequence[int]], dict[tuple[int, int], int]],
                      quiet: bool = False) -> CheckResult:
    """Check `fn(ids)`: a dict from each adjacent pair of `ids` to how often it occurs.

    Introduced in notebooks/01_tokenization.ipynb.
    """
    return COUNT_PAIRS.check(fn, quiet=quiet)


def _merge_inputs(rng: random.Random) -> tuple[list[int], tuple[int, int], int]:
    ids = _random_ids(rng, alphabet=3)
    if len(ids) >= 2 and rng.random() < 0.8:  # usually a pair that is present
        i = rng.randrange(len(ids) - 1)
        pair = (ids[i], ids[i + 1])
    else:
        pair = (rng.randrange(3), rng.randrange(3))
    return ids, pair, 256 + rng.randrange(10)


def _list_contract(got: Any) -> str | None:
    if not isinstance(got, (list, tuple)):
        return f"your result is a {type(got).__name__}; return a list of ids"
    return None


APPLY_MERGE = Exercise(
    name="apply_merge",
    reference=apply_merge,
    make_inputs=_merge_inputs,
    hints=(
        "build a new list while walking along the old one from left to right; "
        "when the pair starts at the current position, the two ids become one new id",
        "after a merge, move past both ids of the pair; otherwise copy the id and move on by one. "
        "So three equal ids with that pair give the new id followed by the third id, and a pair "
        "in the other order is not merged",
    ),
    cases=(
        Case("overlapping occurrences: merged left to right, once", ([1, 1, 1], (1, 1), 256)),
        Case("two occurrences side by side", ([1, 2, 1, 2], (1, 2), 300)),
        Case("the pair at the very end", ([3, 1, 2], (1, 2), 256)),
        Case("the pair in the other order is not the pair", ([2, 1, 2, 1], (1, 2), 256)),
        Case("the pair is absent", ([1, 3, 3], (1, 2), 256)),
        Case("an empty list", ([], (1, 2), 256)),
    ),
    contract=_list_contract,
)


def check_apply_merge(fn: Callable[[Sequence[int], tuple[int, int], int], list[int]],
                      quiet: bool = False) -> CheckResult:
    """Check `fn(ids, pair, new_id)`: every occurrence of `pair`, left to right, becomes `new_id`.

    Introduced in notebooks/01_tokenization.ipynb.
    """
    return APPLY_MERGE.check(fn, quiet=quiet)


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


def _encode_inputs(rng: random.Random) -> tuple[list[int], dict[tuple[int, int], int]]:
    chunks = [rng.choice([b"ab", b"ba", b"abc", b"c", b" ab", b"aab"]) for _ in range(30)]
    train = [b for chunk in chunks for b in chunk]
    merges = _random_merges(rng, train, rng.randint(1, 6))
    text = bytes(rng.choice(b"abc ") for _ in range(rng.randint(0, 16)))
    return list(text), merges


ENCODE_WITH_MERGES = Exercise(
    name="encode_with_merges",
    reference=encode_with_merges,
    make_inputs=_encode_inputs,
    hints=(
        "encoding replays training in the same order: the pair learned earliest wins, "
        "not the pair that is most frequent in the text you encode",
        "repeat: among the neighbouring pairs present now, find the one with the lowest rank in the "
        "merge table (its position in the dict), merge it everywhere, and start again; stop when no "
        "present pair is in the table. A new id can itself be part of a later merge",
    ),
    cases=(
        Case("merge order, not frequency: the earlier merge wins although the later pair is more frequent",
             ([1, 2, 3, 2, 3], {(1, 2): 256, (2, 3): 257})),
        Case("a merge of a merged token", ([1, 2, 3], {(1, 2): 256, (256, 3): 257})),
        Case("the first merge of the table is absent, later ones apply",
             ([5, 6, 5, 6], {(1, 2): 256, (5, 6): 257, (257, 257): 258})),
        Case("nothing to merge", ([4, 3, 2, 1], {(1, 2): 256})),
        Case("an empty text", ([], {(1, 2): 256})),
    ),
    contract=_list_contract,
)


def check_encode_with_merges(fn: Callable[[Sequence[int], dict[tuple[int, int], int]], list[int]],
                             quiet: bool = False) -> CheckResult:
    """Check `fn(ids, merges)`: apply a merge table, always the earliest-learned present pair first.

    Introduced in notebooks/01_tokenization.ipynb.
    """
    return ENCODE_WITH_MERGES.check(fn, quiet=quiet)
