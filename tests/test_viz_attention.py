"""Attention visualization: token labels, attention maps, head roles, the explorer's logic, bertviz.

References: token labels against tiktoken's token bytes and a `transformers` GPT-2 tokenizer;
attention maps against `GPT2LMHeadModel` (eager) on the same weights; bertviz inputs against
`transformers`' own ``output_attentions``. The explorer is driven without a browser: buttons
are clicked and the data it drew is compared with the plain functions.
"""

from __future__ import annotations

import io
import math
import random

import pytest
import torch

from course_lib import interp, tokenizer
from course_lib.errors import CourseInputError
from course_lib.model import GPT, GPTConfig
from course_lib.viz import attention as va
from course_lib.viz import heads


@pytest.fixture(scope="module")
def tok():
    from course_lib.tokenizer import gpt2_tokenizer

    return gpt2_tokenizer()


@pytest.fixture(scope="module")
def hf_tok(tok, tmp_path_factory):
    from transformers import AutoTokenizer

    d = tmp_path_factory.mktemp("gpt2_tok")
    tok.save(d)
    return AutoTokenizer.from_pretrained(str(d))


@pytest.fixture(scope="module")
def tiny_gpt():
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=50257, n_positions=128, n_layer=3, n_head=4, n_embd=32)).eval()


TEXT = "Hello world,\nthe café sat on the mat. The cat sat on the mat."


# --------------------------------------------------------------------------- tokens
def test_pretty_token_matches_tiktoken_bytes_for_every_gpt2_token(hf_tok) -> None:
    from course_lib.tokenizer import tiktoken_gpt2

    enc = tiktoken_gpt2()
    rng = random.Random(0)
    ids = rng.sample(range(50256), 3000) + [198, 220, 628, 50255]  # "\n", " ", "\n\n", ...
    symbols = hf_tok.convert_ids_to_tokens(ids)
    for i, s in zip(ids, symbols):
        assert tokenizer.pretty_token(s) == enc.decode_single_token_bytes(i).decode("utf-8", errors="replace")
    assert tokenizer.pretty_token("Ġworld") == " world" and tokenizer.pretty_token("Ċ") == "\n"
    assert tokenizer.pretty_token("<|endoftext|>") == "<|endoftext|>"  # not byte symbols: unchanged


def test_token_labels_agree_across_tokenizers(tok, hf_tok) -> None:
    from course_lib.tokenizer import CharTokenizer, tiktoken_gpt2

    ids = tokenizer.encode_text(tok, TEXT)
    assert ids == tokenizer.encode_text(hf_tok, TEXT) == tiktoken_gpt2().encode(TEXT)
    course = tokenizer.token_labels(tok, ids)
    assert course == tokenizer.token_labels(hf_tok, ids) == tokenizer.token_labels(tiktoken_gpt2(), ids)
    assert "".join(course) == TEXT and "\n" in course and " world" in course
    chars = CharTokenizer.train(TEXT)
    assert tokenizer.token_labels(chars, chars.encode("cat")) == ["c", "a", "t"]
    assert tokenizer.token_labels(None, [5, 7]) == ["5", "7"]


def test_display_label_makes_invisible_tokens_visible() -> None:
    label = tokenizer.display_label
    assert label("\n") == "↵" and label(" ") == "␣" and label("\t") == "⇥"
    assert label("a\x17b") == "a^Wb" and label("\r") == "^M" and label("\x7f") == "^?"  # any font draws them
    assert tokenizer.display_label(" the") == " the" and tokenizer.display_label("") == "∅"
    assert tokenizer.display_label("x" * 40, limit=8) == "x" * 7 + "…"


# --------------------------------------------------------------------------- attention maps
def test_attention_maps_match_transformers_eager(tiny_gpt, tok) -> None:
    ids = tokenizer.encode_text(tok, TEXT)
    ours = interp.attention_maps(tiny_gpt, ids)
    hf = tiny_gpt.to_hf().eval()
    with torch.no_grad():
        ref = hf(torch.tensor([ids]), output_attentions=True).attentions
    assert ours.shape == (3, 4, len(ids), len(ids))
    torch.testing.assert_close(ours, torch.stack([a[0] for a in ref]), atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(interp.attention_maps(hf, ids), ours, atol=1e-5, rtol=1e-4)


def test_attention_maps_switch_an_sdpa_model_to_eager(tiny_gpt, tok) -> None:
    ids = tokenizer.encode_text(tok, "The cat sat.")
    hf = tiny_gpt.to_hf(attn_implementation="sdpa").eval()
    torch.testing.assert_close(interp.attention_maps(hf, ids), interp.attention_maps(tiny_gpt, ids),
                               atol=1e-5, rtol=1e-4)


def test_attention_maps_refuse_bad_input(tiny_gpt) -> None:
    with pytest.raises(CourseInputError):
        interp.attention_maps(tiny_gpt, [])
    with pytest.raises(CourseInputError):
        interp.attention_maps(tiny_gpt, torch.zeros(2, 3, dtype=torch.long))


# --------------------------------------------------------------------------- scores
def _causal_uniform(T: int) -> torch.Tensor:
    m = torch.ones(T, T).tril()
    return m / m.sum(-1, keepdim=True)


def test_scores_on_hand_made_patterns() -> None:
    T, p = 10, 5
    prev = torch.zeros(T, T)
    prev[0, 0] = 1
    prev[torch.arange(1, T), torch.arange(0, T - 1)] = 1
    sink = torch.zeros(T, T)
    sink[:, 0] = 1
    induct = _causal_uniform(T).clone()
    for t in range(p, T):
        induct[t] = 0
        induct[t, t - p + 1] = 1
    uniform = _causal_uniform(T)
    att = torch.stack([prev, sink, induct, uniform])  # (4, T, T)
    torch.testing.assert_close(interp.previous_token_score(att)[:2], torch.tensor([1.0, 1 / (T - 1)]))
    torch.testing.assert_close(interp.first_token_score(att)[:2], torch.tensor([1 / (T - 1), 1.0]))
    assert interp.induction_score(att, p)[2] == 1.0 and interp.induction_score(att, p)[0] < 0.3
    ent = interp.attention_entropy(att)
    assert ent[0] == 0 and ent[1] == 0
    assert math.isclose(float(ent[3]), sum(math.log(i + 1) for i in range(T)) / T, rel_tol=1e-5)
    # first-token score leaves out query 0 (which can only look at itself)
    assert math.isclose(float(interp.first_token_score(uniform)), sum(1 / (i + 1) for i in range(1, T)) / (T - 1),
                        rel_tol=1e-5)
    with pytest.raises(CourseInputError):
        interp.induction_score(att, T)


def test_head_roles_table_and_sorting() -> None:
    T = 8
    att = torch.stack([_causal_uniform(T)] * 6).reshape(2, 3, T, T).clone()
    att[1, 2] = 0
    att[1, 2, 0, 0] = 1
    att[1, 2, torch.arange(1, T), torch.arange(0, T - 1)] = 1
    roles = interp.head_roles_from_attentions(att)
    assert [(r.layer, r.head) for r in roles] == [(i, h) for i in range(2) for h in range(3)]
    assert math.isnan(roles[0].induction)
    best = interp.top_heads(roles, "previous_token", 1)[0]
    assert (best.layer, best.head, best.previous_token) == (1, 2, 1.0)
    assert va.sort_roles(roles, "entropy")[0].name == "L1H2"  # lowest entropy first
    assert va.sort_roles(roles, "previous_token")[0].name == "L1H2"
    with pytest.raises(CourseInputError):
        va.sort_roles(roles, "bogus")


def test_repeated_random_tokens_repeat() -> None:
    x = interp.repeated_tokens(50, 7, batch=3, seed=1)
    assert x.shape == (3, 14) and torch.equal(x[:, :7], x[:, 7:]) and int(x.max()) < 50
    assert torch.equal(x, interp.repeated_tokens(50, 7, batch=3, seed=1))


def test_plot_history_draws_loss_and_score() -> None:
    hist = {"step": [0, 25, 50], "loss": [None, 6.0, 1.0], "induction": [0.03, 0.2, 0.9]}
    fig = heads.plot_history(hist, "induction")
    ax, ax2 = fig.axes
    assert list(ax.get_lines()[0].get_ydata()) == [6.0, 1.0]
    assert list(ax2.get_lines()[0].get_ydata()) == [0.03, 0.2, 0.9]
    with pytest.raises(CourseInputError, match="no 'previous_token'"):
        heads.plot_history(hist, "previous_token")


# --------------------------------------------------------------------------- the explorer, without a browser
def test_explorer_click_pick_sort_draw_the_right_data(tiny_gpt, tok) -> None:
    ex = va.AttentionExplorer(tiny_gpt, tok, TEXT)
    att = interp.attention_maps(tiny_gpt, tokenizer.encode_text(tok, TEXT))
    assert ex.tokens == tokenizer.token_labels(tok, tokenizer.encode_text(tok, TEXT))
    assert ex.att.dtype == torch.float16 and ex.att.shape == att.shape
    assert set(ex.head_buttons) == {(i, h) for i in range(3) for h in range(4)}
    before = ex.view.value
    ex.head_buttons[(2, 1)].click()
    assert ex.selected == (2, 1) and ex.head_buttons[(2, 1)].button_style == "info"
    assert ex.view.value != before and ex.view.value[:4] == b"\x89PNG"
    assert "Layer 2, head 1" in ex.title.value
    torch.testing.assert_close(torch.from_numpy(ex.current_matrix).float(), att[2, 1], atol=1e-3, rtol=1e-3)
    # pick a token with the dropdown, as a learner would
    ex.token_picker.value = 5
    assert ex.token == 5
    to, by = va.token_attention(ex.current_matrix, 5, k=3)
    assert to[0][0] == int(att[2, 1, 5, :6].argmax()) and by[0][0] == 5 + int(att[2, 1, 5:, 5].argmax())
    assert f"{to[0][1]:.2f}" in ex.token_panel.value and "attended to by" in ex.token_panel.value
    ex.token_picker.value = -1
    assert ex.token is None and "Pick a token" in ex.token_panel.value
    # sort the role table and open its first row
    ex.sort_picker.value = "first_token"
    expected = va.sort_roles(ex.roles, "first_token")[0]
    assert ex.role_buttons[0].description.startswith(expected.name)
    ex.role_buttons[0].click()
    assert ex.selected == (expected.layer, expected.head)
    assert not any(math.isnan(r.induction) for r in ex.roles)  # measured with the model
    with pytest.raises(CourseInputError):
        ex.open(3, 0)


def test_explorer_on_transformers_gpt2(tiny_gpt, hf_tok) -> None:
    hf = tiny_gpt.to_hf(attn_implementation="sdpa").eval()
    ex = va.AttentionExplorer(hf, hf_tok, TEXT)
    ref = va.AttentionExplorer(tiny_gpt, hf_tok, TEXT)
    assert ex.tokens[:4] == ["Hello", " world", ",", "\n"]
    torch.testing.assert_close(ex.att.float(), ref.att.float(), atol=2e-3, rtol=1e-3)


def test_explorer_at_512_tokens_sends_small_images() -> None:
    L, H, T = 2, 3, 512
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    att = torch.softmax(torch.randn(L, H, T, T).masked_fill(~causal, float("-inf")), -1)
    ex = va.AttentionExplorer(attentions=att, tokens=[f"t{i}" for i in range(T)], layer=1, head=2)
    assert ex.current_matrix.dtype.name == "float16" and ex.current_matrix.shape == (T, T)
    thumbs = va.thumbnails(att, 48)
    assert thumbs.shape == (L, H, 48, 48) and thumbs.dtype.name == "uint8"
    assert len(ex.view.value) < 400_000  # one head, one PNG
    ex.pick_token(300)
    assert ex.token_panel.value.count("<span") == 301 + (T - 300)
    assert math.isnan(ex.roles[0].induction)  # no model: no induction measurement


def test_explorer_refuses_bad_input(tiny_gpt, tok) -> None:
    with pytest.raises(CourseInputError):
        va.AttentionExplorer()
    with pytest.raises(CourseInputError):
        va.AttentionExplorer(attentions=torch.zeros(2, 2, 3, 3), tokens=["a", "b"])
    with pytest.raises(CourseInputError):
        va.AttentionExplorer(tiny_gpt, tok, "word " * 200)  # longer than n_positions=128


def test_plot_attention_one_head_and_a_layer(tiny_gpt, tok) -> None:
    att = interp.attention_maps(tiny_gpt, tokenizer.encode_text(tok, TEXT))
    labels = tokenizer.token_labels(tok, tokenizer.encode_text(tok, TEXT))
    fig = va.plot_attention(att[0, 0], labels, title="L0H0", highlight=3)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()][:4] == ["Hello", " world", ",", "↵"]
    torch.testing.assert_close(torch.as_tensor(ax.images[0].get_array()), att[0, 0])
    fig = va.plot_attention(att[1], labels)
    assert len([a for a in fig.axes if a.images]) == 4
    with pytest.raises(CourseInputError):
        va.plot_attention(torch.zeros(3, 4))


# --------------------------------------------------------------------------- bertviz bridge
def test_bertviz_inputs_are_transformers_attentions(tiny_gpt, tok) -> None:
    ids = tokenizer.encode_text(tok, TEXT)
    inp = va.bertviz_inputs(tiny_gpt, tok, TEXT)
    hf = tiny_gpt.to_hf().eval()
    with torch.no_grad():
        ref = hf(torch.tensor([ids]), output_attentions=True).attentions
    assert len(inp.attention) == len(ref) == 3
    for ours, theirs in zip(inp.attention, ref):
        assert ours.shape == theirs.shape == (1, 4, len(ids), len(ids))
        torch.testing.assert_close(ours, theirs.double(), atol=6e-4, rtol=0)  # rounded to 3 decimals
    assert inp.tokens[:4] == ["Hello", " world", ",", "\n"] and not inp.limited
    assert inp.include_layers == [0, 1, 2] and inp.include_heads == [0, 1, 2, 3]


def test_bertviz_limits_above_64_tokens(tiny_gpt, tok) -> None:
    text = "the cat sat on the mat. " * 15  # 105 tokens
    T = len(tokenizer.encode_text(tok, text[:-1]))
    small = 3 * T * T  # room for three heads only
    inp = va.bertviz_inputs(tiny_gpt, tok, text[:-1], view="model", max_values=small)
    assert inp.limited and inp.values_shown() <= small and inp.include_layers == [0]
    assert inp.include_heads == [0, 1, 2]
    inp = va.bertviz_inputs(tiny_gpt, tok, text[:-1], view="head", max_values=8 * T * T)
    assert inp.include_layers == [0, 2] and inp.attention[0].shape == (1, 4, T, T)
    inp = va.bertviz_inputs(tiny_gpt, tok, text[:-1], view="head", max_values=T * T)
    assert inp.include_layers == [0] and inp.attention[0].shape == (1, 1, T, T)
    short = va.bertviz_inputs(tiny_gpt, tok, "the cat sat", max_values=1)  # <= 64 tokens: never limited
    assert not short.limited and short.include_layers == [0, 1, 2]
    with pytest.raises(CourseInputError):
        va.bertviz_inputs(tiny_gpt, tok, "the cat", layers=[7])


def test_head_and_model_view_html(tiny_gpt, tok, capsys) -> None:
    html = va.head_view(tiny_gpt, tok, TEXT, html_action="return").data
    assert "café" in html or "caf\\u00e9" in html
    assert "cdnjs" not in html and "RequireJS 2.3.6" in html  # require.js, d3, jQuery inlined
    assert "define('d3'" in html and "define('jquery'" in html
    text = "the cat sat on the mat. " * 15
    html = va.model_view(tiny_gpt, tok, text, html_action="return", max_values=50_000).data
    assert "showing layers" in capsys.readouterr().out
    assert "cdnjs" not in html
    assert len(html) < 2_000_000


def test_views_render_offline(tiny_gpt, tok, capsys, monkeypatch) -> None:
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj: shown.append(obj))
    assert va.head_view(tiny_gpt, tok, TEXT) is None
    assert va.model_view(tiny_gpt, tok, TEXT) is None
    assert len(shown) == 2 and all("cdnjs" not in obj.data for obj in shown)
    assert "AttentionExplorer" not in capsys.readouterr().out


def test_offline_html_refuses_an_unknown_bertviz_layout() -> None:
    from course_lib.viz import offline_assets

    with pytest.raises(ValueError, match="require.min.js"):
        offline_assets.offline_html("<div>no scripts</div>")
    with pytest.raises(KeyError, match="requirejs, d3, jquery"):
        offline_assets.asset_text("react")


# --------------------------------------------------------------------------- notebook 08, saved with outputs
@pytest.mark.notebook
@pytest.mark.slow
def test_notebook_08_saved_with_outputs_stays_small(tmp_path) -> None:
    import nbformat
    from test_notebooks import ROOT, execute_notebook

    nb = execute_notebook(ROOT / "notebooks" / "08_attention_visualization.ipynb", tmp_path, limit_s=300)
    saved = nbformat.writes(nb).encode("utf-8")
    (tmp_path / "08_with_outputs.ipynb").write_bytes(saved)
    widgets = nb.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {}).get("state", {})
    assert widgets, "the explorer's widget state was not saved"
    # The bertviz views carry require.js, d3 and jQuery inline (~0.4 MB a view) so that they draw
    # offline (course_lib/viz/offline_assets.py). The 2 MB rule is for what the notebook itself adds
    # (attention weights, figures, widget state); the vendored scripts are counted separately.
    from course_lib.viz import offline_assets

    scripts = [offline_assets.asset_text(name) for name in offline_assets.ASSETS]
    views = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
             if any(s in o.get("data", {}).get("text/html", "") for s in scripts)]
    assert 1 <= len(views) <= 2, f"{len(views)} outputs carry the vendored scripts"
    for out in views:
        for s in scripts:
            out["data"]["text/html"] = out["data"]["text/html"].replace(s, "")
    # 3 MB: the course model's two explorers (6 layers x 8 heads) keep 48 thumbnails each in the widget state
    # (about 1.3 MB of the 2.4 MB measured with it; the 2-layer demo model it replaced fitted in 2 MB)
    own = nbformat.writes(nb).encode("utf-8")
    assert len(own) < 3_000_000, f"notebook 08 with outputs is {len(own) / 1e6:.2f} MB without the scripts"
    assert len(saved) < 3_000_000 + len(views) * 500_000, f"notebook 08 with outputs is {len(saved) / 1e6:.2f} MB"


def test_figure_labels_show_glyphs_the_font_lacks_as_escapes() -> None:
    """A token such as "日" drawn as is: matplotlib warns "Glyph ... missing" and shows a box."""
    assert va.display_label("\x17") == "^W" and va.display_label("\r\n") == "^M↵"  # caret notation: any font
    assert va.display_label("日本") == "日本"  # HTML (the widgets) draws it with the browser's fonts
    assert va.plot_label("日本") == "\\u65e5\\u672c" and va.plot_label("naïve café") == "naïve café"
    assert va.plot_label("x" * 40, limit=8) == "x" * 7 + "…"


def test_an_attention_plot_of_unprintable_tokens_draws_without_a_warning() -> None:
    import warnings

    tokens = ["\x17", "日", "\r", "a", "\u200b", "👩"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig = va.plot_attention(torch.rand(6, 6), tokens)
        fig.savefig(io.BytesIO(), format="png")


@pytest.mark.parametrize("big", [False, True], ids=["notebook", "classroom"])
def test_one_head_labels_every_token_up_to_the_stated_length(big: bool) -> None:
    """Notebook 08's character model shows 64 characters: every one gets its tick label (it used to be every
    other one), in a figure that still fits a 1366-px screen beside the thumbnails."""
    for T in (8, 64, va.LABEL_EVERY_TOKEN_UP_TO):
        fig = va.plot_attention(torch.rand(T, T), [chr(97 + i % 26) for i in range(T)], big=big)
        ax = fig.axes[0]
        assert len(ax.get_xticks()) == T and len(ax.get_yticks()) == T
        # a notebook's output area is ~930 px at 1366 px; the classroom page zooms 1.15x: 1,100 px
        assert fig.get_size_inches()[0] * va.PNG_DPI * (1.15 if big else 1) <= (1100 if big else 880)
        assert ax.get_xticklabels()[0].get_fontsize() >= 5.5
    fig = va.plot_attention(torch.rand(200, 200), [str(i) for i in range(200)])
    assert len(fig.axes[0].get_xticks()) <= va.LABEL_EVERY_TOKEN_UP_TO  # longer texts: thinned


def test_the_explorer_shows_its_text_and_a_header_of_the_rows_width() -> None:
    model = GPT(GPTConfig(vocab_size=30, n_positions=32, n_embd=16, n_layer=2, n_head=2)).eval()
    ids = list(range(10))
    ex = va.AttentionExplorer(model, input_ids=ids, tokens=[f"t{i}" for i in ids])
    assert "(10 tokens)" in ex.text_box.value and "t0 t1 t2" in ex.text_box.value
    header = va.AttentionExplorer.ROLE_COLUMNS
    assert all(len(b.description) == len(header) and " " not in b.description for b in ex.role_buttons)
    assert "width:460px" in ex.role_header.value and ex.role_buttons[0].layout.width == "460px"
    ex.pick_token(3)
    # one box a token (0..3 it attends to, 3..9 attending to it): the rows wrap between tokens
    assert ex.token_panel.value.count("display:inline-block") == 4 + 7
