"""Making training fast on a GPU: precision, TF32, torch.compile, fused AdamW, FLOPs and MFU.

Each helper makes one known failure impossible:

- `choose_precision` picks bf16 where the GPU has it (Ampere and newer) and fp16 with a
  GradScaler where it does not (Colab's T4), never bf16 on a T4;
- `enable_tf32` lets fp32 matmuls use TF32 tensor cores (Ampere and newer);
- `compile_model` makes ``torch.compile`` an opt-in with a clean fallback: it is
  skipped where it is known not to work (Windows, GPUs older than compute capability
  7.0, Apple MPS) and, when a trial step fails, warns in one line and returns the
  eager model;
- `fused_adamw_available` tells whether AdamW's fused kernel works on a device;
- `flops_per_token`, `peak_flops` and `mfu` give the model FLOPs utilisation: the
  share of the GPU's peak that the training actually uses.

Precision, TF32, autocast and the fused-AdamW probe live in `course_lib.runtime` (the Trainer
uses them too) and are re-exported here, where notebook 10 teaches them; what training holds in
memory is `course_lib.memory`.

References:
- PaLM (Chowdhery et al., 2022), appendix B: MFU and 6N + 12 L T C FLOPs per token.
- Kaplan et al., "Scaling Laws for Neural Language Models" (2020), section 2.1.
- NVIDIA data sheets (T4, L4, L40(S), V100, A100, H100, H200) for dense tensor-core peaks.
- PyTorch: torch.compile, automatic mixed precision, TF32 notes.

Introduced in notebooks/10_scaling_up.ipynb.
"""

from __future__ import annotations

import contextlib
import shutil
import sys
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

# Precision and TF32 live in runtime (the Trainer uses them too); notebook 10 teaches them here.
from .runtime import (  # noqa: F401 - re-exported
    Precision,
    autocast,
    choose_precision,
    dtype_for_capability,
    enable_tf32,
    fused_adamw_available,
)
from .train.config import training_flops_per_token  # noqa: F401 - re-exported: the Trainer's plan uses it too

__all__ = [
    "PEAK_TFLOPS", "Precision", "autocast", "choose_precision", "compile_model",
    "compile_unsupported_reason", "dtype_for_capability", "enable_tf32", "flops_per_token",
    "fused_adamw_available", "gpu_peak_name", "is_compiled", "mfu", "non_embedding_params", "peak_flops",
    "training_flops_per_token",
]

# Dense (no sparsity) tensor-core peaks in TFLOPS, by data type, from NVIDIA's data sheets.
# "fp32" is the TF32 tensor-core peak where the GPU has TF32 (Ampere and newer, with
# `enable_tf32`), else the plain fp32 peak. Order matters: the first name found in the
# device name wins ("L40S" before "L40" before "L4", "H100 PCIe" before "H100").
PEAK_TFLOPS: dict[str, dict[str, float]] = {
    "H200": {"bf16": 989.0, "fp16": 989.0, "fp32": 494.5},
    "H100 PCIe": {"bf16": 756.0, "fp16": 756.0, "fp32": 378.0},
    "H100 NVL": {"bf16": 835.0, "fp16": 835.0, "fp32": 417.5},
    "H100": {"bf16": 989.0, "fp16": 989.0, "fp32": 494.5},  # SXM
    "A100": {"bf16": 312.0, "fp16": 312.0, "fp32": 156.0},
    "L40S": {"bf16": 362.0, "fp16": 362.0, "fp32": 183.0},
    "L40": {"bf16": 181.0, "fp16": 181.0, "fp32": 90.5},
    "L4": {"bf16": 121.0, "fp16": 121.0, "fp32": 60.0},
    "V100": {"fp16": 125.0, "fp32": 15.7},
    "T4": {"fp16": 65.0, "fp32": 8.1},
}
_DTYPE_KEY = {torch.bfloat16: "bf16", torch.float16: "fp16", torch.float32: "fp32", None: "fp32"}


# --------------------------------------------------------------------------- torch.compile

def compile_unsupported_reason(device: torch.device | str) -> str | None:
    """Why ``torch.compile`` should not be tried on `device` here, or None when it may work."""
    dev = torch.device(device)
    if not hasattr(torch, "compile"):
        return f"torch {torch.__version__} has no torch.compile (it needs torch 2.0 or newer)"
    if sys.platform == "win32":
        return "torch.compile is not dependable on Windows (use Linux, WSL or Colab for it)"
    if dev.type == "mps":
        return "torch.compile does not support Apple MPS well yet"
    if dev.type == "cuda":
        major, minor = torch.cuda.get_device_capability(dev)
        if major < 7:
            return (f"this GPU has compute capability {major}.{minor}; torch.compile's Triton kernels "
                    "need 7.0 or newer")
    if dev.type == "cpu" and not any(shutil.which(c) for c in ("g++", "c++", "clang++", "cl")):
        return "no C++ compiler found, which torch.compile needs on the CPU"
    return None


def is_compiled(model: nn.Module) -> bool:
    """True for a module returned by ``torch.compile``."""
    return isinstance(getattr(model, "_orig_mod", None), nn.Module)


def compile_model(
    model: nn.Module,
    *,
    enabled: bool = True,
    device: torch.device | str | None = None,
    trial: Callable[[nn.Module], Any] | None = None,
    mode: str | None = None,
    quiet: bool = False,
) -> nn.Module:
    """``torch.compile(model)`` as an opt-in that never breaks the notebook.

    Returns `model` unchanged when `enabled` is False or where compiling is known not
    to work (`compile_unsupported_reason`). Compilation happens at the first call, so
    give `trial`, a function that runs one typical step (forward and backward, under the
    same autocast as training) with the compiled model: if it raises, a one-line
    warning is printed and the eager model comes back. Gradients the trial left behind
    are cleared.
    """
    if not enabled:
        return model
    if device is None:
        first = next(model.parameters(), None)
        device = first.device if first is not None else torch.device("cpu")
    reason = compile_unsupported_reason(device)
    if reason is not None:
        if not quiet:
            print(f"torch.compile skipped: {reason}; the model runs eagerly (same results).")
        return model
    try:
        compiled = torch.compile(model, mode=mode)
        if trial is not None:
            trial(compiled)
    except Exception as e:  # noqa: BLE001 - any compiler failure means: run eagerly
        first_line = (str(e).strip().splitlines() or [""])[0][:160]
        if not quiet:
            print(f"torch.compile failed ({type(e).__name__}: {first_line}); the model runs eagerly "
                  "(same results, a little slower).")
        with contextlib.suppress(Exception):
            torch._dynamo.reset()
        model.zero_grad(set_to_none=True)
        return model
    model.zero_grad(set_to_none=True)
    return compiled


# --------------------------------------------------------------------------- FLOPs and MFU

def non_embedding_params(config: Any) -> int:
    """Parameters that cost matmul FLOPs for every token: the blocks, ln_f and the output head.

    The position table and the token embedding are lookups, so they are left out; the head's
    matrix (the tied embedding, or its own) is counted once (123.7 M for GPT-2 124M). Despite the
    name this is not Kaplan et al.'s *non-embedding* count, which leaves the tied head out with the
    embeddings (85.1 M for GPT-2: `model.count_parameters(config, exclude_embeddings=True)`); for
    FLOPs and MFU the head's matmul counts, as in nanoGPT. The notebook-11 switches count as they
    change the weights: SwiGLU's three matrices of `mlp_width`, grouped-query attention's narrower
    k and v, no biases, RMSNorm's single gain.
    """
    C, L, V = config.n_embd, config.n_layer, config.vocab_size
    kv = getattr(config, "kv_heads", config.n_head) * (C // config.n_head)  # k and v width: C unless GQA
    width = getattr(config, "mlp_width", 4 * C)
    bias = int(getattr(config, "bias", True))
    matrices = 3 if getattr(config, "mlp", "gelu") == "swiglu" else 2  # gate, up, down or fc, proj
    norm = C * (2 if getattr(config, "norm", "layernorm") == "layernorm" and bias else 1)  # gain (+ bias)
    attention = C * (C + 2 * kv) + C * C + bias * (C + 2 * kv + C)  # c_attn (q | k | v), c_proj
    mlp = matrices * C * width + bias * ((matrices - 1) * width + C)
    return L * (attention + mlp + 2 * norm) + norm + V * C


def flops_per_token(config: Any, seq_len: int | None = None) -> int:
    """Training FLOPs per token: 6 N (forward 2N + backward 4N) plus attention 12 L T C.

    N is `non_embedding_params`; the attention term counts the Q K^T and (weights) V
    matmuls, forward and backward, at sequence length `seq_len` (default n_positions).
    """
    T = config.n_positions if seq_len is None else seq_len
    return training_flops_per_token(non_embedding_params(config), config.n_layer, config.n_embd, T)


def gpu_peak_name(device_name: str) -> str | None:
    """The `PEAK_TFLOPS` entry for a GPU name like "NVIDIA H100 80GB HBM3", or None.
    """
    upper = device_name.upper()
    for key in PEAK_TFLOPS:
        if all(part.upper() in upper for part in key.split()):
            return key
    return None


def peak_flops(device: torch.device | str, dtype: torch.dtype | None = None,
               device_name: str | None = None) -> float | None:
    """The GPU's dense peak FLOP/s for `dtype` (None = fp32); None on a CPU, MPS or an unknown GPU.

    `device_name` overrides the name read from the device (for tables and tests).
    """
    dev = torch.device(device)
    if device_name is None:
        if dev.type != "cuda" or not torch.cuda.is_available():
            return None
        device_name = torch.cuda.get_device_name(dev)
    key = gpu_peak_name(device_name)
    if key is None:
        return None
    tflops = PEAK_TFLOPS[key].get(_DTYPE_KEY.get(dtype, "fp32"))
    return None if tflops is None else tflops * 1e12


def mfu(tokens_per_s: float, flops_per_tok: float, peak: float | None) -> float | None:
    """Model FLOPs utilisation: achieved FLOP/s over peak FLOP/s (None when the peak is unknown)."""
    if peak is None or peak <= 0:
        return None
    return tokens_per_s * flops_per_tok / peak
