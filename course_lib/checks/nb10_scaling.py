"""Checks for the exercises of notebooks/10_scaling_up.ipynb.

Each is an `Exercise` (see `course_lib.checks._core`): fixed cases for the classic
mistakes, then seeded random inputs, against the course's own function.

Introduced in notebooks/10_scaling_up.ipynb.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from ._core import Case, CheckResult, Exercise, Mistake, as_number, describe

__all__ = ["check_flops_per_token", "check_hours_to_train", "check_padded_vocab", "check_shard"]


def _reference_shard(order: list[int], rank: int, world_size: int) -> list[int]:
    from ..distributed import ShardSampler

    sampler = ShardSampler(len(order), shuffle=False, rank=rank, world_size=world_size)
    return [order[i] for i in sampler]


def _solution_shard(global_order: list[int], rank: int, world_size: int) -> list[int]:
    """Round-robin: every world_size-th sample from position rank, the ragged tail dropped."""
    per_rank = len(global_order) // world_size  # every rank takes the same number of steps
    return global_order[rank::world_size][:per_rank]


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


def _ref_hours_to_train(n_tokens: int, flops_per_token: float, peak_flops: float, mfu: float,
                        n_gpus: int) -> float:
    """MFU turned around: the FLOPs the run needs over the FLOP/s the GPUs deliver, in hours."""
    total_flops = n_tokens * flops_per_token                    # what the training run computes
    achieved = n_gpus * peak_flops * mfu                        # FLOP/s: every GPU at that share of its peak
    return total_flops / achieved / 3600                        # seconds -> hours


def _hours_variant(gpus: bool = True, to_hours: bool = True, divide_mfu: bool = True) -> Callable[..., float]:
    def wrong(n_tokens, flops_per_token, peak_flops, mfu, n_gpus):
        rate = (n_gpus if gpus else 1) * peak_flops * (mfu if divide_mfu else 1 / mfu)
        return n_tokens * flops_per_token / rate / (3600 if to_hours else 1)

    return wrong


def _hours_inputs(rng: random.Random) -> tuple[int, float, float, float, int]:
    return (rng.choice([10**6, 10**8, 10**9, 10**10, 3 * 10**11]) * rng.randint(1, 9), rng.uniform(1e8, 1e10),
            rng.choice([65e12, 121e12, 312e12, 989e12]), round(rng.uniform(0.05, 0.6), 3), rng.choice([1, 2, 4, 8, 64]))


HOURS_TO_TRAIN = Exercise(
    name="hours_to_train",
    reference=_ref_hours_to_train,
    make_inputs=_hours_inputs,
    hints=(
        "turn the utilisation around: the run needs a number of FLOPs, and the GPUs deliver FLOPs per second; "
        "the time is the one divided by the other",
        "the run computes the tokens times the FLOPs per token; every GPU delivers its peak times the "
        "utilisation, a fraction, and all of them work at once; the quotient is in seconds, and an hour has "
        "3,600 of them",
    ),
    cases=(
        Case("GPT-2 124M on ten billion tokens, eight A100s at 40 percent",
             (10_000_000_000, 8.6e8, 312e12, 0.4, 8)),
        Case("one H100 at 30 percent", (1_000_000_000, 1e9, 989e12, 0.3, 1)),
        Case("a T4 at a low utilisation", (50_000_000, 2.5e8, 65e12, 0.1, 1)),
    ),
    mistakes=(
        Mistake("the GPUs not counted: they share the work, so more GPUs take less time", _hours_variant(gpus=False)),
        Mistake("the time left in seconds instead of hours", _hours_variant(to_hours=False)),
        Mistake("the utilisation multiplied instead of divided: a lower utilisation must take longer",
                _hours_variant(divide_mfu=False)),
    ),
    contract=_a_number,
    atol=0.0,  # a short run is a small number of hours: judge it relatively only
    noun="time",
)


def check_hours_to_train(fn: Callable[[int, float, float, float, int], Any], quiet: bool = False) -> CheckResult:
    """`fn(n_tokens, flops_per_token, peak_flops, mfu, n_gpus)` -> hours of training at that utilisation."""
    return HOURS_TO_TRAIN.check(fn, quiet=quiet)


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
