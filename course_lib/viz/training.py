"""The live loss curve of notebook 06: a Trainer callback that redraws a matplotlib figure.

Thin, as every widget here: `smooth` and `loss_figure` are plain functions (tested
directly); `LiveLossPlot` only collects the Trainer's logs and redraws. It uses
`matplotlib.figure.Figure` without pyplot, so it works headless (Agg, CI) and shows
in Jupyter, VS Code and Colab through ``IPython.display`` (one output, updated in place).

Introduced in notebooks/06_training.ipynb.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from ..train import Callback

__all__ = ["LiveLossPlot", "loss_figure", "smooth"]


def smooth(values: Sequence[float], beta: float = 0.9) -> list[float]:
    """Bias-corrected exponential moving average (as Adam corrects its moments)."""
    out, avg = [], 0.0
    for i, v in enumerate(values, 1):
        avg = beta * avg + (1 - beta) * v
        out.append(avg / (1 - beta**i))
    return out


def loss_figure(history: Sequence[dict[str, Any]], eval_history: Sequence[dict[str, Any]] = (),
                beta: float = 0.9, show_lr: bool = True, title: str | None = None) -> Any:
    """A figure of the training loss (raw and smoothed), the validation loss and the learning rate.

    `history` and `eval_history` are the Trainer's lists of dicts (``step``, ``loss``,
    ``lr``; ``step``, ``val_loss``).
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.4) if show_lr else (6, 3.4), dpi=90)
    axes = fig.subplots(1, 2 if show_lr else 1, squeeze=False)[0]
    ax = axes[0]
    steps = [h["step"] for h in history]
    losses = [h["loss"] for h in history]
    if steps:
        ax.plot(steps, losses, color="tab:blue", alpha=0.25, lw=1, label="train (per step)")
        ax.plot(steps, smooth(losses, beta), color="tab:blue", lw=2, label="train (smoothed)")
    ev = [e for e in eval_history if "val_loss" in e and math.isfinite(e["val_loss"])]
    if ev:
        ax.plot([e["step"] for e in ev], [e["val_loss"] for e in ev], "o-", color="tab:orange", label="validation")
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy loss")
    ax.grid(True, alpha=0.3)
    if steps or ev:
        ax.legend(loc="upper right", fontsize=8)
    ax.set_title(title or (f"step {steps[-1]}: loss {losses[-1]:.3f}" if steps else "no steps yet"), fontsize=10)
    if show_lr:
        axes[1].plot(steps, [h["lr"] for h in history], color="tab:green")
        axes[1].set_xlabel("step")
        axes[1].set_ylabel("learning rate")
        axes[1].grid(True, alpha=0.3)
        axes[1].ticklabel_format(axis="y", style="sci", scilimits=(-2, 2))
    fig.tight_layout()
    return fig


class LiveLossPlot(Callback):
    """Redraw the loss curve every `every` steps and at each evaluation, in place.

    ``Trainer(..., callbacks=[LiveLossPlot()])``. Outside a notebook (no IPython display)
    it only keeps ``self.figure`` up to date, so it is safe in scripts and tests.
    """

    def __init__(self, every: int = 10, beta: float = 0.9, show_lr: bool = True) -> None:
        self.every = max(1, int(every))
        self.beta = beta
        self.show_lr = show_lr
        self.figure: Any = None
        self.redraws = 0
        self._handle: Any = None

    def _display(self, fig: Any) -> None:
        try:
            from IPython import get_ipython
            from IPython.display import display
        except ImportError:  # pragma: no cover
            return
        if get_ipython() is None:
            return
        if self._handle is None:
            self._handle = display(fig, display_id=True)
        else:
            self._handle.update(fig)

    def redraw(self, trainer: Any) -> Any:
        """Draw the current history; returns the figure."""
        from .. import distributed

        if not distributed.is_main_process():
            return None
        self.figure = loss_figure(trainer.history, trainer.eval_history, self.beta, self.show_lr)
        self.redraws += 1
        self._display(self.figure)
        return self.figure

    def on_train_begin(self, trainer: Any) -> None:
        self._handle = None

    def on_step_end(self, trainer: Any, logs: dict[str, Any]) -> None:
        if logs["step"] % self.every == 0:
            self.redraw(trainer)

    def on_evaluate(self, trainer: Any, logs: dict[str, Any]) -> None:
        self.redraw(trainer)

    def on_train_end(self, trainer: Any) -> None:
        self.redraw(trainer)
