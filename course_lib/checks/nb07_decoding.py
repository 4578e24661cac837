"""Checks for notebooks/07_decoding_strategies.ipynb: top-k, top-p, the repetition penalty
and the KV cache's update.

The first three compare the learner's function with the reference in `course_lib.generate`
(`top_k_filter`, `top_p_filter`, `repetition_penalty`), which the tests prove equal to
the matching `transformers` logits processors: fixed cases for the classic mistakes
(ties in top-k, the token that crosses p, negative scores), then seeded random scores.
A filter's failure says which tokens each row kept. The KV-cache update (past keys and
values, then the new ones, with an optional sliding window) is checked against the
reference written here, on tensors whose values say where they came from. `check_kv_cache_attention` checks the
attention module with a KV cache (past keys and values first, the mask offset by what is cached)
against the class written here. `check_sample_next` checks one
step of the sampling loop (temperature, top-k, top-p, a draw) against the reference written here,
which applies them as `generate` does. The acceptance rule
of speculative decoding is checked against `course_lib.generate.accept_draft`, whose tests prove
that it gives exactly the target's distribution.

Introduced in notebooks/07_decoding_strategies.ipynb.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ..generate import accept_draft, repetition_penalty, top_k_filter, top_p_filter
from ._core import Build, Case, CheckResult, Exercise, Mistake, ModuleExercise, describe, tensors_equal

__all__ = [
    "check_acceptance_rule", "check_kv_cache_attention", "check_kv_cache_update", "check_repetition_penalty",
    "check_sample_next", "check_top_k_filter", "check_top_p_filter",
]

NEG_INF = float("-inf")


def _scores(rng: random.Random) -> torch.Tensor:
    B, V = rng.randint(1, 3), rng.randint(5, 30)
    g = torch.Generator().manual_seed(rng.randrange(2**31))
    return torch.randn(B, V, generator=g) * rng.choice([0.5, 2.0, 5.0])  # (B, V) logits


def _ids(mask: torch.Tensor) -> str:
    ids = mask.nonzero().flatten().tolist()
    return str(ids) if len(ids) <= 12 else f"{ids[:12]} and {len(ids) - 12} more"


def _filter_shape(got: Any, expected: torch.Tensor) -> str:
    if not isinstance(got, torch.Tensor):
        return f"your result is a {type(got).__name__}; return the scores tensor with the removed tokens at -inf"
    ok, why = tensors_equal(got, expected, noun="filtered scores")
    if not ok and ("must be" in why or "shape" in why):
        return why
    return ""


def _kept_values(got: torch.Tensor, scores: torch.Tensor) -> str:
    """The kept tokens must keep their scores, the others must be exactly -inf."""
    kept = got != NEG_INF
    if not torch.equal(got[kept].double(), scores[kept].double()):
        return "a kept token's score changed; keep the scores of the tokens you keep as they were"
    return ""


def _row_message(r: int, got_kept: torch.Tensor, exp_kept: torch.Tensor) -> str:
    n_got, n_exp = int(got_kept.sum()), int(exp_kept.sum())
    return (f"row {r}: you kept {n_got} token{'s' * (n_got != 1)} {_ids(got_kept)}, "
            f"expected {n_exp} {_ids(exp_kept)}")


def _compare_top_k(got: Any, expected: torch.Tensor) -> tuple[bool, str]:
    if why := _filter_shape(got, expected):
        return False, why
    g, e = got.detach().cpu(), expected.detach().cpu()
    for r in range(e.size(0)):
        gk, ek = g[r] != NEG_INF, e[r] != NEG_INF
        if not torch.equal(gk, ek):
            return False, _row_message(r, gk, ek)
    return tensors_equal(g, e, noun="filtered scores")


def _ref_top_k(scores: torch.Tensor, k: int) -> torch.Tensor:
    return top_k_filter(scores, k)


def _top_k_inputs(rng: random.Random) -> tuple[torch.Tensor, int]:
    scores = _scores(rng)
    return scores, rng.randint(1, scores.size(-1))


def _randn(*shape: int, scale: float = 1.0) -> torch.Tensor:
    return torch.randn(*shape) * scale  # the check seeds torch before each case


TOP_K = Exercise(
    name="top_k_filter",
    reference=_ref_top_k,
    solution=top_k_filter,
    make_inputs=_top_k_inputs,
    hints=(
        "in each row, find the k-th best score; every score below it is removed (set to minus infinity), "
        "the others stay exactly as they were",
        "compare each score with its own row's k-th best score, not with a single threshold for the "
        "whole batch; a score equal to the k-th best is kept, so ties can keep more than k tokens",
    ),
    cases=(
        Case("k = 2 with two scores tied for second place",
             (torch.tensor([[1.0, 2.0, 2.0, 3.0, 0.5]]), 2)),
        Case("two rows on different scales",
             (torch.tensor([[0.1, 5.0, 3.0, 4.0, -1.0], [10.0, 20.0, 30.0, 40.0, 50.0]]), 3)),
        Case("k equal to the vocabulary size", lambda: (_randn(2, 6), 6)),
        Case("k = 1", lambda: (_randn(1, 7, scale=2), 1)),
        Case("negative scores", lambda: (-_randn(1, 8).abs() - 1, 3)),
    ),
    compare=_compare_top_k,
    noun="filtered scores",
)


def check_top_k_filter(fn: Callable[[torch.Tensor, int], torch.Tensor], quiet: bool = False) -> CheckResult:
    """Check `fn(scores, k)`: keep the k largest scores of each row (ties included), the others -inf.
    """
    return TOP_K.check(fn, quiet=quiet)


def _ref_top_p(scores: torch.Tensor, p: float) -> torch.Tensor:
    return top_p_filter(scores, p)


_P_TOLERANCE = 1e-5  # a token whose mass before it is this close to p may go either way


def _judge_top_p(got: Any, expected: torch.Tensor, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[bool, str]:
    """Kept: the most likely tokens until their mass reaches p; float rounding at p is forgiven."""
    scores, p = (args + tuple(kwargs.values()))[:2]
    if why := _filter_shape(got, expected):
        return False, why
    g = got.detach().cpu()
    probs = scores.detach().cpu().double().softmax(-1)
    order = probs.argsort(dim=-1, descending=True)
    sorted_probs = probs.gather(-1, order)
    before = sorted_probs.cumsum(-1) - sorted_probs  # the mass of the more likely tokens
    must = (before < p - _P_TOLERANCE).scatter(-1, order, before < p - _P_TOLERANCE)
    must[torch.arange(g.size(0)), order[:, 0]] = True  # the most likely token always stays
    may = (before <= p + _P_TOLERANCE).scatter(-1, order, before <= p + _P_TOLERANCE) | must
    for r in range(g.size(0)):
        kept = g[r] != NEG_INF
        if bool((must[r] & ~kept).any()) or bool((kept & ~may[r]).any()):
            return False, _row_message(r, kept, expected[r].detach().cpu() != NEG_INF)
    if why := _kept_values(g, scores.detach().cpu()):
        return False, why
    return True, ""


TOP_P = Exercise(
    name="top_p_filter",
    reference=_ref_top_p,
    solution=top_p_filter,
    make_inputs=lambda rng: (_scores(rng), rng.choice([0.1, 0.5, 0.8, 0.9, 0.95, 1.0])),
    hints=(
        "go from the most likely token down and keep tokens until their probability mass reaches p; "
        "the token that makes the mass cross p is kept too",
        "work with probabilities (a softmax of the scores), sorted; a token is removed only when the mass "
        "of the tokens more likely than it already reaches p. The most likely token always stays, and the "
        "answer must be put back in the original token order",
    ),
    cases=(
        Case("probabilities 0.2, 0.5, 0.3 and p = 0.6",
             (torch.tensor([[math.log(0.2), math.log(0.5), math.log(0.3)]]), 0.6)),
        Case("one token more likely than p on its own",
             (torch.tensor([[math.log(0.05), math.log(0.9), math.log(0.05)]]), 0.5)),
        Case("two rows with different distributions",
             (torch.tensor([[4.0, 0.0, 1.0, 0.5, -1.0], [0.1, 0.3, 0.2, 0.0, 0.4]]), 0.8)),
        Case("p = 1", lambda: (_randn(2, 9), 1.0)),
    ),
    judge=_judge_top_p,
    noun="filtered scores",
)


def check_top_p_filter(fn: Callable[[torch.Tensor, float], torch.Tensor], quiet: bool = False) -> CheckResult:
    """Check `fn(scores, p)`: keep the most likely tokens until their mass reaches p."""
    return TOP_P.check(fn, quiet=quiet)


def _penalty_inputs(rng: random.Random) -> tuple[torch.Tensor, torch.Tensor, float]:
    scores = _scores(rng)
    B, V = scores.shape
    T = rng.randint(1, 8)
    ids = torch.tensor([[rng.randrange(V) for _ in range(T)] for _ in range(B)])  # (B, T)
    return ids, scores, rng.choice([0.8, 1.2, 1.5, 2.0])


def _solution_repetition_penalty(input_ids: torch.Tensor, scores: torch.Tensor, penalty: float) -> torch.Tensor:
    """Seen tokens: positive scores divided by the penalty, negative ones multiplied; a new tensor."""
    seen = scores.gather(1, input_ids)  # (B, T) the scores of the tokens already in the text
    seen = torch.where(seen < 0, seen * penalty, seen / penalty)
    return scores.scatter(1, input_ids, seen)  # a token seen twice gets the same value twice


def _penalty_per_occurrence(input_ids: torch.Tensor, scores: torch.Tensor, penalty: float) -> torch.Tensor:
    out = scores.clone()
    for b in range(scores.size(0)):
        for t in input_ids[b].tolist():
            out[b, t] = out[b, t] * penalty if out[b, t] < 0 else out[b, t] / penalty
    return out


REPETITION_PENALTY = Exercise(
    name="repetition_penalty",
    reference=repetition_penalty,
    solution=_solution_repetition_penalty,
    make_inputs=_penalty_inputs,
    hints=(
        "only the tokens already in that row's text change, and a penalty above one must make every one "
        "of them less likely, whatever the sign of its score",
        "a positive score is divided by the penalty, a negative one multiplied by it (dividing a negative "
        "score would raise it). A token seen twice is penalised once, each row uses its own ids, and the "
        "input scores must stay as they were: work on a copy",
    ),
    cases=(
        Case("a seen token with a negative score",
             (torch.tensor([[0, 2]]), torch.tensor([[-1.0, 0.5, 2.0, -3.0]]), 2.0)),
        Case("a token seen three times", (torch.tensor([[1, 1, 1]]), torch.tensor([[0.5, 3.0, -1.0]]), 1.5)),
        Case("two rows with different histories",
             (torch.tensor([[0, 1], [2, 2]]), torch.tensor([[1.0, -2.0, 3.0, 4.0], [1.0, -2.0, 3.0, -4.0]]), 2.0)),
        Case("a penalty below one", (torch.tensor([[3]]), torch.tensor([[1.0, 1.0, 1.0, -2.0]]), 0.8)),
        Case("a seen token with a zero score", (torch.tensor([[0]]), torch.tensor([[0.0, 1.0]]), 1.3)),
    ),
    mistakes=(
        Mistake("every seen score divided by the penalty; a negative score must be multiplied, or it rises",
                lambda input_ids, scores, penalty: scores.scatter(1, input_ids, scores.gather(1, input_ids) / penalty)),
        Mistake("a token penalised once for every time it was seen, instead of once", _penalty_per_occurrence),
    ),
    noun="scores",
)


def check_repetition_penalty(fn: Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor],
                             quiet: bool = False) -> CheckResult:
    """Check `fn(input_ids, scores, penalty)`: seen tokens' scores divided by penalty when
    positive, multiplied by it when negative.
    """
    return REPETITION_PENALTY.check(fn, quiet=quiet)


# -- the KV cache's update ---------------------------------------------------------------
def _reference_kv_cache_update(past: tuple[torch.Tensor, torch.Tensor] | None, k: torch.Tensor, v: torch.Tensor,
                               window: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Past positions first, then the new ones (axis 2); a window keeps only the newest positions."""
    if past is not None:
        k = torch.cat([past[0], k], dim=2)  # (B, nh, S + T, hs)
        v = torch.cat([past[1], v], dim=2)
    if window is not None:
        k, v = k[:, :, -window:], v[:, :, -window:]  # (B, nh, min(S + T, window), hs)
    return k, v


def _kv(B: int, nh: int, S: int, hs: int, start: float = 0.0) -> torch.Tensor:
    """(B, nh, S, hs) whose values say where they are: easy to read in a failure message."""
    return torch.arange(B * nh * S * hs, dtype=torch.float32).view(B, nh, S, hs) + start


def _cache_update_inputs(rng: random.Random) -> tuple[Any, torch.Tensor, torch.Tensor, int | None]:
    B, nh, hs = rng.randint(1, 3), rng.randint(1, 4), rng.choice([2, 4, 8])
    S, T = rng.randint(0, 10), rng.randint(1, 5)
    past = None if S == 0 else (torch.randn(B, nh, S, hs), torch.randn(B, nh, S, hs))
    return past, torch.randn(B, nh, T, hs), torch.randn(B, nh, T, hs), rng.choice([None, None, 1, 3, 8, 16])


def _a_pair(got: Any) -> str | None:
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        return (f"your result is {describe(got, 80)}; return a pair: the cached keys, then the cached values")
    return None


def _compare_cache(got: Any, expected: tuple[torch.Tensor, torch.Tensor]) -> tuple[bool, str]:
    for noun, g, e in zip(("key cache", "value cache"), got, expected):
        if not isinstance(g, torch.Tensor):
            return False, f"your {noun} is a {type(g).__name__}; it must be a torch tensor"
        ok, why = tensors_equal(g, e, noun=noun)
        if not ok:
            if g.shape != e.shape and g.dim() == e.dim() == 4 and g.shape[:2] != e.shape[:2]:
                why += " (the positions are the third axis: batch, heads, positions, head size)"
            return False, why
    return True, ""


def _cache_variant(new_first: bool = False, oldest: bool = False) -> Callable[..., Any]:
    def wrong(past, k, v, window=None):
        if past is not None:
            k, v = (torch.cat([k, p], dim=2) if new_first else torch.cat([p, k], dim=2) for p, k in zip(past, (k, v)))
        if window is None:
            return k, v
        return (k[:, :, :window], v[:, :, :window]) if oldest else (k[:, :, -window:], v[:, :, -window:])

    return wrong


KV_CACHE_UPDATE = Exercise(
    name="kv_cache_update",
    reference=_reference_kv_cache_update,
    make_inputs=_cache_update_inputs,
    hints=(
        "the cache is the keys and values of every position so far, in order: the old positions first, "
        "then the new ones, joined along the positions axis; keys and values are two separate caches",
        "with no past yet the new keys and values are the whole cache. A window keeps only the newest "
        "positions, the last ones along the positions axis, and keeps everything when the text is shorter "
        "than the window",
    ),
    cases=(
        Case("a past of two positions and two new ones",
             lambda: ((_kv(1, 2, 2, 2), _kv(1, 2, 2, 2, 100)), _kv(1, 2, 2, 2, 10), _kv(1, 2, 2, 2, 110), None)),
        Case("no past yet",
             lambda: (None, _kv(1, 1, 4, 2), _kv(1, 1, 4, 2, 100), None)),
        Case("a window of 3 over five positions",
             lambda: ((_kv(1, 1, 4, 2), _kv(1, 1, 4, 2, 100)), _kv(1, 1, 1, 2, 10), _kv(1, 1, 1, 2, 110), 3)),
        Case("a window longer than the text",
             lambda: ((_kv(2, 1, 2, 2), _kv(2, 1, 2, 2, 100)), _kv(2, 1, 1, 2, 10), _kv(2, 1, 1, 2, 110), 10)),
        Case("a prompt longer than the window, with no past",
             lambda: (None, _kv(1, 2, 5, 2), _kv(1, 2, 5, 2, 100), 2)),
    ),
    contract=_a_pair,
    compare=_compare_cache,
    mistakes=(
        Mistake("the new positions put before the past ones; the past comes first", _cache_variant(new_first=True)),
        Mistake("a window that keeps the oldest positions instead of the newest", _cache_variant(oldest=True)),
    ),
    noun="cache",
)


def check_kv_cache_update(fn: Callable[..., Any], quiet: bool = False) -> CheckResult:
    """Check `fn(past, k, v, window)`: the new cache (keys, values), each (B, nh, S, hs).

    `past` is None or the (keys, values) cached so far, `k` and `v` (B, nh, T, hs) those of
    the new positions; `window` None keeps every position, a number keeps only the newest ones.
    """
    return KV_CACHE_UPDATE.check(fn, quiet=quiet)


# -- speculative decoding's acceptance rule ------------------------------------------------
def _accept_inputs(rng: random.Random) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """p (k + 1, V), q (k, V), a draft drawn from q, uniform draws u (k,)."""
    k, V = rng.randint(1, 5), rng.randint(3, 12)
    g = torch.Generator().manual_seed(rng.randrange(2**31))
    p = (torch.randn(k + 1, V, generator=g) * rng.choice([1.0, 3.0])).softmax(-1)
    q = (torch.randn(k, V, generator=g) * rng.choice([1.0, 3.0])).softmax(-1)
    if rng.random() < 0.3:  # a draft close to the target: long runs of kept tokens
        q = (0.9 * p[:k] + 0.1 * q)
    draft = torch.multinomial(q, 1, generator=g).squeeze(1)  # (k,)
    return p, q, draft, torch.rand(k, generator=g)


def _probs(*rows: list[float]) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float32)


def _an_int_and_a_distribution(got: Any) -> str | None:
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        return (f"your result is {describe(got, 80)}; return a pair: how many draft tokens are kept, then the "
                "distribution (V,) the next token is drawn from")
    n, dist = got
    if isinstance(n, torch.Tensor) and n.numel() == 1:
        n = n.item()
    if isinstance(n, bool) or not isinstance(n, int):
        return f"your count of kept tokens is {describe(n, 60)}; it must be an int (0 to k)"
    if not isinstance(dist, torch.Tensor):
        return f"your distribution is a {type(dist).__name__}; it must be a torch tensor of shape (V,)"
    return None


def _compare_accept(got: Any, expected: tuple[int, torch.Tensor]) -> tuple[bool, str]:
    n = int(got[0].item() if isinstance(got[0], torch.Tensor) else got[0])
    if n != expected[0]:
        return False, f"you kept {n} draft tokens, the rule keeps {expected[0]}"
    return tensors_equal(got[1].to(expected[1].dtype), expected[1], noun="next-token distribution",
                         rtol=1e-4, atol=1e-6)


def _accept_variant(on_reject: str = "residual", test: str = "ratio", after_all: str = "p_k"):
    """A known-wrong rule: what a rejection draws from, how a token is kept, what follows a full acceptance."""

    def wrong(p, q, draft, u):
        k = draft.size(0)
        for i in range(k):
            x = draft[i]
            kept = {"ratio": u[i] < p[i, x] / q[i, x], "upside_down": u[i] < q[i, x] / p[i, x],
                    "no_draw": p[i, x] >= q[i, x]}[test]
            if not kept:
                residual = (p[i] - q[i]).clamp_min(0)
                return i, {"residual": residual / residual.sum(), "unnormalised": residual, "p": p[i]}[on_reject]
        return k, p[k] if after_all == "p_k" else p[k - 1]

    return wrong


ACCEPTANCE_RULE = Exercise(
    name="acceptance_rule",
    reference=accept_draft,
    make_inputs=_accept_inputs,
    hints=(
        "walk the draft's tokens in order and keep each with probability the smaller of one and the ratio of "
        "the target's probability of that token to the draft's; its uniform draw decides. Stop at the first "
        "token that is not kept. If every token was kept, the target's own distribution after all of them "
        "gives one more token",
        "after a rejection the next token must come from the part of the target's distribution that the "
        "draft did not already cover: the target's probabilities minus the draft's, negatives set to zero, "
        "then divided by their sum so that they are a distribution. The count is how many tokens came "
        "before the rejection",
    ),
    cases=(
        Case("a draft the target likes more than the draft did (p/q = 2), then one it likes less",
             lambda: (_probs([0.5, 0.5, 0.0], [0.2, 0.3, 0.5], [1.0, 0.0, 0.0]),
                      _probs([0.25, 0.75, 0.0], [0.1, 0.1, 0.8]), torch.tensor([0, 2]), torch.tensor([0.9, 0.7]))),
        Case("one draft token the target finds half as likely, a draw of 0.3 (kept)",
             lambda: (_probs([0.2, 0.2, 0.6], [0.1, 0.1, 0.8]), _probs([0.4, 0.3, 0.3]), torch.tensor([0]),
                      torch.tensor([0.3]))),
        Case("three draft tokens, each exactly as likely under both models",
             lambda: (_probs([0.3, 0.7], [0.6, 0.4], [0.5, 0.5], [0.9, 0.1]),
                      _probs([0.3, 0.7], [0.6, 0.4], [0.5, 0.5]), torch.tensor([1, 0, 1]),
                      torch.tensor([0.99, 0.5, 0.0]))),
        Case("the first draft token rejected: the target gives it no probability",
             lambda: (_probs([0.0, 0.6, 0.4], [0.2, 0.2, 0.6]), _probs([0.5, 0.25, 0.25]), torch.tensor([0]),
                      torch.tensor([0.01]))),
    ),
    contract=_an_int_and_a_distribution,
    compare=_compare_accept,
    mistakes=(
        Mistake("after a rejection the next token drawn from the target's p instead of from the leftover, the "
                "positive part of p minus q renormalised", _accept_variant(on_reject="p")),
        Mistake("the leftover, the positive part of p minus q, not divided by its sum",
                _accept_variant(on_reject="unnormalised")),
        Mistake("a token kept whenever p >= q, without the random draw", _accept_variant(test="no_draw")),
        Mistake("the ratio upside down: q / p instead of p / q", _accept_variant(test="upside_down")),
        Mistake("after a full acceptance the extra token drawn from the last draft position's p instead of the "
                "one after all of the draft", _accept_variant(after_all="last_draft")),
    ),
    noun="result",
)


def check_acceptance_rule(fn: Callable[..., Any], quiet: bool = False) -> CheckResult:
    """Check `fn(p, q, draft, u)` -> (kept, dist): speculative decoding's acceptance rule.

    p (k + 1, V) the target's probabilities, q (k, V) the draft's, draft (k,) its tokens, u (k,) uniform draws.
    """
    return ACCEPTANCE_RULE.check(fn, quiet=quiet)


# -- one step of the sampling loop ---------------------------------------------------------
def sample_next(scores, temperature=1.0, top_k=None, top_p=None):
    """One sampling step: scores (B, V) -> the drawn token ids (B,), in `generate`'s order.

    Divide the scores by the temperature; keep the top_k highest (ties kept); keep the nucleus of
    mass top_p (from the least likely token up, remove while the mass so far is at most 1 - top_p;
    the most likely always stays); softmax; one torch.multinomial draw per row.
    """
    scores = scores / temperature                                            # (B, V)
    if top_k is not None:
        kth = scores.topk(min(top_k, scores.size(-1)), dim=-1).values[:, -1:]  # (B, 1) the k-th best
        scores = scores.masked_fill(scores < kth, float("-inf"))
    if top_p is not None:
        sorted_scores, order = scores.sort(dim=-1)                           # least likely first
        mass = sorted_scores.softmax(dim=-1).cumsum(dim=-1)                  # (B, V)
        remove = mass <= 1 - top_p
        remove[:, -1] = False                                                # the most likely stays
        scores = scores.masked_fill(remove.scatter(1, order, remove), float("-inf"))
    probs = scores.softmax(dim=-1)                                           # (B, V)
    return torch.multinomial(probs, 1).squeeze(1)                            # (B,)


def _sample_inputs(rng: random.Random) -> tuple[Any, ...]:
    B, V = rng.randint(1, 4), rng.randint(4, 30)
    g = torch.Generator().manual_seed(rng.randrange(2**31))
    scores = torch.randn(B, V, generator=g) * rng.choice([1.0, 3.0])
    return (scores, rng.choice([0.5, 0.8, 1.0, 1.5]), rng.choice([None, 1, 3, 10]), rng.choice([None, 0.5, 0.9]))


def _repeated(probs: list[float], rows: int = 64) -> torch.Tensor:
    return torch.tensor([probs]).log().repeat(rows, 1)  # (rows, V): many draws from one distribution


def _sample_variant(temperature_on: str = "scores", order: str = "k_then_p", draw: str = "multinomial"):
    """A known-wrong step: temperature multiplied or put on the probabilities, top-p before top-k, argmax."""

    def wrong(scores, temperature=1.0, top_k=None, top_p=None):
        if temperature_on == "times":
            scores = scores * temperature
        elif temperature_on == "scores":
            scores = scores / temperature
        k = (lambda s: s.masked_fill(s < s.topk(min(top_k, s.size(-1)), -1).values[:, -1:], float("-inf"))
             if top_k is not None else s)

        def p(s):
            if top_p is None:
                return s
            srt, idx = s.sort(-1)
            rm = srt.softmax(-1).cumsum(-1) <= 1 - top_p
            rm[:, -1] = False
            return s.masked_fill(rm.scatter(1, idx, rm), float("-inf"))

        scores = p(k(scores)) if order == "k_then_p" else k(p(scores))
        probs = scores.softmax(-1)
        if temperature_on == "probs":
            probs = probs / temperature
        if draw == "argmax":
            return probs.argmax(-1)
        return torch.multinomial(probs, 1).squeeze(1)

    return wrong


SAMPLE_NEXT = Exercise(
    name="sample_next",
    reference=sample_next,
    make_inputs=_sample_inputs,
    hints=(
        "the scores are reshaped first and turned into probabilities last: temperature, then the top-k "
        "cut, then the nucleus cut, then a softmax and one random draw per row with the torch generator",
        "the temperature divides the scores, not the probabilities; the nucleus is taken from the "
        "distribution that the top-k cut left; removed tokens get minus infinity so that the softmax "
        "gives them nothing; draw with the multinomial function, one sample per row",
    ),
    cases=(
        Case("64 rows of probabilities 0.4, 0.3, 0.2, 0.1 at temperature 2",
             lambda: (_repeated([0.4, 0.3, 0.2, 0.1]), 2.0, None, None)),
        Case("64 rows of probabilities 0.4, 0.3, 0.2, 0.1, top-k 2 and top-p 0.5",
             lambda: (_repeated([0.4, 0.3, 0.2, 0.1]), 1.0, 2, 0.5)),
        Case("one row, no cut, temperature 1", lambda: (_repeated([0.1, 0.6, 0.3], rows=1), 1.0, None, None)),
    ),
    mistakes=(
        Mistake("the scores multiplied by the temperature instead of divided", _sample_variant(temperature_on="times")),
        Mistake("the temperature applied to the probabilities instead of the scores",
                _sample_variant(temperature_on="probs")),
        Mistake("the nucleus cut made before the top-k cut", _sample_variant(order="p_then_k")),
        Mistake("the most likely token taken instead of a random draw", _sample_variant(draw="argmax")),
    ),
    noun="token ids",
)


def check_sample_next(fn: Callable[..., torch.Tensor], quiet: bool = False) -> CheckResult:
    """Check `fn(scores, temperature=1.0, top_k=None, top_p=None)`: one sampling step, (B, V) -> (B,) ids."""
    return SAMPLE_NEXT.check(fn, quiet=quiet)


# -- attention with a KV cache (a class piece) ----------------------------------------------
class KVCacheAttention(nn.Module):
    """Causal self-attention with a KV cache (no dropout: it serves generation)."""

    def __init__(self, n_embd, n_head):
        super().__init__()
        assert n_embd % n_head == 0, "each head gets n_embd // n_head channels"
        self.n_head = n_head
        self.n_embd = n_embd
        self.c_attn = nn.Linear(n_embd, 3 * n_embd)     # queries, keys, values in one matmul
        self.c_proj = nn.Linear(n_embd, n_embd)         # mixes the heads

    def _split_heads(self, t):
        B, T, C = t.shape
        return t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)   # (B, nh, T, hs)

    def forward(self, x, past=None):
        """x (B, T, C) the new positions; past None or (k, v), each (B, nh, T_past, hs)
        -> (output (B, T, C), the new cache (k, v), each (B, nh, T_past + T, hs))."""
        B, T, C = x.shape                                                    # T new positions
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)                   # each (B, T, C)
        q, k, v = self._split_heads(q), self._split_heads(k), self._split_heads(v)  # (B, nh, T, hs)
        if past is not None:                                                 # the old positions first
            k = torch.cat([past[0], k], dim=2)                               # (B, nh, T_past + T, hs)
            v = torch.cat([past[1], v], dim=2)
        S = k.size(2)                                                        # T_past + T keys
        scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))             # (B, nh, T, S)
        mask = torch.ones(T, S, dtype=torch.bool, device=x.device).tril(diagonal=S - T)  # query i at S - T + i
        weights = scores.masked_fill(~mask, float("-inf")).softmax(dim=-1)   # (B, nh, T, S)
        y = weights @ v                                                      # (B, nh, T, hs)
        y = y.transpose(1, 2).contiguous().view(B, T, C)                     # (B, T, C): heads side by side
        return self.c_proj(y), (k, v)                                        # the output and the new cache


class _MaskNotOffset(KVCacheAttention):
    def forward(self, x, past=None):
        B, T, C = x.shape
        q, k, v = (self._split_heads(t) for t in self.c_attn(x).split(self.n_embd, dim=2))
        if past is not None:
            k, v = torch.cat([past[0], k], dim=2), torch.cat([past[1], v], dim=2)
        S = k.size(2)
        scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))
        mask = torch.ones(T, S, dtype=torch.bool, device=x.device).tril()  # not shifted by what is cached
        y = scores.masked_fill(~mask, float("-inf")).softmax(dim=-1) @ v
        return self.c_proj(y.transpose(1, 2).contiguous().view(B, T, C)), (k, v)


class _NewFirst(KVCacheAttention):
    def forward(self, x, past=None):
        B, T, C = x.shape
        q, k, v = (self._split_heads(t) for t in self.c_attn(x).split(self.n_embd, dim=2))
        if past is not None:
            k, v = torch.cat([k, past[0]], dim=2), torch.cat([v, past[1]], dim=2)
        S = k.size(2)
        scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))
        mask = torch.ones(T, S, dtype=torch.bool, device=x.device).tril(diagonal=S - T)
        y = scores.masked_fill(~mask, float("-inf")).softmax(dim=-1) @ v
        return self.c_proj(y.transpose(1, 2).contiguous().view(B, T, C)), (k, v)


def _kv_build(n_embd: int, n_head: int) -> Build:
    return Build({"n_embd": n_embd, "n_head": n_head}, training=False)


def _past(B: int, nh: int, S: int, hs: int) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.randn(B, nh, S, hs), torch.randn(B, nh, S, hs)


def _kv_attention_inputs(rng: random.Random) -> tuple[Any, ...]:
    nh, hs = rng.choice([1, 2, 4]), rng.choice([2, 4])
    B, T, S = rng.randint(1, 3), rng.randint(1, 4), rng.choice([0, 0, 1, 3, 6])
    x = torch.randn(B, T, nh * hs)
    if S == 0:
        return _kv_build(nh * hs, nh), x
    return _kv_build(nh * hs, nh), x, _past(B, nh, S, hs)


KV_CACHE_ATTENTION = ModuleExercise(
    name="kv_cache_attention",
    reference=KVCacheAttention,
    make_inputs=_kv_attention_inputs,
    hints=(
        "the attention of notebook 03 with one more input: the keys and values of the earlier positions. "
        "The new keys and values join them, the new queries attend to all of them, and the joined keys "
        "and values are returned for the next step",
        "old positions first along the positions axis. With cached positions, the new query number i sits "
        "at position cached plus i: the causal mask must be shifted by the number of cached positions, "
        "so that a single new token sees every key",
    ),
    cases=(
        Case("no past, four positions, two heads", lambda: (_kv_build(8, 2), torch.randn(1, 4, 8))),
        Case("a past of three positions and one new one", lambda: (_kv_build(8, 2), torch.randn(2, 1, 8),
                                                                   _past(2, 2, 3, 4))),
        Case("a past of two positions and three new ones, one head",
             lambda: (_kv_build(4, 1), torch.randn(1, 3, 4), _past(1, 1, 2, 4))),
    ),
    mistakes=(
        Mistake("the causal mask not shifted by the cached positions", _MaskNotOffset),
        Mistake("the new keys and values put before the cached ones", _NewFirst),
    ),
    noun="output",
)


def check_kv_cache_attention(cls: type, quiet: bool = False) -> CheckResult:
    """Check a class `cls(n_embd, n_head)` whose forward(x, past=None) returns (output, (k, v)) with a KV cache."""
    return KV_CACHE_ATTENTION.check(cls, quiet=quiet)
