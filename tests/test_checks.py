"""course_lib.checks: the exercise mechanism itself."""

from __future__ import annotations

import pytest
import torch

from course_lib import checks
from course_lib.checks import check_function, check_value, values_equal


def reference(xs: list[float]) -> float:
    return sum(x * x for x in xs) / len(xs)


def make(rng):
    return ([rng.uniform(-1, 1) for _ in range(rng.randint(1, 5))],)


def test_a_correct_function_passes_and_is_kept(capsys: pytest.CaptureFixture[str]) -> None:
    def mine(xs):
        return sum(x**2 for x in xs) / len(xs)

    result = check_function(mine, reference, make, name="ms", hint="h", trials=7)
    assert result.passed and result.status == "pass" and result.fn is mine
    assert capsys.readouterr().out.startswith("✓ ms: passed 7 random tests")
    assert result([3, 4]) == 12.5


def test_a_wrong_function_fails_with_input_and_hint_and_falls_back(capsys: pytest.CaptureFixture[str]) -> None:
    def wrong(xs):
        return sum(xs) / len(xs)

    result = check_function(wrong, reference, make, name="ms", hint="square first")
    out = capsys.readouterr().out
    assert result.status == "fail" and not result
    assert out.startswith("✗ ms: wrong on random test 1") and "Hint: square first" in out and "input:" in out
    assert result([3, 4]) == 12.5  # the reference


def test_an_unfinished_exercise_is_todo_and_falls_back(capsys: pytest.CaptureFixture[str]) -> None:
    def stub(xs):
        raise NotImplementedError

    result = check_function(stub, reference, make, name="ms", hint="h")
    assert result.status == "todo" and result.fn is reference
    assert capsys.readouterr().out.startswith("… ms: not done yet")


def test_a_crashing_function_never_raises(capsys: pytest.CaptureFixture[str]) -> None:
    def crash(xs):
        return xs[10]

    result = check_function(crash, reference, make, name="ms", hint="h")
    assert result.status == "fail" and "raised IndexError" in capsys.readouterr().out


def test_a_learner_that_mutates_its_input_cannot_spoil_the_reference() -> None:
    def mutating(xs):
        value = reference(xs)
        xs.clear()
        return value

    assert check_function(mutating, reference, make, name="ms", hint="h", quiet=True).passed


def test_checks_restore_the_global_torch_rng() -> None:
    torch.manual_seed(0)
    expected = torch.rand(2)
    torch.manual_seed(0)
    check_function(lambda n: torch.randn(n), lambda n: torch.randn(n), lambda rng: (3,), name="r", hint="h", quiet=True)
    assert torch.equal(torch.rand(2), expected)


def test_values_equal_handles_tensors_sequences_and_mappings() -> None:
    assert values_equal(torch.ones(2), torch.ones(2))[0]
    ok, why = values_equal(torch.ones(2), torch.ones(3))
    assert not ok and "shape" in why
    ok, why = values_equal({"a": [1, 2]}, {"a": [1, 3]})
    assert not ok and "key 'a'" in why and "index 1" in why
    assert values_equal(0.1 + 0.2, 0.3)[0]
    assert not values_equal(torch.tensor([1, 2]), torch.tensor([1, 3]))[0]


def test_check_value(capsys: pytest.CaptureFixture[str]) -> None:
    assert check_value("v", 4, 4, hint="h").passed
    assert check_value("v", 5, 4, hint="h").status == "fail"
    assert check_value("v", ..., 4, hint="h").status == "todo"
    out = capsys.readouterr().out
    assert "✓ v" in out and "✗ v" in out and "… v" in out


def test_the_welcome_exercise_check() -> None:
    assert checks.check_mean_of_squares(reference, quiet=True).passed
    assert checks.check_mean_of_squares(lambda xs: 0.0, quiet=True).status == "fail"
