"""Classroom mode: teacher's notebooks (`course teacher`) and slide metadata (`course slides`).

The teacher's tests work from the exercise convention (a stub that raises NotImplementedError,
passed to ``checks.check_<name>``), not from today's cell texts: every stub the notebooks hold
must come out solved, and two generated notebooks run in fast mode with every check passing.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nbformat
import pytest

from course_lib import classroom
from course_lib.cli import main

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def _sources(nb) -> list[tuple[int, str]]:
    return [(i, c.source) for i, c in enumerate(nb.cells) if c.cell_type == "code"]


# --------------------------------------------------------------------------- finding exercises
def test_find_stubs_follows_the_convention_not_the_cell_texts() -> None:
    cell = (
        "%time x = 1\n"
        "def my_new_thing(a, b):\n"
        "    '''a docstring'''\n"
        "    # your code here\n"
        "    raise NotImplementedError('soon')\n"
        "\n"
        "def helper(a):\n"
        "    raise NotImplementedError\n"
        "\n"
        "my_new_thing = checks.check_some_new_exercise(my_new_thing)\n"
        "print(helper)\n"
    )
    (stub,) = classroom.find_stubs(cell)
    got = (stub.name, stub.check, stub.first_line, stub.last_line, stub.kind)
    assert got == ("my_new_thing", "check_some_new_exercise", 2, 5, "function")
    assert classroom.find_stubs("def f(x):\n    return x\n\nf = check_f(f)\n") == []  # done already: not a stub
    assert classroom.find_stubs("def f(:\n") == []  # a cell that does not parse is left alone


def test_find_stubs_sees_class_pieces_and_checks_in_the_next_cell() -> None:
    stub_cell = (
        "class Mixer(nn.Module):\n"
        "    def __init__(self, n):\n"
        "        super().__init__()\n"
        "        self.w = nn.Linear(n, n)\n"
        "\n"
        "    def forward(self, x):\n"
        "        \"\"\"x: (B, n) -> (B, n)\"\"\"\n"
        "        raise NotImplementedError\n"
        "\n"
        "\n"
        "def mix(x):\n"
        "    raise NotImplementedError\n"
    )
    check_cell = "result = checks.check_mixer(Mixer)\nother = checks.check_mix(mix)\n"
    stubs = classroom.find_stubs(stub_cell, check_cell)
    assert [(s.name, s.check, s.first_line, s.last_line, s.kind) for s in stubs] == [
        ("Mixer", "check_mixer", 1, 8, "class"), ("mix", "check_mix", 11, 12, "function")]
    assert classroom.find_stubs(stub_cell) == []  # no check call: not a learner piece
    assert classroom.find_stubs(stub_cell, "print(Mixer)") == []


def test_a_class_piece_is_solved_with_the_reference_class_renamed() -> None:
    stub_cell = ("class CausalSelfAttention(nn.Module):\n"
                 "    def forward(self, x):\n"
                 "        raise NotImplementedError\n")
    new, solved = classroom.solve_cell(stub_cell, "result = checks.check_causal_self_attention(CausalSelfAttention)")
    assert solved == ["check_causal_self_attention"]
    assert "class CausalSelfAttention(nn.Module):" in new and "from torch import nn" in new
    assert "import" not in new.split("class ")[1]  # `attention` is the notebook's own piece: never imported
    assert "y = attention(q, k, v, self.attn_dropout)" in new


def test_an_unanswered_question_gets_its_right_letter_and_nothing_else_changes() -> None:
    from course_lib.checks import _core

    cell = ('course_lib.checks.answer("fast_mode", None)   # your letter\n'
            "checks.answer('cache_switch',None)\ncourse_lib.checks.answer(\"fast_mode\", \"a\")\n"
            'answer("no_such_question", None)\n')
    new, answered = classroom.solve_answers(cell)
    right = _core.QUESTIONS["fast_mode"].right
    assert answered == ["fast_mode", "cache_switch"]
    assert new.splitlines() == [f'course_lib.checks.answer("fast_mode", "{right}")   # your letter',
                                f"checks.answer('cache_switch', '{_core.QUESTIONS['cache_switch'].right}')",
                                'course_lib.checks.answer("fast_mode", "a")', 'answer("no_such_question", None)']


def test_a_reference_cell_is_the_solution_under_its_reference_name() -> None:
    text = classroom.reference_source("check_causal_attention", "reference_attention")
    first, rest = text.split("\n", 1)
    assert first == '# Reference — open after you tried. checks.solution("causal_attention") shows the same.'
    assert first.startswith(classroom.REFERENCE_MARK)
    assert "def reference_attention(q, k, v, dropout=None):" in rest and "import math" in rest
    assert "attention = " not in rest  # the word in the docstring is no recursive call
    nb = {"cells": [{"cell_type": "code", "metadata": {}, "source": first + "\ndef reference_attention(): pass\n"},
                    {"cell_type": "code", "metadata": {}, "source": "x = 1"}]}
    assert classroom.reference_cells(nb) == [(0, "causal_attention", "reference_attention")]
    assert classroom.refresh_reference_cells(nb) and not classroom.refresh_reference_cells(nb)
    assert nb["cells"][0]["source"] == text and nb["cells"][0]["metadata"]["jupyter"]["source_hidden"] is True


def test_solution_code_is_the_reference_renamed_with_its_imports() -> None:
    code = classroom.solution_code("check_sequence_loss", "my_loss")
    assert "def my_loss(" in code and "import torch.nn.functional as F" in code
    ns: dict = {}
    exec(code, ns)
    import torch
    import torch.nn.functional as F

    logits, ids = torch.randn(2, 5, 7), torch.randint(7, (2, 5))
    expected = torch.stack([F.cross_entropy(logits[b, :-1], ids[b, 1:]) for b in range(2)])
    assert torch.allclose(ns["my_loss"](logits, ids), expected)
    with pytest.raises(ValueError, match="check_no_such_exercise"):
        classroom.solution_code("check_no_such_exercise", "f")


CHECKS = sorted(n for n in dir(__import__("course_lib.checks", fromlist=["x"])) if n.startswith("check_"))


@pytest.mark.parametrize("check", CHECKS)
def test_every_solution_pasted_alone_passes_its_own_check(check: str) -> None:
    """What a teacher's notebook (and `checks.solution`) shows runs in a fresh namespace and passes:
    no relative import or private helper of course_lib.checks leaks into the shown code."""
    from course_lib import checks

    code = classroom.solution_code(check, "answer")
    assert "from ." not in code, code
    ns: dict = {}
    ex = classroom._exercise(check)
    for name in ex.given:  # a piece written earlier in the notebook: the notebook defines it
        ns[name] = getattr(__import__(ex.reference.__module__, fromlist=["x"]), name)
    exec(compile(code, f"<solution of {check}>", "exec"), ns)
    result = getattr(checks, check)(ns["answer"], quiet=True)
    assert result.passed, f"{check}: the shown solution fails its own check: {result.message}"


# --------------------------------------------------------------------------- course teacher
def test_course_teacher_solves_every_exercise_of_every_notebook(tmp_path: Path, capsys) -> None:
    out = tmp_path / "teacher"
    assert main(["teacher", str(out)]) == 0
    assert "teacher's notebook" in capsys.readouterr().out
    assert sorted(p.name for p in out.glob("*.ipynb")) == [p.name for p in NOTEBOOKS]
    total = 0
    for src in NOTEBOOKS:
        original = nbformat.read(src, as_version=4)
        teacher = nbformat.read(out / src.name, as_version=4)
        code = _sources(original)
        stubs = [(i, s) for (i, source), (_, after) in zip(code, code[1:] + [(None, "")])
                 for s in classroom.find_stubs(source, after)]
        total += len(stubs)
        questions = {i for i, source in code if classroom.solve_answers(source)[1]}
        solved = [c for c in teacher.cells if classroom.TEACHER_TAG in c.metadata.get("tags", [])]
        assert len(solved) == len({i for i, _ in stubs} | questions), src.name
        code = _sources(teacher)
        for (_, source), (_, after) in zip(code, code[1:] + [(None, "")]):
            assert classroom.find_stubs(source, after) == [], f"{src.name}: a stub is left:\n{source[:300]}"
        text = "\n".join(c.source for c in teacher.cells if c.cell_type == "code")
        for _, stub in stubs:
            keyword = "class" if stub.kind == "class" else "def"
            assert any(f"{keyword} {stub.name}(" in c.source or f"{keyword} {stub.name}:" in c.source
                       for c in solved), f"{src.name}: {stub.name} not solved"
            assert f"{stub.check}({stub.name}" in text, f"{src.name}: {stub.check} lost"
        assert "Teacher's version" in teacher.cells[1].source
        assert nbformat.read(src, as_version=4) == original  # the course's notebook is untouched
    assert total >= len(NOTEBOOKS), "the notebooks hold (at least) one exercise each"


def test_course_teacher_refuses_a_non_empty_out_dir(tmp_path: Path, capsys) -> None:
    out = tmp_path / "teacher"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    assert main(["teacher", str(out)]) == 2
    err = capsys.readouterr().err
    assert str(out) in err and "not empty" in err
    assert (out / "mine.txt").read_text() == "keep me" and len(list(out.iterdir())) == 1
    assert main(["teacher", str(tmp_path / "x"), "--notebooks", str(tmp_path / "nope.ipynb")]) == 2
    assert "--notebooks" in capsys.readouterr().err


@pytest.mark.notebook
@pytest.mark.slow
@pytest.mark.parametrize("name", ["00_welcome.ipynb"])  # notebooks with learner pieces: test_learner_pieces.py
def test_teacher_notebook_runs_and_every_check_passes(name: str, tmp_path: Path) -> None:
    from course_lib.notebook import execute

    out = tmp_path / "teacher"
    assert main(["teacher", str(out), "--notebooks", str(ROOT / "notebooks" / name)]) == 0
    nb, _ = execute(out / name, tmp_path, mode="fast")
    solved = [c for c in nb.cells if classroom.TEACHER_TAG in c.metadata.get("tags", [])]
    assert solved
    for cell in solved:
        text = "".join(o.get("text", "") for o in cell.outputs if o.get("output_type") == "stream")
        checks = [line for line in text.splitlines() if line[:1] in "✓✗…"]
        assert checks and all(line.startswith("✓") for line in checks), f"{name}: {checks or text[-500:]}"


# --------------------------------------------------------------------------- course slides
def _nb(*cells: tuple[str, str]) -> dict:
    return {"cells": [{"cell_type": t, "metadata": {}, "source": s, **({"outputs": [], "execution_count": None}
                                                                       if t == "code" else {})}
                      for t, s in cells], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


def test_slide_types_follow_the_headings() -> None:
    nb = _nb(("code", "# Course setup"), ("markdown", "# Title\nintro"), ("markdown", "text"),
             ("code", "x = 1"), ("markdown", "what x shows"), ("markdown", "## Section"), ("code", "y"),
             ("markdown", "### Detail"), ("code", "z"))
    assert classroom.slide_types(nb) == ["slide", "slide", "-", "-", "subslide", "slide", "-", "subslide", "-"]
    assert not classroom.has_slides(nb)
    assert classroom.apply_slides(nb) and not classroom.apply_slides(nb)  # idempotent
    assert classroom.has_slides(nb) and nb["metadata"]["rise"] == classroom.RISE_SETTINGS
    nb["cells"][2]["source"] = "## now a heading"
    assert not classroom.has_slides(nb)  # stale after an edit


def test_course_slides_changes_only_metadata(tmp_path: Path, capsys) -> None:
    work = tmp_path / "nbs"
    shutil.copytree(ROOT / "notebooks", work, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    before = {p.name: json.loads(p.read_text(encoding="utf-8")) for p in work.glob("*.ipynb")}
    assert main(["slides", str(work)]) == 0
    assert main(["slides", "--check", str(work)]) == 0
    assert "every notebook" in capsys.readouterr().out
    for p in work.glob("*.ipynb"):
        after = json.loads(p.read_text(encoding="utf-8"))
        old = before[p.name]
        assert [(c["cell_type"], c["source"], c.get("id")) for c in after["cells"]] == \
               [(c["cell_type"], c["source"], c.get("id")) for c in old["cells"]]
        assert all("slideshow" in c["metadata"] for c in after["cells"])
    assert main(["slides", "--check", str(work / "nope.txt")]) == 2


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_carries_slide_metadata(path: Path) -> None:
    assert classroom.has_slides(nbformat.read(path, as_version=4)), f"run `course slides {path.name}`"
