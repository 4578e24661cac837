"""`course teacher OUT_DIR`: the teacher's version of every notebook, exercises solved.

    course teacher teacher_notebooks/                  # every notebook in notebooks/
    course teacher out/ --notebooks notebooks/03_attention.ipynb

Generated from the same notebooks each time (`course_lib.classroom.teacher_notebook`),
never stored as a second copy: each exercise stub is replaced by the reference solution
that ``course_lib.checks.solution(name)`` shows. An existing non-empty OUT_DIR is refused
unless ``--overwrite``.

Introduced for teachers (README, "Classroom mode").
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import CourseInputError
from . import add_flag

HELP = "write the teacher's version of the notebooks (exercises solved) into OUT_DIR"
NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the command's flags."""
    parser.add_argument("out_dir", metavar="OUT_DIR", help="a new or empty folder for the teacher's notebooks")
    add_flag(parser, "--notebooks", nargs="+", metavar="PATH", default=None,
             help="notebooks (or folders of them) to convert (default: the course's notebooks/)")
    add_flag(parser, "--overwrite", action="store_true", help="replace what OUT_DIR holds")


def notebook_paths(given: list[str] | None) -> list[Path]:
    """The .ipynb files named (folders expanded, sorted), or the course's notebooks/."""
    if not given:
        if not NOTEBOOKS.is_dir():
            raise CourseInputError(f"--notebooks: no notebooks/ folder at {NOTEBOOKS}; name the notebooks")
        given = [str(NOTEBOOKS)]
    paths: list[Path] = []
    for g in given:
        p = Path(g)
        if p.is_dir():
            paths += sorted(p.glob("*.ipynb"))
        elif p.suffix == ".ipynb" and p.is_file():
            paths.append(p)
        else:
            raise CourseInputError(f"--notebooks: {g} is not a notebook (.ipynb) or a folder of them")
    if not paths:
        raise CourseInputError(f"--notebooks: no .ipynb files in {', '.join(given)}")
    return paths


def run(args: argparse.Namespace) -> int:
    """Write the teacher's notebooks and say how many exercises each has solved."""
    from ..classroom import write_teacher_notebooks

    report = write_teacher_notebooks(notebook_paths(args.notebooks), args.out_dir, overwrite=args.overwrite)
    for name, solved in report.items():
        print(f"{name}: {len(solved)} exercise(s) solved")
    print(f"wrote {len(report)} teacher's notebook(s) to {args.out_dir}")
    return 0
