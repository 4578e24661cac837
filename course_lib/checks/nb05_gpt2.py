"""Checks for notebooks/05_gpt2_model.ipynb: parameter counts (tied and untied head) and the
next-token loss.

Introduced in notebooks/05_gpt2_model.ipynb.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from ..model import GPTConfig, count_parameters
from ._core import Case, CheckResult, Exercise, Mistake, as_number, describe, values_equal

__all__ = [
    "check_parameter_count",
    "check_untied_parameter_count",
    "check_lm_loss",
]


def _randn(*shape: int, scale: float = 1.0) -> torch.Tensor:
    return torch.randn(*shape) * scale  # the check seeds torch before each case


def _config_inputs(rng: random.Random) -> tuple[GPTConfig]:
    n_head = rng.choice([1, 2, 3, 4, 12])
    return (GPTConfig(vocab_size=rng.randint(10, 60000), n_positions=rng.randint(8, 2048),
                      n_embd=n_head * rng.choice([8, 16, 64]), n_layer=rng.randint(1, 12), n_head=n_head),)


def _solution_parameter_count(config: GPTConfig) -> int:
    """Embeddings, then per block two LayerNorms, attention and MLP, then ln_f; the head is tied."""
    V, T, C, L = config.vocab_size, config.n_positions, config.n_embd, config.n_layer
    embeddings = V * C + T * C  # wte, wpe
    per_block = (
        2 * (2 * C)  # ln_1, ln_2: weight and bias each
        + C * 3 * C + 3 * C  # attn.c_attn
        + C * C + C  # attn.c_proj
        + C * 4 * C + 4 * C  # mlp.c_fc
        + 4 * C * C + C  # mlp.c_proj
    )
    return embeddings + L * per_block + 2 * C  # + ln_f; lm_head shares wte


def _whole_number(got: Any) -> str | None:
    value = as_number(got)
    if value is None or float(value) != int(value):
        return f"your result is {describe(got, 80)}; return a whole number"
    return None


PARAMETER_COUNT = Exercise(
    name="parameter_count",
    reference=count_parameters,
    solution=_solution_parameter_count,
    make_inputs=_config_inputs,
    hints=(
        "count piece by piece: the two embedding tables, the same set of layers in every block, the final "
        "LayerNorm; the output head shares its matrix with the token embedding",
        "a Linear layer from a to b has a times b weights plus b biases; a LayerNorm over C channels has "
        "two C numbers. Each block has two LayerNorms, the attention's two Linear layers (C to three C, "
        "C to C) and the MLP's two (C to four C, four C to C). Count the tied head once",
    ),
    cases=(
        Case("GPT-2 small",
             (GPTConfig(vocab_size=50257, n_positions=1024, n_embd=768, n_layer=12, n_head=12),)),
        Case("a tiny model with a long context",
             (GPTConfig(vocab_size=10, n_positions=2048, n_embd=8, n_layer=1, n_head=1),)),
        Case("several layers", (GPTConfig(vocab_size=100, n_positions=16, n_embd=24, n_layer=5, n_head=3),)),
    ),
    contract=_whole_number,
)


def check_parameter_count(fn: Callable[[GPTConfig], int], quiet: bool = False) -> CheckResult:
    """`fn(config)` returns the number of parameters of `GPT(config)` (the tied head counted once).
    """
    return PARAMETER_COUNT.check(fn, quiet=quiet)


def _ref_untied_parameter_count(config: GPTConfig) -> int:
    """GPT(config) with its own output head (no bias): the tied count plus one vocab-by-width matrix."""
    return count_parameters(config) + config.vocab_size * config.n_embd


UNTIED_PARAMETER_COUNT = Exercise(
    name="untied_parameter_count",
    reference=_ref_untied_parameter_count,
    make_inputs=_config_inputs,
    hints=(
        "untying gives the output head a matrix of its own instead of sharing the token embedding's; "
        "everything else in the model stays as it is",
        "the head maps the width of the stream to one score per vocabulary entry and has no bias; add "
        "that many numbers to the count of the tied model, and nothing for the position table",
    ),
    cases=(
        Case("GPT-2 small", (GPTConfig(vocab_size=50257, n_positions=1024, n_embd=768,
                                                         n_layer=12, n_head=12),)),
        Case("a tiny model", (GPTConfig(vocab_size=10, n_positions=8, n_embd=4, n_layer=1, n_head=1),)),
        Case("a long context",
             (GPTConfig(vocab_size=100, n_positions=2048, n_embd=16, n_layer=2, n_head=2),)),
    ),
    contract=_whole_number,
)


def check_untied_parameter_count(fn: Callable[[GPTConfig], int], quiet: bool = False) -> CheckResult:
    """`fn(config)` returns the number of parameters of `GPT(config)` with an untied, bias-free output head.
    """
    return UNTIED_PARAMETER_COUNT.check(fn, quiet=quiet)


def _ref_lm_loss(logits: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
    """Position t is scored on token t + 1: drop the last logits and the first ids."""
    V = logits.size(-1)
    return F.cross_entropy(logits[:, :-1].reshape(-1, V), input_ids[:, 1:].reshape(-1))


def _loss_inputs(rng: random.Random) -> tuple[torch.Tensor, torch.Tensor]:
    B, T, V = rng.randint(1, 3), rng.randint(2, 9), rng.randint(5, 40)
    return torch.randn(B, T, V) * 3, torch.randint(0, V, (B, T))


def _scalar_tensor(got: Any) -> str | None:
    if not isinstance(got, torch.Tensor):
        return (f"your loss is a {type(got).__name__}; return it as a tensor with a single number "
                "(training calls backward on it)")
    if got.numel() != 1:
        return f"your loss has shape {tuple(got.shape)}; it must be a single number, the mean over all positions"
    return None


def _close_numbers(got: Any, expected: Any) -> tuple[bool, str]:
    return values_equal(as_number(got), as_number(expected), rtol=1e-5, atol=1e-6, noun="loss")


LM_LOSS = Exercise(
    name="lm_loss",
    reference=_ref_lm_loss,
    make_inputs=_loss_inputs,
    hints=(
        "the logits at position t predict the token at position t plus one, so predictions and "
        "targets are shifted by one against each other",
        "leave out the logits of the last position (nothing follows it) and the first token (nothing "
        "predicts it), flatten batch and time together, and take the mean cross-entropy",
    ),
    cases=(
        Case("one row of two tokens",
             lambda: (_randn(1, 2, 5, scale=3), torch.tensor([[1, 4]]))),
        Case("two rows of four tokens",
             lambda: (_randn(2, 4, 6, scale=3), torch.tensor([[0, 1, 2, 3], [5, 4, 3, 2]]))),
        Case("three rows of six tokens",
             lambda: (_randn(3, 6, 7, scale=2), torch.randint(0, 7, (3, 6)))),
    ),
    mistakes=(
        Mistake("each position scored on its own token instead of the next one",
                lambda logits, ids: F.cross_entropy(logits.flatten(0, 1), ids.flatten())),
        Mistake("the sum over the predictions instead of their mean",
                lambda logits, ids: F.cross_entropy(logits[:, :-1].flatten(0, 1), ids[:, 1:].flatten(),
                                                    reduction="sum")),
    ),
    contract=_scalar_tensor,
    compare=_close_numbers,
    noun="loss",
)


def check_lm_loss(fn: Callable[[torch.Tensor, torch.Tensor], Any], quiet: bool = False) -> CheckResult:
    """`fn(logits, input_ids)` is the next-token loss: position t is scored on token t + 1."""
    return LM_LOSS.check(fn, quiet=quiet)
