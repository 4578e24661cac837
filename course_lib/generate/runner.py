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


def _positions(mask: torch.Tensor) -> torch.Tensor:
    """Position ids that skip the pads: (N, L) 0/1 mask -> (N, L), the first text token at 0 (pads at 0)."""
    return (mask.cumsum(-1) - 1).clamp_min(0)


def _forward_accepts(model: CausalLM, name: str) -> bool:
    try:
        return name in inspect.signature(model.forward).parameters
    except (TypeError, ValueError, AttributeError):
        return False


class _Runner:
    """Feeds a model the tokens it has not seen, with or without the KV cache, cropping to its context.

    With a padding mask (N, L0) (1 = text, 0 = pad; None: no padding), every call passes the mask
    and position ids that skip the pads, so a left-padded row decodes as it would alone; the mask
    grows by a 1 for each token appended to the text. Only the last position's head is computed
    (``logits_to_keep=1``) where the model offers it.
    """

    def __init__(self, model: CausalLM, use_cache: bool, hidden: bool = False,
                 attention_mask: torch.Tensor | None = None) -> None:
        self.model = model
        self.use_cache = use_cache
        self.hidden = hidden
        self.ctx = context_length(model)
        self.past: KVCache | None = None
        self.cache_name = _cache_argument(model)
        self.mask = attention_mask  # (N, L) long, or None
        self.keep_last = _forward_accepts(model, "logits_to_keep")

    def __call__(self, seqs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """seqs (N, T), the whole text so far -> (next-token logits (N, V) fp32, last hidden (N, t, C) of the t fed)."""
        mask = self._mask_for(seqs)
        past = self.past if self.use_cache else None
        cached = _cache_length(past)
        if past is not None and 0 < cached < seqs.size(1) and (self.ctx is None or seqs.size(1) <= self.ctx):
            feed = seqs[:, cached:]  # (N, t) only what the cache has not seen: usually the newest token
        else:
            past = None  # first step, no cache, or the text outgrew the context: recompute the window
            feed = seqs if self.ctx is None else seqs[:, -self.ctx:]
            mask = None if mask is None else mask[:, -feed.size(1):]
        kwargs: dict[str, Any] = {self.cache_name: past, "use_cache": self.use_cache}
        if mask is not None:  # padding: hide the pads, and count positions from each row's first token
            kwargs["attention_mask"] = mask
            kwargs["position_ids"] = _positions(mask)[:, -feed.size(1):]
        if self.keep_last:
            kwargs["logits_to_keep"] = 1
        if self.hidden:
            kwargs["output_hidden_states"] = True
        out = self.model(input_ids=feed, **kwargs)
        self.past = getattr(out, self.cache_name) if self.use_cache else None
        logits = out.logits[:, -1, :].to(dtype=torch.float32)  # (N, V)
        hidden = out.hidden_states[-1] if self.hidden else None
        return logits, hidden

    def _mask_for(self, seqs: torch.Tensor) -> torch.Tensor | None:
        """The padding mask grown to the text's length: every appended token is text."""
        if self.mask is None:
            return None
        grow = seqs.size(1) - self.mask.size(1)
        if grow > 0:
            self.mask = torch.cat([self.mask, self.mask.new_ones(self.mask.size(0), grow)], dim=1)  # (N, L)
        return self.mask

    def reorder(self, index: torch.Tensor) -> None:
        """Keep rows `index` of the cache (and of the padding mask): beams, candidates, expansions."""
        self.past = _reorder_cache(self.past, index)
        if self.mask is not None:
            self.mask = self.mask.index_select(0, index.to(self.mask.device))


def _as_ids(input_ids: Sequence[int] | torch.Tensor, model: CausalLM) -> torch.Tensor:
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
    return ids.to(device=next(model.parameters()).device, dtype=torch.long)


def _crop(ids: torch.Tensor, model: CausalLM) -> torch.Tensor:
    """The last `context` columns of a prompt that is longer than the model's context, with a warning."""
    ctx = context_length(model)
    if ctx is not None and ids.size(1) > ctx:
        warnings.warn(
            f"the prompt has {ids.size(1)} tokens, more than the model's context of {ctx}; "
            f"keeping the last {ctx}", stacklevel=4)
        ids = ids[:, -ctx:]
    return ids


def _as_batch(input_ids: Sequence[int] | torch.Tensor, model: CausalLM) -> torch.Tensor:
    """A prompt as a (B, T) LongTensor on the model's device, cropped to the context (with a warning)."""
    return _crop(_as_ids(input_ids, model), model)


def _prepare(input_ids: Sequence[int] | torch.Tensor, attention_mask: torch.Tensor | Sequence[int] | None,
             model: CausalLM) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The prompt (B, T) and its padding mask (B, T) of 0/1, or None when every token is text.

    The mask must have the prompt's shape. A row that ends in padding (right padding) would be
    continued after its pads, predicted from a pad: one warning says so, as transformers does.
    """
    ids = _as_ids(input_ids, model)
    if attention_mask is None:
        return _crop(ids, model), None
    mask = attention_mask if isinstance(attention_mask, torch.Tensor) else torch.tensor(list(attention_mask))
    if mask.dim() == 1:
        mask = mask.unsqueeze(0)
    if tuple(mask.shape) != tuple(ids.shape):
        raise CourseInputError(
            f"attention_mask has shape {tuple(mask.shape)} but the prompt has shape {tuple(ids.shape)}: "
            "give one 1 (text) or 0 (padding) per prompt token")
    mask = mask.to(device=ids.device)
    if bool(((mask != 0) & (mask != 1)).any()):
        raise CourseInputError("attention_mask holds values other than 0 and 1: 1 marks text, 0 padding")
    mask = mask.long()
    if bool((mask.sum(-1) == 0).any()):
        raise CourseInputError("a row of attention_mask is all 0: that prompt has no text")
    if not bool(mask[:, -1].all()):
        warnings.warn(
            "right padding: a row of attention_mask ends in 0, so its new tokens are predicted from a pad; "
            "pad a batch of prompts on the left (transformers: tokenizer.padding_side = 'left')", stacklevel=3)
    ctx = context_length(model)
    if ctx is not None and ids.size(1) > ctx:
        mask = mask[:, -ctx:]
    ids = _crop(ids, model)
    return ids, (None if bool(mask.all()) else mask)


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
