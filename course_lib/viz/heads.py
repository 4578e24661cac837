"""Drawing what `course_lib.interp` measures about heads: the training history of `toys`' small
models, head-score heatmaps, and the logit lens. Each takes plain numbers and returns a matplotlib
Figure made without pyplot (a notebook shows it as the cell's value).

The head-role scores themselves are `course_lib.interp`'s; the few that notebook 08's exercise
cells reach through ``course_lib.viz`` are re-exported here under those names.

Introduced in notebooks/08_attention_visualization.ipynb.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from ..errors import CourseInputError
from ..interp import (  # noqa: F401 - re-exported: notebook 08's exercises reach them through viz
    attention_entropy,
    attention_maps,
    induction_score,
    lens_top_tokens,
    previous_token_score,
    repeated_random_tokens,
)

__all__ = [
    "plot_history", "plot_head_scores", "plot_logit_lens",
    # interp's, re-exported (notebook 08's exercise cells: viz.attention_maps, viz.repeated_random_tokens)
    "attention_maps", "repeated_random_tokens", "previous_token_score", "induction_score", "attention_entropy",
]


def plot_history(history: dict[str, list[float]], score: str | Sequence[str] = "induction", *,
                 title: str | None = None) -> Any:
    """Loss and one or more head scores against training step, from a recorded history:
    a matplotlib Figure (made without pyplot: a notebook shows it as the cell's value).

    With the induction model's history this is the phase change of Olsson et al. (2022):
    the loss leaves chance and the induction score rises at the same steps; with
    ``("induction", "previous_token")`` the previous-token head that feeds it rises too.
    """
    from matplotlib.figure import Figure

    scores = [score] if isinstance(score, str) else list(score)
    missing = [s for s in scores if s not in history]
    if missing or "loss" not in history or not scores:
        what = missing[0] if missing else "score"
        raise CourseInputError(f"plot_history: the history has {', '.join(history)}; no {what!r} to plot")
    steps = history["step"]
    fig = Figure(figsize=(7, 3.2))
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(steps[1:], history["loss"][1:], color="tab:blue", label="training loss")  # step 0 has no loss yet
    ax.set_xlabel("training step")
    ax.set_ylabel("loss", color="tab:blue")
    ax2 = ax.twinx()
    for name, color in zip(scores, ("tab:red", "tab:orange", "tab:green", "tab:purple")):
        ax2.plot(steps, history[name], color=color, label="best " + name.replace("_", "-") + " score")
    ax2.set_ylabel("best head score" if len(scores) > 1 else f"best {scores[0].replace('_', '-')} score",
                   color="tab:red")
    ax2.set_ylim(0, 1)
    ax2.grid(False)
    ax.set_title(title or f"loss and {', '.join(s.replace('_', '-') for s in scores)} score while training")
    lines = ax.get_lines() + ax2.get_lines()
    ax2.legend(lines, [line.get_label() for line in lines], loc="center left", frameon=False)  # empty before a change
    fig.tight_layout()
    return fig


def plot_head_scores(scores: torch.Tensor | dict[str, torch.Tensor], *, title: str = "", label: str = "score",
                     annotate: bool | None = None, diverging: bool = False) -> Any:
    """(L, H) score tensors as layer x head heatmaps (rows are layers), one panel per entry of a
    dict {panel title: scores}: a matplotlib Figure (no pyplot: a notebook shows it as the
    cell's value). Numbers are written in the cells of small grids (up to 64 heads).
    `diverging=True` is for signed scores (a share of a logit): red above zero, blue below, white at zero.
    """
    from matplotlib.figure import Figure

    panels = scores if isinstance(scores, dict) else {title: scores}
    mats = {name: s.detach().float().cpu().numpy() for name, s in panels.items()}
    for name, m in mats.items():
        if m.ndim != 2:
            raise CourseInputError(
                f"plot_head_scores: {name or 'scores'} has shape {m.shape}, expected (layers, heads)")
    widths = [min(1.6 + 0.5 * m.shape[1], 8) for m in mats.values()]
    height = min(1.4 + 0.42 * max(m.shape[0] for m in mats.values()), 7)
    fig = Figure(figsize=(sum(widths) + 1.2, height + (0.3 if title and isinstance(scores, dict) else 0)),
                 layout="constrained")
    axes = fig.subplots(1, len(mats), width_ratios=widths, squeeze=False)[0]
    if diverging:
        vmax = max(1e-6, *(float(abs(m).max()) for m in mats.values()))
        cmap, vmin = "RdBu_r", -vmax
    else:
        vmax = max(1.0, *(float(m.max()) for m in mats.values()))
        cmap, vmin = "viridis", 0.0
    for ax, (name, m) in zip(axes, mats.items()):
        L, H = m.shape
        im = ax.imshow(m, cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto", interpolation="nearest")
        ax.grid(False)
        ax.set_xlabel("head")
        ax.set_ylabel("layer")
        ax.set_xticks(range(H))
        ax.set_yticks(range(L))
        ax.tick_params(labelsize=7 if H > 8 else 9)
        if annotate if annotate is not None else L * H <= 64:
            for i in range(L):
                for j in range(H):
                    dark = abs(m[i, j]) > 0.6 * vmax if diverging else m[i, j] <= 0.6 * vmax
                    ax.text(j, i, f"{m[i, j]:.2f}", ha="center", va="center", fontsize=8,
                            color="white" if dark else "black")
        ax.set_title(name if isinstance(scores, dict) else title, fontsize=10)
    fig.colorbar(im, ax=list(axes), label=label)
    if isinstance(scores, dict) and title:
        fig.suptitle(title)
    return fig


def plot_logit_lens(lens: torch.Tensor, tokens: Sequence[str], decode: Any = None, *,
                    title: str = "logit lens: each layer's top guess for the next token",
                    width: float = 10.0) -> Any:
    """Heatmap of each layer's top probability at each position, labelled with its top token:
    rows "embed", "after block 0", ...; columns the input tokens. A matplotlib Figure (no pyplot).

    Sized for a notebook column: at most `width` inches wide (900 px at the course's 90 dpi), so
    its 7-point labels are drawn at their size, not shrunk by the browser; a long text is split
    into panels of consecutive positions, one under the other. Tokens are labelled with
    `viz.attention.plot_label` (invisible and unprintable characters shown as symbols or escapes).
    """
    from matplotlib.figure import Figure

    from .attention import plot_label

    probs = torch.softmax(lens.float(), dim=-1).max(-1).values.numpy()  # (L + 1, T)
    words = lens_top_tokens(lens, decode)
    n, T = probs.shape
    if len(tokens) != T:
        raise CourseInputError(f"plot_logit_lens: {len(tokens)} tokens for {T} positions")
    margin, cell, row = 1.9, 0.62, 0.25  # inches: row names and colour bar; a column (7 characters at 7 pt); a row
    per_panel = max(1, int((width - margin) // cell))
    n_panels = -(-T // per_panel)
    cols = -(-T // n_panels)  # the positions shared out evenly over the panels
    panels = [(s, min(s + cols, T)) for s in range(0, T, cols)]
    fig = Figure(figsize=(margin + cell * cols, 0.45 + len(panels) * (0.9 + row * n)), layout="constrained")
    axes = fig.subplots(len(panels), 1, squeeze=False)[:, 0]
    for ax, (lo, hi) in zip(axes, panels):
        im = ax.imshow(probs[:, lo:hi], cmap="Blues", vmin=0, vmax=1, aspect="auto", interpolation="nearest",
                       extent=(lo - 0.5, hi - 0.5, n - 0.5, -0.5))
        ax.set_xlim(lo - 0.5, lo + cols - 0.5)  # every panel's columns as wide as the first's
        ax.grid(False)
        for i in range(n):
            for j in range(lo, hi):
                ax.text(j, i, plot_label(words[i][j], 7), ha="center", va="center", fontsize=7,
                        color="white" if probs[i, j] > 0.6 else "black")
        ax.set_xticks(range(lo, hi))
        ax.set_xticklabels([plot_label(t, 8) for t in tokens[lo:hi]], rotation=45, ha="right",
                           rotation_mode="anchor", fontsize=8)
        ax.set_yticks(range(n))
        ax.set_yticklabels(["embed"] + [f"after block {i}" for i in range(n - 1)], fontsize=8)
        if len(panels) > 1:
            ax.set_title(f"positions {lo} to {hi - 1}", fontsize=8, loc="left")
    axes[-1].set_xlabel("input token (each cell guesses the token after it)", fontsize=8)
    fig.colorbar(im, ax=list(axes), label="top probability", fraction=0.03, pad=0.01)
    fig.suptitle(title, fontsize=10)
    return fig
