"""`course generate`: continue a prompt with a trained model (the original ``generate.py``).

    course generate --model_dir outputs/mini_gpt2_med --prompt "ROMEO:" \\
                    --strategy top_p --top_p 0.9 --max_new_tokens 100 --seed 7

The model folder is what `course train` writes (a Hugging Face model folder with the
tokenizer files beside it); the tokenizer is read with `course_lib.tokenizer.load_tokenizer`,
or with `transformers.AutoTokenizer` for other folders (``--tokenizer_dir`` points
elsewhere). ``--model_dir`` may also be a Hugging Face hub name (``gpt2``, ``gpt2-medium``,
``gpt2-large``, ``gpt2-xl``), downloaded and cached by `course_lib.pretrained.hub_folder`, or
``demo`` for the course's small demo model; an existing local folder of that name wins.
Offline with a hub name that is not cached, the command prints one line and exits with
status 2 (it does not train the demo model unasked: pass ``--model_dir demo`` for that).
Strategies: greedy, sample, top_k, top_p, min_p, typical, beam,
contrastive, diverse_beam; each uses the flags that belong to it, with sensible
defaults. Generation stops at the tokenizer's ``<|endoftext|>`` unless
``--eos_token_id -1``.

Introduced in notebooks/07_decoding_strategies.ipynb.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import CourseInputError
from . import add_flag

if TYPE_CHECKING:
    import torch

    from ..generate import DecodingSettings
    from ..protocols import CausalLM

HELP = "continue a prompt with a trained model (greedy, sampling, top-k/p, min-p, beams, ...)"
STRATEGIES = ("greedy", "sample", "top_k", "top_p", "min_p", "typical", "beam", "contrastive", "diverse_beam")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the command's flags."""
    add_flag(parser, "--model_dir", required=True, metavar="DIR",
             help="model folder written by `course train`, a hub name such as gpt2 (needs the internet "
                  "once), or demo (the course's small demo model)")
    add_flag(parser, "--prompt", required=True, help="the text to continue")
    add_flag(parser, "--strategy", default="greedy", choices=STRATEGIES, help="decoding strategy (default greedy)")
    add_flag(parser, "--max_new_tokens", type=int, default=100, metavar="N", help="tokens to add (default 100)")
    add_flag(parser, "--temperature", type=float, default=1.0, metavar="T",
             help="divide the logits by T when sampling; 0 = greedy (default 1)")
    add_flag(parser, "--top_k", type=int, default=None, metavar="K",
             help="keep the K most likely tokens (default 50 for --strategy top_k, 4 for contrastive)")
    add_flag(parser, "--top_p", type=float, default=None, metavar="P",
             help="nucleus: keep the most likely tokens up to mass P (default 0.9 for --strategy top_p)")
    add_flag(parser, "--min_p", type=float, default=None, metavar="P",
             help="keep tokens at least P times as likely as the best (default 0.05 for --strategy min_p)")
    add_flag(parser, "--typical_p", type=float, default=None, metavar="P",
             help="locally typical sampling mass (default 0.9 for --strategy typical)")
    add_flag(parser, "--repetition_penalty", type=float, default=1.0, metavar="R",
             help="> 1 discourages repeating tokens (default 1 = off)")
    add_flag(parser, "--no_repeat_ngram_size", type=int, default=0, metavar="N",
             help="never repeat an N-gram (default 0 = off)")
    add_flag(parser, "--num_beams", type=int, default=4, metavar="N", help="beams for beam strategies (default 4)")
    add_flag(parser, "--num_beam_groups", type=int, default=2, metavar="G", help="groups for diverse_beam (default 2)")
    add_flag(parser, "--diversity_penalty", type=float, default=1.0, metavar="D",
             help="diverse_beam: penalty per earlier group's choice (default 1)")
    add_flag(parser, "--length_penalty", type=float, default=1.0, metavar="L",
             help="beam score = log p / length**L (default 1)")
    add_flag(parser, "--early_stopping", action="store_true", help="beams: stop once num_beams texts are done")
    add_flag(parser, "--penalty_alpha", type=float, default=0.6, metavar="A", help="contrastive: degeneration penalty")
    add_flag(parser, "--num_return_sequences", type=int, default=1, metavar="N",
             help="texts to print (sampling or beams; default 1)")
    add_flag(parser, "--seed", type=int, default=None, metavar="S", help="random seed for sampling")
    add_flag(parser, "--eos_token_id", type=int, default=None, metavar="ID",
             help="stop at this token (default: the tokenizer's <|endoftext|>; -1 = never stop)")
    add_flag(parser, "--tokenizer_dir", default=None, metavar="DIR", help="tokenizer folder (default: --model_dir)")
    add_flag(parser, "--device", default=None, help="cpu, cuda or mps (default: the best available)")
    add_flag(parser, "--no_cache", action="store_true", help="recompute the whole context each step (slower)")


def load_tokenizer_any(directory: str | Path) -> Any:
    """The course tokenizer saved in `directory`, else whatever `AutoTokenizer` finds there.

    Both have ``encode(text) -> list[int]`` and ``decode(ids) -> str``.
    """
    d = Path(directory)
    if not d.is_dir():
        raise CourseInputError(f"--tokenizer_dir: folder not found: {d}")
    try:
        from ..tokenizer import load_tokenizer

        return load_tokenizer(d)
    except (ImportError, CourseInputError) as course_error:
        try:
            from transformers import AutoTokenizer

            tok = AutoTokenizer.from_pretrained(str(d))
        except Exception as e:  # noqa: BLE001 - any failure means: no usable tokenizer here
            why = type(e).__name__
        else:
            if len(tok) > 256:  # transformers builds an empty one from a bare config.json
                return tok
            why = f"a {type(tok).__name__} with only {len(tok)} tokens"
        raise CourseInputError(
            f"no tokenizer found in {d} ({course_error}; transformers: {why}); "
            "pass --tokenizer_dir with the folder `course train-tokenizer` wrote"
        ) from None


def _load_model(model_dir: Path) -> Any:
    """`GPT.from_pretrained`, with a damaged folder reported as one line naming --model_dir."""
    from ..model import GPT

    if not (model_dir / "config.json").is_file():
        raise CourseInputError(
            f"--model_dir: {model_dir} has no config.json; expected a model folder written by `course train`")
    try:
        return GPT.from_pretrained(model_dir)
    except CourseInputError as e:
        said = str(e) if str(model_dir) in str(e) else f"{model_dir}: {e}"
        raise CourseInputError(f"--model_dir: {said}") from None
    except Exception as e:  # noqa: BLE001 - a damaged config.json or weights file
        first = (str(e).strip().splitlines() or [""])[0][:200]
        raise CourseInputError(
            f"--model_dir: {model_dir} could not be loaded ({type(e).__name__}: {first}); expected a model "
            "folder written by `course train` (config.json + model.safetensors)") from None


def _encode_prompt(tokenizer: Any, prompt: str) -> list[int]:
    """The prompt's ids; special tokens written in it (``<|endoftext|>``) are encoded as themselves."""
    from ..tokenizer import BPETokenizer

    if isinstance(tokenizer, BPETokenizer):
        return tokenizer.encode(prompt, allowed_special="all")
    return list(tokenizer.encode(prompt))


def _eos_of(tokenizer: Any, model_dir: Path, vocab_size: int) -> int | None:
    special = getattr(tokenizer, "special_tokens", None)
    if isinstance(special, dict) and "<|endoftext|>" in special:
        return int(special["<|endoftext|>"])
    eos = getattr(tokenizer, "eos_token_id", None)
    if isinstance(eos, int):
        return eos
    cfg = model_dir / "config.json"
    if cfg.is_file():
        eos = json.loads(cfg.read_text(encoding="utf-8")).get("eos_token_id")
        if isinstance(eos, int) and 0 <= eos < vocab_size:
            return eos
    return None


def resolve_model_dir(value: str) -> Path:
    """The folder `--model_dir` means: a local folder, else a hub name's cached snapshot, or the demo model.

    A local folder wins over a hub name. A hub name that cannot be downloaded (offline,
    or no network) raises a one-line `CourseInputError`.
    """
    from .. import pretrained

    d = Path(value)
    if d.is_dir():
        return d
    if d.is_file():
        raise CourseInputError(f"--model_dir: {d} is a file; expected a model folder written by `course train`")
    if value == "demo":
        return pretrained.demo_dir()
    if not pretrained.is_hub_name(value) or d.is_absolute():
        raise CourseInputError(f"--model_dir: folder not found: {d}")
    try:
        return pretrained.hub_folder(value)
    except pretrained.HubUnavailableError as e:
        raise CourseInputError(
            f"--model_dir: no folder {value!r} here, and GPT-2 {e}. Go online once (it is cached "
            "afterwards), pass a local model folder, or --model_dir demo for the course's demo model"
        ) from None
    except CourseInputError as e:
        raise CourseInputError(f"--model_dir: no folder {value!r} here, and {e}") from None


def decoding_settings(args: argparse.Namespace) -> DecodingSettings:
    """The one `DecodingSettings` that --strategy and the flags mean; each strategy's flags, with its defaults.
    """
    from ..generate import DecodingSettings

    s = args.strategy
    kw: dict[str, Any] = dict(repetition_penalty=args.repetition_penalty,
                              no_repeat_ngram_size=args.no_repeat_ngram_size)
    if s in ("sample", "top_k", "top_p", "min_p", "typical"):
        defaults = {"top_k": ("top_k", 50), "top_p": ("top_p", 0.9), "min_p": ("min_p", 0.05),
                    "typical": ("typical_p", 0.9)}
        kw.update(do_sample=True, temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
                  min_p=args.min_p, typical_p=args.typical_p, num_return_sequences=args.num_return_sequences)
        if s in defaults:
            name, value = defaults[s]
            if kw[name] is None:
                kw[name] = value
    elif s in ("beam", "diverse_beam"):
        kw.update(num_beams=args.num_beams, length_penalty=args.length_penalty,
                  early_stopping=args.early_stopping, num_return_sequences=args.num_return_sequences)
        if s == "diverse_beam":
            kw.update(num_beam_groups=args.num_beam_groups, diversity_penalty=args.diversity_penalty)
    elif s == "contrastive":  # one text: --num_return_sequences does not apply
        kw.update(penalty_alpha=args.penalty_alpha, top_k=args.top_k if args.top_k is not None else 4)
    else:  # greedy: more than one text is an error, named by generate
        kw.update(num_return_sequences=args.num_return_sequences)
    return DecodingSettings(**kw)


def run(args: argparse.Namespace) -> int:
    """Run the command."""
    import warnings

    from .. import generate as gen
    from ..runtime import pick_device

    model_dir = resolve_model_dir(args.model_dir)
    if not args.prompt:
        raise CourseInputError("--prompt is empty: give some text to continue")
    settings = decoding_settings(args)
    device = pick_device(args.device)
    model = _load_model(model_dir).to(device).eval()
    from ..train.checkpoint import training_note

    note = training_note(model_dir, model.config.vocab_size)
    if note:  # say why before printing the text, not after someone wonders
        print(f"course generate: note: {note}", file=sys.stderr)
    tokenizer = load_tokenizer_any(args.tokenizer_dir or model_dir)
    ids = _encode_prompt(tokenizer, args.prompt)
    if not ids:
        raise CourseInputError(f"--prompt {args.prompt!r} encodes to no tokens")
    if max(ids) >= model.config.vocab_size:
        raise CourseInputError(
            f"the tokenizer gives id {max(ids)} but the model knows {model.config.vocab_size} tokens; "
            "is --tokenizer_dir the one the model was trained with?")
    eos = args.eos_token_id
    if eos is None:
        eos = _eos_of(tokenizer, model_dir, model.config.vocab_size)
    elif eos < 0:
        eos = None
    with warnings.catch_warnings(record=True) as caught:  # one line each, not Python's two
        warnings.simplefilter("always")
        out = _decode(gen, model, ids, settings, eos, args)
    for w in caught:
        print(f"course generate: warning: {w.message}", file=sys.stderr)
    n_prompt = len(ids)
    texts = []
    for row in out.tolist():
        new = row[n_prompt:]
        if eos is not None and eos in new:
            new = new[: new.index(eos)]  # drop the stop token and its padding
        texts.append(tokenizer.decode(ids + new))
    for i, text in enumerate(texts):
        if len(texts) > 1:
            print(f"--- {i + 1} of {len(texts)} ---")
        print(text)
    sys.stdout.flush()
    return 0


def _decode(gen: Any, model: CausalLM, ids: list[int], settings: DecodingSettings, eos: int | None,
            args: argparse.Namespace) -> torch.Tensor:
    """Run --strategy with `settings`: the output ids, one row per returned text."""
    n, use_cache = args.max_new_tokens, not args.no_cache
    if args.strategy == "contrastive":
        return gen.contrastive_search(model, ids, n, settings, eos_token_id=eos, use_cache=use_cache)
    if args.strategy == "diverse_beam":
        return gen.diverse_beam_search(model, ids, n, settings, eos_token_id=eos, use_cache=use_cache).sequences
    seed = args.seed if settings.do_sample else None  # only sampling draws random numbers
    return gen.generate(model, ids, n, settings, eos_token_id=eos, use_cache=use_cache, seed=seed)
