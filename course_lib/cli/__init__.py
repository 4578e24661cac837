"""The course's command line: the original project's scripts as ``course <command>``.

    course train-tokenizer --text data/train.txt --vocab_size 8000 --out outputs/tokenizer_8k
    course expand --in_txt data/train.txt --out_txt data/train_aug.txt --target 8000 --seed 7
    course train --train_txt data/train_aug.txt --tokenizer_dir outputs/tokenizer_8k ...
    course generate --model_dir outputs/mini_gpt2_med --prompt "..." --strategy top_p

``python -m course_lib`` is the same. Flags keep the original underscore names; the
dashed forms (``--vocab-size``) are accepted too. Bad input prints one clear line
(no traceback) and exits with status 2.

Each command lives in its own submodule with ``HELP``, ``add_arguments(parser)`` and
``run(args) -> int``.

Introduced in notebooks/01_tokenization.ipynb.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Any

from ..errors import CourseInputError

COMMANDS = {
    "train-tokenizer": "train_tokenizer",
    "expand": "expand",
    "train": "train",
    "generate": "generate",
    "demo": "demo",
    "teacher": "teacher",
    "slides": "slides",
}


def add_flag(parser: argparse.ArgumentParser | Any, name: str, **kwargs: Any) -> Any:
    """Add ``--some_flag`` together with its dashed alias ``--some-flag``."""
    names = [name]
    if "_" in name:
        names.append(name.replace("_", "-"))
    kwargs.setdefault("dest", name.lstrip("-"))
    return parser.add_argument(*names, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="course", description="gpt2-course command line: tokenize, expand, train, generate."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command, module_name in COMMANDS.items():
        module = importlib.import_module(f".{module_name}", __name__)
        p = sub.add_parser(command, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``course`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except CourseInputError as e:
        print(f"course {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"course {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
