"""The notebook 09 checks: pass the reference, fail a wrong answer, fall back on a stub; the references
agree with course_lib.lora, PyTorch's optimizers and peft."""

from __future__ import annotations

import copy

import pytest
import torch

from course_lib import checks, lora
from course_lib.checks import nb09_finetuning as ft
from course_lib.model import GPT, GPTConfig


def stub(*args, **kwargs):
    raise NotImplementedError


class WrongLoRALinear(ft.LoRALinear):
    def forward(self, x):
        return self.base(x)  # the update left out


def wrong_swap(model, targets, r=8, alpha=16):
    return model  # nothing wrapped, nothing frozen


def wrong_count(n_layer, shapes, r):
    return sum(r * (i + o) for i, o in shapes)  # forgot the layers


def wrong_labels(prompt_ids, response_ids, length, pad_id):
    ids = list(prompt_ids) + list(response_ids)
    ids += [pad_id] * (length - len(ids))
    return ids, list(ids)  # forgot the mask: the prompt and the padding are learned too


def wrong_state(shapes, optimizer):
    return 2 * sum(s[0] * (s[1] if len(s) == 2 else 1) for s in shapes)  # AdamW's answer for every optimizer


def wrong_dora(W, A, B, alpha, magnitude):
    return W + (alpha / A.shape[0]) * (B @ A)  # LoRA's merge, no rescaling


CASES = [
    (checks.check_lora_linear, ft.LoRALinear, WrongLoRALinear),
    (checks.check_replace_linear_with_lora, ft.replace_linear_with_lora, wrong_swap),
    (checks.check_lora_param_count, ft.reference_lora_param_count, wrong_count),
    (checks.check_masked_labels, ft.reference_masked_labels, wrong_labels),
    (checks.check_optimizer_state_numbers, ft.reference_optimizer_state_numbers, wrong_state),
    (checks.check_dora_weight, ft.reference_dora_weight, wrong_dora),
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
    if isinstance(reference, type):
        todo = check(type("Unfinished", (reference,), {"forward": stub}))
    else:
        todo = check(stub)
    assert todo.status == "todo" and "not done yet" in capsys.readouterr().out
    assert todo.fn is reference


def _model() -> GPT:
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=64, n_positions=16, n_embd=16, n_layer=2, n_head=2)).eval()


def test_the_layer_and_the_swap_equal_course_lib_lora() -> None:
    base = _model()
    ours = ft.replace_linear_with_lora(copy.deepcopy(base), ("c_attn", "c_fc"), r=2, alpha=4)
    theirs = lora.apply_lora(copy.deepcopy(base), ("c_attn", "c_fc"), r=2, alpha=4)
    assert {n for n, m in ours.named_modules() if isinstance(m, ft.LoRALinear)} == set(lora.lora_layers(theirs))
    assert lora.trainable_parameters(ours).trainable == lora.trainable_parameters(theirs).trainable
    with torch.no_grad():
        for name, layer in lora.lora_layers(theirs).items():
            mine = ours.get_submodule(name)
            layer.lora_A.normal_()
            layer.lora_B.normal_()
            mine.lora_A.copy_(layer.lora_A)
            mine.lora_B.copy_(layer.lora_B)
        x = torch.randint(0, 64, (2, 8))
        torch.testing.assert_close(ours(x).logits, theirs(x).logits)


def test_the_swap_on_a_transformers_gpt2_wraps_conv1d_and_gives_the_course_models_outputs() -> None:
    base = _model()
    ours = ft.replace_linear_with_lora(copy.deepcopy(base), ("c_attn", "c_proj"), r=2, alpha=4)
    hf = ft.replace_linear_with_lora(base.to_hf().eval(), ("c_attn", "c_proj"), r=2, alpha=4)
    wrapped = {n for n, m in hf.named_modules() if isinstance(m, ft.LoRALinear)}
    assert len(wrapped) == 6 and all(type(hf.get_submodule(n).base).__name__ == "Conv1D" for n in wrapped)
    assert [n for n, p in hf.named_parameters() if p.requires_grad] == \
        [n for n, p in ours.named_parameters() if p.requires_grad]
    with torch.no_grad():
        for name in wrapped:
            for p, q in ((ours.get_submodule(name).lora_A, hf.get_submodule(name).lora_A),
                         (ours.get_submodule(name).lora_B, hf.get_submodule(name).lora_B)):
                p.normal_()
                q.copy_(p)
        x = torch.randint(0, 64, (2, 8))
        torch.testing.assert_close(hf(x).logits, ours(x).logits, rtol=1e-4, atol=1e-5)


def test_save_lora_writes_the_learners_layers_and_peft_loads_them(tmp_path) -> None:
    peft = pytest.importorskip("peft")
    base = _model()
    ours = ft.replace_linear_with_lora(copy.deepcopy(base), ("c_attn", "c_fc"), r=2, alpha=4)
    with torch.no_grad():
        for m in ours.modules():
            if isinstance(m, ft.LoRALinear):
                m.lora_B.normal_()
    folder = lora.save_lora(ours, tmp_path / "adapter")
    theirs = peft.PeftModel.from_pretrained(base.to_hf().eval(), folder).eval()
    back = lora.load_lora(copy.deepcopy(base), folder)  # the course's LoRALinear, the learner's numbers
    x = torch.randint(0, 64, (2, 8))
    with torch.no_grad():
        torch.testing.assert_close(theirs(input_ids=x).logits, ours(x).logits, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(back(x).logits, ours(x).logits)


def test_optimizer_state_numbers_are_what_pytorchs_optimizers_hold() -> None:
    params = [torch.nn.Parameter(torch.randn(5, 3)), torch.nn.Parameter(torch.randn(7)),
              torch.nn.Parameter(torch.randn(2, 9))]
    makers = {"sgd": lambda ps: torch.optim.SGD(ps, lr=0.1),
              "momentum": lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9),
              "adamw": torch.optim.AdamW, "adafactor": torch.optim.Adafactor}
    for name, make in makers.items():
        copies = [torch.nn.Parameter(p.detach().clone()) for p in params]
        for p in copies:
            p.grad = torch.randn_like(p)
        opt = make(copies)
        opt.step()
        held = sum(t.numel() for s in opt.state.values() for k, t in s.items()
                   if k != "step" and isinstance(t, torch.Tensor))
        assert held == ft.reference_optimizer_state_numbers([tuple(p.shape) for p in params], name), name


def test_dora_weight_equals_peft_merged_dora() -> None:
    peft = pytest.importorskip("peft")
    from collections import OrderedDict

    torch.manual_seed(0)
    small = torch.nn.Sequential(OrderedDict(proj=torch.nn.Linear(6, 4)))
    dora = peft.get_peft_model(small, peft.LoraConfig(r=2, lora_alpha=4, target_modules=["proj"], use_dora=True))
    params = dict(dora.named_parameters())
    with torch.no_grad():
        for name, p in params.items():
            if "lora_B" in name or "magnitude" in name:
                p.add_(torch.rand_like(p))
    find = lambda part: next(p.detach().clone() for n, p in params.items() if part in n)  # noqa: E731
    W, A, B, m = find("base_layer.weight"), find("lora_A"), find("lora_B"), find("magnitude")
    merged = dora.merge_and_unload().proj.weight.detach()
    torch.testing.assert_close(ft.reference_dora_weight(W, A, B, 4, m), merged, rtol=1e-5, atol=1e-6)


def test_masked_labels_agree_with_encode_example_and_collate() -> None:
    from course_lib import finetune
    from course_lib.tokenizer import gpt2_tokenizer

    tok = gpt2_tokenizer()
    ids, labels = finetune.encode_example(tok, "Give the opposite of: hot", "cold")
    n_prompt = sum(1 for t in labels if t == -100)
    x, y = finetune.collate([(ids, labels), (ids + [1, 2], labels + [1, 2])], pad_id=50256)
    want = ft.reference_masked_labels(ids[:n_prompt], ids[n_prompt:], len(ids) + 2, 50256)
    assert (x[0].tolist(), y[0].tolist()) == want
    # GPT-2 small, LoRA r=8 on c_attn only: 12 layers x 8 x (768 + 2304)
    assert ft.reference_lora_param_count(12, [(768, 2304)], 8) == 294_912
