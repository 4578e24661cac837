"""course_lib: the finished version of each piece the gpt2-course notebooks build.

Each module holds what one notebook builds, so later notebooks import it instead of
repeating it (see docs/ARCHITECTURE.md for the map):

- runtime    device, precision, seeding, Colab, fast mode      (notebooks/00_welcome)
- tokenizer  byte-level BPE from scratch, the GPT-2 vocabulary  (notebooks/01_tokenization)
- data       corpora, augmentation, batches                    (notebooks/02_data_and_embeddings)
- attention  attention math and the multi-head module          (notebooks/03_attention)
- model      GPTConfig, Block, GPT                             (notebooks/04, 05)
             switches to a Llama-style model (RMSNorm, RoPE, ...) (notebooks/11_beyond_gpt2)
- model_checks  what GPTConfig and GPT.forward refuse, one clear line (notebooks/05)
- convert    to and from transformers, one table per architecture (notebooks/05, 11)
- train      Trainer, schedule, checkpoints                    (notebooks/06_training)
- generate   logits processors, sampling, beam search, cache   (notebooks/07_decoding)
- pretrained GPT-2 from the hub, the shipped course model      (notebooks/07_decoding)
- viz        plots and widgets                                 (notebooks/01, 07, 08)
- interp     attention scores, ablation, logit lens            (notebooks/08_attention_visualization)
- toys       the small models notebook 08 trains once, cached  (notebooks/08_attention_visualization)
- lora       low-rank adapters                                 (notebooks/09_fine_tuning)
- memory     what training holds in memory                     (notebooks/09, 10)
- checks     exercise checkers                                 (every notebook)
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

from .runtime import (  # noqa: E402
    autocast_dtype,
    capped_mode,
    fast_mode,
    in_colab,
    pick_device,
    seed_everything,
    setup,
    steps,
)

_SUBMODULES = (  # every module and package of course_lib (tests/test_architecture.py checks it is complete)
    "attention", "checks", "classroom", "cli", "convert", "data", "distributed", "errors", "figures", "finetune",
    "generate", "gpu_estimates", "interp", "io", "kernels", "ladder", "lora", "memory", "model", "model_checks",
    "notebook", "pretrained", "protocols", "runtime", "scaling", "tokenizer", "toys", "train", "viz",
)

__all__ = [
    "__version__", "autocast_dtype", "capped_mode", "fast_mode", "in_colab", "pick_device",
    "seed_everything", "setup", "steps", *sorted(_SUBMODULES),
]


def __getattr__(name: str) -> Any:
    """Import submodules on first use, so `import course_lib` stays fast."""
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_SUBMODULES))
