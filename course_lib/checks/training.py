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

import math
import random
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from ..model import GPT, GPTConfig
from ..train import cosine_schedule, decay_parameter_names
from ._core import Case, CheckResult, Exercise, as_number, describe

__all__ = ["check_lr_schedule", "check_decay_groups", "check_grad_norm"]


def _schedule_inputs(rng: random.Random) -> dict[str, Any]:
    total = rng.randint(20, 400)
    warmup = rng.randint(0, total // 3)
    max_lr = rng.choice([1e-3, 6e-4, 3e-4])
    step = rng.choice([0, max(0, warmup - 1), warmup, rng.randint(0, total + 20), total, total + 5])
    return dict(step=step, max_lr=max_lr, min_lr=max_lr * rng.choice([0.0, 0.1]), warmup_steps=warmup,
                total_steps=total)


def _lr(step: int, warmup_steps: int = 10, total_steps: int = 100) -> dict[str, Any]:
    return dict(step=step, max_lr=1e-3, min_lr=1e-4, warmup_steps=warmup_steps, total_steps=total_steps)


def _a_number(got: Any) -> str | None:
    if as_number(got) is None:
        return f"your result is {describe(got, 80)} (a {type(got).__name__}); return a number"
    return None


LR_SCHEDULE = Exercise(
    name="lr_schedule",
    reference=cosine_schedule,
    make_inputs=_schedule_inputs,
    hints=(
        "three phases: a linear rise during the warm-up steps, half a cosine from max_lr down to min_lr, "
        "then min_lr for ever",
        "steps are counted from zero and the last warm-up step already reaches max_lr, so the first step is "
        "not zero; the cosine starts at max_lr on the first step after the warm-up and lands on min_lr at "
        "total_steps, halfway it is the mean of the two",
    ),
    cases=(
        Case("the first warm-up step is not zero", _lr(0)),
        Case("the last warm-up step reaches max_lr", _lr(9)),
        Case("the first step after the warm-up is max_lr", _lr(10)),
        Case("halfway through the decay: the mean of max_lr and min_lr", _lr(55)),
        Case("at total_steps: min_lr, not zero", _lr(100)),
        Case("after total_steps: still min_lr", _lr(150)),
        Case("no warm-up at all", _lr(0, warmup_steps=0)),
    ),
    contract=_a_number,
    noun="learning rate",
    rtol=1e-5, atol=1e-9,
)


def check_lr_schedule(fn: Callable[..., float], quiet: bool = False) -> CheckResult:
    """`fn(step, max_lr, min_lr, warmup_steps, total_steps)`: linear warm-up, then cosine to min_lr.

    Introduced in notebooks/06_training.ipynb.
    """
    return LR_SCHEDULE.check(fn, quiet=quiet)


def _groups_contract(got: Any) -> str | None:
    if not (isinstance(got, (tuple, list)) and len(got) == 2):
        return (f"your result is {describe(got, 80)}; return a pair: "
                "(the names that get weight decay, the names that do not)")
    for group in got:
        if isinstance(group, (str, bytes)) or not isinstance(group, Sequence | set):
            return f"each group must be a list of names; one of yours is {describe(group, 80)}"
        for item in group:
            if isinstance(item, torch.Tensor):
                return ("your groups hold the parameters themselves (tensors); return their names, "
                        "the strings that named_parameters gives with each parameter")
            if not isinstance(item, str):
                return f"your groups must hold parameter names (strings); one item is {describe(item, 80)}"
    return None


def _show(names: list[str]) -> str:
    return ", ".join(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")


def _compare_groups(got: Any, expected: tuple[list[str], list[str]]) -> tuple[bool, str]:
    decay, no_decay = list(got[0]), list(got[1])
    exp_decay, exp_no_decay = set(expected[0]), set(expected[1])
    everything = exp_decay | exp_no_decay
    problems = []
    if wrong := [n for n in decay if n in exp_no_decay]:
        problems.append(f"decayed, but must not be (biases and LayerNorm parameters are 1-D): {_show(wrong)}")
    if wrong := [n for n in no_decay if n in exp_decay]:
        problems.append(f"not decayed, but must be (matrices and embeddings): {_show(wrong)}")
    if unknown := sorted({n for n in decay + no_decay if n not in everything}):
        problems.append(f"not trainable parameters of this model (a tied weight is named once): {_show(unknown)}")
    if missing := sorted(everything - set(decay) - set(no_decay)):
        problems.append(f"in neither group: {_show(missing)}")
    if twice := sorted({n for n in decay + no_decay if (decay + no_decay).count(n) > 1}):
        problems.append(f"listed more than once: {_show(twice)}")
    return (False, "; ".join(problems)) if problems else (True, "")


def _small_gpt(rng: random.Random) -> tuple[GPT]:
    torch.manual_seed(rng.randint(0, 10**6))
    return (GPT(GPTConfig(vocab_size=rng.randint(10, 50), n_positions=8, n_embd=8, n_layer=rng.randint(1, 3),
                          n_head=2)),)


DECAY_GROUPS = Exercise(
    name="decay_groups",
    reference=decay_parameter_names,
    make_inputs=_small_gpt,
    hints=(
        "weight decay pulls the big matrices towards zero; biases and LayerNorm gains are left alone. "
        "Decide by the shape of each parameter, not by its name",
        "go through the named parameters: a parameter with two or more dimensions goes in the first list, "
        "a one-dimensional one in the second. Return names, and list the tied embedding only once, "
        "the way named_parameters does",
    ),
    cases=(
        Case("GPT: LayerNorm weights are not decayed, the tied head is named once",
             lambda: (GPT(GPTConfig(vocab_size=20, n_positions=8, n_embd=8, n_layer=1, n_head=2)),)),
        Case("any model: a LayerNorm called '1' is still 1-D",
             lambda: (nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4), nn.Linear(4, 2, bias=False)),)),
        Case("a 3-D weight is decayed too, an embedding as well",
             lambda: (nn.ModuleDict({"emb": nn.Embedding(5, 3), "conv": nn.Conv1d(3, 2, 2)}),)),
    ),
    contract=_groups_contract,
    compare=_compare_groups,
    noun="groups",
)


def check_decay_groups(fn: Callable[[torch.nn.Module], tuple[Sequence[str], Sequence[str]]],
                       quiet: bool = False) -> CheckResult:
    """`fn(model)` returns (names that get weight decay, names that do not): decay only 2-D weights.

    Introduced in notebooks/06_training.ipynb.
    """
    return DECAY_GROUPS.check(fn, quiet=quiet)


def _ref_grad_norm(grads: list[torch.Tensor]) -> float:
    params = [torch.nn.Parameter(torch.zeros_like(g)) for g in grads]
    for p, g in zip(params, grads):
        p.grad = g.clone()
    return float(torch.nn.utils.clip_grad_norm_(params, max_norm=float("inf")))


def _solution_grad_norm(grads: list[torch.Tensor]) -> float:
    """The L2 norm of all gradient numbers together, as if they were one long vector."""
    total = sum(float((g.double() ** 2).sum()) for g in grads)
    return math.sqrt(total)


def _grads(rng: random.Random) -> tuple[list[torch.Tensor]]:
    shapes = [tuple(rng.randint(1, 6) for _ in range(rng.randint(1, 3))) for _ in range(rng.randint(1, 5))]
    return ([torch.randn(s) * rng.choice([0.01, 1.0, 10.0]) for s in shapes],)


GRAD_NORM = Exercise(
    name="grad_norm",
    reference=_ref_grad_norm,
    solution=_solution_grad_norm,
    make_inputs=_grads,
    hints=(
        "clipping looks at one norm for the whole model: all the gradient numbers of all the tensors "
        "together, as if they were one long vector",
        "square every number of every tensor, add all those squares into one total, and take the square "
        "root once at the end. Adding the per-tensor norms gives too much",
    ),
    cases=(
        Case("one tensor: three and four make five", ([torch.tensor([3.0, 4.0])],)),
        Case("two tensors: one norm of everything, not the sum of the two norms",
             ([torch.tensor([3.0]), torch.tensor([4.0])],)),
        Case("a matrix counts every entry", ([torch.tensor([[1.0, 2.0], [2.0, 4.0]]), torch.tensor([-4.0])],)),
        Case("small gradients", ([torch.full((3, 2), 1e-3), torch.full((5,), -2e-3)],)),
    ),
    contract=_a_number,
    noun="norm",
)


def check_grad_norm(fn: Callable[[list[torch.Tensor]], float], quiet: bool = False) -> CheckResult:
    """`fn(grads)`: the global L2 norm over a list of gradient tensors (what clipping compares).

    Introduced in notebooks/06_training.ipynb.
    """
    return GRAD_NORM.check(fn, quiet=quiet)
