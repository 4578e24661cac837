"""The speed-up ladder of notebook 10: which rungs apply on a device, and why the others do not.

The ladder trains the same GPT-2 step again and again, each rung adding one speed-up to
the rung before it:

    fp32 -> TF32 -> autocast (bf16; fp16 + GradScaler on a T4) -> flash attention (SDPA)
         -> torch.compile -> fused AdamW -> vocabulary padded to a multiple of 64 (50,304)

`plan_ladder` says, for a device kind and a GPU's compute capability, what each rung
switches on, and for a rung that cannot help there, why it is skipped (``Rung.skipped``).
It is plain logic, so the choices for a T4, an A100 or a CPU are tested on any machine.
The notebook itself writes the training step and times it (TF32 on and off with
`runtime.set_tf32`), and `padded_vocab` rounds a vocabulary up.

References:
- Andrej Karpathy, nanoGPT and "Let's reproduce GPT-2 (124M)" (2024): the same ladder.
- PyTorch notes: TF32 on Ampere, automatic mixed precision, scaled_dot_product_attention.

Introduced in notebooks/10_scaling_up.ipynb.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from .errors import CourseInputError

__all__ = ["RUNGS", "Rung", "batch_for_memory", "padded_vocab", "plan_ladder"]

RUNGS = ("fp32", "TF32", "autocast", "flash attention", "torch.compile", "fused AdamW", "padded vocab")
"""The rungs in order; each keeps everything the rungs before it switched on."""


@dataclass(frozen=True)
class Rung:
    """One rung: what is switched on when it is measured (its own change and all the earlier ones).

    `skipped` is None when the rung runs, else why it adds nothing on this device (its
    settings are then those of the rung before). `note` is a remark worth printing.
    """

    name: str
    label: str
    tf32: bool = False
    amp_dtype: torch.dtype | None = None
    grad_scaler: bool = False
    flash: bool = False
    compile: bool = False
    fused: bool = False
    vocab_multiple: int | None = None
    skipped: str | None = None
    note: str = ""

    @property
    def runs(self) -> bool:
        """True when the rung is measured on this device."""
        return self.skipped is None


def padded_vocab(vocab_size: int, multiple: int = 64) -> int:
    """`vocab_size` rounded up to a multiple of `multiple` (50,257 -> 50,304 for 64).

    Matrix kernels run fastest when the sizes are multiples of 64 (or more); the extra
    rows of the embedding are never used as targets, so the model learns to give them
    no probability.
    """
    for name, value in (("vocab_size", vocab_size), ("multiple", multiple)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise CourseInputError(f"padded_vocab: {name} must be a positive whole number, got {value!r}")
    return -(-vocab_size // multiple) * multiple


def plan_ladder(
    device_type: str,
    capability: tuple[int, int] | None = None,
    *,
    compile: bool = True,
    compile_reason: str | None = None,
    fused_available: bool = True,
    vocab_multiple: int = 64,
) -> list[Rung]:
    """The ladder's rungs for a device: each with its settings, or why it is skipped.

    - `device_type`: "cuda", "cpu" or "mps"; `capability`: a CUDA GPU's (major, minor)
      compute capability (needed for "cuda").
    - `compile`: False makes torch.compile a skipped opt-in; `compile_reason` (such as
      `scaling.compile_unsupported_reason(device)`, or a failure seen on this machine)
      skips it with that reason.
    - `fused_available`: whether AdamW's fused kernel works here
      (`scaling.fused_adamw_available(device)`).

    TF32 needs an Ampere or newer GPU (8.0); autocast is bf16 there and on MPS, fp16 with a
    GradScaler on older GPUs (a T4 is 7.5) and skipped on a CPU, where the course trains
    in fp32. The other rungs run everywhere.
    """
    if device_type not in ("cuda", "cpu", "mps"):
        raise CourseInputError(f"plan_ladder: device_type must be cuda, cpu or mps, got {device_type!r}")
    if device_type == "cuda" and capability is None:
        raise CourseInputError("plan_ladder: give the GPU's compute capability (major, minor) for cuda")
    major, minor = capability if capability is not None else (0, 0)
    cuda = device_type == "cuda"
    where = f"compute capability {major}.{minor}"

    rungs: list[Rung] = []
    now = Rung("fp32", "fp32", note="the baseline: every number in 32-bit floats, explicit attention")
    rungs.append(now)

    def add(name: str, label: str, *, skipped: str | None = None, note: str = "", **switch: object) -> None:
        nonlocal now
        changes = {} if skipped is not None else switch
        now = dataclasses.replace(now, name=name, label=label, skipped=skipped, note=note, **changes)
        rungs.append(now)

    # TF32: fp32 matmuls on tensor cores, 10-bit mantissa
    if cuda and major >= 8:
        add("TF32", "TF32", tf32=True, note="fp32 matmuls on tensor cores with a 10-bit mantissa")
    elif cuda:
        add("TF32", "TF32", skipped=f"this GPU ({where}) has no TF32; it came with Ampere (8.0)")
    else:
        add("TF32", "TF32",
            skipped=f"TF32 is a format of NVIDIA's tensor cores (Ampere and newer), not of a {device_type.upper()}")

    # autocast: matmuls in 16 bits
    if cuda and major >= 8 or device_type == "mps":
        add("autocast", "autocast bf16", amp_dtype=torch.bfloat16,
            note="matmuls in bf16: the range of fp32, no loss scaling needed")
    elif cuda:
        add("autocast", "autocast fp16 + GradScaler", amp_dtype=torch.float16, grad_scaler=True,
            note=f"no bf16 before Ampere ({where}): fp16, whose small range needs a GradScaler")
    else:
        add("autocast", "autocast", skipped="most CPUs have no fast 16-bit matrix units, so autocast "
            "brings no speed here; the course trains in fp32 on a CPU")

    # flash attention through scaled_dot_product_attention
    if cuda and major >= 8:
        attention_note = "SDPA picks FlashAttention: the T x T matrix is never stored"
    elif cuda:
        attention_note = (f"FlashAttention needs compute capability 8.0; here ({where}) SDPA uses its "
                          "memory-efficient kernel, which also never stores the T x T matrix")
    else:
        attention_note = f"on a {device_type.upper()} SDPA is a fused kernel, not FlashAttention itself"
    add("flash attention", "SDPA (flash attention)", flash=True, note=attention_note)

    # torch.compile
    if not compile:
        add("torch.compile", "torch.compile", skipped="opt-in: set COMPILE = True to try it (its first "
            "steps compile for a minute or more)")
    elif compile_reason is not None:
        add("torch.compile", "torch.compile", skipped=compile_reason)
    else:
        add("torch.compile", "torch.compile", compile=True,
            note="fuses elementwise operations into fewer kernels; the first steps compile")

    # fused AdamW
    if fused_available:
        add("fused AdamW", "fused AdamW", fused=True, note="the whole optimizer step in one kernel")
    else:
        add("fused AdamW", "fused AdamW", skipped="AdamW's fused kernel is not available for this device "
            "in this PyTorch")

    # the vocabulary padded to a multiple of 64
    padded = padded_vocab(50257, vocab_multiple)
    add("padded vocab", f"vocab {padded:,}", vocab_multiple=vocab_multiple,
        note=f"50,257 -> {padded:,} = {padded // vocab_multiple} x {vocab_multiple}: tensor cores work in tiles"
        if cuda else f"50,257 -> {padded:,}: it matters for GPU tiles, little on a {device_type.upper()}")
    return rungs


def batch_for_memory(total_memory: int | None) -> int:
    """Sequences of 1,024 tokens per step for the ladder on GPT-2 124M, from the GPU's memory in bytes.

    The fp32 rung with explicit attention is the hungriest (it keeps every T x T attention
    matrix for the backward pass); about 3.5 GB per sequence with AdamW's states, so 16
    on an 80 GB GPU, 8 on 40 GB, 4 on 24 GB, 2 on a 15 GB T4, 1 below that.
    """
    if total_memory is None:
        return 1
    gib = total_memory / 2**30
    for need, batch in ((70, 16), (35, 8), (20, 4), (13, 2)):
        if gib >= need:
            return batch
    return 1
