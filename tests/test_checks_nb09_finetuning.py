"""The notebook 09 checks: pass the reference, fail a wrong answer, fall back on a stub."""

from __future__ import annotations

import copy

import pytest
import torch

from course_lib import checks
from course_lib.checks import nb09_finetuning as ft
from course_lib.lora import LoRALinear


def stub(*args, **kwargs):
    raise NotImplementedError


def wrong_forward(x, W, b, A, B, alpha):
    return x @ W.t() + b + (x @ A.t()) @ B.t()  # forgot alpha / r


def wrong_count(n_layer, shapes, r):
    return sum(r * (i + o) for i, o in shapes)  # forgot the layers


def wrong_merge(W, A, B, alpha):
    return W + alpha * (B @ A)  # alpha, not alpha / r


def wrong_labels(prompt_ids, response_ids, length, pad_id):
    ids = list(prompt_ids) + list(response_ids)
    ids += [pad_id] * (length - len(ids))
    return ids, list(ids)  # forgot the mask: the prompt and the padding are learned too


def wrong_bytes(n_params, n_trainable, bytes_per_number):
    return bytes_per_number * (n_params + 2 * n_trainable)  # one AdamW moment forgotten


CASES = [
    (checks.check_lora_forward, ft.reference_lora_forward, wrong_forward),
    (checks.check_lora_param_count, ft.reference_lora_param_count, wrong_count),
    (checks.check_merge_lora_weight, ft.reference_merge_lora_weight, wrong_merge),
    (checks.check_masked_labels, ft.reference_masked_labels, wrong_labels),
    (checks.check_training_bytes, ft.reference_training_bytes, wrong_bytes),
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


def test_masked_labels_agree_with_encode_example_and_collate() -> None:
    from course_lib import finetune
    from course_lib.tokenizer import gpt2_tokenizer

    tok = gpt2_tokenizer()
    ids, labels = finetune.encode_example(tok, "Give the opposite of: hot", "cold")
    n_prompt = sum(1 for t in labels if t == -100)
    x, y = finetune.collate([(ids, labels), (ids + [1, 2], labels + [1, 2])], pad_id=50256)
    want = ft.reference_masked_labels(ids[:n_prompt], ids[n_prompt:], len(ids) + 2, 50256)
    assert (x[0].tolist(), y[0].tolist()) == want


def test_training_bytes_agrees_with_the_measured_memory() -> None:
    from course_lib import finetune, lora
    from course_lib.model import GPT, GPTConfig

    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=64, n_positions=16, n_embd=16, n_layer=2, n_head=2))
    lora.apply_lora(model, ("c_attn", "c_fc"), r=2, alpha=4)
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(trainable, lr=1e-3)
    x = torch.randint(0, 64, (2, 8))
    model(x, labels=x).loss.backward()
    opt.step()
    mem = finetune.training_memory(model, opt)
    rep = lora.trainable_parameters(model)
    steps_bytes = 4 * len(trainable)  # AdamW's step counters: one float32 each, left out of the formula
    assert mem.total - steps_bytes == ft.reference_training_bytes(rep.total, rep.trainable, 4)
