"""Notebook conventions, defined once: the setup cell every notebook opens with.

The first cell of every notebook is `SETUP_CELL`, character for character (a test
checks it). On Colab it installs the course from `REPO_URL` with a plain
``%pip install``; locally it imports the installed package and, if that fails, says
how to install it.

``python -m course_lib.notebook stamp notebooks/*.ipynb`` rewrites the first cell of
each notebook to `SETUP_CELL` and strips outputs, so changing the cell is one edit
here plus one command.

Introduced in notebooks/00_welcome.ipynb.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO_URL = "https://github.com/gpt2-course/gpt2-course"
PIP_SPEC = f"gpt2-course @ git+{REPO_URL}.git"

SETUP_CELL = f'''# Course setup: this same cell opens every notebook, locally and on Colab.
import importlib.util
import sys

if "google.colab" in sys.modules and importlib.util.find_spec("course_lib") is None:
    %pip install -q "{PIP_SPEC}"
try:
    import course_lib
except ImportError:
    raise ImportError(
        "course_lib is not installed in this kernel. From the repository root run "
        "`make lab` (Windows: `py scripts\\\\bootstrap.py lab`), "
        "or `pip install -e .` in this environment."
    ) from None
DEVICE = course_lib.setup()'''


# The three ways a notebook runs (environment variables the setup cell reads).
MODES: dict[str, dict[str, str]] = {
    "fast": {"COURSE_FAST": "1", "COURSE_CAPPED": "0"},    # small models, few steps: < 1 min
    "capped": {"COURSE_FAST": "0", "COURSE_CAPPED": "1"},  # full-mode sizes, loops cut short
    "full": {"COURSE_FAST": "0", "COURSE_CAPPED": "0"},    # what learners run by default
}


class NotebookFailed(AssertionError):
    """A notebook cell raised or timed out; the message names the notebook, mode and cell."""


def kernel_encryption() -> bool:
    """True when kernels can talk to Jupyter over encrypted CurveZMQ here.

    ipykernel 7 warns "Kernel is running over TCP without encryption" in every kernel's log
    (the `make lab` terminal, Voilà's, a test run's) unless the kernel manager provisions
    CurveZMQ keys, which jupyter_client >= 8.8 does with ``transport_encryption="auto"`` for a
    kernelspec that declares support (ipykernel 7's does). Older versions, or a pyzmq built
    without Curve, keep the plain TCP of before, which they do not warn about.
    """
    try:
        import zmq
        from jupyter_client import KernelManager
    except ImportError:  # pragma: no cover - the course installs both
        return False
    return bool(zmq.has("curve")) and "transport_encryption" in KernelManager.class_trait_names()


def kernel_options() -> list[str]:
    """Command-line options for a Jupyter server (JupyterLab, Voilà) that start its kernels encrypted."""
    return ["--KernelManager.transport_encryption=auto"] if kernel_encryption() else []


def execute(path: str | Path, workdir: str | Path, mode: str = "fast",
            cell_timeout: int | None = 600) -> tuple[object, float]:
    """Run `path` top to bottom in a fresh kernel in `mode`; returns (notebook, seconds).

    Outputs stay in the returned notebook, never in the file. A failing cell raises
    `NotebookFailed` naming the notebook, the mode, the cell number and its first line.
    """
    import os
    import time

    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError

    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    env_backup = dict(os.environ)
    os.environ.update({**MODES[mode], "MPLBACKEND": "Agg", "PYDEVD_DISABLE_FILE_VALIDATION": "1"})
    from traitlets.config import Config

    # encrypted kernels: no "running over TCP without encryption" warning from ipykernel 7
    config = Config({"KernelManager": {"transport_encryption": "auto"}} if kernel_encryption() else {})
    client = NotebookClient(nb, timeout=cell_timeout, kernel_name="python3", config=config,
                            resources={"metadata": {"path": str(workdir)}})
    start = time.monotonic()
    try:
        client.execute()
    except (CellExecutionError, CellTimeoutError) as e:
        code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
        failing = next((i for i in reversed(code)
                        if any(o.get("output_type") == "error" for o in nb.cells[i].get("outputs", []))), None)
        if failing is None:  # a timeout leaves no error output: the cell after the last that started
            started = [i for i in code if nb.cells[i].get("execution_count")]
            failing = min(started[-1] + 1 if started else 0, len(nb.cells) - 1)
        lines = nb.cells[failing].source.strip().splitlines()
        summary = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
        raise NotebookFailed(
            f"{path.name} ({mode} mode): cell {failing} failed ({(lines or [''])[0]!r}): {summary}"
        ) from None
    finally:
        os.environ.clear()
        os.environ.update(env_backup)
    return nb, time.monotonic() - start


def clean(nb: dict) -> dict:
    """Strip outputs, execution counts and widget state from a notebook dict."""
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
        cell.get("metadata", {}).pop("execution", None)
    nb.get("metadata", {}).pop("widgets", None)
    return nb


def stamp(path: str | Path) -> bool:
    """Make `path`'s first cell the setup cell and strip outputs; True if it changed."""
    import nbformat

    p = Path(path)
    nb = nbformat.read(p, as_version=4)
    before = nbformat.writes(nb)
    if nb.cells and nb.cells[0].cell_type == "code" and "Course setup" in nb.cells[0].source:
        nb.cells[0].source = SETUP_CELL
    else:
        nb.cells.insert(0, nbformat.v4.new_code_cell(SETUP_CELL))
    clean(nb)
    after = nbformat.writes(nb)
    if after != before:
        p.write_text(after, encoding="utf-8")
        return True
    return False


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] != "stamp":
        print("usage: python -m course_lib.notebook stamp NOTEBOOK.ipynb ...", file=sys.stderr)
        return 2
    for name in argv[1:]:
        if stamp(name):
            print(f"stamped {name}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())


# The course map, defined once: notebook 00 renders it and a test keeps README.md in step.
# (file stem, title, what it builds, full-mode minutes measured on a 2-core CPU)
# Measured with `scripts/run_notebooks.py` (see README). The GPU column comes from `gpu_estimates`:
# estimated for a Colab T4 until `scripts/device_check.py` has measured it on a GPU.
COURSE_MAP: list[tuple[str, str, str, str]] = [
    ("00_welcome", "Welcome", "environment check, device, fast mode, how exercises work", "0.1"),
    ("01_tokenization", "Tokenization",
     "bytes → a byte-level BPE tokenizer written inline; exact tiktoken / GPT-2 parity",
     "0.2"),
    ("02_data_and_embeddings", "Data and embeddings",
     "a sliding-window dataset, documents joined by the end-of-text token, batches vs epochs, embeddings",
     "0.2"),
    ("03_attention", "Attention", "scaled dot-product, causal mask, multi-head", "0.3"),
    ("04_transformer_block", "The transformer block",
     "LayerNorm, GELU MLP, residuals, pre-LN block",
     "0.1"),
    ("05_gpt2_model", "GPT-2", "the full model, weight tying, HF weights in and out", "3.3"),
    ("06_training", "Training",
     "the training loop written inline, equal to the Trainer; AdamW, schedule, checkpoints, resume",
     "1.4"),
    ("07_decoding_strategies", "Decoding",
     "greedy, sampling, top-k/p, min-p, beam search; the KV cache written inline",
     "0.6"),
    ("08_attention_visualization", "Attention visualization",
     "attention explorer, bertviz (offline), induction heads, head ablation, logit lens",
     "0.4"),
    ("09_fine_tuning", "Fine-tuning",
     "LoRA on an instruction set (masked labels), full fine-tuning, memory, gradient checkpointing",
     "3.2"),
    ("10_scaling_up", "Scaling up on a GPU",
     "the speed-up ladder on GPT-2 124M (TF32, bf16/fp16, SDPA, compile, fused AdamW, padded vocab) with "
     "MFU; fine-tuning pretrained GPT-2 on Shakespeare; DDP",
     "0.4"),
    ("11_beyond_gpt2", "From GPT-2 to today's models",
     "RMSNorm, RoPE, SwiGLU, GQA as switches; a Llama verified against transformers",
     "1.4"),
    ("A1_command_line", "Appendix: your own data from the command line",
     "course expand / train-tokenizer / train / generate on data/train.txt; leakage-free augmentation",
     "0.1"),
]


def colab_url(stem: str) -> str:
    """The "Open in Colab" address of notebooks/<stem>.ipynb in the course repository."""
    path = REPO_URL.removeprefix("https://github.com/")
    return f"https://colab.research.google.com/github/{path}/blob/main/notebooks/{stem}.ipynb"


MAP_LINKS = ("readme", "notebooks", "colab")


def _minutes(measured: str) -> str:
    """A COURSE_MAP time as the map shows it: "16.7" -> "16.7 min"; words stay as they are."""
    try:
        float(measured)
    except ValueError:
        return measured
    return f"{measured} min"


def course_map_markdown(where: str = "readme") -> str:
    """The course map as a Markdown table (notebook 00 and README.md show it).

    Relative links resolve from the file that shows them, so `where` says which:
    ``"readme"`` (the repository root: ``notebooks/01_tokenization.ipynb``),
    ``"notebooks"`` (notebook 00 in JupyterLab: ``01_tokenization.ipynb``) or
    ``"colab"`` (notebook 00 on Colab, which opens no relative links: every title
    links to the notebook's Colab page). In a local JupyterLab the Colab badge, an image
    from colab.research.google.com, would show broken offline, so there it is a text link.
    The GPU column is `gpu_estimates.gpu_column`: estimated for a T4 until measured.
    """
    if where not in MAP_LINKS:
        from .errors import CourseInputError

        raise CourseInputError(f"course_map_markdown: where={where!r}; expected one of {', '.join(MAP_LINKS)}")
    from .gpu_estimates import gpu_column

    rows = [
        "| # | notebook | builds | CPU (2 cores) | GPU | |",
        "|---|---|---|---|---|---|",
    ]
    for stem, title, builds, cpu in COURSE_MAP:
        if where == "notebooks":  # a local JupyterLab may be offline: a text link, never a broken image
            badge = f"[open in Colab ↗]({colab_url(stem)})"
        else:
            badge = f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({colab_url(stem)})"
        link = {"readme": f"notebooks/{stem}.ipynb", "notebooks": f"{stem}.ipynb", "colab": colab_url(stem)}[where]
        rows.append(f"| {stem[:2]} | [{title}]({link}) | {builds} | {_minutes(cpu)} | {gpu_column(stem, cpu)} "
                    f"| {badge} |")
    return "\n".join(rows)
