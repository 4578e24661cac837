"""Speculative (assisted) decoding: a small draft model proposes, the target model verifies.

Each round the draft (`assistant_model`, transformers' name) proposes `num_assistant_tokens`
tokens one at a time, cheaply; the target reads all of them in ONE forward pass, which gives
its distribution after every prefix of the proposal. `accept_draft` keeps the longest prefix
the target agrees with and adds one token of the target's own, so a round writes between 1 and
k + 1 tokens for one target call. Both KV caches are rolled back past the rejected tokens.

The acceptance rule (Leviathan et al. 2023, Chen et al. 2023): draft token x, drawn from the
draft's q, is kept with probability min(1, p(x) / q(x)); at the first rejection the next token
is drawn from norm(max(0, p - q)) instead, and when all k are kept from the target's p after
them. The tokens written are then distributed exactly as if sampled from p: the draft changes
the speed, never the text's distribution. Greedy decoding is the same rule with one-hot p and q
(keep a draft token iff it is the target's argmax), so its ids equal plain greedy decoding's.

References: Leviathan, Kalman, Matias 2023, "Fast Inference from Transformers via Speculative
Decoding"; Chen et al. 2023, "Accelerating Large Language Model Decoding with Speculative
Sampling"; transformers' assisted generation (``generate(assistant_model=...)``).

Introduced in notebooks/07_decoding_strategies.ipynb.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from ..errors import CourseInputError
from ..protocols import CausalLM, KVCache
from .processors import DecodingSettings, process_logits, settings_from
from .runner import _as_ids, _cache_argument, _cache_length, _check_common, _forward_accepts, context_length
from .strategies import _Rows
from .text import Streamer

DEFAULT_ASSISTANT_TOKENS = 5
"""Draft tokens proposed per round when not given (transformers starts at 20 and adapts)."""


def accept_draft(p: torch.Tensor, q: torch.Tensor, draft: torch.Tensor, u: torch.Tensor) -> tuple[int, torch.Tensor]:
    """The acceptance rule: how many draft tokens to keep, and what to draw the next token from.

    p: (k + 1, V) the target's probabilities after each prefix of the draft (row k: after all of it);
    q: (k, V) the draft's probabilities its tokens were drawn from; draft: (k,) those tokens;
    u: (k,) uniform draws in [0, 1). Returns (n, dist): the first n draft tokens are kept
    (u_i < p_i(x_i) / q_i(x_i) for each), dist (V,) the distribution of the token that follows
    them: norm(max(0, p_n - q_n)) after a rejection, p_k when all k were kept.
    """
    k = draft.size(0)
    for i in range(k):
        x = draft[i]
        if u[i] * q[i, x] >= p[i, x]:  # rejected: u >= p/q, written without dividing by a zero q
            residual = (p[i] - q[i]).clamp_min(0)  # (V,) where the target wants more than the draft gave
            return i, residual / residual.sum()
    return k, p[k]


@dataclasses.dataclass
class SpeculativeStats:
    """What one speculative run did: rounds (target calls), draft tokens proposed and kept."""

    rounds: int = 0
    proposed: int = 0
    accepted: int = 0
    written: int = 0

    @property
    def acceptance_rate(self) -> float:
        """The share of proposed draft tokens the target kept."""
        return self.accepted / self.proposed if self.proposed else 0.0

    @property
    def tokens_per_round(self) -> float:
        """Tokens written per target forward pass (plain decoding: 1)."""
        return self.written / self.rounds if self.rounds else 0.0


class _Cached:
    """One model with its KV cache: feed what the cache has not seen, roll the cache back."""

    def __init__(self, model: CausalLM) -> None:
        self.model = model
        self.past: KVCache | None = None
        self.cache_name = _cache_argument(model)
        self.keep = _forward_accepts(model, "logits_to_keep")

    def logits(self, seqs: torch.Tensor, last: int) -> torch.Tensor:
        """seqs (1, T): the whole text -> the logits (last, V) fp32 after each of its last `last` tokens."""
        cached = _cache_length(self.past)
        feed = seqs[:, cached:]  # (1, t) what the cache has not seen; t >= last
        kwargs: dict[str, Any] = {self.cache_name: self.past, "use_cache": True}
        if self.keep:
            kwargs["logits_to_keep"] = last
        out = self.model(input_ids=feed, **kwargs)
        self.past = getattr(out, self.cache_name)
        return out.logits[0, -last:, :].to(dtype=torch.float32)  # (last, V)

    def crop(self, length: int) -> None:
        """Forget every cached position from `length` on: the rejected draft tokens."""
        cached = _cache_length(self.past)
        if self.past is None or cached <= length:
            return
        if hasattr(self.past, "crop"):  # a transformers Cache; a negative count (remove that many) means the
            self.past.crop(length - cached)  # same on 4.57 and 5.x (5.x refuses a positive length)
        else:  # the course's tuple of (k, v) per layer, each (B, nh, S, hs)
            self.past = tuple(tuple(t[:, :, :length] for t in layer) for layer in self.past)


def _vocab(model: CausalLM) -> int | None:
    value = getattr(getattr(model, "config", None), "vocab_size", None)
    return value if isinstance(value, int) else None


def _check_pair(model: CausalLM, assistant_model: CausalLM, ids: torch.Tensor, max_new_tokens: int,
                num_assistant_tokens: int) -> None:
    if not isinstance(num_assistant_tokens, int) or num_assistant_tokens < 1:
        raise CourseInputError(f"num_assistant_tokens must be an integer >= 1, got {num_assistant_tokens!r}")
    v_target, v_draft = _vocab(model), _vocab(assistant_model)
    if v_target is not None and v_draft is not None and v_target != v_draft:
        raise CourseInputError(
            f"the draft model's vocabulary has {v_draft} tokens but the target's has {v_target}: speculative "
            "decoding needs a draft trained with the target's tokenizer (the same token ids)")
    if ids.size(0) != 1:
        raise CourseInputError(
            f"speculative decoding continues one prompt at a time (got a batch of {ids.size(0)}); "
            "transformers' assisted generation does too")
    for who, m in (("target", model), ("draft", assistant_model)):
        ctx = context_length(m)
        if ctx is not None and ids.size(1) + max_new_tokens > ctx:
            raise CourseInputError(
                f"the prompt ({ids.size(1)} tokens) plus max_new_tokens={max_new_tokens} is longer than the "
                f"{who} model's context of {ctx}: shorten one of them")


def _probs(ids: torch.Tensor, logits: torch.Tensor, settings: DecodingSettings) -> torch.Tensor:
    """logits (n, V) after ids[:, :T-n+1], ..., ids -> probabilities (n, V), processed as plain decoding does:
    one-hot on the argmax when greedy."""
    n, T = logits.size(0), ids.size(1)
    rows = [process_logits(ids[:, :T - n + 1 + i], logits[i:i + 1], settings, None) for i in range(n)]
    scores = torch.cat(rows, dim=0)  # (n, V)
    if not settings.do_sample:
        return F.one_hot(scores.argmax(-1), scores.size(-1)).to(torch.float32)
    return scores.softmax(-1)


def speculative_generate(
    model: CausalLM,
    input_ids: Sequence[int] | torch.Tensor,
    max_new_tokens: int,
    settings: DecodingSettings | None = None,
    *,
    assistant_model: CausalLM,
    num_assistant_tokens: int = DEFAULT_ASSISTANT_TOKENS,
    eos_token_id: int | Sequence[int] | None = None,
    pad_token_id: int | None = None,
    seed: int | None = None,
    streamer: Streamer | None = None,
    stop_strings: str | Sequence[str] | None = None,
    tokenizer: Any = None,
    stats: SpeculativeStats | None = None,
    acceptance_rule: Callable[..., tuple[int, torch.Tensor]] = accept_draft,
    **options: Any,
) -> torch.Tensor:
    """Continue one prompt by up to `max_new_tokens` tokens, the draft `assistant_model` proposing
    `num_assistant_tokens` per round; returns prompt + new ids (1, T').

    Greedy ids equal `generate`'s greedy ids; sampled tokens follow the target's distribution after
    the settings' processors (temperature, top-k, top-p, ... applied to draft and target alike), as
    `generate(do_sample=True)` draws them (not the same draws). Both models must share the
    vocabulary. `stats` (a `SpeculativeStats`) is filled with rounds, proposed and kept tokens.
    `acceptance_rule` is `accept_draft` unless another with its signature is given (notebook 07 passes
    the learner's).
    """
    settings = settings_from(settings, options)
    _check_common(max_new_tokens, settings.num_beams, settings.num_return_sequences)
    if settings.num_beams != 1 or settings.num_return_sequences != 1 or settings.penalty_alpha is not None \
            or settings.num_beam_groups != 1:
        raise CourseInputError("speculative decoding runs greedy decoding or sampling: one sequence, no beams, "
                               "no contrastive search")
    ids = _as_ids(input_ids, model)
    _check_pair(model, assistant_model, ids, max_new_tokens, num_assistant_tokens)
    stats = stats if stats is not None else SpeculativeStats()
    generator = torch.Generator(device=ids.device)
    if seed is not None:
        generator.manual_seed(seed)
    else:
        generator.seed()
    target, draft = _Cached(model), _Cached(assistant_model)
    rows = _Rows(ids, eos_token_id, pad_token_id, stop_strings, tokenizer, streamer)
    end = ids.size(1) + max_new_tokens
    with torch.inference_mode():
        while ids.size(1) < end and not rows.done:
            k = min(num_assistant_tokens, end - ids.size(1) - 1)  # the round's extra token keeps us in budget
            proposal, q_rows = ids, []
            for _ in range(k):  # the draft proposes, one token at a time, with its cache
                q = _probs(proposal, draft.logits(proposal, 1), settings)  # (1, V)
                x = torch.multinomial(q, 1, generator=generator) if settings.do_sample else q.argmax(-1, True)
                proposal = torch.cat([proposal, x.to(ids.device)], dim=1)  # (1, T + i + 1)
                q_rows.append(q)
            p = _probs(proposal, target.logits(proposal, k + 1), settings)  # (k + 1, V): one target call
            if p.size(-1) != (q_rows[0].size(-1) if q_rows else p.size(-1)):
                raise CourseInputError(
                    f"the draft model scores {q_rows[0].size(-1)} tokens but the target {p.size(-1)}: "
                    "speculative decoding needs the same vocabulary")
            new = proposal[0, ids.size(1):]  # (k,)
            q_all = torch.cat(q_rows, 0) if q_rows else p[:0]  # (k, V)
            u = torch.rand(k, generator=generator, device=ids.device) if settings.do_sample \
                else torch.zeros(k, device=ids.device)
            n, dist = acceptance_rule(p, q_all, new, u)
            n = int(n)
            if settings.do_sample:
                extra = torch.multinomial(dist[None], 1, generator=generator)[0]  # (1,)
            else:
                extra = dist.argmax(-1, keepdim=True)
            stats.rounds += 1
            stats.proposed += k
            stats.accepted += n
            written = 0
            for token in [*new[:n], extra[0]]:  # eos or a stop string may end the text mid-round
                ids = rows.append(ids, token.reshape(1))
                written += 1
                if rows.done:
                    break
            stats.written += written
            target.crop(ids.size(1) - 1)  # keep what the target read of the text; the newest token is unread
            draft.crop(ids.size(1) - 1)
    rows.end()
    return ids
