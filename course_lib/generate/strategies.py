"""Greedy and sampling (`generate`), contrastive search, and `next_token_step` (one step, for
the explorer). `generate` hands ``num_beams > 1`` to `beam.beam_search`.

Reference: Su et al. 2022, "A Contrastive Framework for Neural Text Generation".

Introduced in notebooks/07_decoding_strategies.ipynb.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from ..errors import CourseInputError
from ..protocols import CausalLM
from .beam import beam_search
from .processors import DecodingSettings, logits_stages, process_logits, settings_from
from .runner import _check_common, _eos_list, _prepare, _Runner
from .text import StopStrings, Streamer
from .trace import DecodingTrace, TraceStep, summarize_stages

CONTRASTIVE_DEFAULTS = {"penalty_alpha": 0.6, "top_k": 4}
"""`contrastive_search`'s settings when built from keyword arguments (Su et al.'s usual values)."""


def next_token_step(model: CausalLM, input_ids: Sequence[int] | torch.Tensor, settings: DecodingSettings | None = None,
                    top_n: int = 10, *, attention_mask: torch.Tensor | None = None) -> TraceStep:
    """The next-token distribution for a prompt, before and after each processor (row 0).

    What the explorer draws; `chosen` is left empty.
    """
    settings = settings or DecodingSettings()
    ids, mask = _prepare(input_ids, attention_mask, model)
    with torch.inference_mode():
        logits, _ = _Runner(model, use_cache=False, attention_mask=mask)(ids)
    return summarize_stages(logits_stages(ids, logits, settings, None if mask is None else mask == 0), top_n)


class _Rows:
    """Which rows still write. An eos id or a stop string ends a row; decoding stops when every row has
    ended. With eos ids, a finished row gets the pad id from then on; without, it writes on (as in
    transformers). Every step's tokens go to the streamer.
    """

    def __init__(self, ids: torch.Tensor, eos_token_id: int | Sequence[int] | None, pad_token_id: int | None,
                 stop_strings: str | Sequence[str] | None, tokenizer: Any, streamer: Streamer | None) -> None:
        eos = _eos_list(eos_token_id)
        self.eos = torch.tensor(eos, dtype=torch.long, device=ids.device)
        self.pad = pad_token_id if pad_token_id is not None else (eos[0] if eos else 0)
        self.stop = StopStrings(tokenizer, stop_strings) if stop_strings is not None else None
        self.can_end = bool(eos) or self.stop is not None
        self.pads = bool(eos)
        self.unfinished = torch.ones(ids.size(0), dtype=torch.bool, device=ids.device)  # (B,)
        self.streamer = streamer
        if streamer is not None:
            streamer.put(ids.cpu())

    def append(self, ids: torch.Tensor, next_ids: torch.Tensor) -> torch.Tensor:
        """ids (B, T), next_ids (B,) -> (B, T + 1); finished rows get the pad id."""
        if self.pads:
            next_ids = torch.where(self.unfinished, next_ids, self.pad)
        ids = torch.cat([ids, next_ids[:, None]], dim=1)  # (B, T + 1)
        if self.streamer is not None:
            self.streamer.put(next_ids.cpu())
        if self.eos.numel():
            self.unfinished &= ~torch.isin(next_ids, self.eos)
        if self.stop is not None:
            self.unfinished &= ~self.stop(ids)
        return ids

    @property
    def done(self) -> bool:
        return self.can_end and not bool(self.unfinished.any())

    def end(self) -> None:
        if self.streamer is not None:
            self.streamer.end()


def _no_stream_for_beams(num_beams: int, streamer: Streamer | None, stop_strings: Any) -> None:
    if num_beams > 1 and (streamer is not None or stop_strings is not None):
        raise CourseInputError(
            "streamer and stop_strings work with greedy decoding, sampling and contrastive search; beam search "
            "keeps several texts per prompt until the end (transformers refuses a streamer with beams too)")


def generate(
    model: CausalLM,
    input_ids: Sequence[int] | torch.Tensor,
    max_new_tokens: int,
    settings: DecodingSettings | None = None,
    *,
    attention_mask: torch.Tensor | Sequence[int] | None = None,
    eos_token_id: int | Sequence[int] | None = None,
    pad_token_id: int | None = None,
    use_cache: bool = True,
    seed: int | None = None,
    trace: DecodingTrace | None = None,
    streamer: Streamer | None = None,
    stop_strings: str | Sequence[str] | None = None,
    tokenizer: Any = None,
    assistant_model: CausalLM | None = None,
    **options: Any,
) -> torch.Tensor:
    """Continue `input_ids` by up to `max_new_tokens` tokens; returns prompt + new ids (B', T').

    `settings` says how (a `DecodingSettings`); keyword `options` (its field names:
    ``do_sample=True, top_k=50, num_beams=4, ...``) build one, or replace fields of the
    one given. Greedy when ``do_sample=False`` (or temperature 0), sampling otherwise; beam
    search (or beam sampling) when ``num_beams > 1``. Unlike `transformers`, `top_k` is off
    unless given (transformers silently uses top_k=50 when sampling). A row that reaches
    `eos_token_id`, or whose text ends with one of `stop_strings` (which needs `tokenizer`), is
    finished: with eos ids it is padded with `pad_token_id` (default: the first eos id), and
    decoding stops once every row is finished, as in transformers. `seed` makes sampling
    reproducible: ``generate(..., seed=s)`` draws what ``torch.manual_seed(s)`` followed by
    ``model.generate(...)`` draws.

    A batch of prompts of different lengths is left-padded, with `attention_mask` (B, T) 1 for
    text and 0 for padding: the pads are hidden and positions count from each row's first token,
    so every row decodes as it would alone. `streamer` receives the prompt and then each step's
    tokens (``put``/``end``: transformers' ``TextStreamer`` works, or the course's `TextStreamer`).
    A prompt longer than the context is cropped from the left (with a warning); so is the text
    when it outgrows the context.

    `assistant_model` (a draft sharing the vocabulary) turns on speculative decoding: see
    `speculative.speculative_generate`, which takes the same arguments (and `num_assistant_tokens`).
    """
    if assistant_model is not None:
        from .speculative import speculative_generate  # speculative.py builds on this module

        if attention_mask is not None and not bool(torch.as_tensor(attention_mask).bool().all()):
            raise CourseInputError("speculative decoding continues one prompt without padding: "
                                   "leave attention_mask out, or all 1")
        if trace is not None or not use_cache:
            raise CourseInputError("speculative decoding always uses the KV cache and records no trace: "
                                   "leave trace and use_cache=False out")
        return speculative_generate(model, input_ids, max_new_tokens, settings, assistant_model=assistant_model,
                                    eos_token_id=eos_token_id, pad_token_id=pad_token_id, seed=seed,
                                    streamer=streamer, stop_strings=stop_strings, tokenizer=tokenizer, **options)
    settings = settings_from(settings, options)
    num_beams, num_return_sequences = settings.num_beams, settings.num_return_sequences
    _check_common(max_new_tokens, num_beams, num_return_sequences)
    if settings.num_beam_groups != 1 or settings.penalty_alpha is not None:
        raise CourseInputError(
            "generate runs greedy decoding, sampling and beam search; num_beam_groups is "
            "diverse_beam_search's setting and penalty_alpha contrastive_search's")
    _no_stream_for_beams(num_beams, streamer, stop_strings)
    if num_beams > 1:
        if settings.do_sample:  # beam sampling keeps enough tokens for every beam and the eos ids
            need = len(_eos_list(eos_token_id)) + 1 if eos_token_id is not None else 2
            settings = dataclasses.replace(settings, min_tokens_to_keep=max(settings.min_tokens_to_keep, need))
        return beam_search(model, input_ids, max_new_tokens, settings, attention_mask=attention_mask,
                           eos_token_id=eos_token_id, pad_token_id=pad_token_id, use_cache=use_cache, seed=seed,
                           trace=trace).sequences
    if num_return_sequences > 1 and not settings.do_sample:
        raise CourseInputError(
            f"num_return_sequences={num_return_sequences} needs sampling (do_sample=True) or "
            "beam search (num_beams >= num_return_sequences): greedy decoding has one answer")
    ids, mask = _prepare(input_ids, attention_mask, model)
    if num_return_sequences > 1:
        ids = ids.repeat_interleave(num_return_sequences, dim=0)  # (B * n, T)
        mask = None if mask is None else mask.repeat_interleave(num_return_sequences, dim=0)
    if trace is not None:
        trace.strategy = trace.strategy or ("sample" if settings.do_sample else "greedy")
    generator = None
    if seed is not None:
        generator = torch.Generator(device=ids.device).manual_seed(seed)
    pads = None if mask is None else mask == 0  # (B, T0) the prompt's padding
    run = _Runner(model, use_cache, attention_mask=mask)
    rows = _Rows(ids, eos_token_id, pad_token_id, stop_strings, tokenizer, streamer)
    with torch.inference_mode():
        for _ in range(max_new_tokens):
            logits = run(ids)[0]  # (B, V)
            if trace is not None:
                stages = logits_stages(ids, logits, settings, pads)
                scores = stages[-1][1]
            else:
                scores = process_logits(ids, logits, settings, pads)
            if settings.do_sample:
                probs = scores.softmax(dim=-1)
                next_ids = torch.multinomial(probs, 1, generator=generator).squeeze(1)  # (B,)
            else:
                next_ids = scores.argmax(dim=-1)  # (B,)
            ids = rows.append(ids, next_ids)  # (B, T + 1)
            if trace is not None:
                trace.record(ids[:, :-1], stages, chosen=int(ids[0, -1]))
            if rows.done:
                break
    rows.end()
    return ids


def contrastive_search(
    model: CausalLM,
    input_ids: Sequence[int] | torch.Tensor,
    max_new_tokens: int,
    settings: DecodingSettings | None = None,
    *,
    attention_mask: torch.Tensor | Sequence[int] | None = None,
    eos_token_id: int | Sequence[int] | None = None,
    pad_token_id: int | None = None,
    use_cache: bool = True,
    streamer: Streamer | None = None,
    stop_strings: str | Sequence[str] | None = None,
    tokenizer: Any = None,
    **options: Any,
) -> torch.Tensor:
    """Contrastive search (Su et al. 2022): among the `top_k` most likely next tokens pick

        argmax_v (1 - alpha) * p(v | x) - alpha * max_j cos(h_v, h_j)

    where h_v is the model's last hidden state after reading v and h_j those of every
    earlier token (pads excluded): likely, but unlike anything said so far. alpha
    (``settings.penalty_alpha``) = 0 is greedy. Keyword `options` build the settings (defaults
    ``penalty_alpha=0.6, top_k=4``) or replace fields of the one given; its penalties apply
    before the choice. The run options are `generate`'s. Returns prompt + new ids (B, T').
    """
    settings = settings_from(settings, options, CONTRASTIVE_DEFAULTS, caller="contrastive_search")
    penalty_alpha, top_k = settings.penalty_alpha, settings.top_k
    if penalty_alpha is None or not 0 <= penalty_alpha <= 1:
        raise CourseInputError(f"penalty_alpha must be in [0, 1], got {penalty_alpha!r}")
    if not isinstance(top_k, int) or top_k < 1:
        raise CourseInputError(f"top_k must be an integer >= 1 for contrastive search, got {top_k!r}")
    _check_common(max_new_tokens, 1, 1)
    ids, mask = _prepare(input_ids, attention_mask, model)
    B = ids.size(0)
    seen = torch.ones_like(ids, dtype=torch.bool) if mask is None else mask.bool()  # (B, T) text, not pads
    pads = None if mask is None else ~seen
    run = _Runner(model, use_cache, hidden=True, attention_mask=mask)
    rows = _Rows(ids, eos_token_id, pad_token_id, stop_strings, tokenizer, streamer)
    k = top_k
    with torch.inference_mode():
        logits, context = run(ids)  # (B, V), (B, T, C): hidden states of the prompt
        for _ in range(max_new_tokens):
            probs = process_logits(ids, logits, settings, pads).softmax(-1)  # (B, V)
            top_p, top_ids = torch.topk(probs, k, dim=-1)  # (B, k) candidates, most likely first
            # read each candidate: the cache is copied k times, one row per candidate
            run.reorder(torch.arange(B, device=ids.device).repeat_interleave(k))
            cand_seqs = torch.cat([ids.repeat_interleave(k, 0), top_ids.reshape(-1, 1)], dim=1)
            cand_logits, cand_hidden = run(cand_seqs)  # (B*k, V), (B*k, t, C)
            h = cand_hidden[:, -1, :].reshape(B, k, -1)  # (B, k, C)
            ctx_n = F.normalize(context, dim=-1)  # (B, T, C)
            sim = torch.bmm(F.normalize(h, dim=-1), ctx_n.transpose(1, 2))  # (B, k, T) cosines
            sim = sim.masked_fill(~seen[:, None, :], -float("inf"))  # a pad is not something said
            score = (1 - penalty_alpha) * top_p - penalty_alpha * sim.amax(dim=-1)  # (B, k)
            pick = score.argmax(dim=-1)  # (B,)
            picked = torch.arange(B, device=ids.device) * k + pick  # (B,) rows of the k-fold batch
            run.reorder(picked)
            logits = cand_logits[picked]
            context = torch.cat([context, h[torch.arange(B), pick][:, None, :]], dim=1)
            seen = torch.cat([seen, seen.new_ones(B, 1)], dim=1)
            ids = rows.append(ids, top_ids.gather(1, pick[:, None]).squeeze(1))
            if rows.done:
                break
    rows.end()
    return ids
