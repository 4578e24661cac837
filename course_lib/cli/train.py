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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the command's flags."""
    add_flag(parser, "--train_txt", required=True, metavar="PATH", help="UTF-8 training text")
    add_flag(parser, "--tokenizer_dir", required=True, metavar="DIR",
             help="folder written by `course train-tokenizer` (either --impl)")
    add_flag(parser, "--seq_len", type=int, default=256, metavar="T", help="tokens per sequence (default 256)")
    add_flag(parser, "--epochs", type=float, default=8.0, metavar="E", help="passes over the data (default 8)")
    add_flag(parser, "--batch_size", type=int, default=16, metavar="B", help="sequences per micro-step (default 16)")
    add_flag(parser, "--out", default=DEFAULT_OUT, metavar="DIR", help=f"output folder (default {DEFAULT_OUT})")
    add_flag(parser, "--val_txt", default=None, metavar="PATH",
             help="validation text (default: the last --val_fraction of --train_txt)")
    add_flag(parser, "--val_fraction", type=float, default=0.1, metavar="F",
             help="validation share of --train_txt when no --val_txt (default 0.1)")
    add_flag(parser, "--n_layer", type=int, default=6, metavar="N", help="transformer blocks (default 6)")
    add_flag(parser, "--n_head", type=int, default=6, metavar="N", help="attention heads (default 6)")
    add_flag(parser, "--n_embd", type=int, default=384, metavar="C", help="embedding width (default 384)")
    add_flag(parser, "--n_positions", type=int, default=None, metavar="N",
             help="the model's context length (default: --seq_len)")
    add_flag(parser, "--dropout", type=float, default=0.1, metavar="P", help="dropout (default 0.1)")
    add_flag(parser, "--lr", type=float, default=5e-4, metavar="LR", help="peak learning rate (default 5e-4)")
    add_flag(parser, "--min_lr", type=float, default=None, metavar="LR", help="final learning rate (default lr/10)")
    add_flag(parser, "--warmup_steps", type=int, default=None, metavar="N",
             help="linear warm-up steps (default: 5%% of the steps, at most 200)")
    add_flag(parser, "--weight_decay", type=float, default=0.1, metavar="W", help="AdamW weight decay (default 0.1)")
    add_flag(parser, "--grad_accum", type=int, default=1, metavar="K",
             help="micro-steps per optimizer step (default 1)")
    add_flag(parser, "--grad_clip", type=float, default=1.0, metavar="G",
             help="gradient-norm clip, 0 = off (default 1)")
    add_flag(parser, "--max_steps", type=int, default=None, metavar="N", help="stop after N optimizer steps")
    add_flag(parser, "--eval_interval", type=int, default=None, metavar="N",
             help="evaluate (and print a sample) every N steps (default: 10 times per run)")
    add_flag(parser, "--eval_batches", type=int, default=20, metavar="N",
             help="validation batches per evaluation (default 20)")
    add_flag(parser, "--save_every", type=int, default=None, metavar="N",
             help="write a checkpoint every N steps (default: at every evaluation)")
    add_flag(parser, "--sample_prompt", default="The", metavar="TEXT",
             help="prompt of the sample printed at each evaluation (default 'The')")
    add_flag(parser, "--device", default=None, metavar="DEV", help="cpu, cuda, cuda:1 or mps (default: best available)")
    add_flag(parser, "--precision", choices=("auto", "fp32", "bf16", "fp16"), default="auto",  # runtime.PRECISIONS
             help="auto: bf16 or fp16 on GPUs, fp32 on the CPU")
    add_flag(parser, "--seed", type=int, default=1337, metavar="S", help="random seed (default 1337)")
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

    cfg = GPTConfig(vocab_size=vocab_size, n_positions=args.n_positions or args.seq_len,
                    n_embd=args.n_embd, n_layer=args.n_layer, n_head=args.n_head, dropout=args.dropout)
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
    from ..train import TrainConfig, Trainer
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
    derived = schedule_defaults(steps, args.lr)  # what the flags leave out
    eval_interval = args.eval_interval or derived["eval_interval"]
    config = TrainConfig(
        batch_size=args.batch_size, seq_len=args.seq_len, grad_accum_steps=args.grad_accum,
        epochs=args.epochs, max_steps=args.max_steps, lr=args.lr,
        min_lr=args.min_lr if args.min_lr is not None else derived["min_lr"],
        warmup_steps=args.warmup_steps if args.warmup_steps is not None else derived["warmup_steps"],
        weight_decay=args.weight_decay, beta1=0.9, beta2=0.95, grad_clip=args.grad_clip,
        eval_interval=eval_interval, eval_batches=args.eval_batches,
        sample_prompt=args.sample_prompt or None, sample_tokens=40,
        out_dir=str(out), checkpoint_interval=args.save_every or eval_interval,
        device=args.device, precision=args.precision, seed=args.seed, progress=not args.no_progress,
    )
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
