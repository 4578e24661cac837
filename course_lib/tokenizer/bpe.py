"""Byte-level BPE from scratch, with exact GPT-2 parity: `BPETokenizer`.

Text is split with GPT-2's regex, each piece is turned into UTF-8 bytes, and learned merges
join adjacent tokens, lowest rank first.
Trained tokenizers use GPT-2's layout: ids 0-255 are the 256 bytes in GPT-2's order,
merges follow (id 256 + rank), special tokens come last. `save` writes GPT-2's own files
(``vocab.json``, ``merges.txt``) plus a small config, so ``transformers.AutoTokenizer``
loads what the course trained.

Reference: Radford et al. 2019 (GPT-2, byte-level BPE) and openai/gpt-2's ``encoder.py``.

Introduced in notebooks/01_tokenization.ipynb.
"""

from __future__ import annotations

import heapq
import json
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import regex

from ..errors import CourseInputError
from .hf_files import _declared_specials, _write_hf_config
from .teaching import ENDOFTEXT, GPT2_SPLIT_PATTERN, _token_bytes, _token_str, bytes_to_unicode
from .trainer import _train_merges

_CACHE_LIMIT = 200_000  # words kept in the encoding cache
_LONG_WORD = 256  # bytes; longer words are encoded with a heap (O(n log n)) instead of rescans


def check_vocab_size(vocab_size: int, special_tokens: Sequence[str]) -> None:
    """Refuse a vocabulary size that is not a whole number or leaves no room for the bytes and specials.

    Shared by `BPETokenizer.train` and `train_hf_tokenizer`: both count 256 bytes + merges +
    special tokens.
    """
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int):
        raise CourseInputError(f"vocab_size must be a whole number, got {vocab_size!r}")
    floor = 256 + len(special_tokens)
    if vocab_size < floor:
        raise CourseInputError(
            f"vocab_size {vocab_size} is too small: it must be at least {floor} "
            f"(256 bytes + {len(special_tokens)} special token(s))"
        )


def split_special(text: str, special_tokens: Sequence[str]) -> list[str]:
    """`text` cut at every special token (longest first), which is dropped: specials are never merged."""
    if not special_tokens:
        return [text]
    sp = regex.compile("|".join(regex.escape(s) for s in sorted(special_tokens, key=len, reverse=True)))
    return sp.split(text)


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
        """
        special_tokens = list(dict.fromkeys(special_tokens))
        if not isinstance(text, str) or not text.strip():
            raise CourseInputError("BPETokenizer.train: the text is empty; give it some text to learn from")
        check_vocab_size(vocab_size, special_tokens)
        order = list(bytes_to_unicode())  # GPT-2's byte order: id i is byte order[i]
        vocab: dict[int, bytes] = {i: bytes([b]) for i, b in enumerate(order)}
        byte_table = bytes(order.index(b) for b in range(256))  # byte value -> id

        pat = regex.compile(pattern)
        word_counts: Counter[str] = Counter()
        for piece in split_special(text, special_tokens):
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
        """The raw bytes of `ids` (special tokens as their UTF-8 names)."""
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
        """The text of `ids`; incomplete UTF-8 becomes U+FFFD, as in GPT-2's tokenizer."""
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
