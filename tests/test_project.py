"""Project-level conventions: lint, README course map, setup cell, docs."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from course_lib import notebook

ROOT = Path(__file__).resolve().parent.parent


def test_ruff_is_clean() -> None:
    exe = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    result = subprocess.run([exe, "check", "."], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_course_map_lists_every_notebook_and_the_readme_shows_it() -> None:
    on_disk = sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    mapped = [row[0] for row in notebook.COURSE_MAP]
    assert set(on_disk) <= set(mapped), f"notebooks missing from COURSE_MAP: {set(on_disk) - set(mapped)}"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert notebook.course_map_markdown() in readme, "README's course map is out of date; paste course_map_markdown()"


def test_readme_has_exactly_the_two_commands_and_ci_runs_the_test_one() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "make lab" in readme and "make test" in readme
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert re.search(r"^make test$", ci, re.M)


def test_the_setup_cell_installs_from_one_url() -> None:
    assert notebook.SETUP_CELL.count("%pip install") == 1
    assert notebook.PIP_SPEC in notebook.SETUP_CELL and notebook.REPO_URL in notebook.PIP_SPEC


def test_stamp_restores_the_setup_cell_and_strips_outputs(tmp_path: Path) -> None:
    nbformat = pytest.importorskip("nbformat")
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("# Course setup: old\nimport course_lib")
    cell.outputs = [nbformat.v4.new_output("stream", text="hi")]
    cell.execution_count = 3
    nb.cells = [cell, nbformat.v4.new_code_cell("x = 1")]
    p = tmp_path / "nb.ipynb"
    nbformat.write(nb, p)
    assert notebook.stamp(p)
    again = nbformat.read(p, as_version=4)
    assert again.cells[0].source == notebook.SETUP_CELL
    assert all(not c.outputs and c.execution_count is None for c in again.cells)
    assert not notebook.stamp(p)  # idempotent


def test_every_course_lib_module_is_in_the_architecture_doc() -> None:
    doc = (ROOT / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    for path in sorted((ROOT / "course_lib").glob("*.py")):
        if path.name.startswith("_"):
            continue
        assert path.name in doc, f"docs/ARCHITECTURE.md does not mention course_lib/{path.name}"
