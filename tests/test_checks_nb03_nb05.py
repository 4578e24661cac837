"""course_lib.checks.nb03_attention, nb04_block, nb05_gpt2 (once checks/model.py): each check passes the
reference, fails a wrong answer, and falls back on a stub (the function checks; the class pieces are tested in
test_checks_all.py and test_checks_learners.py)."""

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


def right_fold(ln_w, ln_b, fc_w, fc_b):
    return fc_w * ln_w, fc_b + fc_w @ ln_b


def wrong_fold(ln_w, ln_b, fc_w, fc_b):  # the LayerNorm's shift forgotten
    return fc_w * ln_w, fc_b


def right_count(cfg):
    C, H, b = cfg.n_embd, cfg.n_inner or 4 * cfg.n_embd, int(cfg.bias)
    block = 2 * (C + b * C) + 4 * C * C + 2 * C * H + b * (4 * C + H + C)
    head = 0 if cfg.tie_word_embeddings else cfg.vocab_size * C
    return (cfg.vocab_size + cfg.n_positions) * C + cfg.n_layer * block + C + b * C + head


def gpt2_count(cfg):  # ignores the switches
    C = cfg.n_embd
    return (cfg.vocab_size + cfg.n_positions) * C + cfg.n_layer * (12 * C * C + 13 * C) + 2 * C


def right_loss(logits, labels):
    return torch.stack([F.cross_entropy(lo[:-1], la[1:]) for lo, la in zip(logits, labels)])


def pooled_loss(logits, labels):
    return F.cross_entropy(logits[:, :-1].flatten(0, 1), labels[:, 1:].flatten())


CASES = [
    (checks.check_causal_attention, right_attention, wrong_attention),
    (checks.check_layer_norm, right_layer_norm, wrong_layer_norm),
    (checks.check_gelu, right_gelu, lambda x: F.gelu(x)),  # the erf form differs slightly
    (checks.check_fold_layer_norm, right_fold, wrong_fold),
    (checks.check_variant_parameter_count, right_count, gpt2_count),
    (checks.check_sequence_loss, right_loss, pooled_loss),
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


def test_the_variant_parameter_count_agrees_with_real_models() -> None:
    for switches in ({}, {"bias": False}, {"tie_word_embeddings": False}, {"n_inner": 40},
                     {"bias": False, "tie_word_embeddings": False, "n_inner": 8}):
        cfg = GPTConfig(vocab_size=123, n_positions=17, n_embd=24, n_layer=2, n_head=3, **switches)
        assert right_count(cfg) == GPT(cfg).num_parameters(), switches
    assert checks.check_variant_parameter_count(right_count, quiet=True).passed


def test_quiet_prints_nothing(capsys) -> None:
    assert checks.check_gelu(right_gelu, quiet=True).passed
    assert capsys.readouterr().out == ""
