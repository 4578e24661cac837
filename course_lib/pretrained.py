"""Pretrained GPT-2 in the course model, and the course's own pretrained model used when GPT-2 cannot be had.

One way in: `load_gpt2(name)` returns ``(course GPT, tokenizer)``.

- A local folder (a Hugging Face GPT-2 model folder) is read as it is.
- A hub name (``gpt2``, ``gpt2-medium``, ``gpt2-large``, ``gpt2-xl``, or ``owner/name``) comes
  from the Hugging Face hub through `huggingface_hub` (cached in its usual cache, with a
  progress bar). Offline (`runtime.offline()`) only that cache is looked at.
- When the hub cannot be reached and the model is not cached, one line says so and the
  **course model** is used instead: a small GPT-2 trained on Tiny Shakespeare that ships
  inside the package (``course_lib/assets/shakespeare-gpt2``, with its model card), so it
  loads in a second, offline, and every notebook and test uses the same weights.

`COURSE_PROMPT` suits the course model; `GPT2_PROMPT` suits GPT-2; `prompt_for(model)` picks.

Introduced in notebooks/07_decoding_strategies.ipynb.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from . import runtime
from .errors import CourseInputError
from .model import GPT
from .tokenizer import BPETokenizer, gpt2_tokenizer, load_tokenizer

__all__ = [
    "COURSE_MODEL_NAMES", "COURSE_PROMPT", "GPT2_PROMPT", "GPT2_SIZES", "HubUnavailableError",
    "course_model_card", "course_model_dir", "hub_folder", "is_course_model", "is_hub_name",
    "load_course_model", "load_folder", "load_gpt2", "prompt_for",
]

GPT2_SIZES = ("gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl")
"""OpenAI's four GPT-2 sizes on the hub: 124M, 355M, 774M and 1.5B parameters."""

GPT2_PROMPT = "I enjoy walking with my cute dog"
"""The prompt of Hugging Face's "How to generate text" walkthrough, for real GPT-2."""

_MODEL_FILES = ["config.json", "model.safetensors"]
_TOKENIZER_FILES = ["vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json"]
_HUB_NAME = re.compile(r"^(?:[A-Za-z0-9][\w.-]*/)?[A-Za-z0-9][\w.-]*$")
_NOT_FOUND = {"RepositoryNotFoundError", "GatedRepoError", "RevisionNotFoundError", "HFValidationError"}


class HubUnavailableError(CourseInputError):
    """The hub could not be reached (or offline mode is on) and the model is not in the local cache."""


# --------------------------------------------------------------------------- GPT-2 from the hub

def is_hub_name(name: str | os.PathLike) -> bool:
    """True when `name` could be a hub model id (``gpt2``, ``owner/name``), not a path."""
    s = os.fspath(name)
    return bool(_HUB_NAME.match(s)) and not s.startswith(".") and ".." not in s


def _download(repo_id: str, local_only: bool) -> Path:
    """The snapshot folder of `repo_id` (GPT-2's weights and tokenizer files only).

    `huggingface_hub` caches it (``HF_HOME``) and shows a progress bar. Separate so that
    tests can stand a local folder in for the hub.
    """
    from huggingface_hub import snapshot_download

    folder = Path(snapshot_download(repo_id, allow_patterns=_MODEL_FILES + _TOKENIZER_FILES,
                                    local_files_only=local_only))
    if not (folder / "model.safetensors").is_file():  # an older repository: PyTorch weights only
        folder = Path(snapshot_download(repo_id, allow_patterns=["config.json", "pytorch_model.bin"],
                                        local_files_only=local_only))
    return folder


def hub_folder(name: str) -> Path:
    """The local folder holding hub model `name`, downloading it when online.

    Offline (`runtime.offline()`) only the Hugging Face cache is used. Raises
    `HubUnavailableError` (one line, saying why) when the model cannot be had, and
    `CourseInputError` when the hub has no such model.
    """
    if not is_hub_name(name):
        raise CourseInputError(f"{name!r} is neither a folder nor a Hugging Face hub name like 'gpt2'")
    if runtime.offline():
        try:
            return _download(name, local_only=True)
        except Exception:  # noqa: BLE001 - not in the cache, whatever the exact error
            raise HubUnavailableError(
                f"{name!r} could not be downloaded: offline mode (COURSE_OFFLINE=1 or HF_HUB_OFFLINE=1) "
                "and it is not in the Hugging Face cache"
            ) from None
    try:
        return _download(name, local_only=False)
    except Exception as e:  # noqa: BLE001 - sorted below into "no such model" and "no network"
        if type(e).__name__ in _NOT_FOUND:
            raise CourseInputError(
                f"{name!r}: the Hugging Face hub has no such model (or it is gated); "
                f"GPT-2 is one of {', '.join(GPT2_SIZES)}"
            ) from None
        raise HubUnavailableError(
            f"{name!r} could not be downloaded from the Hugging Face hub ({type(e).__name__}) "
            "and it is not in the Hugging Face cache"
        ) from None


def load_folder(folder: str | os.PathLike) -> tuple[GPT, BPETokenizer]:
    """A GPT-2-format model folder as (course GPT, course tokenizer).

    The tokenizer is the folder's own (``vocab.json`` + ``merges.txt``), else GPT-2's,
    which ships with the course.
    """
    d = Path(folder)
    model = GPT.from_pretrained(d).eval()
    if (d / "vocab.json").is_file() and (d / "merges.txt").is_file():
        tok = load_tokenizer(d)
    else:
        tok = gpt2_tokenizer()
    model.source = str(d)  # type: ignore[attr-defined]
    return model, tok


def load_gpt2(name: str | os.PathLike = "gpt2", *, fallback: bool = True,
              verbose: bool = True) -> tuple[GPT, BPETokenizer]:
    """Pretrained GPT-2 as (course GPT, tokenizer); the course model when it cannot be had.

    `name` is a hub name (``gpt2`` by default; ``gpt2-medium``, ``gpt2-large``,
    ``gpt2-xl`` on request) or a local GPT-2-format folder (a folder wins over a hub
    name). When the hub cannot be reached and the model is not cached, one line says so
    and the course's own model (`load_course_model`) is returned instead; with
    ``fallback=False`` a `HubUnavailableError` is raised. `is_course_model(model)` tells which.
    """
    d = Path(name)
    if not d.is_dir():
        try:
            d = hub_folder(os.fspath(name))
        except HubUnavailableError as e:
            if not fallback:
                raise
            print(f"GPT-2 {e}; using the course's own pretrained model instead (course_lib.pretrained).")
            return load_course_model(verbose=verbose)
    model, tok = load_folder(d)
    model.source = os.fspath(name)  # type: ignore[attr-defined]
    if verbose:
        print(f"GPT-2 {os.fspath(name)!r}: {model.num_parameters() / 1e6:.0f}M parameters, "
              f"{model.config.n_layer} layers x {model.config.n_head} heads, from {d}")
    return model, tok


# --------------------------------------------------------------------------- the course model

COURSE_MODEL_NAMES = {False: "shakespeare-gpt2", True: "shakespeare-gpt2-draft"}
"""The two models that ship in ``course_lib/assets``: the course model and its draft (for speculative decoding)."""

COURSE_PROMPT = "ROMEO:"
"""The prompt that suits the course model: a speaker's name, as every speech in Tiny Shakespeare begins."""


def course_model_dir(draft: bool = False) -> Path:
    """The shipped folder of the course model (or its draft): a Hugging Face GPT-2 model folder
    with its tokenizer, training log, results and model card (README.md)."""
    return Path(__file__).resolve().parent / "assets" / COURSE_MODEL_NAMES[draft]


def course_model_card(draft: bool = False) -> dict[str, Any]:
    """The measured figures of the model card (``results.json``): validation loss, head scores, ablation, ..."""
    return json.loads((course_model_dir(draft) / "results.json").read_text(encoding="utf-8"))


def load_course_model(*, draft: bool = False, verbose: bool = True) -> tuple[GPT, BPETokenizer]:
    """The course's pretrained model as (course GPT, tokenizer), read from the package: no network, no training.

    A small GPT-2 (6 layers x 256, context 256, a 2,048-token byte-level BPE) trained on Tiny
    Shakespeare by ``scripts/train_course_model.py``; ``draft=True`` gives its 2-layer draft, with
    the same tokenizer. Its model card (the folder's README.md) says how it was trained and what
    it measures.
    """
    d = course_model_dir(draft)
    if not (d / "model.safetensors").is_file():
        raise CourseInputError(f"the course model is missing: no {d / 'model.safetensors'}; "
                               "`python scripts/train_course_model.py` then `--card` writes it")
    model, tok = load_folder(d)
    model.source = f"course:{COURSE_MODEL_NAMES[draft]}"  # type: ignore[attr-defined]
    if verbose:
        c = model.config
        per_char = course_model_card(draft).get("validation", {}).get("loss_per_char")
        loss = f", validation loss {per_char:.2f} nats per character" if per_char else ""
        print(f"course model {COURSE_MODEL_NAMES[draft]!r}: {model.num_parameters() / 1e6:.1f}M parameters, "
              f"{c.n_layer} layers x {c.n_head} heads, context {c.n_positions}, trained on Tiny Shakespeare{loss}")
    return model, tok


def is_course_model(model: Any) -> bool:
    """True for a model that `load_course_model` returned (or `load_gpt2` fell back to)."""
    return str(getattr(model, "source", "")).startswith("course:")


def prompt_for(model: Any) -> str:
    """The prompt to decode with: `COURSE_PROMPT` for the course model, `GPT2_PROMPT` otherwise."""
    return COURSE_PROMPT if is_course_model(model) else GPT2_PROMPT
