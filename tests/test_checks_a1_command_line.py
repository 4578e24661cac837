"""The appendix A1 exercise check, count_leaks: exact lines only, repeats counted, never raises."""

from __future__ import annotations

from course_lib import checks
from course_lib.checks import a1_command_line as A1


def test_the_reference_counts_exact_lines_with_repeats() -> None:
    assert A1.reference_count_leaks(["a", "b"], ["b", "b", "c"]) == 2
    assert A1.reference_count_leaks(["The cat", "a b "], ["the cat", "a b", "The cat"]) == 1
    assert checks.check_count_leaks is A1.check_count_leaks


def test_answers_that_strip_or_lower_case_the_lines_are_rejected(capsys) -> None:
    """The task says "exactly": a line that differs in capitals or in spaces at an end is no leak."""

    def stripped(train_lines, val_lines):
        seen = {t.strip() for t in train_lines}
        return sum(v.strip() in seen for v in val_lines)

    def lowered(train_lines, val_lines):
        seen = {t.lower() for t in train_lines}
        return sum(v.lower() in seen for v in val_lines)

    for wrong in (stripped, lowered):
        result = checks.check_count_leaks(wrong)
        out = capsys.readouterr().out
        assert result.status == "fail" and result.fn is not wrong, out
        assert "lines that differ only in capitals or in spaces at their ends" in out
    exact = checks.check_count_leaks(lambda tr, va: sum(v in set(tr) for v in va))
    assert exact.passed, capsys.readouterr().out


def test_a_repeat_blind_answer_fails() -> None:
    assert checks.check_count_leaks(lambda tr, va: len(set(tr) & set(va)), quiet=True).status == "fail"
