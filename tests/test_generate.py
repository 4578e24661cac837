"""course_lib.generate against transformers' generate and its logits processors.

References: greedy, sampling, beam search and beam sampling are compared id for id
with `GPT2LMHeadModel.generate` on the same weights; each processor with the matching
`transformers` LogitsProcessor. Contrastive search and diverse beam search left
transformers in version 5, so they are compared with small, slow, independent
reference implementations written below (plain Python lists, no cache, one full
forward pass per candidate).
"""

from __future__ import annotations

import math
import warnings

import pytest
import torch
import torch.nn.functional as F
import transformers
from tiny_models import CONFIGS, make_model, one_thread  # noqa: F401 - one_thread: an autouse fixture
from transformers.generation import logits_process as lp

from course_lib.errors import CourseInputError
from course_lib.generate import (
    DecodingSettings,
    DecodingTrace,
    beam_search,
    contrastive_search,
    diverse_beam_search,
    generate,
    logits_stages,
    min_p_filter,
    next_token_step,
    no_repeat_ngram,
    process_logits,
    repetition_penalty,
    temperature,
    top_k_filter,
    top_p_filter,
    typical_filter,
)


@pytest.fixture(scope="module", params=range(len(CONFIGS)), ids=[f"cfg{i}" for i in range(len(CONFIGS))])
def pair(request):
    """(course GPT, transformers GPT2LMHeadModel with the same weights, prompt (2, 6))."""
    i = request.param
    model = make_model(i, *CONFIGS[i])
    hf = model.to_hf().eval()
    prompt = torch.randint(0, CONFIGS[i][0], (2, 6), generator=torch.Generator().manual_seed(i))
    return model, hf, prompt


def hf_generate(hf, prompt, max_new_tokens, **kw):
    kw.setdefault("do_sample", False)
    if kw["do_sample"]:
        kw.setdefault("top_k", 0)  # transformers would otherwise add top_k=50
    eos = kw.get("eos_token_id")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return hf.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=max_new_tokens,
                           pad_token_id=eos if eos is not None else 0, **kw)


# --------------------------------------------------------------------------------------
# processors
# --------------------------------------------------------------------------------------
def random_scores(seed: int, B: int = 4, V: int = 50) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    s = torch.randn(B, V, generator=g) * 3
    s[0, :5] = s[0, 5]  # a tie
    return s


def assert_same(a: torch.Tensor, b: torch.Tensor) -> None:
    assert torch.equal(torch.isinf(a), torch.isinf(b)), "different tokens removed"
    finite = torch.isfinite(b)
    torch.testing.assert_close(a[finite], b[finite], rtol=0, atol=0)


@pytest.mark.parametrize("seed", range(4))
def test_each_processor_equals_transformers(seed: int) -> None:
    scores = random_scores(seed)
    ids = torch.randint(0, 50, (4, 9), generator=torch.Generator().manual_seed(seed))
    ids[1, -3:] = ids[1, 2:5]  # a repeated trigram
    for keep in (1, 3):
        for k in (1, 5, 49):
            assert_same(top_k_filter(scores, k, keep), lp.TopKLogitsWarper(k, min_tokens_to_keep=keep)(ids, scores))
        for p in (0.05, 0.5, 0.9, 1.0):
            assert_same(top_p_filter(scores, p, keep), lp.TopPLogitsWarper(p, min_tokens_to_keep=keep)(ids, scores))
        for p in (0.0, 0.1, 0.5, 1.0):
            assert_same(min_p_filter(scores, p, keep), lp.MinPLogitsWarper(p, min_tokens_to_keep=keep)(ids, scores))
        for p in (0.2, 0.6, 0.95):
            assert_same(typical_filter(scores, p, keep),
                        lp.TypicalLogitsWarper(mass=p, min_tokens_to_keep=keep)(ids, scores))
    for t in (0.3, 1.7):
        assert_same(temperature(scores, t), lp.TemperatureLogitsWarper(t)(ids, scores))
    for pen in (0.7, 1.3, 2.0):
        assert_same(repetition_penalty(ids, scores, pen), lp.RepetitionPenaltyLogitsProcessor(pen)(ids, scores.clone()))
    for n in (1, 2, 3, 4):
        assert_same(no_repeat_ngram(ids, scores, n), lp.NoRepeatNGramLogitsProcessor(n)(ids, scores.clone()))
    # the banned trigram really is banned
    assert torch.isinf(no_repeat_ngram(ids, scores, 3)[1, ids[1, 5]])  # (ids[3], ids[4]) was followed by ids[5]


def test_processor_order_and_stages_follow_transformers() -> None:
    scores, ids = random_scores(9), torch.randint(0, 50, (4, 7), generator=torch.Generator().manual_seed(9))
    s = DecodingSettings(do_sample=True, temperature=0.8, top_k=20, top_p=0.9, min_p=0.05, typical_p=0.95,
                         repetition_penalty=1.2, no_repeat_ngram_size=2)
    names = [n for n, _ in logits_stages(ids, scores, s)]
    assert names == ["raw", "repetition_penalty", "no_repeat_ngram", "temperature", "top_k", "top_p", "min_p",
                     "typical_p"]
    chain = lp.LogitsProcessorList([
        lp.RepetitionPenaltyLogitsProcessor(1.2), lp.NoRepeatNGramLogitsProcessor(2),
        lp.TemperatureLogitsWarper(0.8), lp.TopKLogitsWarper(20), lp.TopPLogitsWarper(0.9),
        lp.MinPLogitsWarper(0.05), lp.TypicalLogitsWarper(0.95)])
    assert_same(process_logits(ids, scores, s), chain(ids, scores.clone()))
    # greedy runs the penalties only
    assert [n for n, _ in logits_stages(ids, scores, DecodingSettings(temperature=0.5, top_k=3))] == ["raw"]


# --------------------------------------------------------------------------------------
# strategies against transformers.generate
# --------------------------------------------------------------------------------------
def test_greedy_matches_transformers(pair) -> None:
    model, hf, prompt = pair
    ours = generate(model, prompt, 20)
    assert torch.equal(ours, hf_generate(hf, prompt, 20))
    assert torch.equal(generate(hf, prompt, 20), ours), "generate() on the transformers model itself"
    for kw in (dict(repetition_penalty=1.5), dict(no_repeat_ngram_size=2),
               dict(no_repeat_ngram_size=1, repetition_penalty=0.8)):
        assert torch.equal(generate(model, prompt, 15, **kw), hf_generate(hf, prompt, 15, **kw)), kw


def test_greedy_stops_at_eos_and_pads_like_transformers(pair) -> None:
    model, hf, prompt = pair
    free = generate(model, prompt, 20)
    eos = int(free[0, 10])  # a token greedy decoding really emits
    ours = generate(model, prompt, 20, eos_token_id=eos)
    assert torch.equal(ours, hf_generate(hf, prompt, 20, eos_token_id=eos))
    assert eos in ours[0, 6:].tolist()


def test_beam_search_matches_transformers(pair) -> None:
    model, hf, prompt = pair
    eos = int(generate(model, prompt, 20)[0, 10])
    reached = 0
    grid = [(nb, lpen, es) for nb in (2, 3, 4, 5) for lpen in (1.0, 1.7) for es in (False, True)]
    for nb, lpen, es in grid + [(3, 0.6, False), (5, 0.6, True)]:
        kw = dict(num_beams=nb, length_penalty=lpen, early_stopping=es, eos_token_id=eos,
                  num_return_sequences=min(nb, 3))
        ours = generate(model, prompt, 12, **kw)
        assert torch.equal(ours, hf_generate(hf, prompt, 12, **kw)), kw
        reached += int((ours[:, 6:] == eos).any())
    assert reached >= 5, "the eos token should end some hypotheses"
    kw = dict(num_beams=3, eos_token_id=eos, early_stopping="never", length_penalty=1.3)
    assert torch.equal(generate(model, prompt, 12, **kw), hf_generate(hf, prompt, 12, **kw))
    for kw in (dict(repetition_penalty=1.5), dict(no_repeat_ngram_size=2)):
        assert torch.equal(generate(model, prompt, 10, num_beams=3, **kw),
                           hf_generate(hf, prompt, 10, num_beams=3, **kw))


def test_beam_search_output_is_n_best(pair) -> None:
    model, _, prompt = pair
    out = beam_search(model, prompt[:1], 8, num_beams=4, num_return_sequences=4)
    assert out.sequences.shape[0] == 4
    assert out.scores.tolist() == sorted(out.scores.tolist(), reverse=True)
    # each score is the sum of the tokens' log-probabilities / length (length_penalty 1)
    for seq, score, n in zip(out.sequences, out.scores, out.lengths):
        with torch.no_grad():
            logp = F.log_softmax(model(seq[None, :-1]).logits[0].float(), -1)
        total = sum(logp[t - 1, seq[t]].item() for t in range(6, 6 + n))
        assert math.isclose(total / n, score.item(), rel_tol=1e-4, abs_tol=1e-4)


@pytest.mark.parametrize("kw", [
    dict(), dict(temperature=0.7), dict(top_k=5), dict(top_p=0.8), dict(min_p=0.2), dict(typical_p=0.7),
    dict(repetition_penalty=1.3, no_repeat_ngram_size=2, temperature=1.5, top_k=10, top_p=0.9),
    dict(num_return_sequences=3, top_p=0.9),
], ids=lambda kw: "-".join(kw) or "plain")
def test_seeded_sampling_matches_transformers_with_the_same_seed(pair, kw) -> None:
    model, hf, prompt = pair
    ours = generate(model, prompt, 15, do_sample=True, seed=123, eos_token_id=3, **kw)
    assert torch.equal(ours, generate(model, prompt, 15, do_sample=True, seed=123, eos_token_id=3, **kw))
    torch.manual_seed(123)
    assert torch.equal(ours, hf_generate(hf, prompt, 15, do_sample=True, eos_token_id=3, **kw))


def test_sampling_seed_changes_the_text(pair) -> None:
    model, _, prompt = pair
    a = generate(model, prompt, 15, do_sample=True, seed=1)
    b = generate(model, prompt, 15, do_sample=True, seed=2)
    assert not torch.equal(a, b)
    assert torch.equal(a, generate(model, prompt, 15, do_sample=True, seed=1))


# transformers 5.24 sorts the beams it samples best-first before choosing which finished
# ones to keep; earlier versions kept the order they were drawn in. The course sorts, so
# beam *sampling* is id-exact from 5.24 on (greedy beam search matches every version).
HF_SORTS_BEAM_SAMPLES = tuple(int(x) for x in transformers.__version__.split(".")[:2]) >= (5, 24)


@pytest.mark.skipif(not HF_SORTS_BEAM_SAMPLES,
                    reason="beam-sampling parity holds for transformers >= 5.24 "
                           f"(installed: {transformers.__version__})")
def test_beam_sampling_matches_transformers(pair) -> None:
    model, hf, prompt = pair
    ours = generate(model, prompt, 10, num_beams=3, do_sample=True, top_k=8, seed=5, eos_token_id=3)
    torch.manual_seed(5)
    assert torch.equal(ours, hf_generate(hf, prompt, 10, num_beams=3, do_sample=True, top_k=8, eos_token_id=3))


def test_temperature_zero_is_greedy(pair) -> None:
    model, _, prompt = pair
    assert torch.equal(generate(model, prompt, 10, do_sample=True, temperature=0), generate(model, prompt, 10))


def test_kv_cache_gives_the_same_ids(pair) -> None:
    model, hf, prompt = pair
    for kw in (dict(), dict(num_beams=3, eos_token_id=3), dict(do_sample=True, seed=1, top_p=0.9)):
        assert torch.equal(generate(model, prompt, 25, **kw), generate(model, prompt, 25, use_cache=False, **kw)), kw
    assert torch.equal(generate(hf, prompt, 12, num_beams=3), generate(model, prompt, 12, num_beams=3))


def test_text_longer_than_the_context_slides_the_window() -> None:
    model = make_model(0, 50, 1, 16, 2, n_positions=16)
    prompt = torch.arange(10)[None]
    out = generate(model, prompt, 20)
    assert out.shape == (1, 30)
    assert torch.equal(out, generate(model, prompt, 20, use_cache=False))
    # the last token is what the model predicts from the last 16 tokens alone
    with torch.no_grad():
        assert out[0, -1] == model(out[:, -17:-1]).logits[0, -1].argmax()
    with pytest.warns(UserWarning, match="keeping the last 16"):
        cropped = generate(model, torch.arange(40)[None] % 50, 3)
    assert torch.equal(cropped[:, :16], torch.arange(24, 40)[None])


# --------------------------------------------------------------------------------------
# contrastive search and diverse beam search: independent slow references
# --------------------------------------------------------------------------------------
def reference_contrastive(model, prompt: list[int], n: int, alpha: float, k: int) -> list[int]:
    """Su et al. 2022, literally: one full forward pass per candidate, no cache."""
    ids = list(prompt)
    for _ in range(n):
        out = model(torch.tensor([ids]), output_hidden_states=True)
        probs = out.logits[0, -1].float().softmax(-1)
        context = out.hidden_states[-1][0]  # (T, C)
        best, best_score = None, -math.inf
        for p, v in zip(*torch.topk(probs, k)):
            h = model(torch.tensor([ids + [int(v)]]), output_hidden_states=True).hidden_states[-1][0, -1]
            penalty = max(F.cosine_similarity(h, c, dim=0).item() for c in context)
            score = (1 - alpha) * p.item() - alpha * penalty
            if score > best_score:
                best, best_score = int(v), score
        ids.append(best)
    return ids


def test_contrastive_search_matches_a_literal_reference(pair) -> None:
    model, hf, prompt = pair
    with torch.no_grad():
        for alpha, k in ((0.6, 4), (0.3, 2)):
            want = [reference_contrastive(model, row, 8, alpha, k) for row in prompt.tolist()]
            assert contrastive_search(model, prompt, 8, penalty_alpha=alpha, top_k=k).tolist() == want
            assert contrastive_search(model, prompt, 8, penalty_alpha=alpha, top_k=k, use_cache=False).tolist() == want
        assert torch.equal(contrastive_search(hf, prompt, 8), contrastive_search(model, prompt, 8))
    assert torch.equal(contrastive_search(model, prompt, 8, penalty_alpha=0.0), generate(model, prompt, 8))


def reference_diverse_beams(model, prompt: list[int], n_new: int, num_beams: int, groups: int,
                            penalty: float, length_penalty: float, early_stopping: bool,
                            eos: int, n_return: int) -> list[list[int]]:
    """Vijayakumar et al. 2016 with classic beam bookkeeping, in plain lists."""
    gs, T0, max_len = num_beams // groups, len(prompt), len(prompt) + n_new
    running = [[(list(prompt), 0.0)] for _ in range(groups)]
    hyps: list[list[tuple[float, list[int]]]] = [[] for _ in range(groups)]
    done = [False] * groups
    for cur in range(T0, max_len):
        taken: dict[int, int] = {}
        for g in range(groups):
            if done[g]:
                continue
            cands = []
            for b, (seq, score) in enumerate(running[g]):
                logp = F.log_softmax(model(torch.tensor([seq])).logits[0, -1].float(), -1)
                for t in range(logp.numel()):
                    cands.append((score + logp[t].item() - penalty * taken.get(t, 0), b, t))
            cands.sort(key=lambda c: -c[0])
            new_running = []
            for rank, (score, b, t) in enumerate(cands[:2 * gs]):
                seq = running[g][b][0] + [t]
                if t == eos or cur + 1 == max_len:
                    if rank < gs:
                        hyps[g].append((score / (cur + 1 - T0) ** length_penalty, seq))
                        hyps[g] = sorted(hyps[g], key=lambda h: -h[0])[:gs]
                elif len(new_running) < gs:
                    new_running.append((seq, score))
            running[g] = new_running
            for seq, _ in new_running:
                taken[seq[-1]] = taken.get(seq[-1], 0) + 1
            if len(hyps[g]) == gs:
                best_running = max((s for _, s in new_running), default=-math.inf)
                if early_stopping or best_running / (cur + 1 - T0) ** length_penalty <= hyps[g][-1][0]:
                    done[g] = True
        if all(done):
            break
    best = sorted((h for group in hyps for h in group), key=lambda h: -h[0])[:n_return]
    width = max(len(seq) for _, seq in best)
    return [seq + [eos] * (width - len(seq)) for _, seq in best]


def test_diverse_beam_search_matches_a_literal_reference(pair) -> None:
    model, _, prompt = pair
    eos = int(generate(model, prompt, 20)[0, 10])
    row = prompt[:1]
    with torch.no_grad():
        for nb, groups, pen, lpen, es in ((4, 2, 1.0, 1.0, False), (6, 3, 0.5, 1.5, True), (4, 4, 2.0, 0.7, False)):
            want = reference_diverse_beams(model, row[0].tolist(), 8, nb, groups, pen, lpen, es, eos, 3)
            got = diverse_beam_search(model, row, 8, num_beams=nb, num_beam_groups=groups, diversity_penalty=pen,
                                      length_penalty=lpen, early_stopping=es, eos_token_id=eos,
                                      num_return_sequences=3)
            assert got.sequences.tolist() == want, (nb, groups, pen)
    # one group and no penalty is plain beam search
    plain = generate(model, prompt, 8, num_beams=4, eos_token_id=eos, num_return_sequences=2)
    one = diverse_beam_search(model, prompt, 8, num_beams=4, num_beam_groups=1, eos_token_id=eos,
                              num_return_sequences=2)
    assert torch.equal(plain, one.sequences)
    # the penalty makes the groups' first tokens differ
    diverse = diverse_beam_search(model, row, 6, num_beams=4, num_beam_groups=4, diversity_penalty=50.0,
                                  num_return_sequences=4)
    assert len(set(diverse.sequences[:, 6].tolist())) == 4


# --------------------------------------------------------------------------------------
# the trace
# --------------------------------------------------------------------------------------
def test_trace_records_every_step(pair) -> None:
    model, _, prompt = pair
    trace = DecodingTrace(top_n=5)
    out = generate(model, prompt, 6, do_sample=True, seed=3, top_k=4, temperature=0.9, trace=trace)
    assert trace.chosen == out[0, 6:].tolist()
    step = trace.steps[0]
    assert list(step.probs) == ["raw", "temperature", "top_k"]
    assert sum(step.kept) <= 4 and step.chosen in step.token_ids
    assert 0 < step.removed_mass < 1 and step.entropy > 0
    assert math.isclose(sum(step.probs["top_k"][i] for i in range(len(step.kept)) if step.kept[i]),
                        sum(step.probs["top_k"]), rel_tol=1e-5)
    beams = DecodingTrace()
    generate(model, prompt[:1], 4, num_beams=3, trace=beams)
    assert beams.strategy == "beam" and all(len(s.beams) == 3 for s in beams.steps)
    assert all(0 <= parent < 3 for s in beams.steps for parent, _, _ in s.beams)
    single = next_token_step(model, prompt[0].tolist(), DecodingSettings(do_sample=True, top_p=0.5))
    assert single.chosen is None and list(single.probs) == ["raw", "top_p"]


# --------------------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("kw, words", [
    (dict(do_sample=True, temperature=-0.5), "temperature"),
    (dict(do_sample=True, top_p=0.0), "top_p"),
    (dict(do_sample=True, top_p=1.5), "top_p"),
    (dict(do_sample=True, top_k=-1), "top_k"),
    (dict(num_beams=0), "num_beams"),
    (dict(min_p=2.0), "min_p"),
    (dict(repetition_penalty=0.0), "repetition_penalty"),
    (dict(num_return_sequences=2), "num_return_sequences"),
    (dict(num_beams=2, num_return_sequences=3), "num_return_sequences"),
    (dict(num_beams=2, early_stopping="sometimes"), "early_stopping"),
])
def test_bad_settings_are_named(kw, words) -> None:
    model = make_model(0, 50, 1, 16, 2)
    with pytest.raises(CourseInputError, match=words):
        generate(model, [1, 2, 3], 5, **kw)


def test_empty_prompt_and_bad_types_are_refused() -> None:
    model = make_model(0, 50, 1, 16, 2)
    for bad in ([], torch.zeros(1, 0, dtype=torch.long), "hello"):
        with pytest.raises(CourseInputError):
            generate(model, bad, 5)
    with pytest.raises(CourseInputError, match="max_new_tokens"):
        generate(model, [1], -1)
    with pytest.raises(CourseInputError, match="num_beam_groups"):
        diverse_beam_search(model, [1, 2], 3, num_beams=4, num_beam_groups=3)
    with pytest.raises(CourseInputError, match="penalty_alpha"):
        contrastive_search(model, [1, 2], 3, penalty_alpha=1.5)
    assert generate(model, [1, 2], 0).tolist() == [[1, 2]]


def test_every_strategy_takes_one_settings_object() -> None:
    """A `DecodingSettings` given to a strategy decodes as the keyword arguments that mean it do."""
    model = make_model(0, 50, 2, 16, 2)
    prompt = [[1, 2, 3], [4, 5, 6]]
    sample = DecodingSettings(do_sample=True, top_k=5, temperature=0.7, repetition_penalty=1.3)
    assert torch.equal(generate(model, prompt, 6, sample, seed=1),
                       generate(model, prompt, 6, do_sample=True, top_k=5, temperature=0.7, repetition_penalty=1.3,
                                seed=1))
    beams = DecodingSettings(num_beams=3, length_penalty=2.0, num_return_sequences=2, no_repeat_ngram_size=2)
    want = beam_search(model, prompt, 6, num_beams=3, length_penalty=2.0, num_return_sequences=2,
                       no_repeat_ngram_size=2).sequences
    assert torch.equal(beam_search(model, prompt, 6, beams).sequences, want)
    assert torch.equal(generate(model, prompt, 6, beams), want)
    groups = DecodingSettings(num_beams=4, num_beam_groups=2, diversity_penalty=1.0)
    assert torch.equal(diverse_beam_search(model, prompt, 6, groups).sequences,
                       diverse_beam_search(model, prompt, 6).sequences)
    contrastive = DecodingSettings(penalty_alpha=0.6, top_k=4)
    assert torch.equal(contrastive_search(model, prompt, 6, contrastive), contrastive_search(model, prompt, 6))
    # keywords beside a settings object replace its fields
    assert torch.equal(generate(model, prompt, 6, sample, do_sample=False),
                       generate(model, prompt, 6, repetition_penalty=1.3))
    with pytest.raises(TypeError, match="top_q"):
        generate(model, prompt, 6, top_q=0.9)
    with pytest.raises(CourseInputError, match="penalty_alpha"):
        generate(model, prompt, 6, contrastive)


# --------------------------------------------------------------------------------------
# the benchmark keeps working (no timing asserted)
# --------------------------------------------------------------------------------------
def test_bench_generate_quick_runs(capsys) -> None:
    import importlib.util
    import re
    from pathlib import Path

    script = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_generate.py"
    spec = importlib.util.spec_from_file_location("bench_generate", script)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert bench.main(["--quick"]) == 0
    out = capsys.readouterr().out
    import transformers

    assert "ids identical" in out and f"transformers {transformers.__version__}," in out and "load average" in out
    for scenario in ("one prompt, KV cache", "one prompt, no cache", "ragged batch of 4, KV cache"):
        assert f"\n{scenario} (" in out, out
    for name in ("course", "course, last head only", "course, every head", "transformers (sdpa)"):
        assert re.search(r"\n" + re.escape(name) + r" +\d+\.\d +\d+\.\d +\d+\.\d\dx", out), out
