"""The fast BPE trainer behind `BPETokenizer.train`: incremental pair counts.

The notebook's loop is `count_pairs` then `apply_merge` over the whole text, once per
merge. This one splits the text into unique words once; pair counts live in a dict
and a heap, with an index from each pair to the words that hold it, so a merge only
rewrites the words that hold the pair. It chooses like Hugging Face `tokenizers`: the
most frequent pair, ties to the pair of smaller ids. Same merges, much faster.

Introduced in notebooks/01_tokenization.ipynb.
"""

from __future__ import annotations

import heapq

_SHIFT = 24  # pair (a, b) is packed as a << _SHIFT | b in the trainer


def _train_merges(
    words: list[list[int]],
    counts: list[int],
    vocab: dict[int, bytes],
    target: int,
    min_frequency: int,
    verbose: bool,
) -> tuple[list[tuple[int, int]], dict[int, bytes]]:
    """The incremental BPE loop over unique words; grows `vocab` to `target` tokens."""
    shift, mask = _SHIFT, (1 << _SHIFT) - 1
    pair_counts: dict[int, int] = {}
    where: dict[int, set[int]] = {}
    for wi, (w, c) in enumerate(zip(words, counts)):
        for a, b in zip(w, w[1:]):
            k = a << shift | b
            pair_counts[k] = pair_counts.get(k, 0) + c
            s = where.get(k)
            if s is None:
                where[k] = {wi}
            else:
                s.add(wi)
    heap = [(-c, k) for k, c in pair_counts.items()]
    heapq.heapify(heap)
    inverse = {b: i for i, b in vocab.items()}
    merges: list[tuple[int, int]] = []
    bar = None
    if verbose:
        from tqdm.auto import tqdm

        bar = tqdm(total=max(target - len(vocab), 0), desc="BPE merges", unit="merge")
    heappush, heappop = heapq.heappush, heapq.heappop
    while len(vocab) < target and heap:
        negc, k = heappop(heap)
        c = pair_counts.get(k, 0)
        if c != -negc:  # stale entry: the count fell since it was pushed
            if c > 0:
                heappush(heap, (-c, k))
            continue
        if c < max(min_frequency, 1):
            break
        a, b = k >> shift, k & mask
        merged = vocab[a] + vocab[b]
        x = inverse.get(merged)
        if x is None:
            x = len(vocab)
            vocab[x] = merged
            inverse[merged] = x
        merges.append((a, b))
        del pair_counts[k]
        new_pairs: set[int] = set()
        for wi in where.pop(k, ()):
            w = words[wi]
            if a not in w:
                continue
            cnt = counts[wi]
            out: list[int] = []
            i, n = 0, len(w)
            changed = False
            while i < n:
                if i + 1 < n and w[i] == a and w[i + 1] == b:
                    changed = True
                    if out:  # left neighbour p: (p, a) -> (p, x)
                        p = out[-1]
                        kk = p << shift | a
                        if kk != k:
                            pair_counts[kk] -= cnt
                        kk = p << shift | x
                        pair_counts[kk] = pair_counts.get(kk, 0) + cnt
                        new_pairs.add(kk)
                        s = where.get(kk)
                        if s is None:
                            where[kk] = {wi}
                        else:
                            s.add(wi)
                    if i + 2 < n:  # right neighbour q: (b, q) -> (x, q)
                        q = w[i + 2]
                        kk = b << shift | q
                        if kk != k:
                            pair_counts[kk] -= cnt
                        kk = x << shift | q
                        pair_counts[kk] = pair_counts.get(kk, 0) + cnt
                        new_pairs.add(kk)
                        s = where.get(kk)
                        if s is None:
                            where[kk] = {wi}
                        else:
                            s.add(wi)
                    out.append(x)
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            if changed:
                words[wi] = out
        for kk in new_pairs:
            cc = pair_counts.get(kk, 0)
            if cc > 0:
                heappush(heap, (-cc, kk))
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return merges, vocab
