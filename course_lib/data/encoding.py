"""Encoding a corpus once: token ids as a cached .npy (uint16 when the vocabulary fits),
keyed by the text and the tokenizer's fingerprint.

Introduced in notebooks/02_data_and_embeddings.ipynb.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import time
from pathlib import Path
from typing import Any

import numpy as np

from .. import runtime
from ..errors import CourseInputError
from ..io import write_atomic
from .corpora import _say


def vocab_size_of(tokenizer: Any) -> int:
    """Vocabulary size of any tokenizer: ``len()``, ``n_vocab``, ``get_vocab_size()`` or ``vocab_size``.
    """
    try:
        return int(len(tokenizer))
    except TypeError:
        pass
    for attr in ("n_vocab", "vocab_size"):
        if isinstance(getattr(tokenizer, attr, None), int):
            return int(getattr(tokenizer, attr))
    if callable(getattr(tokenizer, "get_vocab_size", None)):
        return int(tokenizer.get_vocab_size())
    raise CourseInputError(
        f"tokenizer: cannot tell the vocabulary size of a {type(tokenizer).__name__} "
        "(expected len(), .n_vocab, .vocab_size or .get_vocab_size())"
    )


def _encode(tokenizer: Any, text: str) -> list[int]:
    fn = getattr(tokenizer, "encode_ordinary", None) or getattr(tokenizer, "encode", None)
    if fn is None:
        raise CourseInputError(
            f"tokenizer: a {type(tokenizer).__name__} has neither .encode_ordinary() nor .encode()"
        )
    ids = fn(text)
    return list(getattr(ids, "ids", ids))  # HF `tokenizers` returns an Encoding with .ids


# Attributes that define how a tokenizer encodes: course_lib.tokenizer's BPETokenizer and
# CharTokenizer, and tiktoken's Encoding.
_STATE_ATTRS = (
    "pattern", "vocab", "merges", "special_tokens", "itos",
    "name", "_pat_str", "_mergeable_ranks", "_special_tokens",
)


def _tokenizer_fingerprint(tokenizer: Any) -> bytes:
    """Bytes that change whenever the tokenizer's behaviour can change."""
    for attr in ("fingerprint", "to_str"):  # a tokenizer's own, or HF `tokenizers`' JSON
        fn = getattr(tokenizer, attr, None)
        if callable(fn):
            try:
                return str(fn()).encode("utf-8")
            except Exception:  # noqa: BLE001
                pass
    state = [(a, getattr(tokenizer, a)) for a in _STATE_ATTRS if hasattr(tokenizer, a)]
    if state:  # what defines encoding; not pickle, which would also see a lookup cache
        return repr(state).encode("utf-8", "backslashreplace")
    try:
        return pickle.dumps(tokenizer, protocol=4)
    except Exception:  # noqa: BLE001 - unpicklable: describe it by its behaviour
        probe = "The quick brown fox, 12 ünïcødé 🙂 tokens!\n\n  indented\tTAB"
        return repr((vocab_size_of(tokenizer), _encode(tokenizer, probe))).encode()


def encode_corpus(
    text: str,
    tokenizer: Any,
    cache_dir: str | os.PathLike | None = None,
    *,
    verbose: bool = True,
) -> np.ndarray:
    """Encode `text` to a 1-D NumPy array of ids, cached as ``.npy`` so the next run is instant.

    The tokenizer is duck-typed: anything with ``.encode_ordinary(text)`` or
    ``.encode(text)`` and a vocabulary size (see `vocab_size_of`). Ids are stored as
    uint16 when the vocabulary has at most 65,536 entries, else uint32. The file name
    holds a hash of the text and of the tokenizer (its ``fingerprint()``, HF
    ``to_str()``, its vocabulary/merges/pattern attributes, or else its pickle), so a
    changed text or tokenizer never reads a stale file. Put
    `cache_dir` next to the tokenizer; default ``runtime.output_dir()/"encoded"``.
    """
    if not isinstance(text, str):
        raise CourseInputError(f"encode_corpus: text must be a str, got {type(text).__name__}")
    vocab = vocab_size_of(tokenizer)
    h = hashlib.sha256()
    h.update(type(tokenizer).__qualname__.encode())
    h.update(_tokenizer_fingerprint(tokenizer))
    h.update(b"\0")
    h.update(text.encode("utf-8", "surrogatepass"))
    folder = Path(cache_dir) if cache_dir is not None else runtime.output_dir() / "encoded"
    path = folder / f"tokens-{h.hexdigest()[:24]}.npy"
    t0 = time.perf_counter()
    if path.is_file():
        try:
            ids = np.load(path, allow_pickle=False)
            _say(f"encoded corpus: {len(ids):,} tokens loaded from cache {path} "
                 f"({time.perf_counter() - t0:.3f} s)", verbose)
            return ids
        except (OSError, ValueError):
            pass  # a damaged cache file is simply rebuilt
    raw = _encode(tokenizer, text)
    top = max(raw, default=0)
    dtype = np.uint16 if max(vocab, top + 1) <= 2**16 else np.uint32
    ids = np.asarray(raw, dtype=dtype)
    if len(ids) and int(ids.max()) != top:  # pragma: no cover - ids beyond uint32
        raise CourseInputError(f"tokenizer: id {top} does not fit in {np.dtype(dtype).name}")
    write_atomic(path, lambda f: np.save(f, ids, allow_pickle=False))
    _say(f"encoded corpus: {len(text):,} characters -> {len(ids):,} tokens "
         f"({np.dtype(dtype).name}) in {time.perf_counter() - t0:.2f} s; cached at {path}", verbose)
    return ids
