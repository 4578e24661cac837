"""The notebook-07 checks pass the reference, fail a wrong answer, and fall back on a stub."""

from __future__ import annotations

import torch

from course_lib import checks
from course_lib.checks.nb07_decoding import (
    check_kv_cache_update,
    check_repetition_penalty,
    check_top_k_filter,
    check_top_p_filter,
)
from course_lib.generate import repetition_penalty, top_k_filter, top_p_filter


def stub(*args):
    raise NotImplementedError


def test_check_top_k_filter(capsys) -> None:
    assert check_top_k_filter(lambda s, k: top_k_filter(s, k)).passed
    wrong = check_top_k_filter(lambda s, k: top_k_filter(s, max(k - 1, 1)) if k > 1 else top_k_filter(s, 2))
    assert wrong.status == "fail"
    todo = check_top_k_filter(stub)
    assert todo.status == "todo" and "not done yet" in capsys.readouterr().out
    scores = torch.tensor([[1.0, 3.0, 2.0]])
    assert torch.equal(todo(scores, 1), torch.tensor([[-float("inf"), 3.0, -float("inf")]]))  # the reference


def test_check_top_p_filter() -> None:
    assert check_top_p_filter(lambda s, p: top_p_filter(s, p), quiet=True).passed
    # a classic slip: keeping tokens while cum < p from the top drops the token that crosses p
    def off_by_one(s, p):
        probs, order = s.softmax(-1).sort(-1, descending=True)
        remove = probs.cumsum(-1) > p
        remove[..., 0] = False
        return s.masked_fill(remove.scatter(1, order, remove), -float("inf"))

    assert check_top_p_filter(off_by_one, quiet=True).status == "fail"
    assert check_top_p_filter(stub, quiet=True).status == "todo"


def test_check_repetition_penalty() -> None:
    assert check_repetition_penalty(repetition_penalty, quiet=True).passed
    inverted = lambda ids, s, pen: repetition_penalty(ids, s, 1 / pen)
    assert check_repetition_penalty(inverted, quiet=True).status == "fail"
    assert check_repetition_penalty(lambda ids, s, pen: s.scatter(1, ids, s.gather(1, ids) / pen),
                                    quiet=True).status == "fail"  # forgets negative scores
    assert check_repetition_penalty(stub, quiet=True).status == "todo"
    assert checks.check_top_k_filter is check_top_k_filter  # re-exported


def kv_update(past, k, v, window=None):
    if past is not None:
        k, v = torch.cat([past[0], k], dim=2), torch.cat([past[1], v], dim=2)
    return (k, v) if window is None else (k[:, :, -window:], v[:, :, -window:])


def test_check_kv_cache_update(capsys) -> None:
    assert check_kv_cache_update(kv_update, quiet=True).passed
    assert check_kv_cache_update(lambda past, k, v, window=None: kv_update(past, k, v),  # forgets the window
                                 quiet=True).status == "fail"
    assert check_kv_cache_update(lambda past, k, v, window=None: kv_update(past, k, v, window)[::-1],
                                 quiet=True).status == "fail"  # values first, keys second
    todo = check_kv_cache_update(stub)
    assert todo.status == "todo" and "not done yet" in capsys.readouterr().out
    k, v = torch.ones(1, 1, 2, 4), torch.zeros(1, 1, 1, 4)
    kk, vv = todo((k, k), v, v, 2)  # the reference: three positions, the newest two kept
    assert kk.shape == (1, 1, 2, 4) and torch.equal(kk[0, 0, 1], torch.zeros(4))
    assert checks.check_kv_cache_update is check_kv_cache_update
