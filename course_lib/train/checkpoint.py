"""Checkpoints: a Hugging Face model folder (``config.json``, ``model.safetensors``, the
tokenizer files) plus ``train_state/`` (optimizer, GradScaler, RNG states, step, and the
position in the data), written atomically with `course_lib.io.atomic_dir`, so
``transformers.pipeline("text-generation", model=dir)`` loads it as it is.

Functions over explicit state: the Trainer passes what it holds; nothing here imports it.

Introduced in notebooks/06_training.ipynb.
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import CourseInputError
from ..generate import context_length
from ..io import atomic_dir, ignored_state_key
from ..protocols import Tokenizer
from .config import RESUMABLE_CHANGES, config_differences

STATE_DIR = "train_state"
STATE_FORMAT = 1


def model_signature(model: nn.Module) -> dict[str, Any]:
    """What must match between a checkpoint and the model it is loaded into."""
    cfg = getattr(model, "config", None)
    sig: dict[str, Any] = {"class": type(model).__name__}
    for key in ("vocab_size", "n_positions", "n_embd", "n_layer", "n_head"):
        if cfg is not None and hasattr(cfg, key):
            sig[key] = getattr(cfg, key)
    sig["num_parameters"] = sum(p.numel() for p in model.parameters())
    return sig


def read_train_state(path: str | os.PathLike) -> dict[str, Any]:
    """The ``train_state/trainer.json`` of a checkpoint folder, or a clear error."""
    d = Path(path)
    f = d / STATE_DIR / "trainer.json"
    if not d.is_dir():
        raise CourseInputError(f"checkpoint {d} does not exist (expected a folder written by the Trainer)")
    if not f.is_file():
        raise CourseInputError(
            f"{d} has no {STATE_DIR}/trainer.json, so it cannot be resumed (it is a model folder, "
            "not a training checkpoint, or an interrupted write)")
    try:
        state = json.loads(f.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise CourseInputError(f"{f} is damaged ({e}); it cannot be resumed") from None
    if state.get("format") != STATE_FORMAT:
        raise CourseInputError(f"{f}: unknown checkpoint format {state.get('format')!r} (expected {STATE_FORMAT})")
    return state


BARELY_TRAINED = 0.6
"""A loss above this share of ln(vocabulary size), a uniform guess's loss, means a model has learned little."""


def training_note(path: str | os.PathLike, vocab_size: int) -> str | None:
    """One line saying why a model folder's text will read as gibberish, when its training says so; else None.

    Reads ``train_state/trainer.json`` (written by the Trainer and `course train`): the steps it
    trained and its last validation loss (else its last training loss). When that loss is still
    above `BARELY_TRAINED` x ln(`vocab_size`), the loss of guessing every token alike, the model has
    learned little more than which tokens are common. No training record: None.
    """
    f = Path(path) / STATE_DIR / "trainer.json"
    try:
        state = json.loads(f.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    evals = [e["val_loss"] for e in state.get("eval_history", []) if e.get("val_loss") is not None]
    trains = [h["loss"] for h in state.get("history", []) if h.get("loss") is not None]
    loss, kind = (evals[-1], "validation") if evals else (trains[-1], "training") if trains else (None, "")
    if loss is None or vocab_size < 2:
        return None
    chance = math.log(vocab_size)
    if loss <= BARELY_TRAINED * chance:
        return None
    steps = state.get("step")
    return (f"this model trained {steps if steps is not None else 'a few'} steps and its {kind} loss is still "
            f"{loss:.2f}, near the {chance:.2f} of a uniform guess among its {vocab_size:,} tokens: it has learned "
            "little yet, so expect gibberish. Train it longer (`course train` with the same flags and --resume "
            "continues the run).")


def check_resumable(d: Path, state: dict[str, Any], model: nn.Module, config: dict[str, Any], seq_len: int) -> None:
    """Raise, naming every difference, unless `state` (from `read_train_state(d)`) can continue this run.

    The model's shape and the settings that shape the run must match; the fields in
    `RESUMABLE_CHANGES` (epochs, max_steps, intervals, the output folder, the device) may change.
    """
    diffs = config_differences(state["model"], model_signature(model))
    if diffs:
        raise CourseInputError(f"checkpoint {d} was made for another model: " + "; ".join(diffs))
    diffs = config_differences(state["train_config"], config, ignore=RESUMABLE_CHANGES)
    if state.get("seq_len") != seq_len:
        diffs.append(f"sequence length: checkpoint {state.get('seq_len')!r}, now {seq_len!r}")
    if diffs:
        raise CourseInputError(
            f"checkpoint {d} was made with other training settings, so it cannot continue this run: "
            + "; ".join(diffs) + ". Use the same settings, or start a new run (--overwrite)")


def rng_state() -> dict[str, Any]:
    """The random states a step uses (cheap: taken before every step). Python's is added at save."""
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(rng: dict[str, Any]) -> None:
    """Restore what `rng_state` took (and Python's, under "python", as a checkpoint stores it)."""
    torch.set_rng_state(rng["torch"])
    if rng.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    py = rng.get("python")
    if py:
        random.setstate((py[0], tuple(py[1]), py[2]))


def save_tokenizer(tokenizer: Tokenizer | None, folder: Path, context: int | None) -> None:
    """Save `tokenizer` (course or transformers) into `folder`; nothing without one."""
    if tokenizer is None:
        return
    for method in ("save_pretrained", "save"):
        fn = getattr(tokenizer, method, None)
        if callable(fn):
            if method == "save" and context:
                try:  # the course BPETokenizer records the model's context for transformers
                    fn(str(folder), model_max_length=context)
                    return
                except TypeError:
                    pass
            fn(str(folder))
            return


def write_checkpoint(
    target: Path,
    *,
    model: nn.Module,
    tokenizer: Tokenizer | None,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler | None,
    rng: dict[str, Any],
    run: dict[str, Any],
    history: list[dict[str, Any]],
    eval_history: list[dict[str, Any]],
) -> None:
    """Write model + tokenizer + ``train_state/`` atomically to `target`.

    `run` holds where the run stands (step, micro_batches_done, epoch, total_steps,
    seq_len, world_size, train_config); `rng` is what `rng_state` took.
    """
    py = random.getstate()  # the Trainer draws none; kept so a resumed notebook continues alike
    with atomic_dir(target) as tmp:
        model.save_pretrained(tmp)
        save_tokenizer(tokenizer, tmp, context_length(model))
        state_dir = tmp / STATE_DIR
        state_dir.mkdir()
        torch.save({
            "optimizer": optimizer.state_dict(),
            "scaler": scaler.state_dict() if scaler is not None else None,
            "torch_rng": rng["torch"],
            "cuda_rng": rng["cuda"],
        }, state_dir / "state.pt")
        info = {
            "format": STATE_FORMAT,
            **run,
            "model": model_signature(model),
            "python_rng": [py[0], list(py[1]), py[2]],
            "history": history,
            "eval_history": eval_history,
            "saved_at": time.strftime("%Y-%m-%d %H:%M:%S"),
        }
        (state_dir / "trainer.json").write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")


def load_weights(d: Path, model: nn.Module, device: torch.device) -> None:
    """Load ``d/model.safetensors`` into `model` (the course GPT or a transformers model)."""
    from safetensors.torch import load_file

    f = d / "model.safetensors"
    if not f.is_file():
        raise CourseInputError(f"checkpoint {d} has no model.safetensors")
    sd = load_file(f)
    if hasattr(model, "load_hf_state_dict"):  # the course GPT
        model.load_hf_state_dict(sd)
        return
    sd = {k: v.to(device) for k, v in sd.items()}
    missing, unexpected = model.load_state_dict(sd, strict=False)
    missing = [k for k in missing if not ignored_state_key(k)]
    if missing or unexpected:
        raise CourseInputError(f"checkpoint {d} does not fit the model: missing {missing}, unexpected {unexpected}")
    if hasattr(model, "tie_weights"):
        model.tie_weights()


def load_optimizer_state(d: Path, optimizer: torch.optim.Optimizer,
                         scaler: torch.amp.GradScaler | None) -> dict[str, Any]:
    """Load the optimizer (and GradScaler) state of checkpoint `d`; returns the stored blob (RNG states)."""
    blob = torch.load(d / STATE_DIR / "state.pt", map_location="cpu", weights_only=True)
    optimizer.load_state_dict(blob["optimizer"])
    if scaler is not None and blob.get("scaler"):
        scaler.load_state_dict(blob["scaler"])
    return blob
