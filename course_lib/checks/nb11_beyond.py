"""Checks for the exercises of notebooks/11_beyond_gpt2.ipynb.

Each is an `Exercise` (see `course_lib.checks._core`): fixed cases for the classic
mistakes (RMSNorm that subtracts the mean, RoPE that rotates neighbouring channels
instead of the two halves, key/value heads tiled instead of repeated in place, a cache
sized by the query heads), then seeded random inputs, against the course's own code.

Introduced in notebooks/11_beyond_gpt2.ipynb.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import torch

from ._core import Case, CheckResult, Exercise, Mistake, as_number, describe

__all__ = ["check_rms_norm", "check_apply_rope", "check_repeat_kv", "check_kv_cache_bytes"]


def _a_tensor(got: Any) -> str | None:
    if not isinstance(got, torch.Tensor):
        return f"your result is {describe(got, 80)} (a {type(got).__name__}); return a torch tensor"
    return None


# -- RMSNorm -----------------------------------------------------------------------------
def _reference_rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    from ..model import RMSNorm

    norm = RMSNorm(x.size(-1), eps=eps).to(x.dtype)
    with torch.no_grad():
        norm.weight.copy_(weight)
        return norm(x)


def _solution_rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """Divide by the root mean square over the last dimension (eps inside the root), then scale."""
    rms = torch.sqrt(x.pow(2).mean(dim=-1, keepdim=True) + eps)  # (..., 1)
    return x / rms * weight  # (..., C)


def _rms_inputs(rng: random.Random) -> tuple[torch.Tensor, torch.Tensor, float]:
    C = rng.randint(1, 24)
    shape = [rng.randint(1, 4) for _ in range(rng.randint(0, 2))] + [C]
    x = torch.randn(shape) * rng.choice([0.1, 1.0, 5.0]) + rng.choice([0.0, 2.0, -3.0])
    return x, 1 + 0.3 * torch.randn(C), rng.choice([1e-5, 1e-6, 1e-3])


RMS_NORM = Exercise(
    name="rms_norm",
    reference=_reference_rms_norm,
    solution=_solution_rms_norm,
    make_inputs=_rms_inputs,
    hints=(
        "RMSNorm keeps only half of LayerNorm: it rescales each position by the root mean square of its "
        "channels, and nothing is subtracted first. Then the learned gain multiplies each channel",
        "the mean of the squares is taken over the last dimension only, eps is added before the square "
        "root, and there is no bias and no mean",
    ),
    cases=(
        Case("a row with a large mean",
             (torch.tensor([[3.0, 4.0, 5.0, 6.0]]), torch.ones(4), 1e-6)),
        Case("tiny values",
             (torch.tensor([[1e-3, -2e-3, 3e-3]]), torch.tensor([1.0, 2.0, 0.5]), 1e-5)),
        Case("a batch of two sequences of three positions",
             lambda: (torch.randn(2, 3, 5) + 1, torch.linspace(0.5, 1.5, 5), 1e-6)),
        Case("a single channel", (torch.tensor([[2.0], [-0.5]]), torch.tensor([3.0]), 1e-6)),
    ),
    mistakes=(
        Mistake("the mean subtracted first (that is LayerNorm); RMSNorm only divides by the root mean square",
                lambda x, weight, eps: torch.nn.functional.layer_norm(x, x.shape[-1:], weight, None, eps)),
        Mistake("eps added after the square root instead of inside it",
                lambda x, weight, eps: x / (x.pow(2).mean(-1, keepdim=True).sqrt() + eps) * weight),
    ),
    contract=_a_tensor,
    noun="normalised tensor",
)


def check_rms_norm(fn: Callable[[torch.Tensor, torch.Tensor, float], Any], quiet: bool = False) -> CheckResult:
    """`fn(x, weight, eps)` -> RMSNorm of x (..., C) with gain `weight` (C,)."""
    return RMS_NORM.check(fn, quiet=quiet)


# -- RoPE --------------------------------------------------------------------------------
def _reference_apply_rope(x: torch.Tensor, positions: torch.Tensor, theta: float) -> torch.Tensor:
    from ..attention import apply_rope, rope_cos_sin

    return apply_rope(x, *rope_cos_sin(positions, x.size(-1), theta))


def _solution_apply_rope(x: torch.Tensor, positions: torch.Tensor, theta: float) -> torch.Tensor:
    """Pair channel i with channel i + hs/2 and turn the pair by position * theta^(-2i/hs)."""
    hs = x.size(-1)
    inv_freq = theta ** (-torch.arange(0, hs, 2, dtype=torch.float) / hs)  # (hs/2,)
    angle = positions.float()[:, None] * inv_freq[None, :]  # (T, hs/2)
    cos, sin = angle.cos(), angle.sin()
    x1, x2 = x[..., : hs // 2], x[..., hs // 2 :]  # the two halves, (..., T, hs/2) each
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)  # (..., T, hs)


def _rope_adjacent_pairs(x: torch.Tensor, positions: torch.Tensor, theta: float) -> torch.Tensor:
    hs = x.shape[-1]
    angle = positions.float()[:, None] * theta ** (-torch.arange(0, hs, 2, dtype=torch.float) / hs)
    x1, x2 = x[..., 0::2], x[..., 1::2]
    return torch.stack([x1 * angle.cos() - x2 * angle.sin(), x2 * angle.cos() + x1 * angle.sin()], -1).flatten(-2)


def _rope_inputs(rng: random.Random) -> tuple[torch.Tensor, torch.Tensor, float]:
    hs = 2 * rng.randint(1, 8)
    T = rng.randint(1, 7)
    start = rng.randint(0, 50)
    x = torch.randn(rng.randint(1, 2), rng.randint(1, 3), T, hs)
    return x, torch.arange(start, start + T), rng.choice([10000.0, 500.0, 1e6])


APPLY_ROPE = Exercise(
    name="apply_rope",
    reference=_reference_apply_rope,
    solution=_solution_apply_rope,
    make_inputs=_rope_inputs,
    hints=(
        "each head's channels form pairs, and each pair is turned by an angle: its position times a "
        "frequency. The first pairs turn fast, the last ones slowly. In the Llama layout a pair is channel "
        "i of the first half with channel i of the second half, not two neighbouring channels",
        "pair i turns with the frequency theta to the power minus two i over the head size; the angle is "
        "that frequency times the position given, not the index within the sequence; the rotated pair is "
        "the first times cosine minus the second times sine, then the second times cosine plus the first "
        "times sine",
    ),
    cases=(
        Case("one head of size 8, counting values, positions 0 and 1",
             lambda: (torch.arange(16.0).reshape(1, 1, 2, 8) + 1, torch.tensor([0, 1]), 10000.0)),
        Case("positions 5, 6, 7 (after a cache)",
             lambda: (torch.randn(1, 2, 3, 4), torch.tensor([5, 6, 7]), 10000.0)),
        Case("theta 500",
             lambda: (torch.randn(2, 1, 4, 6), torch.arange(4), 500.0)),
        Case("position zero alone", lambda: (torch.randn(1, 1, 1, 4), torch.tensor([0]), 10000.0)),
    ),
    mistakes=(
        Mistake("neighbouring channels turned as pairs; here a pair is channel i and channel i plus half the head",
                _rope_adjacent_pairs),
        Mistake("positions counted from zero whatever positions were given (a cache starts later)",
                lambda x, positions, theta: _reference_apply_rope(x, torch.arange(x.shape[-2]), theta)),
    ),
    contract=_a_tensor,
    noun="rotated tensor",
)


def check_apply_rope(fn: Callable[[torch.Tensor, torch.Tensor, float], Any], quiet: bool = False) -> CheckResult:
    """`fn(x, positions, theta)` -> x (B, nh, T, hs) rotated by RoPE at `positions` (T,)."""
    return APPLY_ROPE.check(fn, quiet=quiet)


# -- grouped-query attention ---------------------------------------------------------------
def _reference_repeat_kv(k: torch.Tensor, n_rep: int) -> torch.Tensor:
    from ..attention import repeat_kv

    return repeat_kv(k, n_rep).clone()


def _solution_repeat_kv(k: torch.Tensor, n_rep: int) -> torch.Tensor:
    """Each key/value head n_rep times in a row: query heads 0 .. n_rep-1 share the first."""
    B, nkv, S, hs = k.shape
    return k[:, :, None].expand(B, nkv, n_rep, S, hs).reshape(B, nkv * n_rep, S, hs)


def _repeat_inputs(rng: random.Random) -> tuple[torch.Tensor, int]:
    return torch.randn(rng.randint(1, 2), rng.randint(1, 4), rng.randint(1, 5), rng.choice([2, 4, 6])), \
        rng.randint(1, 4)


REPEAT_KV = Exercise(
    name="repeat_kv",
    reference=_reference_repeat_kv,
    solution=_solution_repeat_kv,
    make_inputs=_repeat_inputs,
    hints=(
        "every key-value head serves a group of neighbouring query heads: the first group of query heads "
        "uses the first key-value head, the next group the second, and so on",
        "copy each key-value head n_rep times in a row along the head dimension, so the copies of one head "
        "sit side by side; tiling the whole stack n_rep times puts the heads in the wrong order",
    ),
    cases=(
        Case("two key/value heads, each for three query heads",
             lambda: (torch.arange(2.0).reshape(1, 2, 1, 1).expand(1, 2, 2, 2).clone(), 3)),
        Case("one key/value head for four query heads (multi-query)", lambda: (torch.randn(2, 1, 3, 4), 4)),
        Case("one repetition", lambda: (torch.randn(1, 3, 2, 2), 1)),
    ),
    mistakes=(Mistake("the heads tiled (0, 1, 0, 1) instead of each repeated in place (0, 0, 1, 1)",
                      lambda k, n_rep: k.repeat(1, n_rep, 1, 1)),),
    contract=_a_tensor,
    noun="repeated keys",
)


def check_repeat_kv(fn: Callable[[torch.Tensor, int], Any], quiet: bool = False) -> CheckResult:
    """`fn(k, n_rep)` -> k (B, nkv, S, hs) with each head repeated: (B, nkv * n_rep, S, hs)."""
    return REPEAT_KV.check(fn, quiet=quiet)


# -- the KV cache's size -------------------------------------------------------------------
def _reference_kv_cache_bytes(config: Any, seq_len: int, bytes_per_value: int) -> int:
    return 2 * config.n_layer * config.kv_heads * config.head_size * seq_len * bytes_per_value


def _solution_kv_cache_bytes(config: Any, seq_len: int, bytes_per_value: int) -> int:
    """Keys and values, in every layer, for each key/value head (n_head when unset)."""
    kv_heads = config.n_kv_head or config.n_head
    head_size = config.n_embd // config.n_head
    return 2 * config.n_layer * kv_heads * head_size * seq_len * bytes_per_value


def _gpt_config(**kw: Any) -> Any:
    from ..model import GPTConfig

    return GPTConfig(**kw)


def _cache_inputs(rng: random.Random) -> tuple[Any, int, int]:
    n_head = rng.choice([1, 2, 4, 6, 8, 12])
    kv = rng.choice([h for h in range(1, n_head + 1) if n_head % h == 0] + [None])
    cfg = _gpt_config(vocab_size=100, n_positions=4096, n_embd=n_head * rng.choice([8, 16, 64]),
                      n_layer=rng.randint(1, 32), n_head=n_head, n_kv_head=kv)
    return cfg, rng.randint(1, 4096), rng.choice([1, 2, 4])


def _whole_number(got: Any) -> str | None:
    value = as_number(got)
    if value is None or isinstance(value, float) and not value.is_integer():
        return f"your result is {describe(got, 80)}; a size in bytes is a whole number"
    return None


KV_CACHE_BYTES = Exercise(
    name="kv_cache_bytes",
    reference=_reference_kv_cache_bytes,
    solution=_solution_kv_cache_bytes,
    make_inputs=_cache_inputs,
    hints=(
        "the cache keeps, in every layer, one key and one value vector per key-value head for every "
        "position so far; with grouped-query attention there are fewer key-value heads than query heads",
        "count two tensors per layer, keys and values; each holds the key-value heads times the head size "
        "times the sequence length values; when n_kv_head is unset there is one key-value head per query "
        "head; multiply by the bytes of one value",
    ),
    cases=(
        Case("eight query heads sharing two key/value heads",
             lambda: (_gpt_config(n_embd=64, n_head=8, n_kv_head=2, n_layer=3), 100, 4)),
        Case("n_kv_head unset",
             lambda: (_gpt_config(n_embd=64, n_head=8, n_layer=2), 10, 4)),
        Case("half precision, one layer, one key/value head",
             lambda: (_gpt_config(n_embd=32, n_head=4, n_kv_head=1, n_layer=1), 7, 2)),
    ),
    contract=_whole_number,
    mistakes=(
        Mistake("the cache sized by the query heads; with grouping it holds only the key/value heads",
                lambda config, seq_len, nbytes: 2 * config.n_layer * config.n_embd * seq_len * nbytes),
        Mistake("only the keys counted; the cache holds keys and values",
                lambda config, seq_len, nbytes: _reference_kv_cache_bytes(config, seq_len, nbytes) // 2),
    ),
    noun="size",
)


def check_kv_cache_bytes(fn: Callable[[Any, int, int], Any], quiet: bool = False) -> CheckResult:
    """`fn(config, seq_len, bytes_per_value)` -> bytes of the KV cache of one sequence."""
    return KV_CACHE_BYTES.check(fn, quiet=quiet)
