"""course_lib.checks.model: each check passes the reference, fails a wrong answer, and falls back on a stub."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from course_lib import checks
from course_lib.checks import model as cm
from course_lib.model import GPT, GPTConfig


def stub(*args, **kwargs):
    raise NotImplementedError


def wrong_mask(T):
    return torch.ones(T, T, dtype=torch.bool).triu()  # looks at the future


def wrong_attention(q, k, v):  # forgot the scaling
    T = q.size(-2)
    s = (q @ k.transpose(-2, -1)).masked_fill(~torch.ones(T, T, dtype=torch.bool).tril(), float("-inf"))
    return s.softmax(-1) @ v


def right_attention(q, k, v):
    T, hs = q.size(-2), q.size(-1)
    s = q @ k.transpose(-2, -1) / math.sqrt(hs)
    s = s.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), float("-inf"))
    return s.softmax(-1) @ v


def wrong_split(x, n_head):
    B, T, C = x.shape
    return x.view(B, n_head, T, C // n_head)


def right_layer_norm(x, w, b, eps):
    mu = x.mean(-1, keepdim=True)
    var = x.var(-1, keepdim=True, unbiased=False)
    return (x - mu) / torch.sqrt(var + eps) * w + b


def wrong_layer_norm(x, w, b, eps):  # unbiased variance
    return (x - x.mean(-1, keepdim=True)) / torch.sqrt(x.var(-1, keepdim=True) + eps) * w + b


def right_gelu(x):
    return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))


def right_block(block, x):
    x = x + block.attn(block.ln_1(x))[0]
    return x + block.mlp(block.ln_2(x))


def post_ln_block(block, x):  # the original transformer's order, not GPT-2's
    x = block.ln_1(x + block.attn(x)[0])
    return block.ln_2(x + block.mlp(x))


def right_count(cfg):
    C = cfg.n_embd
    return (cfg.vocab_size + cfg.n_positions) * C + cfg.n_layer * (12 * C * C + 13 * C) + 2 * C


def untied_count(cfg):
    return right_count(cfg) + cfg.vocab_size * cfg.n_embd


def right_loss(logits, ids):
    return F.cross_entropy(logits[:, :-1].flatten(0, 1), ids[:, 1:].flatten())


def unshifted_loss(logits, ids):
    return F.cross_entropy(logits.flatten(0, 1), ids.flatten())


CASES = [
    (checks.check_causal_mask, lambda T: torch.ones(T, T, dtype=torch.bool).tril(), wrong_mask),
    (checks.check_causal_attention, right_attention, wrong_attention),
    (checks.check_split_heads, lambda x, nh: x.view(*x.shape[:2], nh, -1).transpose(1, 2), wrong_split),
    (checks.check_layer_norm, right_layer_norm, wrong_layer_norm),
    (checks.check_gelu, right_gelu, lambda x: F.gelu(x)),  # the erf form differs slightly
    (checks.check_block_forward, right_block, post_ln_block),
    (checks.check_parameter_count, right_count, untied_count),
    (checks.check_lm_loss, right_loss, unshifted_loss),
]


def test_every_check_is_exported_and_tested() -> None:
    from test_checks_learners import TABLE  # the newer exercises are tested there, with the others

    here = {c.__name__ for c, _, _ in CASES}
    assert here <= set(cm.__all__)
    assert set(cm.__all__) - here <= {row[0] for row in TABLE}
    for name in cm.__all__:
        assert getattr(checks, name) is getattr(cm, name)


@pytest.mark.parametrize("check, right, wrong", CASES, ids=[c.__name__ for c, _, _ in CASES])
def test_check_passes_right_fails_wrong_and_falls_back_on_stub(check, right, wrong, capsys) -> None:
    ok = check(right)
    assert ok.status == "pass" and ok.fn is right
    assert "✓" in capsys.readouterr().out

    bad = check(wrong)
    assert bad.status == "fail" and bad.fn is not wrong
    out = capsys.readouterr().out
    assert "✗" in out and "Hint" in out

    todo = check(stub)
    assert todo.status == "todo" and "not done yet" in capsys.readouterr().out
    assert todo.fn is not stub and todo.fn is not None  # the notebook goes on with the reference


def test_the_parameter_count_reference_agrees_with_a_real_model() -> None:
    cfg = GPTConfig(vocab_size=123, n_positions=17, n_embd=24, n_layer=2, n_head=3)
    assert right_count(cfg) == GPT(cfg).num_parameters()
    assert checks.check_parameter_count(right_count, quiet=True).passed


def test_quiet_prints_nothing(capsys) -> None:
    assert checks.check_gelu(right_gelu, quiet=True).passed
    assert capsys.readouterr().out == ""
