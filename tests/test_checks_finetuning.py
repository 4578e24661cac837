"""The notebook 09 checks: pass the reference, fail a wrong answer, fall back on a stub."""

from __future__ import annotations

import copy

import pytest
import torch

from course_lib import checks
from course_lib.checks import finetuning as ft
from course_lib.lora import LoRALinear


def stub(*args, **kwargs):
    raise NotImplementedError


def wrong_forward(x, W, b, A, B, alpha):
    return x @ W.t() + b + (x @ A.t()) @ B.t()  # forgot alpha / r


def wrong_count(n_layer, shapes, r):
    return sum(r * (i + o) for i, o in shapes)  # forgot the layers


def wrong_merge(W, A, B, alpha):
    return W + alpha * (B @ A)  # alpha, not alpha / r


CASES = [
    (checks.check_lora_forward, ft.reference_lora_forward, wrong_forward),
    (checks.check_lora_param_count, ft.reference_lora_param_count, wrong_count),
    (checks.check_merge_lora_weight, ft.reference_merge_lora_weight, wrong_merge),
]


@pytest.mark.parametrize("check, reference, wrong", CASES, ids=[c[0].__name__ for c in CASES])
def test_pass_fail_and_todo(check, reference, wrong, capsys) -> None:
    ok = check(reference)
    assert ok.passed and "✓" in capsys.readouterr().out
    bad = check(wrong)
    assert bad.status == "fail" and not bad.passed
    out = capsys.readouterr().out
    assert "✗" in out and "Hint" in out
    assert bad.fn is reference  # the notebook goes on with the reference
    todo = check(stub)
    assert todo.status == "todo" and "not done yet" in capsys.readouterr().out
    assert todo.fn is reference


def test_references_agree_with_the_library() -> None:
    torch.manual_seed(0)
    base = torch.nn.Linear(6, 5)
    layer = LoRALinear.from_linear(copy.deepcopy(base), r=3, alpha=7)
    torch.nn.init.normal_(layer.lora_B)
    x = torch.randn(2, 4, 6)
    with torch.no_grad():
        expected = layer(x)
        got = ft.reference_lora_forward(x, base.weight, base.bias, layer.lora_A, layer.lora_B, 7)
        torch.testing.assert_close(got, expected)
        merged = ft.reference_merge_lora_weight(base.weight, layer.lora_A, layer.lora_B, 7)
        layer.merge()
        torch.testing.assert_close(merged, layer.weight)
    # GPT-2 small, LoRA r=8 on c_attn only: 12 layers x 8 x (768 + 2304)
    assert ft.reference_lora_param_count(12, [(768, 2304)], 8) == 294_912
