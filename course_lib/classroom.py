"""Classroom mode: teacher's notebooks with the exercises solved, and slide metadata for RISE.

Both work from the notebooks' structure, never from a second stored copy:

- **Teacher's version** (`course teacher OUT_DIR`). A stub is a function whose body raises
  ``NotImplementedError``, or a class with such a method (a learner piece such as an
  ``nn.Module`` whose ``forward`` is left to write), passed by name to a
  ``checks.check_<name>(...)`` call in the same cell or in the next code cell. `solve_cell`
  replaces the stub's definition with the reference solution that
  ``course_lib.checks.solution(name)`` shows, renamed to the stub's name, with the imports it
  needs; the rest of the cell is kept. `teacher_notebook` does that for every stub of a
  notebook, answers every concept question (``answer("name", None)`` gets the right letter,
  `solve_answers`) and adds a banner, so every ``checks.choose(...)`` line goes on with "your" piece.
- **Reference cells** of the learner pieces: a collapsed code cell whose first line is
  `REFERENCE_MARK` naming the exercise, then the reference under a reference name.
  `reference_source` writes that cell's text from the same solution, `refresh_reference_cells`
  rewrites every such cell of a notebook (and collapses it), so the cell and
  ``checks.solution(name)`` cannot drift apart.
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
import inspect
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

__all__ = ["Stub", "find_stubs", "solution_code", "solve_cell", "solve_answers", "teacher_notebook",
           "write_teacher_notebooks", "REFERENCE_MARK", "reference_source", "reference_cells",
           "refresh_reference_cells", "slide_types", "apply_slides", "has_slides", "RISE_SETTINGS", "TEACHER_TAG"]

TEACHER_TAG = "solution"  # the tag of each solved cell in a teacher's notebook
REFERENCE_MARK = "# Reference — open after you tried."  # the first line of a piece's collapsed reference cell
_REFERENCE_LINE = re.compile(r'^# Reference — open after you tried\. checks\.solution\("(\w+)"\) shows the same\.$')
RISE_SETTINGS = {"theme": "white", "scroll": True, "transition": "none", "center": False,
                 "width": "100%", "height": "100%"}


# --------------------------------------------------------------------------- teacher's version
@dataclass(frozen=True)
class Stub:
    """An exercise stub in a cell: its name, the check it goes to, its line span (1-based), its kind."""

    name: str
    check: str
    first_line: int
    last_line: int
    indent: int
    kind: str = "function"  # or "class": a class with a method that raises NotImplementedError


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


def _is_stub(node: ast.stmt) -> bool:
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        return _raises_not_implemented(node)
    if isinstance(node, ast.ClassDef):  # a class piece: one of its own methods is the stub
        return any(isinstance(m, ast.FunctionDef | ast.AsyncFunctionDef) and _raises_not_implemented(m)
                   for m in node.body)
    return False


def _check_calls(source: str) -> list[tuple[str, str]]:
    """(check_<x>, the name passed first) for every ``check_<x>(Name, ...)`` call in `source`."""
    try:
        tree = ast.parse(_parseable(source))
    except SyntaxError:
        return []
    calls = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Name):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            if name.startswith("check_"):
                calls.append((name, node.args[0].id))
    return calls


def find_stubs(source: str, check_source: str = "") -> list[Stub]:
    """The stubs of one code cell: functions that raise NotImplementedError, or classes with such a
    method, each passed to a ``check_<x>(...)`` call in `source` or in `check_source` (the next code cell).

    Introduced for teachers (README, "Classroom mode").
    """
    try:
        tree = ast.parse(_parseable(source))
    except SyntaxError:
        return []
    stubs = {n.name: n for n in tree.body if _is_stub(n)}
    found: list[Stub] = []
    for check, arg in _check_calls(source) + _check_calls(check_source):
        stub = stubs.get(arg)
        if stub is not None and all(s.name != stub.name for s in found):
            first = min([stub.lineno] + [d.lineno for d in stub.decorator_list])
            kind = "class" if isinstance(stub, ast.ClassDef) else "function"
            found.append(Stub(stub.name, check, first, stub.end_lineno or stub.lineno, stub.col_offset, kind))
    return sorted(found, key=lambda s: s.first_line)


def _exercise(check: str) -> Any:
    from .checks import _core

    key = check.removeprefix("check_")
    return _core.EXERCISES.get(key) or _core.EXERCISES.get(key.removeprefix("my_"))


def _exercise_function(check: str) -> Any:
    ex = _exercise(check)
    return None if ex is None else (ex.solution or ex.reference)


def _module_globals(fn: Any) -> dict[str, Any]:
    """The globals a function (or a class's methods) reads: its module's namespace. A decorated
    function (``@torch.no_grad()``) is unwrapped first: the wrapper's globals are the decorator's module's."""
    fn = inspect.unwrap(fn) if callable(fn) and not isinstance(fn, type) else fn
    if hasattr(fn, "__globals__"):
        return fn.__globals__
    module = sys.modules.get(getattr(fn, "__module__", ""), None)
    return vars(module) if module is not None else {}


def _global_names(tree: ast.AST, fn: Any) -> list[str]:
    """Names the solution reads from its module's globals, in order of first use."""
    local: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.arg):
            local.add(node.arg)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            local.add(node.id)
    out: list[str] = []
    g = _module_globals(fn)
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


def _renamed_solution(check: str, name: str) -> str:
    """The solution of ``check_<x>``, renamed to `name`, with the import lines it needs; no header."""
    from . import checks

    with contextlib.redirect_stdout(io.StringIO()):
        source = checks.solution(check)
    fn = _exercise_function(check)
    if not source or fn is None:
        raise CourseInputError(f"{check}: no exercise of that name in course_lib.checks")
    source = textwrap.dedent(source).rstrip() + "\n"
    tree = ast.parse(source)
    defs = [n for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)]
    if not defs:
        raise CourseInputError(f"{check}: its solution is not a function or class definition")
    old = defs[0].name
    given = set(getattr(_exercise(check), "given", ()))  # the notebook's own earlier pieces: never imported
    g = _module_globals(fn)
    imports = [_import_line(n, g[n], fn.__module__) for n in _global_names(tree, fn) if n != old and n not in given]
    if old != name:
        keyword = "class" if isinstance(defs[0], ast.ClassDef) else "def"
        source = re.sub(rf"\b{keyword} {re.escape(old)}\b", f"{keyword} {name}", source, count=1)
        if any(isinstance(n, ast.Name) and n.id == old for n in ast.walk(ast.parse(source))):
            source += f"{old} = {name}\n"  # recursive: the body still calls it by its old name
    head = "".join(f"{line}\n" for line in dict.fromkeys(imports))
    return head + ("\n\n" if head else "") + source.rstrip() + "\n"


def solution_code(check: str, name: str) -> str:
    """The reference solution of ``check_<x>`` as source defining `name`, imports first.

    The text is what ``course_lib.checks.solution(x)`` shows, renamed; raises
    CourseInputError naming the check when there is no such exercise.

    Introduced for teachers (README, "Classroom mode").
    """
    exercise = check.removeprefix("check_")
    head = f"# Teacher's version: the reference solution (course_lib.checks.solution({exercise!r}))\n"
    return head + _renamed_solution(check, name)


def reference_source(check: str, name: str) -> str:
    """The text of a learner piece's collapsed reference cell: `REFERENCE_MARK` naming the exercise,
    then the solution of ``check_<x>`` defined as `name` (``reference_attention``, ``ReferenceCausalSelfAttention``).

    Introduced for teachers (README, "Classroom mode"); the convention is notebooks/03_attention.ipynb's.
    """
    exercise = check.removeprefix("check_")
    head = f'{REFERENCE_MARK} checks.solution("{exercise}") shows the same.\n'
    return head + _renamed_solution(check, name).rstrip()


def _defined_name(source: str) -> str | None:
    try:
        tree = ast.parse(_parseable(source))
    except SyntaxError:
        return None
    defs = [n for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)]
    return defs[0].name if defs else None


def reference_cells(nb: dict) -> list[tuple[int, str, str]]:
    """(cell index, exercise name, the reference name it defines) of every reference cell of `nb`.

    Introduced for teachers (README, "Classroom mode").
    """
    found = []
    for i, cell in enumerate(nb.get("cells", [])):
        src = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
        m = _REFERENCE_LINE.match(src.split("\n", 1)[0]) if cell.get("cell_type") == "code" else None
        if m:
            name = _defined_name(src)
            if name is None:
                raise CourseInputError(f"cell {i}: a reference cell defines no function or class")
            found.append((i, m.group(1), name))
    return found


def refresh_reference_cells(nb: dict) -> bool:
    """Rewrite every reference cell of `nb` from its exercise's solution and collapse it
    (``metadata.jupyter.source_hidden``); True when something changed.

    Introduced for teachers (README, "Classroom mode").
    """
    changed = False
    for i, exercise, name in reference_cells(nb):
        cell = nb["cells"][i]
        new = reference_source(f"check_{exercise}", name)
        src = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
        if src != new:
            cell["source"] = new
            changed = True
        jupyter = cell.setdefault("metadata", {}).setdefault("jupyter", {})
        if jupyter.get("source_hidden") is not True:
            jupyter["source_hidden"] = True
            changed = True
    return changed


def solve_cell(source: str, check_source: str = "") -> tuple[str, list[str]]:
    """`source` with every exercise stub replaced by its solution; returns (source, checks solved).
    `check_source` is the next code cell, where a learner piece's check call stands.

    Introduced for teachers (README, "Classroom mode").
    """
    stubs = find_stubs(source, check_source)
    if not stubs:
        return source, []
    lines = source.splitlines()
    for stub in reversed(stubs):
        code = solution_code(stub.check, stub.name)
        pad = " " * stub.indent
        lines[stub.first_line - 1: stub.last_line] = [pad + line if line else line for line in code.splitlines()]
    out = "\n".join(lines) + ("\n" if source.endswith("\n") else "")
    return out, [s.check for s in stubs]


_UNANSWERED = re.compile(r"""\banswer\(\s*(["'])(\w+)\1\s*,\s*None\s*\)""")


def solve_answers(source: str) -> tuple[str, list[str]]:
    """`source` with every unanswered concept question (``answer("name", None)``) given its right letter;
    returns (source, questions answered).

    Introduced for teachers (README, "Classroom mode").
    """
    from .checks import _core

    answered: list[str] = []

    def fill(m: re.Match[str]) -> str:
        question = _core.QUESTIONS.get(_core._key(m.group(2)))
        if question is None:
            return m.group(0)
        answered.append(question.name)
        quote = m.group(1)
        return f"answer({quote}{m.group(2)}{quote}, {quote}{question.right}{quote})"

    return _UNANSWERED.sub(fill, source), answered


def teacher_notebook(nb: dict, name: str = "the notebook") -> tuple[dict, list[str]]:
    """A teacher's copy of notebook `nb` (an nbformat dict): exercises solved, a banner on top.

    Returns (notebook, checks solved). The given notebook is not changed.

    Introduced for teachers (README, "Classroom mode").
    """
    out = copy.deepcopy(nb)
    solved: list[str] = []
    cells = out.get("cells", [])
    code = [i for i, c in enumerate(cells) if c.get("cell_type") == "code"]
    sources = {i: cells[i]["source"] if isinstance(cells[i]["source"], str) else "".join(cells[i]["source"])
               for i in code}
    for i, after in zip(code, code[1:] + [None]):
        cell, src = cells[i], sources[i]
        try:
            new, done = solve_cell(src, sources.get(after, ""))
        except CourseInputError as e:
            raise CourseInputError(f"{name}, cell {i}: {e}") from None
        new, answered = solve_answers(new)
        done += answered
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
