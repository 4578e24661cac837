"""Checks for the exercises of notebooks/10_scaling_up.ipynb.

Each compares the learner's function with the course's own on seeded random inputs
(see `course_lib.checks.check_function`).

Introduced in notebooks/10_scaling_up.ipynb.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from ._core import CheckResult, check_function

__all__ = ["check_flops_per_token", "check_mfu", "check_precision_choice", "check_shard"]


def _reference_shard(order: list[int], rank: int, world_size: int) -> list[int]:
    from ..distributed import ShardSampler

    sampler = ShardSampler(len(order), shuffle=False, rank=rank, world_size=world_size)
    return [order[i] for i in sampler]


def check_precision_choice(fn: Callable[[int, int], Any], quiet: bool = False) -> CheckResult:
    """`fn(major, minor)` -> the autocast dtype for a CUDA GPU of that compute capability.

    Introduced in notebooks/10_scaling_up.ipynb.
    """
    from ..scaling import dtype_for_capability

    caps = [(6, 1), (7, 0), (7, 5), (8, 0), (8, 6), (8, 9), (9, 0), (10, 0)]
    return check_function(
        fn, dtype_for_capability, lambda rng: caps[rng.randrange(len(caps))],
        name="precision_choice", trials=12, quiet=quiet,
        hint="bf16 needs compute capability 8.0 (Ampere) or newer; older GPUs such as the T4 (7.5) "
             "get torch.float16 (with a GradScaler)",
    )


def check_flops_per_token(fn: Callable[[Any, int], Any], quiet: bool = False) -> CheckResult:
    """`fn(config, seq_len)` -> training FLOPs per token, 6 N + 12 L T C.

    Introduced in notebooks/10_scaling_up.ipynb.
    """
    from ..model import GPTConfig
    from ..scaling import flops_per_token

    def make_inputs(rng: random.Random) -> tuple[GPTConfig, int]:
        n_head = rng.choice([1, 2, 4, 12])
        cfg = GPTConfig(vocab_size=rng.randint(50, 60000), n_positions=rng.choice([64, 256, 1024]),
                        n_embd=n_head * rng.choice([8, 16, 64]), n_layer=rng.randint(1, 24), n_head=n_head)
        return cfg, rng.randint(1, cfg.n_positions)

    return check_function(
        fn, flops_per_token, make_inputs, name="flops_per_token", quiet=quiet,
        hint="N = scaling.non_embedding_params(config) (blocks, ln_f and the tied head, no position "
             "table); then 6 * N + 12 * n_layer * seq_len * n_embd",
    )


def check_mfu(fn: Callable[[float, float, float], Any], quiet: bool = False) -> CheckResult:
    """`fn(tokens_per_s, flops_per_token, peak_flops)` -> model FLOPs utilisation (a fraction).

    Introduced in notebooks/10_scaling_up.ipynb.
    """
    from ..scaling import mfu

    def make_inputs(rng: random.Random) -> tuple[float, float, float]:
        return rng.uniform(1e3, 5e5), rng.uniform(1e8, 1e10), rng.choice([65e12, 121e12, 312e12, 989e12])

    return check_function(
        fn, mfu, make_inputs, name="mfu", quiet=quiet,
        hint="achieved FLOP/s is tokens_per_s * flops_per_token; divide by the peak (a fraction, not %)",
    )


def check_shard(fn: Callable[[list[int], int, int], Any], quiet: bool = False) -> CheckResult:
    """`fn(global_order, rank, world_size)` -> the samples this rank trains on, round-robin.

    Introduced in notebooks/10_scaling_up.ipynb.
    """

    def make_inputs(rng: random.Random) -> tuple[list[int], int, int]:
        world = rng.randint(1, 5)
        order = rng.sample(range(1000), rng.randint(world, 40))
        return order, rng.randrange(world), world

    return check_function(
        fn, _reference_shard, make_inputs, name="shard", trials=8, quiet=quiet,
        hint="rank r takes positions r, r + world_size, r + 2 * world_size, ... of the global order, "
             "and every rank keeps only len(order) // world_size of them so all take the same steps",
    )
