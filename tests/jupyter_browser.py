"""What the browser tests share: Debian's Chromium under Playwright, a headless JupyterLab, screenshots.

`tests/test_browser.py` and `tests/test_browser_classroom.py` import from here (a helper, not a test
module). JupyterLab starts as `make lab` starts it (scripts/bootstrap.py: no news pop-up, no update
check, kernels over encrypted CurveZMQ where this Jupyter can) on a free localhost port with a known
token and COURSE_FAST=1, on a copy of notebooks/. Nothing is installed here: without Chromium or
Playwright a test skips and says why.
"""

from __future__ import annotations

import importlib.util
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts"
NEWS_PROMPT = "Would you like to get notified about official Jupyter news?"
IDLE = ".jp-Notebook-ExecutionIndicator[data-status='idle']"


def chromium() -> Path:
    """Debian's Chromium, or a skip that says how to get it (nothing is installed here)."""
    for candidate in (CHROMIUM, shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    pytest.skip(f"no Chromium at {CHROMIUM}: `make test` installs it where it runs as root with apt-get "
                "(scripts/bootstrap.py); elsewhere run `sudo apt-get install chromium` once")


def artifact(name: str) -> Path:
    """Where a screenshot goes: test-artifacts/ (git-ignored)."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS / name


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bootstrap() -> ModuleType:
    """scripts/bootstrap.py as a module: the settings `make lab` gives JupyterLab."""
    spec = importlib.util.spec_from_file_location("course_bootstrap", ROOT / "scripts" / "bootstrap.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@contextmanager
def browser_page(width: int = 1366, height: int = 768) -> Iterator[tuple[Any, Any]]:
    """(playwright.sync_api, a new page of a headless Chromium) at width x height; always closed."""
    path = chromium()
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(path), headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run"],
        )
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.set_default_timeout(60_000)
            yield sync_api, page
        finally:
            browser.close()


def open_and_run_all(sync_api: Any, page: Any, base: str, token: str, notebook: str) -> None:
    """Open `notebook` in JupyterLab, accept the kernel it proposes, wait for it, Run > Run All Cells."""
    page.goto(f"{base}/lab/tree/{notebook}?token={token}")
    page.wait_for_selector(".jp-Notebook", timeout=90_000)
    try:  # a fresh server may ask which kernel to start: accept the proposed Python 3
        page.wait_for_selector(".jp-Dialog .jp-mod-accept", timeout=15_000)
        page.click(".jp-Dialog .jp-mod-accept")
    except sync_api.TimeoutError:
        pass
    page.wait_for_selector(IDLE, timeout=90_000)
    page.click("text=Run", timeout=30_000)
    page.click("text=Run All Cells")


@pytest.fixture
def jupyterlab(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A headless JupyterLab serving a copy of notebooks/; yields (base url, token). Always stopped."""
    from course_lib.notebook import kernel_options

    work = tmp_path / "notebooks"
    shutil.copytree(ROOT / "notebooks", work, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    boot = bootstrap()
    boot.write_lab_overrides(tmp_path / "lab_settings")  # what `make lab` installs
    port, token = free_port(), secrets.token_hex(16)
    env = {**os.environ, "COURSE_FAST": "1", "COURSE_OFFLINE": "1",
           "MPLBACKEND": "module://matplotlib_inline.backend_inline",
           "JUPYTER_CONFIG_DIR": str(tmp_path / "jupyter_config"), "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime")}
    env.pop("JUPYTER_PLATFORM_DIRS", None)
    log_path = tmp_path / "jupyter.log"
    log = log_path.open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root", f"--port={port}",
         "--ip=127.0.0.1", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={work}",
         "--ServerApp.open_browser=False", f"--LabApp.app_settings_dir={tmp_path / 'lab_settings'}",
         *boot.LAB_OPTIONS, *kernel_options()],
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
                    raise RuntimeError("JupyterLab did not start:\n" + log_path.read_text()[-3000:]) from None
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
    if kernel_options():  # this Jupyter starts kernels encrypted: ipykernel 7 has nothing to warn about
        assert "running over TCP without encryption" not in log_path.read_text(), "ipykernel's TCP warning is back"
