"""course_lib.checks.nb03_attention, nb04_block, nb05_gpt2 (once checks/model.py): each check passes the
reference, fails a wrong answer, and falls back on a stub; notebook 03's two learner pieces in detail."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from course_lib import checks
from course_lib.checks import nb03_attention, nb04_block, nb05_gpt2
from course_lib.model import GPT, GPTConfig


def stub(*args, **kwargs):
    raise NotImplementedError


def wrong_mask(T):
    return torch.ones(T, T, dtype=torch.bool).triu()  # looks at the future


def wrong_attention(q, k, v, dropout=None):  # forgot the scaling
    T = q.size(-2)
    s = (q @ k.transpose(-2, -1)).masked_fill(~torch.ones(T, T, dtype=torch.bool).tril(), float("-inf"))
    return s.softmax(-1) @ v


def right_attention(q, k, v, dropout=None):
    T, hs = q.size(-2), q.size(-1)
    s = q @ k.transpose(-2, -1) / math.sqrt(hs)
    w = s.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), float("-inf")).softmax(-1)
    return (w if dropout is None else dropout(w)) @ v


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
    (checks.check_layer_norm, right_layer_norm, wrong_layer_norm),
    (checks.check_gelu, right_gelu, lambda x: F.gelu(x)),  # the erf form differs slightly
    (checks.check_block_forward, right_block, post_ln_block),
    (checks.check_parameter_count, right_count, untied_count),
    (checks.check_lm_loss, right_loss, unshifted_loss),
]


def test_every_check_is_exported_and_tested() -> None:
    from test_checks_learners import TABLE  # the newer exercises are tested there, with the others

    exported = set(nb03_attention.__all__) | set(nb04_block.__all__) | set(nb05_gpt2.__all__)
    here = {c.__name__ for c, _, _ in CASES}
    assert here <= exported
    assert exported - here <= {row[0] for row in TABLE}
    for module in (nb03_attention, nb04_block, nb05_gpt2):
        for name in module.__all__:
            assert getattr(checks, name) is getattr(module, name)


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
