"""Every exercise check follows the rules: no answer before trying, never raises, fixed cases
first, hints as a ladder of concepts. New exercises are picked up here automatically."""

from __future__ import annotations

import re

import pytest

from course_lib import checks
from course_lib.checks import _core

CHECKS = sorted(n for n in dir(checks) if n.startswith("check_"))
# code-like content: calls, operators, backticks, indexing, library prefixes
CODE = re.compile(r"`|=|\*\*|\w\(|\.\w+\(|\btorch\.|\bF\.|\bnp\.|\[[^\]]*\]|->|\blambda\b|[{}<>+/]|\bdef\b")
CALLS = re.compile(r"`|\w\(|\.\w+\(|\btorch\.|\bF\.|\bnp\.|\blambda\b")  # case labels may say "k = 2"


def _stub(*args, **kwargs):
    raise NotImplementedError


def _dots(*args, **kwargs): ...


def _crash(*args, **kwargs):
    raise ValueError("something went wrong in my function")


def _exercise(name: str) -> _core.Exercise:
    result = getattr(checks, name)(_stub, quiet=True)
    return _core.EXERCISES[_core._key(result.name)]


def _piece(name: str, fn):
    """`fn` as the learner's piece: itself, or for a class piece the reference class with `fn` as the method
    the learner writes (`forward` for a module; the exercise's `method` for another class)."""
    ex = _exercise(name)
    method = "forward" if isinstance(ex, _core.ModuleExercise) else getattr(ex, "method", None)
    if method:
        return type(fn.__name__.strip("_<>") or "Piece", (ex.reference,), {method: fn})
    return fn


def test_there_is_an_exercise_for_every_notebook_check() -> None:
    assert len(CHECKS) >= 31
    names = {_exercise(n).name for n in CHECKS}
    assert len(names) == len(CHECKS)  # one exercise each


@pytest.mark.parametrize("name", CHECKS)
def test_an_unfinished_exercise_prints_not_done_yet_and_no_code(name: str, capsys) -> None:
    for unfinished in (_piece(name, _stub), _piece(name, _dots)):
        result = getattr(checks, name)(unfinished)
        out = capsys.readouterr().out
        assert result.status == "todo" and result.fn is not None and result.fn is not unfinished
        assert out.startswith("… ") and "not done yet" in out and out.count("\n") == 1
        assert not CODE.search(out), f"{name}: the unfinished message carries code: {out!r}"
        assert "Hint" not in out and "✗" not in out


@pytest.mark.parametrize("name", CHECKS)
def test_the_spec_has_fixed_cases_enough_random_trials_and_a_ladder_of_concepts(name: str) -> None:
    ex = _exercise(name)
    assert len(ex.cases) >= 2 and all(c.about for c in ex.cases)
    assert ex.trials >= 8
    assert len(ex.hints) >= 2
    for rung in ex.hints:
        assert not CODE.search(rung), f"{name}: a hint carries code: {rung!r} ({CODE.search(rung)})"
    for case in ex.cases:
        assert not CALLS.search(case.about), f"{name}: a case label carries code: {case.about!r}"
    for mistake in ex.mistakes:
        assert not CALLS.search(mistake.what), f"{name}: a mistake carries code: {mistake.what!r}"


@pytest.mark.parametrize("name", CHECKS)
def test_every_known_mistake_fails_and_is_recognised_as_itself(name: str, capsys) -> None:
    """A diagnosis is printed only when a variant gives exactly the learner's result: each variant,
    given as the learner's answer, must fail and be named (so none crashes silently)."""
    ex = _exercise(name)
    for mistake in ex.mistakes:
        result = ex.check(mistake.variant)
        out = capsys.readouterr().out
        assert result.status == "fail", f"{name}: the variant for {mistake.what!r} passes"
        assert "Recognised mistake" in out and mistake.what in out, out


@pytest.mark.parametrize("name", CHECKS)
def test_the_reference_and_the_shown_solution_pass(name: str, capsys) -> None:
    ex = _exercise(name)
    assert getattr(checks, name)(ex.reference, quiet=True).passed
    if ex.solution is not None:
        assert getattr(checks, name)(ex.solution, quiet=True).passed
    source = checks.solution(ex.name)
    assert source and ("def " in source or "class " in source) and source in capsys.readouterr().out


@pytest.mark.parametrize("name", CHECKS)
def test_a_crash_or_a_wrong_kind_of_result_is_a_fail_with_the_message(name: str, capsys) -> None:
    crash = _piece(name, _crash)
    result = getattr(checks, name)(crash)
    out = capsys.readouterr().out
    assert result.status == "fail" and result.fn is not crash
    assert "raised ValueError: something went wrong in my function" in out
    assert "fixed case 1" in out and "Hint:" in out and "input:" in out
    assert checks.last_failure(_exercise(name).name).where.startswith("fixed case 1")

    def forgot_return(*args, **kwargs):
        _ = len(args)

    def a_string(*args, **kwargs):
        return "a string"

    def an_object(*args, **kwargs):
        return object()

    for wrong_kind in (forgot_return, a_string, an_object):
        result = getattr(checks, name)(_piece(name, wrong_kind))
        assert result.status == "fail", name
    assert "Stronger hint" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["check_apply_merge", "check_causal_attention", "check_lr_schedule"])
def test_a_hang_fails_within_the_time_limit(name: str, monkeypatch, capsys) -> None:
    import time

    monkeypatch.setattr(_core, "TIME_LIMIT_S", 0.3)

    def forever(*args, **kwargs):
        while True:
            pass

    start = time.monotonic()
    assert getattr(checks, name)(forever).status == "fail"
    assert time.monotonic() - start < 3
    assert "did not return within 0.3 s (an infinite loop?)" in capsys.readouterr().out


# -- concept questions: answered with checks.answer(name, letter) ------------------------------------------
QUESTIONS = sorted(_core.QUESTIONS)


def _markdown_before_answer(name: str) -> str:
    """The markdown cell right before the notebook cell that answers question `name`."""
    import nbformat
    from test_notebooks import NOTEBOOKS

    for path in NOTEBOOKS:
        cells = nbformat.read(path, as_version=4).cells
        for i, cell in enumerate(cells):
            if cell.cell_type == "code" and f'answer("{name}", None)' in cell.source:
                assert i > 0 and cells[i - 1].cell_type == "markdown", f"{path.name}: {name} has no question above"
                return cells[i - 1].source
    raise AssertionError(f"no notebook asks question {name!r}")


def test_notebooks_00_and_11_ask_concept_questions() -> None:
    assert {"untouched_check", "fast_mode", "gradient_scaler", "cache_switch", "meta_permutation",
            "rmsnorm_constant"} <= set(QUESTIONS)
    assert not set(QUESTIONS) & set(_core.EXERCISES), "a question and an exercise share a name"


@pytest.mark.parametrize("key", QUESTIONS)
def test_a_question_is_shown_with_its_options_and_its_hints_are_concepts(key: str) -> None:
    q = _core.QUESTIONS[key]
    assert q.right in q.options and len(q.options) >= 3 and len(q.hints) >= 2
    assert set(q.wrong) == set(q.options) - {q.right}, f"{key}: every wrong option says what it overlooks"
    shown = " ".join(_markdown_before_answer(q.name).split())
    for letter, text in q.options.items():
        assert f"({letter}) {text}" in shown, f"{key}: option ({letter}) differs from the notebook's text"
    for rung in q.hints:
        assert not CODE.search(rung), f"{key}: a hint carries code: {rung!r}"
        assert q.options[q.right] not in rung


@pytest.mark.parametrize("key", QUESTIONS)
def test_a_question_says_nothing_before_it_is_answered(key: str, capsys) -> None:
    q = _core.QUESTIONS[key]
    for unanswered in (None, ...):
        result = q.check(unanswered)
        out = capsys.readouterr().out
        assert result.status == "todo" and out == f"… {q.name}: not answered yet.\n"


@pytest.mark.parametrize("key", QUESTIONS)
def test_a_wrong_answer_says_what_it_overlooks_then_a_stronger_hint_never_the_answer(key: str, capsys) -> None:
    q = _core.QUESTIONS[key]
    _core.reset_attempts()
    for attempt, letter in enumerate(q.wrong, 1):
        result = q.check(letter)
        out = capsys.readouterr().out
        assert result.status == "fail" and out.startswith(f"✗ {q.name}: not ({letter}).")
        assert q.wrong[letter] in out and q.why not in out and q.options[q.right] not in out
        assert ("Stronger hint" in out and "solution" in out) if attempt >= 2 else "Hint:" in out
    result = q.check(f" ({q.right.upper()}) ")
    out = capsys.readouterr().out
    assert result.passed and out.startswith(f"✓ {q.name}: right, ({q.right}).") and q.why in out
    assert checks.solution(q.name) == f"({q.right}) {q.options[q.right]}\n{q.why}"
    _core.reset_attempts()


@pytest.mark.parametrize("odd", ["z", "", 2, ["a"], object()])
def test_an_answer_that_is_no_letter_says_what_to_give_and_nothing_raises(odd, capsys) -> None:
    q = _core.QUESTIONS[QUESTIONS[0]]
    result = q.check(odd)
    out = capsys.readouterr().out
    assert result.status == "fail" and "answer with one of the letters" in out and out.count("\n") == 1


def test_answer_finds_a_question_by_name_and_says_so_when_there_is_none(capsys) -> None:
    assert checks.answer("fast_mode", None) is None
    assert capsys.readouterr().out == "… fast_mode: not answered yet.\n"
    checks.answer("no_such_question", "a")
    assert "no question called 'no_such_question'" in capsys.readouterr().out
