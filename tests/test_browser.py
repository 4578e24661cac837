"""Notebook 08 in a real browser: JupyterLab (headless) driven by Playwright with Debian's Chromium.

Starts JupyterLab on a free localhost port with a known token and COURSE_FAST=1, opens
notebooks/08_attention_visualization.ipynb, runs all cells, checks that the attention
explorer rendered, clicks a head, checks that the view changed, and saves a screenshot
under the test's temporary folder. Chromium comes from Debian (``apt-get install
chromium``; Playwright's own browser downloads are not used). Skipped, with the reason,
when Chromium or Playwright cannot be had.
"""

from __future__ import annotations

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
NOTEBOOK = "08_attention_visualization.ipynb"
pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _chromium() -> Path:
    if CHROMIUM.is_file():
        return CHROMIUM
    if sys.platform != "linux" or not shutil.which("apt-get"):
        pytest.skip(f"Chromium not found at {CHROMIUM} and apt-get is not available to install it")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "chromium"]
    try:
        if subprocess.run(install, timeout=600, capture_output=True, env=env).returncode != 0:
            # a fresh machine has no package lists yet
            subprocess.run(["apt-get", "update", "-q"], check=True, timeout=600, capture_output=True, env=env)
            subprocess.run(install, check=True, timeout=600, capture_output=True, env=env)
    except (subprocess.SubprocessError, OSError) as e:
        pytest.skip(f"Chromium not found at {CHROMIUM} and `apt-get install -y chromium` failed: {e}")
    if not CHROMIUM.is_file():
        pytest.skip(f"`apt-get install chromium` ran but {CHROMIUM} is still missing")
    return CHROMIUM


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def jupyterlab(tmp_path: Path):
    """A headless JupyterLab serving a copy of notebook 08; yields (base url, token). Always killed."""
    work = tmp_path / "notebooks"
    work.mkdir()
    shutil.copy(ROOT / "notebooks" / NOTEBOOK, work / NOTEBOOK)
    port, token = _free_port(), secrets.token_hex(16)
    env = {**os.environ, "COURSE_FAST": "1", "COURSE_OFFLINE": "1", "MPLBACKEND": "module://matplotlib_inline.backend_inline",
           "JUPYTER_CONFIG_DIR": str(tmp_path / "jupyter_config"), "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime")}
    env.pop("JUPYTER_PLATFORM_DIRS", None)
    log = (tmp_path / "jupyter.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root", f"--port={port}",
         "--ip=127.0.0.1", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={work}",
         "--ServerApp.open_browser=False", "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
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
                    raise RuntimeError("JupyterLab did not start:\n" + (tmp_path / "jupyter.log").read_text()[-3000:]) from None
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
                page.screenshot(path=str(tmp_path / "timeout.png"), full_page=True)
                errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']").all_inner_texts()
                pytest.fail(f"the explorer did not render within 150 s (screenshot {tmp_path / 'timeout.png'}); "
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
            page.screenshot(path=str(tmp_path / "notebook08_explorer.png"), full_page=False)
            assert (tmp_path / "notebook08_explorer.png").stat().st_size > 10_000
        finally:
            browser.close()
