"""course_lib.attention: the explicit math equals PyTorch's fused SDPA, the KV cache equals no cache."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from course_lib.attention import CausalSelfAttention, attention_weights, causal_mask
from course_lib.errors import CourseInputError


def test_causal_mask_is_lower_triangular() -> None:
    m = causal_mask(4)
    assert m.dtype == torch.bool and m.shape == (4, 4)
    assert torch.equal(m, torch.tensor([[1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0], [1, 1, 1, 1]], dtype=torch.bool))


def test_causal_mask_with_cached_keys_lets_the_last_queries_see_the_past() -> None:
    m = causal_mask(2, 5)  # queries are positions 3 and 4 of 5
    assert torch.equal(m, torch.tensor([[1, 1, 1, 1, 0], [1, 1, 1, 1, 1]], dtype=torch.bool))
    assert torch.equal(causal_mask(5)[-2:], m)
    with pytest.raises(CourseInputError, match="S=2.*T=3"):
        causal_mask(3, 2)


def test_attention_weights_match_the_formula_and_sum_to_one() -> None:
    torch.manual_seed(0)
    q, k = torch.randn(2, 3, 6, 8), torch.randn(2, 3, 6, 8)
    w = attention_weights(q, k, causal_mask(6))
    manual = q @ k.transpose(-2, -1) / math.sqrt(8)
    manual = manual.masked_fill(torch.triu(torch.ones(6, 6, dtype=torch.bool), 1), float("-inf")).softmax(-1)
    torch.testing.assert_close(w, manual)
    torch.testing.assert_close(w.sum(-1), torch.ones(2, 3, 6))
    assert torch.all(w.triu(1) == 0)  # no query looks at the future


@pytest.mark.parametrize("T,S", [(7, 7), (1, 9), (3, 8)])
def test_explicit_attention_equals_scaled_dot_product_attention(T: int, S: int) -> None:
    torch.manual_seed(1)
    q, k, v = torch.randn(2, 4, T, 16), torch.randn(2, 4, S, 16), torch.randn(2, 4, S, 16)
    mask = causal_mask(T, S)
    explicit = attention_weights(q, k, mask) @ v
    fused = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    torch.testing.assert_close(explicit, fused, atol=1e-6, rtol=1e-5)


def test_module_sdpa_path_equals_explicit_path_and_returns_weights() -> None:
    torch.manual_seed(2)
    attn = CausalSelfAttention(n_embd=24, n_head=3)
    x = torch.randn(2, 10, 24)
    fast, _, none = attn(x)
    slow, _, w = attn(x, output_attentions=True)
    assert none is None and w.shape == (2, 3, 10, 10)
    torch.testing.assert_close(fast, slow, atol=1e-6, rtol=1e-5)


def test_module_kv_cache_step_by_step_equals_full_sequence() -> None:
    torch.manual_seed(3)
    attn = CausalSelfAttention(n_embd=32, n_head=4).eval()
    x = torch.randn(2, 9, 32)
    full, present, _ = attn(x, use_cache=True)
    assert present[0].shape == (2, 4, 9, 8) and present[1].shape == (2, 4, 9, 8)
    # prefill 4 tokens, then a chunk of 3 (T < S, T > 1), then one at a time (T == 1)
    out, past, _ = attn(x[:, :4], use_cache=True)
    outs = [out]
    o, past, _ = attn(x[:, 4:7], layer_past=past, use_cache=True)
    outs.append(o)
    for t in range(7, 9):
        o, past, w = attn(x[:, t : t + 1], layer_past=past, use_cache=True, output_attentions=t == 8)
        outs.append(o)
    assert w.shape == (2, 4, 1, 9)
    torch.testing.assert_close(torch.cat(outs, 1), full, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(past[0], present[0])


def test_module_rejects_heads_that_do_not_divide_the_width() -> None:
    with pytest.raises(CourseInputError, match="n_embd=10.*n_head=3"):
        CausalSelfAttention(n_embd=10, n_head=3)
