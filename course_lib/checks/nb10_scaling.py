"""Checks for the exercises of notebooks/10_scaling_up.ipynb.

Each is an `Exercise` (see `course_lib.checks._core`): fixed cases for the classic
mistakes, then seeded random inputs, against the course's own function.

Introduced in notebooks/10_scaling_up.ipynb.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import Any

from ._core import Case, CheckResult, Exercise, Mistake, as_number, describe, values_equal

__all__ = ["check_flops_per_token", "check_mfu_from_step", "check_padded_vocab", "check_shard"]


def _reference_shard(order: list[int], rank: int, world_size: int) -> list[int]:
    from ..distributed import ShardSampler

    sampler = ShardSampler(len(order), shuffle=False, rank=rank, world_size=world_size)
    return [order[i] for i in sampler]


def _solution_shard(global_order: list[int], rank: int, world_size: int) -> list[int]:
    """Round-robin: every world_size-th sample from position rank, the ragged tail dropped."""
    per_rank = len(global_order) // world_size  # every rank takes the same number of steps
    return global_order[rank::world_size][:per_rank]


def _solution_mfu_from_step(ms_per_step: float, tokens_per_step: int, flops_per_token: float,
                            peak_flops: float) -> float:
    """Tokens per second from one step's milliseconds, times FLOPs per token, over the peak: a fraction."""
    tokens_per_s = tokens_per_step / (ms_per_step / 1000)
    return tokens_per_s * flops_per_token / peak_flops


def _solution_padded_vocab(vocab_size: int, multiple: int) -> int:
    """Round up to the next multiple; a size that already is one stays."""
    return (vocab_size + multiple - 1) // multiple * multiple


def _a_number(got: Any) -> str | None:
    if as_number(got) is None:
        return f"your result is {describe(got, 80)} (a {type(got).__name__}); return a number"
    return None


def _list_of_samples(got: Any) -> str | None:
    if not isinstance(got, (list, tuple)):
        return f"your result is a {type(got).__name__}; return a list of the samples this rank trains on"
    return None


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
        "count the parameters that multiply for every token: in each block the four weight matrices "
        "(query, key and value together are three width by width, the attention output one, the MLP's two "
        "are four width by width each), their biases and two LayerNorms; then the final LayerNorm and the "
        "output head, which shares the token embedding. The position table is only looked up, so leave it out",
        "six times that count, plus twelve times layers times sequence length times width for the attention "
        "scores, with the sequence length you are given rather than the model's context",
    ),
    cases=(
        Case("GPT-2 small at 1024 tokens",
             lambda: (_config(vocab_size=50257, n_positions=1024, n_embd=768, n_layer=12, n_head=12), 1024)),
        Case("GPT-2 small at 128 tokens",
             lambda: (_config(vocab_size=50257, n_positions=1024, n_embd=768, n_layer=12, n_head=12), 128)),
        Case("a tiny model", lambda: (_config(vocab_size=65, n_positions=64, n_embd=32, n_layer=2, n_head=2), 1)),
    ),
    mistakes=(Mistake("the attention term computed with n_positions instead of the sequence length",
                      lambda config, seq_len: _solution_flops_per_token(config, config.n_positions)),),
    contract=_a_number,
)


def check_flops_per_token(fn: Callable[[Any, int], Any], quiet: bool = False) -> CheckResult:
    """`fn(config, seq_len)` -> training FLOPs per token, 6 N + 12 L T C."""
    return FLOPS_PER_TOKEN.check(fn, quiet=quiet)


def _mfu_from_step(ms_per_step: float, tokens_per_step: int, flops_per_token: float,
                   peak_flops: float) -> float | None:
    from ..scaling import mfu

    return mfu(tokens_per_step / (ms_per_step / 1000), flops_per_token, peak_flops)


def _judge_mfu_from_step(got: Any, expected: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[bool, str]:
    """Compare as numbers; when the ratio gives the mistake away, say which one."""
    ok, why = values_equal(got, expected, 1e-4, 0.0, "utilisation")
    value = as_number(got)
    if ok or value is None or not expected:
        return ok, why
    ms = (list(args) + [kwargs.get("ms_per_step")])[0]
    ratio = value / expected
    tells = [(1e-3, "a thousand times too small: milliseconds used as seconds?"),
             (1e2, "a hundred times too big: a percentage instead of a fraction?")]
    if isinstance(ms, (int, float)) and ms > 0:
        tells.append(((ms / 1000) ** 2, "off by the step time squared: multiplied by the time instead of divided?"))
    for factor, tell in tells:
        if math.isclose(ratio, factor, rel_tol=1e-3):
            return False, f"{why} ({tell})"
    return False, why


MFU_FROM_STEP = Exercise(
    name="mfu_from_step",
    reference=_mfu_from_step,
    solution=_solution_mfu_from_step,
    make_inputs=lambda rng: (rng.uniform(20.0, 3000.0), rng.choice([512, 4096, 16384, 65536, 524288]),
                             rng.uniform(1e8, 1e10), rng.choice([65e12, 121e12, 312e12, 989e12])),
    hints=(
        "the ladder's table gives milliseconds per step; utilisation needs the FLOPs per second you achieve, "
        "which starts from the tokens you train per second",
        "a step trains its tokens in its milliseconds, and a second holds a thousand milliseconds; tokens per "
        "second times FLOPs per token is what you achieve, and divided by the peak it is a fraction between "
        "zero and one, not a percentage",
    ),
    cases=(
        Case("a quarter-second step on an A100", (250.0, 16384, 7.5e8, 312e12)),
        Case("half a million tokens a step on an H100", (250.0, 524288, 7.7e8, 989e12)),
        Case("a 40 ms step", (40.0, 4096, 1e9, 65e12)),
    ),
    contract=_a_number,
    judge=_judge_mfu_from_step,
    noun="utilisation",
)


def check_mfu_from_step(fn: Callable[[float, int, float, float], Any], quiet: bool = False) -> CheckResult:
    """`fn(ms_per_step, tokens_per_step, flops_per_token, peak_flops)` -> MFU as a fraction."""
    return MFU_FROM_STEP.check(fn, quiet=quiet)


def _padded_vocab(vocab_size: int, multiple: int) -> int:
    from ..ladder import padded_vocab

    return padded_vocab(vocab_size, multiple)


def _a_whole_number(got: Any) -> str | None:
    value = as_number(got)
    if value is None or float(value) != int(value):
        return f"your result is {describe(got, 80)}; a vocabulary size is a whole number"
    return None


def _vocab_inputs(rng: random.Random) -> tuple[int, int]:
    multiple = rng.choice([8, 16, 64, 128, 256, 1024])
    if rng.random() < 0.25:  # sometimes already a multiple
        return multiple * rng.randint(1, 300), multiple
    return rng.randint(1, 260000), multiple


PADDED_VOCAB = Exercise(
    name="padded_vocab",
    reference=_padded_vocab,
    solution=_solution_padded_vocab,
    make_inputs=_vocab_inputs,
    hints=(
        "the padded size is the smallest multiple that still holds every token: never smaller than the "
        "vocabulary, and no bigger than it needs to be",
        "count how many whole tiles of that size the vocabulary needs, rounding any partly filled tile up "
        "to a whole one, then multiply back; a vocabulary that fills its tiles exactly stays the same",
    ),
    cases=(
        Case("GPT-2's vocabulary, multiple 64", (50257, 64)),
        Case("a vocabulary that is already a multiple", (50304, 64)),
        Case("one token past a multiple", (129, 64)),
        Case("a multiple of one", (50257, 1)),
    ),
    mistakes=(
        Mistake("rounding to the nearest multiple instead of up",
                lambda vocab_size, multiple: round(vocab_size / multiple) * multiple),
        Mistake("a whole tile added to a size that already is a multiple",
                lambda vocab_size, multiple: (vocab_size // multiple + 1) * multiple),
    ),
    contract=_a_whole_number,
    noun="vocabulary size",
)


def check_padded_vocab(fn: Callable[[int, int], Any], quiet: bool = False) -> CheckResult:
    """`fn(vocab_size, multiple)` -> the vocabulary size rounded up to a multiple of `multiple`."""
    return PADDED_VOCAB.check(fn, quiet=quiet)


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
        Case("ten samples on three ranks", (list(range(10, 20)), 0, 3)),
        Case("samples whose values are not their positions", ([42, 7, 13, 99, 5, 61], 0, 2)),
        Case("the last rank", ([3, 1, 4, 1, 5, 9, 2, 6], 3, 4)),
        Case("a single rank", ([8, 6, 7], 0, 1)),
    ),
    mistakes=(
        Mistake("the ragged tail kept, so some ranks get one sample more than others",
                lambda global_order, rank, world_size: global_order[rank::world_size]),
        Mistake("the positions of the samples returned instead of the samples",
                lambda global_order, rank, world_size: _solution_shard(list(range(len(global_order))), rank,
                                                                       world_size)),
    ),
    contract=_list_of_samples,
    noun="samples",
)


def check_shard(fn: Callable[[list[int], int, int], Any], quiet: bool = False) -> CheckResult:
    """`fn(global_order, rank, world_size)` -> the samples this rank trains on, round-robin."""
    return SHARD.check(fn, quiet=quiet)
