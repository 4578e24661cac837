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

import importlib.util
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts"
NOTEBOOK = "08_attention_visualization.ipynb"
NEWS_PROMPT = "Would you like to get notified about official Jupyter news?"
pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _chromium() -> Path:
    """Debian's Chromium, or a skip that says how to get it (nothing is installed here)."""
    for candidate in (CHROMIUM, shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    pytest.skip(f"no Chromium at {CHROMIUM}: `make test` installs it where it runs as root with apt-get "
                "(scripts/bootstrap.py); elsewhere run `sudo apt-get install chromium` once")


def _bootstrap():
    spec = importlib.util.spec_from_file_location("course_bootstrap", ROOT / "scripts" / "bootstrap.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _artifact(name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS / name


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def jupyterlab(tmp_path: Path):
    """A headless JupyterLab serving a copy of notebooks/; yields (base url, token). Always killed."""
    work = tmp_path / "notebooks"
    shutil.copytree(ROOT / "notebooks", work, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    boot = _bootstrap()
    boot.write_lab_overrides(tmp_path / "lab_settings")  # what `make lab` installs
    port, token = _free_port(), secrets.token_hex(16)
    env = {**os.environ, "COURSE_FAST": "1", "COURSE_OFFLINE": "1", "MPLBACKEND": "module://matplotlib_inline.backend_inline",
           "JUPYTER_CONFIG_DIR": str(tmp_path / "jupyter_config"), "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime")}
    env.pop("JUPYTER_PLATFORM_DIRS", None)
    log = (tmp_path / "jupyter.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root", f"--port={port}",
         "--ip=127.0.0.1", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={work}",
         "--ServerApp.open_browser=False", f"--LabApp.app_settings_dir={tmp_path / 'lab_settings'}",
         *boot.LAB_OPTIONS],
        cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.flush()
                    log_tail = (tmp_path / "jupyter.log").read_text()[-3000:]
                    raise RuntimeError("JupyterLab did not start:\n" + log_tail) from None
                time.sleep(0.5)
        yield base, token
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()


def test_notebook_08_explorer_in_jupyterlab(jupyterlab, tmp_path: Path) -> None:
    chromium = _chromium()
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed")
    base, token = jupyterlab
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(chromium), headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run"],
        )
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1200})
            page.set_default_timeout(60_000)
            page.goto(f"{base}/lab/tree/{NOTEBOOK}?token={token}")
            page.wait_for_selector(".jp-Notebook", timeout=90_000)
            # a fresh server may ask which kernel to start: accept the proposed Python 3
            try:
                page.wait_for_selector(".jp-Dialog .jp-mod-accept", timeout=15_000)
                page.click(".jp-Dialog .jp-mod-accept")
            except sync_api.TimeoutError:
                pass
            # wait for the kernel to be idle, then Run > Run All Cells
            page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=90_000)
            page.click("text=Run", timeout=30_000)
            page.click("text=Run All Cells")
            try:
                page.wait_for_selector(".course-attention-explorer", timeout=150_000)
            except sync_api.TimeoutError:
                page.screenshot(path=str(_artifact("notebook08_timeout.png")), full_page=True)
                stderr = ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"
                errors = page.locator(stderr).all_inner_texts()
                shot = _artifact("notebook08_timeout.png")
                pytest.fail(f"the explorer did not render within 150 s (screenshot {shot}); "
                            f"stderr outputs: {[e[-300:] for e in errors][-3:]}")
            # let Run All finish: a widget's click is handled only once the kernel is idle again
            page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=150_000)
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
            shot = _artifact("notebook08_explorer.png")
            page.screenshot(path=str(shot), full_page=False)
            assert shot.stat().st_size > 10_000
            assert page.get_by_text(NEWS_PROMPT).count() == 0, "the news pop-up is back"
        finally:
            browser.close()


def _launch(sync_api, pw, chromium: Path):
    return pw.chromium.launch(
        executable_path=str(chromium), headless=True,
        args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
              "--disable-component-update", "--no-first-run"],
    )


def _open_and_run_all(sync_api, page, base: str, token: str, notebook: str) -> None:
    page.goto(f"{base}/lab/tree/{notebook}?token={token}")
    page.wait_for_selector(".jp-Notebook", timeout=90_000)
    try:
        page.wait_for_selector(".jp-Dialog .jp-mod-accept", timeout=15_000)
        page.click(".jp-Dialog .jp-mod-accept")
    except sync_api.TimeoutError:
        pass
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=90_000)
    page.click("text=Run", timeout=30_000)
    page.click("text=Run All Cells")


def test_notebook_00_course_map_link_opens_the_notebook_without_a_news_pop_up(jupyterlab) -> None:
    chromium = _chromium()
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed")
    base, token = jupyterlab
    with sync_api.sync_playwright() as pw:
        browser = _launch(sync_api, pw, chromium)
        try:
            page = browser.new_page(viewport={"width": 1366, "height": 768})
            page.set_default_timeout(60_000)
            _open_and_run_all(sync_api, page, base, token, "00_welcome.ipynb")
            link = page.locator(".jp-OutputArea-output a", has_text="Tokenization").first
            link.wait_for(timeout=120_000)
            page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=120_000)
            time.sleep(2)  # JupyterLab shows the news question, when it does, soon after it is restored
            assert page.get_by_text(NEWS_PROMPT).count() == 0, "JupyterLab asks about news over the course"
            link.scroll_into_view_if_needed()
            link.click()
            tab = page.locator(".lm-TabBar-tab.jp-mod-current .lm-TabBar-tabLabel")
            sync_api.expect(tab).to_have_text("01_tokenization.ipynb", timeout=60_000)
            page.locator(".jp-Notebook >> visible=true").first.wait_for(timeout=60_000)  # 01, shown over 00
            time.sleep(1)
            shot = _artifact("notebook00_map_link_opened_01.png")
            page.screenshot(path=str(shot), full_page=False)
            assert shot.stat().st_size > 10_000
        finally:
            browser.close()


def test_notebook_07_decoding_explorer_fits_a_1366_px_screen(jupyterlab) -> None:
    chromium = _chromium()
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed")
    base, token = jupyterlab
    with sync_api.sync_playwright() as pw:
        browser = _launch(sync_api, pw, chromium)
        try:
            page = browser.new_page(viewport={"width": 1366, "height": 768})
            page.set_default_timeout(60_000)
            _open_and_run_all(sync_api, page, base, token, "07_decoding_strategies.ipynb")
            explorer = page.locator(".course-decoding-explorer").first
            explorer.wait_for(timeout=240_000)
            page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=240_000)
            explorer.scroll_into_view_if_needed()
            prompt_box = explorer.locator("textarea").first  # a text area keeps the newline of "ROMEO:\nI "
            prompt_box.fill("ROMEO:\nI ")
            assert prompt_box.input_value() == "ROMEO:\nI ", "the prompt box drops newlines"
            label = explorer.locator(".widget-label", has_text="temperature").first
            assert label.evaluate("e => e.scrollWidth <= e.clientWidth"), "the 'temperature' label is cut off"
            explorer.locator("textarea").first.scroll_into_view_if_needed()
            page.screenshot(path=str(_artifact("notebook07_explorer_controls_1366.png")), full_page=False)
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
            shot = _artifact("notebook07_explorer_1366.png")
            page.screenshot(path=str(shot), full_page=False)
            assert shot.stat().st_size > 10_000
        finally:
            browser.close()
