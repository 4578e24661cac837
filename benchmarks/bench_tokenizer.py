"""The course's byte-level BPE against its references, side by side in one run.

1. Training a vocabulary of 8,000 on about 1 MB of text: `BPETokenizer.train` against
   Hugging Face `tokenizers` (`BpeTrainer`, byte level, same input, same special token,
   same min_frequency; it uses every core). Goal: at most 10x slower.
2. Encoding throughput with GPT-2's vocabulary: `gpt2_tokenizer().encode_ordinary`
   (cold: empty word cache; warm: the cache filled by one pass) against tiktoken's
   `encode_ordinary` (one thread). Goal: at least a tenth of tiktoken's.
3. Tokens produced on the text by the two 8,000 vocabularies. Goal: within 1%.

Rounds alternate between the contenders so machine noise hits both alike; the report
gives medians and ratios, by wall clock and by this process's CPU time.

    python benchmarks/bench_tokenizer.py            # Tiny Shakespeare (1.1 MB) when present
    python benchmarks/bench_tokenizer.py --text FILE --vocab_size 8000 --rounds 3
    python benchmarks/bench_tokenizer.py --quick    # seconds: only proves the script works
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from course_lib.tokenizer import (  # noqa: E402
    ENDOFTEXT,
    BPETokenizer,
    gpt2_tokenizer,
    tiktoken_gpt2,
)


def load_text(path: str | None, quick: bool) -> tuple[str, str]:
    if path:
        from course_lib.io import read_text

        return read_text(path, flag="--text"), path
    from course_lib.data import DEFAULT_CORPUS, load_corpus

    # Tiny Shakespeare when it can be had (cached, COURSE_SHAKESPEARE, download), else the offline corpus
    text = load_corpus(DEFAULT_CORPUS, verbose=False)
    name = "Tiny Shakespeare" if len(text) == 1_115_394 else "the offline course corpus"
    if quick:
        return text[:20_000], f"{name} (first 20,000 characters)"
    return text, name


def timed(fn):  # -> (result, wall seconds, cpu seconds)
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w, time.process_time() - c


def hf_train(text: str, vocab_size: int, min_frequency: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=[ENDOFTEXT],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator([text], trainer=trainer)
    return tok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--text", help="UTF-8 text file (default: Tiny Shakespeare, else the course corpus)")
    parser.add_argument("--vocab_size", type=int, default=8000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="tiny text and vocabulary: proves the script runs")
    args = parser.parse_args(argv)
    vocab_size = 400 if args.quick else args.vocab_size
    rounds = max(1, args.rounds)

    text, name = load_text(args.text, args.quick)
    n_bytes = len(text.encode("utf-8"))
    print(f"text: {name}, {n_bytes:,} bytes | vocab {vocab_size:,} | rounds {rounds} | "
          f"{os.cpu_count()} CPU cores | RAYON_NUM_THREADS={os.environ.get('RAYON_NUM_THREADS', 'all cores')}")

    # 1. training
    course_w, course_c, hf_w, hf_c = [], [], [], []
    ours = hf = None
    for _ in range(rounds):
        ours, w, c = timed(lambda: BPETokenizer.train(text, vocab_size))
        course_w.append(w)
        course_c.append(c)
        hf, w, c = timed(lambda: hf_train(text, vocab_size, 2))
        hf_w.append(w)
        hf_c.append(c)
    ratio_w = statistics.median(a / b for a, b in zip(course_w, hf_w))
    ratio_c = statistics.median(a / b for a, b in zip(course_c, hf_c))
    print("\n1. training (median of rounds)")
    print(f"   course BPETokenizer.train : {statistics.median(course_w):7.2f} s wall, "
          f"{statistics.median(course_c):7.2f} s CPU")
    print(f"   HF tokenizers BpeTrainer   : {statistics.median(hf_w):7.2f} s wall, "
          f"{statistics.median(hf_c):7.2f} s CPU (all threads)")
    print(f"   ratio course / HF          : {ratio_w:5.1f}x wall, {ratio_c:5.1f}x CPU   (goal: <= 10x)")

    # 3 first, on the tokenizers just trained: tokens on the text
    assert ours is not None and hf is not None
    n_ours = len(ours.encode_ordinary(text))
    n_hf = len(hf.encode(text).ids)
    hf_merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m)
                 for m in __import__("json").loads(hf.to_str())["model"]["merges"]]
    from course_lib.tokenizer.teaching import _token_str

    our_merges = [(_token_str(ours.vocab[a]), _token_str(ours.vocab[b])) for a, b in ours.merges]
    same = sum(x == y for x, y in zip(our_merges, hf_merges))

    # 2. encoding throughput with GPT-2's vocabulary
    gpt2, enc = gpt2_tokenizer(), tiktoken_gpt2()
    cold, warm, tik = [], [], []
    for _ in range(rounds):
        gpt2._cache.clear()
        ids, w, _c = timed(lambda: gpt2.encode_ordinary(text))
        cold.append(w)
        _, w, _c = timed(lambda: gpt2.encode_ordinary(text))
        warm.append(w)
        ref, w, _c = timed(lambda: enc.encode_ordinary(text))
        tik.append(w)
        assert ids == ref, "course and tiktoken disagree"
    mb = n_bytes / 1e6
    t_cold, t_warm, t_tik = (statistics.median(x) for x in (cold, warm, tik))
    print("\n2. encoding with GPT-2's vocabulary (one thread, ids identical)")
    print(f"   course, cold word cache    : {mb / t_cold:6.2f} MB/s ({t_cold:.2f} s)")
    print(f"   course, warm word cache    : {mb / t_warm:6.2f} MB/s ({t_warm:.2f} s)")
    print(f"   tiktoken encode_ordinary   : {mb / t_tik:6.2f} MB/s ({t_tik:.2f} s)")
    print(f"   course / tiktoken          : {t_tik / t_cold:5.2f} cold, {t_tik / t_warm:5.2f} warm   "
          "(goal: >= 0.10)")

    print(f"\n3. tokens on the text at vocab {vocab_size:,}")
    print(f"   course {n_ours:,} | HF {n_hf:,} | difference {100 * (n_ours - n_hf) / n_hf:+.3f}%   (goal: within 1%)")
    print(f"   identical merges: {same:,} of {len(our_merges):,} (HF learned {len(hf_merges):,})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
