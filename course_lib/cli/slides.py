"""`course slides`: give the notebooks RISE slide metadata from their headings.

    course slides                      # every notebook in notebooks/, in place
    course slides notebooks/03_attention.ipynb
    course slides --check              # exit 1 when a notebook lacks (current) slide metadata

A markdown cell starting with ``#``/``##`` starts a slide, ``###`` a sub-slide; code stays
on the slide of the text above it; text after code opens a sub-slide
(`course_lib.classroom.slide_types`). Only metadata changes: sources, ids and the file's
format stay as they are. Present with JupyterLab's RISE extension (`jupyterlab-rise`,
in the ``lab`` extra): open the notebook, then "Render as slides" (Alt-R).

Introduced for teachers (README, "Classroom mode").
"""

from __future__ import annotations

import argparse

from . import add_flag
from .teacher import notebook_paths

HELP = "set the notebooks' RISE slide metadata from their headings (--check: only report)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the command's flags."""
    parser.add_argument("notebooks", nargs="*", metavar="NOTEBOOK",
                        help="notebooks or folders (default: the course's notebooks/)")
    add_flag(parser, "--check", action="store_true",
             help="change nothing; exit 1 when a notebook's slide metadata is missing or stale")


def run(args: argparse.Namespace) -> int:
    """Apply (or check) the slide metadata of each notebook."""
    import nbformat

    from ..classroom import apply_slides, has_slides

    stale = []
    for path in notebook_paths(args.notebooks or None):
        nb = nbformat.read(path, as_version=4)
        if args.check:
            if not has_slides(nb):
                stale.append(path.name)
            continue
        if apply_slides(nb):
            path.write_text(nbformat.writes(nb), encoding="utf-8")
            print(f"{path.name}: slide metadata set")
        else:
            print(f"{path.name}: already up to date")
    if args.check:
        if stale:
            print(f"no current slide metadata in: {', '.join(stale)} (run `course slides`)")
            return 1
        print("every notebook carries its slide metadata")
    return 0
