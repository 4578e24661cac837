"""The exercise checks of notebook 10: the reference passes, a wrong answer fails, a stub is 'not done'."""

from __future__ import annotations

import pytest

from course_lib import checks, ladder, scaling
from course_lib.checks._core import FAIL, PASS, TODO


def _stub(*args: object) -> object:
    raise NotImplementedError


def _shard(order: list[int], rank: int, world_size: int) -> list[int]:
    return order[rank::world_size][: len(order) // world_size]


CASES = [
    (checks.check_flops_per_token, scaling.flops_per_token,
     lambda cfg, T: 6 * scaling.non_embedding_params(cfg)),  # forgets attention
    (checks.check_hours_to_train,  # the tokens per second that scaling.mfu turns into that utilisation
     lambda n, fpt, peak, mfu, gpus: n / (gpus * mfu / scaling.mfu(1.0, fpt, peak)) / 3600,
     lambda n, fpt, peak, mfu, gpus: n * fpt / (gpus * peak * mfu)),  # seconds, not hours
    (checks.check_padded_vocab, ladder.padded_vocab,
     lambda vocab, multiple: (vocab // multiple + 1) * multiple),  # a multiple grows by a tile
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
