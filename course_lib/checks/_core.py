"""The exercise mechanism: compare a learner's function with the reference on random inputs.

A check prints one clear line (pass, fail with a hint, or "not done yet") and never
raises inside the notebook. It returns a `CheckResult` that can be called like the
function it stands for: the learner's function when it passed, otherwise the
reference, so the rest of the notebook always runs.

Introduced in notebooks/00_welcome.ipynb.
"""

from __future__ import annotations

import copy
import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

PASS, FAIL, TODO = "pass", "fail", "todo"


@dataclass
class CheckResult:
    """What a check found. Calling it calls the function the notebook should go on with."""

    name: str
    status: str  # "pass", "fail" or "todo"
    message: str
    fn: Callable[..., Any] | None = field(default=None, repr=False)

    @property
    def passed(self) -> bool:
        return self.status == PASS

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.fn is None:
            raise TypeError(f"check {self.name!r} checked a value, not a function")
        return self.fn(*args, **kwargs)

    def __bool__(self) -> bool:
        return self.passed


def _short(x: Any, limit: int = 160) -> str:
    if isinstance(x, torch.Tensor):
        s = f"tensor{tuple(x.shape)} {x.dtype}" if x.numel() > 12 else repr(x.tolist())
    else:
        s = repr(x)
    return s if len(s) <= limit else s[: limit - 3] + "..."


def values_equal(got: Any, expected: Any, rtol: float = 1e-4, atol: float = 1e-5) -> tuple[bool, str]:
    """Compare nested results (tensors, numbers, sequences, mappings); returns (ok, why)."""
    if isinstance(expected, torch.Tensor):
        if not isinstance(got, torch.Tensor):
            return False, f"expected a tensor, got {type(got).__name__}"
        if got.shape != expected.shape:
            return False, f"shape {tuple(got.shape)}, expected {tuple(expected.shape)}"
        if expected.dtype.is_floating_point or got.dtype.is_floating_point:
            ok = torch.allclose(got.detach().double().cpu(), expected.detach().double().cpu(),
                                rtol=rtol, atol=atol, equal_nan=True)
            if not ok:
                diff = (got.detach().double().cpu() - expected.detach().double().cpu()).abs().max()
                return False, f"values differ (max abs difference {diff.item():.3g})"
            return True, ""
        if not torch.equal(got.cpu(), expected.cpu()):
            return False, "values differ"
        return True, ""
    if isinstance(expected, float) or isinstance(got, float):
        if isinstance(got, (int, float)) and isinstance(expected, (int, float)) and math.isclose(
            got, expected, rel_tol=rtol, abs_tol=atol
        ):
            return True, ""
        return False, f"got {_short(got)}, expected {_short(expected)}"
    if isinstance(expected, Mapping):
        if not isinstance(got, Mapping):
            return False, f"expected a mapping, got {type(got).__name__}"
        if set(got) != set(expected):
            missing = set(expected) - set(got)
            extra = set(got) - set(expected)
            return False, f"keys differ (missing {_short(sorted(missing, key=repr))}, extra {_short(sorted(extra, key=repr))})"
        for k in expected:
            ok, why = values_equal(got[k], expected[k], rtol, atol)
            if not ok:
                return False, f"at key {k!r}: {why}"
        return True, ""
    if isinstance(expected, Sequence) and not isinstance(expected, (str, bytes)):
        if not isinstance(got, Sequence) or isinstance(got, (str, bytes)):
            return False, f"expected a sequence, got {type(got).__name__}"
        if len(got) != len(expected):
            return False, f"length {len(got)}, expected {len(expected)}"
        for i, (g, e) in enumerate(zip(got, expected)):
            ok, why = values_equal(g, e, rtol, atol)
            if not ok:
                return False, f"at index {i}: {why}"
        return True, ""
    if got != expected:
        return False, f"got {_short(got)}, expected {_short(expected)}"
    return True, ""


def _report(result: CheckResult, quiet: bool) -> CheckResult:
    if not quiet:
        print(result.message)
    return result


def check_function(
    learner: Callable[..., Any],
    reference: Callable[..., Any],
    make_inputs: Callable[[random.Random], Sequence[Any] | Mapping[str, Any]],
    *,
    name: str,
    hint: str,
    trials: int = 5,
    seed: int = 0,
    compare: Callable[[Any, Any], tuple[bool, str]] = values_equal,
    quiet: bool = False,
) -> CheckResult:
    """Run `learner` and `reference` on `trials` seeded random inputs and compare.

    `make_inputs(rng)` returns positional arguments (a tuple or list) or keyword
    arguments (a dict). Each function gets its own deep copy, so a learner that
    mutates its input cannot spoil the reference. Never raises.
    """
    rng = random.Random(seed)
    torch_state = torch.random.get_rng_state()
    try:
        for trial in range(1, trials + 1):
            torch.manual_seed(seed * 1000 + trial)
            inputs = make_inputs(rng)
            args, kwargs = ((), dict(inputs)) if isinstance(inputs, Mapping) else (tuple(inputs), {})
            expected = reference(*copy.deepcopy(args), **copy.deepcopy(kwargs))
            try:
                got = learner(*copy.deepcopy(args), **copy.deepcopy(kwargs))
            except NotImplementedError:
                return _report(CheckResult(
                    name, TODO,
                    f"… {name}: not done yet; the notebook goes on with the reference. Hint: {hint}",
                    reference), quiet)
            except Exception as e:  # noqa: BLE001 - a learner's bug must not stop the notebook
                shown = _short(kwargs if kwargs else args)
                return _report(CheckResult(
                    name, FAIL,
                    f"✗ {name}: raised {type(e).__name__}: {e} on input {shown}.\n"
                    f"  Hint: {hint}\n  (the notebook goes on with the reference)",
                    reference), quiet)
            ok, why = compare(got, expected)
            if not ok:
                shown = _short(kwargs if kwargs else args)
                return _report(CheckResult(
                    name, FAIL,
                    f"✗ {name}: wrong on random test {trial} of {trials}: {why}.\n"
                    f"  input: {shown}\n  Hint: {hint}\n  (the notebook goes on with the reference)",
                    reference), quiet)
        return _report(CheckResult(
            name, PASS, f"✓ {name}: passed {trials} random tests. Well done!", learner), quiet)
    finally:
        torch.random.set_rng_state(torch_state)


def check_value(name: str, got: Any, expected: Any, *, hint: str, quiet: bool = False,
                compare: Callable[[Any, Any], tuple[bool, str]] = values_equal) -> CheckResult:
    """Compare one value the learner computed with the expected one. Never raises."""
    if got is ... or got is NotImplemented:
        return _report(CheckResult(name, TODO, f"… {name}: not done yet. Hint: {hint}"), quiet)
    try:
        ok, why = compare(got, expected)
    except Exception as e:  # noqa: BLE001
        ok, why = False, f"could not compare ({type(e).__name__}: {e})"
    if ok:
        return _report(CheckResult(name, PASS, f"✓ {name}: correct. Well done!"), quiet)
    return _report(CheckResult(name, FAIL, f"✗ {name}: {why}.\n  Hint: {hint}"), quiet)
