"""docs/ARCHITECTURE.md's import diagram is the code's: its arrows are read and compared with the imports.

Each diagram line ``A ─► B, C`` is an arrow from A to B and to C, where A, B, C are top-level
modules or packages of course_lib (a package counts as a whole). The real arrows come from
`ast` over every file of course_lib, imports inside functions included; arrows to `errors`
(which every module may import) are left out on both sides.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LIB = ROOT / "course_lib"
DOC = ROOT / "docs" / "ARCHITECTURE.md"
ARROW = "─►"
LOOPS_NEVER_IMPORT_MODEL = ("train", "generate", "lora", "scaling", "interp", "viz")


def _units() -> set[str]:
    """Top-level modules and packages of course_lib."""
    mods = {p.stem for p in LIB.glob("*.py") if p.name != "__init__.py"}
    pkgs = {p.name for p in LIB.iterdir() if (p / "__init__.py").is_file()}
    return mods | pkgs


def real_arrows() -> set[tuple[str, str]]:
    """(importer, imported) between top-level units of course_lib, from every import statement."""
    units = _units()
    arrows: set[tuple[str, str]] = set()
    for path in sorted(LIB.rglob("*.py")):
        parts = list(path.relative_to(LIB).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if not parts:
            continue  # course_lib/__init__.py: the lazy loader names every unit
        package = parts if path.name == "__init__.py" else parts[:-1]  # where `from .` points
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[list[str]] = []
            if isinstance(node, ast.ImportFrom) and node.level:
                base = package[: len(package) - node.level + 1]
                if node.module:
                    targets.append(base + node.module.split("."))
                else:  # from .. import a, b
                    targets.extend(base + [alias.name] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("course_lib."):
                targets.append(node.module.split(".")[1:])
            elif isinstance(node, ast.Import):
                targets.extend(a.name.split(".")[1:] for a in node.names if a.name.startswith("course_lib."))
            for t in targets:
                if t and t[0] in units and t[0] != parts[0] and t[0] != "errors":
                    arrows.add((parts[0], t[0]))
    return arrows


def documented_arrows() -> set[tuple[str, str]]:
    """The arrows of the code block under docs/ARCHITECTURE.md's "## Imports" heading."""
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## Imports", 1)[1]
    block = re.search(r"```\n(.*?)```", section, re.S)
    assert block, "docs/ARCHITECTURE.md: no diagram (a ``` block) under ## Imports"
    arrows: set[tuple[str, str]] = set()
    for line in block.group(1).splitlines():
        if ARROW not in line:
            continue
        left, right = (side.strip() for side in line.split(ARROW, 1))
        assert ARROW not in right, f"one arrow a line: {line!r}"
        for a in left.split(","):
            for b in right.split(","):
                arrows.add((a.strip(), b.strip()))
    return arrows


def test_every_documented_arrow_exists_and_every_import_is_documented() -> None:
    real, drawn = real_arrows(), documented_arrows()
    units = _units()
    unknown = sorted(n for arrow in drawn for n in arrow if n not in units)
    assert not unknown, f"the diagram names what course_lib does not have: {unknown}"
    assert not drawn - real, f"drawn but not imported (remove from docs/ARCHITECTURE.md): {sorted(drawn - real)}"
    assert not real - drawn, f"imported but not drawn (add to docs/ARCHITECTURE.md): {sorted(real - drawn)}"


def _reaches(arrows: set[tuple[str, str]], start: str) -> dict[str, str]:
    """Every unit `start` imports, directly or through others: {unit: the unit it was reached from}."""
    via: dict[str, str] = {}
    todo = [start]
    while todo:
        here = todo.pop()
        for a, b in sorted(arrows):
            if a == here and b not in via and b != start:
                via[b] = a
                todo.append(b)
    return via


def test_the_loops_never_import_the_model() -> None:
    """Not directly and not through another module: the closure of the real arrows holds no `model`."""
    for loop in LOOPS_NEVER_IMPORT_MODEL:
        via = _reaches(real_arrows(), loop)
        path = ["model"]
        while path[-1] in via:
            path.append(via[path[-1]])
        assert "model" not in via, f"{loop} must work on any causal LM, yet imports model.py: {' -> '.join(path[::-1])}"


def test_the_architecture_page_names_nothing_outside_the_repository() -> None:
    text = DOC.read_text(encoding="utf-8")
    outside = re.findall(r"https?://\S+|\.\./\S+", text)
    assert not outside, f"docs/ARCHITECTURE.md points outside the repository: {outside}"


def test_the_diagram_reader_finds_arrows_both_ways() -> None:
    """A guard for the guard: the parser sees the arrows, and the import scan sees lazy imports."""
    drawn = documented_arrows()
    assert ("train", "data") in drawn and ("model", "attention") in drawn
    real = real_arrows()
    assert ("train", "runtime") in real  # imported at the top of train/loop.py
    assert ("memory", "model") in real  # imported inside a function of memory.py


def test_every_module_and_package_is_in_the_layout() -> None:
    doc = DOC.read_text(encoding="utf-8")
    for path in sorted(LIB.rglob("*.py")):
        if path.name.startswith("_") or "checks" in path.parts or "cli" in path.parts or "viz" in path.parts:
            continue  # checks/, cli/, viz/ are described as packages
        assert path.name in doc, f"docs/ARCHITECTURE.md does not mention {path.relative_to(ROOT)}"
    for pkg in sorted(p for p in LIB.iterdir() if (p / "__init__.py").is_file()):
        assert f"{pkg.name}/" in doc, f"docs/ARCHITECTURE.md does not mention course_lib/{pkg.name}/"


def test_every_unit_loads_lazily_from_the_package() -> None:
    """`course_lib._SUBMODULES` (and viz's) name every module and package, so `course_lib.<unit>` works."""
    import course_lib
    import course_lib.viz

    assert set(course_lib._SUBMODULES) == _units() - {"__main__"}  # `python -m course_lib`, not a module to load
    viz_modules = {p.stem for p in (LIB / "viz").glob("*.py") if not p.name.startswith("_")}
    assert set(course_lib.viz._SUBMODULES) == viz_modules


def test_model_file_reads_like_notebook_05() -> None:
    """model.py stays the file a learner compares with their notebook: short, in the notebook's order."""
    source = (LIB / "model.py").read_text(encoding="utf-8")
    assert len(source.splitlines()) <= 420, "model.py grew past 420 lines: move what is not the model out"
    classes = [n.name for n in ast.parse(source).body if isinstance(n, ast.ClassDef)]
    order = ["GPTConfig", "RMSNorm", "GELU", "MLP", "Block", "GPT"]
    assert [c for c in classes if c in order] == order, classes
    forward = next(n for n in ast.walk(ast.parse(source)) if isinstance(n, ast.ClassDef) and n.name == "GPT")
    fwd = next(f for f in forward.body if isinstance(f, ast.FunctionDef) and f.name == "forward")
    assert fwd.end_lineno - fwd.lineno <= 55, "GPT.forward is longer than a screen"
