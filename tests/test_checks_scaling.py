"""The exercise checks of notebook 10: the reference passes, a wrong answer fails, a stub is 'not done'."""

from __future__ import annotations

import pytest
import torch

from course_lib import checks, scaling
from course_lib.checks._core import FAIL, PASS, TODO


def _stub(*args: object) -> object:
    raise NotImplementedError


def _shard(order: list[int], rank: int, world_size: int) -> list[int]:
    return order[rank::world_size][: len(order) // world_size]


CASES = [
    (checks.check_precision_choice, scaling.dtype_for_capability,
     lambda major, minor: torch.bfloat16 if major >= 7 else torch.float16),  # bf16 on a T4: wrong
    (checks.check_flops_per_token, scaling.flops_per_token,
     lambda cfg, T: 6 * scaling.non_embedding_params(cfg)),  # forgets attention
    (checks.check_mfu, scaling.mfu, lambda tps, fpt, peak: 100 * tps * fpt / peak),  # a percentage
    (checks.check_shard, _shard, lambda order, rank, world: order[rank::world]),  # ragged tail kept
]


@pytest.mark.parametrize("check, right, wrong", CASES, ids=[c[0].__name__ for c in CASES])
def test_check(check, right, wrong, capsys: pytest.CaptureFixture) -> None:  # noqa: ANN001
    assert check(right).status == PASS
    assert "✓" in capsys.readouterr().out
    bad = check(wrong)
    assert bad.status == FAIL and "✗" in capsys.readouterr().out
    todo = check(_stub)
    assert todo.status == TODO and "not done yet" in capsys.readouterr().out
    assert todo.fn is not None and bad.fn is not None  # both fall back to the reference
