"""Speculative decoding (course_lib.generate.speculative) against plain decoding and transformers.

Greedy: the ids equal plain greedy decoding's and transformers' ``generate(assistant_model=...)`` on
the same draft/target pair, for a draft that agrees with the target, one that mostly disagrees and
one in between. Sampling: the output distribution is the target's, by a chi-square test over the
first tokens' frequencies (thousands of seeded draws, a six-token vocabulary) against the exact
probabilities computed from the target alone. The acceptance rule on its own: its next-token law
(kept draft token or the residual's draw) equals p exactly, computed by enumeration.
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from tiny_models import make_model, one_thread  # noqa: F401 - one_thread: an autouse fixture

from course_lib.errors import CourseInputError
from course_lib.generate import (
    DecodingSettings,
    SpeculativeStats,
    accept_draft,
    generate,
    process_logits,
    speculative_generate,
)
from course_lib.model import GPT


def nudged(model: GPT, seed: int, noise: float) -> GPT:
    """A copy of `model` with noise on its weights: a draft that agrees with it often, not always."""
    copy = GPT(model.config).eval()
    copy.load_state_dict(model.state_dict())
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in copy.parameters():
            p.add_(torch.randn(p.shape, generator=g) * noise)
    return copy


VOCAB = 50
TARGET = make_model(0, VOCAB, 2, 32, 4)
DRAFTS = {
    "same weights": TARGET,
    "nudged": nudged(TARGET, 1, 0.05),
    "unrelated": make_model(2, VOCAB, 1, 16, 2),
}


@pytest.mark.parametrize("draft_name", list(DRAFTS))
@pytest.mark.parametrize("k", [1, 3, 6])
def test_greedy_equals_plain_greedy(draft_name: str, k: int) -> None:
    prompt = torch.randint(0, VOCAB, (1, 5), generator=torch.Generator().manual_seed(k))
    plain = generate(TARGET, prompt, 30)
    stats = SpeculativeStats()
    ids = speculative_generate(TARGET, prompt, 30, assistant_model=DRAFTS[draft_name], num_assistant_tokens=k,
                               stats=stats)
    assert torch.equal(ids, plain)
    assert stats.written == 30
    if draft_name != "unrelated":
        assert stats.rounds < 30  # fewer target calls than tokens
    assert stats.accepted <= stats.proposed
    if draft_name == "same weights":
        assert stats.acceptance_rate == 1.0
    # the same through generate's transformers-named keyword
    assert torch.equal(generate(TARGET, prompt, 30, assistant_model=DRAFTS[draft_name],
                                num_assistant_tokens=k), plain)


@pytest.mark.parametrize("draft_name", ["nudged", "unrelated"])
def test_greedy_equals_transformers_assisted_generation(draft_name: str) -> None:
    hf_target, hf_draft = TARGET.to_hf().eval(), DRAFTS[draft_name].to_hf().eval()
    prompt = torch.randint(0, VOCAB, (1, 7), generator=torch.Generator().manual_seed(3))
    ours = speculative_generate(TARGET, prompt, 25, assistant_model=DRAFTS[draft_name])
    with torch.no_grad():
        theirs = hf_target.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=25,
                                    min_new_tokens=25, do_sample=False, assistant_model=hf_draft,
                                    pad_token_id=0)
    assert torch.equal(ours, theirs)


def test_greedy_with_transformers_models_and_their_cache() -> None:
    """The loop works on transformers models too (their Cache object is cropped, not sliced)."""
    hf_target, hf_draft = TARGET.to_hf().eval(), DRAFTS["nudged"].to_hf().eval()
    prompt = torch.tensor([[4, 8, 15, 16, 23, 42]])
    assert torch.equal(speculative_generate(hf_target, prompt, 20, assistant_model=hf_draft, num_assistant_tokens=4),
                       generate(TARGET, prompt, 20))


def test_eos_and_stats() -> None:
    prompt = torch.tensor([[1, 2, 3]])
    plain = generate(TARGET, prompt, 40)
    eos = int(plain[0, 10])  # a token greedy decoding writes: the text ends at its first appearance
    stats = SpeculativeStats()
    ids = speculative_generate(TARGET, prompt, 40, assistant_model=DRAFTS["nudged"], eos_token_id=eos, stats=stats)
    assert torch.equal(ids, generate(TARGET, prompt, 40, eos_token_id=eos))
    assert int(ids[0, -1]) == eos and stats.written == ids.size(1) - 3
    assert 0 < stats.acceptance_rate <= 1 and stats.tokens_per_round > 1


def test_other_vocabulary_is_one_clear_line() -> None:
    other = make_model(5, VOCAB + 3, 1, 16, 2)
    with pytest.raises(CourseInputError) as err:
        speculative_generate(TARGET, [1, 2, 3], 5, assistant_model=other)
    message = str(err.value)
    assert "\n" not in message and str(VOCAB) in message and str(VOCAB + 3) in message and "vocabulary" in message


@pytest.mark.parametrize("kwargs, words", [
    ({"num_beams": 2}, "no beams"),
    ({"num_assistant_tokens": 0}, "num_assistant_tokens"),
])
def test_bad_settings(kwargs: dict, words: str) -> None:
    with pytest.raises(CourseInputError, match=words):
        speculative_generate(TARGET, [1, 2, 3], 5, assistant_model=DRAFTS["nudged"], **kwargs)


def test_batch_and_context_are_refused() -> None:
    with pytest.raises(CourseInputError, match="one prompt at a time"):
        speculative_generate(TARGET, torch.zeros(2, 3, dtype=torch.long), 5, assistant_model=TARGET)
    with pytest.raises(CourseInputError, match="context of 64"):
        speculative_generate(TARGET, [1] * 60, 10, assistant_model=DRAFTS["nudged"])


# ---------------------------------------------------------------- the acceptance rule, exactly


def _law_of_next_token(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """With one draft token: P(first written token = v) under the rule, by enumeration over the draft's
    token x ~ q (the uniform draw integrated out: kept with probability min(1, p(x)/q(x)))."""
    V = p.size(-1)
    law = torch.zeros(V, dtype=torch.float64)
    for x in range(V):
        if q[0, x] == 0:
            continue
        keep = min(1.0, float(p[0, x] / q[0, x]))
        law[x] += q[0, x] * keep
        # rejected: the rule's residual distribution; found by asking accept_draft with u just above the ratio
        u = torch.tensor([min(keep + 1e-9, 1 - 1e-12)], dtype=torch.float64)
        n, dist = accept_draft(p, q, torch.tensor([x]), u)
        if keep < 1:
            assert n == 0
            law += q[0, x] * (1 - keep) * dist.double()
    return law


@pytest.mark.parametrize("seed", range(5))
def test_acceptance_rule_gives_the_target_distribution_exactly(seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    V = 7
    p = torch.randn(2, V, generator=g, dtype=torch.float64).mul(2).softmax(-1)
    q = torch.randn(1, V, generator=g, dtype=torch.float64).mul(2).softmax(-1)
    if seed == 4:  # the target rules tokens out (top-k): p = 0 where q > 0
        p[0, :3] = 0
        p[0] /= p[0].sum()
    assert torch.allclose(_law_of_next_token(p, q), p[0], atol=1e-12)


def test_acceptance_rule_cases() -> None:
    p = torch.tensor([[0.5, 0.5, 0.0], [0.2, 0.3, 0.5], [1.0, 0.0, 0.0]])
    q = torch.tensor([[0.25, 0.75, 0.0], [0.1, 0.1, 0.8]])
    draft = torch.tensor([0, 2])
    n, dist = accept_draft(p, q, draft, torch.tensor([0.99, 0.0]))  # p/q = 2: always kept; then p/q = 5/8 > 0
    assert n == 2 and torch.equal(dist, p[2])  # both kept: the next token comes from the target after them
    n, dist = accept_draft(p, q, draft, torch.tensor([0.5, 0.7]))  # 0.7 >= 5/8: the second is rejected
    assert n == 1 and torch.allclose(dist, torch.tensor([0.1, 0.2, 0.0]) / 0.3)


# ---------------------------------------------------------------- sampling: a chi-square test end to end


def _p_value(observed: torch.Tensor, expected: torch.Tensor) -> float:
    """Pearson's chi-square test; cells expected below 5 are pooled into one."""
    small = expected < 5
    obs = torch.cat([observed[~small], observed[small].sum().reshape(1)])
    exp = torch.cat([expected[~small], expected[small].sum().reshape(1)])
    keep = exp > 0
    obs, exp = obs[keep], exp[keep]
    stat = float(((obs - exp) ** 2 / exp).sum())
    df = obs.numel() - 1
    return float(torch.special.gammaincc(torch.tensor(df / 2, dtype=torch.float64),
                                         torch.tensor(stat / 2, dtype=torch.float64)))


def _target_law(model: GPT, prompt: list[int], n: int, settings: DecodingSettings) -> torch.Tensor:
    """The exact probability of every n-token continuation under the target (processed as sampling does)."""
    V = model.config.vocab_size
    law = torch.zeros([V] * n, dtype=torch.float64)
    with torch.no_grad():
        for tail in itertools.product(range(V), repeat=n - 1):
            ids = torch.tensor([prompt + list(tail)])
            logits = model(ids).logits[0].float()  # (T, V)
            prob = 1.0
            for j, v in enumerate(tail):
                t = len(prompt) + j
                prob *= float(process_logits(ids[:, :t], logits[t - 1:t], settings).softmax(-1)[0, v])
            last = process_logits(ids, logits[-1:], settings).softmax(-1)[0].double()
            law[tail] = prob * last
    return law


@pytest.mark.parametrize("options", [{}, {"top_k": 3, "temperature": 0.7}], ids=["plain", "top-k-temperature"])
def test_sampling_follows_the_target_distribution(options: dict) -> None:
    """2,000 seeded runs of 3 new tokens (k = 2: kept drafts, residual draws and the bonus token all occur);
    the joint frequencies of all three tokens against the target's exact law."""
    V = 4
    target, draft = make_model(10, V, 1, 8, 2, scale=0.8), make_model(11, V, 1, 8, 2, scale=0.8)
    prompt = [0, 1]
    settings = DecodingSettings(do_sample=True, **options)
    law = _target_law(target, prompt, 3, settings).flatten()
    counts = torch.zeros(V ** 3, dtype=torch.float64)
    stats = SpeculativeStats()
    draws = 2000
    for seed in range(draws):
        ids = speculative_generate(target, prompt, 3, settings, assistant_model=draft, num_assistant_tokens=2,
                                   seed=seed, stats=stats)
        a, b, c = ids[0, 2:].tolist()
        counts[(a * V + b) * V + c] += 1
    assert 0.2 < stats.acceptance_rate < 0.95  # the draft differs from the target: both branches ran
    assert _p_value(counts, law * draws) > 1e-3
    # the test can fail: the draft's own distribution is rejected by it
    draft_law = _target_law(draft, prompt, 3, settings).flatten()
    assert _p_value(counts, draft_law * draws) < 1e-6
    assert math.isclose(float(law.sum()), 1.0, rel_tol=1e-5)


def test_sampling_is_reproducible_with_a_seed() -> None:
    run = [speculative_generate(TARGET, [1, 2], 15, assistant_model=DRAFTS["nudged"], do_sample=True, seed=7)
           for _ in range(2)]
    assert torch.equal(run[0], run[1])

