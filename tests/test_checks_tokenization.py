"""The notebook 01 exercise checks: pass with the reference, fail with a wrong answer,
fall back to the reference with an unfinished stub."""

from __future__ import annotations

import pytest

from course_lib import checks
from course_lib.tokenizer import apply_merge, count_pairs, encode_with_merges


def stub(*args, **kwargs):
    raise NotImplementedError


def wrong_count_pairs(ids):
    return {pair: 1 for pair in zip(ids, ids[1:])}  # forgets to count repeats


def wrong_apply_merge(ids, pair, new_id):
    out, i = [], 0
    while i < len(ids):  # overlapping occurrences handled wrongly: steps by one after a merge
        if i + 1 < len(ids) and (ids[i], ids[i + 1]) == pair:
            out.append(new_id)
        else:
            out.append(ids[i])
        i += 1
    return out


def wrong_encode_with_merges(ids, merges):
    ids = list(ids)
    for pair, new_id in reversed(list(merges.items())):  # applies merges in the wrong order
        ids = apply_merge(ids, pair, new_id)
    return ids


CASES = [
    (checks.check_count_pairs, count_pairs, wrong_count_pairs),
    (checks.check_apply_merge, apply_merge, wrong_apply_merge),
    (checks.check_encode_with_merges, encode_with_merges, wrong_encode_with_merges),
]


@pytest.mark.parametrize(("check", "reference", "wrong"), CASES, ids=[c[0].__name__ for c in CASES])
def test_check_passes_fails_and_falls_back(check, reference, wrong, capsys: pytest.CaptureFixture[str]) -> None:
    ok = check(reference)
    assert ok.status == "pass" and ok.fn is reference
    assert "✓" in capsys.readouterr().out

    bad = check(wrong)
    assert bad.status == "fail" and bad.fn is not wrong
    out = capsys.readouterr().out
    assert "✗" in out and "Hint" in out

    todo = check(stub)
    assert todo.status == "todo" and todo.fn is not stub
    assert "not done yet" in capsys.readouterr().out
    # the fallback behaves like the reference
    assert todo.fn.__name__ == reference.__name__


def test_checks_are_exported() -> None:
    from course_lib.checks import tokenization

    assert set(tokenization.__all__) == {"check_count_pairs", "check_apply_merge", "check_encode_with_merges"}
    for name in tokenization.__all__:
        assert getattr(checks, name) is getattr(tokenization, name)


def test_a_crashing_answer_is_reported_not_raised(capsys: pytest.CaptureFixture[str]) -> None:
    result = checks.check_count_pairs(lambda ids: {(ids[0], ids[-1]): 1 / 0})
    assert result.status == "fail"
    assert "raised" in capsys.readouterr().out
