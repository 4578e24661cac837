"""Learner pieces, in every notebook that has them: the convention holds, the teacher's version goes on
with "your" piece everywhere, and one wrong piece makes the notebook go on with the reference for it.

The untouched notebook (every stub as shipped: "the reference" on every choice line) is checked by
the fast and capped runs of tests/test_notebooks.py; here the teacher's version and the one-wrong-
piece version run in fast mode. A notebook gets its pieces tested as soon as it has a reference
cell; tests/learner_pieces.py holds the one wrong piece per notebook (add yours there).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat
import pytest
from learner_pieces import CHOICE, WRONG_PIECES, choice_lines, choose_calls, errors, has_pieces, with_wrong_piece
from test_notebooks import NOTEBOOKS, execute_notebook

from course_lib import classroom

WITH_PIECES = [p for p in NOTEBOOKS if has_pieces(p)]
CHOOSE_LINE = re.compile(r"^(\w+) = checks\.choose\(result, (\w+), (\w+)\)$")


def _code(nb) -> list[tuple[int, str]]:
    return [(i, c.source) for i, c in enumerate(nb.cells) if c.cell_type == "code"]


def test_notebook_03_has_pieces_and_every_notebook_with_pieces_has_a_wrong_one() -> None:
    assert any(p.stem == "03_attention" for p in WITH_PIECES)  # the exemplar
    assert {p.stem for p in WITH_PIECES} == set(WRONG_PIECES), \
        "every notebook with learner pieces has one entry in tests/learner_pieces.py's WRONG_PIECES, and only those"


@pytest.mark.parametrize("path", WITH_PIECES, ids=[p.stem for p in WITH_PIECES])
def test_each_piece_is_stub_check_collapsed_reference_then_one_choice_line(path: Path) -> None:
    """stub (def or class raising NotImplementedError) -> result = checks.check_x(Name) -> collapsed
    reference cell (from the same solution as checks.solution, under a reference name) -> Name = choose(...)."""
    nb = nbformat.read(path, as_version=4)
    code = _code(nb)
    position = {i: n for n, (i, _) in enumerate(code)}
    refs = classroom.reference_cells(nb)
    assert len(refs) == choose_calls(nb), f"{path.name}: one choice line per reference cell"
    for i, exercise, ref_name in refs:
        n = position[i]
        (_, stub_src), (_, check_src), (_, choose_src) = code[n - 2], code[n - 1], code[n + 1]
        cell = nb.cells[i]
        hidden = cell.metadata.get("jupyter", {}).get("source_hidden")
        assert hidden is True, f"{path.name}: the reference cell of {ref_name} is not collapsed"
        assert cell.source == classroom.reference_source(f"check_{exercise}", ref_name), (
            f"{path.name}: the reference cell of {exercise} differs from checks.solution; "
            "run classroom.refresh_reference_cells on the notebook")
        m = CHOOSE_LINE.match(choose_src.strip())
        assert m and m.group(1) == m.group(2) and m.group(3) == ref_name, f"{path.name}: {choose_src!r}"
        piece = m.group(1)
        stubs = classroom.find_stubs(stub_src, check_src)
        assert [s.name for s in stubs] == [piece], f"{path.name}: no stub of {piece} checked right after it"
        assert stubs[0].check == f"check_{exercise}" and check_src.strip().startswith("result = checks.check_")
        before = "\n".join(src for j, src in code[: n - 1])
        for node in ast.walk(ast.parse(classroom._parseable(before))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("course_lib"):
                assert piece not in {a.asname or a.name for a in node.names}, \
                    f"{path.name}: {piece} is imported from course_lib before its check"


@pytest.mark.notebook
@pytest.mark.parametrize("path", WITH_PIECES, ids=[p.stem for p in WITH_PIECES])
def test_the_teachers_version_goes_on_with_every_piece_of_the_learner(path: Path, tmp_path: Path) -> None:
    teacher, solved = classroom.teacher_notebook(nbformat.read(path, as_version=4), path.name)
    scratch = tmp_path / path.name
    nbformat.write(nbformat.from_dict(teacher), scratch)
    nb = execute_notebook(scratch, tmp_path)
    lines = choice_lines(nb)
    assert not errors(nb)
    assert len(lines) == choose_calls(nb) and all(line.startswith(CHOICE + "your ") for line in lines), lines
    assert "✗" not in "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)


@pytest.mark.notebook
@pytest.mark.parametrize("path", WITH_PIECES, ids=[p.stem for p in WITH_PIECES])
def test_one_wrong_piece_goes_on_with_the_reference_for_it(path: Path, tmp_path: Path) -> None:
    name, wrong = WRONG_PIECES[path.stem]
    teacher, _ = classroom.teacher_notebook(nbformat.read(path, as_version=4), path.name)
    broken = with_wrong_piece(nbformat.from_dict(teacher), name, wrong)
    scratch = tmp_path / path.name
    nbformat.write(broken, scratch)
    nb = execute_notebook(scratch, tmp_path)
    lines = choice_lines(nb)
    assert not errors(nb), errors(nb)
    assert len(lines) == choose_calls(nb), lines
    wrong_lines = [line for line in lines if not line.startswith(CHOICE + "your ")]
    assert wrong_lines == [f"{CHOICE}the reference {name} (yours did not pass the check)"], lines
