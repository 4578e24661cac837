"""Checks for notebooks/09_fine_tuning.ipynb: the two LoRA pieces the learner writes, then the exercises.

The pieces: the ``forward`` of ``LoRALinear`` (a frozen layer plus a scaled low-rank update; the
constructor, with peft's initialisation, is given; `check_lora_linear`, a `ModuleExercise`) and
``replace_linear_with_lora(model, targets, r, alpha)`` (freeze the model, wrap every Linear or
Conv1D layer named in `targets`; `check_replace_linear_with_lora`). The references here are what
the notebook's collapsed reference cells show; the library's version is `course_lib.lora`.
The exercises at the end: `check_masked_labels`, `check_optimizer_state_numbers`,
`check_lora_param_count`, `check_dora_weight`.

Introduced in notebooks/09_fine_tuning.ipynb.
"""

from __future__ import annotations

import copy
import math
import random
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import torch
from torch import nn

from ..model import GPT, GPTConfig
from ._core import Build, Case, CheckResult, Exercise, Mistake, ModuleExercise, PieceProblem, as_number, describe

__all__ = [
    "check_lora_linear",
    "check_replace_linear_with_lora",
    "check_masked_labels",
    "check_optimizer_state_numbers",
    "check_lora_param_count",
    "check_dora_weight",
    "reference_masked_labels",
    "reference_optimizer_state_numbers",
    "reference_lora_param_count",
    "reference_dora_weight",
]


def _conv1d(fan_in: int, fan_out: int) -> nn.Module:
    """transformers' Conv1D (GPT-2's layers in transformers): weight stored (in, out)."""
    from transformers.pytorch_utils import Conv1D

    layer = Conv1D(fan_out, fan_in)
    with torch.no_grad():
        layer.weight.normal_()
        layer.bias.normal_()
    return layer


# --------------------------------------------------------------------- piece 1: the LoRA layer
class LoRALinear(nn.Module):
    """A frozen layer plus a trainable low-rank update: base(x) + (alpha / r) · x Aᵀ Bᵀ."""

    def __init__(self, base, r=8, alpha=16, dropout=0.0):
        super().__init__()
        if isinstance(base, nn.Linear):
            fan_in, fan_out = base.in_features, base.out_features
        else:                                                   # transformers' Conv1D stores its weight (in, out)
            fan_in, fan_out = base.weight.shape
        like = {"device": base.weight.device, "dtype": base.weight.dtype}
        self.base = base.requires_grad_(False)                  # the pretrained layer, frozen
        self.r, self.alpha, self.scaling = r, alpha, alpha / r
        self.lora_A = nn.Parameter(torch.empty(r, fan_in, **like))   # (r, in): random, as peft draws it
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        self.lora_B = nn.Parameter(torch.zeros(fan_out, r, **like))  # (out, r): zero, so no change at the start
        self.lora_dropout = nn.Dropout(dropout)                 # on the update's input only

    def forward(self, x):
        update = (self.lora_dropout(x) @ self.lora_A.T) @ self.lora_B.T   # (..., in) -> (..., r) -> (..., out)
        return self.base(x) + self.scaling * update                       # (..., out)


class _NotScaled(LoRALinear):
    def forward(self, x):
        return self.base(x) + (self.lora_dropout(x) @ self.lora_A.T) @ self.lora_B.T


class _ScaledByAlpha(LoRALinear):
    def forward(self, x):
        return self.base(x) + self.alpha * (self.lora_dropout(x) @ self.lora_A.T) @ self.lora_B.T


class _DropoutOnBoth(LoRALinear):
    def forward(self, x):
        x = self.lora_dropout(x)
        return self.base(x) + self.scaling * (x @ self.lora_A.T) @ self.lora_B.T


class _DropoutOnUpdate(LoRALinear):
    def forward(self, x):
        return self.base(x) + self.lora_dropout(self.scaling * (x @ self.lora_A.T) @ self.lora_B.T)


def _redraw_adapters(module: nn.Module) -> None:
    """B is zero at the start, so the update would not show: draw A and B at random."""
    nn.init.normal_(module.lora_A)
    nn.init.normal_(module.lora_B)


def _layer(fan_in: int, fan_out: int, bias: bool = True, conv1d: bool = False) -> nn.Module:
    return _conv1d(fan_in, fan_out) if conv1d else nn.Linear(fan_in, fan_out, bias=bias)


def _build(base: nn.Module, r: int, alpha: float, dropout: float = 0.0, training: bool = False) -> Build:
    return Build({"base": base, "r": r, "alpha": alpha, "dropout": dropout}, training)


def _lora_linear_inputs(rng: random.Random) -> tuple[Build, torch.Tensor]:
    fan_in, fan_out, r = rng.randint(2, 10), rng.randint(2, 10), rng.randint(1, 4)
    alpha = float(rng.choice([1, 2, 8, 16, 32]))
    if alpha in (r, 1.0):  # a missing or wrong scale must show
        alpha = 2.0 * r + 1
    base = _layer(fan_in, fan_out, bias=rng.random() < 0.8)
    build = _build(base, r, alpha, rng.choice([0.0, 0.0, 0.1, 0.5]), training=rng.random() < 0.3)
    shape = rng.choice([(rng.randint(1, 3), rng.randint(1, 5)), (rng.randint(1, 4),)])
    return build, torch.randn(*shape, fan_in)


LORA_LINEAR = ModuleExercise(
    name="lora_linear",
    reference=LoRALinear,
    make_inputs=_lora_linear_inputs,
    hints=(
        "the output is the frozen layer's own output plus a low-rank update: the input goes down to r "
        "numbers through A and back up through B, and the update is scaled",
        "A is r by in and B is out by r, so the input meets A transposed first, then B transposed; the "
        "scale is the one the constructor stores (alpha over r). Dropout acts on the update's input only, "
        "never on the frozen layer's",
    ),
    cases=(
        Case("a Linear from 5 to 3 features, rank 2, alpha 8",
             lambda: (_build(_layer(5, 3), 2, 8.0), torch.randn(2, 4, 5))),
        Case("rank one, a single token", lambda: (_build(_layer(4, 6), 1, 4.0), torch.randn(1, 1, 4))),
        Case("a frozen layer without a bias", lambda: (_build(_layer(3, 5, bias=False), 2, 6.0), torch.randn(2, 3))),
        Case("transformers' Conv1D as the frozen layer (its weight stored in by out)",
             lambda: (_build(_layer(4, 6, conv1d=True), 3, 12.0), torch.randn(2, 3, 4))),
        Case("dropout 0.5, in eval mode", lambda: (_build(_layer(6, 4), 2, 8.0, 0.5), torch.randn(2, 3, 6))),
        Case("dropout 0.5, in training mode",
             lambda: (_build(_layer(6, 4), 2, 8.0, 0.5, training=True), torch.randn(2, 3, 6))),
    ),
    mistakes=(
        Mistake("the update not scaled at all", _NotScaled),
        Mistake("the update scaled by alpha alone instead of alpha over r", _ScaledByAlpha),
        Mistake("dropout applied to the frozen layer's input too, not only to the update's", _DropoutOnBoth),
        Mistake("dropout applied to the update's output instead of to its input", _DropoutOnUpdate),
    ),
    init_weights=_redraw_adapters,
    noun="output",
)


def check_lora_linear(cls: type[nn.Module], quiet: bool = False) -> CheckResult:
    """`cls` is a `LoRALinear` class: built from (base, r, alpha, dropout) and given the reference's
    weights by name, it maps (..., in) to base's output plus the scaled update, in training and eval mode."""
    return LORA_LINEAR.check(cls, quiet=quiet)


# --------------------------------------------------------------------- piece 2: the module swap
def replace_linear_with_lora(model, targets, r=8, alpha=16):
    """Freeze `model`, then wrap every Linear or Conv1D layer whose own name is in `targets` in a LoRALinear.

    A layer's own name is the last part of its full name: "transformer.h.0.attn.c_attn" is
    "c_attn". Changes `model` in place and returns it; only the new adapters train.
    """
    from transformers.pytorch_utils import Conv1D  # GPT-2 in transformers stores its layers as Conv1D

    for p in model.parameters():
        p.requires_grad_(False)                                 # everything frozen, before the adapters exist
    chosen = [(name, module) for name, module in model.named_modules()
              if name.split(".")[-1] in targets and isinstance(module, (nn.Linear, Conv1D))]
    for name, module in chosen:                                 # a list first: the model changes below
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name)               # "" is the model itself
        setattr(parent, child, LoRALinear(module, r=r, alpha=alpha))  # A, B beside module's weight: CPU or GPU
    return model


class ProjModel(nn.Module):
    """Token embeddings, then Linear layers named proj and out_proj: out_proj ends in the letters of proj."""

    def __init__(self, vocab: int = 11, width: int = 6) -> None:
        super().__init__()
        self.config = SimpleNamespace(vocab_size=vocab)
        self.wte = nn.Embedding(vocab, width)
        self.proj = nn.Linear(width, width)
        self.out_proj = nn.Linear(width, vocab)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.out_proj(torch.tanh(self.proj(self.wte(ids))))  # (B, T, vocab)


def _tiny_lm(n_layer: int = 2, n_head: int = 2, width: int = 8, vocab: int = 17, hf: bool = False) -> nn.Module:
    """A small course GPT, or its transformers export (Conv1D layers), with visible weights."""
    model = GPT(GPTConfig(vocab_size=vocab, n_positions=16, n_layer=n_layer, n_head=n_head, n_embd=width))
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.3)
    return (model.to_hf(attn_implementation="eager") if hf else model).eval()


def _summary(model: nn.Module) -> dict[str, Any]:
    """What a swap must get right: which layers have adapters, what trains, and the output once every
    adapter holds known weights (so the right layers, r and alpha, and the base weights all show)."""
    adapted = sorted(n for n, m in model.named_modules()
                     if isinstance(getattr(m, "lora_A", None), torch.Tensor)
                     and isinstance(getattr(m, "lora_B", None), torch.Tensor))
    trainable = sorted(n for n, p in model.named_parameters() if p.requires_grad)
    g = torch.Generator().manual_seed(0)
    modules = dict(model.named_modules())
    with torch.no_grad():
        for name in adapted:
            for p in (modules[name].lora_A, modules[name].lora_B):
                p.copy_(torch.randn(p.shape, generator=g) * 0.3)
        vocab = int(model.config.vocab_size)
        out = model.eval()(torch.arange(6).remainder(vocab).view(1, 6))
    return {"adapted layers": adapted, "trainable parameters": trainable,
            "output": getattr(out, "logits", out).float()}


class _SwapRunner(Exercise):
    """Runs a swap on a copy of the model (the piece changes its model in place) and compares summaries."""

    def _runner(self, piece: Any) -> Callable[..., Any]:
        def run(model, targets, r, alpha):
            model = copy.deepcopy(model)
            got = piece(model, targets, r, alpha)
            if not isinstance(got, nn.Module):
                raise PieceProblem(f"your function returned {describe(got, 80)}; return the model, its layers wrapped")
            return _summary(got)

        return run


def _swap_unfrozen(model, targets, r=8, alpha=16):
    from transformers.pytorch_utils import Conv1D

    for name, module in [(n, m) for n, m in model.named_modules()
                         if n.split(".")[-1] in targets and isinstance(m, (nn.Linear, Conv1D))]:
        parent_name, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent_name), child, LoRALinear(module, r=r, alpha=alpha))
    return model


def _swap_by_suffix(model, targets, r=8, alpha=16):
    from transformers.pytorch_utils import Conv1D

    for p in model.parameters():
        p.requires_grad_(False)
    for name, module in [(n, m) for n, m in model.named_modules()
                         if any(n.endswith(t) for t in targets) and isinstance(m, (nn.Linear, Conv1D))]:
        parent_name, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent_name), child, LoRALinear(module, r=r, alpha=alpha))
    return model


def _swap_linear_only(model, targets, r=8, alpha=16):
    for p in model.parameters():
        p.requires_grad_(False)
    for name, module in [(n, m) for n, m in model.named_modules()
                         if n.split(".")[-1] in targets and isinstance(m, nn.Linear)]:
        parent_name, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent_name), child, LoRALinear(module, r=r, alpha=alpha))
    return model


def _swap_inputs(rng: random.Random) -> tuple[nn.Module, tuple[str, ...], int, float]:
    targets = tuple(rng.sample(["c_attn", "c_proj", "c_fc"], rng.randint(1, 3)))
    r = rng.randint(1, 4)
    alpha = float(rng.choice([2, 8, 16]))
    if alpha == r:
        alpha = 2.0 * r + 1
    n_head = rng.choice([1, 2])
    model = _tiny_lm(rng.randint(1, 2), n_head, n_head * rng.choice([2, 4]), rng.randint(5, 20), hf=rng.random() < 0.4)
    return model, targets, r, alpha


REPLACE_LINEAR_WITH_LORA = _SwapRunner(
    name="replace_linear_with_lora",
    reference=replace_linear_with_lora,
    make_inputs=_swap_inputs,
    hints=(
        "walk over every module of the model with its full name; the ones whose own name is one of the "
        "targets, and that are linear layers, get replaced by your LoRA layer built around them. Before "
        "that, freeze every parameter the model has",
        "a module's own name is the last part of its dotted name (a name that only ends in the same "
        "letters is another layer); to replace it, set the new module as an attribute of its parent. "
        "transformers' GPT-2 stores these layers as Conv1D, not Linear: wrap those too. Collect the "
        "layers in a list before changing the model",
    ),
    cases=(
        Case("a course GPT of two blocks, target c_attn", lambda: (_tiny_lm(2), ("c_attn",), 2, 8.0)),
        Case("the name c_proj, used in the attention and in the MLP of every block",
             lambda: (_tiny_lm(2), ("c_proj",), 4, 16.0)),
        Case("a transformers GPT-2, whose layers are Conv1D, targets c_attn and c_fc",
             lambda: (_tiny_lm(2, hf=True), ("c_attn", "c_fc"), 2, 4.0)),
        Case("a model with Linear layers named proj and out_proj, target proj",
             lambda: (ProjModel().eval(), ("proj",), 1, 3.0)),
        Case("a course GPT of one block, every layer of it, rank one",
             lambda: (_tiny_lm(1, 1, 4), ("c_attn", "c_proj", "c_fc"), 1, 2.0)),
    ),
    mistakes=(
        Mistake("the rest of the model left trainable: only the wrapped layers' own weights frozen", _swap_unfrozen),
        Mistake("a layer whose name only ends in the same letters (out_proj for proj) wrapped too", _swap_by_suffix),
        Mistake("transformers' Conv1D layers left out (they are not nn.Linear)", _swap_linear_only),
    ),
    given=("LoRALinear",),
    noun="result",
)


def check_replace_linear_with_lora(fn: Callable[..., nn.Module], quiet: bool = False) -> CheckResult:
    """`fn(model, targets, r, alpha)` freezes the model and wraps every Linear/Conv1D layer named in `targets`
    in LoRALinear; the adapted layers, the trainable parameters and the output must be the reference's."""
    return REPLACE_LINEAR_WITH_LORA.check(fn, quiet=quiet)


# --------------------------------------------------------------------- exercise: masked labels
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


# --------------------------------------------------------------------- exercise: optimizer state
def reference_optimizer_state_numbers(shapes: list[tuple[int, ...]], optimizer: str) -> int:
    """How many numbers `optimizer` keeps for trainable parameters of these shapes (1-D or 2-D), step counters aside.

    "sgd" keeps nothing, "momentum" one buffer the size of each parameter, "adamw" two (the first and
    second moments). "adafactor" keeps no first moment and factors the second: a matrix keeps one
    number per row and one per column, a vector keeps one per entry.
    """
    if optimizer == "adafactor":
        return sum(shape[0] + shape[1] if len(shape) == 2 else shape[0] for shape in shapes)
    per_number = {"sgd": 0, "momentum": 1, "adamw": 2}[optimizer]
    return per_number * sum(math.prod(shape) for shape in shapes)


def _whole_number(got: Any) -> str | None:
    value = as_number(got)
    if value is None or float(value) != int(value):
        return f"your result is {describe(got, 80)}; return a whole number, the count"
    return None


def _state_inputs(rng: random.Random) -> tuple[list[tuple[int, ...]], str]:
    shapes = [tuple(rng.randint(1, 300) for _ in range(rng.choice([1, 2, 2]))) for _ in range(rng.randint(1, 5))]
    return shapes, rng.choice(["sgd", "momentum", "adamw", "adafactor", "adafactor"])


def _adafactor_full(shapes: list[tuple[int, ...]], optimizer: str) -> int:
    if optimizer != "adafactor":
        return reference_optimizer_state_numbers(shapes, optimizer)
    return sum(math.prod(shape) for shape in shapes)


def _adafactor_with_moment(shapes: list[tuple[int, ...]], optimizer: str) -> int:
    extra = sum(math.prod(shape) for shape in shapes) if optimizer == "adafactor" else 0
    return reference_optimizer_state_numbers(shapes, optimizer) + extra


OPTIMIZER_STATE_NUMBERS = Exercise(
    name="optimizer_state_numbers",
    reference=reference_optimizer_state_numbers,
    make_inputs=_state_inputs,
    hints=(
        "only trainable parameters have optimizer state, and how much depends on what the optimizer "
        "remembers between steps: nothing for plain SGD, a running average of the gradient for momentum, "
        "that and a running average of the squared gradient for AdamW",
        "AdamW's two buffers are each the size of the parameter. Adafactor keeps no running gradient at "
        "all, and its squared-gradient average of a matrix is stored as a sum per row and a sum per column, "
        "rows plus columns numbers instead of rows times columns; a vector keeps its own full average",
    ),
    cases=(
        Case("AdamW on one matrix of 4 by 3", ([(4, 3)], "adamw")),
        Case("Adafactor on one matrix of 4 by 3", ([(4, 3)], "adafactor")),
        Case("Adafactor on a matrix and a vector", ([(8, 2), (5,)], "adafactor")),
        Case("plain SGD on two matrices", ([(2, 3), (3, 2)], "sgd")),
        Case("momentum on a vector of 7", ([(7,)], "momentum")),
    ),
    mistakes=(
        Mistake("Adafactor's second moment counted in full, one number per entry", _adafactor_full),
        Mistake("a first moment counted for Adafactor too", _adafactor_with_moment),
    ),
    contract=_whole_number,
    noun="count",
)


def check_optimizer_state_numbers(fn: Callable[..., int], quiet: bool = False) -> CheckResult:
    """Check `fn(shapes, optimizer)`: the numbers an optimizer keeps for trainable parameters of these shapes.
    """
    return OPTIMIZER_STATE_NUMBERS.check(fn, quiet=quiet)


# --------------------------------------------------------------------- exercise: how much LoRA trains
def reference_lora_param_count(n_layer: int, shapes: list[tuple[int, int]], r: int) -> int:
    """Trainable numbers when every layer gets rank-r adapters on Linear layers of (in, out) `shapes`.
    """
    return n_layer * sum(r * (fan_in + fan_out) for fan_in, fan_out in shapes)


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


# --------------------------------------------------------------------- exercise: DoRA's merged weight
def reference_dora_weight(W: torch.Tensor, A: torch.Tensor, B: torch.Tensor, alpha: float,
                          magnitude: torch.Tensor) -> torch.Tensor:
    """DoRA's merged weight (out, in): the LoRA-merged weight W + (alpha / r) B A, each output row
    rescaled to length `magnitude` (out,).
    """
    merged = W + (alpha / A.shape[0]) * (B @ A)                            # (out, in): the direction
    return magnitude[:, None] * merged / merged.norm(dim=1, keepdim=True)  # each row to its magnitude


def _dora(fan_in: int, fan_out: int, r: int, alpha: float, start: bool = False) -> tuple:
    W, A = torch.randn(fan_out, fan_in), torch.randn(r, fan_in)
    if start:  # DoRA's start: B zero and each magnitude the row's own length
        return W, A, torch.zeros(fan_out, r), alpha, W.norm(dim=1)
    return W, A, torch.randn(fan_out, r), alpha, torch.rand(fan_out) * 3 + 0.1


def _dora_inputs(rng: random.Random) -> tuple:
    r = rng.randint(1, 4)
    alpha = float(rng.choice([1, 2, 8, 16]))
    if alpha == r:
        alpha = 2.0 * r + 1
    return _dora(rng.randint(2, 8), rng.randint(2, 8), r, alpha, start=rng.random() < 0.2)


DORA_WEIGHT = Exercise(
    name="dora_weight",
    reference=reference_dora_weight,
    make_inputs=_dora_inputs,
    hints=(
        "DoRA splits each output's weight row into a direction and a length: the direction is the row of "
        "the LoRA-merged weight, the length is the trained magnitude",
        "merge first, with the same scale as LoRA, then divide every row of the merged weight by its own "
        "length (rows are outputs, the norm runs over the inputs) and multiply it by that output's magnitude",
    ),
    cases=(
        Case("B zero and each magnitude the length of its row of W", lambda: _dora(4, 3, 2, 8.0, start=True)),
        Case("rank one, a square weight", lambda: _dora(4, 4, 1, 2.0)),
        Case("more outputs than inputs, rank 3", lambda: _dora(3, 6, 3, 12.0)),
    ),
    mistakes=(
        Mistake("the norm taken over each column (one per input) instead of each row (one per output)",
                lambda W, A, B, alpha, magnitude: magnitude[:, None] * (W + alpha / A.shape[0] * B @ A)
                / (W + alpha / A.shape[0] * B @ A).norm(dim=0, keepdim=True)),
        Mistake("the rows divided by the lengths of W's rows, before the update is added",
                lambda W, A, B, alpha, magnitude: magnitude[:, None] * (W + alpha / A.shape[0] * B @ A)
                / W.norm(dim=1, keepdim=True)),
        Mistake("the update not scaled by alpha over r",
                lambda W, A, B, alpha, magnitude: reference_dora_weight(W, A, B, A.shape[0], magnitude)),
    ),
    noun="weight",
)


def check_dora_weight(fn: Callable[..., torch.Tensor], quiet: bool = False) -> CheckResult:
    """Check `fn(W, A, B, alpha, magnitude)`: DoRA's merged weight, each row of the LoRA-merged weight
    rescaled to its magnitude.
    """
    return DORA_WEIGHT.check(fn, quiet=quiet)
