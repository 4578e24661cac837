"""Every notebook runs top to bottom in a real Jupyter kernel, offline, in two modes, and shows no
warning or log line of the libraries under it (`stack_noise`).

- fast mode (``COURSE_FAST=1``): small models, few steps, under a minute each;
- capped mode (``COURSE_CAPPED=1``): the sizes and settings of the default (full) mode that
  learners run, with training loops, repetitions and time budgets cut to a few steps
  (`course_lib.steps`), so a shape or configuration bug of the full mode fails here.

A failure names the notebook, the mode, the cell number and the cell's first line.
``python scripts/run_notebooks.py`` runs them in true full mode and prints each one's time.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest
from learner_pieces import CHOICE, choice_lines, choose_calls

from course_lib.notebook import SETUP_CELL, execute

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_GLOBS = ("[0-9][0-9]_*.ipynb", "A[0-9]_*.ipynb")  # the numbered course, then the appendices
NOTEBOOKS = [p for pattern in NOTEBOOK_GLOBS for p in sorted((ROOT / "notebooks").glob(pattern))]
NOTEBOOK_LIMIT_S = 120
CAPPED_LIMIT_S = 300


def _cached_models_08() -> None:
    from course_lib import toys
    from course_lib.data import load_corpus

    toys.cached_char_model(load_corpus(verbose=False), verbose=False)  # the corpus the kernel will load
    toys.cached_induction_model(verbose=False)


CACHED_MODELS = {"08_attention_visualization": _cached_models_08}
"""Models a notebook loads from the course (shipped in course_lib/assets/toys, so nothing trains; were a
default changed, they would train once here, before the clock starts, as scripts/train_toys.py does)."""


STACK_NOISE = re.compile(
    r"^\S*\.py:\d+: \w*Warning: "                      # a Python warning, as `warnings` prints it
    r"|^\s*warnings\.warn\("                          # ... and the source line it shows under it
    r"|^(USDT|STAGE|INFO|WARNING|ERROR):\d{4}-\d\d-\d\d"  # libkineto (torch.profiler), from C++
    r"|^\[[WIEF]\d{4} \d\d:\d\d:\d\d"                # PyTorch's C++ logging (c10)
    r"|^\[\w+\] (WARNING|ERROR) \|"                    # a Jupyter application's log
    r"|^\[(transformers|tokenizers|huggingface_hub|peft|torch)\b"  # libraries' own log prefixes
)
"""Lines that are a library's warning or log, not something the course wrote."""


def stack_noise(nb: nbformat.NotebookNode) -> list[str]:
    """Every output line of `nb` that is a warning or log line of the stack (`STACK_NOISE`), or a line on
    stderr that warns without being the course's ("course ...: warning: ..." is the course's way)."""
    found = []
    for k, cell in enumerate(c for c in nb.cells if c.cell_type == "code"):
        for out in cell.get("outputs", []):
            if out.get("output_type") != "stream":
                continue
            for line in out.get("text", "").splitlines():
                warns = out.get("name") == "stderr" and re.search(r"(?i)\bwarn", line) and not line.startswith("course")
                if STACK_NOISE.search(line) or warns:
                    found.append(f"code cell {k}: {line.strip()[:200]}")
    return found


def execute_notebook(path: Path, workdir: Path, limit_s: int = NOTEBOOK_LIMIT_S,
                     mode: str = "fast") -> nbformat.NotebookNode:
    """Execute `path` in a fresh kernel; raise AssertionError naming the failing cell."""
    if path.stem in CACHED_MODELS:
        CACHED_MODELS[path.stem]()
    nb, elapsed = execute(path, workdir, mode=mode, cell_timeout=limit_s)
    assert elapsed < limit_s, f"{path.name} took {elapsed:.0f} s in {mode} mode (limit {limit_s} s)"
    return nb


def assert_untouched_pieces_go_on_with_the_reference(nb, name: str) -> None:
    """Every stub as shipped: each choice line says the notebook goes on with the reference."""
    lines = choice_lines(nb)
    assert len(lines) == choose_calls(nb), f"{name}: {len(lines)} choice lines for {choose_calls(nb)} choose() calls"
    assert all(line.startswith(CHOICE + "the reference ") and line.endswith("(yours is not done yet)")
               for line in lines), f"{name}: {lines}"


def test_there_are_notebooks() -> None:
    assert NOTEBOOKS, "no notebooks found under notebooks/"
    assert NOTEBOOKS[0].name == "00_welcome.ipynb"
    assert any(p.name == "A1_command_line.ipynb" for p in NOTEBOOKS), "the appendix is not run"


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
    noise = stack_noise(nb)
    assert not noise, f"{path.name} (fast mode) shows lines the course did not write:\n" + "\n".join(noise)
    assert_untouched_pieces_go_on_with_the_reference(nb, path.name)


@pytest.mark.notebook
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_with_full_mode_sizes(path: Path, tmp_path: Path) -> None:
    """The default mode's shapes and settings, loops capped: what learners run, in seconds."""
    nb = execute_notebook(path, tmp_path, limit_s=CAPPED_LIMIT_S, mode="capped")
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
    text = "\n".join(
        o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "stream"
    )
    assert "capped (COURSE_CAPPED=1)" in text, "the setup cell did not see capped mode"
    noise = stack_noise(nb)
    assert not noise, f"{path.name} (capped mode) shows lines the course did not write:\n" + "\n".join(noise)
    assert_untouched_pieces_go_on_with_the_reference(nb, path.name)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_stored_clean_and_opens_with_the_setup_cell(path: Path) -> None:
    nb = json.loads(path.read_text(encoding="utf-8"))
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    dirty = [i for i, c in enumerate(code) if c.get("outputs") or c.get("execution_count")]
    assert not dirty, (f"{path.name}: code cells {dirty} carry outputs; "
                       f"run `python -m course_lib.notebook stamp {path.name}`")
    first = nb["cells"][0]
    assert first["cell_type"] == "code" and "".join(first["source"]) == SETUP_CELL, (
        f"{path.name}: the first cell is not the course setup cell; "
        "run `python -m course_lib.notebook stamp` on it"
    )
    md = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    for heading in ("Learning objectives", "Summary", "Exercises"):
        assert heading.lower() in md.lower(), f"{path.name}: no '{heading}' section"


def test_a_figure_a_cell_returns_is_drawn(tmp_path: Path) -> None:
    """The course's plots build figures without pyplot; the setup cell makes a kernel draw them."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(SETUP_CELL),
        nbformat.v4.new_code_cell(
            "from matplotlib.figure import Figure\nfig = Figure()\nfig.add_subplot().plot([1, 2])\nfig"),
    ]
    scratch = tmp_path / "zz_figure_for_test.ipynb"
    nbformat.write(nb, scratch)
    out = execute_notebook(scratch, tmp_path)
    data = [o.get("data", {}) for o in out.cells[1].outputs]
    assert any("image/png" in d for d in data), data


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



def test_a_notebook_kernel_starts_without_the_tcp_warning(tmp_path: Path) -> None:
    """Kernels talk over encrypted CurveZMQ where jupyter_client offers it (`notebook.kernel_encryption`):
    ipykernel's "running over TCP without encryption" warning, printed as every kernel starts, is not printed."""
    import subprocess
    import sys

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("print(6 * 7)")]
    scratch = tmp_path / "zz_kernel_for_test.ipynb"
    nbformat.write(nb, scratch)
    code = ("import sys\nfrom course_lib.notebook import execute\n"
            f"nb, _ = execute({str(scratch)!r}, {str(tmp_path)!r})\nprint(nb.cells[0].outputs[0]['text'])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "42"
    assert "without encryption" not in out.stderr and "WARNING" not in out.stderr, out.stderr[-2000:]


def test_stack_noise_finds_the_lines_the_course_did_not_write() -> None:
    """The filter itself, on the lines seen in notebooks before they were silenced, and on the course's own."""
    nb = nbformat.v4.new_notebook()
    noisy = [
        "USDT:2026-12-05 11:36:01 7656:7656 SyncActivityProfilerHandler.cpp:52] profiler_start",
        "/x/site-packages/IPython/core/pylabtools.py:158: UserWarning: Glyph 23 () missing from font(s) DejaVu Sans.",
        "/x/transformers/modeling_utils.py:3314: FutureWarning: `is_gradient_checkpointing` is deprecated",
        "  warnings.warn(",
        "[transformers] `loss_type=None` was set in the config but it is unrecognized.",
        "[W1205 11:36:01.123456 7656 init.cpp:123] Warning: something from C++",
    ]
    fine = ["course generate: warning: the model is barely trained", "step 10 | loss 2.31", "✓ same weights"]
    nb.cells = [nbformat.v4.new_code_cell("x", outputs=[
        nbformat.v4.new_output("stream", name="stderr", text="\n".join(noisy + fine[:1])),
        nbformat.v4.new_output("stream", name="stdout", text="\n".join(fine[1:])),
    ])]
    assert [line.split(": ", 1)[1] for line in stack_noise(nb)] == [n.strip() for n in noisy]
