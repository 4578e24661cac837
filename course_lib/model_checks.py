"""What `GPTConfig` and `GPT.forward` accept: each wrong value becomes one `CourseInputError` line.

Kept apart from `model.py` so that file reads like the learner's notebook 05 (nanoGPT checks
nothing); the messages name the value and what would be valid.

Introduced in notebooks/05_gpt2_model.ipynb (the model refuses what it cannot run).
"""

from __future__ import annotations

from typing import Protocol

import torch

from .errors import CourseInputError
from .kernels import is_compiling

CHOICES = {"norm": ("layernorm", "rmsnorm"), "position": ("learned", "rope"), "mlp": ("gelu", "swiglu")}


class ConfigLike(Protocol):
    """The `GPTConfig` fields these checks read."""

    vocab_size: int
    n_positions: int
    n_embd: int
    n_head: int
    n_kv_head: int | None
    dropout: float
    position: str

    @property
    def head_size(self) -> int: ...

    @property
    def kv_heads(self) -> int: ...


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def check_config(c: ConfigLike) -> None:
    """Raise on the first impossible field of a `GPTConfig`, naming the values that would work."""
    for name in ("vocab_size", "n_positions", "n_embd", "n_layer", "n_head", "n_kv_head", "n_inner"):
        value, optional = getattr(c, name), name in ("n_kv_head", "n_inner")  # None allowed
        whole = isinstance(value, int) and not isinstance(value, bool) and value >= 1
        if not (whole or optional and value is None):
            raise CourseInputError(f"GPTConfig.{name} must be a positive integer{' or None' * optional}, "
                                   f"got {value!r}")
    if c.n_embd % c.n_head != 0:
        raise CourseInputError(f"GPTConfig: n_embd={c.n_embd} is not divisible by n_head={c.n_head}; "
                               f"pick n_head among {_divisors(c.n_embd)[:12]}")
    if c.n_head % c.kv_heads != 0:
        raise CourseInputError(f"GPTConfig: n_kv_head={c.n_kv_head} must divide n_head={c.n_head}; "
                               f"pick n_kv_head among {_divisors(c.n_head)}")
    if not 0.0 <= c.dropout < 1.0:
        raise CourseInputError(f"GPTConfig.dropout must be in [0, 1), got {c.dropout!r}")
    for name, ok, wanted in [
        *((n, getattr(c, n) > 0, "> 0") for n in ("layer_norm_epsilon", "rope_theta")),
        *((n, getattr(c, n) in allowed, f"one of {allowed}") for n, allowed in CHOICES.items()),
        *((n, isinstance(getattr(c, n), bool), "True or False") for n in ("bias", "tie_word_embeddings")),
    ]:
        if not ok:
            raise CourseInputError(f"GPTConfig.{name} must be {wanted}, got {getattr(c, name)!r}")
    if c.position == "rope" and c.head_size % 2:
        raise CourseInputError("GPTConfig: rotary embeddings pair up channels, so the head size "
                               f"n_embd // n_head = {c.head_size} must be even")


def check_input_ids(input_ids: torch.Tensor, c: ConfigLike, past_length: int) -> None:
    """(batch, time) integer ids inside the vocabulary, cached + new within the context."""
    if input_ids.dim() != 2:
        raise CourseInputError(f"input_ids must be (batch, time); got shape {tuple(input_ids.shape)}")
    if input_ids.dtype.is_floating_point or input_ids.dtype.is_complex or input_ids.dtype == torch.bool:
        raise CourseInputError(f"input_ids must hold integer token ids; got dtype {input_ids.dtype}")
    T, n_positions, vocab_size = input_ids.size(1), c.n_positions, c.vocab_size
    if T == 0:
        raise CourseInputError("input_ids is empty: give at least one token")
    if past_length + T > n_positions:
        cached = f" ({past_length} cached + {T} new)" if past_length else ""
        raise CourseInputError(
            f"sequence of {past_length + T} tokens{cached} is longer than the model's context, "
            f"n_positions={n_positions}; crop it to the last {n_positions} tokens")
    if is_compiling():  # a data-dependent check would break the compiled graph
        return
    lo, hi = torch.stack([input_ids.min(), input_ids.max()]).tolist()  # one device sync, not two
    if lo < 0 or hi >= vocab_size:
        raise CourseInputError(
            f"token id {hi if hi >= vocab_size else lo} is outside the vocabulary (valid ids are "
            f"0 .. {vocab_size - 1}); was the text encoded with another tokenizer?")


def padding_mask(attention_mask: torch.Tensor | None, B: int, S: int, device: torch.device) -> torch.Tensor | None:
    """The (B, S) padding mask on `device`, or None when there is no padding (the fast causal path)."""
    if attention_mask is None:
        return None
    if attention_mask.dim() != 2 or tuple(attention_mask.shape) != (B, S):
        raise CourseInputError(
            f"attention_mask has shape {tuple(attention_mask.shape)}; expected (batch, cached + new tokens) = "
            f"({B}, {S}): 1 for text, 0 for padding")
    if is_compiling() or not bool(attention_mask.all()):
        return attention_mask.to(device)
    return None


def positions(position_ids: torch.Tensor, B: int, T: int, device: torch.device) -> torch.Tensor:
    """`position_ids` as (B, T) or (1, T) long on `device`: one position per new token."""
    pos = position_ids if position_ids.dim() == 2 else position_ids.view(1, -1)
    if pos.size(1) != T or pos.size(0) not in (1, B):
        raise CourseInputError(
            f"position_ids has shape {tuple(position_ids.shape)}; expected ({B}, {T}) or (1, {T}): "
            "one position per new token")
    return pos.to(device=device, dtype=torch.long)
