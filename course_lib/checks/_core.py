"""The exercise mechanism: an `Exercise` spec, checked against a reference, with staged help.

An exercise is data: its reference, a ladder of hints (a nudge first, then a stronger
one; concepts, never code), fixed `Case`s (unusual inputs, each described as an input),
known-wrong variants (`Mistake`s) that name a mistake when the learner's result is exactly
theirs, a random input maker and, where needed, a contract on the kind of result.
`Exercise.check` runs the fixed cases first, then at least 8 random ones, and prints one message:

- "… name: not done yet" for an unfinished stub (nothing else: no hint, no code);
- "✗" with the case, the input, the first difference, a recognised mistake (only when one of
  the exercise's known-wrong variants gives exactly the learner's result) and the next rung
  of the hint ladder;
- "✓" when every case passed.

It never raises and never hangs (each call of the learner's function runs under a time
limit), and returns a `CheckResult` that calls the learner's function when it passed and
the reference otherwise, so the notebook always runs on. The answer itself is shown only
on request, by `solution(name)`; `last_failure(name)` gives back the input that failed.

A concept `Question` has lettered options; ``answer(name, letter)`` checks the learner's choice
the same way: "not answered yet" while it is None, what a wrong choice overlooks and a hint,
the explanation after the right one (and from `solution(name)`, on request).

A learner piece (a function, or a class such as an `nn.Module` checked by a `ModuleExercise`)
is followed in its notebook by ``X = checks.choose(result, X, ReferenceX)``: the learner's X
when its check passed, the reference otherwise, said in one line.

Introduced in notebooks/00_welcome.ipynb.
"""

from __future__ import annotations

import copy
import ctypes
import dis
import importlib.util
import inspect
import math
import numbers
import random
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

PASS, FAIL, TODO = "pass", "fail", "todo"
TIME_LIMIT_S = 5.0  # per call of the learner's function; tests lower it
MIN_RANDOM_TRIALS = 8

Inputs = Sequence[Any] | Mapping[str, Any]  # positional arguments, or keyword arguments


class Compare(Protocol):
    """Compares a result with the expected one: (ok, why it is not)."""

    def __call__(self, got: Any, expected: Any) -> tuple[bool, str]: ...


@dataclass
class CheckResult:
    """What a check found. Calling it calls the piece the notebook should go on with."""

    name: str
    status: str  # "pass", "fail" or "todo"
    message: str
    fn: Callable[..., Any] | None = field(default=None, repr=False)

    @property
    def passed(self) -> bool:
        return self.status == PASS

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.fn is None:
            raise TypeError(f"check {self.name!r} has no function to call")
        return self.fn(*args, **kwargs)

    def __bool__(self) -> bool:
        return self.passed


@dataclass(frozen=True)
class Case:
    """A fixed, unusual input. `about` describes the input ("a batch of one", "every score
    negative"): it is printed as the input, never as a diagnosis of the learner's mistake."""

    about: str
    inputs: Inputs | Callable[[], Inputs]

    def make(self) -> Inputs:
        return self.inputs() if callable(self.inputs) else self.inputs


@dataclass(frozen=True)
class Mistake:
    """A known-wrong variant of the reference. When the learner's result on a failing input is
    exactly the variant's (and the variant's is wrong there), the message names the mistake:
    "Recognised mistake: <what>." `what` is a short phrase, a concept, never code."""

    what: str
    variant: Callable[..., Any]


@dataclass(frozen=True)
class Build:
    """How a `ModuleExercise` builds a class piece for one case: the constructor's keyword
    arguments and the mode (training or eval)."""

    kwargs: Mapping[str, Any]
    training: bool = False

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.kwargs.items())
        return f"built with {args or 'no arguments'}, in {'training' if self.training else 'eval'} mode"


class PieceProblem(Exception):
    """Raised by a `ModuleExercise` while building the learner's class: the message is the problem."""


@dataclass
class Failure:
    """The input an exercise last failed on: call `reproduce(piece)` to run it again."""

    name: str
    where: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    expected: Any
    got: Any
    message: str
    shown: str = ""  # the input, one argument a line
    wrap: Callable[[Any], Callable[..., Any]] | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        shown = self.shown or "    (no arguments)"
        return (f"Failure of {self.name} on {self.where}:\n  input:\n{shown}\n"
                f"  expected: {describe(self.expected)}\n  got: {describe(self.got)}")

    def reproduce(self, piece: Callable[..., Any]) -> Any:
        """Call `piece` (a function, or a class for a class piece) on (a copy of) the failing input."""
        fn = self.wrap(piece) if self.wrap is not None else piece
        return fn(*copy.deepcopy(self.args), **copy.deepcopy(self.kwargs))


EXERCISES: dict[str, Exercise] = {}
_FAILURES: dict[str, int] = {}
_LAST_FAILURE: dict[str, Failure] = {}


def _key(name: str) -> str:
    key = name.strip().lower().replace("-", "_").replace(" ", "_")
    return key.removeprefix("check_").removeprefix("my_")


def reset_attempts() -> None:
    """Forget every failed attempt at an exercise or a question (the hint ladder starts again)."""
    _FAILURES.clear()
    _LAST_FAILURE.clear()


# --------------------------------------------------------------------- showing values

def _fmt_number(x: Any) -> str:
    if isinstance(x, bool):
        return repr(x)
    if isinstance(x, float):
        if math.isnan(x):
            return "nan"
        if math.isinf(x):
            return "inf" if x > 0 else "-inf"
        short = repr(x)
        return short if len(short) <= 8 else f"{x:.6g}"
    if isinstance(x, int) and abs(x) >= 10_000:
        return f"{x:,}"
    return repr(x)


def _fmt_nested(x: Any) -> str:
    if isinstance(x, list):
        return "[" + ", ".join(_fmt_nested(v) for v in x) + "]"
    return _fmt_number(x)


def describe(x: Any, limit: int = 400) -> str:
    """A one-line description of a value: shape and dtype of a tensor, small values in full.

    Numbers, strings and small containers are never cut; a long container is cut
    within itself only, so the arguments after it still show.
    """
    if isinstance(x, torch.Tensor):
        head = f"tensor of shape {tuple(x.shape)}, {str(x.dtype).removeprefix('torch.')}"
        if x.numel() <= 40:
            return f"{head}: {_fmt_nested(x.detach().cpu().tolist())}"
        return f"{head} (too big to print; see last_failure)"
    if isinstance(x, torch.nn.Module):
        n = sum(p.numel() for p in x.parameters())
        mode = "training" if x.training else "eval"
        if n == 0 and len(repr(x)) <= 80:
            return f"{x!r}, in {mode} mode"
        return f"a {type(x).__name__} with {n:,} parameters, in {mode} mode"
    if isinstance(x, (list, tuple)) and x and all(isinstance(v, torch.Tensor) for v in x):
        shapes = ", ".join(str(tuple(v.shape)) for v in x)
        return f"{type(x).__name__} of {len(x)} tensors of shapes {shapes}"
    if isinstance(x, float):
        return _fmt_number(x)
    s = repr(x)
    return s if len(s) <= limit else s[: limit - 20] + f" ... ({len(s):,} characters)"


def _arg_names(fn: Callable[..., Any], n: int) -> list[str]:
    try:
        names = [p.name for p in inspect.signature(fn).parameters.values()
                 if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        names = []
    return (names + [f"argument {i + 1}" for i in range(len(names), n)])[:n]


def describe_inputs(names: Sequence[str], args: Sequence[Any], kwargs: Mapping[str, Any]) -> str:
    """One line per argument, `name = value`: positional arguments named by `names`, then the keywords."""
    named = list(zip(names, args)) + list(kwargs.items())
    return "\n".join(f"    {k} = {describe(v)}" for k, v in named)


# --------------------------------------------------------------------- comparing

def _kind(dtype: torch.dtype) -> str:
    if dtype == torch.bool:
        return "bool"
    if dtype.is_complex:
        return "complex"
    if dtype.is_floating_point:
        return "floating-point"
    return "integer"


_KIND_EXAMPLE = {"bool": "bool", "floating-point": "floating-point (like float32)",
                 "integer": "an integer type (like int64)", "complex": "complex"}


def as_number(x: Any) -> float | int | None:
    """`x` as a Python number when it is one: int, float, a 0-d or 1-element tensor, a numpy scalar."""
    if isinstance(x, bool):
        return None
    if isinstance(x, numbers.Number) and not isinstance(x, complex):
        return x.item() if hasattr(x, "item") else x  # numpy scalars are Numbers too
    if isinstance(x, torch.Tensor) and x.numel() == 1:
        return x.detach().cpu().item()
    if hasattr(x, "item") and getattr(x, "size", None) == 1 and hasattr(x, "dtype"):  # a numpy array
        try:
            value = x.item()
        except (TypeError, ValueError):
            return None
        return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
    return None


def _plural(noun: str) -> bool:
    """True for "pieces", "filtered scores"; False for "loss", "mask": so a message can agree with it."""
    last = noun.split()[-1] if noun.split() else noun
    return last.endswith("s") and not last.endswith("ss")


def _is(noun: str) -> str:
    return f"{noun} are" if _plural(noun) else f"{noun} is"


def _it(noun: str) -> str:
    return "they" if _plural(noun) else "it"


def _has(noun: str) -> str:
    return f"{noun} have" if _plural(noun) else f"{noun} has"


def _position(idx: Sequence[int]) -> str:
    return "[" + ", ".join(str(int(i)) for i in idx) + "]"


def tensors_equal(got: torch.Tensor, expected: torch.Tensor, rtol: float = 1e-4, atol: float = 1e-5,
                  noun: str = "result") -> tuple[bool, str]:
    """Dtype kind, shape, NaN, then values; on a difference, the first position with got/expected."""
    if _kind(got.dtype) != _kind(expected.dtype):
        return False, (f"your {_is(noun)} {str(got.dtype).removeprefix('torch.')}; "
                       f"the {noun} must be {_KIND_EXAMPLE[_kind(expected.dtype)]}")
    if got.shape != expected.shape:
        return False, f"your {_has(noun)} shape {tuple(got.shape)}, expected {tuple(expected.shape)}"
    g, e = got.detach().cpu(), expected.detach().cpu()
    if g.is_floating_point() or g.is_complex():
        if g.is_complex() or e.is_complex():
            g, e = g.to(torch.complex128), e.to(torch.complex128)
        else:
            g, e = g.double(), e.double()
        bad_nan = torch.isnan(g) & ~torch.isnan(e)
        if bad_nan.any():
            first = bad_nan.nonzero()[0].tolist()
            contains = "contain" if _plural(noun) else "contains"
            return False, (f"your {noun} {contains} NaN ({int(bad_nan.sum())} of {g.numel()} values, "
                           f"the first at {_position(first)})")
        close = torch.isclose(g, e, rtol=rtol, atol=atol, equal_nan=True)  # inf == inf counts as close
    else:
        close = g == e
    if bool(close.all()):
        return True, ""
    wrong = (~close).nonzero()
    first = wrong[0].tolist()
    gv, ev = g[tuple(first)].item(), e[tuple(first)].item()
    where = f"at {_position(first)}" if first else "its value"
    return False, (f"{len(wrong)} of {g.numel()} values differ; {where}: "
                   f"got {_fmt_number(gv)}, expected {_fmt_number(ev)}")


def values_equal(got: Any, expected: Any, rtol: float = 1e-4, atol: float = 1e-5,
                 noun: str = "result") -> tuple[bool, str]:
    """Compare nested results (tensors, numbers, sequences, mappings); returns (ok, why).

    A 0-d tensor or a numpy scalar counts as the number it holds; an integer expected
    must match exactly, a float within the tolerance.
    """
    if isinstance(expected, torch.Tensor):
        if not isinstance(got, torch.Tensor):
            return False, f"your {_is(noun)} a {type(got).__name__}; {_it(noun)} must be a torch tensor"
        return tensors_equal(got, expected, rtol, atol, noun)
    if isinstance(expected, numbers.Number) and not isinstance(expected, bool):
        value = as_number(got)
        if value is None:
            return False, f"your {_is(noun)} {describe(got, 80)} (a {type(got).__name__}); it must be a number"
        if isinstance(value, float) and math.isnan(value) and not (
                isinstance(expected, float) and math.isnan(expected)):
            return False, f"your {_is(noun)} NaN, expected {_fmt_number(expected)}"
        if isinstance(expected, numbers.Integral):
            ok = value == expected
        else:
            ok = math.isclose(value, expected, rel_tol=rtol, abs_tol=atol) or value == expected
        return (True, "") if ok else (False, f"got {_fmt_number(value)}, expected {_fmt_number(expected)}")
    if isinstance(expected, Mapping):
        if not isinstance(got, Mapping):
            return False, f"your {_is(noun)} a {type(got).__name__}; {_it(noun)} must be a dict"
        missing = [k for k in expected if k not in got]
        extra = [k for k in got if k not in expected]
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"missing keys {describe(sorted(missing, key=repr))}")
            if extra:
                parts.append(f"unexpected keys {describe(sorted(extra, key=repr))}")
            return False, "; ".join(parts)
        for k in expected:
            ok, why = values_equal(got[k], expected[k], rtol, atol, noun="value")
            if not ok:
                return False, f"at key {k!r}: {why}"
        return True, ""
    if isinstance(expected, Sequence) and not isinstance(expected, (str, bytes)):
        if not isinstance(got, Sequence) or isinstance(got, (str, bytes)):
            return False, f"your {_is(noun)} a {type(got).__name__}; {_it(noun)} must be a {type(expected).__name__}"
        if len(got) != len(expected):
            return False, (f"your {_has(noun)} length {len(got)}, expected {len(expected)}: "
                           f"got {describe(got)}, expected {describe(expected)}")
        for i, (g, e) in enumerate(zip(got, expected)):
            ok, why = values_equal(g, e, rtol, atol, noun="item")
            if not ok:
                whole = f"got {describe(got)}, expected {describe(expected)}"
                if len(whole) < 300 and not any(isinstance(v, torch.Tensor) for v in (*got, *expected)):
                    return False, f"{whole}; the first difference is at index {i}: {why}"
                return False, f"at index {i}: {why}"
        return True, ""
    if got != expected:
        return False, f"got {describe(got)}, expected {describe(expected)}"
    return True, ""


def _unchanged(before: Any, after: Any) -> bool:
    """True when `after` still equals `before` (NaN equals NaN); used to spot in-place changes."""
    if isinstance(before, torch.Tensor):
        if not isinstance(after, torch.Tensor) or before.shape != after.shape or before.dtype != after.dtype:
            return False
        b, a = before.detach().cpu(), after.detach().cpu()
        same = b == a
        if b.is_floating_point():
            same |= torch.isnan(b) & torch.isnan(a)
        return bool(same.all())
    if isinstance(before, torch.nn.Module):
        if not isinstance(after, torch.nn.Module):
            return False
        sb, sa = before.state_dict(), after.state_dict()
        return sb.keys() == sa.keys() and all(_unchanged(sb[k], sa[k]) for k in sb)
    if isinstance(before, Build):  # its kwargs may hold a module (a layer to wrap): compare them by value
        return (isinstance(after, Build) and before.training == after.training
                and _unchanged(dict(before.kwargs), dict(after.kwargs)))
    if isinstance(before, Mapping):
        return (isinstance(after, Mapping) and list(before) == list(after)
                and all(_unchanged(before[k], after[k]) for k in before))
    if isinstance(before, (list, tuple)):
        return (isinstance(after, (list, tuple)) and len(before) == len(after)
                and all(_unchanged(b, a) for b, a in zip(before, after)))
    try:
        return bool(before == after)
    except Exception:  # noqa: BLE001 - an object that cannot compare is taken as unchanged
        return True


# --------------------------------------------------------------------- running learner code

class _TimeLimit(BaseException):
    """Raised inside the learner's thread to stop it when it ran out of time."""


def _stop_thread(thread: threading.Thread) -> None:
    """Ask CPython to raise `_TimeLimit` in `thread` (it stops at its next Python instruction)."""
    if thread.ident is not None:
        ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread.ident), ctypes.py_object(_TimeLimit))


def call_with_limit(fn: Callable[..., Any], args: Sequence[Any], kwargs: Mapping[str, Any],
                    limit: float | None) -> tuple[str, Any]:
    """Run `fn` in a daemon thread for at most `limit` seconds.

    Returns ("ok", value), ("raised", exception) or ("timeout", None). A thread that runs
    over is stopped, so an infinite loop does not go on eating the CPU and memory.
    """
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn(*args, **kwargs)
        except _TimeLimit:
            box["timeout"] = True
        except BaseException as e:  # noqa: BLE001 - everything the learner raises is reported
            box["error"] = e

    if limit is None:
        target()
    else:
        thread = threading.Thread(target=target, name="course-check", daemon=True)
        thread.start()
        thread.join(limit)
        if thread.is_alive():
            _stop_thread(thread)
            thread.join(1.0)
            return "timeout", None
    if "error" in box:
        return "raised", box["error"]
    if "timeout" in box:
        return "timeout", None
    return "ok", box.get("value")


def _unfinished_function(fn: Any) -> bool:
    code = getattr(fn, "__code__", None)
    if code is None:
        return False
    ops = [(i.opname, i.argval) for i in dis.get_instructions(code)
           if i.opname not in ("RESUME", "NOP", "CACHE")]
    return ops in ([("LOAD_CONST", None), ("RETURN_VALUE", None)], [("RETURN_CONST", None)])


def is_unfinished(piece: Any) -> bool:
    """True for a function whose body is only `...` or `pass` (and maybe a docstring): it returns None;
    for a class, when one of the methods its own body defines is such a function."""
    if isinstance(piece, type):
        return any(_unfinished_function(v) for k, v in vars(piece).items()
                   if inspect.isfunction(v) and k != "__init__")
    return _unfinished_function(piece)


# --------------------------------------------------------------------- the exercise spec

@dataclass
class Exercise:
    """One auto-checked exercise; `check(fn)` runs it. Registered by name on creation.

    - `reference`: the course's own solution (shown by `solution(name)` unless `solution`
      is given), called on the same inputs as the learner's function.
    - `hints`: the ladder, first rung after the first failure, next after the second...
      Concepts only: never code, never the formula.
    - `cases`: fixed unusual inputs, run before the `trials` random ones from
      `make_inputs(rng)` (positional arguments as a tuple, or keyword arguments as a dict).
      Each `Case.about` describes its input; the message shows it as the input.
    - `mistakes`: known-wrong variants; a failure names one only when the learner's result
      is exactly that variant's result on the failing input.
    - `contract(got)`: a message when the result is of the wrong kind (else None).
    - `noun`: what the result is called in messages ("your mask is float32 ...").
    - `compare(got, expected)`: defaults to `values_equal` with `rtol`/`atol`.
    - `judge(got, expected, args, kwargs)`: replaces `compare` when the verdict needs the input
      (a tolerance that depends on it, say).
    - `given`: names the solution takes from the notebook (a piece written earlier there, such
      as ``attention``); `solution` shows them used, and the teacher's version imports none of them.

    The torch random generator is seeded with the same seed before the reference's call and
    before the learner's, so a piece that draws random numbers (dropout) can be compared.
    """

    name: str
    reference: Callable[..., Any]
    make_inputs: Callable[[random.Random], Inputs]
    hints: Sequence[str]
    cases: Sequence[Case] = ()
    trials: int = MIN_RANDOM_TRIALS
    contract: Callable[[Any], str | None] | None = None
    compare: Compare | None = None
    noun: str = "result"
    rtol: float = 1e-4
    atol: float = 1e-5
    seed: int = 0
    time_limit: float | None = None  # seconds; None = TIME_LIMIT_S
    solution: Callable[..., Any] | None = None
    judge: Callable[[Any, Any, tuple[Any, ...], dict[str, Any]], tuple[bool, str]] | None = None
    mistakes: Sequence[Mistake] = ()
    given: Sequence[str] = ()

    subject = "your function"  # how messages name the learner's piece

    def __post_init__(self) -> None:
        self.hints = tuple(self.hints) or ("compare your function with what the text above describes",)
        self.cases = tuple(self.cases)
        self.mistakes = tuple(self.mistakes)
        self.given = tuple(self.given)
        EXERCISES[_key(self.name)] = self

    # -- what is called: a function as it is (a ModuleExercise wraps a class)
    def _runner(self, piece: Any) -> Callable[..., Any]:
        return piece

    def _arg_names(self, n: int) -> list[str]:
        return _arg_names(self.reference, n)

    def _wrong_kind(self, piece: Any) -> str:
        """A message when `piece` is not the kind of thing this exercise checks (else "")."""
        return ""

    def _verdict(self, got: Any, expected: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[bool, str]:
        if self.judge is not None:
            return self.judge(got, expected, copy.deepcopy(args), copy.deepcopy(kwargs))
        if self.compare is not None:
            return self.compare(got, expected)
        return values_equal(got, expected, self.rtol, self.atol, self.noun)

    def _plan(self) -> list[tuple[str, Callable[[random.Random], Inputs]]]:
        fixed = [(f"fixed case {i} of {len(self.cases)}: {c.about}", lambda _rng, c=c: c.make())
                 for i, c in enumerate(self.cases, 1)]
        rand = [(f"random test {i} of {self.trials}", self.make_inputs) for i in range(1, self.trials + 1)]
        return fixed + rand

    def check(self, fn: Callable[..., Any], *, quiet: bool = False) -> CheckResult:
        """Check the learner's piece `fn`; print one message; never raise."""
        if is_unfinished(fn):
            return self._todo(quiet)
        wrong_kind = self._wrong_kind(fn)
        if wrong_kind:
            return self._report(CheckResult(self.name, FAIL, f"✗ {self.name}: {wrong_kind}.\n"
                                            "  (the notebook goes on with the reference)", self.reference), quiet)
        rng = random.Random(self.seed)
        torch_state = torch.random.get_rng_state()
        limit = TIME_LIMIT_S if self.time_limit is None else self.time_limit
        mine, reference = self._runner(fn), self._runner(self.reference)
        try:
            for n, (where, make) in enumerate(self._plan()):
                torch.manual_seed(self.seed * 1000 + n)
                call_seed = self.seed * 1000 + n + 500
                try:
                    inputs = make(rng)
                    args, kwargs = ((), dict(inputs)) if isinstance(inputs, Mapping) else (tuple(inputs), {})
                    torch.manual_seed(call_seed)
                    expected = reference(*copy.deepcopy(args), **copy.deepcopy(kwargs))
                except Exception as e:  # noqa: BLE001 - a bug of the course, reported, not raised
                    return self._report(CheckResult(self.name, FAIL, (
                        f"✗ {self.name}: the checker itself failed on {where} ({type(e).__name__}: {e}); "
                        "please report this. The notebook goes on with your function."), fn), quiet)
                given_args, given_kwargs = copy.deepcopy(args), copy.deepcopy(kwargs)
                torch.manual_seed(call_seed)
                status, got = call_with_limit(mine, given_args, given_kwargs, limit)
                if status == "raised" and isinstance(got, NotImplementedError) or (status == "ok" and got is ...):
                    return self._todo(quiet)
                problem = self._problem(status, got, expected, args, kwargs, given_args, given_kwargs, limit)
                if problem:
                    known = self._recognise(status, got, expected, args, kwargs, call_seed, limit)
                    return self._fail(fn, where, problem, known, args, kwargs, got, expected, quiet)
            total = f"{len(self.cases)} fixed cases and {self.trials} random tests" if self.cases else \
                f"{self.trials} random tests"
            return self._report(CheckResult(self.name, PASS, f"✓ {self.name}: passed {total}. Well done!", fn), quiet)
        finally:
            torch.random.set_rng_state(torch_state)

    def _problem(self, status: str, got: Any, expected: Any, args: tuple[Any, ...], kwargs: dict[str, Any],
                 given_args: tuple[Any, ...], given_kwargs: dict[str, Any], limit: float | None) -> str:
        """What is wrong with one call, or "" when nothing is."""
        if status == "timeout":
            return f"{self.subject} did not return within {limit:g} s (an infinite loop?)"
        if status == "raised":
            if isinstance(got, PieceProblem):
                return str(got)
            return f"{self.subject} raised {type(got).__name__}: {got}"
        names = self._arg_names(len(args))
        changed = [name for name, b, a in zip(names, args, given_args) if not _unchanged(b, a)]
        changed += [k for k in kwargs if not _unchanged(kwargs[k], given_kwargs[k])]
        if changed:
            return (f"{self.subject} changed its input {', '.join(changed)} in place, so the caller's "
                    f"{'value changes' if len(changed) == 1 else 'values change'} too; leave the inputs "
                    "as they are and return a new result")
        if got is None and expected is not None:
            return f"{self.subject} returned None; it must return its result"
        try:
            if self.contract is not None:
                why = self.contract(got)
                if why:
                    return why
            ok, why = self._verdict(got, expected, args, kwargs)
        except Exception as e:  # noqa: BLE001 - a result that cannot even be compared is a fail
            return f"your {self.noun} could not be compared with the expected one ({type(e).__name__}: {e})"
        return "" if ok else (why or "wrong result")

    def _recognise(self, status: str, got: Any, expected: Any, args: tuple[Any, ...], kwargs: dict[str, Any],
                   call_seed: int, limit: float | None) -> list[str]:
        """The `what` of every known mistake whose result on this input is exactly the learner's."""
        found: list[str] = []
        if status != "ok":
            return found
        for mistake in self.mistakes:
            torch.manual_seed(call_seed)
            v_status, wrong = call_with_limit(self._runner(mistake.variant), copy.deepcopy(args),
                                              copy.deepcopy(kwargs), limit)
            if v_status != "ok":
                continue
            try:
                if self._verdict(got, wrong, args, kwargs)[0] and not self._verdict(wrong, expected, args, kwargs)[0]:
                    found.append(mistake.what)
            except Exception:  # noqa: BLE001 - a result that cannot be compared is no match
                continue
        return found

    def _todo(self, quiet: bool) -> CheckResult:
        return self._report(CheckResult(
            self.name, TODO, f"… {self.name}: not done yet; the notebook goes on with the reference.",
            self.reference), quiet)

    def _fail(self, fn: Callable[..., Any], where: str, problem: str, known: list[str], args: tuple[Any, ...],
              kwargs: dict[str, Any], got: Any, expected: Any, quiet: bool) -> CheckResult:
        key = _key(self.name)
        _FAILURES[key] = _FAILURES.get(key, 0) + 1
        attempt = _FAILURES[key]
        rung = self.hints[min(attempt, len(self.hints)) - 1]
        label = "Hint" if attempt == 1 else "Stronger hint" if attempt <= len(self.hints) else "Hint (the last one)"
        names = self._arg_names(len(args))
        shown = describe_inputs(names, args, kwargs)
        lines = [f"✗ {self.name}: wrong on {where}.",
                 f"  {problem}",
                 "  input:",
                 shown]
        if len(known) == 1:
            lines.append(f"  Recognised mistake: {known[0]}.")
        elif known:  # on this input several known mistakes give the same result
            lines.append("  Recognised mistake, one of these: " + "; or ".join(known) + ".")
        lines += [f"  {label}: {rung}",
                  f"  To get this input back: course_lib.checks.last_failure(\"{key}\")."]
        if attempt >= 2:
            lines.append(f"  Still stuck? course_lib.checks.solution(\"{key}\") shows the reference solution.")
        lines.append("  (the notebook goes on with the reference)")
        message = "\n".join(lines)
        wrap = None if type(self)._runner is Exercise._runner else self._runner
        _LAST_FAILURE[key] = Failure(self.name, where, args, kwargs, expected, got, message, shown, wrap)
        return self._report(CheckResult(self.name, FAIL, message, self.reference), quiet)

    @staticmethod
    def _report(result: CheckResult, quiet: bool) -> CheckResult:
        if not quiet:
            print(result.message)
        return result


WEIGHT_SEED = 1234  # the reference module's weights in every case of a ModuleExercise


@dataclass
class ModuleExercise(Exercise):
    """A class piece: an `nn.Module` the learner completes (its `forward`, say), checked whole.

    `reference` is the finished class and `make_inputs(rng)` (and each `Case`) gives
    ``(Build(kwargs, training), *forward_arguments)``. For every case the reference class is
    built from the `Build`'s keyword arguments with weights drawn from a fixed seed
    (`init_weights(module)` may redraw them, so that every parameter matters), the learner's
    class is built with the same arguments and gets the same weights by name
    (`load_state_dict`: a parameter named otherwise is a problem that names it), both are put in
    training or eval mode and called on the same arguments after the same torch seed (so
    dropout draws the same masks when it is applied in the same places). `Mistake` variants
    are classes too.
    """

    init_weights: Callable[[torch.nn.Module], None] | None = None

    subject = "your module"

    def _wrong_kind(self, piece: Any) -> str:
        if not (isinstance(piece, type) and issubclass(piece, torch.nn.Module)):
            return (f"give the class itself (a subclass of nn.Module), not {describe(piece, 80)}; "
                    f"for example check_{_key(self.name)}(MyModule)")
        return ""

    def _arg_names(self, n: int) -> list[str]:
        return (["module"] + _arg_names(self.reference.forward, n)[1:] if n else [])[:n]

    def _weights(self, build: Build) -> dict[str, torch.Tensor]:
        state = torch.random.get_rng_state()
        torch.manual_seed(WEIGHT_SEED)
        try:
            ref = self.reference(**build.kwargs)
            if self.init_weights is not None:
                with torch.no_grad():
                    self.init_weights(ref)
            return ref.state_dict()
        finally:
            torch.random.set_rng_state(state)

    def _runner(self, piece: Any) -> Callable[..., Any]:
        def run(build: Build, *args: Any, **kwargs: Any) -> Any:
            weights = self._weights(build)
            state = torch.random.get_rng_state()
            module = piece(**build.kwargs)
            if not isinstance(module, torch.nn.Module):
                raise PieceProblem(f"your {piece.__name__} is not an nn.Module")
            missing, unexpected = module.load_state_dict(weights, strict=False)
            if missing or unexpected:
                parts = [f"{what} {', '.join(names)}" for what, names in
                         (("it has in addition", missing), ("it lacks", unexpected)) if names]
                raise PieceProblem(f"your {piece.__name__}'s parameters are not named like the reference's: "
                                   + "; ".join(parts) + " (keep the names the constructor above gives)")
            module.train(build.training)
            torch.random.set_rng_state(state)  # the call's seed, as the checker set it
            return module(*args, **kwargs)

        return run


# --------------------------------------------------------------------- going on with a piece

def _display_name(piece: Any) -> str:
    name = getattr(piece, "__name__", None) or type(piece).__name__
    for prefix in ("reference_", "Reference", "ref_"):
        if name.startswith(prefix) and len(name) > len(prefix):
            return name[len(prefix):]
    return name


def choose(result: Any, yours: Any, reference: Any) -> Any:
    """The piece the notebook goes on with, said in one line: `yours` when its check passed, else `reference`.

    ``attention = checks.choose(result, attention, reference_attention)`` prints
    "→ going on with your attention", or "→ going on with the reference attention (yours is
    not done yet)" / "(yours did not pass the check)". Works alike for functions and classes;
    never raises.
    """
    name = _display_name(yours)
    if yours is reference:
        why = "this name already held the reference: run the cell with yours again, then its check"
    elif not isinstance(result, CheckResult):
        why = "its check above has not run"
    elif result.status == TODO:
        why = "yours is not done yet"
    elif result.status != PASS:
        why = "yours did not pass the check"
    elif result.fn is not yours:
        why = "yours changed after its check: run the check again"
    else:
        print(f"→ going on with your {name}")
        return yours
    print(f"→ going on with the reference {name} ({why})")
    return reference


# --------------------------------------------------------------------- concept questions

QUESTIONS: dict[str, Question] = {}


@dataclass
class Question:
    """A concept question with lettered options, answered by ``answer(name, letter)``. Registered by name.

    - `options`: letter -> the option's text, as the notebook's markdown shows it;
    - `right`: the letter of the right option;
    - `wrong`: letter -> what that choice overlooks (a concept, shown when the learner picks it);
    - `hints`: the ladder, as for an exercise: a nudge, then a stronger one (concepts, never the letter);
    - `why`: the explanation, shown after a right answer and by `solution(name)`, never before trying.
    """

    name: str
    options: Mapping[str, str]
    right: str
    why: str
    hints: Sequence[str]
    wrong: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.options = dict(self.options)
        self.hints = tuple(self.hints)
        self.wrong = dict(self.wrong)
        QUESTIONS[_key(self.name)] = self

    def _letters(self) -> str:
        letters = list(self.options)
        return ", ".join(letters[:-1]) + f" or {letters[-1]}" if len(letters) > 1 else letters[0]

    def check(self, choice: Any, *, quiet: bool = False) -> CheckResult:
        """Check the learner's `choice` (a letter; None = not answered yet); print one message; never raise."""
        if choice is None or choice is ...:
            return Exercise._report(CheckResult(self.name, TODO, f"… {self.name}: not answered yet."), quiet)
        letter = choice.strip().strip("()").strip().lower() if isinstance(choice, str) else None
        if letter not in self.options:
            return Exercise._report(CheckResult(self.name, FAIL, (
                f"✗ {self.name}: answer with one of the letters {self._letters()} "
                f"(a string in quotes); got {describe(choice, 80)}.")), quiet)
        if letter == self.right:
            return Exercise._report(CheckResult(self.name, PASS, f"✓ {self.name}: right, ({letter}). {self.why}"),
                                    quiet)
        key = _key(self.name)
        _FAILURES[key] = _FAILURES.get(key, 0) + 1
        attempt = _FAILURES[key]
        rung = self.hints[min(attempt, len(self.hints)) - 1] if self.hints else ""
        lines = [f"✗ {self.name}: not ({letter})."]
        if letter in self.wrong:
            lines.append(f"  ({letter}) overlooks this: {self.wrong[letter]}.")
        if rung:
            lines.append(f"  {'Hint' if attempt == 1 else 'Stronger hint'}: {rung}")
        if attempt >= 2:
            lines.append(f"  Still stuck? course_lib.checks.solution(\"{key}\") shows the answer and why.")
        return Exercise._report(CheckResult(self.name, FAIL, "\n".join(lines)), quiet)

    def solution_text(self) -> str:
        return f"({self.right}) {self.options[self.right]}\n{self.why}"


def answer(name: str, choice: Any) -> None:
    """Check your answer to the concept question `name`: the letter of the option you choose.

    Prints one message: "not answered yet" while `choice` is None, what your choice overlooks
    and a hint when it is not the right one, the explanation when it is. Never raises.
    """
    question = QUESTIONS.get(_key(name)) if isinstance(name, str) else None
    if question is None:
        print(f"no question called {name!r}; the questions are: {', '.join(sorted(QUESTIONS))}")
        return
    question.check(choice)


# --------------------------------------------------------------------- asking for more

def _find(name: str) -> Exercise | None:
    ex = EXERCISES.get(_key(name))
    if ex is None:
        print(f"no exercise called {name!r}; the exercises are: {', '.join(sorted(EXERCISES))}")
    return ex


def solution(name: str) -> str | None:
    """Print (and return) the reference solution of exercise `name` (or the answer to question `name`
    and why): the answer, on request only."""
    question = QUESTIONS.get(_key(name)) if isinstance(name, str) else None
    if question is not None:
        print(question.solution_text())
        return question.solution_text()
    ex = _find(name)
    if ex is None:
        return None
    fn = ex.solution or ex.reference
    try:
        source = _absolute_imports(inspect.getsource(fn), fn.__module__)
    except (OSError, TypeError):
        source = f"# the source of {getattr(fn, '__qualname__', fn)!r} is not available"
    print(source)
    return source


def _absolute_imports(source: str, module: str) -> str:
    """``from ..scaling import x`` -> ``from course_lib.scaling import x``: code a learner can paste."""
    package = module.rpartition(".")[0]

    def absolute(m: re.Match[str]) -> str:
        return f"{m.group(1)}from {importlib.util.resolve_name(m.group(2), package)} import"

    return re.sub(r"^(\s*)from (\.+[\w.]*) import", absolute, source, flags=re.M)


def last_failure(name: str) -> Failure | None:
    """The input exercise `name` last failed on (args, kwargs, expected, got), or None.

    `last_failure("name").reproduce(my_fn)` runs your function on it again.
    """
    ex = _find(name)
    if ex is None:
        return None
    failure = _LAST_FAILURE.get(_key(name))
    if failure is None:
        print(f"{ex.name} has not failed in this session")
    return failure
