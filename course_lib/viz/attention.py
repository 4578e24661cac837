"""Seeing attention: a static plot, an offline explorer widget, and a bridge to bertviz.

- `plot_attention` draws one head's (T, T) matrix, or all heads of a layer, with
  readable token labels (matplotlib).
- `AttentionExplorer` is an ipywidgets + matplotlib widget that needs no CDN and no
  require.js, so it renders offline in JupyterLab, Notebook 7, VS Code and Colab: a
  layer-by-head grid of thumbnails, a click opens a head's matrix, a token picker shows
  what a token attends to and what attends to it, and a sortable table of head roles
  (previous token, first token / sink, induction, entropy: `course_lib.interp`'s scores)
  opens a head on click. The browser only ever receives small PNGs: the thumbnails once,
  then one head at a time (the weights are kept as float16 on the Python side), so it
  stays responsive at 512 tokens.
- `head_view` / `model_view` hand the same weights to bertviz (Vig, "A Multiscale
  Visualization of Attention in the Transformer Model", ACL 2019,
  https://github.com/jessevig/bertviz) with per-layer (1, H, T, T) tensors, prettified
  tokens, weights rounded to 3 decimals and automatic layer/head limits above 64 tokens.
  bertviz loads require.js, d3 and jQuery from a CDN; the bridge inlines the copies that
  ship with the course instead (`course_lib.viz.offline_assets`), so the views render offline.

Token labels (GPT-2's "Ġ" and "Ċ" shown as a space and "↵") come from `course_lib.tokenizer`'s
`token_labels`/`display_label`; head scores from `course_lib.interp`.

The logic lives in plain functions (`head_matrix`, `thumbnails`, `token_attention`,
`sort_roles`, `bertviz_inputs`, ...) that the tests call directly; the widget only draws.

Introduced in notebooks/08_attention_visualization.ipynb; `plot_attention()` in notebook 03.
"""

from __future__ import annotations

import functools
import html
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..errors import CourseInputError
from ..interp import ROLE_NAMES, HeadRole, attention_maps, head_roles_from_attentions, repeated_tokens
from ..tokenizer import display_label, encode_text, token_labels

__all__ = [
    "plot_label",
    "head_matrix",
    "thumbnails",
    "token_attention",
    "sort_roles",
    "plot_attention",
    "AttentionExplorer",
    "BertvizInputs",
    "bertviz_inputs",
    "head_view",
    "model_view",
    "BERTVIZ_AUTO_LIMIT_TOKENS",
    "BERTVIZ_MAX_VALUES",
]

BERTVIZ_AUTO_LIMIT_TOKENS = 64  # above this many tokens bertviz views get layer/head limits
BERTVIZ_MAX_VALUES = 200_000  # weights sent to bertviz above the limit (~1 MB of notebook)
ROLE_LABELS = {"previous_token": "previous token", "first_token": "first token (sink)",
               "induction": "induction", "entropy": "entropy (nats)"}


def _escaped(c: str) -> str:
    """One character as an escape, the way Python writes it: "\\r", "\\x17", "\\u65e5", "\\U0001f469"."""
    return c.encode("unicode_escape").decode("ascii")


@functools.lru_cache(maxsize=4)
def _font_characters(font_file: str) -> frozenset[int]:
    from matplotlib.ft2font import FT2Font

    return frozenset(FT2Font(font_file).get_charmap())


def plot_label(text: str, limit: int = 12) -> str:
    """`display_label` for a matplotlib figure: characters its font has no glyph for become escapes.

    Matplotlib draws a missing glyph as an empty box and warns about it ("Glyph 23 missing
    from font(s) DejaVu Sans"); a token such as "日" is shown as "\\u65e5".
    """
    from matplotlib import font_manager

    have = _font_characters(font_manager.findfont(font_manager.FontProperties()))
    s = display_label(text, limit=10**9)
    s = "".join(c if ord(c) in have else _escaped(c) for c in s)
    return s if len(s) <= limit else s[: limit - 1] + "…"


# --------------------------------------------------------------------------- plain data functions
def head_matrix(att: torch.Tensor, layer: int, head: int) -> np.ndarray:
    """One head's (T, T) weights as float16, the form the explorer draws from."""
    L, H = att.shape[:2]
    if not (0 <= layer < L and 0 <= head < H):
        raise CourseInputError(f"no head L{layer}H{head}: layers are 0 .. {L - 1}, heads 0 .. {H - 1}")
    return att[layer, head].to(torch.float16).numpy()


def thumbnails(att: torch.Tensor, size: int = 48) -> np.ndarray:
    """uint8 thumbnails (L, H, s, s) of every head, s = min(size, T), each scaled to its own max.

    Long sequences are average-pooled so a 512-token head becomes a small image.
    """
    L, H, T, _ = att.shape
    s = max(1, min(size, T))
    x = att.float().reshape(L * H, 1, T, T)
    if s < T:
        x = torch.nn.functional.adaptive_avg_pool2d(x, s)  # (L*H, 1, s, s)
    x = x.reshape(L, H, s, s)
    peak = x.amax(dim=(-1, -2), keepdim=True).clamp_min(1e-8)
    return (x / peak * 255).round().to(torch.uint8).numpy()


def token_attention(
    weights: np.ndarray | torch.Tensor, i: int, k: int = 5
) -> tuple[list[tuple[int, float]], list[tuple[int, float]]]:
    """For token `i` of one head's (T, T) weights: the top-`k` keys it attends to, and the
    top-`k` queries that attend to it, as (position, weight) pairs, largest first.
    """
    w = torch.as_tensor(np.asarray(weights, dtype=np.float32))
    T = w.shape[-1]
    if not 0 <= i < T:
        raise CourseInputError(f"token position {i} is outside 0 .. {T - 1}")

    def top(v: torch.Tensor, offset: int) -> list[tuple[int, float]]:
        vals, idx = v.topk(min(k, v.numel()))
        return [(int(j) + offset, float(x)) for x, j in zip(vals, idx)]

    return top(w[i, : i + 1], 0), top(w[i:, i], i)


def sort_roles(roles: Sequence[HeadRole], by: str = "previous_token", descending: bool | None = None) -> list[HeadRole]:
    """The role table sorted by one score (highest first; entropy lowest first). NaNs go last."""
    if by not in ROLE_NAMES:
        raise CourseInputError(f"sort_roles: by={by!r} is not one of {', '.join(ROLE_NAMES)}")
    if descending is None:
        descending = by != "entropy"
    sign = -1.0 if descending else 1.0
    def key(r: HeadRole) -> tuple[bool, float]:
        v = getattr(r, by)
        return (math.isnan(v), 0.0 if math.isnan(v) else sign * v)

    return sorted(roles, key=key)


# --------------------------------------------------------------------------- static plot
LABEL_EVERY_TOKEN_UP_TO = 96
"""`plot_attention` of one head labels every token up to this many (a character model's 64-character
sample, a sentence of GPT-2 tokens); above it the labels are thinned to every k-th."""


def _tick_positions(T: int, max_labels: int) -> list[int]:
    step = max(1, math.ceil(T / max_labels))
    return list(range(0, T, step))


def _one_head_size(T: int, big: bool) -> tuple[float, float]:
    """(figure side in inches, tick font size) for one head of T tokens with every token labelled.

    The figure grows with T until it is as wide as a notebook's output area at 1366 px with
    JupyterLab's file browser open (10 in, 870 px with the colour bar at the explorer's 80 dpi;
    11 in in the classroom size, which `course demo` zooms 1.15 times on a 1366-px projector),
    then the labels shrink, never below 5.5 pt. The explorer puts the view under the thumbnails
    when both do not fit side by side.
    """
    fs = 15.0 if big else 8.0
    base, most, margin = (7.5, 11.0, 1.7) if big else (4.2, 10.0, 1.3)
    per_label = 1.3 / 72  # inches of axis per point of font size: a label and a little air
    need = min(T, LABEL_EVERY_TOKEN_UP_TO) * fs * per_label + margin
    if need <= most:
        return max(base, need), fs
    return most, max(5.5, (most - margin) / min(T, LABEL_EVERY_TOKEN_UP_TO) / per_label)


def plot_attention(weights: torch.Tensor | np.ndarray, tokens: Sequence[str] | None = None, *,
                   title: str | None = None, ax: Any = None, big: bool = False,
                   highlight: int | None = None, max_labels: int | None = None, cmap: str = "viridis") -> Any:
    """Draw attention weights: one head (T, T), or every head of a layer (H, T, T) side by side.

    Rows are queries (the token doing the looking), columns keys. `tokens` label the
    axes: one head labels every token up to `LABEL_EVERY_TOKEN_UP_TO` (the figure grows,
    then the labels shrink, to fit), several heads or a longer text at most `max_labels`
    (default 48, or that many per head); `highlight` outlines one token's row and column;
    `big` uses classroom-sized fonts. Returns the matplotlib Figure.
    """
    from matplotlib.figure import Figure

    w = torch.as_tensor(np.asarray(weights, dtype=np.float32)) if not isinstance(weights, torch.Tensor) else weights
    w = w.detach().float().cpu()
    if w.dim() == 4 and w.size(0) == 1:
        w = w[0]
    if w.dim() not in (2, 3) or w.size(-1) != w.size(-2):
        raise CourseInputError(f"plot_attention: expected (T, T) or (H, T, T) weights, got {tuple(w.shape)}")
    T = w.size(-1)
    if tokens is not None and len(tokens) != T:
        raise CourseInputError(f"plot_attention: {len(tokens)} tokens for {T} positions")
    heads = [w] if w.dim() == 2 else list(w)
    fs = 15 if big else 8
    tick_fs: float = fs
    if max_labels is None:
        max_labels = LABEL_EVERY_TOKEN_UP_TO if len(heads) == 1 else 48
    if ax is not None:
        axes, fig, heads = [ax], ax.figure, heads[:1]
    elif len(heads) == 1:
        side, tick_fs = _one_head_size(T, big)
        fig = Figure(figsize=(side + 0.9, side))
        axes = [fig.add_subplot(1, 1, 1)]
    else:
        fig = Figure(figsize=(min(3.2 * len(heads), 18), 3.6))
        axes = list(np.atleast_1d(fig.subplots(1, len(heads))))
    labels = [plot_label(t) for t in tokens] if tokens is not None else None
    for h, (a, m) in enumerate(zip(axes, heads)):
        im = a.imshow(m.numpy(), cmap=cmap, vmin=0.0, vmax=max(float(m.max()), 1e-6), interpolation="nearest")
        a.grid(False)
        ticks = _tick_positions(T, max_labels if len(heads) == 1 else max(4, max_labels // len(heads)))
        a.set_xticks(ticks)
        a.set_yticks(ticks)
        if labels is not None:
            a.set_xticklabels([labels[i] for i in ticks], rotation=90, fontsize=tick_fs)
            a.set_yticklabels([labels[i] for i in ticks], fontsize=tick_fs)
        else:
            a.tick_params(labelsize=fs)
        if highlight is not None and 0 <= highlight < T:
            from matplotlib.patches import Rectangle

            a.add_patch(Rectangle((-0.5, highlight - 0.5), T, 1, fill=False, ec="red", lw=1.5))
            a.add_patch(Rectangle((highlight - 0.5, -0.5), 1, T, fill=False, ec="orange", lw=1.5))
        a.set_xlabel("key (attended to)", fontsize=fs + 1)
        if h == 0:
            a.set_ylabel("query (looking)", fontsize=fs + 1)
        if len(heads) > 1:
            a.set_title(f"head {h}", fontsize=fs + 2)
        elif title:
            a.set_title(title, fontsize=fs + 3)
    if len(heads) == 1 and ax is None:
        fig.colorbar(im, ax=axes[0], fraction=0.046, pad=0.04).ax.tick_params(labelsize=fs)
    if title and len(heads) > 1:
        fig.suptitle(title, fontsize=fs + 3)
    fig.tight_layout()
    return fig


PNG_DPI = 80  # the explorer's head view: a PNG at this many dots per inch of the figure


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=PNG_DPI)
    return buf.getvalue()


def _thumb_png(img: np.ndarray, cmap: str = "viridis") -> bytes:
    """A uint8 (s, s) image as a colour PNG (matplotlib's colormap, Pillow's encoder)."""
    import matplotlib
    from PIL import Image

    rgb = (matplotlib.colormaps[cmap](img)[..., :3] * 255).astype(np.uint8)  # (s, s, 3)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return buf.getvalue()


# --------------------------------------------------------------------------- the explorer widget
class AttentionExplorer:
    """An offline attention explorer: thumbnails of every head, one head large, token picker, roles.

    Give it a model (the course `GPT` or a `transformers` GPT-2) with a tokenizer and a
    text (or `input_ids`), or ready-made `attentions` (L, H, T, T) with `tokens`. When a
    model is given, the role table also measures induction on a repeated random sequence
    of `period` tokens. Display it as the last expression of a cell.

    Methods the buttons call (and tests use): `open(layer, head)`, `pick_token(i)`,
    `sort(by)`. The current head's float16 matrix is `current_matrix`.
    """

    def __init__(self, model: Any = None, tokenizer: Any = None, text: str | None = None, *,
                 input_ids: Sequence[int] | torch.Tensor | None = None,
                 attentions: torch.Tensor | None = None, tokens: Sequence[str] | None = None,
                 roles: Sequence[HeadRole] | None = None, period: int = 32, seed: int = 0,
                 big: bool = False, thumb_size: int = 48, table_rows: int = 12,
                 layer: int | None = None, head: int | None = None) -> None:
        if attentions is None:
            if model is None:
                raise CourseInputError("AttentionExplorer: give a model (with text or input_ids) or attentions=")
            if input_ids is None:
                if text is None:
                    raise CourseInputError("AttentionExplorer: give text= (with a tokenizer) or input_ids=")
                input_ids = encode_text(tokenizer, text)
            ids = [int(i) for i in torch.as_tensor(input_ids).reshape(-1).tolist()]
            n_pos = int(getattr(model.config, "n_positions", len(ids)))
            if len(ids) > n_pos:
                raise CourseInputError(
                    f"AttentionExplorer: {len(ids)} tokens but the model's context is {n_pos}; shorten the text")
            attentions = attention_maps(model, ids)
            if tokens is None:
                tokens = token_labels(tokenizer, ids)
        att = torch.as_tensor(attentions).detach().cpu()
        if att.dim() == 5 and att.size(1) == 1:  # (L, 1, H, T, T) as stacked from bertviz-style tuples
            att = att[:, 0]
        if att.dim() != 4 or att.size(-1) != att.size(-2):
            raise CourseInputError(f"AttentionExplorer: attentions must be (L, H, T, T), got {tuple(att.shape)}")
        self.att = att.to(torch.float16)  # (L, H, T, T): kept small; one head at a time goes out
        self.n_layer, self.n_head, self.T = att.size(0), att.size(1), att.size(-1)
        self.tokens = list(tokens) if tokens is not None else [str(i) for i in range(self.T)]
        self.text = text if text is not None else " ".join(self.tokens)  # shown above the heads
        if len(self.tokens) != self.T:
            raise CourseInputError(f"AttentionExplorer: {len(self.tokens)} tokens for {self.T} positions")
        if roles is None:
            ind_att = None
            if model is not None:
                V = int(model.config.vocab_size)
                p = max(2, min(period, int(getattr(model.config, "n_positions", 2 * period)) // 2))
                ind_att = attention_maps(model, repeated_tokens(V, p, seed=seed)[0])
                roles = head_roles_from_attentions(att.float(), ind_att, p)
            else:
                roles = head_roles_from_attentions(att.float())
        self.roles = list(roles)
        self.big = big
        self.thumb_size = thumb_size
        self.table_rows = table_rows
        self.selected: tuple[int, int] | None = None
        self.token: int | None = None
        self.sort_by = "previous_token"
        self._widget: Any = None
        self._build()
        if layer is None or head is None:
            best = sort_roles(self.roles, "previous_token")[0]
            layer, head = best.layer, best.head
        self.open(layer, head)

    # -- plain accessors -----------------------------------------------------------
    @property
    def current_matrix(self) -> np.ndarray:
        """The open head's (T, T) float16 weights."""
        assert self.selected is not None
        return head_matrix(self.att, *self.selected)

    def role(self, layer: int, head: int) -> HeadRole:
        return next(r for r in self.roles if r.layer == layer and r.head == head)

    def table(self) -> list[HeadRole]:
        """The rows the role table shows, in its current order."""
        return sort_roles(self.roles, self.sort_by)[: self.table_rows]

    # -- widgets ---------------------------------------------------------------------
    def _build(self) -> None:
        import ipywidgets as W

        fs = "20px" if self.big else "13px"
        thumbs = thumbnails(self.att, self.thumb_size)
        px = 64 if self.big else 44
        self.head_buttons: dict[tuple[int, int], Any] = {}
        cells = []
        for li in range(self.n_layer):
            for h in range(self.n_head):
                img = W.Image(value=_thumb_png(thumbs[li, h]), format="png",
                              layout=W.Layout(width=f"{px}px", height=f"{px}px"))
                img.add_class("course-head-thumb")
                b = W.Button(description=f"L{li}H{h}", tooltip=f"open layer {li}, head {h}",
                             layout=W.Layout(width=f"{px + 8}px", height="24px", padding="0"))
                b.add_class("course-head-button")
                b.on_click(lambda _b, li=li, h=h: self.open(li, h))
                self.head_buttons[(li, h)] = b
                cells.append(W.VBox([img, b], layout=W.Layout(align_items="center", margin="1px")))
        grid = W.GridBox(cells, layout=W.Layout(grid_template_columns=f"repeat({self.n_head}, {px + 12}px)"))
        self.grid = grid
        self.title = W.HTML()
        self.title.add_class("course-head-title")
        self.view = W.Image(format="png")
        self.view.add_class("course-head-view")
        options = [("(none)", -1)] + [(f"{i}: {display_label(t, 16)}", i) for i, t in enumerate(self.tokens)]
        self.token_picker = W.Dropdown(options=options, value=-1, description="token:",
                                       layout=W.Layout(width="260px"))
        self.token_picker.add_class("course-token-picker")
        self.token_picker.observe(lambda ch: self.pick_token(None if ch["new"] < 0 else ch["new"]), names="value")
        self.token_panel = W.HTML()
        self.token_panel.add_class("course-token-panel")
        self.sort_picker = W.ToggleButtons(options=[(ROLE_LABELS[n], n) for n in ROLE_NAMES],
                                           value=self.sort_by, description="sort by:",
                                           style={"button_width": "130px"})
        self.sort_picker.observe(lambda ch: self.sort(ch["new"]), names="value")
        self.role_buttons = [W.Button(layout=W.Layout(width="460px", height="26px")) for _ in
                             range(min(self.table_rows, len(self.roles)))]
        for i, b in enumerate(self.role_buttons):
            b.style.font_family = "monospace"
            b.style.font_size = fs
            b.add_class("course-role-row")
            b.on_click(lambda _b, i=i: self._open_row(i))
        self.role_header = W.HTML(layout=W.Layout(width="460px"))
        self.role_header.add_class("course-role-header")
        self._fill_table()
        shown = html.escape(self.text).replace("\n", "↵<br>")
        self.text_box = W.HTML(
            f"<div style='font-size:{fs};max-width:100%;overflow-wrap:anywhere;white-space:pre-wrap'><b>Text</b> "
            f"({self.T} tokens): <span style='font-family:monospace;background:#f4f4f4'>{shown}</span></div>",
            layout=W.Layout(max_width="100%"))
        self.text_box.add_class("course-attention-text")
        left = W.VBox([W.HTML(f"<b style='font-size:{fs}'>Heads (rows: layers, columns: heads). Click one.</b>"), grid])
        right = W.VBox([self.title, self.view, self.token_picker, self.token_panel], layout=W.Layout(min_width="0"))
        roles = W.VBox([W.HTML(f"<b style='font-size:{fs}'>Head roles</b> (click a row to open it)"),
                        self.sort_picker, self.role_header, *self.role_buttons])
        # the head view beside the thumbnails when both fit, else under them at its full size: never shrunk
        # until its labels are unreadable, never wider than the window
        heads = W.HBox([left, right], layout=W.Layout(flex_flow="row wrap", max_width="100%"))
        self._widget = W.VBox([self.text_box, heads, roles], layout=W.Layout(max_width="100%"))
        self._widget.add_class("course-attention-explorer")

    @property
    def widget(self) -> Any:
        """The ipywidgets box to display."""
        return self._widget

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self._widget._repr_mimebundle_(**kwargs)

    ROLE_COLUMNS = f"{'head':<7} {'prev':>5} {'first':>6} {'induct':>6} {'entropy':>7}"
    """The role table's header: each name over its column of `_fill_table`'s rows, character for character."""

    def _fill_table(self) -> None:
        # Buttons collapse runs of spaces and centre their text: with no-break spaces and a header of the
        # same width, font and centring, the header's names stand over their columns.
        fs = "20px" if self.big else "13px"
        self.role_header.value = (
            f"<div style='width:460px;text-align:center;font-family:monospace;font-size:{fs};font-weight:bold;"
            f"white-space:pre'>{self.ROLE_COLUMNS}</div>")
        for b, r in zip(self.role_buttons, self.table()):
            ind = "   -  " if math.isnan(r.induction) else f"{r.induction:6.3f}"
            row = f"{r.name:<7} {r.previous_token:5.3f} {r.first_token:6.3f} {ind} {r.entropy:7.3f}"
            b.description = row.replace(" ", "\u00a0")
            b.tooltip = f"open layer {r.layer}, head {r.head}"

    def _open_row(self, i: int) -> None:
        r = self.table()[i]
        self.open(r.layer, r.head)

    def _render(self) -> None:
        li, h = self.selected
        r = self.role(li, h)
        ind = "n/a" if math.isnan(r.induction) else f"{r.induction:.2f}"
        fs = "20px" if self.big else "14px"
        self.title.value = (
            f"<div style='font-size:{fs}'><b>Layer {li}, head {h}</b> · previous token {r.previous_token:.2f}"
            f" · first token {r.first_token:.2f} · induction {ind} · entropy {r.entropy:.2f}</div>")
        import matplotlib

        with matplotlib.rc_context({"axes.grid": False}):
            fig = plot_attention(self.current_matrix, self.tokens, title=f"L{li}H{h}",
                                 big=self.big, highlight=self.token)
            self.view.value = _png(fig)
            self.view.layout.width = f"{round(fig.get_size_inches()[0] * PNG_DPI)}px"  # its own size, not squeezed
            self.view.layout.max_width = "100%"
        self._render_token_panel()

    def _render_token_panel(self) -> None:
        if self.token is None:
            self.token_panel.value = "<i>Pick a token to see what it attends to and what attends to it.</i>"
            return
        w = self.current_matrix.astype(np.float32)
        i = self.token
        fs = "20px" if self.big else "14px"

        # each token a box of its own, so a long row wraps between tokens instead of running off the page;
        # tokens that are not pieces of text ("t175") get a gap between them
        gap = "margin-right:4px;" if any(len(t) > 1 and not t[:1].isspace() for t in self.tokens) else ""

        def spans(weights: np.ndarray, lo: int, hi: int, color: str) -> str:
            peak = max(float(weights[lo:hi].max()), 1e-6)
            out = []
            for j in range(lo, hi):
                a = float(weights[j]) / peak
                text = html.escape(self.tokens[j]).replace("\n", "↵")
                border = "border:1px solid red;" if j == i else ""
                out.append(f"<span title='{j}: {float(weights[j]):.3f}' style='background:rgba({color},{a:.2f});"
                           f"{border}{gap}white-space:pre;display:inline-block'>{text}</span>")
            return "".join(out)

        to, by = token_attention(w, i, k=3)
        top_to = ", ".join(f"{display_label(self.tokens[j])!r} {x:.2f}" for j, x in to)
        top_by = ", ".join(f"{display_label(self.tokens[j])!r} {x:.2f}" for j, x in by)
        self.token_panel.value = (
            f"<div style='font-size:{fs};line-height:1.6;max-width:640px;overflow-wrap:anywhere'>"
            f"<b>{i}: {html.escape(display_label(self.tokens[i]))!s}</b> attends to: {html.escape(top_to)}<br>"
            f"{spans(w[i], 0, i + 1, '220,40,40')}<br>"
            f"<b>attended to by:</b> {html.escape(top_by)}<br>"
            f"{spans(w[:, i], i, self.T, '240,150,0')}</div>")

    # -- actions -----------------------------------------------------------------------
    def open(self, layer: int, head: int) -> None:
        """Open head (layer, head) large."""
        head_matrix(self.att, layer, head)  # validates
        if self.selected is not None:
            self.head_buttons[self.selected].button_style = ""
        self.selected = (layer, head)
        self.head_buttons[self.selected].button_style = "info"
        self._render()

    def pick_token(self, i: int | None) -> None:
        """Highlight token `i` (None clears)."""
        if i is not None and not 0 <= i < self.T:
            raise CourseInputError(f"token position {i} is outside 0 .. {self.T - 1}")
        self.token = i
        want = -1 if i is None else i
        if self.token_picker.value != want:
            self.token_picker.value = want  # calls back here once, harmlessly
        self._render()

    def sort(self, by: str) -> None:
        """Sort the role table by one score."""
        if by not in ROLE_NAMES:
            raise CourseInputError(f"sort: by={by!r} is not one of {', '.join(ROLE_NAMES)}")
        self.sort_by = by
        if self.sort_picker.value != by:
            self.sort_picker.value = by
        self._fill_table()


# --------------------------------------------------------------------------- bertviz bridge
@dataclass
class BertvizInputs:
    """What goes to bertviz: per-layer (1, H, T, T) weights, prettified tokens, what is shown."""

    attention: tuple[torch.Tensor, ...]
    tokens: list[str]
    include_layers: list[int]
    include_heads: list[int]
    limited: bool

    def values_shown(self) -> int:
        """How many attention weights go to bertviz (layers x heads x T x T)."""
        T = len(self.tokens)
        return len(self.include_layers) * len(self.include_heads) * T * T


def _spread(n: int, k: int) -> list[int]:
    """k indices spread evenly over 0 .. n-1, first and last included."""
    if k >= n:
        return list(range(n))
    if k == 1:
        return [0]
    return sorted({round(i * (n - 1) / (k - 1)) for i in range(k)})


def bertviz_inputs(model: Any, tokenizer: Any, text: str, *, layers: Sequence[int] | None = None,
                   heads: Sequence[int] | None = None, view: str = "head",
                   max_values: int = BERTVIZ_MAX_VALUES) -> BertvizInputs:
    """The tensors and tokens bertviz needs, with layer/head limits above 64 tokens.

    Up to `BERTVIZ_AUTO_LIMIT_TOKENS` tokens everything is shown. Above, unless you pass
    `layers` / `heads`, layers spread evenly over the model (and, for the model view or
    when one layer alone is too big, the first heads) are chosen so that at most
    `max_values` weights go into the notebook. Weights are rounded to 3 decimals, which
    bertviz writes as short JSON numbers.
    """
    if view not in ("head", "model"):
        raise CourseInputError(f"bertviz_inputs: view must be 'head' or 'model', got {view!r}")
    ids = encode_text(tokenizer, text)
    att = attention_maps(model, ids)  # (L, H, T, T)
    L, H, T, _ = att.shape
    tokens = token_labels(tokenizer, ids)
    for name, chosen, n in (("layers", layers, L), ("heads", heads, H)):
        if chosen is not None and (not chosen or any(not 0 <= int(i) < n for i in chosen)):
            raise CourseInputError(f"bertviz_inputs: {name}={list(chosen)!r}; valid values are 0 .. {n - 1}")
    inc_layers = list(layers) if layers is not None else list(range(L))
    inc_heads = list(heads) if heads is not None else list(range(H))
    limited = False
    if T > BERTVIZ_AUTO_LIMIT_TOKENS and layers is None and len(inc_heads) * len(inc_layers) * T * T > max_values:
        per_head = T * T
        n_layers = max(1, max_values // (len(inc_heads) * per_head))
        inc_layers = _spread(L, n_layers)
        limited = True
    if T > BERTVIZ_AUTO_LIMIT_TOKENS and heads is None and len(inc_heads) * len(inc_layers) * T * T > max_values:
        inc_heads = list(range(max(1, max_values // (len(inc_layers) * T * T))))
        limited = True
    if view == "head" and heads is None and len(inc_heads) < H:
        att = att[:, : len(inc_heads)]  # head view shows every head it gets: keep the first k (same numbers)
    rounded = att.double().round(decimals=3)
    per_layer = tuple(rounded[layer][None] for layer in range(L))  # each (1, H, T, T)
    return BertvizInputs(per_layer, tokens, inc_layers, inc_heads, limited)


def _limit_line(inp: BertvizInputs, L: int, H: int) -> str:
    return (f"bertviz: {len(inp.tokens)} tokens, so showing layers {inp.include_layers} of {L} and heads "
            f"{inp.include_heads[0]}..{inp.include_heads[-1]} of {H} ({inp.values_shown():,} weights) to keep the "
            "notebook small; pass layers=/heads= to choose, or use AttentionExplorer for every head.")


def head_view(model: Any, tokenizer: Any, text: str, *, layers: Sequence[int] | None = None,
              heads: Sequence[int] | None = None, html_action: str = "view",
              max_values: int = BERTVIZ_MAX_VALUES) -> Any:
    """bertviz's head view of `model` on `text` (course GPT or `transformers` model).

    The view needs no network: require.js, d3 and jQuery are inlined from the course's
    copies (`course_lib.viz.offline_assets`). ``html_action="return"`` returns the
    self-contained HTML object without displaying it.
    """
    return _bertviz("head", model, tokenizer, text, layers, heads, html_action, max_values)


def model_view(model: Any, tokenizer: Any, text: str, *, layers: Sequence[int] | None = None,
               heads: Sequence[int] | None = None, html_action: str = "view",
               max_values: int = BERTVIZ_MAX_VALUES) -> Any:
    """bertviz's model view (every chosen layer x head as a small panel); see `head_view`."""
    return _bertviz("model", model, tokenizer, text, layers, heads, html_action, max_values)


def _bertviz(view: str, model: Any, tokenizer: Any, text: str, layers: Any, heads: Any,
             html_action: str, max_values: int) -> Any:
    if html_action not in ("view", "return"):
        raise CourseInputError(f"html_action must be 'view' or 'return', got {html_action!r}")
    import bertviz
    from IPython.display import HTML, display

    from .offline_assets import offline_html

    inp = bertviz_inputs(model, tokenizer, text, layers=layers, heads=heads, view=view, max_values=max_values)
    L = len(inp.attention)
    H = int(getattr(model.config, "n_head", inp.attention[0].size(1)))
    if inp.limited:
        print(_limit_line(inp, L, H))
    if view == "head":
        obj = bertviz.head_view(list(inp.attention), inp.tokens, prettify_tokens=False,
                                include_layers=inp.include_layers, layer=inp.include_layers[0],
                                heads=list(heads) if heads is not None else None, html_action="return")
    else:
        obj = bertviz.model_view(list(inp.attention), inp.tokens, prettify_tokens=False,
                                 include_layers=inp.include_layers, include_heads=inp.include_heads,
                                 html_action="return")
    page = HTML(offline_html(obj.data))
    if html_action == "return":
        return page
    display(page)
    return None
