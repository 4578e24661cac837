"""The paths only a GPU takes: run with ``pytest -m cuda`` on a machine with CUDA.

Every test here is marked ``cuda``; `conftest.py` skips them cleanly where
``torch.cuda.is_available()`` is false, so the README's test command passes on a CPU.
Each compares what the GPU computes with what the CPU computes on the same weights.
"""

from __future__ import annotations

import pytest
import torch

from course_lib import generate as gen
from course_lib import lora, runtime, scaling
from course_lib.model import GPT, GPTConfig
from course_lib.train import TrainConfig, Trainer

pytestmark = pytest.mark.cuda


def tiny(seed: int = 0, **kw) -> GPT:
    torch.manual_seed(seed)
    cfg = dict(vocab_size=97, n_positions=64, n_embd=64, n_layer=2, n_head=4)
    cfg.update(kw)
    return GPT(GPTConfig(**cfg)).eval()


def test_pick_device_prefers_cuda() -> None:
    assert runtime.pick_device().type == "cuda"


def test_logits_on_cuda_equal_the_cpu_ones() -> None:
    model = tiny()
    x = torch.randint(0, 97, (2, 40))
    with torch.no_grad():
        cpu = model(x).logits
        gpu = model.to("cuda")(x.cuda()).logits.cpu()
    torch.testing.assert_close(gpu, cpu, rtol=1e-3, atol=1e-3)


def test_autocast_precision_matches_the_hardware() -> None:
    dtype = runtime.autocast_dtype("cuda")
    major, _ = torch.cuda.get_device_capability()
    assert dtype == (torch.bfloat16 if major >= 8 else torch.float16)  # a T4 (7.5) has no bf16
    model = tiny().cuda()
    x = torch.randint(0, 97, (2, 16), device="cuda")
    with scaling.autocast("cuda", dtype):
        assert model(x).logits.dtype in (dtype, torch.float32)


def test_greedy_and_cached_decoding_on_cuda_match_the_cpu() -> None:
    model = tiny(1)
    prompt = torch.tensor([[1, 2, 3, 4]])
    cpu = gen.generate(model, prompt, 20)
    model = model.cuda()
    gpu = gen.generate(model, prompt.cuda(), 20)
    assert torch.equal(gpu.cpu(), cpu)
    assert torch.equal(gen.generate(model, prompt.cuda(), 20, use_cache=False).cpu(), cpu)
    sampled = gen.generate(model, prompt.cuda(), 20, do_sample=True, top_p=0.9, seed=3)
    assert torch.equal(sampled, gen.generate(model, prompt.cuda(), 20, do_sample=True, top_p=0.9, seed=3))


def test_trainer_runs_with_amp_on_cuda_and_the_loss_falls() -> None:
    model = tiny(2)
    ids = torch.arange(4000) % 50  # an easy, periodic text
    cfg = TrainConfig(batch_size=8, seq_len=32, max_steps=40, lr=3e-3, warmup_steps=5, eval_interval=0,
                      eval_batches=2, sample_prompt=None, device="cuda", progress=False)
    trainer = Trainer(model, ids[:3600], ids[3600:], cfg)
    first = trainer.evaluate()["val_loss"]
    trainer.fit()
    assert next(model.parameters()).device.type == "cuda"
    assert trainer.evaluate()["val_loss"] < first - 1.0


def test_lora_layers_live_on_the_models_device() -> None:
    model = tiny(3).cuda()
    lora.apply_lora(model, ("c_attn",), r=4, alpha=8)
    for name, p in model.named_parameters():
        assert p.device.type == "cuda", name
    x = torch.randint(0, 97, (2, 16), device="cuda")
    model(x, labels=x).loss.backward()


def test_fused_adamw_and_tf32_are_available_on_cuda() -> None:
    assert scaling.fused_adamw_available("cuda")
    assert scaling.enable_tf32("cuda") == (torch.cuda.get_device_capability()[0] >= 8)
