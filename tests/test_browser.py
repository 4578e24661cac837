"""The course in a real browser: JupyterLab (headless) driven by Playwright with Debian's Chromium.

Starts JupyterLab on a free localhost port with a known token, COURSE_FAST=1 and the same
classroom settings as `make lab` (scripts/bootstrap.py: no news pop-up, no update check),
on a copy of notebooks/. Notebook 08: runs all cells, checks that the attention explorer
rendered, clicks a head and checks that the view changed. Notebook 00: runs it, clicks a
course-map link and checks that the notebook opens. Notebook 07 at 1366x768: the decoding
explorer keeps the prompt's newline, shows whole slider labels and a beam tree within the screen.
Screenshots are kept in ``test-artifacts/`` (git-ignored). Chromium is installed by ``make test``
(scripts/bootstrap.py, where root and apt-get allow it); this test never installs
anything and skips, with the reason, when Chromium or Playwright is missing.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from jupyter_browser import IDLE, NEWS_PROMPT, artifact, browser_page, open_and_run_all
from jupyter_browser import jupyterlab as jupyterlab  # the headless JupyterLab fixture

NOTEBOOK = "08_attention_visualization.ipynb"
pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_notebook_08_explorer_in_jupyterlab(jupyterlab, tmp_path: Path) -> None:
    base, token = jupyterlab
    with browser_page(1600, 1200) as (sync_api, page):
        open_and_run_all(sync_api, page, base, token, NOTEBOOK)
        try:
            page.wait_for_selector(".course-attention-explorer", timeout=150_000)
        except sync_api.TimeoutError:
            shot = artifact("notebook08_timeout.png")
            page.screenshot(path=str(shot), full_page=True)
            stderr = ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"
            errors = page.locator(stderr).all_inner_texts()
            pytest.fail(f"the explorer did not render within 150 s (screenshot {shot}); "
                        f"stderr outputs: {[e[-300:] for e in errors][-3:]}")
        # let Run All finish: a widget's click is handled only once the kernel is idle again
        page.wait_for_selector(IDLE, timeout=150_000)
        explorer = page.locator(".course-attention-explorer").first
        explorer.scroll_into_view_if_needed()
        title = explorer.locator(".course-head-title").first
        view = explorer.locator(".course-head-view").first
        title.wait_for(timeout=30_000)
        # text_content, not inner_text: JupyterLab 4 skips rendering cells scrolled out of view
        before_title = title.text_content() or ""
        before_src = view.get_attribute("src")
        buttons = explorer.locator(".course-head-button")
        assert buttons.count() >= 2
        # click a head other than the one open now
        m = re.search(r"Layer (\d+), head (\d+)", before_title)
        assert m, f"explorer title not shown: {before_title!r}"
        current = f"L{m.group(1)}H{m.group(2)}"
        target = next(i for i in range(buttons.count()) if (buttons.nth(i).text_content() or "").strip() != current)
        label = (buttons.nth(target).text_content() or "").strip()
        buttons.nth(target).click()
        layer, head = label[1:].split("H")
        sync_api.expect(title).to_contain_text(f"Layer {layer}, head {head}", timeout=60_000)
        assert title.text_content() != before_title
        sync_api.expect(view).not_to_have_attribute("src", before_src or "", timeout=60_000)
        shot = artifact("notebook08_explorer.png")
        page.screenshot(path=str(shot), full_page=False)
        assert shot.stat().st_size > 10_000
        assert page.get_by_text(NEWS_PROMPT).count() == 0, "the news pop-up is back"


def test_notebook_00_course_map_link_opens_the_notebook_without_a_news_pop_up(jupyterlab) -> None:
    base, token = jupyterlab
    with browser_page(1366, 768) as (sync_api, page):
        open_and_run_all(sync_api, page, base, token, "00_welcome.ipynb")
        link = page.locator(".jp-OutputArea-output a", has_text="Tokenization").first
        link.wait_for(timeout=120_000)
        page.wait_for_selector(IDLE, timeout=120_000)
        time.sleep(2)  # JupyterLab shows the news question, when it does, soon after it is restored
        assert page.get_by_text(NEWS_PROMPT).count() == 0, "JupyterLab asks about news over the course"
        link.scroll_into_view_if_needed()
        link.click()
        tab = page.locator(".lm-TabBar-tab.jp-mod-current .lm-TabBar-tabLabel")
        sync_api.expect(tab).to_have_text("01_tokenization.ipynb", timeout=60_000)
        page.locator(".jp-Notebook >> visible=true").first.wait_for(timeout=60_000)  # 01, shown over 00
        time.sleep(1)
        shot = artifact("notebook00_map_link_opened_01.png")
        page.screenshot(path=str(shot), full_page=False)
        assert shot.stat().st_size > 10_000


def test_notebook_07_decoding_explorer_fits_a_1366_px_screen(jupyterlab) -> None:
    base, token = jupyterlab
    with browser_page(1366, 768) as (sync_api, page):
        open_and_run_all(sync_api, page, base, token, "07_decoding_strategies.ipynb")
        explorer = page.locator(".course-decoding-explorer").first
        explorer.wait_for(timeout=240_000)
        page.wait_for_selector(IDLE, timeout=240_000)
        explorer.scroll_into_view_if_needed()
        prompt_box = explorer.locator("textarea").first  # a text area keeps the newline of "ROMEO:\nI "
        prompt_box.fill("ROMEO:\nI ")
        assert prompt_box.input_value() == "ROMEO:\nI ", "the prompt box drops newlines"
        label = explorer.locator(".widget-label", has_text="temperature").first
        assert label.evaluate("e => e.scrollWidth <= e.clientWidth"), "the 'temperature' label is cut off"
        explorer.locator("textarea").first.scroll_into_view_if_needed()
        page.screenshot(path=str(artifact("notebook07_explorer_controls_1366.png")), full_page=False)
        explorer.locator("select").first.select_option("beam")
        explorer.locator("button", has_text="generate N").first.click()
        svg = explorer.locator("svg").first
        svg.wait_for(timeout=120_000)
        box = explorer.locator(".widget-html:has(svg)").first  # the tree's widget: it grows down, not sideways
        assert box.evaluate("e => getComputedStyle(e).overflowX") == "auto"
        assert box.evaluate("e => e.scrollWidth <= e.clientWidth"), "the beam tree is wider than its box"
        right = svg.evaluate("e => e.getBoundingClientRect().right")
        assert right <= 1366, f"the beam tree ends at {right} px, past the screen"
        svg.scroll_into_view_if_needed()
        shot = artifact("notebook07_explorer_1366.png")
        page.screenshot(path=str(shot), full_page=False)
        assert shot.stat().st_size > 10_000
