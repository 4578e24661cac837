"""Multi-process training through PyTorch's DistributedDataParallel (DDP).

The Trainer calls only these functions, so a single-process run (no
``torch.distributed`` initialised) takes the plain path everywhere: rank 0 of a
world of 1, no wrapping, no sampler, no reduction.

Launch with ``torchrun --nproc_per_node N your_script.py``; `init()` reads the
environment torchrun sets (RANK, WORLD_SIZE, LOCAL_RANK).

Introduced in notebooks/10_scaling_up.ipynb.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import Dataset, DistributedSampler, Sampler


def is_distributed() -> bool:
    """True inside an initialised process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main_process() -> bool:
    """Only rank 0 logs, shows progress bars and writes checkpoints."""
    return rank() == 0


def init(backend: str | None = None) -> bool:
    """Initialise the process group from torchrun's environment; False when not under torchrun.

    The backend is nccl on CUDA, gloo otherwise.
    """
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return False
    if not dist.is_initialized():
        backend = backend or ("nccl" if torch.cuda.is_available() else "gloo")
        dist.init_process_group(backend=backend)
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    return True


def wrap_model(model: nn.Module, device: torch.device) -> nn.Module:
    """The model wrapped in DDP when distributed, else unchanged."""
    if not is_distributed():
        return model
    ids = [device.index if device.index is not None else 0] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)


def unwrap_model(model: nn.Module) -> nn.Module:
    """The plain model inside a DDP (or torch.compile) wrapper."""
    model = getattr(model, "module", model)
    return getattr(model, "_orig_mod", model)


@contextlib.contextmanager
def no_sync_unless(model: nn.Module, sync: bool) -> Iterator[None]:
    """Skip DDP's gradient all-reduce on accumulation micro-steps (sync only on the last)."""
    if sync or not isinstance(model, nn.parallel.DistributedDataParallel):
        yield
    else:
        with model.no_sync():
            yield


def make_sampler(dataset: Dataset, shuffle: bool, seed: int) -> Sampler | None:
    """A DistributedSampler giving each rank its own shard, or None when not distributed."""
    if not is_distributed():
        return None
    return DistributedSampler(dataset, num_replicas=world_size(), rank=rank(), shuffle=shuffle, seed=seed,
                              drop_last=True)


def all_reduce_mean(t: torch.Tensor) -> torch.Tensor:
    """The mean of `t` over all ranks (a copy; `t` itself when not distributed)."""
    if not is_distributed():
        return t
    t = t.detach().clone()
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t / world_size()


def barrier() -> None:
    if is_distributed():
        dist.barrier()
