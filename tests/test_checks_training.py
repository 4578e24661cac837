"""The checks of notebook 06: the reference passes, a wrong answer fails, a stub is 'not done yet'."""

from __future__ import annotations

import math

import torch

from course_lib.checks import check_decay_groups, check_grad_norm, check_lr_schedule
from course_lib.train import cosine_schedule, decay_parameter_names


def _todo(*args, **kwargs):
    raise NotImplementedError


def test_lr_schedule_check():
    assert check_lr_schedule(cosine_schedule, quiet=True).status == "pass"

    def no_warmup_plus_one(step, max_lr, min_lr, warmup_steps, total_steps):
        if step < warmup_steps:
            return max_lr * step / warmup_steps  # off by one: step 0 would have lr 0
        if step >= total_steps:
            return min_lr
        p = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return min_lr + 0.5 * (1 + math.cos(math.pi * p)) * (max_lr - min_lr)

    def linear_decay(step, max_lr, min_lr, warmup_steps, total_steps):
        if step < warmup_steps:
            return max_lr * (step + 1) / warmup_steps
        p = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return max_lr - p * (max_lr - min_lr)

    assert check_lr_schedule(no_warmup_plus_one, quiet=True).status == "fail"
    assert check_lr_schedule(linear_decay, quiet=True).status == "fail"
    result = check_lr_schedule(_todo, quiet=True)
    assert result.status == "todo" and result(3, max_lr=1.0, min_lr=0.1, warmup_steps=2, total_steps=10) == \
        cosine_schedule(3, max_lr=1.0, min_lr=0.1, warmup_steps=2, total_steps=10)


def test_decay_groups_check():
    assert check_decay_groups(decay_parameter_names, quiet=True).status == "pass"

    def by_name(model):  # decays every "weight", LayerNorm gains included: wrong
        names = [n for n, _ in model.named_parameters()]
        return [n for n in names if n.endswith("weight")], [n for n in names if not n.endswith("weight")]

    assert check_decay_groups(by_name, quiet=True).status == "fail"
    assert check_decay_groups(lambda m: "oops", quiet=True).status == "fail"
    assert check_decay_groups(_todo, quiet=True).status == "todo"


def test_grad_norm_check():
    def right(grads):
        return torch.sqrt(sum((g.double() ** 2).sum() for g in grads)).item()

    def sum_of_norms(grads):
        return sum(g.norm().item() for g in grads)

    assert check_grad_norm(right, quiet=True).status == "pass"
    assert check_grad_norm(sum_of_norms, quiet=True).status == "fail"
    assert check_grad_norm(lambda g: "big", quiet=True).status == "fail"
    assert check_grad_norm(_todo, quiet=True).status == "todo"
