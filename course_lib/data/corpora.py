"""Corpora: Tiny Shakespeare (downloaded once, sha256-verified, cached), the offline
corpus (Python's own prose, no network), your own file; and reading a file's lines.

Introduced in notebooks/02_data_and_embeddings.ipynb.
"""

from __future__ import annotations

import ast
import codecs
import hashlib
import importlib.util
import os
import re
import sys
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

from .. import runtime
from ..errors import CourseInputError
from ..io import read_text, write_atomic

DEFAULT_CORPUS = "default"
"""What every notebook loads: Tiny Shakespeare when cached or downloadable, else the offline corpus."""

CORPORA = ("default", "shakespeare", "offline")

SHAKESPEARE_URL = (
    "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
)
SHAKESPEARE_SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"
SHAKESPEARE_BYTES = 1_115_394
SHAKESPEARE_FILE = "tinyshakespeare.txt"
SHAKESPEARE_ENV = "COURSE_SHAKESPEARE"
DOWNLOAD_TIMEOUT_S = 10.0


def _say(msg: str, verbose: bool) -> None:
    if verbose:
        print(msg)


def _shakespeare_ok(data: bytes) -> bool:
    return len(data) == SHAKESPEARE_BYTES and hashlib.sha256(data).hexdigest() == SHAKESPEARE_SHA256


def _download(url: str, timeout: float) -> bytes:
    """Fetch `url` (separate so tests can replace it)."""
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - fixed https URL
        return response.read()


def _find_shakespeare(allow_download: bool) -> tuple[str | None, str]:
    """(text or None, one phrase saying where it came from or why it is missing)."""
    env = os.environ.get(SHAKESPEARE_ENV, "").strip()
    if env:
        p = Path(env).expanduser()
        if not p.is_file():
            raise CourseInputError(f"{SHAKESPEARE_ENV}={env}: file not found")
        data = p.read_bytes()
        if not _shakespeare_ok(data):
            raise CourseInputError(
                f"{SHAKESPEARE_ENV}={env}: this is not Tiny Shakespeare ({len(data):,} bytes; expected "
                f"{SHAKESPEARE_BYTES:,} bytes with sha256 {SHAKESPEARE_SHA256[:12]}...)"
            )
        return data.decode("utf-8"), f"from {p} ({SHAKESPEARE_ENV})"

    cached = runtime.data_dir() / SHAKESPEARE_FILE
    stale = ""
    if cached.is_file():
        data = cached.read_bytes()
        if _shakespeare_ok(data):
            return data.decode("utf-8"), f"cached at {cached}"
        stale = f"the cached copy at {cached} failed the sha256 check; "

    if not allow_download:
        return None, f"{stale}offline mode (COURSE_OFFLINE=1 or HF_HUB_OFFLINE=1) and no cached copy in {cached.parent}"
    try:
        data = _download(SHAKESPEARE_URL, DOWNLOAD_TIMEOUT_S)
    except Exception as e:  # noqa: BLE001 - any network failure means: fall back
        return None, f"{stale}download failed ({type(e).__name__}: {e})"
    if not _shakespeare_ok(data):
        return None, (
            f"{stale}the download did not match the expected size/sha256 "
            f"({len(data):,} bytes, sha256 {hashlib.sha256(data).hexdigest()[:12]}...)"
        )
    write_atomic(cached, data)
    return data.decode("utf-8"), f"downloaded from {SHAKESPEARE_URL}, sha256 verified, cached at {cached}"


def _zen_of_python() -> str:
    """The Zen of Python, read from the `this` module's source (importing it would print it)."""
    spec = importlib.util.find_spec("this")
    if spec is None or not spec.origin or not Path(spec.origin).is_file():
        return ""
    tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.targets[0], ast.Name)
            and node.targets[0].id == "s"
            and isinstance(node.value, ast.Constant)
        ):
            return codecs.decode(node.value.value, "rot13").strip()
    return ""


def _prose_paragraphs(text: str, min_words: int = 8) -> list[str]:
    """Paragraphs of running prose: no indented code, no heading underlines, no fragments."""
    out = []
    for para in re.split(r"\n[ \t]*\n", text):
        lines = [ln.rstrip() for ln in para.strip("\n").split("\n")]
        if not lines or any(ln.startswith((" ", "\t", ">>>")) for ln in lines):
            continue
        if re.fullmatch(r"[*=\-~^#+]{3,}", lines[-1].strip() or "x"):
            continue
        if len(para.split()) < min_words:
            continue
        out.append("\n".join(lines))
    return out


def _reference_topics() -> list[str]:
    """Prose from ``pydoc_data.topics``: the Python Language Reference as shipped with Python."""
    try:
        from pydoc_data.topics import topics
    except ImportError:  # pragma: no cover - stripped-down Python builds
        return []
    paras: list[str] = []
    for key in sorted(topics):
        paras.extend(_prose_paragraphs(topics[key]))
    return paras


def _stdlib_docstrings(limit_chars: int) -> list[str]:
    """Module docstrings of the standard library, parsed (not imported) in sorted order."""
    import sysconfig

    root = Path(sysconfig.get_paths()["stdlib"])
    paras: list[str] = []
    total = 0
    for path in sorted(root.glob("*.py")):
        try:
            doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
        except (SyntaxError, UnicodeDecodeError, ValueError):  # pragma: no cover
            continue
        for para in _prose_paragraphs(doc or ""):
            paras.append(para)
            total += len(para)
        if total >= limit_chars:
            break
    return paras


_OFFLINE_CACHE: dict[str, str] = {}


def offline_corpus() -> str:
    """The corpus that needs no network: prose that ships with Python itself.

    The Zen of Python (the `this` module) followed by the prose paragraphs of the Python
    Language Reference topics in ``pydoc_data.topics`` (what ``help("if")`` shows), in
    sorted topic order, with code samples and headings removed. About 230,000
    characters on Python 3.11; identical on every machine with the same Python version.
    If a Python build lacks ``pydoc_data``, standard-library module docstrings are added
    until the corpus is over 150,000 characters. PSF license (see data/README.md).
    """
    key = sys.version
    if key not in _OFFLINE_CACHE:
        paras = [z] if (z := _zen_of_python()) else []
        paras += _reference_topics()
        total = sum(len(p) for p in paras)
        if total < 150_000:
            paras += _stdlib_docstrings(150_000 - total)
        _OFFLINE_CACHE[key] = "\n\n".join(paras) + "\n"
    return _OFFLINE_CACHE[key]


def load_corpus(name_or_path: str | os.PathLike = DEFAULT_CORPUS, *, verbose: bool = True) -> str:
    """Return a corpus as one string and print one line saying which one and why.

    - ``"default"`` (`DEFAULT_CORPUS`): Tiny Shakespeare when it can be had (the
      ``COURSE_SHAKESPEARE`` file, a verified copy in `runtime.data_dir()`, or a download
      with a 10 s timeout unless `runtime.offline()`), else the offline corpus.
    - ``"shakespeare"``: Tiny Shakespeare, or a `CourseInputError` saying why it is unavailable.
    - ``"offline"``: `offline_corpus()`, no network at all.
    - anything else: a path to your own UTF-8 text file.
    """
    name = os.fspath(name_or_path)
    key = name.strip().lower()
    if key == "offline":
        text = offline_corpus()
        _say(f"corpus: offline Python reference prose ({len(text):,} characters), as asked", verbose)
        return text
    if key in ("default", "shakespeare"):
        text, why = _find_shakespeare(allow_download=not runtime.offline())
        if text is not None:
            _say(f"corpus: Tiny Shakespeare ({len(text):,} characters), {why}", verbose)
            return text
        if key == "shakespeare":
            raise CourseInputError(
                f"corpus 'shakespeare' is not available: {why}. Set {SHAKESPEARE_ENV} to a copy of "
                f"{SHAKESPEARE_URL}, put it at {runtime.data_dir() / SHAKESPEARE_FILE}, "
                "or use load_corpus('offline')"
            )
        text = offline_corpus()
        _say(
            f"corpus: offline Python reference prose ({len(text):,} characters); "
            f"Tiny Shakespeare not used: {why}",
            verbose,
        )
        return text
    path = Path(name).expanduser()
    if not path.exists():
        raise CourseInputError(
            f"corpus {name!r}: no such file, and not one of the corpus names {', '.join(CORPORA)}"
        )
    text = read_text(path, flag="corpus")
    _say(f"corpus: {path} ({len(text):,} characters)", verbose)
    return text


def corpus_stats(text: str, top: int = 10) -> dict[str, Any]:
    """Characters, lines, words, distinct characters and the most common characters of `text`."""
    counts = Counter(text)
    return {
        "characters": len(text),
        "bytes_utf8": len(text.encode("utf-8")),
        "lines": text.count("\n") + (0 if text.endswith("\n") or not text else 1),
        "words": len(text.split()),
        "distinct_characters": len(counts),
        "most_common": counts.most_common(top),
    }


def read_lines(path: str | os.PathLike, flag: str = "--in_txt") -> tuple[list[str], int]:
    """The non-blank lines of a UTF-8 file and how many blank lines were skipped."""
    text = read_text(path, flag=flag)
    raw = text.splitlines()
    kept = [ln.strip() for ln in raw if ln.strip()]
    if not kept:
        raise CourseInputError(f"{flag}: {path} has no non-blank lines")
    return kept, len(raw) - len(kept)
