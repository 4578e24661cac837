"""Checks for notebooks/11_beyond_gpt2.ipynb: the three pieces the learner writes, the exercises, the questions.

The pieces: ``rms_norm(x, weight, eps)`` (`check_rms_norm`), ``apply_rope(x, offset, theta)``
(rotary embeddings in Llama's halves layout, the rows starting at position `offset` as a KV
cache needs; `check_apply_rope`) and ``repeat_kv(k, n_rep)`` (grouped-query attention's
sharing of key/value heads; `check_repeat_kv`). The references here are what the notebook's
collapsed reference cells show; tests/test_checks_learners.py compares them with `course_lib`
and `transformers`. The exercises at the end: `check_rope_interleaved` (Meta's layout),
`check_rope_permutation` (the weight permutation from that layout to the halves),
`check_grouped_cached_attention` (grouped-query attention after a cache, without copying the
keys) and `check_kv_cache_bytes`; then three concept questions (`answer(name, letter)`).

Introduced in notebooks/11_beyond_gpt2.ipynb.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from ._core import Case, CheckResult, Exercise, Mistake, Question, as_number, describe

__all__ = ["check_rms_norm", "check_apply_rope", "check_repeat_kv", "check_rope_interleaved",
           "check_rope_permutation", "check_grouped_cached_attention", "check_kv_cache_bytes"]


def _a_tensor(got: Any) -> str | None:
    if not isinstance(got, torch.Tensor):
        return f"your result is {describe(got, 80)} (a {type(got).__name__}); return a torch tensor"
    return None


def _randn(*shape: int, scale: float = 1.0, shift: float = 0.0) -> torch.Tensor:
    return torch.randn(*shape) * scale + shift  # the check seeds torch before each case


# --------------------------------------------------------------------- piece 1: RMSNorm
def rms_norm(x, weight, eps=1e-6):
    """RMSNorm over the last dimension: x (..., C), gain weight (C,) -> (..., C).

    Each position is divided by the root mean square of its C channels (eps added to the mean
    of the squares, inside the root), then each channel is multiplied by its gain. Nothing is
    subtracted: unlike LayerNorm, the mean stays.
    """
    ms = x.pow(2).mean(dim=-1, keepdim=True)        # (..., 1): the mean of the squares, one per position
    return x * torch.rsqrt(ms + eps) * weight        # (..., C): every position has rms 1, then the gain


def _rms_inputs(rng: random.Random) -> tuple[torch.Tensor, torch.Tensor, float]:
    C = rng.randint(1, 24)
    shape = [rng.randint(1, 4) for _ in range(rng.randint(0, 2))] + [C]
    x = torch.randn(shape) * rng.choice([0.1, 1.0, 5.0]) + rng.choice([0.0, 2.0, -3.0])
    return x, 1 + 0.3 * torch.randn(C), rng.choice([1e-5, 1e-6, 1e-3])


RMS_NORM = Exercise(
    name="rms_norm",
    reference=rms_norm,
    make_inputs=_rms_inputs,
    hints=(
        "RMSNorm keeps only half of LayerNorm: it rescales each position by the root mean square of its "
        "channels, and nothing is subtracted first. Then the learned gain multiplies each channel",
        "the mean of the squares is taken over the last dimension only, one number per position; eps is "
        "added before the square root; there is no bias and no mean, and the default eps is one in a million",
    ),
    cases=(
        Case("a row with a large mean", (torch.tensor([[3.0, 4.0, 5.0, 6.0]]), torch.ones(4), 1e-6)),
        Case("tiny values, where eps matters",
             (torch.tensor([[1e-3, -2e-3, 3e-3]]), torch.tensor([1.0, 2.0, 0.5]), 1e-5)),
        Case("tiny values, eps left at its default", (torch.tensor([[1e-3, -1e-3], [2e-3, 0.0]]), torch.ones(2))),
        Case("a row of zeros", (torch.zeros(2, 4), torch.linspace(0.5, 2.0, 4), 1e-6)),
        Case("a single channel", (torch.tensor([[2.0], [-0.5]]), torch.tensor([3.0]), 1e-6)),
        Case("one vector, with no batch or time axis", lambda: (_randn(6, shift=1.0), 1 + 0.3 * _randn(6), 1e-6)),
        Case("a batch of two sequences of three positions",
             lambda: (_randn(2, 3, 5, scale=2.0, shift=1.0), torch.linspace(0.5, 1.5, 5), 1e-6)),
    ),
    mistakes=(
        Mistake("the mean subtracted first (that is LayerNorm); RMSNorm only divides by the root mean square",
                lambda x, weight, eps=1e-6: F.layer_norm(x, x.shape[-1:], weight, None, eps)),
        Mistake("eps added after the square root instead of inside it",
                lambda x, weight, eps=1e-6: x / (x.pow(2).mean(-1, keepdim=True).sqrt() + eps) * weight),
        Mistake("one root mean square for the whole tensor instead of one for each position",
                lambda x, weight, eps=1e-6: x * torch.rsqrt(x.pow(2).mean() + eps) * weight),
    ),
    contract=_a_tensor,
    noun="normalised tensor",
)


def check_rms_norm(fn: Callable[..., Any], quiet: bool = False) -> CheckResult:
    """`fn(x, weight, eps=1e-6)` -> RMSNorm of x (..., C) with gain `weight` (C,)."""
    return RMS_NORM.check(fn, quiet=quiet)


# --------------------------------------------------------------------- piece 2: RoPE with an offset
def apply_rope(x, offset=0, theta=10000.0):
    """Rotary position embedding in Llama's halves layout: x (B, nh, T, hs) -> (B, nh, T, hs).

    Row t of x stands at position offset + t (offset = the tokens a KV cache already holds).
    Channel i and channel i + hs/2 form pair i, which turns by the angle
    position * theta^(-2i/hs): (a, b) -> (a cos - b sin, b cos + a sin).
    """
    T, hs = x.size(-2), x.size(-1)
    inv_freq = 1.0 / theta ** (torch.arange(0, hs, 2, device=x.device).float() / hs)  # (hs/2,): fast ... slow
    positions = torch.arange(offset, offset + T, device=x.device).float()             # (T,): offset, offset + 1, ...
    angle = positions[:, None] * inv_freq[None, :]                                     # (T, hs/2)
    cos, sin = angle.cos(), angle.sin()
    a, b = x[..., : hs // 2], x[..., hs // 2:]                                         # (B, nh, T, hs/2) each
    return torch.cat([a * cos - b * sin, b * cos + a * sin], dim=-1)                   # (B, nh, T, hs)


def _angles(T: int, hs: int, offset: int, theta: float, step: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    inv_freq = 1.0 / theta ** (torch.arange(0, step * (hs // 2), step).float() / hs)  # (hs/2,)
    angle = torch.arange(offset, offset + T).float()[:, None] * inv_freq[None, :]      # (T, hs/2)
    return angle.cos(), angle.sin()


def _rope_variant(pairs: str = "halves", from_zero: bool = False, turn: int = 1, step: int = 2,
                  out: str = "same") -> Callable[..., torch.Tensor]:
    """A RoPE in some layout, or a known-wrong one: which channels pair up, the offset, the direction,
    the frequencies, and (for neighbour pairs) how the turned pairs are written back."""

    def rope(x, offset=0, theta=10000.0):
        T, hs = x.shape[-2], x.shape[-1]
        cos, sin = _angles(T, hs, 0 if from_zero else offset, theta, step)
        sin = sin * turn
        a, b = (x[..., : hs // 2], x[..., hs // 2:]) if pairs == "halves" else (x[..., 0::2], x[..., 1::2])
        a2, b2 = a * cos - b * sin, b * cos + a * sin
        if pairs == "halves" or out == "halves":
            return torch.cat([a2, b2], dim=-1)
        return torch.stack([a2, b2], dim=-1).flatten(-2)

    return rope


def _rope_inputs(rng: random.Random) -> tuple[torch.Tensor, int, float]:
    hs, T = 2 * rng.randint(1, 8), rng.randint(1, 7)
    x = torch.randn(rng.randint(1, 2), rng.randint(1, 3), T, hs)
    return x, rng.choice([0, 0, rng.randint(1, 60)]), rng.choice([10000.0, 500.0, 1e6])


def _counting(*shape: int) -> torch.Tensor:
    return torch.arange(1.0, math.prod(shape) + 1).reshape(shape) / 8


APPLY_ROPE = Exercise(
    name="apply_rope",
    reference=apply_rope,
    make_inputs=_rope_inputs,
    hints=(
        "each head's channels form pairs and each pair turns by an angle, its position times its frequency: "
        "the first pairs turn fast, the last ones slowly. In the Llama layout a pair is channel i of the "
        "first half with channel i of the second half. The row at index t stands at position offset plus t",
        "pair i turns with the frequency theta to the power minus two i over the head size; the turned pair "
        "is the first times the cosine minus the second times the sine, then the second times the cosine "
        "plus the first times the sine. Make new tensors on the input's device",
    ),
    cases=(
        Case("one head of size 8, counting values, offset 0", lambda: (_counting(1, 1, 2, 8), 0, 10000.0)),
        Case("a single position at offset 0", lambda: (_randn(1, 2, 1, 4), 0, 10000.0)),
        Case("one new token after 57 cached ones: offset 57", lambda: (_randn(1, 2, 1, 8), 57, 10000.0)),
        Case("three positions after a cache of five, theta 500", lambda: (_randn(2, 1, 3, 6), 5, 500.0)),
        Case("head size 2: a single pair", lambda: (_randn(1, 1, 4, 2), 3, 10000.0)),
        Case("a batch of two, four heads, offset 0", lambda: (_randn(2, 4, 5, 8), 0, 10000.0)),
    ),
    mistakes=(
        Mistake("neighbouring channels turned as pairs (Meta's layout); here pair i is channel i with channel "
                "i plus half the head size", _rope_variant(pairs="neighbours")),
        Mistake("the offset ignored: the rows counted from position zero, so tokens after a cache get the "
                "positions of the first ones", _rope_variant(from_zero=True)),
        Mistake("each pair turned the wrong way round (the signs of the sine swapped)", _rope_variant(turn=-1)),
        Mistake("the frequencies with theta to the minus i over the head size instead of minus two i",
                _rope_variant(step=1)),
    ),
    contract=_a_tensor,
    atol=1e-4,  # angles up to ~70 rad: a float32 rounding of the frequency moves the cosine by ~1e-5
    noun="rotated tensor",
)


def check_apply_rope(fn: Callable[..., Any], quiet: bool = False) -> CheckResult:
    """`fn(x, offset=0, theta=10000.0)` -> x (B, nh, T, hs) rotated by RoPE (halves layout) at positions
    offset .. offset + T - 1."""
    return APPLY_ROPE.check(fn, quiet=quiet)


# --------------------------------------------------------------------- piece 3: GQA's repeat_kv
def repeat_kv(k, n_rep):
    """Each key/value head n_rep times in a row: k (B, nkv, S, hs) -> (B, nkv * n_rep, S, hs).

    Query head j reads key/value head j // n_rep, so the copies of one head sit side by side.
    """
    B, nkv, S, hs = k.shape
    return k[:, :, None].expand(B, nkv, n_rep, S, hs).reshape(B, nkv * n_rep, S, hs)


def _repeat_inputs(rng: random.Random) -> tuple[torch.Tensor, int]:
    k = torch.randn(rng.randint(1, 2), rng.randint(1, 4), rng.randint(1, 5), rng.choice([2, 4, 6]))
    return k, rng.randint(1, 4)


def _numbered_heads(B: int, nkv: int, S: int, hs: int) -> torch.Tensor:
    """Head h holds the value h + 1 everywhere (a position's number added as a hundredth)."""
    heads = torch.arange(1.0, nkv + 1).view(1, nkv, 1, 1) + torch.arange(S).view(1, 1, S, 1) / 100
    return heads.expand(B, nkv, S, hs).clone()


REPEAT_KV = Exercise(
    name="repeat_kv",
    reference=repeat_kv,
    make_inputs=_repeat_inputs,
    hints=(
        "every key-value head serves a group of neighbouring query heads: the first group of query heads "
        "uses the first key-value head, the next group the second, and so on",
        "copy each key-value head n_rep times in a row along the head dimension, so the copies of one head "
        "sit side by side; tiling the whole stack n_rep times puts the heads in the wrong order, and the "
        "positions must not be copied",
    ),
    cases=(
        Case("two numbered key/value heads, each for three query heads", lambda: (_numbered_heads(1, 2, 2, 2), 3)),
        Case("one key/value head for four query heads (multi-query)", lambda: (_randn(2, 1, 3, 4), 4)),
        Case("one repetition (plain multi-head attention)", lambda: (_randn(1, 3, 2, 2), 1)),
        Case("a single position, three heads", lambda: (_numbered_heads(1, 3, 1, 4), 2)),
    ),
    mistakes=(
        Mistake("the heads tiled (0, 1, 0, 1) instead of each repeated in place (0, 0, 1, 1)",
                lambda k, n_rep: k.repeat(1, n_rep, 1, 1)),
        Mistake("the copies made along the positions instead of along the heads",
                lambda k, n_rep: k.repeat_interleave(n_rep, dim=2)),
    ),
    contract=_a_tensor,
    noun="repeated keys",
)


def check_repeat_kv(fn: Callable[[torch.Tensor, int], Any], quiet: bool = False) -> CheckResult:
    """`fn(k, n_rep)` -> k (B, nkv, S, hs) with each head repeated in place: (B, nkv * n_rep, S, hs)."""
    return REPEAT_KV.check(fn, quiet=quiet)


# --------------------------------------------------------------------- exercise 1: Meta's interleaved RoPE
def _ref_rope_interleaved(x: torch.Tensor, offset: int, theta: float) -> torch.Tensor:
    """RoPE in Meta's layout: pair i is channels 2i and 2i + 1 (neighbours), the same angles as the halves."""
    T, hs = x.size(-2), x.size(-1)
    inv_freq = 1.0 / theta ** (torch.arange(0, hs, 2, device=x.device).float() / hs)  # (hs/2,)
    angle = torch.arange(offset, offset + T, device=x.device).float()[:, None] * inv_freq[None, :]  # (T, hs/2)
    cos, sin = angle.cos(), angle.sin()
    a, b = x[..., 0::2], x[..., 1::2]                       # the even and the odd channels, (B, nh, T, hs/2)
    turned = torch.stack([a * cos - b * sin, b * cos + a * sin], dim=-1)  # (B, nh, T, hs/2, 2)
    return turned.flatten(-2)                                # (B, nh, T, hs): each pair back in its two places


ROPE_INTERLEAVED = Exercise(
    name="rope_interleaved",
    reference=_ref_rope_interleaved,
    make_inputs=_rope_inputs,
    hints=(
        "the angles are exactly those of your apply_rope; only which two channels form a pair changes: "
        "here a pair is an even channel and the odd one right after it",
        "take the even channels and the odd channels apart, turn each pair as before, then put each turned "
        "pair back where it came from, the even member before the odd one, so neighbours stay neighbours",
    ),
    cases=(
        Case("one head of size 4, counting values, offset 0", lambda: (_counting(1, 1, 2, 4), 0, 10000.0)),
        Case("one new token at offset 9", lambda: (_randn(1, 2, 1, 8), 9, 10000.0)),
        Case("head size 2: a single pair, where both layouts agree", lambda: (_randn(1, 1, 3, 2), 4, 10000.0)),
        Case("two heads of size 6, theta 500", lambda: (_randn(2, 2, 3, 6), 2, 500.0)),
    ),
    mistakes=(
        Mistake("the halves layout of your piece above; Meta pairs each even channel with the odd one after it",
                _rope_variant(pairs="halves")),
        Mistake("the pairs turned right but written back as halves (all first members, then all second ones)",
                _rope_variant(pairs="neighbours", out="halves")),
        Mistake("the offset ignored: the rows counted from position zero", _rope_variant("neighbours", True)),
    ),
    contract=_a_tensor,
    atol=1e-4,
    noun="rotated tensor",
)


def check_rope_interleaved(fn: Callable[[torch.Tensor, int, float], Any], quiet: bool = False) -> CheckResult:
    """`fn(x, offset, theta)` -> x (B, nh, T, hs) rotated by RoPE in Meta's layout (pairs 2i, 2i + 1)."""
    return ROPE_INTERLEAVED.check(fn, quiet=quiet)


# --------------------------------------------------------------------- exercise 2: the weight permutation
def _ref_rope_permutation(w: torch.Tensor, n_head: int) -> torch.Tensor:
    """Rows of a q or k projection (n_head * hs, C), each head in Meta's order, reordered for the halves.

    Within each head, new row j is old row 2j and new row hs/2 + j is old row 2j + 1: Meta's pair
    (2j, 2j + 1) becomes the halves' pair (j, j + hs/2).
    """
    rows, C = w.shape
    hs = rows // n_head
    per_head = w.reshape(n_head, hs // 2, 2, C)              # (nh, pair, member, C)
    return per_head.transpose(1, 2).reshape(rows, C)         # (nh, member, pair, C): first members, then second


def _permutation_inputs(rng: random.Random) -> tuple[torch.Tensor, int]:
    n_head, hs = rng.randint(1, 4), 2 * rng.randint(1, 4)
    return torch.randn(n_head * hs, rng.randint(1, 6)), n_head


def _row_numbers(rows: int, C: int) -> torch.Tensor:
    return torch.arange(float(rows)).view(rows, 1).expand(rows, C).clone()  # row r holds r everywhere


ROPE_PERMUTATION = Exercise(
    name="rope_permutation",
    reference=_ref_rope_permutation,
    make_inputs=_permutation_inputs,
    hints=(
        "a channel of q is one row of the projection weight, so reordering a head's rows reorders its "
        "channels; in the halves layout a head lists the first members of Meta's pairs, then the second ones",
        "work within each head on its own: its rows are pairs of neighbours; put the first row of every pair "
        "first, in order, then the second row of every pair. The heads themselves keep their order",
    ),
    cases=(
        Case("one head of size 4, rows numbered", lambda: (_row_numbers(4, 2), 1)),
        Case("two heads of size 4, rows numbered", lambda: (_row_numbers(8, 1), 2)),
        Case("three heads of size 6", lambda: (_randn(18, 3), 3)),
        Case("heads of size 2, where nothing moves", lambda: (_randn(6, 4), 3)),
    ),
    mistakes=(
        Mistake("one reordering of all the rows together instead of one within each head",
                lambda w, n_head: _ref_rope_permutation(w, 1)),
        Mistake("the reverse reordering, from the halves back to neighbouring pairs",
                lambda w, n_head: w.reshape(n_head, 2, w.shape[0] // n_head // 2, w.shape[1]).transpose(1, 2)
                .reshape(w.shape)),
    ),
    contract=_a_tensor,
    noun="weight",
)


def check_rope_permutation(fn: Callable[[torch.Tensor, int], Any], quiet: bool = False) -> CheckResult:
    """`fn(w, n_head)` -> the rows of w (n_head * hs, C) reordered from Meta's RoPE layout to the halves."""
    return ROPE_PERMUTATION.check(fn, quiet=quiet)


# --------------------------------------------------------------------- exercise 3: GQA after a cache
def _ref_grouped_cached_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Causal attention of T new queries (B, nh, T, hs) over S keys and values (B, nkv, S, hs), S >= T.

    The queries are the last T of the S positions (the first S - T come from the cache). Query head
    j uses key/value head j // (nh / nkv); the query heads are grouped, the keys are not copied.
    """
    B, nh, T, hs = q.shape
    nkv, S = k.size(1), k.size(2)
    groups = q.reshape(B, nkv, nh // nkv, T, hs)                            # (B, nkv, group, T, hs)
    scores = groups @ k.unsqueeze(2).transpose(-2, -1) / math.sqrt(hs)      # (B, nkv, group, T, S)
    seen = torch.ones(T, S, dtype=torch.bool, device=q.device).tril(S - T)  # query t sits at position S - T + t
    weights = scores.masked_fill(~seen, float("-inf")).softmax(dim=-1)      # (B, nkv, group, T, S)
    return (weights @ v.unsqueeze(2)).reshape(B, nh, T, hs)                 # (B, nh, T, hs)


def _gqa_variant(shift: bool = True, round_robin: bool = False) -> Callable[..., torch.Tensor]:
    def wrong(q, k, v):
        B, nh, T, hs = q.shape
        nkv, S = k.size(1), k.size(2)
        heads = torch.arange(nh) % nkv if round_robin else torch.arange(nh) // (nh // nkv)
        k_all, v_all = k[:, heads], v[:, heads]                              # (B, nh, S, hs)
        seen = torch.ones(T, S, dtype=torch.bool).tril(S - T if shift else 0)
        scores = (q @ k_all.transpose(-2, -1) / math.sqrt(hs)).masked_fill(~seen, float("-inf"))
        return scores.softmax(-1) @ v_all

    return wrong


def _gqa_qkv(B: int, nh: int, nkv: int, T: int, S: int, hs: int) -> tuple[torch.Tensor, ...]:
    return torch.randn(B, nh, T, hs), torch.randn(B, nkv, S, hs), torch.randn(B, nkv, S, hs)


def _gqa_inputs(rng: random.Random) -> tuple[torch.Tensor, ...]:
    nkv, group, T = rng.randint(1, 3), rng.randint(1, 3), rng.randint(1, 4)
    return _gqa_qkv(rng.randint(1, 2), nkv * group, nkv, T, T + rng.choice([0, 0, rng.randint(1, 5)]),
                    rng.choice([2, 4, 8]))


GROUPED_CACHED_ATTENTION = Exercise(
    name="grouped_cached_attention",
    reference=_ref_grouped_cached_attention,
    make_inputs=_gqa_inputs,
    hints=(
        "two things differ from the attention of notebook 03: a key-value head serves a group of "
        "neighbouring query heads, and the new queries come after the cached positions, so each of them "
        "sees every cached key, itself and the new keys before it",
        "give the query heads a group axis next to the key-value heads and let broadcasting match each "
        "group with its one key-value head; the last query sits at the last position, so the causal mask "
        "of a T by S score matrix is shifted right by S minus T",
    ),
    cases=(
        Case("no cache, two query heads for each of two key/value heads",
             lambda: _gqa_qkv(1, 4, 2, 3, 3, 4)),
        Case("one new token after four cached positions", lambda: _gqa_qkv(1, 2, 1, 1, 5, 4)),
        Case("three new tokens after two cached, four query heads sharing one key/value head (multi-query)",
             lambda: _gqa_qkv(2, 4, 1, 3, 5, 2)),
        Case("six query heads, three key/value heads, one new token after a cache of two",
             lambda: _gqa_qkv(1, 6, 3, 1, 3, 2)),
        Case("as many key/value heads as query heads", lambda: _gqa_qkv(1, 3, 3, 2, 4, 4)),
    ),
    mistakes=(
        Mistake("the causal mask not shifted by the cache: each new query sees only the first keys",
                _gqa_variant(shift=False)),
        Mistake("the query heads dealt out round-robin (head j to key/value head j modulo their number) "
                "instead of in neighbouring groups", _gqa_variant(round_robin=True)),
    ),
    contract=_a_tensor,
    noun="output",
)


def check_grouped_cached_attention(fn: Callable[..., Any], quiet: bool = False) -> CheckResult:
    """`fn(q, k, v)`: q (B, nh, T, hs), k and v (B, nkv, S, hs) with the queries at the last T of S
    positions -> causal grouped-query attention (B, nh, T, hs)."""
    return GROUPED_CACHED_ATTENTION.check(fn, quiet=quiet)


# --------------------------------------------------------------------- exercise 4: the KV cache's size
def _reference_kv_cache_bytes(config: Any, seq_len: int, bytes_per_value: int) -> int:
    """Keys and values, in every layer, for each key/value head (n_head when n_kv_head is unset)."""
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


# --------------------------------------------------------------------- concept questions
QUESTIONS_11 = (
    Question(
        name="cache_switch",
        options={"a": "RMSNorm", "b": "RoPE", "c": "grouped-query attention", "d": "SwiGLU"},
        right="c",
        why=("The cache holds one key and one value vector per key/value head, per layer and position: only "
             "fewer key/value heads make it smaller. RoPE rotates the keys before they are cached but keeps "
             "their size, and the norm and the MLP never enter the cache."),
        hints=("ask what the cache stores for each past position, and which switch changes how many of those "
               "vectors there are",
               "the switch that shares one stored key and value among several query heads"),
        wrong={"a": "the norm acts on the residual stream; nothing of it is stored for later tokens",
               "b": ("RoPE has no position table, but the keys it rotates are cached at full size: the cache "
                     "is as big as before"),
               "d": "the MLP works on each position alone; nothing of it is kept for later tokens"},
    ),
    Question(
        name="meta_permutation",
        options={"a": "q_proj and k_proj", "b": "q_proj, k_proj and v_proj",
                 "c": "all four: q_proj, k_proj, v_proj and o_proj", "d": "none: only the cos and sin tables change"},
        right="a",
        why=("RoPE turns only queries and keys. Reordering the channels of q and k the same way leaves every "
             "score q·k unchanged, and the permutation makes the halves' pairs the very pairs Meta turned. "
             "Values are never rotated, so v_proj and o_proj stay as they are."),
        hints=("which vectors does RoPE turn, and which ones only get averaged?",
               "a score is a dot product: it does not change when both of its vectors have their channels "
               "reordered in the same way"),
        wrong={"b": "the values are averaged by the weights, never rotated: their channel order does not matter "
                    "to RoPE",
               "c": "o_proj reads the values' channels, which RoPE never touches",
               "d": ("the tables say how much each pair turns, not which channels form a pair: the pairs "
                     "themselves must be moved, in the weights that make q and k")},
    ),
    Question(
        name="rmsnorm_constant",
        options={"a": "all zeros", "b": "all −1", "c": "all 1", "d": "all −2"},
        right="b",
        why=("The root mean square of a vector of −2s is 2, so RMSNorm divides it into a vector of −1s (times "
             "the gain 1): the sign and the direction stay. LayerNorm would give zeros, since it subtracts "
             "the mean first."),
        hints=("RMSNorm divides by one positive number per position and subtracts nothing",
               "what is the root mean square of a vector whose entries are all minus two?"),
        wrong={"a": "zeros come from subtracting the mean first, which is LayerNorm, not RMSNorm",
               "c": "the root mean square is positive, so dividing by it keeps each entry's sign",
               "d": "RMSNorm rescales every position to a root mean square of one"},
    ),
)
