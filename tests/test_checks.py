"""course_lib.checks: the exercise mechanism itself (staged help, contracts, limits, messages)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch

from course_lib import checks
from course_lib.checks import Build, Case, Exercise, Mistake, ModuleExercise, _core, values_equal


def reference(xs: list[float]) -> float:
    return sum(x * x for x in xs) / len(xs)


def make(rng):
    return ([rng.uniform(-1, 1) for _ in range(rng.randint(1, 5))],)


EX = Exercise("mechanism_demo", reference, make, hints=("first nudge", "second, stronger hint"),
              cases=(Case("two different numbers", ([3.0, 4.0],)),),
              mistakes=(Mistake("squaring the mean instead of averaging the squares",
                                lambda xs: (sum(xs) / len(xs)) ** 2),))


def check_once(learner, ref, make_inputs, *, name, hint, trials=8, quiet=False):
    """An exercise built on the spot (what the removed check_function did)."""
    return Exercise(name, ref, make_inputs, (hint,), trials=trials).check(learner, quiet=quiet)


def test_a_correct_function_passes_and_is_kept(capsys: pytest.CaptureFixture[str]) -> None:
    def mine(xs):
        return sum(x**2 for x in xs) / len(xs)

    result = check_once(mine, reference, make, name="ms", hint="h", trials=9)
    assert result.passed and result.status == "pass" and result.fn is mine
    assert capsys.readouterr().out.startswith("✓ ms: passed 9 random tests")
    assert result([3, 4]) == 12.5
    assert EX.check(mine).passed
    assert "passed 1 fixed cases and 8 random tests" in capsys.readouterr().out


def test_a_wrong_function_fails_with_input_and_hint_and_falls_back(capsys: pytest.CaptureFixture[str]) -> None:
    def wrong(xs):
        return sum(xs) / len(xs)

    result = check_once(wrong, reference, make, name="ms", hint="square first")
    out = capsys.readouterr().out
    assert result.status == "fail" and not result
    assert out.startswith("✗ ms: wrong on random test 1") and "Hint: square first" in out and "input:" in out
    assert result([3, 4]) == 12.5  # the reference


def test_fixed_cases_run_first_and_are_shown_as_their_input(capsys: pytest.CaptureFixture[str]) -> None:
    result = EX.check(lambda xs: (sum(xs) / len(xs)) ** 2)
    out = capsys.readouterr().out
    assert result.status == "fail"
    assert out.startswith("✗ mechanism_demo: wrong on fixed case 1 of 1: two different numbers.\n")
    assert "got 12.25, expected 12.5" in out and "xs = [3.0, 4.0]" in out
    assert "Recognised mistake: squaring the mean instead of averaging the squares." in out


def test_a_mistake_is_named_only_when_the_learners_result_is_exactly_its_variants(capsys) -> None:
    """Another wrong answer on the same case gets the input and the hint, no diagnosis."""
    result = EX.check(lambda xs: sum(xs) / len(xs))  # forgot to square: not the known mistake
    out = capsys.readouterr().out
    assert result.status == "fail" and "fixed case 1 of 1: two different numbers" in out
    assert "Recognised" not in out and "squaring the mean" not in out


def test_a_mistake_variant_that_crashes_is_no_diagnosis(capsys) -> None:
    ex = Exercise("crashing_variant_demo", reference, make, ("h", "hh"), cases=(Case("two numbers", ([3.0, 4.0],)),),
                  mistakes=(Mistake("never said", lambda xs: 1 / 0),))
    assert ex.check(lambda xs: 0.0).status == "fail"
    assert "never said" not in capsys.readouterr().out


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
    assert "no exercise called 'no such thing'" in out and "causal_attention" in out


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

    result = check_once(crash, reference, make, name="ms", hint="h")
    assert result.status == "fail" and "raised IndexError" in capsys.readouterr().out


def test_a_result_that_cannot_be_compared_is_a_fail_not_an_exception(capsys) -> None:
    class Weird:
        def __eq__(self, other):
            raise RuntimeError("boolean value of Tensor is ambiguous")

    result = check_once(lambda xs: Weird(), lambda xs: object(), make, name="weird", hint="h")
    assert result.status == "fail" and "RuntimeError" in capsys.readouterr().out


def test_a_broken_checker_is_reported_not_raised(capsys) -> None:
    def bad_inputs(rng):
        raise ValueError("bug in the course")

    result = check_once(reference, reference, bad_inputs, name="broken", hint="h")
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
    text = _core.describe_inputs(["scores", "k", "p"], (torch.randn(4, 50), 7, 0.9), {})
    assert "scores = tensor of shape (4, 50), float32" in text and "k = 7" in text and "p = 0.9" in text
    assert "[[1, 2]]" in _core.describe(torch.tensor([[1, 2]]))


def test_checks_restore_the_global_torch_rng_and_seed_both_calls_alike() -> None:
    torch.manual_seed(0)
    expected = torch.rand(2)
    torch.manual_seed(0)
    # random inside the piece (dropout, say): the reference and the learner draw the same numbers
    assert check_once(lambda n: torch.randn(n), lambda n: torch.randn(n), lambda rng: (3,), name="r", hint="h",
                      quiet=True).passed
    assert torch.equal(torch.rand(2), expected)


def test_messages_agree_with_plural_nouns() -> None:
    ok, why = values_equal(["a", "b"], ["a"], noun="pieces")
    assert not ok and why.startswith("your pieces have length 2, expected 1")
    ok, why = values_equal(torch.ones(2), torch.ones(3), noun="heads")
    assert not ok and why == "your heads have shape (2,), expected (3,)"
    ok, why = values_equal([1], [1, 2], noun="loss")
    assert not ok and why.startswith("your loss has length 1")
    ok, why = values_equal(1.0, torch.ones(2), noun="weights")
    assert not ok and why == "your weights are a float; they must be a torch tensor"


# --------------------------------------------------------------------------- class pieces and choose()
class Scale(torch.nn.Module):
    """A tiny class piece: y = dropout(w * x + b), with named parameters."""

    def __init__(self, width, p=0.0):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(width))
        self.b = torch.nn.Parameter(torch.zeros(width))
        self.drop = torch.nn.Dropout(p)

    def forward(self, x):
        return self.drop(self.w * x + self.b)


def _scale_weights(m):
    m.w.normal_()
    m.b.normal_()


SCALE = ModuleExercise(
    "scale_demo", Scale, lambda rng: (Build({"width": 3, "p": rng.choice([0.0, 0.5])}, rng.random() < 0.5),
                                      torch.randn(2, 3)),
    hints=("scale, shift, drop", "multiply by w, add b, then the dropout module"),
    cases=(Case("width 3, eval mode", lambda: (Build({"width": 3}), torch.randn(1, 3))),
           Case("dropout 0.5 in training mode", lambda: (Build({"width": 3, "p": 0.5}, training=True),
                                                         torch.randn(4, 3)))),
    init_weights=_scale_weights, mistakes=(Mistake("the bias left out", type("NoBias", (Scale,), {
        "forward": lambda self, x: self.drop(self.w * x)})),))


class ScaleStub(Scale):
    def forward(self, x):
        raise NotImplementedError


class ScaleDots(Scale):
    def forward(self, x): ...


class ScaleRight(Scale):
    def forward(self, x):
        return self.drop(torch.addcmul(self.b, self.w, x))


class ScaleNoBias(Scale):
    def forward(self, x):
        return self.drop(x * self.w)


class ScaleRenamed(torch.nn.Module):
    def __init__(self, width, p=0.0):
        super().__init__()
        self.gain = torch.nn.Parameter(torch.ones(width))

    def forward(self, x):
        return self.gain * x


def test_a_class_piece_is_built_given_the_references_weights_and_compared(capsys) -> None:
    assert SCALE.check(ScaleStub).status == "todo" and SCALE.check(ScaleDots).status == "todo"
    assert capsys.readouterr().out.count("not done yet") == 2
    result = SCALE.check(ScaleRight)
    assert result.passed and result.fn is ScaleRight  # the weights loaded by name: its own init does not matter
    assert isinstance(result(3), ScaleRight)  # calling the result builds the chosen class
    capsys.readouterr()
    result = SCALE.check(ScaleNoBias)
    out = capsys.readouterr().out
    assert result.status == "fail" and result.fn is Scale
    assert "module = built with width=3, in eval mode" in out and "x = tensor of shape (1, 3)" in out
    assert "Recognised mistake: the bias left out." in out
    failure = _core.last_failure("scale_demo")
    assert torch.allclose(failure.reproduce(Scale), failure.expected)  # a class piece reruns as a class
    SCALE.check(ScaleRenamed)
    out = capsys.readouterr().out
    assert "not named like the reference's: it has in addition gain; it lacks w, b" in out
    assert SCALE.check(ScaleRight(3)).status == "fail"  # an instance, not the class
    assert "give the class itself" in capsys.readouterr().out


def test_choose_says_in_one_line_which_piece_the_notebook_goes_on_with(capsys) -> None:
    def mine(xs):
        return sum(x * x for x in xs) / len(xs)

    def reference_mine(xs):
        return reference(xs)

    def stub(xs):
        raise NotImplementedError

    assert checks.choose(EX.check(mine, quiet=True), mine, reference_mine) is mine
    assert capsys.readouterr().out == "→ going on with your mine\n"
    assert checks.choose(EX.check(stub, quiet=True), stub, reference_mine) is reference_mine
    assert capsys.readouterr().out == "→ going on with the reference stub (yours is not done yet)\n"
    wrong = EX.check(lambda xs: 0.0, quiet=True)
    assert checks.choose(wrong, mine, reference_mine) is reference_mine
    assert capsys.readouterr().out == "→ going on with the reference mine (yours did not pass the check)\n"
    passed = EX.check(mine, quiet=True)

    def mine_edited(xs):  # redefined after the check ran
        return mine(xs)

    assert checks.choose(passed, mine_edited, reference_mine) is reference_mine
    assert "yours changed after its check: run the check again" in capsys.readouterr().out
    assert checks.choose(None, mine, reference_mine) is reference_mine
    assert "its check above has not run" in capsys.readouterr().out
    assert checks.choose(passed, reference_mine, reference_mine) is reference_mine
    out = capsys.readouterr().out
    assert out.startswith("→ going on with the reference mine (this name already held the reference")
    assert checks.choose(SCALE.check(ScaleRight, quiet=True), ScaleRight, Scale) is ScaleRight
    assert capsys.readouterr().out == "→ going on with your ScaleRight\n"


def test_the_welcome_exercise_check() -> None:
    assert checks.check_mean_of_squares(reference, quiet=True).passed
    assert checks.check_mean_of_squares(lambda xs: sum(x * x for x in xs) / max(len(xs), 1), quiet=True).passed
    assert checks.check_mean_of_squares(lambda xs: 0.0, quiet=True).status == "fail"
    assert checks.check_mean_of_squares(lambda xs: (sum(xs) / len(xs)) ** 2, quiet=True).status == "fail"
    assert checks.check_mean_of_squares(lambda xs: sum(xs) / len(xs), quiet=True).status == "fail"
