"""Plots and widgets. Thin: each draws what a plain, tested function computes (the head scores
are `course_lib.interp`'s, the token labels `course_lib.tokenizer`'s).

Submodules, one per room (each lists its public names in ``__all__``):

- tokens     TokenizerPlayground              (notebooks/01_tokenization)
- training   LiveLossPlot                     (notebooks/06_training)
- decoding   DecodingExplorer                 (notebooks/07_decoding_strategies)
- attention  AttentionExplorer, plot_attention, head_view, model_view (bertviz bridge)
                                              (notebooks/03 and 08)
- heads      plot_history (what course_lib.toys recorded), plot_head_scores, plot_logit_lens
                                              (notebooks/08)
- offline_assets  offline_html: bertviz's scripts inlined from static/, so its views draw offline

Names are loaded on first use, so ``import course_lib.viz`` does not import
ipywidgets or bertviz until a widget is asked for.
"""

from __future__ import annotations

import importlib
from typing import Any

_SUBMODULES = ("tokens", "training", "decoding", "attention", "heads", "offline_assets")


def __getattr__(name: str) -> Any:
    """Import submodules on first use (a widget's dependencies only when it is asked for); a name
    listed in a submodule's ``__all__`` is found there too (``viz.AttentionExplorer``)."""
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    for sub in _SUBMODULES:
        module = importlib.import_module(f".{sub}", __name__)
        if name in getattr(module, "__all__", ()):
            return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_SUBMODULES,
                   *(n for sub in _SUBMODULES for n in importlib.import_module(f".{sub}", __name__).__all__)})
