"""`course demo attention|decoding|tokenizer`: one explorer, full screen, for a projector.

    course demo attention                 # opens the browser on the attention explorer
    course demo decoding --port 8870      # the decoding explorer on a fixed port
    course demo tokenizer --no-browser    # serve only (print the address)

Each demo is a one-cell notebook written to a temporary folder and served by Voilà
(`voila`, in the ``lab`` extra): Voilà runs it in a live kernel and shows only its output,
so the explorer is the whole page, with no code and no notebook to scroll, and every click
still runs Python. Voilà serves its own widget JavaScript, so the page works with no
network. `PROJECTOR_CSS` makes the fonts big; press F11 in the browser for full screen.

Models load at once: the course's own pretrained model ships in the package.

- attention: the course model (`pretrained.load_course_model`) on a passage of Tiny
  Shakespeare, in `AttentionExplorer(big=True)`; ``--model course|gpt2|DIR`` picks another;
- decoding: notebook 07's choice: GPT-2 when online (`pretrained.load_gpt2`), else the
  course model, in `DecodingExplorer`;
- tokenizer: characters, a 512-token BPE trained on the spot, and GPT-2's vocabulary
  (offline, `tokenizer.gpt2_tokenizer`), in `TokenizerPlayground`.

The notebook calls `explorer(kind, model, text)`, which tests call directly.

Introduced for teachers (README, "Classroom mode"); the explorers come from
notebooks/01_tokenization.ipynb, 07_decoding_strategies.ipynb and 08_attention_visualization.ipynb.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import webbrowser
from pathlib import Path
from typing import Any

from ..errors import CourseInputError
from ..notebook import kernel_options
from . import add_flag

HELP = "open one explorer (attention, decoding, tokenizer) full screen in the browser, for a projector"
DEMOS = ("attention", "decoding", "tokenizer")
MODELS = ("auto", "course", "gpt2")
ATTENTION_TEXT = "ROMEO:\nGood morrow, good lady. Good morrow, good lady."  # a repeat: induction heads show
TITLES = {"attention": "Attention: what each head looks at",
          "decoding": "Decoding: how the next token is chosen",
          "tokenizer": "Tokenization: text as token ids"}
TEMPLATE = "course-demo"  # Voilà's lab template without its CDN stylesheets
TEMPLATE_ROOT = Path(__file__).resolve().parent / "demo_template"  # holds voila/templates/course-demo
ZOOM = {"attention": 1.15, "decoding": 1.35, "tokenizer": 1.35}  # page zoom for a projector (--zoom)
PROJECTOR_CSS = """
body { zoom: ZOOM; }
h1.course-demo-title { font-family: sans-serif; font-size: 30px; margin: 6px 0 10px 0; }
.jp-OutputArea-output, .jp-Cell-outputWrapper { max-width: none !important; }
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the command's flags."""
    parser.add_argument("demo", metavar="DEMO", help=f"which explorer: {', '.join(DEMOS)}")
    add_flag(parser, "--port", type=int, default=8866, metavar="N", help="port on 127.0.0.1 (default 8866)")
    add_flag(parser, "--no_browser", action="store_true", help="only serve the page; print its address")
    add_flag(parser, "--model", default="auto", metavar="NAME",
             help="auto (default: the demo's usual model), course (the course's own pretrained model), gpt2 "
                  "(downloaded once, needs the internet then), or a model folder written by `course train`")
    add_flag(parser, "--text", default=None, metavar="TEXT", help="the text or prompt to start with")
    add_flag(parser, "--zoom", type=float, default=None, metavar="Z",
             help="page zoom for the projector, 0.5 .. 3 (default 1.15 for attention, 1.35 for the others)")


def check_args(demo: str, port: int, model: str, zoom: float | None = None) -> None:
    """Refuse bad input with one line naming the value and what is valid."""
    if zoom is not None and not 0.5 <= zoom <= 3:
        raise CourseInputError(f"--zoom {zoom} is outside 0.5 .. 3")
    if demo not in DEMOS:
        raise CourseInputError(f"DEMO {demo!r} is not one of {', '.join(DEMOS)}")
    if not 1 <= port <= 65535:
        raise CourseInputError(f"--port {port} is not a port number (1 .. 65535)")
    if model not in MODELS and not Path(model).is_dir():
        raise CourseInputError(f"--model {model!r} is not one of {', '.join(MODELS)} and not a folder")
    if demo == "tokenizer" and model != "auto":
        raise CourseInputError("--model: the tokenizer demo has no model; leave --model out")


# --------------------------------------------------------------------------- what the page shows
def _language_model(model: str) -> tuple[Any, Any]:
    from .. import pretrained, runtime

    if model == "course" or (model == "auto" and runtime.offline()):
        return pretrained.load_course_model()
    return pretrained.load_gpt2("gpt2" if model == "auto" else model)


def explorer(demo: str, model: str = "auto", text: str | None = None) -> Any:
    """The widget the demo page shows (an ipywidgets object with a ``_repr_mimebundle_``).

    Introduced for teachers (README, "Classroom mode").
    """
    check_args(demo, 8866, model)
    from .. import viz

    if demo == "attention":
        from .. import pretrained

        if model in ("auto", "course"):
            lm, tok = pretrained.load_course_model()
            text = text or ATTENTION_TEXT
        else:
            lm, tok = _language_model(model)
            text = text or "The cat sat on the mat. The cat sat on the mat."
        from .. import interp
        from ..tokenizer import encode_text

        roles = interp.head_roles(lm, encode_text(tok, text), period=24)
        best = interp.top_heads(roles, "previous_token", 1)[0]
        ex = viz.AttentionExplorer(lm, tok, text, roles=roles, big=True, layer=best.layer, head=best.head)
        ex.sort("previous_token")
        return ex
    if demo == "decoding":
        from .. import pretrained

        lm, tok = _language_model(model)
        prompt = text or pretrained.prompt_for(lm)
        return viz.DecodingExplorer(lm, tok, prompt=prompt, seed=0)
    from ..data import load_corpus
    from ..tokenizer import BPETokenizer, CharTokenizer, gpt2_tokenizer

    corpus = load_corpus(verbose=False)
    bpe = BPETokenizer.train(corpus[:100_000], 512)
    return viz.TokenizerPlayground(
        {"characters": CharTokenizer.train(corpus), "BPE 512 (trained now)": bpe, "GPT-2": gpt2_tokenizer()},
        text=text or "Wherefore art thou Romeo? It's 2024: naïve café, 日本語, 👩‍💻",
    )


def show(demo: str, model: str = "auto", text: str | None = None, zoom: float | None = None) -> Any:
    """Display the projector styles and the title, then return the explorer (the page's one cell)."""
    from IPython.display import HTML, display

    css = PROJECTOR_CSS.replace("ZOOM", str(zoom or ZOOM[demo]))
    display(HTML(f"<style>{css}</style><h1 class='course-demo-title'>{TITLES[demo]}</h1>"))
    said = io.StringIO()
    with contextlib.redirect_stdout(said):  # "trained once and loaded from ...": for the terminal
        widget = explorer(demo, model, text)
    print(said.getvalue(), end="", file=sys.__stderr__)
    inner = getattr(widget, "widget", None) or getattr(widget, "_widget", None)
    if hasattr(inner, "add_class"):
        inner.add_class("course-demo-explorer")  # one selector for the browser test
    return widget


def demo_notebook(demo: str, model: str = "auto", text: str | None = None, zoom: float | None = None) -> dict:
    """The one-cell notebook Voilà serves (nbformat 4 as a dict).

    Introduced for teachers (README, "Classroom mode").
    """
    check_args(demo, 8866, model, zoom)
    model_arg = model if model in MODELS else str(Path(model).resolve())
    source = ("from course_lib.cli import demo\n"
              f"demo.show({demo!r}, {model_arg!r}, {text!r}, {zoom!r})")
    return {
        "cells": [{"cell_type": "code", "execution_count": None, "id": "course-demo", "metadata": {},
                   "outputs": [], "source": source}],
        "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                     "language_info": {"name": "python"}},
        "nbformat": 4, "nbformat_minor": 5,
    }


# --------------------------------------------------------------------------- serving it
def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def voila_command(notebook: Path, port: int) -> list[str]:
    """The Voilà command line that serves `notebook` on 127.0.0.1:`port` with `TEMPLATE` (no browser)."""
    return [sys.executable, "-m", "voila", str(notebook), f"--port={port}", "--no-browser",
            "--Voila.ip=127.0.0.1", "--theme=light", "--strip_sources=True", f"--template={TEMPLATE}",
            "--VoilaExecutor.timeout=600", *kernel_options()]


def wait_until_up(port: int, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    """Return once something listens on 127.0.0.1:`port`; raise when `proc` dies or time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
            return
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(f"Voilà exited with status {proc.returncode} before serving port {port}") from None
            if time.monotonic() > deadline:
                raise RuntimeError(f"Voilà did not listen on port {port} within {timeout:.0f} s") from None
            time.sleep(0.3)


def run(args: argparse.Namespace) -> int:
    """Write the demo notebook, serve it with Voilà, open the browser, wait for Ctrl-C."""
    check_args(args.demo, args.port, args.model, args.zoom)
    if importlib.util.find_spec("voila") is None:
        print("course demo: Voilà is not installed; install the classroom tools with "
              "pip install 'gpt2-course[lab]' (or `make lab`)", file=sys.stderr)
        return 2
    if not _port_free(args.port):
        raise CourseInputError(f"--port {args.port} is already in use on 127.0.0.1; choose another port")
    folder = Path(tempfile.mkdtemp(prefix=f"course-demo-{args.demo}-"))
    notebook = folder / f"{args.demo}.ipynb"
    nb = demo_notebook(args.demo, args.model, args.text, args.zoom)
    notebook.write_text(json.dumps(nb, indent=1), encoding="utf-8")
    url = f"http://127.0.0.1:{args.port}/"
    env = {**os.environ, "JUPYTER_PATH": os.pathsep.join(
        p for p in (str(TEMPLATE_ROOT), os.environ.get("JUPYTER_PATH", "")) if p)}
    proc = subprocess.Popen(voila_command(notebook, args.port), cwd=folder, env=env)
    previous = _stop_on_sigterm()  # a terminated `course demo` stops its Voilà too (the finally below)
    try:
        wait_until_up(args.port, proc)
        print(f"course demo {args.demo}: serving {url} (Ctrl-C stops it). In the browser, F11 is full screen.",
              flush=True)
        if not args.no_browser:
            webbrowser.open(url)
        return proc.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(folder, ignore_errors=True)
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _stop_on_sigterm() -> Any:
    """Turn SIGTERM into KeyboardInterrupt (so cleanup runs); the previous handler, or None off the main thread."""

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    try:
        return signal.signal(signal.SIGTERM, stop)
    except ValueError:  # not the main thread
        return None
