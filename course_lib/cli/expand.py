"""`course expand`: grow a one-example-per-line file to exactly --target lines.

    course expand --in_txt data/train.txt --out_txt data/train_aug.txt --target 8000 --seed 7
    course expand --in_txt data/train.txt --out_txt data/train_aug.txt --target 8000 --seed 7 \\
        --val_fraction 0.1 --val_txt data/val.txt

The original project's ``expand_train.py``, done carefully: the same seed gives a
byte-identical file, the report says how many lines are originals, new and exact
repeats, and with ``--val_fraction`` the validation lines are split off *before*
expanding and written untouched, so no augmented copy of one reaches training.
Existing output files are never overwritten without ``--overwrite``.

Introduced in notebooks/02_data_and_embeddings.ipynb.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import CourseInputError
from ..io import write_atomic

HELP = "grow a one-example-per-line text file to exactly --target lines (seeded, reported)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the command's flags (original underscore names; dashed forms work too)."""
    from ..data.augmentation import MAX_TARGET
    from . import add_flag

    add_flag(parser, "--in_txt", required=True, help="input UTF-8 file, one example per line")
    add_flag(parser, "--out_txt", required=True, help="where to write the expanded training lines")
    add_flag(parser, "--target", required=True, type=int,
             help=f"exact number of lines in --out_txt (at least the number of input lines, at most {MAX_TARGET:,})")
    add_flag(parser, "--seed", type=int, default=0, help="random seed (same seed, same file); default 0")
    add_flag(parser, "--val_fraction", type=float, default=None,
             help="split this fraction of the input lines off as validation before expanding")
    add_flag(parser, "--val_txt", default=None,
             help="where to write the validation lines (default: OUT_TXT's name + '_val')")
    add_flag(parser, "--no_shuffle", action="store_true",
             help="keep the originals first and the made lines after them")
    add_flag(parser, "--overwrite", action="store_true", help="replace existing output files")


def _check_output(path: Path, flag: str, overwrite: bool, inputs: list[Path]) -> None:
    for p in inputs:
        if p.exists() and path.exists() and path.resolve() == p.resolve():
            raise CourseInputError(f"{flag}: {path} is the input file; choose another output file")
    if path.is_dir():
        raise CourseInputError(f"{flag}: {path} is a folder; expected a file name")
    if path.exists() and not overwrite:
        raise CourseInputError(
            f"{flag}: {path} already exists; nothing was written. Pass --overwrite to replace it, "
            "or choose another file"
        )


def run(args: argparse.Namespace) -> int:
    """Read, (split,) expand, write, report. Returns 0."""
    from ..data import expand_lines, read_lines, train_val_split
    from ..data.augmentation import MAX_TARGET

    in_path, out_path = Path(args.in_txt), Path(args.out_txt)
    if args.target is None or args.target < 1:
        raise CourseInputError(f"--target: expected a whole number of lines >= 1, got {args.target}")
    if args.target > MAX_TARGET:
        raise CourseInputError(
            f"--target {args.target:,} is more lines than course expand makes: at most {MAX_TARGET:,} (every line "
            "is held in memory, and long before that the made lines are almost all exact repeats)")
    val_path = None
    if args.val_fraction is not None:
        if not 0.0 < args.val_fraction < 1.0:
            raise CourseInputError(
                f"--val_fraction: expected a number strictly between 0 and 1, got {args.val_fraction}"
            )
        val_path = Path(args.val_txt) if args.val_txt else out_path.with_name(
            f"{out_path.stem}_val{out_path.suffix or '.txt'}")
        if val_path.resolve() == out_path.resolve():
            raise CourseInputError(f"--val_txt: {val_path} is the same file as --out_txt")
    elif args.val_txt:
        raise CourseInputError("--val_txt needs --val_fraction (the share of lines to hold out)")

    _check_output(out_path, "--out_txt", args.overwrite, [in_path])
    if val_path is not None:
        _check_output(val_path, "--val_txt", args.overwrite, [in_path])

    lines, blank = read_lines(in_path, flag="--in_txt")
    val: list[str] = []
    train = lines
    if args.val_fraction is not None:
        if len(set(lines)) < 2:
            raise CourseInputError(f"--in_txt: {in_path} needs at least 2 different lines to split off validation")
        train, val = train_val_split(lines, args.val_fraction, seed=args.seed)
    if args.target < len(train):
        what = "training lines left after the validation split" if val else "lines in --in_txt"
        raise CourseInputError(
            f"--target {args.target:,} is smaller than the {len(train):,} {what}; "
            f"expansion only adds lines, so use --target {len(train):,} or more"
        )
    out, report = expand_lines(train, args.target, args.seed, forbidden=val, shuffle=not args.no_shuffle)

    write_atomic(out_path, ("\n".join(out) + "\n").encode("utf-8"))
    print(f"read {len(lines):,} lines from {in_path}" + (f" (skipped {blank:,} blank lines)" if blank else ""))
    if val_path is not None:
        write_atomic(val_path, ("\n".join(val) + "\n").encode("utf-8"))
        leaked = len(set(val) & set(out))
        print(f"validation: {len(val):,} lines written untouched to {val_path}; "
              f"{len(train):,} lines expanded; validation lines found in training: {leaked}")
    print(f"wrote {out_path}: {report.summary()}")
    return 0
