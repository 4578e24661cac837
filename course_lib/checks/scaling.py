"""Checks for the exercises of notebooks/10_scaling_up.ipynb.

Each is an `Exercise` (see `course_lib.checks._core`): fixed cases for the classic
mistakes, then seeded random inputs, against the course's own function.

Introduced in notebooks/10_scaling_up.ipynb.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import torch

from ._core import Case, CheckResult, Exercise, as_number, describe

__all__ = ["check_flops_per_token", "check_mfu", "check_precision_choice", "check_shard"]


def _reference_shard(order: list[int], rank: int, world_size: int) -> list[int]:
    from ..distributed import ShardSampler

    sampler = ShardSampler(len(order), shuffle=False, rank=rank, world_size=world_size)
    return [order[i] for i in sampler]


def _solution_shard(global_order: list[int], rank: int, world_size: int) -> list[int]:
    """Round-robin: every world_size-th sample from position rank, the ragged tail dropped."""
    per_rank = len(global_order) // world_size  # every rank takes the same number of steps
    return global_order[rank::world_size][:per_rank]


def _solution_precision_choice(major: int, minor: int) -> torch.dtype:
    """bf16 from Ampere (compute capability 8.0) on, fp16 (with a GradScaler) before."""
    return torch.bfloat16 if major >= 8 else torch.float16


def _solution_mfu(tokens_per_s: float, flops_per_token: float, peak_flops: float) -> float:
    """Achieved FLOP/s over peak FLOP/s: a fraction."""
    return tokens_per_s * flops_per_token / peak_flops


def _a_dtype(got: Any) -> str | None:
    if not isinstance(got, torch.dtype):
        return f"your result is {describe(got, 80)}; return a torch dtype, bfloat16 or float16"
    return None


def _a_number(got: Any) -> str | None:
    if as_number(got) is None:
        return f"your result is {describe(got, 80)} (a {type(got).__name__}); return a number"
    return None


def _list_of_samples(got: Any) -> str | None:
    if not isinstance(got, (list, tuple)):
        return f"your result is a {type(got).__name__}; return a list of the samples this rank trains on"
    return None


_CAPS = [(6, 1), (7, 0), (7, 5), (8, 0), (8, 6), (8, 9), (9, 0), (10, 0), (12, 0)]


def _dtype_for_capability(major: int, minor: int) -> torch.dtype:
    from ..scaling import dtype_for_capability

    return dtype_for_capability(major, minor)


PRECISION_CHOICE = Exercise(
    name="precision_choice",
    reference=_dtype_for_capability,
    solution=_solution_precision_choice,
    make_inputs=lambda rng: _CAPS[rng.randrange(len(_CAPS))],
    trials=12,
    hints=(
        "bf16 has the range of fp32 but needs a recent GPU; older GPUs fall back to fp16 with a gradient "
        "scaler",
        "the dividing line is compute capability 8.0 (Ampere): major version 8 or more gets bfloat16, "
        "anything older, such as the T4 (7.5) or the V100 (7.0), gets float16. Newer majors count too",
    ),
    cases=(
        Case("a T4 (7.5) has no bf16", (7, 5)),
        Case("an A100 (8.0) has bf16", (8, 0)),
        Case("a minor version above zero (8.6)", (8, 6)),
        Case("an H100 (9.0)", (9, 0)),
        Case("newer majors (10.0, 12.0) have bf16 too", (12, 0)),
        Case("a V100 (7.0)", (7, 0)),
    ),
    contract=_a_dtype,
    noun="dtype",
)


def check_precision_choice(fn: Callable[[int, int], Any], quiet: bool = False) -> CheckResult:
    """`fn(major, minor)` -> the autocast dtype for a CUDA GPU of that compute capability.

    Introduced in notebooks/10_scaling_up.ipynb.
    """
    return PRECISION_CHOICE.check(fn, quiet=quiet)


def _flops_reference(config: Any, seq_len: int) -> int:
    from ..scaling import flops_per_token

    return flops_per_token(config, seq_len)


def _solution_flops_per_token(config: Any, seq_len: int) -> int:
    """6 N for the matmuls (forward 2 N, backward 4 N) plus 12 L T C for attention."""
    from ..scaling import non_embedding_params

    return 6 * non_embedding_params(config) + 12 * config.n_layer * seq_len * config.n_embd


def _config(**kw: int) -> Any:
    from ..model import GPTConfig

    return GPTConfig(**kw)


def _flops_inputs(rng: random.Random) -> tuple[Any, int]:
    n_head = rng.choice([1, 2, 4, 12])
    cfg = _config(vocab_size=rng.randint(50, 60000), n_positions=rng.choice([64, 256, 1024]),
                  n_embd=n_head * rng.choice([8, 16, 64]), n_layer=rng.randint(1, 24), n_head=n_head)
    return cfg, rng.randint(1, cfg.n_positions)


FLOPS_PER_TOKEN = Exercise(
    name="flops_per_token",
    reference=_flops_reference,
    solution=_solution_flops_per_token,
    make_inputs=_flops_inputs,
    hints=(
        "training costs about six FLOPs per parameter per token (two forward, four backward), plus the "
        "attention scores, which grow with the sequence length",
        "take the parameters that do matmuls for every token (the course's non-embedding count: no "
        "position table), times six, then add twelve times layers times sequence length times width",
    ),
    cases=(
        Case("GPT-2 small at 1024 tokens",
             lambda: (_config(vocab_size=50257, n_positions=1024, n_embd=768, n_layer=12, n_head=12), 1024)),
        Case("the attention term uses seq_len, not n_positions",
             lambda: (_config(vocab_size=50257, n_positions=1024, n_embd=768, n_layer=12, n_head=12), 128)),
        Case("a tiny model", lambda: (_config(vocab_size=65, n_positions=64, n_embd=32, n_layer=2, n_head=2), 1)),
    ),
    contract=_a_number,
)


def check_flops_per_token(fn: Callable[[Any, int], Any], quiet: bool = False) -> CheckResult:
    """`fn(config, seq_len)` -> training FLOPs per token, 6 N + 12 L T C.

    Introduced in notebooks/10_scaling_up.ipynb.
    """
    return FLOPS_PER_TOKEN.check(fn, quiet=quiet)


def _mfu(tokens_per_s: float, flops_per_token: float, peak_flops: float) -> float | None:
    from ..scaling import mfu

    return mfu(tokens_per_s, flops_per_token, peak_flops)


MFU = Exercise(
    name="mfu",
    reference=_mfu,
    solution=_solution_mfu,
    make_inputs=lambda rng: (rng.uniform(1e3, 5e5), rng.uniform(1e8, 1e10),
                             rng.choice([65e12, 121e12, 312e12, 989e12])),
    hints=(
        "utilisation compares the FLOPs per second you achieve with the most the GPU could do",
        "achieved FLOPs per second are tokens per second times FLOPs per token; divide by the peak. "
        "The answer is a fraction between zero and one, not a percentage",
    ),
    cases=(
        Case("a fraction, not a percentage", (1e5, 1e9, 312e12)),
        Case("a slow run on a big GPU", (2e4, 7.5e8, 989e12)),
    ),
    contract=_a_number,
    noun="utilisation",
)


def check_mfu(fn: Callable[[float, float, float], Any], quiet: bool = False) -> CheckResult:
    """`fn(tokens_per_s, flops_per_token, peak_flops)` -> model FLOPs utilisation (a fraction).

    Introduced in notebooks/10_scaling_up.ipynb.
    """
    return MFU.check(fn, quiet=quiet)


def _shard_inputs(rng: random.Random) -> tuple[list[int], int, int]:
    world = rng.randint(1, 5)
    order = rng.sample(range(1000), rng.randint(world, 40))
    return order, rng.randrange(world), world


SHARD = Exercise(
    name="shard",
    reference=_reference_shard,
    solution=_solution_shard,
    make_inputs=_shard_inputs,
    hints=(
        "the ranks deal the global order out like cards, round-robin, and every rank must take the same "
        "number of steps",
        "rank r takes the samples at positions r, r plus world_size, r plus twice world_size and so on, "
        "and keeps only as many as the integer division of the length by world_size: the ragged tail is "
        "dropped. Return the samples themselves, not their positions",
    ),
    cases=(
        Case("the ragged tail is dropped: every rank gets the same number", (list(range(10, 20)), 0, 3)),
        Case("return the samples, not their positions", ([42, 7, 13, 99, 5, 61], 0, 2)),
        Case("the last rank", ([3, 1, 4, 1, 5, 9, 2, 6], 3, 4)),
        Case("a single rank takes everything", ([8, 6, 7], 0, 1)),
    ),
    contract=_list_of_samples,
    noun="samples",
)


def check_shard(fn: Callable[[list[int], int, int], Any], quiet: bool = False) -> CheckResult:
    """`fn(global_order, rank, world_size)` -> the samples this rank trains on, round-robin.

    Introduced in notebooks/10_scaling_up.ipynb.
    """
    return SHARD.check(fn, quiet=quiet)
