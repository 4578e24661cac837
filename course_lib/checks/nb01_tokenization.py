"""Checks for notebooks/01_tokenization.ipynb: the three pieces the learner writes, then the exercises.

The pieces: ``count_pairs(ids)`` and ``apply_merge(ids, pair, new_id)`` (BPE's merge step;
`check_count_pairs`, `check_apply_merge`) and the ``encode`` of the byte-level BPE ``Tokenizer``
class (merges replayed in the order they were learned; `check_tokenizer_encode`, a class piece
built from a vocabulary and a merge table, then asked to encode a text). The references here
are what the notebook's collapsed reference cells show. The exercises at the end:
`check_split_in_threes` (GPT-2's split with numbers cut in threes), `check_longest_match`
(the same vocabulary used another way: the longest token first) and `check_decode_stream`
(decoding token by token, as a model writes).

Introduced in notebooks/01_tokenization.ipynb.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import regex

from ..tokenizer import GPT2_SPLIT_PATTERN, bytes_to_unicode
from ._core import Case, CheckResult, Exercise, Mistake, describe

__all__ = ["check_apply_merge", "check_count_pairs", "check_decode_stream", "check_longest_match",
           "check_split_in_threes", "check_tokenizer_encode"]

SPLIT_PATTERN = GPT2_SPLIT_PATTERN  # the notebook joins it from its six pieces (section 6)


def _random_ids(rng: random.Random, alphabet: int = 4, max_len: int = 14) -> list[int]:
    # few distinct ids, so pairs repeat and overlap ("1 1 1")
    return [rng.randrange(alphabet) for _ in range(rng.randint(0, max_len))]


# --------------------------------------------------------------------- piece 1: count_pairs
def count_pairs(ids):
    """How often each adjacent pair occurs: [1, 2, 1, 2] -> {(1, 2): 2, (2, 1): 1}."""
    counts = {}
    for pair in zip(ids, ids[1:]):                 # every two neighbours, overlapping
        counts[pair] = counts.get(pair, 0) + 1
    return counts


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


# --------------------------------------------------------------------- piece 2: apply_merge
def apply_merge(ids, pair, new_id):
    """Replace every occurrence of `pair`, scanning left to right, by `new_id`."""
    out, i = [], 0
    while i < len(ids):
        if i + 1 < len(ids) and (ids[i], ids[i + 1]) == tuple(pair):
            out.append(new_id)
            i += 2                       # skip both: [1, 1, 1] merged on (1, 1) is [new_id, 1]
        else:
            out.append(ids[i])
            i += 1
    return out


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


# --------------------------------------------------------------------- piece 3: the tokenizer's encode
class Tokenizer:
    """Byte-level BPE as GPT-2 does it: regex split, UTF-8 bytes, merges replayed in order."""

    def __init__(self, vocab, merges, pattern=SPLIT_PATTERN):
        self.vocab = vocab                # id -> bytes
        self.merges = merges              # (id, id) -> new id, in the order learned
        self.pattern = pattern
        self.byte_id = {b[0]: i for i, b in vocab.items() if len(b) == 1}   # byte value -> its id

    @classmethod
    def train(cls, text, vocab_size, pattern=SPLIT_PATTERN):
        """Learn merges from `text` until the vocabulary has `vocab_size` tokens."""
        vocab = {i: bytes([b]) for i, b in enumerate(bytes_to_unicode())}   # GPT-2's byte order
        byte_id = {b[0]: i for i, b in vocab.items()}
        pieces = Counter(regex.findall(pattern, text))          # each distinct piece once, with its count
        chunks = [[byte_id[b] for b in piece.encode("utf-8")] for piece in pieces]
        weights = list(pieces.values())
        merges = {}
        for new_id in range(256, vocab_size):
            counts = Counter()
            for ids, weight in zip(chunks, weights):
                for pair, n in count_pairs(ids).items():
                    counts[pair] += n * weight
            if not counts:                                      # every piece is a single token
                break
            pair = min(counts, key=lambda p: (-counts[p], p))   # most frequent; ties: smaller ids
            merges[pair] = new_id
            vocab[new_id] = vocab[pair[0]] + vocab[pair[1]]
            chunks = [apply_merge(ids, pair, new_id) for ids in chunks]
        return cls(vocab, merges, pattern)

    def encode(self, text):
        """Text -> ids: split, bytes, then the merges in the order they were learned."""
        ids = []
        for piece in regex.findall(self.pattern, text):
            chunk = [self.byte_id[b] for b in piece.encode("utf-8")]   # one id per byte, GPT-2's order
            while len(chunk) >= 2:
                pair = min(count_pairs(chunk), key=lambda p: self.merges.get(p, math.inf))  # earliest
                if pair not in self.merges:
                    break                                       # no pair left to merge
                chunk = apply_merge(chunk, pair, self.merges[pair])
            ids.extend(chunk)
        return ids

    def decode(self, ids):
        """Ids -> text; bytes that are not valid UTF-8 become the character �."""
        return b"".join(self.vocab[i] for i in ids).decode("utf-8", errors="replace")


@dataclass(frozen=True)
class _Table:
    """A small tokenizer for one case: GPT-2's 256 byte tokens, then `merges` (each the two byte
    strings it joins) in the order learned, new ids 256, 257, ... as a trained table has them."""

    merges: tuple[tuple[bytes, bytes], ...]

    def build(self) -> tuple[dict[int, bytes], dict[tuple[int, int], int]]:
        vocab = {i: bytes([b]) for i, b in enumerate(bytes_to_unicode())}
        token_id = {b: i for i, b in vocab.items()}
        merges = {}
        for a, b in self.merges:
            new_id = len(vocab)
            merges[token_id[a], token_id[b]] = new_id
            vocab[new_id] = a + b
            token_id[a + b] = new_id
        return vocab, merges

    def __repr__(self) -> str:
        if not self.merges:
            return "GPT-2's 256 byte tokens and no merge"
        shown = ", ".join(f"{a!r} with {b!r}" for a, b in self.merges)
        return f"GPT-2's 256 byte tokens, then {len(self.merges)} merges in this order: {shown}"


def _table(*merges: str | bytes) -> _Table:
    """_table("bc", "a|bc"): each merge written as its two parts, split at "|" (or a one-byte pair)."""
    out = []
    for m in merges:
        b = m.encode("utf-8") if isinstance(m, str) else m
        a, _, c = b.partition(b"|") if b"|" in b else (b[:1], b"", b[1:])
        out.append((a, c))
    return _Table(tuple(out))


_TEXT_PIECES = ("ab", "ba", "abc", " ab", " ba", "aab", "c", "é", " é", "😀", "'s", " 12", "\n", "bb")


def _random_text(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(_TEXT_PIECES) for _ in range(n))


def _encode_inputs(rng: random.Random) -> tuple[_Table, str]:
    trained = Tokenizer.train(_random_text(rng, 40), 256 + rng.randint(1, 10))
    table = _Table(tuple((trained.vocab[a], trained.vocab[b]) for a, b in trained.merges))
    return table, _random_text(rng, rng.randint(0, 8))


class _EncodeRunner:
    """Builds the class from a case's table, then encodes the case's text."""

    def __init__(self, piece: type) -> None:
        self.piece = piece

    def __call__(self, table: _Table, text: str) -> Any:
        vocab, merges = table.build()
        return self.piece(vocab, merges).encode(text)


def _encode_verdict(got: Any, expected: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[bool, str]:
    if list(got) == list(expected):
        return True, ""
    vocab, _ = args[0].build()

    def spelled(ids: Sequence[Any]) -> str:
        return "[" + ", ".join(repr(vocab[i]) if i in vocab else f"{i!r} (no such id)" for i in ids) + "]"

    return False, (f"got {describe(list(got), 200)}, that is {spelled(got)}; "
                   f"expected {describe(list(expected), 200)}, that is {spelled(expected)}")


class _TokenizerExercise(Exercise):
    """A class piece that is not an nn.Module: the learner's class, built from a case's table, encodes its text."""

    method = "encode"  # the method the learner writes
    subject = "your encode"

    def _wrong_kind(self, piece: Any) -> str:
        if not isinstance(piece, type):
            return (f"give the class itself, not {describe(piece, 80)}; "
                    "for example check_tokenizer_encode(Tokenizer)")
        return ""

    def _runner(self, piece: Any) -> Callable[..., Any]:
        return _EncodeRunner(piece)

    def _arg_names(self, n: int) -> list[str]:
        return ["tokenizer", "text"][:n]


class _LeftmostFirst(Tokenizer):
    def encode(self, text):
        ids = []
        for piece in regex.findall(self.pattern, text):
            chunk = [self.byte_id[b] for b in piece.encode("utf-8")]
            while True:
                found = [p for p in zip(chunk, chunk[1:]) if p in self.merges]
                if not found:
                    break
                chunk = apply_merge(chunk, found[0], self.merges[found[0]])
            ids.extend(chunk)
        return ids


class _MostFrequentFirst(Tokenizer):
    def encode(self, text):
        ids = []
        for piece in regex.findall(self.pattern, text):
            chunk = [self.byte_id[b] for b in piece.encode("utf-8")]
            while counts := {p: n for p, n in count_pairs(chunk).items() if p in self.merges}:
                pair = max(counts, key=counts.__getitem__)
                chunk = apply_merge(chunk, pair, self.merges[pair])
            ids.extend(chunk)
        return ids


class _BytesAsIds(Tokenizer):
    def encode(self, text):
        ids = []
        for piece in regex.findall(self.pattern, text):
            chunk = list(piece.encode("utf-8"))
            while len(chunk) >= 2:
                pair = min(count_pairs(chunk), key=lambda p: self.merges.get(p, math.inf))
                if pair not in self.merges:
                    break
                chunk = apply_merge(chunk, pair, self.merges[pair])
            ids.extend(chunk)
        return ids


class _NoSplit(Tokenizer):
    def encode(self, text):
        chunk = [self.byte_id[b] for b in text.encode("utf-8")]
        while len(chunk) >= 2:
            pair = min(count_pairs(chunk), key=lambda p: self.merges.get(p, math.inf))
            if pair not in self.merges:
                break
            chunk = apply_merge(chunk, pair, self.merges[pair])
        return chunk


TOKENIZER_ENCODE = _TokenizerExercise(
    name="tokenizer_encode",
    reference=Tokenizer,
    make_inputs=_encode_inputs,
    hints=(
        "encoding replays training: split the text into pieces as training did, turn each piece into "
        "the ids of its bytes, then inside each piece merge the pair that was learned earliest, "
        "again and again, until no pair of the piece has a merge",
        "the earliest-learned pair is the one of lowest rank, and a merge's new id grows with its rank; "
        "not the most frequent pair and not the leftmost one. A byte's id is its place in GPT-2's byte "
        "order, not its value: the constructor keeps that map. A merged token can take part in a later "
        "merge, and an empty text has no ids",
    ),
    cases=(
        Case("a word whose leftmost mergeable pair was learned after a pair to its right",
             (_table("bc", "a|bc", "ab"), "abcbc")),
        Case("a word in which a pair learned later is more frequent than one learned earlier",
             (_table("ab", "bc"), "abcbcbc")),
        Case("a merge of a merged token", (_table("ab", "ab|c"), "abcab")),
        Case("three equal letters and a merge of that letter with itself", (_table("aa"), "aaa")),
        Case("two words, and a merge that would join the end of the first to the space after it",
             (_table("b ", "ab"), "ab ab")),
        Case("multi-byte characters: an é, whose two bytes have a merge, and an emoji of four bytes",
             (_table(b"\xc3\xa9", "af"), "café 😀")),
        Case("a single byte", (_table("ab"), "a")),
        Case("an empty text", (_table("ab"), "")),
    ),
    contract=_list_contract,
    judge=_encode_verdict,
    mistakes=(
        Mistake("merging the leftmost pair that has a merge, not the one learned earliest", _LeftmostFirst),
        Mistake("merging the most frequent pair first (the rule of training), not the one learned earliest",
                _MostFrequentFirst),
        Mistake("the bytes' values taken as ids, where a byte's id is its place in GPT-2's byte order",
                _BytesAsIds),
        Mistake("the text merged as one piece, without the regex split, so merges cross from one word "
                "to the next", _NoSplit),
    ),
    given=("count_pairs", "apply_merge", "bytes_to_unicode", "SPLIT_PATTERN"),
    noun="ids",
)


def check_tokenizer_encode(cls: type, quiet: bool = False) -> CheckResult:
    """`cls` is a `Tokenizer` class: built from (vocab, merges), its ``encode(text)`` gives GPT-2's byte-level
    BPE ids: the regex split, each piece's bytes, then the merges in the order they were learned."""
    return TOKENIZER_ENCODE.check(cls, quiet=quiet)


# --------------------------------------------------------------------- exercise: the longest match first
def longest_match(piece, vocab):
    """`piece` (bytes) -> ids: from the left, always the longest token of `vocab` (id -> bytes) that
    the rest of the piece starts with. Every single byte is a token, so a match always exists."""
    token_id = {b: i for i, b in vocab.items()}
    longest = max(len(b) for b in vocab.values())
    ids, start = [], 0
    while start < len(piece):
        for end in range(min(len(piece), start + longest), start, -1):   # the longest candidate first
            if piece[start:end] in token_id:
                ids.append(token_id[piece[start:end]])
                start = end
                break
    return ids


def _byte_vocab(*tokens: str | bytes) -> dict[int, bytes]:
    vocab = {i: bytes([b]) for i, b in enumerate(bytes_to_unicode())}
    for t in tokens:
        vocab[len(vocab)] = t.encode("utf-8") if isinstance(t, str) else t
    return vocab


def _longest_inputs(rng: random.Random) -> tuple[bytes, dict[int, bytes]]:
    trained = Tokenizer.train(_random_text(rng, 40), 256 + rng.randint(0, 12))
    piece = rng.choice(regex.findall(SPLIT_PATTERN, _random_text(rng, 3)) or [""])
    return piece.encode("utf-8"), dict(trained.vocab)


def _shortest_first(piece: bytes, vocab: dict[int, bytes]) -> list[int]:
    token_id = {b: i for i, b in vocab.items()}
    return [token_id[bytes([b])] for b in piece]


def _longest_from_the_right(piece: bytes, vocab: dict[int, bytes]) -> list[int]:
    token_id = {b: i for i, b in vocab.items()}
    ids, end = [], len(piece)
    while end > 0:
        start = next(s for s in range(end) if piece[s:end] in token_id)
        ids.insert(0, token_id[piece[start:end]])
        end = start
    return ids


LONGEST_MATCH = Exercise(
    name="longest_match",
    reference=longest_match,
    make_inputs=_longest_inputs,
    hints=(
        "walk along the piece from its start; at each place take the longest token of the vocabulary "
        "that the rest of the piece begins with, write down its id and jump past it",
        "look the tokens up by their bytes, not by their ids; try the longest candidates first and "
        "shorten them one byte at a time: a single byte always matches. Never go back to change an "
        "earlier choice, even when it leaves a worse rest; an empty piece has no ids",
    ),
    cases=(
        Case("a piece whose longest first token leaves a rest with no long token",
             (b"abcd", _byte_vocab("ab", "bcd"))),
        Case("a piece that is one token of the vocabulary", (b" the", _byte_vocab(" t", " th", " the", "he"))),
        Case("multi-byte characters, one of them a token", ("café😀".encode(), _byte_vocab("é", "caf"))),
        Case("a single byte", (b"x", _byte_vocab("xy"))),
        Case("an empty piece", (b"", _byte_vocab("ab"))),
    ),
    contract=_list_contract,
    noun="ids",
    mistakes=(
        Mistake("the shortest match taken, one byte at a time", _shortest_first),
        Mistake("the longest match taken from the right end of the piece instead of from its start",
                _longest_from_the_right),
    ),
)


def check_longest_match(fn: Callable[[bytes, dict[int, bytes]], list[int]], quiet: bool = False) -> CheckResult:
    """Check `fn(piece, vocab)`: the piece's bytes cut greedily from the left, the longest token each time."""
    return LONGEST_MATCH.check(fn, quiet=quiet)


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
