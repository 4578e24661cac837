"""course_lib.checks: the exercise mechanism itself (staged help, contracts, limits, messages)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch

from course_lib import checks
from course_lib.checks import Case, Exercise, _core, check_function, check_value, values_equal


def reference(xs: list[float]) -> float:
    return sum(x * x for x in xs) / len(xs)


def make(rng):
    return ([rng.uniform(-1, 1) for _ in range(rng.randint(1, 5))],)


EX = Exercise("mechanism_demo", reference, make, hints=("first nudge", "second, stronger hint"),
              cases=(Case("the square of the mean is not the mean of the squares", ([3.0, 4.0],)),))


def test_a_correct_function_passes_and_is_kept(capsys: pytest.CaptureFixture[str]) -> None:
    def mine(xs):
        return sum(x**2 for x in xs) / len(xs)

    result = check_function(mine, reference, make, name="ms", hint="h", trials=9)
    assert result.passed and result.status == "pass" and result.fn is mine
    assert capsys.readouterr().out.startswith("✓ ms: passed 9 random tests")
    assert result([3, 4]) == 12.5
    assert EX.check(mine).passed
    assert "passed 1 fixed cases and 8 random tests" in capsys.readouterr().out


def test_a_wrong_function_fails_with_input_and_hint_and_falls_back(capsys: pytest.CaptureFixture[str]) -> None:
    def wrong(xs):
        return sum(xs) / len(xs)

    result = check_function(wrong, reference, make, name="ms", hint="square first")
    out = capsys.readouterr().out
    assert result.status == "fail" and not result
    assert out.startswith("✗ ms: wrong on random test 1") and "Hint: square first" in out and "input:" in out
    assert result([3, 4]) == 12.5  # the reference


def test_fixed_cases_run_first_and_name_the_mistake(capsys: pytest.CaptureFixture[str]) -> None:
    result = EX.check(lambda xs: (sum(xs) / len(xs)) ** 2)
    out = capsys.readouterr().out
    assert result.status == "fail"
    assert "fixed case 1 of 1 (the square of the mean is not the mean of the squares)" in out
    assert "got 12.25, expected 12.5" in out and "xs = [3.0, 4.0]" in out


def test_the_hint_ladder_climbs_with_each_failure_and_the_answer_only_on_request(capsys) -> None:
    def wrong(xs):
        return 0.0

    EX.check(wrong)
    first = capsys.readouterr().out
    assert "Hint: first nudge" in first and "second" not in first and "solution(" not in first
    EX.check(wrong)
    second = capsys.readouterr().out
    assert "Stronger hint: second, stronger hint" in second
    assert 'course_lib.checks.solution("mechanism_demo")' in second
    EX.check(wrong)
    assert "second, stronger hint" in capsys.readouterr().out  # the top rung stays
    source = checks.solution("mechanism demo")  # spaces, dashes and case do not matter
    assert "def reference(xs" in source and "def reference(xs" in capsys.readouterr().out


def test_solution_and_last_failure_of_an_unknown_name_say_what_exists(capsys) -> None:
    assert checks.solution("no such thing") is None
    assert checks.last_failure("no such thing") is None
    out = capsys.readouterr().out
    assert "no exercise called 'no such thing'" in out and "causal_mask" in out


def test_last_failure_gives_back_the_input(capsys) -> None:
    assert checks.last_failure("mechanism_demo") is None
    EX.check(lambda xs: xs[0] ** 2)
    failure = checks.last_failure("mechanism_demo")
    assert failure.args == ([3.0, 4.0],) and failure.expected == 12.5 and failure.got == 9.0
    assert failure.reproduce(reference) == 12.5
    assert "expected: 12.5" in repr(failure) and "xs = [3.0, 4.0]" in repr(failure)


def test_an_unfinished_exercise_is_todo_and_shows_nothing_else(capsys: pytest.CaptureFixture[str]) -> None:
    def stub(xs):
        raise NotImplementedError

    def dots(xs): ...

    def returns_ellipsis(xs):
        return ...

    for unfinished in (stub, dots, returns_ellipsis):
        result = EX.check(unfinished)
        assert result.status == "todo" and result.fn is reference
        assert capsys.readouterr().out == "… mechanism_demo: not done yet; the notebook goes on with the reference.\n"
    assert _core._FAILURES == {}  # not a failed attempt


def test_a_crashing_function_never_raises(capsys: pytest.CaptureFixture[str]) -> None:
    def crash(xs):
        return xs[10]

    result = check_function(crash, reference, make, name="ms", hint="h")
    assert result.status == "fail" and "raised IndexError" in capsys.readouterr().out


def test_a_result_that_cannot_be_compared_is_a_fail_not_an_exception(capsys) -> None:
    class Weird:
        def __eq__(self, other):
            raise RuntimeError("boolean value of Tensor is ambiguous")

    result = check_function(lambda xs: Weird(), lambda xs: object(), make, name="weird", hint="h")
    assert result.status == "fail" and "RuntimeError" in capsys.readouterr().out


def test_a_broken_checker_is_reported_not_raised(capsys) -> None:
    def bad_inputs(rng):
        raise ValueError("bug in the course")

    result = check_function(reference, reference, bad_inputs, name="broken", hint="h")
    assert result.status == "fail" and "the checker itself failed" in capsys.readouterr().out


def test_an_infinite_loop_fails_within_the_time_limit(monkeypatch, capsys) -> None:
    monkeypatch.setattr(_core, "TIME_LIMIT_S", 0.5)
    grown: list[int] = []

    def forever(xs):
        while True:
            grown.append(1)

    start = time.monotonic()
    result = EX.check(forever)
    elapsed = time.monotonic() - start
    assert result.status == "fail" and elapsed < 3
    assert "did not return within 0.5 s (an infinite loop?)" in capsys.readouterr().out
    time.sleep(0.1)
    assert not any(t.name == "course-check" and t.is_alive() for t in threading.enumerate())  # stopped
    size = len(grown)
    time.sleep(0.1)
    assert len(grown) == size


def test_a_learner_that_mutates_its_input_is_caught(capsys) -> None:
    def mutating(xs):
        value = reference(xs)
        xs.clear()
        return value

    result = EX.check(mutating)
    assert result.status == "fail"
    assert "changed its input xs in place" in capsys.readouterr().out


def test_returning_none_says_to_return_the_result(capsys) -> None:
    def no_return(xs):
        reference(xs)

    assert EX.check(no_return).status == "fail"
    assert "returned None; it must return its result" in capsys.readouterr().out


def test_numbers_may_come_as_0d_tensors_or_numpy_scalars() -> None:
    assert EX.check(lambda xs: torch.tensor(reference(xs)), quiet=True).passed
    assert EX.check(lambda xs: np.float32(reference(xs)), quiet=True).passed
    assert values_equal(torch.tensor(3e-4), 3e-4)[0]
    assert values_equal(np.int64(7), 7)[0]
    assert not values_equal(7.0001, 7)[0]  # counts are exact
    ok, why = values_equal("7", 7.0)
    assert not ok and "must be a number" in why


def test_values_equal_handles_tensors_sequences_and_mappings() -> None:
    assert values_equal(torch.ones(2), torch.ones(2))[0]
    ok, why = values_equal(torch.ones(2), torch.ones(3))
    assert not ok and "shape (2,), expected (3,)" in why
    ok, why = values_equal({"a": [1, 2]}, {"a": [1, 3]})
    assert not ok and "key 'a'" in why and "index 1" in why
    assert values_equal(0.1 + 0.2, 0.3)[0]
    assert not values_equal(torch.tensor([1, 2]), torch.tensor([1, 3]))[0]


def test_tensor_messages_name_dtype_first_difference_and_nan() -> None:
    ok, why = values_equal(torch.ones(2, 2), torch.ones(2, 2, dtype=torch.bool), noun="mask")
    assert not ok and why == "your mask is float32; the mask must be bool"
    ok, why = values_equal(torch.tensor([[1.0, 2.0], [3.0, 5.0]]), torch.tensor([[1.0, 2.0], [3.0, 4.0]]))
    assert not ok and "1 of 4 values differ; at [1, 1]: got 5.0, expected 4.0" in why
    inf = float("-inf")
    assert values_equal(torch.tensor([inf, 1.0]), torch.tensor([inf, 1.0]))[0]  # -inf - -inf is not "nan"
    ok, why = values_equal(torch.tensor([inf, 1.0]), torch.tensor([inf, 2.0]))
    assert not ok and "nan" not in why and "got 1.0, expected 2.0" in why
    ok, why = values_equal(torch.tensor([float("nan"), 1.0]), torch.tensor([0.0, 1.0]), noun="output")
    assert not ok and why.startswith("your output contains NaN")


def test_inputs_are_shown_in_full_one_argument_a_line() -> None:
    text = _core.describe_inputs(lambda scores, k, p: None, (torch.randn(4, 50), 7, 0.9), {})
    assert "scores = tensor of shape (4, 50), float32" in text and "k = 7" in text and "p = 0.9" in text
    assert "[[1, 2]]" in _core.describe(torch.tensor([[1, 2]]))


def test_checks_restore_the_global_torch_rng() -> None:
    torch.manual_seed(0)
    expected = torch.rand(2)
    torch.manual_seed(0)
    check_function(lambda n: torch.randn(n), lambda n: torch.randn(n), lambda rng: (3,), name="r", hint="h", quiet=True)
    assert torch.equal(torch.rand(2), expected)


def test_check_value(capsys: pytest.CaptureFixture[str]) -> None:
    assert check_value("v", 4, 4, hint="h").passed
    assert check_value("v", 5, 4, hint="h").status == "fail"
    assert check_value("v", ..., 4, hint="h").status == "todo"
    assert check_value("v", torch.tensor(4), 4, hint="h").passed
    out = capsys.readouterr().out
    assert "✓ v" in out and "✗ v" in out and "… v: not done yet." in out


def test_the_welcome_exercise_check() -> None:
    assert checks.check_mean_of_squares(reference, quiet=True).passed
    assert checks.check_mean_of_squares(lambda xs: sum(x * x for x in xs) / max(len(xs), 1), quiet=True).passed
    assert checks.check_mean_of_squares(lambda xs: 0.0, quiet=True).status == "fail"
    assert checks.check_mean_of_squares(lambda xs: (sum(xs) / len(xs)) ** 2, quiet=True).status == "fail"
    assert checks.check_mean_of_squares(lambda xs: sum(xs) / len(xs), quiet=True).status == "fail"
