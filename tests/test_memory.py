"""course_lib.memory: estimated from a config, counted from the tensors, measured over one step."""

from __future__ import annotations

import pytest
import torch

from course_lib import lora, memory, scaling
from course_lib.model import GPT, GPTConfig


def test_memory_estimate_grows_and_picks_a_preset() -> None:
    cfg = GPTConfig.preset("gpt2")
    small = memory.estimate_training_memory(cfg, 1, 256)
    assert small > 16 * scaling.non_embedding_params(cfg)  # at least weights + grads + AdamW
    assert memory.estimate_training_memory(cfg, 8, 1024) > memory.estimate_training_memory(cfg, 4, 1024) > small
    assert memory.estimate_training_memory(cfg, 4, 1024, None) > memory.estimate_training_memory(cfg, 4, 1024)
    order = ["gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl"]
    picks = [memory.largest_preset_that_fits(int(gb * 2**30), 4, 1024, torch.float16) for gb in (8, 16, 40, 80)]
    assert [order.index(p) for p in picks] == sorted(order.index(p) for p in picks)  # more memory, no smaller model
    assert memory.largest_preset_that_fits(2**30, 4, 1024) is None  # 1 GiB holds none of them
    with pytest.raises(ValueError):
        memory.estimate_training_memory(cfg, 0, 1024)


def test_training_memory_counts_parameters_gradients_and_adamw_state() -> None:
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=64, n_positions=16, n_embd=16, n_layer=2, n_head=2))
    n = model.num_parameters()
    assert memory.training_memory(model) == memory.TrainingMemory(4 * n, 0, 0)  # tied weights once
    x = torch.randint(0, 64, (2, 8))
    full = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(x, labels=x).loss.backward()
    full.step()
    mem = memory.training_memory(model, full)
    n_tensors = len(list(model.parameters()))
    assert (mem.parameters, mem.gradients, mem.optimizer) == (4 * n, 4 * n, 8 * n + 4 * n_tensors)
    assert mem.total == mem.parameters + mem.gradients + mem.optimizer and "MiB" in str(mem)

    lora.apply_lora(model, ("c_attn",), r=2, alpha=4)
    model.zero_grad(set_to_none=True)
    adapters = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(adapters, lr=1e-3)
    model(x, labels=x).loss.backward()
    opt.step()
    k = sum(p.numel() for p in adapters)
    mem = memory.training_memory(model, opt)
    assert (mem.parameters, mem.gradients, mem.optimizer) == (4 * (n + k), 4 * k, 8 * k + 4 * len(adapters))


def test_step_memory_shows_what_checkpointing_saves() -> None:
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=64, n_positions=64, n_embd=32, n_layer=4, n_head=4))
    ids = torch.randint(0, 64, (4, 64))
    off = memory.step_memory(model, ids)
    model.gradient_checkpointing_enable()
    on = memory.step_memory(model, ids)
    assert on.saved_bytes < off.saved_bytes / 2
    assert off.peak_bytes is not None and on.peak_bytes is not None  # the CPU profiler record
    assert 0 < on.peak_bytes < off.peak_bytes
    assert memory.step_memory(model, ids).peak_bytes == on.peak_bytes  # exact and repeatable
    assert all(p.grad is None for p in model.parameters()) and model.training


def test_step_memory_prints_nothing_of_the_profiler() -> None:
    """torch's CPU profiler (kineto) writes "USDT: ... profiler_start" to file descriptor 2, which a notebook
    shows as output: step_memory keeps it off, in a fresh process as a kernel runs it."""
    import subprocess
    import sys

    code = ("import torch\n"
            "from course_lib.memory import step_memory\n"
            "from course_lib.model import GPT, GPTConfig\n"
            "model = GPT(GPTConfig(vocab_size=32, n_positions=16, n_embd=16, n_layer=1, n_head=2))\n"
            "print(step_memory(model, torch.randint(0, 32, (2, 16))).peak_bytes > 0)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.strip() == "True", r.stderr[-2000:]
    assert "USDT" not in r.stderr and "profiler_st" not in r.stderr, r.stderr[-2000:]
