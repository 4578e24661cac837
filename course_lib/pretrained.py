"""Pretrained GPT-2 in the course model, and the small demo model used when GPT-2 cannot be had.

One way in: `load_gpt2(name)` returns ``(course GPT, tokenizer)``.

- A local folder (a Hugging Face GPT-2 model folder) is read as it is.
- A hub name (``gpt2``, ``gpt2-medium``, ``gpt2-large``, ``gpt2-xl``, or ``owner/name``) comes
  from the Hugging Face hub through `huggingface_hub` (cached in its usual cache, with a
  progress bar). Offline (`runtime.offline()`) only that cache is looked at.
- When the hub cannot be reached and the model is not cached, one line says so and the
  course's **demo model** is used instead: a small GPT on sub-word (BPE) tokens that the course
  trains once, in well under a minute on a laptop CPU, on the corpus `data.load_corpus`
  gives (Tiny Shakespeare when cached, else the offline Python reference prose), and
  caches under ``runtime.data_dir() / "demo_model"``. Every notebook and test reuses it.

`demo_prompt()` is the prompt that suits the demo model's corpus; `GPT2_PROMPT` suits GPT-2.

Introduced in notebooks/07_decoding_strategies.ipynb.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from . import runtime
from .errors import CourseInputError
from .io import build_once, settings_key
from .model import GPT, GPTConfig
from .tokenizer import BPETokenizer, gpt2_tokenizer, load_tokenizer

__all__ = [
    "DEMO", "DEMO_PROMPTS", "GPT2_PROMPT", "GPT2_SIZES", "DemoSpec", "HubUnavailableError",
    "demo_corpus", "demo_dir", "demo_prompt", "hub_folder", "is_demo", "is_hub_name",
    "load_demo_model", "load_folder", "load_gpt2", "prompt_for",
]

GPT2_SIZES = ("gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl")
"""OpenAI's four GPT-2 sizes on the hub: 124M, 355M, 774M and 1.5B parameters."""

GPT2_PROMPT = "I enjoy walking with my cute dog"
"""The prompt of Hugging Face's "How to generate text" walkthrough, for real GPT-2."""

DEMO_PROMPTS = {"shakespeare": "ROMEO:", "offline": "The import statement"}
"""The demo model's prompt for each corpus it can be trained on."""

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
    """Pretrained GPT-2 as (course GPT, tokenizer); the demo model when it cannot be had.

    `name` is a hub name (``gpt2`` by default; ``gpt2-medium``, ``gpt2-large``,
    ``gpt2-xl`` on request) or a local GPT-2-format folder (a folder wins over a hub
    name). When the hub cannot be reached and the model is not cached, one line says so
    and the demo model (`load_demo_model`) is returned instead; with ``fallback=False``
    a `HubUnavailableError` is raised. `is_demo(model)` tells which one you got.
    """
    d = Path(name)
    if not d.is_dir():
        try:
            d = hub_folder(os.fspath(name))
        except HubUnavailableError as e:
            if not fallback:
                raise
            print(f"GPT-2 {e}; using the course's small demo model instead (see course_lib.pretrained).")
            return load_demo_model(verbose=verbose)
    model, tok = load_folder(d)
    model.source = os.fspath(name)  # type: ignore[attr-defined]
    if verbose:
        print(f"GPT-2 {os.fspath(name)!r}: {model.num_parameters() / 1e6:.0f}M parameters, "
              f"{model.config.n_layer} layers x {model.config.n_head} heads, from {d}")
    return model, tok


# --------------------------------------------------------------------------- the demo model

@dataclass(frozen=True)
class DemoSpec:
    """How the demo model is trained: tokenizer size, model shape, steps. Part of the cache key."""

    vocab_size: int = 2048
    n_layer: int = 2
    n_head: int = 4
    n_embd: int = 128
    seq_len: int = 64
    batch_size: int = 16
    steps: int = 400
    lr: float = 3e-3
    warmup: int = 10
    seed: int = 0
    max_chars: int | None = None  # use only the start of the corpus (tests train a tiny version)

    def key(self, text: str) -> str:
        """A short hash of these settings and the training text: the cache folder's name."""
        return settings_key(self, text)


DEMO = DemoSpec()
"""The demo model the notebooks use."""

DEMO_THREADS = 1
"""CPU threads the demo model trains with: fixed, so that its training is repeatable, and one,
because a model this small gains little from a second thread and loses much when the CPU is busy."""


def demo_corpus() -> tuple[str, str]:
    """(corpus name, text) the demo model trains on: "shakespeare" when cached, else "offline".

    Tiny Shakespeare as `data.load_corpus` finds it (downloaded only when online);
    otherwise the offline Python reference prose, one paragraph per line with its hard
    line wraps removed, so that the model learns sentences rather than line breaks.
    """
    from .data import corpora

    text, _ = corpora._find_shakespeare(allow_download=not runtime.offline())
    if text is not None:
        return "shakespeare", text
    paragraphs = corpora.offline_corpus().split("\n\n")
    # one paragraph per line, its hard line wraps removed: greedy decoding then loops on words, not on "\n"
    return "offline", "\n".join(re.sub(r"\s+", " ", p).strip() for p in paragraphs if p.strip()) + "\n"


def demo_prompt(corpus: str | None = None) -> str:
    """The prompt that suits the demo model: "ROMEO:" for Shakespeare, a Python phrase offline.
    """
    name = corpus if corpus is not None else demo_corpus()[0]
    if name not in DEMO_PROMPTS:
        raise CourseInputError(f"demo corpus {name!r} is not one of {', '.join(DEMO_PROMPTS)}")
    return DEMO_PROMPTS[name]


def is_demo(model: Any) -> bool:
    """True for a model that `load_demo_model` returned (or `load_gpt2` fell back to)."""
    return str(getattr(model, "source", "")).startswith("demo")


def prompt_for(model: Any) -> str:
    """The prompt to decode with: `demo_prompt()` for the demo model, `GPT2_PROMPT` otherwise."""
    return demo_prompt() if is_demo(model) else GPT2_PROMPT


def _cache_root() -> Path:
    return runtime.trained_cache_dir()


def demo_dir(spec: DemoSpec | None = None, *, verbose: bool = True) -> Path:
    """The folder of the cached demo model, training it first when it is not there yet.

    The folder is a Hugging Face model folder (``config.json``, ``model.safetensors``,
    tokenizer files) plus ``demo.json`` (corpus, prompt, losses, training time). It is
    written atomically (`io.build_once`), so two processes training at once leave one
    complete copy.
    """
    spec = spec or DEMO
    corpus, text = demo_corpus()
    if spec.max_chars is not None:
        text = text[: spec.max_chars]
    final = _cache_root() / f"{corpus}-{spec.key(text)}"
    info: dict[str, Any] = {}

    def build(tmp: Path) -> None:
        with runtime.torch_threads(DEMO_THREADS):  # the same thread count everywhere: the same float sums
            info.update(_train_demo(spec, corpus, text, tmp, verbose=verbose))

    build_once(final, build, marker="demo.json")
    if verbose and info:
        print(f"demo model: trained in {info['train_seconds']:.0f} s on {info['corpus']} "
              f"({info['tokens']:,} tokens), validation loss {info['val_loss']:.2f}; cached at {final}")
    return final


def load_demo_model(spec: DemoSpec | None = None, *, verbose: bool = True) -> tuple[GPT, BPETokenizer]:
    """The course's small demo model (sub-word BPE tokens) as (course GPT, tokenizer), trained once and cached.
    """
    d = demo_dir(spec, verbose=verbose)
    model, tok = load_folder(d)
    info = json.loads((d / "demo.json").read_text(encoding="utf-8"))
    model.source = f"demo:{info['corpus']}"  # type: ignore[attr-defined]
    if verbose:
        print(f"demo model: {model.num_parameters():,} parameters, {len(tok.vocab) + len(tok.special_tokens):,}"
              f" BPE tokens, {info['corpus']} corpus, validation loss {info['val_loss']:.2f} ({d.name})")
    return model, tok


def _train_demo(spec: DemoSpec, corpus: str, text: str, out: Path, verbose: bool) -> dict[str, Any]:
    """Train the tokenizer and the model of `spec` on `text`; write both and demo.json to `out`."""
    import numpy as np

    from .tokenizer import train_hf_tokenizer
    from .train import cosine_schedule, decay_parameter_names

    start = time.perf_counter()
    corpus_file = out / "corpus.txt"
    corpus_file.write_text(text, encoding="utf-8")
    train_hf_tokenizer(corpus_file, spec.vocab_size, out, model_max_length=spec.seq_len)
    corpus_file.unlink()
    from tokenizers import Tokenizer

    rust_tok = Tokenizer.from_file(str(out / "tokenizer.json"))  # the fast encoder, any transformers version
    ids = torch.from_numpy(np.asarray(rust_tok.encode(text).ids, dtype=np.int64))
    n_val = max(spec.seq_len + 1, len(ids) // 10)
    if len(ids) < n_val + 2 * (spec.seq_len + 1):
        raise CourseInputError(f"demo model: {len(ids)} tokens are too few for seq_len {spec.seq_len}")
    train_ids, val_ids = ids[:-n_val], ids[-n_val:]

    torch.manual_seed(spec.seed)
    vocab = rust_tok.get_vocab_size()
    model = GPT(GPTConfig(vocab_size=vocab, n_positions=spec.seq_len, n_embd=spec.n_embd,
                          n_layer=spec.n_layer, n_head=spec.n_head))
    # Its own loop, not the Trainer's: random windows from a seeded generator and a plain (unfused) AdamW,
    # as the cached demo models were trained; it is to give way to a shipped pretrained model.
    params = dict(model.named_parameters())
    decay, rest = decay_parameter_names(model)  # the Trainer's groups: weight decay on 2-D weights only
    opt = torch.optim.AdamW([{"params": [params[n] for n in decay], "weight_decay": 0.1},
                             {"params": [params[n] for n in rest], "weight_decay": 0.0}], lr=spec.lr, betas=(0.9, 0.95))
    gen = torch.Generator().manual_seed(spec.seed)
    offsets = torch.arange(spec.seq_len + 1)
    bar = _progress(spec.steps, verbose)
    model.train()
    loss = torch.tensor(float("nan"))
    for step in range(spec.steps):
        for group in opt.param_groups:
            group["lr"] = cosine_schedule(step, max_lr=spec.lr, min_lr=spec.lr / 10,
                                          warmup_steps=spec.warmup, total_steps=spec.steps)
        rows = torch.randint(len(train_ids) - spec.seq_len - 1, (spec.batch_size,), generator=gen)
        xy = train_ids[rows[:, None] + offsets]  # (B, T + 1)
        logits = model(xy[:, :-1]).logits
        loss = F.cross_entropy(logits.flatten(0, 1), xy[:, 1:].flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.2f}", refresh=False)
    if bar is not None:
        bar.close()
    model.eval()
    with torch.no_grad():
        windows = val_ids[: (len(val_ids) - 1) // spec.seq_len * spec.seq_len + 1]
        x = windows[:-1].view(-1, spec.seq_len)[:64]
        y = windows[1:].view(-1, spec.seq_len)[:64]
        val_loss = F.cross_entropy(model(x).logits.flatten(0, 1), y.flatten()).item()
    seconds = time.perf_counter() - start
    model.save_pretrained(out)
    info = {
        "corpus": corpus, "prompt": DEMO_PROMPTS[corpus], "tokens": len(ids), "vocab_size": vocab,
        "parameters": model.num_parameters(), "train_loss": round(loss.item(), 4),
        "val_loss": round(val_loss, 4), "train_seconds": round(seconds, 3), "threads": torch.get_num_threads(),
        "torch": torch.__version__, "python": sys.version.split()[0], "spec": dataclasses.asdict(spec),
    }
    (out / "demo.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    if not math.isfinite(val_loss):  # pragma: no cover - would be a training bug
        raise RuntimeError(f"demo model: validation loss is {val_loss}")
    return info


def _progress(total: int, verbose: bool) -> Any:
    if not verbose:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm ships with the course
        return None
    return tqdm(total=total, desc="training the demo model (once)", leave=False)
