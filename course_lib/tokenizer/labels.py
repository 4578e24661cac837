"""Token labels: what a token looks like on an axis, a table or a widget.

GPT-2's byte-level tokens spell a space as "Ġ" and a newline as "Ċ" (`bytes_to_unicode`);
`pretty_token` maps them back to the real characters and `display_label` makes invisible ones
visible ("↵" for a newline). `token_labels` and `encode_text` speak to any of the course's
tokenizers, `transformers`', `tokenizers`' or tiktoken's.

Introduced in notebooks/08_attention_visualization.ipynb.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from ..errors import CourseInputError
from .teaching import bytes_to_unicode

__all__ = ["display_label", "encode_text", "pretty_token", "token_labels"]


@functools.lru_cache(maxsize=1)
def _byte_decoder() -> dict[str, int]:
    """GPT-2's byte-to-symbol table (`tokenizer.bytes_to_unicode`), inverted."""
    return {c: b for b, c in bytes_to_unicode().items()}


def pretty_token(token: str) -> str:
    """A byte-level BPE token spelled with GPT-2's symbols ("Ġworld", "Ċ") as real text.

    Strings with characters outside GPT-2's symbol table are returned unchanged.
    """
    table = _byte_decoder()
    if not token or any(c not in table for c in token):
        return token
    return bytes(table[c] for c in token).decode("utf-8", errors="replace")


def display_label(text: str, limit: int = 12) -> str:
    """`text` made visible on an axis: newline "↵", tab "⇥", a lone space "␣", another control
    character in caret notation ("\r" -> "^M", "\x17" -> "^W": matplotlib's font draws neither the
    character nor its Unicode control picture); long ones cut.
    """
    s = text.replace("\n", "↵").replace("\t", "⇥")
    s = "".join("^" + chr(ord(c) + 64) if ord(c) < 0x20 else "^?" if c == "\x7f" else c for c in s)
    if s == "":
        s = "∅"
    elif s.strip() == "":
        s = "␣" * len(s)
    return s if len(s) <= limit else s[: limit - 1] + "…"


def token_labels(tokenizer: Any, ids: Sequence[int]) -> list[str]:
    """The text of each token in `ids`, for any of the course's tokenizers or `transformers`'.

    Uses ``token_bytes`` (course BPE), ``token_text`` (course characters),
    ``convert_ids_to_tokens`` + `pretty_token` (`transformers`), ``decode_single_token_bytes``
    (tiktoken) or ``decode``, whichever the tokenizer has. No tokenizer: the ids as text.
    """
    ids = [int(i) for i in ids]
    if tokenizer is None:
        return [str(i) for i in ids]
    if hasattr(tokenizer, "token_bytes"):
        return [tokenizer.token_bytes(i).decode("utf-8", errors="replace") for i in ids]
    if hasattr(tokenizer, "token_text"):
        return [tokenizer.token_text(i) for i in ids]
    if hasattr(tokenizer, "convert_ids_to_tokens"):
        return [pretty_token(t) for t in tokenizer.convert_ids_to_tokens(ids)]
    if hasattr(tokenizer, "decode_single_token_bytes"):
        return [tokenizer.decode_single_token_bytes(i).decode("utf-8", errors="replace") for i in ids]
    if hasattr(tokenizer, "decode"):
        return [tokenizer.decode([i]) for i in ids]
    raise CourseInputError(f"token_labels: cannot read tokens from a {type(tokenizer).__name__}")


def encode_text(tokenizer: Any, text: str) -> list[int]:
    """Token ids of `text` for the course's, `transformers`', `tokenizers`' or tiktoken's tokenizers.
    """
    if not isinstance(text, str) or not text:
        raise CourseInputError("encode_text: the text is empty; give a few words")
    if tokenizer is None or not hasattr(tokenizer, "encode"):
        raise CourseInputError("encode_text: give a tokenizer with an encode() method")
    out = tokenizer.encode(text)
    ids = out.ids if hasattr(out, "ids") else out
    return [int(i) for i in ids]
