"""The notebook 02 exercise checks: pass with the reference, fail with a wrong answer,
fall back to the reference with an unfinished stub."""

from __future__ import annotations

import pytest
import torch

from course_lib import checks
from course_lib.checks import data as C


def stub(*args, **kwargs):
    raise NotImplementedError


def wrong_make_xy(ids, start, seq_len):
    window = ids[start : start + seq_len]
    return window, window  # forgets the shift


def wrong_count_leaks(train_lines, val_lines):
    return len(set(train_lines) & set(val_lines))  # ignores repeated validation lines


def wrong_one_hot_embedding(ids, weight):
    return weight[(ids + 1) % weight.shape[0]]  # off by one row


def wrong_cosine_similarity(p):
    return p @ p.T  # forgets to normalise


def learner_make_xy(ids, start, seq_len):  # a correct answer written differently
    return ids[start : start + seq_len].clone(), ids[start + 1 : start + seq_len + 1].clone()


def learner_one_hot_embedding(ids, weight):
    return torch.nn.Embedding.from_pretrained(weight)(ids)  # the lookup itself


def learner_cosine_similarity(p):
    return torch.nn.functional.cosine_similarity(p[:, None, :], p[None, :, :], dim=-1)


CASES = [
    (checks.check_make_xy, C.reference_make_xy, learner_make_xy, wrong_make_xy),
    (checks.check_count_leaks, C.reference_count_leaks, C.reference_count_leaks, wrong_count_leaks),
    (checks.check_one_hot_embedding, C.reference_one_hot_embedding, learner_one_hot_embedding,
     wrong_one_hot_embedding),
    (checks.check_cosine_similarity, C.reference_cosine_similarity, learner_cosine_similarity,
     wrong_cosine_similarity),
]


@pytest.mark.parametrize(("check", "reference", "learner", "wrong"), CASES, ids=[c[0].__name__ for c in CASES])
def test_check_passes_fails_and_falls_back(check, reference, learner, wrong, capsys) -> None:
    for right in (reference, learner):
        ok = check(right)
        assert ok.status == "pass" and ok.fn is right
        assert "✓" in capsys.readouterr().out

    bad = check(wrong)
    assert bad.status == "fail" and bad.fn is reference
    out = capsys.readouterr().out
    assert "✗" in out and "Hint" in out

    todo = check(stub)
    assert todo.status == "todo" and todo.fn is reference
    assert "not done yet" in capsys.readouterr().out


def test_all_checks_are_exported() -> None:
    for name in C.__all__:
        assert getattr(checks, name) is getattr(C, name)


def test_references_agree_with_torch() -> None:
    ids = torch.randint(0, 11, (3, 5))
    w = torch.randn(11, 4)
    assert torch.allclose(C.reference_one_hot_embedding(ids, w), torch.nn.functional.embedding(ids, w))
    p = torch.randn(6, 3)
    ref = torch.nn.functional.cosine_similarity(p[:, None], p[None], dim=-1)
    assert torch.allclose(C.reference_cosine_similarity(p), ref, atol=1e-6)
    assert C.reference_count_leaks(["a", "b"], ["b", "b", "c"]) == 2
