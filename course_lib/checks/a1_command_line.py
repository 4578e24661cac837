"""Checks for the exercises of notebooks/A1_command_line.ipynb: leaks between augmented training and
validation lines, found two new ways.

`check_leak_groups`: the lines that share an original, directly or through a chain of lines made
from two originals, form one group (connected components); a split that keeps every group on one
side has no leak through a shared original. `check_ngram_overlap`: without parents, the share of
each validation line's word n-grams that training holds, the detector used on real data.

Introduced in notebooks/A1_command_line.ipynb.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Hashable, Sequence
from typing import Any

from ._core import Case, CheckResult, Exercise, Mistake, as_number, describe

__all__ = ["check_leak_groups", "check_ngram_overlap"]


# --------------------------------------------------------------------- exercise 1: groups of relatives
def reference_leak_groups(parents: Sequence[Sequence[int]]) -> list[int]:
    """One group number per line: lines that share an original, directly or through a chain of
    lines, get the same number. `parents[i]` holds the originals line i was made from (one or more).
    The groups are numbered 0, 1, 2, ... in the order their first line appears."""
    root: dict[int, int] = {}  # original -> another original of its group, up to the group's root

    def find(p: int) -> int:
        while root.setdefault(p, p) != p:
            p = root[p]
        return p

    for originals in parents:
        for p in originals[1:]:  # a line made from several originals joins their groups
            root[find(p)] = find(originals[0])
    number: dict[int, int] = {}
    return [number.setdefault(find(originals[0]), len(number)) for originals in parents]


def _renumbered(groups: Sequence[Hashable]) -> list[int]:
    number: dict[Hashable, int] = {}
    return [number.setdefault(g, len(number)) for g in groups]


def _groups_verdict(got: Any, expected: list[int], args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[bool, str]:
    if not isinstance(got, (list, tuple)):
        return False, f"your result is {describe(got, 80)}; return a list with one group per line"
    if len(got) != len(expected):
        return False, f"your result has {len(got)} groups for {len(expected)} lines; give one per line"
    try:
        mine = _renumbered(got)
    except TypeError:
        return False, "your group labels must be numbers (or other values that can be compared)"
    for i, (a, b) in enumerate(zip(mine, expected)):
        if a != b:
            j = expected.index(b)
            if j < i:
                return False, (f"lines {j} and {i} must be in the same group (they share an original, "
                               "perhaps through other lines); yours puts them apart")
            k = mine.index(a)
            return False, f"lines {k} and {i} share no original, not even through other lines; yours groups them"
    return True, ""


def _by_first_original(parents: Sequence[Sequence[int]]) -> list[int]:
    return _renumbered([originals[0] for originals in parents])


def _direct_only(parents: Sequence[Sequence[int]]) -> list[int]:
    """Joins a line to the group of the first earlier line it shares an original with: no chains."""
    groups: list[int] = []
    for i, originals in enumerate(parents):
        mate = next((j for j in range(i) if set(parents[j]) & set(originals)), None)
        groups.append(groups[mate] if mate is not None else len(set(groups)))
    return _renumbered(groups)


def _groups_inputs(rng: random.Random) -> tuple[list[tuple[int, ...]]]:
    n_originals = rng.randint(1, 12)
    parents: list[tuple[int, ...]] = [(i,) for i in range(n_originals)]
    for _ in range(rng.randint(0, 12)):
        k = rng.choice([1, 1, 2])
        parents.append(tuple(rng.sample(range(n_originals), min(k, n_originals))))
    rng.shuffle(parents)
    return (parents,)


LEAK_GROUPS = Exercise(
    name="leak_groups",
    reference=reference_leak_groups,
    make_inputs=_groups_inputs,
    hints=(
        "two lines are relatives when they share an original; a line made from two originals makes "
        "relatives of every line of either, so follow the chains: the groups are the connected parts",
        "keep for every original the group it belongs to; a line with several originals merges their "
        "groups into one (all of their members, not only the line itself). When every line is seen, "
        "give each line the final group of its first original; any labels will do, as long as "
        "relatives share one and strangers do not",
    ),
    cases=(
        Case("a chain: lines made from originals 0 and 1, then from 1 and 2",
             ([(0,), (1,), (2,), (3,), (0, 1), (1, 2)],)),
        Case("a line whose two originals each have other lines, seen before it",
             ([(0,), (1,), (0,), (1,), (0, 1)],)),
        Case("lines that share nothing", ([(2,), (0,), (1,)],)),
        Case("a single line", ([(5,)],)),
        Case("no lines", ([],)),
    ),
    judge=_groups_verdict,
    noun="groups",
    mistakes=(
        Mistake("the lines grouped by their first original only, so a line made from two originals does "
                "not join their groups", _by_first_original),
        Mistake("a line joined to the group of one relative only, without following the chains",
                _direct_only),
    ),
)


def check_leak_groups(fn: Callable[..., Any], *, quiet: bool = False) -> CheckResult:
    """Exercise: ``leak_groups(parents) -> list``, one group per line, relatives (a shared original,
    also through chains) in the same group and no one else."""
    return LEAK_GROUPS.check(fn, quiet=quiet)


# --------------------------------------------------------------------- exercise 2: n-gram overlap
def reference_ngram_overlap(train_lines: Sequence[str], val_lines: Sequence[str], n: int) -> list[float]:
    """For each validation line, the share of its distinct word n-grams (words split at whitespace,
    n in a row, within one line) that occur in some training line; 0.0 for a line with fewer than n words."""

    def grams(line: str) -> set[tuple[str, ...]]:
        w = line.split()
        return {tuple(w[i:i + n]) for i in range(len(w) - n + 1)}

    seen = set().union(*(grams(line) for line in train_lines))
    shares = []
    for line in val_lines:
        mine = grams(line)
        shares.append(len(mine & seen) / len(mine) if mine else 0.0)
    return shares


def _joined_training(train_lines: Sequence[str], val_lines: Sequence[str], n: int) -> list[float]:
    w = " ".join(train_lines).split()
    seen = {tuple(w[i:i + n]) for i in range(len(w) - n + 1)}
    out = []
    for line in val_lines:
        v = line.split()
        mine = {tuple(v[i:i + n]) for i in range(len(v) - n + 1)}
        out.append(len(mine & seen) / len(mine) if mine else 0.0)
    return out


def _short_lines_seen(train_lines: Sequence[str], val_lines: Sequence[str], n: int) -> list[float]:
    shares = reference_ngram_overlap(train_lines, val_lines, n)
    return [1.0 if len(line.split()) < n else s for s, line in zip(shares, val_lines)]


def _counted_with_repeats(train_lines: Sequence[str], val_lines: Sequence[str], n: int) -> list[float]:
    seen = {tuple(t.split()[i:i + n]) for t in train_lines for i in range(len(t.split()) - n + 1)}
    out = []
    for line in val_lines:
        v = line.split()
        mine = [tuple(v[i:i + n]) for i in range(len(v) - n + 1)]
        out.append(sum(g in seen for g in mine) / len(mine) if mine else 0.0)
    return out


_WORDS = "the cat sat on a mat sea boat rain fell dog ran home".split()


def _line(rng: random.Random) -> str:
    return " ".join(rng.choice(_WORDS[:rng.randint(3, len(_WORDS))]) for _ in range(rng.randint(1, 8)))


def _overlap_inputs(rng: random.Random) -> tuple[Any, ...]:
    train = [_line(rng) for _ in range(rng.randint(1, 8))]
    val = [_line(rng) for _ in range(rng.randint(0, 5))] + [rng.choice(train) for _ in range(rng.randint(0, 2))]
    rng.shuffle(val)
    return train, val, rng.randint(1, 4)


def _shares_contract(got: Any) -> str | None:
    if not isinstance(got, (list, tuple)) or not all(as_number(s) is not None for s in got):
        return f"your result is {describe(got, 80)}; return a list with one share (a number) per validation line"
    return None


NGRAM_OVERLAP = Exercise(
    name="ngram_overlap",
    reference=reference_ngram_overlap,
    make_inputs=_overlap_inputs,
    hints=(
        "collect once every run of n words that occurs inside a training line; then, for each "
        "validation line, the share is how many of its own runs of n words are in that collection, "
        "out of how many it has",
        "cut every line into words at whitespace and take the runs of n words that start at each word "
        "and stay inside the line, each distinct run once. A run never crosses from the end of one line "
        "into the next. A line with fewer than n words has no run at all and shares nothing: zero",
    ),
    cases=(
        Case("a validation line made of the ends of two training lines",
             (["the cat sat on", "a mat by the sea"], ["sat on a mat"], 2)),
        Case("a validation line shorter than n words", (["one two three"], ["one two", "one two three"], 3)),
        Case("a validation line that repeats its n-grams", (["a b"], ["a b a b a c"], 2)),
        Case("no validation lines", (["a b c"], [], 2)),
    ),
    contract=_shares_contract,
    noun="shares",
    mistakes=(
        Mistake("the training lines joined into one text, so n-grams run across line ends", _joined_training),
        Mistake("a line with no n-gram counted as entirely seen", _short_lines_seen),
        Mistake("the n-grams of a validation line counted with their repeats instead of once each",
                _counted_with_repeats),
    ),
)


def check_ngram_overlap(fn: Callable[..., Any], *, quiet: bool = False) -> CheckResult:
    """Exercise: ``ngram_overlap(train_lines, val_lines, n) -> list``: for each validation line, the share
    of its distinct word n-grams found inside training lines (0.0 without any)."""
    return NGRAM_OVERLAP.check(fn, quiet=quiet)
