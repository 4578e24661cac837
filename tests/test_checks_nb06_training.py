"""The checks of notebook 06: the reference passes, a wrong answer fails, a stub is 'not done yet'."""

from __future__ import annotations

import math

import torch

from course_lib.checks import (
    check_accumulation_weights,
    check_clip_grads,
    check_decay_counts,
    check_decay_groups,
    check_lr_schedule,
    check_train_step,
    check_wsd_schedule,
)
from course_lib.checks.nb06_training import lm_loss, lr_at, train_step
from course_lib.model import GPT, GPTConfig
from course_lib.train import TrainConfig, Trainer, cosine_schedule, decay_parameter_names, make_optimizer


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


def test_the_shown_schedule_is_cosine_schedule():
    for warmup, total in ((0, 50), (10, 100), (7, 7), (30, 31)):
        for step in range(total + 5):
            assert lr_at(step, 1e-3, 1e-4, warmup, total) == cosine_schedule(
                step, max_lr=1e-3, min_lr=1e-4, warmup_steps=warmup, total_steps=total)
    assert check_lr_schedule(lr_at, quiet=True).passed


def _trainer_and_copy(grad_clip: float) -> tuple[Trainer, torch.nn.Module]:
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=13, n_positions=8, n_embd=16, n_layer=2, n_head=2, dropout=0.1))
    twin = GPT(GPTConfig(vocab_size=13, n_positions=8, n_embd=16, n_layer=2, n_head=2, dropout=0.1))
    twin.load_state_dict(model.state_dict())
    ids = torch.randint(13, (2_000,), generator=torch.Generator().manual_seed(1))
    config = TrainConfig(batch_size=4, seq_len=8, grad_accum_steps=3, max_steps=5, lr=3e-2, min_lr=1e-3,
                         warmup_steps=2, grad_clip=grad_clip, eval_interval=0, sample_prompt=None, progress=False,
                         device="cpu", precision="fp32")
    return Trainer(model, ids, None, config), twin


def test_the_reference_step_is_the_trainers_step():
    """The step the notebook's loop runs (and the check's reference) gives the Trainer's losses, gradient
    norms and weights, with dropout on, accumulation over three micro-batches and clipping active."""
    trainer, twin = _trainer_and_copy(grad_clip=0.5)
    optimizer = make_optimizer(twin, trainer.config)
    twin.train()
    torch.manual_seed(42)
    trainer.fit()
    torch.manual_seed(42)
    mine = []
    for step in range(trainer.total_steps):
        batches = [trainer._micro_batch(step * 3 + m) for m in range(3)]
        mine.append(train_step(twin, optimizer, batches, trainer.lr_at(step), trainer.config.grad_clip))
    assert [h["loss"] for h in trainer.history] == [loss for loss, _ in mine]
    assert [h["grad_norm"] for h in trainer.history] == [norm for _, norm in mine]
    assert max(h["grad_norm"] for h in trainer.history) > 0.5  # the clipping did something
    for (name, a), b in zip(trainer.model.state_dict().items(), twin.state_dict().values()):
        assert torch.equal(a, b), name
    assert all(p.grad is None for p in twin.parameters())


def test_without_clipping_the_step_still_measures_the_norm():
    trainer, twin = _trainer_and_copy(grad_clip=0.0)
    optimizer = make_optimizer(twin, trainer.config)
    torch.manual_seed(42)
    trainer.fit()  # the Trainer logs no norm when it does not clip
    torch.manual_seed(42)
    twin.train()
    for step in range(trainer.total_steps):
        batches = [trainer._micro_batch(step * 3 + m) for m in range(3)]
        loss, norm = train_step(twin, optimizer, batches, trainer.lr_at(step), 0.0)
        assert loss == trainer.history[step]["loss"] and norm > 0 and math.isnan(trainer.history[step]["grad_norm"])
    for a, b in zip(trainer.model.state_dict().values(), twin.state_dict().values()):
        assert torch.equal(a, b)


def test_train_step_check():
    assert check_train_step(train_step, quiet=True).passed

    def one_backward(model, optimizer, batches, lr, grad_clip, amp_dtype=None, scaler=None):
        """Clears first, one backward on the mean, clips by hand, returns tensors: right."""
        optimizer.zero_grad()
        for group in optimizer.param_groups:
            group["lr"] = lr
        loss = torch.stack([lm_loss(model, x, y, amp_dtype) for x, y in batches]).mean()
        (scaler.scale(loss) if scaler else loss).backward()
        if scaler:
            scaler.unscale_(optimizer)
        grads = [p.grad for p in model.parameters()]
        norm = torch.sqrt(sum((g.double() ** 2).sum() for g in grads))
        if 0 < grad_clip < norm:
            for g in grads:
                g.mul_(grad_clip / (norm + 1e-6))
        if scaler:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        return loss.detach(), norm

    assert check_train_step(one_backward, quiet=True).passed

    def per_micro_batch(model, optimizer, batches, lr, grad_clip, amp_dtype=None, scaler=None):
        for group in optimizer.param_groups:
            group["lr"] = lr
        total = 0.0
        for x, y in batches:
            loss = lm_loss(model, x, y, amp_dtype) / len(batches)
            loss.backward()
            norm = torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip or float("inf"))
            optimizer.step()
            optimizer.zero_grad()
            total += loss.item()
        return total, norm

    assert check_train_step(per_micro_batch, quiet=True).status == "fail"
    assert check_train_step(lambda *a, **k: "done", quiet=True).status == "fail"
    assert check_train_step(_todo, quiet=True).status == "todo"


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
