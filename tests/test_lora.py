"""course_lib.lora against Hugging Face peft on the transformers export of the same model."""

from __future__ import annotations

import copy

import pytest
import torch

from course_lib.errors import CourseInputError
from course_lib.lora import (
    ADAPTER_CONFIG,
    ADAPTER_WEIGHTS,
    LoRALinear,
    apply_lora,
    load_lora,
    lora_layers,
    lora_state_dict,
    merge_lora,
    remove_lora,
    save_lora,
    trainable_parameters,
    unmerge_lora,
)
from course_lib.model import GPT, GPTConfig

peft = pytest.importorskip("peft")  # a dev dependency: present wherever the tests run

TARGETS = ("c_attn", "c_proj", "c_fc")  # attn.c_proj and mlp.c_proj both match "c_proj"


def tiny_gpt(seed: int = 0) -> GPT:
    torch.manual_seed(seed)
    cfg = GPTConfig(vocab_size=97, n_positions=32, n_embd=32, n_layer=2, n_head=4)
    return GPT(cfg).eval()


def with_random_adapters(model: GPT, targets=TARGETS, r: int = 4, alpha: float = 12) -> GPT:
    apply_lora(model, targets, r=r, alpha=alpha)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for layer in lora_layers(model).values():  # B != 0, so the adapters really act
            layer.lora_A.copy_(torch.randn(layer.lora_A.shape, generator=g) * 0.3)
            layer.lora_B.copy_(torch.randn(layer.lora_B.shape, generator=g) * 0.3)
    return model


def peft_twin(base: GPT, ours: GPT, targets=TARGETS, r: int = 4, alpha: float = 12):
    """peft on base.to_hf() with our adapter weights copied in through peft's own API."""
    from peft import LoraConfig, get_peft_model, set_peft_model_state_dict

    config = LoraConfig(r=r, lora_alpha=alpha, target_modules=list(targets), lora_dropout=0.0,
                        fan_in_fan_out=True)  # GPT-2 in transformers uses Conv1D (in, out)
    pm = get_peft_model(base.to_hf().eval(), config)
    result = set_peft_model_state_dict(pm, lora_state_dict(ours))
    assert not result.unexpected_keys
    assert not [k for k in result.missing_keys if "lora_" in k]
    return pm.eval()


def test_outputs_match_peft_with_nonzero_adapters() -> None:
    base = tiny_gpt()
    ours = with_random_adapters(copy.deepcopy(base))
    pm = peft_twin(base, ours)
    ids = torch.randint(0, 97, (3, 20))
    with torch.no_grad():
        got, expected = ours(ids).logits, pm(input_ids=ids).logits
        plain = base(ids).logits
    assert (got - plain).abs().max() > 1e-2, "the adapters should change the outputs"
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


def test_merged_weights_equal_peft_merge_and_unload() -> None:
    base = tiny_gpt()
    ours = with_random_adapters(copy.deepcopy(base))
    pm = peft_twin(base, ours)
    hf_merged = pm.merge_and_unload()
    merge_lora(ours)
    hf_sd = hf_merged.state_dict()
    n_checked = 0
    for name, layer in lora_layers(ours).items():
        assert layer.merged
        torch.testing.assert_close(layer.weight, hf_sd[f"{name}.weight"].t(), rtol=1e-5, atol=1e-6)
        n_checked += 1
    assert n_checked == 2 * 4  # 2 layers x (c_attn, attn.c_proj, mlp.c_fc, mlp.c_proj)
    ids = torch.randint(0, 97, (2, 16))
    with torch.no_grad():
        torch.testing.assert_close(ours(ids).logits, hf_merged(input_ids=ids).logits, rtol=1e-4, atol=1e-5)


def test_unmerge_is_the_inverse_and_merge_keeps_outputs() -> None:
    base = tiny_gpt()
    ours = with_random_adapters(copy.deepcopy(base))
    ids = torch.randint(0, 97, (2, 16))
    with torch.no_grad():
        before = ours(ids).logits
        merge_lora(ours)
        merged = ours(ids).logits
        unmerge_lora(ours)
        after = ours(ids).logits
    torch.testing.assert_close(merged, before, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(after, before, rtol=1e-5, atol=1e-6)
    for name, layer in lora_layers(ours).items():
        torch.testing.assert_close(layer.weight, base.get_submodule(name).weight, rtol=0, atol=1e-6)


def test_fresh_adapters_start_as_the_base_model_and_only_they_train() -> None:
    base = tiny_gpt()
    ours = apply_lora(copy.deepcopy(base), "c_attn", r=2, alpha=4)
    ids = torch.randint(0, 97, (2, 12))
    with torch.no_grad():
        assert torch.equal(ours(ids).logits, base(ids).logits)  # B = 0 at the start
    ours.train()
    ours(ids, labels=ids).loss.backward()
    for name, p in ours.named_parameters():
        if "lora_" in name:
            assert p.requires_grad and p.grad is not None
        else:
            assert not p.requires_grad and p.grad is None, name
    layer = ours.transformer.h[0].attn.c_attn
    assert isinstance(layer, LoRALinear) and layer.lora_A.shape == (2, 32) and layer.lora_B.shape == (96, 2)
    assert layer.lora_B.grad.abs().sum() > 0


def test_trainable_report_matches_peft() -> None:
    base = tiny_gpt()
    ours = with_random_adapters(copy.deepcopy(base), ("c_attn",), r=8, alpha=16)
    pm = peft_twin(base, ours, ("c_attn",), r=8, alpha=16)
    report = trainable_parameters(ours)
    assert (report.trainable, report.total) == pm.get_nb_trainable_parameters()
    assert report.trainable == 2 * 8 * (32 + 96)  # layers x r x (in + out)
    assert "trainable params: 2,048" in str(report)


def test_saved_adapters_are_small_load_back_and_load_in_peft(tmp_path) -> None:
    from peft import PeftModel

    base = tiny_gpt()
    ours = with_random_adapters(copy.deepcopy(base))
    folder = save_lora(ours, tmp_path / "adapter")
    assert sorted(p.name for p in folder.iterdir()) == sorted([ADAPTER_CONFIG, ADAPTER_WEIGHTS])
    n_adapter = sum(v.numel() for v in lora_state_dict(ours).values())
    assert (folder / ADAPTER_WEIGHTS).stat().st_size < 4 * n_adapter + 4096  # adapters alone
    ids = torch.randint(0, 97, (2, 16))
    with torch.no_grad():
        expected = ours(ids).logits
        again = load_lora(copy.deepcopy(base), folder)  # applies LoRA from the saved config
        torch.testing.assert_close(again(ids).logits, expected, rtol=0, atol=0)
        pm = PeftModel.from_pretrained(base.to_hf().eval(), folder).eval()
        torch.testing.assert_close(pm(input_ids=ids).logits, expected, rtol=1e-4, atol=1e-5)
    with pytest.raises(CourseInputError, match="already exists"):
        save_lora(ours, folder)
    save_lora(ours, folder, overwrite=True)
    with pytest.raises(CourseInputError, match="does not fit"):
        load_lora(apply_lora(copy.deepcopy(base), "c_attn", r=4, alpha=12), folder)
    with pytest.raises(CourseInputError, match="not found"):
        load_lora(copy.deepcopy(base), tmp_path / "nowhere")


def test_remove_lora_gives_a_plain_exportable_model() -> None:
    base = tiny_gpt()
    ours = with_random_adapters(copy.deepcopy(base))
    pm = peft_twin(base, ours)
    plain = remove_lora(ours)
    assert not lora_layers(plain) and not any("lora_" in n for n, _ in plain.named_parameters())
    assert all(p.requires_grad for p in plain.parameters())
    ids = torch.randint(0, 97, (2, 16))
    with torch.no_grad():
        torch.testing.assert_close(plain.to_hf().eval()(input_ids=ids).logits,
                                   pm.merge_and_unload()(input_ids=ids).logits, rtol=1e-4, atol=1e-5)
    restored = remove_lora(with_random_adapters(copy.deepcopy(base)), merge=False)
    with torch.no_grad():
        torch.testing.assert_close(restored(ids).logits, base(ids).logits, rtol=1e-5, atol=1e-6)


def test_gradient_checkpointing_gives_the_same_lora_gradients() -> None:
    model = with_random_adapters(tiny_gpt()).train()
    ids = torch.randint(0, 97, (2, 16))
    grads = []
    for on in (False, True):
        model.gradient_checkpointing = on
        model.zero_grad(set_to_none=True)
        model(ids, labels=ids).loss.backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad})
    assert grads[0].keys() == grads[1].keys() and grads[0]
    for n in grads[0]:
        torch.testing.assert_close(grads[1][n], grads[0][n], rtol=1e-5, atol=1e-7)


def test_dropout_acts_only_in_training() -> None:
    model = apply_lora(tiny_gpt(), "c_attn", r=4, alpha=8, dropout=0.5)
    for layer in lora_layers(model).values():
        torch.nn.init.normal_(layer.lora_B, std=0.5)
    ids = torch.randint(0, 97, (2, 16))
    with torch.no_grad():
        e1, e2 = model(ids).logits, model(ids).logits
        model.train()
        t1, t2 = model(ids).logits, model(ids).logits
    assert torch.equal(e1, e2) and not torch.equal(t1, t2)


@pytest.mark.parametrize("r", [0, -1, 1.5, True])
def test_rank_must_be_a_positive_integer(r) -> None:
    with pytest.raises(CourseInputError, match="rank r must be a positive integer"):
        apply_lora(tiny_gpt(), r=r)
    with pytest.raises(CourseInputError, match="rank r"):
        LoRALinear(4, 4, r=r)


def test_bad_alpha_and_dropout() -> None:
    with pytest.raises(CourseInputError, match="alpha"):
        apply_lora(tiny_gpt(), alpha=0)
    with pytest.raises(CourseInputError, match="dropout"):
        apply_lora(tiny_gpt(), dropout=1.0)


def test_unknown_target_lists_the_names_that_exist() -> None:
    model = tiny_gpt()
    with pytest.raises(CourseInputError) as info:
        apply_lora(model, ("c_attn", "q_proj"))
    msg = str(info.value)
    assert "'q_proj'" in msg
    for name in ("c_attn", "c_proj", "c_fc", "transformer.h.0.attn.c_attn"):
        assert name in msg
    assert not lora_layers(model), "a refused call must leave the model unchanged"
    assert all(p.requires_grad for p in model.parameters())


def test_targets_that_are_not_linear_tied_or_already_adapted() -> None:
    with pytest.raises(CourseInputError, match="not nn.Linear"):
        apply_lora(tiny_gpt(), "ln_1")
    with pytest.raises(CourseInputError, match="tied"):
        apply_lora(tiny_gpt(), "lm_head")
    with pytest.raises(CourseInputError, match="module names"):
        apply_lora(tiny_gpt(), [])
    model = apply_lora(tiny_gpt(), "c_attn")
    with pytest.raises(CourseInputError, match="already has a LoRA adapter"):
        apply_lora(model, "c_attn")
    with pytest.raises(CourseInputError, match="no LoRA adapters"):
        merge_lora(tiny_gpt())


@pytest.mark.slow
def test_bench_finetune_quick_runs(capsys) -> None:
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_finetune.py"
    spec = importlib.util.spec_from_file_location("bench_finetune", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    result = bench.main(["--quick", "--corpus", "offline", "--threads", "1"])
    rows = {(r["method"], r["checkpointing"]): r for r in result["rows"]}
    assert set(rows) == {("full", False), ("full", True), ("lora", False), ("lora", True)}
    for m in ("full", "lora"):  # checkpointing changes memory, not the numbers
        assert rows[m, True]["losses"] == pytest.approx(rows[m, False]["losses"], abs=1e-5)
    assert rows["lora", False]["trainable"] < rows["full", False]["trainable"]
    assert rows["lora", False]["peft_val_loss"] == pytest.approx(rows["lora", False]["val_loss"], abs=1e-5)
    assert "| LoRA | on |" in capsys.readouterr().out
