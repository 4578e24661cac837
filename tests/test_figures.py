"""course_lib.figures: every diagram draws without error, with and without a config, and saves."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from course_lib import figures  # noqa: E402
from course_lib.model import GPTConfig  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("name", sorted(figures.FIGURES))
def test_figure_draws_and_saves(name: str, tmp_path: Path) -> None:
    fig = figures.FIGURES[name]()
    assert isinstance(fig, Figure) and fig.axes
    texts = " ".join(t.get_text() for ax in fig.axes for t in ax.texts)
    assert texts.strip()
    fig.savefig(tmp_path / f"{name}.png", dpi=40)
    plt.close(fig)
    assert (tmp_path / f"{name}.png").stat().st_size > 1000
    assert (ROOT / "figures" / f"{name}.png").is_file(), "run python figures/make_figures.py and commit the PNG"


def test_architecture_shows_the_configs_sizes() -> None:
    fig = figures.gpt2_architecture(GPTConfig.preset("gpt2"))
    texts = " ".join(t.get_text() for t in fig.axes[0].texts)
    plt.close(fig)
    assert "50257" in texts and "× 12" in texts and "12 heads" in texts
    fig = figures.transformer_block(GPTConfig.preset("tiny"))
    plt.close(fig)


def test_make_figures_writes_every_png(tmp_path: Path) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_figures", ROOT / "figures" / "make_figures.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.main(["--out", str(tmp_path), "--dpi", "30"]) == 0
    assert sorted(p.stem for p in tmp_path.glob("*.png")) == sorted(figures.FIGURES)
