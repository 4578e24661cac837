"""`course train`: train a small GPT-2 on a text file with a tokenizer folder (the original ``train.py``).

    course train --train_txt data/train_aug_50000.txt --tokenizer_dir outputs/tokenizer_8k_50k \\
                 --seq_len 256 --epochs 8 --batch_size 16

It prints a plan first (parameters, tokens, steps, device, precision, a rough time), then
trains with `course_lib.train.Trainer` and writes a Hugging Face model folder (model +
tokenizer + ``train_state/``) to ``--out`` (default ``outputs/mini_gpt2_med``), every
``--save_every`` steps, at the end, and on Ctrl-C. An existing ``--out`` folder is never
touched unless ``--overwrite`` (start again) or ``--resume`` (continue it) is given.
``--impl hf`` trains ``transformers.GPT2LMHeadModel`` with the same loop, for comparison.
The folder loads in ``transformers.pipeline("text-generation", model=OUT)``.

Introduced in notebooks/06_training.ipynb.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from . import add_flag

HELP = "train a GPT-2 on a UTF-8 text file with a tokenizer folder (resumable)"
DEFAULT_OUT = "outputs/mini_gpt2_med"

# The flags that set TrainConfig fields: flag -> (field, help). Their defaults are the named recipe
# train.COMMAND_LINE's (argparse shows them with %(default)s), so no value is written here.
TRAIN_FLAGS: dict[str, tuple[str, str]] = {
    "--seq_len": ("seq_len", "tokens per sequence"),
    "--epochs": ("epochs", "passes over the data"),
    "--batch_size": ("batch_size", "sequences per micro-step"),
    "--grad_accum": ("grad_accum_steps", "micro-steps per optimizer step"),
    "--max_steps": ("max_steps", "stop after N optimizer steps (default: --epochs decides)"),
    "--lr": ("lr", "peak learning rate"),
    "--min_lr": ("min_lr", "final learning rate"),
    "--warmup_steps": ("warmup_steps", "linear warm-up steps"),
    "--weight_decay": ("weight_decay", "AdamW weight decay on the 2-D weights"),
    "--beta1": ("beta1", "AdamW beta1"),
    "--beta2": ("beta2", "AdamW beta2"),
    "--eps": ("eps", "AdamW epsilon"),
    "--grad_clip": ("grad_clip", "gradient-norm clip, 0 = off"),
    "--eval_interval": ("eval_interval", "evaluate (and print a sample) every N steps"),
    "--eval_batches": ("eval_batches", "validation batches per evaluation"),
    "--save_every": ("checkpoint_interval", "write a checkpoint every N steps"),
    "--sample_prompt": ("sample_prompt", "prompt of the sample printed at each evaluation"),
    "--sample_tokens": ("sample_tokens", "tokens of that sample"),
    "--sample_top_k": ("sample_top_k", "top-k of that sample (1: greedy)"),
    "--sample_temperature": ("sample_temperature", "temperature of that sample"),
    "--device": ("device", "cpu, cuda, cuda:1 or mps (default: best available)"),
    "--precision": ("precision", "auto: bf16 or fp16 on GPUs, fp32 on the CPU"),
    "--seed": ("seed", "random seed"),
}
# TrainConfig fields worked out from the run's length when their flag is left out (train.schedule_defaults).
DERIVED = {"min_lr": "lr/10", "warmup_steps": "5%% of the steps, at most 200",
           "eval_interval": "10 times per run", "checkpoint_interval": "at every evaluation"}
# TrainConfig fields the command sets another way: --out, --no_progress.
NOT_FLAGS = ("out_dir", "progress")
# The flags that set GPTConfig fields (the vocabulary comes from --tokenizer_dir).
MODEL_FLAGS: dict[str, tuple[str, str]] = {
    "--n_layer": ("n_layer", "transformer blocks"),
    "--n_head": ("n_head", "attention heads"),
    "--n_embd": ("n_embd", "embedding width"),
    "--n_positions": ("n_positions", "the model's context length (default: --seq_len)"),
    "--dropout": ("dropout", "dropout"),
}


def command_line_model() -> Any:
    """The GPTConfig `course train` builds unless its flags say otherwise (vocab_size and n_positions
    are set at run time): nanoGPT's Shakespeare-char size, 6 blocks of 6 heads, 384 wide, ~10M
    parameters, with dropout 0.1 because it reads a small corpus for several epochs."""
    from ..model import GPTConfig

    return GPTConfig(n_layer=6, n_head=6, n_embd=384, dropout=0.1)


def _field_type(cls: type, name: str) -> type:
    """The flag type of a dataclass field: int, float or str (the non-None part of ``X | None``)."""
    import typing

    hint = typing.get_type_hints(cls)[name]
    options = [t for t in typing.get_args(hint) if t is not type(None)] or [hint]
    return options[0]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the command's flags; those of TrainConfig and GPTConfig fields come from the dataclasses."""
    from ..runtime import PRECISIONS
    from ..train import COMMAND_LINE, TrainConfig

    add_flag(parser, "--train_txt", required=True, metavar="PATH", help="UTF-8 training text")
    add_flag(parser, "--tokenizer_dir", required=True, metavar="DIR",
             help="folder written by `course train-tokenizer` (either --impl)")
    add_flag(parser, "--out", default=DEFAULT_OUT, metavar="DIR", help="output folder (default %(default)s)")
    add_flag(parser, "--val_txt", default=None, metavar="PATH",
             help="validation text (default: the last --val_fraction of --train_txt)")
    add_flag(parser, "--val_fraction", type=float, default=0.1, metavar="F",
             help="validation share of --train_txt when no --val_txt (default %(default)s)")
    model = command_line_model()
    for flag, (name, text) in MODEL_FLAGS.items():
        default = None if name == "n_positions" else getattr(model, name)
        add_flag(parser, flag, type=_field_type(type(model), name), default=default,
                 metavar="P" if name == "dropout" else "N",
                 help=text if default is None else f"{text} (default %(default)s)")
    for flag, (name, text) in TRAIN_FLAGS.items():
        kind = _field_type(TrainConfig, name)
        extra: dict[str, Any] = {"choices": PRECISIONS} if name == "precision" else {
            "metavar": {int: "N", float: "X", str: "TEXT"}[kind]}
        if name in DERIVED:
            add_flag(parser, flag, type=kind, default=None, help=f"{text} (default: {DERIVED[name]})", **extra)
        else:
            default = getattr(COMMAND_LINE, name)
            shown = "" if default is None or "(default" in text else " (default %(default)r)"
            add_flag(parser, flag, type=kind, default=default, help=text + shown, **extra)
    add_flag(parser, "--impl", choices=("course", "hf"), default="course",
             help="course: the course's GPT; hf: transformers.GPT2LMHeadModel through the same loop")
    group = parser.add_mutually_exclusive_group()
    add_flag(group, "--overwrite", action="store_true", help="replace an existing --out folder")
    add_flag(group, "--resume", action="store_true", help="continue the checkpoint in --out")
    add_flag(parser, "--no_progress", action="store_true", help="no progress bar (for logs)")


def _check_out(out: Path, args: argparse.Namespace) -> None:
    """Refuse an existing --out before anything is loaded, changing nothing."""
    from ..errors import CourseInputError
    from ..train import read_train_state

    if out.exists() and not out.is_dir():
        raise CourseInputError(f"--out: {out} exists and is a file, not a folder; nothing was changed")
    exists = out.is_dir() and any(out.iterdir())
    if args.resume:
        if not exists:
            raise CourseInputError(f"--resume: {out} holds no checkpoint to continue; drop --resume to start a run")
        read_train_state(out)
    elif exists and not args.overwrite:
        raise CourseInputError(
            f"--out: {out} already exists and is not empty; nothing was changed. Pass --resume to continue "
            "its training, --overwrite to start again and replace it, or choose another --out folder.")


def _load_tokenizer(directory: str) -> Any:
    from ..errors import CourseInputError
    from ..tokenizer import load_tokenizer

    d = Path(directory)
    hint = (" Make one with `course train-tokenizer --text YOUR.txt --vocab_size 8000 "
            f"--out {directory}`.")
    if not d.exists():
        raise CourseInputError(f"--tokenizer_dir: folder not found: {d}." + hint)
    if not d.is_dir():
        raise CourseInputError(f"--tokenizer_dir: {d} is a file; expected a tokenizer folder." + hint)
    try:
        return load_tokenizer(d)
    except CourseInputError as e:
        raise CourseInputError(f"--tokenizer_dir: {e}." + hint) from None


def _encode(path: str, flag: str, tok: Any, cache_dir: str) -> Any:
    """Encode a text file, caching the ids as .npy next to the tokenizer (a second run starts at once)."""
    from ..data import encode_corpus
    from ..io import read_text

    return encode_corpus(read_text(path, flag=flag), tok, cache_dir=cache_dir, verbose=False)


def _build_model(args: argparse.Namespace, vocab_size: int, out: Path) -> Any:
    from ..model import GPT, GPTConfig

    shape = {name: getattr(args, flag[2:]) for flag, (name, _) in MODEL_FLAGS.items()}
    cfg = GPTConfig(**{**shape, "vocab_size": vocab_size, "n_positions": args.n_positions or args.seq_len})
    if args.resume:  # the flags must describe the checkpoint's model; Trainer.resume checks the rest
        import json

        from ..errors import CourseInputError
        from ..train import config_differences

        saved = GPTConfig.from_hf(json.loads((out / "config.json").read_text(encoding="utf-8")))
        diffs = config_differences(saved.to_dict(), cfg.to_dict())
        if diffs:
            raise CourseInputError(
                f"--resume: the checkpoint in {out} is another model: " + "; ".join(diffs)
                + " (vocab_size comes from --tokenizer_dir). Use the flags of the original run")
        if args.impl == "hf":
            from transformers import GPT2LMHeadModel

            return GPT2LMHeadModel.from_pretrained(str(out))
        return GPT.from_pretrained(out)
    model = GPT(cfg)
    if args.impl == "hf":
        from transformers import GPT2LMHeadModel

        hf = GPT2LMHeadModel(cfg.to_hf(attn_implementation="sdpa"))
        hf.load_state_dict(model.to_hf().state_dict())  # the same initial weights as --impl course
        return hf
    return model


def run(args: argparse.Namespace) -> int:
    """Check everything, print the plan, train, save (under torchrun: one process per rank)."""
    from .. import distributed

    started = distributed.init()  # False unless launched by torchrun
    try:
        return _run(args)
    finally:
        if started:
            distributed.cleanup()


def _run(args: argparse.Namespace) -> int:
    from ..data import TokenDataset
    from ..errors import CourseInputError
    from ..io import prepare_output_dir
    from ..runtime import seed_everything
    from ..train import COMMAND_LINE, Trainer
    from ..train.config import count_steps, schedule_defaults

    out = Path(args.out)
    _check_out(out, args)
    for name in ("seq_len", "batch_size", "grad_accum", "n_layer", "n_head", "n_embd"):
        if getattr(args, name) < 1:
            raise CourseInputError(f"--{name} must be at least 1, got {getattr(args, name)}")
    if args.epochs <= 0:
        raise CourseInputError(f"--epochs must be > 0, got {args.epochs}")
    tok = _load_tokenizer(args.tokenizer_dir)
    ids = _encode(args.train_txt, "--train_txt", tok, args.tokenizer_dir)
    if args.val_txt:
        train_ids, val_ids = ids, _encode(args.val_txt, "--val_txt", tok, args.tokenizer_dir)
    else:
        if not 0.0 < args.val_fraction < 1.0:
            raise CourseInputError(f"--val_fraction must be between 0 and 1, got {args.val_fraction}")
        n_val = max(1, int(len(ids) * args.val_fraction))
        train_ids, val_ids = ids[: len(ids) - n_val], ids[len(ids) - n_val:]
    n_train = len(train_ids)
    need = args.seq_len * args.batch_size + 1
    if n_train < need:
        fit_batch = max(0, (n_train - 1) // args.seq_len)
        raise CourseInputError(
            f"--train_txt: the training text is {n_train:,} tokens, smaller than one batch of "
            f"--batch_size {args.batch_size} x --seq_len {args.seq_len} = {need - 1:,} tokens. Use a smaller "
            + (f"--batch_size (at most {fit_batch} at this --seq_len) or " if fit_batch else "")
            + f"--seq_len (at most {max(1, (n_train - 1) // args.batch_size)} at this --batch_size), or more text")
    if len(val_ids) < args.seq_len + 1:
        raise CourseInputError(
            f"validation text is {len(val_ids):,} tokens, fewer than one sequence of --seq_len {args.seq_len} + 1; "
            f"use a smaller --seq_len, a larger --val_fraction, or a longer --val_txt")

    seed_everything(args.seed)
    model = _build_model(args, len(tok), out)
    train_ds, val_ds = TokenDataset(train_ids, args.seq_len), TokenDataset(val_ids, args.seq_len)
    steps = count_steps(len(train_ds), args.batch_size, args.grad_accum, args.epochs, args.max_steps or None)
    chosen = {name: getattr(args, flag[2:]) for flag, (name, _) in TRAIN_FLAGS.items()}
    derived = schedule_defaults(steps, args.lr)  # what the flags leave out
    derived["checkpoint_interval"] = chosen["eval_interval"] or derived["eval_interval"]
    chosen = {k: derived[k] if k in DERIVED and v is None else v for k, v in chosen.items()}
    chosen.update(max_steps=args.max_steps or None, sample_prompt=args.sample_prompt or None)
    config = COMMAND_LINE.replace(**chosen, out_dir=str(out), progress=not args.no_progress)
    trainer = Trainer(model, train_ds, val_ds, config, tokenizer=tok)
    if args.resume:
        trainer.resume(out)
    print(f"course train: {args.impl} GPT-2 on {args.train_txt} with the tokenizer in {args.tokenizer_dir}")
    print(trainer.describe_plan())
    how = " (resuming)" if args.resume else " (replacing the old folder)" if args.overwrite and out.exists() else ""
    print(f"output:    {out}{how}")
    if trainer.step >= trainer.total_steps:
        print(f"nothing to do: the checkpoint in {out} already finished {trainer.step:,} of {trainer.total_steps:,} "
              "steps (raise --epochs or --max_steps to train further)")
        return 0
    prepare_output_dir(out, overwrite=args.overwrite, resume=args.resume)
    summary = trainer.fit()  # NaN loss and CUDA out-of-memory come back as clear CourseInputErrors
    val = summary.get("val_loss")
    print(f"{summary['status']} at step {summary['step']:,}/{summary['total_steps']:,}: train loss "
          f"{summary['train_loss']:.4f}"
          + (f", val loss {val:.4f} (perplexity {summary['val_ppl']:.2f})" if val is not None else ""))
    print(f"saved to {out}: load it with transformers.pipeline('text-generation', model={str(out)!r}) "
          f"or `course generate --model_dir {out}`")
    if summary["status"] == "interrupted":
        print("continue with the same command plus --resume")
        return 130
    return 0
