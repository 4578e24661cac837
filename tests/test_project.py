"""Project-level conventions: lint, README course map, setup cell, docs."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from course_lib import notebook
from course_lib.errors import CourseInputError

ROOT = Path(__file__).resolve().parent.parent


def test_ruff_is_clean() -> None:
    exe = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    result = subprocess.run([exe, "check", "."], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_course_map_lists_every_notebook_and_the_readme_shows_it() -> None:
    on_disk = sorted(p.stem for pattern in ("[0-9][0-9]_*.ipynb", "A[0-9]_*.ipynb")
                     for p in (ROOT / "notebooks").glob(pattern))
    assert "A1_command_line" in on_disk
    mapped = [row[0] for row in notebook.COURSE_MAP]
    assert set(on_disk) <= set(mapped), f"notebooks missing from COURSE_MAP: {set(on_disk) - set(mapped)}"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert notebook.course_map_markdown() in readme, "README's course map is out of date; paste course_map_markdown()"


_LINK = re.compile(r"\]\(([^)\s]+)\)")


def _relative_links(markdown: str) -> list[str]:
    """The link targets in `markdown` that are paths (not web addresses or #anchors)."""
    return [t.split("#")[0] for t in _LINK.findall(markdown) if not re.match(r"[a-z]+:|#", t)]


def _notebook_00_map(monkeypatch: pytest.MonkeyPatch, colab: bool) -> str:
    """The Markdown that notebook 00's course-map cell displays, by running that cell's code."""
    import nbformat

    import course_lib

    nb = nbformat.read(ROOT / "notebooks" / "00_welcome.ipynb", as_version=4)
    cell = next(c for c in nb.cells if c.cell_type == "code" and "course_map_markdown" in c.source)
    *body, last = cell.source.strip().splitlines()
    monkeypatch.setattr(course_lib, "in_colab", lambda: colab)
    scope = {"course_lib": course_lib}
    exec("\n".join(body), scope)  # noqa: S102 - the notebook's own cell
    return eval(last, scope).data  # noqa: S307 - its last line is the displayed Markdown


def test_course_map_links_open_a_notebook_wherever_the_map_is_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    # notebook 00 in JupyterLab: links resolve from notebooks/
    shown = _notebook_00_map(monkeypatch, colab=False)
    links = _relative_links(shown)
    assert len(links) == len(notebook.COURSE_MAP)
    for link in links:
        assert (ROOT / "notebooks" / link).is_file(), f"notebook 00's map links to a missing file: {link}"
    # the README: links resolve from the repository root (the map and every other relative link)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    readme_links = _relative_links(readme)
    assert sum(link.startswith("notebooks/") for link in readme_links) == len(notebook.COURSE_MAP)
    for link in readme_links:
        assert (ROOT / link).exists(), f"README links to a missing file: {link}"
    # Colab opens no relative links: every title and badge goes to the notebook's Colab page
    on_colab = _notebook_00_map(monkeypatch, colab=True)
    assert not _relative_links(on_colab)
    colab_link = r"https://colab\.research\.google\.com/github/[^/]+/[^/]+/blob/main/(notebooks/[^)]+)\)"
    pages = re.findall(colab_link, on_colab)
    assert len(pages) == 2 * len(notebook.COURSE_MAP)
    for page in pages:
        assert (ROOT / page).is_file(), page


def test_markdown_links_inside_notebooks_resolve_from_the_notebook_folder() -> None:
    import nbformat

    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "markdown":
                for link in _relative_links(cell.source):
                    assert (path.parent / link).exists(), f"{path.name} links to a missing file: {link}"


def test_course_map_refuses_an_unknown_place() -> None:
    with pytest.raises(CourseInputError, match="where='lab'; expected one of readme, notebooks, colab"):
        notebook.course_map_markdown("lab")


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


def test_provenance_is_one_line_in_the_module_docstring() -> None:
    """'Introduced in notebooks/...' appears once per module, in its docstring, never per function."""
    import ast

    for path in sorted((ROOT / "course_lib").rglob("*.py")):
        rel = path.relative_to(ROOT / "course_lib").as_posix()
        source = path.read_text(encoding="utf-8")
        count = source.count("Introduced in")
        assert count <= 1, f"{rel}: {count} 'Introduced in' lines; keep one, in the module docstring"
        if count:
            assert "Introduced in" in (ast.get_docstring(ast.parse(source)) or ""), rel


def test_tests_and_benchmarks_stay_inside_the_repository() -> None:
    """Tiny Shakespeare comes through `load_corpus`, so a user's clone runs them; no sibling folders."""
    needles = ("ROOT.parent", "parent.parent.parent", '"shared"', "'shared'")
    for path in sorted([*(ROOT / "tests").glob("*.py"), *(ROOT / "benchmarks").glob("*.py")]):
        if path.name == Path(__file__).name:
            continue
        text = path.read_text(encoding="utf-8")
        found = [n for n in needles if n in text]
        assert not found, f"{path.relative_to(ROOT)} reaches outside the repository: {found}"


def test_readme_and_notebook_00_give_the_same_fast_mode_command() -> None:
    import nbformat

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    nb = nbformat.read(ROOT / "notebooks" / "00_welcome.ipynb", as_version=4)
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert "COURSE_FAST=1 make lab" in readme and "COURSE_FAST=1 make lab" in text
    assert "jupyter lab" not in text  # make lab sets up .venv and the classroom settings first
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert "autocast: " not in code and "plain fp32" in code  # no bare `autocast: None` under "plain fp32"


def test_each_notebook_ends_with_a_link_to_the_next_one() -> None:
    """The closing "Next: ..." is a link a learner can click, to the next notebook of the course map."""
    import nbformat

    stems = [row[0] for row in notebook.COURSE_MAP]
    for here, after in zip(stems, stems[1:] + ["00_welcome"]):
        nb = nbformat.read(ROOT / "notebooks" / f"{here}.ipynb", as_version=4)
        closing = [c for c in nb.cells if c.cell_type == "markdown"][-1].source
        assert f"]({after}.ipynb)" in closing, f"{here}.ipynb does not end with a link to {after}.ipynb"
