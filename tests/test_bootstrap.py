"""scripts/bootstrap.py: `make lab` starts a quiet JupyterLab, `make test` provides the browser.

Nothing here installs anything: subprocess calls that would are replaced and recorded.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def boot():
    spec = importlib.util.spec_from_file_location("course_bootstrap", ROOT / "scripts" / "bootstrap.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_lab_overrides_turn_off_the_news_pop_up_as_jupyterlab_reads_them(boot, tmp_path: Path) -> None:
    from jupyterlab_server.settings_utils import _get_overrides

    boot.write_lab_overrides(tmp_path)
    overrides, error = _get_overrides(str(tmp_path))
    assert not error
    notification = overrides["@jupyterlab/apputils-extension:notification"]
    assert notification == {"fetchNews": "false", "checkForUpdates": False}
    # the values are ones JupyterLab's own settings schema accepts
    from jupyterlab.commands import get_app_dir

    schema = json.loads((Path(get_app_dir()) / "schemas" / "@jupyterlab" / "apputils-extension"
                         / "notification.json").read_text(encoding="utf-8"))
    assert {"const": "false", "title": "Never"} in schema["properties"]["fetchNews"]["oneOf"]
    assert schema["properties"]["checkForUpdates"]["type"] == "boolean"


def test_make_lab_writes_the_overrides_and_passes_the_quiet_options(boot, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("JUPYTERLAB_DIR", str(tmp_path / "lab"))  # get_app_dir() follows it
    monkeypatch.setattr(boot, "ensure_env", lambda *a, **k: Path(sys.executable))
    calls = []
    monkeypatch.setattr(boot.subprocess, "call", lambda cmd, cwd=None: calls.append(cmd) or 0)
    assert boot.main(["lab", "--port=9999"]) == 0
    (cmd,) = calls
    assert cmd[1:4] == ["-m", "jupyter", "lab"]
    assert "--LabApp.news_url=None" in cmd and "--port=9999" in cmd
    assert cmd.index("--LabApp.news_url=None") < cmd.index("--port=9999")  # the user's options win
    assert "--LabApp.default_url=/lab/tree/00_welcome.ipynb" in cmd  # the course opens on its first notebook
    written = tmp_path / "lab" / "settings" / "overrides.d" / "gpt2-course.json"
    assert json.loads(written.read_text(encoding="utf-8")) == boot.LAB_OVERRIDES


def test_make_test_looks_for_the_browser_first(boot, monkeypatch) -> None:
    monkeypatch.setattr(boot, "ensure_env", lambda *a, **k: Path(sys.executable))
    order = []
    monkeypatch.setattr(boot, "ensure_browser", lambda: order.append("browser"))
    monkeypatch.setattr(boot.subprocess, "call", lambda cmd, cwd=None: order.append(cmd[1:3]) or 0)
    assert boot.main(["test", "-q"]) == 0
    assert order == ["browser", ["-m", "pytest"]]


def _record_runs(boot, monkeypatch) -> list[list[str]]:
    runs: list[list[str]] = []

    def run(cmd, **kwargs):
        runs.append(cmd)
        return subprocess.CompletedProcess(cmd, 0)

    monkeypatch.setattr(boot.subprocess, "run", run)
    return runs


def test_ensure_browser_installs_chromium_only_as_root_with_apt(boot, tmp_path: Path, monkeypatch, capsys) -> None:
    runs = _record_runs(boot, monkeypatch)
    monkeypatch.setattr(boot, "CHROMIUM", tmp_path / "chromium")  # missing
    monkeypatch.setattr(boot.sys, "platform", "linux")
    monkeypatch.setattr(boot.shutil, "which", lambda name: "/usr/bin/apt-get" if name == "apt-get" else None)
    # not root: one line, nothing run
    monkeypatch.setattr(boot.os, "geteuid", lambda: 1000, raising=False)
    boot.ensure_browser()
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and "the browser test will skip" in out[0] and runs == []
    # root with apt-get: apt-get install chromium
    monkeypatch.setattr(boot.os, "geteuid", lambda: 0, raising=False)
    boot.ensure_browser()
    assert runs[0][:2] == ["apt-get", "install"] and "chromium" in runs[0]
    # already there: nothing at all
    runs.clear()
    (tmp_path / "chromium").write_text("", encoding="utf-8")
    boot.ensure_browser()
    assert runs == []


def test_a_long_install_says_it_is_still_running(boot, monkeypatch, capsys) -> None:
    """`make lab`'s pip install -q is silent for a minute or more: a line every HEARTBEAT_S seconds says why."""
    monkeypatch.setattr(boot, "HEARTBEAT_S", 0.2)
    assert boot.run(sys.executable, "-c", "import time; time.sleep(0.7)", heartbeat="still installing") == 0
    said = [line for line in capsys.readouterr().out.splitlines() if "still installing" in line]
    assert len(said) >= 2 and said[0].startswith("[course] still installing (") and "s so far)" in said[0]
