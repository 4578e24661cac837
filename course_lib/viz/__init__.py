"""Plots and widgets. Thin: each draws what a plain, tested function computes.

Submodules, one per room (each lists its public names in ``__all__``):

- tokens     TokenizerPlayground              (notebooks/01_tokenization)
- training   LiveLossPlot                     (notebooks/06_training)
- decoding   DecodingExplorer                 (notebooks/07_decoding_strategies)
- attention  AttentionExplorer, plot_attention, head_view, model_view (bertviz bridge)
                                              (notebooks/03 and 08)
- heads      head_roles, attention_maps, plot_history (notebooks/08; the small models it
             scores are course_lib.toys')

Names are loaded on first use, so ``import course_lib.viz`` does not import
ipywidgets or bertviz until a widget is asked for.
"""

from __future__ import annotations

import importlib
from typing import Any

SUBMODULES = ("tokens", "training", "decoding", "attention", "heads")


def __getattr__(name: str) -> Any:
    if name in SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    for sub in SUBMODULES:
        try:
            module = importlib.import_module(f".{sub}", __name__)
        except ModuleNotFoundError as e:
            if e.name == f"{__name__}.{sub}":
                continue
            raise
        if name in getattr(module, "__all__", ()):
            return getattr(module, name)
    raise AttributeError(f"module 'course_lib.viz' has no attribute {name!r}")


def __dir__() -> list[str]:
    names = list(SUBMODULES)
    for sub in SUBMODULES:
        try:
            names += list(getattr(importlib.import_module(f".{sub}", __name__), "__all__", ()))
        except ModuleNotFoundError:
            pass
    return sorted(names)
