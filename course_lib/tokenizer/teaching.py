"""The pieces the notebook builds: `count_pairs`, `apply_merge`, `encode_with_merges`,
GPT-2's byte alphabet (`bytes_to_unicode`) and the `CharTokenizer` baseline.

The byte-level BPE in `bpe.py` is built from these ideas; `tests/test_tokenizer.py`
checks that the plain functions and the fast class give the same ids.

Reference: Sennrich et al. 2016, "Neural Machine Translation of Rare Words with Subword
Units", https://arxiv.org/abs/1508.07909

Introduced in notebooks/01_tokenization.ipynb.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import lru_cache

from ..errors import CourseInputError

ENDOFTEXT = "<|endoftext|>"

# GPT-2's pre-tokenization regex: contractions, letters, numbers, other symbols, each
# with at most one leading space; whitespace runs leave their last space to the next word.
GPT2_SPLIT_PATTERN = (
    r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
)


# ---------------------------------------------------------------------------
# The three small functions the notebook builds (and its exercises check)
# ---------------------------------------------------------------------------

def count_pairs(ids: Sequence[int]) -> dict[tuple[int, int], int]:
    """How often each adjacent pair occurs in `ids`: ``[1, 2, 1, 2]`` -> ``{(1, 2): 2, (2, 1): 1}``.
    """
    counts: dict[tuple[int, int], int] = {}
    for pair in zip(ids, ids[1:]):
        counts[pair] = counts.get(pair, 0) + 1
    return counts


def apply_merge(ids: Sequence[int], pair: tuple[int, int], new_id: int) -> list[int]:
    """Replace every occurrence of `pair` in `ids`, left to right, by `new_id`."""
    out: list[int] = []
    i = 0
    while i < len(ids):
        if i + 1 < len(ids) and ids[i] == pair[0] and ids[i + 1] == pair[1]:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def encode_with_merges(ids: Sequence[int], merges: dict[tuple[int, int], int]) -> list[int]:
    """Apply a merge table to `ids`: repeatedly merge the present pair learned first.

    `merges` maps a pair to its new id, in the order the merges were learned (a
    dict keeps insertion order), so a pair's position in the dict is its rank.
    """
    rank = {pair: r for r, pair in enumerate(merges)}
    ids = list(ids)
    while len(ids) >= 2:
        pair = min(zip(ids, ids[1:]), key=lambda p: rank.get(p, float("inf")))
        if pair not in rank:
            break
        ids = apply_merge(ids, pair, merges[pair])
    return ids


@lru_cache(maxsize=1)
def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible map from the 256 bytes to printable characters.

    Printable bytes stand for themselves; the others (control characters, space,
    ...) are shifted to code points from 256 up, so a space shows as ``Ġ``. Vocabulary
    files store tokens in this form. The order of the keys is GPT-2's byte order.
    """
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(
        range(ord("®"), ord("ÿ") + 1)
    )
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


@lru_cache(maxsize=1)
def _unicode_to_bytes() -> dict[str, int]:
    return {c: b for b, c in bytes_to_unicode().items()}


def _token_str(b: bytes) -> str:
    table = bytes_to_unicode()
    return "".join(table[x] for x in b)


def _token_bytes(s: str, where: str) -> bytes:
    table = _unicode_to_bytes()
    try:
        return bytes(table[c] for c in s)
    except KeyError:
        raise CourseInputError(
            f"{where}: token {s!r} is not in GPT-2's byte-level alphabet; "
            "expected a byte-level BPE vocabulary (vocab.json + merges.txt)"
        ) from None


# ---------------------------------------------------------------------------
# Characters
# ---------------------------------------------------------------------------

class CharTokenizer:
    """One id per distinct character of the training text (sorted), as in nanoGPT."""

    def __init__(self, chars: Iterable[str]) -> None:
        self.itos: list[str] = sorted(set(chars))
        self.stoi: dict[str, int] = {c: i for i, c in enumerate(self.itos)}

    @classmethod
    def train(cls, text: str) -> CharTokenizer:
        """The characters of `text` become the vocabulary."""
        if not isinstance(text, str) or not text:
            raise CourseInputError("CharTokenizer.train: text is empty; give it some text to learn from")
        return cls(text)

    def encode(self, text: str) -> list[int]:
        """Ids of the characters of `text`; an unseen character raises `CourseInputError`."""
        try:
            return [self.stoi[c] for c in text]
        except KeyError as e:
            raise CourseInputError(
                f"character {e.args[0]!r} is not in this CharTokenizer's vocabulary of "
                f"{len(self)} characters (it never appeared in the training text)"
            ) from None

    encode_ordinary = encode

    def decode(self, ids: Iterable[int]) -> str:
        """The text of `ids`."""
        return "".join(self.itos[i] for i in ids)

    def token_text(self, i: int) -> str:
        """The text of token `i` (one character)."""
        return self.itos[i]

    def __len__(self) -> int:
        return len(self.itos)

    def __repr__(self) -> str:
        return f"CharTokenizer(vocab_size={len(self)})"
