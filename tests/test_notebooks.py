"""Every notebook runs top to bottom in fast mode, in a real Jupyter kernel, offline.

A failure names the notebook, the cell number and the cell's first line.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError

from course_lib.notebook import SETUP_CELL

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
NOTEBOOK_LIMIT_S = 120


def execute_notebook(path: Path, workdir: Path, limit_s: int = NOTEBOOK_LIMIT_S) -> nbformat.NotebookNode:
    """Execute `path` in a fresh kernel; raise AssertionError naming the failing cell."""
    label = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name
    nb = nbformat.read(path, as_version=4)
    env_backup = dict(os.environ)
    os.environ.update({"COURSE_FAST": "1", "MPLBACKEND": "Agg", "PYDEVD_DISABLE_FILE_VALIDATION": "1"})
    client = NotebookClient(
        nb, timeout=limit_s, kernel_name="python3", resources={"metadata": {"path": str(workdir)}}
    )
    start = time.monotonic()
    try:
        client.execute()
    except (CellExecutionError, CellTimeoutError) as e:
        failing = None
        for i, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            if any(o.get("output_type") == "error" for o in cell.get("outputs", [])):
                failing = i
        if failing is None:  # a timeout leaves no error output: the last cell that started
            started = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.get("execution_count")]
            failing = started[-1] + 1 if started else 0
            failing = min(failing, len(nb.cells) - 1)
        first_line = nb.cells[failing].source.strip().splitlines()[0] if nb.cells[failing].source.strip() else ""
        summary = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
        raise AssertionError(
            f"{label}: cell {failing} failed ({first_line!r}): {summary}"
        ) from None
    finally:
        os.environ.clear()
        os.environ.update(env_backup)
    elapsed = time.monotonic() - start
    assert elapsed < limit_s, f"{path.name} took {elapsed:.0f} s in fast mode (limit {limit_s} s)"
    return nb


def test_there_are_notebooks() -> None:
    assert NOTEBOOKS, "no notebooks found under notebooks/"
    assert NOTEBOOKS[0].name == "00_welcome.ipynb"


@pytest.mark.notebook
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_in_fast_mode(path: Path, tmp_path: Path) -> None:
    nb = execute_notebook(path, tmp_path)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
    text = "\n".join(
        o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "stream"
    )
    assert "✗" not in text, f"{path.name}: an exercise check printed a failure with the reference solution"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_stored_clean_and_opens_with_the_setup_cell(path: Path) -> None:
    nb = json.loads(path.read_text(encoding="utf-8"))
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    dirty = [i for i, c in enumerate(code) if c.get("outputs") or c.get("execution_count")]
    assert not dirty, f"{path.name}: code cells {dirty} carry outputs; run `python -m course_lib.notebook stamp {path.name}`"
    first = nb["cells"][0]
    assert first["cell_type"] == "code" and "".join(first["source"]) == SETUP_CELL, (
        f"{path.name}: the first cell is not the course setup cell; "
        "run `python -m course_lib.notebook stamp` on it"
    )
    md = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    for heading in ("Learning objectives", "Summary", "Exercises"):
        assert heading.lower() in md.lower(), f"{path.name}: no '{heading}' section"


def test_a_failing_cell_is_named(tmp_path: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("x = 1"),
        nbformat.v4.new_markdown_cell("text"),
        nbformat.v4.new_code_cell("raise ValueError('boom')  # the broken one"),
        nbformat.v4.new_code_cell("y = 2"),
    ]
    scratch = tmp_path / "zz_broken_for_test.ipynb"
    nbformat.write(nb, scratch)
    with pytest.raises(AssertionError) as info:
        execute_notebook(scratch, tmp_path)
    message = str(info.value)
    assert "zz_broken_for_test.ipynb" in message
    assert "cell 2" in message and "the broken one" in message and "boom" in message

