"""Checks for the exercises of notebooks/09_fine_tuning.ipynb: LoRA by hand.

Each check runs the learner's function against the reference on seeded random inputs,
prints ✓ / ✗ (with a hint) / … (not done yet), never raises, and returns a callable
that is the learner's function when it passed and the reference otherwise.

Introduced in notebooks/09_fine_tuning.ipynb.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import torch

from ._core import CheckResult, check_function

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


def check_lora_forward(fn: Callable[..., torch.Tensor], quiet: bool = False) -> CheckResult:
    """Check `fn(x, W, b, A, B, alpha)`: the output of a Linear layer with a LoRA update.

    Introduced in notebooks/09_fine_tuning.ipynb.
    """
    return check_function(
        fn, reference_lora_forward, lambda rng: _lora_inputs(rng, with_x=True),
        name="lora_forward",
        hint="y = x @ W.T + b + (alpha / r) * (x @ A.T) @ B.T, with r = A.shape[0]; "
             "A maps in -> r, B maps r -> out",
        quiet=quiet,
    )


def check_lora_param_count(fn: Callable[..., int], quiet: bool = False) -> CheckResult:
    """Check `fn(n_layer, shapes, r)`: how many numbers LoRA trains.

    Introduced in notebooks/09_fine_tuning.ipynb.
    """
    def inputs(rng: random.Random) -> dict:
        n_embd = rng.choice([32, 64, 768, 1024])
        shapes = rng.sample([(n_embd, 3 * n_embd), (n_embd, n_embd), (n_embd, 4 * n_embd),
                             (4 * n_embd, n_embd)], rng.randint(1, 4))
        return {"n_layer": rng.randint(1, 48), "shapes": shapes, "r": rng.choice([1, 2, 4, 8, 16, 64])}

    return check_function(
        fn, reference_lora_param_count, inputs, name="lora_param_count",
        hint="each adapted Linear (in, out) adds A (r x in) and B (out x r): r * (in + out) numbers, "
             "in every one of the n_layer blocks",
        quiet=quiet,
    )


def check_merge_lora_weight(fn: Callable[..., torch.Tensor], quiet: bool = False) -> CheckResult:
    """Check `fn(W, A, B, alpha)`: the weight with the LoRA update folded in.

    Introduced in notebooks/09_fine_tuning.ipynb.
    """
    return check_function(
        fn, reference_merge_lora_weight, lambda rng: _lora_inputs(rng, with_x=False),
        name="merge_lora_weight",
        hint="W has shape (out, in), so the update is (alpha / r) * B @ A (out x r times r x in); "
             "return a new tensor, do not change W",
        quiet=quiet,
    )
