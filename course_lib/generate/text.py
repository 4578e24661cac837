"""Decoding meets text: the bytes of each token, stop strings, and a streamer that prints as tokens come.

- `token_bytes_of(tokenizer)`: id -> the token's bytes (the course's `BPETokenizer`, a byte-level
  `transformers` tokenizer, or any tokenizer through its ``decode``).
- `StopStrings`: a row is finished once its text ends, inside its newest token, with one of the
  stop strings (transformers' `StopStringCriteria`, compared in bytes as it does for byte-level
  tokenizers: a stop string may span several tokens, and the newest token may run past its end).
- `TextStreamer`: transformers' streamer protocol (``put(ids)`` with the prompt first, then each
  step's new tokens; ``end()``). It decodes the bytes incrementally, so a character split across
  tokens waits until its last byte arrives (notebook 01's streaming decode) instead of showing as
  U+FFFD. `generate` also accepts transformers' own ``TextStreamer`` and ``TextIteratorStreamer``.

Introduced in notebooks/07_decoding_strategies.ipynb.
"""

from __future__ import annotations

import codecs
import sys
from collections.abc import Callable, Collection, Sequence
from typing import Any, Protocol

import torch

from ..errors import CourseInputError


class Streamer(Protocol):
    """What `generate` calls as it decodes (transformers' ``BaseStreamer``)."""

    def put(self, value: torch.Tensor) -> None: ...

    def end(self) -> None: ...


def token_bytes_of(tokenizer: Any) -> Callable[[int], bytes]:
    """A function id -> the token's bytes, cached per id.

    The course's tokenizers give their bytes (`decode_bytes`); a `transformers` tokenizer with a
    byte-level decoder (GPT-2's) maps its token strings back through GPT-2's byte table; any other
    tokenizer's ``decode([id])`` is encoded as UTF-8 (a split character is then U+FFFD already).
    """
    cache: dict[int, bytes] = {}
    if hasattr(tokenizer, "decode_bytes"):
        def raw(i: int) -> bytes:
            return tokenizer.decode_bytes([i])
    elif type(getattr(getattr(tokenizer, "backend_tokenizer", None), "decoder", None)).__name__ == "ByteLevel":
        from ..tokenizer import bytes_to_unicode

        byte_of = {ch: b for b, ch in bytes_to_unicode().items()}

        def raw(i: int) -> bytes:
            token = tokenizer.convert_ids_to_tokens(i)
            if all(ch in byte_of for ch in token):
                return bytes(byte_of[ch] for ch in token)
            return token.encode("utf-8")  # an added token written as plain text
    else:
        def raw(i: int) -> bytes:
            return tokenizer.decode([i]).encode("utf-8")

    def token_bytes(i: int) -> bytes:
        b = cache.get(i)
        if b is None:
            b = cache[i] = raw(int(i))
        return b

    return token_bytes


class StopStrings:
    """Which rows end with a stop string: ``StopStrings(tokenizer, ["\\n\\n"])(ids) -> (B,) bool``.

    A row matches when a stop string ends inside its newest token (it may start tokens earlier,
    and the token may go on past it): checked after each new token, so nothing is missed, while
    a stop string written earlier, or in the prompt, does not stop a later step.
    """

    def __init__(self, tokenizer: Any, stop_strings: str | Sequence[str]) -> None:
        if tokenizer is None:
            raise CourseInputError("stop_strings needs the tokenizer (tokenizer=...) to read the text of the tokens")
        if isinstance(stop_strings, str):
            stop_strings = [stop_strings]
        if not isinstance(stop_strings, Sequence) or not all(isinstance(s, str) for s in stop_strings):
            raise CourseInputError(f"stop_strings must be a list of strings, got {stop_strings!r}")
        if not stop_strings or any(s == "" for s in stop_strings):
            raise CourseInputError(
                f"stop_strings {list(stop_strings)!r}: an empty stop string would end every text at once; "
                "give text such as '\\n\\n' or '.'")
        self.stop_strings = tuple(stop_strings)
        self.targets = tuple(s.encode("utf-8") for s in self.stop_strings)
        self.window = max(len(t) for t in self.targets)  # tokens to look back: each has at least one byte
        self.token_bytes = token_bytes_of(tokenizer)

    def ends(self, row: Sequence[int]) -> bool:
        """Does the text of `row` end, inside its last token, with a stop string?"""
        pieces = [self.token_bytes(i) for i in row[-self.window:]]
        tail = b"".join(pieces)
        first = len(tail) - len(pieces[-1])  # where the newest token starts
        for target in self.targets:
            start = tail.find(target, max(0, first - len(target) + 1))
            if start >= 0 and start + len(target) > first:  # its end lies in the newest token
                return True
        return False

    def __call__(self, ids: torch.Tensor) -> torch.Tensor:
        """ids (B, L) -> (B,) True where the row ends with a stop string."""
        rows = ids[:, -self.window:].tolist()
        return torch.tensor([self.ends(r) for r in rows], dtype=torch.bool, device=ids.device)


class TextStreamer:
    """Hands on the text as tokens come, one piece per row, never half a character.

    ``generate(..., streamer=TextStreamer(tok))`` prints the text of one row as it grows (the
    prompt too unless ``skip_prompt``); ``on_text(row, piece)`` receives the pieces instead (any
    batch size): one per row and `put` (the prompt as one piece, then one per token), empty while a
    character waits for its last bytes. New token ids in `skip_ids` (an end-of-text id) show nothing.
    `texts` holds each row's text so far. A character whose bytes are split across tokens waits
    for its last byte; at `end` whatever is still unfinished shows as U+FFFD, as ``decode`` would.
    """

    def __init__(self, tokenizer: Any, skip_prompt: bool = False, skip_ids: Collection[int] = (),
                 on_text: Callable[[int, str], None] | None = None) -> None:
        self.token_bytes = token_bytes_of(tokenizer)
        self.skip_prompt = skip_prompt
        self.skip_ids = set(int(i) for i in skip_ids)
        self.on_text = on_text
        self.texts: list[str] = []
        self._decoders: list[Any] = []
        self._prompt_seen = False

    def _emit(self, row: int, piece: str) -> None:
        self.texts[row] += piece
        if self.on_text is not None:
            self.on_text(row, piece)
        elif piece:
            print(piece, end="", flush=True)

    def put(self, value: torch.Tensor) -> None:
        """value: the prompt (B, T) on the first call, then each step's new tokens (B,)."""
        ids = value.reshape(value.size(0), -1) if value.dim() else value.reshape(1, 1)  # (B, t)
        if not self._decoders:
            if ids.size(0) > 1 and self.on_text is None:
                raise CourseInputError(
                    f"TextStreamer prints one text, and this batch has {ids.size(0)} rows; "
                    "pass on_text=lambda row, piece: ... to receive each row's pieces")
            self._decoders = [codecs.getincrementaldecoder("utf-8")(errors="replace") for _ in range(ids.size(0))]
            self.texts = [""] * ids.size(0)
        first = not self._prompt_seen
        self._prompt_seen = True
        if first and self.skip_prompt:
            return
        skip = set() if first else self.skip_ids  # a prompt shows all its tokens
        for row, tokens in enumerate(ids.tolist()):
            data = b"".join(self.token_bytes(i) for i in tokens if i not in skip)
            self._emit(row, self._decoders[row].decode(data))

    def end(self) -> None:
        """The stream is over: flush what was held back (a newline ends the printed text)."""
        for row, decoder in enumerate(self._decoders):
            rest = decoder.decode(b"", final=True)
            if rest:
                self._emit(row, rest)
        if self.on_text is None and self._decoders:
            print(flush=True, file=sys.stdout)
        self._decoders = []
        self._prompt_seen = False
