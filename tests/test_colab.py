"""The setup cell's Colab branch, run for real: a stand-in `google.colab`, a local wheel.

The first cell of every notebook installs the course on Colab with ``%pip install``.
Here it runs in a fresh IPython shell where ``course_lib`` is not importable and
``google.colab`` is a stand-in module; ``%pip`` installs the course from a wheel built
from this checkout (without its dependencies, which the test environment has). The test
then checks what a Colab user depends on: the cell asks pip for the repository's
package without upgrading what Colab ships, the installed wheel holds every subpackage,
``course_lib.setup()`` turns on Colab's custom widget manager, and ``DEVICE`` is set.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from course_lib import notebook

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = textwrap.dedent('''
    import importlib.util, json, subprocess, sys, types

    # 1. Colab, as far as the course can tell: a google.colab module with an output API
    calls = []
    google, colab, output = (types.ModuleType(n) for n in ("google", "google.colab", "google.colab.output"))
    output.enable_custom_widget_manager = lambda: calls.append("enable_custom_widget_manager")
    colab.output, google.colab = output, colab
    sys.modules.update({"google": google, "google.colab": colab, "google.colab.output": output})

    # 2. a runtime without the course: hide the test environment's editable install
    sys.meta_path[:] = [f for f in sys.meta_path if "Editable" not in getattr(f, "__name__", "")]
    assert importlib.util.find_spec("course_lib") is None, "course_lib is still importable"

    # 3. %pip installs the locally built wheel in place of the repository URL
    from IPython.core.interactiveshell import InteractiveShell
    shell = InteractiveShell.instance()
    pip_lines = []
    def pip(line):
        pip_lines.append(line)
        subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                               "--disable-pip-version-check", "--target", TARGET, WHEEL])
        sys.path.insert(0, TARGET)
    shell.register_magic_function(pip, "line", "pip")

    result = shell.run_cell(SETUP_CELL)
    if not result.success:
        raise SystemExit(f"the setup cell failed: {result.error_in_exec or result.error_before_exec!r}")
    import course_lib, course_lib.checks, course_lib.cli, course_lib.viz
    print(json.dumps({"pip": pip_lines, "calls": calls, "file": course_lib.__file__,
                      "device": str(shell.user_ns["DEVICE"]), "colab": course_lib.in_colab()}))
''')


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "--disable-pip-version-check", "-w", str(out), str(ROOT)], check=True)
    (found,) = out.glob("gpt2_course-*.whl")
    return found


@pytest.mark.slow
def test_the_setup_cell_installs_the_course_on_colab_from_a_wheel(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    code = (f"SETUP_CELL = {notebook.SETUP_CELL!r}\nWHEEL = {str(wheel)!r}\nTARGET = {str(target)!r}\n"
            + SCRIPT)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["COURSE_FAST"] = "1"
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["colab"] is True
    (line,) = got["pip"]  # the cell ran %pip exactly once
    assert notebook.PIP_SPEC in line and "-q" in line.split()
    assert not {"-U", "--upgrade", "--force-reinstall"} & set(line.split()), "never upgrade what Colab ships"
    assert Path(got["file"]).is_relative_to(target), "course_lib came from somewhere other than the wheel"
    assert got["calls"] == ["enable_custom_widget_manager"], "Colab's widget manager was not enabled"
    assert got["device"] in ("cpu", "cuda", "mps")


@pytest.mark.slow
def test_the_wheel_ships_bertvizs_scripts_and_their_licenses(wheel: Path) -> None:
    import zipfile

    from course_lib.viz.offline_assets import ASSETS

    names = set(zipfile.ZipFile(wheel).namelist())
    for asset in ASSETS.values():
        for f in (asset.file, asset.license_file):
            assert f"course_lib/viz/static/{f}" in names, f"{f} is missing from the wheel"
    assert "course_lib/viz/static/README.md" in names
    assert "course_lib/cli/demo_template/voila/templates/course-demo/index.html.j2" in names  # `course demo`


def test_the_colab_install_leaves_jupyterlab_and_pinned_versions_alone() -> None:
    """`pip install gpt2-course` on Colab asks for ranges only, and never for JupyterLab."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10: pytest's own dependency
        import tomli as tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    deps = project["dependencies"]
    assert not [d for d in deps if d.lower().startswith("jupyterlab")], "Colab has its own front end"
    assert not [d for d in deps if "==" in d], f"pins would downgrade what Colab ships: {deps}"
    assert any(d.startswith("jupyterlab") for d in project["optional-dependencies"]["lab"])
