"""The checks of notebook 08: the reference passes, a wrong answer fails, a stub is "not done yet"."""

from __future__ import annotations

import pytest
import torch

from course_lib import checks, interp
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
    (checks.check_mean_ablate_head, interp.mean_ablate_head,
     lambda z, head, n_head: interp.zero_head(z, head, n_head)),  # zero ablation, not mean
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


def test_mean_ablation_written_with_a_view_passes_and_the_in_place_one_fails(capsys) -> None:
    def by_view(z: torch.Tensor, head: int, n_head: int) -> torch.Tensor:
        B, T, C = z.shape
        out = z.clone().view(B, T, n_head, C // n_head)
        out[:, :, head] = z.view(B, T, n_head, C // n_head)[:, :, head].mean(dim=(0, 1))
        return out.view(B, T, C)

    def in_place(z: torch.Tensor, head: int, n_head: int) -> torch.Tensor:
        hs = z.size(-1) // n_head
        z[..., head * hs:(head + 1) * hs] = z[..., head * hs:(head + 1) * hs].mean(dim=(0, 1))
        return z

    assert checks.check_mean_ablate_head(by_view, quiet=True).passed
    assert checks.check_mean_ablate_head(in_place).status == "fail"
    assert "in place" in capsys.readouterr().out
