"""Checks for the exercises of notebook 06 (training).

- `check_lr_schedule`: warm-up then cosine, against `course_lib.train.cosine_schedule`
  (itself tested against torch's LinearLR + CosineAnnealingLR).
- `check_decay_groups`: which parameters get weight decay, against
  `course_lib.train.decay_parameter_names`.
- `check_grad_norm`: the global gradient norm that clipping uses, against
  ``torch.nn.utils.clip_grad_norm_``.

The notebook writes the cosine schedule, the decay groups and the loop itself, so its
exercises ask for what it does not show (the three above stay for anyone who wants them):

- `check_wsd_schedule`: warm-up, a stable plateau, then a linear decay (WSD).
- `check_decay_counts`: how many numbers of a GPT-2 configuration get weight decay, without
  building the model (against `decay_parameter_names` on a model built on the meta device).
- `check_accumulation_weights`: the factor each micro-batch's mean loss needs when the
  micro-batches hold different numbers of tokens.
- `check_clip_grads`: clipping by the global norm, against ``torch.nn.utils.clip_grad_norm_``.

Introduced in notebooks/06_training.ipynb.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from typing import Any
from unittest import mock

import torch
from torch import nn

from ..model import GPT, GPTConfig
from ..train import cosine_schedule, decay_parameter_names
from ._core import Case, CheckResult, Exercise, Mistake, as_number, describe, values_equal

__all__ = ["check_lr_schedule", "check_decay_groups", "check_grad_norm", "check_wsd_schedule",
           "check_decay_counts", "check_accumulation_weights", "check_clip_grads"]


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
        Case("the first warm-up step", _lr(0)),
        Case("the last warm-up step", _lr(9)),
        Case("the first step after the warm-up", _lr(10)),
        Case("halfway through the decay", _lr(55)),
        Case("at total_steps", _lr(100)),
        Case("after total_steps", _lr(150)),
        Case("no warm-up at all", _lr(0, warmup_steps=0)),
    ),
    mistakes=(
        Mistake("a warm-up that starts from zero; steps count from zero, so the first step is already one "
                "warm-up step in", lambda step, max_lr, min_lr, warmup_steps, total_steps:
                max_lr * step / warmup_steps if step < warmup_steps
                else cosine_schedule(step, max_lr=max_lr, min_lr=min_lr, warmup_steps=warmup_steps,
                                     total_steps=total_steps)),
        Mistake("a cosine that falls to zero instead of to min_lr", lambda step, max_lr, min_lr, warmup_steps,
                total_steps: cosine_schedule(step, max_lr=max_lr, min_lr=0.0, warmup_steps=warmup_steps,
                                             total_steps=total_steps)),
    ),
    contract=_a_number,
    noun="learning rate",
    rtol=1e-5, atol=1e-9,
)


def check_lr_schedule(fn: Callable[..., float], quiet: bool = False) -> CheckResult:
    """`fn(step, max_lr, min_lr, warmup_steps, total_steps)`: linear warm-up, then cosine to min_lr.
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
        Case("a small GPT, its head tied to the token embedding",
             lambda: (GPT(GPTConfig(vocab_size=20, n_positions=8, n_embd=8, n_layer=1, n_head=2)),)),
        Case("a Sequential of Linear, LayerNorm, Linear without bias",
             lambda: (nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4), nn.Linear(4, 2, bias=False)),)),
        Case("an embedding and a convolution (a 3-D weight)",
             lambda: (nn.ModuleDict({"emb": nn.Embedding(5, 3), "conv": nn.Conv1d(3, 2, 2)}),)),
    ),
    contract=_groups_contract,
    compare=_compare_groups,
    noun="groups",
)


def check_decay_groups(fn: Callable[[torch.nn.Module], tuple[Sequence[str], Sequence[str]]],
                       quiet: bool = False) -> CheckResult:
    """`fn(model)` returns (names that get weight decay, names that do not): decay only 2-D weights.
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
        Case("one tensor of two numbers", ([torch.tensor([3.0, 4.0])],)),
        Case("two tensors of one number each", ([torch.tensor([3.0]), torch.tensor([4.0])],)),
        Case("a matrix and a vector", ([torch.tensor([[1.0, 2.0], [2.0, 4.0]]), torch.tensor([-4.0])],)),
        Case("small gradients", ([torch.full((3, 2), 1e-3), torch.full((5,), -2e-3)],)),
    ),
    mistakes=(Mistake("the per-tensor norms added up instead of one norm over every number",
                      lambda grads: sum(float(g.norm()) for g in grads)),),
    contract=_a_number,
    noun="norm",
)


def check_grad_norm(fn: Callable[[list[torch.Tensor]], float], quiet: bool = False) -> CheckResult:
    """`fn(grads)`: the global L2 norm over a list of gradient tensors (what clipping compares)."""
    return GRAD_NORM.check(fn, quiet=quiet)


# --------------------------------------------------------------------------- exercises of the notebook

def wsd_schedule(step: int, max_lr: float, min_lr: float, warmup_steps: int, decay_steps: int,
                 total_steps: int) -> float:
    """Warm-up, stable, decay: the rate rises as in the cosine schedule, stays at max_lr,
    then falls in a straight line to min_lr over the last `decay_steps` steps before `total_steps`."""
    if step < warmup_steps:
        return max_lr * (step + 1) / warmup_steps
    if step >= total_steps:
        return min_lr
    decay_start = total_steps - decay_steps
    if step < decay_start:
        return max_lr
    progress = (step - decay_start) / decay_steps  # 0 at the first decay step -> 1 at total_steps
    return max_lr + progress * (min_lr - max_lr)


def _wsd_inputs(rng: random.Random) -> dict[str, Any]:
    total = rng.randint(30, 500)
    warmup = rng.randint(0, total // 4)
    decay = rng.randint(1, total - warmup)
    max_lr = rng.choice([1e-3, 6e-4, 3e-4])
    start = total - decay
    step = rng.choice([0, max(0, warmup - 1), warmup, start - 1, start, start + decay // 4,
                       rng.randint(0, total + 20), total, total + 3])
    return dict(step=max(0, step), max_lr=max_lr, min_lr=max_lr * rng.choice([0.0, 0.1]), warmup_steps=warmup,
                decay_steps=decay, total_steps=total)


def _wsd(step: int, warmup_steps: int = 10, decay_steps: int = 40, total_steps: int = 100) -> dict[str, Any]:
    return dict(step=step, max_lr=1e-3, min_lr=1e-4, warmup_steps=warmup_steps, decay_steps=decay_steps,
                total_steps=total_steps)


def _wsd_cosine(step: int, max_lr: float, min_lr: float, warmup_steps: int, decay_steps: int,
                total_steps: int) -> float:
    if step < warmup_steps:
        return max_lr * (step + 1) / warmup_steps
    progress = min(1.0, max(0.0, (step - (total_steps - decay_steps)) / decay_steps))
    return min_lr + 0.5 * (1 + math.cos(math.pi * progress)) * (max_lr - min_lr)


WSD_SCHEDULE = Exercise(
    name="wsd_schedule",
    reference=wsd_schedule,
    make_inputs=_wsd_inputs,
    hints=(
        "three phases and a floor: the same warm-up as the cosine schedule, a plateau at max_lr, a straight "
        "line down to min_lr during the last decay steps before total_steps, and min_lr after that",
        "the decay begins decay_steps before total_steps; at its first step the rate is still max_lr, at "
        "total_steps it is min_lr, and in between it moves by the same amount every step. A quarter of the "
        "way down it is three quarters of max_lr plus a quarter of min_lr",
    ),
    cases=(
        Case("the first warm-up step", _wsd(0)),
        Case("the last warm-up step", _wsd(9)),
        Case("on the plateau", _wsd(30)),
        Case("the first decay step", _wsd(60)),
        Case("a quarter of the way down", _wsd(70)),
        Case("at total_steps", _wsd(100)),
        Case("after total_steps", _wsd(130)),
        Case("no plateau: the decay starts right after the warm-up", _wsd(20, warmup_steps=10, decay_steps=90)),
    ),
    mistakes=(Mistake("a cosine decay instead of a straight line", _wsd_cosine),),
    contract=_a_number,
    noun="learning rate",
    rtol=1e-5, atol=1e-9,
)


def check_wsd_schedule(fn: Callable[..., float], quiet: bool = False) -> CheckResult:
    """`fn(step, max_lr, min_lr, warmup_steps, decay_steps, total_steps)`: warm-up, plateau, linear decay.
    """
    return WSD_SCHEDULE.check(fn, quiet=quiet)


def _counts_by_model(config: GPTConfig) -> tuple[int, int]:
    # shapes only: no memory, and no random initialisation (slow on the meta device, and meaningless there)
    with torch.device("meta"), mock.patch.object(torch.nn.init, "normal_", lambda t, *a, **k: t):
        model = GPT(config)
    decay, no_decay = decay_parameter_names(model)
    params = dict(model.named_parameters())
    return sum(params[n].numel() for n in decay), sum(params[n].numel() for n in no_decay)


def _solution_decay_counts(config: GPTConfig) -> tuple[int, int]:
    """Count by hand: what is 2-D is decayed, what is 1-D is not."""
    C, L = config.n_embd, config.n_layer
    matrices = C * 3 * C + C * C + C * 4 * C + 4 * C * C  # c_attn, attn.c_proj, mlp.c_fc, mlp.c_proj
    vectors = 2 * C + 3 * C + C + 2 * C + 4 * C + C      # ln_1, c_attn bias, c_proj bias, ln_2, c_fc bias, c_proj bias
    decayed = config.vocab_size * C + config.n_positions * C + L * matrices  # wte (= lm_head, tied) and wpe
    not_decayed = L * vectors + 2 * C                                         # ln_f
    return decayed, not_decayed


def _counts_contract(got: Any) -> str | None:
    if not (isinstance(got, (tuple, list)) and len(got) == 2):
        return (f"your result is {describe(got, 80)}; return a pair of whole numbers: "
                "(numbers that get weight decay, numbers that do not)")
    for v in got:
        n = as_number(v)
        if n is None or float(n) != int(n):
            return f"each count must be a whole number; one of yours is {describe(v, 80)}"
    return None


def _random_config(rng: random.Random) -> tuple[GPTConfig]:
    n_head = rng.choice([1, 2, 4])
    return (GPTConfig(vocab_size=rng.randint(10, 5000), n_positions=rng.choice([8, 64, 1024]),
                      n_embd=n_head * rng.choice([4, 8, 16]), n_layer=rng.randint(1, 6), n_head=n_head),)


DECAY_COUNTS = Exercise(
    name="decay_counts",
    reference=_counts_by_model,
    solution=_solution_decay_counts,
    make_inputs=_random_config,
    hints=(
        "decide by shape: every matrix is decayed, every vector is not. List what one block holds, "
        "then what sits outside the blocks",
        "a block has four weight matrices of sizes C by 3C, C by C, C by 4C and 4C by C, a bias for each, and "
        "two LayerNorms with a gain and a bias each. Outside: the token and position embeddings are matrices, "
        "the head shares the token embedding so it is not counted again, and the final LayerNorm is two vectors",
    ),
    cases=(
        Case("GPT-2 124M", (GPTConfig(),)),
        Case("a tiny model with a long context",
             (GPTConfig(vocab_size=10, n_positions=1024, n_embd=8, n_layer=1, n_head=2),)),
        Case("three blocks of width 4", (GPTConfig(vocab_size=10, n_positions=4, n_embd=4, n_layer=3, n_head=1),)),
    ),
    mistakes=(
        Mistake("the tied head counted a second time (it shares the token embedding's matrix)",
                lambda config: (_counts_by_model(config)[0] + config.vocab_size * config.n_embd,
                                _counts_by_model(config)[1])),
        Mistake("the position embedding left undecayed (it is a matrix)",
                lambda config: (_counts_by_model(config)[0] - config.n_positions * config.n_embd,
                                _counts_by_model(config)[1] + config.n_positions * config.n_embd)),
    ),
    contract=_counts_contract,
    noun="counts",
)


def check_decay_counts(fn: Callable[[GPTConfig], tuple[int, int]], quiet: bool = False) -> CheckResult:
    """`fn(config)` returns (numbers decayed, numbers not decayed) of the GPT that `config` describes.
    """
    return DECAY_COUNTS.check(fn, quiet=quiet)


def accumulation_weights(tokens: list[int]) -> list[float]:
    """The factor for each micro-batch's MEAN loss so that the accumulated gradient is the
    gradient of the mean loss over every token of the step: its share of the tokens."""
    total = sum(tokens)
    return [n / total for n in tokens]


def _weights_contract(got: Any) -> str | None:
    if isinstance(got, torch.Tensor):
        if got.dim() != 1 or not got.dtype.is_floating_point:
            return f"your weights are {describe(got, 80)}; return one float per micro-batch"
        return None
    if not isinstance(got, (list, tuple)) or any(as_number(v) is None for v in got):
        return f"your weights are {describe(got, 80)}; return a list with one number per micro-batch"
    return None


def _compare_weights(got: Any, expected: list[float]) -> tuple[bool, str]:
    got = [float(v) for v in (got.tolist() if isinstance(got, torch.Tensor) else got)]
    return values_equal(got, expected, 1e-6, 1e-9, "weights")


def _token_counts(rng: random.Random) -> tuple[list[int]]:
    k = rng.randint(1, 8)
    full = rng.choice([64, 256, 1024])
    counts = [full] * k
    if rng.random() < 0.7:  # a short last micro-batch, or padded batches of uneven length
        counts = [rng.randint(1, full) if rng.random() < 0.5 else full for _ in range(k)]
    return (counts,)


ACCUMULATION_WEIGHTS = Exercise(
    name="accumulation_weights",
    reference=accumulation_weights,
    make_inputs=_token_counts,
    hints=(
        "the goal is the gradient of one mean over every target token of the optimizer step; each micro-batch "
        "only gives the mean over its own tokens",
        "a micro-batch's mean loss times its number of tokens is its sum; the sums add up to the total, and the "
        "total divided by all the tokens is the mean you want. So each micro-batch weighs its share of the tokens; "
        "equal micro-batches all get one over their count",
    ),
    cases=(
        Case("four equal micro-batches", ([256, 256, 256, 256],)),
        Case("a short last micro-batch", ([256, 256, 64],)),
        Case("a single micro-batch", ([100],)),
    ),
    mistakes=(Mistake("every micro-batch weighted equally, whatever its number of tokens",
                      lambda tokens: [1 / len(tokens)] * len(tokens)),),
    contract=_weights_contract,
    compare=_compare_weights,
    noun="weights",
)


def check_accumulation_weights(fn: Callable[[list[int]], list[float]], quiet: bool = False) -> CheckResult:
    """`fn(tokens)`: the factor for each micro-batch's mean loss, given its number of target tokens.
    """
    return ACCUMULATION_WEIGHTS.check(fn, quiet=quiet)


def _ref_clip(grads: list[torch.Tensor], max_norm: float) -> list[torch.Tensor]:
    params = [torch.nn.Parameter(torch.zeros_like(g)) for g in grads]
    for p, g in zip(params, grads):
        p.grad = g.clone()
    torch.nn.utils.clip_grad_norm_(params, max_norm)
    return [p.grad for p in params]


def _solution_clip(grads: list[torch.Tensor], max_norm: float) -> list[torch.Tensor]:
    """One norm for everything; one factor for every tensor; never scaled up."""
    total = torch.sqrt(sum((g.double() ** 2).sum() for g in grads))
    factor = min(1.0, max_norm / (float(total) + 1e-6))  # torch adds 1e-6 so a zero gradient is safe
    return [g * factor for g in grads]


def _clip_inputs(rng: random.Random) -> tuple[list[torch.Tensor], float]:
    shapes = [tuple(rng.randint(1, 6) for _ in range(rng.randint(1, 3))) for _ in range(rng.randint(1, 5))]
    grads = [torch.randn(s) * rng.choice([0.01, 1.0, 10.0]) for s in shapes]
    return grads, rng.choice([0.5, 1.0, 5.0, 100.0])


def _clip_contract(got: Any) -> str | None:
    if not isinstance(got, (list, tuple)) or not all(isinstance(g, torch.Tensor) for g in got):
        return f"your result is {describe(got, 80)}; return a list of tensors, one per gradient"
    return None


CLIP_GRADS = Exercise(
    name="clip_grads",
    reference=_ref_clip,
    solution=_solution_clip,
    make_inputs=_clip_inputs,
    hints=(
        "clipping by the global norm keeps the direction of the whole update: it measures one norm over all "
        "the tensors together and, when that is over the limit, shrinks every tensor by the same factor",
        "the factor is the limit over the global norm, and never more than one, so small gradients are left "
        "as they are. Return new tensors and leave the ones you were given unchanged",
    ),
    cases=(
        Case("gradients under the limit", ([torch.tensor([0.3, 0.4])], 1.0)),
        Case("two tensors of one number each", ([torch.tensor([3.0]), torch.tensor([4.0])], 1.0)),
        Case("a matrix and a vector", ([torch.tensor([[1.0, 2.0], [2.0, 4.0]]), torch.tensor([-4.0])], 2.0)),
    ),
    mistakes=(
        Mistake("each tensor clipped on its own instead of one factor from the global norm",
                lambda grads, max_norm: [g * min(1.0, max_norm / (float(g.norm()) + 1e-6)) for g in grads]),
        Mistake("small gradients scaled up to the limit (the factor must never be more than one)",
                lambda grads, max_norm: [g * max_norm / float(torch.cat([h.flatten() for h in grads]).norm())
                                         for g in grads]),
    ),
    contract=_clip_contract,
    noun="gradients",
)


def check_clip_grads(fn: Callable[[list[torch.Tensor], float], list[torch.Tensor]], quiet: bool = False) -> CheckResult:
    """`fn(grads, max_norm)`: the gradients clipped by their global norm, as new tensors."""
    return CLIP_GRADS.check(fn, quiet=quiet)
