"""Every notebook is placed and sized for a GPU by construction, checked on the CPU from its code.

Running a notebook on a CPU cannot show that its models would be on the GPU (there, DEVICE
*is* the CPU), so these tests read the code cells instead:

- every model a notebook makes (the course `GPT` and the classes a notebook writes,
  `transformers` models, the course's cached and pretrained models) is put on ``DEVICE``
  in the statement that makes it or later (``name.to(DEVICE)``), or a comment in that
  cell says why it stays on the CPU (a comment with the word "CPU");
- no notebook changes PyTorch's thread count for the rest of the session: a thread count
  is set for one block only, with ``course_lib.runtime.torch_threads(n)``.

``scripts/device_check.py`` runs the notebooks on a GPU, where the placement is then seen at
work (it fails on a device mismatch), and notebook 10's ladder is checked for compiling each
model shape at most once in tests/test_notebook_10.py.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = [p for pattern in ("[0-9][0-9]_*.ipynb", "A[0-9]_*.ipynb")
             for p in sorted((ROOT / "notebooks").glob(pattern))]

MODEL_MAKERS = {
    "GPT", "GPT2LMHeadModel", "LlamaForCausalLM", "AutoModelForCausalLM",  # constructors
    "from_hf", "from_pretrained", "to_hf", "load_gpt2", "load_course_model",  # conversions and loaders
    "cached_char_model", "cached_induction_model", "train_char_model", "train_induction_model",  # toys
}
"""Calls that make a model (a class a notebook derives from nn.Module or GPT is added per notebook)."""

CPU_NOTEBOOKS = {
    "00_welcome": "the environment check: one small tensor on DEVICE shows the device works",
    "01_tokenization": "tokenizers: no model, no tensor work",
    "02_data_and_embeddings": "datasets and one embedding table: nothing a GPU would speed up",
    "03_attention": "attention on a few tokens, printed and plotted: CPU-sized by design",
    "04_transformer_block": "one block on a few tokens, printed and plotted: CPU-sized by design",
    "A1_command_line": "runs the `course` commands, which pick the device themselves (--device)",
}
"""Notebooks whose work is too small for a GPU to matter, and why: their models are not checked."""


def _code(cell_source: str) -> str:
    """A cell's Python: IPython magics and shell lines become `pass` (same indentation, same line numbers)."""
    lines = cell_source.splitlines()
    return "\n".join(line[: len(line) - len(line.lstrip())] + "pass" if line.lstrip().startswith(("%", "!")) else line
                     for line in lines)


def _name(call: ast.Call) -> str:
    f = call.func
    return f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""


def _receiver(call: ast.Call) -> str:
    f = call.func
    return ast.unparse(f.value) if isinstance(f, ast.Attribute) else ""


def _module_classes(trees: list[ast.Module]) -> set[str]:
    """Classes the notebook defines on nn.Module, on the course GPT, or on another such class."""
    found: set[str] = set()
    changed = True
    while changed:
        changed = False
        for tree in trees:
            for node in ast.walk(tree):
                if isinstance(node, ast.ClassDef) and node.name not in found:
                    bases = {ast.unparse(b).split(".")[-1] for b in node.bases}
                    if bases & ({"Module", "GPT"} | found):
                        found.add(node.name)
                        changed = True
    return found


def _targets(stmt: ast.stmt) -> list[str]:
    if isinstance(stmt, ast.Assign):
        targets = stmt.targets
    elif isinstance(stmt, ast.AnnAssign):
        targets = [stmt.target]
    else:
        return []
    names: list[str] = []
    for t in targets:
        first = t.elts[0] if isinstance(t, ast.Tuple) and t.elts else t  # (model, tokenizer) = ...
        if isinstance(first, ast.Name):
            names.append(first.id)
    return names


def _moved_later(name: str, later: str) -> bool:
    """After the statement: `name.to(DEVICE)` (or `.to(device=DEVICE)`); `name` handed to a `Trainer`, which
    moves its model to its device (DEVICE, unless its config names another: then it says so); or `name`
    handed to a function together with DEVICE, as in notebook 06's ``train(model, ..., DEVICE)``."""
    n = re.escape(name)
    return re.search(rf"\b{n}(?:\.\w+\([^()]*\))*\.to\((?:device=)?DEVICE\b|\bTrainer\(\s*{n}\b"
                     rf"|\b\w+\(\s*{n}\b[^\n]*\bDEVICE\b", later) is not None


def _says_cpu(lines: list[str], first: int, last: int) -> bool:
    """A comment on the statement's lines (`first`..`last`, 1-based), or in the comment lines right above it,
    names the CPU: the notebook says why this model stays there."""
    said = [line.split("#", 1)[1] for line in lines[first - 1: last] if "#" in line]
    i = first - 2
    while i >= 0 and lines[i].lstrip().startswith("#"):
        said.append(lines[i])
        i -= 1
    return any("CPU" in comment for comment in said)


def unplaced_models(path: Path) -> list[str]:
    """Statements of notebook `path` that make a model left off DEVICE with no word on why."""
    nb = nbformat.read(path, as_version=4)
    cells = [_code(c.source) for c in nb.cells[1:] if c.cell_type == "code"]
    trees = [ast.parse(src) for src in cells]
    makers = MODEL_MAKERS | _module_classes(trees)
    problems = []
    for k, (src, tree) in enumerate(zip(cells, trees)):
        lines = src.splitlines()
        for stmt in ast.walk(tree):
            if not isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.Expr, ast.Return)):
                continue
            calls = [n for n in ast.walk(stmt) if isinstance(n, ast.Call) and _name(n) in makers
                     and "Tokenizer" not in _receiver(n) and "tok" not in _receiver(n).lower()]
            if not calls:
                continue
            text = "\n".join(lines[stmt.lineno - 1: stmt.end_lineno])
            if "DEVICE" in text or _says_cpu(lines, stmt.lineno, stmt.end_lineno):
                continue
            rest = "\n".join(lines[stmt.end_lineno:]) + "\n" + "\n".join(cells[k + 1:])
            if any(_moved_later(n, rest) for n in _targets(stmt)):
                continue
            problems.append(f"{path.name}, code cell {k + 1}, line {stmt.lineno}: {lines[stmt.lineno - 1].strip()}")
    return problems


@pytest.mark.parametrize("path", [p for p in NOTEBOOKS if p.stem not in CPU_NOTEBOOKS], ids=lambda p: p.stem)
def test_every_model_a_notebook_makes_is_on_device_or_says_why_not(path: Path) -> None:
    problems = unplaced_models(path)
    assert not problems, ("models made and never moved to DEVICE, with no comment saying why they stay on the "
                          "CPU:\n" + "\n".join(problems))


def test_the_cpu_notebooks_are_the_ones_listed() -> None:
    assert set(CPU_NOTEBOOKS) <= {p.stem for p in NOTEBOOKS}, "a notebook listed as CPU-sized is gone"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_notebook_changes_the_thread_count_for_the_whole_session(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    for k, cell in enumerate(c for c in nb.cells if c.cell_type == "code"):
        for node in ast.walk(ast.parse(_code(cell.source))):
            if isinstance(node, ast.Call) and _name(node) in ("set_num_threads", "set_num_interop_threads"):
                pytest.fail(f"{path.name}, code cell {k}: {ast.unparse(node)} changes the thread count for the rest "
                            "of the session; use `with course_lib.runtime.torch_threads(n):` around the block")


def test_the_checker_finds_an_unplaced_model_and_accepts_the_three_ways_out(tmp_path: Path) -> None:
    """The rule itself: a model never moved is found; moved later, placed at once, or explained, it is not."""
    cells = {
        "found": "model = GPT(cfg)\nmodel(x)\n# a comment on the CPU below it does not count\nx = 1",
        "moved later": "model = GPT(cfg)\nmodel.eval()\nmodel = model.to(DEVICE)",
        "placed at once": "m = Ablated(cfg).to(DEVICE).train()",
        "explained": "# the reference stays on the CPU: compared in fp32\nhf = GPT2LMHeadModel(config)",
        "explained at the end of the line": "hf = GPT2LMHeadModel(config)  # on the CPU: compared in fp32",
        "trained": "m = GPT(cfg)\ntrainer = Trainer(m, train_ids, val_ids, config)",
        "handed over with DEVICE": "m = GPT(cfg)\nhistory = train(m, train_ids, s, DEVICE)",
        "chained later": "lm, tok = pretrained.load_gpt2('gpt2')\nlm = lm.eval().to(DEVICE)",
        "subclass": "class Ablated(GPT):\n    pass\n\ndef make():\n    return Ablated(cfg)",
    }
    found = {}
    for name, source in cells.items():
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_code_cell("DEVICE = course_lib.setup()"), nbformat.v4.new_code_cell(source)]
        p = tmp_path / f"{name.replace(' ', '_')}.ipynb"
        nbformat.write(nb, p)
        found[name] = unplaced_models(p)
    assert len(found.pop("found")) == 1
    assert len(found.pop("subclass")) == 1  # a notebook's own nn.Module subclass counts as a model
    assert found == {name: [] for name in found}
