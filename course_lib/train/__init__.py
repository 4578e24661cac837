"""Training: the optimizer, the learning-rate schedule, the loop, and checkpoints that resume exactly.

The pieces::

    TrainConfig                  every knob of a run; a dataclass that round-trips through JSON
    cosine_schedule(step, ...)   linear warm-up, then cosine decay to min_lr
    make_optimizer(model, cfg)   AdamW, weight decay on 2-D weights only (fused on CUDA)
    Trainer(model, train, val, cfg).fit()
                                 accumulation, clipping, mixed precision, evaluation, samples,
                                 a tqdm bar, callbacks, checkpoints every N steps and on Ctrl-C
    Trainer(...).resume(dir)     continue a run bitwise where it stopped (on the CPU)

A checkpoint is a Hugging Face model folder (``config.json``, ``model.safetensors``, the
tokenizer files) plus ``train_state/`` (optimizer, GradScaler, RNG states, step, and the
position in the data), written atomically with `course_lib.io.atomic_dir`, so
``transformers.pipeline("text-generation", model=dir)`` loads it as it is.

Data order. Each epoch is a seeded permutation of the training windows
(``torch.randperm`` with seed ``config.seed + epoch``); micro-batch k of the epoch is rows
``perm[k*B:(k+1)*B]`` with B = ``config.batch_size``, the GLOBAL batch. Under ``torchrun``
rank r takes the r-th contiguous slice of B / world_size rows of that global batch, so a
run on N processes sees the same global batches as a run on one, and the position saved in
a checkpoint (micro-batches done) means the same thing for any world size.

References:
- I. Loshchilov & F. Hutter, "Decoupled Weight Decay Regularization" (AdamW), ICLR 2019.
- I. Loshchilov & F. Hutter, "SGDR: Stochastic Gradient Descent with Warm Restarts" (cosine), 2017.
- A. Karpathy, nanoGPT ``train.py`` (warm-up + cosine schedule, decay on 2-D weights only).
- P. Micikevicius et al., "Mixed Precision Training" (loss scaling), ICLR 2018.

The package: config.py (TrainConfig), optim.py (schedule, AdamW), loop.py (Trainer,
Callback), checkpoint.py (functions over explicit state; it never imports the loop).
Every name stays importable from ``course_lib.train``.

Built in notebooks/06_training.ipynb.
"""

from __future__ import annotations

from .checkpoint import STATE_DIR, model_signature, read_train_state
from .config import PRECISIONS, RESUMABLE_CHANGES, TrainConfig, config_differences
from .loop import Callback, NonFiniteLossError, OutOfMemoryError, Trainer
from .optim import cosine_schedule, decay_parameter_names, make_optimizer

__all__ = [
    "TrainConfig",
    "Trainer",
    "Callback",
    "cosine_schedule",
    "make_optimizer",
    "decay_parameter_names",
    "NonFiniteLossError",
    "OutOfMemoryError",
    "read_train_state",
    "STATE_DIR",
    "PRECISIONS",
    "RESUMABLE_CHANGES",
    "config_differences",
    "model_signature",
]
