"""Decoding: turn a language model's next-token scores into text.

Three layers, each small enough to read in one sitting:

1. **Logits processors**, pure functions ``f(scores, ...) -> scores`` on a (B, V)
   tensor: `repetition_penalty`, `no_repeat_ngram`, `temperature`, `top_k_filter`,
   `top_p_filter`, `min_p_filter`, `typical_filter`. `process_logits` applies them in
   the order `transformers`' ``generate`` does (penalties first, then, only when
   sampling, temperature, top-k, top-p, min-p, typical-p); `logits_stages` returns
   every intermediate result, which is what the `DecodingTrace` and the explorer show.
2. **Strategies**: greedy and sampling (`generate`), beam search with length penalty,
   early stopping and n-best (`beam_search`), contrastive search
   (`contrastive_search`) and diverse (group) beam search (`diverse_beam_search`). Each
   takes one `DecodingSettings` (or keyword arguments naming its fields, built into one).
3. **The KV cache**: every strategy feeds the model only the newest token and passes
   the returned ``past_key_values`` back (``use_cache=True``), or recomputes the whole
   context each step (``use_cache=False``); both give the same ids.

All strategies work with the course `GPT` and with a `transformers` causal LM: the
cache is treated opaquely (tuples of (k, v) or a `transformers` Cache object), only
reordered by beam index.

References:
- Holtzman et al. 2019, "The Curious Case of Neural Text Degeneration" (top-p).
- Fan et al. 2018, "Hierarchical Neural Story Generation" (top-k).
- Nguyen et al. 2024, "Min P Sampling" (min-p); Meister et al. 2022, "Locally Typical Sampling".
- Keskar et al. 2019, "CTRL" (repetition penalty); Paulus et al. 2017 (no-repeat n-grams).
- Su et al. 2022, "A Contrastive Framework for Neural Text Generation" (contrastive search).
- Vijayakumar et al. 2016, "Diverse Beam Search".
- https://huggingface.co/blog/how-to-generate and transformers' ``generation/utils.py``,
  whose beam search bookkeeping (2K candidates, -1e9 masks, length penalty on the
  generated length) `beam_search` reproduces so that ids match exactly.

Batches of prompts of different lengths are left-padded, with an ``attention_mask``: the
pads are hidden from every query and positions count from each row's first token, so each
row decodes as it would alone. Text comes out as it is decoded through a ``streamer``
(transformers' put/end protocol), and ``stop_strings`` end a row, as in transformers.
Speculative decoding (``assistant_model=``: a small draft proposes, the target verifies several
tokens in one pass) writes the target's own greedy ids, or samples from its distribution.

The package: processors.py (layer 1, and DecodingSettings), strategies.py and beam.py
(layer 2), runner.py (layer 3, the KV cache and the padding mask), registry.py (STRATEGIES:
the one table of strategies that the CLI, the explorer and the docs read), text.py (token
bytes, stop strings, the streamer), trace.py (DecodingTrace), speculative.py
(speculative_generate, accept_draft). Every name stays importable
from ``course_lib.generate``.

Introduced in notebooks/07_decoding_strategies.ipynb.
"""

from __future__ import annotations

from .beam import BeamSearchOutput, beam_search, diverse_beam_search
from .processors import (
    DecodingSettings,
    logits_stages,
    min_p_filter,
    no_repeat_ngram,
    process_logits,
    repetition_penalty,
    temperature,
    top_k_filter,
    top_p_filter,
    typical_filter,
)
from .registry import STRATEGIES, Strategy, StrategyFn, defaults_text, strategy
from .runner import context_length
from .speculative import DEFAULT_ASSISTANT_TOKENS, SpeculativeStats, accept_draft, speculative_generate
from .strategies import contrastive_search, generate, next_token_step
from .text import StopStrings, Streamer, TextStreamer, token_bytes_of
from .trace import DecodingTrace, TraceStep, summarize_stages

__all__ = [
    "repetition_penalty",
    "no_repeat_ngram",
    "temperature",
    "top_k_filter",
    "top_p_filter",
    "min_p_filter",
    "typical_filter",
    "DecodingSettings",
    "process_logits",
    "logits_stages",
    "TraceStep",
    "DecodingTrace",
    "BeamSearchOutput",
    "next_token_step",
    "generate",
    "beam_search",
    "contrastive_search",
    "diverse_beam_search",
    "context_length",
    "summarize_stages",
    "Streamer",
    "TextStreamer",
    "StopStrings",
    "token_bytes_of",
    "STRATEGIES",
    "Strategy",
    "StrategyFn",
    "strategy",
    "defaults_text",
    "speculative_generate",
    "accept_draft",
    "SpeculativeStats",
    "DEFAULT_ASSISTANT_TOKENS",
]
