"""The course diagrams, drawn with matplotlib.

Notebooks call these functions to draw the diagrams inline, which also works on Colab
(where relative image links break); `figures/make_figures.py` saves the same drawings
as `figures/*.png` for the README and the docs.

- `gpt2_architecture()`: the whole model, from token ids to logits (after Radford et
  al., 2019, and the GPT-2 code at https://github.com/openai/gpt-2/blob/master/src/model.py);
- `transformer_block()`: one pre-LayerNorm block and its residual stream;
- `attention_head()`: the flow of one causal attention head, with small heatmaps.

Introduced in notebooks/03_attention.ipynb; `transformer_block()` in notebook 04;
`gpt2_architecture()` in notebook 05.
"""

from __future__ import annotations

import math
from typing import Any

import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch

__all__ = ["gpt2_architecture", "transformer_block", "attention_head", "FIGURES"]

COLORS = {
    "embed": "#cfe2f3",
    "norm": "#fff2cc",
    "attn": "#f4cccc",
    "mlp": "#d9ead3",
    "head": "#d9d2e9",
    "io": "#eeeeee",
    "frame": "#f7f7f7",
}


def _box(ax: Any, x: float, y: float, w: float, h: float, text: str, color: str, size: float = 9,
         weight: str = "normal") -> tuple[float, float, float, float]:
    """A rounded box centred at (x, y); returns (x, y, w, h)."""
    ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.02,rounding_size=0.12",
                                fc=color, ec="#444444", lw=1.0, zorder=2))
    ax.text(x, y, text, ha="center", va="center", fontsize=size, weight=weight, zorder=3)
    return x, y, w, h


def _arrow(ax: Any, start: tuple[float, float], end: tuple[float, float], style: str = "-|>",
           color: str = "#333333", ls: str = "-", rad: float = 0.0) -> None:
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle=style, mutation_scale=11, color=color, lw=1.2,
                                 linestyle=ls, connectionstyle=f"arc3,rad={rad}", zorder=1, shrinkA=0, shrinkB=0))


def _plus(ax: Any, x: float, y: float, r: float = 0.22) -> None:
    ax.add_patch(Circle((x, y), r, fc="white", ec="#333333", lw=1.2, zorder=3))
    ax.text(x, y, "+", ha="center", va="center", fontsize=11, weight="bold", zorder=4)


def _canvas(width: float, height: float, xlim: tuple[float, float], ylim: tuple[float, float]) -> tuple[Figure, Any]:
    fig, ax = plt.subplots(figsize=(width, height))
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_aspect("equal")
    ax.axis("off")
    return fig, ax


def _block_into(ax: Any, cx: float, y0: float, n_head: int | str = "nh", C: int | str = "C") -> float:
    """Draw a pre-LN block with its residual stream from y0 upwards; returns the top y."""
    rx = cx - 2.0  # the residual stream runs up the left side
    _arrow(ax, (rx, y0), (rx, y0 + 6.2), style="-")
    # attention sub-layer
    _arrow(ax, (rx, y0 + 0.4), (cx, y0 + 0.4), style="-")
    _arrow(ax, (cx, y0 + 0.4), (cx, y0 + 0.75))
    _box(ax, cx, y0 + 1.0, 2.6, 0.5, "ln_1  LayerNorm", COLORS["norm"])
    _arrow(ax, (cx, y0 + 1.25), (cx, y0 + 1.55))
    _box(ax, cx, y0 + 1.95, 2.6, 0.8, f"attn: causal self-attention\n{n_head} heads, c_attn, c_proj", COLORS["attn"])
    _arrow(ax, (cx, y0 + 2.35), (cx, y0 + 2.8), style="-")
    _arrow(ax, (cx, y0 + 2.8), (rx + 0.22, y0 + 2.8))
    _plus(ax, rx, y0 + 2.8)
    # MLP sub-layer
    _arrow(ax, (rx, y0 + 3.3), (cx, y0 + 3.3), style="-")
    _arrow(ax, (cx, y0 + 3.3), (cx, y0 + 3.65))
    _box(ax, cx, y0 + 3.9, 2.6, 0.5, "ln_2  LayerNorm", COLORS["norm"])
    _arrow(ax, (cx, y0 + 4.15), (cx, y0 + 4.45))
    _box(ax, cx, y0 + 4.85, 2.6, 0.8, f"mlp: c_fc {C}→4·{C}, GELU\nc_proj 4·{C}→{C}", COLORS["mlp"])
    _arrow(ax, (cx, y0 + 5.25), (cx, y0 + 5.7), style="-")
    _arrow(ax, (cx, y0 + 5.7), (rx + 0.22, y0 + 5.7))
    _plus(ax, rx, y0 + 5.7)
    ax.text(rx - 0.15, y0 + 1.6, "residual stream", rotation=90, ha="right", va="center", fontsize=8,
            color="#555555")
    return y0 + 6.2


def gpt2_architecture(config: Any = None) -> Figure:
    """The GPT-2 model from token ids to logits, with GPT-2's parameter names.

    `config` (a `GPTConfig`, optional) writes its sizes into the diagram.
    """
    V, P, C, L, H = ("V", "n_positions", "C", "n_layer", "nh")
    if config is not None:
        V, P, C, L, H = config.vocab_size, config.n_positions, config.n_embd, config.n_layer, config.n_head
    fig, ax = _canvas(6.2, 9.4, (-0.2, 8.2), (0, 12.7))
    cx = 4.6
    _box(ax, cx, 0.45, 3.2, 0.55, "input_ids (B, T)", COLORS["io"])
    _arrow(ax, (cx, 0.72), (cx - 1.0, 1.15))
    _arrow(ax, (cx, 0.72), (cx + 1.0, 1.15))
    _box(ax, cx - 1.2, 1.55, 2.3, 0.8, f"wte  token embedding\n({V}, {C})", COLORS["embed"], size=8)
    _box(ax, cx + 1.2, 1.55, 2.3, 0.8, f"wpe  position emb.\n({P}, {C})", COLORS["embed"], size=8)
    _arrow(ax, (cx - 1.0, 1.95), (cx - 0.2, 2.3))
    _arrow(ax, (cx + 1.0, 1.95), (cx + 0.2, 2.3))
    _plus(ax, cx, 2.45)
    _arrow(ax, (cx, 2.67), (cx, 2.95), style="-")
    _arrow(ax, (cx, 2.95), (cx - 2.0, 2.95), style="-")
    # the repeated block
    ax.add_patch(FancyBboxPatch((cx - 3.4, 2.75), 6.5, 6.75, boxstyle="round,pad=0.05,rounding_size=0.2",
                                fc=COLORS["frame"], ec="#888888", lw=1.0, ls="--", zorder=0))
    ax.text(cx + 3.0, 9.3, f"× {L}\ntransformer.h", ha="right", va="top", fontsize=9, weight="bold",
            color="#555555")
    top = _block_into(ax, cx, 2.95, H, C)
    _arrow(ax, (cx - 2.0, top), (cx - 2.0, 9.9), style="-")
    _arrow(ax, (cx - 2.0, 9.9), (cx, 9.9), style="-")
    _arrow(ax, (cx, 9.9), (cx, 10.1))
    _box(ax, cx, 10.35, 2.6, 0.5, "ln_f  LayerNorm", COLORS["norm"])
    _arrow(ax, (cx, 10.6), (cx, 10.9))
    _box(ax, cx, 11.2, 2.6, 0.6, f"lm_head ({C} → {V})", COLORS["head"])
    _arrow(ax, (cx, 11.5), (cx, 11.9))
    _box(ax, cx, 12.2, 3.2, 0.55, f"logits (B, T, {V})", COLORS["io"])
    # weight tying: lm_head.weight is wte.weight (a dashed line round the left side)
    tie = dict(color="#7b4fa0", ls="--", lw=1.2, zorder=1)
    ax.plot([cx - 1.3, 0.5, 0.5], [11.2, 11.2, 1.55], **tie)
    _arrow(ax, (0.5, 1.55), (cx - 2.35, 1.55), color="#7b4fa0", ls="--")
    ax.text(0.35, 6.4, "tied: lm_head.weight is wte.weight", rotation=90, fontsize=8, color="#7b4fa0",
            ha="right", va="center")
    ax.set_title("GPT-2", fontsize=12, weight="bold")
    fig.tight_layout()
    return fig


def transformer_block(config: Any = None) -> Figure:
    """One pre-LayerNorm GPT-2 block: x + attn(ln_1(x)), then x + mlp(ln_2(x))."""
    H, C = ("nh", "C") if config is None else (config.n_head, config.n_embd)
    fig, ax = _canvas(5.0, 5.4, (0, 6.6), (-0.6, 7.0))
    cx = 4.0
    _box(ax, cx - 2.0, -0.25, 1.6, 0.5, "x (B, T, C)", COLORS["io"], size=8)
    _arrow(ax, (cx - 2.0, 0.0), (cx - 2.0, 0.3), style="-")
    _block_into(ax, cx, 0.3, H, C)
    _arrow(ax, (cx - 2.0, 6.5), (cx - 2.0, 6.6))
    ax.text(cx - 2.0, 6.75, "to the next block", ha="center", va="bottom", fontsize=8)
    ax.set_title("A pre-LN transformer block", fontsize=11, weight="bold")
    fig.tight_layout()
    return fig


def _heat(fig: Figure, rect: list[float], data: Any, title: str, cmap: str = "viridis",
          vmin: float | None = None, vmax: float | None = None) -> None:
    a = fig.add_axes(rect)
    a.imshow(data, cmap=cmap, vmin=vmin, vmax=vmax)
    a.set_xticks([])
    a.set_yticks([])
    a.set_title(title, fontsize=8)


def attention_head(T: int = 6, head_size: int = 4, seed: int = 0) -> Figure:
    """The flow of one causal attention head, with the matrices drawn from a small random example.

    x -> q, k, v -> scores q k^T / sqrt(hs) -> causal mask -> softmax -> weights @ v -> y.
    """
    import torch

    g = torch.Generator().manual_seed(seed)
    x = torch.randn(T, 3 * head_size, generator=g)
    w = torch.randn(3 * head_size, 3 * head_size, generator=g) / math.sqrt(3 * head_size)
    q, k, v = (x @ w).split(head_size, dim=-1)  # each (T, hs)
    scores = q @ k.T / math.sqrt(head_size)  # (T, T)
    mask = torch.ones(T, T, dtype=torch.bool).tril()
    masked = scores.masked_fill(~mask, float("-inf"))
    weights = masked.softmax(-1)
    y = weights @ v  # (T, hs)

    fig = plt.figure(figsize=(11.5, 3.4))
    ax = fig.add_axes([0, 0, 1, 1])
    ax.set_xlim(0, 23)
    ax.set_ylim(0, 6.8)
    ax.axis("off")
    s = 1 / 23  # data x-unit in figure fraction
    yb = 1.3 / 6.8
    hh = 3.2 / 6.8
    panels = [  # (x0 in data units, width in units, matrix, title, cmap, vmin, vmax)
        (0.3, 1.8, x, f"x ({T}, C)", "coolwarm", None, None),
        (3.2, 0.9, q, "q", "coolwarm", None, None),
        (4.3, 0.9, k, "k", "coolwarm", None, None),
        (5.4, 0.9, v, "v", "coolwarm", None, None),
        (7.6, 2.6, scores, "q kᵀ / √hs", "magma", None, None),
        (11.4, 2.6, masked.masked_fill(~mask, scores.min() - 1), "+ causal mask\n(future = −∞)", "magma", None,
         None),
        (15.2, 2.6, weights, "softmax → weights\n(rows sum to 1)", "Blues", 0.0, 1.0),
        (19.8, 1.2, y, f"y = weights @ v\n({T}, hs)", "coolwarm", None, None),
    ]
    for x0, wd, data, title, cmap, vmin, vmax in panels:
        _heat(fig, [x0 * s, yb, wd * s, hh], data.detach().numpy(), title, cmap, vmin, vmax)
    arrows = [(2.2, 3.1, "c_attn"), (6.4, 7.5, "scores"), (10.3, 11.3, "mask"), (14.1, 15.1, "softmax"),
              (17.9, 19.7, "@ v")]
    for a0, a1, label in arrows:
        _arrow(ax, (a0, 2.9), (a1, 2.9))
        ax.text((a0 + a1) / 2, 3.15, label, ha="center", va="bottom", fontsize=8)
    ax.text(11.5, 0.55, f"one head, T = {T} positions, head size hs = {head_size}: position i may only "
            "look at positions j ≤ i", ha="center", fontsize=9, color="#444444")
    ax.text(11.5, 6.45, "The flow of one causal attention head", ha="center", fontsize=11, weight="bold")
    return fig


# name -> function, for figures/make_figures.py
FIGURES = {
    "gpt2_architecture": gpt2_architecture,
    "transformer_block": transformer_block,
    "attention_head": attention_head,
}
