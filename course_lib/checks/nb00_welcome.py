"""Checks for notebooks/00_welcome.ipynb: a first, tiny exercise, and three concept questions on how the
course runs (answered with `answer(name, letter)`).

Introduced in notebooks/00_welcome.ipynb.
"""

from __future__ import annotations

from collections.abc import Callable

from ._core import Case, CheckResult, Exercise, Mistake, Question

__all__ = ["check_mean_of_squares", "mean_of_squares_reference"]


def mean_of_squares_reference(xs: list[float]) -> float:
    """The mean of the squares of `xs` (the warm-up exercise's reference)."""
    return sum(x * x for x in xs) / len(xs)


MEAN_OF_SQUARES = Exercise(
    name="mean_of_squares",
    reference=mean_of_squares_reference,
    make_inputs=lambda rng: ([rng.uniform(-5, 5) for _ in range(rng.randint(1, 10))],),
    hints=(
        "square every number first and only then average; the mean of the squares is not the square of the mean",
        "add up the squares of all the numbers and divide that sum by how many numbers there are; "
        "a negative number has a positive square",
    ),
    cases=(
        Case("two different numbers", ([3.0, 4.0],)),
        Case("a number and its opposite", ([-2.0, 2.0],)),
        Case("a single number", ([5.0],)),
        Case("numbers below one, some negative", ([0.5, -0.25, 0.1],)),
    ),
    mistakes=(
        Mistake("squaring the mean instead of averaging the squares", lambda xs: (sum(xs) / len(xs)) ** 2),
        Mistake("averaging the numbers without squaring them", lambda xs: sum(xs) / len(xs)),
    ),
)


def check_mean_of_squares(fn: Callable[[list[float]], float], quiet: bool = False) -> CheckResult:
    """Check the warm-up exercise: `fn(xs)` returns the mean of the squares of `xs`."""
    return MEAN_OF_SQUARES.check(fn, quiet=quiet)


QUESTIONS_00 = (
    Question(
        name="untouched_check",
        options={"a": "an error stops the notebook",
                 "b": "one line says it is not done yet, and the notebook goes on with the reference",
                 "c": "it prints the reference solution, so that you can copy it",
                 "d": "it prints a ✗ with the input it failed on and a hint"},
        right="b",
        why=("A stub that still raises NotImplementedError is not a mistake, only unfinished: the check says "
             "so in one line, shows nothing of the answer, and hands back the reference, so the cells after "
             "it still run. Run All works on an untouched notebook."),
        hints=("the course wants Run All to work before you wrote anything, and it never shows an answer "
               "you did not ask for",
               "an unfinished piece is not a wrong one: which message is meant for it?"),
        wrong={"a": "a check never raises: the notebook must run to the end, written or not",
               "c": "the answer is shown only when you ask for it",
               "d": "a ✗ is for a piece that ran and gave a wrong result; this one did not run at all"},
    ),
    Question(
        name="fast_mode",
        options={"a": "the code: a simplified version of each piece runs",
                 "b": "only the sizes: fewer steps, smaller models, shorter texts; the code is the same",
                 "c": "the results: the notebook loads numbers computed in advance",
                 "d": "nothing but the plots, which are left out"},
        right="b",
        why=("Fast mode changes the numbers a cell picks (FAST and course_lib.steps), never the code: the "
             "same functions run on smaller models for fewer steps, which is why the test suite can run "
             "every notebook this way and trust what it finds."),
        hints=("look at how a cell uses FAST and course_lib.steps: what do they choose?",
               "the test suite runs every notebook in fast mode to check the code you run in full mode"),
        wrong={"a": "there is only one version of each piece; fast mode gives it smaller inputs",
               "c": "every number is computed when you run the cell, in every mode",
               "d": "the plots are drawn in fast mode too, from the smaller runs"},
    ),
    Question(
        name="gradient_scaler",
        options={"a": "the T4 is slower, and a larger loss takes bigger steps",
                 "b": ("fp16 has few exponent bits: small gradients would round to zero, while bf16 has the "
                       "range of fp32"),
                 "c": "the T4 has less memory, and the scaler compresses the gradients",
                 "d": "bf16 has more digits of precision than fp16, so it needs no help"},
        right="b",
        why=("fp16 has 5 exponent bits: gradients below about 6e-8 become zero, and many of a language model's "
             "gradients are that small. Multiplying the loss by a large factor lifts every gradient into range; "
             "the scaler divides them back before the update and skips a step that overflowed. bf16 keeps fp32's "
             "8 exponent bits, so nothing underflows. The T4 has no bf16 units, so it trains in fp16, with "
             "the scaler."),
        hints=("what happens to a number too small for the exponent of its format?",
               "compare the exponent bits of fp16 and bf16: which of the two has the range of fp32?"),
        wrong={"a": "the scaler changes no step: it divides the gradients back before the update",
               "c": "the scaled gradients take as much memory as before; the factor only moves them into range",
               "d": "bf16 has fewer digits than fp16 (8 bits of mantissa against 11); what it has more of is range"},
    ),
)
