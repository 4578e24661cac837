"""`course generate`: continue a prompt with a trained model (the original ``generate.py``).

    course generate --model_dir outputs/mini_gpt2_med --prompt "ROMEO:" \\
                    --strategy top_p --top_p 0.9 --max_new_tokens 100 --seed 7
    course generate --model_dir course --prompt "ROMEO:" --prompt "JULIET:" --stop "."

The model folder is what `course train` writes (a Hugging Face model folder with the
tokenizer files beside it); the tokenizer is read with `course_lib.tokenizer.load_tokenizer`,
or with `transformers.AutoTokenizer` for other folders (``--tokenizer_dir`` points
elsewhere). ``--model_dir`` may also be a Hugging Face hub name (``gpt2``, ``gpt2-medium``,
``gpt2-large``, ``gpt2-xl``), downloaded and cached by `course_lib.pretrained.hub_folder`, or
``course`` for the course's own pretrained model (Tiny Shakespeare, shipped in the package;
``course-draft`` for its small draft); an existing local folder of that name wins. Offline with
a hub name that is not cached, the command prints one line and exits with status 2 (pass
``--model_dir course`` for the shipped model).

The strategies, their flags and defaults come from `course_lib.generate.STRATEGIES` (the
``--strategy`` help lists them); a flag that a strategy does not read is ignored with a
warning. Several ``--prompt``s are decoded as one batch (left-padded, with an attention
mask). The text is printed as it comes (``--stream``, the default when the output is a
terminal) when there is one text to print. Generation stops at the tokenizer's
``<|endoftext|>`` unless ``--eos_token_id -1``, and at any ``--stop`` string.
``--draft_model DIR`` decodes speculatively: the draft (same tokenizer, fewer layers) proposes
``--num_assistant_tokens`` tokens, the model checks them in one pass (greedy: the same text, faster).

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

    from ..generate import DecodingSettings

HELP = "continue a prompt with a trained model (greedy, sampling, top-k/p, min-p, beams, ...)"
PROMPT_PAD = 0  # the id left padding uses when the tokenizer has no end-of-text token (the mask hides it)

# The flags that set DecodingSettings fields: (field, type, metavar, what it does). Their defaults come
# from the strategy (course_lib.generate.STRATEGIES); the help shows them.
SETTING_FLAGS: tuple[tuple[str, Any, str, str], ...] = (
    ("temperature", float, "T", "divide the logits by T when sampling; 0 = greedy"),
    ("top_k", int, "K", "keep the K most likely tokens"),
    ("top_p", float, "P", "nucleus: keep the most likely tokens up to mass P"),
    ("min_p", float, "P", "keep tokens at least P times as likely as the best"),
    ("typical_p", float, "P", "locally typical sampling mass"),
    ("repetition_penalty", float, "R", "> 1 discourages repeating tokens (1 = off)"),
    ("no_repeat_ngram_size", int, "N", "never repeat an N-gram (0 = off)"),
    ("num_beams", int, "N", "beams for beam strategies"),
    ("num_beam_groups", int, "G", "groups for diverse_beam"),
    ("diversity_penalty", float, "D", "diverse_beam: penalty per earlier group's choice"),
    ("length_penalty", float, "L", "beam score = log p / length**L"),
    ("penalty_alpha", float, "A", "contrastive: degeneration penalty"),
    ("num_return_sequences", int, "N", "texts to print per prompt (sampling or beams)"),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the command's flags."""
    from ..generate import STRATEGIES, defaults_text

    add_flag(parser, "--model_dir", required=True, metavar="DIR",
             help="model folder written by `course train`, a hub name such as gpt2 (needs the internet "
                  "once), or course (the course's own pretrained model, offline)")
    add_flag(parser, "--prompt", required=True, action="append", metavar="TEXT",
             help="the text to continue; repeat the flag to decode several prompts as one batch")
    add_flag(parser, "--strategy", default="greedy", choices=tuple(STRATEGIES), metavar="NAME",
             help="decoding strategy (default greedy): " + "; ".join(
                 f"{s.name}: {s.summary}" for s in STRATEGIES.values()))
    add_flag(parser, "--max_new_tokens", type=int, default=100, metavar="N", help="tokens to add (default 100)")
    for name, kind, metavar, what in SETTING_FLAGS:
        add_flag(parser, f"--{name}", type=kind, default=None, metavar=metavar,
                 help=f"{what} (default {defaults_text(name)})")
    add_flag(parser, "--early_stopping", action="store_true", default=None,
             help="beams: stop once num_beams texts are done")
    add_flag(parser, "--seed", type=int, default=None, metavar="S", help="random seed for sampling")
    add_flag(parser, "--eos_token_id", type=int, default=None, metavar="ID",
             help="stop at this token (default: the tokenizer's <|endoftext|>; -1 = never stop)")
    add_flag(parser, "--stop", action="append", default=None, metavar="TEXT",
             help="end a text once it ends with TEXT (repeatable); the stop string is kept")
    add_flag(parser, "--stream", action=argparse.BooleanOptionalAction, default=None,
             help="print the text as it comes (default: on when the output is a terminal; one text only)")
    add_flag(parser, "--draft_model", default=None, metavar="DIR",
             help="speculative decoding: a small model folder with the same tokenizer proposes tokens that "
                  "--model_dir verifies, several per forward pass (same text for greedy; one prompt)")
    add_flag(parser, "--num_assistant_tokens", type=int, default=None, metavar="K",
             help="with --draft_model: draft tokens proposed per round (default 5)")
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
    """The folder `--model_dir` means: a local folder, else a hub name's cached snapshot, or the course model.

    A local folder wins over a hub name. A hub name that cannot be downloaded (offline,
    or no network) raises a one-line `CourseInputError`.
    """
    from .. import pretrained

    d = Path(value)
    if d.is_dir():
        return d
    if d.is_file():
        raise CourseInputError(f"--model_dir: {d} is a file; expected a model folder written by `course train`")
    if value in ("course", "course-draft"):
        return pretrained.course_model_dir(draft=value == "course-draft")
    if not pretrained.is_hub_name(value) or d.is_absolute():
        raise CourseInputError(f"--model_dir: folder not found: {d}")
    try:
        return pretrained.hub_folder(value)
    except pretrained.HubUnavailableError as e:
        raise CourseInputError(
            f"--model_dir: no folder {value!r} here, and GPT-2 {e}. Go online once (it is cached "
            "afterwards), pass a local model folder, or --model_dir course for the course's own model"
        ) from None
    except CourseInputError as e:
        raise CourseInputError(f"--model_dir: no folder {value!r} here, and {e}") from None


def decoding_settings(args: argparse.Namespace) -> DecodingSettings:
    """The one `DecodingSettings` that --strategy and the flags mean: the strategy's defaults, then
    the flags given that it reads (`course_lib.generate.STRATEGIES`)."""
    from ..generate import strategy

    values = {name: getattr(args, name, None) for name, *_ in SETTING_FLAGS}
    return strategy(args.strategy).settings(**values, early_stopping=getattr(args, "early_stopping", None))


def ignored_flags(args: argparse.Namespace) -> list[str]:
    """The setting flags given that --strategy does not read."""
    from ..generate import strategy

    reads = strategy(args.strategy).reads
    names = [name for name, *_ in SETTING_FLAGS] + ["early_stopping"]
    return [f"--{n}" for n in names if getattr(args, n, None) is not None and n not in reads]


def _check_text_flags(args: argparse.Namespace) -> None:
    if any(not p for p in args.prompt):
        raise CourseInputError("--prompt is empty: give some text to continue")
    if args.stop is not None and any(s == "" for s in args.stop):
        raise CourseInputError("--stop is empty: an empty stop string would end every text at once; "
                               "give text such as '.' or a newline")


def _batch(prompts: list[list[int]], pad: int) -> tuple[Any, Any]:
    """Prompts of different lengths, left-padded: ids (B, T) and the attention mask (None for one prompt)."""
    import torch

    T = max(len(p) for p in prompts)
    ids = torch.tensor([[pad] * (T - len(p)) + p for p in prompts])
    if len(prompts) == 1:
        return ids, None
    return ids, torch.tensor([[0] * (T - len(p)) + [1] * len(p) for p in prompts])


def run(args: argparse.Namespace) -> int:
    """Run the command."""
    import warnings

    from ..generate import StopStrings, TextStreamer, strategy
    from ..runtime import pick_device

    model_dir = resolve_model_dir(args.model_dir)
    _check_text_flags(args)
    settings = decoding_settings(args)
    for flag in ignored_flags(args):
        print(f"course generate: warning: {flag} does not apply to --strategy {args.strategy}; ignored",
              file=sys.stderr)
    device = pick_device(args.device)
    model = _load_model(model_dir).to(device).eval()
    tokenizer = load_tokenizer_any(args.tokenizer_dir or model_dir)
    prompts = [_encode_prompt(tokenizer, p) for p in args.prompt]
    for text, ids in zip(args.prompt, prompts):
        if not ids:
            raise CourseInputError(f"--prompt {text!r} encodes to no tokens")
        if max(ids) >= model.config.vocab_size:
            raise CourseInputError(
                f"the tokenizer gives id {max(ids)} but the model knows {model.config.vocab_size} tokens; "
                "is --tokenizer_dir the one the model was trained with?")
    eos = args.eos_token_id
    if eos is None:
        eos = _eos_of(tokenizer, model_dir, model.config.vocab_size)
    elif eos < 0:
        eos = None
    ids, mask = _batch(prompts, eos if eos is not None else PROMPT_PAD)
    rows = len(prompts) * settings.num_return_sequences
    stream = sys.stdout.isatty() if args.stream is None else args.stream
    streamer = None
    if stream and rows == 1 and strategy(args.strategy).streams:
        streamer = TextStreamer(tokenizer, skip_ids=() if eos is None else (eos,))
    elif args.stream:
        why = f"{rows} texts" if rows > 1 else f"--strategy {args.strategy}"
        print(f"course generate: warning: --stream shows one text as it comes; {why}: printed when done",
              file=sys.stderr)
    options = _run_options(args, settings, eos, mask, streamer, tokenizer)
    if args.draft_model is not None:
        options.update(_draft_options(args, settings, len(prompts), model, device))
    from ..train.checkpoint import training_note

    note = training_note(model_dir, model.config.vocab_size)
    if note:  # once everything is read and checked: say why before printing the text, not after someone wonders
        print(f"course generate: note: {note}", file=sys.stderr)
    with warnings.catch_warnings(record=True) as caught:  # one line each, not Python's two
        warnings.simplefilter("always")
        out = strategy(args.strategy).run(model, ids, args.max_new_tokens, settings, **options)
    for w in caught:
        print(f"course generate: warning: {w.message}", file=sys.stderr)
    if streamer is None:
        stopper = StopStrings(tokenizer, args.stop) if args.stop else None
        texts = []
        for r, row in enumerate(out.tolist()):
            prompt = prompts[r // settings.num_return_sequences]
            texts.append(tokenizer.decode(prompt + _new_tokens(row[ids.size(1):], prompt, eos, stopper)))
        for i, text in enumerate(texts):
            if len(texts) > 1:
                print(f"--- {i + 1} of {len(texts)} ---")
            print(text)
    sys.stdout.flush()
    return 0


def _run_options(args: argparse.Namespace, settings: DecodingSettings, eos: int | None, mask: Any,
                 streamer: Any, tokenizer: Any) -> dict[str, Any]:
    """What the strategy runs with besides its settings (--draft_model adds assistant_model: _draft_options)."""
    return dict(attention_mask=mask, eos_token_id=eos, use_cache=not args.no_cache,
                seed=args.seed if settings.do_sample else None,  # only sampling draws random numbers
                streamer=streamer, stop_strings=args.stop, tokenizer=tokenizer if args.stop else None)


def _draft_options(args: argparse.Namespace, settings: DecodingSettings, prompts: int, model: Any,
                   device: Any) -> dict[str, Any]:
    """--draft_model: the draft loaded and checked (vocabulary, strategy, one prompt), as generate's options."""
    from ..generate import DEFAULT_ASSISTANT_TOKENS

    if settings.num_beams > 1 or settings.penalty_alpha is not None or settings.num_beam_groups > 1:
        raise CourseInputError(f"--draft_model works with greedy decoding and sampling (greedy, sample, top_k, top_p, "
                               f"min_p, typical), not --strategy {args.strategy}")
    if prompts > 1 or settings.num_return_sequences > 1:
        raise CourseInputError("--draft_model continues one prompt into one text: give one --prompt "
                               "and no --num_return_sequences")
    if args.no_cache:
        raise CourseInputError("--draft_model always uses the KV cache (its rollback is the point): drop --no_cache")
    try:  # the names --model_dir takes work here too; its messages name this flag
        d = resolve_model_dir(args.draft_model)
        draft = _load_model(d).to(device).eval()
    except CourseInputError as e:
        raise CourseInputError(str(e).replace("--model_dir", "--draft_model")) from None
    if draft.config.vocab_size != model.config.vocab_size:
        raise CourseInputError(
            f"--draft_model: {d} has a vocabulary of {draft.config.vocab_size} tokens but --model_dir has "
            f"{model.config.vocab_size}: the draft must be trained with the model's tokenizer")
    k = DEFAULT_ASSISTANT_TOKENS if args.num_assistant_tokens is None else args.num_assistant_tokens
    return {"assistant_model": draft, "num_assistant_tokens": k}


def _new_tokens(new: list[int], prompt: list[int], eos: int | None, stopper: Any) -> list[int]:
    """The new tokens of one text up to its end: before the eos id, through the token completing a stop string."""
    if eos is not None and eos in new:
        new = new[: new.index(eos)]  # drop the stop token and its padding
    if stopper is not None:
        for n in range(1, len(new) + 1):
            if stopper.ends(prompt + new[:n]):
                return new[:n]
    return new
