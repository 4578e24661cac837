"""The checks of notebook 08: the references pass and equal course_lib.interp, a wrong answer fails,
a stub is "not done yet", and answers written differently pass."""

from __future__ import annotations

import pytest
import torch

from course_lib import checks, interp
from course_lib.checks import nb08_visualization as nb08
from course_lib.viz import heads


def _stub(*args: object) -> torch.Tensor:
    raise NotImplementedError


def _lens_without_final_norm(model, ids):  # the hidden states read straight through the unembedding
    model.eval()
    with torch.no_grad():
        out = model(torch.as_tensor(ids).view(1, -1), output_hidden_states=True)
        return torch.cat([model.lm_head(h) for h in out.hidden_states]).float()


def _ablate_previous_head(model, layer, head):  # the head before the one asked for
    return nb08.ablate_head(model, layer, (head - 1) % model.config.n_head)


def _dla_of_the_first_token(model, ids, token):  # the attribution at position 0, not the last
    return nb08.direct_logit_attribution(model, torch.as_tensor(ids)[:1], token)


CASES = [
    (checks.check_logit_lens, nb08.logit_lens, _lens_without_final_norm),
    (checks.check_ablate_head, nb08.ablate_head, _ablate_previous_head),
    (checks.check_direct_logit_attribution, nb08.direct_logit_attribution, _dla_of_the_first_token),
    (checks.check_previous_token_score, heads.previous_token_score,
     lambda att: att.diagonal(offset=1, dim1=-2, dim2=-1).mean(-1)),  # looks forward, not back
    (checks.check_induction_score, heads.induction_score,
     lambda att, period: heads.induction_score(att, period) * 0 + att[..., period:, 0].mean(-1)),  # first token
    (checks.check_attention_entropy, heads.attention_entropy,
     lambda att: -(att * torch.log2(att.clamp_min(1e-12))).sum(-1).mean(-1)),  # bits, not nats
    (checks.check_patch_head, nb08._ref_patch_head,
     lambda model, clean, corrupt, layer, head: nb08._ref_patch_head(model, corrupt, clean, layer, head)),  # swapped
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


@pytest.mark.parametrize("hf", [False, True], ids=["course GPT", "transformers GPT-2"])
def test_the_pieces_references_equal_the_library(hf: bool) -> None:
    torch.manual_seed(0)
    model = nb08._tiny_gpt(3, 4, 4, 29, hf=hf)
    ids = torch.randint(0, 29, (7,))
    torch.testing.assert_close(nb08.logit_lens(model, ids), interp.logit_lens(model, ids))
    torch.testing.assert_close(nb08.direct_logit_attribution(model, ids, 11),
                               interp.direct_logit_attribution(model, ids, 11), rtol=1e-4, atol=1e-5)
    with torch.no_grad():
        handle = nb08.ablate_head(model, 1, 2)
        try:
            ours = model(ids[None]).logits
        finally:
            handle.remove()
        with interp.ablate_heads(model, [(1, 2)]):
            theirs = model(ids[None]).logits
        plain = model(ids[None]).logits
    torch.testing.assert_close(ours, theirs)
    assert not torch.allclose(ours, plain)  # the head mattered, and the hook came off


def test_answers_written_differently_pass() -> None:
    @torch.no_grad()
    def lens_by_hand(model, ids):  # the LayerNorm written out, the unembedding as a matmul
        model.eval()
        hidden = model(torch.as_tensor(ids).view(1, -1), output_hidden_states=True).hidden_states
        ln, W = model.transformer.ln_f, model.lm_head.weight
        rows = []
        for h in hidden[:-1]:
            normed = (h - h.mean(-1, keepdim=True)) / (h.var(-1, unbiased=False, keepdim=True) + ln.eps).sqrt()
            rows.append((normed * ln.weight + ln.bias) @ W.T)
        return torch.cat(rows + [hidden[-1] @ W.T])

    def ablate_by_view(model, layer, head):
        H = model.config.n_head

        def hook(module, args):
            z = args[0]
            B, T, C = z.shape
            keep = torch.ones(H, 1)
            keep[head] = 0
            return ((z.view(B, T, H, C // H) * keep).view(B, T, C),)

        return model.transformer.h[layer].attn.c_proj.register_forward_pre_hook(hook)

    def prev(att: torch.Tensor) -> torch.Tensor:
        T = att.size(-1)
        return torch.stack([att[..., i, i - 1] for i in range(1, T)], dim=-1).mean(-1)

    def entropy(att: torch.Tensor) -> torch.Tensor:
        return torch.special.entr(att).sum(-1).mean(-1)

    assert checks.check_logit_lens(lens_by_hand, quiet=True).passed
    assert checks.check_ablate_head(ablate_by_view, quiet=True).passed
    assert checks.check_previous_token_score(prev, quiet=True).passed
    assert checks.check_attention_entropy(entropy, quiet=True).passed


def test_patching_a_head_with_its_own_run_changes_nothing_and_every_head_gives_the_clean_run() -> None:
    torch.manual_seed(1)
    model = nb08._tiny_gpt(2, 2, 3, 13)
    clean, corrupt = torch.randint(0, 13, (6,)), torch.randint(0, 13, (6,))
    with torch.no_grad():
        plain = model(corrupt[None]).logits[0]
        clean_logits = model(clean[None]).logits[0]
    torch.testing.assert_close(nb08._ref_patch_head(model, corrupt, corrupt, 1, 1), plain)
    assert not torch.allclose(nb08._ref_patch_head(model, clean, corrupt, 1, 1), plain)
    # the last layer's every head patched: only the residual stream before it still sees the corrupted ids
    assert not torch.allclose(nb08._ref_patch_head(model, clean, corrupt, 1, 0), clean_logits)
    assert not model.transformer.h[1].attn.c_proj._forward_pre_hooks  # every hook came off
