"""Text in, batches out: corpora, the augmentation step, splits, token windows and batches.

The pieces, in the order the data flows::

    load_corpus(name_or_path) -> str            Tiny Shakespeare, the offline corpus, or your file
    expand_lines(lines, target, seed)           the original project's expand_train.py, done carefully
    train_val_split(data, val_fraction)         contiguous for text/ids, duplicate-aware for lines
    encode_corpus(text, tokenizer, cache_dir)   ids as a cached .npy (uint16 when the vocabulary fits)
    TokenDataset(ids, seq_len)                  windows of seq_len + 1 tokens: x = w[:-1], y = w[1:]
    make_loader(dataset, batch_size, ...)       a seeded torch DataLoader; get_batch() samples at random

References:
- A. Karpathy, char-rnn (2015), source of the Tiny Shakespeare file
  (https://github.com/karpathy/char-rnn, data/tinyshakespeare/input.txt).
- A. Karpathy, minGPT ``CharDataset`` and nanoGPT ``get_batch``: the x/y shift by one token.
- Wei & Zou, "EDA: Easy Data Augmentation Techniques" (2019): word deletion and swaps,
  the spirit of `expand_lines`' operations.

Introduced in notebooks/02_data_and_embeddings.ipynb.
"""

from __future__ import annotations

import ast
import codecs
import hashlib
import importlib.util
import os
import pickle
import random
import re
import string
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from . import runtime
from .errors import CourseInputError
from .io import read_text, write_atomic

__all__ = [
    "DEFAULT_CORPUS",
    "CORPORA",
    "SHAKESPEARE_URL",
    "SHAKESPEARE_SHA256",
    "SHAKESPEARE_BYTES",
    "load_corpus",
    "offline_corpus",
    "corpus_stats",
    "ExpandReport",
    "expand_lines",
    "read_lines",
    "train_val_split",
    "vocab_size_of",
    "encode_corpus",
    "TokenDataset",
    "make_loader",
    "get_batch",
]

# --------------------------------------------------------------------------- corpora

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

    Introduced in notebooks/02_data_and_embeddings.ipynb.
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

    Introduced in notebooks/02_data_and_embeddings.ipynb.
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
    """Characters, lines, words, distinct characters and the most common characters of `text`.

    Introduced in notebooks/02_data_and_embeddings.ipynb.
    """
    counts = Counter(text)
    return {
        "characters": len(text),
        "bytes_utf8": len(text.encode("utf-8")),
        "lines": text.count("\n") + (0 if text.endswith("\n") or not text else 1),
        "words": len(text.split()),
        "distinct_characters": len(counts),
        "most_common": counts.most_common(top),
    }


# --------------------------------------------------------------------------- augmentation

_CONJUNCTIONS = frozenset(
    "and but or so yet because while when although though since until after before "
    "which who where if unless".split()
)
_CLAUSE_PUNCT = ",;:"
_STRIP = string.punctuation + "“”‘’«»—–"


@dataclass
class ExpandReport:
    """What `expand_lines` did. ``originals + new + repeats == target`` always holds.

    - originals: input lines copied through unchanged (all of them).
    - new: made lines that differ from every input line and every earlier output line.
    - repeats: made lines that are exact copies of a line already there (only when no
      new line could be found in `max_tries` attempts, e.g. for one-word inputs).
    - operations: how many new lines each operation made.
    - exhausted_at: None, or the number of lines there were when every operation had
      been retired (no operation could make a new line any more); every line after it
      is an exact repeat.
    - parents: for each output line, the indices of the input lines it came from.
    """

    target: int
    originals: int
    new: int
    repeats: int
    operations: dict[str, int] = field(default_factory=dict)
    input_duplicates: int = 0
    forbidden_hits: int = 0
    seed: int = 0
    exhausted_at: int | None = None
    parents: list[tuple[int, ...]] = field(default_factory=list, repr=False)

    def summary(self) -> str:
        """One line with the counts."""
        ops = ", ".join(f"{k} {v:,}" for k, v in self.operations.items())
        s = (
            f"{self.target:,} lines = {self.originals:,} originals + {self.new:,} new "
            f"+ {self.repeats:,} exact repeats (seed {self.seed}; new by operation: {ops or 'none'})"
        )
        if self.input_duplicates:
            s += f"; the input itself had {self.input_duplicates:,} duplicate lines"
        if self.exhausted_at is not None and self.exhausted_at < self.target:
            s += (
                f"; no operation could make a new line after {self.exhausted_at:,} lines, so the other "
                f"{self.target - self.exhausted_at:,} are exact repeats (the input has too little variety "
                "for the operations: few clauses, 'the <noun>' phrases or droppable words)"
            )
        return s


def _words(line: str) -> list[str]:
    return line.split()


def _core(word: str) -> str:
    return word.strip(_STRIP).lower()


_STARTERS = frozenset(
    "the a an we he she they it i you our his her their my nobody everyone someone every "
    "then there this that its".split()
)
# Words that can usually go without breaking the sentence (drop_word removes only these).
_DROPPABLE = frozenset(
    "very old little small big long whole still just quietly slowly all always never even "
    "only suddenly finally again once bright warm cold quiet young thin heavy".split()
)


def _boundaries(words: list[str]) -> tuple[list[int], list[int]]:
    """Where a new clause starts; index = first word of the tail.

    (after ``,;:`` and before a clause opener such as "the" or "she",
    before a conjunction that is followed by a clause opener).
    """
    punct = [
        i for i in range(2, len(words) - 2)
        if words[i - 1][-1] in _CLAUSE_PUNCT and _core(words[i]) in _STARTERS
    ]
    conj = [
        i for i in range(2, len(words) - 2)
        if _core(words[i]) in _CONJUNCTIONS and words[i].isalpha() and _core(words[i + 1]) in _STARTERS
        and words[i - 1][-1] not in _CLAUSE_PUNCT
    ]
    return punct, conj


def _op_recombine(rng: random.Random, lines: list[list[str]], bounds: list, cands: dict) -> tuple[str, tuple[int, ...]] | None:
    """The first clause of one line + the rest of another, joined at the same kind of boundary."""
    kind = rng.choice(("punct", "conj"))
    k = 0 if kind == "punct" else 1
    pool = cands[kind]
    if len(pool) < 2:
        return None
    a, b = rng.choice(pool), rng.choice(pool)
    if a == b:
        return None
    i = rng.choice(bounds[a][k])
    j = rng.choice(bounds[b][k])
    return " ".join(lines[a][:i] + lines[b][j:]), (a, b)


def _op_drop(rng: random.Random, lines: list[list[str]], bounds: list, cands: dict) -> tuple[str, tuple[int, ...]] | None:
    """Remove one inner modifier ("old", "little", "quietly", ...)."""
    if not cands["drop"]:
        return None
    a = rng.choice(cands["drop"])
    w = list(lines[a])
    i = rng.choice([i for i in range(1, len(w) - 1) if w[i].isalpha() and w[i].lower() in _DROPPABLE])
    del w[i]
    return " ".join(w), (a,)


def _op_swap(rng: random.Random, lines: list[list[str]], bounds: list, cands: dict) -> tuple[str, tuple[int, ...]] | None:
    """Swap the two words around "and"/"or" at the end of a phrase: "bread and cheese," -> "cheese and bread,"."""
    if not cands["swap"]:
        return None
    a = rng.choice(cands["swap"])
    w = list(lines[a])
    i = rng.choice(_swap_points(w))
    left, right = w[i - 1], w[i + 1]
    core_r = right.rstrip(_STRIP)
    tail = right[len(core_r):]
    w[i - 1], w[i + 1] = core_r, left + tail
    return " ".join(w), (a,)


_DETERMINERS = frozenset("the his her our my their".split())
_NOT_NOUNS = _STARTERS | _CONJUNCTIONS | _DROPPABLE
_AFTER_NOUN = frozenset(
    "of in on at from to with by for into over under across along beside behind near".split()
) | _CONJUNCTIONS


def _noun_slots(w: list[str]) -> list[int]:
    """Indices of likely nouns: after "the"/"his"/..., before punctuation, a preposition or the end."""
    out = []
    for i in range(1, len(w)):
        word = w[i]
        core = word.rstrip(_STRIP)
        if not (core.isalpha() and core.islower() and len(core) > 2):
            continue
        if w[i - 1].lower() not in _DETERMINERS or core in _NOT_NOUNS:
            continue
        ends_phrase = core != word or i + 1 == len(w) or w[i + 1].lower() in _AFTER_NOUN
        if ends_phrase:
            out.append(i)
    return out


def _plural(noun: str) -> bool:
    return noun.endswith("s") and not noun.endswith("ss")


def _op_replace_noun(rng: random.Random, lines: list[list[str]], bounds: list, cands: dict) -> tuple[str, tuple[int, ...]] | None:
    """Put a noun from another line in place of one noun: "the harbour" -> "the orchard"."""
    if len(cands["noun"]) < 2:
        return None
    a, b = rng.choice(cands["noun"]), rng.choice(cands["noun"])
    if a == b:
        return None
    w = list(lines[a])
    i = rng.choice(cands["noun_slots"][a])
    core = w[i].rstrip(_STRIP)
    donors = [lines[b][j].rstrip(_STRIP) for j in cands["noun_slots"][b]]
    donors = [d for d in donors if _plural(d) == _plural(core) and d != core]
    if not donors:
        return None
    w[i] = rng.choice(donors) + w[i][len(core):]
    return " ".join(w), (a, b)


def _op_recombine_replace(rng: random.Random, lines: list[list[str]], bounds: list, cands: dict) -> tuple[str, tuple[int, ...]] | None:
    """`recombine`, then `replace_noun` on the result: many more lines, each further from real text."""
    made = _op_recombine(rng, lines, bounds, cands)
    if made is None or len(cands["noun"]) < 1:
        return None
    w = made[0].split()
    slots = _noun_slots(w)
    c = rng.choice(cands["noun"])
    if not slots:
        return None
    i = rng.choice(slots)
    core = w[i].rstrip(_STRIP)
    donors = [lines[c][j].rstrip(_STRIP) for j in cands["noun_slots"][c]]
    donors = [d for d in donors if _plural(d) == _plural(core) and d != core]
    if not donors:
        return None
    w[i] = rng.choice(donors) + w[i][len(core):]
    return " ".join(w), (*made[1], c)


def _swap_points(w: list[str]) -> list[int]:
    return [
        i for i in range(2, len(w) - 1)
        if w[i] in ("and", "or") and w[i - 1].isalpha() and w[i - 1].islower()
        and w[i + 1].rstrip(_STRIP).isalpha() and w[i + 1].islower()
        and (i + 2 == len(w) or w[i + 1][-1] in _CLAUSE_PUNCT + ".!?")
        and _core(w[i - 1]) not in _NOT_NOUNS
        and _core(w[i + 1]) not in _NOT_NOUNS
    ]


_OPERATIONS = (
    ("recombine", 0.4, _op_recombine),
    ("replace_noun", 0.3, _op_replace_noun),
    ("recombine+replace_noun", 0.1, _op_recombine_replace),
    ("drop_word", 0.1, _op_drop),
    ("swap_words", 0.1, _op_swap),
)


def expand_lines(
    lines: Sequence[str],
    target: int,
    seed: int = 0,
    *,
    forbidden: Iterable[str] = (),
    shuffle: bool = True,
    max_tries: int = 30,
    retire_after: int = 300,
) -> tuple[list[str], ExpandReport]:
    """Grow one-example-per-line data to exactly `target` lines.

    Every input line is kept; the rest are made by operations chosen to keep text
    plausible: ``recombine`` (the first clause of one line + the rest of another, split
    at a comma/semicolon/colon or before a conjunction), ``replace_noun`` (a noun from
    another line), both in turn, ``drop_word`` (remove one inner modifier) and
    ``swap_words`` ("bread and cheese" -> "cheese and bread"). A made line
    that already exists, or is in `forbidden` (pass the validation lines), is retried;
    after `max_tries` misses an original is repeated and counted as a repeat, and an
    operation that misses `retire_after` times in a row is retired. Once every
    operation is retired, the rest of `target` is filled with exact repeats of
    originals and ``report.exhausted_at`` says after how many lines. The same
    seed gives the same output (`random.Random(seed)`, no set or hash order involved).
    With `shuffle`, originals and made lines are mixed in a seeded order.

    Returns ``(lines, report)``; see `ExpandReport`.

    Introduced in notebooks/02_data_and_embeddings.ipynb.
    """
    src = [str(s).rstrip("\r\n") for s in lines]
    if any("\n" in s for s in src):
        raise CourseInputError("expand_lines: each line must be a single line (one contains a newline)")
    if not src:
        raise CourseInputError("expand_lines: no input lines (need at least one non-empty line)")
    if isinstance(target, bool) or not isinstance(target, int):
        raise CourseInputError(f"target: expected a whole number of lines, got {target!r}")
    if target < len(src):
        raise CourseInputError(
            f"target={target:,} is smaller than the {len(src):,} input lines; expansion only adds "
            f"lines, so use a target of at least {len(src):,}"
        )
    rng = random.Random(seed)
    words = [_words(s) for s in src]
    bounds = [_boundaries(w) for w in words]
    cands = {
        "punct": [i for i, b in enumerate(bounds) if b[0]],
        "conj": [i for i, b in enumerate(bounds) if b[1]],
        "drop": [i for i, w in enumerate(words)
                 if any(x.isalpha() and x.lower() in _DROPPABLE for x in w[1:-1])],
        "swap": [i for i, w in enumerate(words) if _swap_points(w)],
        "noun_slots": [_noun_slots(w) for w in words],
    }
    cands["noun"] = [i for i, slots in enumerate(cands["noun_slots"]) if slots]
    seen = set(src)
    banned = set(forbidden)
    out = list(src)
    parents: list[tuple[int, ...]] = [(i,) for i in range(len(src))]
    ops: dict[str, int] = {name: 0 for name, _, _ in _OPERATIONS}
    names = [o[0] for o in _OPERATIONS]
    weights = [o[1] for o in _OPERATIONS]
    fns = {o[0]: o[2] for o in _OPERATIONS}
    new = repeats = banned_hits = 0
    misses = dict.fromkeys(names, 0)  # consecutive misses; an exhausted operation is retired
    exhausted_at: int | None = None
    while len(out) < target:
        if exhausted_at is None and not any(weights):
            exhausted_at = len(out)  # no operation can make a new line: the rest are repeats
        for _ in range(0 if exhausted_at is not None else max_tries):
            if not any(weights):
                break
            name = rng.choices(names, weights)[0]
            made = fns[name](rng, words, bounds, cands)
            line, par = made if made is not None else ("", ())
            if made is None or line in seen or line in banned:
                banned_hits += line in banned
                misses[name] += 1
                if misses[name] >= retire_after:
                    weights[names.index(name)] = 0.0
                continue
            misses[name] = 0
            seen.add(line)
            out.append(line)
            parents.append(par)
            ops[name] += 1
            new += 1
            break
        else:  # no new line in max_tries attempts (or none possible): repeat an original
            i = rng.randrange(len(src))
            out.append(src[i])
            parents.append((i,))
            repeats += 1
    if shuffle:
        order = list(range(len(out)))
        rng.shuffle(order)
        out = [out[i] for i in order]
        parents = [parents[i] for i in order]
    report = ExpandReport(
        target=target,
        originals=len(src),
        new=new,
        repeats=repeats,
        operations=ops,
        input_duplicates=len(src) - len(set(src)),
        forbidden_hits=banned_hits,
        seed=seed,
        exhausted_at=exhausted_at,
        parents=parents,
    )
    return out, report


def read_lines(path: str | os.PathLike, flag: str = "--in_txt") -> tuple[list[str], int]:
    """The non-blank lines of a UTF-8 file and how many blank lines were skipped.

    Introduced in notebooks/02_data_and_embeddings.ipynb.
    """
    text = read_text(path, flag=flag)
    raw = text.splitlines()
    kept = [ln.strip() for ln in raw if ln.strip()]
    if not kept:
        raise CourseInputError(f"{flag}: {path} has no non-blank lines")
    return kept, len(raw) - len(kept)


# --------------------------------------------------------------------------- splits

def _check_fraction(val_fraction: float) -> float:
    try:
        f = float(val_fraction)
    except (TypeError, ValueError):
        raise CourseInputError(f"val_fraction: expected a number between 0 and 1, got {val_fraction!r}") from None
    if not 0.0 < f < 1.0:
        raise CourseInputError(f"val_fraction: expected a number strictly between 0 and 1, got {val_fraction!r}")
    return f


def train_val_split(data: Any, val_fraction: float = 0.1, *, seed: int | None = None) -> tuple[Any, Any]:
    """Split into (train, val) so that nothing of val leaks into train.

    - text (`str`), token ids (list of ints, NumPy array, 1-D tensor): contiguous, the
      last `val_fraction` is validation. Random windows from one text would overlap.
    - lines (list of `str`): with `seed`, which lines go to validation is drawn with
      ``random.Random(seed)``; without, the last lines do. Identical lines always go to
      the same side, so no exact copy of a validation line is in train. Validation gets
      about ``round(val_fraction * n)`` lines (at least 1); each side keeps the input order.

    Introduced in notebooks/02_data_and_embeddings.ipynb.
    """
    f = _check_fraction(val_fraction)
    is_lines = isinstance(data, (list, tuple)) and data and all(isinstance(x, str) for x in data)
    n = len(data)
    if n < 2:
        raise CourseInputError(f"train_val_split: need at least 2 items to split, got {n}")
    if not is_lines:
        n_val = max(1, min(n - 1, round(n * f)))
        return data[: n - n_val], data[n - n_val:]
    groups: dict[str, list[int]] = {}
    for i, line in enumerate(data):
        groups.setdefault(line, []).append(i)
    keys = list(groups)  # first-appearance order: deterministic
    if len(keys) < 2:
        raise CourseInputError("train_val_split: all lines are identical; nothing to split")
    if seed is not None:
        random.Random(seed).shuffle(keys)
    want = max(1, round(n * f))
    val_idx: set[int] = set()
    for key in reversed(keys):  # validation from the end, like the contiguous case
        if len(val_idx) >= want or len(val_idx) + len(groups[key]) > n - 1:
            break
        val_idx.update(groups[key])
    if not val_idx:
        raise CourseInputError("train_val_split: could not put any line into validation")
    val_keys = {data[i] for i in val_idx}
    train = [x for x in data if x not in val_keys]  # each side keeps the input order
    val = [x for x in data if x in val_keys]
    return train, val


# --------------------------------------------------------------------------- encoding + cache

def vocab_size_of(tokenizer: Any) -> int:
    """Vocabulary size of any tokenizer: ``len()``, ``n_vocab``, ``get_vocab_size()`` or ``vocab_size``.

    Introduced in notebooks/02_data_and_embeddings.ipynb.
    """
    try:
        return int(len(tokenizer))
    except TypeError:
        pass
    for attr in ("n_vocab", "vocab_size"):
        if isinstance(getattr(tokenizer, attr, None), int):
            return int(getattr(tokenizer, attr))
    if callable(getattr(tokenizer, "get_vocab_size", None)):
        return int(tokenizer.get_vocab_size())
    raise CourseInputError(
        f"tokenizer: cannot tell the vocabulary size of a {type(tokenizer).__name__} "
        "(expected len(), .n_vocab, .vocab_size or .get_vocab_size())"
    )


def _encode(tokenizer: Any, text: str) -> list[int]:
    fn = getattr(tokenizer, "encode_ordinary", None) or getattr(tokenizer, "encode", None)
    if fn is None:
        raise CourseInputError(
            f"tokenizer: a {type(tokenizer).__name__} has neither .encode_ordinary() nor .encode()"
        )
    ids = fn(text)
    return list(getattr(ids, "ids", ids))  # HF `tokenizers` returns an Encoding with .ids


# Attributes that define how a tokenizer encodes: course_lib.tokenizer's BPETokenizer and
# CharTokenizer, and tiktoken's Encoding.
_STATE_ATTRS = (
    "pattern", "vocab", "merges", "special_tokens", "itos",
    "name", "_pat_str", "_mergeable_ranks", "_special_tokens",
)


def _tokenizer_fingerprint(tokenizer: Any) -> bytes:
    """Bytes that change whenever the tokenizer's behaviour can change."""
    for attr in ("fingerprint", "to_str"):  # a tokenizer's own, or HF `tokenizers`' JSON
        fn = getattr(tokenizer, attr, None)
        if callable(fn):
            try:
                return str(fn()).encode("utf-8")
            except Exception:  # noqa: BLE001
                pass
    state = [(a, getattr(tokenizer, a)) for a in _STATE_ATTRS if hasattr(tokenizer, a)]
    if state:  # what defines encoding; not pickle, which would also see a lookup cache
        return repr(state).encode("utf-8", "backslashreplace")
    try:
        return pickle.dumps(tokenizer, protocol=4)
    except Exception:  # noqa: BLE001 - unpicklable: describe it by its behaviour
        probe = "The quick brown fox, 12 ünïcødé 🙂 tokens!\n\n  indented\tTAB"
        return repr((vocab_size_of(tokenizer), _encode(tokenizer, probe))).encode()


def encode_corpus(
    text: str,
    tokenizer: Any,
    cache_dir: str | os.PathLike | None = None,
    *,
    verbose: bool = True,
) -> np.ndarray:
    """Encode `text` to a 1-D NumPy array of ids, cached as ``.npy`` so the next run is instant.

    The tokenizer is duck-typed: anything with ``.encode_ordinary(text)`` or
    ``.encode(text)`` and a vocabulary size (see `vocab_size_of`). Ids are stored as
    uint16 when the vocabulary has at most 65,536 entries, else uint32. The file name
    holds a hash of the text and of the tokenizer (its ``fingerprint()``, HF
    ``to_str()``, its vocabulary/merges/pattern attributes, or else its pickle), so a changed text or tokenizer never reads a stale file. Put
    `cache_dir` next to the tokenizer; default ``runtime.output_dir()/"encoded"``.

    Introduced in notebooks/02_data_and_embeddings.ipynb.
    """
    if not isinstance(text, str):
        raise CourseInputError(f"encode_corpus: text must be a str, got {type(text).__name__}")
    vocab = vocab_size_of(tokenizer)
    h = hashlib.sha256()
    h.update(type(tokenizer).__qualname__.encode())
    h.update(_tokenizer_fingerprint(tokenizer))
    h.update(b"\0")
    h.update(text.encode("utf-8", "surrogatepass"))
    folder = Path(cache_dir) if cache_dir is not None else runtime.output_dir() / "encoded"
    path = folder / f"tokens-{h.hexdigest()[:24]}.npy"
    t0 = time.perf_counter()
    if path.is_file():
        try:
            ids = np.load(path, allow_pickle=False)
            _say(f"encoded corpus: {len(ids):,} tokens loaded from cache {path} "
                 f"({time.perf_counter() - t0:.3f} s)", verbose)
            return ids
        except (OSError, ValueError):
            pass  # a damaged cache file is simply rebuilt
    raw = _encode(tokenizer, text)
    top = max(raw, default=0)
    dtype = np.uint16 if max(vocab, top + 1) <= 2**16 else np.uint32
    ids = np.asarray(raw, dtype=dtype)
    if len(ids) and int(ids.max()) != top:  # pragma: no cover - ids beyond uint32
        raise CourseInputError(f"tokenizer: id {top} does not fit in {np.dtype(dtype).name}")
    write_atomic(path, lambda f: np.save(f, ids, allow_pickle=False))
    _say(f"encoded corpus: {len(text):,} characters -> {len(ids):,} tokens "
         f"({np.dtype(dtype).name}) in {time.perf_counter() - t0:.2f} s; cached at {path}", verbose)
    return ids


# --------------------------------------------------------------------------- batches

def _as_ids(ids: Any) -> np.ndarray:
    if isinstance(ids, torch.Tensor):
        arr = ids.detach().cpu().numpy()
    else:
        arr = np.asarray(ids)
    if arr.ndim != 1:
        raise CourseInputError(f"ids: expected a 1-D sequence of token ids, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise CourseInputError(f"ids: expected integer token ids, got dtype {arr.dtype}")
    if arr.size and arr.min() < 0:
        raise CourseInputError("ids: token ids must be >= 0")
    return arr


def _check_seq_len(n: int, seq_len: int) -> None:
    if isinstance(seq_len, bool) or not isinstance(seq_len, (int, np.integer)) or seq_len < 1:
        raise CourseInputError(f"seq_len: expected a whole number >= 1, got {seq_len!r}")
    if n < seq_len + 1:
        best = f"the largest seq_len that works is {n - 1}" if n >= 2 else "it needs at least 2 tokens"
        raise CourseInputError(
            f"seq_len={seq_len} is too long for this corpus: a window needs seq_len + 1 = "
            f"{seq_len + 1:,} tokens but there are only {n:,} tokens; {best}"
        )


class TokenDataset(Dataset):
    """Windows of ``seq_len + 1`` tokens from one long id sequence; item i is ``(x, y)``.

    ``x = window[:-1]`` and ``y = window[1:]``: at every position the target is the next
    token. Windows start every `stride` tokens (default `seq_len`, so each token is a
    target exactly once per epoch; ``stride=1`` gives every offset, like minGPT).
    The ids stay in their compact NumPy dtype; items are int64 tensors of shape (seq_len,).

    Introduced in notebooks/02_data_and_embeddings.ipynb.
    """

    def __init__(self, ids: Any, seq_len: int, stride: int | None = None) -> None:
        self.ids = _as_ids(ids)
        _check_seq_len(len(self.ids), seq_len)
        self.seq_len = int(seq_len)
        self.stride = int(stride) if stride is not None else self.seq_len
        if self.stride < 1:
            raise CourseInputError(f"stride: expected a whole number >= 1, got {stride!r}")
        self._n = (len(self.ids) - 1 - self.seq_len) // self.stride + 1

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        if i < 0:
            i += self._n
        if not 0 <= i < self._n:
            raise IndexError(f"window {i} out of range for {self._n} windows")
        start = i * self.stride
        chunk = torch.from_numpy(self.ids[start : start + self.seq_len + 1].astype(np.int64))
        return chunk[:-1], chunk[1:]  # (T,), (T,)

    def __repr__(self) -> str:
        return (f"TokenDataset({len(self.ids):,} tokens, seq_len={self.seq_len}, "
                f"stride={self.stride}, {self._n:,} windows)")


def make_loader(
    dataset: Dataset,
    batch_size: int,
    shuffle: bool = True,
    seed: int = 0,
    *,
    drop_last: bool = False,
    num_workers: int = 0,
) -> DataLoader:
    """A `torch.utils.data.DataLoader` over `dataset` whose shuffling is seeded.

    Batches are ``(x, y)`` of shape (B, T). The same seed gives the same batch order
    on every run and machine.

    Introduced in notebooks/02_data_and_embeddings.ipynb.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise CourseInputError(f"batch_size: expected a whole number >= 1, got {batch_size!r}")
    generator = torch.Generator()
    generator.manual_seed(seed)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        generator=generator if shuffle else None,
        drop_last=drop_last,
        num_workers=num_workers,
    )


def get_batch(
    ids: Any,
    batch_size: int,
    seq_len: int,
    *,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """A random batch ``(x, y)`` of shape (B, T) from random offsets, nanoGPT style.

    Introduced in notebooks/02_data_and_embeddings.ipynb.
    """
    arr = _as_ids(ids)
    _check_seq_len(len(arr), seq_len)
    starts = torch.randint(len(arr) - seq_len, (batch_size,), generator=generator)
    windows = np.stack([arr[s : s + seq_len + 1] for s in starts.tolist()]).astype(np.int64)
    w = torch.from_numpy(windows)  # (B, T+1)
    x, y = w[:, :-1], w[:, 1:]  # (B, T), (B, T)
    if device is not None:
        x, y = x.to(device), y.to(device)
    return x, y
