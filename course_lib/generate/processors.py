"""Logits processors: pure functions ``f(scores, ...) -> scores`` on a (B, V) tensor, and
`DecodingSettings`, the one settings object every strategy takes.

`process_logits` applies them in the order `transformers`' ``generate`` does (penalties
first, then, only when sampling, temperature, top-k, top-p, min-p, typical-p);
`logits_stages` returns every intermediate result, which the `DecodingTrace` and the
explorer show.

References:
- Holtzman et al. 2019, "The Curious Case of Neural Text Degeneration" (top-p).
- Fan et al. 2018, "Hierarchical Neural Story Generation" (top-k).
- Nguyen et al. 2024, "Min P Sampling" (min-p); Meister et al. 2022, "Locally Typical Sampling".
- Keskar et al. 2019, "CTRL" (repetition penalty); Paulus et al. 2017 (no-repeat n-grams).

Introduced in notebooks/07_decoding_strategies.ipynb.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from ..errors import CourseInputError

NEG_INF = -float("inf")


def repetition_penalty(input_ids: torch.Tensor, scores: torch.Tensor, penalty: float) -> torch.Tensor:
    """Make every token already in `input_ids` less likely (CTRL's penalty).

    A seen token's score is divided by `penalty` when positive and multiplied by it
    when negative, so penalty > 1 always lowers it. input_ids (B, T), scores (B, V).
    """
    V = scores.size(-1)
    ids = input_ids.clamp(max=V)  # (B, T); ids the head cannot produce go to a spare column
    padded = F.pad(scores, (0, 1))  # (B, V + 1)
    seen = torch.gather(padded, 1, ids)  # (B, T) the scores of tokens already in the text
    seen = torch.where(seen < 0, seen * penalty, seen / penalty)
    return padded.scatter(1, ids, seen)[:, :V]


def no_repeat_ngram(input_ids: torch.Tensor, scores: torch.Tensor, n: int) -> torch.Tensor:
    """Forbid any token that would repeat an n-gram already in `input_ids`.

    Looks at the last n-1 tokens; every earlier place they occurred bans the token
    that followed there. input_ids (B, T), scores (B, V).
    """
    B, T = input_ids.shape
    if n <= 0 or T < n:
        return scores
    out = scores.clone()
    rows = input_ids.tolist()
    for b, row in enumerate(rows):
        prefix = row[T - n + 1:] if n > 1 else []
        banned = {row[i + n - 1] for i in range(T - n + 1) if row[i:i + n - 1] == prefix}
        banned = [t for t in banned if t < scores.size(-1)]
        if banned:
            out[b, banned] = NEG_INF
    return out


def temperature(scores: torch.Tensor, t: float) -> torch.Tensor:
    """Divide the scores by `t`: t < 1 sharpens the distribution, t > 1 flattens it."""
    return scores / t


def top_k_filter(scores: torch.Tensor, k: int, min_tokens_to_keep: int = 1) -> torch.Tensor:
    """Keep the `k` highest scores (ties with the k-th included), set the rest to -inf."""
    k = min(max(k, min_tokens_to_keep), scores.size(-1))
    kth = torch.topk(scores, k, dim=-1).values[..., -1:]  # (B, 1) the k-th best score
    return scores.masked_fill(scores < kth, NEG_INF)


def top_p_filter(scores: torch.Tensor, p: float, min_tokens_to_keep: int = 1) -> torch.Tensor:
    """Nucleus filter: keep the smallest set of most likely tokens whose mass reaches `p`.

    Sorted from least to most likely, a token is removed while the cumulative
    probability up to and including it is at most 1 - p.
    """
    sorted_scores, order = torch.sort(scores, dim=-1)  # ascending
    cum = sorted_scores.softmax(dim=-1).cumsum(dim=-1)  # (B, V)
    remove_sorted = cum <= (1 - p)
    remove_sorted[..., -min_tokens_to_keep:] = False  # the most likely always stay
    remove = remove_sorted.scatter(1, order, remove_sorted)  # back to vocabulary order
    return scores.masked_fill(remove, NEG_INF)


def min_p_filter(scores: torch.Tensor, p: float, min_tokens_to_keep: int = 1) -> torch.Tensor:
    """Keep tokens at least `p` times as likely as the most likely one."""
    probs = scores.softmax(dim=-1)  # (B, V)
    remove = probs < p * probs.amax(dim=-1, keepdim=True)
    best = torch.topk(probs, min(min_tokens_to_keep, probs.size(-1)), dim=-1).indices
    remove = remove.scatter(-1, best, False)
    return scores.masked_fill(remove, NEG_INF)


def typical_filter(scores: torch.Tensor, mass: float, min_tokens_to_keep: int = 1) -> torch.Tensor:
    """Locally typical sampling: keep the tokens whose surprise is closest to the entropy,
    until their probability reaches `mass`.
    """
    logp = F.log_softmax(scores, dim=-1)  # (B, V)
    entropy = -(logp * logp.exp()).nansum(-1, keepdim=True)  # (B, 1)
    distance = (-logp - entropy).abs()  # how far each token's surprise is from typical
    sorted_dist, order = torch.sort(distance, dim=-1)
    cum = scores.gather(-1, order).softmax(dim=-1).cumsum(dim=-1)
    last = (cum < mass).sum(dim=1).clamp(max=scores.size(-1) - 1)  # index of the last kept
    remove_sorted = sorted_dist > sorted_dist.gather(1, last.view(-1, 1))
    remove_sorted[..., :min_tokens_to_keep] = False
    remove = remove_sorted.scatter(1, order, remove_sorted)
    return scores.masked_fill(remove, NEG_INF)


@dataclass
class DecodingSettings:
    """How to decode, as one object every strategy takes (transformers' ``GenerationConfig``).

    The first fields say which processors run, with which values (validated on creation);
    the rest belong to the strategies that read them: beams (`num_beams`, `length_penalty`,
    `early_stopping`, `num_return_sequences`), groups (`num_beam_groups`,
    `diversity_penalty`: `diverse_beam_search`) and `penalty_alpha` (`contrastive_search`,
    whose candidates are the `top_k` most likely tokens). A strategy checks the fields it
    reads; what belongs to one run (eos ids, cache, seed, trace) is passed beside it.
    """

    do_sample: bool = False
    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None
    min_p: float | None = None
    typical_p: float | None = None
    repetition_penalty: float = 1.0
    no_repeat_ngram_size: int = 0
    min_tokens_to_keep: int = 1
    num_beams: int = 1
    length_penalty: float = 1.0
    early_stopping: bool | str = False
    num_return_sequences: int = 1
    num_beam_groups: int = 1
    diversity_penalty: float = 0.0
    penalty_alpha: float | None = None

    def __post_init__(self) -> None:
        if self.temperature is None or self.temperature < 0:
            raise CourseInputError(
                f"temperature must be >= 0 (0 means greedy), got {self.temperature!r}")
        if self.top_k is not None and self.top_k < 0:
            raise CourseInputError(f"top_k must be >= 0 (0 or None: no top-k), got {self.top_k!r}")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise CourseInputError(f"top_p must be in (0, 1], got {self.top_p!r}")
        if self.min_p is not None and not 0 <= self.min_p <= 1:
            raise CourseInputError(f"min_p must be in [0, 1], got {self.min_p!r}")
        if self.typical_p is not None and not 0 < self.typical_p <= 1:
            raise CourseInputError(f"typical_p must be in (0, 1], got {self.typical_p!r}")
        if self.repetition_penalty is None or self.repetition_penalty <= 0:
            raise CourseInputError(
                f"repetition_penalty must be > 0 (1 means none), got {self.repetition_penalty!r}")
        if self.no_repeat_ngram_size is None or self.no_repeat_ngram_size < 0:
            raise CourseInputError(
                f"no_repeat_ngram_size must be >= 0 (0 means off), got {self.no_repeat_ngram_size!r}")
        if self.do_sample and self.temperature == 0:
            self.do_sample = False  # temperature 0 is greedy decoding

    def processors(self, pads: torch.Tensor | None = None) -> list[tuple[str, Any]]:
        """The (name, f(input_ids, scores)) pairs that run, in transformers' order.

        `pads` (B, T0), True at the padding of a left-padded prompt: pads are not text, so the
        repetition penalty skips them (as transformers >= 5 does; no-repeat n-grams see them).
        """
        out: list[tuple[str, Any]] = []
        if self.repetition_penalty != 1.0:
            out.append(("repetition_penalty",
                        lambda ids, s: repetition_penalty(_text_only(ids, pads, s.size(-1)), s,
                                                          self.repetition_penalty)))
        if self.no_repeat_ngram_size > 0:
            out.append(("no_repeat_ngram", lambda ids, s: no_repeat_ngram(ids, s, self.no_repeat_ngram_size)))
        if not self.do_sample:
            return out
        keep = self.min_tokens_to_keep
        if self.temperature != 1.0:
            out.append(("temperature", lambda ids, s: temperature(s, self.temperature)))
        if self.top_k:
            out.append(("top_k", lambda ids, s: top_k_filter(s, self.top_k, keep)))
        if self.top_p is not None and self.top_p < 1.0:
            out.append(("top_p", lambda ids, s: top_p_filter(s, self.top_p, keep)))
        if self.min_p is not None:
            out.append(("min_p", lambda ids, s: min_p_filter(s, self.min_p, keep)))
        if self.typical_p is not None and self.typical_p < 1.0:
            out.append(("typical_p", lambda ids, s: typical_filter(s, self.typical_p, keep)))
        return out


SETTING_NAMES = frozenset(f.name for f in dataclasses.fields(DecodingSettings))


def settings_from(settings: DecodingSettings | None, options: Mapping[str, Any],
                  defaults: Mapping[str, Any] | None = None, *, caller: str = "generate") -> DecodingSettings:
    """The one settings object a strategy runs with: `settings` as given, else one built once from
    keyword `options` over the strategy's `defaults`. Options given beside `settings` replace its fields.
    """
    unknown = sorted(set(options) - SETTING_NAMES)
    if unknown:
        raise TypeError(f"{caller}() got an unexpected keyword argument {unknown[0]!r} "
                        "(the keyword arguments are DecodingSettings fields)")
    if settings is None:
        return DecodingSettings(**{**(defaults or {}), **options})
    return dataclasses.replace(settings, **options) if options else settings


def _text_only(ids: torch.Tensor, pads: torch.Tensor | None, V: int) -> torch.Tensor:
    """ids with the pads of the prompt replaced by V, an id no processor counts."""
    if pads is None:
        return ids
    T0 = pads.size(1)
    return torch.cat([ids[:, :T0].masked_fill(pads, V), ids[:, T0:]], dim=1)


def logits_stages(input_ids: torch.Tensor, scores: torch.Tensor, settings: DecodingSettings,
                  pads: torch.Tensor | None = None) -> list[tuple[str, torch.Tensor]]:
    """[("raw", scores), (processor name, scores after it), ...] in the order they run.
    """
    stages = [("raw", scores)]
    for name, fn in settings.processors(pads):
        scores = fn(input_ids, scores)
        stages.append((name, scores))
    return stages


def process_logits(input_ids: torch.Tensor, scores: torch.Tensor, settings: DecodingSettings,
                   pads: torch.Tensor | None = None) -> torch.Tensor:
    """Apply every processor of `settings` to scores (B, V), in transformers' order (`pads`: see processors)."""
    for _, fn in settings.processors(pads):
        scores = fn(input_ids, scores)
    return scores
