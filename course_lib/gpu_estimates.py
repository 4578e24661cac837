"""How long each notebook should take on a free Colab T4: estimates, until a GPU run measures them.

The course map (`notebook.course_map_markdown`, README.md, notebook 00) has a GPU column. No
notebook had been run on a GPU when it was written, so the column is *estimated* from what
each notebook's full (default) mode computes, and says so. When ``scripts/device_check.py``
has run on a GPU, its committed figures (`MEASURED_FILE`) replace the estimates, labelled
"measured" with the GPU's name.

How a notebook's time is estimated, `estimate_seconds(stem)`: a fixed part (kernel start,
imports, the small cells), the work that stays on the CPU on any machine (tokenizers, the
small models notebook 08 trains once, command-line subprocesses, downloads), and the GPU
work, item by item (`WORK`): FLOPs at a realistic T4 throughput, plus the launch overhead of
each step, which is what a small model's step costs on a GPU. The assumptions (`T4`):

- peak: 65 TFLOP/s in fp16 on the tensor cores and 8.1 TFLOP/s in fp32 (NVIDIA's data sheet);
- sustained: the T4 is capped at 70 W and holds about 25 TFLOP/s on large fp16 matmuls; a whole
  GPT-2-124M training step (attention, LayerNorms, the optimizer, the fp32 loss) reaches about
  40 % of that: 10 TFLOP/s, 15 % of the data-sheet peak, in fp16 autocast; about 4 TFLOP/s in
  fp32 (half the fp32 peak; a T4 has no TF32);
- launches: a small model is bound by kernel launches and Python, not FLOPs: a training step
  (forward, backward, AdamW) costs about 2 ms + 1 ms per layer, a decoding step with a KV
  cache about 0.5 ms + 0.4 ms per layer;
- ``torch.compile`` of GPT-2 124M on Colab's two CPU cores: about 90 s per model shape;
- GPT-2 from the hub in a fresh Colab session: about 30 s (0.5 GB download, then loading).

These are estimates to plan a lesson with, not measurements: read them to ±50 %.

Introduced in notebooks/00_welcome.ipynb (the course map).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

__all__ = ["MEASURED_FILE", "T4", "WORK", "Item", "Throughput", "estimate_seconds", "gpu_column"]


@dataclass(frozen=True)
class Throughput:
    """What a GPU sustains on the course's work (see the module docstring for the T4's figures)."""

    name: str
    fp16_flops: float  # FLOP/s of a whole training or inference step in fp16 autocast
    fp32_flops: float  # FLOP/s in plain fp32
    train_step_s: float  # launch overhead of a training step: fixed part ...
    train_layer_s: float  # ... plus this per layer
    decode_step_s: float  # launch overhead of one decoding step with a cache: fixed part ...
    decode_layer_s: float  # ... plus this per layer
    compile_s: float  # torch.compile of GPT-2 124M, one model shape
    gpt2_load_s: float  # GPT-2 from the hub in a fresh session


T4 = Throughput("T4", fp16_flops=10e12, fp32_flops=4e12, train_step_s=2e-3, train_layer_s=1e-3,
                decode_step_s=0.5e-3, decode_layer_s=0.4e-3, compile_s=90.0, gpt2_load_s=30.0)

FIXED_S = 20.0
"""Kernel start, imports, plots and the many small cells of any notebook."""

GPT2_TRAIN_FLOPS = 0.86e9  # per token: 6 N + 12 L T C for GPT-2 124M at T = 1024 (`scaling.flops_per_token`)
GPT2_FORWARD_FLOPS = 2 * 124e6  # per token, forward only


@dataclass(frozen=True)
class Item:
    """One piece of a notebook's work in full mode.

    ``cpu_s``: seconds that stay on the CPU on any machine. Otherwise `steps` steps of
    `tokens` tokens each, at `flops` FLOPs per token, in fp16 autocast or fp32, through a
    model of `layers` layers, each step also paying the launch overhead of a training step
    (``kind="train"``), a forward pass (``"forward"``, counted like a decoding step) or a
    decoding step (``"decode"``).
    """

    what: str
    cpu_s: float = 0.0
    steps: int = 0
    tokens: int = 0
    flops: float = 0.0
    layers: int = 0
    fp16: bool = False
    kind: str = "train"

    def seconds(self, gpu: Throughput = T4) -> float:
        if self.steps == 0:
            return self.cpu_s
        compute = self.steps * self.tokens * self.flops / (gpu.fp16_flops if self.fp16 else gpu.fp32_flops)
        if self.kind == "train":
            launch = gpu.train_step_s + gpu.train_layer_s * self.layers
        else:
            launch = gpu.decode_step_s + gpu.decode_layer_s * self.layers
        return self.cpu_s + compute + self.steps * launch


def _small(width: int, layers: int, vocab: int, seq: int) -> float:
    """Training FLOPs per token of a small GPT (6 N + 12 L T C), N counted as `scaling` does."""
    n = layers * 12 * width * width + vocab * width
    return 6 * n + 12 * layers * seq * width


_GPT2_LOAD = Item("GPT-2 from the hub (fresh Colab session)", cpu_s=T4.gpt2_load_s)

WORK: dict[str, list[Item]] = {
    # 00-04 and A1 do CPU-sized work: the GPU changes nothing, so their time is the CPU column's.
    "05_gpt2_model": [
        _GPT2_LOAD,
        Item("three GPT-2s compared on the CPU, export and pipeline", cpu_s=25),
        Item("ablation ladder: 6 variants x 800 steps, 2 layers x 64, 32 x 64 tokens",
             steps=6 * 800, tokens=32 * 64, flops=_small(64, 2, 100, 64), layers=2),
    ],
    "06_training": [
        Item("tokenizer and data on the CPU, the command-line run's start", cpu_s=45),
        Item("the inline loop: 200 steps, 2 layers", steps=200, tokens=16 * 64, flops=_small(64, 2, 2000, 64),
             layers=2),
        Item("the Trainer run: 1,500 steps of 12 x 64 tokens, 4 layers x 128",
             steps=1500, tokens=12 * 64, flops=_small(128, 4, 2000, 64), layers=4),
        Item("`course train` in a subprocess: one epoch (~300 steps), 2 layers x 64", steps=300, tokens=16 * 64,
             flops=_small(64, 2, 2000, 64), layers=2),
    ],
    "07_decoding_strategies": [
        _GPT2_LOAD,
        Item("decoding GPT-2: about 2,500 tokens with a cache (every strategy, beams, checks)",
             steps=2500, tokens=1, flops=GPT2_FORWARD_FLOPS, layers=12, kind="decode"),
        Item("the KV-cache timing: GPT-2's shape, no cache, 3 x (128 + 256 + 512) tokens",
             steps=3 * 896, tokens=130, flops=GPT2_FORWARD_FLOPS, layers=12, kind="forward"),
        Item("the KV-cache timing: two cached loops, 3 x 896 tokens each",
             steps=2 * 3 * 896, tokens=1, flops=GPT2_FORWARD_FLOPS, layers=12, kind="decode"),
    ],
    "08_attention_visualization": [
        _GPT2_LOAD,
        Item("the character and induction models, trained once per session on one CPU thread", cpu_s=60),
        Item("the live induction run: 1,000 steps on one CPU thread", cpu_s=45),
        Item("explorers, bertviz and plots on the CPU", cpu_s=30),
        Item("GPT-2: 144 one-head ablations and the scores, batches of 8 x 101 tokens",
             steps=160, tokens=8 * 101, flops=GPT2_FORWARD_FLOPS, layers=12, kind="forward"),
    ],
    "09_fine_tuning": [
        _GPT2_LOAD,
        Item("Alpaca (1,000 rows) and the instruction set", cpu_s=15),
        Item("LoRA and full fine-tuning: 2 x 300 steps of 16 x ~40 tokens, fp32",
             steps=600, tokens=16 * 40, flops=GPT2_TRAIN_FLOPS, layers=12),
        Item("exact-match scoring: 3 models x ~60 held-out answers of ~8 tokens",
             steps=3 * 2 * 60 * 8, tokens=1, flops=GPT2_FORWARD_FLOPS, layers=12, kind="decode"),
    ],
    "10_scaling_up": [
        _GPT2_LOAD,
        Item("the ladder: 6 rungs x 13 steps of 2 x 1,024 tokens (fp32 rung included)",
             steps=6 * 13, tokens=2 * 1024, flops=GPT2_TRAIN_FLOPS, layers=12, fp16=True),
        Item("torch.compile: two model shapes", cpu_s=2 * T4.compile_s),
        Item("fine-tuning GPT-2: 20 steps of 32 x 1,024 tokens, fp16",
             steps=20, tokens=32 * 1024, flops=GPT2_TRAIN_FLOPS, layers=12, fp16=True),
        Item("evaluations: 5 x 10 batches of 4 x 1,024 tokens", steps=50, tokens=4 * 1024,
             flops=GPT2_FORWARD_FLOPS, layers=12, fp16=True, kind="forward"),
    ],
    "11_beyond_gpt2": [
        Item("8 variants x 300 steps, 3 layers x 96, 16 x 64 tokens",
             steps=8 * 300, tokens=16 * 64, flops=_small(96, 3, 100, 64), layers=3),
        Item("the checks against transformers on the CPU", cpu_s=10),
    ],
}
"""The full-mode work of each notebook that a GPU speeds up, with what stays on the CPU."""

MEASURED_FILE = Path(__file__).resolve().parent.parent / "benchmarks" / "device_check" / "notebook_times.json"
"""Written by ``scripts/device_check.py`` on a GPU and committed: {"device": ..., "minutes": {stem: m}}."""


def estimate_seconds(stem: str, cpu_minutes: float, gpu: Throughput = T4) -> float:
    """Seconds notebook `stem` should take in full mode on `gpu`; `cpu_minutes` is its measured CPU time.

    A notebook with no GPU work (00-04, A1) takes its CPU time.
    """
    items = WORK.get(stem)
    if items is None:
        return cpu_minutes * 60
    return FIXED_S + sum(item.seconds(gpu) for item in items)


def _measured() -> dict:
    """The committed device run's figures; {} when there is none (or it was a CPU dry run)."""
    try:
        measured = json.loads(MEASURED_FILE.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {} if measured.get("dry_run") else measured


def gpu_column(stem: str, cpu_minutes: str) -> str:
    """The course map's GPU cell: measured on a GPU when a device run was committed, else estimated for a T4."""
    measured = _measured()
    if stem in measured.get("minutes", {}):
        return f"{measured['minutes'][stem]:.1f} min (measured, {measured.get('gpu', 'GPU')})"
    minutes = estimate_seconds(stem, float(cpu_minutes)) / 60
    return f"~{minutes:.1f} min (estimated, T4)"
