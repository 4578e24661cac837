"""The appendix A1 exercise checks: groups of relatives (connected through shared originals) and the
n-gram overlap of validation lines with training; right answers pass whatever their form, the
classic mistakes fail."""

from __future__ import annotations

import pytest

from course_lib import checks
from course_lib.checks import a1_command_line as A1
from course_lib.data import expand_lines


def stub(*args, **kwargs):
    raise NotImplementedError


def groups_by_search(parents):  # right: a breadth-first search over lines, labels are original ids
    by_original = {}
    for i, originals in enumerate(parents):
        for p in originals:
            by_original.setdefault(p, []).append(i)
    label = [None] * len(parents)
    for start in range(len(parents)):
        if label[start] is None:
            todo = [start]
            while todo:
                i = todo.pop()
                if label[i] is None:
                    label[i] = 1000 + start
                    todo += [j for p in parents[i] for j in by_original[p]]
    return label


def overlap_as_counts(train_lines, val_lines, n):  # right: numpy floats, a tuple
    import numpy as np

    seen = {tuple(t.split()[i:i + n]) for t in train_lines for i in range(len(t.split()) - n + 1)}
    out = []
    for line in val_lines:
        w = line.split()
        grams = {tuple(w[i:i + n]) for i in range(len(w) - n + 1)}
        out.append(np.float64(len(grams & seen) / len(grams)) if grams else np.float64(0))
    return tuple(out)


CASES = [
    (checks.check_leak_groups, A1.reference_leak_groups, groups_by_search, A1._by_first_original),
    (checks.check_ngram_overlap, A1.reference_ngram_overlap, overlap_as_counts, A1._joined_training),
]


@pytest.mark.parametrize(("check", "reference", "learner", "wrong"), CASES, ids=[c[0].__name__ for c in CASES])
def test_check_passes_fails_and_falls_back(check, reference, learner, wrong, capsys) -> None:
    for right in (reference, learner):
        ok = check(right)
        assert ok.status == "pass" and ok.fn is right, capsys.readouterr().out
    capsys.readouterr()
    bad = check(wrong)
    assert bad.status == "fail" and bad.fn is reference
    out = capsys.readouterr().out
    assert "✗" in out and "Hint" in out and "Recognised mistake" in out
    todo = check(stub)
    assert todo.status == "todo" and todo.fn is reference


def test_checks_are_exported() -> None:
    assert set(A1.__all__) == {"check_leak_groups", "check_ngram_overlap"}
    for name in A1.__all__:
        assert getattr(checks, name) is getattr(A1, name)


def test_the_groups_message_names_two_lines(capsys) -> None:
    checks.check_leak_groups(A1._by_first_original)
    out = capsys.readouterr().out
    assert "lines 0 and 1 must be in the same group" in out
    checks.check_leak_groups(lambda parents: [0] * len(parents))
    assert "lines 0 and 3 share no original" in capsys.readouterr().out


def test_groups_of_an_expanded_file_follow_the_parents() -> None:
    lines = [f"the {w} sat on the mat, and the dog ran home." for w in ("cat", "cow", "hen", "fox", "owl")]
    expanded, report = expand_lines(lines, 40, seed=1)
    groups = A1.reference_leak_groups(report.parents)
    for i, a in enumerate(report.parents):
        for j, b in enumerate(report.parents):
            if set(a) & set(b):
                assert groups[i] == groups[j]


def test_ngram_overlap_of_a_line_of_training_is_one() -> None:
    train = ["the cat sat on the mat", "a dog"]
    assert A1.reference_ngram_overlap(train, ["the cat sat on the mat", "a dog", "sat on a dog"], 2) == [
        1.0, 1.0, 2 / 3]
