"""Checks for the exercises of notebooks/09_fine_tuning.ipynb: LoRA by hand.

Each check runs the learner's function against the reference on fixed cases for the
classic mistakes, then seeded random inputs;
prints ✓ / ✗ (with a hint) / … (not done yet), never raises, and returns a callable
that is the learner's function when it passed and the reference otherwise.

Introduced in notebooks/09_fine_tuning.ipynb.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import torch

from ._core import Case, CheckResult, Exercise, as_number, describe

__all__ = [
    "check_lora_forward",
    "check_lora_param_count",
    "check_merge_lora_weight",
    "reference_lora_forward",
    "reference_lora_param_count",
    "reference_merge_lora_weight",
]


def reference_lora_forward(x: torch.Tensor, W: torch.Tensor, b: torch.Tensor, A: torch.Tensor,
                           B: torch.Tensor, alpha: float) -> torch.Tensor:
    """x (..., in), W (out, in), b (out,), A (r, in), B (out, r) -> (..., out).

    Introduced in notebooks/09_fine_tuning.ipynb.
    """
    r = A.shape[0]
    return x @ W.t() + b + (alpha / r) * (x @ A.t()) @ B.t()


def reference_lora_param_count(n_layer: int, shapes: list[tuple[int, int]], r: int) -> int:
    """Trainable numbers when every layer gets rank-r adapters on Linear layers of (in, out) `shapes`.

    Introduced in notebooks/09_fine_tuning.ipynb.
    """
    return n_layer * sum(r * (fan_in + fan_out) for fan_in, fan_out in shapes)


def reference_merge_lora_weight(W: torch.Tensor, A: torch.Tensor, B: torch.Tensor, alpha: float) -> torch.Tensor:
    """The merged weight W + (alpha / r) B A, shaped like W (out, in).

    Introduced in notebooks/09_fine_tuning.ipynb.
    """
    return W + (alpha / A.shape[0]) * (B @ A)


def _lora_inputs(rng: random.Random, with_x: bool) -> dict:
    fan_in, fan_out, r = rng.randint(3, 12), rng.randint(3, 12), rng.randint(1, 4)
    alpha = float(rng.choice([1, 2, 8, 16, 32]))
    if alpha == r:  # make sure a missing alpha / r shows
        alpha *= 2
    d = {"W": torch.randn(fan_out, fan_in), "A": torch.randn(r, fan_in), "B": torch.randn(fan_out, r),
         "alpha": alpha}
    if with_x:
        d = {"x": torch.randn(rng.randint(1, 3), rng.randint(1, 5), fan_in), **d,
             "b": torch.randn(fan_out)}
        d = {k: d[k] for k in ("x", "W", "b", "A", "B", "alpha")}
    return d


def _lora(fan_in: int, fan_out: int, r: int, alpha: float, x_shape: tuple[int, ...] | None) -> dict:
    d = {"W": torch.randn(fan_out, fan_in), "A": torch.randn(r, fan_in), "B": torch.randn(fan_out, r),
         "alpha": alpha}
    if x_shape is None:
        return d
    return {"x": torch.randn(*x_shape, fan_in), "W": d["W"], "b": torch.randn(fan_out), "A": d["A"],
            "B": d["B"], "alpha": alpha}


def _whole_number(got: Any) -> str | None:
    value = as_number(got)
    if value is None or float(value) != int(value):
        return f"your result is {describe(got, 80)}; return a whole number, the count"
    return None


LORA_FORWARD = Exercise(
    name="lora_forward",
    reference=reference_lora_forward,
    make_inputs=lambda rng: _lora_inputs(rng, with_x=True),
    hints=(
        "the output is the frozen layer's output (weight and bias) plus a low-rank update: x goes down "
        "to r numbers through A, back up through B, and the update is scaled",
        "the scale is alpha divided by r, the rank (the number of rows of A); A has shape r by in and B "
        "has shape out by r, so x meets A transposed first and then B transposed",
    ),
    cases=(
        Case("the update is scaled by alpha over r (alpha 8, r 2)", lambda: _lora(5, 3, 2, 8.0, (1, 2))),
        Case("in, out and r all differ", lambda: _lora(4, 6, 3, 6.0, (2, 3))),
        Case("rank one, a batch of sequences", lambda: _lora(7, 2, 1, 16.0, (3, 4))),
    ),
    noun="output",
)


def check_lora_forward(fn: Callable[..., torch.Tensor], quiet: bool = False) -> CheckResult:
    """Check `fn(x, W, b, A, B, alpha)`: the output of a Linear layer with a LoRA update.

    Introduced in notebooks/09_fine_tuning.ipynb.
    """
    return LORA_FORWARD.check(fn, quiet=quiet)


def _count_inputs(rng: random.Random) -> dict:
    n_embd = rng.choice([32, 64, 768, 1024])
    shapes = rng.sample([(n_embd, 3 * n_embd), (n_embd, n_embd), (n_embd, 4 * n_embd),
                         (4 * n_embd, n_embd)], rng.randint(1, 4))
    return {"n_layer": rng.randint(1, 48), "shapes": shapes, "r": rng.choice([1, 2, 4, 8, 16, 64])}


LORA_PARAM_COUNT = Exercise(
    name="lora_param_count",
    reference=reference_lora_param_count,
    make_inputs=_count_inputs,
    hints=(
        "only the adapters train: each adapted Linear layer gets two thin matrices, A and B, in every block",
        "for a Linear layer from in to out, A is r by in and B is out by r: r times (in plus out) numbers, "
        "not in times out. Add that up over the adapted layers, then multiply by the number of blocks",
    ),
    cases=(
        Case("GPT-2 small, r = 8 on c_attn: 294,912", (12, [(768, 2304)], 8)),
        Case("in plus out, not in times out", (1, [(3, 5)], 1)),
        Case("several adapted layers in every block", (2, [(4, 4), (4, 16)], 2)),
    ),
    contract=_whole_number,
)


def check_lora_param_count(fn: Callable[..., int], quiet: bool = False) -> CheckResult:
    """Check `fn(n_layer, shapes, r)`: how many numbers LoRA trains.

    Introduced in notebooks/09_fine_tuning.ipynb.
    """
    return LORA_PARAM_COUNT.check(fn, quiet=quiet)


MERGE_LORA_WEIGHT = Exercise(
    name="merge_lora_weight",
    reference=reference_merge_lora_weight,
    make_inputs=lambda rng: _lora_inputs(rng, with_x=False),
    hints=(
        "merging folds the scaled low-rank update into the weight, so the layer needs no adapters at "
        "inference; the result has the shape of W",
        "W is out by in, so the update is B times A (out by r times r by in), scaled by alpha over r. "
        "Return a new tensor and leave W as it was",
    ),
    cases=(
        Case("alpha over r (alpha 8, r 2), in and out differ", lambda: _lora(5, 3, 2, 8.0, None)),
        Case("rank one", lambda: _lora(4, 6, 1, 2.0, None)),
        Case("a square weight", lambda: _lora(4, 4, 3, 12.0, None)),
    ),
    noun="merged weight",
)


def check_merge_lora_weight(fn: Callable[..., torch.Tensor], quiet: bool = False) -> CheckResult:
    """Check `fn(W, A, B, alpha)`: the weight with the LoRA update folded in.

    Introduced in notebooks/09_fine_tuning.ipynb.
    """
    return MERGE_LORA_WEIGHT.check(fn, quiet=quiet)
