"""Classroom mode in a real browser, with every non-localhost request blocked (Playwright + Chromium).

- bertviz's head and model views, with require.js, d3 and jQuery inlined from the course's
  copies (`course_lib.viz.offline_assets`), draw their SVG from a localhost page, and the head
  view draws in a JupyterLab notebook's output;
- `course demo attention` serves a page whose explorer renders (`course_lib.cli.demo`);
- a notebook opens in JupyterLab and RISE starts its slides (`course slides` metadata).

Every request to a host other than 127.0.0.1/localhost is aborted and recorded; the tests
assert none was even tried. Screenshots go to ``test-artifacts/`` (git-ignored). Marked like
tests/test_browser.py (browser, slow); skips with the reason when Chromium or Playwright is missing.
"""

from __future__ import annotations

import functools
import http.server
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from jupyter_browser import artifact, browser_page, free_port, open_and_run_all
from jupyter_browser import jupyterlab as jupyterlab  # the headless JupyterLab fixture test_browser.py uses

pytestmark = [pytest.mark.browser, pytest.mark.slow]
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}


def _block_the_network(page) -> list[str]:
    """Abort every request that leaves this machine; return the list the blocked URLs go into."""
    blocked: list[str] = []

    def handle(route) -> None:
        url = route.request.url
        host = urllib.parse.urlsplit(url).hostname or ""
        if url.startswith(("data:", "blob:", "about:")) or host in LOCAL_HOSTS:
            route.continue_()
        else:
            blocked.append(url)
            route.abort()

    page.route("**/*", handle)
    return blocked


@pytest.fixture
def static_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A localhost HTTP server for tmp_path/site; yields (base url, folder)."""
    site = tmp_path / "site"
    site.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", site
    finally:
        server.shutdown()
        server.server_close()


def test_bertviz_views_render_offline(static_server) -> None:
    from course_lib.model import GPT, GPTConfig
    from course_lib.tokenizer import gpt2_tokenizer
    from course_lib.viz import attention as va

    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=50257, n_positions=64, n_layer=2, n_head=4, n_embd=32)).eval()
    tok = gpt2_tokenizer()
    text = "The cat sat on the mat. The cat sat on the mat."
    base, site = static_server
    for view in ("head", "model"):
        html = getattr(va, f"{view}_view")(model, tok, text, html_action="return").data
        (site / f"{view}.html").write_text(f"<!doctype html><meta charset='utf-8'><body>{html}</body>",
                                           encoding="utf-8")
    with browser_page(1200, 900) as (sync_api, page):
        blocked = _block_the_network(page)
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"{base}/head.html")
        # the head view draws one text per token on each side and a line per pair
        page.wait_for_function("document.querySelectorAll('#vis svg text').length >= 10", timeout=60_000)
        assert page.locator("#vis svg line, #vis svg path, #vis svg rect").count() > 10
        assert page.locator("#layer option").count() == 2
        page.screenshot(path=str(artifact("bertviz_head_view_offline.png")))
        page.goto(f"{base}/model.html")
        # 2 layers x 4 heads
        page.wait_for_function("document.querySelectorAll('#vis svg g').length >= 8", timeout=60_000)
        time.sleep(0.5)
        page.screenshot(path=str(artifact("bertviz_model_view_offline.png")))
        assert not blocked, f"the views tried to reach the network: {blocked}"
        assert not errors, f"JavaScript errors: {errors}"


@pytest.fixture(params=["attention", "decoding", "tokenizer"])
def demo_server(request, tmp_path: Path):
    """`course demo <demo> --no-browser --port N` in a subprocess; yields (demo, URL). Always stopped."""
    import os
    import subprocess
    import sys

    pytest.importorskip("voila", reason="Voilà is not installed (the `lab` extra)")
    port = free_port()
    log = (tmp_path / "demo.log").open("w")
    env = {**os.environ, "COURSE_OFFLINE": "1", "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    proc = subprocess.Popen([sys.executable, "-c", "from course_lib.cli import main; raise SystemExit(main())",
                             "demo", request.param, "--no-browser", "--port", str(port)],
                            env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        from course_lib.cli.demo import wait_until_up

        wait_until_up(port, proc, timeout=120)
        yield request.param, f"http://127.0.0.1:{port}/"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()


def test_course_demo_renders_offline(demo_server, tmp_path: Path) -> None:
    demo, url = demo_server
    with browser_page(1366, 768) as (sync_api, page):
        blocked = _block_the_network(page)
        page.goto(url, timeout=240_000)
        try:
            page.locator(".course-demo-explorer").first.wait_for(timeout=240_000)
            if demo == "attention":
                page.locator(".course-head-view").first.wait_for(timeout=60_000)
        except sync_api.TimeoutError:
            page.screenshot(path=str(artifact(f"demo_{demo}_timeout.png")))
            pytest.fail(f"the {demo} explorer did not render; log: {(tmp_path / 'demo.log').read_text()[-2000:]}")
        assert page.locator("h1.course-demo-title").count() == 1
        assert page.locator(".jp-InputArea, .jp-CodeMirrorEditor").count() == 0, "code is shown"
        zoom = float(page.evaluate("getComputedStyle(document.body).zoom"))
        assert zoom >= 1.15, f"the page is not zoomed for a projector ({zoom})"
        cut = page.locator(".course-demo-explorer .widget-label").evaluate_all(
            "es => es.filter(e => e.scrollWidth > e.clientWidth + 1).map(e => e.textContent)")
        assert not cut, f"labels cut off: {cut}"
        time.sleep(1)
        shot = artifact(f"demo_{demo}_1366.png")
        page.screenshot(path=str(shot))
        assert shot.stat().st_size > 10_000
        assert not blocked, f"the demo page tried to reach the network: {blocked}"


RISE_NOTEBOOK = "03_attention.ipynb"


def test_rise_presents_a_notebook_as_slides_offline(jupyterlab, tmp_path: Path) -> None:
    pytest.importorskip("jupyterlab_rise", reason="jupyterlab-rise is not installed (the `lab` extra)")
    import nbformat

    from course_lib.classroom import apply_slides, slide_types

    path = tmp_path / "notebooks" / RISE_NOTEBOOK  # the fixture's copy: `course slides` on it
    nb = nbformat.read(path, as_version=4)
    apply_slides(nb)
    path.write_text(nbformat.writes(nb), encoding="utf-8")
    n_slides = slide_types(nb).count("slide")
    base, token = jupyterlab
    with browser_page(1366, 768) as (sync_api, page):
        blocked = _block_the_network(page)
        page.goto(f"{base}/rise/{RISE_NOTEBOOK}?token={token}")
        try:
            page.wait_for_selector(".reveal .slides > section", timeout=150_000)
        except sync_api.TimeoutError:
            page.screenshot(path=str(artifact("rise_timeout.png")))
            raise
        time.sleep(2)
        assert page.locator(".reveal .slides > section").count() == n_slides
        present = page.locator(".reveal .slides > section.present").first
        assert "Course setup" in (present.text_content() or "")  # slide 1: the setup cell, to run first
        page.screenshot(path=str(artifact("rise_03_attention_setup.png")))
        page.keyboard.press("ArrowRight")  # slide 2: the notebook's title
        time.sleep(1.5)
        assert "Attention" in (page.locator(".reveal .slides > section.present").first.text_content() or "")
        shot = artifact("rise_03_attention_title.png")
        page.screenshot(path=str(shot))
        assert shot.stat().st_size > 10_000
        assert not blocked, f"the slides tried to reach the network: {blocked}"


BERTVIZ_CELL = """\
import torch
from course_lib.model import GPT, GPTConfig
from course_lib.tokenizer import gpt2_tokenizer
from course_lib import viz

torch.manual_seed(0)
model = GPT(GPTConfig(vocab_size=50257, n_positions=64, n_layer=2, n_head=4, n_embd=32)).eval()
viz.head_view(model, gpt2_tokenizer(), "The cat sat on the mat. The cat sat on the mat.")
"""


def test_bertviz_head_view_renders_in_jupyterlab_offline(jupyterlab, tmp_path: Path) -> None:
    import nbformat

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(BERTVIZ_CELL)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    (tmp_path / "notebooks" / "bertviz_offline.ipynb").write_text(nbformat.writes(nb), encoding="utf-8")
    base, token = jupyterlab
    with browser_page(1200, 800) as (sync_api, page):
        blocked = _block_the_network(page)
        open_and_run_all(sync_api, page, base, token, "bertviz_offline.ipynb")
        page.wait_for_function("document.querySelectorAll('.jp-OutputArea #vis svg text').length >= 10",
                               timeout=150_000)
        time.sleep(1)
        shot = artifact("bertviz_head_view_jupyterlab_offline.png")
        page.screenshot(path=str(shot))
        assert shot.stat().st_size > 10_000
        assert not blocked, f"the view tried to reach the network: {blocked}"
