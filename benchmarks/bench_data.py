"""From text to batches: the encoded-corpus cache and batching, side by side with references.

1. Encoding Tiny Shakespeare with an 8,000-token BPE (`course_lib.tokenizer.BPETokenizer`,
   trained on the same text) through `encode_corpus`: the first run (encode + write the
   uint16 ``.npy``; a freshly loaded tokenizer, so its word cache is empty) against the
   cached run (hash + ``np.load``), and against the reference encoder, Hugging Face
   `tokenizers` with the same merges (``Tokenizer.encode``), which has no cache.
2. Building batches of (B, T) = (32, 256): one epoch of `TokenDataset` + `make_loader`
   against a pure-tensor reference (a seeded permutation + ``torch.stack`` of slices), and
   nanoGPT-style `get_batch`; windows per second.
3. Time to the first batch on a second run: read the text, load the tokenizer, load the
   cached ids, make the dataset and loader, take one batch.

Rounds alternate between contenders; the report gives medians (wall clock, and CPU time of
this process) and ratios.

    python benchmarks/bench_data.py              # Tiny Shakespeare when present, else the default corpus
    python benchmarks/bench_data.py --text FILE --vocab_size 8000 --rounds 3
    python benchmarks/bench_data.py --quick      # seconds: only proves the script works
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from course_lib import data as cdata  # noqa: E402
from course_lib.tokenizer import BPETokenizer  # noqa: E402


def load_text(path: str | None, quick: bool) -> tuple[str, str]:
    if path:
        from course_lib.io import read_text

        text, name = read_text(path, flag="--text"), path
    else:  # Tiny Shakespeare when it can be had (cached, COURSE_SHAKESPEARE, download), else the offline corpus
        text = cdata.load_corpus(cdata.DEFAULT_CORPUS, verbose=False)
        name = "Tiny Shakespeare" if len(text) == 1_115_394 else "the offline course corpus"
    if quick:
        return text[:30_000], f"{name} (first 30,000 characters)"
    return text, name


def timed(fn):  # -> (result, wall seconds, cpu seconds)
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w, time.process_time() - c


def hf_same_merges(tok_dir: Path):
    """The reference encoder: HF `tokenizers` loading the very files the course tokenizer saved."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    hf = Tokenizer(models.BPE.from_file(str(tok_dir / "vocab.json"), str(tok_dir / "merges.txt")))
    hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    hf.decoder = decoders.ByteLevel()
    return hf


def reference_epoch(ids: np.ndarray, seq_len: int, batch_size: int, seed: int) -> int:
    """Pure tensors, the nanoGPT way: a seeded permutation of window starts, torch.stack of slices."""
    t = torch.from_numpy(ids.astype(np.int64))
    n_windows = (len(t) - 1 - seq_len) // seq_len + 1
    order = torch.randperm(n_windows, generator=torch.Generator().manual_seed(seed)) * seq_len
    n = 0
    for i in range(0, len(order), batch_size):
        w = torch.stack([t[s : s + seq_len + 1] for s in order[i : i + batch_size].tolist()])  # (B, T+1)
        x, _y = w[:, :-1], w[:, 1:]  # (B, T), (B, T)
        n += x.shape[0]
    return n


def course_epoch(ids: np.ndarray, seq_len: int, batch_size: int, seed: int) -> int:
    loader = cdata.make_loader(cdata.TokenDataset(ids, seq_len), batch_size, shuffle=True, seed=seed)
    n = 0
    for x, _y in loader:
        n += x.shape[0]
    return n


def get_batch_epoch(ids: np.ndarray, seq_len: int, batch_size: int, seed: int) -> int:
    g = torch.Generator().manual_seed(seed)
    steps = (len(ids) - 1) // seq_len // batch_size + 1
    for _ in range(steps):
        cdata.get_batch(ids, batch_size, seq_len, generator=g)
    return steps * batch_size


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--text", default=None)
    ap.add_argument("--vocab_size", type=int, default=8000)
    ap.add_argument("--seq_len", type=int, default=256)
    ap.add_argument("--batch_size", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    if args.quick:
        args.vocab_size, args.seq_len, args.rounds = min(args.vocab_size, 600), 64, 1

    text, name = load_text(args.text, args.quick)
    print(f"text: {name}, {len(text):,} characters | vocab {args.vocab_size:,} | "
          f"(B, T) = ({args.batch_size}, {args.seq_len}) | {args.rounds} round(s) | "
          f"torch threads {torch.get_num_threads()}")
    with tempfile.TemporaryDirectory() as tmp:
        tok_dir = Path(tmp) / "tok"
        tok, w, c = timed(lambda: BPETokenizer.train(text, args.vocab_size))
        tok.save(tok_dir)
        print(f"trained the {len(tok):,}-token BPE in {w:.2f} s wall ({c:.2f} s CPU), saved to a temp folder")
        hf = hf_same_merges(tok_dir)

        first, cached, ref = [], [], []
        ids = None
        for r in range(args.rounds):
            cache = Path(tmp) / f"cache{r}"
            fresh = BPETokenizer.load(tok_dir)  # empty word cache, as in a new process
            ids, w, c = timed(lambda t=fresh, d=cache: cdata.encode_corpus(text, t, d, verbose=False))
            first.append((w, c))
            again = BPETokenizer.load(tok_dir)
            ids2, w, c = timed(lambda t=again, d=cache: cdata.encode_corpus(text, t, d, verbose=False))
            cached.append((w, c))
            assert np.array_equal(ids, ids2)
            hf_ids, w, c = timed(lambda: np.asarray(hf.encode(text).ids, dtype=np.uint16))
            ref.append((w, c))
            assert np.array_equal(hf_ids, ids), "the course BPE and HF tokenizers disagree"
        med = lambda xs, k: statistics.median(x[k] for x in xs)
        npy = next((Path(tmp) / "cache0").glob("tokens-*.npy"))
        print(f"\n1. encode_corpus: {len(ids):,} tokens, {ids.dtype}, {npy.stat().st_size / 1e6:.2f} MB on disk "
              f"({len(text) / len(ids):.2f} characters per token); ids equal HF tokenizers' in every round")
        print("| run | wall | CPU | ratio (wall) |")
        print("|---|---|---|---|")
        print(f"| first run (encode + save .npy) | {med(first, 0):.3f} s | {med(first, 1):.3f} s | 1 |")
        print(f"| cached run (hash + np.load) | {med(cached, 0):.4f} s | {med(cached, 1):.4f} s | "
              f"{med(first, 0) / med(cached, 0):.0f}x faster |")
        print(f"| reference: HF tokenizers encode, no cache | {med(ref, 0):.3f} s | {med(ref, 1):.3f} s | "
              f"course first run is {med(first, 0) / med(ref, 0):.1f}x HF |")

        rows = {"course TokenDataset + make_loader": course_epoch,
                "reference: randperm + torch.stack of slices": reference_epoch,
                "course get_batch (random offsets)": get_batch_epoch}
        times: dict[str, list[tuple[float, float, int]]] = {k: [] for k in rows}
        for r in range(args.rounds):
            for label, fn in rows.items():
                n, w, c = timed(lambda fn=fn, r=r: fn(ids, args.seq_len, args.batch_size, r))
                times[label].append((w, c, n))
        ref = times["reference: randperm + torch.stack of slices"]
        ref_w = statistics.median(w for w, _, _ in ref)
        ref_c = statistics.median(c for _, c, _ in ref)
        print(f"\n2. one epoch of (B, T) = ({args.batch_size}, {args.seq_len}) batches")
        print("| batching | windows | wall | CPU | windows/s (wall) | time vs reference (wall / CPU) |")
        print("|---|---|---|---|---|---|")
        for label, ts in times.items():
            w = statistics.median(w for w, _, _ in ts)
            c = statistics.median(c for _, c, _ in ts)
            print(f"| {label} | {ts[0][2]:,} | {w:.3f} s | {c:.3f} s | {ts[0][2] / w:,.0f} | "
                  f"{w / ref_w:.2f}x / {c / max(ref_c, 1e-9):.2f}x |")

        def second_run():
            t = load_text(args.text, args.quick)[0]
            tk = BPETokenizer.load(tok_dir)
            i = cdata.encode_corpus(t, tk, Path(tmp) / "cache0", verbose=False)
            loader = cdata.make_loader(cdata.TokenDataset(i, args.seq_len), args.batch_size, seed=0)
            return next(iter(loader))

        starts = [timed(second_run) for _ in range(args.rounds)]
        print(f"\n3. second run, text to first batch (read text, load tokenizer, cached ids, loader): "
              f"{statistics.median(s[1] for s in starts):.3f} s wall, "
              f"{statistics.median(s[2] for s in starts):.3f} s CPU")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
