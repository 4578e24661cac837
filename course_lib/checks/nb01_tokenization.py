"""Checks for notebooks/01_tokenization.ipynb.

The notebook's exercises: `check_split_in_threes` (GPT-2's regex split, numbers cut into
groups of three digits), `check_encode_with_merges` (a merge table applied in rank order,
whatever the ids) and `check_decode_stream` (decoding token by token, as a model writes).
`check_count_pairs` and `check_apply_merge` check the two helpers the notebook now writes
in its lesson. Each compares the learner's function with a reference: fixed cases for the
classic mistakes first, then seeded random inputs.

Introduced in notebooks/01_tokenization.ipynb.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import regex

from ..tokenizer import apply_merge, count_pairs, encode_with_merges
from ._core import Case, CheckResult, Exercise, Mistake

__all__ = ["check_apply_merge", "check_count_pairs", "check_decode_stream", "check_encode_with_merges",
           "check_split_in_threes"]


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


def _pairs_two_by_two(ids: Sequence[int]) -> dict[tuple[int, int], int]:
    counts: dict[tuple[int, int], int] = {}
    for pair in zip(ids[::2], ids[1::2]):
        counts[pair] = counts.get(pair, 0) + 1
    return counts


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
        Case("three equal ids in a row", ([1, 1, 1],)),
        Case("a pair that occurs twice", ([1, 2, 1, 2],)),
        Case("an empty list", ([],)),
        Case("a single id", ([7],)),
    ),
    contract=_pair_counts_contract,
    mistakes=(Mistake("counting the ids two by two, so overlapping pairs are missed", _pairs_two_by_two),),
)


def check_count_pairs(fn: Callable[[Sequence[int]], dict[tuple[int, int], int]],
                      quiet: bool = False) -> CheckResult:
    """Check `fn(ids)`: a dict from each adjacent pair of `ids` to how often it occurs."""
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


def _merge_step_one(ids: Sequence[int], pair: tuple[int, int], new_id: int) -> list[int]:
    return [new_id if tuple(ids[i:i + 2]) == tuple(pair) else ids[i] for i in range(len(ids))]


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
        Case("three equal ids, merging that id with itself", ([1, 1, 1], (1, 1), 256)),
        Case("two occurrences side by side", ([1, 2, 1, 2], (1, 2), 300)),
        Case("the pair at the very end", ([3, 1, 2], (1, 2), 256)),
        Case("the pair's two ids, but in the other order", ([2, 1, 2, 1], (1, 2), 256)),
        Case("a list without the pair", ([1, 3, 3], (1, 2), 256)),
        Case("an empty list", ([], (1, 2), 256)),
    ),
    contract=_list_contract,
    mistakes=(Mistake("moving on by one id after a merge instead of two, so the pair's second id is "
                      "looked at again", _merge_step_one),),
)


def check_apply_merge(fn: Callable[[Sequence[int], tuple[int, int], int], list[int]],
                      quiet: bool = False) -> CheckResult:
    """Check `fn(ids, pair, new_id)`: every occurrence of `pair`, left to right, becomes `new_id`.
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


def _renumbered(rng: random.Random, merges: dict[tuple[int, int], int]) -> dict[tuple[int, int], int]:
    """The same table with its new ids shuffled: the rank stays the position in the dict."""
    new = list(merges.values())
    perm = dict(zip(new, rng.sample(new, len(new))))
    ren = {i: perm.get(i, i) for i in range(256)} | perm
    return {(ren.get(a, a), ren.get(b, b)): perm[i] for (a, b), i in merges.items()}


def _encode_inputs(rng: random.Random) -> tuple[list[int], dict[tuple[int, int], int]]:
    chunks = [rng.choice([b"ab", b"ba", b"abc", b"c", b" ab", b"aab"]) for _ in range(30)]
    train = [b for chunk in chunks for b in chunk]
    merges = _random_merges(rng, train, rng.randint(1, 6))
    if rng.random() < 0.5:  # a table whose new ids do not grow with the rank
        merges = _renumbered(rng, merges)
    text = bytes(rng.choice(b"abc ") for _ in range(rng.randint(0, 16)))
    return list(text), merges


def _encode_most_frequent_first(ids: Sequence[int], merges: dict[tuple[int, int], int]) -> list[int]:
    ids = list(ids)
    while counts := {p: n for p, n in count_pairs(ids).items() if p in merges}:
        pair = max(counts, key=counts.__getitem__)
        ids = apply_merge(ids, pair, merges[pair])
    return ids


def _encode_by_new_id(ids: Sequence[int], merges: dict[tuple[int, int], int]) -> list[int]:
    by_id = dict(sorted(merges.items(), key=lambda item: item[1]))
    return encode_with_merges(ids, by_id)


ENCODE_WITH_MERGES = Exercise(
    name="encode_with_merges",
    reference=encode_with_merges,
    make_inputs=_encode_inputs,
    hints=(
        "encoding replays training in the same order: the pair learned earliest wins, "
        "not the pair that is most frequent in the text you encode, nor the one with the smallest new id",
        "repeat: among the neighbouring pairs present now, find the one with the lowest rank in the "
        "merge table (its position in the dict), merge it everywhere, and start again; stop when no "
        "present pair is in the table. A new id can itself be part of a later merge",
        "the rank is the position in the dict, not the size of the new id: in a renumbered table a "
        "later merge may have a smaller new id, so number the pairs in their order first",
    ),
    cases=(
        Case("a text where the later pair of the table is more frequent than the earlier one",
             ([1, 2, 3, 2, 3], {(1, 2): 256, (2, 3): 257})),
        Case("a table whose first merge has the larger new id", ([1, 2, 3], {(2, 3): 300, (1, 2): 256})),
        Case("a merge of a merged token", ([1, 2, 3], {(1, 2): 256, (256, 3): 257})),
        Case("a table whose first merge does not occur in the text",
             ([5, 6, 5, 6], {(1, 2): 256, (5, 6): 257, (257, 257): 258})),
        Case("a text with nothing to merge", ([4, 3, 2, 1], {(1, 2): 256})),
        Case("an empty text", ([], {(1, 2): 256})),
    ),
    contract=_list_contract,
    mistakes=(
        Mistake("merging the most frequent pair first (the rule of training), not the one learned earliest",
                _encode_most_frequent_first),
        Mistake("taking the smallest new id as the earliest merge, where the rank is the position in the table",
                _encode_by_new_id),
    ),
)


def check_encode_with_merges(fn: Callable[[Sequence[int], dict[tuple[int, int], int]], list[int]],
                             quiet: bool = False) -> CheckResult:
    """Check `fn(ids, merges)`: apply a merge table, always the earliest-learned present pair first.
    """
    return ENCODE_WITH_MERGES.check(fn, quiet=quiet)


# --------------------------------------------------------------------- the regex split, in threes

def split_in_threes(text: str) -> list[str]:
    """GPT-2's pre-split, except that a number is cut into groups of at most three digits."""
    pattern = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}{1,3}| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
    return regex.findall(pattern, text)


_THREES = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}{1,3}| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


_PIECES = ("It", "'s", " ", "  ", "\n", "word", "naïve", "日本", "2024", "12345", "7", "½", "x²", "!", "...",
           "'ll", "1,000,000", "\t", "3.14159", "😀", "-")


def _split_inputs(rng: random.Random) -> tuple[str]:
    return ("".join(rng.choice(_PIECES) for _ in range(rng.randint(0, 12))),)


def _str_list_contract(got: Any) -> str | None:
    if not isinstance(got, (list, tuple)) or not all(isinstance(p, str) for p in got):
        return f"your result is {type(got).__name__}; return a list of strings, the pieces in order"
    return None


SPLIT = Exercise(
    name="split_in_threes",
    reference=split_in_threes,
    make_inputs=_split_inputs,
    hints=(
        "start from GPT-2's pattern: only the alternative for numbers changes; every other piece of "
        "the pattern stays as it is",
        "the number alternative keeps its optional leading space and its class of all numeric "
        "characters, but matches one to three of them, so a long number becomes several matches "
        "taken from the left; only the first can carry the space",
    ),
    cases=(
        Case("a five-digit number", ("12345",)),
        Case("a number after a space", ("in 2024 AD",)),
        Case("a superscript and a fraction", ("x² and ½ cup",)),
        Case("a contraction, two spaces in a row and newlines", ("It's  a test!\n\nok",)),
    ),
    contract=_str_list_contract,
    noun="pieces",
    mistakes=(
        Mistake("a number alternative without the optional space before it", lambda text: regex.findall(
            _THREES.replace(r" ?\p{N}{1,3}", r"\p{N}{1,3}"), text)),
        Mistake("the digits 0 to 9 instead of every numeric character: superscripts and fractions are lost",
                lambda text: regex.findall(_THREES.replace(r"\p{N}{1,3}", r"\d{1,3}"), text)),
    ),
)


def check_split_in_threes(fn: Callable[[str], list[str]], quiet: bool = False) -> CheckResult:
    """Check `fn(text)`: GPT-2's regex split with numbers cut into groups of at most three digits.
    """
    return SPLIT.check(fn, quiet=quiet)


# --------------------------------------------------------------------- decoding a stream

def decode_stream(ids: Sequence[int], vocab: Mapping[int, bytes]) -> list[str]:
    """The text to show after each token: whole characters at once, an unfinished one waits."""
    shown, pending = [], b""
    for i in ids:
        pending += vocab[i]
        wait = 0  # how many bytes at the end belong to a character that is not finished yet
        for back in range(1, min(3, len(pending)) + 1):
            byte = pending[-back]
            if byte < 0b1000_0000:  # ASCII: nothing is unfinished
                break
            if byte >= 0b1100_0000:  # the first byte of a character: how long is it?
                length = 2 if byte < 0b1110_0000 else 3 if byte < 0b1111_0000 else 4
                wait = back if back < length else 0
                break
        done = len(pending) - wait
        shown.append(pending[:done].decode("utf-8", errors="replace"))
        pending = pending[done:]
    return shown


def _stream_inputs(rng: random.Random) -> tuple[list[int], dict[int, bytes]]:
    text = "".join(rng.choice(["a", " ", "é", "日", "😀", "ok", "\n", "ß"]) for _ in range(rng.randint(0, 10)))
    data = text.encode("utf-8")
    cuts = sorted(rng.sample(range(1, len(data)), min(len(data) - 1, rng.randint(0, 8)))) if len(data) > 1 else []
    pieces = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)]) if data]
    vocab: dict[int, bytes] = {}
    ids: list[int] = []
    for piece in pieces:
        known = [i for i, b in vocab.items() if b == piece]
        if not known:
            known = [300 + len(vocab) * 7]
            vocab[known[0]] = piece
        ids.append(known[0])
    vocab[999] = "¿".encode()  # a token the text does not use
    return ids, vocab


def _stream_contract(got: Any) -> str | None:
    if not isinstance(got, (list, tuple)) or not all(isinstance(p, str) for p in got):
        return (f"your result is {type(got).__name__}; return a list of strings, one per token "
                "(an empty string when nothing can be shown yet)")
    return None


def _stream_until_it_decodes(ids: Sequence[int], vocab: Mapping[int, bytes]) -> list[str]:
    shown, pending = [], b""
    for i in ids:
        pending += vocab[i]
        try:
            shown.append(pending.decode("utf-8"))
            pending = b""
        except UnicodeDecodeError:
            shown.append("")
    return shown


_EMOJI = "😀".encode()
DECODE_STREAM = Exercise(
    name="decode_stream",
    reference=decode_stream,
    make_inputs=_stream_inputs,
    hints=(
        "a character's bytes may arrive in two or more tokens; keep the bytes that do not yet make "
        "a whole character, and show them once the rest has come",
        "show every finished character at once and hold back only the unfinished end. UTF-8 says "
        "in a character's first byte how many bytes it has; the bytes that continue a character "
        "all look alike, so walk back from the end to the first byte of the last character. "
        "Python's codecs module also has a decoder that remembers what it was given",
    ),
    cases=(
        Case("a character split across two tokens",
             ([0, 1], {0: "日".encode()[:2], 1: "日".encode()[2:]})),
        Case("tokens that each finish one character and start the next",
             ([0, 1, 2], {0: b"a" + "é".encode()[:1], 1: "é".encode()[1:] + _EMOJI[:2], 2: _EMOJI[2:]})),
        Case("an emoji in four tokens of one byte each",
             ([3, 2, 1, 0], {3: _EMOJI[:1], 2: _EMOJI[1:2], 1: _EMOJI[2:3], 0: _EMOJI[3:]})),
        Case("plain ASCII", ([5, 6], {5: b"hi", 6: b" there"})),
        Case("no tokens", ([], {0: b"a"})),
    ),
    contract=_stream_contract,
    noun="text pieces",
    mistakes=(
        Mistake("holding every byte back until all of them decode, so a finished character waits too",
                _stream_until_it_decodes),
        Mistake("decoding each token on its own, so a split character becomes replacement marks",
                lambda ids, vocab: [vocab[i].decode("utf-8", errors="replace") for i in ids]),
    ),
)


def check_decode_stream(fn: Callable[[Sequence[int], Mapping[int, bytes]], list[str]],
                        quiet: bool = False) -> CheckResult:
    """Check `fn(ids, vocab)`: the text shown after each token, unfinished characters held back."""
    return DECODE_STREAM.check(fn, quiet=quiet)
