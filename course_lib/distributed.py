"""Multi-process training through PyTorch's DistributedDataParallel (DDP).

The Trainer calls only these functions, so a single-process run (no
``torch.distributed`` initialised) takes the plain path everywhere: rank 0 of a
world of 1, no wrapping, no reduction.

Launch with ``torchrun --nproc_per_node N your_script.py``; `init()` reads the
environment torchrun sets (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT).

How the pieces give the same result as one process with the same global batch:

- every rank starts from the same weights (DDP broadcasts rank 0's at wrap time);
- `ShardSampler` draws ONE global order of the samples (the same on every world
  size) and deals it out round-robin, so the ranks' micro-batches of one optimizer
  step together hold exactly the samples one process would see in that step;
- each rank averages its loss over its micro-batches; DDP averages the gradients
  over ranks, once per optimizer step: `no_sync_unless(model, sync=last_micro_step)`
  skips the all-reduce on the other micro-steps (the gradients simply accumulate
  locally until the last one);
- the data position is counted in *global* samples, so a run saved by 4 processes
  resumes on 1 (or 2) at the same place in the same order.

References: PyTorch DDP notes (https://pytorch.org/docs/stable/notes/ddp.html),
``torch.utils.data.DistributedSampler``, ``torchrun``
(https://pytorch.org/docs/stable/elastic/run.html).

Introduced in notebooks/10_scaling_up.ipynb.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import Dataset, Sampler

from .errors import CourseInputError

__all__ = [
    "ShardSampler", "all_reduce_mean", "barrier", "cleanup", "init", "is_distributed", "is_main_process",
    "local_rank", "no_sync_unless", "rank", "world_size", "wrap_model",
]


def is_distributed() -> bool:
    """True inside an initialised process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """This process's rank (0 when not distributed)."""
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    """The number of processes (1 when not distributed)."""
    return dist.get_world_size() if is_distributed() else 1


def local_rank() -> int:
    """This process's index on its own machine (torchrun's LOCAL_RANK; 0 when not set)."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_main_process() -> bool:
    """Only rank 0 logs, shows progress bars and writes checkpoints."""
    return rank() == 0


def init(backend: str | None = None, timeout_s: float = 600.0) -> bool:
    """Initialise the process group from torchrun's environment; False when not under torchrun.

    The backend is nccl on CUDA, gloo otherwise (the CPU, and the tests). On CUDA each
    process is pinned to the GPU of its LOCAL_RANK before the group starts.
    """
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return False
    if not dist.is_available():  # pragma: no cover - some macOS / Windows builds
        raise CourseInputError("this PyTorch build has no torch.distributed; run without torchrun")
    if not dist.is_initialized():
        backend = backend or ("nccl" if torch.cuda.is_available() else "gloo")
        if backend == "nccl":
            if local_rank() >= torch.cuda.device_count():
                raise CourseInputError(
                    f"LOCAL_RANK={local_rank()} but only {torch.cuda.device_count()} GPU(s) are "
                    "visible; use --nproc_per_node at most the number of GPUs"
                )
            torch.cuda.set_device(local_rank())
        dist.init_process_group(backend=backend, timeout=timedelta(seconds=timeout_s))
    return True


def cleanup() -> None:
    """Leave the process group (call once at the end of a torchrun script)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def wrap_model(model: nn.Module, device: torch.device) -> nn.Module:
    """The model wrapped in DDP when distributed, else unchanged.

    Wrap *before* `torch.compile` (compile the DDP module), and build the optimizer on
    the plain model's parameters: they are the same tensors.
    """
    if not is_distributed():
        return model
    device = torch.device(device)
    ids = [device.index if device.index is not None else local_rank()] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)


def _find_ddp(model: nn.Module) -> nn.parallel.DistributedDataParallel | None:
    """The DDP module inside `model` (looking through torch.compile wrappers), if any."""
    m: nn.Module | None = model
    for _ in range(4):
        if isinstance(m, nn.parallel.DistributedDataParallel):
            return m
        m = getattr(m, "_orig_mod", None)
        if m is None:
            return None
    return None



@contextlib.contextmanager
def no_sync_unless(model: nn.Module, sync: bool) -> Iterator[None]:
    """Skip DDP's gradient all-reduce on accumulation micro-steps (sync only on the last).

    Put the forward AND the backward of a micro-step inside it::

        for i, (x, y) in enumerate(micro_batches):
            with no_sync_unless(model, sync=(i == len(micro_batches) - 1)):
                loss = model(x, labels=y).loss / len(micro_batches)
                loss.backward()

    A plain model (one process) or ``sync=True`` runs as usual. Works through a
    ``torch.compile`` wrapper around the DDP module.
    """
    ddp = None if sync else _find_ddp(model)
    if ddp is None:
        yield
    else:
        with ddp.no_sync():
            yield


_current_rank, _current_world_size = rank, world_size  # the constructor's arguments shadow them


class ShardSampler(Sampler[int]):
    """One global order of the samples, dealt round-robin to the ranks, resumable anywhere.

    The global order for an epoch is ``torch.randperm(n)`` seeded with ``seed + epoch``
    (or ``0 .. n-1`` without shuffling), the same on every world size.
    `start` skips that many *global* samples, so a run that stopped after `start`
    samples resumes at the same place on any number of processes. Rank r yields
    global positions ``start + r, start + r + W, ...``; the tail that cannot be
    shared equally is dropped so every rank takes the same number of steps.
    """

    def __init__(self, dataset: Dataset | int, *, shuffle: bool = True, seed: int = 0,
                 rank: int | None = None, world_size: int | None = None, start: int = 0) -> None:
        self.n = dataset if isinstance(dataset, int) else len(dataset)  # type: ignore[arg-type]
        self.shuffle = shuffle
        self.seed = seed
        self.rank = _current_rank() if rank is None else rank
        self.world_size = _current_world_size() if world_size is None else world_size
        if self.world_size < 1 or not 0 <= self.rank < self.world_size:
            raise CourseInputError(
                f"ShardSampler: rank {self.rank} is not in 0 .. world_size-1 = {self.world_size - 1}")
        self.epoch = 0
        self.start = 0
        self.set_epoch(0, start)

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """Use the order of `epoch`, skipping its first `start` global samples."""
        if not 0 <= start <= self.n:
            raise CourseInputError(f"ShardSampler: start={start} is outside 0 .. {self.n} samples")
        self.epoch, self.start = int(epoch), int(start)

    def global_order(self) -> list[int]:
        """This epoch's order of all samples, identical on every rank and world size."""
        if not self.shuffle:
            return list(range(self.n))
        g = torch.Generator()
        g.manual_seed(self.seed + self.epoch)
        return torch.randperm(self.n, generator=g).tolist()

    def __len__(self) -> int:
        return (self.n - self.start) // self.world_size

    def __iter__(self) -> Iterator[int]:
        order = self.global_order()[self.start:]
        per_rank = len(order) // self.world_size
        return iter(order[self.rank::self.world_size][:per_rank])


def all_reduce_mean(t: torch.Tensor) -> torch.Tensor:
    """The mean of `t` over all ranks (a copy; `t` itself when not distributed)."""
    if not is_distributed():
        return t
    t = t.detach().clone()
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t / world_size()


def barrier() -> None:
    """Wait until every rank gets here (nothing to wait for in one process)."""
    if is_distributed():
        dist.barrier()
