"""Notebook conventions, defined once: the setup cell every notebook opens with.

The first cell of every notebook is `SETUP_CELL`, character for character (a test
checks it). On Colab it installs the course from `REPO_URL` with a plain
``%pip install``; locally it imports the installed package and, if that fails, says
how to install it.

``python -m course_lib.notebook stamp notebooks/*.ipynb`` rewrites the first cell of
each notebook to `SETUP_CELL` and strips outputs, so changing the cell is one edit
here plus one command.

Introduced in notebooks/00_welcome.ipynb.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO_URL = "https://github.com/gpt2-course/gpt2-course"
PIP_SPEC = f"gpt2-course @ git+{REPO_URL}.git"

SETUP_CELL = f'''# Course setup: this same cell opens every notebook, locally and on Colab.
import importlib.util
import sys

if "google.colab" in sys.modules and importlib.util.find_spec("course_lib") is None:
    %pip install -q "{PIP_SPEC}"
try:
    import course_lib
except ImportError:
    raise ImportError(
        "course_lib is not installed in this kernel. From the repository root run "
        "`make lab` (Windows: `py scripts\\\\bootstrap.py lab`), "
        "or `pip install -e .` in this environment."
    ) from None
DEVICE = course_lib.setup()'''


def clean(nb: dict) -> dict:
    """Strip outputs, execution counts and widget state from a notebook dict."""
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
        cell.get("metadata", {}).pop("execution", None)
    nb.get("metadata", {}).pop("widgets", None)
    return nb


def stamp(path: str | Path) -> bool:
    """Make `path`'s first cell the setup cell and strip outputs; True if it changed."""
    import nbformat

    p = Path(path)
    nb = nbformat.read(p, as_version=4)
    before = nbformat.writes(nb)
    if nb.cells and nb.cells[0].cell_type == "code" and "Course setup" in nb.cells[0].source:
        nb.cells[0].source = SETUP_CELL
    else:
        nb.cells.insert(0, nbformat.v4.new_code_cell(SETUP_CELL))
    clean(nb)
    after = nbformat.writes(nb)
    if after != before:
        p.write_text(after, encoding="utf-8")
        return True
    return False


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] != "stamp":
        print("usage: python -m course_lib.notebook stamp NOTEBOOK.ipynb ...", file=sys.stderr)
        return 2
    for name in argv[1:]:
        if stamp(name):
            print(f"stamped {name}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
