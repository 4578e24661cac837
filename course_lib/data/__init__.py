"""Text in, batches out: corpora, the augmentation step, splits, token windows and batches.

The pieces, in the order the data flows::

    load_corpus(name_or_path) -> str            Tiny Shakespeare, the offline corpus, or your file
    expand_lines(lines, target, seed)           the original project's expand_train.py, done carefully
    train_val_split(data, val_fraction)         contiguous for text/ids, duplicate-aware for lines
    encode_corpus(text, tokenizer, cache_dir)   ids as a cached .npy (uint16 when the vocabulary fits)
    TokenDataset(ids, seq_len)                  windows of seq_len + 1 tokens: x = w[:-1], y = w[1:]
    make_loader(dataset, batch_size, ...)       a seeded torch DataLoader; get_batch() samples at random

References:
- A. Karpathy, char-rnn (2015), source of the Tiny Shakespeare file
  (https://github.com/karpathy/char-rnn, data/tinyshakespeare/input.txt).
- A. Karpathy, minGPT ``CharDataset`` and nanoGPT ``get_batch``: the x/y shift by one token.
- Wei & Zou, "EDA: Easy Data Augmentation Techniques" (2019): word deletion and swaps,
  the spirit of `expand_lines`' operations.

The package, one module a stage: corpora, augmentation, splits, encoding, batches.
Every name stays importable from ``course_lib.data``.

Introduced in notebooks/02_data_and_embeddings.ipynb.
"""

from __future__ import annotations

from .augmentation import ExpandReport, expand_lines
from .batches import TokenDataset, get_batch, make_loader
from .corpora import (
    CORPORA,
    DEFAULT_CORPUS,
    DOWNLOAD_TIMEOUT_S,
    SHAKESPEARE_BYTES,
    SHAKESPEARE_ENV,
    SHAKESPEARE_FILE,
    SHAKESPEARE_SHA256,
    SHAKESPEARE_URL,
    corpus_stats,
    load_corpus,
    offline_corpus,
    read_lines,
)
from .encoding import encode_corpus, vocab_size_of
from .splits import train_val_split

__all__ = [
    "DEFAULT_CORPUS",
    "CORPORA",
    "SHAKESPEARE_URL",
    "SHAKESPEARE_SHA256",
    "SHAKESPEARE_BYTES",
    "SHAKESPEARE_FILE",
    "SHAKESPEARE_ENV",
    "DOWNLOAD_TIMEOUT_S",
    "load_corpus",
    "offline_corpus",
    "corpus_stats",
    "ExpandReport",
    "expand_lines",
    "read_lines",
    "train_val_split",
    "vocab_size_of",
    "encode_corpus",
    "TokenDataset",
    "make_loader",
    "get_batch",
]
