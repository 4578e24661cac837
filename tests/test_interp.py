"""course_lib.interp on models where the answer is known: the toy induction model's heads,
hand-built attention patterns, a head that does nothing, and the logit lens's last layer."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from course_lib import interp, toys
from course_lib.errors import CourseInputError
from course_lib.model import GPT, GPTConfig
from course_lib.viz import heads


@pytest.fixture(scope="module")
def toy() -> GPT:
    return toys.cached_induction_model(verbose=False)  # trained once (tests/test_notebooks.py does too)


def _tiny(seed: int = 0) -> GPT:
    torch.manual_seed(seed)
    return GPT(GPTConfig(vocab_size=97, n_positions=32, n_layer=2, n_head=4, n_embd=32)).eval()


class HandModel(nn.Module):
    """A stand-in with hand-built attention: head 0 looks at the previous token, head 1 is an
    induction head (the token after the latest earlier occurrence of the current one), head 2
    spreads evenly over keys 0 .. i."""

    def __init__(self, vocab_size: int = 10_000) -> None:
        super().__init__()
        self.config = SimpleNamespace(vocab_size=vocab_size, n_layer=1, n_head=3)
        self.w = nn.Parameter(torch.zeros(1))

    def forward(self, ids: torch.Tensor, output_attentions: bool = True) -> SimpleNamespace:
        B, T = ids.shape
        att = torch.zeros(B, 3, T, T)
        for b in range(B):
            for i in range(T):
                att[b, 0, i, max(i - 1, 0)] = 1.0
                earlier = [j for j in range(i) if ids[b, j] == ids[b, i]]
                att[b, 1, i, earlier[-1] + 1 if earlier else 0] = 1.0
                att[b, 2, i, : i + 1] = 1.0 / (i + 1)
        return SimpleNamespace(attentions=(att,))


def test_repeated_tokens_repeat_after_an_optional_bos() -> None:
    ids = interp.repeated_tokens(50, 6, 3, seed=1, bos=49)
    assert ids.shape == (3, 13) and (ids[:, 0] == 49).all()
    assert torch.equal(ids[:, 1:7], ids[:, 7:])
    with pytest.raises(CourseInputError):
        interp.repeated_tokens(50, 1)


def test_hand_built_heads_get_the_scores_they_were_built_with() -> None:
    model = HandModel()
    ind = interp.induction_scores(model, period=8, batch=4, seed=0)
    assert ind.shape == (1, 3)
    assert ind[0, 1] == pytest.approx(1.0) and ind[0, 0] < 0.2
    assert interp.ranked_heads(ind, 1)[0][:2] == (0, 1)
    ids = torch.arange(10)[None]
    prev = interp.previous_token_scores(model, ids)
    uniform = sum(1 / (i + 1) for i in range(1, 10)) / 9  # query i spreads 1/(i+1) on each key
    assert prev[0, 0] == pytest.approx(1.0) and prev[0, 2] == pytest.approx(uniform)
    with_bos = interp.induction_scores(model, period=8, batch=2, bos=9_999)  # the prefix is skipped
    assert with_bos[0, 1] == pytest.approx(1.0)


def test_the_toy_models_induction_head_tops_the_heatmap(toy: GPT) -> None:
    ind = interp.induction_scores(toy, period=20, batch=8)
    layer, head, score = interp.ranked_heads(ind, 1)[0]
    assert layer == 1 and score > 0.8  # every layer-1 head is an induction head
    assert float(ind[0].max()) < 0.2  # layer 0 cannot be: it has no previous-token information yet
    prev = interp.previous_token_scores(toy, interp.repeated_tokens(512, 20, 8))
    assert interp.ranked_heads(prev, 1)[0][0] == 0  # the previous-token head that feeds them is in layer 0


def test_a_head_that_does_nothing_changes_nothing_when_ablated() -> None:
    model = _tiny()
    hs = 32 // 4
    with torch.no_grad():
        model.transformer.h[0].attn.c_proj.weight[:, 1 * hs:2 * hs] = 0  # head 1 of layer 0 writes nothing
    ids = torch.randint(0, 97, (2, 12), generator=torch.Generator().manual_seed(0))
    before = model(ids).logits
    for how in ("zero", "mean"):
        with interp.ablate_heads(model, [(0, 1)], how):
            assert torch.equal(model(ids).logits, before)
    with interp.ablate_heads(model, [(0, 2)]):  # a head that does write something
        assert not torch.allclose(model(ids).logits, before)
    assert torch.equal(model(ids).logits, before)  # the hooks are gone after the block


def test_ablation_is_the_same_on_the_course_gpt_and_transformers() -> None:
    model = _tiny(1)
    hf = model.to_hf().eval()
    ids = interp.repeated_tokens(97, 6, 2)
    with interp.ablate_heads(model, [(1, 3)], "mean"), interp.ablate_heads(hf, [(1, 3)], "mean"):
        assert torch.allclose(model(ids).logits, hf(ids).logits, atol=1e-5)
        expected = interp.repeated_half_loss(hf, ids, 6)
        assert interp.repeated_half_loss(model, ids, 6) == pytest.approx(expected, abs=1e-5)


def test_zero_and_mean_ablation_of_one_slice() -> None:
    z = torch.randn(2, 5, 12)
    keep = z.clone()
    zeroed, meaned = interp.zero_head(z, 1, 3), interp.mean_ablate_head(z, 1, 3)
    assert torch.equal(z, keep)  # a copy, not in place
    assert (zeroed[..., 4:8] == 0).all() and torch.equal(zeroed[..., :4], z[..., :4])
    assert torch.allclose(meaned[..., 4:8], z[..., 4:8].mean((0, 1)).expand(2, 5, 4))
    assert torch.equal(meaned[..., 8:], z[..., 8:])
    with pytest.raises(CourseInputError):
        interp.zero_head(z, 3, 3)
    with pytest.raises(CourseInputError), interp.ablate_heads(_tiny(), [(2, 0)]):
        pass


def test_ablating_the_toy_models_circuit_raises_the_loss_on_the_copy(toy: GPT) -> None:
    ids = interp.repeated_tokens(512, 20, 8)
    losses = interp.ablation_losses(toy, ids, 20, {"induction heads": [(1, h) for h in range(4)]})
    assert losses["none"] < 1.0 and losses["induction heads"] > 5.0  # ln 512 = 6.2 is chance
    scan = interp.ablation_scan(toy, ids, 20)
    assert scan.shape == (2, 4) and (scan >= losses["none"] - 0.05).all()
    prev = interp.ranked_heads(interp.previous_token_scores(toy, ids), 1)[0]
    assert interp.ranked_heads(scan, 1)[0][:2] == prev[:2]  # the previous-token head: every induction head needs it
    head = interp.random_head(2, 4, exclude=[(1, 0), (1, 1)], seed=3)
    assert head not in [(1, 0), (1, 1)] and head == interp.random_head(2, 4, exclude=[(1, 0), (1, 1)], seed=3)


def test_the_logit_lens_last_layer_is_the_models_logits_exactly() -> None:
    model = _tiny(2)
    ids = torch.randint(0, 97, (10,), generator=torch.Generator().manual_seed(1))
    lens = interp.logit_lens(model, ids)
    assert lens.shape == (3, 10, 97)
    assert torch.equal(lens[-1], model(ids[None]).logits[0])
    emb = model.transformer.wte(ids) + model.transformer.wpe(torch.arange(10))
    assert torch.allclose(lens[0], model.lm_head(model.transformer.ln_f(emb)), atol=1e-5)
    words = interp.lens_top_tokens(lens, lambda i: f"<{i}>")
    assert len(words) == 3 and words[-1][0] == f"<{int(lens[-1, 0].argmax())}>"


def test_the_logit_lens_sees_the_copy_appear_in_block_1(toy: GPT) -> None:
    ids = interp.repeated_tokens(512, 20, 1)[0]
    acc = interp.lens_accuracy(interp.logit_lens(toy, ids), ids, start=20)
    assert acc.shape == (3,) and acc[-1] > 0.9 and acc[:2].max() < 0.2


@pytest.mark.parametrize("hf", [False, True], ids=["course GPT", "transformers GPT-2"])
def test_direct_logit_attribution_with_the_other_parts_adds_up_to_the_logit(hf: bool) -> None:
    """Heads (interp's shares) + embeddings + MLPs + c_proj biases + ln_f's bias = the logit, exactly."""
    torch.manual_seed(3)
    model = GPT(GPTConfig(vocab_size=31, n_positions=16, n_layer=2, n_head=4, n_embd=16))
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.5)  # every part matters
    model = (model.to_hf() if hf else model).eval()
    ids, token = torch.randint(0, 31, (6,)), 17
    shares = interp.direct_logit_attribution(model, ids, token)
    assert shares.shape == (2, 4) and shares.abs().min() > 0
    parts, stream = [], {}
    hooks = [b.mlp.register_forward_hook(lambda m, a, out: parts.append(out[0, -1])) for b in model.transformer.h]
    hooks.append(model.transformer.ln_f.register_forward_pre_hook(lambda m, a: stream.update(x=a[0][0, -1])))
    with torch.no_grad():
        out = model(ids[None], output_hidden_states=True)
    for h in hooks:
        h.remove()
    parts += [out.hidden_states[0][0, -1]] + [b.attn.c_proj.bias.detach() for b in model.transformer.h]
    ln_f, row = model.transformer.ln_f, model.lm_head.weight[token].detach()
    scale = (stream["x"].var(unbiased=False) + ln_f.eps).sqrt()
    others = sum(float(((v - v.mean()) / scale * ln_f.weight.detach()) @ row) for v in parts)
    total = float(shares.sum()) + others + float(ln_f.bias.detach() @ row)
    assert total == pytest.approx(float(out.logits[0, -1, token]), abs=1e-4)
    with pytest.raises(CourseInputError):
        interp.direct_logit_attribution(model, ids, 31)


def test_plots_return_figures(toy: GPT) -> None:
    fig = heads.plot_head_scores(torch.rand(2, 4), title="t")
    assert len(fig.axes) == 2  # the heatmap and its colour bar
    fig = heads.plot_head_scores({"a": torch.rand(2, 4), "b": torch.rand(12, 12)}, label="induction score")
    assert [ax.get_title() for ax in fig.axes[:2]] == ["a", "b"]
    fig = heads.plot_head_scores(torch.randn(2, 4), title="signed", diverging=True)
    low, high = fig.axes[0].images[0].get_clim()
    assert low == -high and fig.axes[0].images[0].get_cmap().name == "RdBu_r"
    ids = interp.repeated_tokens(512, 4, 1)[0]
    fig = heads.plot_logit_lens(interp.logit_lens(toy, ids), [str(i) for i in ids.tolist()])
    assert fig.axes


def test_the_logit_lens_fits_a_notebook_column_and_labels_every_token_without_warnings() -> None:
    """GPT-2's 13 rows x 23 tokens: no wider than 10 inches (a notebook column at the course's 90 dpi),
    split into panels, every token labelled, no glyph warning for tokens such as "\\x17" or "日"."""
    import io
    import warnings

    T = 23
    lens = torch.randn(13, T, 64)
    names = {i: chr(0x17) if i == 3 else "日本" if i == 4 else f"tok{i}" for i in range(64)}
    tokens = [f" word{t}" for t in range(T - 1)] + ["\x17"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig = heads.plot_logit_lens(lens, tokens, names.get)
        fig.savefig(io.BytesIO(), format="png", dpi=90)
    assert fig.get_size_inches()[0] <= 10.0
    heatmaps = [ax for ax in fig.axes if ax.get_yticklabels() and ax.get_yticklabels()[0].get_text() == "embed"]
    assert len(heatmaps) == 2
    shown = [t.get_text() for ax in heatmaps for t in ax.get_xticklabels()]
    assert len(shown) == T and shown[-1] == "^W"  # caret notation: any font draws it
