"""Checks for the exercises of notebooks 03 (attention), 04 (transformer block) and 05 (GPT-2).

Each exercise runs fixed cases for its classic mistakes, then seeded random inputs, and
prints ✓, ✗ with the input and a hint, or "not done yet"; the check returns the learner's
function when it passed and the reference otherwise, so the notebook always runs on.

Introduced in notebooks/03_attention.ipynb; `check_layer_norm()`, `check_gelu()`,
`check_block_forward()`, `check_post_ln_block()`, `check_conv1d_mlp()` in notebook 04;
`check_parameter_count()`, `check_untied_parameter_count()`, `check_lm_loss()` in
notebook 05.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from ..model import Block, GPTConfig, count_parameters
from ._core import Case, CheckResult, Exercise, as_number, describe, values_equal

__all__ = [
    "check_running_mean",
    "check_multihead_attention",
    "check_causal_mask",
    "check_causal_attention",
    "check_split_heads",
    "check_layer_norm",
    "check_gelu",
    "check_block_forward",
    "check_post_ln_block",
    "check_conv1d_mlp",
    "check_parameter_count",
    "check_untied_parameter_count",
    "check_lm_loss",
]


def _randn(*shape: int, scale: float = 1.0) -> torch.Tensor:
    return torch.randn(*shape) * scale  # the check seeds torch before each case


# -- notebook 03: attention -----------------------------------------------------------
def _ref_causal_mask(T: int) -> torch.Tensor:
    """(T, T) bool: True on and below the diagonal, where query i may look at key j <= i."""
    return torch.ones(T, T, dtype=torch.bool).tril()


CAUSAL_MASK = Exercise(
    name="causal_mask",
    reference=_ref_causal_mask,
    make_inputs=lambda rng: (rng.randint(1, 12),),
    hints=(
        "row i is query i, column j is key j; a query may look at itself and at the past, never at the future",
        "the mask is boolean and True on the diagonal and everywhere below it, False above it: "
        "a lower-triangular matrix of True values",
    ),
    cases=(
        Case("the diagonal: a token may look at itself", (4,)),
        Case("a single token", (1,)),
        Case("two tokens", (2,)),
    ),
    noun="mask",
)


def check_causal_mask(fn: Callable[[int], torch.Tensor], quiet: bool = False) -> CheckResult:
    """`fn(T)` returns the (T, T) boolean mask, True where query i may look at key j."""
    return CAUSAL_MASK.check(fn, quiet=quiet)


def _ref_causal_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """softmax(q k^T / sqrt(hs), future keys at -inf) v for (B, nh, T, hs) inputs."""
    T, hs = q.size(-2), q.size(-1)
    scores = q @ k.transpose(-2, -1) / math.sqrt(hs)  # (B, nh, T, T)
    future = ~torch.ones(T, T, dtype=torch.bool, device=q.device).tril()
    weights = torch.softmax(scores.masked_fill(future, float("-inf")), dim=-1)
    return weights @ v  # (B, nh, T, hs)


def _qkv(rng: random.Random) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    B, nh, T, hs = rng.randint(1, 3), rng.randint(1, 4), rng.randint(1, 10), rng.choice([4, 8, 16])
    return torch.randn(B, nh, T, hs), torch.randn(B, nh, T, hs), torch.randn(B, nh, T, hs)


CAUSAL_ATTENTION = Exercise(
    name="causal_attention",
    reference=_ref_causal_attention,
    make_inputs=_qkv,
    hints=(
        "each query scores every key, the scores are scaled, the future is hidden, and the weights "
        "that come out of a softmax average the values",
        "scale the scores by one over the square root of the head size (the last dimension, not T); "
        "hidden future scores must become minus infinity (zero is still a score), and the softmax "
        "runs over the keys, the last dimension",
    ),
    cases=(
        Case("scale by the square root of the head size, not of T",
             lambda: (_randn(1, 1, 3, 16, scale=2), _randn(1, 1, 3, 16, scale=2), _randn(1, 1, 3, 16))),
        Case("hidden scores must be minus infinity, not zero: every score here is negative",
             lambda: (torch.ones(1, 2, 4, 4), -_randn(1, 2, 4, 4).abs() - 1, _randn(1, 2, 4, 4))),
        Case("a single token attends only to itself", lambda: (_randn(2, 1, 1, 8), _randn(2, 1, 1, 8),
                                                               _randn(2, 1, 1, 8))),
    ),
    noun="output",
)


def check_causal_attention(
    fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor], quiet: bool = False
) -> CheckResult:
    """`fn(q, k, v)` with (B, nh, T, hs) inputs returns softmax(q k^T / sqrt(hs) + causal mask) v.
    """
    return CAUSAL_ATTENTION.check(fn, quiet=quiet)


def _ref_split_heads(x: torch.Tensor, n_head: int) -> torch.Tensor:
    """(B, T, C) -> (B, n_head, T, C // n_head); head h owns channels h*hs .. (h+1)*hs - 1."""
    B, T, C = x.shape
    return x.view(B, T, n_head, C // n_head).transpose(1, 2)


def _split_inputs(rng: random.Random) -> tuple[torch.Tensor, int]:
    n_head = rng.choice([1, 2, 3, 4])
    return torch.randn(rng.randint(1, 3), rng.randint(1, 7), n_head * rng.choice([2, 4, 8])), n_head


SPLIT_HEADS = Exercise(
    name="split_heads",
    reference=_ref_split_heads,
    make_inputs=_split_inputs,
    hints=(
        "each head owns a contiguous slice of the channels of every position; the positions must "
        "stay in order inside each head",
        "first split the last dimension into heads times head size, keeping batch and time where they "
        "are; only then swap the time and head dimensions. Reshaping straight to the final shape mixes "
        "positions and heads",
    ),
    cases=(
        Case("distinct values: a plain reshape mixes positions and heads",
             (torch.arange(24.0).reshape(1, 3, 8), 2)),
        Case("a batch of two single tokens", (torch.arange(12.0).reshape(2, 1, 6), 3)),
        Case("one head", (torch.arange(8.0).reshape(1, 2, 4), 1)),
    ),
    noun="heads",
)


def check_split_heads(fn: Callable[[torch.Tensor, int], torch.Tensor], quiet: bool = False) -> CheckResult:
    """`fn(x, n_head)` turns (B, T, C) into (B, n_head, T, C // n_head), head h owning channels h*hs:(h+1)*hs.
    """
    return SPLIT_HEADS.check(fn, quiet=quiet)


def _ref_running_mean(x: torch.Tensor) -> torch.Tensor:
    """(B, T, C) -> (B, T, C): position t holds the mean of positions 0 .. t, with no loop and no (T, T) matrix."""
    T = x.size(1)
    counts = torch.arange(1, T + 1, dtype=x.dtype, device=x.device).view(1, T, 1)  # 1, 2, ..., T
    return x.cumsum(dim=1) / counts


RUNNING_MEAN = Exercise(
    name="running_mean",
    reference=_ref_running_mean,
    make_inputs=lambda rng: (torch.randn(rng.randint(1, 3), rng.randint(1, 12), rng.choice([1, 4, 8])),),
    hints=(
        "position t averages itself and everything before it: a sum that grows along time, divided "
        "by how many positions it holds",
        "a cumulative sum along the time dimension (the middle one) gives every prefix sum at once; "
        "position t holds t plus one terms, so divide each prefix sum by its own count, not by T",
    ),
    cases=(
        Case("the first position is its own average, the last one the mean of all",
             (torch.tensor([[[2.0], [4.0], [9.0]]]),)),
        Case("average along time, not along channels", lambda: (_randn(2, 5, 3),)),
        Case("a single position", lambda: (_randn(1, 1, 4),)),
    ),
    noun="average",
)


def check_running_mean(fn: Callable[[torch.Tensor], torch.Tensor], quiet: bool = False) -> CheckResult:
    """`fn(x)` with x (B, T, C) returns the average of the past: out[:, t] = x[:, :t+1].mean(1)."""
    return RUNNING_MEAN.check(fn, quiet=quiet)


def _ref_multihead_attention(x: torch.Tensor, w_q: torch.Tensor, w_k: torch.Tensor,
                             w_v: torch.Tensor) -> torch.Tensor:
    """x (B, T, C), each w (nh, C, hs): every head's causal attention, heads side by side (B, T, nh*hs).

    Written with a loop over heads, the plainest way; the exercise asks for one batched matmul.
    """
    outputs = []
    for h in range(w_q.size(0)):
        q, k, v = x @ w_q[h], x @ w_k[h], x @ w_v[h]  # each (B, T, hs)
        outputs.append(_ref_causal_attention(q, k, v))  # (B, T, hs)
    return torch.cat(outputs, dim=-1)  # (B, T, nh * hs): head h in channels h*hs .. (h+1)*hs - 1


def _mha_inputs(rng: random.Random) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    B, T, C = rng.randint(1, 3), rng.randint(1, 8), rng.choice([4, 8, 12])
    nh, hs = rng.choice([1, 2, 3, 4]), rng.choice([2, 4, 8])
    return (torch.randn(B, T, C),) + tuple(torch.randn(nh, C, hs) / math.sqrt(C) for _ in range(3))


MULTIHEAD_ATTENTION = Exercise(
    name="multihead_attention",
    reference=_ref_multihead_attention,
    make_inputs=_mha_inputs,
    hints=(
        "every head is the causal attention you wrote above, run on its own projections; the heads "
        "are independent, so a batch dimension for them lets one product compute all of them",
        "give the input a head dimension of size one so that it broadcasts against the stacked "
        "weights; scale by the head size of the weights, not by the input width; at the end put the "
        "time axis back before the head axis and lay the heads side by side, head zero first",
    ),
    cases=(
        Case("head size differs from the input width: scale by the head size",
             lambda: (_randn(1, 4, 12, scale=2), _randn(1, 12, 2), _randn(1, 12, 2), _randn(1, 12, 2))),
        Case("two heads side by side, head zero in the first channels",
             lambda: (_randn(2, 5, 4), _randn(2, 4, 3), _randn(2, 4, 3), _randn(2, 4, 3))),
        Case("a single token attends only to itself",
             lambda: (_randn(1, 1, 4), _randn(3, 4, 2), _randn(3, 4, 2), _randn(3, 4, 2))),
    ),
    noun="output",
)


def check_multihead_attention(
    fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor], quiet: bool = False
) -> CheckResult:
    """`fn(x, w_q, w_k, w_v)`: x (B, T, C), each w (nh, C, hs); all heads' causal attention, (B, T, nh*hs).
    """
    return MULTIHEAD_ATTENTION.check(fn, quiet=quiet)


# -- notebook 04: the transformer block ------------------------------------------------
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
        Case("eps inside the square root: a tiny variance",
             lambda: (1 + 1e-3 * _randn(1, 2, 8), _randn(8), _randn(8), 1e-3)),
        Case("the biased variance: only three channels",
             (torch.tensor([[[1.0, 2.0, 4.0], [0.0, -1.0, 3.0]]]), torch.tensor([1.0, 2.0, 0.5]),
              torch.tensor([0.0, 1.0, -1.0]), 1e-5)),
        Case("normalise over the last dimension only",
             lambda: (_randn(2, 3, 4, scale=3) + 1, _randn(4), _randn(4), 1e-5)),
        Case("a constant row: zero variance", (torch.full((1, 1, 4), 3.0), torch.ones(4),
                                              torch.tensor([0.5, -0.5, 1.0, 0.0]), 1e-5)),
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
        Case("the tanh form, not the exact erf form", (torch.linspace(-6, 6, 25),)),
        Case("large inputs: almost zero on the left, almost x on the right",
             (torch.tensor([-20.0, -10.0, 0.0, 10.0, 20.0]),)),
        Case("a 2-D input", lambda: (_randn(3, 4, scale=2),)),
    ),
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
        Case("pre-LN, both residual additions, the two LayerNorms in their places", lambda: _block(2, 8, 2, 5)),
        Case("a single token", lambda: _block(1, 4, 1, 1)),
        Case("four heads", lambda: _block(4, 16, 1, 6)),
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
        Case("the LayerNorms come after the additions, not before the sublayers", lambda: _block(2, 8, 2, 5)),
        Case("a single token", lambda: _block(1, 4, 1, 1)),
        Case("four heads", lambda: _block(4, 16, 1, 6)),
    ),
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
        Case("a square hidden layer: a transposed weight would still fit the shapes",
             lambda: (_randn(1, 3, 4), _randn(4, 4), _randn(4), _randn(4, 4), _randn(4))),
        Case("the tanh form of GELU, on large pre-activations",
             lambda: (_randn(2, 2, 2, scale=3), _randn(2, 8), _randn(8), _randn(8, 2), _randn(2))),
        Case("both biases added", (torch.zeros(1, 1, 2), torch.zeros(2, 4), torch.ones(4), torch.ones(4, 2),
                                   torch.tensor([0.5, -0.5]))),
    ),
    noun="output",
    rtol=1e-4, atol=1e-4,
)


def check_conv1d_mlp(fn: Callable[..., torch.Tensor], quiet: bool = False) -> CheckResult:
    """`fn(x, w_fc, b_fc, w_proj, b_proj)` is GPT-2's MLP from Conv1D weights stored (in, out)."""
    return CONV1D_MLP.check(fn, quiet=quiet)


# -- notebook 05: the whole model -------------------------------------------------------
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
        Case("GPT-2 small: 124,439,808 with the head tied",
             (GPTConfig(vocab_size=50257, n_positions=1024, n_embd=768, n_layer=12, n_head=12),)),
        Case("the position table depends on n_positions",
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
        Case("GPT-2 small with its own head", (GPTConfig(vocab_size=50257, n_positions=1024, n_embd=768,
                                                         n_layer=12, n_head=12),)),
        Case("the head has no bias", (GPTConfig(vocab_size=10, n_positions=8, n_embd=4, n_layer=1, n_head=1),)),
        Case("a long context: the head does not depend on it",
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
        Case("two tokens: a single prediction per row",
             lambda: (_randn(1, 2, 5, scale=3), torch.tensor([[1, 4]]))),
        Case("targets are the next tokens, row by row",
             lambda: (_randn(2, 4, 6, scale=3), torch.tensor([[0, 1, 2, 3], [5, 4, 3, 2]]))),
        Case("the mean over all predictions, not the sum",
             lambda: (_randn(3, 6, 7, scale=2), torch.randint(0, 7, (3, 6)))),
    ),
    contract=_scalar_tensor,
    compare=_close_numbers,
    noun="loss",
)


def check_lm_loss(fn: Callable[[torch.Tensor, torch.Tensor], Any], quiet: bool = False) -> CheckResult:
    """`fn(logits, input_ids)` is the next-token loss: position t is scored on token t + 1."""
    return LM_LOSS.check(fn, quiet=quiet)
