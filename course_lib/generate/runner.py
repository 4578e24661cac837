"""The model call and the KV cache, for the course GPT and for transformers models.

Every strategy feeds the model only the newest token and passes the returned
``past_key_values`` back (``use_cache=True``), or recomputes the whole context each step
(``use_cache=False``); both give the same ids. The cache is treated opaquely (tuples of
(k, v) or a `transformers` Cache object), only reordered by row index.

Introduced in notebooks/07_decoding_strategies.ipynb.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Sequence
from typing import Any

import torch

from ..errors import CourseInputError
from ..protocols import CausalLM, KVCache


def context_length(model: CausalLM) -> int | None:
    """The longest sequence the model accepts (n_positions), or None when unknown."""
    cfg = getattr(model, "config", None)
    for name in ("n_positions", "max_position_embeddings", "n_ctx"):
        value = getattr(cfg, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def _cache_length(past: KVCache | None) -> int:
    if past is None:
        return 0
    if hasattr(past, "get_seq_length"):  # a transformers Cache object
        return int(past.get_seq_length())
    return int(past[0][0].size(2))  # tuple of (k, v), each (B, nh, S, hs)


def _reorder_cache(past: KVCache | None, index: torch.Tensor) -> KVCache | None:
    """Pick rows of the cache: beam reordering, expansion and selection are all this."""
    if past is None:
        return None
    if hasattr(past, "reorder_cache"):  # transformers Cache: reorders in place
        past.reorder_cache(index)
        return past
    return tuple(tuple(t.index_select(0, index.to(t.device)) for t in layer) for layer in past)


def _cache_argument(model: CausalLM) -> str:
    """"cache" where the model's forward takes it (transformers >= 5.25 deprecates the old name, with a
    warning), else "past_key_values" (the course GPT, older transformers)."""
    try:
        return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
    except (TypeError, ValueError, AttributeError):  # no inspectable forward
        return "past_key_values"


class _Runner:
    """Feeds a model the next token(s) with or without the KV cache, cropping to its context."""

    def __init__(self, model: CausalLM, use_cache: bool, hidden: bool = False) -> None:
        self.model = model
        self.use_cache = use_cache
        self.hidden = hidden
        self.ctx = context_length(model)
        self.past: KVCache | None = None
        self.cache_name = _cache_argument(model)

    def __call__(self, seqs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """seqs (N, T), the whole text so far -> (next-token logits (N, V) fp32, last hidden (N, t, C))."""
        past = self.past if self.use_cache else None
        if past is not None and (self.ctx is None or _cache_length(past) + 1 <= self.ctx):
            feed = seqs[:, -1:]  # (N, 1) only the newest token: the rest is cached
        else:
            past = None  # first step, no cache, or the cache is full: recompute the window
            feed = seqs if self.ctx is None else seqs[:, -self.ctx:]
        kwargs: dict[str, Any] = {self.cache_name: past, "use_cache": self.use_cache}
        if self.hidden:
            kwargs["output_hidden_states"] = True
        out = self.model(input_ids=feed, **kwargs)
        self.past = getattr(out, self.cache_name) if self.use_cache else None
        logits = out.logits[:, -1, :].to(dtype=torch.float32)  # (N, V)
        hidden = out.hidden_states[-1] if self.hidden else None
        return logits, hidden

    def reorder(self, index: torch.Tensor) -> None:
        self.past = _reorder_cache(self.past, index)


def _as_batch(input_ids: Sequence[int] | torch.Tensor, model: CausalLM) -> torch.Tensor:
    """A prompt as a (B, T) LongTensor on the model's device; refuses empty prompts."""
    if isinstance(input_ids, torch.Tensor):
        ids = input_ids
    else:
        if not isinstance(input_ids, Sequence) or isinstance(input_ids, (str, bytes)):
            raise CourseInputError(
                f"input_ids must be a list of token ids or a tensor, got {type(input_ids).__name__}; "
                "encode the text with the tokenizer first")
        ids = torch.tensor(list(input_ids), dtype=torch.long)
    if ids.dim() == 1:
        ids = ids.unsqueeze(0)
    if ids.dim() != 2:
        raise CourseInputError(f"input_ids must be (T,) or (batch, T), got shape {tuple(ids.shape)}")
    if ids.numel() == 0:
        raise CourseInputError("the prompt is empty: give at least one token")
    device = next(model.parameters()).device
    ids = ids.to(device=device, dtype=torch.long)
    ctx = context_length(model)
    if ctx is not None and ids.size(1) > ctx:
        warnings.warn(
            f"the prompt has {ids.size(1)} tokens, more than the model's context of {ctx}; "
            f"keeping the last {ctx}", stacklevel=3)
        ids = ids[:, -ctx:]
    return ids


def _eos_list(eos_token_id: int | Sequence[int] | None) -> list[int]:
    if eos_token_id is None:
        return []
    if isinstance(eos_token_id, int):
        return [eos_token_id]
    return [int(e) for e in eos_token_id]


def _check_common(max_new_tokens: int, num_beams: int, num_return_sequences: int) -> None:
    if not isinstance(max_new_tokens, int) or max_new_tokens < 0:
        raise CourseInputError(f"max_new_tokens must be an integer >= 0, got {max_new_tokens!r}")
    if not isinstance(num_beams, int) or num_beams < 1:
        raise CourseInputError(f"num_beams must be an integer >= 1, got {num_beams!r}")
    if not isinstance(num_return_sequences, int) or num_return_sequences < 1:
        raise CourseInputError(f"num_return_sequences must be >= 1, got {num_return_sequences!r}")
