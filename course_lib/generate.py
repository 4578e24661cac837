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
   (`contrastive_search`) and diverse (group) beam search (`diverse_beam_search`).
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

Introduced in notebooks/07_decoding_strategies.ipynb.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from .errors import CourseInputError

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
]

NEG_INF = -float("inf")
BIG_NEG = -1.0e9  # the "never pick this" score beam search adds, as transformers does


# ----------------------------------------------------------------------------------------
# 1. Logits processors: pure functions on scores (B, V)
# ----------------------------------------------------------------------------------------
def repetition_penalty(input_ids: torch.Tensor, scores: torch.Tensor, penalty: float) -> torch.Tensor:
    """Make every token already in `input_ids` less likely (CTRL's penalty).

    A seen token's score is divided by `penalty` when positive and multiplied by it
    when negative, so penalty > 1 always lowers it. input_ids (B, T), scores (B, V).

    Introduced in notebooks/07_decoding_strategies.ipynb.
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

    Introduced in notebooks/07_decoding_strategies.ipynb.
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
    """Divide the scores by `t`: t < 1 sharpens the distribution, t > 1 flattens it.

    Introduced in notebooks/07_decoding_strategies.ipynb.
    """
    return scores / t


def top_k_filter(scores: torch.Tensor, k: int, min_tokens_to_keep: int = 1) -> torch.Tensor:
    """Keep the `k` highest scores (ties with the k-th included), set the rest to -inf.

    Introduced in notebooks/07_decoding_strategies.ipynb.
    """
    k = min(max(k, min_tokens_to_keep), scores.size(-1))
    kth = torch.topk(scores, k, dim=-1).values[..., -1:]  # (B, 1) the k-th best score
    return scores.masked_fill(scores < kth, NEG_INF)


def top_p_filter(scores: torch.Tensor, p: float, min_tokens_to_keep: int = 1) -> torch.Tensor:
    """Nucleus filter: keep the smallest set of most likely tokens whose mass reaches `p`.

    Sorted from least to most likely, a token is removed while the cumulative
    probability up to and including it is at most 1 - p.

    Introduced in notebooks/07_decoding_strategies.ipynb.
    """
    sorted_scores, order = torch.sort(scores, dim=-1)  # ascending
    cum = sorted_scores.softmax(dim=-1).cumsum(dim=-1)  # (B, V)
    remove_sorted = cum <= (1 - p)
    remove_sorted[..., -min_tokens_to_keep:] = False  # the most likely always stay
    remove = remove_sorted.scatter(1, order, remove_sorted)  # back to vocabulary order
    return scores.masked_fill(remove, NEG_INF)


def min_p_filter(scores: torch.Tensor, p: float, min_tokens_to_keep: int = 1) -> torch.Tensor:
    """Keep tokens at least `p` times as likely as the most likely one.

    Introduced in notebooks/07_decoding_strategies.ipynb.
    """
    probs = scores.softmax(dim=-1)  # (B, V)
    remove = probs < p * probs.amax(dim=-1, keepdim=True)
    best = torch.topk(probs, min(min_tokens_to_keep, probs.size(-1)), dim=-1).indices
    remove = remove.scatter(-1, best, False)
    return scores.masked_fill(remove, NEG_INF)


def typical_filter(scores: torch.Tensor, mass: float, min_tokens_to_keep: int = 1) -> torch.Tensor:
    """Locally typical sampling: keep the tokens whose surprise is closest to the entropy,
    until their probability reaches `mass`.

    Introduced in notebooks/07_decoding_strategies.ipynb.
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
    """Which processors run, with which values. Validates on creation.

    Introduced in notebooks/07_decoding_strategies.ipynb.
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

    def processors(self) -> list[tuple[str, Any]]:
        """The (name, f(input_ids, scores)) pairs that run, in transformers' order."""
        out: list[tuple[str, Any]] = []
        if self.repetition_penalty != 1.0:
            out.append(("repetition_penalty",
                        lambda ids, s: repetition_penalty(ids, s, self.repetition_penalty)))
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


def logits_stages(input_ids: torch.Tensor, scores: torch.Tensor,
                  settings: DecodingSettings) -> list[tuple[str, torch.Tensor]]:
    """[("raw", scores), (processor name, scores after it), ...] in the order they run.

    Introduced in notebooks/07_decoding_strategies.ipynb.
    """
    stages = [("raw", scores)]
    for name, fn in settings.processors():
        scores = fn(input_ids, scores)
        stages.append((name, scores))
    return stages


def process_logits(input_ids: torch.Tensor, scores: torch.Tensor, settings: DecodingSettings) -> torch.Tensor:
    """Apply every processor of `settings` to scores (B, V), in transformers' order.

    Introduced in notebooks/07_decoding_strategies.ipynb.
    """
    for _, fn in settings.processors():
        scores = fn(input_ids, scores)
    return scores


# ----------------------------------------------------------------------------------------
# The trace: what happened at each step, for teaching and for the explorer
# ----------------------------------------------------------------------------------------
@dataclass
class TraceStep:
    """One decoding step of the first sequence (row 0).

    `token_ids` are the top candidates by raw probability; `probs[stage]` their
    probability after each stage ("raw" first, then each processor that ran);
    `kept[i]` whether candidate i survives every filter; `removed_mass` the raw
    probability of all removed tokens; `entropy` (nats) of the final distribution;
    `chosen` the token picked; `beams` the running beams after the step as
    (parent beam, token, cumulative log-probability).
    """

    step: int
    token_ids: list[int]
    probs: dict[str, list[float]]
    kept: list[bool]
    removed_mass: float
    entropy: float
    chosen: int | None = None
    beams: list[tuple[int, int, float]] = field(default_factory=list)


@dataclass
class DecodingTrace:
    """Every step of one `generate` call (pass ``trace=DecodingTrace()`` to fill one).

    Introduced in notebooks/07_decoding_strategies.ipynb.
    """

    top_n: int = 10
    strategy: str = ""
    steps: list[TraceStep] = field(default_factory=list)

    def record(self, input_ids: torch.Tensor, stages: list[tuple[str, torch.Tensor]],
               chosen: int | None = None, beams: list[tuple[int, int, float]] | None = None) -> TraceStep:
        """Add a step from the processor stages of row 0 (as `logits_stages` returns them)."""
        step = summarize_stages(stages, self.top_n, step=len(self.steps), chosen=chosen)
        step.beams = list(beams or [])
        self.steps.append(step)
        return step

    @property
    def chosen(self) -> list[int | None]:
        return [s.chosen for s in self.steps]


def summarize_stages(stages: list[tuple[str, torch.Tensor]], top_n: int = 10, step: int = 0,
                     chosen: int | None = None) -> TraceStep:
    """A `TraceStep` for row 0 of `stages` (see `logits_stages`)."""
    raw = stages[0][1][0].float()
    final = stages[-1][1][0].float()
    raw_p = raw.softmax(-1)
    final_p = final.softmax(-1)
    n = min(top_n, raw.numel())
    ids = torch.topk(raw_p, n).indices.tolist()
    if chosen is not None and chosen not in ids:
        ids.append(int(chosen))
    probs = {name: s[0].float().softmax(-1)[ids].tolist() for name, s in stages}
    kept_all = torch.isfinite(final)
    logp = final_p.clamp_min(1e-30).log()
    entropy = float(-(final_p * logp)[kept_all].sum())
    return TraceStep(
        step=step, token_ids=ids, probs=probs, kept=kept_all[ids].tolist(),
        removed_mass=float(raw_p[~kept_all].sum()), entropy=entropy, chosen=chosen,
    )


# ----------------------------------------------------------------------------------------
# The model call and the KV cache, for the course GPT and for transformers models
# ----------------------------------------------------------------------------------------
def context_length(model: Any) -> int | None:
    """The longest sequence the model accepts (n_positions), or None when unknown.

    Introduced in notebooks/07_decoding_strategies.ipynb.
    """
    cfg = getattr(model, "config", None)
    for name in ("n_positions", "max_position_embeddings", "n_ctx"):
        value = getattr(cfg, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def _cache_length(past: Any) -> int:
    if past is None:
        return 0
    if hasattr(past, "get_seq_length"):  # a transformers Cache object
        return int(past.get_seq_length())
    return int(past[0][0].size(2))  # tuple of (k, v), each (B, nh, S, hs)


def _reorder_cache(past: Any, index: torch.Tensor) -> Any:
    """Pick rows of the cache: beam reordering, expansion and selection are all this."""
    if past is None:
        return None
    if hasattr(past, "reorder_cache"):  # transformers Cache: reorders in place
        past.reorder_cache(index)
        return past
    return tuple(tuple(t.index_select(0, index.to(t.device)) for t in layer) for layer in past)


class _Runner:
    """Feeds a model the next token(s) with or without the KV cache, cropping to its context."""

    def __init__(self, model: Any, use_cache: bool, hidden: bool = False) -> None:
        self.model = model
        self.use_cache = use_cache
        self.hidden = hidden
        self.ctx = context_length(model)
        self.past: Any = None

    def __call__(self, seqs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """seqs (N, T), the whole text so far -> (next-token logits (N, V) fp32, last hidden (N, t, C))."""
        past = self.past if self.use_cache else None
        if past is not None and (self.ctx is None or _cache_length(past) + 1 <= self.ctx):
            feed = seqs[:, -1:]  # (N, 1) only the newest token: the rest is cached
        else:
            past = None  # first step, no cache, or the cache is full: recompute the window
            feed = seqs if self.ctx is None else seqs[:, -self.ctx:]
        kwargs: dict[str, Any] = {"past_key_values": past, "use_cache": self.use_cache}
        if self.hidden:
            kwargs["output_hidden_states"] = True
        out = self.model(input_ids=feed, **kwargs)
        self.past = out.past_key_values if self.use_cache else None
        logits = out.logits[:, -1, :].to(dtype=torch.float32)  # (N, V)
        hidden = out.hidden_states[-1] if self.hidden else None
        return logits, hidden

    def reorder(self, index: torch.Tensor) -> None:
        self.past = _reorder_cache(self.past, index)


def _as_batch(input_ids: Any, model: Any) -> torch.Tensor:
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


def next_token_step(model: Any, input_ids: Any, settings: DecodingSettings | None = None,
                    top_n: int = 10) -> TraceStep:
    """The next-token distribution for a prompt, before and after each processor (row 0).

    What the explorer draws; `chosen` is left empty.

    Introduced in notebooks/07_decoding_strategies.ipynb.
    """
    settings = settings or DecodingSettings()
    ids = _as_batch(input_ids, model)
    with torch.inference_mode():
        logits, _ = _Runner(model, use_cache=False)(ids)
    return summarize_stages(logits_stages(ids, logits, settings), top_n)


# ----------------------------------------------------------------------------------------
# 2. Strategies
# ----------------------------------------------------------------------------------------
def generate(
    model: Any,
    input_ids: Any,
    max_new_tokens: int,
    *,
    do_sample: bool = False,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    min_p: float | None = None,
    typical_p: float | None = None,
    repetition_penalty: float = 1.0,
    no_repeat_ngram_size: int = 0,
    num_beams: int = 1,
    length_penalty: float = 1.0,
    early_stopping: bool | str = False,
    num_return_sequences: int = 1,
    eos_token_id: int | Sequence[int] | None = None,
    use_cache: bool = True,
    seed: int | None = None,
    trace: DecodingTrace | None = None,
) -> torch.Tensor:
    """Continue `input_ids` by up to `max_new_tokens` tokens; returns prompt + new ids (B', T').

    Greedy when ``do_sample=False`` (or temperature 0), sampling otherwise; beam search
    (or beam sampling) when ``num_beams > 1``. Unlike `transformers`, `top_k` is off
    unless given (transformers silently uses top_k=50 when sampling). Rows that reach
    `eos_token_id` are padded with it, as transformers does. `seed` makes sampling
    reproducible: ``generate(..., seed=s)`` draws what ``torch.manual_seed(s)`` followed
    by ``model.generate(...)`` draws. A prompt longer than the context is cropped from
    the left (with a warning); so is the text when it outgrows the context.

    Introduced in notebooks/07_decoding_strategies.ipynb.
    """
    _check_common(max_new_tokens, num_beams, num_return_sequences)
    beam_sample = do_sample and temperature != 0 and num_beams > 1
    settings = DecodingSettings(
        do_sample=do_sample, temperature=temperature, top_k=top_k, top_p=top_p, min_p=min_p,
        typical_p=typical_p, repetition_penalty=repetition_penalty,
        no_repeat_ngram_size=no_repeat_ngram_size,
        min_tokens_to_keep=(len(_eos_list(eos_token_id)) + 1 if eos_token_id is not None else 2)
        if beam_sample else 1,
    )
    if num_beams > 1:
        return beam_search(
            model, input_ids, max_new_tokens, num_beams=num_beams, length_penalty=length_penalty,
            early_stopping=early_stopping, num_return_sequences=num_return_sequences,
            eos_token_id=eos_token_id, settings=settings, use_cache=use_cache, seed=seed,
            trace=trace,
        ).sequences
    if num_return_sequences > 1 and not settings.do_sample:
        raise CourseInputError(
            f"num_return_sequences={num_return_sequences} needs sampling (do_sample=True) or "
            "beam search (num_beams >= num_return_sequences): greedy decoding has one answer")
    ids = _as_batch(input_ids, model)
    if num_return_sequences > 1:
        ids = ids.repeat_interleave(num_return_sequences, dim=0)  # (B * n, T)
    if trace is not None:
        trace.strategy = trace.strategy or ("sample" if settings.do_sample else "greedy")
    generator = None
    if seed is not None:
        generator = torch.Generator(device=ids.device).manual_seed(seed)
    eos = _eos_list(eos_token_id)
    eos_t = torch.tensor(eos, device=ids.device, dtype=torch.long)
    run = _Runner(model, use_cache)
    unfinished = torch.ones(ids.size(0), dtype=torch.bool, device=ids.device)  # (B,)
    with torch.inference_mode():
        for _ in range(max_new_tokens):
            logits = run(ids)[0]  # (B, V)
            if trace is not None:
                stages = logits_stages(ids, logits, settings)
                scores = stages[-1][1]
            else:
                scores = process_logits(ids, logits, settings)
            if settings.do_sample:
                probs = scores.softmax(dim=-1)
                next_ids = torch.multinomial(probs, 1, generator=generator).squeeze(1)  # (B,)
            else:
                next_ids = scores.argmax(dim=-1)  # (B,)
            if eos:
                next_ids = torch.where(unfinished, next_ids, eos_t[0])  # finished rows: pad
            if trace is not None:
                trace.record(ids, stages, chosen=int(next_ids[0]))
            ids = torch.cat([ids, next_ids[:, None]], dim=1)  # (B, T + 1)
            if eos:
                unfinished &= ~torch.isin(next_ids, eos_t)
                if not bool(unfinished.any()):
                    break
    return ids


@dataclass
class BeamSearchOutput:
    """The n best finished hypotheses per prompt, best first.

    sequences (B * n, T') are prompt + new ids, shorter ones padded with the eos id;
    scores (B * n,) their length-penalized log-probabilities; lengths the number of
    new tokens of each.
    """

    sequences: torch.Tensor
    scores: torch.Tensor
    lengths: list[int]


def _gather(t: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """t (B, N, ...) -> t[b, index[b, j], ...] of shape (B, J, ...)."""
    while index.dim() < t.dim():
        index = index.unsqueeze(-1)
    return torch.take_along_dim(t, index, dim=1)


class _BeamState:
    """Running and finished beams of B prompts, as transformers 5 keeps them.

    running (B, nb, L) with scores (B, nb): the sums of log-probabilities so far;
    finished (B, nb, L) with scores divided by (generated length ** length_penalty);
    a finished slot still holding -1e9 is empty.
    """

    def __init__(self, prompt: torch.Tensor, num_beams: int, max_length: int, fill: int,
                 length_penalty: float, early_stopping: bool | str, n_eos: int) -> None:
        B, T0 = prompt.shape
        self.B, self.nb, self.T0, self.max_length = B, num_beams, T0, max_length
        self.length_penalty, self.early_stopping = length_penalty, early_stopping
        self.keep = max(2, 1 + n_eos) * num_beams  # candidates kept per step
        dev = prompt.device
        self.running = torch.full((B, num_beams, max_length), fill, dtype=torch.long, device=dev)
        self.running[:, :, :T0] = prompt[:, None, :]
        self.running_scores = torch.zeros(B, num_beams, device=dev)
        self.running_scores[:, 1:] = BIG_NEG  # all beams start equal: only beam 0 may expand
        self.finished = self.running.clone()
        self.finished_scores = torch.full((B, num_beams), BIG_NEG, device=dev)
        self.finished_flag = torch.zeros(B, num_beams, dtype=torch.bool, device=dev)
        self.finished_len = torch.zeros(B, num_beams, dtype=torch.long, device=dev)
        self.can_improve = torch.ones(B, 1, dtype=torch.bool, device=dev)
        self.cur_len = T0
        self.parents = torch.zeros(B, num_beams, dtype=torch.long, device=dev)

    def step(self, logprobs: torch.Tensor, eos: torch.Tensor, sample: bool,
             generator: torch.Generator | None) -> bool:
        """logprobs (B, nb, V) after processors. Advances one token; False when done."""
        B, nb, V = logprobs.shape
        total = (logprobs + self.running_scores[:, :, None]).reshape(B, nb * V)  # (B, nb*V)
        # 1. the best `keep` continuations over all beams (or `keep` samples without replacement)
        if sample:
            idx = torch.multinomial(total.softmax(-1), self.keep, generator=generator)
            cand_scores = total.gather(1, idx)
            # best first, so "the first nb" below means the best nb samples (transformers >= 5.24
            # does the same; older versions kept the draw order)
            cand_scores, order = cand_scores.sort(dim=-1, descending=True)
            idx = idx.gather(-1, order)
        else:
            cand_scores, idx = torch.topk(total, self.keep)  # (B, K)
        cand_beam, cand_tok = idx // V, idx % V
        cand = _gather(self.running, cand_beam)  # (B, K, L)
        cand[:, :, self.cur_len] = cand_tok
        done = torch.isin(cand_tok, eos) | (self.cur_len + 1 >= self.max_length)  # (B, K)
        # 2. the best nb that did not finish keep running
        live_scores = cand_scores + done.to(torch.float32) * BIG_NEG
        top = torch.topk(live_scores, nb).indices  # (B, nb)
        self.running = _gather(cand, top)
        self.running_scores = _gather(live_scores, top)
        self.parents = _gather(cand_beam, top)
        # 3. finished candidates among the first nb enter the n-best list, length-penalized
        gen_len = self.cur_len + 1 - self.T0
        first_nb = torch.arange(self.keep, device=done.device) < nb
        new_done = done & first_nb[None, :]
        normed = cand_scores / (gen_len ** self.length_penalty)
        full = self.finished_flag.all(-1, keepdim=True) & (self.early_stopping is True)
        normed += full.to(torch.float32) * BIG_NEG
        normed += (~self.can_improve).to(torch.float32) * BIG_NEG
        normed += (~new_done) * BIG_NEG
        merged_scores = torch.cat([self.finished_scores, normed], dim=1)  # (B, nb + K)
        best = torch.topk(merged_scores, nb).indices
        self.finished = _gather(torch.cat([self.finished, cand], dim=1), best)
        self.finished_scores = _gather(merged_scores, best)
        self.finished_flag = _gather(torch.cat([self.finished_flag, new_done], dim=1), best)
        lens = torch.full_like(new_done, gen_len, dtype=torch.long)
        self.finished_len = _gather(torch.cat([self.finished_len, lens], dim=1), best)
        self.cur_len += 1
        # 4. can a running beam still beat the worst finished one?
        if self.early_stopping == "never" and self.length_penalty > 0.0:
            best_len = self.max_length - self.T0
        else:
            best_len = self.cur_len - self.T0
        best_running = self.running_scores[:, :1] / (best_len ** self.length_penalty)
        worst = torch.where(self.finished_flag, self.finished_scores.min(dim=1, keepdim=True).values, BIG_NEG)
        self.can_improve = self.can_improve & (best_running > worst).any(dim=-1, keepdim=True)
        all_full = bool(self.finished_flag.all()) and self.early_stopping is True
        return bool(self.can_improve.any()) and not all_full and not bool(done.all())

    def flat_parents(self) -> torch.Tensor:
        """Parent beam of each running beam as a row index of the flat (B * nb) batch."""
        offset = torch.arange(self.B, device=self.parents.device)[:, None] * self.nb
        return (self.parents + offset).reshape(-1)


def beam_search(
    model: Any,
    input_ids: Any,
    max_new_tokens: int,
    *,
    num_beams: int = 4,
    length_penalty: float = 1.0,
    early_stopping: bool | str = False,
    num_return_sequences: int = 1,
    eos_token_id: int | Sequence[int] | None = None,
    settings: DecodingSettings | None = None,
    use_cache: bool = True,
    seed: int | None = None,
    trace: DecodingTrace | None = None,
) -> BeamSearchOutput:
    """Beam search: keep the `num_beams` best partial texts by summed log-probability.

    A text that emits `eos_token_id` (or reaches the length limit) is finished and
    scored as sum log p / (new tokens ** length_penalty): length_penalty > 1 favours
    longer texts. ``early_stopping=True`` stops once num_beams texts have finished;
    False stops when no running beam can still beat the worst finished one (judged at
    the current length); "never" judges at the longest possible length. Returns the
    `num_return_sequences` best (n-best). ``settings.do_sample`` gives beam sampling.

    Introduced in notebooks/07_decoding_strategies.ipynb.
    """
    _check_common(max_new_tokens, num_beams, num_return_sequences)
    if num_return_sequences > num_beams:
        raise CourseInputError(
            f"num_return_sequences={num_return_sequences} must be <= num_beams={num_beams}")
    if early_stopping not in (True, False, "never"):
        raise CourseInputError(f"early_stopping must be True, False or 'never', got {early_stopping!r}")
    settings = settings or DecodingSettings()
    prompt = _as_batch(input_ids, model)
    B, T0 = prompt.shape
    if max_new_tokens == 0:
        return BeamSearchOutput(prompt.repeat_interleave(num_return_sequences, 0),
                                torch.zeros(B * num_return_sequences), [0] * B * num_return_sequences)
    eos = _eos_list(eos_token_id)
    eos_t = torch.tensor(eos, dtype=torch.long, device=prompt.device)
    state = _BeamState(prompt, num_beams, T0 + max_new_tokens, eos[0] if eos else 0,
                       length_penalty, early_stopping, len(eos))
    generator = torch.Generator(device=prompt.device).manual_seed(seed) if seed is not None else None
    if trace is not None:
        trace.strategy = trace.strategy or "beam"
    run = _Runner(model, use_cache)
    with torch.inference_mode():
        while True:
            flat = state.running[:, :, :state.cur_len].reshape(B * num_beams, state.cur_len)
            logits = run(flat)[0]  # (B*nb, V)
            logprobs = F.log_softmax(logits, dim=-1)
            stages = logits_stages(flat, logprobs, settings) if trace is not None else None
            logprobs = stages[-1][1] if stages else process_logits(flat, logprobs, settings)
            more = state.step(logprobs.view(B, num_beams, -1), eos_t, settings.do_sample, generator)
            if trace is not None:
                beams = [(int(p), int(t), float(s)) for p, t, s in zip(
                    state.parents[0], state.running[0, :, state.cur_len - 1], state.running_scores[0])]
                trace.record(flat, stages, chosen=beams[0][1], beams=beams)
            if not more:
                break
            run.reorder(state.flat_parents())
    n = num_return_sequences
    lengths = state.finished_len[:, :n].reshape(-1)
    out_len = T0 + int(lengths.max())
    seqs = state.finished[:, :n, :out_len].reshape(B * n, out_len)
    return BeamSearchOutput(seqs, state.finished_scores[:, :n].reshape(-1), lengths.tolist())


def contrastive_search(
    model: Any,
    input_ids: Any,
    max_new_tokens: int,
    *,
    penalty_alpha: float = 0.6,
    top_k: int = 4,
    eos_token_id: int | Sequence[int] | None = None,
    settings: DecodingSettings | None = None,
    use_cache: bool = True,
) -> torch.Tensor:
    """Contrastive search (Su et al. 2022): among the `top_k` most likely next tokens pick

        argmax_v (1 - alpha) * p(v | x) - alpha * max_j cos(h_v, h_j)

    where h_v is the model's last hidden state after reading v and h_j those of every
    earlier token: likely, but unlike anything said so far. alpha = 0 is greedy.
    Returns prompt + new ids (B, T').

    Introduced in notebooks/07_decoding_strategies.ipynb.
    """
    if not 0 <= penalty_alpha <= 1:
        raise CourseInputError(f"penalty_alpha must be in [0, 1], got {penalty_alpha!r}")
    if not isinstance(top_k, int) or top_k < 1:
        raise CourseInputError(f"top_k must be an integer >= 1 for contrastive search, got {top_k!r}")
    _check_common(max_new_tokens, 1, 1)
    settings = settings or DecodingSettings()
    ids = _as_batch(input_ids, model)
    B = ids.size(0)
    eos = _eos_list(eos_token_id)
    eos_t = torch.tensor(eos, dtype=torch.long, device=ids.device)
    unfinished = torch.ones(B, dtype=torch.bool, device=ids.device)
    run = _Runner(model, use_cache, hidden=True)
    k = top_k
    with torch.inference_mode():
        logits, context = run(ids)  # (B, V), (B, T, C): hidden states of the prompt
        for _ in range(max_new_tokens):
            probs = process_logits(ids, logits, settings).softmax(-1)  # (B, V)
            top_p, top_ids = torch.topk(probs, k, dim=-1)  # (B, k) candidates, most likely first
            # read each candidate: the cache is copied k times, one row per candidate
            run.reorder(torch.arange(B, device=ids.device).repeat_interleave(k))
            cand_seqs = torch.cat([ids.repeat_interleave(k, 0), top_ids.reshape(-1, 1)], dim=1)
            cand_logits, cand_hidden = run(cand_seqs)  # (B*k, V), (B*k, t, C)
            h = cand_hidden[:, -1, :].reshape(B, k, -1)  # (B, k, C)
            ctx_n = F.normalize(context, dim=-1)  # (B, T, C)
            sim = torch.bmm(F.normalize(h, dim=-1), ctx_n.transpose(1, 2))  # (B, k, T) cosines
            score = (1 - penalty_alpha) * top_p - penalty_alpha * sim.amax(dim=-1)  # (B, k)
            pick = score.argmax(dim=-1)  # (B,)
            rows = torch.arange(B, device=ids.device) * k + pick  # (B,) rows of the k-fold batch
            next_ids = top_ids.gather(1, pick[:, None]).squeeze(1)
            if eos:
                next_ids = torch.where(unfinished, next_ids, eos_t[0])
            run.reorder(rows)
            logits = cand_logits[rows]
            context = torch.cat([context, h[torch.arange(B), pick][:, None, :]], dim=1)
            ids = torch.cat([ids, next_ids[:, None]], dim=1)
            if eos:
                unfinished &= ~torch.isin(next_ids, eos_t)
                if not bool(unfinished.any()):
                    break
    return ids


def diverse_beam_search(
    model: Any,
    input_ids: Any,
    max_new_tokens: int,
    *,
    num_beams: int = 4,
    num_beam_groups: int = 2,
    diversity_penalty: float = 1.0,
    length_penalty: float = 1.0,
    early_stopping: bool | str = False,
    num_return_sequences: int = 1,
    eos_token_id: int | Sequence[int] | None = None,
    settings: DecodingSettings | None = None,
    use_cache: bool = True,
) -> BeamSearchOutput:
    """Diverse (group) beam search (Vijayakumar et al. 2016).

    The beams are split into `num_beam_groups` groups that search one after another at
    each step; a group's log-probabilities are lowered by `diversity_penalty` times the
    number of times each token was just chosen by the earlier groups (Hamming
    diversity). Each group is an ordinary beam search of num_beams / groups beams; the
    n best finished texts over all groups are returned.

    Introduced in notebooks/07_decoding_strategies.ipynb.
    """
    _check_common(max_new_tokens, num_beams, num_return_sequences)
    if not isinstance(num_beam_groups, int) or num_beam_groups < 1 or num_beams % num_beam_groups:
        raise CourseInputError(
            f"num_beam_groups={num_beam_groups!r} must be >= 1 and divide num_beams={num_beams}")
    if num_return_sequences > num_beams:
        raise CourseInputError(
            f"num_return_sequences={num_return_sequences} must be <= num_beams={num_beams}")
    settings = settings or DecodingSettings()
    prompt = _as_batch(input_ids, model)
    B, T0 = prompt.shape
    G, gs = num_beam_groups, num_beams // num_beam_groups
    eos = _eos_list(eos_token_id)
    eos_t = torch.tensor(eos, dtype=torch.long, device=prompt.device)
    groups = [_BeamState(prompt, gs, T0 + max(max_new_tokens, 1), eos[0] if eos else 0,
                         length_penalty, early_stopping, len(eos)) for _ in range(G)]
    active = [max_new_tokens > 0] * G
    run = _Runner(model, use_cache)
    with torch.inference_mode():
        while any(active):
            cur = groups[0].cur_len
            flat = torch.cat([g.running[:, :, :cur] for g in groups], dim=1).reshape(B * num_beams, cur)
            logits = run(flat)[0].view(B, G, gs, -1)  # (B, G, gs, V)
            chosen = torch.zeros(B, logits.size(-1), device=logits.device)  # tokens earlier groups took
            order = []
            for gi, g in enumerate(groups):
                rows = flat.view(B, G, gs, cur)[:, gi].reshape(B * gs, cur)
                lp = F.log_softmax(logits[:, gi].reshape(B * gs, -1), dim=-1).view(B, gs, -1)
                lp = lp - diversity_penalty * chosen[:, None, :]  # Hamming diversity first
                lp = process_logits(rows, lp.reshape(B * gs, -1), settings).view(B, gs, -1)
                if active[gi]:
                    active[gi] = g.step(lp, eos_t, False, None)
                    tok = g.running[:, :, g.cur_len - 1]  # (B, gs) the tokens this group just took
                    chosen.scatter_add_(1, tok, torch.ones_like(tok, dtype=chosen.dtype))
                    order.append(g.parents + gi * gs)
                else:  # a finished group keeps its beams where they are
                    g.running[:, :, g.cur_len] = eos[0] if eos else 0
                    g.cur_len += 1
                    order.append(torch.arange(gs, device=prompt.device).expand(B, gs) + gi * gs)
            if not any(active) or groups[0].cur_len >= groups[0].max_length:
                break
            offset = torch.arange(B, device=prompt.device)[:, None] * num_beams
            run.reorder((torch.cat(order, dim=1) + offset).reshape(-1))
    # the n best finished texts over all groups
    scores = torch.cat([g.finished_scores for g in groups], dim=1)  # (B, num_beams)
    seqs = torch.cat([g.finished for g in groups], dim=1)
    lens = torch.cat([g.finished_len for g in groups], dim=1)
    n = num_return_sequences
    best = torch.sort(scores, dim=1, descending=True, stable=True).indices[:, :n]
    lengths = _gather(lens, best).reshape(-1)
    out_len = T0 + int(lengths.max())
    out = _gather(seqs, best)[:, :, :out_len].reshape(B * n, out_len)
    return BeamSearchOutput(out, _gather(scores, best).reshape(-1), lengths.tolist())
