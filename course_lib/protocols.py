"""Contracts the loops rely on: what a causal language model and a tokenizer must offer.

`train`, `generate` and `lora` never import `model`: they work on anything that fits these
`Protocol`s, the course `GPT` and `transformers`' `GPT2LMHeadModel` alike. Nothing here
runs; the classes only name, for a reader and a type checker, what the loops call.

Introduced in notebooks/06_training.ipynb (the Trainer) and notebooks/07_decoding_strategies.ipynb.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Protocol, TypeAlias

import numpy as np
import torch

KVCache: TypeAlias = Any
"""A model's key/value cache: the course's tuple of (k, v) per layer, each (B, nh, S, hs), or a
transformers `Cache` object (``get_seq_length``, ``reorder_cache``); None before the first step."""

TokenIds: TypeAlias = "torch.Tensor | np.ndarray | Sequence[int]"
"""Token ids as the loops accept them: a 1-D tensor or array, or a list of ints."""


class LMOutput(Protocol):
    """What one forward pass returns (the course GPT's output, or transformers' CausalLMOutput)."""

    logits: torch.Tensor  # (B, T, vocab)
    past_key_values: KVCache | None


class CausalLM(Protocol):
    """A causal LM with GPT-2's interface: ids (B, T) in, next-token logits (B, T, vocab) out.

    `config` names its context (``n_positions``, or ``max_position_embeddings``) and its size
    (``n_layer``, ``n_embd``, ``vocab_size``), read where present.
    """

    config: Any
    training: bool

    def __call__(self, input_ids: torch.Tensor, **kwargs: Any) -> LMOutput: ...

    def parameters(self, recurse: bool = True) -> Iterator[torch.nn.Parameter]: ...


class Tokenizer(Protocol):
    """Text to ids and back: the course's tokenizers, tiktoken, or a transformers tokenizer.

    (`tokenizers`' own Tokenizer returns an Encoding; the Trainer reads its ``.ids``.)
    """

    def encode(self, text: str) -> Sequence[int]: ...

    def decode(self, ids: Iterable[int]) -> str: ...
