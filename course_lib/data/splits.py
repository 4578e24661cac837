"""Train/validation splits that leak nothing: contiguous for text and ids, duplicate-aware for lines.

Introduced in notebooks/02_data_and_embeddings.ipynb.
"""

from __future__ import annotations

import random
from typing import Any

from ..errors import CourseInputError


def _check_fraction(val_fraction: float) -> float:
    try:
        f = float(val_fraction)
    except (TypeError, ValueError):
        raise CourseInputError(f"val_fraction: expected a number between 0 and 1, got {val_fraction!r}") from None
    if not 0.0 < f < 1.0:
        raise CourseInputError(f"val_fraction: expected a number strictly between 0 and 1, got {val_fraction!r}")
    return f


def train_val_split(data: Any, val_fraction: float = 0.1, *, seed: int | None = None) -> tuple[Any, Any]:
    """Split into (train, val) so that nothing of val leaks into train.

    - text (`str`), token ids (list of ints, NumPy array, 1-D tensor): contiguous, the
      last `val_fraction` is validation. Random windows from one text would overlap.
    - lines (list of `str`): with `seed`, which lines go to validation is drawn with
      ``random.Random(seed)``; without, the last lines do. Identical lines always go to
      the same side, so no exact copy of a validation line is in train. Validation gets
      about ``round(val_fraction * n)`` lines (at least 1); each side keeps the input order.
    """
    f = _check_fraction(val_fraction)
    is_lines = isinstance(data, (list, tuple)) and data and all(isinstance(x, str) for x in data)
    n = len(data)
    if n < 2:
        raise CourseInputError(f"train_val_split: need at least 2 items to split, got {n}")
    if not is_lines:
        n_val = max(1, min(n - 1, round(n * f)))
        return data[: n - n_val], data[n - n_val:]
    groups: dict[str, list[int]] = {}
    for i, line in enumerate(data):
        groups.setdefault(line, []).append(i)
    keys = list(groups)  # first-appearance order: deterministic
    if len(keys) < 2:
        raise CourseInputError("train_val_split: all lines are identical; nothing to split")
    if seed is not None:
        random.Random(seed).shuffle(keys)
    want = max(1, round(n * f))
    val_idx: set[int] = set()
    for key in reversed(keys):  # validation from the end, like the contiguous case
        if len(val_idx) >= want or len(val_idx) + len(groups[key]) > n - 1:
            break
        val_idx.update(groups[key])
    if not val_idx:
        raise CourseInputError("train_val_split: could not put any line into validation")
    val_keys = {data[i] for i in val_idx}
    train = [x for x in data if x not in val_keys]  # each side keeps the input order
    val = [x for x in data if x in val_keys]
    return train, val
