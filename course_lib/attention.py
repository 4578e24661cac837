"""Causal self-attention, the explicit way and the fast way.

The explicit path spells out the math of "Attention Is All You Need" (Vaswani et al.,
2017, https://arxiv.org/abs/1706.03762), section 3.2:

    softmax(Q K^T / sqrt(d_k) + causal mask) V

The fast path hands the same computation to PyTorch's fused
`torch.nn.functional.scaled_dot_product_attention` (flash / memory-efficient kernels
where available). Both give the same numbers; the explicit path is used whenever the
attention weights themselves are asked for (visualization).

Shapes: B batch, T query length, S key length (T plus what is cached), C = n_embd,
nh heads, hs = C // nh head size, nkv key/value heads (nkv = nh unless grouped).

Two switches that GPT-2's descendants (Llama and most open models) turned on, kept
apart at the end of this file and off by default: rotary position embeddings
(`rope_cos_sin`, `apply_rope`; Su et al. 2021, https://arxiv.org/abs/2104.09864) and
grouped-query attention (`n_kv_head < n_head`, `repeat_kv`; Ainslie et al. 2023,
https://arxiv.org/abs/2305.13245).

Introduced in notebooks/03_attention.ipynb; `padded_causal_mask()` in notebook 07; `rope_cos_sin()`,
`rotate_half()`, `apply_rope()`, `repeat_kv()` in notebook 11.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .errors import CourseInputError

LayerCache = tuple[torch.Tensor, torch.Tensor]  # one layer's (k, v), each (B, nkv, S, hs)
RoPE = tuple[torch.Tensor, torch.Tensor]  # (cos, sin), each (T, hs): see rope_cos_sin


def causal_mask(T: int, S: int | None = None, device: torch.device | str | None = None) -> torch.Tensor:
    """Boolean (T, S) mask, True where query i may attend to key j.

    With S > T the queries are the last T of S positions (the first S - T are cached),
    so query i sits at position S - T + i and sees keys 0 .. S - T + i.
    """
    S = T if S is None else S
    if S < T:
        raise CourseInputError(f"causal_mask: key length S={S} is shorter than query length T={T}")
    return torch.ones(T, S, dtype=torch.bool, device=device).tril(diagonal=S - T)


def padded_causal_mask(attention_mask: torch.Tensor, T: int) -> torch.Tensor:
    """Boolean (B, 1, T, S) mask for the last T of S positions of a padded batch, True = may attend.

    `attention_mask` (B, S) is 1 for text and 0 for padding (transformers' convention). A query
    sees the text keys up to its own position; a pad query sees only itself, so no row of the
    softmax is empty (an all-masked row would give NaN, and NaN times a zero weight is still NaN).
    """
    S = attention_mask.size(1)
    causal = causal_mask(T, S, device=attention_mask.device)  # (T, S)
    diagonal = causal & ~causal.tril(diagonal=S - T - 1)  # (T, S): query i and its own key S - T + i
    keep = causal[None] & attention_mask.bool()[:, None, :]  # (B, T, S)
    return (keep | diagonal[None])[:, None]  # (B, 1, T, S): one mask for every head


def attention_weights(q: torch.Tensor, k: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """softmax(q k^T / sqrt(hs)) with masked positions set to zero probability.

    q: (..., T, hs), k: (..., S, hs), mask: broadcastable to (..., T, S), True = keep.
    Returns (..., T, S); each row sums to 1.
    """
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))  # (..., T, S)
    if mask is not None:
        scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    return torch.softmax(scores, dim=-1)


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention with GPT-2's parameter names.

    `c_attn` projects to queries, keys and values at once (one fused matmul), `c_proj`
    mixes the heads back into the residual stream. A KV cache (`layer_past`) lets
    generation feed one new token at a time.
    """

    def __init__(
        self, n_embd: int, n_head: int, dropout: float = 0.0, n_kv_head: int | None = None, bias: bool = True
    ) -> None:
        super().__init__()
        if n_embd % n_head != 0:
            raise CourseInputError(
                f"n_embd={n_embd} is not divisible by n_head={n_head}: each head gets n_embd // n_head "
                f"channels; pick n_head among {[h for h in range(1, n_embd + 1) if n_embd % h == 0][:12]}"
            )
        n_kv_head = n_head if n_kv_head is None else n_kv_head
        if n_kv_head < 1 or n_head % n_kv_head != 0:
            raise CourseInputError(
                f"n_kv_head={n_kv_head} must divide n_head={n_head}: each key/value head serves "
                f"n_head // n_kv_head query heads; pick among {[h for h in range(1, n_head + 1) if n_head % h == 0]}"
            )
        self.n_head = n_head
        self.n_embd = n_embd
        self.n_kv_head = n_kv_head  # grouped-query attention when < n_head
        self.kv_dim = n_kv_head * (n_embd // n_head)  # n_embd for GPT-2
        self.c_attn = nn.Linear(n_embd, n_embd + 2 * self.kv_dim, bias=bias)  # q, k, v side by side
        self.c_proj = nn.Linear(n_embd, n_embd, bias=bias)
        self.attn_dropout = nn.Dropout(dropout)
        self.resid_dropout = nn.Dropout(dropout)
        self.dropout = dropout

    def _split_heads(self, t: torch.Tensor) -> torch.Tensor:
        B, T, C = t.shape
        hs = self.n_embd // self.n_head
        return t.view(B, T, C // hs, hs).transpose(1, 2)  # (B, nh, T, hs), or (B, nkv, T, hs) for k, v

    def forward(
        self,
        x: torch.Tensor,
        layer_past: LayerCache | None = None,
        use_cache: bool = False,
        output_attentions: bool = False,
        rope: RoPE | None = None,
        attention_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, LayerCache | None, torch.Tensor | None]:
        """x: (B, T, C). Returns (y (B, T, C), present (k, v) or None, weights (B, nh, T, S) or None).

        `rope` = (cos, sin) for the T new positions (they start after the cached ones).
        `attention_mask`: None (every earlier position is text), or a boolean (B, 1, T, S), True where
        a query may attend to a key, the causal rule included (`padded_causal_mask`: pads are never seen).
        """
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split([self.n_embd, self.kv_dim, self.kv_dim], dim=2)  # (B, T, C), k v (B, T, kv_dim)
        q, k, v = self._split_heads(q), self._split_heads(k), self._split_heads(v)  # (B, nh, T, hs), k v nkv heads
        if rope is not None:  # switch: rotary positions turn q and k by an angle that grows with position
            q, k = apply_rope(q, *rope), apply_rope(k, *rope)
        if layer_past is not None:
            k = torch.cat([layer_past[0], k], dim=2)  # (B, nkv, S, hs)
            v = torch.cat([layer_past[1], v], dim=2)
        present = (k, v) if use_cache else None  # only the nkv heads are cached: GQA's memory saving
        S = k.size(2)
        if self.n_kv_head != self.n_head:  # switch: grouped-query attention shares each k, v head
            k, v = repeat_kv(k, self.n_head // self.n_kv_head), repeat_kv(v, self.n_head // self.n_kv_head)

        weights = None
        if output_attentions:  # the explicit, readable path
            mask = causal_mask(T, S, device=x.device) if attention_mask is None else attention_mask
            weights = attention_weights(q, k, mask)  # (B, nh, T, S)
            y = self.attn_dropout(weights.to(v.dtype)) @ v  # (B, nh, T, hs)
        else:  # the fused fast path: same numbers, no (T, S) matrix kept
            p = self.dropout if self.training else 0.0
            if attention_mask is not None:  # a padded batch: the mask says who sees whom
                y = F.scaled_dot_product_attention(q, k, v, attn_mask=attention_mask, dropout_p=p)
            elif T == S:
                y = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True)
            elif T == 1:  # one new token sees every cached key
                y = F.scaled_dot_product_attention(q, k, v, dropout_p=p)
            else:
                mask = causal_mask(T, S, device=x.device)
                y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # (B, T, C): heads side by side
        return self.resid_dropout(self.c_proj(y)), present, weights


# ----------------------------------------------------------------------------------------
# Switches from GPT-2's descendants (Llama and others): off by default
# ----------------------------------------------------------------------------------------
def rope_cos_sin(
    positions: torch.Tensor, head_size: int, theta: float = 10000.0
) -> RoPE:
    """Rotary position embedding tables: (cos, sin), each (T, hs), for integer `positions` (T,)
    (or (B, T) -> (B, T, hs): a padded batch, each row with its own positions).

    Channel pair i (channels i and i + hs/2, the "rotate_half" layout of Hugging Face's
    Llama) turns by angle position * theta^(-2i/hs): fast for the first pairs, slow for
    the last. Computed as `transformers`' LlamaRotaryEmbedding does, in float32.
    """
    if head_size % 2:
        raise CourseInputError(f"rotary embeddings pair up channels: head size {head_size} must be even")
    # on the CPU, then moved, as transformers does: the same float32 frequencies on every device
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_size, 2, dtype=torch.float, device="cpu") / head_size))
    freqs = positions.float()[..., None] * inv_freq.to(positions.device)  # (T, hs/2)
    emb = torch.cat((freqs, freqs), dim=-1)  # (T, hs): pair i uses channels i and i + hs/2
    return emb.cos(), emb.sin()


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """(x1, x2) -> (-x2, x1) on the two halves of the last dimension."""
    x1, x2 = x.chunk(2, dim=-1)  # each (..., hs/2)
    return torch.cat((-x2, x1), dim=-1)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate each channel pair of x (B, nh, T, hs) by its position's angle: x cos + rotate_half(x) sin.

    A dot product of two rotated vectors depends only on how far apart their
    positions are, which is how attention learns relative position.
    """
    return x * cos.to(x.dtype) + rotate_half(x) * sin.to(x.dtype)  # (B, nh, T, hs)


def repeat_kv(x: torch.Tensor, n_rep: int) -> torch.Tensor:
    """(B, nkv, S, hs) -> (B, nkv * n_rep, S, hs): query head j uses key/value head j // n_rep."""
    return x if n_rep == 1 else x.repeat_interleave(n_rep, dim=1)
