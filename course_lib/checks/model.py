"""Checks for the exercises of notebooks 03 (attention), 04 (transformer block) and 05 (GPT-2).

Each check runs the learner's function and the reference on seeded random inputs and
prints ✓, ✗ with a hint, or "not done yet"; it returns the learner's function when it
passed and the reference otherwise, so the notebook always runs on.

Introduced in notebooks/03_attention.ipynb.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from ..attention import attention_weights, causal_mask
from ..model import Block, GPTConfig, count_parameters
from ._core import CheckResult, check_function

__all__ = [
    "check_causal_mask",
    "check_causal_attention",
    "check_split_heads",
    "check_layer_norm",
    "check_gelu",
    "check_block_forward",
    "check_parameter_count",
    "check_lm_loss",
]


# -- notebook 03: attention -----------------------------------------------------------
def _ref_causal_mask(T: int) -> torch.Tensor:
    return causal_mask(T)


def check_causal_mask(fn: Callable[[int], torch.Tensor], quiet: bool = False) -> CheckResult:
    """`fn(T)` returns the (T, T) boolean mask, True where query i may look at key j.

    Introduced in notebooks/03_attention.ipynb.
    """
    return check_function(
        fn, _ref_causal_mask, lambda rng: (rng.randint(1, 12),), name="causal mask",
        hint="True on and below the diagonal: torch.ones(T, T, dtype=torch.bool).tril()",
        quiet=quiet,
    )


def _ref_causal_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    T = q.size(-2)
    return attention_weights(q, k, causal_mask(T, device=q.device)) @ v


def _qkv(rng: random.Random) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    B, nh, T, hs = rng.randint(1, 3), rng.randint(1, 4), rng.randint(1, 10), rng.choice([4, 8, 16])
    return torch.randn(B, nh, T, hs), torch.randn(B, nh, T, hs), torch.randn(B, nh, T, hs)


def check_causal_attention(
    fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor], quiet: bool = False
) -> CheckResult:
    """`fn(q, k, v)` with (B, nh, T, hs) inputs returns softmax(q k^T / sqrt(hs) + causal mask) v.

    Introduced in notebooks/03_attention.ipynb.
    """
    return check_function(
        fn, _ref_causal_attention, _qkv, name="causal attention",
        hint="scores = q @ k.transpose(-2, -1) / math.sqrt(hs); set the future (j > i) to -inf "
        "with masked_fill; softmax over the last dim; then @ v",
        quiet=quiet,
    )


def _ref_split_heads(x: torch.Tensor, n_head: int) -> torch.Tensor:
    B, T, C = x.shape
    return x.view(B, T, n_head, C // n_head).transpose(1, 2)


def _split_inputs(rng: random.Random) -> tuple[torch.Tensor, int]:
    n_head = rng.choice([1, 2, 3, 4])
    return torch.randn(rng.randint(1, 3), rng.randint(1, 7), n_head * rng.choice([2, 4, 8])), n_head


def check_split_heads(fn: Callable[[torch.Tensor, int], torch.Tensor], quiet: bool = False) -> CheckResult:
    """`fn(x, n_head)` turns (B, T, C) into (B, n_head, T, C // n_head), head h owning channels h*hs:(h+1)*hs.

    Introduced in notebooks/03_attention.ipynb.
    """
    return check_function(
        fn, _ref_split_heads, _split_inputs, name="split heads",
        hint="view as (B, T, n_head, hs) first, then transpose(1, 2); a plain "
        "view(B, n_head, T, hs) mixes positions and heads",
        quiet=quiet,
    )


# -- notebook 04: the transformer block ------------------------------------------------
def _ref_layer_norm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float) -> torch.Tensor:
    return F.layer_norm(x, (x.size(-1),), weight, bias, eps)


def _ln_inputs(rng: random.Random) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]:
    C = rng.choice([3, 8, 16])
    x = torch.randn(rng.randint(1, 3), rng.randint(1, 5), C) * rng.uniform(0.5, 5) + rng.uniform(-2, 2)
    return x, torch.randn(C), torch.randn(C), rng.choice([1e-5, 1e-3])


def check_layer_norm(
    fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor, float], torch.Tensor], quiet: bool = False
) -> CheckResult:
    """`fn(x, weight, bias, eps)` normalizes over the last dimension like `F.layer_norm`.

    Introduced in notebooks/04_transformer_block.ipynb.
    """
    return check_function(
        fn, _ref_layer_norm, _ln_inputs, name="layer norm",
        hint="mean and variance over dim=-1 with keepdim=True; the variance is the biased one "
        "(unbiased=False / correction=0); (x - mean) / sqrt(var + eps) * weight + bias",
        quiet=quiet,
    )


def _ref_gelu(x: torch.Tensor) -> torch.Tensor:
    return F.gelu(x, approximate="tanh")


def check_gelu(fn: Callable[[torch.Tensor], torch.Tensor], quiet: bool = False) -> CheckResult:
    """`fn(x)` is GPT-2's GELU, the tanh form: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).

    Introduced in notebooks/04_transformer_block.ipynb.
    """
    return check_function(
        fn, _ref_gelu, lambda rng: (torch.randn(rng.randint(1, 50)) * rng.uniform(0.5, 4),),
        name="GELU (tanh form)",
        hint="0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))",
        quiet=quiet,
    )


def _ref_block_forward(block: Block, x: torch.Tensor) -> torch.Tensor:
    a, _, _ = block.attn(block.ln_1(x))
    x = x + a
    return x + block.mlp(block.ln_2(x))


def _block_inputs(rng: random.Random) -> tuple[Block, torch.Tensor]:
    n_head = rng.choice([1, 2, 4])
    C = n_head * rng.choice([4, 8])
    block = Block(GPTConfig(vocab_size=10, n_positions=16, n_embd=C, n_layer=1, n_head=n_head)).eval()
    with torch.no_grad():  # make the LayerNorms matter, so forgetting one shows
        for name, p in block.named_parameters():
            if name.startswith(("ln_1", "ln_2")):
                p.copy_(torch.randn_like(p))
    return block, torch.randn(rng.randint(1, 3), rng.randint(1, 8), C)


def check_block_forward(fn: Callable[[Block, torch.Tensor], torch.Tensor], quiet: bool = False) -> CheckResult:
    """`fn(block, x)` is the pre-LN block's forward, written with `block.ln_1`, `block.attn`, `block.ln_2`, `block.mlp`.

    `block.attn(h)` returns (y, cache, weights); use y.

    Introduced in notebooks/04_transformer_block.ipynb.
    """
    return check_function(
        fn, _ref_block_forward, _block_inputs, name="pre-LN block",
        hint="normalize *before* each sublayer and add its output to the residual stream: "
        "x = x + attn(ln_1(x))[0]; x = x + mlp(ln_2(x))",
        trials=3, quiet=quiet,
    )


# -- notebook 05: the whole model -------------------------------------------------------
def _config_inputs(rng: random.Random) -> tuple[GPTConfig]:
    n_head = rng.choice([1, 2, 3, 4, 12])
    return (GPTConfig(vocab_size=rng.randint(10, 60000), n_positions=rng.randint(8, 2048),
                      n_embd=n_head * rng.choice([8, 16, 64]), n_layer=rng.randint(1, 12), n_head=n_head),)


def check_parameter_count(fn: Callable[[GPTConfig], int], quiet: bool = False) -> CheckResult:
    """`fn(config)` returns the number of parameters of `GPT(config)` (the tied head counted once).

    Introduced in notebooks/05_gpt2_model.ipynb.
    """
    return check_function(
        fn, count_parameters, _config_inputs, name="parameter count",
        hint="embeddings V*C + T*C; each block: 2 LayerNorms (2*2C), c_attn (C*3C + 3C), attn "
        "c_proj (C*C + C), c_fc (C*4C + 4C), mlp c_proj (4C*C + C); plus ln_f (2C); the head is tied",
        quiet=quiet,
    )


def _ref_lm_loss(logits: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
    V = logits.size(-1)
    return F.cross_entropy(logits[:, :-1].reshape(-1, V), input_ids[:, 1:].reshape(-1))


def _loss_inputs(rng: random.Random) -> tuple[torch.Tensor, torch.Tensor]:
    B, T, V = rng.randint(1, 3), rng.randint(2, 9), rng.randint(5, 40)
    return torch.randn(B, T, V) * 3, torch.randint(0, V, (B, T))


def check_lm_loss(fn: Callable[[torch.Tensor, torch.Tensor], Any], quiet: bool = False) -> CheckResult:
    """`fn(logits, input_ids)` is the next-token loss: position t is scored on token t + 1.

    Introduced in notebooks/05_gpt2_model.ipynb.
    """
    def compare(got: Any, expected: torch.Tensor) -> tuple[bool, str]:
        if not isinstance(got, torch.Tensor) or got.numel() != 1:
            return False, f"expected a scalar tensor, got {type(got).__name__}"
        if math.isclose(float(got), float(expected), rel_tol=1e-5, abs_tol=1e-6):
            return True, ""
        return False, f"loss {float(got):.5f}, expected {float(expected):.5f}"

    return check_function(
        fn, _ref_lm_loss, _loss_inputs, name="language-model loss",
        hint="drop the last position's logits and the first token: "
        "F.cross_entropy(logits[:, :-1].reshape(-1, V), input_ids[:, 1:].reshape(-1))",
        compare=compare, quiet=quiet,
    )
