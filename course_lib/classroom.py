"""Classroom mode: teacher's notebooks with the exercises solved, and slide metadata for RISE.

Both work from the notebooks' structure, never from a second stored copy:

- **Teacher's version** (`course teacher OUT_DIR`). An exercise is a code cell that defines a
  stub (a function whose body raises ``NotImplementedError``) and passes it to a
  ``checks.check_<name>(...)`` call. `solve_cell` replaces the stub's definition with the
  reference solution that ``course_lib.checks.solution(name)`` shows, renamed to the stub's
  name, with the imports it needs; the rest of the cell (the check call, prints) is kept.
  `teacher_notebook` does that for every exercise of a notebook and adds a banner.
- **Slides** (`course slides`). `slide_types` gives each cell a RISE slide type from the
  notebook's headings: a markdown cell starting with ``#`` or ``##`` starts a slide, ``###``
  a sub-slide; a code cell stays on the slide of the text above it; text that follows code
  opens a sub-slide (below, on the same topic), so a long section scrolls down, not off the
  screen. `apply_slides` writes that into ``cell.metadata.slideshow`` and the notebook's
  ``rise`` settings (`RISE_SETTINGS`); `has_slides` checks a notebook carries it.

Introduced for teachers (README, "Classroom mode"); the exercises' convention is
notebooks/00_welcome.ipynb's.
"""

from __future__ import annotations

import ast
import contextlib
import copy
import io
import re
import sys
import textwrap
import types
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import CourseInputError

__all__ = ["Stub", "find_stubs", "solution_code", "solve_cell", "teacher_notebook", "write_teacher_notebooks",
           "slide_types", "apply_slides", "has_slides", "RISE_SETTINGS", "TEACHER_TAG"]

TEACHER_TAG = "solution"  # the tag of each solved cell in a teacher's notebook
RISE_SETTINGS = {"theme": "white", "scroll": True, "transition": "none", "center": False,
                 "width": "100%", "height": "100%"}


# --------------------------------------------------------------------------- teacher's version
@dataclass(frozen=True)
class Stub:
    """An exercise stub in a cell: the function's name, the check it goes to, its line span (1-based)."""

    function: str
    check: str
    first_line: int
    last_line: int
    indent: int


def _parseable(source: str) -> str:
    """`source` with IPython magics and shell lines turned into ``pass`` (same line numbers)."""
    lines = []
    for line in source.splitlines():
        stripped = line.lstrip()
        lines.append(line[: len(line) - len(stripped)] + "pass" if stripped.startswith(("%", "!")) else line)
    return "\n".join(lines)


def _raises_not_implemented(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    for node in ast.walk(fn):
        if isinstance(node, ast.Raise) and node.exc is not None:
            exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            if isinstance(exc, ast.Name) and exc.id == "NotImplementedError":
                return True
    return False


def find_stubs(source: str) -> list[Stub]:
    """The exercise stubs of one code cell: functions that raise NotImplementedError and go to a check.

    Introduced for teachers (README, "Classroom mode").
    """
    try:
        tree = ast.parse(_parseable(source))
    except SyntaxError:
        return []
    stubs = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
             and _raises_not_implemented(n)}
    found: list[Stub] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not node.args or not isinstance(node.args[0], ast.Name):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        stub = stubs.get(node.args[0].id)
        if name.startswith("check_") and stub is not None and all(s.function != stub.name for s in found):
            first = min([stub.lineno] + [d.lineno for d in stub.decorator_list])
            found.append(Stub(stub.name, name, first, stub.end_lineno or stub.lineno, stub.col_offset))
    return sorted(found, key=lambda s: s.first_line)


def _exercise_function(check: str) -> Any:
    from .checks import _core

    key = check.removeprefix("check_")
    ex = _core.EXERCISES.get(key) or _core.EXERCISES.get(key.removeprefix("my_"))
    return None if ex is None else (ex.solution or ex.reference)


def _global_names(tree: ast.AST, fn: Any) -> list[str]:
    """Names the solution reads from its module's globals, in order of first use."""
    local: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.arg):
            local.add(node.arg)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            local.add(node.id)
    out: list[str] = []
    g = getattr(fn, "__globals__", {})
    for node in ast.walk(tree):
        if (isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id not in local
                and node.id in g and node.id not in out):
            out.append(node.id)
    return out


def _import_line(name: str, value: Any, module: str) -> str:
    if isinstance(value, types.ModuleType):
        real = value.__name__
        if real == name:
            return f"import {real}"
        if "." in real and real.rsplit(".", 1)[1] == name:
            return f"from {real.rsplit('.', 1)[0]} import {name}"
        return f"import {real} as {name}"
    home = getattr(value, "__module__", None)
    if isinstance(home, str) and getattr(sys.modules.get(home), name, None) is value:
        module = home  # where it is defined (typing.Any), not where the solution imported it
    return f"from {module} import {name}"


def solution_code(check: str, name: str) -> str:
    """The reference solution of ``check_<x>`` as source defining `name`, imports first.

    The text is what ``course_lib.checks.solution(x)`` shows, renamed; raises
    CourseInputError naming the check when there is no such exercise.

    Introduced for teachers (README, "Classroom mode").
    """
    from . import checks

    with contextlib.redirect_stdout(io.StringIO()):
        source = checks.solution(check)
    fn = _exercise_function(check)
    if not source or fn is None:
        raise CourseInputError(f"{check}: no exercise of that name in course_lib.checks")
    source = textwrap.dedent(source).rstrip() + "\n"
    tree = ast.parse(source)
    defs = [n for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    if not defs:
        raise CourseInputError(f"{check}: its solution is not a function definition")
    old = defs[0].name
    imports = [_import_line(n, fn.__globals__[n], fn.__module__) for n in _global_names(tree, fn) if n != old]
    if old != name:
        source = re.sub(rf"\bdef {re.escape(old)}\(", f"def {name}(", source, count=1)
        if re.search(rf"\b{re.escape(old)}\b", source):  # recursive: the body still calls it by its name
            source += f"{old} = {name}\n"
    name = check.removeprefix("check_")
    head = f"# Teacher's version: the reference solution (course_lib.checks.solution({name!r}))\n"
    return head + "".join(f"{line}\n" for line in dict.fromkeys(imports)) + source.rstrip() + "\n"


def solve_cell(source: str) -> tuple[str, list[str]]:
    """`source` with every exercise stub replaced by its solution; returns (source, checks solved).

    Introduced for teachers (README, "Classroom mode").
    """
    stubs = find_stubs(source)
    if not stubs:
        return source, []
    lines = source.splitlines()
    for stub in reversed(stubs):
        code = solution_code(stub.check, stub.function)
        pad = " " * stub.indent
        lines[stub.first_line - 1: stub.last_line] = [pad + line if line else line for line in code.splitlines()]
    out = "\n".join(lines) + ("\n" if source.endswith("\n") else "")
    return out, [s.check for s in stubs]


def teacher_notebook(nb: dict, name: str = "the notebook") -> tuple[dict, list[str]]:
    """A teacher's copy of notebook `nb` (an nbformat dict): exercises solved, a banner on top.

    Returns (notebook, checks solved). The given notebook is not changed.

    Introduced for teachers (README, "Classroom mode").
    """
    out = copy.deepcopy(nb)
    solved: list[str] = []
    for i, cell in enumerate(out.get("cells", [])):
        if cell.get("cell_type") != "code":
            continue
        src = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
        try:
            new, done = solve_cell(src)
        except CourseInputError as e:
            raise CourseInputError(f"{name}, cell {i}: {e}") from None
        if done:
            cell["source"] = new
            tags = cell.setdefault("metadata", {}).setdefault("tags", [])
            if TEACHER_TAG not in tags:
                tags.append(TEACHER_TAG)
            solved += done
    banner = {"cell_type": "markdown", "id": "teacher-version", "metadata": {"tags": ["teacher"]},
              "source": (f"**Teacher's version** of `{name}`, generated by `course teacher` with the "
                         f"{len(solved)} exercise(s) solved (cells tagged `{TEACHER_TAG}`). "
                         "Do not edit it: change the notebook and generate again.")}
    cells = out.setdefault("cells", [])
    cells.insert(1 if cells and cells[0].get("cell_type") == "code" else 0, banner)
    return out, solved


def write_teacher_notebooks(notebooks: Iterable[str | Path], out_dir: str | Path, *,
                            overwrite: bool = False) -> dict[str, list[str]]:
    """Write the teacher's version of each notebook into `out_dir` (refused when it is not empty).

    Returns notebook file name -> the checks solved in it.

    Introduced for teachers (README, "Classroom mode").
    """
    import nbformat

    from .io import prepare_output_dir

    paths = [Path(p) for p in notebooks]
    if not paths:
        raise CourseInputError("no notebooks to write a teacher's version of")
    for p in paths:
        if not p.is_file():
            raise CourseInputError(f"notebook {p} does not exist")
    out = prepare_output_dir(out_dir, overwrite=overwrite, flag="OUT_DIR")
    report: dict[str, list[str]] = {}
    for p in paths:
        nb = nbformat.read(p, as_version=4)
        teacher, solved = teacher_notebook(nb, p.name)
        (out / p.name).write_text(nbformat.writes(nbformat.from_dict(teacher)), encoding="utf-8")
        report[p.name] = solved
    return report


# --------------------------------------------------------------------------- slides
def _heading_level(source: str) -> int:
    m = re.match(r"\s*(#{1,6})\s", source)
    return len(m.group(1)) if m else 0


def slide_types(nb: dict) -> list[str]:
    """The RISE slide type of each cell ("slide", "subslide", "-"), from the notebook's headings.

    Introduced for teachers (README, "Classroom mode").
    """
    types_: list[str] = []
    previous = None
    for i, cell in enumerate(nb.get("cells", [])):
        src = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
        kind = cell.get("cell_type")
        level = _heading_level(src) if kind == "markdown" else 0
        if i == 0 or level in (1, 2):
            t = "slide"
        elif level >= 3:
            t = "subslide"
        elif kind == "markdown" and previous == "code":
            t = "subslide"
        else:
            t = "-"
        types_.append(t)
        previous = kind
    return types_


def apply_slides(nb: dict) -> bool:
    """Write `slide_types` into each cell's ``metadata.slideshow`` and `RISE_SETTINGS` into the
    notebook's ``metadata.rise``; True when something changed.

    Introduced for teachers (README, "Classroom mode").
    """
    changed = False
    for cell, t in zip(nb.get("cells", []), slide_types(nb)):
        meta = cell.setdefault("metadata", {})
        if meta.get("slideshow") != {"slide_type": t}:
            meta["slideshow"] = {"slide_type": t}
            changed = True
    rise = nb.setdefault("metadata", {}).get("rise")
    if rise != RISE_SETTINGS:
        nb["metadata"]["rise"] = dict(RISE_SETTINGS)
        changed = True
    return changed


def has_slides(nb: dict) -> bool:
    """True when `nb` carries the slide metadata `apply_slides` would write (up to date).

    Introduced for teachers (README, "Classroom mode").
    """
    return not apply_slides(copy.deepcopy(nb))
