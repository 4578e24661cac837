"""Checks for the exercises of notebook 06 (training).

- `check_lr_schedule`: warm-up then cosine, against `course_lib.train.cosine_schedule`
  (itself tested against torch's LinearLR + CosineAnnealingLR).
- `check_decay_groups`: which parameters get weight decay, against
  `course_lib.train.decay_parameter_names`.
- `check_grad_norm`: the global gradient norm that clipping uses, against
  ``torch.nn.utils.clip_grad_norm_``.

Introduced in notebooks/06_training.ipynb.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any

import torch

from ..model import GPT, GPTConfig
from ..train import cosine_schedule, decay_parameter_names
from ._core import CheckResult, check_function, values_equal

__all__ = ["check_lr_schedule", "check_decay_groups", "check_grad_norm"]


def _schedule_inputs(rng: random.Random) -> dict[str, Any]:
    total = rng.randint(20, 400)
    warmup = rng.randint(0, total // 3)
    max_lr = rng.choice([1e-3, 6e-4, 3e-4])
    step = rng.choice([0, max(0, warmup - 1), warmup, rng.randint(0, total + 20), total, total + 5])
    return dict(step=step, max_lr=max_lr, min_lr=max_lr * rng.choice([0.0, 0.1]), warmup_steps=warmup,
                total_steps=total)


def check_lr_schedule(fn: Callable[..., float], quiet: bool = False) -> CheckResult:
    """`fn(step, max_lr, min_lr, warmup_steps, total_steps)`: linear warm-up, then cosine to min_lr.

    Introduced in notebooks/06_training.ipynb.
    """
    return check_function(
        fn, cosine_schedule, _schedule_inputs, name="learning-rate schedule", trials=40,
        hint="step < warmup_steps: max_lr * (step + 1) / warmup_steps; step >= total_steps: min_lr; "
        "otherwise progress = (step - warmup_steps) / (total_steps - warmup_steps) and "
        "lr = min_lr + 0.5 * (1 + cos(pi * progress)) * (max_lr - min_lr)",
        quiet=quiet,
    )


def _ref_decay_groups(model: torch.nn.Module) -> tuple[list[str], list[str]]:
    return decay_parameter_names(model)


def _as_sorted_groups(got: Any, expected: Any) -> tuple[bool, str]:
    try:
        a, b = got
        got = (sorted(a), sorted(b))
    except (TypeError, ValueError):
        return False, "expected a pair (decayed names, not decayed names)"
    return values_equal(got, (sorted(expected[0]), sorted(expected[1])))


def _small_gpt(rng: random.Random) -> tuple[GPT]:
    torch.manual_seed(rng.randint(0, 10**6))
    return (GPT(GPTConfig(vocab_size=rng.randint(10, 50), n_positions=8, n_embd=8, n_layer=rng.randint(1, 3),
                          n_head=2)),)


def check_decay_groups(fn: Callable[[torch.nn.Module], tuple[Sequence[str], Sequence[str]]],
                       quiet: bool = False) -> CheckResult:
    """`fn(model)` returns (names that get weight decay, names that do not): decay only 2-D weights.

    Introduced in notebooks/06_training.ipynb.
    """
    return check_function(
        fn, _ref_decay_groups, _small_gpt, name="weight-decay groups", trials=3, compare=_as_sorted_groups,
        hint="loop over model.named_parameters(); p.dim() >= 2 (matrices, embeddings) goes in the first "
        "list, biases and LayerNorm weights (1-D) in the second",
        quiet=quiet,
    )


def _ref_grad_norm(grads: list[torch.Tensor]) -> float:
    params = [torch.nn.Parameter(torch.zeros_like(g)) for g in grads]
    for p, g in zip(params, grads):
        p.grad = g.clone()
    return float(torch.nn.utils.clip_grad_norm_(params, max_norm=float("inf")))


def _grads(rng: random.Random) -> tuple[list[torch.Tensor]]:
    shapes = [tuple(rng.randint(1, 6) for _ in range(rng.randint(1, 3))) for _ in range(rng.randint(1, 5))]
    return ([torch.randn(s) * rng.choice([0.01, 1.0, 10.0]) for s in shapes],)


def _close_floats(got: Any, expected: float) -> tuple[bool, str]:
    try:
        got = float(got)
    except (TypeError, ValueError):
        return False, f"expected a number, got {type(got).__name__}"
    return values_equal(got, expected, rtol=1e-4, atol=1e-6)


def check_grad_norm(fn: Callable[[list[torch.Tensor]], float], quiet: bool = False) -> CheckResult:
    """`fn(grads)`: the global L2 norm over a list of gradient tensors (what clipping compares).

    Introduced in notebooks/06_training.ipynb.
    """
    return check_function(
        fn, _ref_grad_norm, _grads, name="global gradient norm",
        compare=_close_floats,
        hint="the square root of the sum over ALL tensors of (g ** 2).sum(); not the sum of the per-tensor norms",
        quiet=quiet,
    )
