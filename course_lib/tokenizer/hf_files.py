"""Hugging Face tokenizer folders: the config files that name the special tokens.

Shared by `BPETokenizer.save`/`load` and `train_hf_tokenizer`.

Introduced in notebooks/01_tokenization.ipynb.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def _declared_specials(d: Path) -> set[str]:
    """Special-token names declared in a Hugging Face tokenizer folder's config files."""
    names: set[str] = set()

    def grab(v: Any) -> None:
        if isinstance(v, str):
            names.add(v)
        elif isinstance(v, dict) and isinstance(v.get("content"), str):
            names.add(v["content"])
        elif isinstance(v, list):
            for x in v:
                grab(x)

    for fname in ("special_tokens_map.json", "tokenizer_config.json"):
        p = d / fname
        if not p.is_file():
            continue
        try:
            cfg = json.loads(p.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            continue
        if not isinstance(cfg, dict):
            continue
        for key in ("bos_token", "eos_token", "unk_token", "pad_token", "additional_special_tokens",
                    "extra_special_tokens"):
            grab(cfg.get(key))
        for tok in (cfg.get("added_tokens_decoder") or {}).values():
            if isinstance(tok, dict) and tok.get("special"):
                grab(tok)
    p = d / "tokenizer.json"
    if p.is_file():
        try:
            for tok in json.loads(p.read_text(encoding="utf-8")).get("added_tokens", []):
                if tok.get("special"):
                    grab(tok)
        except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
            pass
    return names


def _write_hf_config(d: Path, specials: list[str], model_max_length: int,
                     extra: dict[str, Any] | None = None) -> None:
    main = specials[0] if specials else None
    smap: dict[str, Any] = {}
    if main is not None:
        smap = {"bos_token": main, "eos_token": main, "unk_token": main, "pad_token": main}
    if len(specials) > 1:
        smap["additional_special_tokens"] = specials[1:]
    cfg = {
        "tokenizer_class": "GPT2Tokenizer",
        "model_max_length": model_max_length,
        "add_prefix_space": False,
        "add_bos_token": False,
        "errors": "replace",
        "clean_up_tokenization_spaces": False,
        **smap,
        **(extra or {}),
    }
    (d / "tokenizer_config.json").write_text(json.dumps(cfg, indent=2, ensure_ascii=False), encoding="utf-8")
    (d / "special_tokens_map.json").write_text(json.dumps(smap, indent=2, ensure_ascii=False), encoding="utf-8")
