"""DecodingExplorer: its plain functions and the callbacks the widget wires up."""

from __future__ import annotations

import pytest
import torch

from course_lib.errors import CourseInputError
from course_lib.generate import DecodingSettings, DecodingTrace, generate, next_token_step
from course_lib.model import GPT, GPTConfig
from course_lib.tokenizer import CharTokenizer
from course_lib.viz.decoding import (
    STRATEGIES,
    DecodingExplorer,
    beam_tree_svg,
    compare_strategies,
    distribution_html,
    strategy_kwargs,
    stream_html,
)

TEXT = "to be or not to be, that is the question.\n"


@pytest.fixture(scope="module")
def setup():
    tok = CharTokenizer.train(TEXT)
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=len(tok.stoi), n_positions=64, n_embd=32, n_layer=1, n_head=2)).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "ln" not in name:
                p.normal_(0, 0.3)
    return model, tok


def test_distribution_html_marks_kept_and_removed(setup) -> None:
    model, tok = setup
    step = next_token_step(model, tok.encode("to be"), DecodingSettings(do_sample=True, top_k=3), top_n=8)
    assert sum(step.kept) == 3 and len(step.token_ids) == 8
    out = distribution_html(step, tok)
    assert out.count("(removed)") == 5 and out.count("line-through") == 5
    assert f"{100 * step.removed_mass:.1f}%" in out and "entropy" in out
    assert "raw → top_k" in out.replace("&gt;", ">").replace("→", "→")
    assert "http" not in out and "<script" not in out  # offline: no CDN, no JavaScript


def test_beam_tree_draws_every_beam(setup) -> None:
    model, tok = setup
    trace = DecodingTrace()
    generate(model, tok.encode("to be"), 4, num_beams=3, trace=trace)
    svg = beam_tree_svg(trace, tok)
    assert svg.startswith("<svg") and svg.count("<line") == 3 * len(trace.steps)
    assert "no beams" in beam_tree_svg(DecodingTrace())


def test_compare_strategies_uses_one_seed(setup) -> None:
    model, tok = setup
    ids = tok.encode("to be")
    kws = {s: strategy_kwargs(s) for s in STRATEGIES}
    a = compare_strategies(model, ids, kws, 6, seed=3)
    assert a == compare_strategies(model, ids, kws, 6, seed=3)
    assert a["greedy"] == generate(model, ids, 6)[0, len(ids):].tolist()
    assert a["top_p"] == generate(model, ids, 6, do_sample=True, top_p=0.9, seed=3)[0, len(ids):].tolist()
    with pytest.raises(CourseInputError, match="strategy"):
        strategy_kwargs("magic")


def test_explorer_callbacks(setup) -> None:
    model, tok = setup
    ex = DecodingExplorer(model, tok, prompt="to be", seed=1)
    assert ex.ids == tok.encode("to be") and "to be" in ex.text_box.value
    ex.strategy.value = "top_k"
    ex.top_k.value = 2
    assert sum(ex.current.kept) == 2  # the bars follow the slider
    assert ex.bars.value.count("(removed)") == len(ex.current.token_ids) - 2
    ex.strategy.value = "greedy"
    token = ex.step()
    assert ex.ids[-1] == token == generate(model, tok.encode("to be"), 1)[0, -1]
    ex.n_tokens.value = 5
    new = ex.generate_n()
    assert len(new) == 5 and ex.ids == generate(model, tok.encode("to be"), 6)[0].tolist()
    ex.strategy.value = "beam"
    ex.generate_n()
    assert ex.tree.value.startswith("<svg")
    texts = ex.compare()
    assert set(texts) == set(STRATEGIES) and "greedy" in ex.comparison.value
    ex.prompt.value = "that"
    assert ex.ids == tok.encode("that") and ex.tree.value == ""
    ex.strategy.value = "top_p"
    ex.temperature.value = 0.0  # 0 means greedy: nothing is removed
    assert all(ex.current.kept)
    assert ex._repr_mimebundle_()
    ex.prompt.value = ""  # said in the widget, not raised from the callback
    assert "empty" in ex.text_box.value


def test_explorer_keeps_newlines_labels_and_wide_trees_visible(setup) -> None:
    """What the browser showed at 1366 px: "ROMEO:I", "temperat…", a beam tree cut off on the right."""
    import ipywidgets as w

    model, tok = setup
    ex = DecodingExplorer(model, tok, prompt="to be\nor", seed=1)
    assert isinstance(ex.prompt, w.Textarea)  # a one-line Text input drops the newline
    assert ex.prompt.value == "to be\nor" and ex.ids == tok.encode("to be\nor")
    assert "to be\nor" in ex.text_box.value and "white-space:pre-wrap" in ex.text_box.value
    controls = [ex.strategy, ex.temperature, ex.top_k, ex.top_p, ex.min_p, ex.repetition_penalty,
                ex.num_beams, ex.n_tokens]
    for c in controls:  # about 7 px per character of a 13-px label, plus room
        width = int(c.style.description_width.removesuffix("px"))
        assert width >= 7 * len(c.description), (c.description, c.style.description_width)
    # two columns of controls side by side fit in a 1366-px window (with JupyterLab's side bar)
    assert 2 * int(ex.temperature.layout.width.removesuffix("px")) <= 1366 - 400
    ex.strategy.value = "beam"
    ex.n_tokens.value = 30  # 30 steps: a tree that grew sideways was 2,730 px wide
    ex.generate_n()
    # the tree grows down the page: its width is set by the beams, and fits the screen beside JupyterLab's side bar
    assert ex.tree.layout.overflow == "auto" and ex.tree.layout.width == "100%"
    assert int(ex.tree.value.split('width="')[1].split('"')[0]) <= 1366 - 400
    assert ex.tree.value.count("step ") == 30


def test_the_bars_have_a_legend_and_beam_labels_are_whole_and_escaped_after_cutting(setup) -> None:
    """The explorer's two bar colours are named; a beam's label is cut to 12 characters before it is escaped
    (cutting escaped text left "&am" halves), and the columns are as wide as the longest label."""
    model, tok = setup
    step = next_token_step(model, tok.encode("to be"), DecodingSettings(top_k=3, do_sample=True), top_n=6)
    legend = distribution_html(step, tok).split('class="course-bar-legend"')[1]
    assert "kept" in legend and "removed" in legend and "raw probability" in legend
    trace = DecodingTrace()
    generate(model, tok.encode("to be"), 3, num_beams=2, trace=trace)

    class Ampersands:
        def decode(self, ids):  # noqa: ANN001, ANN202
            return "&" * 16

    svg = beam_tree_svg(trace, Ampersands())
    assert svg.count(">" + "&amp;" * 11 + "…<") == 2 * 3  # every node: 11 whole "&amp;" and the ellipsis


def test_the_menu_and_the_sliders_follow_the_registry(setup) -> None:
    from course_lib.generate import STRATEGIES as REGISTRY

    model, tok = setup
    assert STRATEGIES == tuple(REGISTRY)
    ex = DecodingExplorer(model, tok, prompt="to be", seed=1)
    assert tuple(ex.strategy.options) == tuple(REGISTRY)
    ex.strategy.value = "contrastive"  # its own defaults: top_k 4
    assert ex.top_k.value == REGISTRY["contrastive"].defaults["top_k"] == 4
    ex.strategy.value = "top_k"
    assert ex.top_k.value == REGISTRY["top_k"].defaults["top_k"] == 50
    assert strategy_kwargs("top_k", top_k=7, num_beams=5) == {"do_sample": True, "top_k": 7}  # beams: not its own
    assert strategy_kwargs("diverse_beam") == dict(REGISTRY["diverse_beam"].defaults)
    ids = tok.encode("to be")
    for name in ("contrastive", "diverse_beam"):  # strategies that run another function than generate
        ex.strategy.value = name
        ex.n_tokens.value = 3
        new = ex.generate_n()
        assert new == REGISTRY[name].run(model, ids, 3, REGISTRY[name].settings())[0, len(ids):].tolist()
        ex.reset()


def test_stream_shows_the_pieces_as_they_come(setup) -> None:
    model, tok = setup
    ex = DecodingExplorer(model, tok, prompt="to be", seed=1)
    ex.strategy.value = "greedy"
    ex.n_tokens.value = 6
    shown: list[str] = []
    ex.text_box.observe(lambda change: shown.append(change["new"]), names="value")
    pieces = ex.stream()
    assert "".join(pieces) == tok.decode(generate(model, tok.encode("to be"), 6)[0, 5:].tolist())
    assert len(pieces) == 6 and sum("piece" in s for s in shown) >= 6, "the box is redrawn for every token"
    assert ex.ids == generate(model, tok.encode("to be"), 6)[0].tolist()
    ex.strategy.value = "beam"
    assert ex.stream() == [] and "nothing to stream" in ex.text_box.value


def test_stream_html_marks_pieces_and_waiting_tokens() -> None:
    out = stream_html(["Un", " caf", "", "é!"])
    assert out.count("<span") == 4 and "waiting for bytes" in out and "1 waited" in out
    assert "Un" in out and "é!" in out and "http" not in out and "<script" not in out
