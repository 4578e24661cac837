"""The checks of notebook 06: the reference passes, a wrong answer fails, a stub is 'not done yet'."""

from __future__ import annotations

import math

import torch

from course_lib.checks import (
    check_accumulation_weights,
    check_clip_grads,
    check_decay_counts,
    check_decay_groups,
    check_grad_norm,
    check_lr_schedule,
    check_wsd_schedule,
)
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


def test_wsd_schedule_check():
    from course_lib.checks.nb06_training import wsd_schedule

    assert check_wsd_schedule(wsd_schedule, quiet=True).status == "pass"

    def cosine_decay(step, max_lr, min_lr, warmup_steps, decay_steps, total_steps):  # the wrong shape of decay
        if step < warmup_steps:
            return max_lr * (step + 1) / warmup_steps
        if step >= total_steps:
            return min_lr
        start = total_steps - decay_steps
        p = max(0.0, (step - start) / decay_steps)
        return min_lr + 0.5 * (1 + math.cos(math.pi * p)) * (max_lr - min_lr)

    assert check_wsd_schedule(cosine_decay, quiet=True).status == "fail"
    assert check_wsd_schedule(_todo, quiet=True).status == "todo"


def test_decay_counts_check_and_its_solution_agree_with_the_model():
    from course_lib.checks.nb06_training import _counts_by_model, _solution_decay_counts
    from course_lib.model import GPTConfig

    assert _counts_by_model(GPTConfig()) == _solution_decay_counts(GPTConfig()) == (124_318_464, 121_344)
    assert sum(_counts_by_model(GPTConfig())) == 124_439_808  # GPT-2 small, the tied head once
    assert check_decay_counts(_solution_decay_counts, quiet=True).status == "pass"

    def untied(config):  # counts lm_head a second time
        d, n = _solution_decay_counts(config)
        return d + config.vocab_size * config.n_embd, n

    assert check_decay_counts(untied, quiet=True).status == "fail"
    assert check_decay_counts(_todo, quiet=True).status == "todo"


def test_accumulation_weights_check():
    assert check_accumulation_weights(lambda t: [n / sum(t) for n in t], quiet=True).status == "pass"
    assert check_accumulation_weights(lambda t: torch.tensor(t, dtype=torch.float64) / sum(t),
                                      quiet=True).status == "pass"
    assert check_accumulation_weights(lambda t: [1 / len(t)] * len(t), quiet=True).status == "fail"
    assert check_accumulation_weights(_todo, quiet=True).status == "todo"


def test_clip_grads_check():
    from course_lib.checks.nb06_training import _solution_clip

    assert check_clip_grads(_solution_clip, quiet=True).status == "pass"

    def per_tensor(grads, max_norm):
        return [g * min(1.0, max_norm / (g.norm().item() + 1e-6)) for g in grads]

    def in_place(grads, max_norm):
        torch.nn.utils.clip_grad_norm_([torch.nn.Parameter(g) for g in grads], max_norm)  # no .grad: does nothing
        return grads

    assert check_clip_grads(per_tensor, quiet=True).status == "fail"
    assert check_clip_grads(in_place, quiet=True).status == "fail"
    assert check_clip_grads(_todo, quiet=True).status == "todo"
