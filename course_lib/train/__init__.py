"""Training: the optimizer, the learning-rate schedule, the loop, and checkpoints that resume exactly.

The pieces::

    TrainConfig                  every knob of a run; a dataclass that round-trips through JSON
    COMMAND_LINE                 the TrainConfig `course train` runs unless its flags say otherwise
    cosine_schedule(step, ...)   linear warm-up, then cosine decay to min_lr
    make_optimizer(model, cfg)   AdamW, weight decay on 2-D weights only (fused on CUDA)
    Trainer(model, train, val, cfg).fit()
                                 accumulation, clipping, mixed precision, evaluation, samples,
                                 a tqdm bar, callbacks, checkpoints every N steps and on Ctrl-C
    Trainer(...).resume(dir)     continue a run bitwise where it stopped (on the CPU)

The package: config.py (TrainConfig), optim.py (schedule, AdamW), loop.py (Trainer,
Callback), checkpoint.py (functions over explicit state; it never imports the loop).
Every name stays importable from ``course_lib.train``.

Introduced in notebooks/06_training.ipynb.
"""

from __future__ import annotations

from .checkpoint import STATE_DIR, model_signature, read_train_state
from .config import COMMAND_LINE, PRECISIONS, RESUMABLE_CHANGES, TrainConfig, config_differences
from .loop import Callback, NonFiniteLossError, OutOfMemoryError, Trainer
from .optim import cosine_schedule, decay_parameter_names, make_optimizer

__all__ = [
    "TrainConfig",
    "COMMAND_LINE",
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
