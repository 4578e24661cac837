"""Token windows and batches: `TokenDataset` (x = w[:-1], y = w[1:]), a seeded loader, `get_batch`.

Reference: A. Karpathy, minGPT ``CharDataset`` and nanoGPT ``get_batch``: the x/y shift by one token.

Introduced in notebooks/02_data_and_embeddings.ipynb.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ..errors import CourseInputError


def _as_ids(ids: Any) -> np.ndarray:
    if isinstance(ids, torch.Tensor):
        arr = ids.detach().cpu().numpy()
    else:
        arr = np.asarray(ids)
    if arr.ndim != 1:
        raise CourseInputError(f"ids: expected a 1-D sequence of token ids, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise CourseInputError(f"ids: expected integer token ids, got dtype {arr.dtype}")
    if arr.size and arr.min() < 0:
        raise CourseInputError("ids: token ids must be >= 0")
    return arr


def _check_seq_len(n: int, seq_len: int) -> None:
    if isinstance(seq_len, bool) or not isinstance(seq_len, (int, np.integer)) or seq_len < 1:
        raise CourseInputError(f"seq_len: expected a whole number >= 1, got {seq_len!r}")
    if n < seq_len + 1:
        best = f"the largest seq_len that works is {n - 1}" if n >= 2 else "it needs at least 2 tokens"
        raise CourseInputError(
            f"seq_len={seq_len} is too long for this corpus: a window needs seq_len + 1 = "
            f"{seq_len + 1:,} tokens but there are only {n:,} tokens; {best}"
        )


class TokenDataset(Dataset):
    """Windows of ``seq_len + 1`` tokens from one long id sequence; item i is ``(x, y)``.

    ``x = window[:-1]`` and ``y = window[1:]``: at every position the target is the next
    token. Windows start every `stride` tokens (default `seq_len`, so each token is a
    target exactly once per epoch; ``stride=1`` gives every offset, like minGPT).
    The ids stay in their compact NumPy dtype; items are int64 tensors of shape (seq_len,).
    """

    def __init__(self, ids: Any, seq_len: int, stride: int | None = None) -> None:
        self.ids = _as_ids(ids)
        _check_seq_len(len(self.ids), seq_len)
        self.seq_len = int(seq_len)
        self.stride = int(stride) if stride is not None else self.seq_len
        if self.stride < 1:
            raise CourseInputError(f"stride: expected a whole number >= 1, got {stride!r}")
        self._n = (len(self.ids) - 1 - self.seq_len) // self.stride + 1

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        if i < 0:
            i += self._n
        if not 0 <= i < self._n:
            raise IndexError(f"window {i} out of range for {self._n} windows")
        start = i * self.stride
        chunk = torch.from_numpy(self.ids[start : start + self.seq_len + 1].astype(np.int64))
        return chunk[:-1], chunk[1:]  # (T,), (T,)

    def __repr__(self) -> str:
        return (f"TokenDataset({len(self.ids):,} tokens, seq_len={self.seq_len}, "
                f"stride={self.stride}, {self._n:,} windows)")


def make_loader(
    dataset: Dataset,
    batch_size: int,
    shuffle: bool = True,
    seed: int = 0,
    *,
    drop_last: bool = False,
    num_workers: int = 0,
) -> DataLoader:
    """A `torch.utils.data.DataLoader` over `dataset` whose shuffling is seeded.

    Batches are ``(x, y)`` of shape (B, T). The same seed gives the same batch order
    on every run and machine.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise CourseInputError(f"batch_size: expected a whole number >= 1, got {batch_size!r}")
    generator = torch.Generator()
    generator.manual_seed(seed)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        generator=generator if shuffle else None,
        drop_last=drop_last,
        num_workers=num_workers,
    )


def get_batch(
    ids: Any,
    batch_size: int,
    seq_len: int,
    *,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """A random batch ``(x, y)`` of shape (B, T) from random offsets, nanoGPT style."""
    arr = _as_ids(ids)
    _check_seq_len(len(arr), seq_len)
    starts = torch.randint(len(arr) - seq_len, (batch_size,), generator=generator)
    windows = np.stack([arr[s : s + seq_len + 1] for s in starts.tolist()]).astype(np.int64)
    w = torch.from_numpy(windows)  # (B, T+1)
    x, y = w[:, :-1], w[:, 1:]  # (B, T), (B, T)
    if device is not None:
        x, y = x.to(device), y.to(device)
    return x, y
