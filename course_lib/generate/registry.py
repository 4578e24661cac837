"""The decoding strategies, in one table: name -> the function that runs it, the settings it reads, its defaults.

`course generate --strategy` (its choices, help and flag defaults), the `DecodingExplorer`'s
menu and sliders (and so `course demo decoding`), notebook 07's side-by-side comparison and the
docs (``python -m course_lib.generate`` prints the table the README points to) all read
`STRATEGIES`; nothing else lists them. Adding a strategy is one function (with the `StrategyFn`
signature) + one `Strategy` entry below + its row in tests/test_generate_registry.py.

Every `run` has one signature: ``run(model, input_ids, max_new_tokens, settings, **options)``
returning prompt + new ids (B', T'). The options are `generate`'s (attention_mask, eos_token_id,
pad_token_id, use_cache, seed, trace, streamer, stop_strings, tokenizer); a strategy that draws
nothing ignores `seed`, one without a trace ignores `trace`, and one that cannot stream refuses
`streamer` and `stop_strings` in one line.

Introduced in notebooks/07_decoding_strategies.ipynb.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

from ..errors import CourseInputError
from ..protocols import CausalLM
from .beam import BEAM_DEFAULTS, DIVERSE_DEFAULTS, diverse_beam_search
from .processors import DecodingSettings
from .strategies import CONTRASTIVE_DEFAULTS, contrastive_search, generate

COMMON = ("repetition_penalty", "no_repeat_ngram_size")  # every strategy applies the penalties
SAMPLING = ("temperature", "top_k", "top_p", "min_p", "typical_p", "num_return_sequences")
BEAMS = ("num_beams", "length_penalty", "early_stopping", "num_return_sequences")


class StrategyFn(Protocol):
    """What a strategy runs: prompt + up to `max_new_tokens` new ids, one row per returned text."""

    def __call__(self, model: CausalLM, input_ids: Sequence[int] | torch.Tensor, max_new_tokens: int,
                 settings: DecodingSettings, **options: Any) -> torch.Tensor: ...


@dataclass(frozen=True)
class Strategy:
    """One decoding strategy.

    `defaults` are the `DecodingSettings` fields it sets (over the dataclass's own defaults);
    `knobs` the fields that make it what it is (the explorer's sliders for it, listed first in
    the docs); `reads` every field it uses (a flag outside them does not apply to it).
    """

    name: str
    run: StrategyFn
    summary: str
    defaults: Mapping[str, Any] = field(default_factory=dict)
    knobs: tuple[str, ...] = ()
    reads: tuple[str, ...] = COMMON
    streams: bool = True  # takes streamer= and stop_strings=
    traces: bool = True  # fills a DecodingTrace (beams included)

    def settings(self, **values: Any) -> DecodingSettings:
        """Its `DecodingSettings`: its defaults, then `values` for the fields it reads (None: not given)."""
        given = {k: v for k, v in values.items() if v is not None and k in self.reads}
        return DecodingSettings(**{**self.defaults, **given})

    def default(self, name: str) -> Any:
        """The value it uses for field `name` when none is given."""
        return self.defaults.get(name, DecodingSettings.__dataclass_fields__[name].default)


def _run_generate(model: CausalLM, input_ids: Sequence[int] | torch.Tensor, max_new_tokens: int,
                  settings: DecodingSettings, **options: Any) -> torch.Tensor:
    return generate(model, input_ids, max_new_tokens, settings, **options)


def _without(options: dict[str, Any], strategy: str, ignored: Sequence[str], refused: Sequence[str]) -> dict[str, Any]:
    """The options a strategy takes: `ignored` dropped, `refused` given (not None) named in one line."""
    for name in refused:
        if options.get(name) is not None:
            raise CourseInputError(f"{name} does not work with the {strategy} strategy: it keeps several texts "
                                   "per prompt until the end")
    return {k: v for k, v in options.items() if k not in ignored and k not in refused}


def _run_contrastive(model: CausalLM, input_ids: Sequence[int] | torch.Tensor, max_new_tokens: int,
                     settings: DecodingSettings, **options: Any) -> torch.Tensor:
    return contrastive_search(model, input_ids, max_new_tokens, settings,
                              **_without(options, "contrastive", ("seed", "trace"), ()))


def _run_diverse_beam(model: CausalLM, input_ids: Sequence[int] | torch.Tensor, max_new_tokens: int,
                      settings: DecodingSettings, **options: Any) -> torch.Tensor:
    kept = _without(options, "diverse_beam", ("seed", "trace"), ("streamer", "stop_strings", "tokenizer"))
    return diverse_beam_search(model, input_ids, max_new_tokens, settings, **kept).sequences


_SAMPLE = {"do_sample": True}
STRATEGIES: dict[str, Strategy] = {s.name: s for s in (
    Strategy("greedy", _run_generate, "always the most likely token",
             reads=COMMON + ("num_return_sequences",)),
    Strategy("sample", _run_generate, "draw from the whole distribution (temperature reshapes it)",
             _SAMPLE, knobs=("temperature",), reads=COMMON + SAMPLING),
    Strategy("top_k", _run_generate, "draw among the k most likely tokens",
             {**_SAMPLE, "top_k": 50}, knobs=("temperature", "top_k"), reads=COMMON + SAMPLING),
    Strategy("top_p", _run_generate, "draw among the most likely tokens up to probability mass p (nucleus)",
             {**_SAMPLE, "top_p": 0.9}, knobs=("temperature", "top_p"), reads=COMMON + SAMPLING),
    Strategy("min_p", _run_generate, "draw among tokens at least p times as likely as the best",
             {**_SAMPLE, "min_p": 0.05}, knobs=("temperature", "min_p"), reads=COMMON + SAMPLING),
    Strategy("typical", _run_generate, "draw among tokens whose surprise is near the entropy (locally typical)",
             {**_SAMPLE, "typical_p": 0.9}, knobs=("temperature", "typical_p"), reads=COMMON + SAMPLING),
    Strategy("beam", _run_generate, "keep the num_beams best partial texts by summed log-probability",
             BEAM_DEFAULTS, knobs=BEAMS[:3], reads=COMMON + BEAMS, streams=False),
    Strategy("diverse_beam", _run_diverse_beam, "beam search in groups that avoid each other's tokens",
             DIVERSE_DEFAULTS, knobs=BEAMS[:3] + ("num_beam_groups", "diversity_penalty"),
             reads=COMMON + BEAMS + ("num_beam_groups", "diversity_penalty"), streams=False, traces=False),
    Strategy("contrastive", _run_contrastive, "likely, but unlike anything said so far (Su et al. 2022)",
             CONTRASTIVE_DEFAULTS, knobs=("penalty_alpha", "top_k"), reads=COMMON + ("penalty_alpha", "top_k"),
             traces=False),
)}


def strategy(name: str) -> Strategy:
    """The entry for `name`, or one line naming the choices."""
    if name not in STRATEGIES:
        raise CourseInputError(f"unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}")
    return STRATEGIES[name]


def defaults_text(name: str) -> str:
    """How field `name` defaults over the strategies that read it: "50 for top_k, 4 for contrastive, otherwise off"."""
    base = DecodingSettings.__dataclass_fields__[name].default
    groups: dict[Any, list[str]] = {}
    for s in STRATEGIES.values():
        if name in s.reads:
            groups.setdefault(s.default(name), []).append(s.name)
    if len(groups) <= 1:
        return _shown(next(iter(groups), base))
    parts = [f"{_shown(v)} for {' and '.join(names)}" for v, names in groups.items() if v != base]
    return ", ".join(parts + ([f"otherwise {_shown(base)}"] if base in groups else []))


def _shown(value: Any) -> str:
    return "off" if value is None else str(value)


def markdown_table() -> str:
    """The table of strategies as Markdown: name, what it does, its own settings with their defaults."""
    rows = ["| strategy | what it does | its settings (defaults) |", "|---|---|---|"]
    for s in STRATEGIES.values():
        knobs = ", ".join(f"`{k}`" + (f" {s.default(k)}" if s.default(k) is not None else "") for k in s.knobs)
        rows.append(f"| `{s.name}` | {s.summary} | {knobs or '-'} |")
    return "\n".join(rows)
