"""The notebook 02 exercise checks: pass with the reference, fail with a wrong answer,
fall back to the reference with an unfinished stub."""

from __future__ import annotations

import pytest
import torch

from course_lib import checks
from course_lib.checks import nb02_data as C


def stub(*args, **kwargs):
    raise NotImplementedError


def wrong_count_windows(n_tokens, seq_len, stride):
    return (n_tokens - seq_len) // stride + 1  # a window of seq_len tokens, not seq_len + 1


def wrong_make_windows(ids, seq_len, stride):
    w = ids.unfold(0, seq_len + 1, 1)  # ignores the stride
    return w[:, :-1], w[:, 1:]


def wrong_split_documents(ids, eot_id):
    docs, current = [], []
    for i in ids:
        current.append(i)  # keeps the end-of-text token inside the document
        if i == eot_id:
            docs.append(current)
            current = []
    return docs + ([current] if current else [])


def wrong_cosine_similarity(p):
    return p @ p.T  # forgets to normalise


def learner_count_windows(n_tokens, seq_len, stride):  # correct answers written differently
    return len(range(0, n_tokens - seq_len, stride))


def learner_make_windows(ids, seq_len, stride):
    starts = range(0, len(ids) - seq_len, stride)
    return (torch.stack([ids[s : s + seq_len] for s in starts]),
            torch.stack([ids[s + 1 : s + seq_len + 1] for s in starts]))


def learner_split_documents(ids, eot_id):  # like str.split, without a last empty piece
    docs = [[]]
    for i in ids:
        if i == eot_id:
            docs.append([])
        else:
            docs[-1].append(i)
    return docs[:-1] if not docs[-1] else docs


def learner_cosine_similarity(p):
    return torch.nn.functional.cosine_similarity(p[:, None, :], p[None, :, :], dim=-1)


CASES = [
    (checks.check_count_windows, C.reference_count_windows, learner_count_windows, wrong_count_windows),
    (checks.check_make_windows, C.reference_make_windows, learner_make_windows, wrong_make_windows),
    (checks.check_split_documents, C.reference_split_documents, learner_split_documents, wrong_split_documents),
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


def test_references_agree_with_torch_and_the_course() -> None:
    from course_lib.data import TokenDataset

    ids = torch.randint(0, 50, (97,))
    for seq_len, stride in [(8, 8), (8, 3), (5, 11), (96, 1)]:
        ds = TokenDataset(ids, seq_len, stride=stride)
        assert C.reference_count_windows(len(ids), seq_len, stride) == len(ds)
        x, y = C.reference_make_windows(ids, seq_len, stride)
        assert torch.equal(x, torch.stack([ds[i][0] for i in range(len(ds))]))
        assert torch.equal(y, torch.stack([ds[i][1] for i in range(len(ds))]))
    docs = [[1, 2], [], [3]]
    assert C.reference_split_documents([d for doc in docs for d in [*doc, 0]], 0) == docs
    p = torch.randn(6, 3)
    ref = torch.nn.functional.cosine_similarity(p[:, None], p[None], dim=-1)
    assert torch.allclose(C.reference_cosine_similarity(p), ref, atol=1e-6)
