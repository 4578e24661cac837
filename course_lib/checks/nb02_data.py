"""Checks for notebooks/02_data_and_embeddings.ipynb: the piece the learner writes, then the exercises.

The piece: the ``__len__`` and ``__getitem__`` of ``TokenDataset``, a ``torch.utils.data.Dataset``
of sliding windows (`check_token_dataset`): built on an id stream with a window length and a
stride, it must give as many windows as the reference, and the same ``(x, y)`` for every one.
The reference here is what the notebook's collapsed reference cell shows. The exercises at the
end: `check_split_documents` (the stream back into documents), `check_embedding_grad` (the
gradient of an embedding table without autograd) and `check_document_positions` (positions that
start again in every document, as packed training uses them).

Introduced in notebooks/02_data_and_embeddings.ipynb.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ._core import Case, CheckResult, Exercise, Mistake, describe

__all__ = [
    "check_token_dataset",
    "check_split_documents",
    "check_embedding_grad",
    "check_document_positions",
]


# ----------------------------------------------------------------- the piece: a Dataset of windows
class TokenDataset(Dataset):
    """Windows of seq_len + 1 tokens, one every `stride` tokens; item i is (x, y), y = x shifted by one."""

    def __init__(self, ids, seq_len, stride=None):
        self.ids = torch.as_tensor(np.asarray(ids, dtype=np.int64))  # (N,) int64, whatever came in
        self.seq_len = seq_len
        self.stride = stride or seq_len                              # default: windows side by side

    def __len__(self):
        # a window needs seq_len + 1 tokens, so the last start that fits is N - seq_len - 1
        return max(0, (len(self.ids) - self.seq_len - 1) // self.stride + 1)

    def __getitem__(self, i):
        start = i * self.stride
        chunk = self.ids[start : start + self.seq_len + 1]          # (T + 1,)
        return chunk[:-1], chunk[1:]                                # x (T,), y (T,): y is x shifted by one


@dataclass
class _Windows:
    """What a dataset gave: its length, and its items 0 .. length - 1 (or the item that raised)."""

    length: int
    items: list[Any]
    raised: tuple[int, BaseException] | None = None


_MAX_ITEMS = 10_000  # a length far too large is reported as a length, not read item by item


class _DatasetRunner:
    """Builds the class on a case's ids, then reads its length and every item."""

    def __init__(self, piece: type) -> None:
        self.piece = piece

    def __call__(self, ids: Any, seq_len: int, stride: int | None) -> _Windows:
        ds = self.piece(ids, seq_len, stride)
        n = len(ds)
        items: list[Any] = []
        for i in range(min(n, _MAX_ITEMS)):
            try:
                items.append(ds[i])
            except NotImplementedError:
                raise
            except Exception as e:  # noqa: BLE001 - the learner's error, reported with its window
                return _Windows(n, items, (i, e))
        return _Windows(n, items)


def _show(t: Any) -> str:
    return str(t.tolist()) if isinstance(t, torch.Tensor) and t.numel() <= 20 else describe(t, 120)


def _dataset_verdict(got: _Windows, expected: _Windows, args: tuple[Any, ...],
                     kwargs: dict[str, Any]) -> tuple[bool, str]:
    if got.length != expected.length:
        return False, f"your dataset has {got.length} windows, expected {expected.length}"
    if got.raised is not None:
        i, e = got.raised
        return False, f"window {i} raised {type(e).__name__}: {e}"
    for i, (item, (ex, ey)) in enumerate(zip(got.items, expected.items)):
        if not (isinstance(item, (tuple, list)) and len(item) == 2):
            return False, f"window {i} is {describe(item, 80)}; return a pair (x, y) of tensors"
        for name, mine, ref in (("x", item[0], ex), ("y", item[1], ey)):
            if not isinstance(mine, torch.Tensor):
                return False, f"window {i}: your {name} is a {type(mine).__name__}; it must be a torch tensor"
            if mine.dtype != ref.dtype:
                return False, f"window {i}: your {name} is {str(mine.dtype).removeprefix('torch.')}, expected int64"
            if mine.shape != ref.shape or not torch.equal(mine, ref):
                return False, f"window {i}: your {name} is {_show(mine)}, expected {_show(ref)}"
    return True, ""


class _DatasetExercise(Exercise):
    """A class piece that is not an nn.Module: a Dataset, built on a case's ids, read whole."""

    method = "__getitem__"  # with __len__: the methods the learner writes
    subject = "your dataset"

    def _wrong_kind(self, piece: Any) -> str:
        if not isinstance(piece, type):
            return (f"give the class itself, not {describe(piece, 80)}; "
                    "for example check_token_dataset(TokenDataset)")
        return ""

    def _runner(self, piece: Any) -> Callable[..., Any]:
        return _DatasetRunner(piece)


class _WindowsOfSeqLen(TokenDataset):
    def __len__(self):
        return max(0, (len(self.ids) - self.seq_len) // self.stride + 1)


class _StartAtIndex(TokenDataset):
    def __getitem__(self, i):
        chunk = self.ids[i : i + self.seq_len + 1]
        return chunk[:-1], chunk[1:]


class _TargetsNotShifted(TokenDataset):
    def __getitem__(self, i):
        chunk = self.ids[i * self.stride : i * self.stride + self.seq_len]
        return chunk, chunk


def _dataset_inputs(rng: random.Random) -> tuple[Any, ...]:
    seq_len = rng.randint(1, 10)
    n = rng.choice([rng.randint(0, seq_len + 1), rng.randint(seq_len + 1, 60)])
    stride = rng.choice([None, 1, seq_len, rng.randint(1, seq_len), rng.randint(seq_len + 1, 3 * seq_len + 1)])
    return torch.randint(0, 100, (n,)), seq_len, stride


TOKEN_DATASET = _DatasetExercise(
    name="token_dataset",
    reference=TokenDataset,
    make_inputs=_dataset_inputs,
    hints=(
        "a window holds seq_len plus one tokens, because its last token is only a target; window i "
        "starts i strides into the ids; x is the window without its last token, y without its first",
        "the length is how many starts, zero, one stride, two strides and so on, still leave room for a "
        "whole window before the ids end: none when there are not even seq_len plus one ids. An item "
        "is one slice of seq_len plus one ids cut in two overlapping parts, so y is x moved by one",
    ),
    cases=(
        Case("exactly seq_len plus one ids", (torch.tensor([5, 0, 5, 1]), 3, 1)),
        Case("a stride longer than seq_len, so ids are skipped between windows", (torch.arange(30, 50), 3, 7)),
        Case("stride 1", (torch.tensor([9, 8, 7, 6, 5, 4, 3, 2, 1]), 4, 1)),
        Case("a stride equal to seq_len, with ids left over at the end",
             (torch.tensor([7, 3, 9, 1, 4, 8, 2, 6]), 3, 3)),
        Case("no stride given: windows side by side", (torch.arange(100, 120), 6, None)),
        Case("exactly seq_len ids, too few for one window", (torch.arange(5), 5, 2)),
        Case("ids in a NumPy array of uint16, as encode_corpus stores them",
             (np.array([40000, 2, 65535, 7, 7, 1], dtype=np.uint16), 2, 2)),
    ),
    judge=_dataset_verdict,
    mistakes=(
        Mistake("windows of seq_len ids, where each needs seq_len plus one (its last id is only a target)",
                _WindowsOfSeqLen),
        Mistake("window i starting at id i instead of i strides in", _StartAtIndex),
        Mistake("the targets the same ids as the inputs instead of the next ones", _TargetsNotShifted),
    ),
    noun="windows",
)


def check_token_dataset(cls: type, quiet: bool = False) -> CheckResult:
    """`cls` is a `TokenDataset` class: built from (ids, seq_len, stride), its length and every item (x, y)
    equal the reference's, windows of seq_len + 1 ids one every stride ids, y = x shifted by one."""
    return TOKEN_DATASET.check(cls, quiet=quiet)


# ----------------------------------------------------------------- exercise 1: the documents back
def reference_split_documents(ids: list[int], eot_id: int) -> list[list[int]]:
    """The documents of a stream in which each document ends with `eot_id` (the last one may not)."""
    docs: list[list[int]] = []
    current: list[int] = []
    for i in ids:
        if i == eot_id:
            docs.append(current)
            current = []
        else:
            current.append(i)
    if current:  # an unfinished last document
        docs.append(current)
    return docs


def _documents_inputs(rng: random.Random) -> tuple[Any, ...]:
    eot = rng.randint(0, 30)
    ordinary = [i for i in range(31) if i != eot]
    ids: list[int] = []
    for _ in range(rng.randint(1, 6)):
        ids += [rng.choice(ordinary) for _ in range(rng.choice([0, rng.randint(1, 8)]))]
        ids.append(eot)
    if rng.random() < 0.5:  # a stream cut in the middle of a document
        ids += [rng.choice(ordinary) for _ in range(rng.randint(1, 5))]
    return ids, eot


def _list_of_lists(got: Any) -> str | None:
    if not isinstance(got, list) or not all(isinstance(d, list) for d in got):
        return f"your result is {describe(got, 80)}; return a list of documents, each a list of ids"
    return None


def _documents_eot_kept(ids: list[int], eot_id: int) -> list[list[int]]:
    docs, current = [], []
    for i in ids:
        current.append(i)
        if i == eot_id:
            docs.append(current)
            current = []
    return docs + ([current] if current else [])


SPLIT_DOCUMENTS = Exercise(
    name="split_documents",
    reference=reference_split_documents,
    make_inputs=_documents_inputs,
    hints=(
        "the end-of-text token closes a document: it belongs to no document itself, and the ids between "
        "two of them are one document",
        "walk through the ids collecting the current document; at every end-of-text token put it on the "
        "list, even when it is empty, and start a new one. Ids left over at the end, with no end-of-text "
        "after them, are an unfinished document and count too; nothing left over is no document",
    ),
    cases=(
        Case("two documents, each closed by its end-of-text", ([4, 5, 9, 6, 9], 9)),
        Case("two end-of-text tokens in a row", ([1, 0, 0, 2, 0], 0)),
        Case("ids after the last end-of-text", ([3, 50256, 7, 8], 50256)),
        Case("no end-of-text at all", ([1, 2, 3], 7)),
        Case("an empty stream", ([], 7)),
    ),
    contract=_list_of_lists,
    noun="documents",
    mistakes=(Mistake("the end-of-text token kept at the end of each document", _documents_eot_kept),),
)


def check_split_documents(fn: Callable[..., Any], *, quiet: bool = False) -> CheckResult:
    """Exercise: ``split_documents(ids, eot_id) -> list of documents`` (lists of ids, no end-of-text).
    """
    return SPLIT_DOCUMENTS.check(fn, quiet=quiet)


# ----------------------------------------------------------------- exercise 2: an embedding's gradient
def reference_embedding_grad(ids: torch.Tensor, grad_out: torch.Tensor, vocab_size: int) -> torch.Tensor:
    """The gradient of an embedding table (vocab_size, C), given the gradient of its output.

    ids (B, T), grad_out (B, T, C) -> (vocab_size, C): row v adds up grad_out at every position
    that holds token v (one-hot transposed times grad_out); rows of unseen tokens stay zero.
    """
    C = grad_out.size(-1)
    grad = torch.zeros(vocab_size, C, dtype=grad_out.dtype)
    return grad.index_add(0, ids.reshape(-1), grad_out.reshape(-1, C))   # (V, C)


def _grad_by_assignment(ids: torch.Tensor, grad_out: torch.Tensor, vocab_size: int) -> torch.Tensor:
    grad = torch.zeros(vocab_size, grad_out.size(-1), dtype=grad_out.dtype)
    grad[ids.reshape(-1)] = grad_out.reshape(-1, grad_out.size(-1))
    return grad


def _grad_averaged(ids: torch.Tensor, grad_out: torch.Tensor, vocab_size: int) -> torch.Tensor:
    total = reference_embedding_grad(ids, grad_out, vocab_size)
    counts = torch.bincount(ids.reshape(-1), minlength=vocab_size).clamp_min(1)
    return total / counts[:, None]


def _grad_inputs(rng: random.Random) -> tuple[Any, ...]:
    V, B, T, C = rng.randint(2, 12), rng.randint(1, 3), rng.randint(1, 8), rng.choice([1, 3, 4])
    return torch.randint(0, V, (B, T)), torch.randn(B, T, C), V


EMBEDDING_GRAD = Exercise(
    name="embedding_grad",
    reference=reference_embedding_grad,
    make_inputs=_grad_inputs,
    hints=(
        "think of the lookup as one-hot rows times the table: the gradient of the table is the one-hot "
        "matrix transposed times the gradient of the output, so each position sends its gradient to the "
        "row of its own token",
        "start from a table of zeros and, for every position, add that position's gradient into the row "
        "of the token it holds. A token that occurs twice gets both gradients added up, not the last "
        "one, nor their mean; rows of tokens that never occur stay zero",
    ),
    cases=(
        Case("one token that occurs three times", (torch.tensor([[2, 2, 2]]), torch.tensor(
            [[[1.0, 0.5], [2.0, -1.0], [4.0, 0.0]]]), 3)),
        Case("a batch of two sequences that share a token",
             (torch.tensor([[0, 1], [1, 3]]), torch.arange(8.0).reshape(2, 2, 2), 5)),
        Case("a single position", (torch.tensor([[4]]), torch.tensor([[[3.0, -2.0, 1.0]]]), 6)),
    ),
    noun="gradient",
    mistakes=(
        Mistake("the gradients of a repeated token written over each other instead of added up",
                _grad_by_assignment),
        Mistake("the gradients of a repeated token averaged instead of added up", _grad_averaged),
    ),
)


def check_embedding_grad(fn: Callable[..., Any], *, quiet: bool = False) -> CheckResult:
    """Exercise: ``embedding_grad(ids, grad_out, vocab_size) -> (vocab_size, C)``, the table's gradient."""
    return EMBEDDING_GRAD.check(fn, quiet=quiet)


# ----------------------------------------------------------------- exercise 3: positions per document
def reference_document_positions(ids: torch.Tensor, eot_id: int) -> torch.Tensor:
    """(N,) ids -> (N,) positions that count from 0 in every document; the end-of-text token is the
    last token of its document, so the token after it is at position 0 again."""
    positions = torch.empty(len(ids), dtype=torch.long)
    p = 0
    for t, i in enumerate(ids.tolist()):
        positions[t] = p
        p = 0 if i == eot_id else p + 1
    return positions


def _restart_at_eot(ids: torch.Tensor, eot_id: int) -> torch.Tensor:
    positions, p = [], -1
    for i in ids.tolist():
        p = 0 if i == eot_id else p + 1
        positions.append(p)
    return torch.tensor(positions, dtype=torch.long)


def _positions_inputs(rng: random.Random) -> tuple[Any, ...]:
    eot = rng.randint(0, 9)
    ids = [eot if rng.random() < 0.25 else rng.choice([i for i in range(10) if i != eot])
           for _ in range(rng.randint(1, 20))]
    return torch.tensor(ids), eot


DOCUMENT_POSITIONS = Exercise(
    name="document_positions",
    reference=reference_document_positions,
    make_inputs=_positions_inputs,
    hints=(
        "count along the stream as position embeddings do, but start counting again in every "
        "document: the end-of-text token closes its document",
        "the end-of-text token is the last token of its document and gets that document's next "
        "position; the token right after it is at position zero. The stream need not start or end "
        "with an end-of-text token, and two in a row make a document of one token",
    ),
    cases=(
        Case("two documents, each closed by its end-of-text", (torch.tensor([4, 5, 9, 6, 9]), 9)),
        Case("two end-of-text tokens in a row, then a document that is not closed",
             (torch.tensor([1, 0, 0, 2, 3]), 0)),
        Case("an end-of-text token first", (torch.tensor([7, 1, 2]), 7)),
        Case("no end-of-text at all", (torch.tensor([3, 3, 3, 3]), 8)),
        Case("a single token", (torch.tensor([5]), 5)),
    ),
    noun="positions",
    mistakes=(Mistake("the end-of-text token put at position zero, as if it opened the next document",
                      _restart_at_eot),),
)


def check_document_positions(fn: Callable[..., Any], *, quiet: bool = False) -> CheckResult:
    """Exercise: ``document_positions(ids, eot_id) -> (N,)`` positions that start again after each end-of-text."""
    return DOCUMENT_POSITIONS.check(fn, quiet=quiet)
