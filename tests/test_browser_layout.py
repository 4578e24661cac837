"""Every explorer, and every `course demo` page, fits a 1366x768 screen (Playwright + Debian's Chromium).

A JupyterLab notebook (the same headless server as tests/test_browser.py) shows the course's
explorers as the notebooks build them: notebook 08's attention explorer on its character
model and its classroom-size explorer on the induction model's random tokens, notebook 07's
decoding explorer with a beam search drawn, notebook 01's tokenizer playground. Then each
`course demo` page is opened as a learner would. For each it asserts what can be asserted:

- no element ends past the right edge of the 1366-px window, and nothing makes the page scroll
  sideways (the beam tree, the classroom token panel and the head view used to);
- the attention explorer shows its input text, every token's tick label (checked where the
  figure is drawn, `plot_attention`, and here by the picture's size), and a role-table header
  as wide as its rows;
- the decoding explorer names its two bar colours (a legend).

Screenshots go to ``test-artifacts/`` (git-ignored). Marked browser and slow like the other
browser tests; skips with the reason when Chromium or Playwright is missing.
"""

from __future__ import annotations

import time
from pathlib import Path

import nbformat
import pytest
from jupyter_browser import IDLE, artifact, browser_page, open_and_run_all
from jupyter_browser import jupyterlab as jupyterlab  # the same headless JupyterLab fixture
from test_browser_classroom import demo_server as demo_server  # `course demo` in a subprocess

pytestmark = [pytest.mark.browser, pytest.mark.slow]
WIDTH, HEIGHT = 1366, 768
LAYOUT_NOTEBOOK = "zz_explorers_1366.ipynb"

CELLS = [
    "from course_lib import pretrained, toys, viz\nfrom course_lib.data import load_corpus\n"
    "from course_lib.cli import demo\ncorpus = load_corpus(verbose=False)",
    # notebook 08, section 3: the character model on 64 characters of its corpus
    "char_model, chars = toys.cached_char_model(corpus, verbose=False)\n"
    "viz.AttentionExplorer(char_model, chars, corpus[1000:1064])",
    # notebook 08, section 7: the classroom size, random tokens t175 t196 ..., a token picked
    "m = toys.cached_induction_model(verbose=False)\n"
    "ids = viz.repeated_random_tokens(m.config.vocab_size, 12, seed=7)[0]\n"
    "big = viz.AttentionExplorer(m, input_ids=ids, tokens=[f't{i}' for i in ids.tolist()], big=True, period=12)\n"
    "big.pick_token(18)\nbig",
    # notebook 07: the decoding explorer, a 20-token beam search drawn
    "lm, tok = pretrained.load_course_model(verbose=False)\n"
    "dec = viz.DecodingExplorer(lm, tok, prompt=pretrained.prompt_for(lm), seed=0)\n"
    "dec.strategy.value = 'beam'\ndec.generate_n()\ndec",
    # notebook 01: the tokenizer playground
    "demo.explorer('tokenizer')",
]

OVERFLOW_JS = """(root) => {
  const width = window.innerWidth;
  const wide = [];
  for (const e of [root, ...root.querySelectorAll('*')]) {
    const r = e.getBoundingClientRect();
    if (r.width > 0 && r.right > width + 1) {
      wide.push((e.className || e.tagName).toString().slice(0, 60) + ' ' + Math.round(r.right));
    }
  }
  return wide.slice(0, 8);
}"""


def _no_sideways_scroll(page) -> None:
    scroll = page.evaluate("document.documentElement.scrollWidth")
    assert scroll <= WIDTH, f"the page scrolls sideways: {scroll} px wide in a {WIDTH}-px window"


def test_every_explorer_fits_a_1366_px_window_in_jupyterlab(jupyterlab, tmp_path: Path) -> None:
    base, token = jupyterlab
    nb = nbformat.v4.new_notebook()  # the fixture serves tmp_path / "notebooks"
    nb.cells = [nbformat.v4.new_code_cell(src) for src in CELLS]
    nbformat.write(nb, tmp_path / "notebooks" / LAYOUT_NOTEBOOK)
    with browser_page(WIDTH, HEIGHT) as (sync_api, page):
        open_and_run_all(sync_api, page, base, token, LAYOUT_NOTEBOOK)
        page.locator(".course-decoding-explorer svg").first.wait_for(timeout=400_000)
        page.wait_for_selector(IDLE, timeout=240_000)
        time.sleep(2)
        explorers = page.locator(".course-attention-explorer")
        assert explorers.count() == 2
        # 1. the character model's explorer: its text, its header, its head view
        char = explorers.nth(0)
        char.scroll_into_view_if_needed()
        text = char.locator(".course-attention-text").first.text_content() or ""
        assert "(64 tokens)" in text, text[:200]
        header = char.locator(".course-role-header div").first
        row = char.locator(".course-role-row").first
        widths = [x.evaluate("e => e.getBoundingClientRect().width") for x in (header, row)]
        assert abs(widths[0] - widths[1]) <= 2, f"the header is not as wide as a row: {widths}"
        view = char.locator(".course-head-view").first
        natural = view.evaluate("e => e.naturalWidth")
        assert natural >= 600, f"the head view is {natural} px: too small to label 64 tokens"
        assert char.evaluate(OVERFLOW_JS) == []
        page.screenshot(path=str(artifact("layout_08_char_explorer_1366.png")))
        # 2. the classroom size: the token panel wraps inside the window
        big = explorers.nth(1)
        big.scroll_into_view_if_needed()
        panel = big.locator(".course-token-panel").first
        panel.scroll_into_view_if_needed()
        assert big.evaluate(OVERFLOW_JS) == [], big.evaluate(OVERFLOW_JS)
        assert panel.evaluate("e => e.scrollWidth <= e.clientWidth + 1"), "the token panel runs past its box"
        page.screenshot(path=str(artifact("layout_08_classroom_panel_1366.png")))
        # 3. the decoding explorer: a legend, the beam tree within the window
        dec = page.locator(".course-decoding-explorer").first
        legend = dec.locator(".course-bar-legend").first
        assert "kept" in (legend.text_content() or "") and "raw probability" in (legend.text_content() or "")
        tree = dec.locator("svg.course-beam-tree").first
        tree.scroll_into_view_if_needed()
        assert tree.evaluate("e => e.getBoundingClientRect().right") <= WIDTH
        assert dec.evaluate(OVERFLOW_JS) == [], dec.evaluate(OVERFLOW_JS)
        page.screenshot(path=str(artifact("layout_07_beam_tree_1366.png")))
        # 4. the tokenizer playground
        play = page.locator(".jp-OutputArea-output textarea").last
        play.scroll_into_view_if_needed()
        page.screenshot(path=str(artifact("layout_01_tokenizer_1366.png")))
        _no_sideways_scroll(page)


def test_every_course_demo_page_fits_a_1366_px_window(demo_server, tmp_path: Path) -> None:
    demo, url = demo_server
    with browser_page(WIDTH, HEIGHT) as (sync_api, page):
        page.goto(url, timeout=240_000)
        page.locator(".course-demo-explorer").first.wait_for(timeout=240_000)
        root = page.locator(".course-demo-explorer").first
        if demo == "attention":
            page.locator(".course-head-view").first.wait_for(timeout=60_000)
            assert page.locator(".course-attention-text").count() == 1
        if demo == "decoding":
            page.locator(".course-bar-legend").first.wait_for(timeout=60_000)
            page.locator("select").first.select_option("beam")
            page.locator("button", has_text="generate N").first.click()
            page.locator("svg.course-beam-tree").first.wait_for(timeout=120_000)
        time.sleep(1)
        wide = root.evaluate(OVERFLOW_JS)
        page.screenshot(path=str(artifact(f"layout_demo_{demo}_1366.png")), full_page=True)
        assert wide == [], f"{demo}: elements past the right edge: {wide}"
        _no_sideways_scroll(page)
