"""Instruction fine-tuning data: the course's small instruction set, prompt masking, scoring.

The course ships `data/instructions.jsonl`: short instruction/response pairs whose answers
a learner can check by eye (opposites, plurals, capital letters, word order, small sums
and counting in words), each marked ``"split": "train"`` or ``"test"``. It is made by
`make_instructions()` (seeded, so the file is the same every time; `scripts/make_instructions.py`
writes it), and `load_instructions()` reads it, or rebuilds it in memory when the course is
installed without its data folder (Colab, a plain ``pip install``). Online, `load_alpaca()`
adds Stanford Alpaca's 52K records (CC BY-NC 4.0), downloaded once, checked and cached, to
the training split; offline it says so in one line and gives the shipped set. The course model,
which read only Shakespeare, learns a task in its own domain instead: `data/modern_english.jsonl`
(`make_modern_english()`), spans of the plays and the same words in modern English.

One example is the prompt followed by the response::

    Instruction: Give the opposite of: hot
    Answer: cold

and the model is trained to write the response only: `encode_example` gives the labels
``-100`` (ignored by the loss) on every prompt token, so the loss counts the answer's
tokens and the newline that ends it. `answer()` decodes greedily until that newline;
`exact_match()` scores a model on the held-out split. (What full fine-tuning and LoRA hold in
memory is `course_lib.memory.training_memory`.)

Introduced in notebooks/09_fine_tuning.ipynb.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import urllib.request
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from . import runtime
from .errors import CourseInputError
from .io import write_atomic
from .memory import TrainingMemory, training_memory  # noqa: F401 - the names notebook 09 first used; tests of the checks use them

__all__ = [
    "ALPACA_LICENSE", "ALPACA_URL", "IGNORE_INDEX", "INSTRUCTIONS_FILE", "MODERN_ENGLISH", "MODERN_FILE",
    "PROMPT_TEMPLATE", "TASKS",
    "alpaca_to_rows", "answer", "collate", "encode_example", "exact_match", "format_prompt",
    "git_blob_id", "instructions_path", "load_alpaca", "load_instructions", "load_modern_english",
    "make_instructions", "make_modern_english", "modernize", "newline_ids", "write_instructions",
]

IGNORE_INDEX = -100
"""The label PyTorch's cross-entropy (and the course GPT's loss) skips."""

INSTRUCTIONS_FILE = "instructions.jsonl"
PROMPT_TEMPLATE = "Instruction: {instruction}\nAnswer:"
"""What the model reads; the response follows after one space and ends with a newline."""

# --------------------------------------------------------------------------- the data set

_OPPOSITES = [
    ("hot", "cold"), ("big", "small"), ("up", "down"), ("day", "night"), ("fast", "slow"),
    ("happy", "sad"), ("open", "closed"), ("light", "dark"), ("old", "new"), ("yes", "no"),
    ("in", "out"), ("left", "right"), ("early", "late"), ("full", "empty"), ("hard", "soft"),
    ("high", "low"), ("long", "short"), ("rich", "poor"), ("wet", "dry"), ("strong", "weak"),
    ("near", "far"), ("first", "last"), ("push", "pull"), ("win", "lose"), ("buy", "sell"),
    ("give", "take"), ("love", "hate"), ("always", "never"), ("above", "below"), ("true", "false"),
    ("clean", "dirty"), ("thick", "thin"), ("heavy", "light"), ("loud", "quiet"), ("sweet", "sour"),
    ("begin", "end"), ("inside", "outside"), ("black", "white"), ("good", "bad"), ("front", "back"),
    ("north", "south"), ("east", "west"), ("summer", "winter"), ("young", "old"),
]
_PLURALS = [
    ("cat", "cats"), ("dog", "dogs"), ("book", "books"), ("tree", "trees"), ("house", "houses"),
    ("car", "cars"), ("bird", "birds"), ("apple", "apples"), ("river", "rivers"), ("hand", "hands"),
    ("friend", "friends"), ("star", "stars"), ("door", "doors"), ("king", "kings"), ("ship", "ships"),
    ("box", "boxes"), ("bus", "buses"), ("dish", "dishes"), ("church", "churches"), ("fox", "foxes"),
    ("glass", "glasses"), ("watch", "watches"), ("city", "cities"), ("baby", "babies"),
    ("story", "stories"), ("lady", "ladies"), ("party", "parties"), ("child", "children"),
    ("mouse", "mice"), ("foot", "feet"), ("tooth", "teeth"), ("man", "men"), ("woman", "women"),
    ("person", "people"), ("goose", "geese"), ("sheep", "sheep"), ("knife", "knives"),
    ("leaf", "leaves"), ("wolf", "wolves"),
]
_PHRASES = [
    "good morning", "hello world", "thank you", "see you soon", "red apple", "big cat", "open the door",
    "come home", "happy birthday", "stop here", "good night", "well done", "my friend", "the sun",
    "blue sky", "fair play", "time to go", "go now", "all is well", "read this", "no entry", "keep calm",
    "hold on", "look out", "best wishes", "fresh bread", "cold water", "green tea", "old town",
    "new year", "slow down", "be kind", "sit down", "last call", "dear sir", "one way",
]
_WORDS = ["red", "blue", "green", "cat", "dog", "bird", "sun", "moon", "star", "tree", "fish", "rain",
          "milk", "bread", "king", "ship", "road", "hill"]
NUMBER_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
                "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
                "nineteen", "twenty"]

TASKS = {
    "opposite": "Give the opposite of: {}",
    "plural": "Write the plural of: {}",
    "capitals": "Write in capital letters: {}",
    "reverse": "Reverse the order of the words: {}",
    "sum": "What is {} plus {}?",
    "next": "Which number comes after {}?",
}
"""Each task's instruction; the fields are filled from the word lists above."""

TEST_FRACTION = 0.2


def make_instructions(seed: int = 0) -> list[dict[str, str]]:
    """The course's instruction set: about 210 rows of task, instruction, response, split.

    Deterministic for a seed. Within each task a seeded fifth of the rows is the held-out
    ``"test"`` split, so every task is scored.
    """
    rng = random.Random(seed)
    by_task: dict[str, list[tuple[str, str]]] = {
        "opposite": [(TASKS["opposite"].format(a), b) for a, b in _OPPOSITES],
        "plural": [(TASKS["plural"].format(a), b) for a, b in _PLURALS],
        "capitals": [(TASKS["capitals"].format(p), p.upper()) for p in _PHRASES],
        "next": [(TASKS["next"].format(NUMBER_WORDS[i]), NUMBER_WORDS[i + 1]) for i in range(20)],
    }
    lists: set[tuple[str, ...]] = set()
    while len(lists) < 36:
        lists.add(tuple(rng.sample(_WORDS, 3)))
    by_task["reverse"] = [(TASKS["reverse"].format(" ".join(w)), " ".join(reversed(w))) for w in sorted(lists)]
    pairs = sorted((a, b) for a in range(11) for b in range(11) if a + b <= 12)
    by_task["sum"] = [(TASKS["sum"].format(NUMBER_WORDS[a], NUMBER_WORDS[b]), NUMBER_WORDS[a + b])
                      for a, b in rng.sample(pairs, 40)]
    rows = []
    for task, items in by_task.items():
        order = list(range(len(items)))
        rng.shuffle(order)
        test = set(order[: round(TEST_FRACTION * len(items))])
        rows += [{"task": task, "instruction": ins, "response": res, "split": "test" if i in test else "train"}
                 for i, (ins, res) in enumerate(items)]
    return rows


def write_instructions(path: str | os.PathLike, rows: Sequence[dict[str, str]] | None = None) -> Path:
    """Write `rows` (default `make_instructions()`) as JSON lines (one row per line, UTF-8) to `path`.
    """
    p = Path(path)
    rows = make_instructions() if rows is None else rows
    p.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return p


def _shipped(name: str) -> Path | None:
    """``data/<name>`` of the checkout, or None when the course runs without it (Colab, a plain pip install)."""
    root = runtime.repo_root()
    p = root / "data" / name if root is not None else None
    return p if p is not None and p.is_file() else None


def instructions_path() -> Path | None:
    """``data/instructions.jsonl`` of the checkout, or None when the course runs without it."""
    return _shipped(INSTRUCTIONS_FILE)


def load_instructions(path: str | os.PathLike | None = None, split: str | None = None) -> list[dict[str, str]]:
    """Rows of the instruction set (`split` "train" or "test" to keep one split).

    `path` defaults to the checkout's ``data/instructions.jsonl``; without a checkout the
    same rows are made in memory by `make_instructions()`. A row that is not JSON, or lacks
    ``instruction`` or ``response``, raises `CourseInputError` naming the file and line.
    """
    if split not in (None, "train", "test"):
        raise CourseInputError(f"split must be 'train', 'test' or None, got {split!r}")
    p = Path(path) if path is not None else instructions_path()
    if p is None:
        rows = make_instructions()
    else:
        rows = []
        for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise CourseInputError(f"{p}, line {n}: not a JSON object ({e.msg})") from None
            if not isinstance(row, dict) or not all(isinstance(row.get(k), str) for k in ("instruction", "response")):
                raise CourseInputError(f"{p}, line {n}: a row needs the text fields 'instruction' and 'response'")
            rows.append(row)
    return [r for r in rows if split is None or r.get("split", "train") == split]


# --------------------------------------------------------------------------- a task in the course model's domain
MODERN_FILE = "modern_english.jsonl"
MODERN_TASK = "Say it in modern English: {}"
MODERN_ENGLISH = {
    "thou": "you", "thee": "you", "thy": "your", "thine": "your", "art": "are", "hast": "have", "hath": "has",
    "doth": "does", "dost": "do", "wilt": "will", "shalt": "shall", "wert": "were", "hadst": "had", "didst": "did",
    "canst": "can", "mayst": "may", "may'st": "may", "mightst": "might", "wouldst": "would", "couldst": "could",
    "shouldst": "should", "'tis": "it is", "'twas": "it was", "ere": "before", "nay": "no", "ay": "yes",
    "oft": "often", "hither": "here", "thither": "there", "whither": "where", "wherefore": "why",
    "ne'er": "never", "o'er": "over", "e'en": "even",
}
"""Shakespeare's word -> today's: the one rule of the modern-English task (word by word, capitals kept)."""

_NOT_ARCHAIC_ST = frozenset(
    "best rest west breast beast least first last most must just lost cost against east feast guest jest nest "
    "priest chest honest dust trust worst past fast cast host ghost post almost mist fist list wrist thirst burst "
    "earnest forest interest modest request harvest midst amongst whilst behest dearest eldest tempest".split())
"""Words ending in -st that are not an old verb form (a span with another -st/-eth word is left out)."""


def modernize(words: Sequence[str]) -> str | None:
    """The span `words` in modern English by `MODERN_ENGLISH`, or None when the rule cannot say
    ("art" not after "thou" may be the noun; another -st/-eth verb or elision has no entry)."""
    out = []
    for i, w in enumerate(words):
        low = w.lower()
        if low == "art" and (i == 0 or words[i - 1].lower() != "thou"):
            return None
        if low not in MODERN_ENGLISH:
            if ("'" in w or low.endswith(("st", "eth"))) and low not in _NOT_ARCHAIC_ST:
                return None
            out.append(w)
            continue
        new = MODERN_ENGLISH[low]
        out.append(new[0].upper() + new[1:] if w.lstrip("'")[:1].isupper() else new)
    return " ".join(out)


def make_modern_english(text: str | None = None, n: int = 800, seed: int = 0) -> list[dict[str, str]]:
    """Notebook 09's task for the course model: `n` spans of 3-5 words cut from Tiny Shakespeare at
    punctuation, each holding at least one word of `MODERN_ENGLISH`, and the same span in modern English.

    Copy the span, changing only those words: the course model has read every one of them, and its
    induction heads (notebook 08) copy. A seeded fifth is held out (``"split": "test"``).
    """
    if text is None:
        from .data import load_corpus

        text = load_corpus("shakespeare", verbose=False)
    spans = set()
    for line in text.splitlines():
        if line.endswith(":"):  # a speaker's name
            continue
        for part in re.split(r"[,.;:!?-]+", line):
            words = part.split()
            if 3 <= len(words) <= 5 and all(re.fullmatch(r"[A-Za-z']+", w) for w in words) \
                    and any(w.lower() in MODERN_ENGLISH for w in words):
                modern = modernize(words)
                if modern is not None:
                    spans.add((" ".join(words), modern))
    rng = random.Random(seed)
    chosen = sorted(spans)
    rng.shuffle(chosen)
    chosen = chosen[:n]
    test = set(rng.sample(range(len(chosen)), round(TEST_FRACTION * len(chosen))))
    return [{"task": "modern", "instruction": MODERN_TASK.format(old), "response": new,
             "split": "test" if i in test else "train"} for i, (old, new) in enumerate(chosen)]


def load_modern_english(split: str | None = None) -> list[dict[str, str]]:
    """The shipped ``data/modern_english.jsonl`` (`make_modern_english()`, in memory without a checkout)."""
    path = modern_english_path()
    if path is None:
        return [r for r in make_modern_english() if split is None or r["split"] == split]
    return load_instructions(path, split)


def modern_english_path() -> Path | None:
    """``data/modern_english.jsonl`` of the checkout, or None when the course runs without it."""
    return _shipped(MODERN_FILE)


# --------------------------------------------------------------------------- a larger set, online

ALPACA_URL = ("https://raw.githubusercontent.com/tatsu-lab/stanford_alpaca/"
              "761dc5bfbdeeffa89b8bff5d038781a4055f796a/alpaca_data.json")
"""Stanford Alpaca's 52K instruction records (CC BY-NC 4.0: non-commercial use), pinned to a commit."""
ALPACA_GIT_BLOB = "3779ddbc040543ab1834ef216c983d6fcc06cc9a"
"""The git blob id of ``alpaca_data.json`` at that commit: what a download must hash to."""
ALPACA_FILE = "alpaca_data.json"
ALPACA_LICENSE = "CC BY-NC 4.0"
"""Alpaca's data license (its repository's DATA_LICENSE): attribution, non-commercial use only."""
ALPACA_TIMEOUT_S = 30.0


def _download(url: str, timeout: float) -> bytes:
    """Fetch `url` (separate so tests can replace it)."""
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - a fixed https URL, or a test's file:
        return response.read()


def git_blob_id(data: bytes) -> str:
    """The id git gives a file of these bytes: sha1 of ``b"blob <size>\\0"`` + the bytes.
    """
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def alpaca_to_rows(records: Any, source: str = "Alpaca") -> list[dict[str, str]]:
    """Alpaca-style records (``instruction``, ``input``, ``output``) as the course's rows.

    A non-empty ``input`` joins the instruction on a new line; ``output`` is the response.
    Every row gets ``task`` "alpaca" and ``split`` "train" (exact match only scores short,
    checkable answers, so the course's own held-out split stays the test set). The course's
    answers are one line, ended by a newline, so records with an empty or multi-line output
    are left out. Anything but a JSON list of such objects raises `CourseInputError`.
    """
    if not isinstance(records, list):
        raise CourseInputError(f"{source}: expected a JSON list of instruction records, got {type(records).__name__}")
    rows = []
    for n, rec in enumerate(records):
        if not (isinstance(rec, dict) and isinstance(rec.get("instruction"), str)
                and isinstance(rec.get("output"), str) and isinstance(rec.get("input", ""), str)):
            raise CourseInputError(f"{source}, record {n}: needs the text fields 'instruction' and 'output' "
                                   "(and optionally 'input')")
        instruction, extra, response = rec["instruction"].strip(), rec.get("input", "").strip(), rec["output"].strip()
        if not instruction or not response or "\n" in response:
            continue
        rows.append({"task": "alpaca", "instruction": f"{instruction}\n{extra}" if extra else instruction,
                     "response": response, "split": "train"})
    return rows


def _alpaca_bytes(allow_download: bool) -> tuple[bytes | None, str]:
    """(verified bytes of alpaca_data.json or None, a phrase saying where they came from or why not)."""
    cached = runtime.data_dir() / ALPACA_FILE
    stale = ""
    if cached.is_file():
        data = cached.read_bytes()
        if git_blob_id(data) == ALPACA_GIT_BLOB:
            return data, f"cached at {cached}"
        stale = f"the cached copy at {cached} failed the checksum; "
    if not allow_download:
        return None, f"{stale}offline mode (COURSE_OFFLINE=1 or HF_HUB_OFFLINE=1) and no cached copy in {cached.parent}"
    try:
        data = _download(ALPACA_URL, ALPACA_TIMEOUT_S)
    except Exception as e:  # noqa: BLE001 - any network failure means: fall back
        return None, f"{stale}download failed ({type(e).__name__}: {e})"
    if git_blob_id(data) != ALPACA_GIT_BLOB:
        looks = "an HTML page" if data.lstrip()[:1] == b"<" else f"{len(data):,} bytes"
        return None, f"{stale}the download is not the expected file ({looks}, git blob {git_blob_id(data)[:12]}...)"
    write_atomic(cached, data)
    return data, f"downloaded from {ALPACA_URL}, checksum verified, cached at {cached}"


def load_alpaca(max_rows: int | None = None, max_chars: int | None = None, seed: int = 0, *,
                fallback: bool = True, verbose: bool = True) -> list[dict[str, str]]:
    """The course's instruction set with Stanford Alpaca's records added to its training split.

    Alpaca (52,002 instruction/input/output records written by a language model,
    CC BY-NC 4.0: research and other non-commercial use) is downloaded once from
    `ALPACA_URL` (about 22 MB, a 30 s timeout, never when `runtime.offline()`), checked
    against its git blob id and cached in `runtime.data_dir()`. Its records become course
    rows with `alpaca_to_rows`; `max_chars` keeps those whose instruction and response
    together are at most that long, and `max_rows` a seeded sample of that many. The
    course's rows come first and keep their splits, so the held-out split is the same.

    When Alpaca cannot be had (offline, a failed download, a file that is not the expected
    one) one line says why and the shipped set, `load_instructions()`, is returned; with
    ``fallback=False`` a `CourseInputError` is raised instead.
    """
    data, where = _alpaca_bytes(allow_download=not runtime.offline())
    extra: list[dict[str, str]] = []
    if data is not None:
        try:
            extra = alpaca_to_rows(json.loads(data.decode("utf-8")), source=f"Alpaca data {where}")
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            data, where = None, f"the file {where} is not JSON ({e})"
        except CourseInputError as e:
            data, where = None, str(e)
    if data is None:
        if not fallback:
            raise CourseInputError(f"Alpaca instruction data not available: {where}")
        rows = load_instructions()
        print(f"instructions: the course's shipped set ({len(rows)} rows); Alpaca not used: {where}")
        return rows
    if max_chars is not None:
        extra = [r for r in extra if len(r["instruction"]) + len(r["response"]) <= max_chars]
    if max_rows is not None and len(extra) > max_rows:
        extra = random.Random(seed).sample(extra, max_rows)
    rows = load_instructions() + extra
    if verbose:
        print(f"instructions: the course's set plus {len(extra):,} Stanford Alpaca rows "
              f"({ALPACA_LICENSE}, non-commercial use only), {where}")
    return rows


# --------------------------------------------------------------------------- prompts and labels

def format_prompt(instruction: str) -> str:
    """The text the model reads before it answers: ``"Instruction: ...\\nAnswer:"``.
    """
    return PROMPT_TEMPLATE.format(instruction=instruction.strip())


def encode_example(tokenizer: Any, instruction: str, response: str,
                   max_len: int | None = None) -> tuple[list[int], list[int]]:
    """(input_ids, labels) of one example; labels are ``-100`` on every prompt token.

    The input is the prompt's tokens followed by the response's (``" " + response + "\\n"``:
    the newline teaches the model where to stop). The labels are the input ids with the
    prompt replaced by `IGNORE_INDEX`, so the loss (which shifts them inside the model)
    counts only the answer. An example longer than `max_len` tokens raises
    `CourseInputError` instead of being cut.
    """
    prompt = tokenizer.encode(format_prompt(instruction))
    answer_ids = tokenizer.encode(" " + response.strip() + "\n")
    ids = prompt + answer_ids
    if max_len is not None and len(ids) > max_len:
        raise CourseInputError(
            f"the example {instruction!r} -> {response!r} is {len(ids)} tokens, longer than the "
            f"model's context of {max_len}; shorten it"
        )
    return ids, [IGNORE_INDEX] * len(prompt) + answer_ids


def collate(examples: Sequence[tuple[Sequence[int], Sequence[int]]],
            pad_id: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad a batch of (input_ids, labels) to (B, T) tensors; padding is labelled -100.

    Padding at the end needs no attention mask: under the causal mask no real token
    looks at a later pad, and the pads' own predictions are ignored by the loss.
    """
    if not examples:
        raise CourseInputError("collate: the batch is empty")
    T = max(len(ids) for ids, _ in examples)
    x = torch.full((len(examples), T), pad_id, dtype=torch.long)
    y = torch.full((len(examples), T), IGNORE_INDEX, dtype=torch.long)
    for i, (ids, labels) in enumerate(examples):
        if len(ids) != len(labels):
            raise CourseInputError(f"collate: example {i} has {len(ids)} ids but {len(labels)} labels")
        x[i, : len(ids)] = torch.as_tensor(list(ids), dtype=torch.long)
        y[i, : len(labels)] = torch.as_tensor(list(labels), dtype=torch.long)
    return x, y


# --------------------------------------------------------------------------- answering and scoring

def newline_ids(tokenizer: Any) -> list[int]:
    """Ids of every token whose text contains a newline: where an answer stops.
    """
    vocab = getattr(tokenizer, "vocab", None)
    if isinstance(vocab, dict):
        return sorted(i for i, b in vocab.items() if b"\n" in b)
    return sorted(set(tokenizer.encode("\n")))


@torch.no_grad()
def answer(model: nn.Module, tokenizer: Any, instruction: str, max_new_tokens: int = 12,
           stop_ids: Iterable[int] | None = None) -> str:
    """The model's greedy answer to `instruction`: the text it writes up to the first newline.
    """
    from .generate import generate

    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        ids = torch.tensor([tokenizer.encode(format_prompt(instruction))], device=device)
        stops = list(stop_ids) if stop_ids is not None else newline_ids(tokenizer)
        out = generate(model, ids, max_new_tokens, eos_token_id=stops or None)
        text = tokenizer.decode(out[0, ids.shape[1]:].tolist())
    finally:
        model.train(was_training)
    return text.split("\n", 1)[0].strip()


def exact_match(model: nn.Module, tokenizer: Any, rows: Sequence[dict[str, str]],
                max_new_tokens: int = 12) -> tuple[float, list[str]]:
    """(fraction of `rows` answered exactly, the answers): the greedy answer must equal the response.
    """
    stops = newline_ids(tokenizer)
    got = [answer(model, tokenizer, r["instruction"], max_new_tokens, stops) for r in rows]
    hits = sum(g == r["response"].strip() for g, r in zip(got, rows))
    return (hits / len(rows) if rows else 0.0), got
