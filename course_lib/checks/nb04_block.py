"""Checks for notebooks/04_transformer_block.ipynb: LayerNorm, GELU, the block's forward, post-LN,
GPT-2's MLP from Conv1D weights.

Introduced in notebooks/04_transformer_block.ipynb.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable

import torch

from ..model import Block, GPTConfig
from ._core import Case, CheckResult, Exercise, Mistake

__all__ = [
    "check_layer_norm",
    "check_gelu",
    "check_block_forward",
    "check_post_ln_block",
    "check_conv1d_mlp",
]


def _randn(*shape: int, scale: float = 1.0) -> torch.Tensor:
    return torch.randn(*shape) * scale  # the check seeds torch before each case


def _ref_layer_norm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float) -> torch.Tensor:
    """LayerNorm over the last dimension, the biased variance, eps inside the square root."""
    mean = x.mean(dim=-1, keepdim=True)
    var = ((x - mean) ** 2).mean(dim=-1, keepdim=True)  # divide by C, not C - 1
    return (x - mean) / torch.sqrt(var + eps) * weight + bias


def _ln_inputs(rng: random.Random) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]:
    C = rng.choice([3, 8, 16])
    x = torch.randn(rng.randint(1, 3), rng.randint(1, 5), C) * rng.uniform(0.5, 5) + rng.uniform(-2, 2)
    return x, torch.randn(C), torch.randn(C), rng.choice([1e-5, 1e-3])


LAYER_NORM = Exercise(
    name="layer_norm",
    reference=_ref_layer_norm,
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
    ),
    noun="output",
    rtol=1e-4, atol=1e-4,
)


def check_layer_norm(
    fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor, float], torch.Tensor], quiet: bool = False
) -> CheckResult:
    """`fn(x, weight, bias, eps)` normalizes over the last dimension like `F.layer_norm`."""
    return LAYER_NORM.check(fn, quiet=quiet)


def _ref_gelu(x: torch.Tensor) -> torch.Tensor:
    """GPT-2's GELU, the tanh approximation."""
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


GELU = Exercise(
    name="gelu",
    reference=_ref_gelu,
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
    ),
    mistakes=(Mistake("the exact GELU (with the error function) instead of GPT-2's tanh form",
                      lambda x: 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))),),
    noun="output",
    rtol=1e-5, atol=1e-6,
)


def check_gelu(fn: Callable[[torch.Tensor], torch.Tensor], quiet: bool = False) -> CheckResult:
    """`fn(x)` is GPT-2's GELU, the tanh form: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))."""
    return GELU.check(fn, quiet=quiet)


def _ref_block_forward(block: Block, x: torch.Tensor) -> torch.Tensor:
    """Pre-LN: normalise before each sublayer, add its output to the residual stream."""
    a, _, _ = block.attn(block.ln_1(x))
    x = x + a
    return x + block.mlp(block.ln_2(x))


def _block(n_head: int, C: int, B: int, T: int) -> tuple[Block, torch.Tensor]:
    block = Block(GPTConfig(vocab_size=10, n_positions=16, n_embd=C, n_layer=1, n_head=n_head)).eval()
    with torch.no_grad():  # make the LayerNorms matter, so forgetting or swapping one shows
        for name, p in block.named_parameters():
            if name.startswith(("ln_1", "ln_2")):
                p.copy_(torch.randn_like(p))
    return block, torch.randn(B, T, C)


def _block_inputs(rng: random.Random) -> tuple[Block, torch.Tensor]:
    n_head = rng.choice([1, 2, 4])
    return _block(n_head, n_head * rng.choice([4, 8]), rng.randint(1, 3), rng.randint(1, 8))


BLOCK_FORWARD = Exercise(
    name="block_forward",
    reference=_ref_block_forward,
    make_inputs=_block_inputs,
    hints=(
        "GPT-2's block is pre-LN: the LayerNorm comes before each sublayer, and each sublayer's output "
        "is added to the residual stream, which itself is never normalised",
        "two steps, each a residual addition: attention reads the first LayerNorm of the stream, then the "
        "MLP reads the second LayerNorm of the updated stream. The attention module returns three "
        "things; add only its output, the first of them",
    ),
    cases=(
        Case("two heads, five positions, a batch of two", lambda: _block(2, 8, 2, 5)),
        Case("a single token", lambda: _block(1, 4, 1, 1)),
        Case("four heads", lambda: _block(4, 16, 1, 6)),
    ),
    mistakes=(
        Mistake("a post-LN block (the LayerNorms after the additions), where GPT-2 normalises before each sublayer",
                lambda block, x: _ref_post_ln_block(block, x)),
        Mistake("the MLP's output not added to the stream (the second residual addition is missing)",
                lambda block, x: block.mlp(block.ln_2(x + block.attn(block.ln_1(x))[0]))),
    ),
    noun="output",
)


def check_block_forward(fn: Callable[[Block, torch.Tensor], torch.Tensor], quiet: bool = False) -> CheckResult:
    """`fn(block, x)` is the pre-LN block's forward, written with `block.ln_1`, `block.attn`, `block.ln_2`, `block.mlp`.

    `block.attn(h)` returns (y, cache, weights); use y.
    """
    return BLOCK_FORWARD.check(fn, quiet=quiet)


def _ref_post_ln_block(block: Block, x: torch.Tensor) -> torch.Tensor:
    """Post-LN (the 2017 transformer): add each sublayer's output first, then normalise the stream."""
    a, _, _ = block.attn(x)
    x = block.ln_1(x + a)
    return block.ln_2(x + block.mlp(x))


POST_LN_BLOCK = Exercise(
    name="post_ln_block",
    reference=_ref_post_ln_block,
    make_inputs=_block_inputs,
    hints=(
        "in a post-LN block the sublayers read the stream as it is, and the LayerNorm comes after "
        "each residual addition, so the stream itself is normalised twice per block",
        "attention reads the raw stream; its output is added, then the sum goes through the first "
        "LayerNorm; the MLP reads that, its output is added, and the sum goes through the second one",
    ),
    cases=(
        Case("two heads, five positions, a batch of two", lambda: _block(2, 8, 2, 5)),
        Case("a single token", lambda: _block(1, 4, 1, 1)),
        Case("four heads", lambda: _block(4, 16, 1, 6)),
    ),
    mistakes=(Mistake("the pre-LN block of GPT-2 (the LayerNorms before the sublayers) instead of post-LN",
                      lambda block, x: _ref_block_forward(block, x)),),
    noun="output",
)


def check_post_ln_block(fn: Callable[[Block, torch.Tensor], torch.Tensor], quiet: bool = False) -> CheckResult:
    """`fn(block, x)` is the post-LN forward with the block's parts: ln_1(x + attn(x)), then ln_2(x + mlp(x)).
    """
    return POST_LN_BLOCK.check(fn, quiet=quiet)


def _ref_conv1d_mlp(x: torch.Tensor, w_fc: torch.Tensor, b_fc: torch.Tensor, w_proj: torch.Tensor,
                    b_proj: torch.Tensor) -> torch.Tensor:
    """GPT-2's MLP from Hugging Face's Conv1D weights, stored (in, out): x @ w + b, no transpose."""
    h = x @ w_fc + b_fc  # (B, T, 4C)
    return _ref_gelu(h) @ w_proj + b_proj  # (B, T, C)


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
                lambda x, w_fc, b_fc, w_proj, b_proj: _ref_gelu(x @ w_fc.t() + b_fc) @ w_proj.t() + b_proj),
        Mistake("the exact GELU (with the error function) instead of GPT-2's tanh form",
                lambda x, w_fc, b_fc, w_proj, b_proj:
                torch.nn.functional.gelu(x @ w_fc + b_fc) @ w_proj + b_proj),
    ),
    noun="output",
    rtol=1e-4, atol=1e-4,
)


def check_conv1d_mlp(fn: Callable[..., torch.Tensor], quiet: bool = False) -> CheckResult:
    """`fn(x, w_fc, b_fc, w_proj, b_proj)` is GPT-2's MLP from Conv1D weights stored (in, out)."""
    return CONV1D_MLP.check(fn, quiet=quiet)


