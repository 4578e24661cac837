"""Checks for notebooks/06_training.ipynb: the three pieces the learner writes, then the exercises.

The pieces, each where the notebook first needs it:

- `check_decay_groups`: which parameters get weight decay (``decay_groups(model)``), against
  `course_lib.train.decay_parameter_names`.
- `check_lr_schedule`: warm-up then cosine (``lr_at(step, max_lr, min_lr, warmup_steps, total_steps)``),
  against `course_lib.train.cosine_schedule` (itself tested against torch's LinearLR + CosineAnnealingLR).
- `check_train_step`: one optimizer step (``train_step(model, optimizer, batches, lr, grad_clip,
  amp_dtype=None, scaler=None)``): the learning rate in every group, accumulation over the micro-batches,
  clipping by the global norm, the GradScaler, one optimizer step. Its reference equals the `Trainer`'s
  step (tests/test_checks_nb06_training.py); the notebook's loop runs on the learner's step.

The exercises at the end ask for what the notebook does not show:

- `check_wsd_schedule`: warm-up, a stable plateau, then a linear decay (WSD).
- `check_decay_counts`: how many numbers of a GPT-2 configuration get weight decay, without
  building the model (against `decay_parameter_names` on a model built on the meta device).
- `check_accumulation_weights`: the factor each micro-batch's mean loss needs when the
  micro-batches hold different numbers of tokens.
- `check_clip_grads`: clipping by the global norm by hand, against ``torch.nn.utils.clip_grad_norm_``.

Introduced in notebooks/06_training.ipynb.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any
from unittest import mock

import torch
import torch.nn.functional as F
from torch import nn

from ..model import GPT, GPTConfig
from ..train import cosine_schedule, decay_parameter_names
from ._core import WEIGHT_SEED, Case, CheckResult, Exercise, Mistake, PieceProblem, as_number, describe, values_equal

__all__ = ["check_decay_groups", "check_lr_schedule", "check_train_step", "check_wsd_schedule",
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


def lr_at(step, max_lr, min_lr, warmup_steps, total_steps):
    """The learning rate of optimizer step `step` (counted from 0): linear warm-up, then half a cosine to min_lr."""
    if step < warmup_steps:                                   # linear warm-up; its last step is at max_lr
        return max_lr * (step + 1) / warmup_steps
    if step >= total_steps:                                   # past the end: stay on the floor
        return min_lr
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)   # 0 -> 1
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (max_lr - min_lr)


LR_SCHEDULE = Exercise(
    name="lr_schedule",
    reference=cosine_schedule,
    solution=lr_at,
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


# --------------------------------------------------------------------------- piece 3: one training step
def lm_loss(model, x, y, amp_dtype=None):
    """Mean next-token cross-entropy; the forward under autocast when amp_dtype is set (the notebook's lm_loss)."""
    with torch.autocast(x.device.type, dtype=amp_dtype) if amp_dtype else nullcontext():
        logits = model(x).logits                                            # (B, T, vocab)
    return F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), y.reshape(-1))


def train_step(model, optimizer, batches, lr, grad_clip, amp_dtype=None, scaler=None):
    """One optimizer step over the micro-batches `batches`: returns (mean loss, gradient norm before clipping).

    This step's learning rate goes into every parameter group. Each micro-batch's loss is divided by
    their number, so the gradients that add up in .grad are those of the mean. One norm is measured
    over all the gradients together and, when grad_clip > 0, brought down to grad_clip. Then one
    optimizer step, and the gradients are cleared. With a GradScaler (fp16), each loss is scaled
    before backward, the gradients are unscaled before clipping, and the scaler steps and updates.
    """
    for group in optimizer.param_groups:                 # the schedule's rate for this step, in every group
        group["lr"] = lr
    loss_sum = 0.0
    for x, y in batches:                                 # accumulation: the gradients add up in .grad
        loss = lm_loss(model, x, y, amp_dtype) / len(batches)
        (scaler.scale(loss) if scaler is not None else loss).backward()
        loss_sum = loss_sum + loss.detach()              # a tensor: no wait for the device until the end
    if scaler is not None:
        scaler.unscale_(optimizer)                       # the true gradients, before they are clipped
    limit = grad_clip if grad_clip > 0 else float("inf")  # 0: no clipping, but the norm is still measured
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), limit)   # one norm over every gradient
    if scaler is not None:
        scaler.step(optimizer)                           # skipped when the gradients overflowed
        scaler.update()
    else:
        optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return float(loss_sum), float(grad_norm)


class MicroBatches(list):
    """A list of (x, y) micro-batches that describes itself in one line (for the check's messages)."""

    def __repr__(self) -> str:
        shapes = " or ".join(str(s) for s in dict.fromkeys(tuple(x.shape) for x, _ in self))
        return f"{len(self)} micro-batch{'' if len(self) == 1 else 'es'} (x, y), token ids of shape {shapes}"


INITIAL_LR = 1e-3  # what the check's optimizer is built with; every case's step gives another rate
INITIAL_SCALE = 2.0**10


@dataclass(frozen=True)
class StepSetup:
    """What the check builds for one case: a small GPT in training mode, its AdamW with two groups
    (weight decay on the matrices), and a GradScaler when `scaler` is True. Weights from a fixed seed."""

    vocab_size: int = 11
    n_layer: int = 1
    n_embd: int = 8
    n_head: int = 2
    dropout: float = 0.0
    scaler: bool = False

    def __repr__(self) -> str:
        layers = f"{self.n_layer} layer{'s' if self.n_layer > 1 else ''}"
        heads = f"{self.n_head} head{'s' if self.n_head > 1 else ''}"
        drop = f", dropout {self.dropout}" if self.dropout else ""
        scaler = f"; a GradScaler, initial scale {INITIAL_SCALE:g}" if self.scaler else "; no GradScaler"
        return (f"a GPT (vocabulary {self.vocab_size}, {layers} of width {self.n_embd}, {heads}{drop}) in training "
                f"mode and its AdamW (lr {INITIAL_LR:g} to start, weight decay on the matrices){scaler}. Your step "
                "runs twice in a row, the second time at half the lr")

    def build(self) -> tuple[GPT, torch.optim.Optimizer, torch.amp.GradScaler | None]:
        state = torch.random.get_rng_state()
        torch.manual_seed(WEIGHT_SEED)
        try:
            model = GPT(GPTConfig(vocab_size=self.vocab_size, n_positions=16, n_embd=self.n_embd,
                                  n_layer=self.n_layer, n_head=self.n_head, dropout=self.dropout)).train()
        finally:
            torch.random.set_rng_state(state)  # the call's seed, as the checker set it (dropout)
        decay, no_decay = decay_parameter_names(model)
        params = dict(model.named_parameters())
        optimizer = torch.optim.AdamW([{"params": [params[n] for n in decay], "weight_decay": 0.1},
                                       {"params": [params[n] for n in no_decay], "weight_decay": 0.0}],
                                      lr=INITIAL_LR, betas=(0.9, 0.99), foreach=False)
        scaler = torch.amp.GradScaler("cpu", init_scale=INITIAL_SCALE, growth_interval=1) if self.scaler else None
        return model, optimizer, scaler


def _returned_pair(out: Any) -> tuple[float, float]:
    numbers = [as_number(v) for v in out] if isinstance(out, (tuple, list)) and len(out) == 2 else [None]
    if any(v is None for v in numbers):
        raise PieceProblem(f"your step returned {describe(out, 80)}; return a pair of numbers: the mean loss of "
                           "the micro-batches and the gradient norm before clipping")
    return float(numbers[0]), float(numbers[1])


class StepExercise(Exercise):
    """A training step: run twice on a fresh model and optimizer built from the case's `StepSetup`;
    compared are what it returned and what the optimizer saw each time it stepped (the learning rate
    of every group and every gradient), and the GradScaler's scale at the end."""

    subject = "your step"

    def _arg_names(self, n: int) -> list[str]:
        return ["model, optimizer", "batches", "lr", "grad_clip", "amp_dtype"][:n]

    def _runner(self, piece: Any) -> Callable[..., Any]:
        def run(setup: StepSetup, batches: list, lr: float, grad_clip: float, amp_dtype: torch.dtype | None = None):
            model, optimizer, scaler = setup.build()
            seen: list[dict[str, Any]] = []
            step = optimizer.step

            def recording_step(*args: Any, **kwargs: Any) -> Any:
                seen.append({"lr": [g["lr"] for g in optimizer.param_groups],
                             "grads": {n: None if p.grad is None else p.grad.detach().clone()
                                       for n, p in model.named_parameters()}})
                return step(*args, **kwargs)

            optimizer.step = recording_step
            result: dict[str, Any] = {"returned": [], "steps": []}
            for rate in (lr, lr / 2):
                seen.clear()
                out = piece(model, optimizer, batches, rate, grad_clip, amp_dtype=amp_dtype, scaler=scaler)
                if out is ... and not result["returned"]:
                    return ...
                result["returned"].append(_returned_pair(out))
                result["steps"].append(list(seen))
            result["scale"] = None if scaler is None else float(scaler.get_scale())
            return result

        return run


_WHICH = ("first", "second")
_GROUPS = ("the weights with decay", "the weights without decay")


def _compare_steps(got: dict[str, Any], expected: dict[str, Any]) -> tuple[bool, str]:
    for k, ((g_loss, g_norm), (e_loss, e_norm)) in enumerate(zip(got["returned"], expected["returned"])):
        which = _WHICH[k]
        if not math.isclose(g_loss, e_loss, rel_tol=1e-5, abs_tol=1e-6):
            return False, (f"the loss your {which} step returned is {g_loss:.6g}; expected {e_loss:.6g}, the mean "
                           "of the micro-batches' losses")
        if not math.isclose(g_norm, e_norm, rel_tol=1e-4, abs_tol=1e-6):
            return False, (f"the gradient norm your {which} step returned is {g_norm:.6g}; expected {e_norm:.6g}, "
                           "the norm of all the gradients together, before clipping")
        g_steps, e_steps = got["steps"][k], expected["steps"][k]
        if len(g_steps) != len(e_steps):
            times = {0: "never", 1: "once"}.get(len(g_steps), f"{len(g_steps)} times")
            return False, (f"during your {which} step the optimizer stepped {times}; expected once, after all "
                           "the micro-batches")
        for g_step, e_step in zip(g_steps, e_steps):
            for i, (g_lr, e_lr) in enumerate(zip(g_step["lr"], e_step["lr"])):
                if not math.isclose(g_lr, e_lr, rel_tol=1e-6):
                    return False, (f"when the optimizer stepped in your {which} step, parameter group {i} "
                                   f"({_GROUPS[i] if i < 2 else 'another group'}) had the learning rate {g_lr:.6g}; "
                                   f"expected {e_lr:.6g}")
            biggest = max((float(e.abs().max()) for e in e_step["grads"].values() if e is not None), default=0.0)
            for name, e in e_step["grads"].items():
                g = g_step["grads"].get(name)
                if (g is None) != (e is None):
                    have = "no gradient" if g is None else "a gradient"
                    return False, (f"when the optimizer stepped in your {which} step, {name} had {have}; "
                                   f"expected {'one' if g is None else 'none'}")
                if e is not None and not torch.allclose(g, e, rtol=1e-4, atol=1e-6 * max(biggest, 1e-3)):
                    d = float((g - e).abs().max())
                    return False, (f"the gradients the optimizer used in your {which} step differ: those of {name} "
                                   f"by up to {d:.3g} (the largest gradient of the step is {biggest:.3g})")
    if got["scale"] != expected["scale"]:
        return False, (f"the GradScaler's scale is {got['scale']:g} after your two steps; expected "
                       f"{expected['scale']:g}")
    return True, ""


def _wrong_step(*, divide: bool = True, lr_groups: int | None = None, per_tensor: bool = False,
                clip_after_step: bool = False, zero: bool = True, norm_after: bool = False, zero_limit: bool = False,
                every_micro_batch: bool = False, unscale: bool = True, use_scaler: bool = True,
                autocast: bool = True) -> Callable[..., tuple[float, float]]:
    """A known-wrong step: one of the mistakes the check names (the defaults give the reference's step)."""

    def wrong(model, optimizer, batches, lr, grad_clip, amp_dtype=None, scaler=None):
        scaler = scaler if use_scaler else None
        for group in optimizer.param_groups[:lr_groups]:
            group["lr"] = lr
        params = list(model.parameters())
        limit = grad_clip if grad_clip > 0 or zero_limit else float("inf")

        def clip() -> float:
            if scaler is not None and unscale:
                scaler.unscale_(optimizer)
            if per_tensor:
                norm = float(torch.nn.utils.clip_grad_norm_(params, float("inf")))
                for p in params:
                    torch.nn.utils.clip_grad_norm_([p], limit)
                return norm
            norm = float(torch.nn.utils.clip_grad_norm_(params, limit))
            return float(torch.nn.utils.clip_grad_norm_(params, float("inf"))) if norm_after else norm

        def step() -> None:
            if scaler is not None:
                scaler.step(optimizer)
                scaler.update()
            else:
                optimizer.step()

        total, norm = 0.0, 0.0
        for x, y in batches:
            loss = lm_loss(model, x, y, amp_dtype if autocast else None) / (len(batches) if divide else 1)
            (scaler.scale(loss) if scaler is not None else loss).backward()
            total += float(loss.detach())
            if every_micro_batch:
                norm = clip()
                step()
                optimizer.zero_grad()
        if not every_micro_batch:
            if clip_after_step:
                step()
                norm = clip()
            else:
                norm = clip()
                step()
            if zero:
                optimizer.zero_grad()
        return total, norm

    return wrong


def _micro_batches(vocab_size: int, n: int, B: int, T: int) -> MicroBatches:
    return MicroBatches((torch.randint(vocab_size, (B, T)), torch.randint(vocab_size, (B, T))) for _ in range(n))


def _step_inputs(rng: random.Random) -> tuple[StepSetup, MicroBatches, float, float, None]:
    n_head = rng.choice([1, 2])
    setup = StepSetup(vocab_size=rng.randint(5, 30), n_layer=rng.randint(1, 2), n_embd=n_head * rng.choice([4, 8]),
                      n_head=n_head, dropout=rng.choice([0.0, 0.0, 0.1]), scaler=rng.random() < 0.2)
    batches = _micro_batches(setup.vocab_size, rng.randint(1, 4), rng.randint(1, 3), rng.randint(1, 8))
    return setup, batches, rng.choice([3e-3, 1e-2, 3e-2]), rng.choice([0.0, 0.05, 1.0, 100.0]), None


TRAIN_STEP = StepExercise(
    name="train_step",
    reference=train_step,
    make_inputs=_step_inputs,
    hints=(
        "one step, four moves: give every parameter group this step's learning rate; run each micro-batch "
        "forward and backward, so that their gradients add up; measure one norm over all the gradients together "
        "and shrink them all by the same factor when it is over the limit; then step the optimizer once and "
        "clear the gradients",
        "divide each micro-batch's loss by the number of micro-batches before its backward pass, so that the "
        "gradients add up to those of the mean. A limit of zero means no clipping: clipping to zero would wipe "
        "the gradients out, yet the norm is still measured and returned. With a scaler, each loss is scaled "
        "before backward, the gradients are unscaled before clipping, and the scaler steps and updates in "
        "place of the optimizer's own step",
    ),
    cases=(
        Case("two micro-batches, gradients over the limit",
             lambda: (StepSetup(), _micro_batches(11, 2, 2, 6), 3e-3, 0.05, None)),
        Case("a limit of zero, which means no clipping",
             lambda: (StepSetup(), _micro_batches(11, 2, 2, 6), 3e-3, 0.0, None)),
        Case("a single micro-batch of one sequence of one token",
             lambda: (StepSetup(), _micro_batches(11, 1, 1, 1), 1e-2, 1.0, None)),
        Case("four micro-batches, a limit far above the gradients",
             lambda: (StepSetup(n_layer=2), _micro_batches(11, 4, 3, 5), 3e-3, 100.0, None)),
        Case("dropout 0.1, three micro-batches",
             lambda: (StepSetup(dropout=0.1), _micro_batches(11, 3, 2, 4), 3e-3, 1.0, None)),
        Case("a GradScaler, as with fp16 on a GPU",
             lambda: (StepSetup(scaler=True), _micro_batches(11, 2, 2, 6), 3e-3, 0.05, None)),
        Case("the forward under autocast to bfloat16",
             lambda: (StepSetup(), _micro_batches(11, 2, 2, 6), 3e-3, 0.05, torch.bfloat16)),
    ),
    mistakes=(
        Mistake("each micro-batch's loss not divided by the number of micro-batches", _wrong_step(divide=False)),
        Mistake("the step's learning rate never given to the optimizer", _wrong_step(lr_groups=0)),
        Mistake("the learning rate set in the first parameter group only", _wrong_step(lr_groups=1)),
        Mistake("each gradient tensor clipped on its own instead of all by one global norm",
                _wrong_step(per_tensor=True)),
        Mistake("clipped after the optimizer step, which had used the gradients unclipped",
                _wrong_step(clip_after_step=True)),
        Mistake("the gradients never cleared, so each step adds its gradients to the last one's",
                _wrong_step(zero=False)),
        Mistake("the norm returned after clipping instead of before", _wrong_step(norm_after=True)),
        Mistake("clipped to a limit of zero, which wipes the gradients out (zero means no clipping)",
                _wrong_step(zero_limit=True)),
        Mistake("an optimizer step after every micro-batch instead of one after all of them",
                _wrong_step(every_micro_batch=True)),
        Mistake("the gradients clipped while still scaled (unscale them before clipping)", _wrong_step(unscale=False)),
        Mistake("the GradScaler left out", _wrong_step(use_scaler=False)),
        Mistake("the autocast type not passed to the loss", _wrong_step(autocast=False)),
    ),
    compare=_compare_steps,
    given=("lm_loss",),
    noun="results",
)


def check_train_step(fn: Callable[..., tuple[float, float]], quiet: bool = False) -> CheckResult:
    """`fn(model, optimizer, batches, lr, grad_clip, amp_dtype=None, scaler=None)`: one optimizer step over the
    micro-batches, with the learning rate set, accumulation, clipping by the global norm; returns (loss, norm)."""
    return TRAIN_STEP.check(fn, quiet=quiet)


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
