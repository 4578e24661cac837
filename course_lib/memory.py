"""What training holds in memory: estimated from a config, counted from the tensors, measured over a step.

Three ways to one question, each for its notebook:

- `estimate_training_memory(config, batch, seq_len)`: before a model exists, from its shape
  (16 bytes per parameter for fp32 weights, gradients and AdamW's two moments, plus the
  activations and the logits); `largest_preset_that_fits` asks it for every GPT-2 size.
- `training_memory(model, optimizer)`: what a model and its optimizer hold right now
  (parameters, gradients, optimizer state), each tensor's storage counted once.
- `step_memory(model, ids)`: one forward + backward pass measured: the activations saved for
  the backward pass and the peak above what was allocated before.

References: Korthikanti et al., "Reducing Activation Recomputation in Large Transformer Models"
(2022), for the activations a layer keeps.

Introduced in notebooks/09_fine_tuning.ipynb; `estimate_training_memory()`,
`largest_preset_that_fits()` in notebook 10.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .errors import CourseInputError
from .runtime import quiet_native_stderr
from .scaling import non_embedding_params

__all__ = [
    "StepMemory", "TrainingMemory", "estimate_training_memory", "largest_preset_that_fits", "step_memory",
    "training_memory",
]


# --------------------------------------------------------------------------- estimated from a config
def estimate_training_memory(config: Any, batch_size: int, seq_len: int,
                             dtype: torch.dtype | None = torch.bfloat16) -> int:
    """Rough bytes on the GPU to train `config` with AdamW at this micro-batch and length.

    Weights, gradients and AdamW's two moments in fp32 (16 bytes per parameter), the
    activations each layer keeps for the backward pass (about 34 B T C values with a
    fused attention kernel, Korthikanti et al. 2022), the logits (in the autocast dtype,
    an fp32 copy for the loss and its gradient), and ~0.5 GB for the CUDA context.
    """
    if batch_size < 1 or seq_len < 1:
        raise CourseInputError(f"batch_size and seq_len must be >= 1, got {batch_size}, {seq_len}")
    act_bytes = 4 if dtype is None else 2
    learned_positions = getattr(config, "position", "learned") == "learned"
    untied = not getattr(config, "tie_word_embeddings", True)
    lookups = config.n_embd * (config.n_positions * learned_positions + config.vocab_size * untied)
    n_params = non_embedding_params(config) + lookups  # every parameter: the lookup tables too
    states = 16 * n_params
    activations = config.n_layer * 34 * batch_size * seq_len * config.n_embd * act_bytes // 2
    logits = batch_size * seq_len * config.vocab_size * (act_bytes + 8)
    return states + activations + logits + 512 * 2**20


def largest_preset_that_fits(memory_bytes: int, batch_size: int, seq_len: int,
                             dtype: torch.dtype | None = torch.bfloat16, headroom: float = 0.9,
                             presets: tuple[str, ...] = ("gpt2-xl", "gpt2-large", "gpt2-medium", "gpt2"),
                             **overrides: Any) -> str | None:
    """The largest GPT-2 preset whose `estimate_training_memory` fits in `headroom` of the memory.
    """
    from .model import GPTConfig

    for name in presets:
        cfg = GPTConfig.preset(name, **overrides)
        if estimate_training_memory(cfg, batch_size, seq_len, dtype) <= headroom * memory_bytes:
            return name
    return None


# --------------------------------------------------------------------------- counted from the tensors

@dataclass
class TrainingMemory:
    """Bytes a fine-tuning run holds besides activations, counted from the tensors.
    """

    parameters: int
    gradients: int
    optimizer: int

    @property
    def total(self) -> int:
        return self.parameters + self.gradients + self.optimizer

    def __str__(self) -> str:
        mib = lambda b: f"{b / 2**20:,.1f} MiB"  # noqa: E731
        return (f"parameters {mib(self.parameters)} + gradients {mib(self.gradients)} + "
                f"optimizer state {mib(self.optimizer)} = {mib(self.total)}")


def _storage_key(t: torch.Tensor) -> tuple[str, int]:
    """Which memory a tensor lives in: a tied weight, or views of one tensor, share one key."""
    return str(t.device), t.untyped_storage().data_ptr()


def _storage_bytes(tensors: Iterable[torch.Tensor], seen: set[tuple[str, int]]) -> int:
    total = 0
    for t in tensors:
        if isinstance(t, torch.Tensor) and t.numel() and _storage_key(t) not in seen:
            seen.add(_storage_key(t))
            total += t.untyped_storage().nbytes()
    return total


def training_memory(model: nn.Module, optimizer: torch.optim.Optimizer | None = None) -> TrainingMemory:
    """What `model` and `optimizer` hold: parameters, gradients, optimizer state, in bytes.

    Counted from the tensors (each storage once), so call it after a training step:
    gradients and AdamW's two moment buffers exist only once a step has made them.
    """
    seen: set[tuple[str, int]] = set()
    params = list(model.parameters())
    p_bytes = _storage_bytes(params, seen)
    g_bytes = _storage_bytes((p.grad for p in params if p.grad is not None), seen)
    o_bytes = 0
    if optimizer is not None:
        o_bytes = _storage_bytes((v for state in optimizer.state.values() for v in state.values()), seen)
    return TrainingMemory(p_bytes, g_bytes, o_bytes)


# --------------------------------------------------------------------------- measured over one step

@dataclass
class StepMemory:
    """Memory of one forward + backward pass, in bytes.

    `saved_bytes`: activations the autograd graph keeps for the backward pass (seen
    through `torch.autograd.graph.saved_tensors_hooks`; a checkpointed block keeps only
    its input, which this count does not see). `peak_bytes`: the most memory tensors
    took at once during the step, above what was allocated before it:
    `torch.cuda.max_memory_allocated` on CUDA, the profiler's allocation record on the
    CPU (None where neither is available). Both are exact and repeatable, unlike the
    process's resident size.
    """

    saved_bytes: int
    peak_bytes: int | None
    method: str

    def __str__(self) -> str:
        peak = "n/a" if self.peak_bytes is None else f"{self.peak_bytes / 2**20:.2f} MiB"
        return f"peak {peak} ({self.method}), saved for backward {self.saved_bytes / 2**20:.2f} MiB"


def _saved_tensor_bytes(model: nn.Module, input_ids: torch.Tensor, labels: torch.Tensor) -> int:
    params = {_storage_key(p) for p in model.parameters()}
    storages: dict[tuple[str, int], int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        if _storage_key(t) not in params and t.untyped_storage().nbytes() > 0:
            storages[_storage_key(t)] = t.untyped_storage().nbytes()  # views of one tensor: one storage
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = model(input_ids, labels=labels).loss
    loss.backward()
    return sum(storages.values())


def _cpu_peak_bytes(step: Callable[[], None]) -> int | None:
    from torch.profiler import ProfilerActivity, profile

    prof = profile(activities=[ProfilerActivity.CPU], profile_memory=True)
    with quiet_native_stderr():  # only the profiler's start and stop: the step's own output stays
        prof.__enter__()
    try:
        step()
    finally:
        with quiet_native_stderr():
            prof.__exit__(None, None, None)
    with tempfile.TemporaryDirectory() as tmp:
        trace = Path(tmp) / "trace.json"
        prof.export_chrome_trace(str(trace))
        events = json.loads(trace.read_text(encoding="utf-8")).get("traceEvents", [])
    mem = [e["args"] for e in events if e.get("name") == "[memory]" and "Total Allocated" in e.get("args", {})]
    if not mem:
        return None
    start = mem[0]["Total Allocated"] - mem[0].get("Bytes", 0)  # allocated before the step
    return max(m["Total Allocated"] for m in mem) - start


def step_memory(model: nn.Module, input_ids: torch.Tensor, labels: torch.Tensor | None = None) -> StepMemory:
    """Measure one training step (forward, loss, backward) of `model` on `input_ids` (B, T).

    The model's gradients are cleared before and after; its weights are not changed.
    """
    labels = input_ids if labels is None else labels
    was_training = model.training
    model.train()
    model.zero_grad(set_to_none=True)
    try:
        saved = _saved_tensor_bytes(model, input_ids, labels)
        model.zero_grad(set_to_none=True)

        def step() -> None:
            model(input_ids, labels=labels).loss.backward()

        device = input_ids.device
        if device.type == "cuda":
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
            before = torch.cuda.memory_allocated(device)
            step()
            torch.cuda.synchronize(device)
            return StepMemory(saved, torch.cuda.max_memory_allocated(device) - before,
                              "torch.cuda.max_memory_allocated")
        if device.type == "cpu":
            return StepMemory(saved, _cpu_peak_bytes(step), "torch.profiler CPU allocations")
        return StepMemory(saved, None, "saved tensors only")
    finally:
        model.zero_grad(set_to_none=True)
        model.train(was_training)
