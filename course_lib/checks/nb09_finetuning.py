"""Checks for the exercises of notebooks/09_fine_tuning.ipynb: LoRA by hand, masked labels, memory.

Each check runs the learner's function against the reference on fixed cases for the
classic mistakes, then seeded random inputs;
prints ✓ / ✗ (with a hint) / … (not done yet), never raises, and returns a callable
that is the learner's function when it passed and the reference otherwise.

Introduced in notebooks/09_fine_tuning.ipynb.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import torch

from ._core import Case, CheckResult, Exercise, Mistake, as_number, describe

__all__ = [
    "check_lora_forward",
    "check_lora_param_count",
    "check_masked_labels",
    "check_merge_lora_weight",
    "check_training_bytes",
    "reference_lora_forward",
    "reference_lora_param_count",
    "reference_masked_labels",
    "reference_merge_lora_weight",
    "reference_training_bytes",
]


def reference_lora_forward(x: torch.Tensor, W: torch.Tensor, b: torch.Tensor, A: torch.Tensor,
                           B: torch.Tensor, alpha: float) -> torch.Tensor:
    """x (..., in), W (out, in), b (out,), A (r, in), B (out, r) -> (..., out).
    """
    r = A.shape[0]
    return x @ W.t() + b + (alpha / r) * (x @ A.t()) @ B.t()


def reference_lora_param_count(n_layer: int, shapes: list[tuple[int, int]], r: int) -> int:
    """Trainable numbers when every layer gets rank-r adapters on Linear layers of (in, out) `shapes`.
    """
    return n_layer * sum(r * (fan_in + fan_out) for fan_in, fan_out in shapes)


def reference_merge_lora_weight(W: torch.Tensor, A: torch.Tensor, B: torch.Tensor, alpha: float) -> torch.Tensor:
    """The merged weight W + (alpha / r) B A, shaped like W (out, in).
    """
    return W + (alpha / A.shape[0]) * (B @ A)


def _lora_inputs(rng: random.Random, with_x: bool) -> dict:
    fan_in, fan_out, r = rng.randint(3, 12), rng.randint(3, 12), rng.randint(1, 4)
    alpha = float(rng.choice([1, 2, 8, 16, 32]))
    if alpha == r:  # make sure a missing alpha / r shows
        alpha *= 2
    d = {"W": torch.randn(fan_out, fan_in), "A": torch.randn(r, fan_in), "B": torch.randn(fan_out, r),
         "alpha": alpha}
    if with_x:
        d = {"x": torch.randn(rng.randint(1, 3), rng.randint(1, 5), fan_in), **d,
             "b": torch.randn(fan_out)}
        d = {k: d[k] for k in ("x", "W", "b", "A", "B", "alpha")}
    return d


def _lora(fan_in: int, fan_out: int, r: int, alpha: float, x_shape: tuple[int, ...] | None) -> dict:
    d = {"W": torch.randn(fan_out, fan_in), "A": torch.randn(r, fan_in), "B": torch.randn(fan_out, r),
         "alpha": alpha}
    if x_shape is None:
        return d
    return {"x": torch.randn(*x_shape, fan_in), "W": d["W"], "b": torch.randn(fan_out), "A": d["A"],
            "B": d["B"], "alpha": alpha}


def _whole_number(got: Any) -> str | None:
    value = as_number(got)
    if value is None or float(value) != int(value):
        return f"your result is {describe(got, 80)}; return a whole number, the count"
    return None


LORA_FORWARD = Exercise(
    name="lora_forward",
    reference=reference_lora_forward,
    make_inputs=lambda rng: _lora_inputs(rng, with_x=True),
    hints=(
        "the output is the frozen layer's output (weight and bias) plus a low-rank update: x goes down "
        "to r numbers through A, back up through B, and the update is scaled",
        "the scale is alpha divided by r, the rank (the number of rows of A); A has shape r by in and B "
        "has shape out by r, so x meets A transposed first and then B transposed",
    ),
    cases=(
        Case("alpha 8, rank 2", lambda: _lora(5, 3, 2, 8.0, (1, 2))),
        Case("in, out and r all different", lambda: _lora(4, 6, 3, 6.0, (2, 3))),
        Case("rank one, a batch of sequences", lambda: _lora(7, 2, 1, 16.0, (3, 4))),
    ),
    mistakes=(Mistake("the update not scaled by alpha over r", lambda x, W, b, A, B, alpha:
                      reference_lora_forward(x, W, b, A, B, A.shape[0])),),
    noun="output",
)


def check_lora_forward(fn: Callable[..., torch.Tensor], quiet: bool = False) -> CheckResult:
    """Check `fn(x, W, b, A, B, alpha)`: the output of a Linear layer with a LoRA update.
    """
    return LORA_FORWARD.check(fn, quiet=quiet)


def _count_inputs(rng: random.Random) -> dict:
    n_embd = rng.choice([32, 64, 768, 1024])
    shapes = rng.sample([(n_embd, 3 * n_embd), (n_embd, n_embd), (n_embd, 4 * n_embd),
                         (4 * n_embd, n_embd)], rng.randint(1, 4))
    return {"n_layer": rng.randint(1, 48), "shapes": shapes, "r": rng.choice([1, 2, 4, 8, 16, 64])}


LORA_PARAM_COUNT = Exercise(
    name="lora_param_count",
    reference=reference_lora_param_count,
    make_inputs=_count_inputs,
    hints=(
        "only the adapters train: each adapted Linear layer gets two thin matrices, A and B, in every block",
        "for a Linear layer from in to out, A is r by in and B is out by r: r times (in plus out) numbers, "
        "not in times out. Add that up over the adapted layers, then multiply by the number of blocks",
    ),
    cases=(
        Case("GPT-2 small, r = 8 on c_attn", (12, [(768, 2304)], 8)),
        Case("one layer of 3 by 5, rank one", (1, [(3, 5)], 1)),
        Case("several adapted layers in every block", (2, [(4, 4), (4, 16)], 2)),
    ),
    contract=_whole_number,
)


def check_lora_param_count(fn: Callable[..., int], quiet: bool = False) -> CheckResult:
    """Check `fn(n_layer, shapes, r)`: how many numbers LoRA trains.
    """
    return LORA_PARAM_COUNT.check(fn, quiet=quiet)


MERGE_LORA_WEIGHT = Exercise(
    name="merge_lora_weight",
    reference=reference_merge_lora_weight,
    make_inputs=lambda rng: _lora_inputs(rng, with_x=False),
    hints=(
        "merging folds the scaled low-rank update into the weight, so the layer needs no adapters at "
        "inference; the result has the shape of W",
        "W is out by in, so the update is B times A (out by r times r by in), scaled by alpha over r. "
        "Return a new tensor and leave W as it was",
    ),
    cases=(
        Case("alpha 8, rank 2, in and out different", lambda: _lora(5, 3, 2, 8.0, None)),
        Case("rank one", lambda: _lora(4, 6, 1, 2.0, None)),
        Case("a square weight", lambda: _lora(4, 4, 3, 12.0, None)),
    ),
    mistakes=(Mistake("the update scaled by alpha alone instead of alpha over r",
                      lambda W, A, B, alpha: W + alpha * (B @ A)),),
    noun="merged weight",
)


def check_merge_lora_weight(fn: Callable[..., torch.Tensor], quiet: bool = False) -> CheckResult:
    """Check `fn(W, A, B, alpha)`: the weight with the LoRA update folded in.
    """
    return MERGE_LORA_WEIGHT.check(fn, quiet=quiet)


def reference_masked_labels(prompt_ids: list[int], response_ids: list[int], length: int,
                            pad_id: int) -> tuple[list[int], list[int]]:
    """(input_ids, labels), each `length` long: prompt then response then padding; labels -100 but on the response.
    """
    ids = list(prompt_ids) + list(response_ids)
    pad = length - len(ids)
    labels = [-100] * len(prompt_ids) + list(response_ids) + [-100] * pad
    return ids + [pad_id] * pad, labels


def _labels_inputs(rng: random.Random) -> dict:
    prompt = [rng.randrange(3, 500) for _ in range(rng.randint(1, 8))]
    response = [rng.randrange(3, 500) for _ in range(rng.randint(1, 5))]
    return {"prompt_ids": prompt, "response_ids": response,
            "length": len(prompt) + len(response) + rng.randint(0, 4), "pad_id": rng.choice([0, 1, 2])}


def _labels_contract(got: Any) -> str | None:
    if not (isinstance(got, (tuple, list)) and len(got) == 2):
        return f"your result is {describe(got, 80)}; return a pair: the input ids and the labels"
    return None


def _shifted_labels(prompt_ids: list[int], response_ids: list[int], length: int,
                    pad_id: int) -> tuple[list[int], list[int]]:
    ids, labels = reference_masked_labels(prompt_ids, response_ids, length, pad_id)
    return ids, labels[1:] + [-100]


MASKED_LABELS = Exercise(
    name="masked_labels",
    reference=reference_masked_labels,
    make_inputs=_labels_inputs,
    hints=(
        "the model reads the prompt, the response and the padding, but should be graded on the response "
        "only: every other position gets the label the loss ignores, minus one hundred",
        "the labels line up with the input ids, position by position; the model shifts them itself, so do "
        "not shift them. Padding is filled with the pad id in the input and ignored in the labels",
    ),
    cases=(
        Case("no padding",
             {"prompt_ids": [5, 6, 7], "response_ids": [8, 9], "length": 5, "pad_id": 0}),
        Case("three padding positions",
             {"prompt_ids": [11, 12], "response_ids": [13], "length": 6, "pad_id": 0}),
        Case("a one-token prompt and a longer response",
             {"prompt_ids": [40], "response_ids": [41, 42, 43], "length": 5, "pad_id": 2}),
    ),
    contract=_labels_contract,
    mistakes=(
        Mistake("the labels shifted by one; the model shifts them itself",
                lambda prompt_ids, response_ids, length, pad_id: _shifted_labels(prompt_ids, response_ids, length,
                                                                                 pad_id)),
        Mistake("the padding labelled with the pad id, so the model learns to write padding",
                lambda prompt_ids, response_ids, length, pad_id: (
                    reference_masked_labels(prompt_ids, response_ids, length, pad_id)[0],
                    [-100] * len(prompt_ids) + reference_masked_labels(prompt_ids, response_ids, length,
                                                                       pad_id)[0][len(prompt_ids):])),
    ),
    noun="input ids and labels",
)


def check_masked_labels(fn: Callable[..., tuple[list[int], list[int]]], quiet: bool = False) -> CheckResult:
    """Check `fn(prompt_ids, response_ids, length, pad_id)`: input ids and labels with the prompt masked.
    """
    return MASKED_LABELS.check(fn, quiet=quiet)


def reference_training_bytes(n_params: int, n_trainable: int, bytes_per_number: int) -> int:
    """Bytes of weights, gradients and AdamW's two moments when `n_trainable` of `n_params` train.
    """
    return bytes_per_number * (n_params + 3 * n_trainable)


def _bytes_inputs(rng: random.Random) -> dict:
    n = rng.choice([10_000, 667_136, 124_439_808, 354_823_168])
    return {"n_params": n, "n_trainable": rng.choice([n, n // rng.choice([10, 100, 400])]),
            "bytes_per_number": rng.choice([2, 4])}


TRAINING_BYTES = Exercise(
    name="training_bytes",
    reference=reference_training_bytes,
    make_inputs=_bytes_inputs,
    hints=(
        "every weight sits in memory, frozen or not; only the trainable ones also get a gradient and "
        "the optimizer state. Leave out AdamW's tiny step counters",
        "AdamW keeps two running averages per trainable number, the first and the second moment, each the "
        "size of that parameter; a gradient is one more copy. Multiply the count of numbers by the bytes "
        "each takes",
    ),
    cases=(
        Case("full fine-tuning in float32",
             {"n_params": 1000, "n_trainable": 1000, "bytes_per_number": 4}),
        Case("LoRA in float32: 10 trainable numbers of 1,000",
             {"n_params": 1000, "n_trainable": 10, "bytes_per_number": 4}),
        Case("half precision",
             {"n_params": 500, "n_trainable": 100, "bytes_per_number": 2}),
    ),
    contract=_whole_number,
    noun="byte count",
)


def check_training_bytes(fn: Callable[..., int], quiet: bool = False) -> CheckResult:
    """Check `fn(n_params, n_trainable, bytes_per_number)`: weights, gradients and AdamW state in bytes.
    """
    return TRAINING_BYTES.check(fn, quiet=quiet)
