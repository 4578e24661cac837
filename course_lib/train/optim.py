"""The optimizer and the schedule: `cosine_schedule` (linear warm-up, then cosine decay to
min_lr) and `make_optimizer` (AdamW, weight decay on 2-D weights only, fused where it works).

References:
- I. Loshchilov & F. Hutter, "Decoupled Weight Decay Regularization" (AdamW), ICLR 2019.
- I. Loshchilov & F. Hutter, "SGDR: Stochastic Gradient Descent with Warm Restarts" (cosine), 2017.
- A. Karpathy, nanoGPT ``train.py`` (warm-up + cosine schedule, decay on 2-D weights only).

Introduced in notebooks/06_training.ipynb.
"""

from __future__ import annotations

import functools
import math

import torch
from torch import nn

from .config import TrainConfig


def cosine_schedule(step: int, *, max_lr: float, min_lr: float, warmup_steps: int, total_steps: int) -> float:
    """The learning rate for optimizer step `step` (0-based): linear warm-up, then cosine.

    Steps ``0 .. warmup_steps-1`` rise linearly to `max_lr` (step ``warmup_steps - 1`` is
    at `max_lr`); from there the rate follows half a cosine down to `min_lr`, reached at
    `total_steps`, and stays there after.
    """
    if step < warmup_steps:
        return max_lr * (step + 1) / warmup_steps
    if step >= total_steps:
        return min_lr
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)  # 0 -> 1
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (max_lr - min_lr)


def decay_parameter_names(model: nn.Module) -> tuple[list[str], list[str]]:
    """(decayed, not decayed) parameter names: weight decay applies to 2-D weights only.

    Matrices (linear weights, embeddings) are decayed; biases and LayerNorm gains are
    not. A tied weight is listed once.
    """
    decay, no_decay = [], []
    for name, p in model.named_parameters():  # named_parameters() lists a tied weight once
        if not p.requires_grad:
            continue
        (decay if p.dim() >= 2 else no_decay).append(name)
    return decay, no_decay


@functools.cache
def _fused_adamw_works(device_type: str) -> bool:
    from ..runtime import fused_adamw_available

    return device_type != "meta" and fused_adamw_available(device_type)


def make_optimizer(model: nn.Module, config: TrainConfig, device: torch.device | None = None) -> torch.optim.AdamW:
    """AdamW with two groups (decay on 2-D weights only); the fused kernel where it works.

    PyTorch's fused AdamW updates every parameter in one kernel instead of a loop of
    small ops per tensor, which saves a small model's step the per-tensor overhead that
    dominates on a CPU (figures in benchmarks/README.md, "Training"). Where this PyTorch
    build has no fused kernel for the device, the plain AdamW is used.
    """
    decay, no_decay = decay_parameter_names(model)
    params = dict(model.named_parameters())
    groups = [
        {"params": [params[n] for n in decay], "weight_decay": config.weight_decay},
        {"params": [params[n] for n in no_decay], "weight_decay": 0.0},
    ]
    dev = device or next(model.parameters()).device
    extra = {"fused": True} if _fused_adamw_works(torch.device(dev).type) else {}
    return torch.optim.AdamW(groups, lr=config.lr, betas=(config.beta1, config.beta2), eps=config.eps, **extra)
