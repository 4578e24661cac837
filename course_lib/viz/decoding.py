"""DecodingExplorer: watch each decoding strategy cut the next-token distribution, live.

The logic is plain functions that tests call directly: `distribution_html` (bars of
the candidates before and after the processors, kept and removed, with the removed
mass and the entropy), `beam_tree_svg` (the beams of a `DecodingTrace` as a tree),
`compare_strategies` (several strategies on one prompt with one seed), `stream_html`
(streamed text, piece by piece: a character split across tokens arrives as one piece).
The strategies, their sliders and their defaults come from `course_lib.generate.STRATEGIES`.
The widget only wires a prompt box, a strategy menu and sliders to them and shows the
HTML; its callbacks (`refresh`, `step`, `generate_n`, `stream`, `compare`, `reset`) are
plain methods. Everything is inline HTML/SVG: it renders offline, with no JavaScript from a CDN.

Introduced in notebooks/07_decoding_strategies.ipynb.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping
from typing import Any

import torch

from ..errors import CourseInputError
from ..generate import STRATEGIES as REGISTRY
from ..generate import DecodingSettings, DecodingTrace, TextStreamer, TraceStep, generate, next_token_step
from ..generate.registry import COMMON
from ..generate.registry import strategy as registry_entry

__all__ = ["DecodingExplorer", "STRATEGIES", "beam_tree_svg", "compare_strategies", "distribution_html",
           "stream_html", "strategy_kwargs", "token_label"]

STRATEGIES = tuple(REGISTRY)  # the menu: every strategy of course_lib.generate.STRATEGIES
SHARED = ("temperature", "repetition_penalty")  # sliders every strategy in a comparison takes
KEPT, REMOVED, RAW = "#4c78a8", "#d9d9d9", "#f58518"
LABEL_STYLE = {"description_width": "90px"}  # ipywidgets' default cuts "temperature" to "temperat…"
CONTROL_WIDTH = "380px"  # two columns of controls fit a 1366-px screen


def token_label(tokenizer: Any, token_id: int) -> str:
    """A short printable label for one token: whitespace made visible."""
    if tokenizer is None:
        return f"#{token_id}"
    try:
        text = tokenizer.decode([int(token_id)])
    except Exception:  # noqa: BLE001 - an id the tokenizer cannot show on its own
        return f"#{token_id}"
    text = text.replace(" ", "␣").replace("\n", "↵").replace("\t", "⇥")
    return text or f"#{token_id}"


def strategy_kwargs(strategy: str, **values: Any) -> dict[str, Any]:
    """The settings (as keyword arguments) of a strategy with these slider `values`.

    The strategy's defaults (`course_lib.generate.STRATEGIES`), then the values of its own
    settings and of the penalties; values for settings it does not have are left out.
    """
    entry = registry_entry(strategy)
    mine = set(entry.knobs) | set(COMMON)
    settings = entry.settings(**{k: v for k, v in values.items() if k in mine})
    base = DecodingSettings()
    return {f: getattr(settings, f) for f in settings.__dataclass_fields__ if getattr(settings, f) != getattr(base, f)}


def stream_html(pieces: list[str]) -> str:
    """Streamed text as its pieces, alternately shaded: each piece is what one token let us show
    (an empty piece: a token whose character is not finished yet, shown as a thin bar)."""
    parts = []
    for i, piece in enumerate(pieces):
        shade = "#cfe3ff" if i % 2 == 0 else "#ffe0b3"
        if piece:
            parts.append(f'<span style="background:{shade}" title="piece {i + 1}">{html.escape(piece)}</span>')
        else:
            parts.append(f'<span style="border-left:2px solid #d62728" title="piece {i + 1}: waiting for bytes">'
                         "</span>")
    return (f'<div style="font-family:monospace;white-space:pre-wrap;border:1px solid #ccc;padding:4px">'
            f'{"".join(parts)}</div><div style="font-size:11px;color:#666">{len(pieces)} tokens streamed; '
            f'{sum(1 for p in pieces if not p)} waited for the rest of a character</div>')


def _settings(kw: Mapping[str, Any] | DecodingSettings) -> DecodingSettings:
    """The settings a strategy's `generate` kwargs (`strategy_kwargs`) mean: built once, then passed on."""
    return kw if isinstance(kw, DecodingSettings) else DecodingSettings(**kw)


def distribution_html(step: TraceStep, tokenizer: Any = None, title: str = "next token") -> str:
    """Bars of the top candidates: raw probability (thin, orange) and after the processors
    (wide, blue when kept, grey and struck through when removed); the chosen token in bold.
    """
    raw = step.probs["raw"]
    final = list(step.probs.values())[-1]
    top = max(max(raw), max(final), 1e-9)
    stages = " → ".join(step.probs)
    rows = []
    for i, tid in enumerate(step.token_ids):
        kept = step.kept[i]
        label = html.escape(token_label(tokenizer, tid))
        style = "" if kept else "text-decoration:line-through;color:#999"
        if step.chosen is not None and tid == step.chosen:
            style += ";font-weight:bold"
        w_final = 100 * final[i] / top
        w_raw = 100 * raw[i] / top
        rows.append(
            f'<tr><td style="font-family:monospace;white-space:pre;padding-right:6px;{style}" '
            f'title="id {tid}">{label}</td>'
            f'<td style="width:260px"><div style="background:{KEPT if kept else REMOVED};height:10px;'
            f'width:{w_final:.1f}%"></div><div style="background:{RAW};height:3px;width:{w_raw:.1f}%"></div></td>'
            f'<td style="font-size:11px;padding-left:6px">{100 * raw[i]:.1f}% → {100 * final[i]:.1f}%'
            f'{"" if kept else " (removed)"}</td></tr>')
    head = (f'<div style="font-family:sans-serif;font-size:13px"><b>{html.escape(title)}</b> · stages: '
            f'{html.escape(stages)} · removed mass <b>{100 * step.removed_mass:.1f}%</b> · entropy '
            f'<b>{step.entropy:.2f}</b> nats ({step.entropy / math.log(2):.2f} bits)</div>')
    swatch = 'display:inline-block;width:18px;vertical-align:middle;margin:0 4px 0 10px'
    legend = (f'<div class="course-bar-legend" style="font-family:sans-serif;font-size:12px;color:#444">'
              f'<span style="{swatch};height:10px;background:{KEPT}"></span>kept, after the processors'
              f'<span style="{swatch};height:10px;background:{REMOVED}"></span>removed'
              f'<span style="{swatch};height:3px;background:{RAW}"></span>raw probability, before them</div>')
    head += legend
    return head + '<table style="border-collapse:collapse">' + "".join(rows) + "</table>"


def beam_tree_svg(trace: DecodingTrace, tokenizer: Any = None, width_per_beam: int | None = None,
                  height_per_step: int = 34) -> str:
    """The beams of a beam-search `DecodingTrace` as an SVG tree that grows downwards.

    Row t holds the beams after step t (best on the left); a line joins each beam to the
    beam it grew from; each node shows its token (up to 12 characters, whitespace made
    visible) and the summed log-probability under it. The width depends only on the number
    of beams, never on the number of steps, so the tree fits a screen; a long search grows
    down the page. Columns are as wide as the longest label needs, so labels never overlap.
    """
    steps = [s for s in trace.steps if s.beams]
    if not steps:
        return "<div><i>no beams to draw: run a beam search with trace=DecodingTrace()</i></div>"
    nb = len(steps[0].beams)

    def label(tok: int) -> str:
        text = token_label(tokenizer, tok)
        return text if len(text) <= 12 else text[:11] + "…"  # cut the text, then escape it (never an entity)

    labels = [[label(tok) for _, tok, _ in s.beams] for s in steps]
    longest = max(8, max(len(t) for row in labels for t in row))
    col = width_per_beam or 22 + 7 * longest  # 11-px monospace: about 6.6 px a character
    left, top = 62, 30
    W = left + col * nb
    H = top + height_per_step * len(steps) + 8

    def xy(t: int, slot: int) -> tuple[int, int]:
        return left + slot * col + 8, top + t * height_per_step + height_per_step // 2

    px0, py0 = left + 8, top - 12
    halo = 'paint-order="stroke" stroke="white" stroke-width="4"'  # the lines pass under the labels, never over
    lines, nodes = [], []
    for t, s in enumerate(steps):
        nodes.append(f'<text x="4" y="{xy(t, 0)[1] + 4}" fill="#999">step {t + 1}</text>')
        for slot, (parent, _tok, score) in enumerate(s.beams):
            x, y = xy(t, slot)
            px, py = (px0, py0) if t == 0 else xy(t - 1, parent)
            lines.append(f'<line x1="{px}" y1="{py}" x2="{x}" y2="{y}" stroke="#aaa" stroke-width="1"/>')
            color = "#c00" if score <= -1e8 else "#222"
            nodes.append(f'<circle cx="{x}" cy="{y}" r="3" fill="{KEPT}"/>'
                         f'<text x="{x + 6}" y="{y - 2}" fill="{color}" {halo}>{html.escape(labels[t][slot])}</text>'
                         f'<text x="{x + 6}" y="{y + 10}" fill="#777" {halo}>{score:.2f}</text>')
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
             f'style="font-family:monospace;font-size:11px" class="course-beam-tree">', *lines,
             f'<text x="4" y="{py0 + 4}" fill="#555">prompt</text>',
             f'<circle cx="{px0}" cy="{py0}" r="4" fill="#333"><title>prompt</title></circle>', *nodes]
    parts.append("</svg>")
    return "".join(parts)


def compare_strategies(model: Any, input_ids: Any, strategies: Mapping[str, Mapping[str, Any] | DecodingSettings],
                       max_new_tokens: int, seed: int = 0, tokenizer: Any = None) -> dict[str, Any]:
    """Run each strategy (name -> its settings as kwargs, or a `DecodingSettings`) on the same prompt
    with the same seed; a name of `course_lib.generate.STRATEGIES` runs that strategy, any other `generate`.

    Returns name -> the new ids of the first text (a list), or their text when a tokenizer is given.
    """
    out: dict[str, Any] = {}
    n_prompt = len(input_ids) if not isinstance(input_ids, torch.Tensor) else input_ids.shape[-1]
    for name, kw in strategies.items():
        run = REGISTRY[name].run if name in REGISTRY else generate
        ids = run(model, input_ids, max_new_tokens, _settings(kw), seed=seed)[0, n_prompt:].tolist()
        out[name] = tokenizer.decode(ids) if tokenizer is not None else ids
    return out


def _slider_default(name: str) -> Any:
    """A slider's first value: the default of the first strategy that sets it, else the settings' default."""
    for entry in REGISTRY.values():
        if name in entry.defaults:
            return entry.defaults[name]
    return getattr(DecodingSettings(), name)


class DecodingExplorer:
    """A prompt box, a strategy menu and sliders; bars of the next-token distribution;
    step one token, generate or stream N; strategies side by side with one seed; the beam tree.

    ``DecodingExplorer(model, tokenizer, prompt="ROMEO:")`` and display it as the last
    expression of a cell. `tokenizer` needs ``encode`` and ``decode``. Choosing a strategy
    sets its sliders to its defaults (`course_lib.generate.STRATEGIES`).
    """

    def __init__(self, model: Any, tokenizer: Any, prompt: str = "Hello", seed: int = 0, top_n: int = 12) -> None:
        import ipywidgets as w

        self.model = model.eval() if hasattr(model, "eval") else model
        self.tokenizer = tokenizer
        self.seed = seed
        self.top_n = top_n
        self.trace = DecodingTrace(top_n=top_n)
        self._quiet = False
        # a Textarea, not a Text: a one-line input drops the newline in prompts like "ROMEO:\n"
        self.prompt = w.Textarea(value=prompt, description="prompt", continuous_update=False, rows=2,
                                 style=LABEL_STYLE, layout=w.Layout(width="98%"))
        # room for the longest label ("temperature", "rep. penalty"), so none is cut off
        wide = {"style": LABEL_STYLE, "layout": w.Layout(width=CONTROL_WIDTH)}
        d = _slider_default
        self.strategy = w.Dropdown(options=STRATEGIES, value="top_p", description="strategy", **wide)
        self.temperature = w.FloatSlider(value=d("temperature"), min=0.0, max=2.0, step=0.05, description="temperature",
                                         **wide)
        self.top_k = w.IntSlider(value=d("top_k"), min=1, max=100, description="top-k", **wide)
        self.top_p = w.FloatSlider(value=d("top_p"), min=0.05, max=1.0, step=0.05, description="top-p", **wide)
        self.min_p = w.FloatSlider(value=d("min_p"), min=0.0, max=0.5, step=0.01, description="min-p", **wide)
        self.repetition_penalty = w.FloatSlider(value=d("repetition_penalty"), min=1.0, max=2.0, step=0.05,
                                                description="rep. penalty", **wide)
        self.num_beams = w.IntSlider(value=d("num_beams"), min=2, max=6, description="beams", **wide)
        self.n_tokens = w.IntSlider(value=20, min=1, max=100, description="N tokens", **wide)
        self.sliders = {"temperature": self.temperature, "top_k": self.top_k, "top_p": self.top_p,
                        "min_p": self.min_p, "repetition_penalty": self.repetition_penalty,
                        "num_beams": self.num_beams}
        buttons = {name: w.Button(description=label) for name, label in (
            ("step", "step one token"), ("generate_n", "generate N"), ("stream", "stream N"),
            ("compare", "compare strategies"), ("reset", "reset"))}
        buttons["step"].on_click(lambda _: self.step())
        buttons["generate_n"].on_click(lambda _: self.generate_n())
        buttons["stream"].on_click(lambda _: self.stream())
        buttons["compare"].on_click(lambda _: self.compare())
        buttons["reset"].on_click(lambda _: self.reset())
        self.buttons = buttons
        self.text_box = w.HTML()
        self.bars = w.HTML()
        # the widget box is as wide as the output and scrolls: a long tree is not cut off on the right
        self.tree = w.HTML(layout=w.Layout(width="100%", overflow="auto"))
        self.comparison = w.HTML()
        controls = [self.strategy, self.temperature, self.top_k, self.top_p, self.min_p,
                    self.repetition_penalty, self.num_beams, self.n_tokens]
        for c in [self.prompt, *controls]:
            c.observe(self._on_change, names="value")
        self.widget = w.VBox([
            self.prompt,
            w.HBox([w.VBox(controls[:4]), w.VBox(controls[4:])]),
            w.HBox(list(buttons.values())),
            self.text_box, self.bars, self.tree, self.comparison,
        ])
        self.widget.add_class("course-decoding-explorer")  # for the browser test
        self.reset()

    # -- plain methods (what the buttons and sliders call) ----------------------------
    def slider_values(self) -> dict[str, Any]:
        """The sliders' settings: field name -> value."""
        return {name: s.value for name, s in self.sliders.items()}

    def kwargs(self, strategy: str | None = None) -> dict[str, Any]:
        """The settings (kwargs) of the current (or the named) strategy with the slider values."""
        return strategy_kwargs(strategy or self.strategy.value, **self.slider_values())

    def _on_change(self, change: Any) -> None:
        if self._quiet:
            return
        try:
            if change["owner"] is self.prompt:
                self.reset()
            elif change["owner"] is self.strategy:
                self.use_defaults()
            else:
                self.refresh()
        except CourseInputError as e:  # say it in the widget instead of a traceback
            self.text_box.value = f'<div style="color:#b00">{html.escape(str(e))}</div>'

    def use_defaults(self) -> None:
        """Set the sliders of the current strategy's own settings to its defaults, then redraw."""
        entry = registry_entry(self.strategy.value)
        self._quiet = True
        try:
            for name, value in entry.defaults.items():
                if name in self.sliders:
                    self.sliders[name].value = value
        finally:
            self._quiet = False
        self.refresh()

    def reset(self) -> None:
        """Start again from the prompt."""
        ids = self.tokenizer.encode(self.prompt.value)
        if not ids:
            raise CourseInputError("the prompt is empty: type some text to continue")
        self.ids: list[int] = list(ids)
        self.n_prompt = len(ids)
        self.trace = DecodingTrace(top_n=self.top_n)
        self.tree.value = ""
        self.comparison.value = ""
        self.refresh()

    def refresh(self) -> TraceStep:
        """Redraw the text and the next-token bars for the current settings; returns the step."""
        kw = self.kwargs()
        step = next_token_step(self.model, self.ids, _settings(kw), top_n=self.top_n)
        self.current = step
        self.bars.value = distribution_html(step, self.tokenizer,
                                            title=f"next token · {self.strategy.value}")
        self._draw_text()
        return step

    def _draw_text(self) -> None:
        prompt = html.escape(self.tokenizer.decode(self.ids[: self.n_prompt]))
        new = html.escape(self.tokenizer.decode(self.ids[self.n_prompt:]))
        self.text_box.value = (f'<div style="font-family:monospace;white-space:pre-wrap;border:1px solid #ccc;'
                               f'padding:4px">{prompt}<span style="background:#cfe3ff">{new}</span></div>')

    def _run(self, n: int, streamer: TextStreamer | None = None) -> list[int]:
        entry = registry_entry(self.strategy.value)
        settings = _settings(self.kwargs())
        trace = DecodingTrace(top_n=self.top_n)
        seed = self.seed + len(self.ids)  # reproducible, but a new draw at each position
        out = entry.run(self.model, self.ids, n, settings, seed=seed, trace=trace, streamer=streamer)[0].tolist()
        new = out[len(self.ids):]
        self.trace = trace
        self.tree.value = beam_tree_svg(trace, self.tokenizer) if any(s.beams for s in trace.steps) else ""
        self.ids = out
        self.refresh()
        return new

    def step(self) -> int:
        """Add one token with the current strategy; returns it."""
        return self._run(1)[0]

    def generate_n(self) -> list[int]:
        """Add `N tokens` tokens with the current strategy; returns them."""
        return self._run(self.n_tokens.value)

    def stream(self) -> list[str]:
        """Add `N tokens` tokens as a stream: the text box grows piece by piece while they come.

        Returns the pieces, one per token ("" while a character waits for its last bytes).
        """
        if not registry_entry(self.strategy.value).streams:
            self.text_box.value = (f'<div style="color:#b00">{html.escape(self.strategy.value)} keeps several '
                                   "texts until the end: there is nothing to stream; pick another strategy</div>")
            return []
        pieces: list[str] = []

        def show(row: int, piece: str) -> None:
            pieces.append(piece)
            self.text_box.value = stream_html(pieces)

        self._run(self.n_tokens.value, TextStreamer(self.tokenizer, skip_prompt=True, on_text=show))
        self.text_box.value += stream_html(pieces)  # the text, then the pieces it arrived in
        return pieces

    def compare(self, strategies: tuple[str, ...] = STRATEGIES) -> dict[str, str]:
        """Every strategy from the current text, `N tokens` each, with the same seed: each with its
        defaults, the temperature and repetition penalty of the sliders, the current one with all of them."""
        shared = {k: v for k, v in self.slider_values().items() if k in SHARED}
        kws = {s: self.kwargs(s) if s == self.strategy.value else strategy_kwargs(s, **shared) for s in strategies}
        texts = compare_strategies(self.model, self.ids, kws, self.n_tokens.value, seed=self.seed,
                                   tokenizer=self.tokenizer)
        rows = "".join(
            f'<tr><td style="padding-right:8px"><b>{html.escape(s)}</b></td><td style="font-family:monospace;'
            f'white-space:pre-wrap">{html.escape(t)}</td></tr>' for s, t in texts.items())
        self.comparison.value = f'<table style="border-collapse:collapse">{rows}</table>'
        return texts

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)
