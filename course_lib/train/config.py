"""`TrainConfig`: every setting of a training run, a dataclass that round-trips through JSON,
and which of its fields a resumed run may change.

Introduced in notebooks/06_training.ipynb.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..errors import CourseInputError
from ..io import JsonConfig
from ..runtime import PRECISIONS

# TrainConfig fields that may change between a checkpoint and its resumption.
RESUMABLE_CHANGES = frozenset({
    "epochs", "max_steps", "eval_interval", "eval_batches", "checkpoint_interval", "out_dir",
    "device", "progress", "sample_prompt", "sample_tokens", "sample_top_k", "sample_temperature",
})


@dataclass
class TrainConfig(JsonConfig):
    """Every setting of a training run. Round-trips through JSON; impossible values raise.

    `batch_size` is the GLOBAL number of sequences per micro-step (split over processes
    under torchrun); one optimizer step sees ``batch_size * grad_accum_steps`` sequences.
    `max_steps`, when set, wins over `epochs`.
    """

    batch_size: int = 12
    seq_len: int = 64  # used when the Trainer is given raw token ids instead of a dataset
    grad_accum_steps: int = 1
    epochs: float = 1.0
    max_steps: int | None = None
    lr: float = 1e-3
    min_lr: float = 1e-4
    warmup_steps: int = 100
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.99
    eps: float = 1e-8
    grad_clip: float = 1.0  # 0 turns clipping off
    eval_interval: int = 250  # 0: evaluate only at the end
    eval_batches: int | None = 20  # None: the whole validation set
    sample_prompt: str | None = "\n"  # None: no sample at evaluations
    sample_tokens: int = 48
    sample_top_k: int | None = 10  # None or 1: greedy
    sample_temperature: float = 1.0
    out_dir: str | None = None  # None: no checkpoints
    checkpoint_interval: int = 0  # every N steps; 0: only at the end and on Ctrl-C
    device: str | None = None  # None: course_lib.runtime.pick_device()
    precision: str = "auto"  # auto (runtime.autocast_dtype), fp32, bf16, fp16
    seed: int = 1337
    progress: bool = True

    def __post_init__(self) -> None:
        def positive_int(name: str, allow_zero: bool = False, allow_none: bool = False) -> None:
            v = getattr(self, name)
            if v is None and allow_none:
                return
            low = 0 if allow_zero else 1
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                raise CourseInputError(
                    f"TrainConfig.{name}: expected a whole number >= {low}, got {v!r}")

        for name in ("batch_size", "seq_len", "grad_accum_steps", "sample_tokens"):
            positive_int(name)
        for name in ("warmup_steps", "eval_interval", "checkpoint_interval"):
            positive_int(name, allow_zero=True)
        positive_int("max_steps", allow_none=True)
        positive_int("eval_batches", allow_none=True)
        positive_int("sample_top_k", allow_none=True)
        if not (isinstance(self.epochs, (int, float)) and self.epochs > 0):
            raise CourseInputError(f"TrainConfig.epochs: expected a number > 0, got {self.epochs!r}")
        if not (self.lr > 0 and 0 <= self.min_lr <= self.lr):
            raise CourseInputError(
                f"TrainConfig: need lr > 0 and 0 <= min_lr <= lr, got lr={self.lr!r}, min_lr={self.min_lr!r}")
        for name in ("beta1", "beta2"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise CourseInputError(f"TrainConfig.{name}: expected 0 <= {name} < 1, got {getattr(self, name)!r}")
        if self.weight_decay < 0 or self.grad_clip < 0 or self.eps <= 0 or self.sample_temperature <= 0:
            raise CourseInputError(
                "TrainConfig: weight_decay and grad_clip must be >= 0, eps and sample_temperature > 0")
        if self.precision not in PRECISIONS:
            raise CourseInputError(
                f"TrainConfig.precision: {self.precision!r} is not one of {', '.join(PRECISIONS)}")
        if self.out_dir is not None:
            self.out_dir = str(self.out_dir)


    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)


COMMAND_LINE = TrainConfig(seq_len=256, batch_size=16, epochs=8.0, sample_prompt="The", sample_tokens=40)
"""The run `course train` makes where its flags leave a setting out (its flags are built from these
fields): TrainConfig's optimizer and schedule, on 256-token sequences, 16 at a time, for 8 epochs, the
original project's command. min_lr, warmup_steps, eval_interval and checkpoint_interval are worked out
from the run's length instead (`schedule_defaults`)."""


def count_steps(n_sequences: int, batch_size: int, grad_accum_steps: int, epochs: float,
                max_steps: int | None) -> int:
    """Optimizer steps of a run over `n_sequences` training windows: the one place it is worked out.

    `max_steps` when set; else `epochs` passes over ``n_sequences // batch_size``
    micro-batches (the last partial batch dropped), `grad_accum_steps` per step, at least 1.
    """
    if max_steps is not None:
        return max_steps
    return max(1, math.ceil(epochs * (n_sequences // batch_size) / grad_accum_steps))


def training_flops_per_token(n_params: int, n_layer: int, n_embd: int, seq_len: int) -> int:
    """6 N + 12 L T C: the matmuls of forward + backward, plus attention (Kaplan et al. 2020).

    The one formula behind the Trainer's plan (N counted from the model's parameters) and
    `scaling.flops_per_token` (N counted from a config).
    """
    return 6 * n_params + 12 * n_layer * seq_len * n_embd


def schedule_defaults(steps: int, lr: float) -> dict[str, Any]:
    """The settings `course train` derives from a run's length when its flags leave them out.

    min_lr is a tenth of lr; warm-up is 5 % of the steps (at least 1, at most 200); the
    validation loss is measured 10 times a run.
    """
    return {"min_lr": lr / 10, "warmup_steps": min(200, max(1, steps // 20)), "eval_interval": max(1, steps // 10)}


def config_differences(a: dict[str, Any], b: dict[str, Any], ignore: Iterable[str] = ()) -> list[str]:
    """``["key: a -> b", ...]`` for the keys whose values differ (missing counts as different)."""
    skip = set(ignore)
    out = []
    for k in sorted(set(a) | set(b)):
        if k in skip:
            continue
        if a.get(k, "<absent>") != b.get(k, "<absent>"):
            out.append(f"{k}: checkpoint {a.get(k, '<absent>')!r}, now {b.get(k, '<absent>')!r}")
    return out
