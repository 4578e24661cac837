"""Checks for notebooks/04_transformer_block.ipynb: the four pieces the learner writes, then the exercises.

The pieces: ``layer_norm(x, weight, bias, eps=1e-5)`` (`check_layer_norm`), GPT-2's ``gelu(x)``
(the tanh form, `check_gelu`), the ``forward`` of the ``MLP`` (`check_mlp`) and the ``forward`` of
the pre-LN ``Block`` (`check_block`); the last two are `ModuleExercise`s. `LayerNorm` is the small
module the notebook wraps around the learner's ``layer_norm`` (given, not a piece). The references
here are what the notebook's collapsed reference cells show. The exercises at the end:
`check_parallel_block`, `check_fold_layer_norm`, `check_conv1d_mlp`.

Introduced in notebooks/04_transformer_block.ipynb.
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Callable

import torch
from torch import nn

from ..attention import CausalSelfAttention
from ..model import Block as LibraryBlock
from ..model import GPTConfig
from ._core import Build, Case, CheckResult, Exercise, Mistake, ModuleExercise

__all__ = [
    "check_layer_norm",
    "check_gelu",
    "check_mlp",
    "check_block",
    "check_parallel_block",
    "check_fold_layer_norm",
    "check_conv1d_mlp",
]


def _randn(*shape: int, scale: float = 1.0) -> torch.Tensor:
    return torch.randn(*shape) * scale  # the check seeds torch before each case


class _ShownConfig(GPTConfig):
    """A GPTConfig that shows only the fields that differ from the defaults, so the messages stay short."""

    def __repr__(self) -> str:
        default = GPTConfig()
        changed = [f"{f.name}={getattr(self, f.name)!r}" for f in dataclasses.fields(self)
                   if getattr(self, f.name) != getattr(default, f.name)]
        return f"GPTConfig({', '.join(changed)})"


def _config(n_embd: int, n_head: int, dropout: float = 0.0) -> GPTConfig:
    return _ShownConfig(vocab_size=10, n_positions=16, n_embd=n_embd, n_layer=1, n_head=n_head, dropout=dropout)


# --------------------------------------------------------------------- piece 1: layer_norm
def layer_norm(x, weight, bias, eps=1e-5):
    """LayerNorm over the last dimension: x (..., C), weight and bias (C,) -> (..., C).

    Each position is normalised on its own: minus the mean of its C channels, divided by their
    standard deviation (the biased one: the mean of the squared deviations, over C), with eps
    inside the square root; then scaled by `weight` and shifted by `bias`.
    """
    mean = x.mean(dim=-1, keepdim=True)                         # (..., 1)
    var = ((x - mean) ** 2).mean(dim=-1, keepdim=True)          # (..., 1): divided by C, not C - 1
    return (x - mean) / torch.sqrt(var + eps) * weight + bias   # (..., C)


def _ln_inputs(rng: random.Random) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]:
    C = rng.choice([3, 8, 16])
    x = torch.randn(rng.randint(1, 3), rng.randint(1, 5), C) * rng.uniform(0.5, 5) + rng.uniform(-2, 2)
    return x, torch.randn(C), torch.randn(C), rng.choice([1e-5, 1e-3])


def _ln_over(dim: int) -> Callable[..., torch.Tensor]:
    def wrong(x, w, b, eps):
        mean = x.mean(dim, keepdim=True)
        return (x - mean) / torch.sqrt(x.var(dim, unbiased=False, keepdim=True) + eps) * w + b

    return wrong


LAYER_NORM = Exercise(
    name="layer_norm",
    reference=layer_norm,
    make_inputs=_ln_inputs,
    hints=(
        "each position is normalised on its own, over its channels (the last dimension): subtract "
        "the mean, divide by the standard deviation, then scale by weight and shift by bias",
        "the variance is the plain average of squared deviations (divide by C, not C minus one), and "
        "the small eps is added to the variance inside the square root, not to the square root",
    ),
    cases=(
        Case("rows with a tiny variance",
             lambda: (1 + 1e-3 * _randn(1, 2, 8), _randn(8), _randn(8), 1e-3)),
        Case("only three channels",
             (torch.tensor([[[1.0, 2.0, 4.0], [0.0, -1.0, 3.0]]]), torch.tensor([1.0, 2.0, 0.5]),
              torch.tensor([0.0, 1.0, -1.0]), 1e-5)),
        Case("a batch of two, three positions, four channels",
             lambda: (_randn(2, 3, 4, scale=3) + 1, _randn(4), _randn(4), 1e-5)),
        Case("a single position", lambda: (_randn(1, 1, 8, scale=2), _randn(8), _randn(8), 1e-5)),
        Case("a constant row", (torch.full((1, 1, 4), 3.0), torch.ones(4), torch.tensor([0.5, -0.5, 1.0, 0.0]),
                                1e-5)),
    ),
    mistakes=(
        Mistake("eps added to the standard deviation instead of to the variance inside the square root",
                lambda x, w, b, eps: (x - x.mean(-1, keepdim=True))
                / (x.var(-1, unbiased=False, keepdim=True).sqrt() + eps) * w + b),
        Mistake("the unbiased variance (divided by C minus one) instead of the plain average",
                lambda x, w, b, eps: (x - x.mean(-1, keepdim=True))
                / torch.sqrt(x.var(-1, keepdim=True) + eps) * w + b),
        Mistake("normalised over the positions instead of over the channels", _ln_over(-2)),
    ),
    noun="output",
    rtol=1e-4, atol=1e-4,
)


def check_layer_norm(
    fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor, float], torch.Tensor], quiet: bool = False
) -> CheckResult:
    """`fn(x, weight, bias, eps)` normalizes over the last dimension like `F.layer_norm`."""
    return LAYER_NORM.check(fn, quiet=quiet)


class LayerNorm(nn.Module):
    """nn.LayerNorm's parameters, `weight` (ones) and `bias` (zeros), around the notebook's layer_norm."""

    def __init__(self, n_embd, eps=1e-5, device=None):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n_embd, device=device))
        self.bias = nn.Parameter(torch.zeros(n_embd, device=device))
        self.eps = eps

    def forward(self, x):                                       # (B, T, C) -> (B, T, C)
        return layer_norm(x, self.weight, self.bias, self.eps)


# --------------------------------------------------------------------- piece 2: gelu
def gelu(x):
    """GPT-2's GELU, the tanh approximation: 0.5 x (1 + tanh(√(2/π) (x + 0.044715 x³))), elementwise."""
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


GELU = Exercise(
    name="gelu",
    reference=gelu,
    make_inputs=lambda rng: (torch.randn(rng.randint(1, 50)) * rng.uniform(0.5, 4),),
    hints=(
        "GPT-2 uses the tanh approximation of GELU, not the exact form with the error function; "
        "the two differ by about a ten-thousandth near minus two",
        "half of x times one plus the tanh of a scaled cubic: the scale is the square root of two over "
        "pi, and the cubic adds a small multiple (0.044715) of x cubed to x",
    ),
    cases=(
        Case("25 points from minus six to six", (torch.linspace(-6, 6, 25),)),
        Case("large inputs of both signs", (torch.tensor([-20.0, -10.0, 0.0, 10.0, 20.0]),)),
        Case("a 2-D input", lambda: (_randn(3, 4, scale=2),)),
        Case("a single number (a 0-d tensor)", (torch.tensor(-1.5),)),
    ),
    mistakes=(Mistake("the exact GELU (with the error function) instead of GPT-2's tanh form",
                      lambda x: 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))),),
    noun="output",
    rtol=1e-5, atol=1e-6,
)


def check_gelu(fn: Callable[[torch.Tensor], torch.Tensor], quiet: bool = False) -> CheckResult:
    """`fn(x)` is GPT-2's GELU, the tanh form: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))."""
    return GELU.check(fn, quiet=quiet)


# --------------------------------------------------------------------- piece 3: the MLP
class MLP(nn.Module):
    """GPT-2's position-wise feed-forward network, with GPT-2's parameter names."""

    def __init__(self, config):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd)      # expand
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd)    # project back
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x):
        h = gelu(self.c_fc(x))                                       # (B, T, 4C)
        return self.dropout(self.c_proj(h))                          # (B, T, C)


class _GeluAfterProjection(MLP):
    def forward(self, x):
        return self.dropout(gelu(self.c_proj(self.c_fc(x))))


class _NoActivation(MLP):
    def forward(self, x):
        return self.dropout(self.c_proj(self.c_fc(x)))


class _DropoutOnHidden(MLP):
    def forward(self, x):
        return self.c_proj(self.dropout(gelu(self.c_fc(x))))


def _mlp_inputs(rng: random.Random) -> tuple:
    C = rng.choice([2, 4, 8])
    build = Build({"config": _config(C, 1, rng.choice([0.0, 0.0, 0.1, 0.5]))}, training=rng.random() < 0.3)
    return build, torch.randn(rng.randint(1, 3), rng.randint(1, 6), C)


MLP_EXERCISE = ModuleExercise(
    name="mlp",
    reference=MLP,
    make_inputs=_mlp_inputs,
    hints=(
        "each position goes through the same small network on its own: widen, bend with the "
        "activation, narrow back; dropout acts last, on what goes back into the stream",
        "the activation sits between the two linear layers (the wide side), and it is your GELU "
        "from above; dropout comes after the projection back to C channels, not on the wide hidden layer",
    ),
    cases=(
        Case("width 8, a batch of two, five positions", lambda: (Build({"config": _config(8, 1)}),
                                                                 _randn(2, 5, 8))),
        Case("a single position", lambda: (Build({"config": _config(4, 1)}), _randn(1, 1, 4))),
        Case("dropout 0.5, in eval mode", lambda: (Build({"config": _config(4, 1, 0.5)}), _randn(2, 3, 4))),
        Case("dropout 0.5, in training mode", lambda: (Build({"config": _config(4, 1, 0.5)}, training=True),
                                                       _randn(2, 3, 4))),
    ),
    mistakes=(
        Mistake("the activation applied after the projection back instead of between the two layers",
                _GeluAfterProjection),
        Mistake("no activation between the two layers (the MLP is then one linear map)", _NoActivation),
        Mistake("dropout applied to the wide hidden layer instead of to the output", _DropoutOnHidden),
    ),
    given=("gelu",),
    noun="output",
)


def check_mlp(cls: type[nn.Module], quiet: bool = False) -> CheckResult:
    """`cls` is an `MLP` class: built from a config, given the reference's weights by name, it maps
    (B, T, C) to (B, T, C) like GPT-2's MLP (c_fc, GELU, c_proj, dropout), in training and eval mode."""
    return MLP_EXERCISE.check(cls, quiet=quiet)


# --------------------------------------------------------------------- piece 4: the block
class Block(nn.Module):
    """GPT-2's pre-LN transformer block, with GPT-2's parameter names."""

    def __init__(self, config):
        super().__init__()
        self.ln_1 = LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        self.attn = CausalSelfAttention(config.n_embd, config.n_head, config.dropout)
        self.ln_2 = LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        self.mlp = MLP(config)

    def forward(self, x):
        a, _, _ = self.attn(self.ln_1(x))    # (B, T, C); the cache and the weights are not used here
        x = x + a                            # add to the residual stream
        x = x + self.mlp(self.ln_2(x))       # (B, T, C)
        return x


class _PostLN(Block):
    def forward(self, x):
        x = self.ln_1(x + self.attn(x)[0])
        return self.ln_2(x + self.mlp(x))


class _NoSecondResidual(Block):
    def forward(self, x):
        x = x + self.attn(self.ln_1(x))[0]
        return self.mlp(self.ln_2(x))


class _StreamNormalised(Block):
    def forward(self, x):
        x = self.ln_1(x)
        x = x + self.attn(x)[0]
        x = self.ln_2(x)
        return x + self.mlp(x)


class _FirstNormTwice(Block):
    def forward(self, x):
        x = x + self.attn(self.ln_1(x))[0]
        return x + self.mlp(self.ln_1(x))


def _spread_norms(block: nn.Module) -> None:
    """Random LayerNorm weights and biases, so that forgetting or swapping a LayerNorm shows."""
    for name, p in block.named_parameters():
        if name.startswith(("ln_1", "ln_2")):
            p.copy_(torch.randn_like(p))


def _block_build(n_embd: int, n_head: int, dropout: float = 0.0, training: bool = False) -> Build:
    return Build({"config": _config(n_embd, n_head, dropout)}, training)


def _block_piece_inputs(rng: random.Random) -> tuple:
    n_head = rng.choice([1, 2, 4])
    C = n_head * rng.choice([2, 4, 8])
    build = _block_build(C, n_head, rng.choice([0.0, 0.0, 0.1, 0.5]), training=rng.random() < 0.3)
    return build, torch.randn(rng.randint(1, 3), rng.randint(1, 8), C)


BLOCK = ModuleExercise(
    name="block",
    reference=Block,
    make_inputs=_block_piece_inputs,
    hints=(
        "GPT-2's block is pre-LN: a LayerNorm comes before each sublayer, and each sublayer's output "
        "is added to the residual stream, which itself is never normalised inside the block",
        "two residual additions, in order: attention reads the first LayerNorm of the stream and its "
        "output is added; then the MLP reads the second LayerNorm of the updated stream and its "
        "output is added. The attention module returns three things: add only the first",
    ),
    cases=(
        Case("two heads, five positions, a batch of two", lambda: (_block_build(8, 2), _randn(2, 5, 8))),
        Case("a single position", lambda: (_block_build(8, 4), _randn(3, 1, 8))),
        Case("one head", lambda: (_block_build(6, 1), _randn(1, 4, 6))),
        Case("four heads, more heads than positions", lambda: (_block_build(16, 4), _randn(1, 3, 16))),
        Case("dropout 0.5, in eval mode", lambda: (_block_build(8, 2, 0.5), _randn(2, 4, 8))),
        Case("dropout 0.5, in training mode", lambda: (_block_build(8, 2, 0.5, training=True), _randn(2, 4, 8))),
    ),
    mistakes=(
        Mistake("a post-LN block (the LayerNorms after the additions), where GPT-2 normalises before each "
                "sublayer", _PostLN),
        Mistake("the MLP's output not added to the stream (the second residual addition is missing)",
                _NoSecondResidual),
        Mistake("the stream itself normalised: the sublayers' outputs are added to the normalised stream "
                "instead of to the stream", _StreamNormalised),
        Mistake("the first LayerNorm used before both sublayers (the second one is never used)", _FirstNormTwice),
    ),
    given=("LayerNorm", "MLP"),
    init_weights=_spread_norms,
    noun="output",
)


def check_block(cls: type[nn.Module], quiet: bool = False) -> CheckResult:
    """`cls` is a `Block` class: built from a config, given the reference's weights by name, it maps
    (B, T, C) to (B, T, C) like GPT-2's pre-LN block, in training and eval mode."""
    return BLOCK.check(cls, quiet=quiet)


# --------------------------------------------------------------------- exercise 1: a parallel block
def _library_block(n_head: int, C: int, B: int, T: int) -> tuple[LibraryBlock, torch.Tensor]:
    block = LibraryBlock(_config(C, n_head)).eval()
    with torch.no_grad():
        _spread_norms(block)
    return block, torch.randn(B, T, C)


def _library_block_inputs(rng: random.Random) -> tuple[LibraryBlock, torch.Tensor]:
    n_head = rng.choice([1, 2, 4])
    return _library_block(n_head, n_head * rng.choice([4, 8]), rng.randint(1, 3), rng.randint(1, 8))


def _ref_parallel_block(block: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """GPT-J's parallel block: one LayerNorm, read by attention and the MLP alike; both outputs are added."""
    h = block.ln_1(x)                      # (B, T, C): normalised once
    a, _, _ = block.attn(h)                # (B, T, C)
    return x + a + block.mlp(h)            # both sublayers read the same input


PARALLEL_BLOCK = Exercise(
    name="parallel_block",
    reference=_ref_parallel_block,
    make_inputs=_library_block_inputs,
    hints=(
        "in a parallel block the MLP does not wait for attention: both read the same normalised copy "
        "of the stream, computed once, and both outputs are added to the stream the block received",
        "normalise the input with the first LayerNorm only; give that one normalised tensor to "
        "attention (keep the first of the three things it returns) and to the MLP; the result is the "
        "input plus the two outputs. The second LayerNorm is not used at all",
    ),
    cases=(
        Case("two heads, five positions, a batch of two", lambda: _library_block(2, 8, 2, 5)),
        Case("a single position", lambda: _library_block(1, 4, 1, 1)),
        Case("four heads", lambda: _library_block(4, 16, 1, 6)),
    ),
    mistakes=(
        Mistake("the MLP reads the stream after attention's update (that is GPT-2's sequential block)",
                lambda block, x: (lambda y: y + block.mlp(block.ln_1(y)))(x + block.attn(block.ln_1(x))[0])),
        Mistake("the MLP reads its own LayerNorm, the second one, instead of the shared first one",
                lambda block, x: x + block.attn(block.ln_1(x))[0] + block.mlp(block.ln_2(x))),
        Mistake("the two outputs added without the input (the residual connection is missing)",
                lambda block, x: block.attn(block.ln_1(x))[0] + block.mlp(block.ln_1(x))),
    ),
    noun="output",
)


def check_parallel_block(fn: Callable[[LibraryBlock, torch.Tensor], torch.Tensor], quiet: bool = False
                         ) -> CheckResult:
    """`fn(block, x)` is GPT-J's parallel block with a course_lib Block's parts: x + attn(ln_1(x)) + mlp(ln_1(x))."""
    return PARALLEL_BLOCK.check(fn, quiet=quiet)


# --------------------------------------------------------------------- exercise 2: fold a LayerNorm
def _ref_fold_layer_norm(ln_weight: torch.Tensor, ln_bias: torch.Tensor, fc_weight: torch.Tensor,
                         fc_bias: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A LayerNorm's weight (C,) and bias (C,) folded into the Linear layer after it, weight (H, C), bias (H,).

    fc(ln_weight * n + ln_bias) = (fc_weight scaled column by column by ln_weight) n + (fc_bias + fc_weight ln_bias),
    where n is the normalised input; returns that weight (H, C) and bias (H,).
    """
    weight = fc_weight * ln_weight              # (H, C): column j scaled by ln_weight[j]
    bias = fc_bias + fc_weight @ ln_bias        # (H,): the shift goes through the layer
    return weight, bias


def _fold_inputs(rng: random.Random) -> tuple[torch.Tensor, ...]:
    C, H = rng.choice([2, 4, 8]), rng.choice([3, 8, 16])
    return torch.randn(C), torch.randn(C), torch.randn(H, C), torch.randn(H)


FOLD_LAYER_NORM = Exercise(
    name="fold_layer_norm",
    reference=_ref_fold_layer_norm,
    make_inputs=_fold_inputs,
    hints=(
        "after the normalisation a LayerNorm only scales each channel and shifts it; a linear layer "
        "that reads it can absorb both, so that it reads the plain normalised input instead",
        "the scale of input channel j multiplies every weight that reads channel j (a column of the "
        "Linear's weight, stored as outputs by inputs); the shift is a constant input, so it passes "
        "through the weight matrix and lands in the bias",
    ),
    cases=(
        Case("a square weight (as many outputs as inputs)",
             lambda: (_randn(4), _randn(4), _randn(4, 4), _randn(4))),
        Case("a LayerNorm with weight one and bias zero",
             lambda: (torch.ones(3), torch.zeros(3), _randn(5, 3), _randn(5))),
        Case("a zero LayerNorm weight and a nonzero bias",
             (torch.zeros(2), torch.tensor([1.0, -2.0]), torch.tensor([[1.0, 2.0], [3.0, 4.0], [0.5, 0.0]]),
              torch.tensor([0.0, 1.0, -1.0]))),
    ),
    mistakes=(
        Mistake("each output row scaled instead of each input column",
                lambda w, b, fw, fb: (fw * w[:, None], fb + fw @ b)),
        Mistake("the LayerNorm's bias added to the layer's bias without passing through the weight",
                lambda w, b, fw, fb: (fw * w, fb + b)),
        Mistake("the LayerNorm's bias dropped", lambda w, b, fw, fb: (fw * w, fb)),
    ),
    noun="weights",
    rtol=1e-4, atol=1e-4,
)


def check_fold_layer_norm(fn: Callable[..., tuple[torch.Tensor, torch.Tensor]], quiet: bool = False
                          ) -> CheckResult:
    """`fn(ln_weight, ln_bias, fc_weight, fc_bias)` returns the (weight, bias) of one Linear layer that
    maps the plain normalised input to what fc(layer_norm(x)) gives."""
    return FOLD_LAYER_NORM.check(fn, quiet=quiet)


# --------------------------------------------------------------------- exercise 3: the MLP from Conv1D weights
def _ref_conv1d_mlp(x: torch.Tensor, w_fc: torch.Tensor, b_fc: torch.Tensor, w_proj: torch.Tensor,
                    b_proj: torch.Tensor) -> torch.Tensor:
    """GPT-2's MLP from Hugging Face's Conv1D weights, stored (in, out): x @ w + b, no transpose."""
    h = x @ w_fc + b_fc  # (B, T, 4C)
    return gelu(h) @ w_proj + b_proj  # (B, T, C)


def _conv1d_inputs(rng: random.Random) -> tuple[torch.Tensor, ...]:
    C, H = rng.choice([2, 4, 8]), rng.choice([4, 8, 16])
    return (torch.randn(rng.randint(1, 3), rng.randint(1, 6), C), torch.randn(C, H), torch.randn(H),
            torch.randn(H, C), torch.randn(C))


CONV1D_MLP = Exercise(
    name="conv1d_mlp",
    reference=_ref_conv1d_mlp,
    make_inputs=_conv1d_inputs,
    hints=(
        "Hugging Face's Conv1D stores a weight as (inputs, outputs), the transpose of what a PyTorch "
        "Linear layer stores; the MLP is still expand, GELU, project back",
        "multiply the input by the stored matrix as it is (its first dimension matches the input's "
        "channels) and add the bias; use GPT-2's tanh form of GELU between the two layers",
    ),
    cases=(
        Case("square weights (a hidden layer as wide as the input)",
             lambda: (_randn(1, 3, 4), _randn(4, 4), _randn(4), _randn(4, 4), _randn(4))),
        Case("large pre-activations",
             lambda: (_randn(2, 2, 2, scale=3), _randn(2, 8), _randn(8), _randn(8, 2), _randn(2))),
        Case("a zero input, zero first weights and nonzero biases",
             (torch.zeros(1, 1, 2), torch.zeros(2, 4), torch.ones(4), torch.ones(4, 2), torch.tensor([0.5, -0.5]))),
    ),
    mistakes=(
        Mistake("the weights read as nn.Linear's (out, in), transposed; Conv1D stores (in, out)",
                lambda x, w_fc, b_fc, w_proj, b_proj: gelu(x @ w_fc.t() + b_fc) @ w_proj.t() + b_proj),
        Mistake("the exact GELU (with the error function) instead of GPT-2's tanh form",
                lambda x, w_fc, b_fc, w_proj, b_proj:
                torch.nn.functional.gelu(x @ w_fc + b_fc) @ w_proj + b_proj),
    ),
    given=("gelu",),
    noun="output",
    rtol=1e-4, atol=1e-4,
)


def check_conv1d_mlp(fn: Callable[..., torch.Tensor], quiet: bool = False) -> CheckResult:
    """`fn(x, w_fc, b_fc, w_proj, b_proj)` is GPT-2's MLP from Conv1D weights stored (in, out)."""
    return CONV1D_MLP.check(fn, quiet=quiet)
