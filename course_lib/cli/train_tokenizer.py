"""`course train-tokenizer`: train a byte-level BPE tokenizer on a UTF-8 text file.

    course train-tokenizer --text data/train.txt --vocab_size 8000 --out outputs/tokenizer_8k
    course train-tokenizer --text data/train.txt --vocab_size 8000 --out outputs/tok --impl course

``--impl hf`` (the default, as in the original script) trains with Hugging Face
`tokenizers`; ``--impl course`` uses the course's own `BPETokenizer.train`. Both write
``vocab.json`` + ``merges.txt`` (GPT-2's format) and the config files, so
`course_lib.tokenizer.load_tokenizer(out)`, ``course train`` and
``transformers.AutoTokenizer.from_pretrained(out)`` all load either one.

Introduced in notebooks/01_tokenization.ipynb.
"""

from __future__ import annotations

import argparse
import time

from . import add_flag

HELP = "train a byte-level BPE tokenizer (GPT-2 format) on a UTF-8 text file"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the command's flags."""
    add_flag(parser, "--text", required=True, metavar="PATH", help="UTF-8 training text, e.g. data/train.txt")
    add_flag(parser, "--vocab_size", type=int, default=8000, metavar="N",
             help="vocabulary size including 256 bytes and <|endoftext|> (default 8000)")
    add_flag(parser, "--out", required=True, metavar="DIR", help="output folder, e.g. outputs/tokenizer_8k")
    add_flag(parser, "--impl", choices=("hf", "course"), default="hf",
             help="hf: Hugging Face tokenizers (fast, default); course: the course's own trainer")
    add_flag(parser, "--min_frequency", type=int, default=2, metavar="N",
             help="stop merging when the best pair occurs fewer times (default 2)")
    add_flag(parser, "--overwrite", action="store_true", help="replace an existing non-empty --out folder")


def run(args: argparse.Namespace) -> int:
    """Check the input, train, save, and print a short summary."""
    from ..errors import CourseInputError
    from ..io import prepare_output_dir, read_text
    from ..tokenizer import ENDOFTEXT, BPETokenizer, load_tokenizer, train_hf_tokenizer

    text = read_text(args.text, flag="--text")
    floor = 256 + 1
    if args.vocab_size < floor:
        raise CourseInputError(
            f"--vocab_size {args.vocab_size} is too small: it must be at least {floor} "
            f"(256 bytes + 1 special token, {ENDOFTEXT})"
        )
    if args.min_frequency < 1:
        raise CourseInputError(f"--min_frequency {args.min_frequency} must be at least 1")
    out = prepare_output_dir(args.out, overwrite=args.overwrite)
    start = time.perf_counter()
    if args.impl == "course":
        BPETokenizer.train(text, args.vocab_size, verbose=True, min_frequency=args.min_frequency).save(out)
    else:
        train_hf_tokenizer(args.text, args.vocab_size, out, min_frequency=args.min_frequency)
    seconds = time.perf_counter() - start
    tok = load_tokenizer(out)
    n_tokens = len(tok.encode_ordinary(text))
    n_bytes = len(text.encode("utf-8"))
    print(
        f"trained a {len(tok):,}-token byte-level BPE ({args.impl}) on {args.text} in {seconds:.1f} s; "
        f"{n_bytes / max(n_tokens, 1):.2f} bytes per token on it ({n_tokens:,} tokens)\n"
        f"saved to {out} (vocab.json, merges.txt, tokenizer config)"
    )
    if len(tok) < args.vocab_size:
        print(short_vocab_note(text, args.text, args.vocab_size, len(tok), len(tok.special_tokens), args.min_frequency))
    return 0


def short_vocab_note(text: str, name: str, asked: int, got: int, n_special: int, min_frequency: int) -> str:
    """Why the vocabulary came out smaller than --vocab_size, and what that means.

    BPE only merges a pair of adjacent tokens that occurs at least --min_frequency times,
    and never across word boundaries (GPT-2's pre-tokenization), so a small text runs
    out of pairs worth merging long before a large vocabulary is reached.
    """
    import regex

    from ..tokenizer import GPT2_SPLIT_PATTERN

    words = set(regex.findall(GPT2_SPLIT_PATTERN, text))
    return (
        f"note: --vocab_size {asked:,} asked for more tokens than {name} supports; the vocabulary has "
        f"{got:,} (256 bytes + {got - 256 - n_special:,} merges + {n_special} special). "
        "BPE stopped because no pair of adjacent tokens "
        f"occurs at least --min_frequency {min_frequency} times any more: it never merges across words, and "
        f"the text has only {len(words):,} distinct words and symbols. This is not an error: the tokenizer "
        f"is complete for this text and `course train` uses its real size ({got:,}). A larger vocabulary "
        "needs more varied text (more distinct words); `course expand` adds few new words, and "
        "--min_frequency 1 also merges pairs seen once. A smaller vocabulary is no loss on this text: "
        "its words are already whole tokens or a few pieces each."
    )
