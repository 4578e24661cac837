"""Causal self-attention, the explicit way and the fast way.

The explicit path spells out the math of "Attention Is All You Need" (Vaswani et al.,
2017, https://arxiv.org/abs/1706.03762), section 3.2:

    softmax(Q K^T / sqrt(d_k) + causal mask) V

The fast path hands the same computation to PyTorch's fused
`torch.nn.functional.scaled_dot_product_attention` (flash / memory-efficient kernels
where available). Both give the same numbers; the explicit path is used whenever the
attention weights themselves are asked for (visualization).

Shapes: B batch, T query length, S key length (T plus what is cached), C = n_embd,
nh heads, hs = C // nh head size.

Introduced in notebooks/03_attention.ipynb.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .errors import CourseInputError

KVCache = tuple[torch.Tensor, torch.Tensor]  # (k, v), each (B, nh, S, hs)


def causal_mask(T: int, S: int | None = None, device: torch.device | str | None = None) -> torch.Tensor:
    """Boolean (T, S) mask, True where query i may attend to key j.

    With S > T the queries are the last T of S positions (the first S - T are cached),
    so query i sits at position S - T + i and sees keys 0 .. S - T + i.

    Introduced in notebooks/03_attention.ipynb.
    """
    S = T if S is None else S
    if S < T:
        raise CourseInputError(f"causal_mask: key length S={S} is shorter than query length T={T}")
    return torch.ones(T, S, dtype=torch.bool, device=device).tril(diagonal=S - T)


def attention_weights(q: torch.Tensor, k: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """softmax(q k^T / sqrt(hs)) with masked positions set to zero probability.

    q: (..., T, hs), k: (..., S, hs), mask: broadcastable to (..., T, S), True = keep.
    Returns (..., T, S); each row sums to 1.

    Introduced in notebooks/03_attention.ipynb.
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

    Introduced in notebooks/03_attention.ipynb.
    """

    def __init__(self, n_embd: int, n_head: int, dropout: float = 0.0) -> None:
        super().__init__()
        if n_embd % n_head != 0:
            raise CourseInputError(
                f"n_embd={n_embd} is not divisible by n_head={n_head}: each head gets n_embd // n_head "
                f"channels; pick n_head among {[h for h in range(1, n_embd + 1) if n_embd % h == 0][:12]}"
            )
        self.n_head = n_head
        self.n_embd = n_embd
        self.c_attn = nn.Linear(n_embd, 3 * n_embd)
        self.c_proj = nn.Linear(n_embd, n_embd)
        self.attn_dropout = nn.Dropout(dropout)
        self.resid_dropout = nn.Dropout(dropout)
        self.dropout = dropout

    def _split_heads(self, t: torch.Tensor) -> torch.Tensor:
        B, T, C = t.shape
        return t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)

    def forward(
        self,
        x: torch.Tensor,
        layer_past: KVCache | None = None,
        use_cache: bool = False,
        output_attentions: bool = False,
    ) -> tuple[torch.Tensor, KVCache | None, torch.Tensor | None]:
        """x: (B, T, C). Returns (y (B, T, C), present (k, v) or None, weights (B, nh, T, S) or None)."""
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)  # each (B, T, C)
        q, k, v = self._split_heads(q), self._split_heads(k), self._split_heads(v)  # (B, nh, T, hs)
        if layer_past is not None:
            k = torch.cat([layer_past[0], k], dim=2)  # (B, nh, S, hs)
            v = torch.cat([layer_past[1], v], dim=2)
        present = (k, v) if use_cache else None
        S = k.size(2)

        weights = None
        if output_attentions:  # the explicit, readable path
            weights = attention_weights(q, k, causal_mask(T, S, device=x.device))  # (B, nh, T, S)
            y = self.attn_dropout(weights.to(v.dtype)) @ v  # (B, nh, T, hs)
        else:  # the fused fast path: same numbers, no (T, S) matrix kept
            p = self.dropout if self.training else 0.0
            if T == S:
                y = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True)
            elif T == 1:  # one new token sees every cached key
                y = F.scaled_dot_product_attention(q, k, v, dropout_p=p)
            else:
                mask = causal_mask(T, S, device=x.device)
                y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # (B, T, C): heads side by side
        return self.resid_dropout(self.c_proj(y)), present, weights
