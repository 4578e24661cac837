"""The checks of notebook 08: the reference passes, a wrong answer fails, a stub is "not done yet"."""

from __future__ import annotations

import pytest
import torch

from course_lib import checks
from course_lib.viz import heads


def _stub(*args: object) -> torch.Tensor:
    raise NotImplementedError


CASES = [
    (checks.check_previous_token_score, heads.previous_token_score,
     lambda att: att.diagonal(offset=1, dim1=-2, dim2=-1).mean(-1)),  # looks forward, not back
    (checks.check_induction_score, heads.induction_score,
     lambda att, period: heads.induction_score(att, period) * 0 + att[..., period:, 0].mean(-1)),  # first token
    (checks.check_attention_entropy, heads.attention_entropy,
     lambda att: -(att * torch.log2(att.clamp_min(1e-12))).sum(-1).mean(-1)),  # bits, not nats
]


@pytest.mark.parametrize("check, reference, wrong", CASES, ids=[c[0].__name__ for c in CASES])
def test_reference_passes_wrong_fails_stub_is_todo(check, reference, wrong, capsys) -> None:
    ok = check(reference)
    assert ok.status == "pass" and ok.fn is reference
    bad = check(wrong)
    assert bad.status == "fail" and bad.fn is not wrong
    todo = check(_stub)
    assert todo.status == "todo"
    out = capsys.readouterr().out
    assert "✓" in out and "✗" in out and "not done yet" in out


def test_a_learner_solution_written_differently_passes() -> None:
    def prev(att: torch.Tensor) -> torch.Tensor:
        T = att.size(-1)
        return torch.stack([att[..., i, i - 1] for i in range(1, T)], dim=-1).mean(-1)

    def entropy(att: torch.Tensor) -> torch.Tensor:
        return torch.special.entr(att).sum(-1).mean(-1)

    assert checks.check_previous_token_score(prev, quiet=True).passed
    assert checks.check_attention_entropy(entropy, quiet=True).passed
